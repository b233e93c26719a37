"""Demo data for the staff dashboard: the development questions replayed through the assistant, with simulated
ratings and handoffs, spread over the last days. Every row it writes is marked ``simulated`` and removable.

    python -m bot demo-data            # replay (about a minute); the dashboard shows a "simulated data" banner
    python -m bot demo-data --remove   # delete every simulated row again (also from Rasa's tracker store)

The answers are real (the assistant answers each question as it would a citizen); what is simulated is who asked,
when, on which channel, and how they rated: answered conversations are rated 4–5 most of the time, unanswered
ones 1–3, about half of the conversations are rated, and about a third of the unanswered ones ask for a person.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Engine as SqlEngine
from tqdm import tqdm

from bot.config import PROJECT_DIR, Settings
from bot.db import tracker_events
from bot.schema import conversations, handoff_tickets, ratings, review_items, staff_replies, turns

if TYPE_CHECKING:
    from bot.service import Assistant

DEVSET = PROJECT_DIR / "eval" / "devset"
CHANNELS = (("web", 0.5), ("zalo", 0.3), ("telegram", 0.2))
PREFIX = "demo-"


def _questions() -> list[str]:
    out = []
    for name in ("procedure_questions.jsonl", "plan_questions.jsonl", "out_of_scope.jsonl"):
        path = DEVSET / name
        if path.exists():
            out += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return out


def replay(assistant: Assistant, days: int = 14, seed: int = 7, progress: bool = True) -> dict:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    store = assistant.store
    now = time.time()
    counts = {"conversations": 0, "turns": 0, "ratings": 0, "handoffs": 0}

    async def one(number: int, question: str) -> None:
        session = f"{PREFIX}{run}-{number}"
        channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
        turn = await assistant.turn(session, question, channel, simulated=True)
        counts["conversations"] += 1
        counts["turns"] += 1
        answered = turn.reply.outcome == "answered"
        if not answered and rng.random() < 0.33:
            store.open_ticket(session, channel, "unanswered", [{"role": "user", "text": turn.reply.question},
                                                               {"role": "bot", "text": turn.reply.reply}])
            counts["handoffs"] += 1
        if rng.random() < 0.5:
            score = rng.choices([5, 4, 3, 2, 1], [55, 33, 7, 3, 2] if answered else [5, 10, 30, 30, 25])[0]
            store.rate(session, channel, score)
            counts["ratings"] += 1
        # spread the conversation over the last days, at office-ish hours
        when = now - rng.randint(0, days - 1) * 86400 - rng.randint(0, 9 * 3600)
        with store.db.begin() as conn:
            for table in (conversations, turns, ratings, handoff_tickets):
                conn.execute(update(table).where(table.c.session_id == session).values(created_at=when))
            conn.execute(update(conversations).where(conversations.c.session_id == session).values(updated_at=when))

    async def run_all() -> None:
        questions = _questions()
        for number, question in enumerate(tqdm(questions, desc="demo conversations", disable=not progress,
                                               unit="q"), 1):
            await one(number, question)

    asyncio.run(run_all())
    return counts


def remove(settings: Settings, db: SqlEngine) -> dict:
    removed = {}
    with db.begin() as conn:
        sessions = [r[0] for r in conn.execute(select(conversations.c.session_id)
                                               .where(conversations.c.simulated.is_(True))).all()]
        # what staff did with demo data goes with it
        removed["review_items"] = conn.execute(delete(review_items).where(review_items.c.turn_id.in_(
            select(turns.c.id).where(turns.c.simulated.is_(True))))).rowcount
        removed["staff_replies"] = conn.execute(delete(staff_replies).where(staff_replies.c.ticket_id.in_(
            select(handoff_tickets.c.id).where(handoff_tickets.c.simulated.is_(True))))).rowcount
        for table in (turns, ratings, handoff_tickets, conversations):
            removed[table.name] = conn.execute(delete(table).where(table.c.simulated.is_(True))).rowcount
    removed["tracker_events"] = _remove_tracker_events(settings, sessions)
    return removed


def _remove_tracker_events(settings: Settings, sessions: list[str]) -> int:
    """Rasa's SQL tracker store keeps its own copy of each conversation (table `events`)."""
    with tracker_events(settings.resolved_tracker_url) as engine:
        if engine is None:
            return 0
        total = 0
        with engine.begin() as conn:
            for start in range(0, len(sessions), 500):
                chunk = sessions[start:start + 500]
                params = {f"s{i}": s for i, s in enumerate(chunk)}
                total += conn.execute(text("DELETE FROM events WHERE sender_id IN (" +
                                           ", ".join(f":s{i}" for i in range(len(chunk))) + ")"), params).rowcount
        return total
