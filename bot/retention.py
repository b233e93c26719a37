"""Privacy by retention: what citizens wrote is deleted or anonymised once it is older than `retention_days`.

`purge(db, settings)` runs on the assistant's database (and on Rasa's tracker store) and keeps only what the
KPIs need, as anonymous aggregates (docs/operations.md, "Retention"; docs/kpis.md, "Retention"):

| table | rows older than the cutoff |
|---|---|
| `turns` | anonymised: question and reply emptied, session id replaced by an anonymous marker; outcome, fallback, latency, procedure, intent, aspect, confidence, sources (knowledge ids) kept |
| `conversations` | anonymised: state emptied (`{}`), session id replaced by the same marker as its turns |
| `ratings` | anonymised: session id replaced by the marker (the score stays, so the CSAT stays) |
| `handoff_tickets` | anonymised: transcript emptied (`[]`), session id replaced by the marker, closed |
| `staff_replies` | deleted (a staff member's words to the citizen; also every reply to an anonymised ticket) |
| `channel_inbox`, `channel_outbox` | deleted, whatever their status |
| `chat_receipts` | deleted once older than a day (`RECEIPT_TTL_S`: a retry comes within minutes), or than the cutoff |
| `login_attempts` | deleted (staff names and client addresses; the sign-in limits look back minutes, not months) |
| Rasa's `events` (tracker store) | deleted, except the still-open Rasa session of a conversation going on at the cutoff |
| `audit_log`, `review_items`, `faqs`, `staff_users` | kept: staff work and curated content, no citizen text |

A marker is `anon-` and 24 random hex digits, drawn afresh for each conversation at each purge: nothing links it
to the session id it replaced (a Telegram or Zalo session id is the citizen's account id), so the rows are
anonymous, not pseudonymous. Within a conversation all purged rows get the same marker in one transaction, so
per-conversation figures (resolution, handoff, last rating) are computed as before.

A conversation still going on at the cutoff (a Telegram or Zalo chat is one session per citizen, forever) is
split: its rows before the cutoff become an anonymous conversation that keeps the original start, and the live
conversation now starts at its first kept turn.

Work is done in transactions of about `BATCH` rows (`SQLITE_BATCH` on SQLite, with a pause after each so waiting
writers get in), so a large first purge never holds a long lock. On PostgreSQL
a purge takes an advisory lock (`pg_try_advisory_lock`): a second instance finds it taken and skips its run. On
SQLite (one machine) every statement is conditional on the rows still being personal, so two purges at once are
harmless: the second one finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

from sqlalchemy import (
    Column,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    not_,
    or_,
    select,
    text,
    union,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.sql.expression import ColumnElement, CompoundSelect

from bot.config import Settings
from bot.conversation import RECEIPT_TTL_S
from bot.db import tracker_events
from bot.schema import (
    channel_inbox,
    channel_outbox,
    chat_receipts,
    conversations,
    handoff_tickets,
    login_attempts,
    ratings,
    staff_replies,
    turns,
)

log = logging.getLogger(__name__)

# rows changed per transaction (about: one conversation's turns are never split). SQLite's single writer lock
# blocks citizens' turns meanwhile: smaller transactions there (scripts/retention_bench.py measures the effect).
BATCH = 1000
SQLITE_BATCH = 250
SQLITE_PAUSE_MIN_S, SQLITE_PAUSE_MAX_S = 0.12, 1.0  # between two write transactions on SQLite (see _write)
MARKER_PREFIX = "anon-"
EMPTY_STATE = "{}"
EMPTY_TRANSCRIPT = "[]"
_LOCK_KEY = 0x766E61_7270  # "vna" "rp": PostgreSQL advisory lock id of the retention purge
# What purge reports, in this order: the assistant's tables, then Rasa's tracker store
TABLES = ("conversations", "turns", "ratings", "handoff_tickets", "staff_replies", "channel_inbox",
          "channel_outbox", "chat_receipts", "login_attempts", "tracker_events")


class PurgeBusy(Exception):
    """Another instance is purging the same PostgreSQL database right now."""


def cutoff_of(settings: Settings, now: float | None = None, days: int | None = None) -> float:
    days = settings.retention_days if days is None else days
    if days < 1:
        raise ValueError(f"the retention period must be at least one day, not {days}")
    return (time.time() if now is None else now) - days * 86400.0


def _marker() -> str:
    return MARKER_PREFIX + uuid.uuid4().hex[:24]


def _anonymous(column: Column) -> ColumnElement:
    return column.like(MARKER_PREFIX + "%")


# A row older than the cutoff still holds personal data unless it has been anonymised. The tests are on the
# content, not only on the marker: a session id that merely looks like a marker (a caller could choose one) with
# text in it is still purged.
def _turn_personal(cutoff: float) -> ColumnElement:
    return and_(turns.c.created_at < cutoff,
                not_(and_(turns.c.question == "", turns.c.reply == "", _anonymous(turns.c.session_id))))


def _conversation_personal(cutoff: float) -> ColumnElement:
    return and_(conversations.c.created_at < cutoff,
                not_(and_(conversations.c.state == EMPTY_STATE, _anonymous(conversations.c.session_id))))


def _rating_personal(cutoff: float) -> ColumnElement:
    return and_(ratings.c.created_at < cutoff, not_(_anonymous(ratings.c.session_id)))


def _ticket_personal(cutoff: float) -> ColumnElement:
    return and_(handoff_tickets.c.created_at < cutoff,
                not_(and_(handoff_tickets.c.transcript == EMPTY_TRANSCRIPT,
                          _anonymous(handoff_tickets.c.session_id))))


@contextlib.contextmanager
def _write(db: SqlEngine) -> Iterator[Connection]:
    """A write transaction. On SQLite it takes the write lock at its start (BEGIN IMMEDIATE), so what it read is
    still true when it writes, and a concurrent purge waits (busy_timeout) instead of failing; and deleted content
    is overwritten with zeros (secure_delete), not left in the file's free space.

    SQLite has one writer at a time, and a waiting writer polls (busy_timeout) with sleeps of up to 100 ms: after
    each transaction the purge pauses at least that long, and as long as the transaction took, so citizens' turns
    are written between two batches instead of waiting for the whole purge."""
    sqlite = db.dialect.name == "sqlite"
    started = time.monotonic()
    with db.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    if sqlite:
        time.sleep(min(SQLITE_PAUSE_MAX_S, max(SQLITE_PAUSE_MIN_S, time.monotonic() - started)))


@contextlib.contextmanager
def _exclusive(db: SqlEngine) -> Iterator[None]:
    """One purge at a time per PostgreSQL database (a session advisory lock on a connection of its own)."""
    if db.dialect.name != "postgresql":
        yield
        return
    with db.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _LOCK_KEY}).scalar():
            conn.rollback()
            raise PurgeBusy("another purge is running on this database")
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
            conn.commit()


# ---------------------------------------------------------------------------------------------- conversations


def _personal_sessions(cutoff: float) -> CompoundSelect:
    """Sessions with personal rows older than the cutoff."""
    return union(
        select(turns.c.session_id).where(_turn_personal(cutoff)),
        select(conversations.c.session_id).where(_conversation_personal(cutoff)),
        select(ratings.c.session_id).where(_rating_personal(cutoff)),
        select(handoff_tickets.c.session_id).where(_ticket_personal(cutoff)),
    ).subquery()


def _candidates(db: SqlEngine, cutoff: float, limit: int) -> list[str]:
    sessions = _personal_sessions(cutoff)
    with db.connect() as conn:
        return [r[0] for r in conn.execute(select(sessions.c.session_id).limit(limit)).all()]


def _groups(db: SqlEngine, sessions: list[str], cutoff: float, batch: int) -> list[list[str]]:
    """Sessions in groups of about ``batch`` old turns (a session with more than that is a group of its own)."""
    with db.connect() as conn:
        sizes = dict(conn.execute(select(turns.c.session_id, func.count()).where(
            turns.c.session_id.in_(sessions), _turn_personal(cutoff)).group_by(turns.c.session_id)).all())
    groups: list[list[str]] = [[]]
    rows = 0
    for session in sessions:
        size = sizes.get(session, 0) + 1
        if groups[-1] and rows + size > batch:
            groups.append([])
            rows = 0
        groups[-1].append(session)
        rows += size
    return groups


def _purge_group(conn: Connection, group: list[str], cutoff: float) -> Counter:
    """Anonymise the old rows of these sessions, in the caller's transaction."""
    counts: Counter = Counter()
    markers = {s: _marker() for s in group}
    live: set[str] = set()  # sessions with activity since the cutoff: their conversation row stays theirs
    for table, column in ((conversations, conversations.c.updated_at), (turns, turns.c.created_at),
                          (ratings, ratings.c.created_at), (handoff_tickets, handoff_tickets.c.created_at)):
        live |= {r[0] for r in conn.execute(select(table.c.session_id).distinct().where(
            table.c.session_id.in_(group), column >= cutoff)).all()}

    def anonymise(table: Table, personal: ColumnElement, **values: object) -> list[int]:
        """Give the personal rows of the group's sessions their session's marker (and ``values``); their ids."""
        rows = conn.execute(select(table.c.id, table.c.session_id)
                            .where(table.c.session_id.in_(group), personal)).all()
        if rows and conn.dialect.name == "sqlite":  # an executemany runs in C there
            conn.execute(update(table).where(table.c.id == bindparam("row_id"), personal)
                         .values(session_id=bindparam("marker"), **values),
                         [{"row_id": r.id, "marker": markers[r.session_id]} for r in rows])
        elif rows:  # one statement (a server round trip per row would be the cost)
            mapping = case({r.session_id: markers[r.session_id] for r in rows}, value=table.c.session_id)
            conn.execute(update(table).where(table.c.id.in_([r.id for r in rows]), personal)
                         .values(session_id=mapping, **values))
        return [r.id for r in rows]

    counts["turns"] += len(anonymise(turns, _turn_personal(cutoff), question="", reply=""))
    counts["ratings"] += len(anonymise(ratings, _rating_personal(cutoff)))
    ticket_ids = anonymise(handoff_tickets, _ticket_personal(cutoff), transcript=EMPTY_TRANSCRIPT, status="closed")
    counts["handoff_tickets"] += len(ticket_ids)
    counts["staff_replies"] += conn.execute(delete(staff_replies).where(or_(
        staff_replies.c.ticket_id.in_(ticket_ids),
        and_(staff_replies.c.session_id.in_(group), staff_replies.c.created_at < cutoff)))).rowcount

    ended = [s for s in group if s not in live]
    # (still ended when written: a citizen who came back meanwhile keeps the conversation; the next purge splits it)
    personal = and_(_conversation_personal(cutoff), conversations.c.updated_at < cutoff)
    rows = conn.execute(select(conversations.c.session_id).where(conversations.c.session_id.in_(ended),
                                                                 personal)).all() if ended else []
    if rows and conn.dialect.name == "sqlite":
        conn.execute(update(conversations).where(conversations.c.session_id == bindparam("old_id"), personal)
                     .values(session_id=bindparam("marker"), state=EMPTY_STATE),
                     [{"old_id": r.session_id, "marker": markers[r.session_id]} for r in rows])
    elif rows:
        mapping = case({r.session_id: markers[r.session_id] for r in rows}, value=conversations.c.session_id)
        conn.execute(update(conversations).where(conversations.c.session_id.in_([r.session_id for r in rows]),
                                                 personal).values(session_id=mapping, state=EMPTY_STATE))
    counts["conversations"] += len(rows)
    for session in sorted(live):  # split: the old part becomes an anonymous conversation with the old start
        row = conn.execute(select(conversations.c.channel, conversations.c.created_at, conversations.c.updated_at,
                                  conversations.c.simulated)
                           .where(conversations.c.session_id == session, _conversation_personal(cutoff))).first()
        if row is None:
            continue
        first_kept = conn.execute(select(func.min(turns.c.created_at)).where(
            turns.c.session_id == session, turns.c.created_at >= cutoff)).scalar()
        moved = conn.execute(update(conversations).where(conversations.c.session_id == session,
                                                         conversations.c.created_at < cutoff)
                             .values(created_at=first_kept if first_kept is not None else cutoff)).rowcount
        if moved:  # (0: a concurrent purge split it first)
            conn.execute(insert(conversations).values(
                session_id=markers[session], channel=row.channel, state=EMPTY_STATE, created_at=row.created_at,
                updated_at=min(row.updated_at, cutoff), simulated=row.simulated))
            counts["conversations"] += 1
    return counts


