"""Localities in a message, named as today's administrative units: entity ``locality``.

Since 1 July 2025 Viet Nam has 34 provinces and two levels (province, commune); citizens still write the old
three-level addresses ("phường Bến Nghé, quận 1, TP HCM"). :func:`find_localities` finds unit mentions in
free text — a unit word and a name ("phường Bến Nghé", "huyện Tân Uyên", "tp hcm") or a bare province name
("Bình Dương") — groups adjacent ones into one address, and names it as today's unit: old addresses go through
underthesea's ``convert_address`` (built from its bundled mapping, offline), addresses already in new units
are kept. The entity value is the new name ("Phường Sài Gòn, Thành phố Hồ Chí Minh"; "Thành phố Hồ Chí Minh"
for a province alone). A commune named without its province is kept only when its name is unique.

Names are matched on folded syllables like the lexicon: "phuong ben nghe quan 1" works, and a syllable typed
with diacritics must agree ("hải phòng" is a city, "hai phòng" two rooms).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.nlu.patterns import FoldedLine
from bot.text.vietnamese import fold, has_diacritics, syllables

__all__ = ["Locality", "find_localities"]

_MAX_NAME = 5  # syllables in the longest unit name after its unit word

# unit word (folded syllables) -> the level it introduces
_UNIT_WORDS: dict[tuple[str, ...], str] = {
    ("phuong",): "ward",
    ("xa",): "ward",
    ("thi", "tran"): "ward",
    ("dac", "khu"): "ward",
    ("p",): "ward",
    ("tt",): "ward",
    ("quan",): "district",
    ("huyen",): "district",
    ("thi", "xa"): "district",
    ("q",): "district",
    ("h",): "district",
    ("tx",): "district",
    ("tinh",): "province",
    ("thanh", "pho"): "district_or_province",
    ("tp",): "district_or_province",
}
# a unit word right after these is part of another word: "cơ quan", "hải quan", "địa phương", "song phương"
_NOT_AFTER = {("quan",): ("co", "hai"), ("phuong",): ("dia", "song", "don", "da"), ("xa",): ("thi",)}
# how the data writes a unit word, folded, for names that carry it ("Phường 1", "Thị xã Tân Uyên")
_UNIT_PREFIXES = ("phuong", "xa", "thi tran", "dac khu", "quan", "huyen", "thi xa", "thanh pho", "tinh")
_ABBREVIATED = {("p",): "phuong", ("tt",): "thi tran", ("q",): "quan", ("h",): "huyen", ("tx",): "thi xa"}
# everyday names of provinces (folded) -> the old province's key in underthesea's data
_PROVINCE_ALIASES = {
    "hcm": "thanhphohochiminh",
    "tphcm": "thanhphohochiminh",
    "sài gòn": "thanhphohochiminh",
    "brvt": "tinhbariavungtau",
    "vũng tàu": "tinhbariavungtau",
    "huế": "thanhphohue",
}


@dataclass(frozen=True)
class _Unit:
    """One administrative unit of the data, old or new."""

    level: str  # "ward", "district", "province"
    era: str  # "old" (before 1 July 2025) or "new"
    name: str  # official name with its unit word: "Phường Bến Nghé"
    province: str  # old or new province key (same era)
    district: str = ""  # old district key (old wards and districts)
    record: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    spelling: str = field(default="", compare=False, hash=False)  # the name as matched: official, short or alias


@dataclass(frozen=True)
class Locality:
    """A locality found in a message: its span and today's name."""

    start: int
    end: int
    value: str  # today's unit: "Phường Sài Gòn, Thành phố Hồ Chí Minh"
    old: str = ""  # the old address it was converted from, "" when written in today's units

    def entity(self) -> dict[str, Any]:
        return {"entity": "locality", "value": self.value, "start": self.start, "end": self.end}


@dataclass
class _Gazetteer:
    # (level, folded name without its unit word) -> units; level "province" also holds bare short names
    names: dict[tuple[str, tuple[str, ...]], list[_Unit]]
    new_province_of: dict[str, str]  # old province key -> new province key
    province_name: dict[str, str]  # new province key -> name
    old_province_name: dict[str, str]


def _strip_unit(folded_name: str) -> tuple[str, ...]:
    for prefix in _UNIT_PREFIXES:
        if folded_name.startswith(prefix + " "):
            return tuple(folded_name[len(prefix) + 1 :].split())
    return tuple(folded_name.split())


def _folded(name: str) -> str:
    return " ".join(fold(s) for s in syllables(name))


