"""Split the provincial plan documents (knowledge/plans/*.txt) into retrievable passages.

Public API (other modules depend on exactly these three functions):

    load_plan_documents(knowledge_dir) -> list[PlanDocument]   # metadata from documents.yml
    load_plan_passages(knowledge_dir)  -> list[PlanPassage]    # all documents, split
    split_plan(doc, text)              -> list[PlanPassage]    # one document

``knowledge_dir`` may be the repository's ``knowledge/`` folder or ``knowledge/plans/`` itself.

What a passage is
-----------------
* ``section``: prose under a heading path ("II. MỤC TIÊU > 2. Mục tiêu cụ thể > a) ..."), a few
  sentences up to ~1,200 characters; long sections are cut on paragraph (then sentence) boundaries.
  Headings recognised: markdown ``#``, "Điều N.", roman "I.", arabic "1." / "2.1", letters "a)" (short
  ones), and document parts ("QUYẾT ĐỊNH", "KẾ HOẠCH", "PHỤ LỤC ...", "DANH MỤC ...").
* ``table_row``: one row of an indicator / task table, with ``fields`` keyed by English snake_case
  column meanings (``indicator`` or ``task``, ``current_value``, ``national_target``, ``target``,
  ``owner``, ``partners``, ``supervisor``, ``deadline``, ``note``, ``no``) and a ``text`` that reads
  "Chỉ tiêu: …; Hiện trạng …: …; Chỉ tiêu của tỉnh năm 2023: …; Đơn vị chủ trì: …".
  Tab-separated tables (QĐ 180, QĐ 336) are parsed cell by cell: repeated page headers are dropped,
  rows broken across pages are merged, group rows ("I  CHÍNH QUYỀN SỐ") go into the heading path.
  The OCR'd task annex of QĐ 2207 has lost its column layout; its rows are rebuilt from the line
  stream (row ends at a deadline such as "Quý IV/2022" / "Hàng năm"; owner and partner units are
  recognised by how unit names start).  Annex tables that cannot be rebuilt that way are kept as
  ordinary section passages.
* ``text`` is the cleaned document text (HTML tags, markdown markers, page numbers, the national
  motto header, signature and recipient blocks removed).  For OCR-damaged documents it keeps the
  damaged spelling: it is what the document says.
* ``search_text`` is what gets indexed: a short document label (province, number, title), the
  heading path and the text; for OCR-damaged documents followed by a *repaired* copy (see
  ``OcrRepairer``): lower-case, diacritics folded, OCR confusions undone, so that a question typed
  with or without diacritics shares words with the passage after folding.

Run ``python -m bot.knowledge.plans --stats`` for per-document counts.
"""

from __future__ import annotations

import argparse
import html
import math
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from bot.knowledge.models import PlanDocument, PlanPassage

MAX_CHARS = 1200  # target upper bound of a section passage
MIN_TAIL = 250  # a trailing chunk shorter than this is merged into the previous one when it fits
DEFAULT_PLANS_DIR = Path(__file__).resolve().parents[2] / "knowledge" / "plans"

# --------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower-case, strip Vietnamese diacritics, map đ→d (the usual "typed without accents" form)."""
    text = unicodedata.normalize("NFD", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return text.replace("đ", "d").replace("Đ", "D").lower()


def _normalize_unicode(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = text.replace("\u00a0", " ").replace("\u200b", "")
    # "co ̂ng" (a combining mark separated from its letter by a space) -> "công"
    text = re.sub(r"(\w) ([\u0300-\u036f])", r"\1\2", text)
    return unicodedata.normalize("NFC", text)


_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]*>")


def strip_html(text: str) -> str:
    text = re.sub(r"(?i)</?(b|i|u|em|strong|span|sup|sub|font)\b[^<>]*>", "", text)  # inline tags
    text = re.sub(r"(?i)<br\s*/?>|</p>|</li>|</div>", " ", text)
    text = _TAG_RE.sub(" ", text)
    text = re.sub(r"</\s*$", " ", text)  # dangling "</" left by the OCR
    return html.unescape(text)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _strip_markdown(line: str) -> str:
    line = re.sub(r"^\s*#{1,6}\s*", "", line)
    line = line.replace("**", "").replace("__", "")
    line = re.sub(r"(?<![\w*])\*(?!\s)([^*]+?)\*(?!\w)", r"\1", line)  # *italic*
    return line


def _letters(s: str) -> int:
    return sum(1 for c in s if c.isalpha())


def _is_upper_line(s: str) -> bool:
    letters = [c for c in s if c.isalpha()]
    return len(letters) >= 3 and sum(1 for c in letters if c.isupper()) / len(letters) >= 0.8


# --------------------------------------------------------------------------------------------
# Boilerplate (headers / footers / signatures / page numbers)
# --------------------------------------------------------------------------------------------

_MOTTO_RE = re.compile(
    r"cong hoa x\w{0,2} h\w{0,2} chu ngh|"  # CỘNG HÒA XÃ HỘI CHỦ NGHĨA (also OCR-damaged)
    r"\bd\w{0,3}c\s*[l1]\w{0,2}p\s*-\s*t\w{0,2}\s*do\s*-\s*h\w{0,2}nh\s*ph"  # Độc lập - Tự do - Hạnh phúc
)
_SIGNATURE_RE = re.compile(r"^(tm\.|kt\.|t/m\b|ky chu tich$|pho chu tich$|chu tich( ubnd tinh)?$|truong ban$|\(h\)$)")
_RECIPIENTS_RE = re.compile(r"^n\w{0,3}i\s*nh\w{0,2}n\s*:?$")


def _is_page_number(line: str) -> bool:
    return bool(re.fullmatch(r"\s*(-\s*)?\d{1,3}(\s*-)?\s*", line))


def _is_noise(line: str) -> bool:
    """OCR debris: lines with almost no letters or digits ("•", ")", "> ¥", "</")."""
    s = line.strip()
    return bool(s) and sum(1 for c in s if c.isalnum()) < 2 and not re.fullmatch(r"[IVX]", s)


def _is_name_line(line: str) -> bool:
    words = line.split()
    return 2 <= len(words) <= 4 and all(w[:1].isupper() for w in words) and not any(c.isdigit() for c in line)


# --------------------------------------------------------------------------------------------
# Headings
# --------------------------------------------------------------------------------------------

_PART_RE = re.compile(
    r"^(quyet\s*d\S{0,3}nh\b|ke\s*hoach$|ke\s*hoach\s*:|chu\S{0,4}ng\s*tr\S{0,2}nh\s*h\S{0,2}nh\s*d\S{0,3}ng\s*$|"
    r"ph\w{0,2}\s+[l1i]\w{0,2}\.?\w{0,2}\s+(\d+[a-z]?|[ivx]+)\b|danh\s*m\w{0,3}c\b)"
)
_ROMAN_RE = re.compile(r"^[tl]?([IVX]{1,4}|[ivx]{1,4})\.\s*(\S.*)$")
_ARABIC_RE = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,2})\.?\s+(\S.*)$")
_LETTER_RE = re.compile(r"^([a-zđ¢])\)\s*(\S.*)$")
_DIEU_RE = re.compile(r"^(d\S{0,3}u)\s+(\d{1,2})\.\s*(.*)$")  # Điều / OCR "Diu", "Diêu"


@dataclass
class _Heading:
    level: int  # 0 = document part, 1 = Điều / roman, 2 = "1.", 3 = "1.1", 4 = "a)"
    title: str
    body: str = ""  # text that followed the heading marker on the same line (long "Điều 1. ...")


