"""Procedure ingestion: turn the two procedure source files into clean `Procedure` records.

Sources (see shared/data/SOURCES.md for provenance):

* ``national_procedures.jsonl.gz`` — pages of the National Public Service Portal. The crawler flattened every
  table into one string with no separators ("Hình thức nộpThời gianPhí, lệ phíMô tảTrực tiếp7 Ngày làm
  việcLệ phí : ..."), and in some records it cut the page into fields at the wrong place. We therefore
  re-cut the page (``raw_text``) at its section headings and re-parse each flattened table with regexes
  anchored on the portal's fixed vocabulary (channel labels, time units, fee words, copy counts, legal
  document numbers).
* ``defence_procedures.jsonl.gz`` — Ministry of Defence procedures whose tables are already structured; they
  only need mapping into the same schema.

Every parser reports the fields it could not parse *cleanly* in ``Procedure.parse_issues``; what "clean"
means is spelled out next to each parser, and ``parse_report`` / ``python -m bot.knowledge.procedures
--report`` summarise it over the whole corpus. Only the standard library is used on purpose: this runs in
the ingestion step, before the heavy stack is installed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.knowledge.models import ChannelKind, LegalBasis, Level, Procedure, RequiredDocument, SubmissionChannel

NATIONAL_FILE = "procedures/national_procedures.jsonl.gz"
DEFENCE_FILE = "procedures/defence_procedures.jsonl.gz"

NO_INFO = "Không có thông tin"

# The fields whose parsing is checked; "core" ones are what answers "how / how much / how long / which papers".
CORE_FIELDS = ("channels", "documents", "legal_basis")
CHECKED_FIELDS = (*CORE_FIELDS, "results", "steps")


# --------------------------------------------------------------------------------------------------
# Small text helpers
# --------------------------------------------------------------------------------------------------


def _clean(value: object) -> str:
    """Strip a scalar field and treat the portal's "no information" placeholder as empty."""
    if value is None:
        return ""
    text = re.sub(r"[ \t\u00a0]+", " ", str(value)).strip()
    return "" if text.rstrip(".") in (NO_INFO, "") else text


