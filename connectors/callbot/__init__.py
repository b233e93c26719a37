"""The phone channel: a SIP endpoint a PBX or SIP trunk sends calls to, answering with the same core as the chat.

    PBX / trunk ──SIP (UDP)──► sip.SipEndpoint ──► Call (call.py) ──► Assistant.turn(...) / engine.describe
          ▲                                          │  ▲
          └────────RTP G.711 (rtp.RtpSession)◄───────┘  └─ speech.py: VAD, Whisper (bounded pool), espeak-ng

`Callbot.start()` binds the SIP port; `serve` does it in the app's lifespan (``VNA_CALLBOT=false`` turns it off)
and `python -m bot callbot` runs it alone. Operator guide: docs/callbot.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.callbot.digest import DigestAuthenticator
from connectors.callbot.menu import Menu
from connectors.callbot.rtp import PCMA, PCMU, RtpSession, open_rtp
from connectors.callbot.sip import CallHandler, Dialog, SipEndpoint, start_endpoint
from connectors.callbot.speech import CommandSynthesizer, RecognitionPool, WhisperRecognizer, bundled_whisper_base

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.service import Assistant
    from connectors.callbot.call import Call

log = logging.getLogger("connectors.callbot")
CODEC_TYPES = {"PCMU": PCMU, "PCMA": PCMA}


def asr_model_dir(settings: Settings) -> Path:
    if settings.callbot_asr_model == "bundled:whisper-base":
        return bundled_whisper_base(settings.cache_dir)
    return Path(settings.callbot_asr_model).expanduser()


class Callbot(CallHandler):
    def __init__(self, assistant: Assistant, settings: Settings) -> None:
        self.assistant = assistant
        self.settings = settings
        self.menu = Menu.for_index(assistant.engine.kb.procedures)
        self.tts = CommandSynthesizer(settings.callbot_tts_command)
        self.pool: RecognitionPool | None = None
        if settings.callbot_speech:
            self.pool = RecognitionPool(
                lambda: WhisperRecognizer(asr_model_dir(settings), threads=settings.callbot_asr_threads),
                workers=settings.callbot_asr_workers, queue=settings.callbot_asr_queue)
        self.endpoint: SipEndpoint | None = None
        self.calls: dict[str, Call] = {}
        self.finished: list[Call] = []  # recent ended calls (tests and the benchmark read them)
        self.latencies: list[dict] = []
        self._tasks: set[asyncio.Task] = set()
        self._warmed = False

    @property
    def public_host(self) -> str:
        host = self.settings.callbot_public_host or self.settings.callbot_host
        return "127.0.0.1" if host in ("0.0.0.0", "") else host

    def authenticator(self) -> DigestAuthenticator | None:
        """Digest authentication of INVITEs when both a SIP user name and password are set."""
        settings = self.settings
        if not (settings.callbot_sip_username and settings.callbot_sip_password
                and settings.callbot_sip_password.get_secret_value()):
            return None
        from bot.ratelimit import RateLimiter

        return DigestAuthenticator(settings.callbot_sip_username, settings.callbot_sip_password.get_secret_value(),
                                   failure_limit=settings.callbot_sip_auth_failure_limit,
                                   limiter=RateLimiter.from_settings(settings))

    def exposure_warning(self) -> str | None:
        """What to log when the endpoint listens beyond loopback with neither an allow-list nor digest auth."""
        settings = self.settings
        host = settings.callbot_host or "0.0.0.0"
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback or settings.callbot_allowed_peers or self.authenticator() is not None:
            return None
        return (f"callbot: SIP listens on {host}, beyond loopback, and anyone who reaches it can place calls: set "
                "VNA_CALLBOT_ALLOWED_PEERS to your PBX's address (and VNA_CALLBOT_SIP_USERNAME/_PASSWORD for digest "
                "authentication); see docs/callbot.md")

    async def start(self) -> None:
        if self.settings.callbot_host in ("0.0.0.0", "") and not self.settings.callbot_public_host:
            log.warning("callbot: listening on all interfaces but VNA_CALLBOT_PUBLIC_HOST is not set; SDP and Contact "
                        "will say 127.0.0.1, which a PBX on another machine cannot reach")
        warning = self.exposure_warning()
        if warning:
            log.warning(warning)
        codecs = [CODEC_TYPES[c] for c in self.settings.callbot_codecs]
        auth = self.authenticator()
        self.endpoint = await start_endpoint(self, self.settings.callbot_host, self.settings.callbot_port,
                                             self.public_host, codecs, self.settings.callbot_allowed_peers,
                                             self.settings.callbot_max_calls, auth=auth)
        log.info("callbot: SIP on udp://%s:%d (RTP %s), speech %s, transfer to %s, peers %s, digest auth %s",
                 self.settings.callbot_host, self.endpoint.port, self.settings.callbot_rtp_ports,
                 "on" if self.pool else "off", self.settings.callbot_transfer_uri or "(none: tickets only)",
                 self.settings.callbot_allowed_peers or "any", "on" if auth else "off")

    @property
    def port(self) -> int:
        return self.endpoint.port if self.endpoint else 0

    async def stop(self) -> None:
        for call in list(self.calls.values()):
            if not call.dialog.ended and self.endpoint is not None:
                with _suppress():
                    await asyncio.wait_for(self.endpoint.hangup(call.dialog), 2)
            self._drop(call)
        if self.endpoint is not None:
            self.endpoint.close()
        if self.pool is not None:
            self.pool.close()
        for task in list(self._tasks):
            task.cancel()

    def spawn(self, coro: Awaitable) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- CallHandler
    async def call_started(self, dialog: Dialog) -> tuple[str, int] | None:
        from connectors.callbot.call import Call

        media = dialog.media
        assert media is not None
        holder: dict = {}
        rtp, port = await open_rtp(
            self.settings.callbot_host if self.settings.callbot_host != "0.0.0.0" else "0.0.0.0",
            self.settings.callbot_rtp_ports,
            lambda: RtpSession(dialog.codec, media.dtmf_type, (media.address, media.port),
                               on_audio=lambda f: holder["call"].on_audio(f),
                               on_dtmf=lambda k: holder["call"].on_key(k),
                               symmetric=self.settings.callbot_symmetric_rtp, signalling_host=dialog.remote_addr[0]))
        call = Call(self, dialog, rtp)
        holder["call"] = call
        rtp.on_tick = call.on_tick
        self.calls[dialog.call_id] = call
        return self.public_host, port

    def call_confirmed(self, dialog: Dialog) -> None:
        call = self.calls.get(dialog.call_id)
        if call is None:
            return
        log.info("callbot: call %s answered (%s)", dialog.call_id, "PCMU" if dialog.codec == PCMU else "PCMA")
        call.rtp.start()
        if self.pool is not None and not self._warmed:
            # load the recognition model while the first caller hears the greeting (not at start: `serve` and the
            # tests that never take a call should not pay for it)
            self._warmed = True
            self.pool.warm_up()
        call.task = asyncio.ensure_future(call.run())
        call.limit_task = asyncio.ensure_future(call.time_limit(self.settings.callbot_max_call_s))

    def call_ended(self, dialog: Dialog, reason: str) -> None:
        call = self.calls.get(dialog.call_id)
        if call is None:
            return
        log.info("callbot: call %s ended: %s", dialog.call_id, reason)
        call.state = "done"
        call.events.put_nowait(("hangup",))
        asyncio.get_running_loop().call_later(0.5, self._drop, call)

    def key_pressed(self, dialog: Dialog, key: str) -> None:
        call = self.calls.get(dialog.call_id)
        if call is not None:
            call.on_key(key)

    def media_changed(self, dialog: Dialog) -> None:
        call = self.calls.get(dialog.call_id)
        if call is None:
            return
        call.rtp.on_hold = dialog.on_hold
        if not dialog.on_hold and dialog.media is not None:
            call.rtp.move((dialog.media.address, dialog.media.port))
        log.info("callbot: call %s %s", dialog.call_id, "on hold" if dialog.on_hold else "media moved or resumed")

    def _drop(self, call: Call) -> None:
        if self.calls.pop(call.dialog.call_id, None) is None:
            return
        call.rtp.close()
        for task in (call.task, call.limit_task):
            if task is not None and not task.done():
                task.cancel()
        self.finished = (self.finished + [call])[-200:]

    # ----- latency log
    def record_latency(self, record: dict) -> None:
        self.latencies = (self.latencies + [record])[-10_000:]
        log.info("callbot: turn %s", json.dumps(record, ensure_ascii=False))
        path = self.settings.callbot_latency_log
        if path is not None:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


async def start_callbot(assistant: Assistant, settings: Settings) -> Callbot | None:
    """Start the phone channel if it is on; a port already in use is logged, not fatal (the HTTP side still serves)."""
    if not settings.callbot:
        return None
    import shlex
    import shutil

    missing = [tool for tool in (shlex.split(settings.callbot_tts_command)[0], "sox") if shutil.which(tool) is None]
    if missing:
        log.warning("callbot: %s not found, so the phone line cannot speak and stays off (Debian: apt-get install "
                    "espeak-ng sox, or bash scripts/system-deps.sh; VNA_CALLBOT=false silences this)",
                    " and ".join(missing))
        return None
    bot = Callbot(assistant, settings)
    try:
        await bot.start()
    except OSError as exc:
        log.warning("callbot: cannot listen on udp://%s:%d (%s); the phone line is off (VNA_CALLBOT_PORT changes "
                    "the port, VNA_CALLBOT=false turns it off)", settings.callbot_host, settings.callbot_port, exc)
        return None
    return bot