def _detect_heading(raw: str, md: bool) -> _Heading | None:
    """Classify one (markdown-stripped) line as a heading, or return None."""
    line = raw.strip()
    if not line:
        return None
    f = fold(line)
    m = _DIEU_RE.match(f)
    if m and line[:1] in "ĐD":  # "Điều 1. Ban hành kèm theo …" (the article text may follow on the line)
        head, _, rest = line.partition(".")
        rest = rest.strip()
        if len(rest) <= 60 and not rest.endswith("."):
            return _Heading(1, line.rstrip(":"))
        return _Heading(1, head.strip() + ".", rest)
    if len(line) > 220:
        return None
    f_part = re.sub(r"^[^a-z0-9]{1,4}", "", f)  # OCR debris before "Phụ lục" (") Phu luc II")
    if _PART_RE.match(f_part) and (len(line) <= 120) and (_is_upper_line(line) or md or f_part.startswith("ph")):
        return _Heading(0, re.sub(r"^[^\wÀ-ỹ]{1,4}", "", line).rstrip(":").strip())
    m = _ROMAN_RE.match(line)
    if m and len(line) <= 160 and (m.group(1).isupper() or _is_upper_line(m.group(2))):
        return _Heading(1, line)
    m = _ARABIC_RE.match(line)
    if m:
        num, rest = m.group(1), m.group(2)
        first = rest[:1]
        single_without_dot = "." not in num and not re.match(r"^\d{1,2}\.", line)
        too_long = len(line) > 110 and re.search(r"[.:]\s*$", line)
        if (
            (first.isupper() or first in '“"(')
            and len(line) <= 180
            and not rest.rstrip().endswith(";")
            and not single_without_dot
            and not too_long
        ):
            # "1.234 dịch vụ" (a number) is not a heading: its first word after the number is lower-case
            parts = [p for p in num.split(".") if p]
            if int(parts[0]) <= 30:
                return _Heading(1 + len(parts), line)
    m = _LETTER_RE.match(line)
    if m:
        rest = m.group(2)
        short = len(line) <= 100 and not re.search(r"[.;]\s*$", line)
        if (md and len(line) <= 160) or (short and rest[:1].isupper()):
            return _Heading(4, line)
        return None
    if md and line[:1].isupper():
        return _Heading(1, line)
    return None


# --------------------------------------------------------------------------------------------
# Paragraphs and chunking
# --------------------------------------------------------------------------------------------

_LIST_START_RE = re.compile(r"^([-–+•*]\s|\d{1,2}[.)]\s|[a-zđ]\)\s)")


def _ends_sentence(s: str) -> bool:
    return bool(re.search(r"[.;:!?]['\"”)]*\s*$", s))


def _join(prev: str, nxt: str) -> str:
    if re.search(r"\d-$", prev) and nxt[:1].isdigit():  # "2021-" + "2025"
        return prev + nxt
    return prev + " " + nxt


def _split_long(par: str, limit: int) -> list[str]:
    """Split an over-long paragraph on sentence boundaries, then on spaces."""
    if len(par) <= limit:
        return [par]
    sentences = []
    for sent in re.split(r"(?<=[.!?])\s+(?=[-–+“\"(0-9A-ZĐÀ-Ỹ])", par):
        # only a sentence that is still too long is cut at its semicolons
        sentences.extend(re.split(r"(?<=;)\s+", sent) if len(sent) > limit else [sent])
    out: list[str] = []
    cur = ""
    for s in sentences:
        while len(s) > limit:  # no punctuation (OCR): cut at the last space before the limit
            cut = s.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if cur:
                out.append(cur)
                cur = ""
            out.append(s[:cut].strip())
            s = s[cut:].strip()
        if cur and len(cur) + 1 + len(s) > limit:
            out.append(cur)
            cur = s
        else:
            cur = f"{cur} {s}".strip()
    if cur:
        out.append(cur)
    return out


def _chunk(paragraphs: list[str], limit: int = MAX_CHARS) -> list[str]:
    pieces: list[str] = []
    for p in paragraphs:
        pieces.extend(_split_long(p, limit))
    chunks: list[str] = []
    cur: list[str] = []
    size = 0
    for p in pieces:
        if cur and size + 1 + len(p) > limit:
            chunks.append("\n".join(cur))
            cur, size = [], 0
        cur.append(p)
        size += len(p) + 1
    if cur:
        chunks.append("\n".join(cur))
    if len(chunks) >= 2 and len(chunks[-1]) < MIN_TAIL and len(chunks[-2]) + len(chunks[-1]) <= limit * 1.15:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + "\n" + tail
    return chunks


# --------------------------------------------------------------------------------------------
# Tab-separated tables
# --------------------------------------------------------------------------------------------

# (pattern on the folded header cell, key)
_COLUMN_KEYS = [
    (r"^(so\s*tt|stt|so)$", "no"),
    (r"^(noi dung|nhiem vu|danh muc)", "content"),
    (r"chu tri", "owner"),
    (r"phoi hop", "partners"),
    (r"phan cong|theo doi", "supervisor"),
    (r"hien trang", "current_value"),
    (r"chi tieu cua (ubqg|ubnd|quoc gia)", "national_target"),
    (r"chi tieu cua tinh|muc tieu", "target"),
    (r"thoi gian", "deadline"),
    (r"ket qua|san pham", "result"),
    (r"ghi chu", "note"),
]
_FIELD_ORDER = [
    "indicator",
    "task",
    "current_value",
    "national_target",
    "target",
    "result",
    "owner",
    "partners",
    "supervisor",
    "deadline",
    "note",
]
_DEFAULT_LABELS = {
    "indicator": "Chỉ tiêu",
    "task": "Nhiệm vụ",
    "owner": "Đơn vị chủ trì",
    "partners": "Đơn vị phối hợp",
    "supervisor": "Thành viên BCĐ theo dõi, chỉ đạo",
    "current_value": "Hiện trạng",
    "national_target": "Chỉ tiêu quốc gia",
    "target": "Chỉ tiêu",
    "deadline": "Thời gian hoàn thành",
    "result": "Kết quả",
    "note": "Ghi chú",
}
_ROMAN_CELL_RE = re.compile(r"^([IVX]{1,4})\.?$")


def _column_key(cell: str) -> str | None:
    f = _squash(fold(strip_html(cell)))
    for pattern, key in _COLUMN_KEYS:
        if re.search(pattern, f):
            return key
    return None


def _is_header_row(cells: list[str]) -> bool:
    keys = [_column_key(c) for c in cells if c.strip()]
    return sum(1 for k in keys if k and k != "no") >= 2 and "content" in keys


@dataclass
class _Row:
    cells: dict[str, str]
    no: str = ""
    group: bool = False
    raw_content: str = ""


@dataclass
class _Table:
    keys: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    content_key: str = "task"
    rows: list[_Row] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)  # (no, content) items awaiting data cells

    def set_header(self, cells: list[str]) -> None:
        keys: list[str] = []
        for c in cells:
            k = _column_key(c) or f"col{len(keys)}"
            keys.append(k)
            label = _squash(strip_html(c))
            if k not in self.labels and k not in ("no", "content") and label:
                self.labels[k] = label.replace("BCD", "BCĐ")
        self.keys = keys
        if not self.rows and any(k in keys for k in ("target", "current_value", "national_target")):
            self.content_key = "indicator"


def _clean_cell(cell: str) -> str:
    return _squash(strip_html(cell))


def _is_bold_only(raw: str) -> bool:
    s = raw.strip()
    s = re.sub(r"^(<p>\s*)+|(\s*</p>)+$", "", s)
    return bool(re.fullmatch(r"<b>.*</b>", s, flags=re.S))


