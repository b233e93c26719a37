"""Typed records the whole assistant shares: procedures, plan passages and curated FAQ entries.

Every answer is composed from one of these records, so each carries what a citizen needs to verify it:
the procedure's national code and official link, or the plan document's number and date.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ChannelKind = Literal["in_person", "online", "post", "other"]
Level = Literal["xa", "tinh", "bo", "khac"]


@dataclass
class SubmissionChannel:
    """One way to submit a dossier (in person, online, by post) with its own processing time and fee."""

    kind: ChannelKind
    label: str  # as published, e.g. "Trực tiếp", "Trực tuyến", "Dịch vụ bưu chính"
    processing_time: str  # e.g. "7 Ngày làm việc"; "" when the record gives none
    fee: str  # e.g. "Lệ phí : 20.000 Đồng"; "" when the record gives none
    description: str = ""


@dataclass
class RequiredDocument:
    """One paper of the dossier: what it is, how many copies, which form to fill."""

    name: str
    copies: str = ""  # e.g. "1 bản chính", "Bản chính: 1 / Bản sao: 0"
    form: str = ""  # form / template name when one is attached, else ""
    group: str = ""  # case heading the document belongs to ("Trường hợp ..."), else ""


@dataclass
class LegalBasis:
    """A legal document the procedure rests on."""

    number: str  # e.g. "68/2013/TT-BCA"
    title: str


@dataclass
class Procedure:
    """An administrative procedure (thủ tục hành chính) in one clean schema, from either source file."""

    code: str  # national code, e.g. "1.001193"
    title: str
    url: str | None
    source: Literal["national", "defence"]
    decision: str = ""  # publishing decision number
    levels: list[Level] = field(default_factory=list)
    level_label: str = ""  # as published, e.g. "Cấp tỉnh, Cấp xã"
    kind: str = ""  # loai_thu_tuc
    domain: str = ""  # linh_vuc, e.g. "Hộ tịch"
    subjects: str = ""  # doi_tuong_thuc_hien
    agency: str = ""  # co_quan_thuc_hien / co_quan_co_tham_quyen
    competent_authority: str = ""
    receiving_address: str = ""
    steps: list[str] = field(default_factory=list)
    channels: list[SubmissionChannel] = field(default_factory=list)
    documents: list[RequiredDocument] = field(default_factory=list)
    legal_basis: list[LegalBasis] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    conditions: str = ""
    related: str = ""
    parse_issues: list[str] = field(default_factory=list)  # fields that did not parse cleanly

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Procedure:
        data = dict(data)
        data["channels"] = [SubmissionChannel(**c) for c in data.get("channels", [])]
        data["documents"] = [RequiredDocument(**d) for d in data.get("documents", [])]
        data["legal_basis"] = [LegalBasis(**b) for b in data.get("legal_basis", [])]
        return cls(**data)


@dataclass
class PlanDocument:
    """Metadata of a provincial plan document."""

    doc_id: str  # file stem, e.g. "brvt-2023-qd180-ke-hoach-bcd-cds"
    title: str
    number: str  # e.g. "180/QĐ-BCĐ"; "" when the document has none
    date: str  # ISO date "2023-06-26"; "" when unknown
    issuer: str  # the issuing body as it was ("Ủy ban nhân dân tỉnh Bà Rịa - Vũng Tàu")
    province: str  # the province the plan is of, as it was when issued
    ocr_damaged: bool = False
    # the province's successor since the 2025 reorganisation ("Thành phố Hồ Chí Minh") and since when (ISO date);
    # "" when the province still exists as it was
    successor: str = ""
    successor_since: str = ""


@dataclass
class PlanPassage:
    """A retrievable unit of a plan: a section of prose, or one table row with its column meaning kept."""

    passage_id: str  # f"{doc_id}#{n}"
    doc_id: str
    kind: Literal["section", "table_row"]
    heading: str  # section path, e.g. "II. MỤC TIÊU > 2. Mục tiêu cụ thể"
    text: str  # display text (as in the document, cleaned)
    search_text: str = ""  # text used for indexing (may add repaired / folded words for OCR-damaged docs)
    fields: dict[str, str] = field(default_factory=dict)  # for table rows: indicator, current, target, owner, deadline, ...


@dataclass
class FaqEntry:
    """A curated FAQ answer written by staff."""

    faq_id: str
    questions: list[str]
    answer: str
    procedure_code: str | None = None
    active: bool = True
