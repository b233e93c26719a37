"""The phone line with real peers: Debian's SIPp calls the callbot on loopback, presses keys (RFC 4733 packets from
sip-tester's recorded telephone-event pcaps, and SIP INFO), streams a Vietnamese question synthesised by espeak-ng,
accepts a transfer (REFER → 202 → NOTIFY) and hangs up; Debian's baresip softphone places a spoken and keyed call. The bot's audio goes to a UDP port the test listens on
(the SDP offer names it) and is decoded and measured there. No telephony mocks: the bot is the real endpoint over
the small real index (engine only), with the real recogniser and synthesiser.

SIPp (sip-tester), baresip, espeak-ng and sox are Debian packages (scripts/system-deps.sh installs them); without them these
tests are skipped locally and fail under CI.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from connectors.callbot import Callbot
from connectors.callbot.rtp import PCMA, PCMU, decode, encode
from connectors.callbot.sip import SipError, parse, parse_sdp
from connectors.callbot.speakable import say_number, speakable

SIPP_DIR = Path(__file__).parent / "sipp"
PACKAGES = {"sipp": "sip-tester", "espeak-ng": "espeak-ng", "sox": "sox", "baresip": "baresip"}
DTMF_PCAP = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")


def _require_tools() -> None:
    missing = [pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None]
    if not DTMF_PCAP.exists():
        missing.append("sip-tester (pcaps)")
    if missing:
        message = f"missing Debian packages: {' '.join(sorted(set(missing)))} (bash scripts/system-deps.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI must run the phone tests
        pytest.skip(message)


# ------------------------------------------------------------------------------------------ pieces, without a call


def test_numbers_and_fees_are_said_in_words() -> None:
    assert say_number(70000) == "bảy mươi nghìn"
    assert say_number(1005) == "một nghìn không trăm linh năm"
    assert say_number(21) == "hai mươi mốt" and say_number(25) == "hai mươi lăm" and say_number(14) == "mười bốn"
    spoken = speakable("Thủ tục: Cấp lại thẻ căn cước (mã 1.014064).\nLệ phí: 70,000 Việt Nam Đồng/thẻ; 50.000 đồng/lần."
                       "\nNguồn: Cấp lại thẻ căn cước, mã 1.014064 — https://dichvucong.gov.vn/x")
    assert "bảy mươi nghìn đồng" in spoken and "năm mươi nghìn đồng mỗi lần" in spoken
    assert "http" not in spoken and "Nguồn" not in spoken and "1.014064" not in spoken


def test_long_answers_are_cut_at_a_sentence_to_about_30_seconds() -> None:
    long = " ".join(f"Câu số {i} nói về một giấy tờ cần chuẩn bị khi nộp hồ sơ." for i in range(40))
    spoken = speakable(long)
    assert len(spoken.split()) <= 75 and spoken.endswith(".")


def test_g711_round_trip() -> None:
    pcm = (np.sin(np.arange(1600) / 8) * 12000).astype(np.int16)
    for pt in (PCMU, PCMA):
        back = decode(encode(pcm, pt), pt).astype(np.int32)
        assert np.max(np.abs(back - pcm)) <= 0.07 * 12000  # G.711's logarithmic steps


def test_sip_parser_refuses_malformed_messages_and_reads_offers() -> None:
    with pytest.raises(SipError):
        parse(b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a\r\n\r\n")  # no From/To/Call-ID/CSeq
    offer = parse_sdp(b"v=0\r\nc=IN IP4 10.0.0.5\r\nm=audio 4000 RTP/AVP 18 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
    assert (offer.address, offer.port, offer.payload_types, offer.dtmf_type) == ("10.0.0.5", 4000, [18, 8, 101], 101)


def test_a_full_recognition_pool_says_no_at_once() -> None:
    """Load degrades gracefully: with one worker and one waiting slot busy, a third utterance is refused at once
    (the call then continues on the keypad) instead of queueing without bound."""
    from connectors.callbot.speech import RecognitionPool, Transcript

    class Slow:
        def transcribe(self, pcm: np.ndarray) -> Transcript:
            time.sleep(0.5)
            return Transcript("xin chào", 0.9)

    pool = RecognitionPool(Slow, workers=1, queue=1)

    async def three() -> list:
        return await asyncio.gather(*(pool.submit(np.zeros(800, dtype=np.int16)) for _ in range(3)))

    started = time.monotonic()
    results = asyncio.run(three())
    pool.close()
    assert [r is None for r in results].count(True) == 1 and pool.refused == 1
    assert time.monotonic() - started < 2.0


# ------------------------------------------------------------------------------------------ the bot, on loopback


class Recorder:
    """Listens where the SDP offer told the bot to send its audio; keeps (arrival time, samples) per packet."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets: list[tuple[float, np.ndarray]] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            pt = data[1] & 0x7F
            if pt in (PCMU, PCMA):
                self.packets.append((time.monotonic(), decode(data[12:], pt)))

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()

    def voiced_seconds(self, since: float = 0.0) -> float:
        """Seconds of packets carrying sound (not the bot's idle silence)."""
        loud = [t for t, pcm in self.packets if t >= since and np.abs(pcm.astype(np.int32)).max() > 200]
        return len(loud) * 0.02

    def audio(self, since: float = 0.0) -> np.ndarray:
        parts = [pcm for t, pcm in self.packets if t >= since]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


