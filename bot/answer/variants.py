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
from bot.text.lexicon import Lexicon
from bot.text.vietnamese import fold

# Countries and nationalities citizens name instead of saying "nước ngoài" ("chồng tôi người Hàn Quốc", "ly hôn ở
# Mỹ"). Folded, short names are also ordinary words ("tư pháp", "y tế", "mỹ phẩm", "người anh" = elder brother),
# so they count only right after "người" / "quốc tịch" (or "ở"/"tại"/"bên"/"sang" for the common ones).
_COUNTRIES_LONG = (
    "han quoc|nhat ban|trung quoc|dai loan|hong kong|hoa ky|canada|thai lan|campuchia|singapore|malaysia"
    "|indonesia|philippines|an do|tay ban nha|ha lan|thuy si|thuy dien|na uy|dan mach|ba lan|hungary|ukraina"
    "|new zealand|trieu tien|brazil|chau au|anh quoc|vuong quoc anh"
)
_COUNTRY_PATTERN = (
    rf"\b(nguoi|quoc tich|o|tai|ben|sang|tu) ({_COUNTRIES_LONG})\b"
    r"|\b(nguoi|quoc tich) (my|phap|duc|nhat|uc|nga|y|bi|lao|sec)\b"
    r"|\b(o|tai|ben|sang) (my|phap|duc|nhat|uc|nga)\b(?! (pham|thuat|luat|te|ly|dinh))"
)
# Facts that select a variant, as (name, pattern in folded text).
_FACTS: dict[str, str] = {
    "foreign": r"yeu to nuoc ngoai|nguoi nuoc ngoai|o nuoc ngoai|voi nuoc ngoai|quoc tich nuoc ngoai|viet kieu"
    r"|nguoi viet nam dinh cu|\bnuoc ngoai\b|ngoai quoc|lay chong (tay|nuoc ngoai)|lay vo (tay|nuoc ngoai)"
    rf"|{_COUNTRY_PATTERN}|\bdinh cu o\b",
    "mobile": r"luu dong",
    "re_register": r"dang ky lai|\bdk lai\b|dang ki lai",
    "under14": r"duoi (14|muoi bon) tuoi|chua du (14|muoi bon) tuoi|duoi 14t",
    "combined": r"ket hop|lien thong",
    "border": r"bien gioi",
    "has_papers": r"da co ho so|da co giay to",
    # an organisation's variant ("… đối với tổ chức đang sử dụng đất") is not what a citizen means by default
    "organisation": r"\b(doi voi|cua|cho) to chuc\b|\bcong ty\b|\bdoanh nghiep\b|\bhop tac xa\b",
}
# A title that names ordinary citizens beside the special group ("… cho công dân Việt Nam, người nước ngoài đang
# cư trú tại Việt Nam", "… hộ gia đình, cá nhân, …, người gốc Việt Nam định cư ở nước ngoài") serves both: the
# special fact then earns its bonus when asked but is no penalty when not.
_INCLUSIVE_RE = re.compile(r"\b(ho gia dinh|ca nhan|cong dan viet nam|nguoi viet nam|trong nuoc)\b")
# An age the citizen gives ("bé 4 tuổi", "con 10 tuoi", "cháu 8 tháng") below 14 selects the under-14 variant.
_AGE_RE = re.compile(r"\b(\d{1,2})\s*(tuoi|thang tuoi|thang)\b")
_LEVELS: dict[str, str] = {
    "xa": r"\bcap xa\b|\bxa\b|\bphuong\b|\bubnd (xa|phuong)|\bdac khu\b",
    "tinh": r"\bcap tinh\b|\btinh\b|\bthanh pho truc thuoc|\bso\b (tu phap|xay dung|tai nguyen|giao thong)",
    "bo": r"trung uong|\bcap bo\b|\bbo (cong an|tu phap|quoc phong|tai chinh|xay dung)\b",
}
# What a procedure does to its object, when that is not the ordinary "apply for it" ("cấp", "đăng ký", "cấp
# mới"): a title with one of these operations is what the citizen means only if the question says something that
# asks for it. Without that, near-identical titles ("Khóa" / "Mở khóa căn cước điện tử", "Cấp lại" / "Cấp đổi",
# "Đăng ký tạm trú" / "Xóa đăng ký tạm trú", "Đăng ký hộ kinh doanh" / "Dừng thực hiện thủ tục …") tie.
# As (name, pattern in the folded title, pattern in the folded question).
_OPERATIONS: tuple[tuple[str, str, str], ...] = (
    ("unlock", r"\bmo khoa\b", r"\bmo (khoa|lai)\b"),
    ("lock", r"(?<!mo )\bkhoa\b", r"(?<!mo )\bkhoa\b|\bbi (chiem|hack|lo|danh cap)"),
    ("delete", r"^(thu tuc )?(xoa|huy)\b", r"\b(xoa|huy|bo|cat|rut ten)\b"),
    ("revoke", r"^(thu tuc )?thu hoi\b", r"\b(thu hoi|nop lai|tra lai|khong dung nua|bo khong dung|huy)\b"),
    ("stop", r"^(thu tuc )?dung\b", r"\b(dung|thoi)\b"),
    ("withdraw", r"^(thu tuc )?rut\b|\brut yeu cau\b", r"\brut\b"),
    ("suspend", r"\btam ngung\b", r"\b(tam ngung|tam dung|tam nghi|ngung|nghi kinh doanh)\b"),
    ("terminate", r"\bcham dut\b", r"\b(cham dut|ngung|thoi|ket thuc)\b"),
    ("restore", r"\bkhoi phuc\b", r"\b(khoi phuc|tim thay|tim lai|dung tiep|dung lai)\b"),
    ("renew", r"\bgia han\b", r"\b(gia han|het han|sap het han)\b"),
    ("exchange", r"\bcap doi\b|^(thu tuc )?doi\b", r"\b(doi|het han|hong|sai|cu|nhau|rach|thay doi)\b"),
    ("reissue", r"\bcap lai\b", r"(?<!bang )(?<!phep )(?<!de )(?<!nop )(?<!tra )(?<!gui )\blai\b(?! xe)|\b(mat|hong|rach|that lac|bi trom|chay)\b"),
    ("report_loss", r"\btrinh bao mat\b", r"\b(trinh bao|bao mat|khai bao mat|mat|that lac|bi trom)\b"),
    ("correct", r"\b(dinh chinh|cai chinh)\b", r"\b(sai|sua|dinh chinh|cai chinh|nham)\b"),
    ("absence", r"\btam vang\b", r"\b(tam vang|vang mat|di xa|di lam xa|di lam an)\b"),
    ("dissolve", r"\bgiai the\b", r"\b(giai the|dong cua|dep)\b"),
    ("convert", r"^(thu tuc )?chuyen doi\b", r"\b(chuyen doi|chuyen thanh|chuyen tu)\b"),
    ("first", r"\blan dau\b", r"\b(lan dau|moi|chua (co|tung)|dau tien)\b"),
    ("change", r"^(thu tuc )?(dang ky )?(thay doi|dieu chinh|cap nhat|bo sung)\b",
     r"\b(thay doi|doi|chuyen|sua|cap nhat|dieu chinh|bo sung|sai|them)\b"),
)
# Qualifiers a title states in words other than the citizen's, as (name, pattern in the folded title, pattern in the
# folded question); like a fact, a title with one is what the citizen means only if the question asks for it:
# - "online": the police's vehicle titles come in pairs, "… bằng dịch vụ công trực tuyến toàn trình" and "… một phần
#   hoặc trực tiếp"; the fully-online one is meant when the citizen asks to do it online.
# - "no_permission": "Đăng ký biến động chuyển mục đích sử dụng đất không phải xin phép …" is the exception to the
#   permission a change of land use needs; a citizen asking where to ask permission means the ordinary case.
# - "project": "… cho người nhận chuyển nhượng … trong dự án bất động sản", "nhà ở xây dựng trong dự án": a flat
#   or plot bought from a developer's project, not land bought from another citizen.
# - "no_residence", "former_resident": the judicial-record certificate for a citizen whose residence cannot be
#   established, or for a foreigner who used to live in Viet Nam, is the exception to the ordinary certificate.
_QUALIFIERS: tuple[tuple[str, str, str], ...] = (
    ("online", r"\btruc tuyen toan trinh\b|\bdich vu cong (truc tuyen )?toan trinh\b",
     r"\b(online|onl|truc tuyen|toan trinh|qua mang|tren mang|dich vu cong|dvc|vneid|internet|tai nha)\b"),
    ("no_permission", r"\bkhong (phai|can) xin phep\b", r"\bkhong (phai|can|bat buoc) xin phep\b|\bkhoi xin phep\b"),
    ("project", r"\btrong (cac )?du an\b", r"\b(du an|chung cu|can ho|chu dau tu|khu do thi)\b"),
    ("no_residence", r"\bkhong xac dinh duoc noi (thuong tru|tam tru|cu tru)\b",
     r"\bkhong (xac dinh duoc|ro|co|con) (noi |cho )?(thuong tru|tam tru|cu tru|ho khau)\b|\bkhong co ho khau\b"),
    ("former_resident", r"\bnguoi nuoc ngoai da cu tru\b",
     r"\b(da tung|tung|truoc day|truoc kia|da) (cu tru|song|o|lam viec|sinh song)\b.*\b(da ve nuoc|roi viet nam|ve nuoc)\b"
     r"|\b(da tung|truoc day|truoc kia) (cu tru|song|lam viec|sinh song) (tai|o) viet nam\b"),
)
# How a title names its submission channel ("… thực hiện bằng dịch vụ công trực tuyến toàn trình", "… bằng dịch vụ
# công trực tuyến một phần hoặc trực tiếp"): variants that differ only there share a base title.
_CHANNEL_QUALIFIER_RE = re.compile(
    r"\b(thuc hien )?(bang )?dich vu cong( truc tuyen)? (toan trinh|mot phan)( hoac truc tiep)?\b|\btruc tuyen toan trinh\b"
)
_QUALIFIER_TITLE_RE = {name: re.compile(title) for name, title, _ in _QUALIFIERS}
_QUALIFIER_QUESTION_RE = {name: re.compile(question) for name, _, question in _QUALIFIERS}
# Operations that are the ordinary case: a bonus when asked, no penalty when not.
_DEFAULT_OPERATIONS = frozenset({"first"})
# Facts a title can name beside ordinary citizens (see _INCLUSIVE_RE).
_INCLUSIVE_FACTS = frozenset({"foreign", "organisation"})
_FACT_RE = {k: re.compile(v) for k, v in _FACTS.items()}
# The police's own personnel-policy records ("Chính sách" field, decided by the Ministry of Public Security: "Cấp
# lại thẻ bảo hiểm y tế" for officers and their families, "Xét hưởng trợ cấp đối với thương binh … tại Công an cấp
# tỉnh") serve the forces, not the citizen asking about the same thing; they need the question to say so.
_FORCES_RE = re.compile(r"\b(cong an|cand|si quan|ha si quan|chien si|quan nhan|bo doi|quan doi|luc luong vu trang)\b")


def serves_forces(proc: Procedure) -> bool:
    return fold(proc.domain or "").strip() == "chinh sach" and "BCA" in (proc.decision or "").upper()

_LEVEL_RE = {k: re.compile(v) for k, v in _LEVELS.items()}
_OP_TITLE_RE = {name: re.compile(title) for name, title, _ in _OPERATIONS}
_OP_QUESTION_RE = {name: re.compile(question) for name, _, question in _OPERATIONS}
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
    """Levels the procedure is done at; a title naming one level ("thực hiện tại cấp tỉnh") wins over the field."""
    match = _TITLE_LEVEL_RE.search(fold(proc.title))
    if match:
        named = match.group(2) or match.group(3)
        return {"bo" if named in ("trung uong", "bo") else "tinh" if named in ("tinh", "huyen") else "xa"}
    return set(proc.levels) - {"khac"} or {"khac"}


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
