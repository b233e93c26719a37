"""`python -m bot ask` as other tools use it: one-shot, --json, --json --batch, interactive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run_bot(args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
        timeout=600, check=False,
    )


@pytest.fixture(scope="module")
def built(assistant, env_for, project_dir):  # the session index exists before subprocesses run
    return env_for, project_dir


def test_ask_json_prints_one_contract_object(built) -> None:
    env, cwd = built
    out = run_bot(["ask", "--json", "lam lai cccd o dau"], env, cwd)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert set(body) == {"question", "reply", "intent", "fallback", "sources", "answer"}
    assert body["sources"][0]["id"] == "1.014064"
    assert body["answer"]["procedure"] == "1.014064"  # the structured answer (tests/test_structured_answer.py)


def test_ask_plain_prints_the_reply_text(built) -> None:
    env, cwd = built
    out = run_bot(["ask", "đăng ký khai tử ở đâu"], env, cwd)
    assert out.returncode == 0, out.stderr
    assert "Thủ tục:" in out.stdout and "Nguồn:" in out.stdout


def test_batch_answers_each_line_independently_in_order(built, tmp_path: Path) -> None:
    env, cwd = built
    questions = tmp_path / "q.txt"
    questions.write_text("lam lai cccd o dau\ncòn lệ phí thì sao?\nthời tiết hôm nay\n", encoding="utf-8")
    out = run_bot(["ask", "--json", "--batch", str(questions)], env, cwd)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["question"] for r in rows] == ["lam lai cccd o dau", "còn lệ phí thì sao?", "thời tiết hôm nay"]
    assert rows[0]["fallback"] is False
    assert rows[1]["fallback"] is True  # fresh conversation: nothing to follow up on
    assert rows[2]["intent"] == "out_of_scope"


def test_interactive_chat_keeps_the_conversation(built) -> None:
    env, cwd = built
    out = run_bot(["ask"], env, cwd, stdin="đăng ký kết hôn cần giấy tờ gì\ncòn lệ phí thì sao?\nthoát\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("Trợ lý: ") == 2  # piped stdin: each reply follows the "Bạn: " prompt on its line
    assert "Phí, lệ phí" in out.stdout or "phí, lệ phí" in out.stdout


def test_batch_without_json_is_a_usage_error(built) -> None:
    env, cwd = built
    out = run_bot(["ask", "--batch", "x.txt"], env, cwd)
    assert out.returncode == 2
    assert "--batch needs --json" in out.stderr