@lru_cache(maxsize=1)
def _gazetteer() -> _Gazetteer:
    import underthesea.address

    data = json.loads((Path(underthesea.address.__file__).parent / "data" / "mapping.json").read_text("utf-8"))
    names: dict[tuple[str, tuple[str, ...]], list[_Unit]] = defaultdict(list)

    def add(level: str, unit: _Unit, short: str | None = None) -> None:
        key = (level, _strip_unit(_folded(unit.name)) if short is None else tuple(_folded(short).split()))
        if key[1] and unit not in names[key]:
            names[key].append(replace(unit, spelling=short or unit.name))

    for key, info in data["old_province_names"].items():
        unit = _Unit("province", "old", info["name"], key)
        add("province", unit)
        add("province", unit, info["short"])
    for key, info in data["province_names"].items():
        unit = _Unit("province", "new", info["name"], key)
        add("province", unit)
        add("province", unit, info["short"])
    for alias, key in _PROVINCE_ALIASES.items():
        add("province", _Unit("province", "old", data["old_province_names"][key]["name"], key), alias)
    for rec in data["ward_mapping"]:
        add("district", _Unit("district", "old", rec["old_district"], rec["old_province_key"], rec["old_district_key"]))
        if rec["old_ward"]:
            add("ward", _Unit("ward", "old", rec["old_ward"], rec["old_province_key"], rec["old_district_key"], rec))
        if rec["new_ward"]:
            add("ward", _Unit("ward", "new", rec["new_ward"], rec["new_province_key"]))
    return _Gazetteer(
        names=dict(names),
        new_province_of=data["province_mapping"],
        province_name={k: v["name"] for k, v in data["province_names"].items()},
        old_province_name={k: v["name"] for k, v in data["old_province_names"].items()},
    )


@dataclass
class _Mention:
    first: int
    end: int
    level: str
    units: list[_Unit]
    unit_word: str = ""  # as the citizen wrote it, folded and unabbreviated: "phuong", "huyen"


def _agrees(line: FoldedLine, first: int, end: int, spelling: str) -> bool:
    """The typed name is spelled as the unit's: exactly, in a message written with diacritics, else wherever
    a syllable was typed with them ("có hai phòng" is no city)."""
    wanted = [s.lower() for s in syllables(spelling)][-(end - first) :]
    typed = line.lower[first:end]
    if line.written_with_diacritics:
        return typed == wanted
    return all(not has_diacritics(t) or t == w for t, w in zip(typed, wanted, strict=True))


def _name_at(line: FoldedLine, i: int, levels: tuple[str, ...]) -> _Mention | None:
    """The longest unit name of one of ``levels`` starting at syllable ``i``."""
    gaz = _gazetteer()
    for n in range(min(_MAX_NAME, len(line) - i), 0, -1):
        key = tuple(line.folded[i : i + n])
        for level in levels:
            units = [u for u in gaz.names.get((level, key), []) if _agrees(line, i, i + n, u.spelling)]
            if units:
                return _Mention(i, i + n, level, units)
    return None


def _unit_word_at(line: FoldedLine, i: int) -> tuple[int, str] | None:
    """(size, level) of a unit word starting at syllable ``i`` ("phường", "thị xã", "tp"), or None."""
    for size in (2, 1):
        word = tuple(line.folded[i : i + size])
        if len(word) == size and word in _UNIT_WORDS and not (i and line.folded[i - 1] in _NOT_AFTER.get(word, ())):
            return size, _UNIT_WORDS[word]
    return None


def _with_unit_word(units: list[_Unit], unit_word: str) -> list[_Unit]:
    """Units written with the citizen's unit word: "phường Tân Hiệp" is not the commune "Xã Tân Hiệp"."""
    return [u for u in units if not unit_word or _folded(u.name).startswith(unit_word + " ")]


def _mentions(line: FoldedLine) -> list[_Mention]:
    found: list[_Mention] = []
    i = 0
    while i < len(line):
        mention = None
        unit_word = _unit_word_at(line, i)
        if unit_word:
            size, level = unit_word
            levels = ("district", "province") if level == "district_or_province" else (level,)
            mention = _name_at(line, i + size, levels)
            if mention:
                word = tuple(line.folded[i : i + size])
                mention.unit_word = _ABBREVIATED.get(word, " ".join(word))
                mention.first = i
        compact = line.folded[i]
        if mention is None and len(compact) > 1 and compact[0] in "pq" and compact[1:].isdigit():
            # "q1", "p12": an abbreviated unit word glued to its number
            level = "ward" if compact[0] == "p" else "district"
            units = _gazetteer().names.get((level, (compact[1:],)), [])
            unit_word = _ABBREVIATED[(compact[0],)]
            mention = _Mention(i, i + 1, level, list(units), unit_word) if units else None
        if mention is None and not unit_word:
            mention = _name_at(line, i, ("province",))  # a bare province name: "Bình Dương"
        if mention:
            found.append(mention)
            i = mention.end
        else:
            i += 1
    return found


