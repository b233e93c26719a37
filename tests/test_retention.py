"""Privacy by retention (bot/retention.py): personal data older than the retention period is deleted or
anonymised, recent data is untouched, and the KPIs of an old period stay what they were.

A small, known history is written through the stores the assistant, its channels and the console use, then aged
with SQL (the stores stamp rows with the current time). The same checks run on SQLite and on the local
PostgreSQL service (a fresh schema per test).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import String, Text, create_engine, func, insert, select, text, update

from bot.config import Settings
from bot.console.store import ConsoleStore
from bot.conversation import ConversationStore
from bot.domain import ConversationState, Reply, Source
from bot.kpis import compute_kpis
from bot.retention import TABLES, PurgeBusy, purge, retention_loop
from bot.schema import (
    audit_log,
    channel_inbox,
    channel_outbox,
    chat_receipts,
    conversations,
    handoff_tickets,
    login_attempts,
    metadata,
    ratings,
    staff_replies,
    turns,
)
from connectors.core import ChannelStore
from tests.services import pg_schema

DAY = 86400.0
NOW = time.time()
OLD = NOW - 200 * DAY  # before the default cutoff (180 days)
RECENT = NOW - 2 * DAY
OLD_WINDOW = (OLD - 5 * DAY, OLD + 5 * DAY)
RECENT_WINDOW = (NOW - 30 * DAY, NOW + 60)

# Words masking keeps (a name, a hamlet): only retention removes them. ASCII parts, so they are found in JSON too.
OLD_WORDS = "chị Lê Thu Trang ở xóm Bãi Sậy"
OLD_MARK = "Thu Trang"
RECENT_WORDS = "anh Phạm Quốc Bảo ở thôn Đông Hòa"
RECENT_MARK = "Quoc Bao"
RECENT_WORDS_ASCII = "anh Pham Quoc Bao o thon Dong Hoa"
OLD_ZALO_USER = "5550001234567"  # an old conversation's account id: it must go too


def reply(question: str, outcome: str, fallback: bool = False, procedure: str | None = None) -> Reply:
    sources = [Source(procedure, "procedure", "Thủ tục", "https://dichvucong.gov.vn/x", 1.0)] if procedure else []
    return Reply(question, f"Trả lời cho: {question}", "ask_documents", fallback, sources, ["documents"],
                 outcome=outcome)


def age(db, session: str, when: float) -> None:
    """Move a conversation and everything of it to ``when`` (the stores stamp rows with the current time)."""
    with db.begin() as conn:
        conn.execute(update(conversations).where(conversations.c.session_id == session)
                     .values(created_at=when, updated_at=when + 600))
        for table in (turns, ratings, handoff_tickets, staff_replies):
            conn.execute(update(table).where(table.c.session_id == session).values(created_at=when + 300))


def fill(store: ConversationStore) -> None:
    """Old (200 days ago) and recent (2 days ago) conversations, channel messages and sign-in attempts:

    web-old-a (web, old): 2 answered, rated 5                     → resolved, satisfied
    zalo:<id> (zalo, old): unknown, ticket with a staff reply, rated 2 → handoff, not satisfied
    web-old-c (web, old): answered, declined                      → not resolved
    telegram:987654321 (telegram): one turn old, one recent       → a chat still going on at the cutoff
    web-new-d (web, recent): answered, ticket, rated 4
    """
    db = store.db
    old_zalo = f"zalo:{OLD_ZALO_USER}"

    def turn(session: str, channel: str, r: Reply, latency: float) -> None:
        store.record(session, channel, r, ConversationState(procedure="1.001193"), latency,
                     procedure=r.sources[0].id if r.sources else None, confidence=0.9)

    turn("web-old-a", "web", reply(f"{OLD_WORDS} hỏi làm lại căn cước cần gì", "answered", procedure="1.001193"), 40)
    turn("web-old-a", "web", reply("lệ phí bao nhiêu", "answered", procedure="1.001193"), 60)
    store.rate("web-old-a", "web", 5)
    turn(old_zalo, "zalo", reply(f"{OLD_WORDS} xin giấy phép bay flycam", "unknown", fallback=True), 100)
    store.open_ticket(old_zalo, "zalo", "unanswered", [{"role": "user", "text": f"{OLD_WORDS} xin giấy phép"}])
    console = ConsoleStore(db)
    console.add_reply(store.ticket_list(old_zalo)[0], "canbo1", f"Chào {OLD_WORDS}, chúng tôi sẽ gọi lại",
                      delivered=True)
    store.rate(old_zalo, "zalo", 2)
    turn("web-old-c", "web", reply("đăng ký khai sinh cho con", "answered", procedure="2.000986"), 80)
    turn("web-old-c", "web", reply(f"{OLD_WORDS} hỏi thời tiết", "declined", fallback=True), 20)
    turn("telegram:987654321", "telegram", reply(f"{OLD_WORDS} hỏi cấp đổi giấy phép lái xe", "answered",
                                                 procedure="1.002809"), 50)
    for session in ("web-old-a", old_zalo, "web-old-c", "telegram:987654321"):
        age(db, session, OLD)
    turn("telegram:987654321", "telegram", reply(f"{RECENT_WORDS} hỏi lệ phí", "answered", procedure="1.002809"), 30)
    turn("web-new-d", "web", reply(f"{RECENT_WORDS_ASCII} hoi lam giay khai sinh", "answered",
                                   procedure="2.000986"), 70)
    store.open_ticket("web-new-d", "web", "requested", [{"role": "user", "text": RECENT_WORDS_ASCII}])
    store.rate("web-new-d", "web", 4)
    age(db, "web-new-d", RECENT)
    with db.begin() as conn:  # the live chat's recent turn: 2 days ago too
        conn.execute(update(turns).where(turns.c.session_id == "telegram:987654321", turns.c.created_at > RECENT)
                     .values(created_at=RECENT + 900))
        conn.execute(update(conversations).where(conversations.c.session_id == "telegram:987654321")
                     .values(updated_at=RECENT + 900))

    channels = ChannelStore(db)
    old_in = channels.receive("zalo", "old-msg-1", OLD_ZALO_USER, {"message": {"text": f"{OLD_WORDS} hỏi"}})
    failed_in = channels.receive("telegram", "old-msg-2", "987654321",
                                 {"message": {"text": f"{OLD_WORDS} số 0912345678", "chat": {"id": 987654321}}})
    channels.fail_inbox(failed_in, "RuntimeError: boom", give_up=True)
    channels.finish_inbox(old_in, "zalo", OLD_ZALO_USER, [{"text": f"Chào {OLD_WORDS}"}])
    channels.enqueue("zalo", OLD_ZALO_USER, [{"text": f"Nhắn lại {OLD_WORDS}"}])  # never delivered
    with db.begin() as conn:  # every channel row so far is old
        for table in (channel_inbox, channel_outbox):
            conn.execute(update(table).values(created_at=OLD, updated_at=OLD))
    new_in = channels.receive("telegram", "new-msg-1", "987654321", {"message": {"text": RECENT_WORDS}})
    channels.finish_inbox(new_in, "telegram", "987654321", [{"text": f"Chào {RECENT_WORDS}"}])
    with db.begin() as conn:
        conn.execute(insert(login_attempts), [
            {"username": "canbo1", "ip": "203.0.113.7", "success": True, "created_at": OLD},
            {"username": "canbo1", "ip": "198.51.100.9", "success": True, "created_at": RECENT},
        ])
        # answers kept for retried messages: a day at most, whatever the retention (RECENT is two days ago)
        conn.execute(insert(chat_receipts), [
            {"session_id": "web-old-a", "message_id": "m1", "response": f'{{"question": "{OLD_WORDS}"}}',
             "created_at": OLD},
            {"session_id": "web-new-d", "message_id": "m2", "response": f'{{"question": "{RECENT_WORDS}"}}',
             "created_at": RECENT},
            {"session_id": "web-new-d", "message_id": "m3", "response": '{"question": "vừa hỏi"}',
             "created_at": NOW - 600},
        ])


def text_columns() -> list[tuple]:
    return [(t, c) for t in metadata.sorted_tables for c in t.columns if isinstance(c.type, String | Text)]


def holding(db, needle: str) -> list[str]:
    """Every table.column (of every table) with a value containing ``needle``."""
    found = []
    with db.connect() as conn:
        for table, column in text_columns():
            if conn.execute(select(func.count()).select_from(table).where(column.like(f"%{needle}%"))).scalar_one():
                found.append(f"{table.name}.{column.name}")
    return found


def dump(db) -> dict:
    with db.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr) for t in metadata.sorted_tables}


def kpis(db, window: tuple[float, float]) -> dict:
    report = compute_kpis(db, start=window[0], end=window[1])
    return {k: report[k] for k in ("summary", "series", "by_channel", "top_procedures", "top_unanswered")}


def recent_rows(db) -> dict:
    cutoff = NOW - 180 * DAY
    with db.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t).where(t.c.created_at >= cutoff)).all()), key=repr)
                for t in (turns, ratings, handoff_tickets, staff_replies, channel_inbox, channel_outbox,
                          login_attempts)}


EXPECTED = {"conversations": 4, "turns": 6, "ratings": 2, "handoff_tickets": 1, "staff_replies": 1,
            "channel_inbox": 2, "channel_outbox": 2, "chat_receipts": 2, "login_attempts": 1, "tracker_events": 0}


def check_purge(store: ConversationStore, settings: Settings, batch: int) -> None:
    db = store.db
    fill(store)
    old_before, recent_before, rows_before = kpis(db, OLD_WINDOW), kpis(db, RECENT_WINDOW), recent_rows(db)
    assert old_before["summary"]["conversations"] == 4 and old_before["top_unanswered"]
    assert holding(db, OLD_MARK) and holding(db, OLD_ZALO_USER)

    snapshot = dump(db)
    planned = purge(db, settings, now=NOW, dry_run=True)
    assert dump(db) == snapshot, "a dry run changed the database"
    assert planned == EXPECTED

    done = purge(db, settings, now=NOW, batch=batch)
    assert done == planned

    # the old citizens' words and account ids are nowhere any more, in any text column of any table
    assert holding(db, OLD_MARK) == [] and holding(db, OLD_ZALO_USER) == []
    # recent rows are untouched
    assert recent_rows(db) == rows_before
    assert "turns.question" in holding(db, RECENT_MARK) and "channel_inbox.payload" in holding(db, "Quốc Bảo")
    # the old period's KPIs are the same; only its unanswered questions' texts are gone
    old_after = kpis(db, OLD_WINDOW)
    for key in ("summary", "series", "by_channel", "top_procedures"):
        assert old_after[key] == old_before[key], key
    assert old_after["top_unanswered"] == []
    # the chat going on at the cutoff now counts as a conversation started with its first kept turn
    recent_after = kpis(db, RECENT_WINDOW)
    assert recent_after["summary"]["conversations"] == recent_before["summary"]["conversations"] + 1
    assert recent_after["summary"]["turns"] == recent_before["summary"]["turns"]
    assert recent_after["summary"]["csat"] == recent_before["summary"]["csat"] == 1.0
    # the live chat keeps its session, its recent turn and its state
    assert [t["question"] for t in store.history("telegram:987654321")] == [f"{RECENT_WORDS} hỏi lệ phí"]
    assert store.load("telegram:987654321").procedure == "1.001193"
    # anonymised rows: one marker per conversation, shared by its turns, rating and ticket; tickets closed
    with db.connect() as conn:
        old_turns = conn.execute(select(turns.c.session_id, turns.c.question, turns.c.reply, turns.c.outcome)
                                 .where(turns.c.created_at < NOW - 180 * DAY)).all()
        assert all(t.session_id.startswith("anon-") and t.question == "" == t.reply for t in old_turns)
        assert len({t.session_id for t in old_turns}) == 4
        ticket = conn.execute(select(handoff_tickets).where(handoff_tickets.c.created_at < NOW - 180 * DAY)).one()
        assert ticket.transcript == "[]" and ticket.status == "closed"
        assert conn.execute(select(ratings.c.score).where(ratings.c.session_id == ticket.session_id)).scalar() == 2
        # staff actions stay in the audit log; they name the ticket by number, not the citizen
        assert conn.execute(select(audit_log.c.target_id).where(audit_log.c.action == "handoff.reply")).scalar() \
            == str(ticket.id)
    # a second purge finds nothing left to do
    assert purge(db, settings, now=NOW, batch=batch) == dict.fromkeys(TABLES, 0)


@pytest.fixture()
def sqlite_store(tmp_path: Path) -> Iterator[tuple[ConversationStore, Settings]]:
    settings = Settings(data_dir=tmp_path)
    store = ConversationStore(settings.resolved_database_url)
    yield store, settings
    store.db.dispose()


def test_old_personal_data_goes_recent_stays_and_old_kpis_hold_on_sqlite(sqlite_store) -> None:
    store, settings = sqlite_store
    check_purge(store, settings, batch=2)  # small batches: several transactions, one conversation never split
    # not even in the database file's free space or its write-ahead log
    files = list(settings.data_dir.glob("assistant.db*"))
    assert files and not any(OLD_MARK.encode() in f.read_bytes() for f in files)
    assert any(RECENT_MARK.encode() in f.read_bytes() for f in files)


@pytest.fixture()
def pg_store(tmp_path: Path) -> Iterator[tuple[ConversationStore, Settings]]:
    with pg_schema() as url:
        store = ConversationStore(url)
        yield store, Settings(data_dir=tmp_path, database_url=url)
        store.db.dispose()


def test_the_same_purge_on_postgresql(pg_store) -> None:
    store, settings = pg_store
    check_purge(store, settings, batch=1000)


def test_a_second_instance_skips_while_one_purges_postgresql(pg_store) -> None:
    store, settings = pg_store
    fill(store)
    with store.db.connect() as holder:  # another instance's purge holds the lock
        assert holder.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": 0x766E617270}).scalar()
        with pytest.raises(PurgeBusy):
            purge(store.db, settings, now=NOW)
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": 0x766E617270})
        holder.commit()
    assert purge(store.db, settings, now=NOW) == EXPECTED


def test_two_purges_at_once_change_each_row_once_on_sqlite(sqlite_store) -> None:
    store, settings = sqlite_store
    fill(store)
    before = kpis(store.db, OLD_WINDOW)
    results: list[dict] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(purge(store.db, settings, now=NOW, batch=1))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert {k: results[0][k] + results[1][k] for k in TABLES} == EXPECTED
    assert kpis(store.db, OLD_WINDOW)["summary"] == before["summary"]
    assert holding(store.db, OLD_MARK) == []


def test_a_retention_period_under_a_day_is_refused(sqlite_store) -> None:
    store, settings = sqlite_store
    with pytest.raises(ValueError):
        purge(store.db, settings, days=0)


def test_rasa_tracker_events_older_than_the_cutoff_are_deleted(tmp_path: Path) -> None:
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered

    settings = Settings(data_dir=tmp_path)
    tracker_store = SQLTrackerStore(domain=Domain.empty(), dialect="sqlite", db=str(tmp_path / "dialogue.db"))

    def conversation(sender: str, parts: list[tuple[float, str]], new_session: bool = True) -> None:
        tracker = asyncio.run(tracker_store.get_or_create_tracker(sender, append_action_listen=False))
        for i, (when, words) in enumerate(parts):
            if new_session or i == 0:
                tracker.update(ActionExecuted("action_session_start", timestamp=when))
                tracker.update(SessionStarted(timestamp=when))
            tracker.update(UserUttered(words, {"name": "ask_fee", "confidence": 0.9}, timestamp=when + 1))
            tracker.update(BotUttered(f"Trả lời {words}", timestamp=when + 2))
            tracker.update(ActionExecuted("action_listen", timestamp=when + 3))
        asyncio.run(tracker_store.save(tracker))

    conversation("web-old", [(OLD, OLD_WORDS)])
    conversation("telegram:1", [(OLD, OLD_WORDS), (RECENT, RECENT_WORDS)])  # a new Rasa session since
    straddling = NOW - 180 * DAY - 600  # a Rasa session that started just before the cutoff and is still open
    conversation("telegram:2", [(straddling, "câu trước mốc"), (NOW - 180 * DAY + 600, "câu sau mốc")],
                 new_session=False)
    engine = create_engine(f"sqlite:///{tmp_path / 'dialogue.db'}", future=True)

    def events() -> list[tuple]:
        with engine.connect() as conn:
            return conn.execute(text("SELECT sender_id, type_name, data FROM events ORDER BY id")).all()

    store = ConversationStore(settings.resolved_database_url)
    before = events()
    planned = purge(store.db, settings, now=NOW, dry_run=True)
    assert events() == before
    # web-old's 5 events, telegram:1's first session (5) and the event before telegram:2's open session start
    assert planned["tracker_events"] == 11
    assert purge(store.db, settings, now=NOW)["tracker_events"] == 11
    after = events()
    assert not any(OLD_MARK in (e.data or "") for e in after)
    assert {e.sender_id for e in after} == {"telegram:1", "telegram:2"}
    assert sum(1 for e in after if e.sender_id == "telegram:2") == 7  # its open session is kept whole
    tracker = asyncio.run(tracker_store.retrieve("telegram:1"))  # Rasa still reads the conversation
    assert tracker.latest_message.text == RECENT_WORDS
    engine.dispose()
    store.db.dispose()


def test_the_scheduled_purge_runs_and_survives_errors(tmp_path: Path, caplog) -> None:
    settings = Settings(data_dir=tmp_path, retention_interval_s=0.05)
    store = ConversationStore(settings.resolved_database_url)
    fill(store)
    broken = create_engine(f"sqlite:///{tmp_path / 'empty.db'}", future=True)  # no tables: every purge fails

    async def scenario() -> None:
        good = asyncio.create_task(retention_loop(settings, store.db))
        bad = asyncio.create_task(retention_loop(settings, broken))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if not holding(store.db, OLD_MARK) and sum("purge failed" in r.message for r in caplog.records) >= 2:
                break
        assert not bad.done(), "a failed purge ended the schedule"
        for task in (good, bad):
            task.cancel()
        await asyncio.gather(good, bad, return_exceptions=True)

    with caplog.at_level(logging.INFO, logger="bot.retention"):
        asyncio.run(scenario())
    assert holding(store.db, OLD_MARK) == []
    assert sum("purge failed" in r.message for r in caplog.records) >= 2
    assert any(r.message.startswith("retention: purged") for r in caplog.records)
    store.db.dispose()
    broken.dispose()


def test_purge_on_the_command_line(tmp_path: Path, env_for: dict[str, str], project_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = ConversationStore(url)
    fill(store)
    env = dict(env_for, VNA_DATABASE_URL=url, VNA_TRACKER_STORE_URL=f"sqlite:///{tmp_path / 'dialogue.db'}")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", "purge", *args], cwd=project_dir, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    snapshot = dump(store.db)
    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["days"] == 180 and report["would_purge"] == EXPECTED
    assert dump(store.db) == snapshot

    assert run("--days", "0").returncode == 2
    longer = json.loads(run("--days", "365", "--dry-run").stdout)  # nothing is that old ...
    assert longer["would_purge"].pop("chat_receipts") == 2  # ... but answers to retries live a day at most
    assert set(longer["would_purge"].values()) == {0}

    done = run()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["purged"] == EXPECTED
    assert holding(store.db, OLD_MARK) == [] and "turns.question" in holding(store.db, RECENT_MARK)
    store.db.dispose()
