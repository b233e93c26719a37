"""Callbot benchmark: concurrent keypad calls and spoken turns from SIPp, per-stage latency from the bot's turn log.

    .venv/bin/python scripts/callbot_benchmark.py --keypad-calls 10 --spoken-calls 3 --spoken-concurrency 1

Starts the callbot in this process (the assistant from the usual settings: VNA_DATA_DIR, VNA_PROCEDURE_DOMAINS, …;
the engine alone, or with ``--dialogue`` through the Rasa conversation layer as `serve` does) on an ephemeral
loopback port, then

1. places ``--keypad-calls`` simultaneous keypad calls (tests/sipp/keypad.xml: menu → procedure → fee → rating)
   and reports how many completed and the key press → first answer audio latency;
2. places ``--spoken-calls`` calls (``--spoken-concurrency`` at a time) that each ask three espeak-ng questions
   (tests/sipp/speech.xml) and reports end of speech → VAD → recognised → answered → synthesised → first audio.

Prints a markdown table (docs/benchmarks.md, "Callbot"). Needs Debian's sip-tester, espeak-ng and sox.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "Lệ phí đăng ký kết hôn là bao nhiêu?",
    "Đăng ký kết hôn cần giấy tờ gì?",
    "Làm lại căn cước mất bao lâu?",
    "Đăng ký khai sinh ở đâu?",
    "Cấp lại giấy phép lái xe cần gì?",
    "Đăng ký tạm trú như thế nào?",
]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """Where the bot's audio goes: counts packets (the benchmark does not need the sound)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets = 0
        self.stop = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self) -> None:
        while not self.stop:
            try:
                self.sock.recv(2048)
                self.packets += 1
            except TimeoutError:
                continue
            except OSError:
                return


def sipp(port: int, scenario: Path, calls: int, concurrency: int, sink: Sink, timeout: int) -> tuple[int, str]:
    media = free_port() & ~1
    command = ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-m", str(calls), "-l", str(concurrency),
               "-r", str(concurrency), "-rp", "1000", "-i", "127.0.0.1", "-p", "0", "-mp", str(media), "-s", "callbot",
               "-key", "rec_port", str(sink.port), "-key", "codec", "0", "-timeout", f"{timeout}s", "-nostdin"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 60)
    return done.returncode, done.stdout[-1500:] + done.stderr[-1500:]


