"""Zalo Official Account: a signed webhook in, the v3 customer-service message API out.

POST /zalo/webhook checks ``X-ZEvent-Signature: mac=<hex>``, where hex is the plain SHA-256 of
app_id + raw body + timestamp + OA secret key (compared in constant time; 403 when it does not match), stores the
event in the inbox de-duplicated on ``message.msg_id``, answers 200 at once and lets the hub answer in the
background. Replies go to POST {zalo_api_url}/v3.0/oa/message/cs with the ``access_token`` header; on error -216
(token expired) the token is refreshed once with the rotating refresh token, both new tokens are stored in the
database, and the send is retried. Zalo has no buttons in plain text messages: options become numbered lines and
the citizen answers with the number.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bot.config import Settings
from connectors.core import ChannelHub, ChannelStore, DeliveryError, Incoming, Outgoing, split_text

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000  # characters in one Zalo text message
TOKEN_EXPIRED = -216
RETRYABLE_ERRORS = {-32, -50, -201}  # rate limited / server busy: worth another try later
UNSUPPORTED_EVENTS = {"user_send_image", "user_send_sticker", "user_send_gif", "user_send_audio",
                      "user_send_video", "user_send_file", "user_send_location", "user_send_link",
                      "user_send_business_card"}


def signature(app_id: str, body: bytes, timestamp: str, oa_secret: str) -> str:
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret.encode()).hexdigest()


class ZaloChannel:
    name = "zalo"

    def __init__(self, settings: Settings, store: ChannelStore) -> None:
        missing = [n for n in ("zalo_app_id", "zalo_oa_secret", "zalo_app_secret", "zalo_access_token",
                               "zalo_refresh_token") if getattr(settings, n) is None]
        if missing:
            raise ValueError("Zalo needs " + ", ".join("VNA_" + n.upper() for n in missing))
        self.settings = settings
        self.store = store
        self.client: httpx.AsyncClient | None = None
        self._refresh_lock = asyncio.Lock()

    async def start(self) -> None:
        self.client = httpx.AsyncClient(timeout=self.settings.channel_timeout_s)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    # ------------------------------------------------------------------ tokens
    def _token(self, name: str) -> str:
        """The newest token: a refreshed one from the database, else the configured first one."""
        stored = self.store.token(self.name, name)
        if stored:
            return stored
        return getattr(self.settings, f"zalo_{name}").get_secret_value()

    async def _refresh(self, expired: str) -> None:
        async with self._refresh_lock:
            if await asyncio.to_thread(self._token, "access_token") != expired:
                return  # another send refreshed it meanwhile
            refresh_token = await asyncio.to_thread(self._token, "refresh_token")
            try:
                response = await self._http().post(
                    f"{self.settings.zalo_oauth_url}/v4/oa/access_token",
                    headers={"secret_key": self.settings.zalo_app_secret.get_secret_value()},
                    data={"app_id": self.settings.zalo_app_id, "grant_type": "refresh_token",
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
    def verify(self, body: bytes, header: str | None) -> bool:
        if not header or not header.startswith("mac="):
            return False
        try:
            timestamp = str(json.loads(body).get("timestamp", ""))
        except (ValueError, AttributeError, UnicodeDecodeError):
            return False
        expected = signature(self.settings.zalo_app_id, body, timestamp,
                             self.settings.zalo_oa_secret.get_secret_value())
        return secrets.compare_digest(header.removeprefix("mac=").strip().lower().encode(), expected.encode())

    def parse(self, raw: dict) -> Incoming | None:
        event = raw.get("event_name")
        user = str((raw.get("sender") or {}).get("id") or "")
        if not user:
            return None
        if event == "user_send_text":
            return Incoming(self.name, user, text=str((raw.get("message") or {}).get("text") or ""))
        if event in UNSUPPORTED_EVENTS:
            return Incoming(self.name, user, kind="unsupported")
        if event == "follow":
            return Incoming(self.name, user, text="xin chào")
        return None  # the OA's own messages echoed back, seen receipts, unfollow, …

    @staticmethod
    def message_id(raw: dict) -> str:
        msg_id = (raw.get("message") or {}).get("msg_id")
        if msg_id:
            return str(msg_id)
        sender = (raw.get("sender") or {}).get("id")
        return f"{raw.get('event_name')}:{sender}:{raw.get('timestamp')}"

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
        if hub is None or "zalo" not in hub.channels:
            return JSONResponse({"detail": "Zalo is not configured on this server."}, status_code=404)
        channel: ZaloChannel = hub.channels["zalo"]  # type: ignore[assignment]
        body = await request.body()
        if not channel.verify(body, request.headers.get("x-zevent-signature")):
            log.warning("zalo: webhook with a missing or wrong signature refused")
            return JSONResponse({"detail": "Forbidden."}, status_code=403)
        raw = json.loads(body)  # verify() parsed it already
        if not isinstance(raw, dict):
            return JSONResponse({"detail": "Not a Zalo event."}, status_code=400)
        user = str((raw.get("sender") or {}).get("id") or "")
        if user and channel.parse(raw) is not None:
            await hub.receive("zalo", ZaloChannel.message_id(raw), user, raw)
        return JSONResponse({"error": 0})
