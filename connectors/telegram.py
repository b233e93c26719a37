"""Telegram (python-telegram-bot 22): a webhook inside the API app, polling for development.

POST /telegram/webhook accepts an Update when its X-Telegram-Bot-Api-Secret-Token header equals
VNA_TELEGRAM_WEBHOOK_SECRET (403 otherwise) and it has an Update's shape (400 otherwise: not JSON, not an object,
a wrong type at any depth of what is read, an id beyond Telegram's range), stores what the hub needs of it — the
chat id, the text cut at max_input_chars + 1 and masked — in the inbox, and answers 200 at once; the hub answers it
in the background. Options and rating requests become inline keyboards; a button press comes back as a callback
query whose data is the option's payload. Long answers are split under Telegram's 4,096-character limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application

from bot.config import Settings
from connectors.core import BadPayload, ChannelHub, DeliveryError, Incoming, Outgoing, score_of, split_text

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO, and a Bot API URL contains the bot token: keep it out of the logs.
logging.getLogger("httpx").setLevel(logging.WARNING)

MESSAGE_LIMIT = 4000  # Telegram's limit is 4,096 UTF-16 code units; leave room for emoji counted twice
CALLBACK_DATA_LIMIT = 64  # bytes
BUTTON_TITLE_LIMIT = 60
ALLOWED_UPDATES = ["message", "callback_query"]
COMMANDS = {"/start": "xin chào", "/help": "bạn giúp được gì"}
UNSUPPORTED_KINDS = ("sticker", "photo", "voice", "audio", "video", "video_note", "document", "animation",
                     "location", "venue", "contact", "poll", "dice", "game")

# ---------------------------------------------------------------------------------------------- what is read
# The part of the Bot API's Update the connector reads, validated strictly: ids are integers within Telegram's
# 52 significant bits (not strings, not booleans, not 10^70), strings are strings. Everything else of the update is
# ignored and never stored.
TgId = Annotated[int, Field(strict=True, ge=-(2**53), le=2**53)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TgChat(_Model):
    id: TgId


class TgUser(_Model):
    id: TgId


class TgMessage(_Model):
    message_id: TgId
    chat: TgChat
    text: Annotated[str, Field(strict=True)] | None = None
    caption: Annotated[str, Field(strict=True)] | None = None
    # media and other kinds: only whether they are there counts (they get the polite "text only" reply)
    sticker: object = None
    photo: object = None
    voice: object = None
    audio: object = None
    video: object = None
    video_note: object = None
    document: object = None
    animation: object = None
    location: object = None
    venue: object = None
    contact: object = None
    poll: object = None
    dice: object = None
    game: object = None


class TgMaybeInaccessibleMessage(_Model):
    chat: TgChat


class TgCallbackQuery(_Model):
    id: Annotated[str, Field(strict=True, min_length=1, max_length=128)]
    from_: TgUser = Field(alias="from")
    message: TgMaybeInaccessibleMessage | None = None
    data: Annotated[str, Field(strict=True, max_length=256)] | None = None


class TgUpdate(_Model):
    update_id: Annotated[int, Field(strict=True, ge=0, le=2**53)]
    message: TgMessage | None = None
    callback_query: TgCallbackQuery | None = None


class TelegramChannel:
    name = "telegram"

    def __init__(self, settings: Settings) -> None:
        if settings.telegram_token is None:
            raise ValueError("VNA_TELEGRAM_TOKEN is not set")
        self.settings = settings
        self.app = (Application.builder().token(settings.telegram_token.get_secret_value())
                    .base_url(settings.telegram_api_url).updater(None).build())
        self.bot = self.app.bot
        self._ready = False

    async def _ensure_ready(self) -> None:
        if not self._ready:
            try:
                await self.app.initialize()  # getMe: checks the token
            except InvalidToken:
                raise DeliveryError("Telegram rejected the bot token (VNA_TELEGRAM_TOKEN)") from None
            self._ready = True

    async def start(self) -> None:
        try:
            await self._ensure_ready()
            if self.settings.telegram_webhook_url:
                secret = self.settings.telegram_webhook_secret
                await self.bot.set_webhook(self.settings.telegram_webhook_url, allowed_updates=ALLOWED_UPDATES,
                                           secret_token=secret.get_secret_value() if secret else None)
                log.info("telegram: webhook registered at %s", self.settings.telegram_webhook_url)
        except (TelegramError, DeliveryError) as exc:  # the API answers later; sends retry from the outbox
            log.warning("telegram: not ready at start (%s); will retry when sending", type(exc).__name__)

    async def stop(self) -> None:
        if self._ready:
            await self.app.shutdown()
            self._ready = False

    # ------------------------------------------------------------------ in
    def parse(self, raw: object) -> Incoming | None:
        """The citizen's message in an Update (validated: BadPayload when it is not one), None for an update
        that needs no answer (edits, channel posts, membership changes, service messages). Nothing but the chat
        id, the (cut) text and a button press's query id is read: names, usernames, contacts and locations never
        leave this function."""
        try:
            update = TgUpdate.model_validate(raw)
        except ValidationError as exc:
            raise BadPayload(f"not a Telegram update ({exc.error_count()} problems)") from None
        cut = self.settings.max_input_chars + 1  # one more: the assistant still sees that it was too long
        if update.callback_query is not None:
            query = update.callback_query
            chat = query.message.chat.id if query.message is not None else query.from_.id
            return Incoming(self.name, str(chat), text=(query.data or "")[:cut],
                            meta={"callback_query_id": query.id})
        message = update.message
        if message is None:
            return None
        if message.text is not None:
            text = message.text[:cut].strip()
            command = text.split(maxsplit=1)[0].split("@")[0] if text.startswith("/") else ""
            if command:
                # Rasa reads "/name{...}" as an intent: a typed command must stay the citizen's words
                text = COMMANDS.get(command, text.lstrip("/"))
            return Incoming(self.name, str(message.chat.id), text=text)
        if message.caption is not None or any(getattr(message, kind) is not None for kind in UNSUPPORTED_KINDS):
            return Incoming(self.name, str(message.chat.id), kind="unsupported")
        return None

    # ------------------------------------------------------------------ out
    def render(self, incoming: Incoming, reply: Outgoing) -> list[dict]:
        payloads: list[dict] = []
        if "callback_query_id" in incoming.meta:  # stop the button's spinner
            payloads.append({"method": "answerCallbackQuery", "callback_query_id": incoming.meta["callback_query_id"]})
        rows: list[list[InlineKeyboardButton]] = []
        for i, option in enumerate(reply.options, 1):
            title = option.title if len(option.title) <= BUTTON_TITLE_LIMIT else option.title[:BUTTON_TITLE_LIMIT - 1] + "…"
            data = option.payload if len(option.payload.encode()) <= CALLBACK_DATA_LIMIT else str(i)
            rows.append([InlineKeyboardButton(title, callback_data=data)])
        if reply.rating:
            rows.append([InlineKeyboardButton(f"{score_of(o) or o.title} ⭐", callback_data=o.payload[:CALLBACK_DATA_LIMIT])
                         for o in reply.rating])
        text = reply.text.strip()
        if reply.missing_links():
            text += "\n\n" + "\n".join(f"Nguồn: {link.title}\n{link.url}" for link in reply.missing_links())
        chunks = split_text(text, MESSAGE_LIMIT)
        for n, chunk in enumerate(chunks):
            payload: dict = {"method": "sendMessage", "chat_id": incoming.user_id, "text": chunk}
            if rows and n == len(chunks) - 1:
                payload["reply_markup"] = InlineKeyboardMarkup(rows).to_dict()
            payloads.append(payload)
        return payloads

    async def send(self, payload: dict) -> None:
        await self._ensure_ready()
        method = payload["method"]
        try:
            if method == "sendMessage":
                markup = payload.get("reply_markup")
                await self.bot.send_message(
                    chat_id=payload["chat_id"], text=payload["text"],
                    reply_markup=InlineKeyboardMarkup.de_json(markup, self.bot) if markup else None,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            elif method == "answerCallbackQuery":
                try:
                    await self.bot.answer_callback_query(payload["callback_query_id"])
                except TelegramError as exc:  # expires after a while; only cosmetic
                    raise DeliveryError(f"answerCallbackQuery: {exc}", permanent=True) from None
            else:
                raise DeliveryError(f"unknown Telegram method {method!r}", permanent=True)
        except RetryAfter as exc:
            raise DeliveryError(str(exc), retry_after=exc.retry_after.total_seconds()
                                if hasattr(exc.retry_after, "total_seconds") else float(exc.retry_after)) from None
        except (BadRequest, Forbidden) as exc:  # the message or the chat itself is refused: retrying cannot help
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=True) from None
        except InvalidToken:
            raise DeliveryError("Telegram rejected the bot token (VNA_TELEGRAM_TOKEN)") from None
        except TelegramError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------------ development: polling
    async def poll(self, hub: ChannelHub, stop: asyncio.Event | None = None) -> None:
        """Fetch updates with getUpdates instead of a webhook (development only: one poller per bot)."""
        await self._ensure_ready()
        await self.bot.delete_webhook()
        offset = None
        while stop is None or not stop.is_set():
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=25, allowed_updates=ALLOWED_UPDATES)
            except TelegramError as exc:
                log.warning("telegram: getUpdates failed (%s); retrying in 5 s", type(exc).__name__)
                await asyncio.sleep(5)
                continue
            for update in updates:
                offset = update.update_id + 1
                try:
                    incoming = self.parse(update.to_dict())
                except BadPayload as exc:
                    log.warning("telegram: update %d ignored: %s", update.update_id, exc)
                    continue
                if incoming is not None:
                    await hub.receive(incoming, str(update.update_id))


def mount_telegram(app: FastAPI) -> None:
    @app.post("/telegram/webhook", include_in_schema=False)
    async def telegram_webhook(request: Request) -> JSONResponse:
        hub: ChannelHub | None = getattr(request.app.state, "hub", None)
        settings: Settings = request.app.state.settings
        channel = hub.channels.get("telegram") if hub is not None else None
        if hub is None or not isinstance(channel, TelegramChannel):
            return JSONResponse({"detail": "Telegram is not configured on this server."}, status_code=404)
        expected = settings.telegram_webhook_secret
        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        if expected is None or not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
            return JSONResponse({"detail": "Forbidden."}, status_code=403)
        try:
            raw = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError, RecursionError):
            return JSONResponse({"detail": "The body is not JSON."}, status_code=400)
        try:
            incoming = channel.parse(raw)
        except BadPayload as exc:
            log.warning("telegram: webhook payload refused: %s", exc)
            return JSONResponse({"detail": "Not a Telegram update."}, status_code=400)
        if incoming is None:
            log.debug("telegram: update %s needs no answer", raw.get("update_id"))
        else:
            await hub.receive(incoming, str(raw["update_id"]))
        return JSONResponse({"ok": True})
