"""What scoring needs to know about each indexed record, computed once when the engine starts."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from bot.answer.variants import VariantProfile, base_title, unqualified_title
from bot.knowledge.models import Procedure
from bot.retrieval.index import KnowledgeIndex
from bot.text.vietnamese import fold, lexical_tokens, syllables
from bot.understanding import topic_words


@dataclass(frozen=True)
class RecordProfiles:
    """Per record of the index (same positions as ``index.docs``): its words and what its title or document says."""

    tokens: list[frozenset[str]]  # the record's lexical tokens
    # the record's syllables as it writes them (lowercase, with their diacritics): a word a citizen typed with marks
    # is covered only by a record that writes it the same way ("giảm" is not "giám", bot.ranking.query.coverage_of);
    # empty for an OCR-damaged passage, whose words are then matched folded
    spellings: list[frozenset[str]]
    # the compounds of the papers a procedure's dossier lists ("văn bản đề nghị", "giấy chứng sinh"): a message in a
    # conversation that names one of them speaks of the procedure under discussion, not of another whose title has
    # it (bot.ranking.followup.names)
    dossier: list[frozenset[str]]
    # the same for the offices that receive and decide it ("Ủy ban nhân dân cấp xã", "Phòng Tư pháp", "Chi cục Hải
    # quan"): "có phải lên phòng tư pháp không" after "đăng ký khai sinh" is not about "lý lịch tư pháp"
    offices: list[frozenset[str]]
    position: dict[str, int]  # a procedure's code -> its position in ``index.docs``
    title_words: list[frozenset[str]]  # a procedure title's topic words, without the qualifiers variants judge
    base_titles: list[str | None]  # a procedure title without variant qualifiers: variants of one procedure share it
    by_base_title: dict[str, tuple[int, ...]]  # the variants of one procedure: positions sharing a base title
    variants: list[VariantProfile | None]  # a procedure's variant (level, foreign element, operation, …)
    plan_meta: list[tuple[str, str] | None]  # a plan passage's (province, folded; document number, e.g. "2207")
    plan_numbers: frozenset[str]  # every plan document number
    plan_percent: list[bool]  # a plan passage that states a share
    # Passages of OCR-damaged scans are embedded from their damaged spelling ("Chtro'ng trInh hành dng"), so their
    # dense score says little; for a question about the plans their lexical score, computed on the repaired copy,
    # is trusted alone (other questions keep the usual vote, so that a damaged passage does not gain confidence for
    # a question the plans do not answer).
    ocr_damaged: list[bool]

    def variant(self, i: int) -> VariantProfile:
        """The variant profile of procedure record ``i``."""
        profile = self.variants[i]
        if profile is None:
            raise ValueError(f"record {i} is not a procedure")
        return profile

    def plan(self, i: int) -> tuple[str, str]:
        """(province, document number) of plan passage ``i``."""
        meta = self.plan_meta[i]
        if meta is None:
            raise ValueError(f"record {i} is not a plan passage")
        return meta

    @classmethod
    def of(cls, index: KnowledgeIndex) -> RecordProfiles:
        kb, docs = index.kb, index.docs

        def plan_profile(passage_id: str) -> tuple[str, str]:
            document = kb.documents[kb.passages[passage_id].doc_id]
            return fold(document.province).lower(), document.number.split("/")[0].strip()

        plan_meta = [plan_profile(d.doc_id) if d.kind == "plan" else None for d in docs]
        ocr_damaged = [d.kind == "plan" and kb.documents[kb.passages[d.doc_id].doc_id].ocr_damaged for d in docs]
        base_titles = [base_title(d.title) if d.kind == "procedure" else None for d in docs]
        by_base_title: dict[str, tuple[int, ...]] = {}
        for i, base in enumerate(base_titles):
            if base is not None:
                by_base_title[base] = (*by_base_title.get(base, ()), i)
        return cls(
            tokens=[frozenset(lexical_tokens(d.lexical_text)) for d in docs],
            # an OCR-damaged scan's spelling says nothing of the words meant ("Chtro'ng trInh"): none kept
            spellings=[frozenset() if damaged else frozenset(map(sys.intern, syllables(d.lexical_text)))
                       for d, damaged in zip(docs, ocr_damaged, strict=True)],  # fmt: skip
            dossier=[_dossier(kb.procedures[d.doc_id]) if d.kind == "procedure" else frozenset() for d in docs],
            offices=[_offices(kb.procedures[d.doc_id]) if d.kind == "procedure" else frozenset() for d in docs],
            position={d.doc_id: i for i, d in enumerate(docs) if d.kind == "procedure"},
            # qualifiers in brackets ("(thực hiện tại cấp tỉnh)") are judged by the variant preference instead
            title_words=[frozenset(topic_words(unqualified_title(d.title))) if d.kind == "procedure" else frozenset()
                         for d in docs],  # fmt: skip
            base_titles=base_titles,
            by_base_title=by_base_title,
            variants=[VariantProfile.of(kb.procedures[d.doc_id]) if d.kind == "procedure" else None for d in docs],
            plan_meta=plan_meta,
            plan_numbers=frozenset(m[1] for m in plan_meta if m and m[1]),
            plan_percent=[d.kind == "plan" and "%" in kb.passages[d.doc_id].text for d in docs],
            ocr_damaged=ocr_damaged,
        )


def _bigrams(text: str) -> frozenset[str]:
    """The bigram tokens of ``text`` read folded (no word segmentation, which would cost seconds at start-up over
    every record), interned: the same few thousand recur in every record (39 MiB held without, for the dossiers)."""
    return frozenset(sys.intern(t) for t in lexical_tokens(fold(text)) if "_" in t)


def _dossier(proc: Procedure) -> frozenset[str]:
    """The bigrams of the papers ``proc`` asks for: their names and copies ("bản chính", "bản sao")."""
    return _bigrams(" . ".join(f"{d.name} . {d.copies}" for d in proc.documents))


def _offices(proc: Procedure) -> frozenset[str]:
    """The bigrams of the offices that receive and decide ``proc``."""
    return _bigrams(" . ".join((proc.agency, proc.competent_authority, proc.receiving_address)))
