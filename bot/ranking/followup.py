"""Whether a message in a conversation about one procedure moves on to another: the follow-up decision.

The procedure under discussion stays until a message clearly names another one. The leader of the message's own
ranking takes over only when it is confident (the gate, :meth:`Ranker.confident`) and

- the message names it: it says a compound of the leader's record that the record under discussion does not
  have (``phrases``, :func:`bot.understanding.naming_phrases`: "kết hôn", "lý lịch tư pháp", not one ordinary word such as
  "đóng", "loại" or "cổng" that happens to be in some title), or, when the leader is a variant of the procedure
  under discussion, it asks for what that variant is ("ở tỉnh", "người nước ngoài", "nộp trực tuyến");
- and the leader scores at least ``switch_margin`` above the procedure under discussion for the same message.

Anything else — an aspect asked in ordinary words ("đăng ký có phải đóng đồng nào không?", "Điều kiện để được
hưởng là gì?"), a word of the procedure's own title, a paper of its own dossier or one of its own offices ("văn bản
ủy quyền thì sao", "có phải lên phòng tư pháp không", though another title has those words) — is answered on the
procedure under discussion, or on the variant of it the message asks for ("ở tỉnh thì làm ở đâu?":
:func:`asked_variant`); a paper asks about the documents and an office about where to go (:func:`implied_aspects`).
"""

from __future__ import annotations

from itertools import pairwise

from bot.answer.aspects import Aspect
from bot.answer.variants import VariantPreference
from bot.domain import Candidate
from bot.ranking.query import QueryFeatures
from bot.ranking.records import RecordProfiles
from bot.ranking.weights import RankingWeights


def moves_on(query: QueryFeatures, phrases: frozenset[str], leader: Candidate, current: Candidate,
             records: RecordProfiles, w: RankingWeights) -> bool:  # fmt: skip
    """Whether the (confident) ``leader`` of the message's ranking replaces ``current``, the procedure under
    discussion scored for the same message; ``phrases`` are the message's :func:`naming_phrases`."""
    if leader.doc_index == current.doc_index or leader.score - current.score < w.switch_margin:
        return False
    return names(query, phrases, leader.doc_index, current.doc_index, records)


def names(query: QueryFeatures, phrases: frozenset[str], leader: int, current: int, records: RecordProfiles) -> bool:
    """Whether the message names record ``leader`` rather than ``current``: a compound of its words that only the
    leader's record has, or, between variants of one procedure, a variant it asks for that the leader is and
    ``current`` is not ("ở tỉnh", "người nước ngoài", "nộp trực tuyến")."""
    mine, theirs = records.tokens[leader], records.tokens[current]
    papers, offices = records.dossier[current], records.offices[current]
    if any(p in mine and p not in theirs and not _says(papers, p) and not _says(offices, p) for p in phrases):
        return True
    if records.base_titles[leader] != records.base_titles[current]:
        return False
    return _asked_and_only_in(query.question.prefer, leader, current, records)


def _says(bigrams: frozenset[str], phrase: str) -> bool:
    """Whether a text with these ``bigrams`` says ``phrase`` (a bigram, or a longer word: "bao_hiem_xa_hoi" when
    it has each of its bigrams)."""
    if phrase in bigrams:
        return True
    parts = phrase.split("_")
    return len(parts) > 2 and all(f"{a}_{b}" in bigrams for a, b in pairwise(parts))


def implied_aspects(phrases: frozenset[str], current: int, records: RecordProfiles) -> list[Aspect]:
    """What a message staying on record ``current`` asks by naming its own papers or offices (``phrases``: its
    :func:`bot.understanding.naming_phrases`, those of its title aside): "where" for one of the offices that handle
    it ("có phải lên phòng tư pháp không"), else "documents" for a compound of its dossier ("có cần giấy chứng sinh
    không" about đăng ký khai sinh; a dossier also names offices: "xác nhận của Ủy ban nhân dân cấp xã")."""
    title, papers, offices = records.tokens[current], records.dossier[current], records.offices[current]
    own = [p for p in phrases if p not in title]
    where = [p for p in own if _says(offices, p)]
    out: list[Aspect] = ["where"] if where else []
    if any(_says(papers, p) for p in own if p not in where):
        out.insert(0, "documents")
    return out


def asked_variant(prefer: VariantPreference, current: int, records: RecordProfiles, w: RankingWeights) -> int:
    """The variant of the procedure under discussion (record ``current``) a message that stays on it asks for
    ("ở tỉnh thì làm ở đâu?", "người nước ngoài thì sao?"): of the records sharing its base title and having what
    the message asks that ``current`` lacks, the one the variant preference fits best; else ``current``."""
    base = records.base_titles[current]
    if base is None:
        return current
    asked = [i for i in records.by_base_title[base] if _asked_and_only_in(prefer, i, current, records)]
    return max(asked, key=lambda i: prefer.adjustment(records.variant(i), w), default=current)


def _asked_and_only_in(prefer: VariantPreference, variant: int, current: int, records: RecordProfiles) -> bool:
    """Whether the message asks for a level, variant fact, operation or qualifier that record ``variant`` has and
    record ``current`` has not."""
    profile, discussed = records.variants[variant], records.variants[current]
    if profile is None or discussed is None:
        return False
    return bool(
        prefer.asked_facts & (profile.facts - discussed.facts)
        or prefer.asked_levels & (profile.levels - discussed.levels)
        or prefer.asked_operations & ((profile.operations | profile.listed) - (discussed.operations | discussed.listed))
        or prefer.asked_qualifiers & (frozenset().union(*profile.qualifiers) - frozenset().union(*discussed.qualifiers))
    )
