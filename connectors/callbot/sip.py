"""A compact SIP user agent server over UDP (RFC 3261 subset) for a PBX or SIP trunk to send calls to.

What it does: answers INVITE with an SDP answer that picks PCMU or PCMA at 8 kHz (+ telephone-event), retransmits
its 200 OK until the ACK arrives, handles BYE both ways, CANCEL, OPTIONS (keep-alive pings), re-INVITE (same
media), INFO key presses (application/dtmf-relay, application/dtmf), and transfers a call with REFER (RFC 3515:
202, then the NOTIFY sipfrag tells how it went). Malformed requests get 400, unknown methods 405, offers without a
G.711 codec 488, requests from peers not in ``allowed_peers`` 403, calls over ``max_calls`` 486.

What it does not do: TCP/TLS, digest authentication (the PBX is trusted by address), SRTP, early offers without
SDP, forking or outgoing calls. The UDP transport keeps every message under the usual 1300-byte MTU budget.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

USER_AGENT = "vnassist-callbot"
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY"
T1, T2, TIMEOUT = 0.5, 4.0, 32.0
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "r": "refer-to", "o": "event", "b": "referred-by"}
REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden",
           405: "Method Not Allowed", 415: "Unsupported Media Type", 481: "Call/Transaction Does Not Exist",
           486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 500: "Server Internal Error",
           503: "Service Unavailable"}
CODECS = {0: "PCMU", 8: "PCMA"}


class SipError(ValueError):
    pass


@dataclass
class Message:
    start: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0] if self.is_request else self.cseq[1]

    @property
    def status(self) -> int:
        return int(self.start.split(" ", 2)[1])

    def get(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        number, method = (self.get("cseq") or "0 ?").split()
        return int(number), method.upper()

    def encode(self) -> bytes:
        lines = [self.start] + [f"{_canonical(k)}: {v}" for k, v in self.headers if k != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def _canonical(name: str) -> str:
    special = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}
    return special.get(name) or "-".join(p.capitalize() for p in name.split("-"))


def parse(data: bytes) -> Message:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipError("not UTF-8") from exc
    lines = re.split(r"\r?\n", text)
    start = lines[0].strip()
    if not (start.startswith("SIP/2.0 ") or re.fullmatch(r"[A-Z]+ \S+ SIP/2\.0", start)):
        raise SipError(f"bad start line: {start[:60]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipError(f"bad header line: {line[:60]!r}")
        name = name.strip().lower()
        name = COMPACT.get(name, name)
        # several values in one Via header are separate hops
        values = [v.strip() for v in value.split(",")] if name == "via" else [value.strip()]
        headers.extend((name, v) for v in values)
    message = Message(start, headers)
    length = message.get("content-length")
    if length is not None:
        if not length.isdigit() or int(length) > len(body):
            raise SipError("Content-Length does not match the body")
        body = body[:int(length)]
    message.body = body
    for required in ("via", "from", "to", "call-id", "cseq"):
        if message.get(required) is None:
            raise SipError(f"missing {required} header")
    if not re.fullmatch(r"\d+ [A-Za-z]+", message.get("cseq") or ""):
        raise SipError("bad CSeq")
    return message


def tag_of(header: str) -> str | None:
    match = re.search(r";\s*tag=([^;>\s]+)", header)
    return match.group(1) if match else None


def uri_of(header: str) -> str:
    match = re.search(r"<([^>]+)>", header)
    return match.group(1) if match else header.split(";")[0].strip()


def _branch() -> str:
    return "z9hG4bK" + uuid.uuid4().hex[:16]


# ---------------------------------------------------------------------------------------------------------- SDP


@dataclass
class MediaOffer:
    address: str
    port: int
    payload_types: list[int]
    dtmf_type: int | None


def parse_sdp(body: bytes) -> MediaOffer:
    text = body.decode("utf-8", "replace")
    address, port, pts, dtmf = None, None, [], None
    session_address = None
    in_audio = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("c=IN IP4 "):
            value = line.split()[2].split("/")[0]
            if in_audio:
                address = value
            else:
                session_address = value
        elif line.startswith("m="):
            parts = line[2:].split()
            in_audio = parts[0] == "audio" and port is None
            if in_audio:
                port = int(parts[1])
                pts = [int(p) for p in parts[3:] if p.isdigit()]
        elif in_audio and line.startswith("a=rtpmap:"):
            number, _, encoding = line[len("a=rtpmap:"):].partition(" ")
            name = encoding.split("/")[0].lower()
            if name == "telephone-event" and encoding.split("/")[1:2] == ["8000"]:
                dtmf = int(number)
    address = address or session_address
    if address is None or port is None:
        raise SipError("no audio stream in the offer")
    return MediaOffer(address, port, pts, dtmf)


def choose_codec(offer: MediaOffer, preferred: list[int]) -> int | None:
    """The caller's first G.711 payload type among the ones we allow (their order wins, RFC 3264)."""
    return next((pt for pt in offer.payload_types if pt in preferred), None)