def _groups(mentions: list[_Mention], line: FoldedLine) -> list[list[_Mention]]:
    """Adjacent mentions (nothing or "thuộc"/"tại" between them) form one address."""
    groups: list[list[_Mention]] = []
    for m in mentions:
        if groups:
            prev = groups[-1][-1]
            between = line.folded[prev.end : m.first]
            if len(between) <= 1 and all(w in ("thuoc", "tai", "o", "cua") for w in between):
                groups[-1].append(m)
                continue
        groups.append([m])
    return groups


def _resolve(group: list[_Mention]) -> tuple[str, str] | None:
    """(today's name, old address) of one group of mentions, or None when it stays ambiguous.

    Tried from the most to the least literal reading: with the citizen's unit words and district, then
    without the unit words (a district that became a town: "huyện Tân Uyên" is now "Thành phố Tân Uyên"),
    then without the district (as convert_address itself falls back to province + commune).
    """
    for unit_words, use_district in ((True, True), (False, True), (False, False)):
        by_level: dict[str, list[_Unit]] = {}
        for m in group:
            if m.level not in by_level:
                units = _with_unit_word(m.units, m.unit_word) if unit_words and m.level != "province" else m.units
                by_level[m.level] = units
        if not use_district and "ward" not in by_level:
            continue
        if not use_district:
            by_level.pop("district", None)
        if any(not units for units in by_level.values()):
            continue
        resolved = _resolve_units(by_level.get("ward", []), by_level.get("district", []), by_level.get("province", []))
        if resolved:
            return resolved
    return None


def _resolve_units(wards: list[_Unit], districts: list[_Unit], provinces: list[_Unit]) -> tuple[str, str] | None:
    from underthesea import convert_address

    gaz = _gazetteer()
    old_provinces = {u.province for u in provinces if u.era == "old"}
    new_provinces = {u.province for u in provinces if u.era == "new"} | {gaz.new_province_of[p] for p in old_provinces}
    district_keys = {(u.province, u.district) for u in districts}

    def fits(u: _Unit) -> bool:
        if district_keys and (u.province, u.district) not in district_keys:
            return False
        return not provinces or u.province in old_provinces

    if wards:
        old_wards = [u for u in wards if u.era == "old" and fits(u)]
        new_wards = [u for u in wards if u.era == "new" and (not provinces or u.province in new_provinces)]
        if len({(u.province, u.district, u.name) for u in old_wards}) == 1 and (
            districts or provinces or not new_wards
        ):
            rec = old_wards[0].record or {}
            old = f"{rec['old_ward']}, {rec['old_district']}, {rec['old_province']}"
            result = convert_address(old)
            return (result.converted, old) if result.converted else None
        if len({(u.province, u.name) for u in new_wards}) == 1 and not districts:
            unit = new_wards[0]
            return f"{unit.name}, {gaz.province_name[unit.province]}", ""
        return None
    if districts:
        fitting = [u for u in districts if fits(u)]
        if len({u.province for u in fitting}) == 1:
            old_province = fitting[0].province
            old = f"{fitting[0].name}, {gaz.old_province_name[old_province]}"
            return gaz.province_name[gaz.new_province_of[old_province]], old
        return None
    if len(new_provinces) == 1:
        new = new_provinces.pop()
        old = next((gaz.old_province_name[p] for p in old_provinces), "")
        return gaz.province_name[new], old if old != gaz.province_name[new] else ""
    return None


def find_localities(text: str) -> list[Locality]:
    """Localities in ``text``, each named as today's unit (see the module docstring).

    >>> [loc.value for loc in find_localities("tôi ở phường Bến Nghé, quận 1, TP HCM")]
    ['Phường Sài Gòn, Thành phố Hồ Chí Minh']
    """
    line = FoldedLine(text)
    out: list[Locality] = []
    for group in _groups(_mentions(line), line):
        resolved = _resolve(group)
        if resolved:
            start, end = line.span(group[0].first, group[-1].end)
            out.append(Locality(start, end, resolved[0], resolved[1]))
    return out
