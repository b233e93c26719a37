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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
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
    args = parser.parse_args()

    env = dict(os.environ, **BENCH_LIMITS)
    build = None if args.skip_build else measure_build(env)

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
