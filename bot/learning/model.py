"""The learned ranking and answer/decline decision, as the ranker uses it, and how both are fitted.

Two small linear models over what the ranker already computes for every pooled record (``Candidate.features``:
the terms of the hand score, bot.ranking.scorers.TERMS, then bot.ranking.scorers.EXTRAS):

- **ranking**: a weight per feature learned by pairwise logistic regression (the gold record against the others of
  its pool), then mapped linearly onto the hand score's scale (least squares over the pools), so the margins the
  rest of the engine compares scores with (the follow-up ``switch_margin``) keep their meaning. With every weight of
  the terms 1, the extras 0 and no offset it is the hand score itself.
- **decision**: a calibrated probability that the leader is right (logistic regression over the leader's learned
  score, its margin to the second, its hand gate value, coverage, unknown-word share, cosine, …) and one threshold:
  at or above it the engine answers, below it it offers options instead (the hand gate: ``RankingWeights.confident``).
  It is fitted on procedure leaders only; a plan passage that leads keeps the hand gate.

The artefact is one JSON file (``Settings.resolved_learned_ranking_path``, next to the index) written by
``python -m bot learn`` (:mod:`bot.learning.train`); it names its features, and one whose names are not the code's
is ignored (the hand weights are used, with a warning), as is a missing one.

Fitting needs scikit-learn, imported only by :func:`fit_ranking` and :func:`fit_decision`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bot.domain import Candidate
from bot.ranking.scorers import EXTRAS, TERMS, hand_sum
from bot.text.vietnamese import has_diacritics

log = logging.getLogger(__name__)

FEATURES = (*TERMS, *EXTRAS)
DECISION_FEATURES = (
    "score",  # the leader's learned score
    "margin",  # its lead over the second
    "hand_gate",  # the hand gate's value: hand score minus the unknown-word share
    "coverage",  # share of the question's topic words the leader has
    "unknown",  # share of the question's topic words the knowledge never uses
    "cosine",  # the leader's raw dense similarity (0: the dense pass was skipped or did not see it)
    "dense_skipped",  # 1 when no candidate has a dense similarity (the lexical ranking was decisive)
    "precision",  # the leader's title-precision term
    "title_recall",  # share of the asked words its title has
    "no_diacritics",  # the question is typed without diacritics
    "plan",  # the leader is a plan passage
)
# Terms that say which record a citizen most likely means when several fit the words alike (the commune's variant,
# not the police's own personnel record; a procedure, not a plan passage, unless the plans are spoken of): a prior
# over records that questions generated uniformly over the records cannot teach, so they keep their hand weight.
PRIORS = ("variant", "procedure_on_plan_cue", "plan_cue", "plan_province", "plan_number", "plan_percent")
VERSION = 1
_PAIR_NEGATIVES = 20  # negatives per question for the pairwise fit: the best of its pool by the hand score


@dataclass(frozen=True)
class LearnedRanking:
    """The fitted models: ranking weights (per FEATURES) and offset, decision weights (per DECISION_FEATURES),
    offset and threshold."""

    weights: tuple[float, ...]
    bias: float
    decision_weights: tuple[float, ...]
    decision_bias: float
    threshold: float
    info: dict[str, Any]

    # ------------------------------------------------------------------ use
    def scores(self, features: np.ndarray) -> np.ndarray:
        """Learned scores of feature rows (one row per candidate, columns FEATURES)."""
        return features @ np.asarray(self.weights) + self.bias

    def rescore(self, ranked: Sequence[Candidate], question: str) -> list[Candidate]:
        """The candidates (scored by the hand weights) with their learned score, best first (ties keep the hand
        order), and the leader's probability of being right in its ``confidence``."""
        if not ranked:
            return []
        learned = self.scores(np.array([c.features for c in ranked], dtype=np.float64))
        order = sorted(range(len(ranked)), key=lambda k: -learned[k])
        out = [replace(ranked[k], score=float(learned[k])) for k in order]
        if out[0].doc.kind == "procedure":  # a plan passage leading keeps the hand gate (trained on procedures)
            out[0] = replace(out[0], confidence=self.probability(out, question))
        return out

    def probability(self, ranked: Sequence[Candidate], question: str) -> float:
        """The probability that the leader of ``ranked`` (learned scores, best first) is right."""
        x = np.asarray(decision_features(ranked, question))
        z = float(x @ np.asarray(self.decision_weights) + self.decision_bias)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def confident(self, top: Candidate) -> bool:
        return top.confidence is not None and top.confidence >= self.threshold

    # ------------------------------------------------------------------ store
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "features": list(FEATURES),
            "ranking": {"weights": list(self.weights), "bias": self.bias},
            "decision": {"features": list(DECISION_FEATURES), "weights": list(self.decision_weights),
                         "bias": self.decision_bias, "threshold": self.threshold},  # fmt: skip
            "info": self.info,
        }

    def save(self, path: Path) -> None:
        """Written next to the final name and renamed into place, so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnedRanking:
        if data.get("version") != VERSION or tuple(data.get("features", ())) != FEATURES:
            raise ValueError("trained for other features")
        decision = data["decision"]
        if tuple(decision.get("features", ())) != DECISION_FEATURES:
            raise ValueError("decision trained for other features")
        weights = tuple(float(v) for v in data["ranking"]["weights"])
        decision_weights = tuple(float(v) for v in decision["weights"])
        if len(weights) != len(FEATURES) or len(decision_weights) != len(DECISION_FEATURES):
            raise ValueError("wrong number of weights")
        return cls(weights, float(data["ranking"]["bias"]), decision_weights, float(decision["bias"]),
                   float(decision["threshold"]), dict(data.get("info", {})))  # fmt: skip

    @classmethod
    def hand(cls) -> LearnedRanking:
        """The hand score as a learned ranking (weight 1 per term, 0 per extra): what the refactoring keeps."""
        return cls(tuple([1.0] * len(TERMS) + [0.0] * len(EXTRAS)), 0.0, tuple([0.0] * len(DECISION_FEATURES)), 0.0,
                   0.5, {})  # fmt: skip


def load_learned(path: Path) -> LearnedRanking | None:
    """The artefact at ``path``, or None (missing, unreadable, or trained for other features: the hand weights)."""
    if not path.exists():
        log.warning("learned ranking is on but %s is missing (python -m bot learn): using the hand weights", path)
        return None
    try:
        return LearnedRanking.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("learned ranking %s not used (%s): using the hand weights", path, exc)
        return None


def decision_features(ranked: Sequence[Candidate], question: str) -> list[float]:
    """DECISION_FEATURES of the leader of ``ranked`` (best first, learned scores)."""
    top = ranked[0]
    second = ranked[1].score if len(ranked) > 1 else top.score - 1.0
    f = dict(zip(FEATURES, top.features, strict=True))
    return [
        top.score,
        top.score - second,
        hand_sum(top.features[: len(TERMS)]) - top.unknown,
        top.coverage,
        top.unknown,
        top.cosine,
        1.0 if all(c.cosine == 0.0 for c in ranked) else 0.0,
        f["precision"],
        f["title_recall"],
        0.0 if has_diacritics(question) else 1.0,
        f["plan"],
    ]


# ---------------------------------------------------------------------- fitting
def pairs_of(pools: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Gold-minus-negative feature differences of question pools (feature rows in hand order, whether each row is
    gold) and their weights (each question weighs 1): against every negative the hand score puts above the gold
    row, and the first _PAIR_NEGATIVES others."""
    diffs, weights = [], []
    for rows, gold in pools:
        if not gold.any() or gold.all():
            continue
        first = int(np.argmax(gold))
        negatives = np.flatnonzero(~gold)
        chosen = np.union1d(negatives[negatives < first], negatives[:_PAIR_NEGATIVES])
        pairs = rows[first][None, :] - rows[chosen]
        diffs.append(pairs)
        weights.append(np.full(len(pairs), 1.0 / len(pairs)))
    return np.vstack(diffs), np.concatenate(weights)


