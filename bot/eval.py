"""`python -m bot eval`: quality and in-process latency on the development set, for each retrieval mode.

Metrics (docs/evaluation.md defines them):
- hit@1: the assistant answered (no fallback) and its procedure is in expected ∪ acceptable;
- hit@5 / MRR: over the top-5 procedures of the fused ranking;
- plan facts: answered from a plan passage and the reply contains the expected figure;
- OOS declined: off-topic questions answered with fallback; in-scope wrongly declined: procedure and plan
  questions answered with fallback;
- follow-ups: the second turn is answered for the first turn's procedure, with the asked aspect.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings
from bot.domain import ConversationState, Mode
from bot.engine import Engine
from bot.retrieval.embedding_model import Encoder
from bot.retrieval.index import ensure_index
from bot.retrieval.onnx_encoder import load_question_encoder
from bot.text.vietnamese import fold


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class ModeResult:
    mode: str
    counts: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    latencies: list[float] = field(default_factory=list)
    misses: list[dict] = field(default_factory=list)

    def add(self, key: str, value: float) -> None:
        self.counts[key].append(value)

    def mean(self, key: str) -> float | None:
        values = self.counts.get(key)
        return sum(values) / len(values) if values else None

    def n(self, key: str) -> int:
        return len(self.counts.get(key, []))


def _timed(engine: Engine, text: str, state: ConversationState | None, mode: Mode, result: ModeResult):  # noqa: ANN202
    started = time.perf_counter()
    reply, new_state = engine.answer(text, state, mode)
    result.latencies.append((time.perf_counter() - started) * 1000)
    return reply, new_state


def evaluate_mode(engine: Engine, devset: dict[str, list[dict]], mode: Mode) -> ModeResult:
    result = ModeResult(mode)
    for q in devset["procedures"]:
        gold = set(q["expected"]) | set(q.get("acceptable", []))
        reply, _ = _timed(engine, q["question"], None, mode, result)
        top = reply.sources[0].id if reply.sources and not reply.fallback else None
        hit1 = float(top in gold)
        ranking = [c.doc.doc_id for c in engine.retrieve(q["question"], mode, k=20) if c.doc.kind == "procedure"][:5]
        rank = next((i + 1 for i, code in enumerate(ranking) if code in gold), None)
        for key in ("proc", f"proc:{q.get('style', 'other')}"):
            result.add(f"{key}:hit1", hit1)
            result.add(f"{key}:hit5", float(rank is not None))
            result.add(f"{key}:mrr", 1.0 / rank if rank else 0.0)
        result.add("inscope:declined", float(reply.fallback))
        if not reply.fallback and q.get("aspect"):
            result.add("aspect", float(q["aspect"] in reply.aspects))
        if not hit1:
            result.misses.append({"mode": mode, "id": q["id"], "question": q["question"], "expected": q["expected"],
                                  "got": top, "fallback": reply.fallback, "ranking": ranking})
    for q in devset["plans"]:
        reply, _ = _timed(engine, q["question"], None, mode, result)
        folded = fold(reply.reply).replace(" ", "")
        ok = (not reply.fallback and reply.intent == "ask_plan"
              and any(fold(str(e)).replace(" ", "") in folded for e in q["expected"]))
        result.add("plan:fact", float(ok))
        result.add("plan:doc", float(bool(reply.sources) and reply.sources[0].id.split("#")[0] == q.get("doc_id")))
        result.add("inscope:declined", float(reply.fallback))
        if not ok:
            result.misses.append({"mode": mode, "id": q["id"], "question": q["question"], "expected": q["expected"],
                                  "got": reply.sources[0].id if reply.sources else None, "fallback": reply.fallback})
    for q in devset["oos"]:
        reply, _ = _timed(engine, q["question"], None, mode, result)
        result.add("oos:declined", float(reply.fallback))
        if not reply.fallback:
            result.misses.append({"mode": mode, "id": q["id"], "question": q["question"], "got": reply.intent})
    for q in devset["followups"]:
        state = None
        reply = None
        for turn in q["turns"]:
            reply, state = _timed(engine, turn, state, mode, result)
        assert reply is not None
        gold = set(q["expected"]) | set(q.get("acceptable", []))
        ok = not reply.fallback and bool(reply.sources) and reply.sources[0].id in gold
        result.add("followup", float(ok))
        result.add("followup:aspect", float(ok and q.get("aspect") in reply.aspects))
        if not ok:
            result.misses.append({"mode": mode, "id": q["id"], "turns": q["turns"], "expected": q["expected"],
                                  "got": reply.sources[0].id if reply.sources else None})
    return result


ROWS = [
    ("Procedure hit@1 (all)", "proc:hit1"),
    ("Procedure hit@1, no diacritics", "proc:no_diacritics:hit1"),
    ("Procedure hit@1, abbreviations", "proc:abbreviation:hit1"),
    ("Procedure hit@1, colloquial", "proc:colloquial:hit1"),
    ("Procedure hit@5", "proc:hit5"),
    ("Procedure MRR@5", "proc:mrr"),
    ("Aspect detected (answered questions)", "aspect"),
    ("Plan facts (figure in the answer)", "plan:fact"),
    ("Plan: right document on top", "plan:doc"),
    ("Out-of-scope declined", "oos:declined"),
    ("In-scope wrongly declined", "inscope:declined"),
    ("Follow-up: right procedure", "followup"),
    ("Follow-up: right procedure and aspect", "followup:aspect"),
]


def render(results: list[ModeResult], settings: Settings, manifest: dict, devset: dict[str, list[dict]]) -> str:
    head = "| metric | n | " + " | ".join(r.mode for r in results) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(results)]
    for label, key in ROWS:
        values = [r.mean(key) for r in results]
        if all(v is None for v in values):
            continue
        cells = " | ".join("–" if v is None else f"{v:.3f}" for v in values)
        lines.append(f"| {label} | {results[0].n(key)} | {cells} |")
    for label, q in (("Latency p50 (ms, in-process)", 0.5), ("Latency p95 (ms, in-process)", 0.95)):
        cells = " | ".join(f"{_pct(r.latencies, q):.1f}" for r in results)
        lines.append(f"| {label} | {len(results[0].latencies)} | {cells} |")
    sizes = ", ".join(f"{k}: {len(v)}" for k, v in devset.items())
    lines.append("")
    lines.append(
        f"Dev set: {sizes}. Index: {manifest['procedures']} procedures, {manifest['plan_passages']} plan passages; "
        f"model {settings.embedding_model} (int8={settings.embedding_quantize}, "
        f"questions through {settings.embedding_runtime}). "
        f"Machine: {platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}."
    )
    return "\n".join(lines)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def run_eval(settings: Settings, args: argparse.Namespace) -> int:
    root = Path(args.devset)
    devset = {
        "procedures": _read(root / "procedure_questions.jsonl"),
        "plans": _read(root / "plan_questions.jsonl"),
        "oos": _read(root / "out_of_scope.jsonl"),
        "followups": _read(root / "followups.jsonl"),
    }
    encoder = load_question_encoder(settings)
    index = ensure_index(settings, encoder=encoder if isinstance(encoder, Encoder) else None)
    engine = Engine(index, encoder, settings)
    engine.answer("làm lại căn cước ở đâu")  # warm-up: first call pays lazy initialisation
    results = []
    for mode in args.modes.split(","):
        results.append(evaluate_mode(engine, devset, mode.strip()))  # type: ignore[arg-type]
    table = render(results, settings, index.manifest, devset)
    print(table)
    if args.report:
        Path(args.report).write_text(table + "\n", encoding="utf-8")
    if args.errors:
        with open(args.errors, "w", encoding="utf-8") as fh:
            for r in results:
                for miss in r.misses:
                    fh.write(json.dumps(miss, ensure_ascii=False) + "\n")
    return 0

