"""Near-identical procedure variants: commune / province / central level, with a foreign element, mobile
("lưu động"), re-registration ("đăng ký lại"), under-14s, combined procedures, border areas.

The question decides the variant when it says so; when it says nothing, a citizen most often means the
commune-level, domestic, ordinary one, so those rank first and the others are listed as alternatives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.answer.aspects import blank_aspect_phrases
from bot.knowledge.models import Procedure
from bot.ranking.weights import WEIGHTS, RankingWeights
from bot.rules import load_rules, pattern_set, pattern_sets, word_list
from bot.text.lexicon import Lexicon
from bot.text.vietnamese import fold

_RULES = load_rules("variants")
_WHERE = "variants.yml"
_COUNTRY_PATTERN = (
    rf"\b(nguoi|quoc tich|o|tai|ben|sang|tu) ({'|'.join(word_list(_RULES, 'countries', _WHERE))})\b"
    rf"|\b(nguoi|quoc tich) ({'|'.join(word_list(_RULES, 'nationalities', _WHERE))})\b"
    rf"|\b(o|tai|ben|sang) ({'|'.join(word_list(_RULES, 'countries_abroad', _WHERE))})\b(?! (pham|thuat|luat|te|ly|dinh))"
)
# Facts that select a variant (knowledge/variants.yml, "facts").
_FACT_RE = {name: rule.regex for name, rule in
            pattern_sets(_RULES["facts"], _WHERE, {"countries": _COUNTRY_PATTERN}).items()}  # fmt: skip
# A title that names ordinary citizens beside the special group serves both (knowledge/variants.yml, "inclusive").
_INCLUSIVE_RE = pattern_set("inclusive", _RULES["inclusive"], _WHERE).regex
# An age the citizen gives ("bé 4 tuổi", "con 10 tuoi", "cháu 8 tháng") below 14 selects the under-14 variant.
_AGE_RE = re.compile(r"\b(\d{1,2})\s*(tuoi|thang tuoi|thang)\b")
_LEVEL_RE = {name: rule.regex for name, rule in pattern_sets(_RULES["levels"], _WHERE).items()}
# What a procedure does to its object, and qualifiers a title states in words other than the citizen's: each as
# a pattern in the folded title and one in the folded question (knowledge/variants.yml explains each).
_OP_TITLE_RE, _OP_QUESTION_RE = (
    {name: pattern_set(name, rule[side], _WHERE).regex for name, rule in _RULES["operations"].items()}
    for side in ("title", "question")
)
_QUALIFIER_TITLE_RE, _QUALIFIER_QUESTION_RE = (
    {name: pattern_set(name, rule[side], _WHERE).regex for name, rule in _RULES["qualifiers"].items()}
    for side in ("title", "question")
)
# How a title names its submission channel ("… thực hiện bằng dịch vụ công trực tuyến toàn trình", "… bằng dịch vụ
# công trực tuyến một phần hoặc trực tiếp"): variants that differ only there share a base title.
_CHANNEL_QUALIFIER_RE = re.compile(
    r"\b(thuc hien )?(bang )?dich vu cong( truc tuyen)? (toan trinh|mot phan)( hoac truc tiep)?\b|\btruc tuyen toan trinh\b"
)
# Operations that are the ordinary case: a bonus when asked, no penalty when not.
_DEFAULT_OPERATIONS = frozenset({"first"})
# Facts a title can name beside ordinary citizens (see _INCLUSIVE_RE).
_INCLUSIVE_FACTS = frozenset({"foreign", "organisation"})
# The police's own personnel-policy records ("Chính sách" field, decided by the Ministry of Public Security: "Cấp
# lại thẻ bảo hiểm y tế" for officers and their families, "Xét hưởng trợ cấp đối với thương binh … tại Công an cấp
# tỉnh") serve the forces, not the citizen asking about the same thing; they need the question to say so
# (knowledge/variants.yml, "forces").
_FORCES_RE = pattern_set("forces", _RULES["forces"], _WHERE).regex


def serves_forces(proc: Procedure) -> bool:
    return fold(proc.domain or "").strip() == "chinh sach" and "BCA" in (proc.decision or "").upper()


_TITLE_LEVEL_RE = re.compile(r"\((?:thuc hien )?tai (cap )?(trung uong|tinh|xa|huyen|bo)[^)]*\)|cap (trung uong|tinh|xa)")
_PAREN_RE = re.compile(r"\([^)]*\)")


def facts(text: str) -> set[str]:
    folded = fold(text)
    found = {name for name, regex in _FACT_RE.items() if regex.search(folded)}
    if any(int(n) < 14 or unit != "tuoi" for n, unit in _AGE_RE.findall(folded)):
        found.add("under14")
    return found


def title_operations(title: str) -> frozenset[str]:
    folded = _PAREN_RE.sub(" ", fold(title)).strip()
    return frozenset(name for name, regex in _OP_TITLE_RE.items() if regex.search(folded))


def listed_operations(title: str) -> frozenset[str]:
    """Operations a title lists after its first one ("Cấp lại, đổi, điều chỉnh thông tin trên sổ BHXH, thẻ
    BHYT": exchange and change besides reissue): each comma- or semicolon-separated part read as a title."""
    folded = _PAREN_RE.sub(" ", fold(title))
    parts = [p.strip() for p in re.split(r"[,;/]", folded)[1:]]
    return frozenset(op for part in parts if part for op in title_operations(part)) - title_operations(title)


def asked_operations(question: str, lexicon: Lexicon | None = None) -> frozenset[str]:
    # "mất bao lâu" asks for the time, not for a lost paper: aspect phrases are not operations
    folded = blank_aspect_phrases(fold(question))
    if lexicon is not None and len(folded) == len(question):
        # A term the lexicon reads as a procedure whose official name has no operation ("chuyển đất vườn" →
        # "chuyển mục đích sử dụng đất", "chuyển hộ khẩu" → "đăng ký thường trú") names the procedure: its
        # words ("chuyển") do not ask to change something.
        chars = list(folded)
        for start, end, canonical in lexicon.spans(question):
            if not any(title_operations(c) for c in canonical):
                chars[start:end] = " " * (end - start)
        folded = "".join(chars)
    return frozenset(name for name, regex in _OP_QUESTION_RE.items() if regex.search(folded))


def question_levels(text: str) -> set[str]:
    folded = fold(text)
    return {name for name, regex in _LEVEL_RE.items() if regex.search(folded)}


def procedure_levels(proc: Procedure) -> set[str]:
    """Levels the procedure is done at; a title naming one level ("thực hiện tại cấp tỉnh") wins over the field.

    A title naming the district level ("thực hiện tại cấp huyện", gone since 1 July 2025) says nothing about
    today's level: the record's own field does (the portal's "Cấp thực hiện", e.g. "Cấp xã")."""
    match = _TITLE_LEVEL_RE.search(fold(proc.title))
    if match and (match.group(2) or match.group(3)) != "huyen":
        named = match.group(2) or match.group(3)
        return {"bo" if named in ("trung uong", "bo") else "tinh" if named == "tinh" else "xa"}
    levels: set[str] = set(proc.levels)
    levels.discard("khac")
    return levels or {"khac"}


_LEVEL_QUALIFIER_RE = re.compile(r"\b(thuc hien )?tai (cap (trung uong|tinh|xa|huyen)[, ]*)+")


def unqualified_title(title: str) -> str:
    """The folded title without what the variant preference judges: bracketed qualifiers, the submission channel
    ("… bằng dịch vụ công trực tuyến một phần hoặc trực tiếp") and the levels ("thực hiện tại cấp tỉnh, cấp xã")."""
    folded = _PAREN_RE.sub(" ", fold(title))
    folded = _CHANNEL_QUALIFIER_RE.sub(" ", folded)
    return " ".join(_LEVEL_QUALIFIER_RE.sub(" ", folded).split())


def base_title(title: str) -> str:
    """The title without variant qualifiers: variants of one procedure share it."""
    folded = _PAREN_RE.sub(" ", fold(title))
    folded = re.sub(r"^thu tuc\s+", "", folded)
    for regex in _FACT_RE.values():
        folded = regex.sub(" ", folded)
    folded = _CHANNEL_QUALIFIER_RE.sub(" ", folded)
    folded = re.sub(r"\bco\b|\bcho\b|\btai\b|\bcap (xa|tinh|trung uong)\b|\bkhu vuc\b|\bthuc hien\b", " ", folded)
    return " ".join(re.findall(r"\w+", folded))


@dataclass(frozen=True)
class VariantProfile:
    """What a procedure's title says about its variant: computed once per record (the engine keeps a list)."""

    facts: frozenset[str]
    levels: frozenset[str]
    operations: frozenset[str]
    inclusive: bool = False  # the title also names ordinary citizens (see _INCLUSIVE_RE)
    listed: frozenset[str] = frozenset()  # further operations the title lists (see listed_operations)
    forces: bool = False  # a police personnel-policy record (see serves_forces)
    # see _QUALIFIERS; one set per case of a title that enumerates cases with ";" (most titles have one case)
    qualifiers: tuple[frozenset[str], ...] = (frozenset(),)

    @classmethod
    def of(cls, proc: Procedure) -> VariantProfile:
        folded = fold(proc.title)
        inclusive = bool(_INCLUSIVE_RE.search(_PAREN_RE.sub(" ", folded)))
        # A title enumerating cases ("… mà không xác định được nơi thường trú; người nước ngoài đã cư trú …") is
        # qualified case by case: the citizen means the case whose qualifiers the question asks for.
        cases = [case for case in folded.split(";") if case.strip()] or [folded]
        qualifiers = tuple(frozenset(name for name, regex in _QUALIFIER_TITLE_RE.items() if regex.search(case))
                           for case in cases)  # fmt: skip
        return cls(frozenset(facts(proc.title)), frozenset(procedure_levels(proc)), title_operations(proc.title),
                   inclusive, listed_operations(proc.title), serves_forces(proc), qualifiers)  # fmt: skip


# Operations whose words say nothing else ("giải thể", "mở khóa", "gia hạn", "tạm vắng"): a title doing none of
# what the question asks is not what the citizen means.
_DISTINCT_OPERATIONS = frozenset({"unlock", "dissolve", "renew", "absence", "suspend", "restore", "correct"})


@dataclass(frozen=True)
class VariantPreference:
    """How well a candidate's variant fits what the question says, added to its retrieval score."""

    asked_facts: frozenset[str]
    asked_levels: frozenset[str]
    asked_operations: frozenset[str] = frozenset()
    asked_forces: bool = False
    asked_qualifiers: frozenset[str] = frozenset()

    @classmethod
    def of(cls, question: str, lexicon: Lexicon | None = None) -> VariantPreference:
        folded = fold(question)
        qualifiers = frozenset(name for name, regex in _QUALIFIER_QUESTION_RE.items() if regex.search(folded))
        return cls(frozenset(facts(question)), frozenset(question_levels(question)),
                   asked_operations(question, lexicon), bool(_FORCES_RE.search(folded)), qualifiers)

    def adjustment(self, proc: Procedure | VariantProfile, weights: RankingWeights = WEIGHTS) -> float:
        """How much the candidate's fused score moves for its variant (the weights say by how much each fact)."""
        w = weights
        profile = proc if isinstance(proc, VariantProfile) else VariantProfile.of(proc)
        score = 0.0
        score += w.fact_match * len(profile.facts & self.asked_facts)
        unasked = profile.facts - self.asked_facts
        if profile.inclusive:
            unasked -= _INCLUSIVE_FACTS
        score += w.fact_unasked * len(unasked - {"organisation"})
        score += w.organisation_unasked if "organisation" in unasked else 0.0  # a qualifier the citizen did not mention
        if profile.forces and not self.asked_forces:
            score += w.forces_unasked
        score += max(w.fact_match * len(case & self.asked_qualifiers) + w.fact_unasked * len(case - self.asked_qualifiers)
                     for case in profile.qualifiers)  # fmt: skip
        if self.asked_levels:
            score += w.level_match if profile.levels & self.asked_levels else w.level_mismatch
        else:
            # Unspecified level: the commune is where citizens go first, then the province, then a ministry.
            score += w.commune_default if "xa" in profile.levels else w.province_default if "tinh" in profile.levels else 0.0
        # a title listing several operations serves each of them ("Cấp lại, đổi, điều chỉnh …")
        if (profile.operations | profile.listed) & self.asked_operations:
            score += w.operation_match
        else:
            if profile.operations - _DEFAULT_OPERATIONS:
                score += w.operation_unasked
            if self.asked_operations & _DISTINCT_OPERATIONS:
                score += w.operation_missing  # "giải thể công ty": not "Đăng ký thành lập công ty"
        return score
