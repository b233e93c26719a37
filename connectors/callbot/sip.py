"""A compact SIP user agent server over UDP (RFC 3261 subset) for a PBX or SIP trunk to send calls to.

What it does: answers INVITE with an SDP answer that picks PCMU or PCMA at 8 kHz (+ telephone-event), retransmits
its 200 OK until the ACK arrives, handles BYE both ways, CANCEL, OPTIONS (keep-alive pings), re-INVITE (hold, media
moved), INFO key presses (application/dtmf-relay, application/dtmf), and transfers a call with REFER (RFC 3515:
202, then the NOTIFY sipfrag tells how it went). Malformed requests get 400, unknown methods 405, offers without a
G.711 codec or with a hostile SDP 488 (unreadable SDP 400), requests from peers not in ``allowed_peers`` 403, calls
over ``max_calls`` 486; with a ``DigestAuthenticator`` new INVITEs need digest credentials (401 challenge, 403).

Inside a call only the dialog's own peer is heard: an in-dialog request must come from the address the INVITE came
from and carry the dialog's tags (RFC 3261 §12.2.2), else 481 and nothing changes; a CSeq below the caller's last
gets 500.

What it does not do: TCP/TLS, SRTP, early offers without SDP, forking or outgoing calls. The UDP transport keeps
every message under the usual 1300-byte MTU budget.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from connectors.callbot.digest import DigestAuthenticator

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


def _tag() -> str:
    """Our dialog tag: 64 random bits, so an in-dialog request cannot be forged without having seen the dialog."""
    return secrets.token_hex(8)


def _warning(code: int, text: str) -> str:
    """A Warning header value (RFC 3261 §20.43); the text may quote the offer, so it is reduced to safe characters."""
    clean = re.sub(r'[^\w .,:;/()=+-]', "?", text)[:80]
    return f'{code} callbot "{clean}"'


def _top_branch(message: Message) -> str | None:
    match = re.search(r"branch=([^;\s,]+)", message.get("via") or "")
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------------------------- SDP


@dataclass
class MediaOffer:
    address: str
    port: int
    payload_types: list[int]
    dtmf_type: int | None
    direction: str = "sendrecv"  # sendrecv | sendonly | recvonly | inactive (the offerer's view)

    @property
    def on_hold(self) -> bool:
        """A hold offer: the caller stops receiving (RFC 3264 §8.4: sendonly/inactive, or the old 0.0.0.0 form)."""
        return self.direction in ("sendonly", "inactive") or self.address == "0.0.0.0" or self.port == 0


class SdpError(ValueError):
    """An offer that is refused: ``status`` 400 (unreadable) or 488 (readable, not acceptable), with the SIP
    Warning code (RFC 3261 §20.43) that says why."""

    def __init__(self, status: int, warning: int, text: str) -> None:
        super().__init__(text)
        self.status, self.warning, self.text = status, warning, text


MAX_SDP_LINES = 200
_SDP_LINE = re.compile(r"[a-z]=[^\x00-\x08\x0a-\x1f\x7f]*")


def parse_sdp(body: bytes, peer_host: str | None = None, reinvite: bool = False) -> MediaOffer:
    """Read and check the first audio stream of an SDP offer (RFC 4566). Anything odd is an SdpError, never
    another exception: the port must be 1..65535 (0 only on hold in a re-INVITE), the connection address a
    literal IPv4 address (no host names: resolving one would let a caller make the bot query DNS and stream to
    whatever it names), not multicast, broadcast or reserved, loopback only for a loopback peer, 0.0.0.0 only on
    hold; the profile RTP/AVP (no SRTP); payload types 0..127."""
    if len(body) > 8192:
        raise SdpError(400, 399, "SDP too long")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        try:  # o=/s=/i= may carry UTF-8 names; anything else that is not text is garbage
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdpError(400, 399, "SDP is not text") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "v=0":
        raise SdpError(400, 399, "SDP must start with v=0")
    if len(lines) > MAX_SDP_LINES:
        raise SdpError(400, 399, "SDP has too many lines")
    session_address: tuple[str, str] | None = None  # (address type, address) of a session-level c= line
    session_direction = "sendrecv"
    audio: dict | None = None
    in_audio = False
    for line in lines:
        if not _SDP_LINE.fullmatch(line):
            raise SdpError(400, 399, f"bad SDP line {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            in_audio = False
            if len(parts) < 4:
                raise SdpError(400, 399, "bad m= line")
            if parts[0] == "audio" and audio is None:
                in_audio = True
                port = parts[1].split("/")[0]
                if not port.isdigit() or len(port) > 5:
                    raise SdpError(400, 399, "bad media port")
                if not all(p.isdigit() and len(p) <= 3 and int(p) <= 127 for p in parts[3:]):
                    raise SdpError(400, 399, "bad payload type in m= line")
                audio = {"port": int(port), "proto": parts[2], "pts": [int(p) for p in parts[3:]],
                         "address": None, "dtmf": None, "direction": None, "portcount": "/" in parts[1]}
        elif kind == "c":
            parts = value.split()
            if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
                raise SdpError(400, 399, "bad c= line")
            connection = (parts[1], parts[2])
            if in_audio and audio is not None:
                audio["address"] = connection
            elif audio is None:
                session_address = connection
        elif kind == "a":
            if value in ("sendrecv", "sendonly", "recvonly", "inactive"):
                if in_audio and audio is not None:
                    audio["direction"] = value
                elif audio is None:
                    session_direction = value
            elif in_audio and audio is not None and value.startswith("rtpmap:"):
                number, _, encoding = value[len("rtpmap:"):].partition(" ")
                fields = encoding.strip().split("/")
                if number.isdigit() and fields[0].lower() == "telephone-event" and fields[1:2] == ["8000"] \
                        and int(number) in audio["pts"]:
                    audio["dtmf"] = int(number)
    if audio is None:
        raise SdpError(488, 304, "no audio stream in the offer")
    if audio["proto"] != "RTP/AVP":
        raise SdpError(488, 302, f"only RTP/AVP, not {audio['proto'][:20]}")
    if audio["portcount"]:
        raise SdpError(488, 307, "one port per stream")
    direction = audio["direction"] or session_direction
    family, address = audio["address"] or session_address or (None, None)
    if address is None:
        raise SdpError(400, 399, "no connection address (c=)")
    if family != "IP4":
        raise SdpError(488, 301, "only IPv4 media addresses")
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError as exc:
        raise SdpError(488, 301, "the connection address must be an IPv4 address, not a name") from exc
    hold = reinvite and (ip.is_unspecified or audio["port"] == 0 or direction in ("sendonly", "inactive"))
    if audio["port"] > 65535 or (audio["port"] == 0 and not hold):
        raise SdpError(488, 307, f"media port {audio['port']} out of range")
    if ip.is_unspecified and not hold:
        raise SdpError(488, 301, "0.0.0.0 is only for hold")
    if ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255") or (ip.is_reserved and not
                                                                            ip.is_unspecified):
        raise SdpError(488, 301, "multicast, broadcast or reserved media address")
    if ip.is_loopback and peer_host is not None and not _is_loopback(peer_host):
        raise SdpError(488, 301, "loopback media address from a remote peer")
    return MediaOffer(str(ip), audio["port"], audio["pts"], audio["dtmf"], direction)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    remote_cseq: int = 0  # highest CSeq number of the caller's requests (RFC 3261 §12.2.2: lower ones get 500)
    on_hold: bool = False


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

    def media_changed(self, dialog: Dialog) -> None:
        """A re-INVITE moved the caller's media (``dialog.media``) or put the call on hold (``dialog.on_hold``)."""


