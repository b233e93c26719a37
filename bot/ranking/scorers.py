"""The fused score of one record for one question: the channels' vote plus what the record's title, variant and
document say about fitting the question."""

from __future__ import annotations

from bot.ranking.fusion import ChannelWeights
from bot.ranking.query import QueryFeatures
from bot.ranking.records import RecordProfiles
from bot.ranking.weights import RankingWeights


def fused_score(i: int, kind: str, lexical: float, dense: float, coverage: float, channels: ChannelWeights,
                query: QueryFeatures, records: RecordProfiles, w: RankingWeights) -> float:  # fmt: skip
    """Record ``i``'s score from its normalised channel scores, its coverage of the question (see
    ``query.coverage``) and the scorers below, in this order."""
    q = query.question
    if records.ocr_damaged[i] and q.plan_cue and channels[0] > 0:
        score = (channels[0] + channels[1]) * lexical
    else:
        score = channels[0] * lexical + channels[1] * dense
    score += w.coverage * coverage + w.precision * title_precision(i, query, records)
    score += quoted_numbers(i, query, records, w)
    if kind == "procedure":
        score += q.prefer.adjustment(records.variant(i), w)
        score -= w.procedure_on_plan_cue if q.plan_cue else 0.0
    elif kind == "plan":
        for term in plan_fit(i, query, records, w):
            score += term
    return score


def title_precision(i: int, query: QueryFeatures, records: RecordProfiles) -> float:
    """Of two titles that both match, the one with fewer words the citizen did not say is the one meant ("đăng ký
    khai sinh" over "đăng ký khai sinh cho người đã có hồ sơ, giấy tờ…")."""
    title = records.title_words[i]
    return len(title & query.asked) / len(title) if title else 0.0


def quoted_numbers(i: int, query: QueryFeatures, records: RecordProfiles, w: RankingWeights) -> float:
    """A number the citizen quotes ("tổng đài 1022", "nghị định 100") singles out the record that has it."""
    return min(w.quoted_number_cap, w.quoted_number * len(query.numbers & records.tokens[i]))


def plan_fit(i: int, query: QueryFeatures, records: RecordProfiles, w: RankingWeights) -> list[float]:
    """What moves a plan passage: a question about the plans, the province and document the citizen names, a share
    asked and stated: terms the caller adds to the score one at a time, in this order."""
    q = query.question
    terms = [w.plan_on_plan_cue if q.plan_cue else w.plan_without_cue]
    province, number = records.plan(i)
    if q.provinces:
        terms.append(w.plan_province_match if province in q.provinces else w.plan_province_mismatch)
    named = query.numbers & records.plan_numbers
    if named:
        terms.append(w.plan_number_match if number in named else -w.plan_number_match)
    if q.percent and records.plan_percent[i]:
        terms.append(w.plan_percent)
    return terms
