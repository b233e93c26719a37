"""Benchmark the chat channels: webhook acknowledgement and delivery time under concurrent citizens.

Starts `python -m bot serve` with Telegram and Zalo configured against local servers that speak the platforms'
contracts (tests/channel_peers.py, run in this process), then N simulated citizens per channel each send the
development questions one at a time through the signed webhook and wait for the reply to reach the platform
(closed loop). Reported per channel and level: p50/p95 of the webhook's HTTP answer ("ack": what the platform
waits for) and of webhook → reply delivered ("delivery": what the citizen waits for), and replies lost.

    .venv/bin/python scripts/channel_benchmark.py --report docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import httpx

# The benchmark measures the assistant, not the abuse limits: its clients come from one address and send as fast as
# they are answered, so the servers it starts get explicit, generous limits (docs/security.md).
BENCH_LIMITS = {"VNA_RATE_LIMIT_SESSION": "1000000/minute", "VNA_RATE_LIMIT_ADDRESS": "100000000/minute",
                "VNA_RATE_LIMIT_CHANNEL_USER": "1000000/minute", "VNA_RATE_LIMIT_RATING": "1000000/minute"}
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.benchmark import _free_port, _questions, wait_healthy  # noqa: E402
from tests.channel_peers import TelegramPeer, ZaloPeer, serve, telegram_bot_api, zalo_api  # noqa: E402

TG_SECRET = "bench-webhook-secret"
OA_SECRET = "bench-oa-secret"
ids = itertools.count(int(time.time() * 1000))  # unique across runs: the inbox de-duplicates on ids
QUIET_S = 0.3  # no further part of a reply for this long: the reply is complete


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def tg_body(chat: int, text: str) -> bytes:
    n = next(ids)
    return json.dumps({"update_id": n, "message": {
        "message_id": n, "date": int(time.time()), "text": text,
        "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": False, "first_name": "B"}}}).encode()


def zalo_request(app_id: str, user: str, text: str) -> tuple[bytes, dict]:
    event = {"app_id": app_id, "event_name": "user_send_text", "sender": {"id": user}, "recipient": {"id": "oa"},
             "message": {"text": text, "msg_id": f"b-{next(ids)}"}, "timestamp": str(int(time.time() * 1000))}
    body = json.dumps(event, ensure_ascii=False).encode()
    mac = hashlib.sha256(app_id.encode() + body + event["timestamp"].encode() + OA_SECRET.encode()).hexdigest()
    return body, {"X-ZEvent-Signature": f"mac={mac}", "Content-Type": "application/json"}


async def citizen(channel: str, client: httpx.AsyncClient, url: str, user: int, questions: list[str],
                  tg: TelegramPeer, zalo: ZaloPeer, zalo_app: str, acks: list, deliveries: list, lost: list) -> None:
    def delivered() -> int:
        return tg.delivered.get(str(user), 0) if channel == "telegram" else zalo.delivered.get(f"u{user}", 0)

    for text in questions:
        before = delivered()
        if channel == "telegram":
            body, headers = tg_body(user, text), {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET,
                                                  "Content-Type": "application/json"}
        else:
            body, headers = zalo_request(zalo_app, f"u{user}", text)
        start = time.perf_counter()
        r = await client.post(f"{url}/{channel}/webhook", content=body, headers=headers)
        acks.append((time.perf_counter() - start) * 1000)
        if r.status_code != 200:
            lost.append(f"{channel}: HTTP {r.status_code}")
            continue
        deadline = time.perf_counter() + 60
        while delivered() <= before:
            if time.perf_counter() > deadline:
                lost.append(f"{channel}: no reply to {text!r}")
                break
            await asyncio.sleep(0.005)
        else:
            deliveries.append((time.perf_counter() - start) * 1000)
            # a long reply comes in several messages: let the rest arrive before the next question, so it is
            # not taken for the next reply (and the next question does not overlap this turn)
            count, quiet_since = delivered(), time.perf_counter()
            while time.perf_counter() - quiet_since < QUIET_S:
                await asyncio.sleep(0.01)
                if delivered() != count:
                    count, quiet_since = delivered(), time.perf_counter()


async def run_level(channel: str, url: str, users: int, per_user: int, questions: list[str], tg: TelegramPeer,
                    zalo: ZaloPeer) -> dict:
    acks: list[float] = []
    deliveries: list[float] = []
    lost: list[str] = []
    # new citizens every run (a run reusing ids would continue their old conversations)
    base = next(ids) * 1000 + (0 if channel == "telegram" else 500)
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=users + 5)) as client:
        start = time.perf_counter()
        await asyncio.gather(*[
            citizen(channel, client, url, base + u, [questions[(u * per_user + i) % len(questions)]
                                                     for i in range(per_user)],
                    tg, zalo, zalo.app_id, acks, deliveries, lost)
            for u in range(users)])
        elapsed = time.perf_counter() - start
    return {"channel": channel, "users": users, "messages": len(acks), "ack_p50": pct(acks, 0.5),
            "ack_p95": pct(acks, 0.95), "delivery_p50": pct(deliveries, 0.5), "delivery_p95": pct(deliveries, 0.95),
            "per_s": len(deliveries) / elapsed, "lost": len(lost)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,20")
    parser.add_argument("--per-user", type=int, default=10, help="messages each simulated citizen sends")
    parser.add_argument("--report", help="append/replace the 'Channels' section of this markdown file")
    args = parser.parse_args()

    questions = _questions()
    tg, zalo = TelegramPeer(), ZaloPeer()
    with serve(telegram_bot_api(tg)) as tg_url, serve(zalo_api(zalo)) as zalo_url:
        port = _free_port()
        env = dict(os.environ, **BENCH_LIMITS, VNA_TELEGRAM_TOKEN=tg.token, VNA_TELEGRAM_WEBHOOK_SECRET=TG_SECRET,
                   VNA_TELEGRAM_API_URL=f"{tg_url}/bot", VNA_ZALO_APP_ID=zalo.app_id, VNA_ZALO_OA_SECRET=OA_SECRET,
                   VNA_ZALO_APP_SECRET=zalo.app_secret, VNA_ZALO_ACCESS_TOKEN=zalo.access_token,
                   VNA_ZALO_REFRESH_TOKEN=zalo.refresh_token, VNA_ZALO_API_URL=zalo_url, VNA_ZALO_OAUTH_URL=zalo_url)
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
            results = []
            for channel in ("telegram", "zalo"):
                asyncio.run(run_level(channel, url, 2, 2, questions, tg, zalo))  # warm-up, not reported
                for users in (int(x) for x in args.levels.split(",")):
                    result = asyncio.run(run_level(channel, url, users, args.per_user, questions, tg, zalo))
                    print(json.dumps(result), flush=True)
                    results.append(result)
        finally:
            proc.terminate()
            proc.wait(30)

    dialogue = os.environ.get("VNA_DIALOGUE", "true")
    lines = ["## Channels (Telegram and Zalo webhooks)", "",
             f"`.venv/bin/python scripts/channel_benchmark.py --levels {args.levels} --per-user {args.per_user}` on "
             f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"{time.strftime('%Y-%m-%d')}; one `serve` worker, VNA_DIALOGUE={dialogue}; the platforms are local "
             "contract servers in the benchmark process (tests/channel_peers.py), on the same 2 cores. Each "
             "simulated citizen sends the next development question when the previous reply has been delivered "
             f"(all its parts: no new part for {QUIET_S * 1000:.0f} ms). ack: the webhook's HTTP answer; delivered: "
             "webhook sent → first part of the reply received by the platform.",
             "", "| channel | citizens | messages | ack p50 | ack p95 | delivered p50 | delivered p95 | replies/s | lost |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['channel']} | {r['users']} | {r['messages']} | {r['ack_p50']:.0f} ms | "
                     f"{r['ack_p95']:.0f} ms | {r['delivery_p50']:.0f} ms | {r['delivery_p95']:.0f} ms | "
                     f"{r['per_s']:.1f} | {r['lost']} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.report:
        path = Path(args.report)
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        head, sep, tail = text.partition("## Channels (Telegram and Zalo webhooks)")
        if sep:  # replace the old section up to the next heading
            rest = tail.split("\n## ", 1)
            tail = ("\n## " + rest[1]) if len(rest) > 1 else ""
            text = head + section + tail
        else:
            text = text.rstrip() + "\n\n" + section
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
