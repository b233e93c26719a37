"""Several instances delivering one outbox: each reply goes out once, in order per citizen, and a claim left by a
process that died is delivered after its lease (connectors/core.py, ChannelStore.claim_due_outbox).

Three hubs with their own connection pools stand for three instances on one database; they deliver to a local
server speaking the Telegram Bot API (tests/channel_peers.py). On PostgreSQL (the local server, a schema per test)
the claims are SELECT … FOR UPDATE SKIP LOCKED; on SQLite, conditional UPDATEs. PostgreSQL tests are skipped when
it is not reachable, and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from bot.config import Settings
from bot.db import migrate
from bot.schema import channel_outbox
from connectors.core import ChannelHub, ChannelStore
from connectors.telegram import TelegramChannel
from tests.channel_peers import TelegramPeer, configured, wait_for
from tests.services import pg_schema

PROJECT_DIR = Path(__file__).resolve().parent.parent
USERS = 100
PER_USER = 2  # 200 replies, two per citizen: the second must never overtake the first
TEXT = "Hồ sơ cấp lại thẻ căn cước: tờ khai CT01 và thẻ cũ (tin {n} cho công dân {user})"


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    with pg_schema("vna_outbox") as url:
        yield url


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'assistant.db'}"


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("postgres_url" if request.param == "postgresql" else "sqlite_url")


@pytest.fixture()
def peer(tg_peer: TelegramPeer) -> TelegramPeer:
    tg_peer.reset()
    return tg_peer


def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        from sqlalchemy import event

        from bot.conversation import sqlite_pragmas

        engine = create_engine(url, connect_args={"check_same_thread": False}, future=True)
        event.listen(engine, "connect", sqlite_pragmas)
        return engine
    return create_engine(url, future=True)


def instance(engine: Engine, settings: Settings) -> ChannelHub:
    """A hub as an instance runs it, on its own connection pool. Delivery reads nothing of the assistant but its
    database (no turn is answered here), so the engine stands in for it."""
    return ChannelHub(SimpleNamespace(store=SimpleNamespace(db=engine)), settings,  # type: ignore[arg-type]
                      [TelegramChannel(settings)])


def queue_replies(store: ChannelStore, users: range) -> dict[str, list[str]]:
    expected: dict[str, list[str]] = {}
    for user in users:
        texts = [TEXT.format(n=n, user=user) for n in range(1, PER_USER + 1)]
        store.enqueue("telegram", str(user), [{"method": "sendMessage", "chat_id": user, "text": t} for t in texts])
        expected[str(user)] = texts
    return expected


def received(peer: TelegramPeer) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for params in peer.of("sendMessage"):
        got.setdefault(str(params["chat_id"]), []).append(params["text"])
    return got


def test_three_instances_deliver_every_reply_exactly_once_in_order(database_url: str, settings: Settings,
                                                                   peer: TelegramPeer) -> None:
    tg_settings = configured(settings, peer, None)
    engines = [engine_for(database_url) for _ in range(3)]
    migrate(engines[0])
    expected = queue_replies(ChannelStore(engines[0]), range(700_000, 700_000 + USERS))
    hubs = [instance(engine, tg_settings) for engine in engines]
    for hub in hubs:
        hub.DELIVERY_BATCH = 10  # small claims, so the three instances interleave instead of one taking all

    async def run() -> list[int]:
        return await asyncio.gather(*(hub.deliver() for hub in hubs))

    try:
        # each instance runs delivery passes until it finds nothing to claim; the one that holds the last rows
        # sends them and looks again, so when all three are done the outbox is empty
        sent = asyncio.run(run())
    finally:
        for engine in engines:
            engine.dispose()
    total = USERS * PER_USER
    assert sum(sent) == total
    if database_url.startswith("postgresql"):  # SKIP LOCKED hands concurrent claims disjoint rows: all take part
        assert sum(1 for n in sent if n) >= 2, f"one instance did all the work: {sent}"
    assert received(peer) == expected  # every reply once, and each citizen's two in order
    rows = ChannelStore(engine_for(database_url)).outbox_rows("telegram")
    assert len(rows) == total
    assert {(row["status"], row["attempts"]) for row in rows} == {("sent", 1)}  # never claimed twice


def test_claims_skip_rows_another_instance_holds_on_postgresql(postgres_url: str) -> None:
    one, two = engine_for(postgres_url), engine_for(postgres_url)
    migrate(one)
    first, second = ChannelStore(one), ChannelStore(two)
    queue_replies(first, range(710_000, 710_006))
    taken: list[list[dict]] = []
    holding, done = threading.Event(), threading.Event()

    def claim_and_hold() -> None:
        # the claim of another instance, caught inside its transaction: its rows are locked, not yet 'sending'
        with one.begin() as conn:
            ids = list(conn.execute(first._due("telegram", 3, time.time())
                                    .with_for_update(skip_locked=True, of=channel_outbox)).scalars())
            taken.append([{"id": i} for i in ids])
            holding.set()
            done.wait(10)

    holder = threading.Thread(target=claim_and_hold)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        mine = second.claim_due_outbox("telegram", 10)
        assert time.monotonic() - started < 1.0  # skipped, not waited for
    finally:
        done.set()
        holder.join()
    held = {row["id"] for row in taken[0]}
    assert len(held) == 3 and len(mine) == 3
    assert held.isdisjoint(row["id"] for row in mine)
    assert len({row["user_id"] for row in mine}) == 3  # one row per citizen: the head of each queue
    one.dispose()
    two.dispose()


def test_released_claims_go_back_unsent_and_a_newer_claim_is_not_released(database_url: str) -> None:
    engine = engine_for(database_url)
    migrate(engine)
    store = ChannelStore(engine)
    queue_replies(store, range(720_000, 720_002))
    claimed = store.claim_due_outbox("telegram")
    assert [row["attempts"] for row in claimed] == [1, 1]
    assert store.release_outbox(claimed[:1]) == 1
    first = next(row for row in store.outbox_rows("telegram") if row["id"] == claimed[0]["id"])
    assert (first["status"], first["attempts"]) == ("pending", 0)  # back in the queue, the attempt not counted
    store.lease_s = 0.0  # the second claim is now stale: another instance takes it over
    [again] = [row for row in store.claim_due_outbox("telegram") if row["id"] == claimed[1]["id"]]
    assert again["attempts"] == 2
    assert store.release_outbox(claimed[1:]) == 0  # the first claimer's claim is no longer its own
    second = next(row for row in store.outbox_rows("telegram") if row["id"] == claimed[1]["id"])
    assert (second["status"], second["attempts"]) == ("sending", 2)
    engine.dispose()


CLAIM_AND_DIE = """
import sys, time
from sqlalchemy import create_engine
from connectors.core import ChannelStore
store = ChannelStore(create_engine(sys.argv[1], future=True))
claimed = store.claim_due_outbox("telegram", 100)
print(" ".join(str(row["id"]) for row in claimed), flush=True)
time.sleep(600)  # killed here: between the claim and the send
"""


def test_a_claim_left_by_a_killed_instance_is_delivered_after_the_lease(postgres_url: str, settings: Settings,
                                                                        peer: TelegramPeer) -> None:
    engine = engine_for(postgres_url)
    migrate(engine)
    expected = queue_replies(ChannelStore(engine), range(730_000, 730_010))
    crashed = subprocess.Popen([sys.executable, "-c", CLAIM_AND_DIE, postgres_url], cwd=PROJECT_DIR,
                               stdout=subprocess.PIPE, text=True)
    try:
        claimed = crashed.stdout.readline().split() if crashed.stdout else []
    finally:
        crashed.send_signal(signal.SIGKILL)
        crashed.wait(10)
    assert len(claimed) == 10  # the heads of the ten queues, claimed by the instance that died
    hub = instance(engine, configured(settings, peer, None))
    hub.store.lease_s = 3.0
    claimed_at = max(row["updated_at"] for row in hub.store.outbox_rows("telegram"))

    try:
        assert asyncio.run(hub.deliver()) == 0  # within the lease the dead instance's rows wait
        assert received(peer) == {}
        wait_for(lambda: time.time() > claimed_at + hub.store.lease_s, timeout=10, what="the lease to run out")
        assert asyncio.run(hub.deliver()) == 20
    finally:
        engine.dispose()
    assert received(peer) == expected
    rows = hub.store.outbox_rows("telegram")
    assert {row["status"] for row in rows} == {"sent"}
    # the taken-over claims count the dead instance's attempt too
    assert sorted(row["attempts"] for row in rows) == [1] * 10 + [2] * 10
