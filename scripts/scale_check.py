"""Scale check: two serving instances behind the shipped haproxy, one killed under load, then the stores checked.

    .venv/bin/python scripts/scale_check.py     # 3.5-6 minutes on 2 cores once the index and model are built

What it does, all on this machine:

1. Services: PostgreSQL, Redis and RabbitMQ on their local ports; one that is not listening is started with the
   Debian command (as root), or the check stops and says what is missing. haproxy must be installed
   (`bash scripts/system-deps.sh`).
2. A fresh database ``vnassist_scale_<pid>`` (dropped at the end), an event queue ``vnassist.scale.<pid>`` with an
   audit queue bound to its exchange (every event an instance publishes is copied there: the "published" count),
   the one-shot preparation every deployment runs first (bot/prepare.py: migrations, index, Rasa model), the KPI
   consumer (`python -m bot kpi-consumer`), two `python -m bot serve` instances (VNA_DIALOGUE on, i.e. with Rasa;
   the same VNA_DATABASE_URL, VNA_TRACKER_STORE_URL, VNA_REDIS_URL, VNA_EVENT_BROKER_URL and VNA_SECRET_KEY; the
   phone line off; the benchmark's generous rate limits; one data folder for both, with a copy of the index and
   model built in --data-dir, which is never written) and haproxy with deploy/haproxy.cfg (its addresses from the
   environment).
3. Load through haproxy: ``--clients`` web-chat clients, each running conversations one after another until the end
   of the run. A conversation gets its signed session id from POST /api/session, sends ``--messages`` distinct
   procedure questions (one pair of them at the same moment, on two connections), pausing like a citizen between
   them, then rates the conversation once. Every request is a new connection and haproxy balances each request on
   its own, so a conversation's messages go to both instances (the X-Vnassist-Instance header tells which).
4. After ``--before-kill`` seconds (and once at least three messages await their answer, waiting up to 15 s more)
   one instance is killed with SIGKILL and started again at once; the load goes on until it answers /health, has
   served requests again and ``--after-restart`` more seconds have passed.
5. The stores are checked once the consumer has drained the queue.

Accounting (the figures of the last line):

- sent: distinct messages the clients sent (a message is one text of one conversation, however many attempts).
- answered: messages that got HTTP 200 with a reply, after retries.
- A request that fails without an answer (502 from haproxy because its instance died, a dropped connection) is
  retried by the client after a second with the same session and text, as the web page's "Thử lại" button does, up
  to ``--retry-for`` seconds. Each message carries its own ``message_id`` (as the web page sends), the same in
  its retries: when the dead instance had stored the turn before it died, the retry gets that turn's answer back
  and nothing is stored twice (the instances log each such answer; the count is reported as "answered from their
  first attempt"). A message stored twice counts as duplicated (listed as "stored twice after a retry").
- lost: sent messages with no stored turn row (turns table, matched by session and masked text).
- duplicated: extra turn rows beyond one per message.
- out-of-order: pairs of messages of one conversation where the client had its answer to the first before sending
  the second, but the second's turn row comes first (by row id, the order the console and the KPIs read).
- ratings R stored R': ratings the clients got 200 for; of them, stored with the score sent.
- events E consumed E': distinct events in the audit queue (what the instances published) and events the consumer
  took off the queue and applied or found applied (its own count at exit); dead-lettered ones are reported apart.

Also reported, and failing the check when wrong: the messages Rasa's tracker store holds (every message Rasa answered
must be there: a concurrent turn on the other instance must not overwrite a tracker; a turn Rasa did not finish within
VNA_DIALOGUE_TIMEOUT_S is answered by the engine alone — its turn row has no NLU confidence — and is not expected
there, but more than 5 % of such turns fail the check), instances whose dialogue layer was down, a restarted instance
that never served again. Exit status 0 only when every count agrees.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.benchmark import BENCH_LIMITS, _free_port, haproxy_path  # noqa: E402

REPLAY_LOG_LINE = "was answered before: its answer is sent again"  # bot.service logs it for each replayed retry

HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
RETRIED_STATUSES = {502, 503, 504}  # haproxy's answers when an instance died or none is up


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ services


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _start_commands(name: str) -> list[list[str]] | None:
    """How a Debian machine starts a local service that is installed but not running (as root)."""
    if name == "PostgreSQL" and shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
        versions = sorted(p.name for p in Path("/etc/postgresql").iterdir() if (p / "main").is_dir())
        return [["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]] if versions else None
    if name == "Redis" and shutil.which("redis-server"):
        return [["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                 "--appendonly", "no"]]
    if name == "RabbitMQ" and shutil.which("rabbitmq-server"):
        return [["rabbitmq-server", "-detached"]]
    return None


def ensure_service(name: str, url: str, default_port: int, start: bool) -> None:
    parts = urlsplit(url.replace("postgresql+psycopg2", "postgresql"))
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    if _listening(host, port):
        return
    commands = _start_commands(name) if start and host in ("127.0.0.1", "localhost") else None
    if not commands or os.geteuid() != 0:
        raise SystemExit(f"scale check: {name} is not listening on {host}:{port} and cannot be started from here "
                         f"(start it, or pass its URL)")
    log(f"{name} is not running: starting it ({' '.join(commands[0])})")
    for command in commands:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    deadline = time.time() + 90
    while not _listening(host, port):
        if time.time() > deadline:
            raise SystemExit(f"scale check: {name} did not start listening on {host}:{port}")
        time.sleep(1)


# ------------------------------------------------------------------------------------------------ processes


class Process:
    """A child process in its own process group (so SIGKILL takes all of it), its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.command, self.env, self.log_dir = name, command, env, log_dir
        self.popen: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.log_dir / f"{self.name}{'' if self.starts == 1 else f'-{self.starts}'}.log"
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)

    def stop(self, timeout: float = 30) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(30)

    def rss(self) -> int:
        """Resident memory of the process and its children, bytes (0 when it is not running)."""
        import psutil

        if not self.alive():
            return 0
        try:
            root = psutil.Process(self.popen.pid)  # type: ignore[union-attr]
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            return 0

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path else ""

    def tail(self, lines: int = 12) -> str:
        return "\n".join(f"    {line}" for line in self.output().splitlines()[-lines:])


