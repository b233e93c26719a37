"""Vietnamese text primitives shared by the index builder, the retriever and the dialogue layer.

Everything here is a plain, pure function on ``str`` that never raises on odd input (emoji, control
characters, mixed scripts, decomposed Unicode, very long text) and runs in time linear in the input.

* :func:`normalize` — display-safe cleanup that keeps case: NFC, control/zero-width removal,
  whitespace collapsing and one canonical tone-mark placement ("hoà" → "hòa", "thuý" → "thúy").
* :func:`fold` — lowercase without diacritics ("Đăng ký" → "dang ky"), for matching text typed
  without accents.
* :func:`syllables` / :func:`segment` — syllable and word tokens.
* :func:`lexical_tokens` — the token stream of the BM25 channel (same treatment for documents and
  queries).

Canonical tone placement is the *traditional* one ("hòa", "khỏe", "thủy", "quý"), the same as
underthesea's ``word_tokenize``/``text_normalize`` output, applied by a rule (not a word list) so it
covers every syllable, upper- or lowercase.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Literal

__all__ = [
    "STOPWORDS",
    "fold",
    "has_diacritics",
    "lexical_tokens",
    "normalize",
    "segment",
    "syllables",
    "warm_up",
]

# --------------------------------------------------------------------------------------------------
# Character tables (built once at import)
# --------------------------------------------------------------------------------------------------

# The five tone marks as combining characters: grave (huyền), acute (sắc), tilde (ngã),
# hook above (hỏi), dot below (nặng).
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")

# Look-alike characters produced by legacy encodings / odd keyboards, mapped to the Vietnamese letter.
_LOOKALIKES = str.maketrans(
    {
        "\u00d0": "\u0110",  # Ð (Icelandic eth) → Đ, common in text converted from TCVN3/VNI
        "\u01ce": "\u0103",  # ǎ (a caron) → ă
        "\u01cd": "\u0102",  # Ǎ → Ă
    }
)


def _build_fold_table() -> dict[int, str]:
    """Map every precomposed Latin letter with diacritics (incl. đ/Đ) to its lowercase ASCII base."""
    table: dict[int, str] = {}
    ranges = [(0x00C0, 0x0250), (0x1E00, 0x1F00)]
    for lo, hi in ranges:
        for cp in range(lo, hi):
            ch = chr(cp)
            base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
            base = base.lower()
            if base != ch.lower() and len(base) == 1 and base.isascii() and base.isalpha():
                table[cp] = base
    for ch, base in {"đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "ƀ": "b"}.items():
        table[ord(ch)] = base
    return table


_FOLD_TABLE = _build_fold_table()

# Any precomposed letter the fold table knows about, or a combining mark: "has diacritics".
_DIACRITIC_RE = re.compile("[" + "".join(re.escape(chr(cp)) for cp in sorted(_FOLD_TABLE)) + "\u0300-\u036f]")

# Characters removed outright: C0/C1 controls other than whitespace, soft hyphen, zero-width and
# bidi-format characters, BOM, and lone surrogates (from bytes decoded with surrogateescape).
_REMOVE_RE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u034f\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
# whitespace that needs rewriting: a run of 2+, or a single tab/newline/nbsp/...
_SPACE_RE = re.compile(r"\s{2,}|[^\S ]")


def _tone_cluster_re() -> re.Pattern[str]:
    """A toned vowel next to another vowel: the only place a tone mark can be misplaced.

    A syllable with a single vowel cannot have a misplaced mark, so most words never reach the
    (Python-level) fixer.
    """
    plain = "aăâeêioôơuưy"
    toned = {unicodedata.normalize("NFC", v + t) for v in plain for t in _TONE_MARKS}
    vowels = set(plain) | toned
    t_cls = "".join(sorted(toned | {c.upper() for c in toned}))
    v_cls = "".join(sorted(vowels | {c.upper() for c in vowels}))
    return re.compile(f"[{t_cls}][{v_cls}]|[{v_cls}][{t_cls}]")


_TONE_CLUSTER_RE = _tone_cluster_re()
_MAX_SYLLABLE = 7  # "nghiêng", "nghiệng": longer letter runs are not syllables
_LOOKALIKE_RE = re.compile("[\u00d0\u01cd\u01ce]")

# Tokens: numbers keep their inner separators ("20.000", "1.001193", "01/8/2024"), otherwise a run
# of letters/digits ("b2", "ct01", "cccd").
_TOKEN_RE = re.compile(r"\d+(?:[.,:/\-]\d+)+|[^\W_]+")

_VOWELS = "aăâeêioôơuưy"
_SHAPED = "ăâêôơư"
# vowel clusters (without tone) that can be followed by a final consonant
_CLOSED_NUCLEI = frozenset(
    {"a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y"}
    | {"oa", "oă", "oe", "uâ", "uê", "uy", "iê", "yê", "uô", "ươ", "uyê", "oo"}
)
# onset (consonant cluster) + nucleus (vowels) + coda (one of the legal final consonants)
_SYLLABLE_RE = re.compile(rf"([bcdđghklmnpqrstvx]{{0,3}})([{_VOWELS}]{{1,3}})(ch|ng|nh|c|m|n|p|t)?")


# --------------------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------------------


def _nfc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _coerce(text: object) -> str:
    """Return ``text`` as ``str``; bytes are decoded as UTF-8 with replacement, ``None`` is ``""``."""
    if isinstance(text, str):
        return text
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text).decode("utf-8", errors="replace")
    return str(text)


def _tone_index(base_lower: str) -> int:
    """Index in ``base_lower`` (a toneless, lowercase syllable) where the tone mark belongs, or -1."""
    m = _SYLLABLE_RE.fullmatch(base_lower)
    if m is None:
        return -1
    onset, nucleus, coda = m.group(1), m.group(2), m.group(3) or ""
    start = len(onset)
    # "qu" and "gi" (before another vowel) are onsets: "quý", "giá", "giữa", "giường".
    if len(nucleus) > 1 and ((onset == "q" and nucleus[0] == "u") or (onset == "g" and nucleus[0] == "i")):
        start += 1
        nucleus = nucleus[1:]
    if len(nucleus) == 1:
        return start
    if "ơ" in nucleus:  # ươ, ươi, ươu, ơi ...: the horned o carries the tone
        return start + nucleus.index("ơ")
    for i, ch in enumerate(nucleus):
        if ch in _SHAPED:  # iê, uô, yê, uyê, ưa, ưu, ây, âu ...
            return start + i
    if coda:  # "hoàng", "huỳnh", "xoóng": the last vowel
        if nucleus not in _CLOSED_NUCLEI:  # "ai" + "c" is no syllable: leave the word alone
            return -1
        return start + len(nucleus) - 1
    if len(nucleus) == 3:  # "oai", "oay", "uya", "oeo", "uyu": the middle vowel
        return start + 1
    # two vowels, open syllable: traditional style puts it on the first ("hòa", "khỏe", "thủy", "mùa")
    return start


@lru_cache(maxsize=65536)
def _fix_tone(word: str) -> str:
    """Move a misplaced tone mark inside one letters-only word; return the word unchanged otherwise."""
    decomposed = unicodedata.normalize("NFD", word)
    tones = [c for c in decomposed if c in _TONE_MARKS]
    if len(tones) != 1:
        return word
    base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONE_MARKS))
    index = _tone_index(base.lower())
    if index < 0:
        return word
    fixed = base[:index] + unicodedata.normalize("NFC", base[index] + tones[0]) + base[index + 1 :]
    return fixed


def _fix_tones(text: str) -> str:
    """Apply :func:`_fix_tone` to every word that has a toned vowel cluster (linear time)."""
    pieces: list[str] = []
    last = 0
    n = len(text)
    for m in _TONE_CLUSTER_RE.finditer(text):
        i = m.start()
        if i < last:
            continue
        start = i
        while start > 0 and i - start <= _MAX_SYLLABLE and text[start - 1].isalpha():
            start -= 1
        end = m.end()
        while end < n and end - i <= _MAX_SYLLABLE and text[end].isalpha():
            end += 1
        if end - start > _MAX_SYLLABLE or start < last:
            continue  # part of a longer letter run: not a syllable (bounded walk keeps this linear)
        word = text[start:end]
        fixed = _fix_tone(word)
        if fixed != word:
            pieces.append(text[last:start])
            pieces.append(fixed)
            last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def normalize(text: str) -> str:
    """Clean Vietnamese text for display and indexing while keeping its case.

    Steps: Unicode NFC; look-alike letters mapped (Ð→Đ, ǎ→ă); control, zero-width, bidi-format and
    BOM characters removed; every whitespace run collapsed to one space and the ends stripped; the
    tone mark of each syllable moved to its canonical (traditional) place, so "Hoà", "hoà" and
    "hòa" become "Hòa"/"hòa", "thuý" → "thúy", "qúy" → "quý". Words that are not Vietnamese syllables
    (foreign words, abbreviations, numbers) are left as they are.

    >>> normalize("  Thủ tục\u200b  hoà giải\\n")
    'Thủ tục hòa giải'
    """
    text = _nfc(_coerce(text))
    if _LOOKALIKE_RE.search(text):
        text = text.translate(_LOOKALIKES)
    text = _REMOVE_RE.sub("", text)
    text = _SPACE_RE.sub(" ", text).strip()
    if not text.isascii():
        text = _fix_tones(text)
    return text


# --------------------------------------------------------------------------------------------------
# fold / has_diacritics
# --------------------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lowercase and strip all diacritics (tone and vowel marks, đ→d); other characters are kept.

    Works on composed or decomposed input and returns NFC text. Nothing else is changed (no
    whitespace or punctuation cleanup), so ``len`` may differ from the input only where a
    decomposed character was merged.

    >>> fold("Đăng ký khai sinh")
    'dang ky khai sinh'
    """
    text = _nfc(_coerce(text)).lower().translate(_FOLD_TABLE)
    if not text.isascii() and _DIACRITIC_RE.search(text):
        # combining marks left over (letters with no precomposed form, stray marks): drop them
        text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
        text = unicodedata.normalize("NFC", text).translate(_FOLD_TABLE)
    return text


