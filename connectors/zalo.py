"""Zalo Official Account: a signed webhook in, the v3 customer-service message API out.

POST /zalo/webhook checks ``X-ZEvent-Signature: mac=<hex>``, where hex is the plain SHA-256 of
app_id + raw body + timestamp + OA secret key (compared in constant time; 403 when it does not match), then the
event's ``timestamp``: one missing, not a number or more than zalo_timestamp_window_s away from this server's clock
is a replay and gets 400. An event it answers must have the documented shape (400 otherwise); what the hub needs
of it — the sender id, the text cut at max_input_chars + 1 and masked — goes to the inbox, de-duplicated on
``message.msg_id``, and the webhook answers 200 at once while the hub answers in the background. Replies go to
POST {zalo_api_url}/v3.0/oa/message/cs with the ``access_token`` header; on error -216 (token expired) the token is
refreshed once with the rotating refresh token, both new tokens are stored in the database encrypted
(bot.keys.TokenCipher), and the send is retried. Zalo accepts each refresh token once, so with several instances
(``VNA_REDIS_URL``) the refresh runs under a Redis lock (redis-py's ``Lock``) shared by all of them: the first
instance to take it refreshes and stores the new pair, the others wait, read the new token from the database
and send with it. Without Redis, an in-process lock is enough for one instance. Zalo has no buttons in plain text messages: options become numbered lines and
the citizen answers with the number.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Annotated

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError

from bot.config import Settings
from bot.keys import TokenCipher
from bot.shared import async_redis_client, shared_key
from connectors.core import BadPayload, ChannelHub, ChannelStore, DeliveryError, Incoming, Outgoing, split_text

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000  # characters in one Zalo text message
TOKEN_EXPIRED = -216
RETRYABLE_ERRORS = {-32, -50, -201}  # rate limited / server busy: worth another try later
UNSUPPORTED_EVENTS = {"user_send_image", "user_send_sticker", "user_send_gif", "user_send_audio",
                      "user_send_video", "user_send_file", "user_send_location", "user_send_link",
                      "user_send_business_card"}
ANSWERED_EVENTS = UNSUPPORTED_EVENTS | {"user_send_text", "follow"}

# ---------------------------------------------------------------------------------------------- what is read
# Of an event this connector answers, only these fields, strictly typed; ids are short strings of id characters.
ZaloId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.:-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ZaloUser(_Model):
    id: ZaloId


class ZaloMessage(_Model):
    text: Annotated[str, Field(strict=True)] | None = None
    msg_id: Annotated[str, Field(strict=True, max_length=128)] | None = None


class ZaloEvent(_Model):
    event_name: Annotated[str, Field(strict=True, max_length=64)]
    sender: ZaloUser | None = None
    follower: ZaloUser | None = None  # a follow event names the follower instead of a sender
    message: ZaloMessage | None = None


def signature(app_id: str, body: bytes, timestamp: str, oa_secret: str) -> str:
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret.encode()).hexdigest()


class ZaloChannel:
    name = "zalo"

    def __init__(self, settings: Settings, store: ChannelStore) -> None:
        missing = [n for n in ("zalo_app_id", "zalo_oa_secret", "zalo_app_secret", "zalo_access_token",
                               "zalo_refresh_token") if getattr(settings, n) is None]
        if missing:
            raise ValueError("Zalo needs " + ", ".join("VNA_" + n.upper() for n in missing))
        assert settings.zalo_app_id and settings.zalo_oa_secret and settings.zalo_app_secret  # checked just above
        self.settings = settings
        self.app_id: str = settings.zalo_app_id
        self.oa_secret: SecretStr = settings.zalo_oa_secret
        self.app_secret: SecretStr = settings.zalo_app_secret
        # the rotating tokens are stored encrypted with the deployment's key (bot.keys)
        self.store = store if store.cipher is not None else ChannelStore(store.db, TokenCipher(settings))
        self.client: httpx.AsyncClient | None = None
        self._refresh_lock = asyncio.Lock()
        # the shared lock's client, made on first use when VNA_REDIS_URL is set
        self._redis: redis.asyncio.Redis | None = None

    async def start(self) -> None:
        self.client = httpx.AsyncClient(timeout=self.settings.channel_timeout_s)
        encrypted = await asyncio.to_thread(self.store.encrypt_stored_tokens, self.name)
        if encrypted:
            log.info("zalo: %d tokens stored in plaintext by an older version are now encrypted", encrypted)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        if self._redis is not None:
            await self._redis.close()
            self._redis = None

    # ------------------------------------------------------------------ tokens
    def _token(self, name: str) -> str:
        """The newest token: a refreshed one from the database, else the configured first one."""
        stored = self.store.token(self.name, name)
        if stored:
            return stored
        return getattr(self.settings, f"zalo_{name}").get_secret_value()

    async def _refresh(self, expired: str) -> None:
        """Replace the ``expired`` access token, unless another send (of any instance) did it meanwhile."""
        async with self._refresh_lock:
            if not self.settings.redis_url:
                await self._refresh_token(expired)
                return
            if self._redis is None:
                self._redis = async_redis_client(self.settings)
                assert self._redis is not None  # VNA_REDIS_URL is set (checked above)
            timeout = self.settings.channel_timeout_s
            # held at most for one refresh call and the save (a crashed holder's lock expires after that); a send
            # that cannot take it in time fails for now and is retried from the outbox
            lock = self._redis.lock(shared_key(self.settings, "zalo", "refresh", self.app_id),
                                    timeout=3 * timeout + 10, blocking_timeout=timeout + 5, thread_local=False)
            try:
                acquired = await lock.acquire()
            except Exception as exc:  # noqa: BLE001 - Redis down: refreshing unlocked could spend the token twice
                raise DeliveryError(f"token refresh lock unavailable: {type(exc).__name__}") from None
            if not acquired:
                raise DeliveryError("token refresh lock still held by another instance")
            try:
                await self._refresh_token(expired)
            finally:
                try:
                    await lock.release()
                except Exception as exc:  # noqa: BLE001 - it expired, or Redis went away: it expires on its own
                    log.warning("zalo: the token refresh lock was not released (%s)", type(exc).__name__)

    async def _refresh_token(self, expired: str) -> None:
        if await asyncio.to_thread(self._token, "access_token") != expired:
            return  # another send (here or on another instance) refreshed it meanwhile
        refresh_token = await asyncio.to_thread(self._token, "refresh_token")
        try:
            response = await self._http().post(
                f"{self.settings.zalo_oauth_url}/v4/oa/access_token",
                headers={"secret_key": self.app_secret.get_secret_value()},
                data={"app_id": self.app_id, "grant_type": "refresh_token",
                      "refresh_token": refresh_token},
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DeliveryError(f"token refresh failed: {type(exc).__name__}") from None
        if not body.get("access_token") or not body.get("refresh_token"):
            # the body names the error; it holds no secret (the tokens are absent)
            raise DeliveryError(f"token refresh refused: {body.get('error')} {body.get('error_description', '')}")
        # the refresh token rotates: the old one is now spent, so the new pair must be kept before use
        await asyncio.to_thread(self.store.save_tokens, self.name, {
            "access_token": body["access_token"], "refresh_token": body["refresh_token"]})
        log.info("zalo: access token refreshed")

    def _http(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.settings.channel_timeout_s)
        return self.client

    # ------------------------------------------------------------------ in
    def verify(self, body: bytes, header: str | None) -> dict | None:
        """The event, when ``header`` signs ``body``; None otherwise (a body that is not a JSON object cannot be
        verified: the signature covers the body's own timestamp)."""
        if not header or not header.startswith("mac="):
            return None
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(raw, dict):
            return None
        timestamp = raw.get("timestamp", "")
        expected = signature(self.app_id, body, str(timestamp) if timestamp is not None else "",
                             self.oa_secret.get_secret_value())
        given = header.removeprefix("mac=").strip().lower()
        if not secrets.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
            return None
        return raw

    def stale(self, raw: dict, now: float | None = None) -> str | None:
        """Why the event's ``timestamp`` (milliseconds) is refused — missing, not a number, or outside
        ±zalo_timestamp_window_s of this server's clock (a replay of a captured event) — else None."""
        value = raw.get("timestamp")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return "no timestamp"
        if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 16):
            return "the timestamp is not a number"
        skew = abs((time.time() if now is None else now) - int(value) / 1000)
        if skew > self.settings.zalo_timestamp_window_s:
            return f"the timestamp is {skew:.0f} s away from this server's clock"
        return None

    def parse(self, raw: object) -> Incoming | None:
        """The citizen's message in an event (validated: BadPayload when an event this connector answers is not
        the documented shape), None for an event that needs no answer. Only the sender id and the (cut) text are
        read; whatever else the event carries (names, shared contacts, locations, submitted forms) is not."""
        if not isinstance(raw, dict):
            raise BadPayload("not a Zalo event")
        event = raw.get("event_name")
        if not isinstance(event, str):
            raise BadPayload("no event_name")
        if event not in ANSWERED_EVENTS:
            return None  # the OA's own messages echoed back, seen receipts, unfollow, forms, …
        try:
            parsed = ZaloEvent.model_validate(raw)
        except ValidationError as exc:
            raise BadPayload(f"not a Zalo {event} event ({exc.error_count()} problems)") from None
        if event == "follow":
            who = parsed.follower or parsed.sender
            if who is None:
                raise BadPayload("a follow event without its follower")
            return Incoming(self.name, who.id, text="xin chào")
        if parsed.sender is None:
            raise BadPayload(f"a {event} event without its sender")
        if event == "user_send_text":
            text = (parsed.message.text if parsed.message is not None else None) or ""
            return Incoming(self.name, parsed.sender.id, text=text[:self.settings.max_input_chars + 1])
        return Incoming(self.name, parsed.sender.id, kind="unsupported")

    @staticmethod
    def message_id(raw: dict, incoming: Incoming) -> str:
        msg_id = (raw.get("message") or {}).get("msg_id") if isinstance(raw.get("message"), dict) else None
        if isinstance(msg_id, str) and msg_id:
            return msg_id[:128]
        return f"{raw.get('event_name')}:{incoming.user_id}:{raw.get('timestamp')}"[:128]

    # ------------------------------------------------------------------ out
    def render(self, incoming: Incoming, reply: Outgoing) -> list[dict]:
        return [{"recipient": {"user_id": incoming.user_id}, "message": {"text": chunk}}
                for chunk in split_text(reply.as_text(), MESSAGE_LIMIT)]

    async def send(self, payload: dict) -> None:
        for attempt in (1, 2):
            token = await asyncio.to_thread(self._token, "access_token")
            try:
                response = await self._http().post(f"{self.settings.zalo_api_url}/v3.0/oa/message/cs",
                                                   headers={"access_token": token}, json=payload)
            except httpx.HTTPError as exc:
                raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
            if response.status_code >= 500:
                raise DeliveryError(f"HTTP {response.status_code}")
            try:
                body = response.json()
            except ValueError:
                raise DeliveryError(f"HTTP {response.status_code}, not JSON") from None
            error = body.get("error")
            if error == 0:
                return
            if error == TOKEN_EXPIRED and attempt == 1:
                await self._refresh(token)
                continue
            raise DeliveryError(f"Zalo error {error}: {body.get('message', '')}",
                                permanent=error not in RETRYABLE_ERRORS and error != TOKEN_EXPIRED)


