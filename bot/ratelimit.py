"""Abuse limits: how many requests one session, client address or channel user may make, with the `limits` library.

Counters live in memory by default and in Redis when ``VNA_REDIS_URL`` is set, so several instances share them.
A limit is written in the library's notation ("10/10second;30/minute"): a key is refused as soon as any of its
windows is full, and the caller learns how long to wait (``Retry-After``). When Redis is unreachable the limiter
lets traffic through and logs it: a broken counter must not take the service down with it.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse_many, storage, strategies

from bot.config import Settings
from bot.shared import key_prefix

log = logging.getLogger(__name__)


@lru_cache(maxsize=64)
def _items(spec: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(spec)) if spec.strip() else ()


class RateLimiter:
    """Moving-window limits keyed by a namespace ("session", "address", …) and an identifier."""

    def __init__(self, redis_url: str | None = None, key_prefix: str = "vna") -> None:
        if redis_url:
            # short socket timeouts: a slow Redis costs a request milliseconds, not the event loop seconds; keys
            # under the deployment's prefix (VNA_REDIS_KEY_PREFIX), so two deployments on one Redis count apart
            self.storage = storage.storage_from_string(redis_url, socket_timeout=0.25, socket_connect_timeout=0.25,
                                                       key_prefix=f"{key_prefix}:limits")
        else:
            self.storage = storage.MemoryStorage()
        self.shared = bool(redis_url)
        self.strategy = strategies.MovingWindowRateLimiter(self.storage)
        self._warned_at = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(settings.redis_url, key_prefix(settings) if settings.redis_url else "vna")

    def hit(self, namespace: str, spec: str, identifier: str) -> float | None:
        """Count one request; None when it is allowed, else the seconds to wait before the next one."""
        items = _items(spec)
        try:
            for item in items:
                if not self.strategy.test(item, namespace, identifier):
                    return self._retry_after(item, namespace, identifier)
            for item in items:
                if not self.strategy.hit(item, namespace, identifier):
                    return self._retry_after(item, namespace, identifier)
        except Exception as exc:  # noqa: BLE001 - the counter store is down: serve rather than refuse everyone
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("rate limiter storage unavailable (%s: %s); requests are not limited",
                            type(exc).__name__, exc)
        return None

    def _retry_after(self, item: RateLimitItem, namespace: str, identifier: str) -> float:
        stats = self.strategy.get_window_stats(item, namespace, identifier)
        return max(1.0, math.ceil(stats.reset_time - time.time()))

    def reset(self) -> None:
        self.storage.reset()


def address_key(host: str | None) -> str:
    """The identity of a client address for limits: an IPv4 address, or the /64 network of an IPv6 one (one
    subscriber usually holds a whole /64, so counting single IPv6 addresses would be no limit at all)."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def client_host(peer: str | None, forwarded_for: str | None, trusted_proxies: list[str]) -> str | None:
    """The client's address: the TCP peer, or — when the peer is a trusted proxy — the last address in
    X-Forwarded-For that is not itself a trusted proxy (the left part of the header is the client's to forge)."""
    if not peer or not forwarded_for or not trusted_proxies:
        return peer
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def trusted(host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    if not trusted(peer):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")[:32] if h.strip()]):
        if not trusted(hop):
            return hop
    return peer
