"""Conversation state and turn history, keyed by session_id, in a SQL database (SQLite by default).

Any SQLAlchemy URL works (e.g. postgresql+psycopg2://…); the state is a small JSON document per session,
so two processes serving one conversation see the same procedure being discussed.

Several instances (docs/operations.md, "Scaling out"):

- **The state is versioned.** Each write of a conversation's state bumps ``conversations.version``. A turn that
  read the state with :meth:`ConversationStore.load_versioned` records with ``expected_version``: when another turn
  of the same session wrote the state meanwhile (on another instance), nothing is written and
  :class:`StateConflict` is raised, so the caller runs the turn again on the fresh state instead of overwriting it.
- **Retries answered once.** A turn recorded with a ``receipt`` (the client's message id and the answer given)
  stores the answer in the same transaction as the state; a second turn with the same message id finds it
  (:meth:`ConversationStore.receipt` before the turn, :class:`AlreadyAnswered` from :meth:`record` when both ran at
  once) and sends that answer instead of being recorded again. Receipts live ``RECEIPT_TTL_S``.
- **Events instead of inserts.** With ``events`` (an event broker's publisher: ``publish(event: dict) -> None``,
  raising on failure) the turn row and the rating are published as events and written by a consumer that calls
  :meth:`ConversationStore.apply`; what a citizen's next request depends on is still written at once (the state,
  the ``answered`` and ``rated`` markers, handoff tickets, whose number the citizen is told). An event that cannot
  be published is written directly, under the same event id, so nothing is lost and nothing is written twice.

An event is ``{"event_id": uuid4 hex, "type": "turn"|"rating"|"handoff", "session_id": str, "channel": str,
"at": float (epoch seconds), "data": {…the row's values…}}`` (see :func:`make_event` and :meth:`apply`).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Literal, Protocol

from sqlalchemy import (
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError

from bot.db import migrate
from bot.domain import ConversationState, Reply
from bot.privacy import mask
from bot.schema import chat_receipts, conversations, handoff_tickets, ratings, turns

log = logging.getLogger(__name__)

# what ConversationStore.rate did: stored or replaced a rating, or refused it (see its docstring)
RatingResult = Literal["stored", "replaced", "unknown", "unanswered"]


def sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API's worker threads read while one writes; NORMAL sync is durable across app crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# how long the answer to a client's message id is kept for its retries (deleted by the retention purge after it)
RECEIPT_TTL_S = 24 * 3600


class AlreadyAnswered(Exception):
    """The client's message id was answered already (a retry): ``response`` is the answer it got."""

    def __init__(self, response: dict) -> None:
        super().__init__("this message was answered already")
        self.response = response


class StateConflict(RuntimeError):
    """Another turn of the conversation saved its state after this one read it: nothing of this turn was written."""


class EventPublisher(Protocol):
    """Where conversation events go with an event broker (bot.events); ``publish`` raises when it cannot."""

    def publish(self, event: dict) -> None: ...

    def close(self) -> None: ...


EVENT_TYPES = ("turn", "rating", "handoff")


def make_event(kind: str, session_id: str, channel: str, at: float, data: dict) -> dict:
    """A conversation event (the format in the module doc), with a new id."""
    return {"event_id": uuid.uuid4().hex, "type": kind, "session_id": session_id, "channel": channel, "at": at,
            "data": data}


# what the "data" of each event type holds: name -> accepted types (None: may be null)
_BOOL, _NUM, _OPT_STR = (bool,), (int, float), (str, type(None))
_EVENT_FIELDS: dict[str, dict[str, tuple]] = {
    "turn": {"question": (str,), "reply": (str,), "intent": _OPT_STR, "fallback": _BOOL, "outcome": (str,),
             "sources": (list,), "latency_ms": _NUM, "procedure": _OPT_STR, "aspect": _OPT_STR,
             "confidence": (int, float, type(None)), "simulated": _BOOL},
    "rating": {"score": (int,), "simulated": _BOOL},
    "handoff": {"ticket": (int,), "reason": (str,), "transcript": (list,), "status": (str,), "simulated": _BOOL},
}