def mount_zalo(app: FastAPI) -> None:
    @app.post("/zalo/webhook", include_in_schema=False)
    async def zalo_webhook(request: Request) -> JSONResponse:
        hub: ChannelHub | None = getattr(request.app.state, "hub", None)
        channel = hub.channels.get("zalo") if hub is not None else None
        if hub is None or not isinstance(channel, ZaloChannel):
            return JSONResponse({"detail": "Zalo is not configured on this server."}, status_code=404)
        body = await request.body()
        raw = channel.verify(body, request.headers.get("x-zevent-signature"))
        if raw is None:
            log.warning("zalo: webhook with a missing or wrong signature refused")
            return JSONResponse({"detail": "Forbidden."}, status_code=403)
        why = channel.stale(raw)
        if why is not None:  # signed, but not now: a replay (as Rasa's Slack channel refuses old requests)
            log.warning("zalo: webhook event refused: %s", why)
            return JSONResponse({"detail": "Stale or missing timestamp."}, status_code=400)
        try:
            incoming = channel.parse(raw)
        except BadPayload as exc:
            log.warning("zalo: webhook event refused: %s", exc)
            return JSONResponse({"detail": "Not a Zalo event."}, status_code=400)
        if incoming is None:
            log.debug("zalo: %s event needs no answer", raw.get("event_name"))
        else:
            await hub.receive(incoming, ZaloChannel.message_id(raw, incoming))
        return JSONResponse({"error": 0})
