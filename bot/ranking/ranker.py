"""The ranking wired in one place: lexical channel → (decisive? stop) → dense channel → fusion and scorers → order.

Also the gate: whether the leader is confident enough to be answered, and whether the lexical ranking alone is
decisive. Every weight comes from the ``RankingWeights`` the ranker is given.
"""

from __future__ import annotations

import numpy as np

from bot.domain import Candidate, Mode
from bot.ranking.fusion import channel_weights, lexical_only, normalised_dense
from bot.ranking.query import QueryFeatures
from bot.ranking.records import RecordProfiles
from bot.ranking.scorers import fused_score
from bot.ranking.weights import WEIGHTS, RankingWeights
from bot.retrieval.embedding_model import Encoder
from bot.retrieval.index import KnowledgeIndex
from bot.retrieval.onnx_encoder import OnnxQueryEncoder
from bot.text.lexicon import Lexicon
from bot.understanding import Question


class Ranker:
    """Ranked candidates for a question over one index: BM25 and dense channels fused, then scored."""

    def __init__(self, index: KnowledgeIndex, encoder: Encoder | OnnxQueryEncoder, lexicon: Lexicon,
                 weights: RankingWeights = WEIGHTS, skip_dense_when_decisive: bool = True) -> None:  # fmt: skip
        self.index = index
        self.encoder = encoder
        self.lexicon = lexicon
        self.weights = weights
        self.skip_dense_when_decisive = skip_dense_when_decisive
        self.records = RecordProfiles.of(index)

    def features(self, question: Question) -> QueryFeatures:
        return QueryFeatures.of(question, self.lexicon, self.index.vocabulary)

    def rank(self, question: Question, mode: Mode = "hybrid", k: int = 10) -> list[Candidate]:
        """The ``k`` best candidates, best first.

        In hybrid mode the lexical ranking is scored first; when it is decisive (a confident leader well ahead of
        the next candidate) the dense pass is skipped, which saves the transformer pass on about half of the
        questions without changing the answer (docs/evaluation.md, "Skipping the dense pass")."""
        w, n = self.weights, len(self.index.docs)
        query = self.features(question)
        lex_all = self.index.lexical.scores(query.search) if mode != "dense" else np.zeros(n, dtype=np.float32)
        lex_max = float(lex_all.max()) if lex_all.size else 0.0
        pool: dict[int, float] = {}
        cosines: dict[int, float] = {}
        if mode != "dense" and lex_max > 0:
            for i in np.argpartition(-lex_all, min(w.candidates, n - 1))[: w.candidates]:
                if lex_all[i] > 0:
                    pool[int(i)] = 0.0
        if mode == "hybrid" and pool and self.skip_dense_when_decisive:
            quick = self.score(pool, cosines, lex_all, lex_max, lexical_only(w), query)
            if self.decisive(quick):
                return quick[:k]
        if mode != "lexical":
            vector = self.encoder.encode_queries([query.search])[0]
            ids, sims = self.index.dense.search(vector, min(w.candidates, n))
            pool.update(normalised_dense(ids, sims))
            cosines.update({int(i): float(s) for i, s in zip(ids, sims, strict=True)})
        if not pool:
            return []
        return self.score(pool, cosines, lex_all, lex_max, channel_weights(mode, question.text, w), query)[:k]

    def score(self, pool: dict[int, float], cosines: dict[int, float], lex_all: np.ndarray, lex_max: float,
              channels: tuple[float, float], query: QueryFeatures) -> list[Candidate]:  # fmt: skip
        """Candidates for the pooled records (index -> normalised dense score), best first."""
        out = []
        for i, dense_n in pool.items():
            doc = self.index.docs[i]
            lex_n = float(lex_all[i]) / lex_max if lex_max > 0 else 0.0
            cov = query.coverage(self.records.tokens[i])
            score = fused_score(i, doc.kind, lex_n, dense_n, cov, channels, query, self.records, self.weights)
            out.append(Candidate(i, doc, score, lex_n, dense_n, cov, cosines.get(i, 0.0), query.unknown))
        out.sort(key=lambda c: c.score, reverse=True)
        return out

    def confident(self, top: Candidate) -> bool:
        """Whether the leader may be answered: words the knowledge never uses ("youtube", "shopee", "flan") mean the
        question is about something else, however well its other words match."""
        return top.score - self.weights.unknown_word_penalty * top.unknown >= self.weights.confident

    def decisive(self, ranked: list[Candidate]) -> bool:
        """Whether the lexical ranking alone settles the question (see RankingWeights.decisive_*)."""
        if len(ranked) < 2:
            return False
        w, top, second = self.weights, ranked[0], ranked[1]
        return (top.doc.kind == "procedure" and top.score - second.score >= w.decisive_margin
                and top.coverage >= w.decisive_coverage
                and top.score - w.unknown_word_penalty * top.unknown >= w.confident + w.decisive_confidence)  # fmt: skip
