"""Abuse limits of the HTTP API (bot/ratelimit.py through bot/api.py): per session, per client address, per rating
address, refused webhook requests; 429 with Retry-After and a Vietnamese message; counters shared through Redis.

These tests build their own apps with strict limits (the shared fixtures of conftest.py have generous ones). The
burst and the address tests go over real HTTP (uvicorn on a free local port), the way a client would meet them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings
from bot.service import Assistant
from tests.channel_peers import TelegramPeer, configured

REDIS_URL = os.environ.get("VNA_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
PRODUCTION = {name: Settings.model_fields[name].default
              for name in ("rate_limit_session", "rate_limit_address", "rate_limit_rating")}
ids = itertools.count(int(time.time()))


def strict(settings: Settings, **limits: object) -> Settings:
    """The test settings with the production limits (or the ones given) instead of the suite's generous ones."""
    return settings.model_copy(update=PRODUCTION | limits)


@contextmanager
def serving(settings: Settings, assistant: Assistant) -> Iterator[str]:
    """The real app on a free 127.0.0.1 port (uvicorn in a thread)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # proxy_headers=False as in `serve` (bot/__main__.py): VNA_TRUSTED_PROXIES is the only rule for X-Forwarded-For
    config = uvicorn.Config(create_app(settings, assistant), log_level="warning", lifespan="on", ws="none",
                            proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="limits-server")
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def assert_too_many(r: httpx.Response) -> int:
    assert r.status_code == 429
    seconds = int(r.headers["Retry-After"])
    assert 1 <= seconds <= 60
    assert "Vui lòng thử lại sau" in r.json()["detail"] and f"{seconds} giây" in r.json()["detail"]
    return seconds


def test_a_burst_of_sixty_messages_on_one_session_meets_a_429(settings: Settings, assistant: Assistant) -> None:
    """60 messages at once on one conversation (the default limit: 10 per 10 s, 30 per minute), over HTTP."""
    session = f"cong-dan-burst-{next(ids)}"

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            return await asyncio.gather(*(client.post("/api/chat", json={"session_id": session,
                                                                         "text": "làm lại căn cước ở đâu"})
                                          for _ in range(60)))

    with serving(strict(settings, rate_limit_address="1000/minute"), assistant) as url:
        answers = asyncio.run(burst(url))
        statuses = [r.status_code for r in answers]
        assert statuses.count(200) == 10 and statuses.count(429) == 50, statuses
        for r in answers:
            if r.status_code == 429:
                assert_too_many(r)
        assert len(assistant.store.history(session)) == 10
        # the limit is the conversation's: another citizen at the same time is answered
        other = httpx.post(f"{url}/api/chat", json={"session_id": f"cong-dan-khac-{next(ids)}",
                                                    "text": "lệ phí đăng ký khai sinh"}, timeout=60)
        assert other.status_code == 200 and other.json()["sources"]


def test_one_client_address_is_limited_across_sessions_and_ipv6_counts_by_its_64(settings: Settings,
                                                                                 assistant: Assistant) -> None:
    """Behind a trusted proxy, the address is the X-Forwarded-For hop it vouches for; an IPv6 client is its /64."""
    limits = strict(settings, rate_limit_address="4/minute", trusted_proxies=["127.0.0.1"])
    with serving(limits, assistant) as url:
        def new_session(forwarded_for: str) -> httpx.Response:
            return httpx.post(f"{url}/api/session", headers={"X-Forwarded-For": forwarded_for}, timeout=30)

        for host in ("2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:aaaa::7", "2001:db8:1:2::1"):
            assert new_session(host).status_code == 200
        assert_too_many(new_session("2001:db8:1:2:bbbb:cccc:dddd:eeee"))  # the same /64: the same subscriber
        # what the client writes on the left of the header is not believed: the proxy's hop on the right counts
        assert_too_many(new_session("203.0.113.99, 2001:db8:1:2::5"))
        refused_chat = httpx.post(f"{url}/api/chat", headers={"X-Forwarded-For": "2001:db8:1:2::9"},
                                  json={"session_id": "cong-dan-ipv6", "text": "làm lại căn cước ở đâu"}, timeout=30)
        assert_too_many(refused_chat)
        assert assistant.store.history("cong-dan-ipv6") == []
        assert new_session("2001:db8:1:3::1").status_code == 200  # the next /64 is someone else
        assert new_session("203.0.113.7").status_code == 200
        assert httpx.get(f"{url}/health", headers={"X-Forwarded-For": "2001:db8:1:2::1"}, timeout=30).status_code == 200


def test_ratings_are_limited_per_address(settings: Settings, assistant: Assistant) -> None:
    with TestClient(create_app(strict(settings, rate_limit_rating="2/minute"), assistant)) as client:
        session = f"cong-dan-danh-gia-{next(ids)}"
        assert client.post("/api/chat", json={"session_id": session, "text": "đăng ký kết hôn cần gì"}).status_code == 200
        assert client.post("/api/rating", json={"session_id": session, "score": 1}).status_code == 200
        assert client.post("/api/rating", json={"session_id": session, "score": 2}).status_code == 200
        r = client.post("/api/rating", json={"session_id": session, "score": 1})
        assert_too_many(r)
        assert assistant.store.rating_list(session) == [{"session_id": session, "channel": "api", "score": 2}]


def test_refused_webhook_requests_are_limited_genuine_ones_are_not(settings: Settings, assistant: Assistant,
                                                                   tg_peer: TelegramPeer) -> None:
    """Telegram delivers every citizen's messages from a few addresses: its genuine (authenticated) requests never
    count against the address limit; someone guessing the webhook secret is stopped after a few tries."""
    secret = "bi-mat-webhook-cho-kiem-thu"
    limits = strict(configured(settings, tg_peer, None, secret), rate_limit_address="3/minute")
    tg_peer.reset()

    def update(text: str) -> bytes:
        chat = 700_000 + next(ids) % 1000
        return json.dumps({"update_id": next(ids), "message": {
            "message_id": next(ids), "date": int(time.time()), "text": text,
            "chat": {"id": chat, "type": "private", "first_name": "Lan"},
            "from": {"id": chat, "is_bot": False, "first_name": "Lan"}}}, ensure_ascii=False).encode()

    with TestClient(create_app(limits, assistant)) as client:
        def post(body: bytes, token: str) -> httpx.Response:
            return client.post("/telegram/webhook", content=body, headers={
                "X-Telegram-Bot-Api-Secret-Token": token, "Content-Type": "application/json"})

        for _ in range(6):  # twice the limit, all genuine
            assert post(update("làm lại căn cước ở đâu"), secret).status_code == 200
        for guess in ("123456", "admin", "bi-mat"):
            assert post(update("xin chào"), guess).status_code == 403
        assert_too_many(post(update("xin chào"), "thu-lan-nua"))
        assert_too_many(post(update("làm lại căn cước ở đâu"), secret))  # from that address, for now


def redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
        pytest.skip(f"Redis is not reachable: {exc}")


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "memory"])
def test_two_instances_share_the_counters_through_redis(settings: Settings, assistant: Assistant,
                                                        shared: bool) -> None:
    """Two app instances (as two processes behind a load balancer would be) count one conversation's messages
    together when VNA_REDIS_URL is set; in memory each counts alone."""
    if shared:
        redis_or_skip()
    limits = strict(settings, rate_limit_session="6/minute", rate_limit_address="1000/minute",
                    redis_url=REDIS_URL if shared else None)
    session = f"cong-dan-hai-may-{uuid.uuid4().hex[:12]}"
    body = {"session_id": session, "text": "đăng ký thường trú cần giấy tờ gì"}
    with TestClient(create_app(limits, assistant)) as first, TestClient(create_app(limits, assistant)) as second:
        assert all(first.post("/api/chat", json=body).status_code == 200 for _ in range(4))
        statuses = [second.post("/api/chat", json=body).status_code for _ in range(4)]
    if shared:
        assert statuses == [200, 200, 429, 429]
        assert len(assistant.store.history(session)) == 6
    else:
        assert statuses == [200] * 4


def test_two_deployments_on_one_redis_count_apart(settings: Settings, assistant: Assistant) -> None:
    """The counters live under VNA_REDIS_KEY_PREFIX: a second deployment (a staging copy, another province) sharing
    the Redis server does not spend this one's limits, while two instances of one deployment still share them."""
    redis_or_skip()
    run = uuid.uuid4().hex[:8]
    base = strict(settings, rate_limit_session="3/minute", rate_limit_address="1000/minute", redis_url=REDIS_URL)
    province = base.model_copy(update={"redis_key_prefix": f"tinh{run}"})
    staging = base.model_copy(update={"redis_key_prefix": f"thu{run}"})
    body = {"session_id": f"cung-ma-phien-{run}", "text": "đăng ký thường trú cần giấy tờ gì"}
    with TestClient(create_app(province, assistant)) as first, TestClient(create_app(staging, assistant)) as other, \
            TestClient(create_app(province, assistant)) as second:
        assert [first.post("/api/chat", json=body).status_code for _ in range(3)] == [200] * 3
        assert other.post("/api/chat", json=body).status_code == 200  # its own counter
        assert second.post("/api/chat", json=body).status_code == 429  # the same deployment's counter
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.keys(f"tinh{run}:limits:*") and client.keys(f"thu{run}:limits:*")
    finally:
        for key in client.keys(f"tinh{run}:*") + client.keys(f"thu{run}:*"):
            client.delete(key)
        client.close()
