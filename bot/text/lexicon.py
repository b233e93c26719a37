"""Domain lexicon: how citizens say it → how procedure titles say it.

``knowledge/lexicon.yml`` maps abbreviations ("cccd", "gplx", "bhxh"), everyday names ("sổ đỏ",
"bằng lái", "hộ khẩu"), teencode ("ko", "dc", "ntn") and common misspellings to the official
wording used in procedure titles and steps. :meth:`Lexicon.expand` appends that wording to a
query so both the lexical (BM25) and the semantic channel see it.

Matching rules (all at word boundaries, never inside a word):

* Text and terms are compared token by token on their *folded* form (lowercase, no diacritics),
  so "cccd", "CCCD", "căn cước công dân" and "can cuoc cong dan" all match the same entry.
* A token the user typed *with* diacritics must agree with the term's diacritics: "bí mật" does
  not match the term "bị mất", "ạ" does not match the teencode "a", but "bi mat" matches "bị mất".
  Entries marked ``strict`` match only with the exact diacritics ("cưới" but not "cuoi").
* Tokens match across spaces and hyphens, not across other punctuation.
* At each position the longest term wins; matches do not overlap.
* ``context``: the entry applies only if one of these phrases occurs within ``window`` tokens of
  the match; ``exclude``: it does not apply if one of these does ("nhập khẩu cho con" → thường trú,
  "nhập khẩu hàng hóa" → nothing).

Matching is a dictionary lookup per token (first-token set + tuples up to the longest term), so it
is linear in the text length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from bot.text.vietnamese import _coerce, fold, normalize

__all__ = ["DEFAULT_LEXICON_PATH", "Lexicon", "LexiconEntry", "LexiconMatch", "load_lexicon"]

DEFAULT_LEXICON_PATH = Path(__file__).resolve().parents[2] / "knowledge" / "lexicon.yml"

# Same token shape as vietnamese.syllables: numbers with inner separators, else letter/digit runs.
_TOKEN_RE = re.compile(r"\d+(?:[.,:/\-]\d+)+|[^\W_]+")
# What may stand between two tokens of one multi-word term.
_JOINER_RE = re.compile(r"[\s\-]*")


class _Tok(NamedTuple):
    """One token of a normalized text."""

    surface: str  # as written (case kept)
    lower: str  # lowercase, diacritics kept
    folded: str  # lowercase, no diacritics
    marked: bool  # the token has diacritics
    start: int
    end: int


@dataclass(frozen=True)
class _Pattern:
    """A tokenized phrase: lowercase (with diacritics) and folded token tuples."""

    lower: tuple[str, ...]
    folded: tuple[str, ...]


_fold_token = lru_cache(maxsize=65536)(fold)


def _tokenize(normalized: str) -> tuple[list[_Tok], list[bool]]:
    """Tokens of an already-normalized text and, for each gap between token i-1 and i, whether it breaks."""
    toks: list[_Tok] = []
    breaks: list[bool] = []
    prev_end = -1
    for m in _TOKEN_RE.finditer(normalized):
        surface = m.group(0)
        lower = surface.lower()
        folded = _fold_token(lower) if not lower.isascii() else lower
        start = m.start()
        if prev_end >= 0:
            breaks.append(not (start == prev_end or _JOINER_RE.fullmatch(normalized, prev_end, start)))
        else:
            breaks.append(True)
        toks.append(_Tok(surface, lower, folded, folded != lower, start, m.end()))
        prev_end = m.end()
    return toks, breaks


def _pattern(phrase: str) -> _Pattern:
    lower = tuple(_TOKEN_RE.findall(normalize(phrase).lower()))
    return _Pattern(lower, tuple(fold(t) for t in lower))


def _as_tuple(value: object, what: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where}: '{what}' must be a non-empty string or a list of non-empty strings")
    return tuple(normalize(v) for v in value)


@dataclass(frozen=True)
class LexiconEntry:
    """One lexicon entry: surface terms that all mean the canonical phrase(s)."""

    terms: tuple[str, ...]
    canonical: tuple[str, ...]
    note: str = ""
    context: tuple[str, ...] = ()  # apply only if one of these occurs near the match
    exclude: tuple[str, ...] = ()  # never apply if one of these occurs near the match
    window: int = 6  # "near" = within this many tokens on either side
    strict: bool = False  # match the diacritics exactly (no folding)
    learned: bool = False  # not from lexicon.yml: an acronym learned from the titles (bot/text/acronyms.py)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "entry") -> LexiconEntry:
        """Build an entry from one YAML mapping (keys: term/terms, canonical, note, context, exclude, window, strict)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: an entry must be a mapping")
        unknown = set(data) - {"term", "terms", "canonical", "note", "context", "exclude", "window", "strict"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        terms = _as_tuple(data.get("term"), "term", where) + _as_tuple(data.get("terms"), "terms", where)
        canonical = _as_tuple(data.get("canonical"), "canonical", where)
        if not terms:
            raise ValueError(f"{where}: needs 'term' or 'terms'")
        if not canonical:
            raise ValueError(f"{where}: needs 'canonical'")
        for t in terms:
            if not _TOKEN_RE.search(t):
                raise ValueError(f"{where}: term {t!r} has no word characters")
        window = data.get("window", 6)
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ValueError(f"{where}: 'window' must be a positive integer")
        strict = data.get("strict", False)
        if not isinstance(strict, bool):
            raise ValueError(f"{where}: 'strict' must be true or false")
        note = data.get("note", "") or ""
        return cls(
            terms=terms,
            canonical=canonical,
            note=str(note),
            context=_as_tuple(data.get("context"), "context", where),
            exclude=_as_tuple(data.get("exclude"), "exclude", where),
            window=window,
            strict=strict,
        )


@dataclass(frozen=True)
class _Compiled:
    """An entry's term compiled for lookup."""

    entry: LexiconEntry
    term: _Pattern
    context: tuple[_Pattern, ...]
    exclude: tuple[_Pattern, ...]


def _token_ok(tok: _Tok, term_lower: str, strict: bool) -> bool:
    """Folded forms are already equal; check the diacritics rule."""
    if strict or tok.marked:
        return tok.lower == term_lower
    return True


def _phrase_at(toks: Sequence[_Tok], breaks: Sequence[bool], i: int, pat: _Pattern, strict: bool) -> bool:
    n = len(pat.folded)
    if i + n > len(toks):
        return False
    for k in range(n):
        tok = toks[i + k]
        if tok.folded != pat.folded[k] or not _token_ok(tok, pat.lower[k], strict):
            return False
        if k and breaks[i + k]:
            return False
    return True


def _near(
    toks: Sequence[_Tok], breaks: Sequence[bool], start: int, end: int, window: int, pats: Iterable[_Pattern]
) -> bool:
    """Does one of ``pats`` occur within ``window`` tokens before ``start`` or after ``end`` (exclusive span)?

    A phrase counts if it lies entirely on one side of the span and starts inside the window.
    """
    lo = max(0, start - window)
    hi = min(len(toks), end + window)
    positions: dict[str, list[int]] = {}
    for i in range(lo, start):
        positions.setdefault(toks[i].folded, []).append(i)
    for i in range(end, hi):
        positions.setdefault(toks[i].folded, []).append(i)
    for pat in pats:
        candidates = positions.get(pat.folded[0])
        if not candidates:
            continue
        n = len(pat.folded)
        for i in candidates:
            if i < start and i + n > start:
                continue  # would overlap the matched span
            if _phrase_at(toks, breaks, i, pat, False):
                return True
    return False


class LexiconMatch(NamedTuple):
    """A term found in a text, located by token: tokens ``first`` up to ``end`` (exclusive) of ``syllables(text)``."""

    first: int
    end: int
    surface: str  # the matched span of the normalized text, case kept
    entry: LexiconEntry


@dataclass
class Lexicon:
    """A compiled domain lexicon; build it with :func:`load_lexicon` or ``Lexicon(entries=[...])``."""

    entries: list[LexiconEntry]
    source: Path | None = None
    _index: dict[tuple[str, ...], list[_Compiled]] = field(init=False, repr=False, default_factory=dict)
    _prefixes: frozenset[tuple[str, ...]] = field(init=False, repr=False, default=frozenset())

    def __post_init__(self) -> None:
        index: dict[tuple[str, ...], list[_Compiled]] = {}
        for entry in self.entries:
            context = tuple(_pattern(c) for c in entry.context)
            exclude = tuple(_pattern(c) for c in entry.exclude)
            seen: set[tuple[str, ...]] = set()
            for term in entry.terms:
                pat = _pattern(term)
                if not pat.lower or pat.lower in seen:
                    continue
                seen.add(pat.lower)
                index.setdefault(pat.folded, []).append(_Compiled(entry, pat, context, exclude))
        self._index = index
        # every proper prefix of every key: lets the scan walk forward like a trie
        self._prefixes = frozenset(k[:j] for k in index for j in range(1, len(k) + 1))

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def term_count(self) -> int:
        """Number of distinct (folded) term spellings."""
        return len(self._index)

    def _scan(self, text: str) -> tuple[list[tuple[_Tok, _Tok, LexiconEntry]], list[_Tok], str]:
        """Non-overlapping, longest-first matches as (first token, last token, entry)."""
        normalized = normalize(text)
        toks, breaks = _tokenize(normalized)
        found: list[tuple[_Tok, _Tok, LexiconEntry]] = []
        n = len(toks)
        index, prefixes = self._index, self._prefixes
        i = 0
        while i < n:
            key: tuple[str, ...] = (toks[i].folded,)
            if key not in prefixes:
                i += 1
                continue
            # walk forward while the tokens are still a prefix of some term (never across punctuation)
            spans: list[tuple[int, list[_Compiled]]] = []
            k = 1
            while True:
                cands = index.get(key)
                if cands:
                    spans.append((k, cands))
                if i + k >= n or breaks[i + k]:
                    break
                key = key + (toks[i + k].folded,)
                if key not in prefixes:
                    break
                k += 1
            matched = 0
            for k, cands in reversed(spans):  # longest first
                hits: list[LexiconEntry] = []
                for c in cands:
                    strict = c.entry.strict
                    if not all(_token_ok(toks[i + j], c.term.lower[j], strict) for j in range(k)):
                        continue
                    w = c.entry.window
                    if c.context and not _near(toks, breaks, i, i + k, w, c.context):
                        continue
                    if c.exclude and _near(toks, breaks, i, i + k, w, c.exclude):
                        continue
                    if c.entry not in hits:
                        hits.append(c.entry)
                if hits:
                    for entry in hits:
                        found.append((toks[i], toks[i + k - 1], entry))
                    matched = k
                    break
            i += matched or 1
        return found, toks, normalized

    def find(self, text: str) -> list[LexiconMatch]:
        """Every match with its token positions, in text order (an entry's several canonical phrases: one match).

        Token positions index :func:`bot.text.vietnamese.syllables` of the same text, so a caller that
        tokenizes with it (the Rasa tokenizer in ``bot.nlu``) can attach the canonical wording to its tokens.
        """
        found, toks, normalized = self._scan(text)
        position = {tok.start: i for i, tok in enumerate(toks)}
        return [
            LexiconMatch(position[first.start], position[last.start] + 1, normalized[first.start : last.end], entry)
            for first, last, entry in found
        ]

    def spans(self, text: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """Every match as (start, end, canonical phrases), character positions in ``normalize(text)``."""
        found, _toks, _normalized = self._scan(text)
        return [(first.start, last.end, entry.canonical) for first, last, entry in found]

    def matches(self, text: str) -> list[tuple[str, str]]:
        """``(term as matched, canonical phrase)`` pairs in text order, one pair per canonical phrase.

        The matched term is the span of the normalized text (case kept), e.g. ``("CCCD", "thẻ căn cước")``.
        """
        found, _toks, normalized = self._scan(text)
        out: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for first, last, entry in found:
            surface = normalized[first.start : last.end]
            for canon in entry.canonical:
                pair = (surface, canon)
                if pair not in seen:
                    seen.add(pair)
                    out.append(pair)
        return out

    def expand(self, text: str, *, base: str | None = None, skip: Sequence[tuple[int, int]] = ()) -> str:
        """Return ``text`` followed by the canonical phrases of every term found in it.

        The original text is kept unchanged at the front; phrases are appended once each, separated
        by "; " (so a lexical bigram never spans two phrases), and a phrase already present in the
        text with the same diacritics is not repeated. Text without any match is returned as is.

        ``base`` (the question minus its aspect phrases, which the engine searches) replaces ``text`` at the
        front and is expanded as usual; terms of the whole ``text`` outside the character spans ``skip`` are
        expanded too, so a context the base lost still counts ("thông tin trên VNeID bị sai": "bị sai" about
        the population database, while "trên VNeID" itself only asks for the channel). The whole text
        counts only when it is already normalized (positions then agree).

        >>> load_lexicon().expand("lam lai cccd o dau")
        'lam lai cccd o dau cấp lại; thẻ căn cước; cơ quan thực hiện'
        """
        text = _coerce(text)
        front = text if base is None else _coerce(base)
        found, toks, normalized = self._scan(text)
        if base is not None:
            # what the base alone yields, plus the whole text's terms that lie outside the skipped spans
            kept = [f for f in found if not any(f[0].start < end and start < f[1].end for start, end in skip)]
            base_found, toks, _ = self._scan(front)
            found = base_found + (kept if normalized == text else [])
        if not found:
            return front
        present = " " + " ".join(t.lower for t in toks) + " "
        phrases: list[str] = []
        checked: set[str] = set()
        for _first, _last, entry in found:
            for canon in entry.canonical:
                if canon in checked:
                    continue
                checked.add(canon)
                key = " " + " ".join(_TOKEN_RE.findall(canon.lower())) + " "
                if key not in present:
                    phrases.append(canon)
        if not phrases:
            return front
        return f"{front} {'; '.join(phrases)}"


def _read_entries(path: Path) -> list[LexiconEntry]:
    import yaml

    with path.open(encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if isinstance(data, Mapping):
        data = data.get("entries")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of entries (or a mapping with 'entries')")
    return [LexiconEntry.from_mapping(item, where=f"{path.name} entry {n}") for n, item in enumerate(data, 1)]


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> Lexicon:
    p = Path(path)
    return Lexicon(entries=_read_entries(p), source=p)


def load_lexicon(path: Path | None = None) -> Lexicon:
    """Load and compile a lexicon (default ``knowledge/lexicon.yml``); cached per file and modification time.

    Raises ``FileNotFoundError`` if the file is missing and ``ValueError`` if it is not valid YAML or
    an entry is malformed (the message names the entry).
    """
    p = Path(path) if path is not None else DEFAULT_LEXICON_PATH
    p = p.resolve()
    return _load_cached(str(p), p.stat().st_mtime_ns)
