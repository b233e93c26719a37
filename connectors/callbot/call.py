"""One phone call: greeting, spoken questions or the keypad menu, follow-ups, transfer, rating, goodbye.

Events (key presses, the end of a spoken turn) are handled one at a time by the call's task; barge-in is not an
event — a key or the start of speech empties the playback queue at once, from the RTP callback.

Every answer comes from the one core: spoken questions go through ``Assistant.turn(f"phone:{call_id}", text,
"phone")`` like any text channel; a keypad choice asks the engine to describe the chosen procedure and aspect and
is recorded as a turn of the same conversation, so "còn lệ phí thì sao?" afterwards is about that procedure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bot.domain import ConversationState, Reply
from bot.text.vietnamese import fold
from connectors.callbot.menu import Menu
from connectors.callbot.speakable import sentences, speakable
from connectors.callbot.speech import EnergyVad, RecognitionPool, silence

if TYPE_CHECKING:
    from connectors.callbot import Callbot
    from connectors.callbot.rtp import RtpSession
    from connectors.callbot.sip import Dialog, SipEndpoint

log = logging.getLogger("connectors.callbot")

WELCOME = "Xin chào, đây là tổng đài tự động giải đáp thủ tục hành chính."
ASK_SPEECH = "Bạn hãy nói ngắn gọn câu hỏi về thủ tục, ví dụ: làm lại căn cước ở đâu. Hoặc dùng bàn phím."
ANY_TIME = "Bấm 0 để gặp cán bộ, bấm 9 để kết thúc."
AFTER_ANSWER = "Bạn có thể hỏi tiếp. Bấm sao để nghe lại, bấm thăng để quay lại, bấm 0 để gặp cán bộ, bấm 9 để kết thúc."
NOT_UNDERSTOOD = "Xin lỗi, tôi chưa nghe rõ. Bạn nói lại ngắn gọn giúp tôi, hoặc bấm phím."
TO_KEYPAD = "Tôi vẫn chưa nghe rõ, mời bạn dùng bàn phím."
ASR_BUSY = "Hệ thống nhận dạng giọng nói đang bận, mời bạn dùng bàn phím."
BAD_KEY = "Phím này không có trong danh sách."
RATING = "Bạn hãy bấm một phím từ 1 đến 5 để đánh giá cuộc gọi: 1 là rất không hài lòng, 5 là rất hài lòng."
THANKS = "Cảm ơn bạn đã đánh giá. Chào bạn."
GOODBYE = "Cảm ơn bạn đã gọi. Chào bạn."
TIME_UP = "Cuộc gọi đã đến giới hạn thời gian. Cảm ơn bạn đã gọi, bạn có thể gọi lại nếu cần. Chào bạn."
TRANSFERRING = "Mình đang chuyển máy tới cán bộ, mã yêu cầu {ticket}. Bạn vui lòng chờ trong giây lát."
# The caller's number is not stored (personal data), so staff cannot call back: the caller is given the ticket.
NO_TRANSFER = ("Hiện chưa chuyển máy được. Bạn vui lòng gọi tổng đài {hotline} trong giờ hành chính và đọc mã yêu "
               "cầu {ticket}, cán bộ sẽ xem lại cuộc gọi này để hỗ trợ bạn.")
CODE_HINT = "Muốn xem chi tiết, bạn tìm mã thủ tục {code} trên Cổng dịch vụ công."

_ASK_HUMAN = re.compile(r"\b(gap|noi chuyen (voi|vs)|chuyen (may|cho)|ket noi( voi)?) "
                        r"(nhan vien|can bo|nguoi|tong dai vien|tu van vien)\b|\btong dai vien\b")
_END = re.compile(r"\b(tam biet|chao nhe|het roi|khong con gi|ket thuc)\b")


@dataclass
class TurnTimes:
    """Stage timestamps of one turn (perf_counter seconds); logged as milliseconds from the end of speech."""

    mode: str
    end_of_speech: float
    detected: float | None = None  # VAD decided the turn was over
    recognised: float | None = None
    answered: float | None = None
    synthesised: float | None = None
    first_audio: float | None = None
    text: str = ""
    confidence: float | None = None
    extra: dict = field(default_factory=dict)

    def report(self) -> dict:
        def ms(t: float | None) -> float | None:
            return None if t is None else round((t - self.end_of_speech) * 1000, 1)

        return {"mode": self.mode, "vad_ms": ms(self.detected), "asr_ms": ms(self.recognised),
                "answer_ms": ms(self.answered), "tts_ms": ms(self.synthesised), "first_audio_ms": ms(self.first_audio),
                "confidence": self.confidence, **self.extra}


class Call:
    def __init__(self, bot: Callbot, dialog: Dialog, rtp: RtpSession) -> None:
        self.bot = bot
        self.dialog = dialog
        self.rtp = rtp
        self.session_id = f"phone:{dialog.call_id}"
        self.events: asyncio.Queue = asyncio.Queue()
        settings = bot.settings
        self.vad = EnergyVad(hangover_ms=settings.callbot_vad_hangover_ms, min_rms=settings.callbot_vad_min_rms,
                             early_ms=settings.callbot_vad_early_ms)
        self.early: tuple[int, asyncio.Future] | None = None  # (samples, recognition) started at a pause
        self.speech = bot.pool is not None
        self.listening = False  # speech is taken once the greeting has started
        self.misunderstood = 0
        self.state = "menu"  # menu | group | procedure | answered | rating | transfer | done
        self.group: int | None = None
        self.procedure: tuple[str, str] | None = None
        self.last_said = ""
        self.transcript: list[dict] = []
        self.task: asyncio.Task | None = None
        self.limit_task: asyncio.Task | None = None
        self.timed_out = False
        self.turns: list[dict] = []
        self.rated: int | None = None
        self.transfer_status: int | None = None

    @property
    def menu(self) -> Menu:
        return self.bot.menu

    @property
    def endpoint(self) -> SipEndpoint:
        """The SIP endpoint the call came in on (calls exist only while it runs)."""
        if self.bot.endpoint is None:
            raise RuntimeError("the SIP endpoint is not running")
        return self.bot.endpoint

    @property
    def pool(self) -> RecognitionPool:
        """The speech recognisers (only used while ``self.speech`` is on, which needs them)."""
        if self.bot.pool is None:
            raise RuntimeError("speech recognition is off")
        return self.bot.pool

    # ----- from the RTP session (event loop thread)
    def on_audio(self, frame: np.ndarray) -> None:
        if not (self.speech and self.listening) or self.state in ("rating", "transfer", "done"):
            return
        now = time.perf_counter()
        event = self.vad.feed(frame, now)
        if event == "start":
            self.rtp.stop()  # barge-in
        elif event == "pause" and self.vad.partial is not None and self.pool.idle:
            # recognise now, while waiting to be sure the turn is over; only when a worker is free, so early
            # guesses never queue in front of finished turns
            self.early = (len(self.vad.partial), asyncio.ensure_future(self.pool.submit(self.vad.partial)))
        elif event == "end" and self.vad.utterance is not None:
            self.events.put_nowait(("speech", self.vad.utterance, self.vad.last_voice_at, now))

    def on_tick(self) -> None:
        """No packets for as long as the hangover while the caller was speaking: their turn is over (DTX)."""
        if self.vad.speaking and self.rtp.idle_since < time.monotonic() - self.vad.hangover * 0.02:
            now = time.perf_counter()
            silent = np.zeros(160, dtype=np.int16)
            for _ in range(self.vad.hangover):
                if self.vad.feed(silent, self.vad.last_voice_at) == "end" and self.vad.utterance is not None:
                    self.events.put_nowait(("speech", self.vad.utterance, self.vad.last_voice_at, now))
                    break

    def on_key(self, key: str) -> None:
        self.rtp.stop()  # barge-in
        self.events.put_nowait(("key", key, time.perf_counter()))

    # ----- the call's task
    async def run(self) -> None:
        try:
            await self.say(" ".join([WELCOME, ASK_SPEECH if self.speech else "", self.menu.group_prompt(), ANY_TIME]),
                           cache=True)
            self.listening = True
            while self.state != "done":
                try:
                    event = await asyncio.wait_for(self.events.get(), self._idle_timeout())
                except TimeoutError:
                    if self.rtp.playing:
                        continue
                    await self.finish(GOODBYE)
                    break
                if event[0] == "key":
                    await self.key(event[1], event[2])
                elif event[0] == "speech":
                    await self.spoken(event[1], event[2], event[3])
                elif event[0] == "hangup":
                    break
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug in one call must not take the line down silently
            log.exception("callbot: call %s failed", self.dialog.call_id)
            if not self.dialog.ended:
                await self.endpoint.hangup(self.dialog)

    async def time_limit(self, max_call_s: float) -> None:
        """The longest a call may last: then whatever is going on stops, the caller hears a short goodbye and the
        bot hangs up (BYE). If saying goodbye itself gets stuck, the BYE goes anyway 15 s later."""
        try:
            await asyncio.sleep(max_call_s)
            if self.dialog.ended:
                return
            self.timed_out = True
            log.info("callbot: call %s reached the maximum length (%.0f s); ending it", self.dialog.call_id, max_call_s)
            if self.task is not None and not self.task.done():
                self.task.cancel()
            self.rtp.stop()
            self.state, self.listening = "done", False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._say_and_drain(TIME_UP), 15)
            if not self.dialog.ended:
                await self.endpoint.hangup(self.dialog)
        except asyncio.CancelledError:
            pass

    async def _say_and_drain(self, text: str) -> None:
        await self.say(text, cache=True)
        await self.rtp.drained()
        await asyncio.sleep(0.2)

    def _idle_timeout(self) -> float:
        return self.bot.settings.callbot_idle_timeout_s + len(self.rtp.queue) * 0.02

    async def say(self, text: str, cache: bool = False, times: TurnTimes | None = None) -> None:
        """Synthesise sentence by sentence and queue each as soon as it is ready (the first plays meanwhile)."""
        self.last_said = text
        self.transcript.append({"role": "bot", "text": text})
        if times is not None:
            self.rtp.first_frame_sent = lambda t: setattr(times, "first_audio", t)
        for i, piece in enumerate(sentences(text) if not cache else [text]):
            pcm = await self.bot.tts.synthesize(piece, cache=cache)
            if times is not None and i == 0:
                times.synthesised = time.perf_counter()
            self.rtp.play(np.concatenate([pcm, silence(200)]))

    # ----- keys
    async def key(self, key: str, pressed_at: float) -> None:
        if self.state == "rating":
            if key in "12345":
                self.rated = int(key)
                await asyncio.to_thread(self.bot.assistant.store.rate, self.session_id, "phone", int(key))
                await self.finish(THANKS)
            else:
                await self.say(RATING, cache=True)
            return
        if self.state in ("transfer", "done"):
            return
        if key == "0":
            await self.transfer("requested")
        elif key == "*":
            await self.say(self.last_said)
        elif key == "9":
            await self.ask_rating()
        elif key == "#":
            await self.back()
        elif self.state == "menu" or (self.state == "answered" and self.procedure is None):
            group = self.menu.group(key)
            if group is None:
                await self.say(f"{BAD_KEY} {self.menu.group_prompt()}", cache=True)
                return
            self.state, self.group = "group", group
            await self.say(self.menu.procedures_prompt(group), cache=True)
        elif self.state == "group" and self.group is not None:
            chosen = self.menu.procedure(self.group, key)
            if chosen is None:
                await self.say(f"{BAD_KEY} {self.menu.procedures_prompt(self.group)}", cache=True)
                return
            self.state, self.procedure = "procedure", chosen
            await self.say(self.menu.aspects_prompt(chosen[1]), cache=True)
        elif self.state in ("procedure", "answered") and self.procedure is not None:
            aspect = self.menu.aspect(key)
            if aspect is None:
                await self.say(f"{BAD_KEY} {self.menu.aspects_prompt(self.procedure[1])}", cache=True)
                return
            await self.keypad_answer(self.procedure, aspect, pressed_at)

    async def back(self) -> None:
        if self.state == "group" or (self.state == "answered" and self.procedure is None):
            self.state, self.group, self.procedure = "menu", None, None
            await self.say(self.menu.group_prompt(), cache=True)
        elif self.state in ("procedure", "answered") and self.group is not None:
            self.state, self.procedure = "group", None
            await self.say(self.menu.procedures_prompt(self.group), cache=True)
        else:
            self.state, self.group, self.procedure = "menu", None, None
            await self.say(self.menu.group_prompt(), cache=True)

    async def keypad_answer(self, procedure: tuple[str, str], aspect: tuple[str, str], pressed_at: float) -> None:
        times = TurnTimes("keypad", pressed_at)
        assistant = self.bot.assistant
        code, label = procedure
        question = f"{aspect[1]} {label}"

        def describe() -> tuple[Reply, ConversationState]:
            with assistant._lock:  # the engine's one-inference-at-a-time lock (bot/service.py)
                return assistant.engine.describe(code, question, [aspect[0]])

        reply, state = await asyncio.to_thread(describe)
        await asyncio.to_thread(assistant.store.record, self.session_id, "phone", reply, state,
                                (time.perf_counter() - pressed_at) * 1000, procedure=code)
        times.answered = time.perf_counter()
        self.transcript.append({"role": "user", "text": f"[phím] {question}"})
        self.state = "procedure"
        text = speakable(reply.reply)
        await self.say(f"{text} {CODE_HINT.format(code=speakable(code))} {self.aspect_reminder()}", times=times)
        self.log_turn(times)

    def aspect_reminder(self) -> str:
        return "Bấm số khác để nghe phần khác, bấm sao để nghe lại, bấm thăng để quay lại."

    # ----- speech
    async def spoken(self, pcm: np.ndarray, end_of_speech: float, detected: float) -> None:
        times = TurnTimes("speech", end_of_speech, detected=detected)
        if self.state in ("rating", "transfer", "done"):
            return
        result = None
        early, self.early = self.early, None
        if early is not None and early[0] == len(pcm):  # the caller did not speak again: the early result holds
            result = await early[1]
            times.extra["early"] = True
        if result is None:
            result = await self.pool.submit(pcm)
        times.recognised = time.perf_counter()
        if result is None:  # the recognition pool is full: degrade to the keypad
            self.speech = False
            times.extra["asr"] = "busy"
            await self.say(f"{ASR_BUSY} {self.menu.group_prompt()}", times=times)
            self.log_turn(times)
            return
        times.text, times.confidence = result.text, result.confidence
        if not result.text or result.confidence < self.bot.settings.callbot_asr_min_confidence:
            self.misunderstood += 1
            times.extra["asr"] = "low_confidence"
            if self.misunderstood >= 2:
                self.speech = False  # twice not understood: the keypad from now on
                self.state, self.group, self.procedure = "menu", None, None
                await self.say(f"{TO_KEYPAD} {self.menu.group_prompt()} {ANY_TIME}", times=times)
            else:
                await self.say(NOT_UNDERSTOOD, times=times)
            self.log_turn(times)
            return
        self.misunderstood = 0
        self.transcript.append({"role": "user", "text": result.text})
        folded = fold(result.text)
        if _ASK_HUMAN.search(folded):
            self.log_turn(times)
            await self.transfer("requested")
            return
        turn = await self.bot.assistant.turn(self.session_id, result.text, "phone")
        times.answered = time.perf_counter()
        reply = turn.reply
        if reply.outcome == "handoff":  # the dialogue layer opened a ticket already
            self.log_turn(times)
            await self.transfer("requested", ticket=_ticket_of(reply.reply))
            return
        if reply.intent in ("thanks", "goodbye") or _END.search(folded) or any(
                b.payload.startswith("/rate") for b in turn.buttons):
            self.log_turn(times)
            await self.ask_rating()
            return
        text = speakable(reply.reply)
        options = [b.title for b in turn.buttons if not b.payload.startswith("/")]
        if options:
            text += " Bạn có thể nói số thứ tự của thủ tục bạn cần."
        self.state, self.procedure = "answered", None
        await self.say(f"{text} {AFTER_ANSWER}", times=times)
        self.log_turn(times)

    # ----- transfer, rating, end
    async def transfer(self, reason: str, ticket: int | None = None) -> None:
        self.state = "transfer"
        self.listening = False
        assistant, settings = self.bot.assistant, self.bot.settings
        if ticket is None:
            ticket = await asyncio.to_thread(assistant.store.open_ticket, self.session_id, "phone", reason,
                                             [t for t in self.transcript if t["role"] == "user"] or self.transcript)
        if not settings.callbot_transfer_uri:
            self.state = "answered"
            self.listening = True
            await self.say(NO_TRANSFER.format(ticket=ticket, hotline=settings.hotline) + " " + AFTER_ANSWER)
            return
        await self.say(TRANSFERRING.format(ticket=ticket), cache=False)
        await self.rtp.drained()
        status = await self.endpoint.refer(self.dialog, settings.callbot_transfer_uri)
        self.transfer_status = status
        log.info("callbot: call %s transfer to %s -> %s", self.dialog.call_id, settings.callbot_transfer_uri, status)
        if status is not None and 200 <= status < 300:
            self.state = "done"
            await self.endpoint.hangup(self.dialog)
            return
        self.state, self.listening = "answered", True
        await self.say(NO_TRANSFER.format(ticket=ticket, hotline=settings.hotline) + " " + AFTER_ANSWER)

    async def ask_rating(self) -> None:
        self.state = "rating"
        await self.say(RATING, cache=True)

    async def finish(self, text: str) -> None:
        self.state = "done"
        await self.say(text, cache=True)
        await self.rtp.drained()
        await asyncio.sleep(0.2)
        await self.endpoint.hangup(self.dialog)

    def log_turn(self, times: TurnTimes) -> None:
        """Log the turn's stage timings once its first audio went out (or a second later, whatever came)."""

        async def wait_and_log() -> None:
            for _ in range(100):
                if times.first_audio is not None:
                    break
                await asyncio.sleep(0.01)
            record = {"call": self.dialog.call_id, **times.report()}
            self.turns.append(record | {"text": times.text})  # what was heard stays in memory, not in the log
            self.bot.record_latency(record)

        self.bot.spawn(wait_and_log())


def _ticket_of(text: str) -> int | None:
    match = re.search(r"#(\d+)", text)
    return int(match.group(1)) if match else None
