"""`python -m bot eval --dialogue`: the whole dev set through /api/chat with Rasa, on databases of its own."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from bot.config import Settings
from bot.dialogue.evaluate import run_dialogue_eval
from bot.schema import turns


def _count_turns(url: str) -> int:
    engine = create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(turns)).scalar_one()
    finally:
        engine.dispose()


def test_dialogue_eval_runs_through_the_public_api_without_touching_the_deployment(
        settings: Settings, trained_model: Path, tmp_path: Path, project_dir: Path,
        capsys: pytest.CaptureFixture[str], client) -> None:  # client: the shared app (creates the db)
    devset = tmp_path / "devset"
    devset.mkdir()
    for name in ("procedure_questions", "plan_questions", "out_of_scope", "followups"):  # the first two of each
        lines = (project_dir / "eval" / "devset" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[:2]
        (devset / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = _count_turns(settings.resolved_database_url)
    errors = tmp_path / "misses.jsonl"
    args = argparse.Namespace(devset=str(devset), report=None, errors=str(errors))
    assert run_dialogue_eval(settings, args) == 0  # before the fix: 403, the API refused the "eval" channel
    out = capsys.readouterr().out
    assert "| Procedure hit@1 (all) | 2 |" in out
    assert "| Follow-up: right procedure (every later turn) | 2 |" in out  # the dev set's follow-ups have two turns
    assert "Scripted conversations passed" in out
    for line in errors.read_text(encoding="utf-8").splitlines():
        json.loads(line)
    # the evaluation's conversations are not the deployment's: its turn log (and so its KPIs) is unchanged
    assert _count_turns(settings.resolved_database_url) == before
    shutil.rmtree(devset)
