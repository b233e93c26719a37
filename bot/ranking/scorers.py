"""The fused score of one record for one question: the channels' vote plus what the record's title, variant and
document say about fitting the question."""

from __future__ import annotations

from bot.ranking.fusion import ChannelWeights
from bot.ranking.query import QueryFeatures
from bot.ranking.records import RecordProfiles
from bot.ranking.weights import RankingWeights
from bot.text.vietnamese import has_diacritics

# The terms fused_score adds, each already multiplied by its hand weight, in the order it adds them. A learned
# ranker (bot.learning.model) weighs the same terms again; the hand score is their sum (weights all 1).
TERMS = (
    "lexical",  # the lexical channel's vote: channel weight x normalised BM25
    "dense",  # the dense channel's vote: channel weight x normalised dense similarity
    "coverage",  # w.coverage x share of the question's topic words the record has
    "precision",  # w.precision x title precision
    "quoted",  # quoted numbers the record has
    "variant",  # the variant preference's adjustment (procedures)
    "procedure_on_plan_cue",  # - w.procedure_on_plan_cue for a procedure when the question speaks of the plans
    "plan_cue",  # plan passages: w.plan_on_plan_cue or w.plan_without_cue
    "plan_province",  # plan passages: the province named matches / does not
    "plan_number",  # plan passages: the document number quoted matches / does not
    "plan_percent",  # plan passages: a share asked and stated
)
Terms = tuple[float, ...]  # one value per name of TERMS
# Signals the hand score does not use, kept beside the terms for a learned ranker (hand weight 0).
EXTRAS = (
    "cosine",  # the raw dense similarity (0 when the dense channel did not see the record)
    "title_recall",  # share of the search text's topic words the procedure's title has
    "lexical_no_diacritics",  # the normalised BM25 score for a question typed without diacritics, else 0
    "plan",  # 1 for a plan passage
)


def extra_signals(i: int, kind: str, lexical: float, cosine: float, query: QueryFeatures,
                  records: RecordProfiles) -> Terms:  # fmt: skip
    """Record ``i``'s EXTRAS for the question."""
    asked, title = query.asked, records.title_words[i]
    recall = len(title & asked) / len(asked) if asked and title else 0.0
    bare = lexical if not has_diacritics(query.question.text) else 0.0
    return (cosine, recall, bare, 1.0 if kind == "plan" else 0.0)


def score_terms(i: int, kind: str, lexical: float, dense: float, coverage: float, channels: ChannelWeights,
                query: QueryFeatures, records: RecordProfiles, w: RankingWeights) -> Terms:  # fmt: skip
    """Record ``i``'s score terms (see TERMS) from its normalised channel scores, its coverage of the question
    (see ``query.coverage``) and the scorers below; :func:`hand_sum` adds them up into :func:`fused_score`."""
    q = query.question
    if records.ocr_damaged[i] and q.plan_cue and channels[0] > 0:
        lex_term, dense_term = (channels[0] + channels[1]) * lexical, 0.0
    else:
        lex_term, dense_term = channels[0] * lexical, channels[1] * dense
    variant = on_plan_cue = 0.0
    plan = [0.0, 0.0, 0.0, 0.0]
    if kind == "procedure":
        variant = q.prefer.adjustment(records.variant(i), w)
        on_plan_cue = -w.procedure_on_plan_cue if q.plan_cue else 0.0
    elif kind == "plan":
        plan = plan_terms(i, query, records, w)
    return (lex_term, dense_term, w.coverage * coverage, w.precision * title_precision(i, query, records),
            quoted_numbers(i, query, records, w), variant, on_plan_cue, *plan)  # fmt: skip


def hand_sum(terms: Terms) -> float:
    """The hand-weighted score: the terms added in the order fused_score always added them (so the float is the
    same to the last bit)."""
    score = terms[0] + terms[1]
    score += terms[2] + terms[3]
    for term in terms[4:]:
        score += term
    return score


def fused_score(i: int, kind: str, lexical: float, dense: float, coverage: float, channels: ChannelWeights,
                query: QueryFeatures, records: RecordProfiles, w: RankingWeights) -> float:  # fmt: skip
    """Record ``i``'s score from its normalised channel scores, its coverage of the question (see
    ``query.coverage``) and the scorers below: the sum of its :func:`score_terms`."""
    return hand_sum(score_terms(i, kind, lexical, dense, coverage, channels, query, records, w))


def title_precision(i: int, query: QueryFeatures, records: RecordProfiles) -> float:
    """Of two titles that both match, the one with fewer words the citizen did not say is the one meant ("đăng ký
    khai sinh" over "đăng ký khai sinh cho người đã có hồ sơ, giấy tờ…")."""
    title = records.title_words[i]
    return len(title & query.asked) / len(title) if title else 0.0


def quoted_numbers(i: int, query: QueryFeatures, records: RecordProfiles, w: RankingWeights) -> float:
    """A number the citizen quotes ("tổng đài 1022", "nghị định 100") singles out the record that has it."""
    return min(w.quoted_number_cap, w.quoted_number * len(query.numbers & records.tokens[i]))


def plan_terms(i: int, query: QueryFeatures, records: RecordProfiles, w: RankingWeights) -> list[float]:
    """Plan passage ``i``'s four plan terms (cue, province, number, share asked and stated), 0.0 where a term does
    not apply."""
    q = query.question
    terms = [w.plan_on_plan_cue if q.plan_cue else w.plan_without_cue, 0.0, 0.0, 0.0]
    province, number = records.plan(i)
    if q.provinces:
        terms[1] = w.plan_province_match if province in q.provinces else w.plan_province_mismatch
    named = query.numbers & records.plan_numbers
    if named:
        terms[2] = w.plan_number_match if number in named else -w.plan_number_match
    if q.percent and records.plan_percent[i]:
        terms[3] = w.plan_percent
    return terms