def wait_healthy(url: str, process: Process, timeout: float) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited with status {process.popen.returncode if process.popen else '?'}"
                               f" before it was healthy:\n{process.tail()}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = httpx.get(f"{url}/health", timeout=3)
            if response.status_code == 200:
                return response.json()
        time.sleep(1)
    raise RuntimeError(f"{process.name} was not healthy after {timeout:.0f} s:\n{process.tail()}")


# ------------------------------------------------------------------------------------------------ the load


@dataclass
class Message:
    session: int  # index into Run.sessions
    position: int  # its place in the conversation (the two of a pair have their own)
    text: str
    message_id: str = field(default_factory=lambda: secrets.token_hex(12))  # the same in every retry
    sent_at: float = 0.0  # first attempt
    answered_at: float | None = None
    attempts: int = 0
    failures: list[str] = field(default_factory=list)  # why earlier attempts got no answer
    instance: str | None = None  # the one that answered
    error: str | None = None  # final, when not answered


@dataclass
class Session:
    client: int
    session_id: str | None = None
    messages: list[int] = field(default_factory=list)  # indices into Run.messages
    score: int = 0
    rating_status: int | None = None  # HTTP status of the final rating attempt
    rating_error: str | None = None


@dataclass
class Run:
    sessions: list[Session] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    served: list[tuple[float, str]] = field(default_factory=list)  # (time, instance) of every answered request
    requests: int = 0
    failed_attempts: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def procedure_questions() -> list[str]:
    """Distinct procedure questions of the development set whose stored (masked) text is the text itself."""
    from bot.privacy import mask

    path = ROOT / "eval" / "devset" / "procedure_questions.jsonl"
    questions = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return sorted({q for q in questions if mask(q) == q and len(q) < 300})


async def post(client: httpx.AsyncClient, run: Run, url: str, body: dict, retry_for: float,
               failures: list[str] | None = None) -> tuple[httpx.Response | None, str | None]:
    """POST with the client's retry rule: no answer (a dropped connection, haproxy's 502/503/504) → wait a second
    and send the same body again, until ``retry_for`` seconds have passed. Returns the last response or error."""
    deadline = time.monotonic() + retry_for
    while True:
        run.requests += 1
        try:
            response = await client.post(url, json=body)
            if response.status_code not in RETRIED_STATUSES:
                return response, None
            problem = f"HTTP {response.status_code}"
        except httpx.TransportError as exc:
            problem = type(exc).__name__
        run.failed_attempts += 1
        if failures is not None:
            failures.append(problem)
        if time.monotonic() > deadline:
            return None, problem
        await asyncio.sleep(1.0)


async def send_message(client: httpx.AsyncClient, run: Run, base: str, index: int, retry_for: float) -> None:
    message = run.messages[index]
    session = run.sessions[message.session]
    message.sent_at = time.monotonic()
    body = {"session_id": session.session_id, "text": message.text, "channel": "web",
            "message_id": message.message_id}
    response, problem = await post(client, run, f"{base}/api/chat", body, retry_for, message.failures)
    message.attempts = len(message.failures) + 1
    if response is None:
        message.error = f"no answer after {message.attempts} attempts ({problem})"
        return
    if response.status_code != 200 or not response.json().get("reply"):
        message.error = f"HTTP {response.status_code}: {response.text[:200]}"
        return
    message.answered_at = time.monotonic()
    message.instance = response.headers.get("x-vnassist-instance")
    run.served.append((message.answered_at, message.instance or "?"))


