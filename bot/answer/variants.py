"""Near-identical procedure variants: commune / province / central level, with a foreign element, mobile
("lưu động"), re-registration ("đăng ký lại"), under-14s, combined procedures, border areas.

The question decides the variant when it says so; when it says nothing, a citizen most often means the
commune-level, domestic, ordinary one, so those rank first and the others are listed as alternatives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.knowledge.models import Procedure
from bot.text.vietnamese import fold

# Facts that select a variant, as (name, pattern in folded text).
_FACTS: dict[str, str] = {
    "foreign": r"yeu to nuoc ngoai|nguoi nuoc ngoai|o nuoc ngoai|voi nuoc ngoai|quoc tich nuoc ngoai|viet kieu"
    r"|nguoi viet nam dinh cu|\bnuoc ngoai\b|ngoai quoc|lay chong (tay|nuoc ngoai)|lay vo (tay|nuoc ngoai)",
    "mobile": r"luu dong",
    "re_register": r"dang ky lai|\bdk lai\b|dang ki lai",
    "under14": r"duoi (14|muoi bon) tuoi|chua du (14|muoi bon) tuoi|duoi 14t",
    "combined": r"ket hop|lien thong",
    "border": r"bien gioi",
    "has_papers": r"da co ho so|da co giay to",
}
_LEVELS: dict[str, str] = {
    "xa": r"\bcap xa\b|\bxa\b|\bphuong\b|\bubnd (xa|phuong)|\bdac khu\b",
    "tinh": r"\bcap tinh\b|\btinh\b|\bthanh pho truc thuoc|\bso\b (tu phap|xay dung|tai nguyen|giao thong)",
    "bo": r"trung uong|\bcap bo\b|\bbo (cong an|tu phap|quoc phong|tai chinh|xay dung)\b",
}
_FACT_RE = {k: re.compile(v) for k, v in _FACTS.items()}
_LEVEL_RE = {k: re.compile(v) for k, v in _LEVELS.items()}
_TITLE_LEVEL_RE = re.compile(r"\((?:thuc hien )?tai (cap )?(trung uong|tinh|xa|huyen|bo)[^)]*\)|cap (trung uong|tinh|xa)")
_PAREN_RE = re.compile(r"\([^)]*\)")


def facts(text: str) -> set[str]:
    folded = fold(text)
    return {name for name, regex in _FACT_RE.items() if regex.search(folded)}


def question_levels(text: str) -> set[str]:
    folded = fold(text)
    return {name for name, regex in _LEVEL_RE.items() if regex.search(folded)}


def procedure_levels(proc: Procedure) -> set[str]:
    """Levels the procedure is done at; a title naming one level ("thực hiện tại cấp tỉnh") wins over the field."""
    match = _TITLE_LEVEL_RE.search(fold(proc.title))
    if match:
        named = match.group(2) or match.group(3)
        return {"bo" if named in ("trung uong", "bo") else "tinh" if named in ("tinh", "huyen") else "xa"}
    return set(proc.levels) - {"khac"} or {"khac"}


def base_title(title: str) -> str:
    """The title without variant qualifiers: variants of one procedure share it."""
    folded = _PAREN_RE.sub(" ", fold(title))
    folded = re.sub(r"^thu tuc\s+", "", folded)
    for regex in _FACT_RE.values():
        folded = regex.sub(" ", folded)
    folded = re.sub(r"\bco\b|\bcho\b|\btai\b|\bcap (xa|tinh|trung uong)\b|\bkhu vuc\b", " ", folded)
    return " ".join(folded.split())


@dataclass(frozen=True)
class VariantPreference:
    """How well a candidate's variant fits what the question says, added to its retrieval score."""

    asked_facts: frozenset[str]
    asked_levels: frozenset[str]

    @classmethod
    def of(cls, question: str) -> VariantPreference:
        return cls(frozenset(facts(question)), frozenset(question_levels(question)))

    def adjustment(self, proc: Procedure) -> float:
        title_facts = facts(proc.title)
        score = 0.0
        score += 0.1 * len(title_facts & self.asked_facts)
        score -= 0.1 * len(title_facts - self.asked_facts)  # a qualifier the citizen did not mention
        levels = procedure_levels(proc)
        if self.asked_levels:
            score += 0.1 if levels & self.asked_levels else -0.08
        else:
            # Unspecified level: the commune is where citizens go first, then the province, then a ministry.
            score += 0.03 if "xa" in levels else 0.015 if "tinh" in levels else 0.0
        return score
