"""Local HTTP servers that speak the platforms' contracts, for the channel tests.

`telegram_bot_api` answers the Bot API methods the connector uses (getMe, sendMessage, answerCallbackQuery,
setWebhook, deleteWebhook, getUpdates) the way api.telegram.org does: form-encoded parameters with JSON-encoded
values, `{"ok": true, "result": …}` answers, and `{"ok": false, "error_code": …}` for errors. `zalo_api` answers
the OA v3 customer-service message API and the v4 OAuth token refresh, with expiring access tokens and rotating
refresh tokens. Both record what they received, and can be told to fail, to test outages.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                          ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the peer server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Peer:
    calls: list[tuple[str, dict]] = field(default_factory=list)
    fail_next: int = 0  # answer this many sends with an HTTP 502
    down: bool = False  # answer every send with an HTTP 502
    slow_s: float = 0.0  # a failing send answers after this long (an outage that hangs rather than refuses)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delivered: dict[str, int] = field(default_factory=dict)  # messages delivered per recipient (O(1) to poll)
    url: str = ""  # where it listens, once served

    def of(self, method: str) -> list[dict]:
        with self.lock:
            return [params for m, params in self.calls if m == method]

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.delivered.clear()
            self.fail_next = 0
            self.down = False
            self.slow_s = 0.0

    def should_fail(self) -> bool:
        with self.lock:
            if self.down:
                return True
            if self.fail_next > 0:
                self.fail_next -= 1
                return True
            return False


@dataclass
class TelegramPeer(Peer):
    token: str = "123456:TEST-token"
    updates: list[dict] = field(default_factory=list)  # served by getUpdates
    next_message_id: int = 1


def telegram_bot_api(peer: TelegramPeer) -> FastAPI:
    app = FastAPI()

    @app.post("/bot{token}/{method}")
    async def method(token: str, method: str, request: Request) -> JSONResponse:
        if token != peer.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        form = await request.form()
        params: dict = {}
        for key, value in form.items():
            try:
                params[key] = json.loads(value)
            except (TypeError, ValueError):
                params[key] = value
        if method == "sendMessage" and peer.should_fail():
            await asyncio.sleep(peer.slow_s)
            with peer.lock:
                peer.calls.append(("sendMessage:failed", params))
            return JSONResponse({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status_code=502)
        with peer.lock:
            peer.calls.append((method, params))
        if method == "getMe":
            return ok({"id": 42, "is_bot": True, "first_name": "Trợ lý", "username": "tro_ly_test_bot"})
        if method == "sendMessage":
            text = str(params.get("text", ""))
            if not text or len(text) > 4096:
                return JSONResponse({"ok": False, "error_code": 400,
                                     "description": "Bad Request: message text is empty or too long"},
                                    status_code=400)
            with peer.lock:
                peer.next_message_id += 1
                message_id = peer.next_message_id
                key = str(params["chat_id"])
                peer.delivered[key] = peer.delivered.get(key, 0) + 1
            return ok({"message_id": message_id, "date": int(time.time()), "text": text,
                       "chat": {"id": int(params["chat_id"]), "type": "private"}})
        if method in ("answerCallbackQuery", "setWebhook", "deleteWebhook"):
            return ok(True)
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            with peer.lock:
                pending = [u for u in peer.updates if u["update_id"] >= offset]
            return ok(pending)
        return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)

    return app


def configured(settings, tg: TelegramPeer | None, zalo: ZaloPeer | None, tg_secret: str = "tg-secret-for-tests",
               oa_secret: str = "oa-secret-for-tests"):  # bot.config.Settings
    """``settings`` with the channels pointed at these peers (and fast outbox retries for tests)."""
    from pydantic import SecretStr

    update: dict = {"outbox_max_backoff_s": 0.3}
    if tg is not None:
        update |= {"telegram_token": SecretStr(tg.token), "telegram_webhook_secret": SecretStr(tg_secret),
                   "telegram_api_url": f"{tg.url}/bot"}
    if zalo is not None:
        update |= {"zalo_app_id": zalo.app_id, "zalo_oa_secret": SecretStr(oa_secret),
                   "zalo_app_secret": SecretStr(zalo.app_secret), "zalo_access_token": SecretStr(zalo.access_token),
                   "zalo_refresh_token": SecretStr(zalo.refresh_token), "zalo_api_url": zalo.url,
                   "zalo_oauth_url": zalo.url}
    return settings.model_copy(update=update)


def ok(result: object) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


@dataclass
class ZaloPeer(Peer):
    app_id: str = "1234567890"
    app_secret: str = "app-secret-for-tests"
    access_token: str = "access-1"  # the only access token the message API accepts
    refresh_token: str = "refresh-1"  # the only refresh token the OAuth API accepts (it rotates)
    generation: int = 1
    refused: set[str] = field(default_factory=set)  # users Zalo will not let the OA message (error -230)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.refused.clear()

    def expire(self) -> None:
        """Expire the current access token (a refresh gives a new one)."""
        with self.lock:
            self.access_token = f"expired-{self.generation}"


def zalo_api(peer: ZaloPeer) -> FastAPI:
    app = FastAPI()

    @app.post("/v3.0/oa/message/cs")
    async def send(request: Request) -> JSONResponse:
        body = await request.json()
        token = request.headers.get("access_token")
        with peer.lock:
            peer.calls.append(("send_attempt", {"token": token, **body}))
        if peer.should_fail():
            await asyncio.sleep(peer.slow_s)
            return JSONResponse({"error": -1, "message": "Service unavailable"}, status_code=503)
        if str((body.get("recipient") or {}).get("user_id")) in peer.refused:
            return JSONResponse({"error": -230, "message": "User has not interacted with the OA in the last 7 days"})
        if token != peer.access_token:
            return JSONResponse({"error": -216, "message": "Access token is invalid"})
        text = ((body.get("message") or {}).get("text")) or ""
        if not (body.get("recipient") or {}).get("user_id") or not text or len(text) > 2000:
            return JSONResponse({"error": -201, "message": "Parameters are invalid"})
        with peer.lock:
            peer.calls.append(("send", body))
            key = str(body["recipient"]["user_id"])
            peer.delivered[key] = peer.delivered.get(key, 0) + 1
        return JSONResponse({"error": 0, "message": "Success",
                             "data": {"message_id": f"m{len(peer.calls)}", "user_id": body["recipient"]["user_id"]}})

    @app.post("/v4/oa/access_token")
    async def refresh(request: Request) -> JSONResponse:
        form = await request.form()
        with peer.lock:
            peer.calls.append(("refresh", {"secret_key": request.headers.get("secret_key"), **dict(form)}))
            if (request.headers.get("secret_key") != peer.app_secret or form.get("app_id") != peer.app_id
                    or form.get("grant_type") != "refresh_token" or form.get("refresh_token") != peer.refresh_token):
                return JSONResponse({"error": -14014, "error_name": "Invalid refresh token",
                                     "error_description": "refresh token is invalid"})
            peer.generation += 1
            peer.access_token = f"access-{peer.generation}"
            peer.refresh_token = f"refresh-{peer.generation}"
            return JSONResponse({"access_token": peer.access_token, "refresh_token": peer.refresh_token,
                                 "expires_in": "90000"})

    return app
