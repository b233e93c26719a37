"""HTTP API (FastAPI): POST /api/chat, GET /health, OpenAPI docs at /docs.

Bad input never reaches the engine as an exception: bodies over MAX_BODY_BYTES get 413, malformed JSON and
wrong field types get 422 with a readable message, over-long or unreadable text gets a clear reply.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bot import __version__
from bot.config import Settings, get_settings
from bot.service import Assistant

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class ChatRequest(BaseModel):
    session_id: str = Field(min_length=1, max_length=128, description="One conversation; reuse it for follow-ups.")
    text: str = Field(description="The citizen's message (UTF-8). Up to VNA_MAX_INPUT_CHARS characters are answered.")
    channel: str | None = Field(default=None, max_length=32, description="Where the message came from (web, api, …).")

    model_config = {"json_schema_extra": {"examples": [{"session_id": "demo-1", "text": "lam lai cccd o dau"}]}}


class SourceOut(BaseModel):
    id: str
    kind: Literal["procedure", "plan", "faq"]
    title: str
    url: str | None
    score: float


class ChatResponse(BaseModel):
    question: str
    reply: str
    intent: str | None
    fallback: bool
    sources: list[SourceOut]


def create_app(settings: Settings | None = None, assistant: Assistant | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.assistant = assistant or Assistant(settings, progress=False)
        yield

    app = FastAPI(
        title="Trợ lý thủ tục hành chính",
        version=__version__,
        description="Answers questions about Vietnamese administrative procedures and provincial plans, "
        "grounded in the official records and naming its sources.",
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def limit_body(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette middleware signature
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse(
                status_code=413, content={"detail": f"Request body too large (limit {MAX_BODY_BYTES} bytes)."}
            )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(status_code=422, content={"detail": "Invalid request. " + "; ".join(problems)})

    @app.get("/health")
    def health(request: Request) -> dict:
        manifest = request.app.state.assistant.engine.index.manifest
        return {
            "status": "ok",
            "version": __version__,
            "procedures": manifest["procedures"],
            "plan_passages": manifest["plan_passages"],
            "embedding_model": manifest["embedding_model"],
        }

    @app.post("/api/chat", response_model=ChatResponse)
    def chat(body: ChatRequest, request: Request) -> dict:
        assistant: Assistant = request.app.state.assistant
        reply = assistant.chat(body.session_id, body.text, body.channel or "api")
        return reply.contract()

    return app
