"""Same-machine A/B of the serving path: start `serve` from a checkout, send sequential questions, report latency and
the server's own CPU time per request (comparable between checkouts even when the machine is loaded).

    git worktree add /tmp/old <commit> && ln -s "$PWD/.venv" /tmp/old/.venv
    (cd /tmp/old && VNA_DIALOGUE=false .venv/bin/python -m bot build-index && .venv/bin/python -m bot train)
    for i in 1 2; do for root in /tmp/old .; do .venv/bin/python scripts/ab_serve.py "$root" 200; done; done

Each run starts its own server (its own var/ folder, index and Rasa model), warms it with 10 questions, then sends
``n`` development questions from one keep-alive client, a new session every 8.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from benchmark import BENCH_LIMITS, _questions, wait_healthy  # scripts/benchmark.py


def main() -> int:
    root = Path(sys.argv[1]).resolve()
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    dialogue = os.environ.get("VNA_DIALOGUE", "true")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, **BENCH_LIMITS, VNA_DIALOGUE=dialogue)
    server = subprocess.Popen([str(root / ".venv/bin/python"), "-m", "bot", "serve", "--port", str(port)], cwd=root,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        questions = _questions()
        run = time.time_ns() % 10**6
        with httpx.Client(timeout=60) as client:
            for i in range(10):
                client.post(f"{url}/api/chat", json={"session_id": f"ab-warm-{run}-{i}", "text": questions[i]})
            proc = psutil.Process(server.pid)
            before = proc.cpu_times()
            latencies = []
            for i in range(n):
                started = time.perf_counter()
                r = client.post(f"{url}/api/chat", json={"session_id": f"ab-{run}-{i // 8}",
                                                         "text": questions[(i * 7) % len(questions)]})
                latencies.append((time.perf_counter() - started) * 1000)
                r.raise_for_status()
            after = proc.cpu_times()
    finally:
        server.terminate()
        server.wait(30)
    cpu_ms = ((after.user - before.user) + (after.system - before.system)) * 1000 / n
    latencies.sort()
    print(f"{root} dialogue={dialogue} n={n} p50={statistics.median(latencies):.1f} ms "
          f"p95={latencies[int(0.95 * (n - 1))]:.1f} ms cpu/request={cpu_ms:.1f} ms load={os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
