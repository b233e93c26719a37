"""Redis as the state several instances share (``VNA_REDIS_URL``): clients, key names and announcements.

Everything an instance keeps in memory by default and must share once there are two of them goes through here:
Rasa's lock store (bot.dialogue.lock_store), the Zalo token refresh lock (connectors.zalo) and the announcement
of staff edits to the curated FAQ (bot.faq). The rate limits have their own client (bot.ratelimit, the `limits`
library). Every key and channel name starts with ``VNA_REDIS_KEY_PREFIX`` so deployments and test runs can share
one Redis. Without ``VNA_REDIS_URL`` nothing here is used.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:  # redis is imported when VNA_REDIS_URL is set, not by every process that imports this module
    import redis
    import redis.asyncio

log = logging.getLogger(__name__)

# A command to a healthy Redis on the local network answers in well under a millisecond: these bound what an
# unreachable one costs a caller, not what a working one may take.
CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0


def key_prefix(settings: Settings) -> str:
    """The deployment's key prefix, checked: letters and digits only (Rasa's lock store ignores any other)."""
    prefix = settings.redis_key_prefix
    if not prefix or not prefix.isascii() or not prefix.isalnum():
        raise ValueError(f"VNA_REDIS_KEY_PREFIX must be letters and digits only, not {prefix!r}")
    return prefix


def shared_key(settings: Settings, *parts: str) -> str:
    """A Redis key or channel name of this deployment: ``<prefix>:<part>:<part>…``."""
    return ":".join((key_prefix(settings), *parts))


def redis_client(settings: Settings) -> redis.Redis | None:
    """A synchronous client of ``VNA_REDIS_URL`` (None when it is unset). The connection is made on first use."""
    if not settings.redis_url:
        return None
    import redis

    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                socket_timeout=SOCKET_TIMEOUT_S, health_check_interval=30)


def async_redis_client(settings: Settings) -> redis.asyncio.Redis | None:
    """The same for asyncio code (redis.asyncio); None when ``VNA_REDIS_URL`` is unset."""
    if not settings.redis_url:
        return None
    import redis.asyncio

    return redis.asyncio.Redis.from_url(settings.redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                        socket_timeout=SOCKET_TIMEOUT_S, health_check_interval=30)


class Announcements:
    """Tell every instance that something changed, through a Redis pub/sub channel.

    ``announce()`` publishes a message on the channel; ``listen(callback)`` calls ``callback(message)`` in a
    daemon thread for every message published while it is subscribed (this instance's own too). Pub/sub keeps
    nothing for a listener that is disconnected, so the listener also calls ``callback(SUBSCRIBED)`` each time it
    (re)subscribes: whatever was announced while it was away is caught up then. With Redis down, the listener
    retries every second and announcements are lost; the FAQ matcher still polls its table meanwhile."""

    SUBSCRIBED = "subscribed"  # the message a listener gets when it (re)subscribes

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.client = client
        self.channel = channel
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_settings(cls, settings: Settings, topic: str) -> Announcements | None:
        client = redis_client(settings)
        return cls(client, shared_key(settings, topic)) if client is not None else None

    def announce(self, message: str = "changed") -> bool:
        """Publish ``message``; False (logged) when Redis cannot be reached: listeners then catch up by polling."""
        try:
            self.client.publish(self.channel, message)
            return True
        except Exception as exc:  # noqa: BLE001 - what was announced is stored already; only the news is late
            log.warning("could not announce on %s (%s: %s); other instances see the change at their next poll",
                        self.channel, type(exc).__name__, exc)
            return False

    def listen(self, callback: Callable[[str], None]) -> threading.Thread:
        """Call ``callback`` for each message on the channel, in a daemon thread, until :meth:`close`."""
        def deliver(data: object) -> None:
            try:
                callback(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data))
            except Exception:  # a failing callback must not stop the listener
                log.exception("announcement handler failed on %s", self.channel)

        def run() -> None:
            pubsub = None
            failing = False
            while not self._stop.is_set():
                try:
                    if pubsub is None:
                        pubsub = self.client.pubsub()
                        pubsub.subscribe(self.channel)
                        # wait for Redis to confirm: every announcement from now on reaches this listener, so what
                        # the catch-up below reads cannot miss a change announced before it
                        confirmed = pubsub.get_message(timeout=SOCKET_TIMEOUT_S)
                        if confirmed is None or confirmed.get("type") != "subscribe":
                            raise ConnectionError("Redis did not confirm the subscription")
                        if failing:
                            log.warning("listening on %s again", self.channel)
                            failing = False
                        deliver(self.SUBSCRIBED)
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        deliver(message["data"])
                except Exception as exc:  # noqa: BLE001 - Redis went away: subscribe again when it is back
                    if not failing:  # once per outage, not every second
                        log.warning("stopped listening on %s (%s: %s); retrying every second", self.channel,
                                    type(exc).__name__, exc)
                        failing = True
                    with contextlib.suppress(Exception):
                        if pubsub is not None:
                            pubsub.close()
                    pubsub = None
                    self._stop.wait(1.0)
            with contextlib.suppress(Exception):
                if pubsub is not None:
                    pubsub.close()

        thread = threading.Thread(target=run, name=f"listen-{self.channel}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop the listeners (within about a second) and close the client."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        self.client.close()
