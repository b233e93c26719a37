"""What scoring needs to know about each indexed record, computed once when the engine starts."""

from __future__ import annotations

from dataclasses import dataclass

from bot.answer.variants import VariantProfile, unqualified_title
from bot.retrieval.index import KnowledgeIndex
from bot.text.vietnamese import fold, lexical_tokens
from bot.understanding import topic_words


@dataclass(frozen=True)
class RecordProfiles:
    """Per record of the index (same positions as ``index.docs``): its words and what its title or document says."""

    tokens: list[frozenset[str]]  # the record's lexical tokens
    title_words: list[frozenset[str]]  # a procedure title's topic words, without the qualifiers variants judge
    variants: list[VariantProfile | None]  # a procedure's variant (level, foreign element, operation, …)
    plan_meta: list[tuple[str, str] | None]  # a plan passage's (province, folded; document number, e.g. "2207")
    plan_numbers: frozenset[str]  # every plan document number
    plan_percent: list[bool]  # a plan passage that states a share
    # Passages of OCR-damaged scans are embedded from their damaged spelling ("Chtro'ng trInh hành dng"), so their
    # dense score says little; for a question about the plans their lexical score, computed on the repaired copy,
    # is trusted alone (other questions keep the usual vote, so that a damaged passage does not gain confidence for
    # a question the plans do not answer).
    ocr_damaged: list[bool]

    @classmethod
    def of(cls, index: KnowledgeIndex) -> RecordProfiles:
        kb, docs = index.kb, index.docs

        def plan_profile(passage_id: str) -> tuple[str, str]:
            document = kb.documents[kb.passages[passage_id].doc_id]
            return fold(document.province).lower(), document.number.split("/")[0].strip()

        plan_meta = [plan_profile(d.doc_id) if d.kind == "plan" else None for d in docs]
        return cls(
            tokens=[frozenset(lexical_tokens(d.lexical_text)) for d in docs],
            # qualifiers in brackets ("(thực hiện tại cấp tỉnh)") are judged by the variant preference instead
            title_words=[frozenset(topic_words(unqualified_title(d.title))) if d.kind == "procedure" else frozenset()
                         for d in docs],  # fmt: skip
            variants=[VariantProfile.of(kb.procedures[d.doc_id]) if d.kind == "procedure" else None for d in docs],
            plan_meta=plan_meta,
            plan_numbers=frozenset(m[1] for m in plan_meta if m and m[1]),
            plan_percent=[d.kind == "plan" and "%" in kb.passages[d.doc_id].text for d in docs],
            ocr_damaged=[d.kind == "plan" and kb.documents[kb.passages[d.doc_id].doc_id].ocr_damaged for d in docs],
        )
