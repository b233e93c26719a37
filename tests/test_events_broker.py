"""Conversation events through the real local RabbitMQ (bot/events.py): published by the conversation store,
written to the KPI store by the consumer (ConversationStore.apply, on SQLite or the local PostgreSQL), nothing lost
while the consumer or the database is down, nothing written twice on a redelivery, and a broker that is down costs
a turn at most the publish timeout, once.

Every test uses its own queue (deleted afterwards). Skipped when RabbitMQ (VNA_TEST_AMQP_URL, default
amqp://guest:guest@127.0.0.1:5672/) or PostgreSQL is not reachable, a failure under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import aio_pika
import pytest

from bot.config import Settings
from bot.conversation import ConversationStore, make_event
from bot.domain import ConversationState, Reply, Source
from bot.events import (
    EventBrokerUnavailable,
    EventConsumer,
    EventPublisher,
    MalformedEvent,
    dead_letter_name,
    declare,
    exchange_name,
    publisher_for,
)
from tests.channel_peers import free_port, wait_for
from tests.services import pg_schema

AMQP_URL = os.environ.get("VNA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


# ---------------------------------------------------------------------------------------------- helpers


def amqp(coro_fn: Callable) -> object:
    """Run ``coro_fn(channel)`` on a fresh connection to the test broker."""

    async def run() -> object:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        try:
            return await coro_fn(await connection.channel())
        finally:
            await connection.close()

    return asyncio.run(run())


@pytest.fixture()
def queue() -> Iterator[str]:
    """A queue name of this test; the queue, its dead-letter queue and its exchange are deleted afterwards."""
    try:
        amqp(lambda channel: asyncio.sleep(0))
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI") == "true":
            pytest.fail(f"RabbitMQ at {AMQP_URL} is not reachable: {exc}")
        pytest.skip(f"RabbitMQ is not reachable: {exc}")
    name = f"vna-test-{uuid.uuid4().hex[:10]}"
    yield name

    async def clean(channel) -> None:
        for queue_name in (name, dead_letter_name(name)):
            await channel.queue_delete(queue_name)
        await channel.exchange_delete(exchange_name(name))

    amqp(clean)


def depth(name: str) -> int:
    """Messages ready in a queue (not counting those delivered and not yet acked)."""

    async def count(channel) -> int:
        declared = await channel.declare_queue(name, passive=True)
        return declared.declaration_result.message_count

    return amqp(count)  # type: ignore[return-value]


def publish_raw(name: str, bodies: list[bytes]) -> None:
    """Publish bodies as they are (not through EventPublisher): what a broken or foreign producer might send."""

    async def send(channel) -> None:
        exchange, _ = await declare(channel, name)
        for body in bodies:
            await exchange.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "")

    amqp(send)


def event(kind: str = "turn", session_id: str = "web:tester", **data: object) -> dict:
    """An event of the store's format (bot.conversation.make_event); a turn unless told otherwise."""
    if kind == "turn" and not data:
        data = {"question": "làm lại căn cước ở đâu", "reply": "Bạn nộp hồ sơ tại Công an cấp xã nơi cư trú.",
                "intent": "ask_procedure", "fallback": False, "outcome": "answered", "sources": ["1.001193"],
                "latency_ms": 21.5, "procedure": "1.001193", "aspect": "place", "confidence": 0.93,
                "simulated": False}
    return make_event(kind, session_id, session_id.split(":")[0], time.time(), data)


def reply(question: str) -> Reply:
    return Reply(question, "Hồ sơ gồm tờ khai CT01. Nguồn: Cấp lại thẻ căn cước (1.001193)", "ask_procedure", False,
                 [Source("1.001193", "procedure", "Cấp lại thẻ căn cước", "https://dichvucong.gov.vn", 0.9)],
                 ["papers"])


@pytest.fixture()
def kpi(tmp_path) -> Iterator[ConversationStore]:
    """The KPI store the consumer writes to (the database every instance shares)."""
    store = ConversationStore(f"sqlite:///{tmp_path / 'assistant.db'}")
    yield store
    store.db.dispose()


def turn_rows(store: ConversationStore) -> list[dict]:
    from sqlalchemy import select

    from bot.schema import turns

    with store.db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(turns.c.event_id, turns.c.session_id,
                                                              turns.c.question)).all()]


