"""Procedure names: generated from the knowledge base, found in messages as entity ``procedure``.

The names are not typed by hand. :func:`procedure_names` derives them from

* procedure titles, cut to their *base name* — the title before its qualifiers ("Thủ tục đăng ký kết hôn có
  yếu tố nước ngoài" → "đăng ký kết hôn"), kept when 2–7 syllables long and saying more than generic
  administrative verbs ("cấp giấy phép" alone names nothing);
* the domain lexicon's everyday names for them: every lexicon entry whose official wording (2+ syllables)
  occurs in the base names of a few procedures ("cccd" → "thẻ căn cước", "sổ đỏ" → "giấy chứng nhận quyền sử
  dụng đất", "kết hôn" → "đăng ký kết hôn"). Wording found in many base names ("cấp lại") is an action, and
  wording found only after the base name ("yếu tố nước ngoài", a city) qualifies a procedure but names none.

``python -m bot.nlu.generate`` writes them as a Rasa lookup table with synonyms (nlu_data/lookups/). The
:class:`ProcedureNameMatcher` finds them the way the lexicon finds its terms — folded, longest first,
diacritics agreeing where typed — in one dictionary walk per message instead of one big regex, and names
the entity by its official wording (the synonym's value).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.nlu.words import syllable_spans
from bot.text.lexicon import Lexicon, LexiconEntry
from bot.text.vietnamese import normalize, syllables

__all__ = ["ProcedureNameMatcher", "ProcedureNames", "base_name", "procedure_names"]

_MIN_SYLLABLES, _MAX_SYLLABLES = 2, 7
# official wording in more titles than this is an action or a qualifier ("cấp lại", "nước ngoài"), not a name
_MAX_TITLES_PER_NAME = 40

# The title's qualifiers start at one of these (variants, levels, scope, legal source, lists).
_QUALIFIER_RE = re.compile(  # (?<!\s): starts only where a run of spaces starts, so search stays linear
    r"(?<!\s)\s*(?:\(|,|;|/|:|\s[-–]\s|\b(?:đối với|trường hợp|có yếu tố nước ngoài|tại|theo|của|cho|thực hiện|do"
    r"|thuộc|trên|ở|khi|với|để|trong|từ|cấp (?:xã|tỉnh|huyện|trung ương|bộ))\b)",
    re.IGNORECASE,
)
_TITLE_PREFIX_RE = re.compile(r"^thủ tục\s+", re.IGNORECASE)

# The administrative actions a title starts with ("cấp đổi", "đăng ký", "giải quyết hưởng"); what follows them
# is the object ("thẻ căn cước", "kết hôn", "trợ cấp thất nghiệp").
_ACTIONS = frozenset(
    tuple(a.split())
    for a in (
        "cấp",
        "cấp lại",
        "cấp đổi",
        "cấp mới",
        "đổi",
        "đăng ký",
        "đăng kí",
        "gia hạn",
        "xóa",
        "thu hồi",
        "xác nhận",
        "công nhận",
        "chứng thực",
        "giải quyết",
        "đề nghị",
        "thông báo",
        "phê duyệt",
        "thẩm định",
        "chấp thuận",
        "điều chỉnh",
        "bổ sung",
        "sửa đổi",
        "thay đổi",
        "hưởng",
        "xin",
        "hoàn",
        "trả",
        "giao",
        "thôi",
        "nhập",
        "chuyển",
        "tách",
        "hợp",
        "gộp",
        "miễn",
        "giảm",
        "tiếp nhận",
    )
)
_ACTION_SYLLABLES = frozenset(s for a in _ACTIONS for s in a)
# Administrative verbs and generic nouns: a name made only of these names no procedure.
_GENERIC = frozenset(
    "cấp lại đổi mới đăng ký kí xóa gia hạn thông báo tiếp nhận giấy phép chứng đề nghị thay bổ sung điều chỉnh "
    "thủ tục quyết định giải quyết xác văn bản hồ sơ việc các trong hoạt động công khai thu hồi phê duyệt thẩm "
    "chấp thuận sửa lập tổ chức cá nhân trình tự nộp thực hiện cáo hủy bỏ ngừng chấm dứt miễn giảm hoàn cung "
    "số sao y được người mẫu kiểm tra đánh giá xét duyệt ban hành công bố tặng hành chính liên".split()
)


def base_name(title: str) -> str:
    """A title's base name, lowercase with diacritics: the title before its first qualifier.

    >>> base_name("Thủ tục đăng ký kết hôn có yếu tố nước ngoài"), base_name("Cấp lại thẻ căn cước")
    ('đăng ký kết hôn', 'cấp lại thẻ căn cước')
    """
    text = _TITLE_PREFIX_RE.sub("", normalize(title))
    syls = syllables(_QUALIFIER_RE.split(text, maxsplit=1)[0])
    while syls and syls[-1] in ("và", "hoặc"):  # "Công nhận và, ..." cut at the comma
        syls.pop()
    return " ".join(syls)


def _names_something(name_syllables: list[str]) -> bool:
    return any(s not in _GENERIC for s in name_syllables)


def _action_ends(name_syllables: list[str]) -> list[int]:
    """Where each leading action ends: [1, 3] for "cấp đổi thẻ căn cước"... as syllable positions."""
    ends: list[int] = []
    i = 0
    while True:
        step = next((n for n in (2, 1) if tuple(name_syllables[i : i + n]) in _ACTIONS), 0)
        if not step:
            return ends
        i += step
        ends.append(i)


def _name_of(stem: list[str]) -> list[str]:
    """The longest tail of a base name that starts with an action, fits 2–7 syllables and names an object:
    "giải quyết hưởng trợ cấp thất nghiệp" (6 syllables) stays whole, a longer one loses leading actions;
    [] when the stem starts with no action ("quy trình ...", "kết nối ..." start titles but name nothing)."""
    ends = _action_ends(stem)
    for start in [0, *ends[:-1]]:
        tail = stem[start:]
        if _MIN_SYLLABLES <= len(tail) <= _MAX_SYLLABLES and ends and _names_something(stem[ends[-1] :]):
            return tail
    return []


def _names_part_of(official: list[str], stem: list[str]) -> bool:
    """``official`` ends ``stem`` after nothing but actions and generic words: "thẻ căn cước" in "cấp đổi thẻ
    căn cước", "xác nhận tình trạng hôn nhân" in "cấp giấy xác nhận ..." — not "ô tô" in "tiêu hủy xe ô tô"."""
    n = len(official)
    head = stem[: len(stem) - n]
    return stem[len(stem) - n :] == official and all(s in _GENERIC or s in _ACTION_SYLLABLES for s in head)


