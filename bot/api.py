"""HTTP API (FastAPI): POST /api/chat, GET /health, OpenAPI docs at /docs.

Bad input never reaches the engine as an exception: bodies over MAX_BODY_BYTES get 413, malformed JSON and
wrong field types get 422 with a readable message, over-long or unreadable text gets a clear reply.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from bot import __version__
from bot.config import Settings, get_settings
from bot.console import mount_console
from bot.console.router import MAX_IMPORT_BYTES
from bot.metrics import exposition
from bot.service import Assistant
from connectors import build_hub
from connectors.telegram import mount_telegram
from connectors.web import mount_web
from connectors.zalo import mount_zalo

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not the client sends Content-Length.

    A declared length is checked up front; a chunked body is read (at most ``limit`` + one chunk is held) and
    either refused or replayed to the application unchanged. Pure ASGI, so nothing past the limit is buffered.
    """

    def __init__(self, app, limit: int, overrides: dict[str, int] | None = None) -> None:  # noqa: ANN001
        self.app = app
        self.limit = limit
        self.overrides = overrides or {}  # path -> its own limit (a file upload needs more than a chat message)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI signature
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.overrides.get(scope.get("path", ""), self.limit)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await self._refuse(send, limit)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnect: let the app see it
                chunks = []
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self._refuse(send, limit)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send, limit: int) -> None:  # noqa: ANN001
        payload = json.dumps({"detail": f"Request body too large (limit {limit} bytes)."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


class ChatRequest(BaseModel):
    session_id: str = Field(min_length=1, max_length=128, description="One conversation; reuse it for follow-ups.")
    text: str = Field(description="The citizen's message (UTF-8). Up to VNA_MAX_INPUT_CHARS characters are answered.")
    channel: str | None = Field(default=None, max_length=32, description="Where the message came from (web, api, …).")

    model_config = {"json_schema_extra": {"examples": [{"session_id": "demo-1", "text": "lam lai cccd o dau"}]}}


class RatingRequest(BaseModel):
    session_id: str = Field(min_length=1, max_length=128)
    score: int = Field(ge=1, le=5, description="1 (very dissatisfied) … 5 (very satisfied).")
    channel: str | None = Field(default=None, max_length=32)


class SourceOut(BaseModel):
    id: str
    kind: Literal["procedure", "plan", "faq"]
    title: str
    url: str | None
    score: float


class ButtonOut(BaseModel):
    title: str
    payload: str = Field(description="Send it back as `text` to choose this button.")


class ChatResponse(BaseModel):
    question: str
    reply: str
    intent: str | None
    fallback: bool
    sources: list[SourceOut]
    buttons: list[ButtonOut] = Field(default_factory=list, description="Choices a channel may render.")


def create_app(settings: Settings | None = None, assistant: Assistant | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.assistant = assistant or Assistant(settings, progress=False)
        app.state.hub = build_hub(app.state.assistant, settings)
        await app.state.hub.start()
        # the phone line (SIP/RTP over UDP; VNA_CALLBOT=false turns it off, docs/callbot.md)
        from connectors.callbot import start_callbot

        app.state.callbot = await start_callbot(app.state.assistant, settings)
        try:
            yield
        finally:
            if app.state.callbot is not None:
                await app.state.callbot.stop()
            await app.state.hub.stop()

    app = FastAPI(
        title="Trợ lý thủ tục hành chính",
        version=__version__,
        description="Answers questions about Vietnamese administrative procedures and provincial plans, "
        "grounded in the official records and naming its sources.",
        lifespan=lifespan,
    )

    app.state.settings = settings
    # a staff member's FAQ import is a file: it gets its own, larger limit (checked again by the route)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES,
                       overrides={"/console/faq/import": MAX_IMPORT_BYTES + 64 * 1024})

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(status_code=422, content={"detail": "Invalid request. " + "; ".join(problems)})

    @app.get("/health")
    def health(request: Request) -> dict:
        assistant: Assistant = request.app.state.assistant
        manifest = assistant.engine.index.manifest
        dialogue = assistant.dialogue_status()
        return {
            # "ok": every part up; "degraded": answering, from the engine alone (the dialogue layer is down,
            # or failed a turn in the last minute)
            "status": "ok" if dialogue["status"] in ("ok", "off") else "degraded",
            "dialogue": dialogue,
            "version": __version__,
            "procedures": manifest["procedures"],
            "plan_passages": manifest["plan_passages"],
            "embedding_model": manifest["embedding_model"],
        }

    @app.post("/api/chat", response_model=ChatResponse)
    async def chat(body: ChatRequest, request: Request) -> dict:
        assistant: Assistant = request.app.state.assistant
        turn = await assistant.turn(body.session_id, body.text, body.channel or "api")
        return turn.reply.contract() | {"buttons": [b.contract() for b in turn.buttons]}

    @app.post("/api/rating")
    async def rating(body: RatingRequest, request: Request) -> dict:
        """The citizen's 1–5 rating of the conversation (the web page's stars; chat channels rate in the dialogue)."""
        assistant: Assistant = request.app.state.assistant
        await asyncio.to_thread(assistant.store.rate, body.session_id, body.channel or "api", body.score)
        return {"ok": True, "score": body.score}

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (bot/metrics.py): a bearer token when VNA_METRICS_TOKEN is set, else loopback only."""
        token = settings.metrics_token
        if token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
                return JSONResponse({"detail": "A valid bearer token is required."}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
        elif request.client is None or request.client.host not in ("127.0.0.1", "::1"):
            return JSONResponse({"detail": "Set VNA_METRICS_TOKEN to read metrics from another machine."},
                                status_code=403)
        assistant: Assistant = request.app.state.assistant
        body = await asyncio.to_thread(exposition, assistant.store.db)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    mount_web(app)
    mount_telegram(app)
    mount_zalo(app)
    mount_console(app)
    return app
