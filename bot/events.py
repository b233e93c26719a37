"""Conversation events through RabbitMQ: a publisher for the serving instances, a consumer for the KPI store.

With ``VNA_EVENT_BROKER_URL`` set, the conversation store publishes every turn, rating and handoff as one event
instead of writing it itself, and ``python -m bot kpi-consumer`` writes the events to the KPI store::

    turn ─► ConversationStore ─► EventPublisher ─► exchange "<queue>.fanout" ─► queue "<queue>" ─► EventConsumer
            (falls back to a direct                (durable, fanout)            (durable)         ─► store.apply
             write when publish raises)                                                            then ack

The wire format is the one of Rasa's Pika event broker (``rasa.core.brokers.pika``): one JSON object per
message, UTF-8, persistent (delivery mode 2), published to a fanout exchange that the durable queue is bound to,
so another consumer (an analytics pipeline) can bind a queue of its own. It adds what at-least-once delivery
needs: publisher confirms (a publish returns once the broker has the message on disk, or raises), ``message_id``
= the event's id, ``type`` = the event's type, ``content_type`` application/json, and a dead-letter queue
``<queue>.dead`` for messages the consumer cannot read. The event itself::

    {"event_id": "<uuid4 hex>", "type": "turn" | "rating" | "handoff", "session_id": str, "channel": str,
     "at": <unix time, float>, "data": {...}}

A broker that is down must not stall the citizens: a publish takes at most ``timeout_s`` (1 s), after which the
publisher refuses at once for ``cooldown_s`` (a circuit breaker) and the store writes directly. The consumer acks a
message only after ``apply`` has committed it, and ``apply`` is idempotent on ``event_id``, so a redelivery (a
consumer killed between commit and ack, an event published and then also written directly) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import signal
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aio_pika
from sqlalchemy import exc as sql_errors
from tenacity import AsyncRetrying, stop_after_attempt, wait_fixed, wait_random_exponential

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractIncomingMessage

    from bot.config import Settings

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "vnassist.events"
EVENT_TYPES = ("turn", "rating", "handoff")
MAX_EVENT_BYTES = 1 << 20  # a turn carries a question (≤ 2,000 characters) and its reply: far below this
APP_ID = "vnassist"
_EVENT_ID = re.compile(r"[0-9a-f]{32}")


class MalformedEvent(ValueError):
    """An event that is not of the documented shape (refused by the publisher, dead-lettered by the consumer)."""


class EventBrokerUnavailable(RuntimeError):
    """The broker did not take the event (down, unreachable, slow, or refused recently): write it directly."""


# ---------------------------------------------------------------------------------------------- the event


def check_event(event: object) -> dict[str, Any]:
    """``event`` if it has the documented shape; MalformedEvent saying what is wrong otherwise."""
    if not isinstance(event, dict):
        raise MalformedEvent(f"an event is a JSON object, not {type(event).__name__}")
    missing = [key for key in ("event_id", "type", "session_id", "channel", "at", "data") if key not in event]
    if missing:
        raise MalformedEvent(f"the event lacks {', '.join(missing)}")
    if not isinstance(event["event_id"], str) or not _EVENT_ID.fullmatch(event["event_id"]):
        raise MalformedEvent("event_id is not a uuid4 hex string (32 lowercase hex digits)")
    if event["type"] not in EVENT_TYPES:
        raise MalformedEvent(f"type {str(event['type'])[:32]!r} is not one of {', '.join(EVENT_TYPES)}")
    for key, limit in (("session_id", 128), ("channel", 32)):
        if not isinstance(event[key], str) or not 0 < len(event[key]) <= limit:
            raise MalformedEvent(f"{key} is not a string of 1 to {limit} characters")
    at = event["at"]
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) or at < 0:
        raise MalformedEvent("at is not a unix time")
    if not isinstance(event["data"], dict):
        raise MalformedEvent("data is not a JSON object")
    return event


def encode(event: dict[str, Any]) -> bytes:
    body = json.dumps(check_event(event), ensure_ascii=False, allow_nan=False).encode("utf-8")
    if len(body) > MAX_EVENT_BYTES:
        raise MalformedEvent(f"the event takes {len(body)} bytes, more than {MAX_EVENT_BYTES}")
    return body


def decode(body: bytes) -> dict[str, Any]:
    """The event in a message body; MalformedEvent when it is not UTF-8 JSON of the documented shape."""
    if len(body) > MAX_EVENT_BYTES:
        raise MalformedEvent(f"the message takes {len(body)} bytes, more than {MAX_EVENT_BYTES}")
    try:
        event = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise MalformedEvent(f"the body is not UTF-8 JSON: {exc}") from None
    return check_event(event)


def message_of(event: dict[str, Any], body: bytes) -> aio_pika.Message:
    return aio_pika.Message(body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=event["event_id"], type=event["type"], app_id=APP_ID,
                            timestamp=int(event["at"]))


# ---------------------------------------------------------------------------------------------- topology


def check_url(url: str) -> str:
    """``url`` if it is an AMQP URL with a host (and a numeric port, if any); ValueError otherwise (without the URL,
    which holds the password)."""
    example = "e.g. amqp://user:password@host:5672/vhost"
    if not url.startswith(("amqp://", "amqps://")):
        raise ValueError(f"VNA_EVENT_BROKER_URL must be an amqp:// or amqps:// URL, {example}")
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise ValueError(f"VNA_EVENT_BROKER_URL has an invalid port, {example}") from None
    if not parsed.hostname:
        raise ValueError(f"VNA_EVENT_BROKER_URL names no host, {example}")
    return url


def safe_url(url: str) -> str:
    """The broker's address as it may be logged: no user name, no password."""
    parsed = urlsplit(url)
    port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
    return f"{parsed.scheme}://{parsed.hostname}:{port}{parsed.path or '/'}"


