"""`python -m bot learn`: generate the corpus, rank it with the hand weights, fit the learned ranking and decision,
write the artefact next to the index.

Every generated question goes the way :meth:`bot.engine.Engine.answer` takes a new question: ``understand`` with
an empty conversation; one the scope rules already answer (small talk, off-topic topics) or that is only a number
or a place never reaches the ranker and is left out. The ranker (hand weights) gives its pool with every
candidate's features; the ranking model learns from the pools whose gold is in them, the decision model from every
procedure leader under the learned ranking (a leader that is not gold, and every leader of an out-of-scope question,
is a negative).

Questions are split by procedure (a hash of the code, about one in five held back): the models are fitted on the
rest; the ranking's penalty strength is chosen on the held-back part and the report's figures come from it. The threshold is set on citizens' questions without
labels (``IN_DOMAIN``, never an evaluation set): the learned decision declines as many of them as the hand gate.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.config import Settings
from bot.domain import Candidate, ConversationState
from bot.engine import Engine
from bot.learning.corpus import Example, generate
from bot.learning.model import (
    DECISION_FEATURES,
    FEATURES,
    LearnedRanking,
    decision_features,
    fit_decision,
    fit_ranking,
)
from bot.retrieval.index import ensure_index
from bot.retrieval.onnx_encoder import load_question_encoder, passage_encoder
from bot.understanding import understand

log = logging.getLogger(__name__)

POOL = 40  # candidates kept per question (the ranker pools up to two channels' 60)
HELD_BACK = 5  # one procedure in this many is held back: the penalty strength is chosen there, the report made there
# Without in-domain questions, the threshold declines at most this share of the held-back right leaders (the hand
# gate's "in-scope wrongly declined" target is 0.02).
MAX_RIGHT_DECLINED = 0.02
# Citizens' questions without labels (not evaluation sets): where the threshold is set (threshold_from_in_domain).
IN_DOMAIN = (Path("/work/shared/data/dev/police_faq.jsonl"), Path("/work/shared/data/dev/social_insurance_questions.jsonl"))
STRENGTHS = (0.3, 1.0, 3.0, 10.0)  # penalty strengths tried for the ranking (bot.learning.model.fit_ranking)
NO_DECISION = (0.0,) * len(DECISION_FEATURES)


@dataclass
class Ranked:
    """One generated question as the hand-weighted ranker ordered it."""

    example: Example
    text: str  # as understanding normalised it
    candidates: list[Candidate]  # hand order, at most POOL

    @property
    def rows(self) -> np.ndarray:
        return np.array([c.features for c in self.candidates], dtype=np.float64)

    @property
    def gold(self) -> np.ndarray:
        codes = self.example.gold
        return np.array([c.doc.doc_id in codes for c in self.candidates], dtype=bool)

    @property
    def held_back(self) -> bool:
        key = self.example.code or self.example.text
        return int(hashlib.sha256(key.encode()).hexdigest(), 16) % HELD_BACK == 0


def rank_corpus(engine: Engine, examples: Sequence[Example], progress: bool = True) -> list[Ranked]:
    """Each example that reaches the ranker, with its pool (hand weights, hybrid mode)."""
    from tqdm import tqdm

    out = []
    for example in tqdm(examples, desc="ranking the corpus", unit="q", disable=not progress, mininterval=2):
        question = understand(example.text, ConversationState(), engine.lexicon)
        if question.scope is not None or question.choice_only or question.place_only or question.choice:
            continue
        out.append(Ranked(example, question.text, engine.ranker.rank(question, "hybrid", k=POOL)))
    return [r for r in out if r.candidates]


def _leaders(model: LearnedRanking, ranked: Sequence[Ranked]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decision rows, labels (leader right) and in-scope flags of the questions whose learned leader is a procedure
    (a plan passage that leads keeps the hand gate)."""
    x, y, inscope = [], [], []
    for r in ranked:
        order = model.rescore(r.candidates, r.text)
        if order[0].doc.kind != "procedure":
            continue
        x.append(decision_features(order, r.text))
        y.append(order[0].doc.doc_id in r.example.gold)
        inscope.append(r.example.code is not None)
    return np.array(x), np.array(y, dtype=bool), np.array(inscope, dtype=bool)


def _hit1(ranked: Sequence[Ranked], model: LearnedRanking | None) -> float:
    hits = [(model.rescore(r.candidates, r.text) if model else r.candidates)[0].doc.doc_id in r.example.gold
            for r in ranked]  # fmt: skip
    return float(np.mean(hits)) if hits else 0.0


def choose_threshold(p: np.ndarray, share: float) -> float:
    """The cut below which ``share`` of the probabilities ``p`` fall (0.5 without any)."""
    ordered = np.sort(p)
    if not len(ordered):
        return 0.5
    return float(ordered[min(len(ordered) - 1, int(np.floor(share * len(ordered))))])


def in_domain_questions(paths: Sequence[Path] = IN_DOMAIN) -> list[Example]:
    """Citizens' questions without a procedure label (``question`` of each JSON line), where the files exist."""
    import json

    rows: list[Example] = []
    for path in paths:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                text = json.loads(line).get("question") if line.strip() else None
                if isinstance(text, str) and text.strip():
                    rows.append(Example(text, None, (), "in_domain"))
    return rows


