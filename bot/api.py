"""HTTP API (FastAPI): POST /api/chat, POST /api/rating, POST /api/session, GET /health, OpenAPI docs at /docs.

Bad input never reaches the engine as an exception: bodies over MAX_BODY_BYTES get 413, malformed JSON and
wrong field types get 422 with a readable message, over-long or unreadable text gets a clear reply.

A conversation belongs to its channel (docs/security.md, "Sessions, ratings and limits"): the HTTP API writes only
as the public channels "api" (the default; the integrator's own session ids) and "web" (the web chat, whose ids are
issued and signed by POST /api/session); ids in another channel's namespace ("telegram:42", "zalo:…", "phone:…")
and conversations started by another channel are refused with 403. Abuse meets limits (bot/ratelimit.py): per
client address on /api/* (and on refused webhook requests), per session on /api/chat, per address on
/api/rating — 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import __version__
from bot.config import Settings, get_settings
from bot.console import mount_console
from bot.console.router import MAX_IMPORT_BYTES
from bot.metrics import exposition
from bot.ratelimit import RateLimiter, address_key, client_host
from bot.retention import retention_loop
from bot.service import Assistant
from connectors import build_hub
from connectors.telegram import mount_telegram
from connectors.web import mount_web
from connectors.web.sessions import WebSessions
from connectors.zalo import mount_zalo

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
PUBLIC_CHANNELS = ("api", "web")  # the channels the HTTP API may write as; every other one has its own entrance
WEBHOOK_PATHS = ("/telegram/webhook", "/zalo/webhook")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not the client sends Content-Length.

    A declared length is checked up front; a chunked body is read (at most ``limit`` + one chunk is held) and
    either refused or replayed to the application unchanged. Pure ASGI, so nothing past the limit is buffered.
    """

    def __init__(self, app: ASGIApp, limit: int, overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.overrides = overrides or {}  # path -> its own limit (a file upload needs more than a chat message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        payload = json.dumps({"detail": f"Request body too large (limit {limit} bytes)."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def too_many_requests(retry_after: float) -> tuple[str, dict[str, str]]:
    """The 429 answer: a Vietnamese explanation and the Retry-After header (whole seconds, at least 1)."""
    seconds = max(1, math.ceil(retry_after))
    return (f"Bạn gửi quá nhiều yêu cầu trong thời gian ngắn. Vui lòng thử lại sau {seconds} giây.",
            {"Retry-After": str(seconds)})


async def hit(limiter: RateLimiter, namespace: str, spec: str, identifier: str) -> float | None:
    """Count one request against a limit (bot/ratelimit.py); off the event loop when the counters are in Redis."""
    if limiter.shared:
        return await asyncio.to_thread(limiter.hit, namespace, spec, identifier)
    return limiter.hit(namespace, spec, identifier)


def _exhausted(limiter: RateLimiter, spec: str, namespace: str, identifier: str) -> float | None:
    """Seconds to wait when a limit is already full for ``identifier``, without counting a request."""
    from limits import parse_many

    try:
        for item in parse_many(spec) if spec.strip() else ():
            if not limiter.strategy.test(item, namespace, identifier):
                stats = limiter.strategy.get_window_stats(item, namespace, identifier)
                return max(1.0, stats.reset_time - time.time())
    except Exception:  # noqa: BLE001 - the counter store is down: RateLimiter.hit logs it; serve meanwhile
        return None
    return None


class AddressLimit:
    """Per client address limits (pure ASGI), before any body is read.

    Every request under /api/ counts against ``rate_limit_address``. On the webhooks only *refused* requests
    (a 4xx: wrong secret or signature, malformed payload) count, and an address over the limit is refused with
    429 before its request is looked at: Telegram and Zalo deliver every citizen's messages from a few addresses
    of theirs, so counting their genuine requests would throttle the whole channel (the per-user limit of the
    channel modules does that job), while someone guessing a webhook secret or replaying junk is stopped.
    The client address is the TCP peer, or the X-Forwarded-For hop a trusted proxy vouches for; IPv6 counts by /64.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter, settings: Settings) -> None:
        self.app = app
        self.limiter = limiter
        self.settings = settings

    def address(self, scope: Scope) -> str:
        peer = (scope.get("client") or (None, None))[0]
        forwarded = ",".join(v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"x-forwarded-for")
        return address_key(client_host(peer, forwarded or None, self.settings.trusted_proxies))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path.startswith("/api/") or path in WEBHOOK_PATHS):
            await self.app(scope, receive, send)
            return
        address = self.address(scope)
        scope.setdefault("state", {})["client_address"] = address
        spec = self.settings.rate_limit_address
        if path.startswith("/api/"):
            retry = await hit(self.limiter, "address", spec, address)
            if retry is not None:
                await self._refuse(send, retry)
                return
            await self.app(scope, receive, send)
            return
        retry = await asyncio.to_thread(_exhausted, self.limiter, spec, "webhook-refused", address) \
            if self.limiter.shared else _exhausted(self.limiter, spec, "webhook-refused", address)
        if retry is not None:
            await self._refuse(send, retry)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if 400 <= status < 500:
            await hit(self.limiter, "webhook-refused", spec, address)

    @staticmethod
    async def _refuse(send: Send, retry_after: float) -> None:
        detail, headers = too_many_requests(retry_after)
        payload = json.dumps({"detail": detail}, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                (b"retry-after", headers["Retry-After"].encode())]})
        await send({"type": "http.response.body", "body": payload})


SESSION_DESCRIPTION = (
    "One conversation; reuse it for follow-ups. An integrator's own id (no ':', or 'api:…'): keep it unguessable, "
    "it is the conversation's only key. The web chat's ids come from POST /api/session ('web:…', signed). Ids of "
    "another channel's namespace ('telegram:…', 'zalo:…', 'phone:…', any other 'prefix:') are refused (403).")
CHANNEL_DESCRIPTION = ("'api' (default) or 'web' (only with a 'web:' id from POST /api/session); any other channel "
                       "is refused (403): Telegram, Zalo and the phone line have their own entrances.")

MESSAGE_ID_DESCRIPTION = (
    "Optional: the client's id of this message (1-64 of A-Z a-z 0-9 _ -), new for each message and the same when "
    "the request is retried (a dropped connection, a 502). A message id of this conversation answered in the last "
    "24 hours gets that answer again, and the turn is not run or recorded twice; the retry must repeat the text.")


class ChatRequest(BaseModel):
    session_id: str = Field(min_length=1, max_length=128, description=SESSION_DESCRIPTION)
    text: str = Field(description="The citizen's message (UTF-8). Up to VNA_MAX_INPUT_CHARS characters are answered.")
    channel: str | None = Field(default=None, max_length=32, description=CHANNEL_DESCRIPTION)
    message_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description=MESSAGE_ID_DESCRIPTION)

    model_config = {"json_schema_extra": {"examples": [{"session_id": "demo-1", "text": "lam lai cccd o dau",
                                                        "message_id": "m-7f3a9c"}]}}


class RatingRequest(BaseModel):
    session_id: str = Field(min_length=1, max_length=128, description="The conversation rated (as in /api/chat).")
    score: int = Field(ge=1, le=5, description="1 (very dissatisfied) … 5 (very satisfied).")
    channel: str | None = Field(default=None, max_length=32, description=CHANNEL_DESCRIPTION)


class RatingOut(BaseModel):
    ok: bool
    score: int
    replaced: bool = Field(description="True when this rating replaced an earlier one of the conversation "
                                       "(one rating per conversation: the last one counts).")


class SessionOut(BaseModel):
    session_id: str = Field(description="A new web chat session id ('web:<random>.<signature>'); send it as "
                                        "session_id with channel 'web'.")


class ErrorOut(BaseModel):
    detail: str


# FastAPI's `responses=`: status code -> OpenAPI response object
OpenApiResponses = dict[int | str, dict[str, Any]]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


TOO_LARGE: OpenApiResponses = {413: _error("The request body is over 64 KiB.")}
INVALID: OpenApiResponses = {400: _error("The body cannot be read as JSON text (e.g. it is not UTF-8)."),
           422: _error("Malformed JSON or a field of the wrong type or size (a readable message).")}
FORBIDDEN: OpenApiResponses = {403: _error("The session id or channel belongs to another channel, or a 'web:' id does not verify.")}
LIMITED: OpenApiResponses = {429: {**_error("Too many requests (per client address; per session for /api/chat); Vietnamese detail."),
                 "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                             "schema": {"type": "integer"}}}}}


class SourceOut(BaseModel):
    id: str
    kind: Literal["procedure", "plan", "faq"]
    title: str
    url: str | None
    score: float


class ButtonOut(BaseModel):
    title: str
    payload: str = Field(description="Send it back as `text` to choose this button.")


class ChannelValueOut(BaseModel):
    channel: Literal["in_person", "online", "post", "other"]
    label: str | None = Field(description="The channel as the record names it (\"Trực tiếp\", \"Trực tuyến\", …).")
    value: str = Field(description="As the record writes it, e.g. \"Lệ phí : 20.000 Đồng\", \"7 Ngày làm việc\".")


class DocumentOut(BaseModel):
    name: str
    copies: str | None
    form: str | None = Field(description="The form or template to fill, when the record attaches one.")
    group: str | None = Field(description="The case the paper belongs to (\"Trường hợp …\"), when the record groups them.")


class LegalBasisOut(BaseModel):
    number: str
    title: str | None


class WhereOut(BaseModel):
    levels: list[Literal["commune", "province", "central", "other"]] = Field(
        description="The levels the record names in \"Cấp thực hiện\" (updated on the portal for the two-level "
                    "local government since 1 July 2025).")
    agency: str | None
    competent_authority: str | None
    receiving_address: str | None
    district_wording: str | None = Field(
        description="The record's words that still name a district-level body or level (\"Bảo hiểm xã hội cấp "
                    "huyện\"); the district level ended on 1 July 2025.")
    note: str | None = Field(description="What the reply says about that wording (Vietnamese), else null.")


class FieldsOut(BaseModel):
    documents: list[DocumentOut] | None
    fee: list[ChannelValueOut] | None = Field(description="Fee per submission channel, as written.")
    time: list[ChannelValueOut] | None = Field(description="Processing time per submission channel, as written.")
    where: WhereOut | None
    steps: list[str] | None
    conditions: str | None
    legal_basis: list[LegalBasisOut] | None
    online: bool | None = Field(description="True: an online channel is listed; false: channels are listed but "
                                            "none online; null: the record lists no channel.")


class PlaceOut(BaseModel):
    named: str = Field(description="What the citizen named, as the mapping data writes it.")
    now: str | None = Field(description="Today's unit when the data gives exactly one, else null.")
    written: str = Field(description="The citizen's own words.")
    level: Literal["commune", "district", "province"]
    status: Literal["current", "converted", "split", "several", "unmapped", "ambiguous", "unlisted"]
    province_now: str | None
    options: list[str] = Field(description="Today's communes (split, several) or the units the name may be "
                                           "(ambiguous).")
    partial: bool = Field(description="The data leaves part of the area without a new commune.")


class AnswerOut(BaseModel):
    """The reply about one procedure as fields, each from the record (null where the record has none)."""

    procedure: str = Field(description="The procedure's national code.")
    title: str
    url: str | None
    aspect: str = Field(description="What was asked first: documents, fee, time, where, steps, conditions, "
                                    "legal_basis, online or general.")
    aspects: list[str]
    fields: FieldsOut
    place: PlaceOut | None = Field(description="The place the conversation is about (old or new units), or null.")


class ChatResponse(BaseModel):
    question: str
    reply: str
    intent: str | None
    fallback: bool
    sources: list[SourceOut]
    answer: AnswerOut | None = Field(
        default=None, description="The procedure's answer as fields (additive to the contract); null when the reply "
                                  "is not about one procedure.")
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
        # personal data older than retention_days is deleted or anonymised (bot/retention.py, docs/security.md)
        retention = asyncio.create_task(retention_loop(settings, app.state.assistant.store.db), name="retention")
        try:
            yield
        finally:
            retention.cancel()
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
    app.state.limiter = RateLimiter.from_settings(settings)
    app.state.web_sessions = WebSessions(settings)
    # a staff member's FAQ import is a file: it gets its own, larger limit (checked again by the route)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES,
                       overrides={"/console/faq/import": MAX_IMPORT_BYTES + 64 * 1024})
    app.add_middleware(AddressLimit, limiter=app.state.limiter, settings=settings)  # outermost: before any body

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

    def owner_channel(session_id: str, channel: str | None) -> str:
        """The channel a request writes as: "api" or "web", or 403 when the id or channel is another one's."""
        if channel is not None and channel not in PUBLIC_CHANNELS:
            raise HTTPException(403, f"The channel {channel!r} is not open to the HTTP API: use 'api' (the default) "
                                     "or 'web'. Telegram, Zalo and the phone line have their own entrances.")
        prefix, colon, _ = session_id.partition(":")
        if colon and prefix == "web":
            if not app.state.web_sessions.verify(session_id):
                raise HTTPException(403, "This web chat session id was not issued by this server (its signature "
                                         "does not verify); get a new one with POST /api/session.")
            return "web"
        if colon and prefix != "api":
            raise HTTPException(403, f"Session ids starting with {prefix[:32] + ':'!r} belong to another channel's "
                                     "namespace: use an id without ':' (or 'api:…'), or POST /api/session for the "
                                     "web chat.")
        if channel == "web":
            raise HTTPException(403, "The web channel takes the signed session ids of POST /api/session.")
        return "api"

    def limited(retry_after: float) -> HTTPException:
        detail, headers = too_many_requests(retry_after)
        return HTTPException(429, detail, headers=headers)

    def client_address(request: Request) -> str:
        """Set by AddressLimit for /api/*; computed the same way otherwise."""
        state = request.scope.get("state") or {}
        if "client_address" in state:
            return state["client_address"]
        return address_key(client_host(request.client.host if request.client else None,
                                       request.headers.get("x-forwarded-for"), settings.trusted_proxies))

    @app.post("/api/session", response_model=SessionOut, responses=LIMITED)
    async def new_session() -> dict:
        """A new, signed session id for the web chat (the page and the widget ask for one and keep it)."""
        return {"session_id": app.state.web_sessions.issue()}

    @app.post("/api/chat", response_model=ChatResponse, responses=FORBIDDEN | TOO_LARGE | INVALID | LIMITED)
    async def chat(body: ChatRequest, request: Request) -> dict:
        """One turn of a conversation (the contract of BRIEF.md): the reply with its sources, the procedure's answer
        as fields (``answer``, null when the reply is not about one procedure) and buttons."""
        assistant: Assistant = request.app.state.assistant
        channel = owner_channel(body.session_id, body.channel)
        retry = await hit(app.state.limiter, "session", settings.rate_limit_session, body.session_id)
        if retry is not None:
            raise limited(retry)
        owner = await asyncio.to_thread(assistant.store.channel_of, body.session_id)
        if owner is not None and owner != channel:
            raise HTTPException(403, "This conversation belongs to another channel.")
        turn = await assistant.turn(body.session_id, body.text, channel, message_id=body.message_id)
        return turn.contract()

    @app.post("/api/rating", response_model=RatingOut, responses=FORBIDDEN | {
        404: _error("No conversation with this session id in this channel."),
        409: _error("The conversation has not received a reply yet."),
    } | TOO_LARGE | INVALID | LIMITED)
    async def rating(body: RatingRequest, request: Request) -> dict:
        """The citizen's 1–5 rating of the conversation (the web page's stars; chat channels rate in the dialogue).

        One rating per conversation: a second one replaces the first, so the satisfaction figures count citizens."""
        assistant: Assistant = request.app.state.assistant
        channel = owner_channel(body.session_id, body.channel)
        retry = await hit(app.state.limiter, "rating", settings.rate_limit_rating, client_address(request))
        if retry is not None:
            raise limited(retry)
        result = await asyncio.to_thread(assistant.store.rate, body.session_id, channel, body.score)
        if result == "unknown":
            raise HTTPException(404, "There is no conversation with this session id in this channel: a conversation "
                                     "is rated after its first reply.")
        if result == "unanswered":
            raise HTTPException(409, "This conversation has not received a reply yet: rate it after the first answer.")
        return {"ok": True, "score": body.score, "replaced": result == "replaced"}

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