def has_diacritics(text: str) -> bool:
    """True when the text contains a Latin letter with a diacritic (Vietnamese tone/vowel marks, đ).

    >>> has_diacritics("lam lai cccd"), has_diacritics("làm lại"), has_diacritics("đi")
    (False, True, True)
    """
    return _DIACRITIC_RE.search(_nfc(_coerce(text))) is not None


# --------------------------------------------------------------------------------------------------
# syllables / segment
# --------------------------------------------------------------------------------------------------


def syllables(text: str) -> list[str]:
    """Lowercase syllable tokens of the normalized text, punctuation and emoji dropped.

    Numbers with inner separators stay one token ("20.000", "1.001193", "01/8/2024"); letter-digit
    runs stay together ("b2", "ct01").

    >>> syllables("Lệ phí: 20.000 đồng/lần (bằng B2)")
    ['lệ', 'phí', '20.000', 'đồng', 'lần', 'bằng', 'b2']
    """
    return _TOKEN_RE.findall(normalize(text).lower())


_word_tokenize: Any = None


def _underthesea_tokenize(text: str) -> list[str]:
    global _word_tokenize
    if _word_tokenize is None:
        from underthesea import word_tokenize  # heavy import (~4 s): only on first use

        _word_tokenize = word_tokenize
    result = _word_tokenize(text)
    return list(result)


