"""Conversation state and turn history, keyed by session_id, in a SQL database (SQLite by default).

Any SQLAlchemy URL works (e.g. postgresql+psycopg2://…); the state is a small JSON document per session,
so two processes serving one conversation see the same procedure being discussed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from sqlalchemy import (
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError

from bot.db import migrate
from bot.domain import ConversationState, Reply
from bot.privacy import mask
from bot.schema import conversations, handoff_tickets, ratings, turns

# what ConversationStore.rate did: stored or replaced a rating, or refused it (see its docstring)
RatingResult = Literal["stored", "replaced", "unknown", "unanswered"]


def sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
    cursor = dbapi_connection.cursor()
    # WAL lets the API's worker threads read while one writes; NORMAL sync is durable across app crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class ConversationStore:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.db: SqlEngine = create_engine(url, connect_args={"check_same_thread": False}, future=True)
            event.listen(self.db, "connect", sqlite_pragmas)
        else:
            self.db = create_engine(url, pool_pre_ping=True, future=True)
        migrate(self.db)

    def load(self, session_id: str) -> ConversationState:
        with self.db.connect() as conn:
            row = conn.execute(select(conversations.c.state).where(conversations.c.session_id == session_id)).first()
        return ConversationState.from_dict(json.loads(row[0])) if row else ConversationState()

    def record(self, session_id: str, channel: str, reply: Reply, state: ConversationState | None,
               latency_ms: float, procedure: str | None = None, confidence: float | None = None,
               simulated: bool = False) -> None:
        """Save the turn and the new state (None: unchanged) in one transaction."""
        now = time.time()
        state_json = json.dumps((state or ConversationState()).to_dict(), ensure_ascii=False)
        values = {"state": state_json, "updated_at": now} if state is not None else {"updated_at": now}
        with self.db.begin() as conn:
            updated = conn.execute(
                update(conversations).where(conversations.c.session_id == session_id).values(**values)
            ).rowcount
            if not updated:
                conn.execute(
                    insert(conversations).values(
                        session_id=session_id, channel=channel, state=state_json, created_at=now, updated_at=now,
                        simulated=simulated,
                    )
                )
            conn.execute(
                insert(turns).values(
                    session_id=session_id,
                    channel=channel,
                    question=reply.question,
                    reply=reply.reply,
                    intent=reply.intent,
                    fallback=reply.fallback,
                    outcome=reply.outcome,
                    sources=json.dumps([s.id for s in reply.sources]),
                    latency_ms=latency_ms,
                    created_at=now,
                    procedure=procedure,
                    aspect=reply.aspects[0] if reply.aspects else None,
                    confidence=confidence,
                    simulated=simulated,
                )
            )

    def open_ticket(self, session_id: str, channel: str, reason: str, transcript: list[dict]) -> int:
        """Store a handoff ticket with the conversation so far; returns its number for the citizen.

        The transcript is masked again here (it is built from already-masked turns; this keeps a ticket opened
        from elsewhere just as clean)."""
        transcript = [dict(t, text=mask(t["text"])) if isinstance(t.get("text"), str) else t for t in transcript]
        with self.db.begin() as conn:
            result = conn.execute(
                insert(handoff_tickets).values(
                    session_id=session_id,
                    channel=channel,
                    reason=reason,
                    transcript=json.dumps(transcript, ensure_ascii=False),
                    status="open",
                    created_at=time.time(),
                    simulated=self._simulated(conn, session_id),
                )
            )
            return int(result.inserted_primary_key[0])

    def ticket_list(self, session_id: str | None = None) -> list[dict]:
        query = select(handoff_tickets).order_by(handoff_tickets.c.id)
        if session_id is not None:
            query = query.where(handoff_tickets.c.session_id == session_id)
        with self.db.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query).all()]
        for row in rows:
            row["transcript"] = json.loads(row["transcript"])
        return rows

    def rate(self, session_id: str, channel: str, score: int) -> RatingResult:
        """Store the citizen's 1–5 rating of a conversation of ``channel``; one per conversation, the last one counts.

        Returns "stored" or "replaced" (a second rating replaces the first, so the CSAT counts citizens, not
        requests); "unknown" when there is no such conversation in this channel (it is refused: a rating cannot
        invent a conversation nor rate another channel's), "unanswered" when the conversation has not received a
        reply yet. Refusals store nothing; callers answer them (HTTP 404/409, a polite line in the dialogue)."""
        if not 1 <= score <= 5:
            raise ValueError(f"a rating is 1..5, not {score}")
        for _attempt in range(3):  # a concurrent first rating of the same conversation won the insert: update it
            try:
                with self.db.begin() as conn:
                    owner = conn.execute(select(conversations.c.channel, conversations.c.simulated)
                                         .where(conversations.c.session_id == session_id)).first()
                    if owner is None or owner.channel != channel:
                        return "unknown"
                    if conn.execute(select(turns.c.id).where(turns.c.session_id == session_id).limit(1)).first() is None:
                        return "unanswered"
                    values = {"channel": channel, "score": score, "created_at": time.time(),
                              "simulated": bool(owner.simulated)}
                    if conn.execute(update(ratings).where(ratings.c.session_id == session_id)
                                    .values(**values)).rowcount:
                        return "replaced"
                    conn.execute(insert(ratings).values(session_id=session_id, **values))
                    return "stored"
            except IntegrityError:  # the unique index refused a second insert: the transaction is rolled back
                continue
        raise RuntimeError(f"the rating of {session_id!r} could not be stored")

    def channel_of(self, session_id: str) -> str | None:
        """The channel that owns a conversation (the one it started in), or None for a new session id."""
        with self.db.connect() as conn:
            return conn.execute(select(conversations.c.channel)
                                .where(conversations.c.session_id == session_id)).scalar_one_or_none()

    @staticmethod
    def _simulated(conn, session_id: str) -> bool:  # noqa: ANN001 - a connection in a transaction
        """Ratings and tickets of a demo conversation are demo data too."""
        row = conn.execute(select(conversations.c.simulated).where(conversations.c.session_id == session_id)).first()
        return bool(row and row[0])

    def rating_list(self, session_id: str | None = None) -> list[dict]:
        query = select(ratings.c.session_id, ratings.c.channel, ratings.c.score).order_by(ratings.c.id)
        if session_id is not None:
            query = query.where(ratings.c.session_id == session_id)
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def history(self, session_id: str) -> list[dict]:
        with self.db.connect() as conn:
            rows = conn.execute(
                select(turns.c.question, turns.c.reply, turns.c.intent, turns.c.outcome)
                .where(turns.c.session_id == session_id)
                .order_by(turns.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]
