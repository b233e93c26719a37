"""Zalo's token refresh with two instances: the refresh token is single-use, so with Redis exactly one instance
refreshes, the rotated pair is stored once, and the other instance sends with the new token it reads back.

Two ZaloChannel objects, each in a thread with its own event loop (as two serving processes), share one database;
Zalo is the local peer of tests/channel_peers.py, which accepts each refresh token once and counts the calls. Its
token endpoint answers after 0.3 s here, so both instances meet an expired token while the other's refresh is in
flight. Redis: the local service, with a key prefix of its own (skipped outside CI when it is absent).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from bot.config import Settings
from bot.conversation import ConversationStore
from bot.keys import TokenCipher
from connectors.core import ChannelStore, DeliveryError
from connectors.zalo import ZaloChannel
from tests.channel_peers import ZaloPeer, configured, serve, zalo_api
from tests.services import redis_prefix


@pytest.fixture()
def peer() -> Iterator[ZaloPeer]:
    zalo = ZaloPeer()
    app = zalo_api(zalo)

    @app.middleware("http")
    async def slow_refresh(request: Request, call_next):
        if request.url.path.endswith("/access_token"):
            await asyncio.sleep(0.3)  # a refresh takes a while: the other instance's send fails meanwhile
        return await call_next(request)

    with serve(app) as url:
        zalo.url = url
        yield zalo


class CountingStore(ChannelStore):
    """The real channel store, counting how often the rotated tokens are written."""

    saves = 0

    def save_tokens(self, channel: str, values: dict[str, str]) -> None:
        CountingStore.saves += 1
        super().save_tokens(channel, values)


def two_instances_send(settings: Settings, db_url: str) -> tuple[list[BaseException | None], CountingStore]:
    """Each instance sends one message with the (expired) access token at the same moment; what each send raised."""
    ConversationStore(db_url).db.dispose()  # the database is migrated before the instances start
    CountingStore.saves = 0
    barrier = threading.Barrier(2, timeout=20)
    outcomes: list[BaseException | None] = [None, None]
    stores: list[CountingStore] = []

    def instance(i: int) -> None:
        store = CountingStore(ConversationStore(db_url).db, TokenCipher(settings))
        stores.append(store)
        channel = ZaloChannel(settings, store)

        async def run() -> None:
            await channel.start()
            try:
                barrier.wait()
                await channel.send({"recipient": {"user_id": f"user-{i}"}, "message": {"text": "Xin chào bạn."}})
            except DeliveryError as exc:
                outcomes[i] = exc
            finally:
                await channel.stop()

        asyncio.run(run())

    threads = [threading.Thread(target=instance, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes, stores[0]


def zalo_settings(peer: ZaloPeer, tmp_path: Path, **update: object) -> Settings:
    base = Settings(data_dir=tmp_path, secret_key=SecretStr("khoa-bi-mat-cua-trien-khai-thu-nghiem"), **update)
    return configured(base, None, peer)


def test_two_instances_refresh_an_expired_token_once(peer: ZaloPeer, tmp_path: Path) -> None:
    with redis_prefix(data_dir=tmp_path) as shared:
        settings = zalo_settings(peer, tmp_path, redis_url=shared.redis_url, redis_key_prefix=shared.redis_key_prefix)
        db_url = f"sqlite:///{tmp_path / 'assistant.db'}"
        spent, first_token = peer.refresh_token, peer.access_token
        peer.expire()
        outcomes, store = two_instances_send(settings, db_url)
    assert outcomes == [None, None]
    refreshes = peer.of("refresh")
    assert len(refreshes) == 1 and refreshes[0]["refresh_token"] == spent  # exactly one refresh, with the stored token
    assert CountingStore.saves == 1  # the rotated pair written once
    assert store.token("zalo", "refresh_token") == peer.refresh_token != spent
    assert store.token("zalo", "access_token") == peer.access_token
    # both messages delivered, the second instance with the token the first one stored
    assert sorted(s["recipient"]["user_id"] for s in peer.of("send")) == ["user-0", "user-1"]
    assert {a["token"] for a in peer.of("send_attempt")} == {first_token, peer.access_token}


def test_without_redis_two_instances_both_spend_the_refresh_token(peer: ZaloPeer, tmp_path: Path) -> None:
    """What the lock prevents: each instance refreshes with the same single-use token; Zalo refuses the second."""
    settings = zalo_settings(peer, tmp_path)
    peer.expire()
    outcomes, _ = two_instances_send(settings, f"sqlite:///{tmp_path / 'assistant.db'}")
    assert len(peer.of("refresh")) == 2
    refused = [o for o in outcomes if o is not None]
    assert len(refused) == 1 and "token refresh refused" in str(refused[0])


def test_redis_down_defers_the_send_instead_of_refreshing_unlocked(peer: ZaloPeer, tmp_path: Path) -> None:
    settings = zalo_settings(peer, tmp_path, redis_url="redis://127.0.0.1:1/0")
    peer.expire()
    outcomes, _ = two_instances_send(settings, f"sqlite:///{tmp_path / 'assistant.db'}")
    assert all(isinstance(o, DeliveryError) and not o.permanent and "lock unavailable" in str(o) for o in outcomes)
    assert peer.of("refresh") == []  # the refresh token is not spent; the outbox retries the sends later
