"""Diacritics put back on a question typed without them, learned from the knowledge's own text.

Four in ten citizens' questions come without diacritics ("lam lai giay khai sinh o dau"). The lexical channel
folds both sides and does not mind; the meaning channel does: the embedding model reads "lam lai giay khai sinh" as
other words than "làm lại giấy khai sinh" (docs/evaluation.md: the dense channel alone was right on 27–51 % of such
questions, 69–75 % once they are restored). :class:`Restorer` picks, for every syllable typed without marks, the
written form that fits best between its neighbours: a syllable bigram model (interpolated with each form's overall
frequency) decoded with Viterbi over the whole message. It is counted from the records (titles, steps, papers, results, conditions,
subjects, agencies), the plan passages, the lexicon's phrases and the NLU examples — all in this project, none of
the evaluation questions — and measured on questions it was not counted from (docs/evaluation.md, "Learned from the
knowledge: acronyms and diacritics").

A syllable the text never writes with marks (an acronym, a foreign word, a number) is left as typed, and so is a
message that already has diacritics.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.text.vietnamese import fold, has_diacritics, normalize

__all__ = ["CONVERSATION_WEIGHT", "Restorer", "conversation_texts"]

_SYLLABLE = re.compile(r"[^\W\d_]+")
_CLAUSE = re.compile(r"[^\w\s]+|\n")  # counts do not run across punctuation
_START = "<s>"
_BIGRAM_WEIGHT = 0.85  # interpolation: the bigram estimate against the form's own frequency
_MAX_FORMS = 8  # written forms tried per syllable, the most frequent first
# How much more a syllable of the NLU examples and the lexicon counts than one of the records: the records are
# written in the administration's register and rarely use "tôi", "đâu", "cần", "mới"; citizens' own wording is scarce
# and counts more. Chosen on a fifth of the NLU examples held back from the counts (1 / 3 / 10 / 30: syllables right
# 0.836 / 0.892 / 0.900 / 0.913), the knee of that curve; docs/evaluation.md, "Learned from the knowledge".
CONVERSATION_WEIGHT = 10
_ANNOTATION = re.compile(r"\]\(\w+\)|\]\{[^}]*\}")


def conversation_texts(nlu_file: Path, intents: Callable[[str], bool] | None = None) -> list[str]:
    """The examples of a Rasa NLU file without their entity annotations ("làm [hộ chiếu](procedure)" → "làm hộ
    chiếu"), only of the intents ``intents`` accepts when it is given; none when the file is missing."""
    if not nlu_file.exists():
        return []
    import yaml

    data = yaml.safe_load(nlu_file.read_text(encoding="utf-8")) or {}
    out = []
    for block in data.get("nlu") or []:
        if intents is not None and not ("intent" in block and intents(str(block["intent"]))):
            continue
        for line in str(block.get("examples") or "").splitlines():
            text = _ANNOTATION.sub("", line.strip().removeprefix("- ")).replace("[", "")
            if text:
                out.append(text)
    return out


@dataclass
class Restorer:
    """Folded syllable → its written forms with counts, and bigram counts of written forms."""

    forms: dict[str, dict[str, int]] = field(default_factory=dict)
    bigrams: dict[str, dict[str, int]] = field(default_factory=dict)  # previous written form → next → count
    _totals: dict[str, int] = field(init=False, repr=False, default_factory=dict)
    _counts: dict[str, int] = field(init=False, repr=False, default_factory=dict)
    _size: int = field(init=False, repr=False, default=1)

    def __post_init__(self) -> None:
        self._totals = {prev: sum(following.values()) for prev, following in self.bigrams.items()}
        self._counts = {word: n for written in self.forms.values() for word, n in written.items()}
        self._size = max(1, sum(self._counts.values()))

    @classmethod
    def learn(
        cls, texts: Iterable[str], *, weight: int = 1, min_bigram: int = 2, base: Restorer | None = None
    ) -> Restorer:
        """Count the written forms and their bigrams in ``texts`` (each ``weight`` times), on top of ``base``'s
        counts; clauses written without any diacritics are skipped (they would teach the bare forms). Bigrams seen
        fewer than ``min_bigram`` times are dropped.

        >>> r = Restorer.learn(["Đăng ký khai sinh", "đăng ký khai sinh cho con", "Cấp lại thẻ căn cước"] * 2)
        >>> r.restore("dang ky khai sinh cho con o dau")
        'đăng ký khai sinh cho con o dau'
        >>> Restorer.learn(["con ở đâu"], weight=2, base=r).restore("Dang ky khai sinh cho con o dau?")
        'Đăng ký khai sinh cho con ở đâu?'
        """
        forms: dict[str, Counter[str]] = defaultdict(Counter)
        bigrams: dict[str, Counter[str]] = defaultdict(Counter)
        if base is not None:
            for folded, written in base.forms.items():
                forms[folded].update(written)
            for prev, following in base.bigrams.items():
                bigrams[prev].update(following)
        for text in texts:
            for clause in _CLAUSE.split(normalize(text).lower()):
                if not has_diacritics(clause):
                    continue
                prev = _START
                for syllable in _SYLLABLE.findall(clause):
                    forms[fold(syllable)][syllable] += weight
                    bigrams[prev][syllable] += weight
                    prev = syllable
        kept = {p: {w: c for w, c in nxt.items() if c >= min_bigram} for p, nxt in bigrams.items()}
        return cls(
            forms={f: dict(c.most_common(_MAX_FORMS)) for f, c in forms.items()},
            bigrams={p: nxt for p, nxt in kept.items() if nxt},
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Mapping[str, int]]]) -> Restorer:
        return cls(forms={k: dict(v) for k, v in data["forms"].items()},
                   bigrams={k: dict(v) for k, v in data["bigrams"].items()})  # fmt: skip

    def to_dict(self) -> dict[str, dict[str, dict[str, int]]]:
        return {"forms": self.forms, "bigrams": self.bigrams}

    def restore(self, text: str) -> str:
        """``text`` with the marks put back on every syllable typed without them; unchanged when it has any.

        Case is kept ("Lam" → "Làm"); what is not a syllable (numbers, punctuation, spaces) is kept as written.
        """
        text = normalize(text)
        if not self.forms or has_diacritics(text):
            return text
        out: list[str] = []
        last = 0
        for clause in _CLAUSE.finditer(text + "\n"):
            segment = text[last : clause.start()]
            out.append(self._restore_clause(segment))
            out.append(text[clause.start() : clause.end()] if clause.end() <= len(text) else "")
            last = clause.end()
        return "".join(out)

    def _restore_clause(self, clause: str) -> str:
        matches = list(_SYLLABLE.finditer(clause))
        if not matches:
            return clause
        lattice = [list(self.forms.get(m.group(0).lower(), {}) or [m.group(0).lower()]) for m in matches]
        best = self._viterbi(lattice)
        pieces, last = [], 0
        for m, word in zip(matches, best, strict=True):
            typed = m.group(0)
            pieces.append(clause[last : m.start()])
            pieces.append(word.capitalize() if typed[:1].isupper() and not typed.isupper() else
                          word.upper() if typed.isupper() and len(typed) > 1 else word)  # fmt: skip
            last = m.end()
        pieces.append(clause[last:])
        return "".join(pieces)

    def _viterbi(self, lattice: list[list[str]]) -> list[str]:
        scores: dict[str, float] = {_START: 0.0}
        back: list[dict[str, str]] = []
        for options in lattice:
            step: dict[str, float] = {}
            pointers: dict[str, str] = {}
            for word in options:
                unigram = self._unigram(word)
                best_prev, best = _START, -math.inf
                for prev, score in scores.items():
                    s = score + math.log(_BIGRAM_WEIGHT * self._bigram(prev, word) + (1 - _BIGRAM_WEIGHT) * unigram)
                    if s > best:
                        best_prev, best = prev, s
                step[word], pointers[word] = best, best_prev
            scores = step
            back.append(pointers)
        word = max(scores, key=scores.__getitem__)
        path = [word]
        for pointers in reversed(back[1:]):
            word = pointers[word]
            path.append(word)
        return path[::-1]

    def _unigram(self, word: str) -> float:
        return (self._counts.get(word, 0) + 0.5) / self._size  # a syllable never written: kept as typed

    def _bigram(self, prev: str, word: str) -> float:
        following = self.bigrams.get(prev)
        if not following:
            return 0.0
        return following.get(word, 0) / self._totals[prev]