async def conversation(client: httpx.AsyncClient, run: Run, base: str, cid: int, rng: random.Random,
                       questions: list[str], per_session: int, pause: tuple[float, float], retry_for: float) -> None:
    session = Session(client=cid)
    run.sessions.append(session)
    number = len(run.sessions) - 1  # other clients append theirs while this one waits
    response, problem = await post(client, run, f"{base}/api/session", {}, retry_for)
    if response is None or response.status_code != 200:
        session.rating_error = f"no session id: {problem or response.status_code}"  # type: ignore[union-attr]
        return
    session.session_id = response.json()["session_id"]
    texts = rng.sample(questions, per_session)
    for position, text in enumerate(texts):
        run.messages.append(Message(session=number, position=position, text=text))
        session.messages.append(len(run.messages) - 1)
    # the third and fourth message go together (two tabs, a double tap): the rest one after another
    groups = [[i] for i in session.messages]
    if per_session >= 4:
        groups[2:4] = [[session.messages[2], session.messages[3]]]
    for n, group in enumerate(groups):
        if n:
            await asyncio.sleep(rng.uniform(*pause))
        await asyncio.gather(*(send_message(client, run, base, i, retry_for) for i in group))
    if not any(run.messages[i].answered_at for i in session.messages):
        return
    await asyncio.sleep(rng.uniform(*pause))
    session.score = rng.randint(1, 5)
    body = {"session_id": session.session_id, "score": session.score, "channel": "web"}
    response, problem = await post(client, run, f"{base}/api/rating", body, retry_for)
    if response is None:
        session.rating_error = problem
    else:
        session.rating_status = response.status_code
        if response.status_code != 200:
            session.rating_error = f"HTTP {response.status_code}: {response.text[:200]}"


async def client_loop(run: Run, base: str, cid: int, questions: list[str], per_session: int,
                      pause: tuple[float, float], retry_for: float) -> None:
    rng = random.Random(cid)
    # a new connection for every request, as many citizens' phones are: haproxy balances each one on its own
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as client:
        await asyncio.sleep(rng.uniform(0, pause[1]))  # do not all start at the same instant
        while not run.stop.is_set():
            await conversation(client, run, base, cid, rng, questions, per_session, pause, retry_for)


# ------------------------------------------------------------------------------------------------ broker


class Broker:
    """The run's event queue on RabbitMQ and an audit queue bound to its exchange (a copy of every published event).

    Declared with bot.events' own topology, so the instances' publishers and the consumer find it as they would
    declare it; None of this exists when the checkout has no event broker (bot.events)."""

    def __init__(self, url: str, queue: str) -> None:
        self.url, self.queue, self.audit = url, queue, f"{queue}.audit"

    async def declare(self) -> None:
        import aio_pika

        from bot.events import declare, exchange_name

        connection = await aio_pika.connect(self.url, timeout=10)
        async with connection:
            channel = await connection.channel()
            exchange, _ = await declare(channel, self.queue)
            assert exchange.name == exchange_name(self.queue)
            audit = await channel.declare_queue(self.audit, durable=True)
            await audit.bind(exchange, routing_key="")

    async def depth(self) -> int:
        """Messages ready in the run's queue (not yet taken by the consumer)."""
        import aio_pika

        connection = await aio_pika.connect(self.url, timeout=10)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.queue, passive=True)
            return queue.declaration_result.message_count

    async def published(self) -> list[dict]:
        """Every event in the audit queue (taken off it)."""
        import aio_pika

        events = []
        connection = await aio_pika.connect(self.url, timeout=10)
        async with connection:
            channel = await connection.channel()
            audit = await channel.declare_queue(self.audit, passive=True)
            while (message := await audit.get(no_ack=True, fail=False)) is not None:
                try:
                    events.append(json.loads(message.body))
                except ValueError:
                    events.append({"event_id": message.message_id, "type": message.type or "unreadable"})
        return events

    async def delete(self) -> None:
        import aio_pika

        from bot.events import dead_letter_name, exchange_name

        connection = await aio_pika.connect(self.url, timeout=10)
        async with connection:
            for name in (self.audit, self.queue, dead_letter_name(self.queue)):
                channel = await connection.channel()
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange_name(self.queue))