@lru_cache(maxsize=4096)
def _segment_cached(normalized: str) -> tuple[str, ...]:
    try:
        words = _underthesea_tokenize(normalized)
    except Exception:  # noqa: BLE001 - the segmenter must never break a chat turn
        return tuple(_TOKEN_RE.findall(normalized.lower()))
    out: list[str] = []
    for word in words:
        parts = _TOKEN_RE.findall(str(word).lower())
        if parts:
            out.append("_".join(parts))
    return tuple(out)


def segment(text: str) -> list[str]:
    """Word segmentation with underthesea: lowercase words, syllables of a word joined by "_".

    Punctuation-only tokens are dropped. Text typed without diacritics segments poorly (that is a
    property of the model); use :func:`lexical_tokens` for matching. If underthesea fails the result
    falls back to :func:`syllables`.

    >>> segment("Cấp Giấy chứng nhận quyền sử dụng đất")
    ['cấp', 'giấy', 'chứng_nhận', 'quyền', 'sử_dụng', 'đất']
    """
    normalized = normalize(text)
    if not normalized:
        return []
    if len(normalized) > 2000:  # do not keep very long texts in the cache
        return list(_segment_cached.__wrapped__(normalized))
    return list(_segment_cached(normalized))


def warm_up() -> None:
    """Load underthesea and its segmentation model now (about 4 s) instead of on the first chat turn."""
    _crf_model()
    segment("Thủ tục đăng ký khai sinh")