def _checked(event: object) -> dict:
    """The event, when it has the documented shape; ValueError naming what is wrong otherwise."""
    if not isinstance(event, dict):
        raise ValueError("an event is a JSON object")
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r} (expected one of {', '.join(EVENT_TYPES)})")
    event_id = event.get("event_id")
    if not (isinstance(event_id, str) and len(event_id) == 32 and all(c in "0123456789abcdef" for c in event_id)):
        raise ValueError("event_id must be 32 lowercase hexadecimal characters (uuid4().hex)")
    for name, limit in (("session_id", 128), ("channel", 32)):
        value = event.get(name)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise ValueError(f"{name} must be a non-empty string of at most {limit} characters")
    at = event.get("at")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        raise ValueError("at must be a number (epoch seconds)")
    data = event.get("data")
    if not isinstance(data, dict):
        raise ValueError("data must be an object")
    fields = _EVENT_FIELDS[kind]
    missing = sorted(set(fields) - set(data))
    if missing:
        raise ValueError(f"a {kind} event's data lacks {', '.join(missing)}")
    for name, types in fields.items():
        value = data[name]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise ValueError(f"data.{name} of a {kind} event has the wrong type ({type(value).__name__})")
    if kind == "turn" and not all(isinstance(source, str) for source in data["sources"]):
        raise ValueError("data.sources of a turn event must be a list of source ids")
    if kind == "rating" and not 1 <= data["score"] <= 5:
        raise ValueError(f"a rating is 1..5, not {data['score']}")
    return event


