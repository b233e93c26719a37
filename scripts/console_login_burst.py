"""Measure the console's sign-in under a burst: N simultaneous wrong passwords against one account.

Against a running server (`python -m bot serve`), from this machine (GET /metrics answers loopback clients):

    python scripts/console_login_burst.py --url http://127.0.0.1:8000 --username burst-test \
        --password-stdin --pid <server pid> [--burst 16]

It sends the burst from 127.0.0.1, then the right password from 127.0.0.1 (blocked) and from 127.0.0.2 (a
different address: must sign in), and prints one JSON object: the status of each request, how many argon2
verifications the server ran (vna_console_password_verifications_total before/after), and the server's resident
memory (VmRSS) before and after and its peak (VmHWM) from /proc/<pid>/status. The account must exist
(`python -m bot staff add burst-test --role viewer`) and have no recent failures.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

LOGIN_COOKIE = "vna_console_login"


def memory(pid: int | None) -> dict:
    if not pid:
        return {}
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) // 1024 for key in ("VmRSS", "VmHWM")}


def verifications(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    found = re.search(r"^vna_console_password_verifications_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else float("nan")


def form_token(http: httpx.Client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', http.get("/console/login").text).group(1)


def sign_in(url: str, username: str, password: str, local_address: str) -> int:
    transport = httpx.HTTPTransport(local_address=local_address)
    with httpx.Client(base_url=url, timeout=120, transport=transport) as http:
        token = form_token(http)
        return http.post("/console/login", data={"username": username, "password": password, "csrf_token": token},
                         headers={"Cookie": f"{LOGIN_COOKIE}={token}"}).status_code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-stdin", action="store_true", help="read the right password from stdin")
    parser.add_argument("--pid", type=int, help="the server's process id, for its memory")
    parser.add_argument("--burst", type=int, default=16)
    args = parser.parse_args()
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None

    with httpx.Client(base_url=args.url, timeout=120) as http:
        token = form_token(http)
        before = verifications(http)
    mem_before = memory(args.pid)
    form = {"username": args.username, "password": "doan-bua-mat-khau-sai", "csrf_token": token}
    barrier = threading.Barrier(args.burst)

    def attacker(_n: int) -> int:
        with httpx.Client(base_url=args.url, timeout=120) as client:
            barrier.wait()
            return client.post("/console/login", data=form, headers={"Cookie": f"{LOGIN_COOKIE}={token}"}).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(args.burst) as pool:
        statuses = list(pool.map(attacker, range(args.burst)))
    elapsed = time.perf_counter() - started
    with httpx.Client(base_url=args.url, timeout=120) as http:
        after = verifications(http)
    result = {
        "burst": args.burst, "seconds": round(elapsed, 2),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "verifications": after - before, "memory_mb_before": mem_before, "memory_mb_after": memory(args.pid),
    }
    if password is not None:
        result["right_password_same_address"] = sign_in(args.url, args.username, password, "127.0.0.1")
        result["right_password_other_address"] = sign_in(args.url, args.username, password, "127.0.0.2")
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
