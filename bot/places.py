"""Places citizens name, old and new, and what they are since the reorganisation of 1 July 2025.

Since 1 July 2025 Viet Nam has 34 provinces and two levels of local government (province, commune): the districts
are gone and most communes were merged. Citizens still write the old three-level addresses ("phường Bến Nghé,
quận 1, TP HCM", "xa Tan Hiep huyen Phu Giao binh duong") and will for years. :func:`find_places` finds unit
mentions in free text — a unit word and a name ("phường Bến Nghé", "huyện Tân Uyên", "tx", "tp", "h.", "q.", "p.",
numbered wards "p12", "quận 7") or a bare province name ("Bình Dương") — groups adjacent ones into one address and
reads it against the mapping that underthesea 9.5 ships (``underthesea/address/data/mapping.json``, built from
vietnamadminunits 1.0.4; knowledge/PROVENANCE.md). The data maps every old commune (with its old district and
province) to the new commune(s) it became; districts are known only through their communes.

A reading never states a guess (:class:`Place`, ``status``):

* ``current`` — already today's unit ("Phường Sài Gòn, TP HCM");
* ``converted`` — an old unit that is now exactly one unit ("phường Bến Nghé, quận 1" → Phường Sài Gòn);
* ``split`` — an old commune divided over several new ones: all of them are listed, none is chosen (underthesea's
  own converter picks a "default" one);
* ``several`` — a former district: its area is now the communes its old communes went to, listed;
* ``unmapped`` — an old commune the data lists without a new commune (a gap in the data): only the province is told;
* ``ambiguous`` — the name fits several units (the same commune name in two provinces): the citizen is asked which;
* ``unlisted`` — a district word with a name the data has no district for ("huyện Long Điền": merged into Huyện
  Long Đất before the data's reference date): said so, never converted (underthesea's converter falls back to
  "Đặc khu Côn Đảo" for it).

Names are matched on folded syllables like the lexicon: "phuong ben nghe quan 1" works, and a syllable typed with
diacritics must agree ("hải phòng" is a city, "hai phòng" two rooms).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from bot.nlu.patterns import FoldedLine
from bot.text.vietnamese import fold, has_diacritics, syllables

__all__ = ["REORGANISED_ON", "Place", "PlaceMention", "find_places", "mapping_metadata", "place_in",
           "successor_province", "without_places"]

Level = Literal["commune", "district", "province"]
Status = Literal["current", "converted", "split", "several", "unmapped", "ambiguous", "unlisted"]

REORGANISED_ON = "2025-07-01"  # the data's effective date (mapping.json "metadata")
MAX_OPTIONS = 8  # units listed by name; beyond that the answer gives their number and asks

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
_NOT_AFTER: dict[tuple[str, ...], tuple[str, ...]] = {("quan",): ("co", "hai"), ("phuong",): ("dia", "song", "don", "da"), ("xa",): ("thi",)}
# how the data writes a unit word, folded, for names that carry it ("Phường 1", "Thị xã Tân Uyên")
_UNIT_PREFIXES = ("phuong", "xa", "thi tran", "dac khu", "quan", "huyen", "thi xa", "thanh pho", "tinh")
_ABBREVIATED: dict[tuple[str, ...], str] = {("p",): "phuong", ("tt",): "thi tran", ("q",): "quan", ("h",): "huyen", ("tx",): "thi xa"}
# district words whose name, when the data has no such district, is still read as a district the data does not
# list ("huyện Long Điền"); abbreviations are left out: "h. 3" is more likely noise than a lost district
_UNLISTED_DISTRICT_WORDS = frozenset({"quan", "huyen", "thi xa"})
# everyday names of provinces (folded or as typed) -> the old province's key in the data
_PROVINCE_ALIASES = {
    "hcm": "thanhphohochiminh",
    "tphcm": "thanhphohochiminh",
    "sài gòn": "thanhphohochiminh",
    "brvt": "tinhbariavungtau",
    "vũng tàu": "tinhbariavungtau",
    "huế": "thanhphohue",
}
_JOINERS = ("thuoc", "tai", "o", "cua")
_UNIT_TITLES = {"quan": "Quận", "huyen": "Huyện", "thi xa": "Thị xã"}  # words that may stand between two parts of one address


@dataclass(frozen=True)
class Place:
    """What a place the citizen named is today, as far as the data says (see the module docstring)."""

    written: str  # the citizen's words: "phường Bến Nghé, quận 1"
    named: str  # what they name, as the data writes it: "Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh"
    level: Level
    era: Literal["old", "new"]  # old: a unit as it was before 1 July 2025
    status: Status
    now: str | None = None  # today's unit when the data gives exactly one
    province_now: str | None = None  # today's province when the data gives one (also when the commune is unknown)
    # today's communes (split, several), or the units the name may be (ambiguous: "Xã Tân Hiệp, Huyện Phú Giáo,
    # Tỉnh Bình Dương"), each as the data writes it
    options: tuple[str, ...] = ()
    # for ``unlisted``: units of the same name the data does list ("Thị trấn Long Điền, Huyện Long Đất, …")
    namesakes: tuple[str, ...] = ()
    # the data leaves part of the area without a new commune (split, several): ``options`` are not all of them
    partial: bool = False

    @property
    def resolved(self) -> bool:
        """The data gives exactly one unit today."""
        return self.status in ("current", "converted")

    @property
    def changed(self) -> bool:
        """The citizen named a unit that no longer exists as such (an old name, or an old district)."""
        return self.era == "old" and self.named != self.now

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["options"], data["namesakes"] = list(self.options), list(self.namesakes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Place | None:
        if not data:
            return None
        data = dict(data)
        data["options"] = tuple(data.get("options") or ())
        data["namesakes"] = tuple(data.get("namesakes") or ())
        return cls(**data)


@dataclass(frozen=True)
class PlaceMention:
    """A place found in a message: its span in the text and its reading."""

    start: int
    end: int
    place: Place


# ------------------------------------------------------------------------------------------------ the data
@dataclass(frozen=True)
class _Unit:
    """One administrative unit of the data, old or new."""

    level: str  # "ward", "district", "province"
    era: str  # "old" or "new"
    name: str  # official name with its unit word: "Phường Bến Nghé"
    province: str  # province key (same era)
    district: str = ""  # old district key (old wards and districts)
    spelling: str = field(default="", compare=False, hash=False)  # the name as matched: official, short or alias


@dataclass
class _Gazetteer:
    # (level, folded name without its unit word) -> units; level "province" also holds bare short names
    names: dict[tuple[str, tuple[str, ...]], list[_Unit]]
    new_province_of: dict[str, str]  # old province key -> new province key
    province_name: dict[str, str]  # new province key -> name
    old_province_name: dict[str, str]
    district_name: dict[tuple[str, str], str]  # (old province key, old district key) -> name
    # (old province key, old district key, old ward name) -> new ward names ("" where the data has none)
    ward_targets: dict[tuple[str, str, str], list[str]]
    # (old province key, old district key) -> new ward names its communes went to ("" where the data has none)
    district_targets: dict[tuple[str, str], list[str]]
    metadata: dict[str, Any]


def _strip_unit(folded_name: str) -> tuple[str, ...]:
    for prefix in _UNIT_PREFIXES:
        if folded_name.startswith(prefix + " "):
            return tuple(folded_name[len(prefix) + 1 :].split())
    return tuple(folded_name.split())


def _folded(name: str) -> str:
    return " ".join(fold(s) for s in syllables(name))


def mapping_file() -> Path:
    """The mapping underthesea ships (read once, offline)."""
    import underthesea.address

    return Path(underthesea.address.__file__).parent / "data" / "mapping.json"


@lru_cache(maxsize=1)
def _gazetteer() -> _Gazetteer:
    data = json.loads(mapping_file().read_text("utf-8"))
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
    new_key_of_name = {info["name"]: key for key, info in data["province_names"].items()}
    for alias, key in _PROVINCE_ALIASES.items():
        name = data["old_province_names"][key]["name"]
        add("province", _Unit("province", "old", name, key), alias)
        if name in new_key_of_name:  # a province that kept its name: the alias names today's one too
            add("province", _Unit("province", "new", name, new_key_of_name[name]), alias)
    district_name: dict[tuple[str, str], str] = {}
    ward_targets: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    district_targets: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rec in data["ward_mapping"]:
        province, district = rec["old_province_key"], rec["old_district_key"]
        district_name[(province, district)] = rec["old_district"]
        add("district", _Unit("district", "old", rec["old_district"], province, district))
        if rec["old_ward"]:
            add("ward", _Unit("ward", "old", rec["old_ward"], province, district))
            targets = ward_targets[(province, district, rec["old_ward"])]
            if rec["new_ward"] not in targets:
                targets.append(rec["new_ward"])
        if rec["new_ward"]:
            add("ward", _Unit("ward", "new", rec["new_ward"], rec["new_province_key"]))
        if rec["new_ward"] not in district_targets[(province, district)]:
            district_targets[(province, district)].append(rec["new_ward"])
    return _Gazetteer(
        names=dict(names),
        new_province_of=data["province_mapping"],
        province_name={k: v["name"] for k, v in data["province_names"].items()},
        old_province_name={k: v["name"] for k, v in data["old_province_names"].items()},
        district_name=district_name,
        ward_targets=dict(ward_targets),
        district_targets={k: sorted(v, key=fold) for k, v in district_targets.items()},  # "" sorts first
        metadata=dict(data.get("metadata") or {}),
    )


def mapping_metadata() -> dict[str, Any]:
    """The data's own metadata: source package and version, effective date, counts."""
    return dict(_gazetteer().metadata)