def broker_supported() -> str | None:
    """Why this checkout cannot publish events to a broker, or None when it can."""
    try:
        import bot.events  # noqa: F401
    except ImportError as exc:
        return f"bot.events does not import ({exc})"
    from bot.config import Settings

    if "event_broker_url" not in Settings.model_fields:
        return "bot.config has no event_broker_url"
    return None


# ------------------------------------------------------------------------------------------------ the check


@dataclass
class Stores:
    turns: list[tuple[int, str, str]]  # (id, session_id, question)
    engine_alone: set[tuple[str, str]]  # (session_id, question) of turns answered without Rasa (no NLU confidence)
    ratings: dict[str, int]  # session_id -> score
    handoffs: int
    tracker_user_texts: Counter  # (session_id, text) -> user events in Rasa's tracker store
    tracker_events: int  # all rows of Rasa's events table
    database_bytes: int  # pg_database_size of the run's database (docs/scaling.md sizes PostgreSQL from it)


def read_stores(db_url: str) -> Stores:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            turns = [tuple(r) for r in conn.execute(text("SELECT id, session_id, question FROM turns ORDER BY id"))]
            engine_alone = {tuple(r) for r in conn.execute(
                text("SELECT session_id, question FROM turns WHERE confidence IS NULL"))}
            ratings = dict(conn.execute(text("SELECT session_id, score FROM ratings")).all())
            handoffs = conn.execute(text("SELECT count(*) FROM handoff_tickets")).scalar_one()
            tracker: Counter = Counter()
            tracker_events = 0
            if inspect(conn).has_table("events"):  # Rasa's SQL tracker store
                for sender, data in conn.execute(text("SELECT sender_id, data FROM events WHERE type_name = 'user'")):
                    with contextlib.suppress(ValueError, TypeError):
                        tracker[(sender, json.loads(data).get("text"))] += 1
                tracker_events = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    finally:
        engine.dispose()
    return Stores(turns, engine_alone, ratings, handoffs, tracker, tracker_events, size)


def connections(admin_url: str, database: str) -> int:
    """Connections open to the run's database now (both instances and the consumer)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(admin_url, future=True, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"),
                                {"d": database}).scalar_one()
    finally:
        engine.dispose()


def database_size(db_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    finally:
        engine.dispose()


def turn_count(db_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM turns")).scalar_one()
    finally:
        engine.dispose()


def consumer_counts(output: str) -> dict[str, int] | None:
    """The consumer's own count, logged last as it stops: '… applied N, duplicates D, dead-lettered X'."""
    found = re.findall(r"applied (\d+), duplicates (\d+), dead-lettered (\d+)", output)
    if not found:
        return None
    applied, duplicates, dead = map(int, found[-1])
    return {"applied": applied, "duplicates": duplicates, "dead_lettered": dead}


@dataclass
class Verdict:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    last: str = "scale check: did not complete"

    def say(self, line: str) -> None:
        self.lines.append(line)

    def fail(self, problem: str) -> None:
        self.problems.append(problem)


def check(run: Run, stores: Stores, verdict: Verdict) -> dict[str, int]:
    """Match every sent message with its turn rows and the tracker; count lost, duplicated, out-of-order."""
    rows: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row_id, session_id, question in stores.turns:
        rows[(session_id, question)].append(row_id)
    sent = [m for m in run.messages if m.sent_at]
    answered = [m for m in sent if m.answered_at is not None]
    lost = duplicated = after_retry = tracker_missing = degraded = 0
    first_row: dict[int, int] = {}
    for index, message in enumerate(run.messages):
        if not message.sent_at:
            continue
        session_id = run.sessions[message.session].session_id
        ids = rows.get((session_id, message.text), [])
        if not ids:
            lost += 1
        else:
            first_row[index] = min(ids)
            duplicated += len(ids) - 1
            if len(ids) > 1 and message.failures:
                after_retry += 1
        if stores.tracker_user_texts[(session_id, message.text)] == 0:
            # a turn Rasa did not finish in time is answered by the engine alone and never reaches the tracker
            if (session_id, message.text) in stores.engine_alone:
                degraded += 1
            else:
                tracker_missing += 1
    expected_rows = {(run.sessions[m.session].session_id, m.text) for m in sent}
    strangers = sum(len(ids) for key, ids in rows.items() if key not in expected_rows)
    out_of_order = 0
    for session in run.sessions:
        mine = [i for i in session.messages if i in first_row and run.messages[i].answered_at is not None]
        for a in mine:
            for b in mine:
                # the client had a's answer before it sent b: a's turn must be stored before b's
                answered_a = run.messages[a].answered_at or 0.0
                if answered_a < run.messages[b].sent_at and first_row[a] > first_row[b]:
                    out_of_order += 1
    if strangers:
        verdict.fail(f"{strangers} turn rows match no message a client sent")
    if after_retry:
        verdict.say(f"  of the duplicated: {after_retry} messages stored twice after a retry (their instance had "
                    "stored the turn before it died, and the retry's message_id was not recognised)")
    in_tracker = len(sent) - tracker_missing - degraded
    verdict.say(f"Rasa's tracker store: {in_tracker} of {len(sent)} sent messages recorded"
                + (f"; {degraded} answered by the engine alone (Rasa timed out or failed: VNA_DIALOGUE_TIMEOUT_S), "
                   "so not in the tracker" if degraded else "")
                + (f"; {tracker_missing} MISSING though Rasa answered them (lost from the tracker: a concurrent turn's "
                   "save, or a failed one)" if tracker_missing else ""))
    if degraded > 0.05 * len(sent):
        verdict.fail(f"{degraded} of {len(sent)} messages were answered without Rasa (more than 5 %)")
    if tracker_missing:
        verdict.fail(f"{tracker_missing} messages missing from Rasa's tracker store")
    return {"sent": len(sent), "answered": len(answered), "lost": lost, "duplicated": duplicated,
            "out_of_order": out_of_order}


