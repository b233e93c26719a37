"""The tracker store keeps conversations in flight in memory, but never returns anything Rasa's own SQL read
would not: another writer, deleted events, a turn that failed before saving and a new session all fall back to
the database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered

from bot.config import Settings
from bot.dialogue.runtime import tracker_store_for
from bot.dialogue.tracker_store import CachingSQLTrackerStore

DOMAIN = Domain.load(str(Path(__file__).resolve().parent.parent / "nlu_data" / "domain.yml"))


def run(coro):
    return asyncio.run(coro)


@pytest.fixture()
def stores(tmp_path: Path) -> tuple[CachingSQLTrackerStore, SQLTrackerStore]:
    settings = Settings(data_dir=tmp_path, tracker_store_url=f"sqlite:///{tmp_path / 'dialogue.db'}")
    cached = tracker_store_for(settings, DOMAIN)
    plain = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "dialogue.db"))
    return cached, plain


def a_turn(tracker, text: str, procedure: str) -> None:
    tracker.update(UserUttered(text, {"name": "ask_fee", "confidence": 0.99}))
    tracker.update(ActionExecuted("action_answer"))
    tracker.update(SlotSet("procedure", procedure))
    tracker.update(BotUttered(f"Lệ phí của thủ tục {procedure} …"))
    tracker.update(ActionExecuted("action_listen"))


def same(a, b) -> bool:
    return ([e.as_dict() for e in a.events] == [e.as_dict() for e in b.events]
            and a.current_slot_values() == b.current_slot_values())


def conversation(store: CachingSQLTrackerStore, sender: str) -> None:
    tracker = run(store.get_or_create_tracker(sender, append_action_listen=False))
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    run(store.save(tracker))


def test_a_conversation_is_kept_and_equals_what_the_database_holds(stores) -> None:
    cached, plain = stores
    assert isinstance(cached, CachingSQLTrackerStore)
    conversation(cached, "c1")
    for i, code in enumerate(["1.001193", "1.000894", "2.000488"]):
        tracker = run(cached.retrieve("c1"))
        a_turn(tracker, f"câu hỏi {i}", code)
        run(cached.save(tracker))
        assert same(run(cached.retrieve("c1")), run(plain.retrieve("c1")))
    assert cached.hits >= 3  # after the session start was read back once, every turn came from memory
    assert run(cached.retrieve("c1")).get_slot("procedure") == "2.000488"


def test_events_written_by_another_worker_are_read_from_the_database(stores) -> None:
    cached, plain = stores
    conversation(cached, "c2")
    run(cached.retrieve("c2"))  # kept from here on
    other = run(plain.retrieve("c2"))
    a_turn(other, "hộ chiếu làm ở đâu", "2.001717")
    run(plain.save(other))
    tracker = run(cached.retrieve("c2"))
    assert tracker.get_slot("procedure") == "2.001717"
    assert same(tracker, run(plain.retrieve("c2")))


def test_a_turn_that_failed_before_saving_is_forgotten(stores) -> None:
    cached, plain = stores
    conversation(cached, "c3")
    tracker = run(cached.retrieve("c3"))
    a_turn(tracker, "lệ phí?", "1.001193")
    run(cached.save(tracker))
    tracker = run(cached.retrieve("c3"))
    a_turn(tracker, "mất bao lâu?", "9.999999")  # … and the turn raises before save
    again = run(cached.retrieve("c3"))
    assert again.get_slot("procedure") == "1.001193"
    assert same(again, run(plain.retrieve("c3")))


def test_deleted_events_are_not_returned(stores) -> None:
    cached, plain = stores
    conversation(cached, "c4")
    tracker = run(cached.retrieve("c4"))
    a_turn(tracker, "lệ phí?", "1.001193")
    run(cached.save(tracker))
    with plain.session_scope() as session:  # e.g. `python -m bot demo-data --remove`
        session.query(plain.SQLEvent).filter(plain.SQLEvent.sender_id == "c4").delete()
        session.commit()
    assert run(cached.retrieve("c4")) is None


def test_a_new_session_is_read_back_as_rasa_reads_it(stores) -> None:
    cached, plain = stores
    conversation(cached, "c5")
    tracker = run(cached.retrieve("c5"))
    a_turn(tracker, "lệ phí?", "1.001193")
    run(cached.save(tracker))
    tracker = run(cached.retrieve("c5"))
    tracker.update(ActionExecuted("action_session_start"))  # the session expired: Rasa starts a new one
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    run(cached.save(tracker))
    again = run(cached.retrieve("c5"))
    assert same(again, run(plain.retrieve("c5")))
    assert not any(isinstance(e, UserUttered) for e in again.events)  # only the new session's events


def test_the_sqlite_tracker_database_uses_a_pool_and_wal(stores) -> None:
    cached, _ = stores
    with cached.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert type(cached.engine.pool).__name__ == "QueuePool"
