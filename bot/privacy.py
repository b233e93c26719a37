"""Masking the personal data citizens type, before anything is stored or shown.

Applied once, where a message enters the assistant (`Assistant.turn`, after the text is cut at ``max_input_chars``):
the dialogue layer, the turn log, handoff transcripts, the staff console and the KPIs only ever see the masked text.
Stored platform payloads (the channel outbox's sent and failed payloads) go through `mask_json`, which masks every
string at any depth except the values of the keys its caller names as identifiers (``keep``).

What is masked (docs/security.md, "Masking personal data", has the full table with examples):

- e-mail addresses                                                              → [email]
- phone numbers: 0xx… (10–11 digits) or +84/84…, typed together or grouped by spaces, dots or dashes, and phone
  numbers read out in words of digits ("không chín không ba một hai …", with or without diacritics)
                                                                                → [số điện thoại]
- ID numbers: 12-digit căn cước / CCCD and 9-digit CMND, together or grouped by spaces or dashes
  (0012 0300 1234, 001-203-001-234); passport numbers (one letter + 7 digits: C1234567, "hộ chiếu B 1234567");
  any other run of 9 or more digits                                             → [số giấy tờ]
- full dates of birth after a birth label ("sinh ngày 12/05/1990", "ngày sinh: 1/1/1985", "sn 3-4-1990")
                                                                                → [ngày sinh]
- street addresses: a house number with a street, lane or alley word (số 12 đường Lê Lợi, ngõ 40 phố Huế, hẻm 12),
  a slash number with a name (25/3 Nguyễn Trãi), a number after "địa chỉ", and a house number followed by a
  capitalised name of 2–4 words (15 Trần Hưng Đạo, số 7 Lê Lợi)                  → [địa chỉ]

What is kept, because the assistant needs it and it identifies nobody: administrative units (phường 5, quận 3,
xã Tân Hòa), procedure codes (1.001193), fees (200.000 đồng, 1.500.000đ, 100.000.000.000 đồng), years ("sinh năm
1990", "sn 1990"), dates that are not a birth date (tháng 5/2023, ngày 25/3, hạn chót 31/12/2024), legal document
numbers (Nghị định 123/2015/NĐ-CP, Thông tư 01/2022/TT-BTP) and ordinals (cái thứ 2, Điều 5).

Linear time by construction: every pattern runs on RE2 (google-re2), whose matching time is linear in the text, and
each pattern is written so that a failed attempt looks ahead only a bounded number of characters past a match
(no pattern tail can run over the start of the next match). The decisions a pattern cannot express (boundaries
that would need look-around, whether a slash number is a date, whether a digit group belongs to a phone number)
are taken in Python over each match, looking at a bounded number of neighbouring characters, so the whole of
`mask` is linear in the length of its input. tests/test_privacy.py checks it on hostile shapes (time for n and
8n characters) and with hypothesis; scripts/mask_timing.py measures it.

`mask` is idempotent (masking a masked text changes nothing) and never lengthens a text by more than the
placeholders it inserts.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import re2

EMAIL = "[email]"
PHONE = "[số điện thoại]"
ID_NUMBER = "[số giấy tờ]"
ADDRESS = "[địa chỉ]"
BIRTH_DATE = "[ngày sinh]"
PLACEHOLDERS = (EMAIL, PHONE, ID_NUMBER, ADDRESS, BIRTH_DATE)

# RE2's \w, \d, \s and \b are ASCII only: letters are spelled \pL (with \pM for combining marks of NFD text).
_WORD_CHAR = r"\pL\pM\pN_"
# a boundary before a match: start of text or a character that cannot continue a word (group 1, put back as is)
_START = rf"(^|[^{_WORD_CHAR}])"
_WORD = r"[\pL\pM\pN]+"
_NAME_WORD = r"\p{Lu}[\p{Ll}\pM]+"  # a capitalised word: Lê, Trần, Đạo (not CCCD, not lower-case words)
_HOUSE_NUMBER = r"\d+[A-Za-z]?(?:/\d+[A-Za-z]?)*"
_HOUSE_PREFIX = r"(?i:số\s+nhà|so\s+nha|nhà\s+số|nha\s+so|nhà|nha|số|so)\s+"
_STREET = r"(?i:đường|duong|phố|pho|ngõ|ngo|ngách|ngach|hẻm|hem|kiệt|kiet|đ\.|p\.)"
_LANE = r"(?i:ngõ|ngo|ngách|ngach|hẻm|hem|kiệt|kiet)"


def _compile(pattern: str) -> re2._Regexp:
    return re2.compile(pattern)


_EMAIL_RE = _compile(r"[\pL\pM\pN_.+\-]+@[\pL\pM\pN_\-]+(?:\.[\pL\pM\pN_\-]+)+")

# --- dates of birth: a birth label, then a full date (day, month and year) ---------------------------------------
_BIRTH_LABEL = (
    r"(?i:ngày\s+tháng\s+năm\s+sinh|ngay\s+thang\s+nam\s+sinh|sinh\s+(?:vào\s+|vao\s+)?(?:ngày|ngay)|ngày\s+sinh"
    r"|ngay\s+sinh|sinh\s+nhật|sinh\s+nhat|date\s+of\s+birth|dob|ns|sn|sinh)"
)
_FULL_DATE = (
    r"(?:\d{1,2}\s?[/.\-]\s?\d{1,2}\s?[/.\-]\s?(?:\d{4}|\d{2})"
    r"|\d{1,2}\s+(?i:tháng|thang)\s+\d{1,2}\s*,?\s+(?i:năm|nam)\s+\d{4}"
    r"|(?:19|20)\d{2}-\d{1,2}-\d{1,2})"
)
_BIRTH_RE = _compile(_START + "(" + _BIRTH_LABEL + r"\s*(?:(?i:là|la)\s*)?[:\-]?\s*)" + _FULL_DATE)

# --- passports: one letter and 7 digits after a passport label; alone when written together (C1234567) -------------
_PASSPORT_RE = _compile(
    _START + r"((?i:hộ\s+chiếu|ho\s+chieu|passport|hc)(?:\s*(?i:số|so|no\.?|number))?\s*[:\-]?\s*)"
    r"[A-Za-z]\s?\d{7,8}"
)
_PASSPORT_ALONE_RE = _compile(_START + r"[A-Z]\d{7}")

# --- phone and ID numbers: runs of digit groups and digit words, classified in Python ------------------------------
# digit words, longer spellings first so that "bảy" is not read as "ba" + "y"
_DIGIT_WORDS = {
    "không": "0", "khong": "0", "một": "1", "mot": "1", "hai": "2", "bẩy": "7", "bảy": "7", "bay": "7", "ba": "3",
    "bốn": "4", "bon": "4", "năm": "5", "nam": "5", "sáu": "6", "sau": "6", "tám": "8", "tam": "8",
    "chín": "9", "chin": "9",
}
_DIGIT_WORD = "(?i:" + "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True)) + ")"
_DIGIT = r"(?:\+?\d|" + _DIGIT_WORD + ")"
# at least nine digits (or digit words), each separated from the next by at most three spaces, commas, dots or
# dashes: anything shorter cannot hold a phone or ID number, so a text of short numbers yields no match at all
_RUN_RE = _compile(_DIGIT + r"(?:[\s,.\-]{0,3}" + _DIGIT + "){8,}")
_LONG_DIGITS_RE = _compile(r"\p{Nd}{9,}")  # any script's digits: no run of 9 survives

# --- addresses ---------------------------------------------------------------------------------------------------
# a house number, a street/lane word (with its own number), then up to four name words: số 12 đường Lê Lợi
_STREET_ADDRESS_RE = _compile(
    rf"(^|[^{_WORD_CHAR}/.])((?:{_HOUSE_PREFIX})?{_HOUSE_NUMBER}\s*,?\s+{_STREET}"
    rf"(?:[\s,]*\d+[A-Za-z]?(?:/\d+)*)?(?:[\s,]*{_STREET}(?:[\s,]*\d+[A-Za-z]?(?:/\d+)*)?)*"
    rf"([\s,]+{_WORD}(?:\s+{_WORD}){{0,3}})?)"
)
# a slash number and one to four words: 25/3 Nguyễn Trãi (unless the slash number is a date or a document number)
_SLASH_ADDRESS_RE = _compile(
    rf"(^|[^{_WORD_CHAR}/.])((?:{_HOUSE_PREFIX})?(\d+[A-Za-z]?/\d+[A-Za-z]?(?:/\d+)*)(\s+{_WORD}(?:\s+{_WORD}){{0,3}}))"
)
# a number after "địa chỉ": địa chỉ 45 Trần Phú, địa chỉ: nhà 7 …
_LABELLED_ADDRESS_RE = _compile(
    _START + r"((?i:địa\s+chỉ|dia\s+chi|đ/c|đc)(?:\s*:?\s+(?:(?i:nhà|nha)\s+)?(?:(?i:là|la)\s+|:\s*)?|:))"
    rf"({_HOUSE_NUMBER}(\s+{_WORD}(?:\s+{_WORD}){{0,3}}))"
)
# a lane or alley with its number: hẻm 12, ngõ 40/2
_LANE_RE = _compile(_START + _LANE + r"\s+\d+[A-Za-z]?(?:/\d+)*")
# a house number and a capitalised name of two to four words: 15 Trần Hưng Đạo, số 7 Lê Lợi (one word alone is too
# often something else: 30 Mbps, 4G Viettel)
_NAMED_ADDRESS_RE = _compile(
    rf"(^|[^{_WORD_CHAR}/.,])((?:{_HOUSE_PREFIX})?(\d{{1,4}}[A-Za-z]?)(\s+({_NAME_WORD})(?:\s+{_NAME_WORD}){{1,3}}))"
)
# the word before a number that makes it something other than a house number (phường 5 Quận…, thứ 2 Cho…)
_NOT_A_HOUSE = frozenset(
    "phường phuong p quận quan q huyện huyen xã xa tỉnh tinh tp tổ to ấp ap thôn thon xóm xom khóm khom khu kp "
    "tháng thang ngày ngay năm nam thứ thu lớp lop điều dieu khoản khoan chương chuong mục muc điểm diem lần lan "
    "bước buoc mẫu mau phòng phong tầng tang quầy quay cửa cua bàn ban câu cau lúc luc giờ gio top định đinh dinh "
    "tư tu tuổi tuoi".split()
)
# capitalised words after a number that are not a street name (5 Tháng, 3 Quận)
_NOT_A_STREET = frozenset(
    "phường phuong quận quan huyện huyen xã xa tỉnh tinh thành thanh thị thi tp tháng thang năm nam ngày ngay "
    "tuổi tuoi giờ gio lần lan người nguoi bản ban cái cai con bộ bo tờ to hạn han".split()
)
_NETWORKS = frozenset({"2G", "3G", "4G", "5G"})  # "4G Viettel Hà Nội" is a network, not a house
# words other rules read as context ("ngày 25/3", "khai sinh 12/5/2024"): an address's name never swallows them
_DATE_WORDS = frozenset({"ngày", "ngay", "tháng", "thang", "hạn", "han"})
_CONTEXT_WORDS = _DATE_WORDS | {"khai"}
_DATE_NUMBER_RE = _compile(r"\d{1,2}/(?:19|20)\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\d+/(?:19|20)\d{2}(?:/\d+)*")
_LOOKBACK = 24  # characters looked at before a match to decide what it is (a bounded look, so linear overall)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M")


def _followed_by_word(m: re2._Match) -> bool:
    """Whether the match ends inside a word (or right before a placeholder that replaced the rest of one)."""
    end = m.end()
    return end < len(m.string) and (_is_word_char(m.string[end]) or m.string[end] == "[")


def _word_before(m: re2._Match, before: str, pos: int) -> str:
    """The word before ``pos`` in the match (lower-case), skipping spaces and punctuation but not digits.

    ``before`` is the masked text that precedes the match (see `_sub`), so a decision taken here is the same when
    the masked text is masked again.
    """
    text = before + m.string[m.start():pos]
    i = len(text)
    while i > 0 and not _is_word_char(text[i - 1]):
        i -= 1
    end = i
    while i > 0 and (text[i - 1].isalpha() or unicodedata.category(text[i - 1]).startswith("M")):
        i -= 1
    return text[i:end].lower()


def _sub(pattern: re2._Regexp, replace: Callable[[re2._Match, str], str], text: str) -> str:
    """``pattern.sub`` whose ``replace(match, before)`` also gets the last characters of the text already masked
    before the match (at most _LOOKBACK), so context decisions see what a second masking will see."""
    pieces: list[str] = []
    tail = ""
    last = 0
    for m in pattern.finditer(text):
        gap = text[last:m.start()]
        tail = (tail + gap[-_LOOKBACK:])[-_LOOKBACK:]
        out = replace(m, tail)
        pieces += (gap, out)
        tail = (tail + out[-_LOOKBACK:])[-_LOOKBACK:]
        last = m.end()
    pieces.append(text[last:])
    return "".join(pieces)


def _address(m: re2._Match, words: int, masked: int = 2, need_word: bool = False) -> str:
    """The match with its address (group ``masked``) replaced, ending before a context word among its name words
    (group ``words``) and before the start of a dotted number: "25/3 Nguyễn Trãi quận 1" is one address; in
    "0/0 tháng 5/2023" "tháng" stays to make 5/2023 a date, and in "… 1.001193" the procedure code stays whole.
    With ``need_word``, an address left without a name word is no address (the match is kept as it is)."""
    text = m.string
    spans: list[tuple[int, int]] = []
    if m.start(words) >= 0:
        position = m.start(words)
        for word in m.group(words).split():
            position = text.index(word, position)
            if word.lower() in _CONTEXT_WORDS:
                break
            spans.append((position, position + len(word)))
            position += len(word)
    end = spans[-1][1] if spans else (m.start(words) if m.start(words) >= 0 else m.end())
    if spans and text[end:end + 1] == "." and text[end + 1:end + 2].isdigit() and text[end - 1].isdigit():
        spans.pop()  # "… 0912 1.001193": the name ends before the number the code starts with
    if need_word and not spans:
        return m.group(0)
    masked_end = spans[-1][1] if spans else (m.start(words) if m.start(words) >= 0 else m.end())
    return text[m.start():m.start(masked)] + ADDRESS + text[masked_end:m.end()]


# --- the rules -----------------------------------------------------------------------------------------------------

def _birth(m: re2._Match, before: str) -> str:
    if _followed_by_word(m):
        return m.group(0)  # a longer number follows: not a date
    if m.group(2).split()[0].lower() == "sinh" and _word_before(m, before, m.start(2)) == "khai":
        return m.group(0)  # "khai sinh 12/5/2024": the registration's date, not necessarily a birth date
    return m.group(1) + m.group(2) + BIRTH_DATE


def _passport(m: re2._Match, before: str) -> str:
    if _followed_by_word(m):
        return m.group(0)
    return m.group(1) + m.group(2) + ID_NUMBER


def _passport_alone(m: re2._Match, before: str) -> str:
    if _followed_by_word(m):
        return m.group(0)
    return m.group(1) + ID_NUMBER


def _street_address(m: re2._Match, before: str) -> str:
    if _followed_by_word(m):
        # the street word was the start of another word ("12 phong"): not an address; the rest is looked at again
        # by the other rules, which run after this one
        return m.group(0)
    return _address(m, 3)


def _slash_address(m: re2._Match, before: str) -> str:
    number = m.group(3)
    if _DATE_NUMBER_RE.fullmatch(number) or _word_before(m, before, m.start(3)) in _DATE_WORDS:
        return m.group(0)  # a date (tháng 5/2023, ngày 25/3) or a document number (123/2015)
    return _address(m, 4, need_word=True)


def _labelled_address(m: re2._Match, before: str) -> str:
    return _address(m, 4, masked=3, need_word=True)


def _lane(m: re2._Match, before: str) -> str:
    if _followed_by_word(m):
        return m.group(0)
    return m.group(1) + ADDRESS


def _named_address(m: re2._Match, before: str) -> str:
    number, first = m.group(3), m.group(5).lower()
    if (_word_before(m, before, m.start(2)) in _NOT_A_HOUSE or first in _NOT_A_STREET or _followed_by_word(m)
            or (len(number) == 4 and number[:2] in ("19", "20")) or number.upper() in _NETWORKS):
        return m.group(0)
    return _address(m, 4)


# --- phone and ID numbers --------------------------------------------------------------------------------------------

@dataclass
class _Group:
    """Consecutive digits as typed: one digit token (0912), or several digit words read out together."""

    start: int
    end: int
    digits: str
    plus: bool = False
    separator: str = ""  # what separates it from the group before
    words: bool = False


_MAX_NUMBER_DIGITS = 12  # the longest number classified from its groups (căn cước); longer runs are masked whole


def _classify(groups: list[_Group], digits: str) -> str | None:
    """What the digit groups ``groups`` (their ``digits`` joined, 9 to 12 of them) are, if they are one number."""
    if digits.startswith("0") and len(digits) in (10, 11):
        return PHONE
    if digits.startswith("84") and (groups[0].plus or groups[0].digits == "84" or len(groups) == 1) \
            and len(digits) in (11, 12):
        return PHONE
    if len(digits) in (9, 12) and all(len(g.digits) >= 3 for g in groups) \
            and (digits.startswith("0") or all(g.separator != "." for g in groups[1:])):
        return ID_NUMBER  # 123 456 789, 0012 0300 1234; not a fee like 100.000.000.000
    return None


def _tokens(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    """The digit groups (with a leading +) and words of text[start:end], with their spans (one pass, no regex)."""
    tokens = []
    i = start
    while i < end:
        ch = text[i]
        if ch.isdigit() or (ch == "+" and i + 1 < end and text[i + 1].isdigit()):
            j = i + 1
            while j < end and text[j].isdigit():
                j += 1
        elif ch.isalpha():
            j = i + 1
            while j < end and (text[j].isalpha() or unicodedata.category(text[j]).startswith("M")):
                j += 1
        else:
            i += 1
            continue
        tokens.append((i, j, text[i:j]))
        i = j
    return tokens


def _groups(text: str, start: int, end: int) -> list[list[_Group]]:
    """The digit groups of one run text[start:end], split into segments that can hold one number."""
    tokens = _tokens(text, start, end)
    # a digit word cut out of a longer word ("thai" → "hai", "bao" → "ba") is not a digit
    if tokens and not tokens[0][2][-1].isdigit() and tokens[0][0] > 0 and text[tokens[0][0] - 1].isalpha():
        tokens = tokens[1:]
    if tokens and not tokens[-1][2][-1].isdigit() and tokens[-1][1] < len(text) and _is_word_char(text[tokens[-1][1]]):
        tokens = tokens[:-1]
    segments: list[list[_Group]] = [[]]
    previous_end = None
    for t_start, t_end, token in tokens:
        separator = text[previous_end:t_start] if previous_end is not None else ""
        is_word = not token[-1].isdigit()
        current = segments[-1]
        if current and current[-1].words != is_word:
            # digits read out and digits typed are separate numbers ("091-234-5678 sau 5 giờ": "sau" is "after")
            segments.append([])
            current = segments[-1]
            separator = ""
        if is_word:
            digit = _DIGIT_WORDS.get(token.lower())
            if digit is None:  # cannot happen for a run of _RUN_RE; be safe
                segments.append([])
                previous_end = None
                continue
            if current and current[-1].words and separator.strip(" ,") == "":
                current[-1].end = t_end
                if len(current[-1].digits) <= _MAX_NUMBER_DIGITS:  # longer is masked whole: no need to count on
                    current[-1].digits += digit
            else:
                current.append(_Group(t_start, t_end, digit, separator=separator, words=True))
        else:
            if current and not current[-1].words and separator not in (" ", ".", "-"):
                segments.append([])  # "1.000.000, 200.000.000" are two numbers
                current = segments[-1]
                separator = ""
            current.append(_Group(t_start, t_end, token.lstrip("+"), plus=token.startswith("+"), separator=separator))
        previous_end = t_end
    return [s for s in segments if s]


@dataclass
class _Chain:
    """Digit groups joined by dots (200.000.000, 1.001193, 0912.345.678): a number never starts or ends inside one."""

    groups: list[_Group]
    digits: str  # at most _MAX_NUMBER_DIGITS + 1 of them: longer chains are never one phone or ID number
    long: bool  # one of its groups has 9 digits or more


def _chains(segment: list[_Group]) -> list[_Chain]:
    chains: list[_Chain] = []
    for group in segment:
        if chains and group.separator == ".":
            chain = chains[-1]
            chain.groups.append(group)
            if len(chain.digits) <= _MAX_NUMBER_DIGITS:
                chain.digits = (chain.digits + group.digits)[:_MAX_NUMBER_DIGITS + 1]
            chain.long = chain.long or len(group.digits) >= 9
        else:
            chains.append(_Chain([group], group.digits[:_MAX_NUMBER_DIGITS + 1], len(group.digits) >= 9))
    return chains


def _numbers(text: str) -> str:
    """Phone and ID numbers among the runs of digits and digit words, each number replaced by its placeholder.

    Within a run, the longest sequence of whole dotted chains from each position that reads as one number wins
    (at most 12 digits, so the work per position is bounded); a chain holding 9 digits or more together is masked
    whole whatever it is."""
    pieces: list[str] = []
    last = 0
    for run in _RUN_RE.finditer(text):
        for segment in _groups(text, run.start(), run.end()):
            chains = _chains(segment)
            i = 0
            while i < len(chains):
                first = chains[i]
                if len(first.groups) == 1 and len(first.digits) < 3 and first.digits[0] not in "08":
                    i += 1  # no phone or ID number starts with a short group of other digits (1 2 3 …)
                    continue
                best: tuple[int, str] | None = None
                digits = ""
                groups: list[_Group] = []
                for j in range(i, len(chains)):
                    if len(digits) + len(chains[j].digits) > _MAX_NUMBER_DIGITS:
                        break
                    digits += chains[j].digits
                    groups += chains[j].groups
                    kind = _classify(groups, digits) if len(digits) >= 9 else None
                    if kind is not None:
                        best = (j, kind)
                if best is None and first.long:
                    best = (i, ID_NUMBER)
                if best is not None:
                    j, kind = best
                    pieces += (text[last:first.groups[0].start], kind)
                    last = chains[j].groups[-1].end
                    i = j + 1
                else:
                    i += 1
    pieces.append(text[last:])
    return "".join(pieces)


def mask(text: str) -> str:
    """The text with personal data replaced by placeholders (idempotent, linear in the length of the text)."""
    if not text:
        return text
    out = _EMAIL_RE.sub(EMAIL, text)
    out = _sub(_BIRTH_RE, _birth, out)
    out = _sub(_PASSPORT_RE, _passport, out)
    out = _sub(_PASSPORT_ALONE_RE, _passport_alone, out)
    out = _numbers(out)
    out = _sub(_STREET_ADDRESS_RE, _street_address, out)
    out = _sub(_SLASH_ADDRESS_RE, _slash_address, out)
    out = _sub(_LABELLED_ADDRESS_RE, _labelled_address, out)
    out = _sub(_LANE_RE, _lane, out)
    out = _sub(_NAMED_ADDRESS_RE, _named_address, out)
    return _LONG_DIGITS_RE.sub(ID_NUMBER, out)


def mask_json(value: object, keep: Collection[str] = frozenset()) -> object:
    """A stored payload with every string masked, at any depth (dict values, list items, a bare string).

    ``keep`` names the keys whose values are identifiers the platform needs back and must survive as they are
    (e.g. ``{"id"}`` for a Zalo sender id, a 19-digit string that would otherwise look like an ID number): the
    whole value under such a key is kept, at any depth. Dict keys, numbers, booleans and null are kept. Walks the
    payload with an explicit stack, so a deeply nested hostile payload cannot exhaust the recursion limit.
    """
    if isinstance(value, str):
        return mask(value)
    if not isinstance(value, (dict, list, tuple)):
        return value
    root: list[object] = [None]
    # each item: (container to fill, its key (a dict) or index (a list), the value to mask)
    stack: list[tuple[dict[Any, object] | list[object], Any, object]] = [(root, 0, value)]
    while stack:
        parent, slot, item = stack.pop()
        copy: object
        if isinstance(item, dict):
            fields: dict[Any, object] = {}
            for k, v in item.items():
                if k in keep:
                    fields[k] = v
                else:
                    fields[k] = None  # keeps the key order; filled below
                    stack.append((fields, k, v))
            copy = fields
        elif isinstance(item, (list, tuple)):
            items: list[object] = [None] * len(item)
            stack.extend((items, i, v) for i, v in enumerate(item))
            copy = items
        elif isinstance(item, str):
            copy = mask(item)
        else:
            copy = item
        parent[slot] = copy
    return root[0]
