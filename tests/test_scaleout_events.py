"""The conversation store's side of the event broker: with a publisher, turns and ratings are published instead
of inserted, the state, the rating checks and handoff tickets stay immediate, a failed publish is written directly,
and ``apply`` (what the KPI consumer calls) writes each event once however often it is delivered.

The broker here is a stand-in for bot.events.EventPublisher that keeps the events it is given as JSON, as they
would travel (tests/test_events_broker.py runs the real one against RabbitMQ). Every test runs on SQLite and on the
local PostgreSQL (a fresh schema; skipped outside CI when PostgreSQL is absent, failed under CI).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.conversation import ConversationStore, make_event
from bot.domain import ConversationState, Reply, Source
from bot.schema import handoff_tickets, ratings, turns
from tests.services import pg_schema


class Broker:
    """Takes events as the real publisher does (a JSON copy, as on the wire), or refuses them when ``down``; with
    ``lost_confirm`` it keeps the event but raises, as a publish whose confirm timed out after the broker took it."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.down = False
        self.lost_confirm = False

    def publish(self, event: dict) -> None:
        if self.down:
            raise ConnectionError("the broker refused the connection")
        self.events.append(json.loads(json.dumps(event)))
        if self.lost_confirm:
            raise TimeoutError("no confirm from the broker within 1 s")

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'assistant.db'}"
        return
    with pg_schema() as pg:
        yield pg


@pytest.fixture()
def broker() -> Broker:
    return Broker()


@pytest.fixture()
def instance(url: str, broker: Broker) -> Iterator[ConversationStore]:
    """A serving instance's store, publishing to the broker."""
    store = ConversationStore(url, events=broker)
    yield store
    store.db.dispose()


@pytest.fixture()
def kpi(url: str, instance: ConversationStore) -> Iterator[ConversationStore]:
    """The KPI consumer's store (same database): it writes what the broker delivers."""
    store = ConversationStore(url)
    yield store
    store.db.dispose()


ANSWER = Reply("lệ phí làm lại căn cước", "Lệ phí cấp lại thẻ căn cước là 50.000 đồng.", "ask_fee", False,
               [Source("1.001193", "procedure", "Cấp lại thẻ căn cước", "https://dichvucong.gov.vn/p/1.001193", 0.91)],
               ["fee"], outcome="answered")


def turn_rows(store: ConversationStore, session: str) -> list[dict]:
    with store.db.connect() as conn:
        rows = conn.execute(select(turns).where(turns.c.session_id == session).order_by(turns.c.id)).all()
    return [{k: v for k, v in r._mapping.items() if k not in ("id", "created_at", "event_id")} for r in rows]


def test_a_turn_is_published_with_its_state_written_at_once(instance: ConversationStore, kpi: ConversationStore,
                                                            broker: Broker, tmp_path) -> None:
    state = ConversationState(procedure="1.001193", aspects=["fee"])
    instance.record("telegram:5", "telegram", ANSWER, state, 42.5, procedure="1.001193", confidence=0.97)
    assert instance.load_versioned("telegram:5") == (state, 1)  # the next turn reads it from any instance now
    assert instance.history("telegram:5") == []  # the turn row waits for the consumer
    [event] = broker.events
    assert set(event) == {"event_id", "type", "session_id", "channel", "at", "data"}
    assert (event["type"], event["session_id"], event["channel"]) == ("turn", "telegram:5", "telegram")
    assert len(event["event_id"]) == 32 and int(event["event_id"], 16) >= 0
    assert event["data"] == {"question": ANSWER.question, "reply": ANSWER.reply, "intent": "ask_fee",
                             "fallback": False, "outcome": "answered", "sources": ["1.001193"], "latency_ms": 42.5,
                             "procedure": "1.001193", "aspect": "fee", "confidence": 0.97, "simulated": False}
    assert kpi.apply(event) is True
    assert kpi.apply(event) is False  # redelivered: written once
    # the row is the one a single instance writes directly
    direct = ConversationStore(f"sqlite:///{tmp_path / 'direct.db'}")
    direct.record("telegram:5", "telegram", ANSWER, state, 42.5, procedure="1.001193", confidence=0.97)
    assert turn_rows(kpi, "telegram:5") == turn_rows(direct, "telegram:5")
    with kpi.db.connect() as conn:
        assert conn.execute(select(turns.c.event_id, turns.c.created_at)).one() == (event["event_id"], event["at"])


def test_ratings_are_checked_at_once_and_the_last_one_counts(instance: ConversationStore, kpi: ConversationStore,
                                                             broker: Broker) -> None:
    """404 / 409 / one per conversation, without the consumer having written anything yet."""
    assert instance.rate("web:nobody", "web", 5) == "unknown"
    instance.record("web:r", "web", ANSWER, None, 10)
    assert instance.rate("web:r", "telegram", 5) == "unknown"  # another channel's conversation
    assert instance.rate("web:r", "web", 2) == "stored"
    assert instance.rate("web:r", "web", 5) == "replaced"
    with pytest.raises(ValueError):
        instance.rate("web:r", "web", 6)
    first, second = broker.of("rating")
    assert (first["data"], second["data"]) == ({"score": 2, "simulated": False}, {"score": 5, "simulated": False})
    assert kpi.rating_list("web:r") == []  # nothing written before the consumer runs
    # delivered out of order (a redelivery after a consumer restart): the later rating still counts
    assert kpi.apply(second) is True
    assert kpi.apply(first) is False
    assert kpi.apply(second) is False
    assert kpi.rating_list("web:r") == [{"session_id": "web:r", "channel": "web", "score": 5}]


