"""The learned ranking (issue 16 step 3): the generated corpus, the score terms, training and loading the artefact,
and the setting that switches the ranker (on the small test index of conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.engine import Engine
from bot.learning.corpus import Example, generate, head_title, short_title
from bot.learning.model import FEATURES, LearnedRanking, load_learned
from bot.learning.train import train
from bot.ranking.scorers import EXTRAS, TERMS, hand_sum, quoted_numbers, title_precision
from bot.ranking.weights import WEIGHTS
from bot.text.vietnamese import has_diacritics

QUESTIONS = ["lam lai cccd o dau", "đăng ký khai sinh cần giấy tờ gì", "lệ phí cấp lý lịch tư pháp",
             "kế hoạch chuyển đổi số Bình Dương 2025 đạt bao nhiêu phần trăm", "đăng ký kết hôn với người nước ngoài"]


@pytest.fixture(scope="module")
def corpus(engine: Engine) -> list[Example]:
    procs = sorted(engine.kb.procedures.values(), key=lambda p: p.code)[:60]
    return generate(procs, engine.lexicon, seed=5, per_procedure=3, vocabulary=engine.index.vocabulary,
                    off_topic=30, shared=None, known=engine.kb.procedures.values())


@pytest.fixture(scope="module")
def artefact(engine: Engine, corpus: list[Example], tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = train(engine, corpus, progress=False, strengths=(1.0,))
    path = tmp_path_factory.mktemp("learned") / "learned_ranking.json"
    model.save(path)
    return path


def test_every_label_is_a_procedure_of_the_knowledge(engine: Engine, corpus: list[Example]) -> None:
    assert len(corpus) > 150
    for row in corpus:
        if row.code is None:
            assert row.kind in {"off_topic", "unknown_words"} and not row.acceptable
            continue
        assert row.code in engine.kb.procedures
        assert all(code in engine.kb.procedures for code in row.acceptable), row
        assert row.form in {"title", "short", "head", "name"}


def test_rows_without_diacritics_really_have_none(corpus: list[Example]) -> None:
    folded = [row for row in corpus if row.kind == "folded"]
    assert len(folded) > 20
    assert not any(has_diacritics(row.text) for row in folded)


def test_the_corpus_is_the_same_for_the_same_seed_and_another_for_another(engine: Engine,
                                                                           corpus: list[Example]) -> None:
    procs = sorted(engine.kb.procedures.values(), key=lambda p: p.code)[:60]
    kwargs = {"vocabulary": engine.index.vocabulary, "off_topic": 30, "shared": None,
              "known": engine.kb.procedures.values()}
    assert generate(procs, engine.lexicon, seed=5, per_procedure=3, **kwargs) == corpus
    assert generate(procs, engine.lexicon, seed=6, per_procedure=3, **kwargs) != corpus
    # a procedure's rows do not depend on which others are generated with it
    alone = generate(procs[:1], engine.lexicon, seed=5, per_procedure=3, vocabulary=(), off_topic=0,
                     known=engine.kb.procedures.values())
    assert alone == [row for row in corpus if row.code == procs[0].code]


def test_names_are_shortened_the_way_citizens_shorten_them(engine: Engine) -> None:
    assert short_title("Cấp lại thẻ căn cước (thực hiện tại cấp xã)") == "Cấp lại thẻ căn cước"
    assert head_title("Đăng ký khai sinh có yếu tố nước ngoài, cho trẻ em") == "Đăng ký khai sinh có yếu tố nước ngoài"
    lexicon_rows = [row for row in generate(engine.kb.procedures.values(), engine.lexicon, seed=5, per_procedure=3,
                                            off_topic=0) if row.kind in {"lexicon", "abbreviation"}]
    assert any("cccd" in row.text.lower() for row in lexicon_rows)  # "thẻ căn cước" read back as citizens write it


# the fused score as bot.ranking.scorers computed it before the terms were split out (issue 16 step 3)
def _old_fused_score(c, channels, query, records, w) -> float:
    q, i = query.question, c.doc_index
    if records.ocr_damaged[i] and q.plan_cue and channels[0] > 0:
        score = (channels[0] + channels[1]) * c.lexical
    else:
        score = channels[0] * c.lexical + channels[1] * c.dense
    score += w.coverage * c.coverage + w.precision * title_precision(i, query, records)
    score += quoted_numbers(i, query, records, w)
    if c.doc.kind == "procedure":
        score += q.prefer.adjustment(records.variant(i), w)
        score -= w.procedure_on_plan_cue if q.plan_cue else 0.0
    elif c.doc.kind == "plan":
        terms = [w.plan_on_plan_cue if q.plan_cue else w.plan_without_cue]
        province, number = records.plan(i)
        if q.provinces:
            terms.append(w.plan_province_match if province in q.provinces else w.plan_province_mismatch)
        named = query.numbers & records.plan_numbers
        if named:
            terms.append(w.plan_number_match if number in named else -w.plan_number_match)
        if q.percent and records.plan_percent[i]:
            terms.append(w.plan_percent)
        for term in terms:
            score += term
    return score


@pytest.mark.parametrize("question", QUESTIONS)
def test_the_hand_score_is_the_sum_of_its_terms_and_unchanged(engine: Engine, question: str) -> None:
    from bot.ranking.fusion import channel_weights

    assert engine.ranker.learned is None  # the setting is off by default
    read = engine.read(question)
    ranked = engine.ranker.rank(read, "lexical", k=40)  # lexical mode: every candidate's channels are known
    query = engine.ranker.features(read)
    channels = channel_weights("lexical", read.text, WEIGHTS)
    assert ranked
    for c in ranked:
        assert len(c.features) == len(TERMS) + len(EXTRAS) == len(FEATURES)
        assert c.score == hand_sum(c.features[: len(TERMS)])  # to the last bit
        assert c.score == _old_fused_score(c, channels, query, engine.ranker.records, WEIGHTS)
    rows = np.array([c.features for c in ranked])
    hand = LearnedRanking.hand().scores(rows)  # dot(hand weights, terms): 1 per term, 0 per extra
    assert np.allclose(hand, [c.score for c in ranked], rtol=0, atol=1e-12)


def test_training_writes_an_artefact_the_engine_loads(engine: Engine, artefact: Path) -> None:
    data = json.loads(artefact.read_text(encoding="utf-8"))
    assert data["features"] == list(FEATURES)
    assert data["info"]["held_back"]["inscope"] > 0
    model = load_learned(artefact)
    assert model is not None
    assert len(model.weights) == len(FEATURES) and 0.0 < model.threshold < 1.0
    # the prior terms keep their hand weight; what the corpus can teach moved
    assert model.weights[FEATURES.index("variant")] == 1.0
    assert model.weights != LearnedRanking.hand().weights


def test_the_setting_switches_the_ranker(engine: Engine, settings: Settings, artefact: Path,
                                         tmp_path: Path) -> None:
    on = settings.model_copy(update={"learned_ranking": True, "learned_ranking_path": artefact})
    learned = Engine(engine.index, engine.encoder, on, engine.lexicon)
    assert learned.ranker.learned is not None and engine.ranker.learned is None
    ranked = learned.ranker.rank(learned.read("lam lai cccd o dau"))
    assert ranked[0].confidence is not None and 0.0 <= ranked[0].confidence <= 1.0
    weights = np.asarray(learned.ranker.learned.weights)
    assert all(c.score == pytest.approx(float(np.asarray(c.features) @ weights)) for c in ranked)
    reply, _ = learned.answer("lam lai cccd o dau")
    assert reply.reply  # answers (or offers options) with the learned decision
    # a missing artefact, or one trained for other features, leaves the hand weights
    missing = on.model_copy(update={"learned_ranking_path": tmp_path / "none.json"})
    assert Engine(engine.index, engine.encoder, missing, engine.lexicon).ranker.learned is None
    other = json.loads(artefact.read_text(encoding="utf-8"))
    other["features"] = [*other["features"], "something_new"]
    (tmp_path / "other.json").write_text(json.dumps(other), encoding="utf-8")
    assert load_learned(tmp_path / "other.json") is None


def test_default_path_is_next_to_the_index(settings: Settings) -> None:
    assert settings.learned_ranking is False
    assert settings.resolved_learned_ranking_path == settings.resolved_index_dir.parent / "learned_ranking.json"
