"""Every number that weighs one ranking signal against another, in one typed object.

The values were chosen on the development set (docs/evaluation.md); the held-out and blind sets report how well
they generalise.

Kept by hand because the learned replacements measured worse (issue 16 step 3; docs/evaluation.md): the ranking
and the answer/decline decision fitted on questions generated from the knowledge (``VNA_LEARNED_RANKING``,
bot/learning) lose 0.04–0.11 hit@1 on the questions people wrote; re-weighing the two channels now that the dense
one reads unmarked text (``scripts/fusion_sweep.py``: dense 0.2–0.35, unmarked 0.1–0.35) gained nothing on dev,
held-out or the generated conversations. A component takes the weights it needs from a ``RankingWeights`` it is given, so an experiment
can try other values (``dataclasses.replace(WEIGHTS, coverage=0.2)``) without editing code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RankingWeights:
    """Weights and thresholds of retrieval, scoring and the confidence gate (scores are fused, roughly 0–1.5)."""

    # --- channels and fusion
    candidates: int = 60  # records each channel (BM25, dense) contributes to the pool before fusion
    lexical: float = 0.5  # weight of the BM25 score, normalised by the best BM25 score of the question
    dense: float = 0.2  # weight of the dense similarity, min-max normalised over the dense channel's candidates
    # The embedding model reads Vietnamese typed without diacritics poorly (dense-only hit@1 0.37 on such questions
    # against 0.61 for BM25 over folded text): there the dense vote is cut to this, the lexical one gets the rest.
    no_diacritics_dense: float = 0.1
    # --- scorers added to the fused score
    coverage: float = 0.15  # times the share of the question's topic words the record contains
    precision: float = 0.3  # times the share of the title's words the question says ("khai sinh" over "… cho người đã có…")
    quoted_number: float = 0.1  # per number the citizen quotes ("tổng đài 1022", "nghị định 100") found in the record
    quoted_number_cap: float = 0.2  # at most this much from quoted numbers
    procedure_on_plan_cue: float = 0.1  # taken from a procedure when the question speaks of the plans
    plan_on_plan_cue: float = 0.05  # added to a plan passage when the question speaks of the plans ...
    plan_without_cue: float = -0.15  # ... added (negative) when it does not
    plan_province_match: float = 0.05  # the passage's province is the one the question names
    plan_province_mismatch: float = -0.2  # the question names another province
    plan_number_match: float = 0.15  # the document number the question quotes: + when it is this document's, - when not
    plan_percent: float = 0.1  # the question asks for a share and the passage states one ("%")
    # --- variant preference (bot.answer.variants.VariantPreference)
    fact_match: float = 0.2  # per variant fact (foreign element, mobile, under-14s, …) both title and question name
    fact_unasked: float = -0.1  # per variant fact the title names and the question does not
    organisation_unasked: float = -0.2  # an organisation's variant for a question that does not speak of one
    forces_unasked: float = -0.3  # a police personnel-policy record for a question outside the forces
    level_match: float = 0.1  # the level the question names (commune, province, ministry) is the record's
    level_mismatch: float = -0.08  # the question names another level
    commune_default: float = 0.03  # no level named: the commune is where citizens go first ...
    province_default: float = 0.015  # ... then the province
    operation_match: float = 0.05  # the title does what the question asks (reissue, renew, unlock, …)
    operation_unasked: float = -0.12  # the title does something out of the ordinary the question does not ask
    operation_missing: float = -0.2  # the question asks a distinctive operation ("giải thể") the title does not do
    # --- decisions
    # Below this fused score (minus the unknown-word penalty) the engine does not answer but offers the closest
    # procedures; chosen from the score distributions of in-scope and off-topic questions (docs/evaluation.md).
    confident: float = 0.65
    # Times the share of the question's topic words the knowledge never uses ("youtube", "shopee"): such words
    # mean the question is about something else, however well its other words match.
    unknown_word_penalty: float = 1.0
    # The lexical ranking alone decides (no dense pass) when its leader is a procedure at least decisive_margin
    # ahead of the next, decisive_confidence above the gate and covering decisive_coverage of the question's topic
    # words: on the dev set the dense pass then changed the top answer for 2.6 % of such questions and never turned
    # a wrong answer right (docs/evaluation.md, "Skipping the dense pass").
    decisive_margin: float = 0.05
    decisive_confidence: float = 0.1
    decisive_coverage: float = 0.4
    # --- conversations (bot.ranking.followup)
    # A message in a conversation about a procedure moves on to the leader of its own ranking only when the leader
    # is confident, clearly named, and at least this far above the procedure under discussion scored for the same
    # message; otherwise the procedure under discussion answers it.
    switch_margin: float = 0.1


WEIGHTS = RankingWeights()
