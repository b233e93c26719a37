"""The index manifest fingerprints what a build reads, so lexicon edits do not cost a rebuild."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from bot.config import Settings
from bot.retrieval import index as index_module
from bot.retrieval.index import build_index, index_is_current, load_index
from bot.text.lexicon import Lexicon

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "procedures_sample.jsonl"
PLANS = ROOT / "knowledge" / "plans"
CLEAN_PLAN = "brvt-2023-qd180-ke-hoach-bcd-cds"


class _FakeEncoder:
    """Deterministic vectors; the test is about what the build reads, not about embeddings."""

    def encode_passages(self, texts, progress=False):
        rng = np.random.default_rng(len(texts))
        vectors = rng.standard_normal((len(texts), 8)).astype("float32")
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _knowledge(tmp_path: Path) -> Path:
    """A small knowledge folder: the sample records, one clean plan document and a lexicon."""
    knowledge = tmp_path / "knowledge"
    (knowledge / "procedures").mkdir(parents=True)
    (knowledge / "plans").mkdir()
    national, defence = [], []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            (national if json.loads(line).get("ma_thu_tuc") else defence).append(line)
    for name, lines in (("national", national), ("defence", defence)):
        with gzip.open(knowledge / "procedures" / f"{name}_procedures.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    meta = yaml.safe_load((PLANS / "documents.yml").read_text(encoding="utf-8"))["documents"]
    entry = next(d for d in meta if d["doc_id"] == CLEAN_PLAN)
    (knowledge / "plans" / "documents.yml").write_text(
        yaml.safe_dump({"documents": [entry]}, allow_unicode=True), encoding="utf-8"
    )
    shutil.copy(PLANS / f"{CLEAN_PLAN}.txt", knowledge / "plans")
    shutil.copy(ROOT / "knowledge" / "lexicon.yml", knowledge / "lexicon.yml")
    return knowledge


@pytest.fixture
def small_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", knowledge_dir=_knowledge(tmp_path))


def test_the_build_never_uses_the_lexicon(small_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the index build used the lexicon; put it back into the index fingerprint")

    monkeypatch.setattr(Lexicon, "__init__", refuse)
    monkeypatch.setattr(Lexicon, "__getattribute__", refuse)
    manifest = build_index(small_settings, encoder=_FakeEncoder(), progress=False)
    assert manifest["procedures"] > 10 and manifest["plan_passages"] > 10
    index = load_index(small_settings)
    assert len(index.docs) == manifest["documents"]


def test_lexicon_edits_keep_the_index_current_data_and_build_code_do_not(small_settings: Settings) -> None:
    build_index(small_settings, encoder=_FakeEncoder(), progress=False)
    assert index_is_current(small_settings)

    lexicon = small_settings.knowledge_dir / "lexicon.yml"
    lexicon.write_text(lexicon.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert index_is_current(small_settings)

    plan = small_settings.knowledge_dir / "plans" / f"{CLEAN_PLAN}.txt"
    original = plan.read_text(encoding="utf-8")
    plan.write_text(original + "\nMột dòng mới.\n", encoding="utf-8")
    assert not index_is_current(small_settings)
    plan.write_text(original, encoding="utf-8")
    assert index_is_current(small_settings)


def test_the_code_fingerprint_covers_the_build_and_not_the_question_side() -> None:
    code = {p.relative_to(ROOT).as_posix() for p in index_module.INDEX_CODE}
    assert {"bot/text/vietnamese.py", "bot/retrieval/documents.py", "bot/retrieval/lexical.py",
            "bot/knowledge"} <= code
    assert not any("lexicon" in p for p in code)


def test_official_abbreviations_in_titles_are_spelled_out_for_the_lexical_channel() -> None:
    from bot.knowledge.models import Procedure
    from bot.retrieval.documents import procedure_doc, spelled_out

    assert spelled_out("Cấp lại, đổi, điều chỉnh thông tin trên sổ BHXH, thẻ BHYT") == "bảo hiểm xã hội bảo hiểm y tế"
    assert spelled_out("Đăng ký khai sinh") == ""
    doc = procedure_doc(Procedure(code="1.002759", title="Cấp lại, đổi, điều chỉnh thông tin trên sổ BHXH, thẻ BHYT",
                                  url=None, source="national"))
    assert "sổ BHXH" in doc.lexical_text and "bảo hiểm xã hội" in doc.lexical_text
    assert doc.title == "Cấp lại, đổi, điều chỉnh thông tin trên sổ BHXH, thẻ BHYT"  # what the citizen is shown