def successor_province(old_province: str) -> str | None:
    """Today's province of an old one, by name ("Bà Rịa - Vũng Tàu" → "Thành phố Hồ Chí Minh"), or None.

    >>> successor_province("Bình Dương")
    'Thành phố Hồ Chí Minh'
    """
    gaz = _gazetteer()
    key = tuple(_folded(old_province).split())
    for unit in gaz.names.get(("province", _strip_unit(" ".join(key))), []) + gaz.names.get(("province", key), []):
        if unit.era == "old":
            return gaz.province_name[gaz.new_province_of[unit.province]]
    return None


# ------------------------------------------------------------------------------------------------ mentions
@dataclass
class _Mention:
    first: int
    end: int
    level: str  # "ward", "district", "province", "unlisted" (a district word before a name the data has no
    # district for: its units are the communes of that name, to tell the province)
    units: list[_Unit]
    unit_word: str = ""  # as the citizen wrote it, folded and unabbreviated: "phuong", "huyen"
    name: str = ""  # for "unlisted": the name as the data spells it ("Long Điền")


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
            word = tuple(line.folded[i : i + size])
            written = _ABBREVIATED.get(word, " ".join(word))
            mention = _name_at(line, i + size, levels)
            if mention is None and level == "district" and written in _UNLISTED_DISTRICT_WORDS:
                named = _name_at(line, i + size, ("ward",))
                if named:
                    spelled = " ".join(named.units[0].name.split()[-(named.end - named.first) :])
                    old = [u for u in named.units if u.era == "old"]
                    mention = replace(named, level="unlisted", units=old, name=spelled)
            if mention:
                mention.unit_word = written
                mention.first = i
        compact = line.folded[i]
        if mention is None and len(compact) > 1 and compact[0] in "pq" and compact[1:].isdigit():
            # "q1", "p12": an abbreviated unit word glued to its number
            level = "ward" if compact[0] == "p" else "district"
            units = _gazetteer().names.get((level, (compact[1:],)), [])
            mention = _Mention(i, i + 1, level, list(units), _ABBREVIATED[(compact[0],)]) if units else None
        if mention is None and not unit_word:
            mention = _name_at(line, i, ("province",))  # a bare province name: "Bình Dương"
        if mention and mention.units:
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
            if len(between) <= 1 and all(w in _JOINERS for w in between):
                groups[-1].append(m)
                continue
        groups.append([m])
    return groups


