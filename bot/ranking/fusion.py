"""Fusing the lexical and dense channels: how each is normalised and how much each counts."""

from __future__ import annotations

import numpy as np

from bot.domain import Mode
from bot.ranking.weights import RankingWeights
from bot.text.vietnamese import has_diacritics

ChannelWeights = tuple[float, float]  # (lexical, dense)


def lexical_only(w: RankingWeights) -> ChannelWeights:
    """Both channels' weight on BM25: lexical mode, and the quick pass that may make the dense one unnecessary."""
    return (w.lexical + w.dense, 0.0)


def channel_weights(mode: Mode, question: str, w: RankingWeights) -> ChannelWeights:
    """How much the lexical and the dense score count for this question in this mode."""
    hybrid = (w.lexical, w.dense)
    if not has_diacritics(question):
        hybrid = (w.lexical + w.dense - w.no_diacritics_dense, w.no_diacritics_dense)
    return {"hybrid": hybrid, "lexical": lexical_only(w), "dense": (0.0, w.lexical + w.dense)}[mode]


def normalised_dense(ids: np.ndarray, sims: np.ndarray) -> dict[int, float]:
    """Dense similarities (the dense index's ids and cosines, best first) min-max normalised over the channel's own
    candidates (best 1, last 0)."""
    floor = float(sims[-1]) if len(sims) else 0.0
    span = max(float(sims[0]) - floor, 1e-6) if len(sims) else 1.0
    return {int(i): (float(s) - floor) / span for i, s in zip(ids, sims, strict=True)}