def exchange_name(queue: str) -> str:
    return f"{queue}.fanout"


def dead_letter_name(queue: str) -> str:
    return f"{queue}.dead"


async def declare(channel: AbstractChannel, queue: str) -> tuple[AbstractExchange, aio_pika.abc.AbstractQueue]:
    """The exchange, the queue bound to it and its dead-letter queue; the publisher and the consumer both declare
    them (with the same arguments: RabbitMQ refuses a redeclaration that differs), so either may start first."""
    await channel.declare_queue(dead_letter_name(queue), durable=True)
    exchange = await channel.declare_exchange(exchange_name(queue), aio_pika.ExchangeType.FANOUT, durable=True)
    declared = await channel.declare_queue(queue, durable=True, arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead_letter_name(queue)})
    await declared.bind(exchange, routing_key="")
    return exchange, declared


# ---------------------------------------------------------------------------------------------- publisher


class EventPublisher:
    """Publishes events to RabbitMQ from any thread (the store writes from ``asyncio.to_thread`` workers).

    aio-pika runs on a private event loop in a daemon thread; ``publish`` hands it the message and waits for the
    broker's confirm at most ``timeout_s``. A failed publish reconnects once (tenacity) within that time; when it
    still fails, the circuit opens: for ``cooldown_s`` every publish raises EventBrokerUnavailable at once, then one
    publish probes the broker again (others still fail fast until it succeeds)."""

    def __init__(self, url: str, queue: str = DEFAULT_QUEUE, timeout_s: float = 1.0, cooldown_s: float = 30.0) -> None:
        self.url = check_url(url)
        self.queue = queue
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s
        self._state = threading.Lock()
        self._open_until = 0.0  # monotonic time until which publishes are refused; 0 = closed circuit
        self._probing = False
        self._closed = False
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._ready_lock = asyncio.Lock()  # one connect at a time (bound to the private loop at first use)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="event-publisher", daemon=True)
        self._thread.start()
        # connect now, in the background: the first turn then does not pay for it
        asyncio.run_coroutine_threadsafe(self._connect_quietly(), self._loop)

    @property
    def circuit_open(self) -> bool:
        with self._state:
            return self._open_until > 0

    def publish(self, event: dict[str, Any]) -> None:
        """Publish one event; returns once the broker has confirmed it. MalformedEvent for a bad event,
        EventBrokerUnavailable when the broker did not take it (the caller writes the event directly)."""
        body = encode(event)
        if threading.current_thread() is self._thread:
            raise RuntimeError("EventPublisher.publish blocks; call it from another thread")
        with self._state:
            if self._closed:
                raise EventBrokerUnavailable("the event publisher is closed")
            if self._open_until:
                if time.monotonic() < self._open_until or self._probing:
                    raise EventBrokerUnavailable("the event broker failed recently; not trying again yet")
                self._probing = True  # the cool-down is over: this publish tries the broker again
        future = asyncio.run_coroutine_threadsafe(self._publish(event, body), self._loop)
        try:
            future.result(self.timeout_s)
        except Exception as exc:  # whatever failed, the event is not known to be in the queue
            future.cancel()
            with self._state:
                self._probing = False
                self._open_until = time.monotonic() + self.cooldown_s
            log.warning("event broker %s: publish failed (%s: %s); writing events directly for %.0f s",
                        safe_url(self.url), type(exc).__name__, str(exc)[:200] or "timed out", self.cooldown_s)
            raise EventBrokerUnavailable(f"the event broker did not confirm the event: {type(exc).__name__}") from exc
        with self._state:
            if self._open_until:
                log.warning("event broker %s: publishing again", safe_url(self.url))
            self._probing = False
            self._open_until = 0.0

    async def _publish(self, event: dict[str, Any], body: bytes) -> None:
        # a connection that died since the last publish fails the first attempt; the second reconnects
        async for attempt in AsyncRetrying(stop=stop_after_attempt(2), wait=wait_fixed(0.05), reraise=True):
            with attempt:
                connection, exchange = await self._ready()
                try:
                    await exchange.publish(message_of(event, body), routing_key="", mandatory=True)
                except BaseException:
                    await self._drop(connection)
                    raise

    async def _ready(self) -> tuple[AbstractConnection, AbstractExchange]:
        async with self._ready_lock:
            if self._exchange is None or self._connection is None or self._connection.is_closed:
                connection = await aio_pika.connect(self.url, timeout=self.timeout_s)
                try:
                    # confirms: publish returns once the broker has the message; returns: an unroutable one raises
                    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                    self._exchange, _ = await declare(channel, self.queue)
                except BaseException:
                    await connection.close()
                    raise
                self._connection = connection
                log.info("event broker %s: connected, publishing to %s", safe_url(self.url), self.queue)
            return self._connection, self._exchange

    async def _connect_quietly(self) -> None:
        try:
            await asyncio.wait_for(self._ready(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - the first publish tries again (and opens the circuit)
            log.warning("event broker %s: not reachable at start (%s)", safe_url(self.url), type(exc).__name__)

    async def _drop(self, connection: AbstractConnection | None) -> None:
        """Close ``connection``, and forget it if it is the current one (not one a concurrent publish has made
        since)."""
        if connection is self._connection:
            self._connection, self._exchange = None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 1.0)

    def close(self) -> None:
        """Close the connection and stop the publisher's thread (publishes then raise EventBrokerUnavailable)."""
        with self._state:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._drop(self._connection), self._loop).result(3.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def publisher_for(settings: Settings) -> EventPublisher | None:
    """The deployment's event publisher; None when VNA_EVENT_BROKER_URL is unset (events are written directly)."""
    if settings.event_broker_url is None:
        return None
    return EventPublisher(settings.event_broker_url.get_secret_value(), settings.event_broker_queue)


# ---------------------------------------------------------------------------------------------- consumer

# the database is unreachable or restarting: the event waits (unacked) and is applied when it is back
TRANSIENT_DB_ERRORS = (sql_errors.OperationalError, sql_errors.InterfaceError, sql_errors.DisconnectionError,
                       sql_errors.TimeoutError)


@dataclass
class ConsumerStats:
    applied: int = 0  # events written to the store
    duplicates: int = 0  # events the store already had (redeliveries): acked, nothing written
    dead_lettered: int = 0  # messages that are not events, or that the store refused: moved to <queue>.dead

    def __str__(self) -> str:
        return f"applied {self.applied}, duplicates {self.duplicates}, dead-lettered {self.dead_lettered}"


class _Attempt:
    """The one field of tenacity's RetryCallState that its wait strategies read."""

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number


class EventConsumer:
    """Consumes the event queue into ``apply`` (ConversationStore.apply: writes one event, True when written,
    False when it was already there).

    Messages are taken ``prefetch`` at a time and spread over ``concurrency`` lanes by session: a lane applies its
    events one after another, in queue order (so the turns of one conversation are written in the order they were
    published), and the lanes run side by side (a database commits several sessions' events at once). Each message
    is acked only after ``apply`` returned (the write committed). A message that is not an event, or that ``apply``
    refuses, is logged and rejected to the dead-letter queue; a database that is down holds the event and is
    retried with backoff; a broker that goes away is reconnected to with backoff. ``run`` returns when ``stop`` is
    set, after the events in hand are finished; the unacked rest go back to the queue."""

    def __init__(self, url: str, apply: Callable[[dict[str, Any]], bool], queue: str = DEFAULT_QUEUE,
                 prefetch: int = 32, concurrency: int = 4, progress_every_s: float = 10.0) -> None:
        if prefetch < 1 or concurrency < 1:
            raise ValueError("prefetch and concurrency must be at least 1")
        self.url = check_url(url)
        self.apply = apply
        self.queue = queue
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.progress_every_s = progress_every_s
        self.stats = ConsumerStats()
        self.connected = asyncio.Event()  # set while consuming (tests and the CLI wait for it)
        self._wait = wait_random_exponential(multiplier=0.5, max=30.0)

    async def run(self, stop: asyncio.Event) -> ConsumerStats:
        failures = 0
        while not stop.is_set():
            try:
                connection = await aio_pika.connect(self.url, timeout=10)
            except Exception as exc:  # noqa: BLE001 - the broker is not there yet: wait and try again
                failures += 1
                delay = self._wait(_Attempt(failures))  # type: ignore[arg-type]  # stands in for RetryCallState
                log.warning("kpi-consumer: cannot reach %s (%s); retrying in %.1f s", safe_url(self.url),
                            type(exc).__name__, delay)
                await _sleep_unless(stop, delay)
                continue
            failures = 0
            try:
                await self._session(connection, stop)
            except Exception as exc:  # noqa: BLE001 - a lost connection: reconnect
                log.warning("kpi-consumer: connection to %s lost (%s: %s); reconnecting", safe_url(self.url),
                            type(exc).__name__, str(exc)[:200])
                await _sleep_unless(stop, 0.5)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 5)
        log.info("kpi-consumer: stopped; %s", self.stats)
        return self.stats

    async def _session(self, connection: AbstractConnection, stop: asyncio.Event) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        _, queue = await declare(channel, self.queue)
        arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        lost = asyncio.Event()
        connection.close_callbacks.add(lambda *_: lost.set())
        channel.close_callbacks.add(lambda *_: lost.set())
        lanes: list[asyncio.Queue] = [asyncio.Queue() for _ in range(self.concurrency)]
        in_hand: set[asyncio.Task] = set()
        workers = [asyncio.ensure_future(self._work(lane, stop, in_hand)) for lane in lanes]
        stopping = asyncio.ensure_future(stop.wait())
        closing = asyncio.ensure_future(lost.wait())
        reported, last = time.monotonic(), (0, 0, 0)
        try:
            await queue.consume(arrived.put, no_ack=False)
            self.connected.set()
            log.info("kpi-consumer: consuming %s on %s (prefetch %d, %d at once)", self.queue, safe_url(self.url),
                     self.prefetch, self.concurrency)
            while True:
                taking = asyncio.ensure_future(arrived.get())
                await asyncio.wait({taking, stopping, closing}, timeout=self.progress_every_s,
                                   return_when=asyncio.FIRST_COMPLETED)
                if not taking.done():
                    taking.cancel()
                    if stopping.done():
                        return
                    if closing.done():
                        raise ConnectionError("the broker closed the connection")
                else:
                    await self._dispatch(taking.result(), lanes)
                now = time.monotonic()
                counts = (self.stats.applied, self.stats.duplicates, self.stats.dead_lettered)
                if now - reported >= self.progress_every_s and counts != last:
                    log.info("kpi-consumer: %s", self.stats)
                    reported, last = now, counts
        finally:
            stopping.cancel()
            closing.cancel()
            for worker in workers:  # idle lanes stop at once; a lane with an event in hand finishes it first
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(*in_hand, return_exceptions=True)

    async def _dispatch(self, message: AbstractIncomingMessage, lanes: list[asyncio.Queue]) -> None:
        try:
            event = decode(message.body)
        except MalformedEvent as exc:
            await self._dead_letter(message, f"not an event: {exc}")
            return
        lanes[zlib.crc32(event["session_id"].encode("utf-8")) % len(lanes)].put_nowait((message, event))

    async def _work(self, lane: asyncio.Queue, stop: asyncio.Event, in_hand: set[asyncio.Task]) -> None:
        while True:
            message, event = await lane.get()
            handling = asyncio.ensure_future(self._handle(message, event, stop))
            in_hand.add(handling)
            handling.add_done_callback(in_hand.discard)
            try:
                await asyncio.shield(handling)  # cancelling the lane does not cut an event's write and ack short
            except Exception as exc:  # noqa: BLE001 - the ack could not be sent: the broker went away
                log.warning("kpi-consumer: event %s not acknowledged (%s); it will be delivered again",
                            event["event_id"], type(exc).__name__)

    async def _handle(self, message: AbstractIncomingMessage, event: dict[str, Any], stop: asyncio.Event) -> None:
        failures = 0
        while True:
            try:
                written = await asyncio.to_thread(self.apply, event)
                break
            except TRANSIENT_DB_ERRORS as exc:
                if stop.is_set():  # stopping: the event goes back to the queue for the next run
                    await message.nack(requeue=True)
                    return
                failures += 1
                delay = self._wait(_Attempt(failures))  # type: ignore[arg-type]  # stands in for RetryCallState
                log.warning("kpi-consumer: the database is unavailable (%s); retrying event %s in %.1f s",
                            type(exc).__name__, event["event_id"], delay)
                await _sleep_unless(stop, delay)
            except Exception as exc:  # the store refuses this event: it must not block the queue
                if not isinstance(exc, ValueError):  # a ValueError says what is wrong with the event; others are bugs
                    log.exception("kpi-consumer: writing event %s failed", event["event_id"])
                await self._dead_letter(message, f"refused by the store: {type(exc).__name__}: {str(exc)[:200]}")
                return
        await message.ack()
        if written:
            self.stats.applied += 1
        else:
            self.stats.duplicates += 1

    async def _dead_letter(self, message: AbstractIncomingMessage, why: str) -> None:
        log.error("kpi-consumer: message %s moved to %s: %s", message.message_id or message.delivery_tag,
                  dead_letter_name(self.queue), why)
        await message.reject(requeue=False)
        self.stats.dead_lettered += 1


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def run_consumer(consumer: EventConsumer) -> ConsumerStats:
    """Run ``consumer`` until SIGTERM or SIGINT (Ctrl+C), then finish the event in hand and return."""

    async def main() -> ConsumerStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await consumer.run(stop)

    return asyncio.run(main())
