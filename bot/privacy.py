"""Masking the personal data citizens type, before anything is stored or shown.

Applied once, where a message enters the assistant (`Assistant.turn`): the dialogue layer, the turn log, handoff
transcripts, the staff console and the KPIs only ever see the masked text. What is masked:

- e-mail addresses                                   → [email]
- phone numbers (0xx… / +84…, with spaces, dots or dashes) → [số điện thoại]
- ID-card numbers: 12-digit căn cước / CCCD, 9-digit CMND, and any other run of 9+ digits → [số giấy tờ]
- street addresses: a house number with a street, lane or alley (số 12 đường Lê Lợi, 25/3 Nguyễn Trãi,
  ngõ 40 phố Huế, hẻm 12…)                           → [địa chỉ]

Administrative units (xã, phường, tỉnh) are not personal and are kept: the assistant needs them to answer.
Procedure codes (1.001193), fees (200.000 đồng), years and dates (tháng 5/2023, ngày 25/3) stay as they are.
"""

from __future__ import annotations

import re

EMAIL = "[email]"
PHONE = "[số điện thoại]"
ID_NUMBER = "[số giấy tờ]"
ADDRESS = "[địa chỉ]"

_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# +84 / 84 / 0, then 9 digits (mobile and landline), grouped by spaces, dots or dashes
_PHONE_RE = re.compile(r"(?<![\w.])(?:\+?84[\s.-]?|0)(?:\d[\s.-]?){8}\d(?![\w])")
_LONG_NUMBER_RE = re.compile(r"(?<![\w.,])\d{9,}(?![\w.,]\d)")
_STREET_WORDS = r"(?:đường|duong|phố|pho|ngõ|ngo|ngách|ngach|hẻm|hem|kiệt|kiet|đ\.|p\.)"
# "số 12 đường Lê Lợi", "12/3 Nguyễn Trãi", "nhà 5 ngõ 40 phố Huế": the number and up to four name words after it
_ADDRESS_RE = re.compile(
    r"(?:(?:số nhà|so nha|nhà số|nha so|nhà|nha|số|so)\s+)?"
    r"\d+[a-zA-Z]?(?:/\d+[a-zA-Z]?)*\s*,?\s+"
    r"(?:" + _STREET_WORDS + r"\s*\d*\s*[,]?\s*)+"
    r"(?:[^\W_]+(?:\s+|(?=[,.;!?])|$)){0,4}",
    re.IGNORECASE | re.UNICODE,
)
_SLASH_ADDRESS_RE = re.compile(
    r"(?:(?:số nhà|so nha|nhà số|số|so)\s+)?\b\d+[a-zA-Z]?/\d+[a-zA-Z]?(?:/\d+)*\s+"
    r"(?:[^\W_]+(?:\s+|(?=[,.;!?])|$)){1,4}",
    re.UNICODE,
)
_LABELLED_ADDRESS_RE = re.compile(
    r"(?<=\b(?:chỉ|chi))(\s*:?\s+(?:nhà\s+|nha\s+)?(?:là\s+|la\s+|:\s*)?|:)\d+[a-zA-Z]?(?:/\d+[a-zA-Z]?)*\s+"
    r"(?:[^\W_]+(?:\s+|(?=[,.;!?])|$)){1,4}",
    re.IGNORECASE | re.UNICODE,
)
# "tháng 5/2023 tỷ lệ …", "ngày 25/3 nộp …", "12/05/2024 …": a date, not a house number ("chuyển đến 25/3 Lê Lợi"
# is an address, so only the words that name a day or a month count)
_DATE_BEFORE_RE = re.compile(r"\b(?:ngày|ngay|tháng|thang|hạn|han)\s*$", re.IGNORECASE)
_DATE_NUMBER_RE = re.compile(r"\d{1,2}/(?:19|20)\d{2}|\d{1,2}/\d{1,2}/\d{2,4}")
_LANE_RE = re.compile(r"\b(?:ngõ|ngo|ngách|ngach|hẻm|hem|kiệt|kiet)\s+\d+[a-zA-Z]?(?:/\d+)*", re.IGNORECASE)


def _is_date(m: re.Match[str]) -> bool:
    number = re.search(r"\d+[a-zA-Z]?(?:/\d+[a-zA-Z]?)+", m.group(0))
    if number is None:
        return False
    before = m.string[: m.start() + number.start()]
    return bool(_DATE_NUMBER_RE.fullmatch(number.group(0)) or _DATE_BEFORE_RE.search(before))


def mask(text: str) -> str:
    """The text with personal data replaced by placeholders (idempotent)."""
    if not text or not any(ch.isdigit() or ch == "@" for ch in text):
        return text  # nothing to mask without a digit or an @ (fast path for most questions)
    out = _EMAIL_RE.sub(EMAIL, text)
    out = _ADDRESS_RE.sub(lambda m: ADDRESS + (" " if m.group(0).endswith(" ") else ""), out)
    out = _SLASH_ADDRESS_RE.sub(
        lambda m: m.group(0) if _is_date(m) else ADDRESS + (" " if m.group(0).endswith(" ") else ""), out)
    out = _LABELLED_ADDRESS_RE.sub(lambda m: m.group(1) + ADDRESS + (" " if m.group(0).endswith(" ") else ""), out)
    out = _LANE_RE.sub(ADDRESS, out)
    out = _PHONE_RE.sub(PHONE, out)
    out = _LONG_NUMBER_RE.sub(ID_NUMBER, out)
    return out


def mask_json(value: object, keys: frozenset[str] = frozenset({"text", "caption", "data"})) -> object:
    """A platform payload with the citizen's words masked (values under ``keys``, at any depth)."""
    if isinstance(value, dict):
        return {k: (mask(v) if k in keys and isinstance(v, str) else mask_json(v, keys)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(v, keys) for v in value]
    return value
