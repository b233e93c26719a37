"""Benchmark POST /api/chat under 1, 20 and 50 concurrent clients, plus a full index build.

Starts `python -m bot serve` on a free port (or uses --url), sends the development questions in closed loops
(each client waits for its answer before sending the next, a new session every 8 questions), and reports
p50/p95 latency, throughput and the server's peak RSS. The load generator runs on the same 2-core machine and
takes some of its CPU: figures are conservative for a server with the machine to itself.

Two ways for a client to behave (--pauses): "0" sends the next question the moment the answer arrives, so N
clients keep N requests in flight all the time (saturation: what the server can take); "A-B" makes each
client pause a random A to B seconds between an answer and its next question (the same seeds every run), as
a citizen reading the answer and typing the next message does, far faster than one really types.

    .venv/bin/python scripts/benchmark.py --pauses 0,1-4 --report docs/benchmarks.md

One instance against two (--instances 1,2): in the same run, first one `serve` instance, then two, each time behind
haproxy with deploy/haproxy.cfg (one instance: both of its server lines point at it, so the path is the same) and on
the shared stores of a scaled deployment (a fresh PostgreSQL database for VNA_DATABASE_URL and VNA_TRACKER_STORE_URL,
VNA_REDIS_URL, one VNA_SECRET_KEY; --postgres and --redis say where). It reports throughput, p50 and p95 for each,
the ratio of two to one, and each instance's memory. Both instances share the machine with the load generator.

    .venv/bin/python scripts/benchmark.py --instances 1,2 --levels 20 --pauses 0 --skip-build
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

# The benchmark measures the assistant, not the abuse limits: its clients come from one address and send as fast as
# they are answered, so the servers it starts get explicit, generous limits (docs/security.md).
BENCH_LIMITS = {"VNA_RATE_LIMIT_SESSION": "1000000/minute", "VNA_RATE_LIMIT_ADDRESS": "100000000/minute",
                "VNA_RATE_LIMIT_CHANNEL_USER": "1000000/minute", "VNA_RATE_LIMIT_RATING": "1000000/minute"}
ROOT = Path(__file__).resolve().parent.parent
SESSION_TURNS = 8
RUN = f"{os.getpid()}-{int(time.time())}"


def _questions() -> list[str]:
    out = []
    for name in ("procedure_questions.jsonl", "plan_questions.jsonl", "out_of_scope.jsonl"):
        path = ROOT / "eval" / "devset" / name
        if path.exists():
            out += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RssSampler(threading.Thread):
    """Peak resident memory of the server process (and its children), sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def current(self) -> int:
        procs = [self.proc, *self.proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running())

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, self.current())
            except psutil.Error:
                return
            time.sleep(0.1)


def _pause_range(spec: str) -> tuple[float, float]:
    low, _, high = spec.partition("-")
    return float(low), float(high or low)


async def _client(client: httpx.AsyncClient, url: str, cid: int, questions: list[str], deadline: float,
                  per_client: int, latencies: list[float], errors: list[str], pause: tuple[float, float]) -> None:
    rng = random.Random(cid)
    for i in range(per_client):
        if time.perf_counter() > deadline:
            return
        if i and pause[1] > 0:
            await asyncio.sleep(rng.uniform(*pause))
        text = questions[(cid * 7 + i) % len(questions)]
        started = time.perf_counter()
        try:
            # a conversation lasts SESSION_TURNS questions, then the client starts a new one (as citizens do; a
            # session of hundreds of turns would only measure how Rasa's tracker grows)
            session = f"bench-{RUN}-{cid}-{i // SESSION_TURNS}"
            r = await client.post(f"{url}/api/chat", json={"session_id": session, "text": text})
            if r.status_code != 200:
                errors.append(f"HTTP {r.status_code}")
                continue
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
            continue
        latencies.append((time.perf_counter() - started) * 1000)


async def run_level(url: str, concurrency: int, questions: list[str], requests: int, max_seconds: float,
                    pause: tuple[float, float] = (0.0, 0.0)) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    per_client = max(1, requests // concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        # warm-up: every connection once, not measured
        await asyncio.gather(*(client.post(f"{url}/api/chat", json={"session_id": f"warm-{c}", "text": "xin chào"})
                               for c in range(concurrency)))
        started = time.perf_counter()
        deadline = started + max_seconds
        await asyncio.gather(*(_client(client, url, c, questions, deadline, per_client, latencies, errors, pause)
                               for c in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))] if latencies else 0.0

    return {"concurrency": concurrency, "pause": pause, "requests": len(latencies), "errors": len(errors),
            "p50_ms": pct(0.5), "p95_ms": pct(0.95), "throughput_rps": len(latencies) / elapsed if elapsed else 0.0}


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float = 900) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("server did not become healthy")


