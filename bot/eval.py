"""`python -m bot eval`: quality and in-process latency on the development set, for each retrieval mode.

Metrics (docs/evaluation.md defines them):
- hit@1: the assistant answered (no fallback) and its procedure is in expected ∪ acceptable;
- hit@5 / MRR: over the top-5 procedures of the fused ranking;
- plan facts: answered from a plan passage and the reply contains the expected figure;
- OOS declined: off-topic questions answered with fallback; in-scope wrongly declined: procedure and plan
  questions answered with fallback;
- follow-ups (multi-turn conversations): every later turn is answered for the procedure under discussion (the
  first turn's, the option picked by number, or the one a later turn names), see :func:`score_followup`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.answer.compose import successor_note
from bot.config import Settings
from bot.domain import ConversationState, Mode
from bot.engine import Answer, Engine
from bot.eval_places import score_places
from bot.retrieval.embedding_model import Encoder
from bot.retrieval.index import KnowledgeIndex, ensure_index
from bot.retrieval.onnx_encoder import OnnxQueryEncoder, load_question_encoder, passage_encoder
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


def _timed(engine: Engine, text: str, state: ConversationState | None, mode: Mode, result: ModeResult) -> Answer:
    started = time.perf_counter()
    reply, new_state = engine.answer(text, state, mode)
    result.latencies.append((time.perf_counter() - started) * 1000)
    return reply, new_state


@dataclass
class TurnOutcome:
    """What one turn of a conversation returned, however it was played (the engine, or /api/chat with Rasa)."""

    code: str | None  # the procedure answered: the first source of a reply that is not a fallback
    aspects: list[str]  # what the reply answered (documents, fee, …)
    options: list[str]  # codes the reply offers to choose among by number, in order


def score_followup(row: dict, play: Callable[[str], TurnOutcome], add: Callable[[str, float], None]) -> list[str]:
    """Play one multi-turn conversation and score every later turn; returns what went wrong, one line per turn.

    ``row["turn_expect"]`` (optional, one entry per turn, the first ``None``) says what each later turn must be
    answered with: ``"same"`` the procedure under discussion, ``"choice:N"`` the N-th option the previous reply
    offered (then under discussion), or ``{"expected": [...], "acceptable": [...]}`` a procedure the turn names (a
    switch, then under discussion). Without it every later turn is ``"same"``, the procedure of ``expected`` ∪
    ``acceptable`` (the schema of eval/devset, eval/heldout and eval/blind).

    Keys added: ``followup`` (right procedure, per later turn: the headline figure; for two-turn conversations it
    is the older "second turn right" metric), ``followup:aspect`` (the last turn also answers its ``aspect``, per
    conversation), ``followup:conversation`` (every later turn right), ``followup:first`` (the first turn right),
    ``followup:held`` (a ``same`` turn answered for the procedure the previous turn answered, right or wrong: the
    conversation state on its own), ``followup:choice`` and ``followup:switch`` (those turns right), and
    ``followup:choice_unoffered`` (a ``choice:N`` turn after a reply that offered fewer than N options: not scored).
    """
    turns = row["turns"]
    expects = row.get("turn_expect") or [None] + ["same"] * (len(turns) - 1)
    thread = set(row["expected"]) | set(row.get("acceptable", []))
    previous: TurnOutcome | None = None
    problems: list[str] = []
    every = True
    for number, (text, expect) in enumerate(zip(turns, expects, strict=True), 1):
        out = play(text)
        if number == 1:
            add("followup:first", float(out.code in thread))
        else:
            kind = "same"
            if isinstance(expect, dict):
                kind, thread = "switch", set(expect["expected"]) | set(expect.get("acceptable", []))
            elif expect != "same":
                kind, n = "choice", int(str(expect).split(":")[1])
                offered = previous.options if previous is not None else []
                if len(offered) < n:
                    add("followup:choice_unoffered", 1.0)
                    previous = out
                    continue
                thread = {offered[n - 1]}
            ok = out.code in thread
            every &= ok
            add("followup", float(ok))
            if kind == "same" and previous is not None and previous.code is not None:
                add("followup:held", float(out.code == previous.code))
            elif kind != "same":
                add(f"followup:{kind}", float(ok))
            if number == len(turns):
                add("followup:aspect", float(ok and row.get("aspect") in out.aspects))
            if not ok:
                problems.append(f"turn {number} ({text!r}, {kind}): got {out.code}, expected one of {sorted(thread)}")
        previous = out
    add("followup:conversation", float(every))
    return problems


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
        # the figure must come from the passage, not from the note on the province's successor ("… 01/7/2025")
        cited = engine.kb.documents.get(reply.sources[0].id.split("#")[0]) if reply.sources else None
        text = reply.reply.replace(successor_note(cited), "") if cited is not None else reply.reply
        folded = fold(text).replace(" ", "")
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
        carried: list[ConversationState | None] = [None]

        def play(text: str, carried: list[ConversationState | None] = carried) -> TurnOutcome:
            reply, state = _timed(engine, text, carried[0], mode, result)
            carried[0] = state
            code = reply.sources[0].id if reply.sources and not reply.fallback else None
            return TurnOutcome(code, list(reply.aspects), list(state.options))

        for problem in score_followup(q, play, result.add):
            result.misses.append({"mode": mode, "id": q["id"], "turns": q["turns"], "expected": q["expected"],
                                  "problem": problem})
    # place questions (eval/places): old units mapped to today's, "where" answers naming the right level
    for miss in score_places(devset.get("places", []), lambda text, state: _timed(engine, text, state, mode, result),
                             result.add):  # fmt: skip
        result.misses.append({"mode": mode, **miss})
    return result


# Multi-turn conversations (score_followup); the dialogue evaluation (bot.dialogue.evaluate) prints the same rows.
FOLLOWUP_ROWS = [
    ("Follow-up: right procedure (every later turn)", "followup"),
    ("Follow-up: right procedure and aspect (last turn)", "followup:aspect"),
    ("Follow-up: whole conversation right", "followup:conversation"),
    ("Follow-up: first turn right", "followup:first"),
    ("Follow-up: thread held (same procedure as the turn before)", "followup:held"),
    ("Follow-up: option picked by number", "followup:choice"),
    ("Follow-up: another procedure named (switch)", "followup:switch"),
]
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
    *FOLLOWUP_ROWS,
    ("Places: old unit mapped to the right new one (or asked)", "place:mapped"),
    ("Places: … in former Bà Rịa - Vũng Tàu", "place:mapped:brvt"),
    ("Places: … in former Bình Dương", "place:mapped:binhduong"),
    ("Places: … elsewhere", "place:mapped:other"),
    ("Places: \"where\" names the right level (right procedure too)", "place:where_level"),
    ("Places: \"where\" names the right level, procedure answered", "place:where_level_given_procedure"),
    ("Places: structured answer present", "place:structured"),
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
        f"questions through {settings.embedding_runtime}"
        + (f", question model {settings.question_model}" if settings.question_model else "") + "). "
        f"Machine: {platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}."
    )
    return "\n".join(lines)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def load_devset(root: Path) -> dict[str, list[dict]]:
    """The question files of one evaluation folder by kind (a missing file: no questions of that kind)."""
    return {
        "procedures": _read(root / "procedure_questions.jsonl"),
        "plans": _read(root / "plan_questions.jsonl"),
        "oos": _read(root / "out_of_scope.jsonl"),
        "followups": _read(root / "followups.jsonl"),
        "places": _read(root / "place_questions.jsonl"),
    }


def load_parts(settings: Settings) -> tuple[KnowledgeIndex, OnnxQueryEncoder | Encoder]:
    """The index (built with the question encoder's passage side when it is missing or stale) and the question
    encoder, as the evaluation and the measurement scripts under scripts/ load them."""
    encoder = load_question_encoder(settings)
    return ensure_index(settings, encoder=passage_encoder(settings, encoder)), encoder


def run_eval(settings: Settings, args: argparse.Namespace) -> int:
    devset = load_devset(Path(args.devset))
    index, encoder = load_parts(settings)
    engine = Engine(index, encoder, settings)
    engine.answer("làm lại căn cước ở đâu")  # warm-up: first call pays lazy initialisation
    results = []
    for mode in args.modes.split(","):
        results.append(evaluate_mode(engine, devset, mode.strip()))
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