def speech_scenario(directory: Path, questions: list[str]) -> Path:
    template = (ROOT / "tests" / "sipp" / "speech.xml").read_text(encoding="utf-8")
    for name, text in zip(("QUESTION", "UNCLEAR1", "UNCLEAR2"), questions, strict=True):
        path = directory / f"{name.lower()}.ulaw"
        wav = subprocess.run(["espeak-ng", "-v", "vi", "-s", "150", "--stdout", text], capture_output=True,
                             check=True).stdout
        subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-c", "1", "-e", "u-law", str(path),
                        "gain", "-3", "pad", "0.3", "1.5"], input=wav, check=True)
        wait = int((path.stat().st_size / 8000 + 9.0) * 1000)
        template = template.replace(f"@{name}@", str(path)).replace(f"@{name}_WAIT@", str(wait))
    out = directory / "speech.xml"
    out.write_text(template, encoding="utf-8")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keypad-calls", type=int, default=10)
    parser.add_argument("--spoken-calls", type=int, default=3)
    parser.add_argument("--spoken-concurrency", type=int, default=1)
    parser.add_argument("--dialogue", action="store_true",
                        help="answer through the Rasa conversation layer too (serve's default); else the engine alone")
    parser.add_argument("--json", metavar="FILE", help="also write every turn record (JSON lines) to FILE")
    args = parser.parse_args()

    from bot.config import Settings
    from bot.service import Assistant
    from connectors.callbot import Callbot

    settings = Settings().model_copy(update={"callbot_port": 0, "callbot_rtp_ports": (0, 0),
                                             "callbot_max_calls": max(30, args.keypad_calls + 5)})
    print("loading the assistant …", file=sys.stderr, flush=True)
    assistant = Assistant(settings, progress=False, dialogue=args.dialogue)
    if args.dialogue:  # one turn first: Rasa's first prediction in a process is slow (graph warm-up)
        asyncio.run(assistant.turn("benchmark-warm-up", "lệ phí đăng ký kết hôn", "phone"))
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    bot = Callbot(assistant, settings)
    asyncio.run_coroutine_threadsafe(bot.start(), loop).result(10)
    if bot.pool is not None:  # load the model before measuring
        bot.pool.recognizer().transcribe(__import__("numpy").zeros(8000, dtype="int16"))
    sink = Sink()
    rows = []
    load_before = os.getloadavg()

    # 1. keypad calls, all at once
    started = time.monotonic()
    code, tail = sipp(bot.port, ROOT / "tests" / "sipp" / "keypad.xml", args.keypad_calls, args.keypad_calls, sink, 120)
    keypad_elapsed = time.monotonic() - started
    time.sleep(1.0)
    keypad = [t for t in bot.latencies if t["mode"] == "keypad"]
    rated = sum(1 for c in bot.finished if c.rated is not None)
    if code != 0:
        print(tail, file=sys.stderr)
    rows.append(("keypad", args.keypad_calls, rated, keypad))

    # 2. spoken turns
    before = len(bot.latencies)
    with tempfile.TemporaryDirectory() as tmp:
        spoken_calls = 0
        for i in range(0, args.spoken_calls, args.spoken_concurrency):
            batch = min(args.spoken_concurrency, args.spoken_calls - i)
            questions = [QUESTIONS[(i + j) % len(QUESTIONS)] for j in range(3)]
            scenario = speech_scenario(Path(tmp), questions)
            code, tail = sipp(bot.port, scenario, batch, batch, sink, 180)
            if code != 0:
                print(tail, file=sys.stderr)
            spoken_calls += batch
    time.sleep(1.0)
    spoken = [t for t in bot.latencies[before:] if t["mode"] == "speech"]
    load_after = os.getloadavg()
    asyncio.run_coroutine_threadsafe(bot.stop(), loop).result(10)

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            for record in bot.latencies:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")

    cores = len(os.sched_getaffinity(0))
    print(f"\nAnswers: {'Rasa conversation layer + engine' if args.dialogue else 'engine alone'}")
    print(f"Machine: {platform.processor() or platform.machine()}, {cores} cores, load average "
          f"{load_before[0]:.1f} before / {load_after[0]:.1f} after (shared with other work)\n")
    print(f"Keypad: {args.keypad_calls} simultaneous calls, {rated} completed with a stored rating, "
          f"{keypad_elapsed:.0f} s wall; {sink.packets} RTP packets received from the bot\n")
    print("| turns | what | n | p50 ms | p95 ms |")
    print("|---|---|---|---|---|")
    firsts = [t["first_audio_ms"] for t in keypad if t.get("first_audio_ms") is not None]
    print(f"| keypad | key press → first answer audio | {len(firsts)} | {fmt(pct(firsts, 50))} | {fmt(pct(firsts, 95))} |")
    understood = [t for t in spoken if t.get("asr") is None]
    for key, label in (("vad_ms", "end of speech → end of turn detected (VAD hangover)"),
                       ("asr_ms", "end of speech → recognised text"),
                       ("answer_ms", "end of speech → answer composed"),
                       ("tts_ms", "end of speech → first sentence synthesised"),
                       ("first_audio_ms", "end of speech → first audio packet")):
        values = [t[key] for t in (understood if key in ("answer_ms",) else spoken) if t.get(key) is not None]
        print(f"| spoken | {label} | {len(values)} | {fmt(pct(values, 50))} | {fmt(pct(values, 95))} |")
    busy = sum(1 for t in spoken if t.get("asr") == "busy")
    low = sum(1 for t in spoken if t.get("asr") == "low_confidence")
    early = sum(1 for t in spoken if t.get("early"))
    print(f"\nSpoken: {spoken_calls} calls ({args.spoken_concurrency} at a time), {len(spoken)} turns: "
          f"{len(understood)} answered, {low} not understood (low confidence), {busy} sent to the keypad because "
          f"the recognition pool was full; {early} used the recognition started early at a pause")
    return 0


if __name__ == "__main__":
    sys.exit(main())