class Recorder:
    """An idempotent ``apply`` on event ids, as ConversationStore.apply is: the events it has, and how often each
    was offered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[str, dict] = {}
        self.offers: dict[str, int] = {}

    def apply(self, evt: dict) -> bool:
        with self.lock:
            self.offers[evt["event_id"]] = self.offers.get(evt["event_id"], 0) + 1
            if evt["event_id"] in self.events:
                return False
            self.events[evt["event_id"]] = evt
            return True


class Running:
    """An EventConsumer running in its own thread and event loop, as the kpi-consumer process runs it."""

    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self.stop_event = asyncio.Event()
        await self.consumer.run(self.stop_event)

    def __enter__(self) -> EventConsumer:
        self.thread.start()
        wait_for(self.consumer.connected.is_set, timeout=15, what="the consumer to connect")
        return self.consumer

    def __exit__(self, *_: object) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)
        assert not self.thread.is_alive(), "the consumer did not stop"
        self.loop.close()


class Proxy:
    """A TCP relay to the broker that can be cut: the broker as clients see it when its host goes down."""

    def __init__(self, target_port: int = 5672) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.base_events.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.up()

    @property
    def url(self) -> str:
        return AMQP_URL.replace(":5672", f":{self.port}")

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def _call(self, coro) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def up(self) -> None:
        async def listen() -> None:
            self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)

        self._call(listen())

    def down(self) -> None:
        """Stop listening and cut every open connection."""

        async def cut() -> None:
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()
            for writer in self.links:
                writer.transport.abort()
            self.links.clear()

        self._call(cut())

    def close(self) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture()
def publisher(queue: str) -> Iterator[EventPublisher]:
    pub = EventPublisher(AMQP_URL, queue)
    yield pub
    pub.close()


# ---------------------------------------------------------------------------------------------- tests


def test_a_published_event_is_applied_by_the_consumer(queue: str, publisher: EventPublisher,
                                                       kpi: ConversationStore) -> None:
    turn = event(session_id="telegram:5001")
    with Running(EventConsumer(AMQP_URL, kpi.apply, queue=queue)) as consumer:
        publisher.publish(turn)
        wait_for(lambda: consumer.stats.applied == 1, what="the event applied and acked")
    assert turn_rows(kpi) == [{"event_id": turn["event_id"], "session_id": "telegram:5001",
                               "question": "làm lại căn cước ở đâu"}]
    assert depth(queue) == 0 and depth(dead_letter_name(queue)) == 0


def test_what_the_store_publishes_reaches_the_kpi_tables(queue: str, publisher: EventPublisher,
                                                         kpi: ConversationStore) -> None:
    """An instance records a turn, a rating and a handoff through the broker; the consumer writes the turn and the
    rating, and finds the ticket (written at once, its number told to the citizen) already there."""
    instance = ConversationStore(str(kpi.db.url), events=publisher)
    session = "zalo:84901234567"
    instance.record(session, "zalo", reply("cấp lại căn cước cần giấy tờ gì"), ConversationState(), 18.0)
    assert instance.rate(session, "zalo", 5) == "stored"
    ticket = instance.open_ticket(session, "zalo", "requested", [{"role": "user", "text": "cho tôi gặp cán bộ"}])
    assert turn_rows(kpi) == [] and kpi.rating_list() == []  # published, not written by the instance
    assert depth(queue) == 3
    with Running(EventConsumer(AMQP_URL, kpi.apply, queue=queue)) as consumer:
        wait_for(lambda: consumer.stats.applied + consumer.stats.duplicates == 3, what="the three events")
    assert (consumer.stats.applied, consumer.stats.duplicates, consumer.stats.dead_lettered) == (2, 1, 0)
    assert kpi.history(session)[0]["question"] == "cấp lại căn cước cần giấy tờ gì"
    assert kpi.rating_list(session) == [{"session_id": session, "channel": "zalo", "score": 5}]
    assert [t["id"] for t in kpi.ticket_list(session)] == [ticket]
    instance.db.dispose()


def test_a_store_whose_broker_is_unreachable_writes_directly(queue: str, kpi: ConversationStore) -> None:
    with socket.socket() as silent:  # a broker host that accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        pub = EventPublisher(AMQP_URL.replace(":5672", f":{silent.getsockname()[1]}"), queue, timeout_s=1.0)
        instance = ConversationStore(str(kpi.db.url), events=pub)
        try:
            costs = []
            for n in range(5):
                started = time.monotonic()
                instance.record(f"web:{n}", "web", reply("lệ phí làm căn cước"), ConversationState(), 15.0)
                costs.append(time.monotonic() - started)
            assert instance.rate("web:0", "web", 4) == "stored"
        finally:
            pub.close()
            instance.db.dispose()
    assert costs[0] < 1.5  # the first turn waits for the broker's timeout once...
    assert max(costs[1:]) < 0.3  # ...the next ones do not try it (the circuit is open) and write at once
    assert sorted(row["session_id"] for row in turn_rows(kpi)) == [f"web:{n}" for n in range(5)]
    assert all(row["event_id"] for row in turn_rows(kpi))  # written under the event's id: a late copy is a no-op
    assert kpi.rating_list("web:0") == [{"session_id": "web:0", "channel": "web", "score": 4}]


def test_events_wait_in_the_queue_while_the_consumer_is_down(queue: str, publisher: EventPublisher,
                                                              kpi: ConversationStore) -> None:
    sent = []
    for k in range(10):  # five conversations of ten turns each, interleaved
        for n in range(5):
            turn = event(session_id=f"telegram:{n}")
            turn["data"]["question"] = f"câu hỏi thứ {k} về đăng ký khai sinh"
            sent.append(turn)
    for evt in sent:
        publisher.publish(evt)  # each returns once the broker confirmed it
    assert depth(queue) == 50  # kept by the broker, nobody consuming
    offers = Recorder()

    def apply(evt: dict) -> bool:
        offers.apply(evt)
        return kpi.apply(evt)

    with Running(EventConsumer(AMQP_URL, apply, queue=queue, prefetch=8)) as consumer:
        wait_for(lambda: consumer.stats.applied == 50, what="the backlog applied")
    assert sorted(row["event_id"] for row in turn_rows(kpi)) == sorted(evt["event_id"] for evt in sent)
    assert set(offers.offers.values()) == {1}  # none offered twice
    assert (consumer.stats.applied, consumer.stats.duplicates, consumer.stats.dead_lettered) == (50, 0, 0)
    for n in range(5):  # the lanes run side by side, but each conversation's turns are written in order
        assert [t["question"] for t in kpi.history(f"telegram:{n}")] == \
            [f"câu hỏi thứ {k} về đăng ký khai sinh" for k in range(10)]
    assert depth(queue) == 0


def test_a_redelivered_event_changes_nothing(queue: str, publisher: EventPublisher, kpi: ConversationStore) -> None:
    turn, rating = event(), event("rating", score=4, simulated=False)
    publisher.publish(turn)
    publisher.publish(rating)

    async def apply_and_crash(channel) -> list[bool]:
        """A consumer that wrote the events and died before its acks: the broker delivers them again."""
        declared = await channel.declare_queue(queue, passive=True)
        written = []
        for _ in range(2):
            message = await declared.get(no_ack=False, timeout=5)
            assert not message.redelivered
            written.append(kpi.apply(json.loads(message.body)))
        return written

    assert amqp(apply_and_crash) == [True, True]  # the connection closes without an ack
    with Running(EventConsumer(AMQP_URL, kpi.apply, queue=queue)) as consumer:
        wait_for(lambda: consumer.stats.duplicates == 2, what="the redeliveries")
    assert consumer.stats.applied == 0 and depth(queue) == 0
    assert [row["event_id"] for row in turn_rows(kpi)] == [turn["event_id"]]
    assert kpi.rating_list() == [{"session_id": "web:tester", "channel": "web", "score": 4}]


def test_malformed_messages_are_dead_lettered_and_consuming_goes_on(queue: str, publisher: EventPublisher,
                                                                     kpi: ConversationStore) -> None:
    good = event()
    bad_shape = dict(event(), type="login")
    publish_raw(queue, [b"\xff\xfe not json", json.dumps([1, 2]).encode(), json.dumps(bad_shape).encode()])
    publisher.publish(good)
    with Running(EventConsumer(AMQP_URL, kpi.apply, queue=queue)) as consumer:
        wait_for(lambda: consumer.stats.applied == 1, what="the good event after the bad ones")
    assert consumer.stats.dead_lettered == 3
    assert [row["event_id"] for row in turn_rows(kpi)] == [good["event_id"]]
    assert depth(dead_letter_name(queue)) == 3 and depth(queue) == 0


def test_an_event_the_store_refuses_is_dead_lettered(queue: str, publisher: EventPublisher,
                                                     kpi: ConversationStore) -> None:
    refused = event("rating", score=9, simulated=False)  # the right shape for the broker, not for the store
    publisher.publish(refused)
    publisher.publish(event())
    with Running(EventConsumer(AMQP_URL, kpi.apply, queue=queue)) as consumer:
        wait_for(lambda: consumer.stats.applied == 1, what="the next event")
    assert consumer.stats.dead_lettered == 1 and kpi.rating_list() == []
    assert depth(dead_letter_name(queue)) == 1 and depth(queue) == 0


def test_an_event_is_acked_only_after_the_store_wrote_it(queue: str, publisher: EventPublisher,
                                                         kpi: ConversationStore) -> None:
    """The KPI database is down: the consumer holds the event and retries; stopped meanwhile, it gives the event
    back to the queue, and the next run writes it."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    down = create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/kpis", future=True)
    tries: list[float] = []

    def database_down(evt: dict) -> bool:
        tries.append(time.monotonic())
        with down.connect():  # refused: nothing listens there
            return True

    turn = event()
    publisher.publish(turn)
    with Running(EventConsumer(AMQP_URL, database_down, queue=queue)) as consumer:
        wait_for(lambda: len(tries) >= 2, what="a retry after the database error")
        assert depth(queue) == 0  # delivered to the consumer, not acked
    with pytest.raises(OperationalError):
        database_down(turn)
    assert consumer.stats.applied == 0 and depth(queue) == 1  # back in the queue, not lost
    with Running(EventConsumer(AMQP_URL, kpi.apply, queue=queue)) as consumer:
        wait_for(lambda: consumer.stats.applied == 1, what="the event written once the database is back")
    assert [row["event_id"] for row in turn_rows(kpi)] == [turn["event_id"]]


