"""The deployment's secret and what is derived from it: the web chat's session signatures, the key that encrypts
channel tokens at rest.

``VNA_SECRET_KEY`` is the secret (several instances must share it). Without it, a random key is created once in
``data_dir/secret.key`` with mode 0600 — enough for one machine, and never a default written in code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from bot.config import Settings


def deployment_secret(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value().encode()
        if len(value) < 16:
            raise ValueError("VNA_SECRET_KEY must be at least 16 characters long")
        return value
    return _key_file(settings.data_dir / "secret.key")


def _key_file(path: Path) -> bytes:
    """Read the key file, creating it atomically the first time (two workers starting at once agree on one key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    for _ in range(50):  # the creator may not have written it yet
        value = path.read_bytes().strip()
        if value:
            return value
        import time

        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty; delete it or set VNA_SECRET_KEY")


def derived_key(settings: Settings, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so a leak of one derived key reveals nothing of the others."""
    return hmac.new(deployment_secret(settings), purpose.encode(), hashlib.sha256).digest()


class TokenCipher:
    """Encrypts channel credentials (Zalo's access and refresh tokens) before they are stored (Fernet: AES-128-CBC
    with HMAC-SHA256). A value stored before encryption existed (no ``enc:`` prefix) is read as it is and
    encrypted at its next save."""

    PREFIX = "enc:"

    def __init__(self, settings: Settings) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derived_key(settings, "channel-tokens")))

    def encrypt(self, value: str) -> str:
        return self.PREFIX + self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(self.PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(self.PREFIX):].encode()).decode()
        except InvalidToken as exc:
            raise ValueError("a stored channel token cannot be decrypted: VNA_SECRET_KEY changed?") from exc
