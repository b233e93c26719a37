"""Rasa's SQL tracker store, with the conversations in flight kept in memory.

Rasa 3.6's ``SQLTrackerStore`` rebuilds a conversation's tracker on every turn: it reads every event of the
current session, parses each one's JSON, turns it into an ``Event`` and replays it onto a new tracker; saving
first counts the stored events again to know which ones are new. For a conversation of a few turns that is
~15 ms of CPU a turn on this machine, a third of what the whole dialogue layer costs.

This store keeps the tracker it last saved for each of the most recent conversations. A retrieval costs one
indexed query — the id of the conversation's newest stored event — and returns the kept tracker when nothing
changed since it was saved: not in the database (another worker, or a staff tool, wrote or deleted events), and
not in memory (a turn that failed after changing the tracker and before saving it). Anything else reads from
the database exactly as Rasa does. The database stays the record: every event is written before the reply goes
out, so a restart or a second worker loses nothing.

A kept tracker is dropped when its turn started a new session, because Rasa's read returns only the events from
the latest session start; the next turn reads that back from the database. So a kept tracker always holds the
events Rasa's own read would return, in the same order, and the dialogue predicts exactly what it would without
the cache (a test holds conversations both ways and compares every reply).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker

log = logging.getLogger(__name__)


# PostgreSQL advisory lock id held while Rasa creates its table ("vna" + 1; bot.db's migrations take "vna")
_CREATE_LOCK_KEY = 0x766E62


@contextmanager
def _creating_tables(kwargs: dict) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while ``SQLTrackerStore.__init__`` creates its ``events`` table.

    Rasa checks whether the table exists, then creates it. Instances starting together on an empty database both
    see no table and both create it: one fails with ``UniqueViolation … pg_type_typname_nsp_index`` (or
    ``pg_class_relname_nsp_index``), which Rasa logs before sleeping 5 s and trying again. Under the lock the second
    instance waits for the first to commit, then finds the table. The lock is taken on a connection of its own and
    released as soon as the store exists; other databases (SQLite: one writer at a time) need nothing."""
    url = SQLTrackerStore.get_db_url(**{k: kwargs[k] for k in ("dialect", "host", "port", "db", "username",
                                                              "password", "login_db", "query") if k in kwargs})
    if sa.engine.make_url(url).get_backend_name() != "postgresql":
        yield
        return
    # Rasa's own connection settings (a schema from POSTGRESQL_SCHEMA), one connection, not a pool
    connect_args = create_engine_kwargs(url).get("connect_args", {})
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as exc:  # not up yet: Rasa's own loop waits for it (and may race, as before)
        log.warning("tracker store: no table-creation lock (%s); Rasa waits for the database", type(exc).__name__)
        engine.dispose()
        yield
        return
    try:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _CREATE_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _CREATE_LOCK_KEY})
    finally:
        conn.close()
        engine.dispose()


@dataclass
class _Kept:
    tracker: DialogueStateTracker
    stored: int  # events of the tracker that are in the database (all of them, when it was kept)
    last_id: int | None  # the database id of the conversation's newest event at that moment


class CachingSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that skips re-reading a conversation nobody else has changed (see the module doc)."""

    def __init__(self, *args: Any, keep: int = 4096, **kwargs: Any) -> None:
        with _creating_tables(kwargs):
            super().__init__(*args, **kwargs)
        self.keep = keep
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _last_id(self, session: sa.orm.Session, sender_id: str) -> int | None:
        return session.query(sa.func.max(self.SQLEvent.id)).filter(self.SQLEvent.sender_id == sender_id).scalar()

    def _valid(self, session: sa.orm.Session, sender_id: str) -> _Kept | None:
        kept = self._kept.get(sender_id)
        if kept is None:
            return None
        if len(kept.tracker.events) != kept.stored or self._last_id(session, sender_id) != kept.last_id:
            self._kept.pop(sender_id, None)
            return None
        return kept

    def _keep(self, tracker: DialogueStateTracker, last_id: int | None) -> None:
        self._kept[tracker.sender_id] = _Kept(tracker, len(tracker.events), last_id)
        self._kept.move_to_end(tracker.sender_id)
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        with self.session_scope() as session:
            kept = self._valid(session, sender_id)
            if kept is not None:
                self.hits += 1
                self._kept.move_to_end(sender_id)
                return kept.tracker
            last_id = self._last_id(session, sender_id)
        self.misses += 1
        tracker = await super().retrieve(sender_id)
        if tracker is not None:
            self._keep(tracker, last_id)
        return tracker

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        if self.event_broker is None:
            return
        kept = self._kept.get(tracker.sender_id)
        if kept is not None and kept.tracker is tracker:
            # the kept tracker *is* this one, already changed: its unsaved events are the new ones
            new_events = list(tracker.events)[kept.stored:]
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)
            return
        await super().stream_events(tracker)

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        sender_id = tracker.sender_id
        with self.session_scope() as session:
            kept = self._kept.get(sender_id)
            if (kept is not None and kept.tracker is tracker
                    and self._last_id(session, sender_id) == kept.last_id):
                new_events = list(tracker.events)[kept.stored:]
            else:
                self._kept.pop(sender_id, None)
                new_events = list(self._additional_events(session, tracker))
            rows = [self._row(sender_id, event) for event in new_events]
            session.add_all(rows)
            session.flush()
            last_id = rows[-1].id if rows else self._last_id(session, sender_id)
            session.commit()
        if any(isinstance(e, SessionStarted) for e in list(tracker.events)[1:]):
            # Rasa's read returns the events from the latest session start only: read that back next turn
            self._kept.pop(sender_id, None)
        else:
            self._keep(tracker, last_id)

    def _row(self, sender_id: str, event: Event) -> SQLTrackerStore.SQLEvent:  # as SQLTrackerStore.save builds it
        data = event.as_dict()
        return self.SQLEvent(
            sender_id=sender_id,
            type_name=event.type_name,
            timestamp=data.get("timestamp"),
            intent_name=data.get("parse_data", {}).get("intent", {}).get("name"),
            action_name=data.get("name"),
            data=json.dumps(data),
        )
