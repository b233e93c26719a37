"""Rules over folded syllables, for the rule-based extractors (facts, choices).

A message becomes one line of folded syllables separated by single spaces ("Bị MẤT căn cước!" →
"bi mat can cuoc"), so a rule is a plain regex that ignores case, diacritics, punctuation and spacing.
Folding merges words ("mất" lost, "mặt" face, "mắt" eye are all "mat"), so a rule lists the spellings a
syllable may have *when typed with diacritics*; typed bare it always passes, as the lexicon does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from bot.nlu.words import syllable_spans, written_with_diacritics
from bot.text.vietnamese import fold, has_diacritics

__all__ = ["FoldedLine", "SyllableRule"]


@dataclass(frozen=True)
class SyllableRule:
    """A regex over the folded line; ``value`` is what a match means (a fact name, a score, an option)."""

    value: str
    pattern: str
    # folded syllable -> the spellings it may have when typed with diacritics ("mat": ("mất",))
    marks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def compiled(self) -> re.Pattern[str]:
        return _compile(self.pattern)


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """The rule's regex, matching whole syllables only."""
    return re.compile(rf"(?<![\w])(?:{pattern})(?![\w])")


class FoldedLine:
    """A message as folded syllables joined by single spaces, with each syllable's span in the original text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.syllables, self.spans = syllable_spans(text)
        self.lower = [s.lower() for s in self.syllables]
        self.folded = [fold(s) for s in self.syllables]
        self.line = " ".join(self.folded)
        self.written_with_diacritics = written_with_diacritics(self.lower)
        self._syllable_at: dict[int, int] = {}  # line offset of a syllable's first/last char -> its index
        offset = 0
        for i, syl in enumerate(self.folded):
            self._syllable_at[offset] = i
            self._syllable_at[offset + len(syl) - 1] = i
            offset += len(syl) + 1

    def __len__(self) -> int:
        return len(self.syllables)

    def span(self, first: int, end: int) -> tuple[int, int]:
        """Original-text offsets of syllables ``first`` up to ``end`` (exclusive)."""
        return self.spans[first][0], self.spans[end - 1][1]

    def surface(self, first: int, end: int) -> str:
        start, stop = self.span(first, end)
        return self.text[start:stop]

    def matches(self, rule: SyllableRule) -> Iterator[tuple[int, int, re.Match[str]]]:
        """``(first, end, match)`` for each match of the rule whose syllables respect its marks."""
        for m in rule.compiled().finditer(self.line):
            if m.end() == m.start():
                continue
            first = self._syllable_at.get(m.start())
            last = self._syllable_at.get(m.end() - 1)
            if first is None or last is None:  # the regex cut a syllable: not a word match
                continue
            if all(self._typed_as(j, rule.marks) for j in range(first, last + 1)):
                yield first, last + 1, m

    def _typed_as(self, i: int, marks: Mapping[str, tuple[str, ...]]) -> bool:
        allowed = marks.get(self.folded[i])
        return allowed is None or not has_diacritics(self.lower[i]) or self.lower[i] in allowed