def _purge_conversations(db: SqlEngine, cutoff: float, batch: int, stop: threading.Event | None) -> Counter:
    counts: Counter = Counter()
    done: set[str] = set()
    with db.connect() as conn:  # rows only age into the purge: more sessions than this means a bug, not work
        expected = conn.execute(select(func.count()).select_from(_personal_sessions(cutoff))).scalar_one()
    while not (stop and stop.is_set()):
        sessions = _candidates(db, cutoff, 10 * batch)  # each selection scans the old rows: take many at once
        fresh = [s for s in sessions if s not in done]
        if not fresh or len(done) > 2 * expected + batch:
            if sessions:  # cannot happen unless the rows change under us in a way this code does not expect
                log.error("retention: %d sessions still hold personal rows after their purge", len(sessions))
            break
        for group in _groups(db, fresh, cutoff, batch):
            if stop and stop.is_set():
                break
            with _write(db) as conn:
                counts += _purge_group(conn, group, cutoff)
            done.update(group)
    return counts


def _count_conversations(db: SqlEngine, cutoff: float) -> Counter:
    """What _purge_conversations would change (the dry run)."""
    tickets = select(handoff_tickets.c.id).where(_ticket_personal(cutoff))
    with db.connect() as conn:
        def count(table: Table, condition: ColumnElement) -> int:
            return conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one()

        return Counter({
            "conversations": count(conversations, _conversation_personal(cutoff)),
            "turns": count(turns, _turn_personal(cutoff)),
            "ratings": count(ratings, _rating_personal(cutoff)),
            "handoff_tickets": count(handoff_tickets, _ticket_personal(cutoff)),
            "staff_replies": count(staff_replies, or_(staff_replies.c.created_at < cutoff,
                                                      staff_replies.c.ticket_id.in_(tickets))),
        })


