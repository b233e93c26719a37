"""What a hostile 60,000-character message costs, against a normal question, and whether /health waits for it.

By default starts a real ``python -m bot serve`` (the default configuration: API, Rasa agent, in-process actions;
the phone line off so it does not need a free SIP port) on a free loopback port, with abuse limits raised for the
run (a measurement, not an attack on the limiter); ``--url`` measures a running server instead (its rate limits
apply). Then, for each hostile shape:

- masking: ``bot.privacy.mask`` on the whole 60,000 characters (the worst case if any code path masked before
  bounding) and ``Assistant.admit``'s real work — cut at ``max_input_chars``, then mask — timed in this process;
- a whole turn: ``POST /api/chat`` with the text as a UTF-8 JSON body (multi-byte shapes exceed the 64 KiB body
  limit and get 413; they are also sent cut to what fits, so the assistant itself handles a maximal body);
- ``GET /health`` from a second client in a loop meanwhile (its latency while hostile turns are in flight).

A normal question ("làm lại căn cước ở đâu", fresh sessions) is the reference; the target is a worst-case
hostile turn ≤ 10× its median. Prints a markdown table.

    .venv/bin/python scripts/hostile_inputs.py                 # starts `python -m bot serve` (with Rasa)
    .venv/bin/python scripts/hostile_inputs.py --url http://127.0.0.1:8000
    .venv/bin/python scripts/hostile_inputs.py --model var/models/assistant.tar.gz

``--model`` serves (in a separate process, the same application as ``serve``) with that Rasa model as it is,
instead of letting ``serve`` retrain one whose fingerprint no longer matches the working tree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.benchmark import _free_port as free_port  # noqa: E402
from scripts.benchmark import wait_healthy  # noqa: E402

LENGTH = 60_000
MAX_BODY_BYTES = 64 * 1024  # bot.api.MAX_BODY_BYTES (not imported: that pulls in the whole application)
NORMAL = "làm lại căn cước ở đâu"
RUN = f"{os.getpid()}-{int(time.time())}"


def shapes() -> dict[str, str]:
    def fill(unit: str) -> str:
        return (unit * (LENGTH // len(unit) + 1))[:LENGTH]

    return {
        "digits and spaces (`'1' + ' ' * 59998 + 'x'`)": "1" + " " * (LENGTH - 2) + "x",
        "digit groups (`'0912 345 678 '` …)": fill("0912 345 678 "),
        "slashes (`'12/'` …)": fill("12/"),
        "addresses (`'so 12/3 duong Le Loi '` …)": fill("so 12/3 duong Le Loi "),
        "'@' runs (`'a@'` …)": fill("a@"),
        "one long word (`'a' * 60000`)": "a" * LENGTH,
        "digits only (`'1' * 60000`)": "1" * LENGTH,
        "emoji (`'🙂' * 60000`)": "🙂" * LENGTH,
        "mixed scripts (Vietnamese, CJK, Cyrillic, Arabic)": fill("đăng ký 結婚 регистрация تسجيل "),
        "Vietnamese with digits (`'số 12 đường Lê Lợi 0912345678 '` …)": fill("số 12 đường Lê Lợi 0912345678 "),
    }


def body(session_id: str, text: str) -> bytes:
    return json.dumps({"session_id": session_id, "text": text}, ensure_ascii=False).encode()


def fitting(text: str, session_id: str) -> str:
    """The longest start of ``text`` whose request body fits under the 64 KiB limit."""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if len(body(session_id, text[:mid])) <= MAX_BODY_BYTES:
            low = mid
        else:
            high = mid - 1
    return text[:low]


def timed(fn: Callable[..., object], *args: object, repeat: int = 1) -> tuple[float, object]:
    """The worst wall-clock time of ``repeat`` calls, in ms, and the last result."""
    worst, result = 0.0, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(*args)
        worst = max(worst, (time.perf_counter() - started) * 1000)
    return worst, result


class HealthProbe(threading.Thread):
    """GET /health in a loop from its own connection, recording each latency (ms) while ``recording`` is set."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.recording = threading.Event()
        self.stopped = threading.Event()
        self.samples: list[float] = []
        self.failures = 0

    def run(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self.stopped.is_set():
                if not self.recording.wait(0.05):
                    continue
                started = time.perf_counter()
                try:
                    ok = client.get(f"{self.url}/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.samples.append((time.perf_counter() - started) * 1000)
                else:
                    self.failures += 1
                time.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def serve_with_model(port: int, model: str) -> None:
    """The application of ``python -m bot serve`` (API, engine, Rasa with in-process actions; phone line off) with
    the given Rasa model loaded as it is."""
    import uvicorn

    from bot.api import create_app
    from bot.config import get_settings
    from bot.dialogue import actions
    from bot.dialogue.runtime import Dialogue
    from bot.service import Assistant

    settings = get_settings()
    assistant = Assistant(settings, progress=False, dialogue=False)
    actions.bind(assistant)
    assistant.dialogue = Dialogue.load(settings, Path(model), second_opinion=assistant._engine_opinion)
    uvicorn.run(create_app(settings, assistant), host="127.0.0.1", port=port, log_level="warning", ws="none")


def main() -> int:  # one measurement, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="measure a running server instead of starting one")
    parser.add_argument("--model", help="serve with this Rasa model (.tar.gz) as it is, without retraining")
    parser.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)  # internal: the --model server
    parser.add_argument("--repeat", type=int, default=5, help="turns per hostile shape (the worst is reported)")
    parser.add_argument("--normal", type=int, default=30, help="normal questions for the reference median")
    parser.add_argument("--mask-repeat", type=int, default=3, help="calls per masking measurement")
    args = parser.parse_args()
    if args.serve_port:
        serve_with_model(args.serve_port, args.model)
        return 0

    from bot.config import get_settings
    from bot.privacy import mask
    from bot.service import CUT_MARKER, cut

    limit = get_settings().max_input_chars
    proc = None
    url = args.url
    if not url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        unlimited = "1000000/second"
        env = dict(os.environ, VNA_CALLBOT="false", VNA_RATE_LIMIT_SESSION=unlimited,
                   VNA_RATE_LIMIT_ADDRESS=unlimited, VNA_RATE_LIMIT_CHANNEL_USER=unlimited)
        command = [sys.executable, "-m", "bot", "serve", "--port", str(port)]
        if args.model:
            command = [sys.executable, __file__, "--serve-port", str(port), "--model", args.model]
        server_log = open(Path(tempfile.gettempdir()) / f"hostile-inputs-server-{RUN}.log", "w")  # noqa: SIM115
        print(f"server log: {server_log.name}", file=sys.stderr)
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT)
    rows = []
    try:
        wait_healthy(url, proc, timeout=1800)
        health = httpx.get(f"{url}/health", timeout=30).json()
        probe = HealthProbe(url)
        probe.start()
        with httpx.Client(timeout=300) as client:
            def chat(session_id: str, text: str) -> httpx.Response:
                return client.post(f"{url}/api/chat", content=body(session_id, text),
                                    headers={"content-type": "application/json"})

            for i in range(3):  # warm the connection and the first-turn paths
                chat(f"warm-{RUN}-{i}", NORMAL)
            idle = [timed(client.get, f"{url}/health")[0] for _ in range(20)]
            normal = []
            for i in range(args.normal):
                ms, r = timed(chat, f"normal-{RUN}-{i}", NORMAL)
                assert r.status_code == 200, r.text
                normal.append(ms)
            normal_p50 = statistics.median(normal)

            probe.recording.set()
            for name, text in shapes().items():
                mask_full, _ = timed(mask, text, repeat=args.mask_repeat)
                mask_bounded, _ = timed(lambda t: mask(cut(t, limit - len(CUT_MARKER))), text,
                                        repeat=args.mask_repeat)
                sid = f"hostile-{RUN}-{len(rows)}"
                size = len(body(sid, text))
                worst, statuses = 0.0, set()
                for k in range(args.repeat):
                    ms, r = timed(chat, f"{sid}-{k}", text)
                    worst, statuses = max(worst, ms), statuses | {r.status_code}
                row = {"shape": name, "bytes": size, "status": "/".join(map(str, sorted(statuses))), "turn": worst,
                       "mask_full": mask_full, "mask_bounded": mask_bounded}
                if size > MAX_BODY_BYTES:  # also the longest start that fits: the assistant handles a full body
                    part = fitting(text, f"{sid}-fit-0")
                    fit_worst, fit_statuses = 0.0, set()
                    for k in range(args.repeat):
                        ms, r = timed(chat, f"{sid}-fit-{k}", part)
                        fit_worst, fit_statuses = max(fit_worst, ms), fit_statuses | {r.status_code}
                    row["fit"] = (len(part), "/".join(map(str, sorted(fit_statuses))), fit_worst)
                rows.append(row)
            probe.recording.clear()
            probe.stopped.set()
            probe.join(5)
    finally:
        if proc:
            proc.terminate()
            proc.wait(60)

    dialogue = health.get("dialogue", {}).get("status")
    started_how = f"the serve application with {args.model}" if args.model else "python -m bot serve"
    print(f"Server: {f'started by this script ({started_how}, phone line off)' if proc else url}; "
          f"dialogue layer: {dialogue}; max_input_chars {limit}.")
    print(f"Normal question ({NORMAL!r}, {len(normal)} fresh sessions): p50 {normal_p50:.1f} ms, "
          f"max {max(normal):.1f} ms. /health idle: p50 {statistics.median(idle):.1f} ms.")
    print()
    print("| shape (60,000 characters) | body bytes | HTTP | worst turn (ms) | × normal p50 | "
          "mask, whole text (ms) | mask, bounded (ms) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    worst_ratio = 0.0
    for row in rows:
        ratio = row["turn"] / normal_p50
        cells = [row["shape"], f"{row['bytes']:,}", row["status"], f"{row['turn']:.1f}", f"{ratio:.2f}",
                 f"{row['mask_full']:.1f}", f"{row['mask_bounded']:.2f}"]
        print("| " + " | ".join(cells) + " |")
        worst_ratio = max(worst_ratio, ratio)
        if "fit" in row:
            chars, status, ms = row["fit"]
            fit_ratio = ms / normal_p50
            worst_ratio = max(worst_ratio, fit_ratio)
            print(f"| ↳ its first {chars:,} characters (fits in 64 KiB) | ≤ {MAX_BODY_BYTES:,} | {status} | {ms:.1f} | "
                  f"{fit_ratio:.2f} | | |")
    print()
    samples = probe.samples
    print(f"Worst hostile turn: {worst_ratio:.2f}× a normal question (target ≤ 10×).")
    print(f"/health meanwhile ({len(samples)} requests from a second client, {probe.failures} failed): "
          f"p50 {pct(samples, 0.5):.1f} ms, p95 {pct(samples, 0.95):.1f} ms, max {max(samples, default=0):.1f} ms.")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
