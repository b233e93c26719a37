"""Facts that select a procedure variant, as entities: ``fact`` = under14 | foreign | lost | damaged | expired |
re_register.

Near-identical procedures differ by exactly these facts ("Cấp thẻ căn cước cho người dưới 14 tuổi", "... có
yếu tố nước ngoài", "Cấp lại" when a card is lost, "Cấp đổi" when it is damaged or expired, "Đăng ký lại khai
sinh"). The names ``under14``, ``foreign`` and ``re_register`` are the ones ``bot.answer.variants`` uses.

Hand-written rules rather than a learned extractor: the facts are few, the wording is a closed set, and each
rule can say what it must not match ("mất bao lâu" asks for a duration, "bố tôi mất" is a death). Rules run on
folded syllables (:mod:`bot.nlu.patterns`), so "bi mat cccd" and "bị mất CCCD" are the same.
"""

from __future__ import annotations

from typing import Any

from bot.nlu.patterns import FoldedLine, SyllableRule

__all__ = ["FACT_RULES", "find_facts"]

# "bố tôi mất", "ông vừa mất", "người nhà mất": a death (khai tử), not a lost paper
_FAMILY = frozenset({"bo", "me", "ba", "ma", "cha", "ong", "chong", "vo", "anh", "chi", "em", "nha", "than", "nguoi"})
_COUNTRIES = (
    "han quoc|han|trung quoc|nhat ban|nhat|my|dai loan|phap|uc|duc|tay|lao|campuchia|thai lan|singapore"
    "|canada|nga|an do|philippines|malaysia|indonesia"
)

FACT_RULES: tuple[SyllableRule, ...] = (
    SyllableRule(
        "under14",
        r"(duoi|chua du|chua toi|chua den|nho hon|be hon|chua qua) (14|muoi bon) ?(tuoi|t)"
        r"|(duoi|chua du) 14t|(?:[1-9]|1[0-3]) (tuoi|thang tuoi)|tre (em|con|nho) duoi 14",
        marks={"tuoi": ("tuổi",), "duoi": ("dưới",), "du": ("đủ",), "nho": ("nhỏ",)},
    ),
    SyllableRule(
        "foreign",
        r"yeu to nuoc ngoai|(nguoi|quoc tich|cong dan|o|tai|voi|sang|ve tu) nuoc ngoai|viet kieu"
        r"|ngoai quoc|nguoi viet (nam )?(dinh cu|song) o nuoc ngoai|kieu bao|nuoc ngoai"
        rf"|(chong|vo|nguoi|quoc tich|lay|cuoi) ({_COUNTRIES})",
        marks={
            "han": ("hàn",),
            "my": ("mỹ",),
            "nhat": ("nhật",),
            "tay": ("tây",),
            "duc": ("đức",),
            "phap": ("pháp",),
            "lao": ("lào",),
            "uc": ("úc",),
            "nga": ("nga",),
            "o": ("ở",),
            "lay": ("lấy",),
            "cuoi": ("cưới",),
            "nuoc": ("nước",),
            "ngoai": ("ngoài",),
        },
    ),
    SyllableRule(
        "lost",
        # "mất bao lâu", "mất tiền", "mất mấy ngày" measure a cost, not a loss
        r"((bi|lam|danh|da) )?mat (cap|trom)|((bi|lam|danh|da|vua|lo) )?(mat|that lac)(?! (bao|may|tien|phi|thoi|het"
        r"|nhieu|cong|khoang|chi|gi|j|ngay|tuan|thang|lau|ca|it|nua)\b)|danh roi|roi mat|bi trom|bi cuop",
        marks={
            "mat": ("mất",),
            "bi": ("bị",),
            "lam": ("làm",),
            "danh": ("đánh",),
            "roi": ("rơi",),
            "trom": ("trộm",),
            "cuop": ("cướp",),
            "da": ("đã",),
            "lo": ("lỡ",),
            "cap": ("cắp",),
        },
    ),
    SyllableRule(
        "damaged",
        r"hu hong|((bi|da|hay) )?(hong|hu|rach|gay|mo chu|mo|nhoe|bong troc|troc|nut|cong venh|nhau nat|bay mau)"
        r"(?! (gi|j|mien|dau|toi))",
        marks={
            "hong": ("hỏng",),
            "hu": ("hư",),
            "rach": ("rách",),
            "gay": ("gãy",),
            "mo": ("mờ",),
            "nhoe": ("nhòe",),
            "troc": ("tróc",),
            "nut": ("nứt",),
            "bi": ("bị",),
            "nhau": ("nhàu",),
            "nat": ("nát",),
            "mau": ("màu",),
        },
    ),
    SyllableRule(
        "expired",
        r"(het|qua|sap het|da het) (han|hieu luc)",
        marks={"het": ("hết",), "han": ("hạn",), "qua": ("quá",)},
    ),
    SyllableRule(
        "re_register",
        r"(dang ky|dang ki|dk|dky|dki) lai",
        marks={"dang": ("đăng",), "ky": ("ký", "kí"), "ki": ("kí", "ký"), "lai": ("lại",)},
    ),
)

# Typed bare, "hong", "hu", "mo" are also "không" (teencode), "hủ", "mở": a damage only right after a word
# that says so ("bị hong", "the hu").
_AMBIGUOUS_DAMAGE = frozenset({"hong", "hu", "mo"})
_DAMAGE_CUES = frozenset({"bi", "da", "hay", "the", "cccd", "bang", "so", "giay", "ho", "chieu", "cuoc", "hu"})


def find_facts(text: str) -> list[dict[str, Any]]:
    """Fact entities in ``text`` as Rasa entity dicts (entity, value, start, end), in text order.

    >>> [(e["value"], e["start"], e["end"]) for e in find_facts("cccd bi mat thi lam lai mat bao lau")]
    [('lost', 5, 11)]
    """
    line = FoldedLine(text)
    found: list[dict[str, Any]] = []
    for rule in FACT_RULES:
        for first, end, _m in line.matches(rule):
            if rule.value == "damaged" and not _damage_confirmed(line, first, end):
                continue
            if rule.value == "lost" and _is_a_death(line, first, end):
                continue
            start, stop = line.span(first, end)
            found.append({"entity": "fact", "value": rule.value, "start": start, "end": stop})
    found.sort(key=lambda e: (e["start"], -e["end"]))
    return _drop_nested(found)


def _damage_confirmed(line: FoldedLine, first: int, end: int) -> bool:
    if end - first > 1 or line.folded[first] not in _AMBIGUOUS_DAMAGE:
        return True
    typed_with_marks = line.lower[first] != line.folded[first]
    return typed_with_marks or (first > 0 and line.folded[first - 1] in _DAMAGE_CUES)


def _is_a_death(line: FoldedLine, first: int, end: int) -> bool:
    """A bare "mất" (not "bị/làm/đánh mất") shortly after a family word."""
    if line.folded[first] in ("bi", "lam", "danh") or line.folded[end - 1] != "mat":
        return False
    return any(f in _FAMILY for f in line.folded[max(0, first - 3) : first])


def _drop_nested(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the longest of overlapping mentions of the same fact."""
    kept: list[dict[str, Any]] = []
    for e in entities:
        if any(k["value"] == e["value"] and k["start"] <= e["start"] < k["end"] for k in kept):
            continue
        kept.append(e)
    return kept
