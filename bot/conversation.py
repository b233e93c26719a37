"""Conversation state and turn history, keyed by session_id, in a SQL database (SQLite by default).

Any SQLAlchemy URL works (e.g. postgresql+psycopg2://…); the state is a small JSON document per session,
so two processes serving one conversation see the same procedure being discussed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine as SqlEngine

from bot.engine import ConversationState, Reply

metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("state", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

turns = Table(
    "turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(128), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("question", Text, nullable=False),
    Column("reply", Text, nullable=False),
    Column("intent", String(64)),
    Column("fallback", Boolean, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("sources", Text, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
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
            event.listen(self.db, "connect", _sqlite_pragmas)
        else:
            self.db = create_engine(url, pool_pre_ping=True, future=True)
        metadata.create_all(self.db)

    def load(self, session_id: str) -> ConversationState:
        with self.db.connect() as conn:
            row = conn.execute(select(conversations.c.state).where(conversations.c.session_id == session_id)).first()
        return ConversationState.from_dict(json.loads(row[0])) if row else ConversationState()

    def record(self, session_id: str, channel: str, reply: Reply, state: ConversationState, latency_ms: float) -> None:
        """Save the turn and the new state in one transaction."""
        now = time.time()
        state_json = json.dumps(state.to_dict(), ensure_ascii=False)
        with self.db.begin() as conn:
            updated = conn.execute(
                update(conversations)
                .where(conversations.c.session_id == session_id)
                .values(state=state_json, updated_at=now)
            ).rowcount
            if not updated:
                conn.execute(
                    insert(conversations).values(
                        session_id=session_id, channel=channel, state=state_json, created_at=now, updated_at=now
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
                )
            )

    def history(self, session_id: str) -> list[dict]:
        with self.db.connect() as conn:
            rows = conn.execute(
                select(turns.c.question, turns.c.reply, turns.c.intent, turns.c.outcome)
                .where(turns.c.session_id == session_id)
                .order_by(turns.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]
