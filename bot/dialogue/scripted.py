"""Scripted multi-turn conversations (eval/conversations/*.yml), played through POST /api/chat.

Used by tests/test_dialogue.py and by ``python -m bot eval --dialogue``; the file format is described at the top
of eval/conversations/conversations.yml.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.conversation import ConversationStore

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "eval" / "conversations" / "conversations.yml"


@dataclass
class ConversationResult:
    name: str
    turns: int
    problems: list[str] = field(default_factory=list)
    failed_turns: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class Report:
    conversations: list[ConversationResult]
    latencies_ms: list[float]

    @property
    def turns(self) -> int:
        return sum(c.turns for c in self.conversations)

    @property
    def failed_turns(self) -> int:
        return sum(c.failed_turns for c in self.conversations)

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        return {
            "conversations": len(self.conversations),
            "conversations_passed": sum(c.passed for c in self.conversations),
            "turns": self.turns,
            "turns_passed": self.turns - self.failed_turns,
            "turn_p50_ms": round(statistics.median(lat), 1) if lat else None,
            "turn_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
        }


def load_conversations(path: Path = DEFAULT_FILE) -> list[dict]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(data["conversations"])


def _first_source(result: dict) -> dict | None:
    sources = result.get("sources") or []
    return sources[0] if sources else None


def check_turn(expect: dict, result: dict, previous_source: str | None, store: ConversationStore,
               session_id: str) -> list[str]:
    """What in ``result`` (the /api/chat JSON) does not match ``expect`` (one scripted turn)."""
    problems = []
    first = _first_source(result)
    if "intent" in expect:
        wanted = expect["intent"] if isinstance(expect["intent"], list) else [expect["intent"]]
        if result.get("intent") not in wanted:
            problems.append(f"intent {result.get('intent')!r}, expected {wanted}")
    if "source" in expect and (first or {}).get("id") != expect["source"]:
        problems.append(f"source {(first or {}).get('id')!r}, expected {expect['source']!r}")
    if "source_in" in expect and (first or {}).get("id") not in expect["source_in"]:
        problems.append(f"source {(first or {}).get('id')!r}, expected one of {expect['source_in']}")
    if "source_kind" in expect and (first or {}).get("kind") != expect["source_kind"]:
        problems.append(f"source kind {(first or {}).get('kind')!r}, expected {expect['source_kind']!r}")
    if expect.get("same_source") and (first is None or first.get("id") is None or first["id"] != previous_source):
        problems.append(f"source {(first or {}).get('id')!r}, expected the previous one {previous_source!r}")
    if "fallback" in expect and result.get("fallback") != expect["fallback"]:
        problems.append(f"fallback {result.get('fallback')}, expected {expect['fallback']}")
    reply = str(result.get("reply", ""))
    for text in expect.get("contains", []):
        if text.lower() not in reply.lower():
            problems.append(f"reply lacks {text!r}")
    if "buttons" in expect and len(result.get("buttons") or []) != expect["buttons"]:
        problems.append(f"{len(result.get('buttons') or [])} buttons, expected {expect['buttons']}")
    if "ticket" in expect:
        tickets = store.ticket_list(session_id)
        if not tickets or tickets[-1]["reason"] != expect["ticket"] or not tickets[-1]["transcript"]:
            problems.append(f"no {expect['ticket']!r} ticket with a transcript stored")
    if "rating" in expect:
        ratings = store.rating_list(session_id)
        if not ratings or ratings[-1]["score"] != expect["rating"]:
            problems.append(f"rating stored {ratings[-1]['score'] if ratings else None}, expected {expect['rating']}")
    return problems


def run_conversations(send: Callable[[str, str], dict], store: ConversationStore,
                      conversations: list[dict] | None = None) -> Report:
    """Play every conversation in a fresh session; ``send(session_id, text)`` returns the /api/chat JSON."""
    results, latencies = [], []
    for conv in conversations if conversations is not None else load_conversations():
        session_id = f"scripted-{uuid.uuid4().hex[:12]}"
        outcome = ConversationResult(conv["name"], len(conv["turns"]))
        previous_source = None
        for number, turn in enumerate(conv["turns"], 1):
            started = time.perf_counter()
            result = send(session_id, str(turn["say"]))
            latencies.append((time.perf_counter() - started) * 1000)
            problems = check_turn(turn, result, previous_source, store, session_id)
            outcome.failed_turns += bool(problems)
            outcome.problems += [f"turn {number} ({turn['say']!r}): {problem}" for problem in problems]
            first = _first_source(result)
            if first is not None and not result.get("fallback"):
                previous_source = first["id"]
        results.append(outcome)
    return Report(results, latencies)