def test_a_malformed_event_is_refused_before_it_is_published(publisher: EventPublisher) -> None:
    for bad in ({"type": "turn"}, dict(event(), event_id="not-hex"), dict(event(), at=float("nan")),
                dict(event(), session_id=""), dict(event(), data=[])):
        with pytest.raises(MalformedEvent):
            publisher.publish(bad)
    assert not publisher.circuit_open  # a bad event says nothing about the broker


def test_a_broker_that_refuses_connections_fails_fast_then_recovers(queue: str) -> None:
    proxy = Proxy()
    proxy.down()
    pub = EventPublisher(proxy.url, queue, timeout_s=1.0, cooldown_s=1.5)
    try:
        started = time.monotonic()
        with pytest.raises(EventBrokerUnavailable):
            pub.publish(event())
        assert time.monotonic() - started < 1.2 and pub.circuit_open
        started = time.monotonic()
        for _ in range(20):  # the circuit is open: no network, no wait
            with pytest.raises(EventBrokerUnavailable):
                pub.publish(event())
        assert time.monotonic() - started < 0.05
        proxy.up()
        with pytest.raises(EventBrokerUnavailable):  # still cooling down
            pub.publish(event())
        time.sleep(1.6)
        recovered = event()
        pub.publish(recovered)  # the probe reconnects and goes through
        assert not pub.circuit_open
        assert depth(queue) == 1
    finally:
        pub.close()
        proxy.close()


