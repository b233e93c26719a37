"""Acronyms learned from the procedure titles: "gpxd" → "giấy phép xây dựng", "pccc" → "phòng cháy chữa cháy".

Citizens shorten the names they meet in titles to their initials ("xin gpxd", "đăng ký nvqs", "phiếu lltp"). The
hand lexicon (``knowledge/lexicon.yml``) lists the ones its authors met in questions; this module reads every such
name off the 2,849 titles instead, so that a procedure nobody wrote a lexicon entry for is still found by its
initials. It is learned from the knowledge and nothing else (no question set is read), and measured on questions
it was not written from (docs/evaluation.md, "Learned from the knowledge: acronyms and diacritics").

A title is cut at its punctuation, each piece split into words by underthesea (so a phrase never starts or ends
inside a compound word: "tục đăng ký" is not a phrase of "thủ tục đăng ký"), and every run of one to four words
that has three to six syllables, holds no word that ties two names ("của", "cho", "có") and neither begins nor
ends with a quantifier or the like ("các", "lần đầu") is a candidate name; its acronym
is the first letter of each syllable without its tone or vowel marks but with its "đ" ("đăng ký kinh doanh" →
"đkkd", which the lexicon also matches when typed "dkkd"). An acronym is kept when

- at least ``min_titles`` titles use its leading name (a name seen once or twice is not one citizens shorten),
- the leading name is used by at least ``dominance`` times as many titles as the runner-up (else it is ambiguous:
  "ttct" → "thủ tục chấp thuận" / "tổ chức tín dụng"), and
- the acronym is not a word of the knowledge: shaped like a Vietnamese syllable and used by a record ("ban",
  "hoc", "tan" are words, never acronyms; "gpxd", which some records write, is still an acronym).

An acronym the hand lexicon already lists keeps the hand meaning (:func:`with_acronyms`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping

from bot.text.lexicon import Lexicon, LexiconEntry
from bot.text.vietnamese import fold, normalize, segment

__all__ = ["MIN_TITLES", "DOMINANCE", "derive_acronyms", "with_acronyms"]

MIN_TITLES = 3
DOMINANCE = 2.0
_SYLLABLES = (3, 6)
_MAX_WORDS = 4

# Words that tie two names together ("cấp thẻ căn cước cho người …", "khai sinh có yếu tố …"): a name never
# contains one. Written segmented, as segment() returns them.
_INSIDE_STOP = frozenset(
    "của tại với đối_với cho về trong theo từ trên do có là được mà đang đã bị để khi hoặc nếu".split()
)
# Words a name neither begins nor ends with (quantifiers, "lần đầu", "trở lên", the word "thủ tục" itself).
_EDGE_STOP = _INSIDE_STOP | frozenset(
    "và các những một mới lần đầu lại ở đến sang vào ra tới thuộc chưa đủ trở lên dưới thủ_tục việc".split()
)
_END_STOP = _EDGE_STOP | {"người"}
_PIECES = re.compile(r"[^\w\s]+|\s-\s")
# The shape of one Vietnamese syllable, folded: onset, vowels, coda. An acronym of this shape that the knowledge
# uses is a word ("ban", "hoc"); one of another shape ("gpxd", "ubnd") is an acronym even where a record writes it.
_SYLLABLE = re.compile(r"(ngh|ng|gh|nh|ch|kh|ph|th|tr|gi|qu|[bcdghklmnpqrstvx])?[aeiouy]+(ng|nh|ch|[cmnpt])?")


def _names(title: str) -> set[tuple[str, ...]]:
    """The candidate names of one title, as syllable tuples (lowercase, diacritics kept).

    >>> sorted(" ".join(n) for n in _names("Cấp giấy phép xây dựng (nhà ở riêng lẻ)"))
    ['cấp giấy phép', 'cấp giấy phép xây dựng', 'giấy phép xây dựng', 'nhà ở riêng lẻ']
    >>> sorted(" ".join(n) for n in _names("Thủ tục đăng ký nghĩa vụ quân sự lần đầu"))
    ['nghĩa vụ quân sự', 'đăng ký nghĩa vụ quân sự']
    """
    names: set[tuple[str, ...]] = set()
    for piece in _PIECES.split(normalize(title)):
        words = segment(piece)
        for n in range(1, _MAX_WORDS + 1):
            for i in range(len(words) - n + 1):
                run = words[i : i + n]
                if run[0] in _EDGE_STOP or run[-1] in _END_STOP or _INSIDE_STOP.intersection(run):
                    continue
                syllables = tuple(s for w in run for s in w.split("_"))
                if _SYLLABLES[0] <= len(syllables) <= _SYLLABLES[1] and all(s.isalpha() for s in syllables):
                    names.add(syllables)
    return names


def derive_acronyms(titles: Iterable[str], vocabulary: Collection[str], *, min_titles: int = MIN_TITLES,
                    dominance: float = DOMINANCE) -> dict[str, str]:  # fmt: skip
    """Acronym (with its "đ") → the name it stands for, read off ``titles``; ``vocabulary``: the knowledge's folded
    words.

    >>> titles = ["Cấp giấy phép xây dựng mới", "Gia hạn giấy phép xây dựng", "Cấp lại giấy phép xây dựng",
    ...           "Điều chỉnh giấy phép xây dựng"]
    >>> derive_acronyms(titles, vocabulary={"cap", "giay", "phep", "xay", "dung"})["gpxd"]
    'giấy phép xây dựng'
    """
    by_acronym: dict[str, Counter[tuple[str, ...]]] = defaultdict(Counter)
    for title in titles:
        for name in _names(title):
            by_acronym["".join(fold(s)[0] for s in name)][name] += 1
    out: dict[str, str] = {}
    for acronym, names in by_acronym.items():
        if acronym in vocabulary and _SYLLABLE.fullmatch(acronym):
            continue
        ranked = names.most_common(2)
        (name, count), runner_up = ranked[0], ranked[1][1] if len(ranked) > 1 else 0
        if count >= min_titles and count >= dominance * runner_up:
            out["".join("đ" if s[0] == "đ" else fold(s[0]) for s in name)] = " ".join(name)
    return dict(sorted(out.items()))


def with_acronyms(lexicon: Lexicon, acronyms: Mapping[str, str]) -> Lexicon:
    """``lexicon`` plus one entry per learned acronym it does not already list (the hand meaning wins)."""
    listed = {fold(term.lower()) for entry in lexicon.entries for term in entry.terms}  # "đkkd" is listed as "dkkd"
    extra = [
        LexiconEntry(
            terms=(acronym,),
            canonical=(name,),
            note="acronym learned from the titles (bot/text/acronyms.py)",
            learned=True,
        )  # fmt: skip
        for acronym, name in acronyms.items()
        if fold(acronym) not in listed
    ]
    return Lexicon(entries=[*lexicon.entries, *extra], source=lexicon.source) if extra else lexicon
