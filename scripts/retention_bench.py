"""How long a large retention purge takes, and how long it holds the database from citizens' turns.

Fills a database with old conversations (bulk inserts: 5 turns, a rating and every tenth a ticket each, plus one
inbox and one outbox row per conversation), then purges while another thread records a citizen's turn every 20 ms
through ConversationStore.record, as the assistant does. Prints the purge's duration, its counts, its longest
single transaction and the probe's write latencies during the purge.

    .venv/bin/python scripts/retention_bench.py                      # SQLite in a temporary folder
    .venv/bin/python scripts/retention_bench.py --url postgresql+psycopg2://postgres@127.0.0.1:5432/test
                                                                      # (a fresh schema, dropped afterwards)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SqlEngine

import bot.retention as retention
from bot.config import Settings
from bot.conversation import ConversationStore
from bot.domain import ConversationState, Reply
from bot.schema import channel_inbox, channel_outbox, conversations, handoff_tickets, ratings, turns

DAY = 86400.0


def fill(db: SqlEngine, n: int, when: float) -> None:
    chunk = 2000
    for start in range(0, n, chunk):
        ids = [f"telegram:{100000 + i}" for i in range(start, min(n, start + chunk))]
        with db.begin() as conn:
            conn.execute(insert(conversations), [
                {"session_id": s, "channel": "telegram", "state": json.dumps(ConversationState().to_dict()),
                 "created_at": when, "updated_at": when + 60, "simulated": False} for s in ids])
            conn.execute(insert(turns), [
                {"session_id": s, "channel": "telegram", "question": f"chị Lê Thu Trang hỏi lần {k}",
                 "reply": "Thủ tục: Cấp lại căn cước …", "intent": "ask_documents", "fallback": False,
                 "outcome": "answered", "sources": '["1.001193"]', "latency_ms": 40.0, "created_at": when + k,
                 "procedure": "1.001193", "aspect": "documents", "confidence": 0.9, "simulated": False}
                for s in ids for k in range(5)])
            conn.execute(insert(ratings), [{"session_id": s, "channel": "telegram", "score": 5,
                                            "created_at": when + 30, "simulated": False} for s in ids])
            conn.execute(insert(handoff_tickets), [
                {"session_id": s, "channel": "telegram", "reason": "requested", "status": "open",
                 "transcript": '[{"role": "user", "text": "chị Lê Thu Trang cần gặp cán bộ"}]', "created_at": when + 40,
                 "simulated": False} for s in ids[::10]])
            conn.execute(insert(channel_inbox), [
                {"channel": "telegram", "message_id": f"m-{s}", "user_id": s.split(":")[1], "status": "done",
                 "payload": '{"message": {"text": "chị Lê Thu Trang hỏi"}}', "attempts": 1, "created_at": when,
                 "updated_at": when} for s in ids])
            conn.execute(insert(channel_outbox), [
                {"channel": "telegram", "user_id": s.split(":")[1], "payload": '{"text": "Trả lời"}', "status": "sent",
                 "attempts": 1, "next_attempt_at": when, "created_at": when, "updated_at": when} for s in ids])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--conversations", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=None,
                        help=f"rows per transaction (default {retention.SQLITE_BATCH} on SQLite, {retention.BATCH} else)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="retention-bench-"))
    schema = None
    url = args.url or f"sqlite:///{tmp / 'assistant.db'}"
    if url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url, future=True)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    try:
        store = ConversationStore(url)
        settings = Settings(data_dir=tmp, database_url=url)
        now = time.time()
        started = time.perf_counter()
        fill(store.db, args.conversations, now - 200 * DAY)
        filled_s = time.perf_counter() - started
        if store.db.dialect.name == "postgresql":  # statistics, as autovacuum keeps them for rows added over months
            with store.db.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()

        longest = [0.0]
        original = retention._write

        @contextlib.contextmanager
        def timed(db: SqlEngine) -> Iterator[Connection]:
            t0 = time.perf_counter()
            with original(db) as conn:
                yield conn
            longest[0] = max(longest[0], time.perf_counter() - t0)

        retention._write = timed
        latencies: list[float] = []
        done = threading.Event()

        def probe() -> None:
            reply = Reply("lệ phí làm căn cước", "…", "ask_fee", False, [], ["fee"])
            n = 0
            while not done.is_set():
                t0 = time.perf_counter()
                store.record(f"probe-{n}", "web", reply, ConversationState(), 30.0)
                latencies.append((time.perf_counter() - t0) * 1000)
                n += 1
                time.sleep(0.02)

        worker = threading.Thread(target=probe)
        worker.start()
        started = time.perf_counter()
        counts = retention.purge(store.db, settings, now=now, batch=args.batch)
        purge_s = time.perf_counter() - started
        done.set()
        worker.join()
        print(json.dumps({
            "database": store.db.dialect.name, "conversations": args.conversations,
            "batch": args.batch or (retention.SQLITE_BATCH if store.db.dialect.name == "sqlite" else retention.BATCH), "fill_s": round(filled_s, 1),
            "purge_s": round(purge_s, 2), "purged": counts, "longest_transaction_ms": round(longest[0] * 1000, 1),
            "probe_turns": len(latencies),
            "probe_write_ms": {"p50": round(statistics.median(latencies), 1),
                               "p99": round(statistics.quantiles(latencies, n=100)[98], 1),
                               "max": round(max(latencies), 1)},
        }, ensure_ascii=False))
        store.db.dispose()
    finally:
        if schema:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
