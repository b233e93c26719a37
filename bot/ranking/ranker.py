"""The ranking wired in one place: lexical channel → (decisive? stop) → dense channel → fusion and scorers → order.

Also the gate: whether the leader is confident enough to be answered, and whether the lexical ranking alone is
decisive. Every weight comes from the ``RankingWeights`` the ranker is given.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bot.answer.aspects import Aspect
from bot.domain import Candidate, Mode
from bot.learning.model import LearnedRanking
from bot.ranking.followup import asked_variant, implied_aspects, moves_on
from bot.ranking.fusion import channel_weights, lexical_only, normalised_dense
from bot.ranking.query import QueryFeatures, meaning_text
from bot.ranking.records import RecordProfiles
from bot.ranking.scorers import TERMS, extra_signals, hand_sum, score_terms
from bot.ranking.weights import WEIGHTS, RankingWeights
from bot.retrieval.embedding_model import Encoder
from bot.retrieval.index import KnowledgeIndex
from bot.retrieval.onnx_encoder import OnnxQueryEncoder
from bot.text.diacritics import Restorer
from bot.text.lexicon import Lexicon
from bot.understanding import Question, naming_phrases


class InConversation(NamedTuple):
    """A message ranked in a conversation (:meth:`Ranker.rank_in_conversation`)."""

    candidates: list[Candidate]
    moves_on: bool  # the message names another procedure: its leader is answered, not the one under discussion
    implied: list[Aspect]  # when it stays: what naming a paper or an office of the procedure asks (implied_aspects)


class Ranker:
    """Ranked candidates for a question over one index: BM25 and dense channels fused, then scored."""

    def __init__(self, index: KnowledgeIndex, encoder: Encoder | OnnxQueryEncoder, lexicon: Lexicon,
                 weights: RankingWeights = WEIGHTS, skip_dense_when_decisive: bool = True,
                 learned: LearnedRanking | None = None, restorer: Restorer | None = None) -> None:  # fmt: skip
        self.index = index
        # the learned ranking and decision (bot.learning.model; Settings.learned_ranking): None = the hand weights
        self.learned = learned
        self.encoder = encoder
        self.lexicon = lexicon
        self.weights = weights
        self.skip_dense_when_decisive = skip_dense_when_decisive
        self.records = RecordProfiles.of(index)
        self.restorer = restorer  # puts diacritics back for the meaning channel (bot/text/diacritics.py)

    def features(self, question: Question) -> QueryFeatures:
        return QueryFeatures.of(question, self.lexicon, self.index.vocabulary)

    def rank(self, question: Question, mode: Mode = "hybrid", k: int = 10) -> list[Candidate]:
        """The ``k`` best candidates, best first.

        In hybrid mode the lexical ranking is scored first; when it is decisive (a confident leader well ahead of
        the next candidate) the dense pass is skipped, which saves the transformer pass on about half of the
        questions without changing the answer (docs/evaluation.md, "Skipping the dense pass")."""
        return self._ranked(self.features(question), mode, None)[:k]

    def rank_in_conversation(self, question: Question, code: str, mode: Mode = "hybrid",
                             k: int = 10) -> InConversation:  # fmt: skip
        """:meth:`rank` for a message in a conversation about the procedure ``code``: whether the message moves on to
        its leader (:func:`bot.ranking.followup.moves_on`; the procedure under discussion is scored for the message
        with the same channels, whether or not it made the pool) and, when it stays, what it asks by naming papers of
        the procedure's dossier ("documents") or the offices that handle it ("where";
        :func:`bot.ranking.followup.implied_aspects`). The message's naming phrases are read once for both."""
        i = self.records.position.get(code)
        query = self.features(question)
        ranked = self._ranked(query, mode, i)
        current = next((c for c in ranked if c.doc_index == i), None)
        if i is None or not ranked or current is None:
            return InConversation(ranked[:k], True, [])
        phrases = naming_phrases(question.text, self.lexicon)
        leader = ranked[0]
        if self.confident(leader) and moves_on(query, phrases, leader, current, self.records, self.weights):
            return InConversation(ranked[:k], True, [])
        return InConversation(ranked[:k], False, implied_aspects(phrases, i, self.records))

    def asked_variant(self, question: Question, code: str) -> str:
        """The variant of the procedure ``code`` under discussion that a message staying on it asks for
        (:func:`bot.ranking.followup.asked_variant`): ``code`` itself unless the message asks for another level,
        foreign element, channel, …"""
        i = self.records.position.get(code)
        if i is None:
            return code
        return self.index.docs[asked_variant(question.prefer, i, self.records, self.weights)].doc_id

    def _ranked(self, query: QueryFeatures, mode: Mode, keep: int | None) -> list[Candidate]:
        """Every pooled candidate, best first; ``keep`` (a record's position) is pooled whatever its scores."""
        w, n = self.weights, len(self.index.docs)
        question = query.question
        lex_all = self.index.lexical.scores(query.search) if mode != "dense" else np.zeros(n, dtype=np.float32)
        lex_max = float(lex_all.max()) if lex_all.size else 0.0
        pool: dict[int, float] = {}
        cosines: dict[int, float] = {}
        if mode != "dense" and lex_max > 0:
            for i in np.argpartition(-lex_all, min(w.candidates, n - 1))[: w.candidates]:
                if lex_all[i] > 0:
                    pool[int(i)] = 0.0
        if keep is not None:
            pool.setdefault(keep, 0.0)  # outside the dense channel's candidates: its normalised dense score is 0
        if mode == "hybrid" and pool and self.skip_dense_when_decisive:
            # decisive or not is judged on the hand score, whichever ranking then orders the pool
            quick = self.score(pool, cosines, lex_all, lex_max, lexical_only(w), query, learned=False)
            if self.decisive(quick):
                return self.learned.rescore(quick, question.text) if self.learned is not None else quick
        if mode != "lexical":
            vector = self.encoder.encode_queries([meaning_text(query, self.lexicon, self.restorer)])[0]
            ids, sims = self.index.dense.search(vector, min(w.candidates, n))
            pool.update(normalised_dense(ids, sims))
            cosines.update({int(i): float(s) for i, s in zip(ids, sims, strict=True)})
        if not pool:
            return []
        return self.score(pool, cosines, lex_all, lex_max, channel_weights(mode, question.text, w), query)

    def score(self, pool: dict[int, float], cosines: dict[int, float], lex_all: np.ndarray, lex_max: float,
              channels: tuple[float, float], query: QueryFeatures, learned: bool = True) -> list[Candidate]:  # fmt: skip
        """Candidates for the pooled records (index -> normalised dense score), best first: by the hand score, or
        by the learned one when the ranker has it and ``learned``."""
        out = []
        for i, dense_n in pool.items():
            doc = self.index.docs[i]
            lex_n = float(lex_all[i]) / lex_max if lex_max > 0 else 0.0
            cov = query.coverage(self.records.tokens[i], self.records.spellings[i])
            cosine = cosines.get(i, 0.0)
            terms = score_terms(i, doc.kind, lex_n, dense_n, cov, channels, query, self.records, self.weights)
            extras = extra_signals(i, doc.kind, lex_n, cosine, query, self.records)
            out.append(Candidate(i, doc, hand_sum(terms), lex_n, dense_n, cov, cosine, query.unknown,
                                 (*terms, *extras)))  # fmt: skip
        out.sort(key=lambda c: c.score, reverse=True)
        if learned and self.learned is not None:
            return self.learned.rescore(out, query.question.text)
        return out

    def confident(self, top: Candidate) -> bool:
        """Whether the leader may be answered: words the knowledge never uses ("youtube", "shopee", "flan") mean the
        question is about something else, however well its other words match. With the learned decision: its
        probability that the leader is right reaches its one threshold."""
        if self.learned is None:
            return top.score - self.weights.unknown_word_penalty * top.unknown >= self.weights.confident
        if top.confidence is not None:
            return self.learned.confident(top)
        hand = hand_sum(top.features[: len(TERMS)])  # a plan passage: the hand gate, on the hand score
        return hand - self.weights.unknown_word_penalty * top.unknown >= self.weights.confident

    def decisive(self, ranked: list[Candidate]) -> bool:
        """Whether the lexical ranking alone settles the question (see RankingWeights.decisive_*)."""
        if len(ranked) < 2:
            return False
        w, top, second = self.weights, ranked[0], ranked[1]
        return (top.doc.kind == "procedure" and top.score - second.score >= w.decisive_margin
                and top.coverage >= w.decisive_coverage
                and top.score - w.unknown_word_penalty * top.unknown >= w.confident + w.decisive_confidence)  # fmt: skip