def _cell_complete(text: str) -> bool:
    return bool(re.search(r"[.;:!?)”\"]\s*$", text))


def _merge_cell(old: str, new: str) -> str:
    if not new:
        return old
    if not old:
        return new
    if old.endswith(new) or fold(old).endswith(fold(new)):
        return old  # PDF extraction repeats the tail of a cell on the next page ("… Truyền thông" + "Truyền thông")
    return _join(old, new)


def _parse_tab_table(lines: list[str], table: _Table) -> None:
    """Feed the tab-separated lines of one table (possibly spanning pages) into ``table``."""
    pairs: Counter = Counter()  # word pairs of the table, to re-attach cell fragments split by page breaks
    for line in lines:
        for cell in line.split("\t"):
            words = fold(_clean_cell(cell)).split()
            pairs.update(zip(words, words[1:], strict=False))
    for line in lines:
        if not line.strip():
            continue
        cells = line.split("\t")
        if _is_header_row(cells):
            table.set_header(cells)
            continue
        if not table.keys:
            continue
        values = {k: (cells[i] if i < len(cells) else "") for i, k in enumerate(table.keys)}
        raw_content = values.get("content", "")
        data = {k: _clean_cell(v) for k, v in values.items() if k not in ("no", "content")}
        no = _clean_cell(values.get("no", ""))

        # a cell holding several numbered items ("<p><b>III …</b></p> <p>1 …</p> <p>2 …</p>")
        segments = [s for s in (_clean_cell(x) for x in re.split(r"</p>\s*<p>", raw_content)) if s]
        if len(segments) >= 2 and sum(1 for s in segments if re.match(r"^(\d{1,2}|[IVX]{1,4})\s", s)) >= 2:
            items = []
            for s in segments:
                m = re.match(r"^([IVX]{1,4})\s+(.*)$", s)
                if m:
                    table.rows.append(_Row({"content": m.group(2)}, m.group(1), group=True))
                    continue
                m = re.match(r"^(\d{1,2})\s+(.*)$", s)
                if m:
                    items.append((m.group(1), m.group(2)))
                elif items:
                    items[-1] = (items[-1][0], _join(items[-1][1], s))
            if items:
                first_no, first_content = items[0]
                table.rows.append(_Row({"content": first_content, **data}, first_no))
                table.pending.extend(items[1:])
            continue

        content = _clean_cell(raw_content)
        if not no and "no" not in table.keys:
            m = re.match(r"^(\d{1,2})\s+(?=\S)(?!\d)(.*)$", content)
            if m:
                no, content = m.group(1), m.group(2)
        if not no:
            m = re.match(r"^([IVX]{1,4})\s+(\S.*)$", content)
            if m and _is_bold_only(raw_content):
                no, content = m.group(1), m.group(2)

        has_data = any(v and v != "-" for v in data.values())
        prev = table.rows[-1] if table.rows else None

        # data cells for an item queued from a multi-item cell
        if not content and has_data and table.pending:
            p_no, p_content = table.pending.pop(0)
            table.rows.append(_Row({"content": p_content, **data}, p_no))
            continue

        m = re.match(r"^([IVX]{1,4})\.?\s+(\S.*)$", no)
        if m and not content and not has_data:  # group title typed into the number column
            table.rows.append(_Row({"content": m.group(2)}, m.group(1), group=True))
            continue
        roman = _ROMAN_CELL_RE.match(no)
        if (roman or _is_bold_only(raw_content)) and not has_data:
            if prev is not None and prev.group and not prev.cells.get("content") and content:
                prev.cells["content"] = content  # "<b>I</b>" row followed by its bold title row
                continue
            table.rows.append(_Row({"content": content}, roman.group(1) if roman else no, group=True))
            continue

        if prev is not None and (  # a continuation of the previous row
            (not no and (not content or content[:1].islower() or not _cell_complete(prev.cells.get("content", ""))))
            or (no and no == prev.no and not prev.group)
        ):
            prev.cells["content"] = _merge_cell(prev.cells.get("content", ""), content)
            for k, v in data.items():
                target = _best_column(prev, k, v, pairs) if v[:1].islower() else k
                prev.cells[target] = _merge_cell(prev.cells.get(target, ""), v)
            continue
        if prev is not None and not prev.group:
            # a lower-case fragment opening a cell of a new row ends the same cell of the row above
            for k, v in list(data.items()):
                if v[:1].islower() and prev.cells.get(k, "").rstrip().endswith(","):
                    prev.cells[k] = _merge_cell(prev.cells[k], v)
                    data[k] = ""
        table.rows.append(_Row({"content": content, **data}, no))


def _tidy_value(v: str) -> str:
    return re.sub(r"\s*[;,]+$", "", _squash(v))


def _best_column(prev: _Row, key: str, fragment: str, pairs: Counter) -> str:
    """Column of ``prev`` that a lower-case continuation fragment most plausibly ends.

    The PDF extraction sometimes shifts a fragment into the neighbouring column ("Sở TN&MT" +
    "vị liên quan" while the partner cell ends in "… và các đơn"); the column whose last word most
    often precedes the fragment's first word in this table wins, else the fragment's own column.
    """
    first = (fold(fragment).split() or [""])[0]
    best, best_n = key, pairs[((fold(prev.cells.get(key, "")).split() or [""])[-1], first)]
    for k, v in prev.cells.items():
        if k in ("content",) or not v:
            continue
        n = pairs[((fold(v).split() or [""])[-1], first)]
        if n > best_n + 1:
            best, best_n = k, n
    return best


def _row_fields(table: _Table, row: _Row) -> dict[str, str]:
    fields: dict[str, str] = {}
    for k, v in row.cells.items():
        v = _tidy_value(v)
        if not v or v == "-" or k.startswith("col"):
            continue
        fields[table.content_key if k == "content" else k] = v
    if row.no:
        fields["no"] = row.no.rstrip(".")
    return fields


def _row_text(fields: dict[str, str], labels: dict[str, str]) -> str:
    parts = []
    for k in _FIELD_ORDER:
        if k in fields:
            label = labels.get(k) or _DEFAULT_LABELS[k]
            parts.append(f"{label}: {fields[k].rstrip('.;, ')}")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# Task annex whose column layout was lost by the OCR (QĐ 2207 Phụ lục 2 / 2A)
# --------------------------------------------------------------------------------------------

