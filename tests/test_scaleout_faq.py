"""Live FAQ updates across instances: with Redis, a staff edit made on one instance is announced and every
instance's matcher answers with it at once; without Redis each matcher picks it up at its refresh interval.

Two "instances" here are two FaqStore + FaqMatcher pairs on one database, each with its own database engine and its
own Redis connection; their clocks are frozen, so polling alone can never explain what a matcher sees.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.conversation import ConversationStore
from bot.faq import FaqMatcher, FaqStore
from bot.shared import Announcements
from tests.channel_peers import wait_for
from tests.services import redis_prefix

LUNCH = "Bộ phận một cửa nghỉ trưa lúc mấy giờ?"
LUNCH_ANSWER = "Bộ phận một cửa nghỉ trưa từ 11 giờ 30 đến 13 giờ 30, từ thứ Hai đến thứ Sáu."
NEW_ANSWER = "Từ ngày 1/7/2025 bộ phận một cửa nghỉ trưa từ 12 giờ đến 13 giờ."


class FrozenClock:
    def __call__(self) -> float:
        return 0.0


def instance(db_url: str, announcements: Announcements | None) -> tuple[FaqStore, FaqMatcher]:
    store = FaqStore(ConversationStore(db_url).db, announcements=announcements)
    return store, FaqMatcher(store, refresh_s=3600.0, clock=FrozenClock())


@pytest.fixture()
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'assistant.db'}"


@pytest.fixture()
def two_instances(db_url: str, tmp_path: Path) -> Iterator[tuple[tuple, tuple]]:
    with redis_prefix(data_dir=tmp_path) as settings:
        first = instance(db_url, Announcements.from_settings(settings, "faq"))
        second = instance(db_url, Announcements.from_settings(settings, "faq"))
        try:
            # both listening (a listener reports once when it has subscribed)
            wait_for(lambda: first[1].announced and second[1].announced, timeout=10, what="both subscribed")
            yield first, second
        finally:
            first[1].close()
            second[1].close()


def answer(matcher: FaqMatcher) -> str | None:
    found = matcher.match(LUNCH)
    return found.faq["answer"] if found else None


def test_an_edit_on_one_instance_is_answered_by_every_instance_at_once(two_instances) -> None:
    (store_a, matcher_a), (store_b, matcher_b) = two_instances
    assert answer(matcher_a) is None and answer(matcher_b) is None
    started = time.monotonic()
    faq_id = store_a.create([LUNCH], LUNCH_ANSWER, None, author="cán bộ A")
    wait_for(lambda: answer(matcher_b) == LUNCH_ANSWER, timeout=3, what="instance B to answer the new entry")
    assert time.monotonic() - started < 3.0
    # the editing instance hears its own announcement too (under load not always before B has): within the same 3 s
    wait_for(lambda: answer(matcher_a) == LUNCH_ANSWER, timeout=3, what="instance A to answer its own entry")
    assert time.monotonic() - started < 6.0
    store_b.update(faq_id, author="cán bộ B", answer=NEW_ANSWER)  # edited on the other instance
    wait_for(lambda: answer(matcher_a) == NEW_ANSWER, timeout=3, what="instance A to answer the edit")
    store_a.retire(faq_id, "cán bộ A")
    wait_for(lambda: answer(matcher_b) is None, timeout=3, what="instance B to stop answering a retired entry")
    count = store_b.import_([{"variants": [LUNCH], "answer": LUNCH_ANSWER}], "cán bộ B")
    assert count == 1
    wait_for(lambda: answer(matcher_a) == LUNCH_ANSWER, timeout=3, what="instance A to answer the imported entry")


def test_without_redis_an_edit_waits_for_the_refresh_interval(db_url: str) -> None:
    store_a, _ = instance(db_url, None)
    _, matcher_b = instance(db_url, None)
    assert answer(matcher_b) is None
    store_a.create([LUNCH], LUNCH_ANSWER, None, author="cán bộ A")
    time.sleep(1.0)
    assert answer(matcher_b) is None  # its clock is frozen: not checked again until refresh_s has passed
    matcher_b._clock = lambda: 3600.0
    assert answer(matcher_b) == LUNCH_ANSWER


def test_redis_down_keeps_edits_and_polling_working(db_url: str, tmp_path: Path) -> None:
    """An announcement that cannot be sent is logged; the edit is stored and seen at the next poll."""
    from bot.config import Settings

    down = Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    store_a, matcher_a = instance(db_url, Announcements.from_settings(down, "faq"))
    store_b, matcher_b = instance(db_url, Announcements.from_settings(down, "faq"))
    try:
        assert answer(matcher_b) is None
        store_a.create([LUNCH], LUNCH_ANSWER, None, author="cán bộ A")  # no exception
        assert store_a.announcements.announce() is False
        matcher_b._clock = lambda: 3600.0
        assert answer(matcher_b) == LUNCH_ANSWER
    finally:
        matcher_a.close()
        matcher_b.close()