class ConversationStore:
    """The conversations (state and markers), their turns, ratings and handoff tickets.

    ``events``: publish turns, ratings and handoffs to an event broker instead of inserting the turn and rating
    rows here (the module doc); None writes everything directly, as one instance needs."""

    def __init__(self, url: str, events: EventPublisher | None = None) -> None:
        self.events = events
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.db: SqlEngine = create_engine(url, connect_args={"check_same_thread": False}, future=True)
            event.listen(self.db, "connect", sqlite_pragmas)
        else:
            self.db = create_engine(url, pool_pre_ping=True, future=True)
        migrate(self.db)

    def load(self, session_id: str) -> ConversationState:
        return self.load_versioned(session_id)[0]

    def load_versioned(self, session_id: str) -> tuple[ConversationState, int]:
        """The state and its version (0 for a conversation not stored yet), for :meth:`record`'s check."""
        with self.db.connect() as conn:
            row = conn.execute(select(conversations.c.state, conversations.c.version)
                               .where(conversations.c.session_id == session_id)).first()
        if row is None:
            return ConversationState(), 0
        return ConversationState.from_dict(json.loads(row.state)), int(row.version)

    def receipt(self, session_id: str, message_id: str) -> dict | None:
        """The answer stored for a client's message id of this conversation, or None (not answered yet)."""
        with self.db.connect() as conn:
            return self._receipt(conn, session_id, message_id)

    @staticmethod
    def _receipt(conn: Connection, session_id: str, message_id: str) -> dict | None:
        stored = conn.execute(select(chat_receipts.c.response).where(
            chat_receipts.c.session_id == session_id, chat_receipts.c.message_id == message_id)).scalar()
        return json.loads(stored) if stored is not None else None

    def record(self, session_id: str, channel: str, reply: Reply, state: ConversationState | None,
               latency_ms: float, procedure: str | None = None, confidence: float | None = None,
               simulated: bool = False, expected_version: int | None = None,
               receipt: tuple[str, dict] | None = None) -> None:
        """Save the turn and the new state (None: unchanged) in one transaction.

        With ``receipt`` (the client's message id, the answer sent for it) the answer is stored in the same
        transaction; when that message id has an answer already (a retry that ran while the first attempt was
        being recorded), nothing is written and :class:`AlreadyAnswered` is raised with the stored answer.

        With ``expected_version`` (from :meth:`load_versioned`), a new state is saved only if nobody saved one since
        that version was read; otherwise nothing is written and :class:`StateConflict` is raised. Without it the
        state is saved whatever happened meanwhile (the last writer wins). With an event broker the turn row is
        published after the state is committed (see the module doc)."""
        now = time.time()
        row = {
            "question": reply.question, "reply": reply.reply, "intent": reply.intent, "fallback": reply.fallback,
            "outcome": reply.outcome, "sources": [s.id for s in reply.sources], "latency_ms": latency_ms,
            "procedure": procedure, "aspect": reply.aspects[0] if reply.aspects else None, "confidence": confidence,
            "simulated": simulated,
        }
        for attempt in (1, 2):
            try:
                with self.db.begin() as conn:
                    if receipt is not None:
                        stored = self._receipt(conn, session_id, receipt[0])
                        if stored is not None:
                            raise AlreadyAnswered(stored)
                    self._save_state(conn, session_id, channel, state, now, simulated, expected_version)
                    if self.events is None:
                        self._insert_turn(conn, session_id, channel, now, row, None)
                    if receipt is not None:
                        conn.execute(insert(chat_receipts).values(
                            session_id=session_id, message_id=receipt[0], created_at=now,
                            response=json.dumps(receipt[1], ensure_ascii=False)))
                break
            except IntegrityError:
                if receipt is not None:  # the same message id recorded at the same moment by another attempt
                    stored = self.receipt(session_id, receipt[0])
                    if stored is not None:
                        raise AlreadyAnswered(stored) from None
                # the conversation's first two turns inserted its row at once: this one lost; its transaction is
                # rolled back, and the row is there now
                if expected_version is not None and state is not None:
                    raise StateConflict(f"conversation {session_id!r} was started by another turn") from None
                if attempt == 2:
                    raise
        if self.events is not None:
            self._publish(make_event("turn", session_id, channel, now, row))

    @staticmethod
    def _save_state(conn: Connection, session_id: str, channel: str, state: ConversationState | None, now: float,
                    simulated: bool, expected_version: int | None) -> None:
        values: dict[str, Any] = {"updated_at": now, "answered": True}
        if state is not None:
            values |= {"state": json.dumps(state.to_dict(), ensure_ascii=False),
                       "version": conversations.c.version + 1}
        query = update(conversations).where(conversations.c.session_id == session_id)
        checked = expected_version is not None and state is not None
        if checked:
            query = query.where(conversations.c.version == expected_version)
        if conn.execute(query.values(**values)).rowcount:
            return
        if checked and expected_version != 0:  # saved by another turn since it was read (or deleted meanwhile)
            raise StateConflict(f"the state of conversation {session_id!r} changed since version {expected_version}")
        if checked and conn.execute(select(conversations.c.version)
                                    .where(conversations.c.session_id == session_id)).first() is not None:
            raise StateConflict(f"conversation {session_id!r} was started by another turn")
        conn.execute(insert(conversations).values(
            session_id=session_id, channel=channel, created_at=now, updated_at=now, simulated=simulated,
            answered=True, state=json.dumps((state or ConversationState()).to_dict(), ensure_ascii=False),
            version=1 if state is not None else 0,
        ))

    @staticmethod
    def _insert_turn(conn: Connection, session_id: str, channel: str, at: float, row: dict,
                     event_id: str | None) -> None:
        conn.execute(insert(turns).values(session_id=session_id, channel=channel, created_at=at, event_id=event_id,
                                          **(row | {"sources": json.dumps(row["sources"])})))

    def open_ticket(self, session_id: str, channel: str, reason: str, transcript: list[dict]) -> int:
        """Store a handoff ticket with the conversation so far; returns its number for the citizen.

        The transcript is masked again here (it is built from already-masked turns; this keeps a ticket opened
        from elsewhere just as clean). The ticket is written at once (the citizen is told its number); with an
        event broker it is also published as a "handoff" event."""
        transcript = [dict(t, text=mask(t["text"])) if isinstance(t.get("text"), str) else t for t in transcript]
        now = time.time()
        with self.db.begin() as conn:
            simulated = self._simulated(conn, session_id)
            result = conn.execute(
                insert(handoff_tickets).values(
                    session_id=session_id,
                    channel=channel,
                    reason=reason,
                    transcript=json.dumps(transcript, ensure_ascii=False),
                    status="open",
                    created_at=now,
                    simulated=simulated,
                )
            )
            ticket = int(result.inserted_primary_key[0])
        if self.events is not None:
            self._publish(make_event("handoff", session_id, channel, now, {
                "ticket": ticket, "reason": reason, "transcript": transcript, "status": "open",
                "simulated": simulated}))
        return ticket

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
        reply yet. Refusals store nothing; callers answer them (HTTP 404/409, a polite line in the dialogue).

        The checks read the conversation's row only (its ``answered`` and ``rated`` markers), never the turns or
        ratings an event consumer may not have written yet; with an event broker the rating itself is published."""
        if not 1 <= score <= 5:
            raise ValueError(f"a rating is 1..5, not {score}")
        for _attempt in range(3):  # a concurrent first rating of the same conversation won the insert: update it
            try:
                with self.db.begin() as conn:
                    owner = conn.execute(select(conversations.c.channel, conversations.c.simulated,
                                                conversations.c.answered)
                                         .where(conversations.c.session_id == session_id)).first()
                    if owner is None or owner.channel != channel:
                        return "unknown"
                    if not owner.answered:
                        return "unanswered"
                    now = time.time()
                    # the first rating turns the marker on: one conditional update, so two at once cannot both
                    # be the first
                    first = conn.execute(update(conversations).where(conversations.c.session_id == session_id,
                                                                     conversations.c.rated.is_(False))
                                         .values(rated=True)).rowcount
                    if self.events is not None:
                        result: RatingResult = "stored" if first else "replaced"
                    else:
                        values = {"channel": channel, "score": score, "created_at": now,
                                  "simulated": bool(owner.simulated)}
                        if conn.execute(update(ratings).where(ratings.c.session_id == session_id)
                                        .values(**values, event_id=None)).rowcount:
                            return "replaced"
                        conn.execute(insert(ratings).values(session_id=session_id, **values))
                        return "stored"
            except IntegrityError:  # the unique index refused a second insert: the transaction is rolled back
                continue
            self._publish(make_event("rating", session_id, channel, now,
                                     {"score": score, "simulated": bool(owner.simulated)}))
            return result
        raise RuntimeError(f"the rating of {session_id!r} could not be stored")

    # ------------------------------------------------------------------ events (with an event broker)
    def _publish(self, event: dict) -> None:
        """Hand an event to the broker; when that fails, write it here at once (under the same id, so a copy the
        broker did take is not written twice)."""
        if self.events is None:  # callers publish only with a broker; without one the row is written here
            self.apply(event)
            return
        try:
            self.events.publish(event)
        except Exception as exc:  # noqa: BLE001 - whatever the broker's failure, the row must not be lost
            log.warning("%s event of %s not published (%s: %s); written directly", event["type"],
                        event["session_id"], type(exc).__name__, exc)
            self.apply(event)

    def apply(self, event: dict) -> bool:
        """Write one conversation event (what an event consumer calls); True when it wrote something.

        Idempotent: a turn or rating whose ``event_id`` is stored already is not written again, a handoff whose
        ticket exists is not either (the ticket is written when it is opened); so a second delivery returns False.
        A rating replaces the conversation's stored one unless that one is more recent (``at``), so ratings
        delivered out of order still leave the last one. ValueError when the event is not of the documented shape
        (see the module doc), without writing anything."""
        event = _checked(event)
        kind, data = event["type"], event["data"]
        session_id, channel, at, event_id = event["session_id"], event["channel"], float(event["at"]), \
            event["event_id"]
        for _attempt in range(3):
            try:
                with self.db.begin() as conn:
                    if kind == "turn":
                        if conn.execute(select(turns.c.id).where(turns.c.event_id == event_id)).first():
                            return False
                        self._insert_turn(conn, session_id, channel, at, data, event_id)
                        return True
                    if kind == "rating":
                        return self._apply_rating(conn, session_id, channel, at, data, event_id)
                    if conn.execute(select(handoff_tickets.c.id)
                                    .where(handoff_tickets.c.id == data["ticket"])).first():
                        return False
                    conn.execute(insert(handoff_tickets).values(
                        id=data["ticket"], session_id=session_id, channel=channel, reason=data["reason"],
                        transcript=json.dumps(data["transcript"], ensure_ascii=False), status=data["status"],
                        created_at=at, simulated=data["simulated"]))
                    return True
            except IntegrityError:  # the same event (or the session's first rating) written at the same moment
                continue
        raise RuntimeError(f"the {kind} event {event_id} could not be written")

    @staticmethod
    def _apply_rating(conn: Connection, session_id: str, channel: str, at: float, data: dict, event_id: str) -> bool:
        stored = conn.execute(select(ratings.c.event_id, ratings.c.created_at)
                              .where(ratings.c.session_id == session_id)).first()
        values = {"channel": channel, "score": data["score"], "created_at": at, "simulated": data["simulated"],
                  "event_id": event_id}
        if stored is None:
            conn.execute(insert(ratings).values(session_id=session_id, **values))
            return True
        if stored.event_id == event_id or stored.created_at > at:  # this one, or a later rating, is there already
            return False
        conn.execute(update(ratings).where(ratings.c.session_id == session_id).values(**values))
        return True

    def channel_of(self, session_id: str) -> str | None:
        """The channel that owns a conversation (the one it started in), or None for a new session id."""
        with self.db.connect() as conn:
            return conn.execute(select(conversations.c.channel)
                                .where(conversations.c.session_id == session_id)).scalar_one_or_none()

    @staticmethod
    def _simulated(conn: Connection, session_id: str) -> bool:
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