_DEADLINE_RE = re.compile(
    r"(?P<quy>\bQ\S{0,3}\s*(?:\n\s*)*(?P<q>I{1,3}V?|IV|JV|W|P/|P1|1V|111|11|I)\s*/\s*(?P<qy>2\s*0\s*\d\s*\d))"
    r"|(?P<bare>(?<![\w/])(?P<b>IV|JV|W|111|11|III|II)\s*/\s*(?P<by>2\s*0\s*\d\s*\d))"
    r"|(?P<thang>Th\S{0,3}ng\s*(?:\n\s*)*(?P<m>\d{1,2})\s*/\s*(?P<my>2\s*0\s*\d\s*\d))"
    r"|(?P<hang>\b(?:H\S{0,3}g?|Han)\s+n\S{0,2}(?:m|rn)\b(?=\s*(?:\d{1,2}\s*[.,•]?)?[^\n]{0,6}$))"
    r"|(?P<theo>Theo\s+K\S{0,2}\s*(?:\n\s*)*hoach\s+c\S{0,3}\s+B\S{0,2}\s*(?:\n\s*)*Th\S{0,2}ng\s+tin\s+v\S{0,2}\s*(?:\n\s*)*Truy\S{0,3}n\s+th\S{0,2}ng)"
    r"|(?P<year>^\s*20\d\d\s*$)",
    re.M,
)
_QUARTER_FIX = {"JV": "IV", "W": "IV", "P/": "IV", "P1": "IV", "1V": "IV", "111": "III", "11": "II"}
_UNIT_START_RE = re.compile(
    r"^(s\S{0,3}\s+(thong|truy|n\S?i\s*v|noi|tai|ke\s|k\s|khoa|giao|lao|xay|y\s*t|du\s|nong|cong\s*th|ngoai|tu\s*ph|van\s*h)|"
    r"cac\s+(s\S{0,2}\s*[,.]|s\S{0,2}\s+(ban|nganh|ngan)|sa|bo|co\s*quan|don\s*v|doanh)|van\s*ph|ubnd|uy\s*ban|\(fy|"
    r"b\S{0,2}\s+thong\s+tin|ban\s+(quan|to|t\s)|cong\s+an|ngan\s+hang|doanh\s+nghi|cac\s+doanh|cong\s+thuc?ong|so\s+c)"
)
_UNIT_INLINE_RE = re.compile(
    r"\s(s\S{0,3}\s+(thong\s+tin|n\S?i\s*v\S{0,2}\b|noi\s*v|tai\s*ch|ke\s*ho|khoa\s*h|du\s*l|lao\s*d)|cac\s+s\S{0,2}[ ,]|"
    r"cac\s+d\S{0,3}\s+v|van\s*ph\S{0,3}ng|b\S{0,2}\s+thong\s+tin|ngan\s+hang|cong\s+an\s+tinh)"
)
_GROUP_RE = re.compile(
    r"^([ivx]{1,4}\s+)?(nh\S{0,4}\s*nh\S{0,4}\s*v|nh\S{0,4}\s+v\S{0,2}\s+th|chuy\S{0,2}\s*d\S{0,2}\s*s|n\S{1,2}m\s+20\d\d)"
)
# repeated table header lines ("So TT", "Nội dung  Đơn vị chủ trì  Đơn vị phối hợp", "Thời gian", "hoàn thành", "Ghi chú")
_ANNEX_HEADER_RES = [
    re.compile(r"^\W*(s|so|stt|tt|s\s*tt|so\s*tt|r|t)\W*$"),
    re.compile(r"^\W*(ghi|gui|clii|cliii|chii|chil|chu|chi|cliu|chit|chit|ghi chu)\W*$"),
    re.compile(r"^\W*t\S{0,4}\s*(gian|ori\S*)\W*$"),
    re.compile(r"^\W*ho\S{0,3}n?\s*th\S{0,4}\W*$"),
    re.compile(r"(dung|lung|mug).{0,12}(d\S{0,2}n\s*v|doii\s*v|chu\s*t)"),
]


def _is_annex_header(f: str) -> bool:
    return len(f) <= 60 and any(r.search(f) for r in _ANNEX_HEADER_RES)


def _norm_deadline(m: re.Match) -> str:
    if m.group("quy") or m.group("bare"):
        q = (m.group("q") or m.group("b")).upper()
        y = re.sub(r"\s", "", m.group("qy") or m.group("by"))
        return f"Quý {_QUARTER_FIX.get(q, q)}/{y}"
    if m.group("thang"):
        return f"Tháng {m.group('m')}/{re.sub(r'[^0-9]', '', m.group('my'))}"
    if m.group("hang"):
        return "Hàng năm"
    if m.group("theo"):
        return "Theo Kế hoạch của Bộ Thông tin và Truyền thông"
    return m.group("year").strip()


def _split_units(lines: list[str]) -> tuple[str, str]:
    """Owner = first unit (continued while it ends with ';' or the next line is not a unit start)."""
    owner: list[str] = []
    partners: list[str] = []
    for line in lines:
        f = fold(line)
        if not owner:
            m = _UNIT_INLINE_RE.search(f, 3)
            if m and m.start() > 3:
                owner.append(line[: m.start()].strip())
                partners.append(line[m.start() :].strip())
            else:
                owner.append(line)
            continue
        if partners or (_UNIT_START_RE.match(f) and not owner[-1].rstrip().endswith((";", ","))):
            partners.append(line)
        else:
            owner.append(line)
    return _squash(" ".join(owner)), _squash(" ".join(partners))


