"""Server-issued, signed session ids of the web chat: ``web:<random>.<signature>``.

The page asks ``POST /api/session`` for one and keeps it (localStorage). The random part (144 bits) makes an id
unguessable; the signature (HMAC-SHA256 with a key derived from the deployment secret, bot/keys.py) makes the
``web:`` namespace the server's: an id the server did not issue is refused, so nobody can pick or forge the id of a
web conversation to write into it, rate it or read its staff replies. The id itself is the citizen's only key to
the conversation; nothing else is stored for it until the first message.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, Signer

from bot.config import Settings
from bot.keys import derived_key

PREFIX = "web:"


class WebSessions:
    def __init__(self, settings: Settings) -> None:
        self._signer = Signer(derived_key(settings, "web-session"), salt="vna.web-session", sep=".",
                              key_derivation="hmac", digest_method=hashlib.sha256)

    def issue(self) -> str:
        """A new web session id (70 characters: within the API's 128-character limit)."""
        return PREFIX + self._signer.sign(secrets.token_urlsafe(18)).decode("ascii")

    def verify(self, session_id: str) -> bool:
        """True when ``session_id`` is a ``web:`` id this deployment issued (any instance sharing VNA_SECRET_KEY)."""
        if not session_id.startswith(PREFIX) or not session_id.isascii():
            return False
        signed = session_id[len(PREFIX):]
        try:
            value = self._signer.unsign(signed)
        except BadSignature:
            return False
        # one spelling per id: base64 lets the last signature character vary in its unused bits, and such a twin
        # would be another conversation key for the same signature
        return hmac.compare_digest(self._signer.sign(value), signed.encode("ascii"))
