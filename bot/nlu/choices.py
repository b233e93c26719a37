"""A citizen's choice among offered options and their rating, as entities with normalised values.

* ``option`` — which of the numbered alternatives the citizen picks: "2", "cái thứ hai", "số 2", "phương án 2"
  → ``"2"``; "cái đầu tiên" → ``"1"``; "cái cuối" → ``"last"``; "cái ở xã", "cấp tỉnh", "cấp bộ" → the level
  as ``bot.answer.variants`` names it (``"xa"``, ``"tinh"``, ``"bo"``). A variant named by a fact ("cái có yếu
  tố nước ngoài") comes as a ``fact`` entity (:mod:`bot.nlu.facts`).
* ``score`` — a rating from 1 to 5: "5 sao", "4 điểm", "năm sao" → the number; "10 điểm" (out of ten) → ``"5"``;
  words: "rất hài lòng", "tuyệt vời" → 5, "hài lòng", "tốt" → 4, "bình thường", "tạm được" → 3, "không hài
  lòng", "chưa tốt" → 2, "tệ", "rất tệ" → 1.

A bare "2" is an option in one turn and a score in another: only the dialogue knows which question it asked.
:func:`find_option` and :func:`find_score` both accept it; the Rasa component asks for the one that fits the
intent the classifier chose (``choose_option`` / ``rate``).
"""

from __future__ import annotations

import re
from typing import Any

from bot.nlu.patterns import FoldedLine, SyllableRule

__all__ = ["find_option", "find_score"]

_NUMBER_WORDS = {
    "mot": 1,
    "nhat": 1,
    "hai": 2,
    "ba": 3,
    "bon": 4,
    "tu": 4,
    "nam": 5,
    "sau": 6,
    "bay": 7,
    "tam": 8,
    "chin": 9,
}
_NUMBER_MARKS = {
    "mot": ("một",),
    "nhat": ("nhất",),
    "hai": ("hai",),
    "ba": ("ba",),
    "bon": ("bốn",),
    "tu": ("tư",),
    "nam": ("năm",),
    "sau": ("sáu",),
    "bay": ("bảy", "bẩy"),
    "tam": ("tám",),
    "chin": ("chín",),
}
_WORD = "|".join(_NUMBER_WORDS)

_OPTION_RULES: tuple[SyllableRule, ...] = (
    # a cue word, then a digit or a number word: "thứ 2", "số hai", "phương án 1", "lựa chọn 3"
    SyllableRule(
        "number",
        rf"(?:thu|so|phuong an|lua chon|muc|dong|loai|y|option|cai) (?:[1-9]|{_WORD})",
        marks={
            "thu": ("thứ",),
            "so": ("số",),
            "muc": ("mục",),
            "dong": ("dòng",),
            "y": ("ý",),
            "cai": ("cái",),
            **_NUMBER_MARKS,
        },
    ),
    SyllableRule("first", r"dau tien|dau", marks={"dau": ("đầu",), "tien": ("tiên",)}),
    SyllableRule("last", r"cuoi cung|cuoi|sau cung|chot", marks={"cuoi": ("cuối",), "cung": ("cùng",)}),
    SyllableRule(
        "level",
        r"(?:cap )?(?:xa|phuong|thi tran|tinh|thanh pho|trung uong|bo)",
        marks={"xa": ("xã",), "tinh": ("tỉnh",), "bo": ("bộ",), "phuong": ("phường",), "cap": ("cấp",)},
    ),
)
_LEVEL_OF = {
    "xa": "xa",
    "phuong": "xa",
    "thi tran": "xa",
    "tinh": "tinh",
    "thanh pho": "tinh",
    "trung uong": "bo",
    "bo": "bo",
}
# "cái thứ 2", "chọn số 1": the cue "cái"/"chọn" is not part of the option's span
_LEADING_FILLER = frozenset({"cai"})

