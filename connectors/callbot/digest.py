"""SIP digest authentication of INVITEs (RFC 3261 §22 with RFC 2617/7616 MD5 digest, qop=auth), server side.

The PBX (or trunk) is configured with the same user name and password as ``VNA_CALLBOT_SIP_USERNAME`` /
``VNA_CALLBOT_SIP_PASSWORD``; an INVITE without valid credentials is challenged with 401 and a fresh nonce.

Nonces are stateless: ``<issued-at>.<random>.<HMAC(process key, issued-at.random)>``, so any nonce this process
issued can be checked without a table, and one older than ``nonce_ttl`` seconds is answered with a new challenge
marked ``stale=true`` (the peer retries without asking anyone for the password). Replays are refused: for each
nonce the highest nonce-count (``nc``) seen is kept, and a request must bring a higher one. Failed attempts are
counted per source address with the project's rate limiter; past the limit the address gets 403 without its
credentials being looked at.

Header parsing uses Werkzeug's HTTP ``Authorization`` parser (the SIP header has the same grammar); the digest
itself is hashlib's MD5, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from werkzeug.datastructures import Authorization

from bot.ratelimit import RateLimiter, address_key

REALM = "vnassist-callbot"
NONCE_TTL = 300.0  # seconds a challenge stays valid


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def digest_response(username: str, realm: str, password: str, method: str, uri: str, nonce: str, nc: str,
                    cnonce: str, qop: str = "auth") -> str:
    """RFC 2617 §3.2.2.1 with qop=auth: MD5(HA1:nonce:nc:cnonce:qop:HA2)."""
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def same_target(digest_uri: str, request_uri: str) -> bool:
    """The digest's ``uri`` names the request's target: the Request-URI itself (RFC 2617 §3.2.2.5), or the same
    host and port without or with another user part (SIPp and some PBXs sign ``sip:host:port``). The response is
    computed over the digest's ``uri``, and a nonce count is never accepted twice, so this admits no replay."""
    if digest_uri == request_uri:
        return True

    def host(uri: str) -> str | None:
        if not uri.lower().startswith("sip:"):
            return None
        return uri[4:].split(";")[0].split("?")[0].rpartition("@")[2].lower() or None

    return host(digest_uri) is not None and host(digest_uri) == host(request_uri)


@dataclass
class Verdict:
    """ok: let the request through; otherwise answer ``status`` (401 with ``challenge``, or 403) and why."""

    ok: bool
    status: int = 0
    challenge: str | None = None
    why: str = ""


class DigestAuthenticator:
    def __init__(self, username: str, password: str, realm: str = REALM, nonce_ttl: float = NONCE_TTL,
                 failure_limit: str = "10/minute;100/hour", limiter: RateLimiter | None = None) -> None:
        self.username = username
        self._password = password
        self.realm = realm
        self.nonce_ttl = nonce_ttl
        self.failure_limit = failure_limit
        self.limiter = limiter or RateLimiter()
        self._key = secrets.token_bytes(32)
        self._counts: OrderedDict[str, int] = OrderedDict()  # nonce -> highest nc used (bounded, oldest out)
        self._blocked: dict[str, float] = {}  # address -> monotonic time its failed attempts stop being refused

    # ----- nonces
    def new_nonce(self, now: float | None = None) -> str:
        stamp = f"{int(now if now is not None else time.time())}.{secrets.token_hex(8)}"
        mac = hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{stamp}.{mac}"

    def _nonce_age(self, nonce: str) -> float | None:
        """Seconds since this process issued ``nonce``; None if it did not issue it."""
        stamp, _, mac = nonce.rpartition(".")
        issued, _, _random = stamp.partition(".")
        expected = hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        if not issued.isdigit() or not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        return time.time() - int(issued)

    def challenge(self, stale: bool = False) -> str:
        return (f'Digest realm="{self.realm}", nonce="{self.new_nonce()}", algorithm=MD5, qop="auth"'
                + (", stale=true" if stale else ""))

    # ----- checking a request
    def check(self, method: str, request_uri: str, header: str | None, host: str) -> Verdict:
        who = address_key(host)
        if self._blocked.get(who, 0.0) > time.monotonic():
            return Verdict(False, 403, None, "too many failed attempts from this address")
        if header is None:
            return Verdict(False, 401, self.challenge(), "no credentials")
        auth = Authorization.from_header(header[:2048])
        params = auth.parameters if auth is not None and auth.type == "digest" else {}
        nonce, nc, cnonce = params.get("nonce") or "", params.get("nc") or "", params.get("cnonce") or ""
        age = self._nonce_age(nonce) if nonce else None
        if age is None:  # not our nonce (or none): a fresh challenge, not a failure
            return Verdict(False, 401, self.challenge(), "unknown nonce")
        if params.get("qop") != "auth" or (params.get("algorithm") or "MD5").upper() != "MD5" \
                or len(nc) != 8 or not all(c in "0123456789abcdefABCDEF" for c in nc) or not cnonce:
            return self._failed(who, "digest without qop=auth, MD5, nc and cnonce")
        uri = params.get("uri") or ""
        if params.get("username") != self.username or params.get("realm") != self.realm \
                or not same_target(uri, request_uri):
            return self._failed(who, "wrong user name, realm or URI")
        expected = digest_response(self.username, self.realm, self._password, method, uri, nonce, nc, cnonce)
        if not hmac.compare_digest(expected.encode(), (params.get("response") or "").lower().encode()):
            return self._failed(who, "wrong password")
        if age > self.nonce_ttl or age < -60:
            return Verdict(False, 401, self.challenge(stale=True), "nonce expired")
        count = int(nc, 16)
        if count <= self._counts.get(nonce, 0):
            return Verdict(False, 401, self.challenge(), "nonce count replayed")
        self._counts[nonce] = count
        self._counts.move_to_end(nonce)
        while len(self._counts) > 10_000:
            self._counts.popitem(last=False)
        return Verdict(True)

    def _failed(self, who: str, why: str) -> Verdict:
        retry_after = self.limiter.hit("sip-auth-failures", self.failure_limit, who)
        if retry_after is not None:
            if len(self._blocked) > 10_000:
                now = time.monotonic()
                self._blocked = {k: v for k, v in self._blocked.items() if v > now}
            self._blocked[who] = time.monotonic() + retry_after
        return Verdict(False, 403, None, why)
