"""``python -m bot eval --dialogue``: the dev set and the scripted conversations through POST /api/chat with Rasa
in the loop, beside the same dev set answered by the engine alone.

It shows what the dialogue layer changes: questions Rasa routes to a fixed reply instead of the engine, intents
that lose the procedure, follow-ups carried through slots, and the cost of a turn.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient

from bot.config import Settings
from bot.dialogue.scripted import run_conversations
from bot.eval import FOLLOWUP_ROWS, TurnOutcome, score_followup
from bot.text.vietnamese import fold


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


_RATE_LIMITS = ("rate_limit_session", "rate_limit_address", "rate_limit_channel_user", "rate_limit_rating")
_UNLIMITED = ""  # an empty limit is no limit (bot.ratelimit)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


def run_dialogue_eval(settings: Settings, args: argparse.Namespace) -> int:
    from bot.api import create_app
    from bot.service import Assistant

    # The evaluation's conversations go to databases of their own (a temporary folder), never into the deployment's
    # turn log and KPIs; the index and the model are the deployment's. They are plain API conversations: the API
    # refuses channels that are not public (docs/security.md).
    scratch = Path(tempfile.mkdtemp(prefix="vna-eval-"))
    # One client sending as fast as it can: the public rate limits (per conversation and per address) would turn
    # most of the set into 429s, so they are lifted here; everything else is as `serve` runs it.
    settings = settings.model_copy(update={"database_url": f"sqlite:///{scratch / 'assistant.db'}",
                                           "tracker_store_url": f"sqlite:///{scratch / 'dialogue.db'}",
                                           **{name: _UNLIMITED for name in _RATE_LIMITS}})
    assistant = Assistant(settings, progress=True, dialogue=True)
    if assistant.dialogue is None:
        print(f"eval --dialogue: the dialogue layer is unavailable ({assistant.dialogue_error})")
        return 1
    root = Path(args.devset)
    latencies: list[float] = []
    engine_only: list[float] = []
    counts: dict[str, list[float]] = {}
    misses: list[dict] = []

    def add(key: str, value: float) -> None:
        counts.setdefault(key, []).append(value)

    with TestClient(create_app(settings, assistant)) as client:

        def post(session_id: str, text: str) -> dict:
            started = time.perf_counter()
            r = client.post("/api/chat", json={"session_id": session_id, "text": text})
            latencies.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
            return r.json()

        run = uuid.uuid4().hex[:8]
        for q in _read(root / "procedure_questions.jsonl"):
            body = post(f"eval-{run}-{q['id']}", q["question"])
            gold = set(q["expected"]) | set(q.get("acceptable", []))
            top = body["sources"][0]["id"] if body["sources"] and not body["fallback"] else None
            add("proc:hit1", float(top in gold))
            add("inscope:declined", float(body["fallback"]))
            add("proc:engine_reply", float(bool(body["sources"]) or body["fallback"]))
            if top not in gold:
                misses.append({"id": q["id"], "question": q["question"], "expected": q["expected"], "got": top,
                               "intent": body["intent"], "reply": body["reply"][:120]})
            started = time.perf_counter()
            assistant.ask(q["question"])
            engine_only.append((time.perf_counter() - started) * 1000)
        for q in _read(root / "plan_questions.jsonl"):
            body = post(f"eval-{run}-{q['id']}", q["question"])
            folded = fold(body["reply"]).replace(" ", "")
            ok = (not body["fallback"] and bool(body["sources"]) and body["sources"][0]["kind"] == "plan"
                  and any(fold(str(e)).replace(" ", "") in folded for e in q["expected"]))
            add("plan:fact", float(ok))
            add("inscope:declined", float(body["fallback"]))
            if not ok:
                misses.append({"id": q["id"], "question": q["question"], "expected": q["expected"],
                               "got": body["sources"][0]["id"] if body["sources"] else None,
                               "intent": body["intent"], "fallback": body["fallback"], "reply": body["reply"][:160]})
        for q in _read(root / "out_of_scope.jsonl"):
            body = post(f"eval-{run}-{q['id']}", q["question"])
            add("oos:declined", float(body["fallback"]))
            if not body["fallback"]:
                misses.append({"id": q["id"], "question": q["question"], "got": body["intent"]})
        for q in _read(root / "followups.jsonl"):  # every later turn scored, as the engine's eval does
            session = f"eval-{run}-{q['id']}"

            def play(text: str, session: str = session) -> TurnOutcome:
                body = post(session, text)
                code = body["sources"][0]["id"] if body.get("sources") and not body.get("fallback") else None
                asked = str(body.get("intent") or "").removeprefix("ask_")
                # the options the reply offers are in the state the turn stored (the buttons carry no code)
                return TurnOutcome(code, [asked], list(assistant.store.load(session).options))

            for problem in score_followup(q, play, add):
                misses.append({"id": q["id"], "turns": q["turns"], "expected": q["expected"], "problem": problem})
        dev_latencies = list(latencies)
        report = run_conversations(post, assistant.store)

    summary = report.summary()
    rows = [
        ("Procedure hit@1 (all)", "proc:hit1"),
        ("Procedure questions answered by the engine (not a fixed reply)", "proc:engine_reply"),
        ("Plan facts (figure in the answer)", "plan:fact"),
        ("Out-of-scope declined", "oos:declined"),
        ("In-scope wrongly declined", "inscope:declined"),
        *FOLLOWUP_ROWS,
    ]
    lines = ["| metric | n | through /api/chat with Rasa |", "|---|---:|---:|"]
    for label, key in rows:
        if counts.get(key):
            lines.append(f"| {label} | {len(counts[key])} | {statistics.mean(counts[key]):.3f} |")
    lines.append(f"| Scripted conversations passed | {summary['conversations']} | "
                 f"{summary['conversations_passed']}/{summary['conversations']} |")
    lines.append(f"| Scripted turns passed | {summary['turns']} | {summary['turns_passed']}/{summary['turns']} |")
    lines.append(f"| Turn p50 / p95 (ms, one client, HTTP in-process) | {len(dev_latencies)} | "
                 f"{_pct(dev_latencies, 0.5):.1f} / {_pct(dev_latencies, 0.95):.1f} |")
    lines.append(f"| Engine alone on the same questions, p50 / p95 (ms) | {len(engine_only)} | "
                 f"{_pct(engine_only, 0.5):.1f} / {_pct(engine_only, 0.95):.1f} |")
    lines.append("")
    lines.append(f"Dev set: {root}; conversations: eval/conversations/conversations.yml. Index: "
                 f"{assistant.engine.index.manifest['procedures']} procedures. Machine: {platform.machine()}, "
                 f"Python {platform.python_version()}.")
    table = "\n".join(lines)
    print(table)
    for conv in report.conversations:
        for problem in conv.problems:
            print(f"conversation {conv.name!r}: {problem}")
    if args.report:
        Path(args.report).write_text(table + "\n", encoding="utf-8")
    if args.errors:
        with open(args.errors, "w", encoding="utf-8") as fh:
            for miss in misses:
                fh.write(json.dumps(miss, ensure_ascii=False) + "\n")
    return 0