# ------------------------------------------------------------------------------------------------ readings
def _resolve(group: list[_Mention], written: str) -> Place | None:
    """The reading of one group of mentions, or None when nothing in the data fits it together.

    Tried from the most to the least literal reading: with the citizen's unit words and district, then
    without the unit words (a district that became a town: "huyện Tân Uyên" is now "Thành phố Tân Uyên"),
    then without the district (as underthesea's converter itself falls back to province + commune). The first
    reading with any unit decides, even an ambiguous one.
    """
    for unit_words, use_district in ((True, True), (False, True), (False, False)):
        by_level: dict[str, list[_Unit]] = {}
        for m in group:
            if m.level not in by_level:
                strict = unit_words and m.level not in ("province", "unlisted")
                by_level[m.level] = _with_unit_word(m.units, m.unit_word) if strict else m.units
        if not use_district and "ward" not in by_level:
            continue
        if not use_district:
            by_level.pop("district", None)
            by_level.pop("unlisted", None)
        if any(not units for units in by_level.values()):
            continue
        unlisted = next((m for m in group if m.level == "unlisted"), None) if "unlisted" in by_level else None
        place = _read(written, by_level, unlisted)
        if place is not None:
            return place
    return None


def _read(written: str, by_level: dict[str, list[_Unit]], unlisted: _Mention | None) -> Place | None:
    gaz = _gazetteer()
    provinces = by_level.get("province", [])
    old_provinces = {u.province for u in provinces if u.era == "old"}
    new_provinces = {u.province for u in provinces if u.era == "new"} | {gaz.new_province_of[p] for p in old_provinces}
    districts = by_level.get("district", [])
    district_keys = {(u.province, u.district) for u in districts}

    named_now = {u.province for u in provinces if u.era == "new"}  # provinces named as they are today

    def fits(u: _Unit) -> bool:
        """The old unit lies in the named district and province, or in an old province that is now part of the
        province named as it is today ("xã Bình Ba, TP HCM": an old commune of Bà Rịa - Vũng Tàu)."""
        if district_keys and (u.province, u.district) not in district_keys:
            return False
        return not provinces or u.province in old_provinces or gaz.new_province_of[u.province] in named_now

    def old_units(units: list[_Unit], key: Callable[[_Unit], Hashable]) -> list[_Unit]:
        return _distinct([u for u in units if u.era == "old" and fits(u)], key)

    wards = by_level.get("ward", [])
    if wards:
        old = old_units(wards, lambda u: (u.province, u.district, u.name))
        new = _distinct([u for u in wards if u.era == "new" and (not provinces or u.province in new_provinces)],
                        lambda u: (u.province, u.name))  # fmt: skip
        if districts:
            new = []  # a district is named only in old addresses
        readings = [_old_ward(written, u) for u in old] + [_new_ward(written, u) for u in new]
        # an old commune that kept its name (or merged into the new one of its name) is one reading, not two
        merged = {r.now for r in readings if r.era == "old" and r.now}
        readings = [r for r in readings if not (r.era == "new" and r.now in merged)]
        return _one_or_ask(written, "commune", readings)
    if unlisted is not None:
        namesakes = [u for u in unlisted.units if not provinces or u.province in old_provinces]
        return _unlisted(written, unlisted.unit_word, unlisted.name, namesakes, provinces)
    if districts:
        fitting = old_units(districts, lambda u: (u.province, u.district))
        return _one_or_ask(written, "district", [_district(written, u) for u in fitting])
    if len(new_provinces) == 1:
        new_key = next(iter(new_provinces))
        now = gaz.province_name[new_key]
        old_names = [gaz.old_province_name[p] for p in old_provinces]
        named = old_names[0] if len(old_names) == 1 else now
        era: Literal["old", "new"] = "old" if old_names and named != now else "new"
        return Place(written, named, "province", era, "converted" if era == "old" else "current", now, now)
    return None