# --------------------------------------------------------------------------------------------------
# lexical_tokens
# --------------------------------------------------------------------------------------------------

# Folded function words and chat fillers dropped from *unigrams only* (bigrams keep them, so
# "cho_con", "o_dau" still count). Words whose folded form is also a content word in procedure
# titles are deliberately absent: "can" (căn cước), "the" (thẻ), "do" (sổ đỏ), "ma" (mã số),
# "hoi" (hội), "ban" (bản sao), "thi" (thi hành), "dau" (lần đầu), "tai" (tài sản), "minh" (chứng minh).
STOPWORDS: frozenset[str] = frozenset(
    {
        "va",
        "la",
        "cua",
        "cac",
        "nhung",
        "mot",
        "cho",
        "voi",
        "nhu",
        "toi",
        "em",
        "anh",
        "o",
        "a",
        "oi",
        "nhe",
        "nha",
        "vay",
        "ha",
        "ne",
        "nhi",
        "u",
        "ak",
        "ah",
        "z",
        "j",
        "gi",
        "nao",
        "sao",
        "nay",
        "bi",
        "co",
        "khong",
        "ko",
        "k",
        "dc",
        "muon",
        "xin",
        "giup",
        "ve",
        "phai",
        "roi",
        "r",
        "vs",
    }
)

# Characters allowed between two tokens that still form a bigram (no punctuation break).
_JOINER_RE = re.compile(r"[\s\-]*")


def lexical_tokens(text: str) -> list[str]:
    """Tokens for the BM25 index; the same function is used for documents and for queries.

    * folded syllables, minus :data:`STOPWORDS` ("làm lại CCCD" → "lam", "lai", "cccd");
    * folded bigrams of adjacent syllables that are not separated by punctuation
      ("dang_ky", "khai_sinh"; stopwords kept);
    * when the text has diacritics, folded underthesea words of 3+ syllables ("quyen_so_huu").

    Duplicates are kept (term frequency matters). Apply ``Lexicon.expand`` first on queries so
    that "lam lai cccd" also yields "cap_lai", "can_cuoc" ...

    >>> lexical_tokens("Đăng ký khai sinh")
    ['dang', 'ky', 'khai', 'sinh', 'dang_ky', 'ky_khai', 'khai_sinh']
    """
    normalized = normalize(text)
    if not normalized:
        return []
    folded = fold(normalized)
    unigrams: list[str] = []
    bigrams: list[str] = []
    prev_tok = ""
    prev_end = -1
    for m in _TOKEN_RE.finditer(folded):
        tok = m.group(0)
        if tok not in STOPWORDS:
            unigrams.append(tok)
        start = m.start()
        if prev_tok and (start == prev_end or _JOINER_RE.fullmatch(folded, prev_end, start)):
            bigrams.append(f"{prev_tok}_{tok}")
        prev_tok, prev_end = tok, m.end()
    tokens = unigrams + bigrams
    if has_diacritics(normalized):
        tokens.extend(_long_words(normalized))
    return tokens


