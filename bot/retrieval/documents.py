"""The unit every retriever indexes: one procedure, one plan passage or one curated FAQ entry.

Each source record becomes a `SearchDoc` with the text the lexical channel sees and the text the dense channel
sees; the record itself stays in the knowledge store and is looked up by `doc_id` when an answer is composed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.knowledge.models import PlanDocument, PlanPassage, Procedure

DocKind = Literal["procedure", "plan", "faq"]


@dataclass(frozen=True)
class SearchDoc:
    doc_id: str  # procedure code, plan passage id, or "faq:<id>"
    kind: DocKind
    title: str
    lexical_text: str
    dense_text: str


# Official abbreviations in titles ("Cấp lại, đổi, điều chỉnh thông tin trên sổ BHXH, thẻ BHYT"), spelled out in the
# lexical text as the question side spells out what citizens abbreviate (knowledge/lexicon.yml), so that "sổ bảo
# hiểm xã hội" and "sổ BHXH" meet whichever way each side writes it.
_TITLE_ABBREVIATIONS = {
    "BHXH": "bảo hiểm xã hội",
    "BHYT": "bảo hiểm y tế",
    "BHTN": "bảo hiểm thất nghiệp",
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "TNHH": "trách nhiệm hữu hạn",
    "GTGT": "giá trị gia tăng",
    "TNCN": "thu nhập cá nhân",
    "TNLĐ": "tai nạn lao động",
    "BNN": "bệnh nghề nghiệp",
}
_ABBREVIATION_RE = re.compile(r"\b(" + "|".join(_TITLE_ABBREVIATIONS) + r")\b")


def spelled_out(title: str) -> str:
    """The spelled-out forms of the official abbreviations a title uses, each once, in order ("" when none)."""
    return " ".join(dict.fromkeys(_TITLE_ABBREVIATIONS[m] for m in _ABBREVIATION_RE.findall(title)))


def procedure_doc(proc: Procedure) -> SearchDoc:
    # The title carries almost all of the meaning; results ("Giấy khai sinh", "Thẻ căn cước") are what citizens
    # often name instead of the procedure, so they are indexed too. Steps and conditions are left out: they
    # mention dozens of other procedures and would drown the title.
    results = " ".join(r for r in proc.results[:3] if len(r) < 200)
    title = f"{proc.title} {spelled_out(proc.title)}".strip()
    lexical = f"{title} {title} {proc.domain} {results}"
    dense = f"{proc.title}. {proc.domain}"
    return SearchDoc(proc.code, "procedure", proc.title, lexical, dense)


def plan_doc(passage: PlanPassage, document: PlanDocument) -> SearchDoc:
    context = f"{document.title} {document.number} {document.province}"
    lexical = f"{context} {passage.heading} {passage.search_text or passage.text}"
    dense = f"{passage.heading}. {passage.text[:600]}"
    return SearchDoc(passage.passage_id, "plan", passage.heading or document.title, lexical, dense)