# ------------------------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("VNA_DATA_DIR", ROOT / "var")),
                        help="where the built index and Rasa model are (default $VNA_DATA_DIR or var/); copied, "
                             "never written")
    parser.add_argument("--postgres", default=os.environ.get("VNA_SCALE_POSTGRES_URL",
                                                             "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"),
                        help="an administrator's URL: the run's database is created and dropped through it")
    parser.add_argument("--redis", default=os.environ.get("VNA_SCALE_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--amqp", default=os.environ.get("VNA_SCALE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=6, help="messages per conversation (≥ 4: one pair at once)")
    parser.add_argument("--pause", default="2-5", help="seconds a client pauses between messages (A-B, random)")
    parser.add_argument("--before-kill", type=float, default=20, help="seconds of load before the kill")
    parser.add_argument("--after-restart", type=float, default=15,
                        help="seconds of load after the killed instance serves again")
    parser.add_argument("--retry-for", type=float, default=120, help="how long a client retries a request")
    parser.add_argument("--start-timeout", type=float, default=600, help="seconds an instance may take to start")
    parser.add_argument("--no-start-services", action="store_true", help="never start PostgreSQL/Redis/RabbitMQ")
    parser.add_argument("--keep", action="store_true", help="keep the database, queues and logs afterwards")
    args = parser.parse_args()
    if args.messages < 4:
        parser.error("--messages must be at least 4 (a conversation has one pair of messages sent at once)")
    low, _, high = args.pause.partition("-")
    pause = (float(low), float(high or low))

    run_id = f"{os.getpid()}"
    run_dir = Path(tempfile.mkdtemp(prefix=f"vnassist-scale-{run_id}-"))
    log_dir = run_dir / "logs"
    log_dir.mkdir()
    verdict = Verdict()
    processes: list[Process] = []
    broker: Broker | None = None
    db_url = None
    admin = None
    try:
        # --- services --------------------------------------------------------------------------------------
        haproxy = haproxy_path()
        if haproxy is None:
            raise SystemExit("scale check: haproxy is not installed (bash scripts/system-deps.sh, or apt-get install "
                             "haproxy)")
        ensure_service("PostgreSQL", args.postgres, 5432, not args.no_start_services)
        ensure_service("Redis", args.redis, 6379, not args.no_start_services)
        ensure_service("RabbitMQ", args.amqp, 5672, not args.no_start_services)
        source = args.data_dir.resolve()
        if not (source / "index" / "manifest.json").exists():
            raise SystemExit(f"scale check: no built index in {source / 'index'} (python -m bot build-index)")

        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        database = f"vnassist_scale_{run_id}"
        admin = create_engine(args.postgres, future=True, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        db_url = make_url(args.postgres).set(database=database).render_as_string(hide_password=False)
        unsupported = broker_supported()
        queue = f"vnassist.scale.{run_id}"
        if unsupported is None:
            broker = Broker(args.amqp, queue)
            asyncio.run(broker.declare())
        else:
            verdict.fail(f"no event broker in this checkout: {unsupported}")

        # --- the instances' environment --------------------------------------------------------------------
        env = {k: v for k, v in os.environ.items() if not k.startswith("VNA_")}
        env.update(BENCH_LIMITS)
        for name in ("VNA_PROCEDURE_DOMAINS", "VNA_CACHE_DIR", "VNA_EMBEDDING_MODEL", "VNA_KNOWLEDGE_DIR"):
            if name in os.environ:  # what the index was built with (tests build a small one)
                env[name] = os.environ[name]
        env.update({
            "VNA_DATABASE_URL": db_url, "VNA_TRACKER_STORE_URL": db_url,
            "VNA_REDIS_URL": args.redis, "VNA_REDIS_KEY_PREFIX": f"scale{run_id}",
            "VNA_EVENT_BROKER_URL": args.amqp, "VNA_EVENT_BROKER_QUEUE": queue,
            "VNA_SECRET_KEY": secrets.token_urlsafe(32), "VNA_DIALOGUE": "true", "VNA_CALLBOT": "false",
            "VNA_TRUSTED_PROXIES": '["127.0.0.1"]', "VNA_RETENTION_INTERVAL_S": "0", "VNA_LOG_LEVEL": "WARNING",
        })
        # Both instances share one data folder of the run's own: a copy of the built index and Rasa model of
        # --data-dir (which is never written), then the preparation every deployment runs once before its instances
        # (vnassist-prepare.service): migrations, and the index or model rebuilt there only if they are stale.
        instance_dir = run_dir / "data"
        shutil.copytree(source / "index", instance_dir / "index")
        if (source / "models").is_dir():
            shutil.copytree(source / "models", instance_dir / "models", ignore=shutil.ignore_patterns("building"))
        env["VNA_DATA_DIR"] = str(instance_dir)
        log("preparing (migrations; index and Rasa model rebuilt only if stale)")
        started = time.monotonic()
        prepare = Process("prepare", [sys.executable, "-c", "from bot.prepare import prepare_shared; prepare_shared()"],
                          env, log_dir)
        processes.append(prepare)
        prepare.start()
        assert prepare.popen is not None
        if prepare.popen.wait() != 0:
            raise RuntimeError(f"the preparation failed:\n{prepare.tail(20)}")
        log(f"prepared in {time.monotonic() - started:.0f} s")
        empty_size = database_size(db_url)  # the schema, before any conversation

        # --- start everything ------------------------------------------------------------------------------
        ports = {"app1": _free_port(), "app2": _free_port(), "lb": _free_port()}
        consumer = Process("kpi-consumer", [sys.executable, "-m", "bot", "kpi-consumer"], env, log_dir)
        apps = {name: Process(name, [sys.executable, "-m", "bot", "serve", "--port", str(ports[name])], env, log_dir)
                for name in ("app1", "app2")}
        config = HAPROXY_CFG
        if os.geteuid() != 0:  # haproxy can only change its user when started as root
            config = run_dir / "haproxy.cfg"
            config.write_text(re.sub(r"(?m)^\s*(user|group)\s.*\n", "", HAPROXY_CFG.read_text()), encoding="utf-8")
        lb = Process("haproxy", [haproxy, "-f", str(config), "-db"],
                     {**os.environ, "VNA_LB_BIND": f"127.0.0.1:{ports['lb']}",
                      "VNA_APP1": f"127.0.0.1:{ports['app1']}", "VNA_APP2": f"127.0.0.1:{ports['app2']}"}, log_dir)
        processes += [consumer, *apps.values(), lb]
        if broker is not None:
            consumer.start()
        started = time.monotonic()
        for app in apps.values():
            app.start()
        lb.start()
        health = {name: wait_healthy(f"http://127.0.0.1:{ports[name]}", app, args.start_timeout)
                  for name, app in apps.items()}
        log(f"both instances healthy after {time.monotonic() - started:.0f} s")
        base = f"http://127.0.0.1:{ports['lb']}"
        seen: set[str] = set()
        deadline = time.time() + 30
        while not {"app1", "app2"} <= seen:
            if time.time() > deadline or not lb.alive():
                raise RuntimeError(f"haproxy does not reach both instances (saw {sorted(seen)}):\n{lb.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                seen.add(httpx.get(f"{base}/health", timeout=3).headers.get("x-vnassist-instance", "?"))
            time.sleep(0.5)
        if broker is not None and not consumer.alive():
            verdict.fail(f"the KPI consumer exited at start:\n{consumer.tail(6)}")
        for name, state in health.items():
            dialogue = state.get("dialogue", {}).get("status")
            if dialogue != "ok":
                verdict.fail(f"{name}'s dialogue layer is {dialogue!r} at start: {state.get('dialogue')}")

        # --- the load, the kill and the restart ------------------------------------------------------------
        questions = procedure_questions()
        run = asyncio.run(drive(args, base, ports, apps, consumer, questions, pause, verdict, database))

        # --- the stores ------------------------------------------------------------------------------------
        published: list[dict] = []
        counts = None
        if broker is not None:
            drained = wait_drained(broker, db_url, consumer, timeout=120)
            if not drained:
                verdict.fail(f"the consumer did not drain the queue:\n{consumer.tail()}")
            consumer.stop()
            counts = consumer_counts(consumer.output())
            published = asyncio.run(broker.published())
        for app in apps.values():
            app.stop()
        stores = read_stores(db_url)
        replayed = sum(app.output().count(REPLAY_LOG_LINE) for app in apps.values())
        report(run, stores, check(run, stores, verdict), published, counts, verdict, empty_size, replayed)
    except (RuntimeError, SystemExit) as exc:
        message = str(exc)
        print(message, file=sys.stderr)
        verdict.fail(message.splitlines()[0] if message else type(exc).__name__)
    finally:
        for process in reversed(processes):
            process.stop()
        if broker is not None and not args.keep:
            with contextlib.suppress(Exception):
                asyncio.run(broker.delete())
        if admin is not None:
            if db_url and not args.keep:
                with contextlib.suppress(Exception), admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(db_url).database}" WITH (FORCE)'))
            admin.dispose()
        if verdict.problems or args.keep:
            log(f"logs kept in {log_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)

    for line in verdict.lines:
        print(line)
    for problem in verdict.problems:
        print(f"PROBLEM: {problem}")
    print(verdict.last)
    return 1 if verdict.problems else 0


async def drive(args: argparse.Namespace, base: str, ports: dict[str, int], apps: dict[str, Process],
                consumer: Process, questions: list[str], pause: tuple[float, float], verdict: Verdict,
                database: str) -> Run:
    run = Run()
    began = time.monotonic()
    peak = 0

    async def count_connections() -> None:  # what PostgreSQL sees of two instances and the consumer
        nonlocal peak
        while not run.stop.is_set():
            with contextlib.suppress(Exception):
                peak = max(peak, await asyncio.to_thread(connections, args.postgres, database))
            await asyncio.sleep(2)

    sampler = asyncio.create_task(count_connections())
    clients = [asyncio.create_task(client_loop(run, base, c, questions, args.messages, pause, args.retry_for))
               for c in range(args.clients)]
    victim = apps["app2"]
    await asyncio.sleep(args.before_kill)

    def awaiting() -> int:
        return sum(1 for m in run.messages if m.sent_at and m.answered_at is None and m.error is None)

    # kill while requests are in flight (up to 15 s more), so some are cut off as a real crash would cut them
    patience = time.monotonic() + 15
    while awaiting() < 3 and time.monotonic() < patience:
        await asyncio.sleep(0.02)
    in_flight = awaiting()
    victim.kill()
    killed_at = time.monotonic()
    log(f"app2 killed with SIGKILL after {killed_at - began:.0f} s of load ({in_flight} messages awaiting an answer)")
    victim.start()
    back = await asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{ports['app2']}", victim, args.start_timeout)
    healthy_at = time.monotonic()
    log(f"app2 healthy again {healthy_at - killed_at:.0f} s after the kill")
    if back.get("dialogue", {}).get("status") != "ok":
        verdict.fail(f"app2's dialogue layer is {back.get('dialogue')} after the restart")
    # the restarted instance must take its share again before the run ends
    deadline = time.monotonic() + 60
    while sum(1 for at, name in run.served if name == "app2" and at > healthy_at) < 5:
        if time.monotonic() > deadline:
            verdict.fail("app2 served no requests within a minute of its restart")
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(args.after_restart)
    memory = {name: app.rss() for name, app in apps.items()} | {"kpi-consumer": consumer.rss()}
    run.stop.set()
    log("load stopping: clients finish their conversations")
    await asyncio.gather(*clients, sampler)
    for name in apps:  # turns Rasa did not finish (timed out, failed) were answered by the engine alone
        with contextlib.suppress(httpx.HTTPError, ValueError):
            dialogue = httpx.get(f"http://127.0.0.1:{ports[name]}/health", timeout=5).json().get("dialogue", {})
            failure = f" (last failure: {dialogue.get('last_failure')})" if dialogue.get("degraded_turns") else ""
            verdict.say(f"{name}'s dialogue layer: {dialogue.get('status')}, {dialogue.get('turns')} turns, "
                        f"{dialogue.get('degraded_turns')} answered by the engine alone{failure}")
    served_after = sum(1 for at, name in run.served if name == "app2" and at > healthy_at)
    verdict.say(f"load: {args.clients} clients, {time.monotonic() - began:.0f} s; app2 SIGKILLed after "
                f"{killed_at - began:.0f} s with {in_flight} messages awaiting an answer, healthy again "
                f"{healthy_at - killed_at:.0f} s later, then served {served_after} requests; at most {peak} "
                "PostgreSQL connections open to the run's database")
    verdict.say("RSS under load: " + ", ".join(f"{name} {rss / 2**20:.0f} MiB" for name, rss in memory.items()))
    return run


def wait_drained(broker: Broker, db_url: str, consumer: Process, timeout: float) -> bool:
    """The consumer has taken every event off the queue and the turn rows stopped changing."""
    deadline = time.time() + timeout
    last, stable = -1, 0
    while time.time() < deadline:
        if not consumer.alive():
            return False
        depth = asyncio.run(broker.depth())
        count = turn_count(db_url)
        stable = stable + 1 if depth == 0 and count == last else 0
        if stable >= 3:
            return True
        last = count
        time.sleep(1)
    return False


def report(run: Run, stores: Stores, figures: dict[str, int], published: list[dict], counts: dict[str, int] | None,
           verdict: Verdict, empty_size: int, replayed: int) -> None:
    sessions = [s for s in run.sessions if s.session_id]
    if len(sessions) < len(run.sessions):
        verdict.fail(f"{len(run.sessions) - len(sessions)} conversations got no session id from POST /api/session: "
                     f"{Counter(s.rating_error for s in run.sessions if not s.session_id).most_common(3)}")
    both = sum(1 for s in sessions if len({run.messages[i].instance for i in s.messages} - {None}) == 2)
    pairs = sum(1 for s in sessions if len(s.messages) >= 4)
    retried = [m for m in run.messages if m.failures]
    verdict.say(f"conversations: {len(sessions)} ({both} answered by both instances), {pairs} pairs of messages "
                f"sent at the same moment, {run.requests} requests")
    verdict.say(f"requests without an answer, retried by the client: {run.failed_attempts} "
                f"({len(retried)} messages: {dict(Counter(f for m in retried for f in m.failures))}); "
                f"{replayed} retries answered from their first attempt (stored before its instance died)")
    unanswered = [m for m in run.messages if m.sent_at and m.answered_at is None]
    for message in unanswered[:5]:
        verdict.say(f"  not answered: {message.error}")
    if stores.turns:
        grown = stores.database_bytes - empty_size
        verdict.say(f"PostgreSQL: the database grew {grown / 2**20:.1f} MiB for {len(stores.turns)} turns "
                    f"({grown / len(stores.turns) / 1024:.1f} KiB a turn, indexes included) and "
                    f"{stores.tracker_events} Rasa events ({stores.tracker_events / len(stores.turns):.1f} a turn)")
    rated = [s for s in sessions if s.rating_status == 200]
    stored = sum(1 for s in rated if stores.ratings.get(s.session_id or "") == s.score)
    refused = Counter(s.rating_error for s in sessions if s.score and s.rating_status != 200)
    if refused:
        verdict.say(f"ratings not accepted: {dict(refused)}")
        verdict.fail(f"{sum(refused.values())} ratings were not accepted")
    if counts is not None:
        kinds = Counter(e.get("type") for e in published)
        distinct = len({e.get("event_id") for e in published})
        consumed = counts["applied"] + counts["duplicates"]
        verdict.say(f"events: {len(published)} published ({distinct} distinct; {dict(kinds)}), consumer applied "
                    f"{counts['applied']}, found {counts['duplicates']} already applied, dead-lettered "
                    f"{counts['dead_lettered']}; turn rows {len(stores.turns)}, handoff tickets {stores.handoffs}")
        if counts["dead_lettered"]:
            verdict.fail(f"{counts['dead_lettered']} events dead-lettered")
        turn_events = len({e.get("event_id") for e in published if e.get("type") == "turn"})
        if stores.turns and not turn_events:
            verdict.fail("the instances published no turn events (their store wrote every turn directly)")
        elif len(stores.turns) > turn_events:
            verdict.say(f"  {len(stores.turns) - turn_events} turn rows were written directly, not through the "
                        "broker (the publisher's fallback when the broker is slow or down)")
        events = (distinct, consumed)
    else:
        if published or run.messages:
            verdict.fail("no count from the KPI consumer (it did not run or did not exit cleanly)")
        events = (len({e.get('event_id') for e in published}), 0)
    f = figures
    if f["sent"] != f["answered"] or f["lost"] or f["duplicated"] or f["out_of_order"]:
        verdict.fail("messages lost, duplicated, out of order or not answered")
    if len(rated) != stored:
        verdict.fail(f"{len(rated) - stored} accepted ratings are not stored with their score")
    if events[0] != events[1]:
        verdict.fail(f"events published {events[0]} vs consumed {events[1]}")
    verdict.last = (f"scale check: sent {f['sent']}, answered {f['answered']}, lost {f['lost']}, duplicated "
                f"{f['duplicated']}, out-of-order {f['out_of_order']}, ratings {len(rated)} stored {stored}, "
                f"events {events[0]} consumed {events[1]}")


if __name__ == "__main__":
    sys.exit(main())