# Clause boundary: punctuation followed by a space or the end ("đất, quyền" splits; "20.000",
# "01/8/2024", "NĐ-CP" do not).
_CLAUSE_SPLIT_RE = re.compile(r"(?<![^\w\s])[^\w\s]+(?:\s+|$)")  # from a punctuation run's start: linear


# (featurizer, tagger) of underthesea's word-segmentation model, or False when it cannot be used
_crf: tuple[Any, Any] | Literal[False] | None = None


def _crf_model() -> tuple[Any, Any] | Literal[False]:
    """underthesea's CRF word-segmentation model, loaded through ``word_tokenize`` itself.

    Calling the featurizer and tagger directly on our own syllable tokens skips underthesea's
    Python tokenizer and normalizer (already done by :func:`normalize`) and roughly halves the
    cost per call. If the internals ever change, ``False`` is cached and callers fall back to
    ``word_tokenize``.
    """
    global _crf
    if _crf is None:
        try:
            _underthesea_tokenize("khởi động")
            import underthesea.pipeline.word_tokenize as wt

            model = wt.word_tokenize_model
            _crf = (model.featurizer, model.estimator)
        except Exception:  # noqa: BLE001
            _crf = False
    return _crf


def _segment_tokens(tokens: list[str]) -> list[list[str]]:
    """Group syllable tokens into words with underthesea's CRF ("B-W"/"I-W" tags)."""
    model = _crf_model()
    if model:
        try:
            featurizer, tagger = model
            tags = tagger.tag(featurizer.process([[[t] for t in tokens]])[0])
            words: list[list[str]] = []
            for tag, tok in zip(tags, tokens, strict=True):
                if tag == "I-W" and words:
                    words[-1].append(tok)
                else:
                    words.append([tok])
            return words
        except Exception:  # noqa: BLE001 - fall back to the public API below
            pass
    return [w.split("_") for w in _segment_cached(" ".join(tokens))]


@lru_cache(maxsize=16384)
def _long_words_of_clause(clause: str) -> tuple[str, ...]:
    tokens = _TOKEN_RE.findall(clause)
    try:
        words = _segment_tokens(tokens)
    except Exception:  # noqa: BLE001
        return ()
    return tuple("_".join(fold(t) for t in w) for w in words if len(w) >= 3)


def _long_words(normalized: str) -> list[str]:
    """Folded underthesea words of 3+ syllables, segmenting clause by clause.

    Words never span punctuation, so segmenting per clause loses nothing, and caching per clause
    means the canonical phrases that ``Lexicon.expand`` appends ("; "-separated) and repeated
    boilerplate in documents are segmented once. Clauses with fewer than three syllables are
    skipped, and so are clauses not *written* with diacritics: fewer than a third of their
    syllables carry one (real Vietnamese text has well over half), e.g. a query typed without
    accents followed by one expanded phrase. The model segments such text badly anyway.
    """
    out: list[str] = []
    for clause in _CLAUSE_SPLIT_RE.split(normalized):
        if clause.count(" ") < 2:
            continue
        syls = _TOKEN_RE.findall(clause)
        if len(syls) < 3 or 3 * sum(1 for x in syls if _DIACRITIC_RE.search(x)) < len(syls):
            continue
        if len(clause) > 2000:  # do not keep very long clauses in the cache
            out.extend(_long_words_of_clause.__wrapped__(clause))
        else:
            out.extend(_long_words_of_clause(clause))
    return out