@pytest.fixture(scope="module")
def callbot(settings, assistant, tmp_path_factory) -> Iterator[Callbot]:  # conftest fixtures
    """The callbot on an ephemeral loopback port, in its own event loop thread (like `python -m bot callbot`)."""
    _require_tools()
    log = tmp_path_factory.mktemp("callbot") / "latency.jsonl"
    phone_settings = settings.model_copy(update={
        "callbot_host": "127.0.0.1", "callbot_port": 0, "callbot_rtp_ports": (0, 0),
        "callbot_transfer_uri": "sip:1000@127.0.0.1:5999", "callbot_latency_log": log,
        "callbot_vad_hangover_ms": 500,
    })
    loop = asyncio.new_event_loop()
    bot = Callbot(assistant, phone_settings)
    thread = threading.Thread(target=loop.run_forever, daemon=True, name="callbot")
    thread.start()
    asyncio.run_coroutine_threadsafe(bot.start(), loop).result(10)
    bot.loop = loop  # type: ignore[attr-defined]
    try:
        yield bot
    finally:
        asyncio.run_coroutine_threadsafe(bot.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def sipp(bot: Callbot, scenario: str, recorder: Recorder, *extra: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """Run one SIPp call against the bot; returns the finished process (returncode 0 = the scenario passed)."""
    counts = [] if "-m" in extra else ["-m", "1", "-l", "1"]
    command = ["sipp", f"127.0.0.1:{bot.port}", "-sf", str(SIPP_DIR / scenario), *counts,
               "-i", "127.0.0.1", "-p", "0", "-mp", str(_free_even_port()), "-s", "callbot",
               "-key", "rec_port", str(recorder.port), "-timeout", f"{int(timeout)}s", "-timeout_error",
               "-nostdin", "-trace_err", "-error_file", "/dev/stderr", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout + 30)


def _free_even_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port % 2 == 0 and port < 65000:
            return port
    return 16384


def _finished_call(bot: Callbot, since: int) -> object:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if len(bot.finished) > since:
            return bot.finished[-1]
        time.sleep(0.1)
    raise AssertionError("the call did not end on the bot's side")


def test_options_ping_and_an_offer_without_g711_get_clear_answers(callbot: Callbot) -> None:
    """A PBX's OPTIONS keep-alive gets 200; an INVITE offering only G.729 gets 488, and a garbled request 400."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        base = (f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{{n}}\r\nFrom: <sip:t@127.0.0.1>;tag=a{{n}}\r\n"
                f"To: <sip:callbot@127.0.0.1>\r\nCall-ID: probe-{{n}}@test\r\n")
        s.sendto((f"OPTIONS sip:callbot@127.0.0.1 SIP/2.0\r\n{base.format(n=1)}CSeq: 1 OPTIONS\r\n"
                  "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", callbot.port))
        assert s.recv(4096).startswith(b"SIP/2.0 200")
        sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
        s.sendto((f"INVITE sip:callbot@127.0.0.1 SIP/2.0\r\n{base.format(n=2)}CSeq: 1 INVITE\r\n"
                  f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode(),
                 ("127.0.0.1", callbot.port))
        answers = [s.recv(4096) for _ in range(2)]
        assert answers[0].startswith(b"SIP/2.0 100") and answers[1].startswith(b"SIP/2.0 488")
        s.sendto((f"BYE sip:callbot@127.0.0.1 SIP/2.0\r\n{base.format(n=3)}CSeq: x BYE\r\n\r\n").encode(),
                 ("127.0.0.1", callbot.port))
        assert s.recv(4096).startswith(b"SIP/2.0 400")


def test_serve_starts_the_sip_endpoint_and_the_switch_turns_it_off(settings, assistant) -> None:
    """The app's lifespan (what `python -m bot serve` runs) binds the SIP port; VNA_CALLBOT=false leaves it off."""
    _require_tools()
    from fastapi.testclient import TestClient

    from bot.api import create_app

    with TestClient(create_app(settings.model_copy(update={"callbot_port": 0}), assistant)) as client:
        bot = client.app.state.callbot
        assert bot is not None and bot.port > 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(b"OPTIONS sip:callbot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-s\r\n"
                     b"From: <sip:t@127.0.0.1>;tag=s\r\nTo: <sip:callbot@127.0.0.1>\r\nCall-ID: serve@test\r\n"
                     b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", ("127.0.0.1", bot.port))
            assert s.recvfrom(4096)[0].startswith(b"SIP/2.0 200")
    with TestClient(create_app(settings.model_copy(update={"callbot": False}), assistant)) as client:
        assert client.app.state.callbot is None


def test_keypad_call_menu_answer_and_rating(callbot: Callbot, assistant) -> None:
    """Greeting, then keys only: 1 (hộ tịch) → 1 (khai sinh) → 2 (lệ phí) by RFC 4733, * (repeat), # (back),
    9 (end) by SIP INFO, 4 by RFC 4733 (rating). The bot plays the menus, an answer about the fee, repeats it,
    goes back to the group, stores the rating and hangs up; each key cut the prompt playing (barge-in)."""
    recorder = Recorder()
    before = len(callbot.finished)
    started = time.monotonic()
    try:
        result = sipp(callbot, "keypad.xml", recorder, "-key", "codec", "0")
    finally:
        recorder.close()
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    call = _finished_call(callbot, before)
    assert call.dialog.codec == PCMU
    # the greeting + menu, the group and procedure menus and the answer were heard (barge-in cut each one short)
    voiced = recorder.voiced_seconds(started)
    assert voiced > 8
    # barge-in: the first key (3 s into the call) cut the 20-odd-second greeting: most of it was never sent
    greeting_s = len(callbot.tts.cache[call.transcript[0]["text"]]) / 8000
    assert call.rtp.dropped_frames * 0.02 > greeting_s - 5, (call.rtp.dropped_frames, greeting_s)
    said = [t["text"] for t in call.transcript if t["role"] == "bot"]
    group_menu = callbot.menu.procedures_prompt(0)
    assert said[1] == group_menu and said[2].startswith("Thủ tục đăng ký khai sinh:")  # the menus, in order
    assert "phí" in said[3] and said[4] == said[3]  # the answer, then * repeated it
    assert said[5] == group_menu  # # went back from the procedure to its group
    assert call.rated == 4
    session = call.session_id
    assert {"session_id": session, "channel": "phone", "score": 4} in assistant.store.rating_list(session)
    history = assistant.store.history(session)
    assert history and "lệ phí" in history[-1]["reply"].lower() or "phí" in history[-1]["reply"].lower()
    keypad_turns = [t for t in call.turns if t["mode"] == "keypad"]
    assert keypad_turns and keypad_turns[0]["first_audio_ms"] is not None


def test_ten_simultaneous_keypad_calls_all_complete(callbot: Callbot, assistant) -> None:
    """Ten SIPp callers at once on the keypad path (2 cores): every call gets its menus and answer and is rated."""
    recorder = Recorder()
    before = len(callbot.finished)
    try:
        result = sipp(callbot, "keypad.xml", recorder, "-key", "codec", "8", "-m", "10", "-l", "10", "-r", "10",
                      "-rp", "1000")
    finally:
        recorder.close()
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    deadline = time.monotonic() + 5
    while len(callbot.finished) < before + 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    calls = callbot.finished[before:]
    assert len(calls) == 10 and all(c.rated == 4 and c.dialog.codec == PCMA for c in calls)
    for call in calls:
        assert {"session_id": call.session_id, "channel": "phone", "score": 4} in \
            assistant.store.rating_list(call.session_id)


def test_key_zero_transfers_with_refer_and_opens_a_ticket(callbot: Callbot, assistant) -> None:
    """0 by SIP INFO: the bot opens a handoff ticket, says so, sends REFER to the configured extension; the caller
    accepts and reports success (NOTIFY 200) and the bot hangs up. PCMA is the caller's first choice here."""
    recorder = Recorder()
    before = len(callbot.finished)
    try:
        result = sipp(callbot, "transfer.xml", recorder)
    finally:
        recorder.close()
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    call = _finished_call(callbot, before)
    assert call.dialog.codec == PCMA
    assert call.transfer_status == 200
    tickets = assistant.store.ticket_list(call.session_id)
    assert len(tickets) == 1 and tickets[0]["channel"] == "phone"
    assert recorder.voiced_seconds() > 2  # "Mình đang chuyển máy tới cán bộ, mã yêu cầu …"


def _say_to_file(text: str, path: Path) -> float:
    """espeak-ng → sox: raw mu-law 8 kHz (what SIPp's rtp_stream sends), followed by 1.5 s of line silence.
    A text starting with "synth " is a sox synthesis instead (a sound that is not speech: tones, a hum)."""
    if text.startswith("synth "):
        subprocess.run(["sox", "-n", "-t", "raw", "-r", "8000", "-c", "1", "-e", "u-law", str(path), *text.split(),
                        "pad", "0.3", "1.5"], check=True)
    else:
        wav = subprocess.run(["espeak-ng", "-v", "vi", "-s", "150", "--stdout", text], capture_output=True,
                             check=True).stdout
        subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-c", "1", "-e", "u-law", str(path),
                        "gain", "-3", "pad", "0.3", "1.5"], input=wav, check=True)
    return path.stat().st_size / 8000


def test_spoken_question_is_answered_and_unclear_speech_falls_back_to_the_keypad(
        callbot: Callbot, assistant, tmp_path: Path) -> None:
    """SIPp streams a Vietnamese question (espeak-ng): the bot recognises it (Whisper base, offline), answers through
    the core and plays the answer. Then two sounds the recogniser cannot make out: after the second the bot
    switches to the keypad by itself. 9 and 5 by SIP INFO rate the call."""
    files = {"QUESTION": "Lệ phí đăng ký kết hôn là bao nhiêu?",
             "UNCLEAR1": "synth 2 sine 300-900 gain -6",  # a warble, then a hum: loud enough to be a turn,
             "UNCLEAR2": "synth 2 square 120 tremolo 4 gain -10"}  # nothing a recogniser can read
    scenario = (SIPP_DIR / "speech.xml").read_text(encoding="utf-8")
    durations = {}
    for name, text in files.items():
        path = tmp_path / f"{name.lower()}.ulaw"
        durations[name] = _say_to_file(text, path)
        wait = int((durations[name] + (8.0 if name == "QUESTION" else 5.0)) * 1000)
        scenario = scenario.replace(f"@{name}@", str(path)).replace(f"@{name}_WAIT@", str(wait))
    (tmp_path / "speech.xml").write_text(scenario, encoding="utf-8")
    recorder = Recorder()
    before = len(callbot.finished)
    started = time.monotonic()
    try:
        result = sipp(callbot, str(tmp_path / "speech.xml"), recorder, timeout=120)
    finally:
        recorder.close()
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    call = _finished_call(callbot, before)
    spoken = [t for t in call.turns if t["mode"] == "speech"]
    assert len(spoken) == 3, (spoken, call.transcript)
    first = spoken[0]
    assert first.get("asr") is None and first["answer_ms"] is not None and first["first_audio_ms"] is not None
    history = assistant.store.history(call.session_id)
    assert len(history) == 1 and history[0]["question"]  # the recognised question went through the core
    # the answer was played: several seconds of voice between the question's end and the next utterance
    question_end = started + 2.0 + durations["QUESTION"]
    answer_window = [t for t, pcm in recorder.packets if question_end < t < question_end + 8.0
                     and np.abs(pcm.astype(np.int32)).max() > 200]
    assert len(answer_window) * 0.02 > 2.0
    assert [t.get("asr") for t in spoken[1:]] == ["low_confidence", "low_confidence"]
    assert call.speech is False  # switched to the keypad by itself
    assert call.rated == 5
    assert {"session_id": call.session_id, "channel": "phone", "score": 5} in assistant.store.rating_list(call.session_id)


BARESIP_CONFIG = """poll_method epoll
sip_listen 127.0.0.1:{sip_port}
audio_player aubridge,nil
audio_source aufile,{source}
audio_alert aubridge,nil
audio_srate 8000
audio_channels 1
snd_path {rec}
module_path /usr/lib/baresip/modules
module stdio.so
module cons.so
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app account.so
module_app menu.so
cons_listen 127.0.0.1:{cons_port}
"""


def test_a_softphone_call_with_baresip(callbot: Callbot, assistant, tmp_path: Path) -> None:
    """A different real SIP client: Debian's baresip (headless: its microphone is a WAV file, its speaker a
    recording). It asks a spoken question, then keys 9 and 3 (RFC 4733, typed on its UDP console). The greeting
    it recorded is transcribed back; the rating is stored and the bot hangs up."""
    import wave

    from bot.text.vietnamese import fold

    source = tmp_path / "mic.wav"
    wav = subprocess.run(["espeak-ng", "-v", "vi", "-s", "150", "--stdout", "Đăng ký kết hôn cần giấy tờ gì?"],
                         capture_output=True, check=True).stdout
    # 3 s of quiet (the greeting plays), the question, then quiet until the test hangs up
    subprocess.run(["sox", "-t", "wav", "-", "-r", "8000", "-c", "1", "-b", "16", str(source), "gain", "-3",
                    "pad", "3", "40"], input=wav, check=True)
    (tmp_path / "rec").mkdir()
    cons_port = _free_even_port() + 1
    (tmp_path / "config").write_text(BARESIP_CONFIG.format(sip_port=_free_even_port(), source=source,
                                                           rec=tmp_path / "rec", cons_port=cons_port))
    (tmp_path / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMU,PCMA\n")
    before = len(callbot.finished)
    peer = subprocess.Popen(["baresip", "-f", str(tmp_path), "-t", "60", "-e",
                             f"/dial sip:callbot@127.0.0.1:{callbot.port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not callbot.calls and len(callbot.finished) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        call = next(iter(callbot.calls.values()))
        while not call.turns and time.monotonic() < deadline:  # the spoken question was answered
            time.sleep(0.2)
        time.sleep(3)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as console:
            for key in ("9", "3"):
                console.sendto(key.encode(), ("127.0.0.1", cons_port))
                time.sleep(2.5)
        while len(callbot.finished) == before and time.monotonic() < deadline + 15:
            time.sleep(0.2)
    finally:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as console:
            console.sendto(b"/quit", ("127.0.0.1", cons_port))
        try:
            output = peer.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            peer.kill()
            output = peer.communicate()[0]
    assert len(callbot.finished) > before, output[-3000:]
    call = callbot.finished[-1]
    assert call.turns and call.turns[0]["mode"] == "speech", (call.turns, call.rtp.foreign_packets, call.rtp.source,
                                                             call.dialog.media, output[-2000:])
    assert call.rated == 3
    assert {"session_id": call.session_id, "channel": "phone", "score": 3} in assistant.store.rating_list(call.session_id)
    assert "terminated" in output
    # what baresip heard: the greeting, recognised by the bot's own recogniser
    recording = next((tmp_path / "rec").glob("*-dec.wav"))
    with wave.open(str(recording)) as w:
        heard = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        rate = w.getframerate()
    assert rate == 8000 and len(heard) / rate > 5
    start = int(np.argmax(np.abs(heard) > 200))
    text = callbot.pool.recognizer().transcribe(heard[start:start + 3 * rate]).text
    assert "chao" in fold(text), text


# ------------------------------------------------------------------------------------------ safe in front of the public


GOOD_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")


def test_hostile_sdp_offers_are_refused_with_400_or_488_never_an_exception() -> None:
    from connectors.callbot.sip import SdpError

    assert parse_sdp(GOOD_SDP.encode(), peer_host="127.0.0.1").port == 4000
    refused = {
        "port 99999": (GOOD_SDP.replace("4000", "99999"), 488),
        "port 0 (declined) in a first offer": (GOOD_SDP.replace("4000", "0"), 488),
        "a host name to resolve": (GOOD_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 tongdai.example.vn"), 488),
        "an IPv4 address that is not one": (GOOD_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 10.0.0.999"), 488),
        "multicast": (GOOD_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 239.1.2.3"), 488),
        "broadcast": (GOOD_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 255.255.255.255"), 488),
        "0.0.0.0 outside a hold": (GOOD_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"), 488),
        "SRTP": (GOOD_SDP.replace("RTP/AVP", "RTP/SAVP"), 488),
        "video only": (GOOD_SDP.replace("m=audio", "m=video"), 488),
        "a port that is not a number": (GOOD_SDP.replace("4000", "bốn nghìn"), 400),
        "payload type 300": (GOOD_SDP.replace("0 8 101", "0 8 300"), 400),
        "binary garbage": ("\udcff\udcfe\x00\x01 rác", 400),
        "no version line": (GOOD_SDP.replace("v=0\r\n", ""), 400),
        "no connection line": (GOOD_SDP.replace("c=IN IP4 127.0.0.1\r\n", ""), 400),
    }
    for name, (sdp, status) in refused.items():
        with pytest.raises(SdpError) as caught:
            parse_sdp(sdp.encode("utf-8", "surrogateescape"), peer_host="127.0.0.1")
        assert caught.value.status == status, name
    # loopback media is refused from a remote peer (it would make the bot stream to itself)
    with pytest.raises(SdpError):
        parse_sdp(GOOD_SDP.encode(), peer_host="203.0.113.7")
    # on hold in a re-INVITE, port 0 / 0.0.0.0 / sendonly are accepted
    assert parse_sdp(GOOD_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0").encode(), reinvite=True).on_hold
    assert parse_sdp((GOOD_SDP + "a=sendonly\r\n").encode(), reinvite=True).on_hold


def test_any_bytes_as_sdp_give_an_offer_or_a_refusal() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from connectors.callbot.sip import MediaOffer, SdpError

    lines = st.sampled_from(["v=0", "c=IN IP4 10.0.0.5", "c=IN IP6 ::1", "c=IN IP4 1.2.3", "m=audio 4000 RTP/AVP 0",
                             "m=audio 70000/2 RTP/AVP 0 8", "m=audio  RTP/AVP", "a=rtpmap:101 telephone-event",
                             "a=rtpmap:x", "a=sendonly", "s=Tổng đài", "m=video 0 RTP/AVP 31"]) | st.text(max_size=40)

    @settings(max_examples=400, deadline=None)
    @given(st.lists(lines, max_size=12), st.binary(max_size=64))
    def check(parts: list[str], tail: bytes) -> None:
        body = "\r\n".join(parts).encode("utf-8", "surrogatepass") + tail
        try:
            assert isinstance(parse_sdp(body, peer_host="10.0.0.5"), MediaOffer)
        except SdpError as exc:
            assert exc.status in (400, 488)

    check()


def test_digest_response_matches_the_rfc_2617_example() -> None:
    from connectors.callbot.digest import digest_response

    assert digest_response("Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
                           "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b") \
        == "6629fae49393a05397450978507c4ef1"


class Peer:
    """A raw UDP socket playing a SIP peer (or a forger), bound to ``host``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(3)
        self.host, self.port = self.sock.getsockname()

    def send(self, bot_port: int, text: str) -> None:
        self.sock.sendto(text.replace("\n", "\r\n").encode(), ("127.0.0.1", bot_port))

    def final(self, call_id: str | None = None) -> str:
        """The next final response (100 Trying skipped), to a request of ``call_id`` if given (the bot keeps
        retransmitting a 200 OK this peer never acknowledges)."""
        while True:
            data = self.sock.recv(4096).decode()
            if not data.startswith("SIP/2.0 1") and (call_id is None or f"Call-ID: {call_id}\r\n" in data):
                return data

    def close(self) -> None:
        self.sock.close()


def _invite(peer: Peer, bot_port: int, call_id: str, sdp: str, extra: str = "", cseq: int = 1) -> str:
    return (f"INVITE sip:callbot@127.0.0.1:{bot_port} SIP/2.0\nVia: SIP/2.0/UDP {peer.host}:{peer.port};"
            f"branch=z9hG4bK-{call_id}-{cseq}\nFrom: <sip:0901234567@{peer.host}>;tag=t-{call_id}\n"
            f"To: <sip:callbot@127.0.0.1>\nCall-ID: {call_id}\nCSeq: {cseq} INVITE\n"
            f"Contact: <sip:0901234567@{peer.host}:{peer.port}>\n{extra}Content-Type: application/sdp\n"
            f"Content-Length: {len(sdp.encode())}\n\n{sdp}")


def test_an_invite_with_a_hostile_offer_gets_488_or_400_and_the_line_keeps_answering(callbot: Callbot) -> None:
    peer = Peer()
    try:
        for n, (sdp, status) in enumerate([(GOOD_SDP.replace("4000", "99999"), "488"),
                                           (GOOD_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 evil.example"), "488"),
                                           ("v=0\r\nm=audio 0x10 RTP/AVP 0\r\n" + "a=x\r\n" * 300, "400")]):
            peer.send(callbot.port, _invite(peer, callbot.port, f"hostile-sdp-{n}@test", sdp))
            answer = peer.final()
            assert answer.startswith(f"SIP/2.0 {status}"), answer
            assert "Warning: 3" in answer
        assert not [c for c in callbot.calls.values() if c.dialog.call_id.startswith("hostile-sdp")]
        peer.send(callbot.port, f"OPTIONS sip:callbot@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{peer.port};"
                                "branch=z9hG4bK-o\nFrom: <sip:t@127.0.0.1>;tag=o\nTo: <sip:callbot@127.0.0.1>\n"
                                "Call-ID: after-hostile@test\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")
        assert peer.final().startswith("SIP/2.0 200")
    finally:
        peer.close()


def _wait_for_call(bot: Callbot, marker: str, out: dict, timeout: float = 15) -> object:
    """The call whose SIPp From tag contains ``marker``, once it is answered and confirmed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and "result" not in out:
        for call in list(bot.calls.values()):
            if marker in (call.dialog.remote_tag or "") and call.dialog.confirmed:
                return call
        time.sleep(0.05)
    result = out.get("result")
    raise AssertionError("no call came up" + (f": {result.stderr[-3000:]}{result.stdout[-2000:]}" if result else ""))


def _run_in_background(fn, *args) -> tuple[threading.Thread, dict]:
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", fn(*args)), daemon=True)
    thread.start()
    return thread, out


def test_a_bye_from_another_port_or_host_or_with_other_tags_gets_481_and_the_call_goes_on(
        callbot: Callbot, assistant) -> None:
    """SIPp is the caller; it sends a BYE with a forged From tag, one with a forged To tag and a re-INVITE with port
    99999 (481, 481, 488 — scripted in tests/sipp/forged.xml). The test sends the right BYE — right Call-ID and
    both tags, as an eavesdropper would — from another port and from another host (127.0.0.2): 481 each. The call
    goes on: the caller's keys 9 and 4 still reach it, the rating is stored and only then the bot hangs up."""
    recorder = Recorder()
    before = len(callbot.finished)
    refused_before = callbot.endpoint.refused_in_dialog
    try:
        thread, out = _run_in_background(sipp, callbot, "forged.xml", recorder)
        call = _wait_for_call(callbot, "SIPpTag03", out)
        dialog = call.dialog
        for host in ("127.0.0.1", "127.0.0.2"):
            forger = Peer(host)
            try:
                forger.send(callbot.port, f"BYE sip:callbot@127.0.0.1:{callbot.port} SIP/2.0\nVia: SIP/2.0/UDP "
                            f"{host}:{forger.port};branch=z9hG4bK-forged-{host}\nFrom: <sip:0901234567@127.0.0.1>;"
                            f"tag={dialog.remote_tag}\nTo: <sip:callbot@127.0.0.1>;tag={dialog.local_tag}\n"
                            f"Call-ID: {dialog.call_id}\nCSeq: 50 BYE\nContent-Length: 0\n\n")
                assert forger.final().startswith("SIP/2.0 481")
            finally:
                forger.close()
        assert not dialog.ended
        thread.join(90)
    finally:
        recorder.close()
    result = out["result"]
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    call = _finished_call(callbot, before)
    assert call.rated == 4 and call.transcript[-1]["text"].startswith("Cảm ơn bạn đã đánh giá")
    assert (call.dialog.media.address, call.dialog.media.port) == ("127.0.0.1", recorder.port)  # 99999 not taken
    assert callbot.endpoint.refused_in_dialog - refused_before >= 4


def _telephone_event(key: int, seq: int, timestamp: int, end: bool) -> bytes:
    import struct

    return struct.pack("!BBHII", 0x80, 101, seq, timestamp, 0x1234ABCD) + \
        struct.pack("!BBH", key, (0x80 if end else 0) | 10, 800)


def test_rtp_from_a_second_source_is_ignored(callbot: Callbot, assistant) -> None:
    """Once the caller's first packet (SIPp's key 1) fixed the media source, key presses sent to the call's RTP port
    from another port and from another host — "0", which would transfer the call — are dropped: no ticket, no
    REFER; the caller's own keys (1, then 9 and 4 by INFO) are the only ones heard."""
    recorder = Recorder()
    before = len(callbot.finished)
    try:
        thread, out = _run_in_background(sipp, callbot, "second_source.xml", recorder)
        call = _wait_for_call(callbot, "SIPpTag04", out)
        deadline = time.monotonic() + 10
        while call.rtp.source is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert call.rtp.source is not None and call.rtp.source[0] == "127.0.0.1"
        rtp_port = call.rtp.transport.get_extra_info("sockname")[1]
        for host in ("127.0.0.1", "127.0.0.2"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as injector:
                injector.bind((host, 0))
                for n in range(8):
                    injector.sendto(_telephone_event(0, 100 + n, 4242, end=n >= 5), ("127.0.0.1", rtp_port))
        thread.join(90)
    finally:
        recorder.close()
    result = out["result"]
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    call = _finished_call(callbot, before)
    assert call.rtp.foreign_packets >= 16
    assert call.transfer_status is None and assistant.store.ticket_list(call.session_id) == []
    said = [t["text"] for t in call.transcript if t["role"] == "bot"]
    assert said[1] == callbot.menu.procedures_prompt(0)  # the caller's own key 1 was heard
    assert call.rated == 4


def _another_callbot(callbot: Callbot, **overrides: object) -> Callbot:
    bot = Callbot(callbot.assistant, callbot.settings.model_copy(update={"callbot_speech": False, **overrides}))
    asyncio.run_coroutine_threadsafe(bot.start(), callbot.loop).result(10)  # type: ignore[attr-defined]
    return bot


def _stop(callbot: Callbot, bot: Callbot) -> None:
    asyncio.run_coroutine_threadsafe(bot.stop(), callbot.loop).result(10)  # type: ignore[attr-defined]


def test_a_call_longer_than_the_maximum_is_ended_with_a_goodbye_and_bye(callbot: Callbot) -> None:
    """With a 4-second maximum, a caller who stays on the line hears the greeting cut short, then a short Vietnamese
    goodbye, and gets the bot's BYE (SIPp waits for it)."""
    from connectors.callbot.call import TIME_UP

    bot = _another_callbot(callbot, callbot_max_call_s=4.0)
    recorder = Recorder()
    started = time.monotonic()
    try:
        result = sipp(bot, "max_length.xml", recorder)
        ended = time.monotonic()
    finally:
        recorder.close()
        _stop(callbot, bot)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    call = bot.finished[-1]
    assert call.timed_out and call.transcript[-1]["text"] == TIME_UP
    goodbye_s = len(bot.tts.cache[TIME_UP]) / 8000
    assert 4 + goodbye_s - 1 < ended - started < 4 + goodbye_s + 8
    assert recorder.voiced_seconds(started + 4.5) > goodbye_s * 0.6  # the goodbye was heard before the BYE


def test_digest_auth_challenges_an_invite_and_admits_only_the_right_password(callbot: Callbot) -> None:
    """With a SIP user name and password set: SIPp's INVITE without credentials gets 401 with a nonce; with the
    right digest the call is set up; with a wrong password 403 and no call."""
    bot = _another_callbot(callbot, callbot_sip_username="tongdai", callbot_sip_password=SecretStr("mật-khẩu-dài-7Qx2"))
    recorder = Recorder()
    try:
        ok = sipp(bot, "auth.xml", recorder, "-au", "tongdai", "-ap", "mật-khẩu-dài-7Qx2")
        time.sleep(1)  # the bot lets a call go half a second after its BYE
        calls_after_ok = len(bot.finished) + len(bot.calls)
        wrong = sipp(bot, "auth_refused.xml", recorder, "-au", "tongdai", "-ap", "mat-khau-sai")
        time.sleep(1)
        calls_after_wrong = len(bot.finished) + len(bot.calls)
    finally:
        recorder.close()
        _stop(callbot, bot)
    assert ok.returncode == 0, ok.stderr[-3000:] + ok.stdout[-2000:]
    assert calls_after_ok == 1
    assert wrong.returncode == 0, wrong.stderr[-3000:] + wrong.stdout[-2000:]
    assert calls_after_wrong == 1


def test_digest_nonces_expire_and_cannot_be_replayed(callbot: Callbot) -> None:
    """A stolen Authorization header does not place a second call (its nonce count was used), and a nonce older
    than its lifetime earns a new challenge marked stale instead of a call."""
    import re

    from connectors.callbot.digest import digest_response

    bot = _another_callbot(callbot, callbot_sip_username="tongdai", callbot_sip_password=SecretStr("mật-khẩu-dài-7Qx2"))
    bot.endpoint.auth.nonce_ttl = 2.0
    peer, recorder = Peer(), Recorder()
    sdp = GOOD_SDP.replace("4000", str(recorder.port))
    uri = f"sip:callbot@127.0.0.1:{bot.port}"

    def authorization(challenge: str) -> str:
        nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)
        response = digest_response("tongdai", "vnassist-callbot", "mật-khẩu-dài-7Qx2", "INVITE", uri, nonce,
                                   "00000001", "c0ffee")
        return (f'Authorization: Digest username="tongdai", realm="vnassist-callbot", nonce="{nonce}", uri="{uri}", '
                f'response="{response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"\n')

    try:
        peer.send(bot.port, _invite(peer, bot.port, "digest-1@test", sdp))
        challenge = peer.final()
        assert challenge.startswith("SIP/2.0 401") and 'qop="auth"' in challenge
        header = authorization(challenge)
        peer.send(bot.port, _invite(peer, bot.port, "digest-1@test", sdp, header, cseq=2))
        assert peer.final().startswith("SIP/2.0 200")
        # the same header on a new call: refused (a new challenge), no second call
        peer.send(bot.port, _invite(peer, bot.port, "digest-2@test", sdp, header, cseq=1))
        assert peer.final("digest-2@test").startswith("SIP/2.0 401")
        # a nonce past its lifetime: 401 with stale=true
        peer.send(bot.port, _invite(peer, bot.port, "digest-3@test", sdp))
        fresh = peer.final("digest-3@test")
        time.sleep(2.5)
        peer.send(bot.port, _invite(peer, bot.port, "digest-3@test", sdp, authorization(fresh), cseq=2))
        stale = peer.final("digest-3@test")
        assert stale.startswith("SIP/2.0 401") and "stale=true" in stale
        assert [c.dialog.call_id for c in bot.calls.values()] == ["digest-1@test"]
    finally:
        peer.close()
        recorder.close()
        _stop(callbot, bot)


def test_a_public_bind_without_allowed_peers_or_digest_auth_is_warned_about(settings, assistant, caplog) -> None:
    def warning_for(**overrides: object) -> str | None:
        return Callbot(assistant, settings.model_copy(update=overrides)).exposure_warning()

    assert warning_for(callbot_host="127.0.0.1") is None
    assert "VNA_CALLBOT_ALLOWED_PEERS" in (warning_for(callbot_host="0.0.0.0") or "")
    assert "VNA_CALLBOT_ALLOWED_PEERS" in (warning_for(callbot_host="10.0.0.20") or "")
    assert warning_for(callbot_host="0.0.0.0", callbot_allowed_peers=["10.0.0.5"]) is None
    assert warning_for(callbot_host="0.0.0.0", callbot_sip_username="tongdai", callbot_sip_password=SecretStr("x" * 20)) is None

    async def start_and_stop() -> None:
        bot = Callbot(assistant, settings.model_copy(update={"callbot_host": "0.0.0.0", "callbot_port": 0,
                                                             "callbot_speech": False}))
        await bot.start()
        await bot.stop()

    with caplog.at_level("WARNING", logger="connectors.callbot"):
        asyncio.run(start_and_stop())
    assert any("beyond loopback" in r.getMessage() for r in caplog.records)
