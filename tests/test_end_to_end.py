"""One full end-to-end run on the whole knowledge base: build every index from all 2,849 procedures and
the five plans, then hold conversations through Rasa in the terminal and over HTTP (one and two workers)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.test_cli import run_bot


@pytest.mark.slow
def test_full_knowledge_base_answers_the_readme_question(tmp_path: Path, env_for, project_dir: Path,
                                                          trained_model: Path) -> None:
    env = dict(env_for, VNA_DATA_DIR=str(tmp_path), VNA_PROCEDURE_DOMAINS="[]", VNA_DIALOGUE="true")
    shutil.copytree(trained_model.parent, tmp_path / "models")  # the model of this checkout (not retrained)
    build = run_bot(["build-index"], env, project_dir)
    assert build.returncode == 0, build.stderr
    manifest = json.loads(build.stdout)
    assert manifest["procedures"] == 2849
    assert manifest["plan_passages"] > 100

    out = run_bot(["ask", "--json", "lam lai cccd o dau"], env, project_dir)
    body = json.loads(out.stdout)
    assert body["sources"][0]["id"] == "1.014064"
    assert body["sources"][0]["url"] in body["reply"]
    assert body["intent"] == "ask_where"  # filled by the NLU

    # interactive: one conversation, a variant chosen by number, a follow-up on it, a rating
    chat = run_bot(["ask"], env, project_dir, stdin="làm lại cccd ở đâu\ncái thứ 2\ncòn lệ phí?\ncảm ơn\n5\n")
    assert chat.returncode == 0, chat.stderr
    assert "• 2. Cấp lại thẻ căn cước (thực hiện tại cấp tỉnh)" in chat.stdout
    assert chat.stdout.count("mã 2.001194") >= 2
    assert "Cảm ơn bạn đã đánh giá" in chat.stdout

    for workers in ("1", "2"):  # one process (the default), and the supervisor + two workers of --workers 2
        _serve_and_ask(env, project_dir, workers)


def _serve_and_ask(env: dict[str, str], project_dir: Path, workers: str) -> None:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers", workers],
                              cwd=project_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        r = httpx.post(f"http://127.0.0.1:{port}/api/chat", json={"session_id": f"e2e-{workers}", "text": "lam lai cccd o dau"},
                       timeout=30)
        assert r.status_code == 200
        assert r.json()["sources"][0]["id"] == "1.014064"
        follow = httpx.post(f"http://127.0.0.1:{port}/api/chat",
                            json={"session_id": f"e2e-{workers}", "text": "con le phi thi sao"}, timeout=30).json()
        assert follow["sources"][0]["id"] == "1.014064"
        assert follow["intent"] == "ask_fee"
        thanks = httpx.post(f"http://127.0.0.1:{port}/api/chat",
                            json={"session_id": f"e2e-{workers}", "text": "cảm ơn nhé"}, timeout=30).json()
        assert len(thanks["buttons"]) == 5  # the rating request
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["status"] == "ok" and health["dialogue"]["status"] == "ok"
    finally:
        server.terminate()
        server.wait(30)