# ---------------------------------------------------------------------------------------------- rows deleted by age


def _delete_old(db: SqlEngine, table: Table, column: Column, cutoff: float, batch: int, dry_run: bool,
                stop: threading.Event | None) -> int:
    if dry_run:
        with db.connect() as conn:
            return conn.execute(select(func.count()).select_from(table).where(column < cutoff)).scalar_one()
    total = 0
    while not (stop and stop.is_set()):
        with db.connect() as conn:  # read first: no write lock when there is nothing to delete
            ids = [r[0] for r in conn.execute(select(table.c.id).where(column < cutoff)
                                              .order_by(table.c.id).limit(batch)).all()]
        if not ids:
            break
        with _write(db) as conn:
            total += conn.execute(delete(table).where(table.c.id.in_(ids), column < cutoff)).rowcount
    return total


# Rasa's events older than the cutoff, except those of a Rasa session still open at the cutoff (its start is
# before the cutoff and it goes on after it): Rasa counts a session's stored events to know which are new.
_OLD_EVENTS = """
FROM events e WHERE e.timestamp < :cutoff AND (
  e.id < (SELECT MAX(s.id) FROM events s WHERE s.sender_id = e.sender_id AND s.type_name = 'session_started')
  OR NOT EXISTS (SELECT 1 FROM events n WHERE n.sender_id = e.sender_id AND n.timestamp >= :cutoff))
"""