_SCORE_WORDS: tuple[tuple[str, str, dict[str, tuple[str, ...]]], ...] = (
    (
        "1",
        r"(?:rat|qua|that|hoi) (?:te|kem|do)|te hai|te|kem|do te|rat khong hai long|that vong|chan qua|chan",
        {"te": ("tệ",), "kem": ("kém",), "do": ("dở",), "chan": ("chán",), "vong": ("vọng",)},
    ),
    ("2", r"(?:khong|chua|ko|k) (?:hai long|tot|on|duoc tot|hay)", {"tot": ("tốt",), "on": ("ổn",), "hay": ("hay",)}),
    (
        "5",
        r"(?:rat|qua|cuc ky|that su|hoan toan|rat la) (?:hai long|tot|hay|tuyet)|tuyet voi|xuat sac|hoan hao|tuyet",
        {"tot": ("tốt",), "tuyet": ("tuyệt",), "voi": ("vời",), "xuat": ("xuất",), "sac": ("sắc",)},
    ),
    (
        "3",
        r"binh thuong|tam duoc|tam on|tam tam|trung binh|tam|cung duoc",
        {"tam": ("tạm", "tàm"), "binh": ("bình",), "thuong": ("thường",)},
    ),
    ("4", r"hai long|kha tot|tot|on|kha|hay", {"tot": ("tốt",), "on": ("ổn",), "kha": ("khá",), "hay": ("hay",)}),
)
# digits with or without a unit ("5", "4 sao", "8/10"); number words only with one ("năm sao", "mười điểm")
_SCORE_NUMBER = SyllableRule(
    "number",
    rf"(?:[0-9]|10|[0-9]+/(?:5|10))(?: (?:sao|diem|d|tren 5|tren 10|tren muoi))?|(?:{_WORD}|muoi) (?:sao|diem)",
    marks={"sao": ("sao",), "diem": ("điểm",), "muoi": ("mười",), **_NUMBER_MARKS},
)
_BARE_NUMBER_RE = re.compile(r"\s*(?:(?:so|thu|cai|chon)\s*)?([1-9])\s*")  # one \s* per gap: linear


def _entity(line: FoldedLine, name: str, value: str, first: int, end: int) -> dict[str, Any]:
    start, stop = line.span(first, end)
    return {"entity": name, "value": value, "start": start, "end": stop}


def _number_value(folded: str) -> int | None:
    if folded.isdigit():
        return int(folded)
    if "/" in folded:  # "4/5", "8/10"
        points, _, scale = folded.partition("/")
        return round(int(points) * 5 / int(scale)) if points.isdigit() and scale in ("5", "10") else None
    if folded == "muoi":
        return 10
    return _NUMBER_WORDS.get(folded)


def find_option(text: str) -> dict[str, Any] | None:
    """The option the message picks, as a Rasa entity dict, or ``None``.

    >>> find_option("cho mình cái thứ 2 nhé")["value"], find_option("cai o xa")["value"]
    ('2', 'xa')
    """
    line = FoldedLine(text)
    if not len(line):
        return None
    if _BARE_NUMBER_RE.fullmatch(line.line):  # "2", "số 2", "chọn 2"
        digit = next(i for i, f in enumerate(line.folded) if f.isdigit())
        return _entity(line, "option", line.folded[digit], digit, digit + 1)
    for rule in _OPTION_RULES:
        for first, end, m in line.matches(rule):
            if rule.value == "number":
                if line.folded[first] in _LEADING_FILLER:
                    first += 1
                if (value := _number_value(line.folded[end - 1])) is not None:
                    return _entity(line, "option", str(value), first, end)
            elif rule.value == "first":
                return _entity(line, "option", "1", first, end)
            elif rule.value == "last":
                return _entity(line, "option", "last", first, end)
            else:
                level = m.group(0).removeprefix("cap ")
                return _entity(line, "option", _LEVEL_OF[level], first, end)
    return None


def find_score(text: str) -> dict[str, Any] | None:
    """The rating (1–5) the message gives, as a Rasa entity dict, or ``None``.

    >>> find_score("5 sao")["value"], find_score("rat hai long")["value"], find_score("hơi tệ")["value"]
    ('5', '5', '1')
    """
    line = FoldedLine(text)
    for first, end, _m in line.matches(_SCORE_NUMBER):
        value = _number_value(line.folded[first])
        if value is None:
            continue
        out_of_ten = "/" not in line.folded[first] and (
            value > 5 or bool({"10", "muoi"} & set(line.folded[first + 1 : end]))
        )
        if out_of_ten and value <= 10:
            value = max(1, round(value / 2))
        if 1 <= value <= 5:
            return _entity(line, "score", str(value), first, end)
    for score, pattern, marks in _SCORE_WORDS:
        for first, end, _m in line.matches(SyllableRule(score, pattern, marks)):
            return _entity(line, "score", score, first, end)
    return None
