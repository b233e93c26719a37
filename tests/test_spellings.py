"""A word typed with diacritics covers only a record that writes it the same way (bot.ranking.query.coverage_of):
"giảm cân nhanh" is not "Giám đốc chi nhánh" once the marks are read."""

from __future__ import annotations

from bot.domain import ConversationState
from bot.engine import Engine
from bot.ranking.query import coverage_of, typed_spellings
from bot.text.lexicon import load_lexicon
from bot.text.vietnamese import lexical_tokens, syllables
from bot.understanding import understand

RECORD = "Thủ tục chấp thuận nhân sự Giám đốc chi nhánh ngân hàng nước ngoài"


def covered(question: str, record: str = RECORD, spellings: bool = True) -> float:
    coverage = coverage_of(question, load_lexicon())
    return coverage(frozenset(lexical_tokens(record)), frozenset(syllables(record)) if spellings else frozenset())


def test_words_typed_with_other_marks_do_not_cover_a_record() -> None:
    # topic words "cach", "giam": "giam" is there folded ("Giám đốc"), not as typed ("giảm")
    assert covered("Cách giảm cân") == 0.0 and covered("Cách giảm cân", spellings=False) == 0.5
    assert covered("Cách giảm cân nhanh") == 1 / 3  # "nhanh" typed without marks is read folded ("nhánh")
    assert covered("chấp thuận giám đốc chi nhánh") == 1.0  # the record's own words, its own marks


def test_a_question_typed_without_marks_is_read_folded() -> None:
    assert typed_spellings("cach giam can nhanh") == {}
    assert covered("cach giam can") == covered("cach giam can", spellings=False) == 0.5


def test_a_word_typed_bare_among_marked_ones_says_nothing_against_a_record() -> None:
    # a citizen may leave one word's marks out: "chap thuan" is read folded, "giám đốc" with its marks
    assert typed_spellings("chap thuan giám đốc") == {"giam": frozenset({"giám"}), "doc": frozenset({"đốc"})}
    assert covered("chap thuan giám đốc") == 1.0
    assert typed_spellings("Thủ tục hoà giải")["hoa"] == frozenset({"hòa"})  # tone placement does not matter


def test_an_ocr_damaged_passage_keeps_no_spellings(engine: Engine) -> None:
    records, docs = engine.ranker.records, engine.index.docs
    damaged = [i for i, d in enumerate(docs) if records.ocr_damaged[i]]
    clean = [i for i, d in enumerate(docs) if d.kind == "plan" and not records.ocr_damaged[i]]
    assert damaged and clean
    assert all(not records.spellings[i] for i in damaged) and all(records.spellings[i] for i in clean)


def test_the_engine_reads_the_marks_of_a_record_it_indexed(engine: Engine) -> None:
    i = engine.ranker.records.position["1.001193"]  # Đăng ký khai sinh
    records = engine.ranker.records

    def of(question: str) -> float:
        features = engine.ranker.features(understand(question, ConversationState(), engine.lexicon))
        return features.coverage(records.tokens[i], records.spellings[i])

    assert of("đăng ký khai sinh") == of("dang ky khai sinh") == 1.0
    assert of("đang kỳ khải sình") == 0.0  # the same letters, other words
