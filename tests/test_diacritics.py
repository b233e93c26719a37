"""Diacritics put back on questions typed without them (bot/text/diacritics.py), for the meaning channel."""

from __future__ import annotations

import doctest
from pathlib import Path

import bot.text.diacritics
from bot.domain import ConversationState
from bot.engine import NLU_EXAMPLES, Engine
from bot.ranking.query import QueryFeatures, meaning_text
from bot.text.diacritics import Restorer, conversation_texts
from bot.text.vietnamese import has_diacritics
from bot.understanding import read


def test_the_examples_in_the_docstrings_hold() -> None:
    result = doctest.testmod(bot.text.diacritics)
    assert result.attempted and not result.failed


def test_what_is_not_a_known_syllable_is_kept_as_typed() -> None:
    r = Restorer.learn(["Cấp lại thẻ căn cước bị mất", "làm lại thẻ căn cước ở đâu"] * 2)
    assert r.restore("Lam lai CCCD bi mat o dau, 2 lan roi!") == "Làm lại CCCD bị mất ở đâu, 2 lan roi!"
    assert r.restore("làm lai the can cuoc") == "làm lai the can cuoc"  # it has diacritics: left alone
    assert r.restore("") == "" and r.restore("🙂🙂") == "🙂🙂"
    assert Restorer().restore("lam lai the can cuoc") == "lam lai the can cuoc"  # nothing learned
    assert Restorer.from_dict(r.to_dict()).restore("lam lai the can cuoc") == "làm lại thẻ căn cước"


def test_clauses_without_diacritics_teach_nothing() -> None:
    r = Restorer.learn(["lam lai the can cuoc", "Làm lại thẻ căn cước"])
    assert r.forms["lam"] == {"làm": 1}


def test_the_nlu_examples_are_read_without_their_annotations(tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text(
        'version: "3.1"\nnlu:\n- intent: ask_documents\n  examples: |\n    - hồ sơ [đăng ký kết hôn](procedure)\n'
        '    - làm [lại căn cước]{"entity": "procedure", "value": "thẻ căn cước"} cần gì\n',
        encoding="utf-8",
    )
    assert conversation_texts(nlu) == ["hồ sơ đăng ký kết hôn", "làm lại căn cước cần gì"]
    assert conversation_texts(tmp_path / "missing.yml") == []
    assert len(conversation_texts(NLU_EXAMPLES)) > 1000


def test_the_nlu_examples_of_chosen_intents(tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text(
        'version: "3.1"\nnlu:\n- intent: ask_fee\n  examples: |\n    - lệ phí [hộ chiếu](procedure)\n'
        "- intent: out_of_scope\n  examples: |\n    - giá vàng hôm nay\n"
        "- synonym: hộ chiếu\n  examples: |\n    - passport\n",
        encoding="utf-8",
    )
    assert conversation_texts(nlu, lambda name: name == "out_of_scope") == ["giá vàng hôm nay"]
    assert conversation_texts(nlu, lambda name: name.startswith("ask_")) == ["lệ phí hộ chiếu"]
    assert len(conversation_texts(nlu)) == 3  # synonyms too, when no intent is chosen


def test_the_engine_restores_citizens_wording_for_the_meaning_channel(engine: Engine) -> None:
    restored = engine.restorer.restore("con toi moi sinh, lam giay khai sinh o dau, can mang gi")
    assert restored == "con tôi mới sinh, làm giấy khai sinh ở đâu, cần mang gì"
    unmarked = QueryFeatures.of(read("lam lai the can cuoc bi mat o dau", ConversationState(), engine.lexicon),
                                engine.lexicon, engine.index.vocabulary)  # fmt: skip
    assert unmarked.search.startswith("lam lai the can cuoc")  # the lexical channel folds anyway: unchanged
    assert "làm lại thẻ căn cước bị mất" in meaning_text(unmarked, engine.lexicon, engine.restorer)
    assert meaning_text(unmarked, engine.lexicon, None) == unmarked.search
    written = QueryFeatures.of(read("làm lại thẻ căn cước", ConversationState(), engine.lexicon), engine.lexicon,
                               engine.index.vocabulary)  # fmt: skip
    assert meaning_text(written, engine.lexicon, engine.restorer) == written.search
    assert has_diacritics(written.search)