def _distinct(units: list[_Unit], key: Callable[[_Unit], Hashable]) -> list[_Unit]:
    seen: dict[Hashable, _Unit] = {}
    for u in units:
        seen.setdefault(key(u), u)
    return list(seen.values())


def _one_or_ask(written: str, level: Level, readings: list[Place]) -> Place | None:
    if not readings:
        return None
    if len(readings) == 1:
        return readings[0]
    return Place(written, written, level, readings[0].era, "ambiguous", options=tuple(r.named for r in readings))


def _old_ward(written: str, unit: _Unit) -> Place:
    gaz = _gazetteer()
    named = f"{unit.name}, {gaz.district_name[(unit.province, unit.district)]}, {gaz.old_province_name[unit.province]}"
    province_now = gaz.province_name[gaz.new_province_of[unit.province]]
    every = gaz.ward_targets.get((unit.province, unit.district, unit.name), [])
    targets = tuple(t for t in every if t)
    if not targets:
        return Place(written, named, "commune", "old", "unmapped", None, province_now)
    if len(every) == 1:
        return Place(written, named, "commune", "old", "converted", f"{targets[0]}, {province_now}", province_now)
    return Place(written, named, "commune", "old", "split", None, province_now, targets, partial="" in every)


def _new_ward(written: str, unit: _Unit) -> Place:
    name = f"{unit.name}, {_gazetteer().province_name[unit.province]}"
    return Place(written, name, "commune", "new", "current", name, _gazetteer().province_name[unit.province])


def _district(written: str, unit: _Unit) -> Place:
    gaz = _gazetteer()
    named = f"{gaz.district_name[(unit.province, unit.district)]}, {gaz.old_province_name[unit.province]}"
    province_now = gaz.province_name[gaz.new_province_of[unit.province]]
    every = gaz.district_targets.get((unit.province, unit.district), [])
    targets = tuple(t for t in every if t)
    if len(every) == 1 and targets:  # a district that became one commune ("Huyện Côn Đảo" → "Đặc khu Côn Đảo")
        return Place(written, named, "district", "old", "converted", f"{targets[0]}, {province_now}", province_now)
    return Place(written, named, "district", "old", "several", None, province_now, targets, partial="" in every)