def measure_build(env: dict[str, str]) -> dict:
    """A full index build (all procedures + plan passages) into a fresh folder; the embedding model itself
    is built once per machine and cached, so it is not part of this figure."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "bot", "build-index"], cwd=ROOT, check=True, capture_output=True,
                             text=True, env=env | {"VNA_INDEX_DIR": str(Path(tmp) / "index")})
        wall = time.perf_counter() - started
    manifest = json.loads(out.stdout)
    return {"wall_seconds": wall, "documents": manifest["documents"], "procedures": manifest["procedures"],
            "plan_passages": manifest["plan_passages"]}


class Instances:
    """``count`` serving instances behind haproxy (deploy/haproxy.cfg) on a fresh PostgreSQL database."""

    def __init__(self, count: int, env: dict[str, str], postgres: str, redis: str) -> None:
        import secrets

        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        if count not in (1, 2):
            raise SystemExit("--instances: 1 or 2 (deploy/haproxy.cfg has two server lines)")
        self.count = count
        self.database = f"vnassist_bench_{RUN.replace('-', '_')}_{count}"
        self.admin = create_engine(postgres, future=True, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        url = make_url(postgres).set(database=self.database).render_as_string(hide_password=False)
        self.env = dict(env, VNA_DATABASE_URL=url, VNA_TRACKER_STORE_URL=url, VNA_REDIS_URL=redis,
                        VNA_REDIS_KEY_PREFIX=f"bench{RUN.replace('-', '')}{count}",
                        VNA_SECRET_KEY=secrets.token_urlsafe(32), VNA_CALLBOT="false",
                        VNA_TRUSTED_PROXIES='["127.0.0.1"]')
        self.procs: list[subprocess.Popen] = []
        self.samplers: list[RssSampler] = []
        self.idle_rss: list[int] = []
        self.url = ""

    def __enter__(self) -> Instances:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        haproxy = haproxy_path()
        if haproxy is None:
            raise SystemExit("--instances needs haproxy (bash scripts/system-deps.sh, or apt-get install haproxy)")
        # what every deployment does once before its instances start: migrations, index and model if stale
        subprocess.run([sys.executable, "-c", "from bot.prepare import prepare_shared; prepare_shared()"], cwd=ROOT,
                       env=self.env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ports = [_free_port() for _ in range(self.count)]
        for port in ports:
            self.procs.append(subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], cwd=ROOT,
                                               env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                               start_new_session=True))
        for port, proc in zip(ports, self.procs, strict=True):
            wait_healthy(f"http://127.0.0.1:{port}", proc)
        lb_port = _free_port()
        config = ROOT / "deploy" / "haproxy.cfg"
        if os.geteuid() != 0:  # only root may change user: run as the caller instead
            import re

            copy = Path(tempfile.mkdtemp()) / "haproxy.cfg"
            copy.write_text(re.sub(r"(?m)^\s*(user|group)\s.*\n", "", config.read_text()), encoding="utf-8")
            config = copy
        servers = [f"127.0.0.1:{p}" for p in ports] * (2 // self.count)
        self.procs.append(subprocess.Popen([haproxy, "-f", str(config), "-db"], env=dict(
            os.environ, VNA_LB_BIND=f"127.0.0.1:{lb_port}", VNA_APP1=servers[0], VNA_APP2=servers[1]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        self.url = f"http://127.0.0.1:{lb_port}"
        deadline = time.time() + 30
        while True:  # haproxy sends nothing to an instance until two health checks passed
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            if time.time() > deadline:
                raise SystemExit("haproxy did not reach the instances")
            time.sleep(0.5)
        time.sleep(5)  # every server line up (rise 2, inter 2 s)
        self.samplers = [RssSampler(p.pid) for p in self.procs[: self.count]]
        self.idle_rss = [s.current() for s in self.samplers]
        for sampler in self.samplers:
            sampler.start()

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import text

        for sampler in self.samplers:
            sampler.running = False
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        self.admin.dispose()


def compare_instances(args: argparse.Namespace, env: dict[str, str]) -> str:
    """One instance, then two, behind haproxy, the same levels and pauses: the table, the ratio, the memory."""
    questions = _questions()
    rows, memory = [], []
    for count in (int(n) for n in args.instances.split(",")):
        with Instances(count, env, args.postgres, args.redis) as group:
            for p in args.pauses.split(","):
                for c in args.levels.split(","):
                    row = asyncio.run(run_level(group.url, int(c), questions, args.requests, args.max_seconds,
                                                _pause_range(p)))
                    rows.append(row | {"instances": count})
            memory.append((count, group.idle_rss, [s.peak for s in group.samplers]))
    lines = ["| instances | concurrent clients | pause between questions | requests | errors | p50 (ms) | p95 (ms) "
             "| throughput (req/s) |", "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        low, high = r["pause"]
        pause = "none (saturation)" if high == 0 else f"{low:g}–{high:g} s"
        lines.append(f"| {r['instances']} | {r['concurrency']} | {pause} | {r['requests']} | {r['errors']} "
                     f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['throughput_rps']:.1f} |")
    lines.append("")
    base = {(r["concurrency"], r["pause"]): r for r in rows if r["instances"] == 1}
    for r in rows:
        one = base.get((r["concurrency"], r["pause"]))
        if r["instances"] > 1 and one and one["throughput_rps"] and one["p50_ms"]:
            pause = "no pause" if r["pause"][1] == 0 else f"pausing {r['pause'][0]:g}–{r['pause'][1]:g} s"
            lines.append(f"{r['instances']} instances / 1 at {r['concurrency']} clients, {pause}: "
                         f"throughput ×{r['throughput_rps'] / one['throughput_rps']:.2f}, "
                         f"p50 ×{r['p50_ms'] / one['p50_ms']:.2f}, p95 ×{r['p95_ms'] / max(one['p95_ms'], 1e-9):.2f}.")
    for count, idle, peak in memory:
        each = ", ".join(f"{i / 2**20:.0f} / {p / 2**20:.0f}" for i, p in zip(idle, peak, strict=True))
        lines.append(f"RSS with {count} instance{'s' if count > 1 else ''} (after start-up / peak, MiB, each): {each}.")
    lines.append(f"Behind haproxy {haproxy_version()} with deploy/haproxy.cfg; PostgreSQL for both stores, Redis; "
                 f"{len(questions)} distinct questions from eval/devset, a new session every {SESSION_TURNS} questions "
                 f"of a client; load generator on the same machine ({len(os.sched_getaffinity(0))} CPUs).")
    return "\n".join(lines)


def haproxy_path() -> str | None:
    """Debian's haproxy (in /usr/sbin, which is not on every user's PATH)."""
    import shutil

    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def haproxy_version() -> str:
    haproxy = haproxy_path()
    if haproxy is None:
        return "?"
    out = subprocess.run([haproxy, "-v"], capture_output=True, text=True).stdout.split()
    return out[2] if len(out) > 2 else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="benchmark a running server instead of starting one")
    parser.add_argument("--levels", default="1,20,50")
    parser.add_argument("--pauses", default="0",
                        help="comma-separated pauses between a client's answer and its next question: 0 or A-B "
                             "seconds (random, seeded); every level runs with every pause")
    parser.add_argument("--requests", type=int, default=600, help="requests per level (closed loop)")
    parser.add_argument("--max-seconds", type=float, default=90, help="stop a level after this long")
    parser.add_argument("--skip-build", action="store_true", help="do not measure the full index build")
    parser.add_argument("--report", help="write the markdown section to this file")
    parser.add_argument("--workers", type=int, default=0, help="server worker processes (default: the server's own)")
    parser.add_argument("--instances", help="compare N serving instances behind haproxy, e.g. 1,2 (see above)")
    parser.add_argument("--postgres", default=os.environ.get("VNA_BENCH_POSTGRES_URL",
                                                             "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"),
                        help="with --instances: an administrator's URL; a database per count is created and dropped")
    parser.add_argument("--redis", default=os.environ.get("VNA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                        help="with --instances: the instances' VNA_REDIS_URL")
    args = parser.parse_args()
    if args.instances and (args.url or args.workers):
        parser.error("--instances starts its own instances: not with --url or --workers")

    env = dict(os.environ, **BENCH_LIMITS)
    build = None if args.skip_build else measure_build(env)
    if args.instances:
        table = compare_instances(args, env)
        if build:
            table += (f"\nFull index build ({build['procedures']} procedures + {build['plan_passages']} plan passages):"
                      f" {build['wall_seconds']:.0f} s wall-clock.")
        print(table)
        if args.report:
            Path(args.report).write_text(table + "\n", encoding="utf-8")
        return 0

    proc = None
    url = args.url
    if not url:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "bot", "serve", "--port", str(port)]
        if args.workers:
            command += ["--workers", str(args.workers)]
        proc = subprocess.Popen(command, cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(url, proc)
        sampler = RssSampler(proc.pid) if proc else None
        if sampler:
            sampler.start()
        idle_rss = sampler.current() if sampler else 0
        questions = _questions()
        rows = [asyncio.run(run_level(url, int(c), questions, args.requests, args.max_seconds, _pause_range(p)))
                for p in args.pauses.split(",") for c in args.levels.split(",")]
        if sampler:
            sampler.running = False
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)

    lines = [
        "| concurrent clients | pause between questions | requests | errors | p50 (ms) | p95 (ms) | throughput (req/s) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        low, high = r["pause"]
        pause = "none (saturation)" if high == 0 else f"{low:g}–{high:g} s"
        lines.append(f"| {r['concurrency']} | {pause} | {r['requests']} | {r['errors']} | {r['p50_ms']:.1f} "
                     f"| {r['p95_ms']:.1f} | {r['throughput_rps']:.1f} |")
    lines.append("")
    if proc:
        lines.append(f"Server RSS: {idle_rss / 2**20:.0f} MiB after start-up, peak {sampler.peak / 2**20:.0f} MiB "
                     "under load.")
    if build:
        lines.append(f"Full index build ({build['procedures']} procedures + {build['plan_passages']} plan passages = "
                     f"{build['documents']} documents): {build['wall_seconds']:.0f} s wall-clock, including process "
                     "start-up and model load.")
    lines.append(f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, "
                 f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}; "
                 f"{len(questions)} distinct questions from eval/devset, a new session every {SESSION_TURNS} questions "
                 "of a client.")
    table = "\n".join(lines)
    print(table)
    if args.report:
        Path(args.report).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