def sdp_answer(address: str, port: int, codec: int, dtmf_type: int | None, session: int) -> bytes:
    pts = f"{codec}" + (f" {dtmf_type}" if dtmf_type is not None else "")
    lines = ["v=0", f"o=- {session} {session} IN IP4 {address}", "s=vnassist", f"c=IN IP4 {address}", "t=0 0",
             f"m=audio {port} RTP/AVP {pts}", f"a=rtpmap:{codec} {CODECS[codec]}/8000"]
    if dtmf_type is not None:
        lines += [f"a=rtpmap:{dtmf_type} telephone-event/8000", f"a=fmtp:{dtmf_type} 0-16"]
    lines += ["a=ptime:20", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


# ---------------------------------------------------------------------------------------------------------- dialogs


@dataclass
class Dialog:
    """One call as SIP sees it: who, where to send in-dialog requests, and the state of the answer."""

    call_id: str
    remote_addr: tuple[str, int]
    invite: Message
    local_tag: str
    remote_tag: str | None
    remote_uri: str  # the caller's Contact: request URI of our BYE / REFER
    local_uri: str  # the To URI of the INVITE: our side
    route: list[str]
    answer: Message | None = None
    confirmed: bool = False
    ended: bool = False
    cseq: int = field(default_factory=lambda: random.randint(1, 10000))
    media: MediaOffer | None = None
    codec: int = 0
    local_sdp: bytes = b""
    transfer: asyncio.Future | None = None  # result of a REFER: the final status the NOTIFY reported
    info_cseqs: set[int] = field(default_factory=set)  # INFO requests already taken (UDP retransmissions)


class CallHandler:
    """What the endpoint asks the application: accept a call's media, and hear about its events."""

    async def call_started(self, dialog: Dialog) -> tuple[str, int] | None:  # pragma: no cover - interface
        """Open the call's RTP; return the (address, port) to put in the answer, or None to refuse (486)."""
        raise NotImplementedError

    def call_confirmed(self, dialog: Dialog) -> None:  # pragma: no cover
        raise NotImplementedError

    def call_ended(self, dialog: Dialog, reason: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def key_pressed(self, dialog: Dialog, key: str) -> None:  # pragma: no cover
        raise NotImplementedError


class SipEndpoint(asyncio.DatagramProtocol):
    def __init__(self, handler: CallHandler, advertised_host: str, codecs: list[int],
                 allowed_peers: list[str] | None = None, max_calls: int = 20) -> None:
        self.handler = handler
        self.advertised_host = advertised_host
        self.codecs = codecs
        self.allowed = [ipaddress.ip_network(p, strict=False) for p in (allowed_peers or [])]
        self.max_calls = max_calls
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.dialogs: dict[str, Dialog] = {}
        self._pending: dict[str, asyncio.Future] = {}  # branch of our request -> its final response
        self._tasks: set[asyncio.Task] = set()

    # ----- transport
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():  # CRLF keep-alive
            return
        try:
            message = parse(data)
        except SipError as exc:
            log.info("callbot: malformed SIP from %s: %s", addr, exc)
            self._reply_malformed(data, addr, str(exc))
            return
        try:
            if message.is_request:
                self._request(message, addr)
            else:
                self._response(message)
        except Exception:  # noqa: BLE001 - one bad message must not stop the endpoint
            log.exception("callbot: error handling a SIP message from %s", addr)
            if message.is_request and message.method != "ACK":
                self._send(self._make_response(message, 500), addr)

    def _reply_malformed(self, data: bytes, addr: tuple[str, int], why: str) -> None:
        """Answer 400 when the request is readable enough to be answered (it has Via, From, To, Call-ID, CSeq)."""
        try:
            text = data.decode("utf-8", "replace")
            head = text.split("\r\n\r\n", 1)[0]
            headers = []
            for line in head.split("\r\n")[1:]:
                name, colon, value = line.partition(":")
                if colon:
                    headers.append((COMPACT.get(name.strip().lower(), name.strip().lower()), value.strip()))
            fake = Message(head.split("\r\n", 1)[0], headers)
            if fake.is_request and all(fake.get(h) for h in ("via", "from", "to", "call-id")) \
                    and not fake.start.startswith("ACK"):
                response = self._make_response(fake, 400, reason=f"Bad Request ({why[:60]})")
                self._send(response, addr)
        except Exception:  # noqa: BLE001 - unanswerable garbage is dropped
            pass

    def _send(self, message: Message, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(message.encode(), addr)

    def _spawn(self, coro: Awaitable) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- building messages
    def _make_response(self, request: Message, status: int, to_tag: str | None = None, body: bytes = b"",
                       extra: list[tuple[str, str]] | None = None, reason: str | None = None) -> Message:
        headers = [("via", v) for v in request.all("via")]
        headers += [("record-route", v) for v in request.all("record-route")]
        to = request.get("to") or ""
        if to_tag and tag_of(to) is None:
            to += f";tag={to_tag}"
        headers += [("from", request.get("from") or ""), ("to", to), ("call-id", request.call_id),
                    ("cseq", request.get("cseq") or ""), ("server", USER_AGENT)]
        headers += extra or []
        if body:
            headers.append(("content-type", "application/sdp"))
        return Message(f"SIP/2.0 {status} {reason or REASONS.get(status, 'Unknown')}", headers, body)

    def _contact(self) -> str:
        return f"<sip:callbot@{self.advertised_host}:{self.port}>"

    def _in_dialog(self, dialog: Dialog, method: str, extra: list[tuple[str, str]] | None = None,
                   body: bytes = b"", content_type: str | None = None) -> Message:
        dialog.cseq += 1
        invite = dialog.invite
        local = (invite.get("to") or "")
        if tag_of(local) is None:
            local += f";tag={dialog.local_tag}"
        headers = [("via", f"SIP/2.0/UDP {self.advertised_host}:{self.port};branch={_branch()};rport"),
                   ("max-forwards", "70")]
        headers += [("route", r) for r in dialog.route]
        headers += [("from", local), ("to", invite.get("from") or ""), ("call-id", dialog.call_id),
                    ("cseq", f"{dialog.cseq} {method}"), ("contact", self._contact()), ("user-agent", USER_AGENT)]
        headers += extra or []
        if body:
            headers.append(("content-type", content_type or "application/sdp"))
        return Message(f"{method} {dialog.remote_uri} SIP/2.0", headers, body)

    # ----- requests
    def _allowed(self, addr: tuple[str, int]) -> bool:
        if not self.allowed:
            return True
        ip = ipaddress.ip_address(addr[0])
        return any(ip in net for net in self.allowed)

    def _request(self, req: Message, addr: tuple[str, int]) -> None:
        method = req.method
        if not self._allowed(addr):
            if method != "ACK":
                self._send(self._make_response(req, 403), addr)
            return
        dialog = self.dialogs.get(req.call_id)
        if method == "INVITE":
            self._invite(req, addr, dialog)
        elif method == "ACK":
            if dialog is not None and not dialog.confirmed and dialog.answer is not None:
                dialog.confirmed = True
                self.handler.call_confirmed(dialog)
        elif method == "OPTIONS":
            self._send(self._make_response(req, 200, to_tag=uuid.uuid4().hex[:10], extra=[
                ("allow", ALLOW), ("accept", "application/sdp, application/dtmf-relay, message/sipfrag")]), addr)
        elif dialog is None:
            self._send(self._make_response(req, 481), addr)
        elif method == "BYE":
            self._send(self._make_response(req, 200), addr)
            self._end(dialog, "caller hung up")
        elif method == "CANCEL":
            # the INVITE was answered at once, so there is nothing left to cancel: the caller sends BYE next
            self._send(self._make_response(req, 200), addr)
        elif method == "INFO":
            self._info(req, addr, dialog)
        elif method == "NOTIFY":
            self._notify(req, addr, dialog)
        else:
            self._send(self._make_response(req, 405, extra=[("allow", ALLOW)]), addr)

    def _invite(self, req: Message, addr: tuple[str, int], dialog: Dialog | None) -> None:
        if dialog is not None:
            if dialog.invite.cseq == req.cseq:  # a retransmission: the answer again, or "still trying"
                self._send(dialog.answer or self._make_response(req, 100), addr)
                return
            if dialog.ended:
                self._send(self._make_response(req, 481), addr)
                return
            # re-INVITE (session refresh, hold): keep the media as it is
            self._send(self._make_response(req, 200, to_tag=dialog.local_tag, body=dialog.local_sdp,
                                           extra=[("contact", self._contact()), ("allow", ALLOW)]), addr)
            return
        self._send(self._make_response(req, 100), addr)
        if len([d for d in self.dialogs.values() if not d.ended]) >= self.max_calls:
            self._send(self._make_response(req, 486, to_tag=uuid.uuid4().hex[:10]), addr)
            return
        if not req.body or "application/sdp" not in (req.get("content-type") or ""):
            self._send(self._make_response(req, 488, to_tag=uuid.uuid4().hex[:10],
                                           reason="Not Acceptable Here (an SDP offer is required)"), addr)
            return
        try:
            offer = parse_sdp(req.body)
        except (SipError, ValueError, IndexError):
            self._send(self._make_response(req, 400, reason="Bad Request (unreadable SDP)"), addr)
            return
        codec = choose_codec(offer, self.codecs)
        if codec is None:
            self._send(self._make_response(req, 488, to_tag=uuid.uuid4().hex[:10], extra=[
                ("warning", '304 callbot "only PCMU/PCMA at 8000 Hz"')]), addr)
            return
        contact = req.get("contact")
        dialog = Dialog(call_id=req.call_id, remote_addr=addr, invite=req, local_tag=uuid.uuid4().hex[:10],
                        remote_tag=tag_of(req.get("from") or ""),
                        remote_uri=uri_of(contact) if contact else uri_of(req.get("from") or ""),
                        local_uri=uri_of(req.get("to") or ""), route=req.all("record-route"),
                        media=offer, codec=codec)
        self.dialogs[req.call_id] = dialog
        self._spawn(self._answer(dialog))

    async def _answer(self, dialog: Dialog) -> None:
        req, addr = dialog.invite, dialog.remote_addr
        try:
            media = await self.handler.call_started(dialog)
        except Exception:  # noqa: BLE001
            log.exception("callbot: could not start the call")
            media = None
        if media is None:
            self._send(self._make_response(req, 486, to_tag=dialog.local_tag), addr)
            self.dialogs.pop(dialog.call_id, None)
            return
        dialog.local_sdp = sdp_answer(media[0], media[1], dialog.codec, dialog.media.dtmf_type if dialog.media
                                      else None, int(time.time()))
        dialog.answer = self._make_response(req, 200, to_tag=dialog.local_tag, body=dialog.local_sdp,
                                            extra=[("contact", self._contact()), ("allow", ALLOW),
                                                   ("supported", "replaces")])
        interval, waited = T1, 0.0
        while not dialog.confirmed and not dialog.ended and waited < TIMEOUT:
            self._send(dialog.answer, addr)
            await asyncio.sleep(interval)
            waited += interval
            interval = min(interval * 2, T2)
        if not dialog.confirmed and not dialog.ended:
            log.warning("callbot: no ACK for call %s; hanging up", dialog.call_id)
            await self.hangup(dialog)

    def _info(self, req: Message, addr: tuple[str, int], dialog: Dialog) -> None:
        kind = (req.get("content-type") or "").split(";")[0].strip().lower()
        body = req.body.decode("utf-8", "replace")
        key = None
        if kind == "application/dtmf-relay":
            match = re.search(r"Signal\s*=\s*(1[01]|[0-9*#A-Da-d])", body)
            key = match.group(1) if match else None
            key = {"10": "*", "11": "#"}.get(key or "", key)
        elif kind == "application/dtmf":
            key = body.strip()[:1] or None
        elif not body.strip():
            self._send(self._make_response(req, 200), addr)  # an empty INFO is a keep-alive
            return
        if key is None:
            self._send(self._make_response(req, 415, extra=[
                ("accept", "application/dtmf-relay, application/dtmf")]), addr)
            return
        self._send(self._make_response(req, 200), addr)
        if req.cseq[0] in dialog.info_cseqs:  # a retransmission: answered again, not pressed again
            return
        dialog.info_cseqs.add(req.cseq[0])
        self.handler.key_pressed(dialog, key.upper())

    def _notify(self, req: Message, addr: tuple[str, int], dialog: Dialog) -> None:
        """The progress of our REFER (RFC 3515): a sipfrag with the transfer target's status line."""
        self._send(self._make_response(req, 200), addr)
        body = req.body.decode("utf-8", "replace").strip()
        match = re.match(r"SIP/2\.0 (\d{3})", body)
        state = (req.get("subscription-state") or "").lower()
        if dialog.transfer is None or dialog.transfer.done() or match is None:
            return
        status = int(match.group(1))
        if status >= 200 or state.startswith("terminated"):
            dialog.transfer.set_result(status)

    # ----- responses to our requests
    def _response(self, res: Message) -> None:
        via = res.get("via") or ""
        match = re.search(r"branch=([^;\s]+)", via)
        if match is None:
            return
        future = self._pending.get(match.group(1))
        if future is not None and not future.done() and res.status >= 200:
            future.set_result(res)

    async def _request_out(self, dialog: Dialog, message: Message) -> Message | None:
        """Send an in-dialog request, retransmitting (T1 doubling to T2) until a final response or 32 s."""
        branch = re.search(r"branch=([^;\s]+)", message.get("via") or "").group(1)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        interval, waited = T1, 0.0
        try:
            while waited < TIMEOUT:
                self._send(message, dialog.remote_addr)
                try:
                    return await asyncio.wait_for(asyncio.shield(future), interval)
                except TimeoutError:
                    waited += interval
                    interval = min(interval * 2, T2)
            return None
        finally:
            self._pending.pop(branch, None)

    # ----- what the application asks for
    async def hangup(self, dialog: Dialog) -> None:
        if dialog.ended:
            return
        self._end(dialog, "bot hung up")
        await self._request_out(dialog, self._in_dialog(dialog, "BYE"))

    async def refer(self, dialog: Dialog, target: str, wait_s: float = 30.0) -> int | None:
        """Ask the caller's side to call ``target`` (REFER). Returns the final status the NOTIFYs reported
        (200: transferred), the REFER's own error status, or None if nothing conclusive came back in time."""
        dialog.transfer = asyncio.get_running_loop().create_future()
        message = self._in_dialog(dialog, "REFER", extra=[
            ("refer-to", f"<{target}>"), ("referred-by", self._contact())])
        response = await self._request_out(dialog, message)
        if response is None:
            return None
        if response.status >= 300:
            return response.status
        try:
            return await asyncio.wait_for(dialog.transfer, wait_s)
        except TimeoutError:
            return None

    def _end(self, dialog: Dialog, reason: str) -> None:
        if dialog.ended:
            return
        dialog.ended = True
        loop = asyncio.get_running_loop()
        loop.call_later(TIMEOUT, self.dialogs.pop, dialog.call_id, None)  # absorb late retransmissions
        self.handler.call_ended(dialog, reason)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.transport is not None:
            self.transport.close()


async def start_endpoint(handler: CallHandler, host: str, port: int, advertised_host: str, codecs: list[int],
                         allowed_peers: list[str], max_calls: int,
                         factory: Callable[[], SipEndpoint] | None = None) -> SipEndpoint:
    loop = asyncio.get_running_loop()
    _transport, endpoint = await loop.create_datagram_endpoint(
        factory or (lambda: SipEndpoint(handler, advertised_host, codecs, allowed_peers, max_calls)),
        local_addr=(host, port))
    return endpoint