def _nfc(value: Any) -> Any:  # noqa: ANN401 - any JSON value, returned in the same shape
    """NFC-normalise every string in a record: about 600 records spell Vietnamese with combining marks
    ("PHU" + U+0323), which no vocabulary regex below would match."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {k: _nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    return value


def _squash(text: str) -> str:
    """Collapse all whitespace (names and titles are single-line values) and drop invisible marks."""
    return re.sub(r"\s+", " ", re.sub("[\u200b-\u200f\ufeff]", "", text)).strip()


# Vietnamese capitals / small letters, for "a capitalised word starts here" lookaheads.
_VN_UPPER = "A-ZĐÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴ"
_VN_LOWER = "a-zđàáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ"


def _is_lower(ch: str) -> bool:
    return ch.isalpha() and ch.islower()


def _is_upper(ch: str) -> bool:
    return ch.isalpha() and ch.isupper()


# --------------------------------------------------------------------------------------------------
# Levels
# --------------------------------------------------------------------------------------------------

_LEVELS: dict[str, Level] = {"cấp xã": "xa", "cấp tỉnh": "tinh", "cấp bộ": "bo", "cơ quan khác": "khac"}


def parse_levels(label: str) -> list[Level]:
    """Map a level label to codes: "Cấp bộ, Cấp tỉnh" -> ["bo", "tinh"] (case-insensitive: "Cấp Bộ")."""
    levels: list[Level] = []
    for part in _clean(label).split(","):
        level = _LEVELS.get(_squash(part).lower())
        if level and level not in levels:
            levels.append(level)
    return levels


# --------------------------------------------------------------------------------------------------
# Re-cutting a national page into its sections
# --------------------------------------------------------------------------------------------------

# The page always lists these sections in this order. The crawler split at the *first* occurrence of each
# heading, which breaks when a heading phrase also appears inside the text before it (e.g. the steps say
# "lập hồ sơ theo mục 5.3 (Thành phần hồ sơ)", or the conditions quote "Kết quả xử lý"). We use the table
# headers that only the real section has where we can, and otherwise search after the previous section.
_H_STEPS = "Trình Tự Thực Hiện"
_H_CHANNELS = "Cách Thức Thực Hiện"
_H_CHANNELS_TABLE = "Hình thức nộpThời gianPhí, lệ phíMô tả"
_H_DOCUMENTS = "Thành phần hồ sơ"
_H_LEGAL_RE = re.compile(r"Căn cứ pháp lý(?=Tên văn bản pháp lý|Không có thông tin|Cơ quan thực hiện)")
_H_LEGAL_ANY_RE = re.compile(r"Căn cứ pháp lý")
_H_AGENCY = "Cơ quan thực hiện"
_H_CONDITIONS = "Yêu cầu, điều kiện thực hiện"
_H_RESULTS = "Kết quả xử lý"
_PAGE_TAIL = "Từ khóa"  # first words of the boilerplate after the results
SECTION_FIELDS = (
    "trinh_tu_thuc_hien",
    "cach_thuc_thuc_hien",
    "thanh_phan_ho_so",
    "can_cu_phap_ly",
    "co_quan_thuc_hien",
    "yeu_cau_dieu_kien",
    "ket_qua_xu_ly",
)


def split_national_page(raw: str) -> dict[str, str] | None:
    """Cut ``raw_text`` into the section texts (keyed like the record's fields), or None when the page
    does not have the expected layout. The last three sections may be missing; they are then empty."""
    steps = raw.find(_H_STEPS)
    channels = raw.find(_H_CHANNELS + _H_CHANNELS_TABLE, max(steps, 0))
    documents = raw.find(_H_DOCUMENTS, channels) if channels >= 0 else -1
    legal = (_H_LEGAL_RE.search(raw, documents) or _H_LEGAL_ANY_RE.search(raw, documents)) if documents >= 0 else None
    if steps < 0 or legal is None:
        return None
    # (field, start of heading, start of body), in page order.
    cuts = [
        ("trinh_tu_thuc_hien", steps, steps + len(_H_STEPS)),
        ("cach_thuc_thuc_hien", channels, channels + len(_H_CHANNELS)),
        ("thanh_phan_ho_so", documents, documents + len(_H_DOCUMENTS)),
        ("can_cu_phap_ly", legal.start(), legal.end()),
    ]
    tail = raw.rfind(_PAGE_TAIL)
    tail = tail if tail > legal.end() else len(raw)
    pos = legal.end()
    agency = raw.find(_H_AGENCY, pos, tail)
    if agency >= 0:
        cuts.append(("co_quan_thuc_hien", agency, agency + len(_H_AGENCY)))
        pos = agency
    conditions = raw.find(_H_CONDITIONS, pos, tail)
    if conditions >= 0:
        cuts.append(("yeu_cau_dieu_kien", conditions, conditions + len(_H_CONDITIONS)))
        pos = conditions
    # The results heading is the last one before the page tail: the conditions text may quote it.
    results = raw.rfind(_H_RESULTS, pos, tail)
    if results >= 0:
        cuts.append(("ket_qua_xu_ly", results, results + len(_H_RESULTS)))
    sections = dict.fromkeys(SECTION_FIELDS, "")
    for i, (field, _, body) in enumerate(cuts):
        # The results keep the page tail (parse_results recognises and strips it); other sections stop there.
        end = cuts[i + 1][1] if i + 1 < len(cuts) else (len(raw) if field == "ket_qua_xu_ly" else tail)
        sections[field] = raw[body:end]
    return sections


# --------------------------------------------------------------------------------------------------
# Legal document numbers ("68/2013/TT-BCA", "02/2011/QH13", "66.7/2025/NQ-CP", "09/2015/TTLT-BCA-BYT-BTC")
# --------------------------------------------------------------------------------------------------

# Codes that make up the part after the year. Needed because the flattened text glues the next title right
# after a number ("...NĐ-CPQUY ĐỊNH...", "...TT-BNNMTthuyết minh.pdf", "...QH1360/2014/QH13"), so the end of
# the number cannot be found from the characters alone. Unknown codes fall back to a case heuristic.
_DOC_TYPES = "NĐ ND TT QĐ QD NQ TTLT NQLT TB PL CT L QĐHT HD KH VBHN QĐLT CTN CV BC HĐTP"
_ISSUERS = (
    "CP TTg TTG TTCP VPCP BTC BNNMT NHNN BCA BTP BXD BQP BGTVT BNNPTNT BLĐTBXH BTNMT BHXH UBND HĐND BKHĐT BYT"
    " BKHCN BNG BCT BNV TCHQ BGDĐT BTTTT BVHTTDL TANDTC VKSNDTC KTNN UBDT TCT QLXNC C06 C07 C12 BKH BTM BTS"
    " BCN NHNNVN TLĐ UBCKNN BTTUB"
)
_LEGAL_CODES = sorted({*_DOC_TYPES.split(), *_ISSUERS.split()}, key=len, reverse=True)
_CODE_RE = re.compile("|".join(re.escape(c) for c in _LEGAL_CODES) + r"|(?:UBTV)?QH\d{2}")
# Start of a number: "123/2015/" or "123/" (old style "1106/QĐ-NHNN"), the code must follow.
_LEGAL_START_RE = re.compile(r"\d{1,4}[a-z]?(?:\.\d{1,3})?/(?:\d{4}/)?(?=[A-ZĐ])")
# A number cell with no code at all ("24/2024"); only trusted at the very end of a table.
_LEGAL_BARE_END_RE = re.compile(r"\d{1,4}/\d{4}\s*$")


def _is_caps_word(text: str) -> bool:
    """True when text starts with an all-capitals word followed by a space ("QUY ĐỊNH", "LUẬT  HÀNG")."""
    m = re.match(r"(\w{2,})\s", text)
    return m is not None and m.group(1).isupper()


def _code_token_end(text: str, pos: int) -> int:
    """End of one code token of a legal number starting at ``pos`` (pos itself when there is none)."""
    known = _CODE_RE.match(text, pos)
    if known and known.end() - pos == 1 and _is_lower(text[known.end() : known.end() + 1]):
        known = None  # "L" (luật) code vs the word "Luật" glued after a number: "…NĐ-CP-Luật An toàn"
    if known:
        end = known.end()
        # A known code followed by more capitals/digits is a longer unknown code ("BTCTW"), unless what
        # follows is clearly a new word: a capitalised word ("Quy") or an all-caps title ("QUY ĐỊNH").
        nxt = text[end : end + 2]
        if not nxt or not (nxt[0].isupper() or nxt[0].isdigit()):
            return end
        if len(nxt) == 2 and _is_upper(nxt[0]) and _is_lower(nxt[1]):
            return end
        if _is_caps_word(text[end:]):
            return end
        if nxt[0].isdigit() and not re.match(r"QH$", text[pos:end]):
            return end  # "…NĐ-CP14/2025/…": the next number starts
    # Generic token: capitals/digits, leaving out a final capital that starts a lowercase word ("CPQuy",
    # "NĐ-CP-Quy định …": there the whole "Q" is dropped and the number ends after "CP").
    end = pos
    while end < len(text) and (_is_upper(text[end]) or (text[end].isdigit() and end > pos)):
        end += 1
    if end < len(text) and _is_lower(text[end]):
        end -= 1
    return max(end, pos)


def legal_number_end(text: str, start: int) -> int:
    """Given the start of a legal number (its digits), return where the number ends."""
    m = _LEGAL_START_RE.match(text, start)
    if not m:
        return start
    end = _code_token_end(text, m.end())
    # Further "-CODE" or "/CODE" tokens ("TTLT-BCA-BYT-BTC", "TTLT/BQP-BLĐTBXH").
    while end < len(text) - 1 and text[end] in "-/" and _is_upper(text[end + 1]):
        nxt = _code_token_end(text, end + 1)
        if nxt == end + 1:
            break
        end = nxt
    # A series mark glued in brackets belongs to the number: "21/2007/TT-BCA(X13)".
    series = re.match(r"\([A-Z]\d{1,3}\)", text[end:])
    return end + series.end() if series else end


def find_legal_numbers(text: str) -> Iterator[tuple[int, int]]:
    """All legal numbers in ``text`` as (start, end) spans.

    A number normally does not follow a digit, except where the flattening glued it to something: right
    after the previous number ("…QH1354/2014/QH13") or after a year ("Luật Công chứng năm 202446/2024/…").
    """
    pos, prev_end = 0, -1
    while m := _LEGAL_START_RE.search(text, pos):
        start = m.start()
        if start > 0 and start != prev_end and text[start - 1] in "0123456789/":
            run = start
            while run > 0 and text[run - 1].isdigit():
                run -= 1
            glued_year = text[run : run + 2] in ("19", "20") and start - run == 4
            if not glued_year:
                pos = start + 1
                continue
        end = legal_number_end(text, start)
        if end > m.end():
            yield start, end
            pos = prev_end = end
        else:
            pos = start + 1


# --------------------------------------------------------------------------------------------------
# Channels: "Hình thức nộpThời gianPhí, lệ phíMô tả" + rows of <label><time><fee>[(<fee note>)]<description>
# --------------------------------------------------------------------------------------------------

CHANNEL_LABELS: dict[str, ChannelKind] = {"Trực tiếp": "in_person", "Trực tuyến": "online", "Dịch vụ bưu chính": "post"}
_LABEL_RE = "|".join(CHANNEL_LABELS)
_TIME_UNIT = r"(?:Ngày làm việc|Ngày|Giờ làm việc|Giờ|Tháng|Năm|Tuần|Phút)"
# Phrases the portal puts in the time cell when there is no duration.
_NO_TIME = r"(?:Không có thông tin|Không quy định|Không phải trả kết quả cho người nộp thuế|Không)"
# Amounts are printed with comma thousands ("2,000,000"), so an amount never starts with 0 and has 1-3
# leading digits. That matters: with no unit after the time the two cells touch ("Trực tuyến120 VNĐ" is
# time "1", fee "20 VNĐ" — the portal stores customs fees in thousands; its note says 20.000 vnđ).
_AMOUNT = r"[1-9]\d{0,2}(?:,\d{3})*(?:\.\d+)?"
_CURRENCY = r"(?:Việt Nam Đồng|VNĐ|Đồng|USD|EUR)"
_FEE = rf"(?:Miễn phí|{NO_INFO}|{_AMOUNT}\s*{_CURRENCY}|{_CURRENCY})"
_CHANNEL_ROW_RE = re.compile(
    rf"(?P<label>{_LABEL_RE})"
    rf"(?P<time>\d+(?:[.,]\d+)?\s*{_TIME_UNIT}|\d+?|{_NO_TIME})\s*"
    rf"(?P<fee>{_FEE})"
)
# A parenthesis right after the fee is the fee's note, unless it is an enumeration "(1) Trường hợp …"
# that starts the description.
_ENUM_PAREN_RE = re.compile(r"\(\s*(?:\d{1,2}(?:\.\d+)?|[a-zđ]|[ivx]{1,4})\s*\)")
# A channel row the row regex did not recognise (e.g. a free-text time cell) leaves a label glued to text.
_STRAY_LABEL_RE = re.compile(rf"(?:{_LABEL_RE})(?=\d|Không|Hệ thống)")


def _balanced_paren_end(text: str) -> int:
    """Index just after the parenthesis group opening at text[0], or -1 when it never closes."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _split_fee_note(rest: str) -> tuple[str, str, bool]:
    """Split the text after a fee cell into (fee note, description, ok)."""
    if not rest.startswith("(") or _ENUM_PAREN_RE.match(rest):
        return "", rest, True
    end = _balanced_paren_end(rest)
    if end < 0:
        # Unbalanced in the source ("(đ/lần cấp (Miễn phí … TT-BTC)05 ngày …"): the note most likely ends
        # at the last ")", but that is a guess, so the row is not clean.
        last = rest.rfind(")")
        return (rest[1:last], rest[last + 1 :], False) if last > 0 else (rest[1:], "", False)
    return rest[1 : end - 1], rest[end:], True


def _time_text(raw_time: str) -> str:
    time = _squash(raw_time)
    return "" if time in ("Không có thông tin", "Không") else time


def parse_channels(text: str) -> tuple[list[SubmissionChannel], bool]:
    """Parse the flattened submission table. Returns (channels, clean).

    Clean means: the table header is there, the rows cover the whole text (nothing before the first row),
    every fee note is a balanced parenthesis, no fee note contains a channel label, and no description
    holds another channel row that the row pattern failed to split off. Time cells without a unit ("1")
    are kept as published — the portal lost the unit, the parser did not.
    """
    text = text.strip()
    if not text.startswith(_H_CHANNELS_TABLE):
        return [], False  # the portal always prints this table, even with no rows
    body = text[len(_H_CHANNELS_TABLE) :]
    rows = list(_CHANNEL_ROW_RE.finditer(body))
    if not rows:
        return [], not body.strip()
    clean = rows[0].start() == 0 or not body[: rows[0].start()].strip()
    channels = []
    for i, row in enumerate(rows):
        rest = body[row.end() : rows[i + 1].start() if i + 1 < len(rows) else len(body)]
        note, description, ok = _split_fee_note(rest)
        # A channel label inside the fee note means the note swallowed description text (or a row).
        clean = clean and ok and not _STRAY_LABEL_RE.search(rest) and not re.search(_LABEL_RE, note)
        fee = _squash(row["fee"])
        fee = "" if fee == NO_INFO else fee
        if note.strip():
            fee = f"{fee} ({_squash(note)})".strip()
        label = row["label"]
        channels.append(
            SubmissionChannel(
                kind=CHANNEL_LABELS[label],
                label=label,
                processing_time=_time_text(row["time"]),
                fee=fee,
                description=_clean(description),
            )
        )
    return channels, clean


# --------------------------------------------------------------------------------------------------
# Documents: [<group heading>]"Tên giấy tờMẫu đơn, tờ khaiSố lượng" + rows of <name>[<form file>]<copies>
# --------------------------------------------------------------------------------------------------

_DOC_TABLE = "Tên giấy tờMẫu đơn, tờ khaiSố lượng"
# Copy counts are small numbers; a two-digit count may not follow another digit, so "BM.NCC.20.031 bản
# chính" reads as form code "…20.03" + "1 bản chính".
_COUNT = r"(?:(?<!\d)[1-9]\d|\d)"
_COPIES_RE = re.compile(rf"{_COUNT} bản chính(?:,{_COUNT} bản sao)?|{_COUNT} bản sao")
# The next form file may be glued after an extension ("To trinh.docxMẫu số 1.2.docx"), hence no [A-Z] check.
_FORM_EXT_RE = re.compile(r"\.(?:docx?|pdf|xlsx?|rar|zip|DOCX?|PDF)(?![a-z])")


def _is_copies_cell(text: str, m: re.Match[str]) -> bool:
    """A copies cell is glued to its row; the same words inside a name read "…nộp 01 bản chính tờ khai…"."""
    after = text[m.end() : m.end() + 3]
    if after[:1] in (")", ",", ";", "."):
        return False  # "(01 bản chính)" , "01 bản chính;" …
    if after[:1] == " " and (_is_lower(after[1:2]) or (after[1:2] == "(" and _is_lower(after[2:3]))):
        return False  # "01 bản chính có chứng thực", "01 bản chính (đối với …)" — but not "… (2). Đối với"
    # "01 bản chính" written in a sentence: a zero-padded count after a space.
    head = text[max(0, m.start() - 2) : m.start()]
    return not (head.endswith(" 0") or head.endswith("(0"))


# Names that end in these words are often glued to a lower-case file name ("theo mẫuvăn bản đề nghị.docx").
_NAME_ENDINGS = ("theo mẫu", "theo quy định", "theo mẫu quy định")


def _dot_boundary(name: str, i: int) -> bool:
    """Is the "." at name[i - 1] the end of a name glued to a form file name starting at name[i]?

    Yes for "…hợp lệ.Mẫu số 05", "…trắng.mau so 12", "…Bộ Công an).10-Mẫu NA9", "…nuôi.7.Tkhai",
    "…ngày 19/05/2026.Mẫu số 04"; no inside codes such as "Mẫu I.1.1" or "Mẫu số 06.QLT".
    """
    before, b, nxt = name[i - 2 : i - 1], name[i], name[i + 1 : i + 2]
    if _is_upper(b) and _is_lower(nxt):
        return True  # a capitalised word starts
    if before in ").":
        return b.isalnum()
    if _is_lower(before):
        return b.isalnum()
    if (before.isalpha() or before.isdigit()) and _is_lower(b):
        return True  # "… theo mẫu số 3.mẫu số 3 nđ 88.docx"; but not "PHỤ LỤC VIII.MẪU TÓM TẮT.docx"
    # A date ending a name ("ngày 19/05/2026.Mẫu"), not a year inside a file name ("_36.2025.TT-BNNMT").
    date_end = name[max(0, i - 6) : i - 1]
    return bool(re.fullmatch(r"[/ ](?:19|20)\d\d", date_end)) and b.isalpha()


def _form_start(name: str, ext_at: int) -> int:
    """Where the form file name glued to the end of a document name starts (see the comments inside)."""
    # Candidate boundaries are places where two cells were glued: lower->upper ("thống nhấtMẫu"),
    # punctuation->text with no space ("Thông tư 12;PHỤ LỤC", "(theo mẫu)12.1.PLC…", "trắng.mau so 12"),
    # the end of a legal number ("…/NĐ-CPMẫu số 06.docx", "…/TT-BNNMT.22b sửa.docx"), digits or capitals
    # -> capitalised word ("TP-QTV-05Mẫu", "nhóm IVMau 02") and lower->digit ("theo quy định1.4. Don de
    # nghi"). A dot between digits ("Mẫu I.1.1") is not one.
    legal_ends = {end for _, end in find_legal_numbers(name[:ext_at])}
    cands = []
    for i in range(1, ext_at):
        a, b = name[i - 1], name[i]
        if b.isspace() or a.isspace():
            continue
        if (
            (_is_lower(a) and _is_upper(b))
            or (a in ";:)" and b.isalnum())
            or (a == "," and _is_upper(b))
            or (a == "." and _dot_boundary(name, i))
            or (_is_lower(a) and b.isdigit())
            or (_is_upper(a) and _is_upper(b) and _is_lower(name[i + 1 : i + 2]))
            or (a == "." and i - 1 in legal_ends and b.isalnum())
            or (b.isalpha() and name[:i].endswith(_NAME_ENDINGS))
            or (i in legal_ends and b.isalnum())
            or (a.isdigit() and _is_upper(b) and _is_lower(name[i + 1 : i + 2]))
        ):
            cands.append(i)
    if not cands:
        return -1
    # File names are space-free runs glued to the name ("theo mẫuMauBankhaikiemdichongvat.docx"), and they
    # can contain camel case themselves ("PLCpgiyphpcungcpDVHK"). So: take the last space-separated run
    # that has a boundary, and the first boundary inside that run.
    last = cands[-1]
    run_start = name.rfind(" ", 0, last) + 1
    return min(c for c in cands if c >= run_start)


def _split_form(name: str) -> tuple[str, str]:
    """Split "<document name><form file>[<form file>…]" into (name, forms joined by "; ")."""
    m = _FORM_EXT_RE.search(name)
    if not m or name[m.end() :].strip() and not _FORM_EXT_RE.search(name, m.end()):
        return name, ""
    start = _form_start(name, m.start())
    if start <= 0:
        return name, ""
    doc, forms_text = name[:start], name[start:]
    forms = []
    pos = 0
    for ext in _FORM_EXT_RE.finditer(forms_text):
        forms.append(forms_text[pos : ext.end()].strip())
        pos = ext.end()
    tail = forms_text[pos:].strip()
    if tail:
        forms.append(tail)
    return doc, "; ".join(f for f in forms if f)


def _group_heading(text: str) -> str:
    """Clean a case heading: "* Giấy tờ phải nộp:" -> "Giấy tờ phải nộp"; the portal's "--" means none."""
    heading = _squash(text)
    heading = re.sub(r"^[-*+•\s]+", "", heading)
    return heading.rstrip(" :").strip()


def parse_documents(text: str) -> tuple[list[RequiredDocument], bool]:
    """Parse the flattened dossier table(s). Returns (documents, clean).

    Each "Tên giấy tờMẫu đơn, tờ khaiSố lượng" header starts a table; the text before it (after the last
    copies cell of the previous table) is that table's case heading. Clean means: there is at least one
    table, every row ends with a copies cell and has a name, and no text is left after the last row
    (leftover text would be a document without a copies cell, or a heading with no table).
    """
    text = text.strip()
    if _clean(text) == "" or text.strip("-* ") == "":
        return [], True
    if _DOC_TABLE not in text:
        # Prose instead of a table (a few records): keep it readable, but it is not a parsed table.
        return [RequiredDocument(name=_squash(text))], False
    parts = text.split(_DOC_TABLE)
    heading = _group_heading(parts[0])
    documents: list[RequiredDocument] = []
    clean = True
    for i, part in enumerate(parts[1:], start=1):
        cells = [m for m in _COPIES_RE.finditer(part) if _is_copies_cell(part, m)]
        pos = 0
        for cell in cells:
            raw_name = part[pos : cell.start()]
            pos = cell.end()
            name, form = _split_form(_squash(raw_name))
            if not name:
                clean = False  # two copies cells in a row: a row lost its name
                continue
            if _FORM_EXT_RE.search(name[-6:]):
                clean = False  # a form file glued to the name without any boundary ("theo mẫuvăn bản.docx")
            documents.append(RequiredDocument(name=name, copies=cell.group(0), form=form, group=heading))
        leftover = part[pos:]
        if i < len(parts) - 1:
            heading = _group_heading(leftover)  # heading of the next table
        elif leftover.strip("-* \n\t"):  # the portal pads empty cells with "-"
            clean = False
        if not cells and part.strip():
            clean = False  # a table whose rows have no copies cells
    if not documents:
        clean = False
    return documents, clean


# --------------------------------------------------------------------------------------------------
# Legal basis: "Tên văn bản pháp lýMã văn bản" + rows of <title><number>
# --------------------------------------------------------------------------------------------------

_LEGAL_TABLE = "Tên văn bản pháp lýMã văn bản"
# A type word glued to the end of a title belongs to the number cell ("…tiền mặtNghị định 52/2024/NĐ-CP").
_NUMBER_PREFIX_RE = re.compile(
    r"(?<=\S)(?<![\s(])(?:Nghị định|Thông tư liên tịch|Thông tư|Luật|Bộ luật|Quyết định|Nghị quyết|Pháp lệnh|"
    r"Lệnh|NĐ|TT|QĐ|NQ|Số|số)(?: số)?\s*$"
)
_GLUED_CELL_PREFIX_RE = re.compile(
    rf"[{_VN_LOWER}](?:Nghị định|Thông tư|Luật|Quyết định|Nghị quyết|Pháp lệnh)(?: số)? ?$"
)
_TITLE_MAX = 1200  # the longest real title is ~900 characters; longer ones are rows glued together


def _is_row_end(text: str, start: int, end: int) -> bool:
    """Does the number text[start:end] end a table row (i.e. is it a number cell)?

    Inside a title a number has a space before it and a space or punctuation after it ("Nghị định số
    123/2015/NĐ-CP ngày …"). A number cell is glued to its title, to the next title, or to both.
    """
    if not text[end:].strip(" \n\t.;"):
        return True
    if text.startswith(("ngày", "của"), end):
        return False  # "53/2025/TT-BCAngày 01/7/2025": a missing space, the title goes on
    if not (text[end].isspace() or text[end] in ",.;:)]/-–\"”'"):
        return True
    # "…trồng trọt và bảo vệ thực vậtNghị định số 33/2026/NĐ-CP Luật Trồng trọt …": the number cell starts
    # with a type word glued to the end of its title; whatever follows the space is the next title.
    if _GLUED_CELL_PREFIX_RE.search(text, max(0, start - 40), start):
        return True
    # "…của Bộ Tư pháp18/2026/NĐ-CP Nghị định quy định …": glued to its title, a space before the next one.
    # Also "…cách mạng31/2013/NĐ-CP 05/2013/TT-…" and "…hàng hoá05/2007/QH12- Luật …".
    glued_before = start > 0 and (text[start - 1].isalpha() or text[start - 1] in ".;:)")
    after = text[end : end + 3].lstrip(" -–")
    return glued_before and text[end] in " -–" and (_is_upper(after[:1]) or after[:1].isdigit())


# Inside a title, a number glued right after a word ("…cách mạng31/2013/NĐ-CP …") or a capitalised word
# glued to a small letter ("…thuốc thú yThông tư số …") means a row boundary was missed.
_GLUED_ROW_RE = re.compile(rf"[^\W\d_]\d{{1,4}}/\d{{4}}/[A-ZĐ]|[{_VN_LOWER}][{_VN_UPPER}][{_VN_LOWER}]")


def parse_legal_basis(text: str) -> tuple[list[LegalBasis], bool]:
    """Parse the flattened legal-basis table. Returns (rows, clean).

    Clean means: the header is there, every row has a title and a number, no text is left after the last
    number, and no title hides another row (too long, or with a number or capitalised word glued inside).
    """
    text = text.strip()
    if _clean(text) == "":
        return [], True
    if not text.startswith(_LEGAL_TABLE):
        return [], False
    # "165/2024/NĐ- CP": a stray space inside a number would hide its code.
    body = re.sub(r"(?<=[A-ZĐ])- (?=[A-ZĐ])", "-", text[len(_LEGAL_TABLE) :])
    if not body.strip():
        return [], True  # an empty table
    rows: list[list[str]] = []  # [title, number]
    pos = 0
    carry = ""  # a title that is itself a number ("73/2025/TT-NHNNSố 73/2025/TT-NHNN")
    for start, end in find_legal_numbers(body):
        if start < pos or not _is_row_end(body, start, end):
            continue
        title = carry + body[pos:start]
        number = body[start:end]
        pos, carry = end, ""
        if not title.strip():
            # Two numbers glued together. Usually the title ended with a number and this is the number cell
            # ("Luật 60/2014/QH1360/2014/QH13", "…bởi Nghị định số 232/2025/NĐ-CP34/2025/TT-NHNN"). But when
            # the same number follows right after, this one is a title that is just a number
            # ("…QH1559/2025/TT-NHNNsố 59/2025/TT-NHNN").
            ahead = body[end : end + len(number) + 16]
            repeated = number in ahead and not re.search(r"\d", ahead[: ahead.index(number)])
            if rows and not repeated:
                rows[-1][0] = f"{rows[-1][0]} {rows[-1][1]}".strip()
                rows[-1][1] = number
            else:
                carry = number
            continue
        rows.append([title, number])
    if carry:
        rows.append(["", carry])  # a lone number without a title: kept, and not clean (empty title)
    bare = _LEGAL_BARE_END_RE.search(body, pos)
    if bare and (rows or body[pos : bare.start()].strip()):
        # The last number cell has no code ("…chuỗi giá trị24/2024"): keep it as published.
        title = body[pos : bare.start()]
        if not title.strip():
            rows[-1][0] = f"{rows[-1][0]} {rows[-1][1]}".strip()
            rows[-1][1] = bare.group(0).strip()
        else:
            rows.append([title, bare.group(0).strip()])
        pos = len(body)
    clean = not body[pos:].strip()
    basis = []
    for title, number in rows:
        title = _NUMBER_PREFIX_RE.sub("", title) if _NUMBER_PREFIX_RE.sub("", title).strip() else title
        title = _squash(title).strip(" -–+*•:;,")
        if not title or len(title) > _TITLE_MAX or _GLUED_ROW_RE.search(title):
            clean = False
        basis.append(LegalBasis(number=number, title=title))
    if not basis:
        clean = False
    return _dedupe_legal(basis), clean


def _dedupe_legal(basis: list[LegalBasis]) -> list[LegalBasis]:
    seen: set[tuple[str, str]] = set()
    out = []
    for b in basis:
        key = (b.number, b.title)
        if key not in seen:
            seen.add(key)
            out.append(b)
    return out


# --------------------------------------------------------------------------------------------------
# Results: "<result>Mã: <code><result>Mã: <code>…" + page boilerplate
# --------------------------------------------------------------------------------------------------

# Everything the portal prints after the results: keywords, description, the agency picker and its button.
_RESULT_TAIL_RE = re.compile(
    r"Từ khóa(?P<keywords>.*?)Mô tả(?P<description>.*?)"
    r"(?:Chọn cơ quan thực hiện(?:Tỉnh/ Thành phố|Bộ ngành|-- Chọn [^-]*--|Phường/ Xã|Sở|Đơn vị|"
    r"Hệ thống chỉ hiển thị những cơ quan đã áp dụng dịch vụ công trực tuyến)*Nộp hồ sơ)?\s*$",
    re.S,
)
# Result code: "KQ.G15.000031", "000.00.00.G04-KQ3337", "Chưa xác định", or junk like "adjfsbj"; the next
# result name is glued right after it, so the code ends where a capitalised word starts.
_RESULT_CODE_RE = re.compile(rf"Mã: ?(?:Chưa xác định|[\w.\-]+?)(?=[{_VN_UPPER}][{_VN_LOWER}]|[+\-*•]\s|[(\"“]|\s|$)")


def parse_results(text: str) -> tuple[list[str], bool]:
    """Split the results and strip the page boilerplate. Returns (results, clean).

    Clean means: the boilerplate tail (when present) is recognised completely and the remaining text yields
    at least one result.
    """
    text = text.strip()
    clean = True
    tail = text.find("Từ khóa")
    if tail >= 0:
        if not _RESULT_TAIL_RE.match(text, tail):
            clean = False
        text = text[:tail]
    if not _clean(text):
        return [], clean
    codes = list(_RESULT_CODE_RE.finditer(text))
    if len(codes) != text.count("Mã:"):
        clean = False  # a code marker the pattern did not recognise
    bounds = [0, *(x for m in codes for x in (m.start(), m.end())), len(text)]
    pieces = (text[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2))
    results = [_squash(r) for r in pieces if _clean(r).strip(".")]
    return results, clean and bool(results)


# --------------------------------------------------------------------------------------------------
# Steps: "Bước 1: …  Bước 2: …" or free paragraphs
# --------------------------------------------------------------------------------------------------

# A step marker is "Bước N:" anywhere ("… hải quan Bước 1: Trước khi …" — headings are often glued to the
# first step); "Bước N" after a bullet or case letter anywhere ("… khoáng sản a) Bước 1. Nộp hồ sơ"); or
# "Bước N" opening a line or sentence; or "Bước N" glued to the previous word, as flattened table cells are
# ("… để xử lýBước 10 Duyệt hồ sơ"). A "Bước 3" quoted inside a sentence ("thì thực hiện Bước 3. Trường
# hợp …") is not a marker.
_STEP_RE = re.compile(
    r"(?<![^\W\d_])(?P<m1>Bước\s*(?P<n1>\d{1,2})\s*:)"
    r"|(?<=\s)(?:[-+*•–]|[a-zđ]\))\s*(?P<m2>Bước\s*(?P<n2>\d{1,2})\b)"
    r"|(?:^|(?<=\n)|(?<=[.;:!?])\s*)[ \t]*(?:[-+*•–]\s*|[a-zđ]\)\s*|\d{1,2}[.)]\s*)?"
    r"(?P<m3>Bước\s*(?P<n3>\d{1,2})\b)"
    rf"|(?<=[{_VN_LOWER}])(?P<m4>Bước\s*(?P<n4>\d{{1,2}})\b)",
)


def _marker(m: re.Match[str]) -> tuple[int, int]:
    """(start of the "Bước" word, step number) of a _STEP_RE match."""
    for group in ("1", "2", "3", "4"):
        if m["m" + group]:
            return m.start("m" + group), int(m["n" + group])
    raise AssertionError("unreachable")


def parse_steps(text: str) -> tuple[list[str], bool]:
    """Split the procedure into steps. Returns (steps, clean).

    With "Bước N" markers each marker opens a step (text before the first marker is kept as an intro
    step). Without markers the paragraphs (and inline "1. … 2. …" items) are the steps. Clean means the markers count 1, 2, 3 … (a new
    run may restart at 1, e.g. one run per case); a jump means a marker was missed or is a quotation.
    """
    text = text.strip()
    if not _clean(text):
        return [], True
    markers = list(_STEP_RE.finditer(text))
    if not markers:
        # Paragraphs; a one-line list "1. … 2. … 3. …" (the defence file writes steps so) is split too.
        paragraphs = [_squash(p) for p in re.split(r"\n\s*|(?<=[.;:])\s+(?=\d{1,2}\.\s)", text)]
        return [p for p in paragraphs if p], True
    steps = []
    starts = [_marker(m) for m in markers]
    intro = _squash(text[: starts[0][0]])
    if re.search(r"\w", intro):  # not just the bullet of the first marker
        steps.append(intro)
    numbers = []
    for i, (start, number) in enumerate(starts):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
        step = _squash(text[start:end])
        if step:
            steps.append(step)
        numbers.append(number)
    clean = all(n == 1 or n == prev + 1 for prev, n in zip([0, *numbers], numbers, strict=False))
    return steps, clean


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


def _decision(value: str) -> str:
    """Bare decision number: "Quyết định số 6225/QĐ-BQP" -> "6225/QĐ-BQP" (as the national file gives it)."""
    return _squash(re.sub(r"^Quyết định\s*(?:số)?\s*", "", _clean(value))).replace(" /", "/")


def _related(value: str) -> str:
    # Only two records have related procedures, printed as a flattened "#Tên thủ tục1<name>" table.
    return _squash(re.sub(r"^#Tên thủ tục", "", _clean(value)))


# (Procedure field, parser, page section) for the parts of a national page that need parsing.
_NATIONAL_TABLES = (
    ("channels", parse_channels, "cach_thuc_thuc_hien"),
    ("documents", parse_documents, "thanh_phan_ho_so"),
    ("legal_basis", parse_legal_basis, "can_cu_phap_ly"),
    ("results", parse_results, "ket_qua_xu_ly"),
    ("steps", parse_steps, "trinh_tu_thuc_hien"),
)


def parse_national(record: dict) -> Procedure:
    """Map one national-portal record into a `Procedure`, re-parsing its flattened tables."""
    record = _nfc(record)
    sections = split_national_page(record.get("raw_text") or "")
    if sections is None:  # page layout not recognised: fall back on the crawler's own cut
        sections = {field: record.get(field) or "" for field in SECTION_FIELDS}
    parsed: dict[str, Any] = {}
    issues: list[str] = []
    for field, parser, section in _NATIONAL_TABLES:
        parsed[field], ok = parser(sections[section])
        if not ok:
            issues.append(field)

    level_label = _clean(record.get("cap_thuc_hien"))
    competent = _clean(record.get("co_quan_co_tham_quyen"))
    return Procedure(
        code=_clean(record.get("ma_thu_tuc")),
        title=_squash(_clean(record.get("ten_thu_tuc"))),
        url=_clean(record.get("detail_url")) or None,
        source="national",
        decision=_decision(record.get("so_quyet_dinh", "")),
        levels=parse_levels(level_label),
        level_label=level_label,
        kind=_clean(record.get("loai_thu_tuc")),
        domain=_clean(record.get("linh_vuc")),
        subjects=_clean(record.get("doi_tuong_thuc_hien")),
        agency=_clean(sections["co_quan_thuc_hien"]) or competent,
        competent_authority=competent,
        receiving_address=_clean(record.get("dia_chi_tiep_nhan")),
        **parsed,
        conditions=_clean(sections["yeu_cau_dieu_kien"]),
        related=_related(record.get("thu_tuc_lien_quan", "")),
        parse_issues=issues,
    )


# ---- defence ------------------------------------------------------------------------------------


def _defence_channel(row: dict) -> tuple[SubmissionChannel, bool]:
    label = _squash(row.get("hinh_thuc", ""))
    kind: ChannelKind = CHANNEL_LABELS.get(label, "other")
    fee = _squash(_clean(row.get("phi_le_phi")).replace("\n", "; "))
    channel = SubmissionChannel(
        kind=kind,
        label=label,
        processing_time=_squash(_clean(row.get("thoi_han_giai_quyet"))),
        fee=fee,
        description=_clean(row.get("mo_ta")),
    )
    return channel, kind != "other"


def _defence_copies(note: str) -> str:
    """Copy counts on one line: "Bản chính: 1\\nBản sao: 0" -> "Bản chính: 1 / Bản sao: 0"."""
    return " / ".join(p.strip() for p in _clean(note).splitlines() if p.strip())


def _defence_legal(row: dict) -> tuple[LegalBasis, bool]:
    """The number column is sometimes only the serial ("12") or a title; complete it from the abstract."""
    # "21/2008/TTLT- BQP-BLĐTBXH-BTC": a stray space after a hyphen would cut the number.
    number = re.sub(r"(?<=[A-ZĐ])- (?=[A-ZĐ])", "-", _squash(_clean(row.get("so_ky_hieu"))))
    title = _squash(_clean(row.get("trich_yeu")))
    spans = list(find_legal_numbers(number))
    if spans:
        start, end = spans[0]
        return LegalBasis(number=number[start:end], title=title), True
    serial = re.fullmatch(r"(\d{1,4})(?:/\d{4})?", number)
    for start, end in find_legal_numbers(title):
        if serial and title[start:end].split("/")[0] == serial.group(1):
            return LegalBasis(number=title[start:end], title=title), True
    # No complete number in either column: "54" for "Luật Hải quan 2014", or only a name ("BỘ LUẬT HÀNG HẢI
    # VIỆT NAM") in the number column. Kept, but not clean.
    return LegalBasis(number=number if serial else "", title=title or number), False


def parse_defence(record: dict) -> Procedure:
    """Map one Ministry of Defence record (already tabular) into a `Procedure`."""
    record = _nfc(record)
    meta = record.get("metadata") or {}
    content = record.get("content") or {}
    tables = record.get("tables") or {}
    issues: list[str] = []

    channels, oks = [], []
    for row in tables.get("hinh_thuc_nop") or []:
        channel, ok = _defence_channel(row)
        channels.append(channel)
        oks.append(ok)
    if not all(oks):
        issues.append("channels")

    documents = []
    for row in tables.get("thanh_phan_ho_so") or []:
        name = _squash(_clean(row.get("ten_giay_to")))
        if name:
            # In this file "so_luong" holds the attached form's file name and "ghi_chu" the copy counts.
            documents.append(
                RequiredDocument(
                    name=name, copies=_defence_copies(row.get("ghi_chu", "")), form=_clean(row.get("so_luong"))
                )
            )
    if not documents or any(not d.copies for d in documents):
        issues.append("documents")

    legal, oks = [], []
    for row in tables.get("can_cu_phap_ly") or []:
        basis, ok = _defence_legal(row)
        legal.append(basis)
        oks.append(ok)
    if not all(oks):
        issues.append("legal_basis")

    steps, ok = parse_steps(content.get("trình_tự_thực_hiện", ""))
    if not ok:
        issues.append("steps")
    result = _clean(content.get("kết_quả_thực_hiện"))
    results = [_squash(r) for r in result.split("\n") if r.strip()] if result else []

    level_label = _clean(meta.get("cấp_thực_hiện"))
    competent = _clean(content.get("cơ_quan_có_thẩm_quyền"))
    return Procedure(
        code=_clean(meta.get("mã_thủ_tục")) or _clean(record.get("thu_tuc_id")),
        title=_squash(_clean(meta.get("tên_thủ_tục"))),
        url=None,  # the defence records carry no procedure address
        source="defence",
        decision=_decision(meta.get("số_quyết_định", "")),
        levels=parse_levels(level_label),
        level_label=level_label,
        kind=_clean(meta.get("loại_thủ_tục")),
        domain=_clean(meta.get("lĩnh_vực")),
        subjects=_clean(content.get("đối_tượng_thực_hiện")),
        agency=_clean(content.get("cơ_quan_thực_hiện")) or competent,
        competent_authority=competent,
        receiving_address=_clean(content.get("địa_chỉ_tiếp_nhận_hs")),
        steps=steps,
        channels=channels,
        documents=documents,
        legal_basis=_dedupe_legal(legal),
        results=results,
        conditions=_clean(content.get("yêu_cầu_điều_kiện_thực_hiện")),
        related="",
        parse_issues=issues,
    )


# --------------------------------------------------------------------------------------------------
# Loading and reporting
# --------------------------------------------------------------------------------------------------


def _read_jsonl_gz(path: Path) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_procedures(knowledge_dir: Path) -> list[Procedure]:
    """Parse both source files; sorted by code, one record per code (the first occurrence wins)."""
    knowledge_dir = Path(knowledge_dir)
    procs: dict[str, Procedure] = {}
    sources = ((NATIONAL_FILE, parse_national), (DEFENCE_FILE, parse_defence))
    for rel, parse in sources:
        for record in _read_jsonl_gz(knowledge_dir / rel):
            proc = parse(record)
            procs.setdefault(proc.code, proc)
    return sorted(procs.values(), key=lambda p: p.code)


def parse_report(procs: list[Procedure]) -> dict:
    """Counts over a parsed corpus: how many records parsed fully and which fields failed how often."""
    failures = Counter(issue for p in procs for issue in p.parse_issues)
    by_source: dict[str, dict[str, int]] = {}
    for p in procs:
        s = by_source.setdefault(p.source, {"total": 0, "fully_parsed": 0})
        s["total"] += 1
        s["fully_parsed"] += not p.parse_issues
    total = len(procs)
    fully = sum(not p.parse_issues for p in procs)
    core = sum(not set(p.parse_issues) & set(CORE_FIELDS) for p in procs)
    channels = [c for p in procs for c in p.channels]
    return {
        "total": total,
        "fully_parsed": fully,
        "fully_parsed_share": round(fully / total, 4) if total else 0.0,
        "core_parsed": core,  # clean on channels + documents + legal_basis
        "core_parsed_share": round(core / total, 4) if total else 0.0,
        "failures": {f: failures.get(f, 0) for f in CHECKED_FIELDS},
        "by_source": by_source,
        # Not parse failures, but gaps in the published data worth knowing about:
        "data_gaps": {
            "no_channels": sum(not p.channels for p in procs),
            "no_documents": sum(not p.documents for p in procs),
            "no_legal_basis": sum(not p.legal_basis for p in procs),
            "no_results": sum(not p.results for p in procs),
            "no_steps": sum(not p.steps for p in procs),
            "channels_without_time": sum(not c.processing_time for c in channels),
            "channels_time_without_unit": sum(bool(re.fullmatch(r"\d+", c.processing_time)) for c in channels),
            "channels_without_fee": sum(not c.fee for c in channels),
        },
    }


def format_report(report: dict) -> str:
    """The report as a plain-text table."""

    def pct(n: int) -> str:
        return f"{100 * n / report['total']:.1f} %" if report["total"] else "-"

    lines = [
        f"{'records':<34}{report['total']:>7}",
        f"{'fully parsed (all checked fields)':<34}{report['fully_parsed']:>7}  {pct(report['fully_parsed'])}",
        f"{'clean channels+documents+legal':<34}{report['core_parsed']:>7}  {pct(report['core_parsed'])}",
        "",
        f"{'source':<34}{'total':>7}{'fully parsed':>14}",
    ]
    for source, s in sorted(report["by_source"].items()):
        lines.append(f"{source:<34}{s['total']:>7}{s['fully_parsed']:>14}")
    lines += ["", f"{'field not parsed cleanly':<34}{'records':>7}"]
    for field, n in sorted(report["failures"].items(), key=lambda kv: -kv[1]):
        lines.append(f"{field:<34}{n:>7}  {pct(n)}")
    lines += ["", f"{'data gaps (not parse failures)':<34}{'count':>7}"]
    for gap, n in report["data_gaps"].items():
        lines.append(f"{gap:<34}{n:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Parse the procedure files and report parse quality.")
    parser.add_argument("--report", action="store_true", help="print the parse report")
    parser.add_argument("--knowledge-dir", type=Path, default=Path("knowledge"))
    parser.add_argument("--issues", metavar="FIELD", help="also list the codes whose FIELD did not parse")
    args = parser.parse_args(argv)
    procs = load_procedures(args.knowledge_dir)
    if args.report or not args.issues:
        print(format_report(parse_report(procs)))
    if args.issues:
        codes = [p.code for p in procs if args.issues in p.parse_issues]
        print(f"\n{args.issues}: {len(codes)} records\n" + " ".join(codes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