def _parse_layout_annex(lines: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Rebuild (group, fields) rows from an annex whose table columns were flattened into lines."""
    text = "\n".join(lines)
    rows: list[tuple[str, dict[str, str]]] = []
    group = ""
    pos = 0
    for m in _DEADLINE_RE.finditer(text):
        block = text[pos : m.start()]
        pos = m.end()
        blines = [b.strip() for b in block.split("\n")]
        blines = [b for b in blines if b and not _is_noise(b)]
        content: list[str] = []
        units: list[str] = []
        no = ""
        expanded = []
        for b in blines:  # "… cüa tinh. Sâ Thông tin và Truyn thông Các sty, …": the units follow on the same line
            for m2 in re.finditer(r"(?<=\D)[.;]\s+(?=\S)", b):
                if _UNIT_START_RE.match(fold(b[m2.end() :])):
                    expanded.extend([b[: m2.end()].strip(), b[m2.end() :].strip()])
                    break
            else:
                expanded.append(b)
        for b in expanded:
            f = fold(b)
            if not units and not content and _is_annex_header(f):
                continue
            g = _GROUP_RE.match(f)
            if (
                g
                and len(b) < 120
                and ((g.group(1) and len(b) < 90) or (not units and not content and f.startswith("nh")))
            ):
                group = b  # a group line inside a block ends a garbled row: what came before is dropped
                content, units, no = [], [], ""
                continue
            if not units and re.fullmatch(r"\d{1,2}\s*[.,]?\s*[•.]?", b) and sum(len(c) for c in content) < 80:
                no = re.sub(r"\D", "", b)  # a row number: short debris before it belonged to the row above
                content = []
                continue
            if not content and not units:
                mm = re.match(r"^(\d{1,2})\s*[.,]?\s+(\S.*)$", b)
                if mm and not re.match(r"^\d{1,2}\s*/", b):
                    no, b = mm.group(1), mm.group(2)
                    f = fold(b)
            if content and (
                units
                or (
                    _UNIT_START_RE.match(f)
                    and (len(b) <= 32 or _ends_sentence(content[-1]) or content[-1].rstrip().endswith(")"))
                )
            ):
                units.append(b)
            else:
                content.append(b)
        # a trailing row number may sit after the units ("… Quý IV/2021 32 •")
        if not content:
            continue
        owner, partners = _split_units(units)
        fields = {"task": _squash(" ".join(content)), "deadline": _norm_deadline(m)}
        if owner:
            fields["owner"] = owner
        if partners:
            fields["partners"] = partners
        if no:
            fields["no"] = no
        rows.append((group, fields))
    return rows


def _layout_annex_ok(rows: list[tuple[str, dict[str, str]]]) -> bool:
    if len(rows) < 5:
        return False
    with_owner = sum(1 for _, f in rows if f.get("owner") and len(f["task"]) >= 15)
    return with_owner / len(rows) >= 0.7


# --------------------------------------------------------------------------------------------
# OCR repair (search_text of OCR-damaged documents)
# --------------------------------------------------------------------------------------------

# Seed phrases (correctly spelled) so the repair has the domain's core words and word pairs even
# when no clean document is available to learn from.
_SEED_TEXT = """
chuyển đổi số, đô thị thông minh gắn với cải cách hành chính. Kế hoạch chuyển đổi số tỉnh Bình Dương.
Bà Rịa - Vũng Tàu. Ủy ban nhân dân tỉnh. Sở Thông tin và Truyền thông. Sở Nội vụ. Văn phòng UBND tỉnh.
thủ tục hành chính, dịch vụ công trực tuyến mức độ 3, mức độ 4, Cổng Dịch vụ công quốc gia.
hệ thống đường dây nóng 1022 tiếp nhận yêu cầu, phản ánh, kiến nghị; giải đáp thỏa đáng.
tổng đài tự động giải đáp. tỷ lệ hồ sơ giải quyết. người dân và doanh nghiệp hài lòng.
chính quyền điện tử, chính quyền số, kinh tế số, xã hội số, công nghệ thông tin, ứng dụng.
hạ tầng số, nền tảng số, dữ liệu số, trung tâm dữ liệu, an toàn thông tin, an ninh mạng.
nhân lực, đào tạo, bồi dưỡng, kỹ năng số, thanh toán không dùng tiền mặt, thương mại điện tử.
Nghị quyết, Quyết định, Ban Chấp hành Đảng bộ tỉnh, Ban Chỉ đạo, giai đoạn, định hướng đến năm 2030.
trong đó, cấp tỉnh, cấp huyện, cấp xã, hàng năm, quý, tháng, chủ trì, phối hợp, thời gian hoàn thành.
"""

_VOWELS = set("aeiouy")
# How a damaged character may stand for a correct (folded) one: cost of substituting damaged->correct.
_SYMBOL_SUBS = {
    "0": {"o": 0.1},
    "1": {"l": 0.1, "i": 0.15, "u": 0.4},
    "2": {"e": 0.2},
    "3": {"a": 0.2},
    "4": {"a": 0.1},
    "5": {"o": 0.2, "s": 0.4},
    "6": {"o": 0.1},
    "8": {"a": 0.3, "e": 0.3, "o": 0.4},
    "9": {"o": 0.2, "q": 0.4},
    "&": {"o": 0.2, "e": 0.2, "a": 0.3},
    "@": {"e": 0.3, "o": 0.3, "a": 0.3},
    "b": {"o": 0.35, "a": 0.5},
    "d": {"o": 0.35, "a": 0.45, "u": 0.5},
    "y": {"u": 0.2, "i": 0.25},
    "l": {"i": 0.15},
    "i": {"l": 0.15, "u": 0.35},
    "t": {"i": 0.5},
    "c": {"e": 0.5, "o": 0.4},
    "f": {"i": 0.3},
    "h": {"n": 0.5},
    "n": {"h": 0.5, "u": 0.5},
    "u": {"n": 0.5},
    "g": {"q": 0.5, "y": 0.5},
    "r": {"t": 0.5},
    "m": {"n": 0.5},
}
_PROTECTED = {"zalo", "wifi", "wan", "web", "website", "www", "iot", "ipv6", "ipv4", "gis", "callbot", "covid"}


def _sub_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    special = _SYMBOL_SUBS.get(a)
    if special and b in special:
        return special[b]
    if a in _VOWELS and b in _VOWELS:
        return 0.4  # a diacritic read as another one, then folded ("théng" for "thông")
    if not a.isalpha():
        return 0.6 if b in _VOWELS else 0.9
    return 1.0


def _ins_cost(b: str) -> float:  # a character of the correct word that the OCR dropped
    return 0.3 if b in _VOWELS else 0.9


def _del_cost(a: str) -> float:  # a spurious character in the damaged word
    return 0.4 if not a.isalpha() else 1.0


_SUB_MEMO: dict[tuple[str, str], float] = {}


def _edit(damaged: str, word: str, limit: float) -> float:
    """Confusion-weighted edit distance from a damaged token to a correct word (stops above ``limit``)."""
    memo = _SUB_MEMO
    ins = [_ins_cost(b) for b in word]
    m = len(word)
    prev = [0.0] * (m + 1)
    for j in range(1, m + 1):
        prev[j] = prev[j - 1] + ins[j - 1]
    for a in damaged:
        d = _del_cost(a)
        cur = [prev[0] + d] + [0.0] * m
        best = cur[0]
        for j in range(1, m + 1):
            b = word[j - 1]
            sc = memo.get((a, b))
            if sc is None:
                sc = memo[(a, b)] = _sub_cost(a, b)
            v = prev[j - 1] + sc
            if prev[j] + d < v:
                v = prev[j] + d
            if cur[j - 1] + ins[j - 1] < v:
                v = cur[j - 1] + ins[j - 1]
            cur[j] = v
            if v < best:
                best = v
        if best > limit:
            return limit + 1.0
        prev = cur
    return prev[m]


# document codes ("46/2018/tt-byt", "17/nq-cp") | words (may hold OCR digits/symbols) | numbers
_CODE = r"\d+(?:/\d+)*/[a-z0-9&]+(?:-[a-z0-9&]+)*"
_TOKEN_RE = re.compile(_CODE + r"|[0-9a-z&@€¢§¥!ç]*[a-z&@€¢§¥!ç][0-9a-z&@€¢§¥!ç]*|\d+(?:[.,/]\d+)*%?", re.I)
_ROMAN_TOKEN_RE = re.compile(r"^(ii|iii|iv|vii|viii|ix|xi{1,3}|x{2,3})$")


def _is_number(t: str) -> bool:
    """Numbers and document codes are kept as they are."""
    return bool(re.fullmatch(r"\d+(?:[.,/]\d+)*%?", t)) or "/" in t or "-" in t


def _pre_map(text: str) -> str:
    """Character rules applied before folding (each one is an OCR confusion seen in these scans)."""
    text = re.sub(
        r"\bP(?=[aeiouyáàảãạâấầẩẫậăắằẳẵặéèẻẽẹêếềểễệíìỉĩịóòỏõọôốồổỗộơớờởỡợúùủũụưứừửữựAEIOUYÁÀÂĂÉÊÍÓÔƠÚƯ])", "D", text
    )  # "Đ" read as "P": "Pang"→"Đang", "PAu tư"→"Đầu tư" (Vietnamese has only "Ph")
    text = re.sub(r"€(?=\d)", "8", text)  # "€16" = 816
    text = text.replace("€", "e").replace("¢", "e").replace("ç", "o").replace("Ç", "O")
    text = text.replace("§", "y").replace("¥", "y")  # "k§ năng", "k¥ thuật" = kỹ
    text = re.sub(r"(?<=[A-Za-z])!(?=[A-Za-z]|\b)", "i", text)  # "T!NH", "NGH!" = TỈNH, NGHỊ
    # "c.p", "t.ng", "ngu?i", "d%rng", "hu'ó'ng": a mark left where a letter was lost
    text = re.sub(r"(?<=[a-zà-ỹ])[.?%'’`](?=[a-zà-ỹ])", "", text)
    return text


# Word pairs the scans damage in a way no letter rule can undo, repaired in context (folded text).
_PHRASE_FIXES = [
    (r"\bt[yi] (?:[1il][8e&]|l[eg]|18)\b", "ty le"),  # "ty 18", "Ty 1&" = tỷ lệ
    (r"\bchap hanh (?:bang|pang) bo\b", "chap hanh dang bo"),  # "Ban Chap hành Bang b tinh" = Đảng bộ
    (r"\bchuyen (?:boi|bdi|ddi) so\b", "chuyen doi so"),  # upper-case "CHUYEN BOI SO" = ĐỔI
]


def _token_rules(t: str) -> str:
    """Letter-sequence rules on a folded token: sequences that do not exist in Vietnamese spelling."""
    if t in _PROTECTED:
        return t
    t = t.replace("rn", "m")  # "narn" = năm
    t = re.sub(r"^11(?=[aeiou])", "n", t)  # "11am" = năm ("n" read as two strokes)
    t = re.sub(r"(?<=[a-z])11$", "u", t)  # "v11" = vụ
    t = t.replace("ii", "u")  # "diing" = dụng, "phiic" = phục
    t = re.sub(r"(?<=[a-z])ir", "u", t)  # "tir" = từ/tử, "chirc" = chức, "trirc" = trực
    t = re.sub(r"^1r", "u", t)  # "1rng" = ứng
    t = t.replace("j", "i")  # "djnh" = định, "nghj" = nghị, "dja" = địa
    t = t.replace("z", "u").replace("w", "u")  # "phz" = phủ, "dwoc" = được
    t = re.sub(r"^[ti]mg$", "ung", t)  # "tmg"/"img" = ứng
    return t


@dataclass
class OcrRepairer:
    """Folds and repairs OCR-damaged Vietnamese text into index words.

    1. Character rules before folding (``_pre_map``): "Đ" read as "P" ("Pang" → Đang; Vietnamese has
       no P + vowel), "€16" → 816, "€"/"¢"/"ç"/"§"/"¥"/"!" standing for a vowel, a mark left inside a
       word where a letter was lost ("c.p", "ngu?i", "hu'ó'ng").
    2. Diacritics folded, then letter sequences that do not exist in Vietnamese spelling
       (``_token_rules``): "ir"→u (trirc, chirc), "ii"→u (diing), "rn"→m (narn), "j"→i (djnh, Nghj),
       "z"/"w"→u (phz, dwoc), "11" for n/u, "tmg"/"img" → ứng.
    3. Every remaining token that is not a known word is matched against a lexicon of correctly
       spelled, folded syllables with a confusion-weighted edit distance (``_edit``): cheap are a
       dropped vowel (QĐ 2207 lost every letter with two diacritics: "Chuyn di s"), a vowel read as
       another vowel (Bình Dương's font: "théng" for thông), a look-alike digit ("s6"→so, "t5i"→tối,
       "h9c"→học), "d"/"b" for "ô" ("hd so", "dbi").  Among candidates the one that fits its
       neighbours best wins (positive pointwise mutual information of word pairs in the lexicon).
       Short real words ("di", "tin", "thit") are replaced only when the context clearly asks for
       another word ("chuyen di so" → "chuyen doi so").
    4. Three phrase fixes no letter rule can make (``_PHRASE_FIXES``): "ty 18" → tỷ lệ,
       "Chap hành Bang bộ" → Đảng bộ, "CHUYEN BOI SO" → đổi.

    The lexicon is learnt from the clean plan documents (``from_texts``) plus ``_SEED_TEXT``, a few
    correctly spelled domain phrases; nothing is rewritten sentence by sentence.
    """

    unigrams: Counter = field(default_factory=Counter)
    bigrams: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._by_first: dict[str, list[str]] = defaultdict(list)  # candidate words by first letter
        for w in self.unigrams:
            if w.isalpha() and len(w) <= 8:
                self._by_first[w[0]].append(w)
        self._cache: dict[str, list[tuple[str, float]]] = {}
        self._lines: dict[str, str] = {}
        self._total = sum(self.unigrams.values()) + 0.5 * (len(self.unigrams) + 1)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> OcrRepairer:
        """Learn the lexicon (folded words and word pairs) from correctly spelled texts plus the seed."""
        unigrams: Counter = Counter()
        bigrams: Counter = Counter()
        for text in list(texts) + [_SEED_TEXT]:
            for line in fold(_normalize_unicode(strip_html(text))).split("\n"):
                # single consonants are list labels ("b)"), not words; numbers are not words either
                toks = [
                    t
                    for t in _TOKEN_RE.findall(line)
                    if not _is_number(t) and (len(t) > 1 or t in "aeiouy") and not _ROMAN_TOKEN_RE.match(t)
                ]
                unigrams.update(toks)
                bigrams.update(zip(toks, toks[1:], strict=False))
        return cls(unigrams, bigrams)

    # -- candidates ---------------------------------------------------------------------------
    def _candidates(self, t: str) -> list[tuple[str, float]]:
        if t in self._cache:
            return self._cache[t]
        known = t in self.unigrams
        limit = 0.45 if known else (0.75 if len(t) <= 2 else 1.05)
        firsts = {t[0]}
        firsts.update(b for b, _ in (_SYMBOL_SUBS.get(t[0]) or {}).items())
        if t[0] in _VOWELS:
            firsts.update(_VOWELS)  # the damaged letter may be the vowel itself ("énh" = ánh)
        out = []
        for f0 in firsts:
            for w in self._by_first.get(f0, ()):
                if w == t or abs(len(w) - len(t)) > 2:
                    continue
                e = _edit(t, w, limit)
                if e <= limit:
                    out.append((w, e))
        out.sort(key=lambda x: x[1])
        out = out[:25]
        self._cache[t] = out
        return out

    def _assoc(self, a: str, b: str) -> float:
        """Positive, discounted pointwise mutual information of the word pair (a, b) in the lexicon."""
        c = self.bigrams[(a, b)]
        if not c:
            return 0.0
        return max(0.0, math.log((c - 0.5) * self._total / (self.unigrams[a] * self.unigrams[b])))

    def _score(self, w: str, e: float, left: str | None, right: str | None) -> float:
        """Edit cost first (it is the strongest evidence), then fit with the neighbours, then frequency."""
        s = -5.0 * e + 0.3 * math.log((self.unigrams[w] + 0.5) / self._total)
        if left:
            s += 0.5 * self._assoc(left, w)
        if right:
            s += 0.5 * self._assoc(w, right)
        return s

    # -- repair -------------------------------------------------------------------------------
    def repair(self, text: str) -> str:
        out_lines = []
        for line in fold(_pre_map(_normalize_unicode(text))).split("\n"):
            if line not in self._lines:  # headings repeat on every passage of a section or table
                self._lines[line] = " ".join(self._repair_tokens(_TOKEN_RE.findall(line)))
            out_lines.append(self._lines[line])
        repaired = " ".join(x for x in out_lines if x)
        for pattern, fixed in _PHRASE_FIXES:
            repaired = re.sub(pattern, fixed, repaired)
        return repaired

    def _repair_tokens(self, raw: list[str]) -> list[str]:
        toks = [
            t if (_is_number(t) or t in self.unigrams or _ROMAN_TOKEN_RE.match(t)) else _token_rules(t) for t in raw
        ]
        result = list(toks)
        for _ in range(2):  # the second pass sees repaired right-hand neighbours
            for i, t in enumerate(toks):
                if _is_number(t) or len(t) > 9 or _ROMAN_TOKEN_RE.match(t):
                    continue
                known = t in self.unigrams
                if known and (len(t) > 4 or self.unigrams[t] > 400):
                    continue
                cands = self._candidates(t)
                if not cands:
                    continue
                left = result[i - 1] if i and result[i - 1] in self.unigrams else None
                right = result[i + 1] if i + 1 < len(result) and result[i + 1] in self.unigrams else None
                best_w, best_s = max(((w, self._score(w, e, left, right)) for w, e in cands), key=lambda x: x[1])
                if known:
                    # a real but short word ("di", "tin", "thit") is replaced only when its
                    # neighbours clearly ask for another one ("chuyen di so" -> "chuyen doi so")
                    ctx_best = (self.bigrams[(left, best_w)] if left else 0) + (
                        self.bigrams[(best_w, right)] if right else 0
                    )
                    ctx_own = (self.bigrams[(left, t)] if left else 0) + (self.bigrams[(t, right)] if right else 0)
                    if not (best_s > self._score(t, 0.0, left, right) + 0.3 and ctx_best >= 3 and ctx_own == 0):
                        continue
                result[i] = best_w
        return result


_REPAIRERS: dict[tuple, OcrRepairer] = {}


def _repairer_for(plans_dir: Path) -> OcrRepairer:
    """Repairer learnt from the clean (not OCR-damaged) documents of ``plans_dir``, cached per content."""
    texts = []
    try:
        docs = load_plan_documents(plans_dir)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        docs = []
    for d in docs:
        p = plans_dir / f"{d.doc_id}.txt"
        if not d.ocr_damaged and p.exists():
            texts.append(p.read_text(encoding="utf-8"))
    key = tuple(hash(t) for t in texts)
    if key not in _REPAIRERS:
        _REPAIRERS[key] = OcrRepairer.from_texts(texts)
    return _REPAIRERS[key]


def default_repairer() -> OcrRepairer:
    """Repairer learnt from the clean documents of the repository's knowledge/plans (cached)."""
    return _repairer_for(DEFAULT_PLANS_DIR)


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------


def _doc_label(doc: PlanDocument) -> str:
    parts = [doc.province]
    if doc.number:
        parts.append(doc.number)
    parts.append(doc.title)
    return " | ".join(p for p in parts if p)


class _Builder:
    def __init__(self, doc: PlanDocument, repairer: OcrRepairer | None) -> None:
        self.doc = doc
        self.repairer = repairer
        self.passages: list[PlanPassage] = []
        self.label = _doc_label(doc)

    def add(self, kind: Literal["section", "table_row"], heading: str, text: str,
            fields: dict[str, str] | None = None) -> None:
        text = text.strip()
        if not text:
            return
        search = f"{self.label}\n{heading}\n{text}"
        if self.doc.ocr_damaged and self.repairer is not None:
            search += "\n" + self.repairer.repair(f"{heading}\n{text}")
        if "ty le" in search:
            search += " ti le"  # "tỉ lệ" and "tỷ lệ" are both used by people asking
        self.passages.append(
            PlanPassage(
                passage_id=f"{self.doc.doc_id}#{len(self.passages) + 1}",
                doc_id=self.doc.doc_id,
                kind=kind,
                heading=heading,
                text=text,
                search_text=search,
                fields=dict(fields or {}),
            )
        )


def _preclean_lines(text: str) -> list[str]:
    """Drop motto headers, page numbers, OCR debris, recipient lists and signature blocks."""
    out: list[str] = []
    lines = _normalize_unicode(text).split("\n")
    skip_list = False
    after_sig = 0
    for raw in lines:
        line = raw.rstrip(" \n")
        if "\t" in line:  # table rows are cleaned cell by cell later
            skip_list = False
            after_sig = 0
            out.append(line)
            continue
        s = _strip_markdown(line).strip()
        f = fold(s)
        if not s:
            out.append("")
            continue
        if _MOTTO_RE.search(f):
            continue
        if _RECIPIENTS_RE.match(f) or f.startswith("noi nhan"):
            skip_list = True
            continue
        if skip_list:
            if s.startswith(("-", "–")) or len(s) < 3:
                continue
            skip_list = False
        if _SIGNATURE_RE.match(f):
            after_sig = 3
            continue
        if after_sig and _PART_RE.match(f):
            after_sig = 0
        if after_sig:
            after_sig -= 1
            if (
                _is_name_line(s)
                or _SIGNATURE_RE.match(f)
                or (_is_upper_line(s) and len(s) < 40 and not _PART_RE.match(f))
            ):
                continue
            after_sig = 0
        if _is_page_number(s) or _is_noise(s):
            continue
        out.append(line)
    return out


def split_plan(doc: PlanDocument, text: str) -> list[PlanPassage]:
    """Split one plan document into section passages and table-row passages."""
    return _split(doc, text, default_repairer() if doc.ocr_damaged else None)


_ANNEX_TITLE = "Phụ lục kèm theo"


def _split(doc: PlanDocument, text: str, repairer: OcrRepairer | None) -> list[PlanPassage]:
    b = _Builder(doc, repairer)
    lines = _preclean_lines(text)
    stack: list[_Heading] = []
    paragraphs: list[str] = []
    last_heading_line: _Heading | None = None  # the heading just read (for wrapped headings)
    heading_continued = False
    after_closing = False  # after "Trên đây là Kế hoạch …" (the closing formula)

    def path() -> str:
        return " > ".join(_squash(h.title) for h in stack)

    def flush() -> None:
        nonlocal paragraphs
        pars = [_squash(p) for p in paragraphs if _squash(p)]
        paragraphs = []
        if not pars:
            return
        for chunk in _chunk(pars):
            b.add("section", path(), chunk)

    def push(h: _Heading) -> None:
        nonlocal stack
        if h.level == 0:
            stack = [h]
        else:
            while stack and stack[-1].level >= h.level:
                stack.pop()
            stack.append(h)

    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if "\t" in line:
            j = i
            while j < n and ("\t" in lines[j] or not lines[j].strip()):
                j += 1
            flush()
            last_heading_line = None
            _emit_tab_table(b, lines[i:j], path())
            i = j
            continue
        md = bool(re.match(r"^\s*(#{1,6}\s|\*\*)", line))
        s = _strip_markdown(line).strip()
        if not s:
            i += 1
            continue
        h = _detect_heading(s, md)
        if h is not None and not md and h.level == 1 and not h.body and _DIEU_RE.match(fold(h.title)):
            nxt = next((x.strip() for x in lines[i + 1 : i + 4] if x.strip()), "")
            head, _, rest = h.title.partition(".")
            if rest.strip() and nxt[:1].islower() and len(nxt) > 60:  # "Điều 1. Phê duyệt …" wrapped
                h = _Heading(1, head.strip() + ".", rest.strip())
        if h is not None and not md and h.level >= 2:
            # a hard-wrapped paragraph that merely starts like a heading ("a) Người đứng đầu … cam" +
            # "hứng trong chuyển đổi số …;") is a paragraph, not a heading
            nxt = next((x.strip() for x in lines[i + 1 : i + 4] if x.strip()), "")
            if nxt[:1].islower() and not _LIST_START_RE.match(nxt) and (len(nxt) > 60 or re.search(r"[,;]\s*$", nxt)):
                h = None
        # a heading wrapped over two lines: the next line continues it in lower case (once)
        if (
            h is None
            and last_heading_line is not None
            and not heading_continued
            and not paragraphs
            and s[:1].islower()
            and not _LIST_START_RE.match(s)
            and not _ends_sentence(last_heading_line.title)
            and (md or len(last_heading_line.title) >= 45)
            and len(s) <= 100
        ):
            last_heading_line.title = _squash(last_heading_line.title + " " + s)
            heading_continued = True
            if (
                not md
                and last_heading_line.level >= 2
                and re.search(r"[.;]\s*$", last_heading_line.title)
                and stack
                and stack[-1] is last_heading_line
            ):
                # "b) Tư vấn lộ trình …" + "nghiệp." was a one-item paragraph, not a heading
                stack.pop()
                paragraphs.append(last_heading_line.title)
                last_heading_line = None
            i += 1
            continue
        if h is not None:
            # a damaged annex without table layout: rebuild rows from the line stream
            if h.level == 0 and doc.ocr_damaged and re.match(r"^ph", fold(h.title)):
                annex = _layout_annex(lines, i)
                if annex is not None:
                    title_lines, rows, j = annex
                    flush()
                    push(h)
                    if title_lines:
                        h.title = _squash(h.title + " – " + " ".join(title_lines))
                    base = path()
                    for group, fields in rows:
                        heading = f"{base} > {_squash(group)}" if group else base
                        b.add("table_row", heading, _row_text(fields, _DEFAULT_LABELS), fields)
                    last_heading_line = None
                    i = j
                    continue
            flush()
            if h.level == 0:
                after_closing = False
            if h.level == 0 and stack and stack[-1].level == 0 and not paragraphs and last_heading_line is stack[-1]:
                # "PHỤ LỤC I" directly followed by "DANH MỤC CHỈ TIÊU ..." → one part title
                stack[-1].title = f"{stack[-1].title} – {h.title}"
            else:
                push(h)
            last_heading_line = stack[-1]
            heading_continued = False
            if h.body:
                paragraphs.append(h.body)
                last_heading_line = None
            i += 1
            continue
        # part title continued by an upper-case subtitle line ("PHỤ LỤC I" / "DANH MỤC …")
        if (
            last_heading_line is not None
            and last_heading_line.level == 0
            and not paragraphs
            and _is_upper_line(s)
            and len(s) <= 160
        ):
            last_heading_line.title = f"{last_heading_line.title} – {s}"
            i += 1
            continue
        last_heading_line = None
        if after_closing and stack and stack[0].title != _ANNEX_TITLE:
            flush()
            stack = [_Heading(0, _ANNEX_TITLE)]
        if re.match(r"^tren day la\b", fold(s)):
            after_closing = True
        prev = paragraphs[-1] if paragraphs else ""
        new_par = _ends_sentence(prev) and (
            s[:1].isupper() or s[:1] in '“"(' or (s[:1].isdigit() and not prev.rstrip().endswith((";", ",")))
        )  # "… tổ chức;" + "66,3% giải đáp …" is one sentence wrapped by the scan
        if (
            paragraphs
            and not _LIST_START_RE.match(s)
            and not new_par
            and not (_is_upper_line(s) and len(s) > 12)
            and not _is_upper_line(prev)
        ):
            paragraphs[-1] = _join(paragraphs[-1], s)
        else:
            paragraphs.append(s)
        i += 1
    flush()
    return b.passages


def _layout_annex(lines: list[str], i: int) -> tuple[list[str], list[tuple[str, dict[str, str]]], int] | None:
    """Rows of the annex whose part heading is ``lines[i]``, if its table can be rebuilt.

    Returns (title lines, rows, index of the line after the annex) or None (then the annex is split
    into ordinary section passages).
    """
    n = len(lines)
    j = i + 1
    while j < n:
        hh = _detect_heading(_strip_markdown(lines[j]).strip(), False)
        if hh is not None and hh.level == 0 and re.match(r"^ph", fold(hh.title)):
            break
        j += 1
    # title lines up to "(theo Quyết định …)" / "THEO NHÓM NHIỆM VỤ:" / "B. THEO TIẾN ĐỘ …:"
    k = i + 1
    title_lines: list[str] = []
    while k < j and k < i + 8:
        t = lines[k].strip()
        k += 1
        if not t:
            continue
        ft = fold(t)
        if re.search(r"\btheo\b", ft) or ft.endswith(":"):
            while k < j and (not lines[k].strip() or re.search(r"\btheo\b|:\s*$", fold(lines[k]))):
                k += 1
            break
        title_lines.append(t)
    rows = _parse_layout_annex(lines[k:j])
    return (title_lines, rows, j) if _layout_annex_ok(rows) else None


def _emit_tab_table(b: _Builder, lines: list[str], heading: str) -> None:
    table = _Table()
    _parse_tab_table(lines, table)
    for p_no, p_content in table.pending:  # items that never received their data cells
        table.rows.append(_Row({"content": p_content}, p_no))
    group = ""
    for row in table.rows:
        if row.group:
            title = row.cells.get("content", "")
            group = _squash(f"{row.no}. {title}" if row.no and title else (row.no or title))
            continue
        fields = _row_fields(table, row)
        content = fields.get(table.content_key, "")
        if not content:
            continue
        h = f"{heading} > {group}" if group else heading
        b.add("table_row", h, _row_text(fields, table.labels), fields)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _plans_dir(knowledge_dir: Path) -> Path:
    knowledge_dir = Path(knowledge_dir)
    if (knowledge_dir / "plans" / "documents.yml").exists():
        return knowledge_dir / "plans"
    return knowledge_dir


def _iso(value: object) -> str:
    """A YAML date (parsed or quoted) as an ISO string; "" when absent."""
    if not value:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def load_plan_documents(knowledge_dir: Path) -> list[PlanDocument]:
    """Metadata of the plan documents, from ``plans/documents.yml`` (order of the file)."""
    path = _plans_dir(knowledge_dir) / "documents.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = data.get("documents", data) if isinstance(data, dict) else data
    docs = []
    for e in entries:
        docs.append(
            PlanDocument(
                doc_id=str(e["doc_id"]),
                title=str(e["title"]),
                number=str(e.get("number") or ""),
                date=_iso(e.get("date")),
                issuer=str(e.get("issuer") or ""),
                province=str(e.get("province") or ""),
                ocr_damaged=bool(e.get("ocr_damaged", False)),
                successor=str(e.get("successor") or ""),
                successor_since=_iso(e.get("successor_since")),
            )
        )
    return docs


def load_plan_passages(knowledge_dir: Path) -> list[PlanPassage]:
    """All passages of all plan documents listed in documents.yml."""
    plans_dir = _plans_dir(knowledge_dir)
    docs = load_plan_documents(plans_dir)
    repairer = _repairer_for(plans_dir) if any(d.ocr_damaged for d in docs) else None
    passages: list[PlanPassage] = []
    for d in docs:
        text = (plans_dir / f"{d.doc_id}.txt").read_text(encoding="utf-8")
        passages.extend(_split(d, text, repairer if d.ocr_damaged else None))
    return passages


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _stats(passages: list[PlanPassage], docs: list[PlanDocument]) -> str:
    lines = [f"{'doc_id':50} {'passages':>8} {'sections':>8} {'table_rows':>10} {'avg_len':>7} {'max_len':>7}"]
    for d in docs:
        ps = [p for p in passages if p.doc_id == d.doc_id]
        rows = sum(1 for p in ps if p.kind == "table_row")
        avg = sum(len(p.text) for p in ps) / len(ps) if ps else 0
        mx = max((len(p.text) for p in ps), default=0)
        lines.append(f"{d.doc_id:50} {len(ps):8d} {len(ps) - rows:8d} {rows:10d} {avg:7.0f} {mx:7d}")
    lines.append(f"{'total':50} {len(passages):8d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--knowledge-dir", type=Path, default=DEFAULT_PLANS_DIR.parent)
    ap.add_argument("--stats", action="store_true", help="per document: passages, table rows, average length")
    ap.add_argument("--show", metavar="DOC_ID", help="print the passages of one document")
    ap.add_argument("--search", action="store_true", help="with --show: print search_text too")
    args = ap.parse_args(argv)
    passages = load_plan_passages(args.knowledge_dir)
    docs = load_plan_documents(args.knowledge_dir)
    if args.show:
        for p in passages:
            if p.doc_id == args.show:
                print(f"=== {p.passage_id} [{p.kind}] {p.heading}")
                print(p.text)
                if p.fields:
                    print("fields:", p.fields)
                if args.search:
                    print("--- search:", p.search_text.split("\n")[-1])
        return 0
    if args.stats or not args.show:
        print(_stats(passages, docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