@dataclass
class ProcedureNames:
    """Names for the lookup table and the official wording each everyday name stands for."""

    names: list[str]  # every name to look for (lowercase, with diacritics), sorted
    synonyms: dict[str, list[str]] = field(default_factory=dict)  # official wording -> everyday names


def procedure_names(titles: Iterable[str], lexicon: Lexicon) -> ProcedureNames:
    """Derive the names from procedure titles and the lexicon (see the module docstring)."""
    stems = {base_name(t) for t in titles}
    # a name starts with an action and names an object ("quy trình", "kết nối" start titles but name nothing)
    names: set[str] = set()
    for stem in stems:
        name = _name_of(stem.split())
        if name:
            names.add(" ".join(name))

    # the lexicon's official wording counts when it names what a few base names name ("thẻ căn cước" in "cấp
    # đổi thẻ căn cước"); wording found only inside titles is a qualifier or a topic ("yếu tố nước ngoài",
    # "ô tô"), and wording shared by many procedures an action ("cấp lại")
    stem_syllables = [stem.split() for stem in stems]
    synonyms: dict[str, list[str]] = {}
    claimed: set[str] = set(names)  # a spelling maps to one value only
    for entry in lexicon.entries:
        official = " ".join(syllables(entry.canonical[0]))
        key = official.split()
        if len(key) < _MIN_SYLLABLES:
            continue
        if not 1 <= sum(1 for stem in stem_syllables if _names_part_of(key, stem)) <= _MAX_TITLES_PER_NAME:
            continue
        if not _names_something(official.split()):
            continue
        names.add(official)
        claimed.add(official)
        for term in entry.terms:
            spelling = " ".join(syllables(term))
            # terms that need context ("nhập khẩu" + "cho con") or exact diacritics ("cưới") stay in the lexicon
            if spelling and spelling not in claimed and not (entry.context or entry.exclude or entry.strict):
                claimed.add(spelling)
                names.add(spelling)
                synonyms.setdefault(official, []).append(spelling)
    return ProcedureNames(sorted(names), {k: sorted(v) for k, v in sorted(synonyms.items())})


class ProcedureNameMatcher:
    """Finds procedure names in a message (folded, longest first); the entity value is the official wording."""

    def __init__(self, names: Iterable[str], synonyms: Mapping[str, str]) -> None:
        """``synonyms`` maps a spelling (lowercase) to its value, as Rasa's ``entity_synonyms`` does."""
        entries = [
            LexiconEntry(terms=(name,), canonical=(synonyms.get(name.lower(), name),))
            for name in dict.fromkeys(n.strip() for n in names)
            if name
        ]
        self._lexicon = Lexicon(entries=entries)

    def __len__(self) -> int:
        return len(self._lexicon)

    def find(self, text: str) -> list[dict[str, Any]]:
        """Rasa entity dicts (entity, value, start, end) in text order, offsets into ``text`` as given."""
        matches = self._lexicon.find(text)
        if not matches:
            return []
        _syls, spans = syllable_spans(text)
        found: dict[tuple[int, int], dict[str, Any]] = {}
        for m in matches:
            span = (spans[m.first][0], spans[m.end - 1][1])
            found.setdefault(
                span, {"entity": "procedure", "value": m.entry.canonical[0], "start": span[0], "end": span[1]}
            )
        return list(found.values())