def test_a_broker_that_hangs_costs_one_publish_the_timeout(queue: str) -> None:
    with socket.socket() as silent:  # accepts TCP connections (the kernel does) and never speaks AMQP
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = AMQP_URL.replace(":5672", f":{silent.getsockname()[1]}")
        pub = EventPublisher(url, queue, timeout_s=1.0)
        try:
            started = time.monotonic()
            with pytest.raises(EventBrokerUnavailable):
                pub.publish(event())
            assert 0.9 < time.monotonic() - started < 1.5
            started = time.monotonic()
            with pytest.raises(EventBrokerUnavailable):
                pub.publish(event())
            assert time.monotonic() - started < 0.05
        finally:
            pub.close()


def test_a_publisher_reconnects_after_its_connection_is_cut(queue: str) -> None:
    proxy = Proxy()
    pub = EventPublisher(proxy.url, queue)
    try:
        pub.publish(event())
        proxy.down()  # the broker restarts: the open connection is gone
        proxy.up()
        pub.publish(event())  # the first attempt fails on the dead connection, the retry reconnects
        assert not pub.circuit_open and depth(queue) == 2
    finally:
        pub.close()
        proxy.close()


def test_the_consumer_reconnects_when_the_broker_goes_away(queue: str, publisher: EventPublisher) -> None:
    proxy = Proxy()
    store = Recorder()
    try:
        with Running(EventConsumer(proxy.url, store.apply, queue=queue)) as consumer:
            publisher.publish(event())
            wait_for(lambda: consumer.stats.applied == 1, what="the first event")
            proxy.down()
            wait_for(lambda: not consumer.connected.is_set(), what="the consumer to notice")
            for _ in range(5):
                publisher.publish(event())  # the publisher's own connection is direct: the queue fills
            proxy.up()
            wait_for(lambda: consumer.stats.applied == 6, timeout=40, what="the events after the reconnect")
        # an ack still on its way when the connection was cut is lost with it: that event comes again, and is a
        # duplicate, not a second write
        assert len(store.events) == 6 and consumer.stats.duplicates == sum(store.offers.values()) - 6 <= 1
    finally:
        proxy.close()