def _unlisted(written: str, unit_word: str, name: str, namesakes: list[_Unit], provinces: list[_Unit]) -> Place | None:
    """A district word before a name the data has as a commune only ("huyện Long Điền")."""
    gaz = _gazetteer()
    named = f"{_UNIT_TITLES[unit_word]} {name}"
    old_provinces = {u.province for u in provinces if u.era == "old"} or {u.province for u in namesakes}
    if len(old_provinces) != 1:
        return None if provinces else Place(written, named, "district", "old", "unlisted")
    province = next(iter(old_provinces))
    # a district is usually named after its seat, a "thị trấn": the data's town of that name tells where it was
    towns = tuple(f"{u.name}, {gaz.district_name[(u.province, u.district)]}" for u in namesakes
                  if u.province == province and _folded(u.name).startswith("thi tran "))  # fmt: skip
    province_now = gaz.province_name[gaz.new_province_of[province]]
    return Place(written, f"{named}, {gaz.old_province_name[province]}", "district", "old", "unlisted", None,
                 province_now, namesakes=towns)


def find_places(text: str) -> list[PlaceMention]:
    """Places named in ``text``, each with its reading (see the module docstring).

    >>> [m.place.now for m in find_places("tôi ở phường Bến Nghé, quận 1, TP HCM")]
    ['Phường Sài Gòn, Thành phố Hồ Chí Minh']
    """
    if not _may_name_a_place(fold(text)):
        return []
    return list(_find_places(text))


@lru_cache(maxsize=512)
def _find_places(text: str) -> tuple[PlaceMention, ...]:
    # cached: the NLU's locality extractor and the engine read the same message in one process
    line = FoldedLine(text)
    out: list[PlaceMention] = []
    for group in _groups(_mentions(line), line):
        start, end = line.span(group[0].first, group[-1].end)
        place = _resolve(group, text[start:end])
        if place is not None:
            out.append(PlaceMention(start, end, place))
    return tuple(out)


@lru_cache(maxsize=1)
def _place_cue() -> re.Pattern[str]:
    """Words without which a message names no place: unit words, "q1"/"p12", and every province name."""
    names = {" ".join(key) for level, key in _gazetteer().names if level == "province"}
    words = {" ".join(w) for w in _UNIT_WORDS} | names
    alternatives = "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))
    return re.compile(rf"(?<![\w])(?:{alternatives}|[pq]\d+)(?![\w])")


def _may_name_a_place(folded: str) -> bool:
    return bool(_place_cue().search(folded))


_SPECIFIC = {"commune": 0, "district": 1, "province": 2}


def place_in(text: str, previous: Place | None = None) -> Place | None:
    """The place a message names (the most specific one when it names several), completed by the place the
    conversation had when that one was left open ("xã Tân Hiệp" … "ở Bình Dương"), else None.

    >>> place_in("Bình Dương", place_in("xã Tân Hiệp")).now
    'Xã Phước Thành, Thành phố Hồ Chí Minh'
    """
    mentions = find_places(text)
    if not mentions:
        return None
    place = min((m.place for m in mentions), key=lambda p: _SPECIFIC[p.level])
    if previous is None or previous.resolved or previous.written == place.written:
        return place
    # the open place and the new words read as one address, the more specific first; folded, as the two parts
    # may be typed one with and one without diacritics (each was recognised on its own already)
    parts = [fold(place.written), fold(previous.written)]
    if _SPECIFIC[place.level] > _SPECIFIC[previous.level]:
        parts.reverse()
    joined = next((m.place for m in find_places(", ".join(parts))), None)
    if joined is not None and _SPECIFIC[joined.level] <= _SPECIFIC[previous.level] \
            and _openness(joined) < _openness(previous):
        return joined
    return place


def _openness(place: Place) -> int:
    """How much is left to ask: 0 for one unit today, else the number of candidates (at least 1)."""
    return 0 if place.resolved else max(1, len(place.options))


def without_places(text: str) -> str:
    """``text`` with the place mentions blanked (same length): what else the message says."""
    chars = list(text)
    for m in find_places(text):
        chars[m.start : m.end] = " " * (m.end - m.start)
    return "".join(chars)

