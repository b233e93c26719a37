"""The question encoder fine-tuned on questions generated from the knowledge (bot/learning/tune_encoder.py): trained
here on a few procedures for a few batches, then loaded by the serving code as ``question_model``."""

from __future__ import annotations

import json

import numpy as np

from bot.config import Settings
from bot.knowledge.store import KnowledgeBase
from bot.learning.corpus import generate
from bot.learning.tune_encoder import STAMP_FILE, training_pairs, tune
from bot.retrieval.onnx_encoder import load_question_encoder, passage_encoder
from bot.text.lexicon import load_lexicon


def test_training_pairs_point_at_the_records_that_answer_them(settings: Settings) -> None:
    kb = KnowledgeBase.from_sources(settings.knowledge_dir, settings.procedure_domains)
    procedures = sorted(kb.procedures.values(), key=lambda p: p.code)[:30]
    examples = generate(procedures, load_lexicon(), seed=16, off_topic=5, known=kb.procedures.values())
    pairs = training_pairs(procedures, examples)
    about = [e for e in examples if e.code]
    assert pairs and len(pairs) == len(about)  # out-of-scope rows make no pair
    for example, (text, positions) in zip(about, pairs, strict=True):
        codes = {procedures[i].code for i in positions}
        assert text == example.text and example.code in codes and codes <= example.gold


def test_a_tuned_question_model_is_trained_cached_and_served(settings: Settings, tmp_path) -> None:
    folder = tune(settings, minutes=0.02, limit=12, out=tmp_path / "tuned", progress=False)
    stamp = json.loads((folder / STAMP_FILE).read_text(encoding="utf-8"))
    assert stamp["steps"] >= 1 and stamp["questions"] > 12 and stamp["first_loss"] > 0
    assert tune(settings, minutes=0.02, limit=12, out=folder, progress=False) == folder  # complete: reused

    tuned_settings = settings.model_copy(update={"question_model": str(folder), "embedding_runtime": "torch"})
    tuned = load_question_encoder(tuned_settings, progress=False)
    base = load_question_encoder(settings.model_copy(update={"embedding_runtime": "torch"}), progress=False)
    assert passage_encoder(tuned_settings, tuned) is None  # never embeds the index's passages
    assert passage_encoder(settings, base) is base
    question = ["làm lại căn cước ở đâu"]
    a, b = tuned.encode_queries(question)[0], base.encode_queries(question)[0]
    assert a.shape == b.shape and abs(float(np.linalg.norm(a)) - 1) < 1e-3
    assert 0.5 < float(a @ b) < 0.99999  # moved by the training, still the same space
