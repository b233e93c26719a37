"""The Rasa side of the NLU layer: the tokenizer component, `python -m bot train`'s skip logic, and one small model
trained on part of nlu_data/ that must understand the brief's two examples."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import yaml

from bot.config import Settings
from bot.nlu.train import MODEL_NAME, model_fingerprint, quiet_rasa, train_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rasa_ready() -> None:
    quiet_rasa()


def tokens(text: str):
    from rasa.shared.nlu.training_data.message import Message

    from bot.nlu.components import VietnameseTokenizer

    return VietnameseTokenizer({}).tokenize(Message(data={"text": text}), "text")


def test_tokenizer_emits_folded_tokens_with_offsets_and_lexicon_lemmas(rasa_ready):
    text = "Làm lại CCCD ở đâu?"
    toks = tokens(text)
    assert [t.text for t in toks] == ["lam", "lai", "cccd", "o", "dau"]
    assert [text[t.start : t.end] for t in toks] == ["Làm", "lại", "CCCD", "ở", "đâu"]
    assert toks[2].lemma == "cccd the can cuoc"  # what the count-vector featurizers read


def test_tokenizer_gives_the_same_features_with_or_without_diacritics(rasa_ready):
    def bag(text: str) -> list[str]:
        return sorted(" ".join(t.lemma for t in tokens(text)).split())

    assert bag("Đăng ký kết hôn ở đâu") == bag("dang ky ket hon o dau")
    assert [t.text for t in tokens("Đăng ký kết hôn")] == ["dang_ky", "ket_hon"]


def test_tokenizer_keeps_an_emoji_only_message_as_one_token(rasa_ready):
    [tok] = tokens(" 👍 ")
    assert (tok.text, tok.start, tok.end) == ("👍", 1, 2)


# ------------------------------------------------------------------------------------------------
# python -m bot train: skipped when nothing changed
# ------------------------------------------------------------------------------------------------


def copy_project(dst: Path) -> Path:
    for rel in ("config.yml", "nlu_data", "bot/nlu", "bot/text", "knowledge/lexicon.yml"):
        src = ROOT / rel
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    return dst


def test_fingerprint_changes_with_training_data_config_and_nlu_code(tmp_path):
    project = copy_project(tmp_path)
    before = model_fingerprint(project)
    assert model_fingerprint(project) == before
    for rel in ("nlu_data/nlu.yml", "config.yml", "bot/nlu/words.py", "knowledge/lexicon.yml"):
        path = project / rel
        original = path.read_text(encoding="utf-8")
        path.write_text(original + "\n# changed\n", encoding="utf-8")
        assert model_fingerprint(project) != before, rel
        path.write_text(original, encoding="utf-8")
    assert model_fingerprint(project) == before


def test_train_is_skipped_when_the_stored_fingerprint_matches(tmp_path, capsys):
    project = copy_project(tmp_path / "project")
    settings = Settings(data_dir=tmp_path / "var", knowledge_dir=project / "knowledge")
    models = settings.data_dir / "models"
    models.mkdir(parents=True)
    (models / f"{MODEL_NAME}.tar.gz").write_bytes(b"a model")
    stamp = {"fingerprint": model_fingerprint(project, project / "knowledge"), "seconds": 123.0}
    (models / "model.json").write_text(json.dumps(stamp), encoding="utf-8")

    result = train_model(settings, project_dir=project)

    assert result.trained is False and result.path == models / f"{MODEL_NAME}.tar.gz"
    assert "up to date" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# a small model trained on part of the data
# ------------------------------------------------------------------------------------------------

SUBSET = ("ask_where", "ask_fee", "ask_time", "ask_documents", "ask_general", "greet", "thanks", "out_of_scope")


@pytest.mark.slow
def test_small_model_understands_followups_typed_with_or_without_diacritics(tmp_path, rasa_ready):
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData

    data = load_data(str(ROOT / "nlu_data" / "nlu.yml"))
    subset = TrainingData([m for m in data.training_examples if m.get("intent") in SUBSET])
    (tmp_path / "data").mkdir()
    RasaYAMLWriter().dump(tmp_path / "data" / "nlu.yml", subset)
    shutil.copytree(ROOT / "nlu_data" / "lookups", tmp_path / "data" / "lookups")

    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    for component in config["pipeline"]:
        if component["name"] == "DIETClassifier":
            component["epochs"] = 40
    config_path = tmp_path / "config.yml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")

    model = train_nlu(str(config_path), str(tmp_path / "data"), str(tmp_path / "models"), fixed_model_name="small")
    agent = Agent.load(model)

    def parse(text: str) -> dict:
        return asyncio.run(agent.parse_message(text))

    where = parse("lam lai cccd o dau")
    assert where["intent"]["name"] == "ask_where"
    assert {"entity": "procedure", "value": "thẻ căn cước", "extractor": "ProcedureNameExtractor"}.items() <= next(
        e for e in where["entities"] if e["extractor"] == "ProcedureNameExtractor"
    ).items()
    assert parse("còn lệ phí thì sao?")["intent"]["name"] == "ask_fee"
