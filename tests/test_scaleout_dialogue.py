"""Two serving instances with the dialogue layer on one PostgreSQL and one Redis: a citizen's messages sent at the
same moment to both are handled one after the other by Rasa (the Redis lock store), so Rasa's tracker of the
conversation holds every turn, each user message followed by its own reply.

Both instances are Assistants with their own Rasa agent, tracker store and lock store (in one process, as the
model is loaded once per Assistant anyway). Without the shared lock store the same run loses tracker events.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.service import Assistant
from tests.services import pg_schema, redis_prefix

QUESTIONS = ("làm lại căn cước ở đâu", "lệ phí đăng ký kết hôn bao nhiêu")


@pytest.fixture(scope="module")
def scaled(settings: Settings, trained_model, assistant: Assistant) -> Iterator[Settings]:
    """The test settings with both stores on a fresh PostgreSQL schema and Redis under a prefix of their own."""
    with pg_schema() as url, redis_prefix(data_dir=settings.data_dir) as shared:
        yield settings.model_copy(update={"database_url": url, "tracker_store_url": url,
                                          "redis_url": shared.redis_url, "redis_key_prefix": shared.redis_key_prefix})


def tracker_events(settings: Settings, instance: Assistant, session: str) -> list:
    """The conversation's events as Rasa's tracker store holds them (read by a store of its own)."""
    from bot.dialogue.runtime import tracker_store_for

    store = tracker_store_for(settings, instance.dialogue.agent.domain)
    try:
        tracker = asyncio.run(store.retrieve_full_tracker(session))
    finally:
        store.engine.dispose()
    return list(tracker.events)


def user_and_bot_events(settings: Settings, instance: Assistant, session: str) -> list[str]:
    return [e.type_name for e in tracker_events(settings, instance, session) if e.type_name in ("user", "bot")]


def user_texts(settings: Settings, instance: Assistant, session: str) -> list[str]:
    """The conversation's user messages in the order Rasa handled them."""
    return [e.text for e in tracker_events(settings, instance, session) if e.type_name == "user"]


def run_pairs(first: Assistant, second: Assistant, session: str, pairs: int) -> None:
    async def run() -> None:
        for _ in range(pairs):
            replies = await asyncio.gather(first.turn(session, QUESTIONS[0], "web"),
                                           second.turn(session, QUESTIONS[1], "web"))
            assert all(r.reply.reply for r in replies)

    asyncio.run(run())


def test_messages_of_one_session_on_two_instances_are_handled_in_turn(scaled: Settings) -> None:
    first = Assistant(scaled, progress=False, dialogue=True)
    second = Assistant(scaled, progress=False, dialogue=True)
    try:
        assert first.dialogue is not None and second.dialogue is not None, (first.dialogue_error,
                                                                             second.dialogue_error)
        assert type(first.dialogue.agent.lock_store).__name__ == "AtomicRedisLockStore"
        session = f"web:{uuid.uuid4().hex[:8]}"
        run_pairs(first, second, session, pairs=5)
        events = user_and_bot_events(scaled, first, session)
        assert events.count("user") == 10
        # serialised: each user message is followed by its reply before the next user message
        assert "user,user" not in ",".join(events)
        for instance in (first, second):
            assert instance.dialogue.status()["degraded_turns"] == 0
        history = first.store.history(session)
        assert len(history) == 10
        # each turn is stored inside the conversation's lock (Dialogue.handle's on_reply): the turn log has the
        # order in which Rasa handled the messages, and the engine's state was saved once per turn, never skipped
        assert [t["question"] for t in history] == user_texts(scaled, first, session)
        assert first.store.load_versioned(session)[1] == 10
    finally:
        first.close()
        second.close()


def test_the_next_message_on_another_instance_waits_for_the_turn_to_be_stored(scaled: Settings) -> None:
    """A turn is stored while it still holds the conversation's lock: a follow-up sent to the other instance while
    the first turn is being written (a slow database) waits, then answers from the state that turn saved. Stored
    after the lock was released, the follow-up would start from the empty state and be logged first."""
    first = Assistant(scaled, progress=False, dialogue=True)
    second = Assistant(scaled, progress=False, dialogue=True)
    entered = threading.Event()
    record = first.store.record

    def slow_record(*args, **kwargs) -> None:  # ConversationStore.record's arguments
        entered.set()
        time.sleep(0.8)
        record(*args, **kwargs)

    first.store.record = slow_record  # type: ignore[method-assign]
    session = f"web:{uuid.uuid4().hex[:8]}"

    async def run() -> tuple:
        asking = asyncio.create_task(first.turn(session, "lệ phí đăng ký kết hôn bao nhiêu", "web"))
        while not entered.is_set():  # the first turn is answered and being stored
            await asyncio.sleep(0.01)
        follow_up = await second.turn(session, "cần mang giấy tờ gì", "web")
        return await asking, follow_up

    try:
        asked, followed = asyncio.run(run())
        assert asked.reply.sources and asked.reply.sources[0].kind == "procedure"
        assert [t["question"] for t in first.store.history(session)] == [
            "lệ phí đăng ký kết hôn bao nhiêu", "cần mang giấy tờ gì"]
        # the follow-up continued the first turn's procedure, read from the state it stored
        assert followed.reply.sources and followed.reply.sources[0].id == asked.reply.sources[0].id
    finally:
        first.close()
        second.close()