def fit_ranking(pools: Sequence[tuple[np.ndarray, np.ndarray]], strength: float = 1.0,
                fixed: Sequence[str] = PRIORS) -> tuple[np.ndarray, dict]:  # fmt: skip
    """Ranking weights (per FEATURES) from question pools (see :func:`pairs_of`): pairwise logistic regression
    whose weights are held near the hand weights (1 per term, 0 per extra) by a penalty ``strength`` × the
    squared distance, each weight measured in the spread of its feature; a free temperature takes the scale, so
    the weights stay on the hand score's scale. Strength → ∞ gives the hand score back. The ``fixed`` features
    keep their hand weight (see PRIORS)."""
    from scipy.optimize import minimize

    d, w = pairs_of(pools)
    keep = np.array([name in fixed for name in FEATURES])
    w = w / w.sum()
    spread = d.std(axis=0)
    spread[spread == 0] = 1.0
    hand = np.array([1.0] * len(TERMS) + [0.0] * len(EXTRAS))
    penalty = strength * spread**2 / len(hand)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        log_t, theta = params[0], params[1:]
        t = math.exp(log_t)
        margin = d @ theta
        z = t * margin
        nll = float(w @ np.logaddexp(0.0, -z))
        g = -w / (1.0 + np.exp(z))  # d nll / d z
        grad_theta = t * (d.T @ g) + 2 * penalty * (theta - hand)
        grad_theta[keep] = 0.0
        grad_t = float(g @ margin) * t
        return nll + float(penalty @ (theta - hand) ** 2), np.concatenate([[grad_t], grad_theta])

    start = np.concatenate([[math.log(10.0)], hand])
    result = minimize(loss, start, jac=True, method="L-BFGS-B")
    theta = result.x[1:]
    report = {"pairs": len(d), "questions": len(pools), "strength": strength, "temperature": math.exp(result.x[0]),
              "converged": bool(result.success)}  # fmt: skip
    return theta, report


def fit_decision(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[np.ndarray, float]:
    """Decision weights and offset (raw features, standardisation folded in) from leader rows and whether each
    leader was right."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - mean) / scale, y)
    weights = model.coef_[0] / scale
    return weights, float(model.intercept_[0] - weights @ mean)