def threshold_from_in_domain(engine: Engine, model: LearnedRanking, questions: Sequence[Example],
                             fallback: np.ndarray) -> tuple[float, dict]:  # fmt: skip
    """The one threshold: the learned decision declines the same share of the unlabeled in-domain questions whose
    learned leader is a procedure as the hand gate declines of them (hand ranking); without such questions, at
    most MAX_RIGHT_DECLINED of the held-back right leaders (probabilities ``fallback``)."""
    ranked = rank_corpus(engine, questions, progress=False)
    if not ranked:
        return choose_threshold(fallback, MAX_RIGHT_DECLINED), {"in_domain": 0}
    p, hand = [], []
    for r in ranked:
        order = model.rescore(r.candidates, r.text)
        if order[0].confidence is not None:
            p.append(order[0].confidence)
            hand.append(not engine.ranker.confident(r.candidates[0]))
    share = float(np.mean(hand)) if hand else MAX_RIGHT_DECLINED
    return choose_threshold(np.array(p), share), {"in_domain": len(p), "hand_gate_declines": round(share, 4)}


def train(engine: Engine, examples: Sequence[Example], progress: bool = True, info: dict | None = None,
          strengths: Sequence[float] = STRENGTHS, in_domain: Sequence[Example] = ()) -> LearnedRanking:  # fmt: skip
    """Fit both models on ``examples`` with ``engine``'s hand-weighted ranker: the ranking for each penalty
    strength, keeping the one with the best hit@1 on the held-back questions, then the decision, and its threshold
    from the unlabeled ``in_domain`` questions (:func:`threshold_from_in_domain`)."""
    started = time.perf_counter()
    ranked = rank_corpus(engine, examples, progress)
    fit = [r for r in ranked if not r.held_back]
    held = [r for r in ranked if r.held_back] or fit
    held_in = [r for r in held if r.example.code]
    pools = [(r.rows, r.gold) for r in fit if r.example.code]
    tried = {}
    best: tuple[float, LearnedRanking, dict] | None = None
    for strength in strengths:
        theta, ranking_report = fit_ranking(pools, strength)
        candidate = LearnedRanking(tuple(float(v) for v in theta), 0.0, NO_DECISION, 0.0, 0.5, {})
        hit = _hit1(held_in, candidate)
        tried[str(strength)] = round(hit, 4)
        if best is None or hit > best[0]:
            best = (hit, candidate, ranking_report)
    assert best is not None
    _, ranking, ranking_report = best
    x, y, _ = _leaders(ranking, fit)
    decision_weights, decision_bias = fit_decision(x, y)
    model = LearnedRanking(ranking.weights, ranking.bias, tuple(float(v) for v in decision_weights), decision_bias,
                           0.5, {})  # fmt: skip
    xh, yh, inh = _leaders(model, held)
    p = 1.0 / (1.0 + np.exp(-(xh @ np.asarray(decision_weights) + decision_bias)))
    threshold, threshold_report = threshold_from_in_domain(engine, model, in_domain, p[inh & yh])
    hand_declined = xh[:, 2] < engine.ranker.weights.confident  # the hand gate on the same leaders
    report = {
        "examples": len(examples),
        "ranked": len(ranked),
        "fit_questions": len(fit),
        "held_back_questions": len(held),
        "weights": dict(zip(FEATURES, (round(v, 4) for v in ranking.weights), strict=True)),
        "ranking": ranking_report | {"held_back_hit1_by_strength": tried},
        "threshold": {"value": round(threshold, 4), **threshold_report},
        "held_back": {
            "inscope": int(inh.sum()),
            "out_of_scope": int((~inh).sum()),
            "hit1_hand": round(_hit1(held_in, None), 4),
            "hit1_learned": round(_hit1(held_in, model), 4),
            "declined_inscope_learned": _share(p[inh] < threshold),
            "declined_oos_learned": _share(p[~inh] < threshold),
            "declined_inscope_hand_gate": _share(hand_declined[inh]),
            "declined_oos_hand_gate": _share(hand_declined[~inh]),
        },
        "seconds": round(time.perf_counter() - started, 1),
        **(info or {}),
    }
    return LearnedRanking(model.weights, model.bias, model.decision_weights, model.decision_bias, threshold, report)


def _share(flags: np.ndarray) -> float | None:
    return round(float(flags.mean()), 4) if len(flags) else None


def run_learn(settings: Settings, seed: int = 16, per_procedure: int = 3, limit: int | None = None,
              output: Path | None = None, progress: bool = True) -> LearnedRanking:  # fmt: skip
    """`python -m bot learn`: the corpus of the index's knowledge, the fit, the artefact (see the module)."""
    encoder = load_question_encoder(settings)
    # the question encoder embeds the passages of an index built here only if it is the index's own model
    index = ensure_index(settings, encoder=passage_encoder(settings, encoder), progress=progress)
    engine = Engine(index, encoder, settings.model_copy(update={"learned_ranking": False}))
    procedures = sorted(index.kb.procedures.values(), key=lambda p: p.code)
    if limit:
        procedures = procedures[:limit]
    examples = generate(procedures, engine.lexicon, seed, per_procedure, index.vocabulary,
                        off_topic=max(40, len(procedures) // 7), known=index.kb.procedures.values())  # fmt: skip
    info = {"seed": seed, "per_procedure": per_procedure, "procedures": len(procedures),
            "index": {k: index.manifest.get(k) for k in ("knowledge", "code", "procedures", "built_at")},
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    model = train(engine, examples, progress, info, in_domain=in_domain_questions())
    path = output or settings.resolved_learned_ranking_path
    model.save(path)
    log.info("learned ranking written to %s", path)
    return model