def test_publisher_for_is_none_without_a_broker_and_refuses_a_wrong_url(tmp_path) -> None:
    assert publisher_for(Settings(data_dir=tmp_path)) is None
    for wrong, why in (("redis://127.0.0.1:6379/0", "amqp://"), ("amqp://guest:s3cret@rabbit:56x2/", "port"),
                       ("amqp:///vhost", "no host")):
        with pytest.raises(ValueError, match=why) as refused:
            publisher_for(Settings(data_dir=tmp_path, event_broker_url=wrong))
        assert "s3cret" not in str(refused.value)


# ---------------------------------------------------------------------------------------------- the command

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    with pg_schema("vna_events") as url:
        yield url


def consumer_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNA_")}
    return env | {"VNA_DATA_DIR": str(tmp_path)} | extra


def test_kpi_consumer_catches_up_on_postgresql_and_stops_on_sigterm(queue: str, publisher: EventPublisher,
                                                                    postgres_url: str, tmp_path: Path) -> None:
    """The scaled topology: instances publish 50 turns while no consumer runs; `python -m bot kpi-consumer`
    then writes all 50 to the shared PostgreSQL, once each, and exits cleanly on SIGTERM."""
    instance = ConversationStore(postgres_url, events=publisher)
    for n in range(50):
        instance.record(f"telegram:{8000 + n}", "telegram", reply(f"câu hỏi số {n} về hộ tịch"), ConversationState(),
                        20.0)
    assert turn_rows(instance) == [] and depth(queue) == 50
    env = consumer_env(tmp_path, VNA_EVENT_BROKER_URL=AMQP_URL, VNA_EVENT_BROKER_QUEUE=queue,
                       VNA_DATABASE_URL=postgres_url)
    process = subprocess.Popen([sys.executable, "-m", "bot", "kpi-consumer", "--prefetch", "10"], cwd=PROJECT_DIR,
                               env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(turn_rows(instance)) == 50 or process.poll() is not None, timeout=60,
                 what="the backlog written by the consumer")
        assert process.poll() is None, "the consumer exited"
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        instance.db.dispose()
    assert process.returncode == 0, errors
    assert "kpi-consumer: stopped; applied 50, duplicates 0, dead-lettered 0" in errors
    assert "guest:guest" not in errors  # the broker's credentials are never logged
    assert depth(queue) == 0


def test_kpi_consumer_without_a_broker_says_what_to_set(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "kpi-consumer"], cwd=PROJECT_DIR, env=consumer_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "VNA_EVENT_BROKER_URL is not set" in done.stderr
    done = subprocess.run([sys.executable, "-m", "bot", "kpi-consumer"], cwd=PROJECT_DIR, capture_output=True,
                          env=consumer_env(tmp_path, VNA_EVENT_BROKER_URL="amqp://kpi:s3cret@rabbit:fivesix/"),
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "invalid port" in done.stderr and "s3cret" not in done.stderr and "Traceback" not in done.stderr