def test_a_failed_publish_is_written_directly_and_not_twice(instance: ConversationStore, kpi: ConversationStore,
                                                            broker: Broker) -> None:
    broker.down = True
    instance.record("zalo:9", "zalo", ANSWER, ConversationState(procedure="1.001193"), 12)
    instance.rate("zalo:9", "zalo", 4)
    assert len(instance.history("zalo:9")) == 1 and instance.rating_list("zalo:9")[0]["score"] == 4
    # the broker took the event but its confirm was lost: written directly too, then delivered to the consumer
    broker.down, broker.lost_confirm = False, True
    instance.record("zalo:9", "zalo", ANSWER, None, 12)
    [delivered] = broker.events
    assert len(instance.history("zalo:9")) == 2
    assert kpi.apply(delivered) is False
    assert len(kpi.history("zalo:9")) == 2


def test_a_handoff_ticket_is_written_at_once_and_published(instance: ConversationStore, kpi: ConversationStore,
                                                           broker: Broker, tmp_path) -> None:
    instance.record("web:h", "web", ANSWER, None, 10)
    transcript = [{"role": "user", "text": "gọi cho tôi số 0912345678"}, {"role": "bot", "text": "Dạ."}]
    number = instance.open_ticket("web:h", "web", "requested", transcript)
    assert [t["id"] for t in instance.ticket_list("web:h")] == [number]  # the citizen is told this number now
    [event] = broker.of("handoff")
    assert event["data"]["ticket"] == number and event["data"]["reason"] == "requested"
    assert "0912345678" not in json.dumps(event, ensure_ascii=False)  # masked before it leaves
    assert kpi.apply(event) is False  # already written
    # a KPI store that is another database gets the ticket, under the same number, once
    other = ConversationStore(f"sqlite:///{tmp_path / 'kpi.db'}")
    assert other.apply(event) is True and other.apply(event) is False
    [copied] = other.ticket_list()
    assert (copied["id"], copied["session_id"], copied["transcript"]) == (number, "web:h", event["data"]["transcript"])


def test_the_same_event_applied_by_two_consumers_at_once_is_written_once(url: str) -> None:
    stores = [ConversationStore(url) for _ in range(2)]
    events = [make_event("turn", f"web:{uuid.uuid4().hex[:6]}", "web", 1_767_225_600.0 + i, {
        "question": "q", "reply": "r", "intent": None, "fallback": True, "outcome": "unknown", "sources": [],
        "latency_ms": 1.0, "procedure": None, "aspect": None, "confidence": None, "simulated": False})
        for i in range(20)] + [make_event("rating", "web:rated", "web", 1_767_225_600.0, {"score": 4,
                                                                                             "simulated": False})]
    results: list[list[bool]] = [[], []]

    def consume(i: int) -> None:
        results[i] = [stores[i].apply(e) for e in events]

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [a + b for a, b in zip(*results, strict=True)] == [1] * len(events)  # each written by exactly one
    with stores[0].db.connect() as conn:
        assert len(conn.execute(select(turns.c.id)).all()) == 20
        assert len(conn.execute(select(ratings.c.id)).all()) == 1
    for store in stores:
        store.db.dispose()


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: e.update(type="click"), "unknown event type"),
    (lambda e: e.update(event_id="not-an-id"), "event_id"),
    (lambda e: e.update(session_id=""), "session_id"),
    (lambda e: e.update(at="yesterday"), "at must be a number"),
    (lambda e: e["data"].pop("reply"), "lacks reply"),
    (lambda e: e["data"].update(fallback="no"), "data.fallback"),
    (lambda e: e["data"].update(sources=[1, 2]), "sources"),
    (lambda e: e.update(data=[]), "data must be an object"),
])
def test_a_malformed_event_is_refused_without_writing(kpi: ConversationStore, change, message: str) -> None:
    event = make_event("turn", "web:m", "web", 1.0, {
        "question": "q", "reply": "r", "intent": None, "fallback": True, "outcome": "unknown", "sources": [],
        "latency_ms": 1.0, "procedure": None, "aspect": None, "confidence": None, "simulated": False})
    change(event)
    with pytest.raises(ValueError, match=message):
        kpi.apply(event)
    with kpi.db.connect() as conn:
        assert conn.execute(select(turns.c.id)).all() == [] and conn.execute(select(handoff_tickets.c.id)).all() == []
    with pytest.raises(ValueError, match="a rating is 1..5"):
        kpi.apply(make_event("rating", "web:m", "web", 1.0, {"score": 9, "simulated": False}))
    with pytest.raises(ValueError, match="JSON object"):
        kpi.apply("turn")  # type: ignore[arg-type]
