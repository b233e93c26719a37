"""RTP for one call: G.711 (PCMU/PCMA) at 8 kHz in 20 ms frames, RFC 4733 key presses, a paced sender.

The sender runs one 20 ms clock per call and always sends a frame: the next frame of what is being played, or
silence. Playing is putting frames in a queue; barge-in is emptying it (`stop`). Frames go to the address the SDP
offer named, or — with ``symmetric`` (callers behind NAT) — to where the caller's packets come from.

Only the caller's media is heard: the first packet from an expected host fixes the source (address and port) and
packets from anywhere else are dropped and counted. The expected hosts are the SDP's connection address and the
address the SIP dialog came from (a NAT maps both to its public address; a host with several interfaces may name
one in its SDP and send from another). A packet from any other host never becomes the source, so nobody can inject
key presses or speech by racing the caller's first packet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

RATE = 8000
FRAME = 160  # samples in 20 ms
PCMU, PCMA = 0, 8
DTMF_EVENTS = "0123456789*#ABCD"

# ------------------------------------------------------------------------------------------------- G.711 tables


def _ulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exponent, mantissa = a & 0x80, (a >> 4) & 0x07, a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


def _encode_table(decode: np.ndarray) -> np.ndarray:
    """int16 (offset by 32768) -> the code whose decoded value is nearest: exact G.711 quantisation by table."""
    order = np.argsort(decode, kind="stable")
    values = decode[order].astype(np.int32)
    samples = np.arange(-32768, 32768, dtype=np.int32)
    pos = np.clip(np.searchsorted(values, samples), 1, len(values) - 1)
    nearer_left = (samples - values[pos - 1]) <= (values[pos] - samples)
    return order[np.where(nearer_left, pos - 1, pos)].astype(np.uint8)


_DECODE = {PCMU: _ulaw_decode_table(), PCMA: _alaw_decode_table()}
_ENCODE = {pt: _encode_table(table) for pt, table in _DECODE.items()}


def encode(pcm: np.ndarray, payload_type: int) -> bytes:
    return _ENCODE[payload_type][pcm.astype(np.int32) + 32768].tobytes()


def decode(payload: bytes, payload_type: int) -> np.ndarray:
    return _DECODE[payload_type][np.frombuffer(payload, dtype=np.uint8)]


# ------------------------------------------------------------------------------------------------- the session


class RtpSession(asyncio.DatagramProtocol):
    """The media of one call. ``on_audio(frame)`` gets decoded int16 samples; ``on_dtmf(key)`` each key once."""

    def __init__(self, payload_type: int, dtmf_type: int | None, remote: tuple[str, int],
                 on_audio: Callable[[np.ndarray], None], on_dtmf: Callable[[str], None], symmetric: bool = False,
                 signalling_host: str | None = None) -> None:
        self.payload_type = payload_type
        self.dtmf_type = dtmf_type
        self.remote = remote
        self.on_audio = on_audio
        self.on_dtmf = on_dtmf
        self.symmetric = symmetric
        self.signalling_host = signalling_host
        self.source: tuple[str, int] | None = None  # the caller's media, once its first packet came
        self.foreign_packets = 0  # packets dropped because they came from elsewhere
        self.on_hold = False  # a re-INVITE put the call on hold: nothing is sent
        self.transport: asyncio.DatagramTransport | None = None
        self.queue: deque[np.ndarray] = deque()
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)
        self.silence = encode(np.zeros(FRAME, dtype=np.int16), payload_type)
        self._talking = False
        self._clock: asyncio.Task | None = None
        self._last_event: tuple[int, int, int] | None = None  # (ssrc, rtp timestamp, event) of the last key press
        self._last_event_at = 0.0
        self.first_frame_sent: Callable[[float], None] | None = None  # called once per reply with the send time
        self.on_tick: Callable[[], None] | None = None  # every 20 ms (end-of-turn checks when the caller's side
        # stops sending during silence, as phones with discontinuous transmission do)
        self.packets_in = 0
        self.packets_out = 0
        self.dropped_frames = 0  # frames of prompts cut short by barge-in
        self.idle_since = time.monotonic()

    # ----- receiving
    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]  # a datagram endpoint gets a DatagramTransport
        self.transport = transport

    def expected_hosts(self) -> set[str]:
        return {h for h in (self.remote[0], self.signalling_host) if h is not None}

    def move(self, remote: tuple[str, int]) -> None:
        """The caller's media moved (re-INVITE): send there, and learn the source again."""
        self.remote, self.source = remote, None

    def _from_caller(self, addr: tuple[str, int]) -> bool:
        if self.source is None:
            if addr[0] not in self.expected_hosts():
                return False
            self.source = (addr[0], addr[1])
            if self.symmetric:
                self.remote = self.source
            return True
        return (addr[0], addr[1]) == self.source

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self._from_caller(addr):
            self.foreign_packets += 1
            if self.foreign_packets in (1, 100, 10_000):
                log.warning("callbot: RTP from %s:%d dropped (the call's media comes from %s); %d so far",
                            addr[0], addr[1], f"{self.source[0]}:{self.source[1]}" if self.source else " or ".join(
                                sorted(self.expected_hosts())),
                            self.foreign_packets)
            return
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        self.packets_in += 1
        self.idle_since = time.monotonic()
        csrc = data[0] & 0x0F
        offset = 12 + 4 * csrc
        if data[0] & 0x10 and len(data) >= offset + 4:  # header extension
            offset += 4 + 4 * struct.unpack("!H", data[offset + 2:offset + 4])[0]
        payload = data[offset:]
        if data[0] & 0x20 and payload:  # padding
            payload = payload[:-payload[-1]] if payload[-1] <= len(payload) else b""
        if len(payload) > 1280:  # 160 ms of G.711 at most: bigger is not a phone's packet
            return
        pt = data[1] & 0x7F
        if pt == self.dtmf_type:
            self._event(payload, struct.unpack("!II", data[4:12]))
        elif pt == self.payload_type and payload:
            self.on_audio(decode(payload, pt))

    def _event(self, payload: bytes, ts_ssrc: tuple[int, int]) -> None:
        """RFC 4733: one key press is many packets with one RTP timestamp (three copies of the end packet).

        It is reported on its first packet (so a key interrupts the prompt at once) and never again: later
        packets with the same timestamp and event, arriving within a second of the last one, are the same press."""
        if len(payload) < 4 or payload[0] >= len(DTMF_EVENTS):
            return
        key = (ts_ssrc[1], ts_ssrc[0], payload[0])
        now = time.monotonic()
        same = key == self._last_event and now - self._last_event_at < 1.0
        self._last_event, self._last_event_at = key, now
        if not same:
            self.on_dtmf(DTMF_EVENTS[payload[0]])

    # ----- sending
    def start(self) -> None:
        if self._clock is None:
            self._clock = asyncio.get_running_loop().create_task(self._run())

    def play(self, pcm: np.ndarray) -> None:
        """Queue samples (int16, 8 kHz) after what is already playing."""
        if len(pcm) % FRAME:
            pcm = np.concatenate([pcm, np.zeros(FRAME - len(pcm) % FRAME, dtype=np.int16)])
        self.queue.extend(pcm.reshape(-1, FRAME))

    def stop(self) -> None:
        """Barge-in: drop everything not yet sent."""
        self.dropped_frames += len(self.queue)
        self.queue.clear()

    @property
    def playing(self) -> bool:
        return bool(self.queue)

    async def drained(self) -> None:
        while self.queue:
            await asyncio.sleep(0.02)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                self._send_one()
                if self.on_tick is not None:
                    self.on_tick()
                next_at += 0.02
                delay = next_at - loop.time()
                if delay < -0.2:  # the loop was stalled: do not burst to catch up
                    next_at = loop.time()
                    delay = 0.0
                await asyncio.sleep(max(delay, 0.0))
        except asyncio.CancelledError:
            pass

    def _send_one(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.on_hold:
            if self.queue:
                self.queue.popleft()  # what is said meanwhile is not heard, but time passes as if it were
            return
        marker = 0
        if self.queue:
            payload = encode(self.queue.popleft(), self.payload_type)
            if not self._talking:
                self._talking, marker = True, 0x80
                if self.first_frame_sent is not None:
                    self.first_frame_sent(time.perf_counter())
                    self.first_frame_sent = None
        else:
            payload, self._talking = self.silence, False
        header = struct.pack("!BBHII", 0x80, marker | self.payload_type, self.seq, self.timestamp, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + FRAME) & 0xFFFFFFFF
        self.transport.sendto(header + payload, self.remote)
        self.packets_out += 1

    def close(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
        if self.transport is not None:
            self.transport.close()


async def open_rtp(host: str, ports: tuple[int, int], factory: Callable[[], RtpSession]) -> tuple[RtpSession, int]:
    """Bind the session on the first free even port of ``ports`` (inclusive range); 0..0 = any free port."""
    loop = asyncio.get_running_loop()
    low, high = ports
    candidates = [0] if low == 0 else list(range(low + low % 2, high + 1, 2))
    if low:
        start = (os.getpid() + int(time.time() * 1000)) % max(len(candidates), 1)
        candidates = candidates[start:] + candidates[:start]
    last: OSError | None = None
    for port in candidates:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        _transport, protocol = await loop.create_datagram_endpoint(factory, sock=sock)
        return protocol, sock.getsockname()[1]
    raise OSError(f"no free RTP port in {low}-{high}") from last