class SipEndpoint(asyncio.DatagramProtocol):
    def __init__(self, handler: CallHandler, advertised_host: str, codecs: list[int],
                 allowed_peers: list[str] | None = None, max_calls: int = 20,
                 auth: DigestAuthenticator | None = None) -> None:
        self.handler = handler
        self.auth = auth
        self.refused_in_dialog = 0  # requests that named a dialog but did not match it (481/500), for tests and logs
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
    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]  # a datagram endpoint gets a DatagramTransport
        self.transport = transport
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
        except Exception:  # one bad message must not stop the endpoint
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

    def _matches(self, dialog: Dialog, req: Message, addr: tuple[str, int]) -> str | None:
        """Why ``req`` does not belong to ``dialog`` (None when it does): it must come from the address the INVITE
        came from and carry the dialog's tags (RFC 3261 §12.2.2) — the caller's as From tag, ours as To tag. The
        INVITE's own retransmissions and its CANCEL have no To tag yet; they must repeat the INVITE's branch."""
        if addr != dialog.remote_addr:
            return f"from {addr[0]}:{addr[1]}, not the dialog's peer"
        if tag_of(req.get("from") or "") != dialog.remote_tag:
            return "wrong From tag"
        to_tag = tag_of(req.get("to") or "")
        if to_tag is None and req.method in ("INVITE", "CANCEL"):
            if req.cseq[0] != dialog.invite.cseq[0] or _top_branch(req) != _top_branch(dialog.invite):
                return "not the INVITE's transaction"
            return None
        if to_tag != dialog.local_tag:
            return "wrong To tag"
        return None

    def _request(self, req: Message, addr: tuple[str, int]) -> None:
        method = req.method
        if not self._allowed(addr):
            if method != "ACK":
                self._send(self._make_response(req, 403), addr)
            return
        dialog = self.dialogs.get(req.call_id)
        if dialog is None and tag_of(req.get("to") or "") is not None and method not in ("ACK", "OPTIONS"):
            self._send(self._make_response(req, 481), addr)  # an in-dialog request for no dialog of ours
            return
        if dialog is not None:
            why = self._matches(dialog, req, addr)
            if why is not None:
                self.refused_in_dialog += 1
                log.warning("callbot: %s for call %s refused (481): %s", method, req.call_id[:64], why)
                if method != "ACK":
                    self._send(self._make_response(req, 481), addr)
                return
            if method not in ("ACK", "CANCEL") and not (method == "INVITE" and req.cseq == dialog.invite.cseq):
                if req.cseq[0] < dialog.remote_cseq:  # out of order or replayed
                    self.refused_in_dialog += 1
                    self._send(self._make_response(req, 500, reason="Server Internal Error (CSeq out of order)"),
                               addr)
                    return
                dialog.remote_cseq = req.cseq[0]
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
            self._reinvite(req, addr, dialog)
            return
        if self.auth is not None:
            verdict = self.auth.check("INVITE", req.start.split(" ")[1], req.get("authorization"), addr[0])
            if not verdict.ok:
                log.info("callbot: INVITE %s from %s refused (%d): %s", req.call_id[:64], addr[0], verdict.status,
                         verdict.why)
                extra = [("www-authenticate", verdict.challenge)] if verdict.challenge else []
                self._send(self._make_response(req, verdict.status, to_tag=_tag(), extra=extra), addr)
                return
        self._send(self._make_response(req, 100), addr)
        if len([d for d in self.dialogs.values() if not d.ended]) >= self.max_calls:
            self._send(self._make_response(req, 486, to_tag=_tag()), addr)
            return
        if not req.body or "application/sdp" not in (req.get("content-type") or ""):
            self._send(self._make_response(req, 488, to_tag=_tag(),
                                           reason="Not Acceptable Here (an SDP offer is required)"), addr)
            return
        try:
            offer = parse_sdp(req.body, peer_host=addr[0])
        except SdpError as exc:
            log.info("callbot: INVITE %s from %s: SDP refused (%d): %s", req.call_id[:64], addr[0], exc.status,
                     exc.text)
            self._send(self._make_response(req, exc.status, to_tag=_tag(), extra=[
                ("warning", _warning(exc.warning, exc.text))]), addr)
            return
        codec = choose_codec(offer, self.codecs)
        if codec is None:
            self._send(self._make_response(req, 488, to_tag=_tag(), extra=[
                ("warning", '305 callbot "only PCMU/PCMA at 8000 Hz"')]), addr)
            return
        contact = req.get("contact")
        dialog = Dialog(call_id=req.call_id, remote_addr=addr, invite=req, local_tag=_tag(),
                        remote_tag=tag_of(req.get("from") or ""),
                        remote_uri=uri_of(contact) if contact else uri_of(req.get("from") or ""),
                        local_uri=uri_of(req.get("to") or ""), route=req.all("record-route"),
                        media=offer, codec=codec, remote_cseq=req.cseq[0])
        self.dialogs[req.call_id] = dialog
        self._spawn(self._answer(dialog))

    def _reinvite(self, req: Message, addr: tuple[str, int], dialog: Dialog) -> None:
        """A re-INVITE (session refresh, hold, media moved): its offer is checked like the first one; the codec
        stays the one chosen, a new address/port moves where the media goes, a hold offer pauses sending."""
        if req.body:
            try:
                offer = parse_sdp(req.body, peer_host=addr[0], reinvite=True)
            except SdpError as exc:
                self._send(self._make_response(req, exc.status, extra=[
                    ("warning", _warning(exc.warning, exc.text))]), addr)
                return
            if dialog.codec not in offer.payload_types and not offer.on_hold:
                self._send(self._make_response(req, 488, extra=[
                    ("warning", '305 callbot "the call\'s codec must stay"')]), addr)
                return
            moved = dialog.media is None or (offer.address, offer.port) != (dialog.media.address, dialog.media.port)
            if offer.on_hold != dialog.on_hold or (moved and not offer.on_hold):
                dialog.on_hold = offer.on_hold
                if not offer.on_hold:
                    dialog.media = offer
                self.handler.media_changed(dialog)
        answer = dialog.local_sdp
        if dialog.on_hold:
            answer = answer.replace(b"a=sendrecv", b"a=inactive" if req.body and b"a=inactive" in req.body
                                    else b"a=recvonly")
        self._send(self._make_response(req, 200, to_tag=dialog.local_tag, body=answer,
                                       extra=[("contact", self._contact()), ("allow", ALLOW)]), addr)

    async def _answer(self, dialog: Dialog) -> None:
        req, addr = dialog.invite, dialog.remote_addr
        try:
            media = await self.handler.call_started(dialog)
        except Exception:
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
        branch = _top_branch(message)
        if branch is None:
            raise ValueError("an in-dialog request needs a Via branch")
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
                         factory: Callable[[], SipEndpoint] | None = None,
                         auth: DigestAuthenticator | None = None) -> SipEndpoint:
    loop = asyncio.get_running_loop()
    _transport, endpoint = await loop.create_datagram_endpoint(
        factory or (lambda: SipEndpoint(handler, advertised_host, codecs, allowed_peers, max_calls, auth)),
        local_addr=(host, port))
    return endpoint
