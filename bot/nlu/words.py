"""Words of a message as the NLU pipeline sees them: folded, segmented, located in the original text.

Citizens type the same question with diacritics ("đăng ký kết hôn"), without them ("dang ky ket hon"),
with misplaced tone marks, in decomposed Unicode or with abbreviations ("cccd"). :func:`message_words`
turns any of these into the same features:

* syllables come from :func:`bot.text.vietnamese.syllables` (NFC, canonical tone marks), and each word's
  features are its *folded* syllables, so both spellings give the same bag of syllables;
* a clause written with diacritics is grouped into words by underthesea (:func:`bot.text.vietnamese.segment`),
  so entity spans snap to real words ("căn_cước"); a clause typed without them stays one word per syllable,
  because underthesea groups bare syllables at random ("lam lai_cccd");
* every term of the domain lexicon adds its official wording (folded) to the word it ends on, so "cccd",
  "căn cước" and "thẻ căn cước" share "the can cuoc";
* ``start``/``end`` are offsets into the text exactly as received (before normalisation), so entity spans
  taken from these words cut the user's own text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from bot.text.lexicon import Lexicon
from bot.text.vietnamese import fold, has_diacritics, segment, syllables

__all__ = ["Word", "message_words", "syllable_spans", "written_with_diacritics"]

# Characters normalisation drops or merges: they never appear inside a syllable of the normalized text.
_SKIPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Mn", "Me", "Zs", "Zl", "Zp"})


@dataclass(frozen=True)
class Word:
    """One token for the NLU pipeline."""

    text: str  # folded syllables joined by "_": "dang_ky"
    start: int  # offsets into the original text
    end: int
    syllables: tuple[str, ...]  # folded: ("dang", "ky")
    expansion: tuple[str, ...] = ()  # folded syllables of the lexicon's official wording ending at this word

    @property
    def features(self) -> str:
        """What the count-vector featurizers see: folded syllables, then the lexicon's wording."""
        return " ".join(self.syllables + self.expansion)


def _folded_stream(text: str) -> tuple[str, list[int]]:
    """The original text folded and without the characters normalisation drops, with each char's original index."""
    chars: list[str] = []
    index: list[int] = []
    for k, ch in enumerate(text):
        if ch.isspace() or unicodedata.category(ch) in _SKIPPED_CATEGORIES:
            continue
        for c in fold(ch):
            chars.append(c)
            index.append(k)
    return "".join(chars), index


def _locate(text: str, folded_syllables: list[str]) -> list[tuple[int, int]]:
    """Original-text span of each syllable, found in order; never raises (an unfound one gets an empty span)."""
    stream, index = _folded_stream(text)
    spans: list[tuple[int, int]] = []
    cursor = 0
    last_end = 0
    for syl in folded_syllables:
        at = stream.find(syl, cursor) if syl else -1
        if at < 0:
            spans.append((last_end, last_end))
            continue
        start = index[at]
        end = index[at + len(syl) - 1] + 1
        while end < len(text) and unicodedata.combining(text[end]):  # decomposed input: keep the marks
            end += 1
        spans.append((start, end))
        cursor = at + len(syl)
        last_end = end
    return spans


def syllable_spans(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """:func:`bot.text.vietnamese.syllables` of ``text`` and the span of each in ``text`` as received.

    Extractors that match on syllables (procedure names, facts, localities) turn their matches into
    entity offsets with it.
    """
    syls = syllables(text)
    return syls, _locate(text, [fold(s) for s in syls])


def _clauses(text: str, spans: list[tuple[int, int]]) -> list[range]:
    """Runs of syllables not separated by punctuation (only spaces or hyphens between them)."""
    clauses: list[range] = []
    begin = 0
    for i in range(1, len(spans)):
        gap = text[spans[i - 1][1] : spans[i][0]]
        if gap.strip(" -\t"):
            clauses.append(range(begin, i))
            begin = i
    if spans:
        clauses.append(range(begin, len(spans)))
    return clauses


def written_with_diacritics(syls: list[str]) -> bool:
    """Real Vietnamese text marks well over half its syllables; a third is the same bar as the lexical channel's."""
    return bool(syls) and 3 * sum(1 for s in syls if has_diacritics(s)) >= len(syls)


def _group(syls: list[str]) -> list[int]:
    """Word lengths (in syllables) of one clause: underthesea's words, or one per syllable if typed bare.

    The syllables go to underthesea lowercased, so "ĐĂNG KÝ KẾT HÔN" is segmented as "đăng ký kết hôn";
    it re-tokenizes, so its grouping is used only if it kept our syllables.
    """
    if len(syls) < 2 or not written_with_diacritics(syls):
        return [1] * len(syls)
    words = [w.split("_") for w in segment(" ".join(syls))]
    if [s for w in words for s in w] != syls:
        return [1] * len(syls)
    return [len(w) for w in words]


def message_words(text: str, lexicon: Lexicon | None = None) -> list[Word]:
    """The words of ``text`` (see the module docstring); ``[]`` when it has no letters or digits.

    >>> [w.text for w in message_words("Đăng ký kết hôn")], [w.text for w in message_words("dang ky ket hon")]
    (['dang_ky', 'ket_hon'], ['dang', 'ky', 'ket', 'hon'])
    """
    syls, spans = syllable_spans(text)
    if not syls:
        return []
    folded = [fold(s) for s in syls]

    expansions: dict[int, list[str]] = {}  # syllable index -> folded official wording ending there
    if lexicon is not None:
        for match in lexicon.find(text):
            official = [fold(s) for s in syllables(match.entry.canonical[0])]
            if official != folded[match.first : match.end]:
                expansions.setdefault(match.end - 1, []).extend(official)

    words: list[Word] = []
    for clause in _clauses(text, spans):
        i = clause.start
        for length in _group(syls[clause.start : clause.stop]):
            part = range(i, i + length)
            words.append(
                Word(
                    text="_".join(folded[j] for j in part),
                    start=spans[part.start][0],
                    end=spans[part.stop - 1][1],
                    syllables=tuple(folded[j] for j in part),
                    expansion=tuple(s for j in part for s in expansions.get(j, ())),
                )
            )
            i += length
    return words