def _purge_tracker(settings: Settings, cutoff: float, batch: int, dry_run: bool,
                   stop: threading.Event | None) -> int:
    """Rasa's SQL tracker store keeps its own copy of each conversation (table `events`)."""
    with tracker_events(settings.resolved_tracker_url) as engine:
        if engine is None:
            return 0
        if dry_run:
            with engine.connect() as conn:
                return conn.execute(text("SELECT COUNT(*) " + _OLD_EVENTS), {"cutoff": cutoff}).scalar_one()
        total = 0
        while not (stop and stop.is_set()):
            with engine.connect() as conn:
                ids = [r[0] for r in conn.execute(text("SELECT e.id " + _OLD_EVENTS + " ORDER BY e.id LIMIT :n"),
                                                  {"cutoff": cutoff, "n": batch}).all()]
            if not ids:
                break
            with _write(engine) as conn:  # (the events chosen are old: nothing makes them young again)
                params = {f"i{k}": i for k, i in enumerate(ids)}
                total += conn.execute(text("DELETE FROM events WHERE id IN (" + ", ".join(f":{k}" for k in params)
                                           + ")"), params).rowcount
        return total


# ---------------------------------------------------------------------------------------------- the purge


def purge(db: SqlEngine, settings: Settings, now: float | None = None, dry_run: bool = False, *,
          days: int | None = None, batch: int | None = None, stop: threading.Event | None = None) -> dict[str, int]:
    """Delete or anonymise everything older than ``days`` (default settings.retention_days) before ``now``.

    Returns the number of rows changed per table (TABLES); with ``dry_run``, the number that would be, and
    nothing changes. ``stop`` (set from another thread) ends the purge between two transactions; what is left is
    done by the next one. Raises PurgeBusy when another instance is purging the same PostgreSQL database."""
    cutoff = cutoff_of(settings, now, days)
    batch = batch or (SQLITE_BATCH if db.dialect.name == "sqlite" else BATCH)
    started = time.monotonic()
    with _exclusive(db):
        if dry_run:
            counts = _count_conversations(db, cutoff)
        else:
            counts = _purge_conversations(db, cutoff, batch, stop)
            # replies older than the cutoff whose ticket was not among the purged ones (e.g. deleted by hand)
            counts["staff_replies"] += _delete_old(db, staff_replies, staff_replies.c.created_at, cutoff, batch,
                                                   False, stop)
        for table in (channel_inbox, channel_outbox, login_attempts):
            counts[table.name] += _delete_old(db, table, table.c.created_at, cutoff, batch, dry_run, stop)
        # the answers kept for retried messages are needed for minutes, and hold citizens' text: a day at most
        receipts_cutoff = max(cutoff, (time.time() if now is None else now) - RECEIPT_TTL_S)
        counts["chat_receipts"] += _delete_old(db, chat_receipts, chat_receipts.c.created_at, receipts_cutoff, batch,
                                               dry_run, stop)
        counts["tracker_events"] += _purge_tracker(settings, cutoff, batch, dry_run, stop)
    if db.dialect.name == "sqlite" and not dry_run:  # copy the zeroed pages from the write-ahead log into the file
        with db.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    result = {name: int(counts.get(name, 0)) for name in TABLES}
    log.info("retention: %s rows older than %s (%.1f s): %s", "would purge" if dry_run else "purged",
             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(cutoff)), time.monotonic() - started,
             ", ".join(f"{k} {v}" for k, v in result.items() if v) or "nothing")
    return result


async def retention_loop(settings: Settings, db: SqlEngine) -> None:
    """Purge every settings.retention_interval_s (the first one a minute after start), in a worker thread; a
    failed run is logged and the loop goes on. retention_interval_s <= 0 turns the loop off."""
    interval = settings.retention_interval_s
    if interval <= 0:
        log.info("retention: the scheduled purge is off (retention_interval_s = %s)", interval)
        return
    stop = threading.Event()
    delay = min(60.0, interval)
    try:
        while True:
            await asyncio.sleep(delay)
            delay = interval
            try:
                await asyncio.to_thread(purge, db, settings, stop=stop)
            except PurgeBusy:
                log.info("retention: another instance is purging; skipping this run")
            except Exception:  # a database hiccup must not end the schedule
                log.exception("retention: the purge failed; trying again in %.0f s", interval)
    finally:
        stop.set()  # a purge in its thread stops after its current transaction
