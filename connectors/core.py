"""What every chat channel shares: one message model, a persistent inbox and outbox, and the hub that runs turns.

A channel adapter (Telegram, Zalo) does three things only: turn a platform payload into an `Incoming`, render an
`Outgoing` into the platform's send payloads, and send one payload. Everything else is here, once:

    webhook ──► parse ──► limit ──► inbox (de-duplicated on the platform's message id) ──► Assistant.turn ──► outbox
     (validated)  (per user)      └ answered 200 at once; processed in the background   (one sender per channel,
                                                                                       retried with jittered backoff)

A payload is parsed into an `Incoming` at the webhook, so the inbox keeps only what processing needs (the user id
that is the reply's address, the masked text, the kind, a renderer's meta) and never the platform's payload, with
its names, usernames, contacts or locations. Both tables live in the assistant's database, so a reply survives a
channel outage and a restart: unprocessed inbox rows are picked up again at start, and undelivered outbox rows are
retried until they go out (or, after `outbox_max_attempts`, are kept as failed for staff to see). Several worker
processes and instances share the tables without sending a reply twice: the outbox is claimed a batch at a time
with SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL (instances skip each other's rows instead of waiting for them),
and row by row with a conditional UPDATE on SQLite (one writer at a time anyway). A claim is a lease: a row left
claimed by a process that died is claimed again once it is older than ``ChannelStore.lease_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from limits import parse_many
from sqlalchemy import (
    Table,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select
from tenacity import wait_exponential, wait_random_exponential
from tenacity.wait import wait_base

from bot.config import Settings
from bot.domain import Option
from bot.privacy import mask, mask_json
from bot.ratelimit import RateLimiter
from bot.schema import channel_inbox, channel_outbox, channel_tokens
from bot.service import Assistant, ChatTurn

if TYPE_CHECKING:
    from bot.keys import TokenCipher

log = logging.getLogger(__name__)

UNSUPPORTED_TEXT = (
    "Xin lỗi, hiện tôi chỉ đọc được tin nhắn dạng chữ (chưa xem được ảnh, nhãn dán, tin nhắn thoại hay tệp). "
    "Bạn hãy gõ câu hỏi về thủ tục hành chính, ví dụ: “Làm lại căn cước ở đâu?”"
)
RATING_PROMPT = "Trả lời bằng một số từ 1 (rất không hài lòng) đến 5 (rất hài lòng)."

# ---------------------------------------------------------------------------------------------- message model


@dataclass
class Incoming:
    """One thing a citizen sent, whatever the platform."""

    channel: str
    user_id: str  # whom to answer: Telegram chat id, Zalo user id
    text: str = ""
    kind: str = "text"  # text | unsupported (sticker, image, voice, file, …)
    meta: dict[str, Any] = field(default_factory=dict)  # platform detail a renderer needs (callback query id)

    @property
    def session_id(self) -> str:
        return f"{self.channel}:{self.user_id}"


@dataclass
class Link:
    title: str
    url: str


@dataclass
class Outgoing:
    """One reply: text, the choices offered, the sources to link, and whether it asks for a 1–5 rating."""

    text: str
    options: list[Option] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    rating: list[Option] = field(default_factory=list)  # the 1..5 choices when the assistant asks for a rating

    @classmethod
    def from_turn(cls, turn: ChatTurn) -> Outgoing:
        options: list[Option] = []
        rating: list[Option] = []
        for choice in turn.buttons:
            (rating if choice.payload.startswith("/rate") else options).append(choice)
        rating.sort(key=lambda o: score_of(o) or 0)
        links = [] if turn.reply.fallback else [
            Link(s.title, s.url) for s in turn.reply.sources if s.url
        ][:2]
        return cls(turn.reply.reply, options, links, rating)

    def missing_links(self) -> list[Link]:
        """Sources not already cited in the text (the engine's answers end with their "Nguồn: … — url")."""
        return [link for link in self.links if link.url not in self.text]

    def as_text(self) -> str:
        """The reply for a text-only channel: options numbered, sources as plain links."""
        parts = [self.text.strip()]
        if self.options:
            titles = [o.title if re.match(r"\d+\.", o.title) else f"{i}. {o.title}"
                      for i, o in enumerate(self.options, 1)]
            if not all(t in self.text for t in titles):
                parts.append("\n".join(titles))
            parts.append(f"Trả lời bằng số (1–{len(self.options)}) để chọn.")
        if self.rating:
            parts.append(RATING_PROMPT)
        parts.append("\n".join(f"Nguồn: {link.url}" for link in self.missing_links()))
        return "\n\n".join(p for p in parts if p)


def score_of(option: Option) -> int | None:
    match = re.search(r'"score"\s*:\s*"?([1-5])', option.payload)
    return int(match.group(1)) if match else None


def split_text(text: str, limit: int) -> list[str]:
    """Split a long reply into messages of at most ``limit`` characters, at paragraph, line or word breaks."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), 0) or max(window.rfind("\n"), 0) or max(window.rfind(" "), 0)
        if cut < limit // 3:  # no break in a sensible place: cut hard
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks or [""]


# ---------------------------------------------------------------------------------------------- channel contract


class DeliveryError(Exception):
    """A send failed. ``permanent``: retrying cannot help (the platform refused the message itself)."""

    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class BadPayload(ValueError):
    """A webhook payload that is not the platform's shape (answered 400; never stored)."""


class Channel(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def parse(self, raw: object) -> Incoming | None:
        """The citizen's message in a webhook payload (its text cut at max_input_chars + 1), or None for an event
        that needs no answer; BadPayload when the payload is not the platform's shape."""

    def render(self, incoming: Incoming, reply: Outgoing) -> list[dict]:
        """The platform payloads that deliver ``reply``, in order (each is one outbox row)."""

    async def send(self, payload: dict) -> None:
        """Deliver one payload; raise DeliveryError on failure."""


# ---------------------------------------------------------------------------------------------- persistence

STALE_CLAIM_S = 120.0  # a row claimed longer ago than this belongs to a process that died
RECORD_VERSION = 2  # inbox rows hold {"v": 2, "kind", "text", "meta"}; older rows held the platform's payload
RECORD_PREFIX = f'{{"v": {RECORD_VERSION},'
EMPTY_RECORD: dict = {"v": RECORD_VERSION, "kind": "none", "text": "", "meta": {}}
UNDELIVERED = ("pending", "sending")
# identifiers an outbox payload needs back as they are (a Zalo user id is a long digit string, like an ID number)
KEEP_KEYS = frozenset({"method", "chat_id", "user_id", "callback_query_id", "parse_mode"})


def storable(value: str) -> str:
    """Text every database can store: a JSON body may carry a lone surrogate ("\\ud800", which UTF-8 cannot
    encode) or NUL (which PostgreSQL refuses); they become U+FFFD and nothing."""
    if not value.isascii():
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value.replace("\x00", "")


def inbox_record(incoming: Incoming) -> dict:
    """What the inbox keeps of a message: what processing needs, the citizen's words masked — no names, usernames,
    contacts, locations or anything else of the platform's payload."""
    return {"v": RECORD_VERSION, "kind": incoming.kind, "text": mask(storable(incoming.text)),
            "meta": {k: storable(str(v)[:256]) for k, v in incoming.meta.items()}}


def safe_error(exc: BaseException) -> str:
    """An exception as it may be stored: bounded, and masked (a message can quote the citizen's words)."""
    return mask(f"{type(exc).__name__}: {exc}"[:2000])


class ChannelStore:
    """The channel tables in the assistant's database (created by its migrations, bot.db).

    ``cipher`` (bot.keys.TokenCipher) encrypts the rotating channel credentials in ``channel_tokens``.
    """

    def __init__(self, db: SqlEngine, cipher: TokenCipher | None = None) -> None:
        self.db = db
        self.cipher = cipher
        self.lease_s = STALE_CLAIM_S  # a claim older than this belongs to a process that died

    # inbox
    def receive(self, channel: str, message_id: str, user_id: str, record: dict) -> int | None:
        """Store a message (``inbox_record``); None when this message id was already received (a redelivery)."""
        now = time.time()
        try:
            with self.db.begin() as conn:
                result = conn.execute(insert(channel_inbox).values(
                    channel=channel, message_id=storable(message_id[:128]), user_id=storable(user_id[:128]),
                    payload=json.dumps(record, ensure_ascii=False), status="received", attempts=0,
                    created_at=now, updated_at=now,
                ))
                return int(result.inserted_primary_key[0])
        except IntegrityError:
            return None

    def claim_inbox(self, inbox_id: int) -> dict | None:
        return self._claim(channel_inbox, inbox_id, free="received", busy="processing")

    def unprocessed(self) -> list[int]:
        """Messages received but not answered: left by a stopped process, or waiting for another try."""
        with self.db.connect() as conn:
            rows = conn.execute(
                select(channel_inbox.c.id)
                .where(or_(channel_inbox.c.status == "received",
                           and_(channel_inbox.c.status == "processing",
                                channel_inbox.c.updated_at < time.time() - self.lease_s)))
                .order_by(channel_inbox.c.id)
            ).all()
        return [r[0] for r in rows]

    def finish_inbox(self, inbox_id: int, channel: str, user_id: str, payloads: list[dict],
                     record: dict | None = None) -> list[int]:
        """Queue the reply's payloads and mark the message done, in one transaction (``record`` replaces a row
        stored by an older version, which held the platform's payload)."""
        now = time.time()
        ids = []
        with self.db.begin() as conn:
            for payload in payloads:
                result = conn.execute(insert(channel_outbox).values(
                    channel=channel, user_id=user_id, payload=json.dumps(payload, ensure_ascii=False),
                    status="pending", attempts=0, next_attempt_at=now, inbox_id=inbox_id,
                    created_at=now, updated_at=now,
                ))
                ids.append(int(result.inserted_primary_key[0]))
            done: dict[str, Any] = {"status": "done", "error": None, "updated_at": now}
            if record is not None:
                done["payload"] = json.dumps(record, ensure_ascii=False)
            conn.execute(update(channel_inbox).where(channel_inbox.c.id == inbox_id).values(**done))
        return ids

    def fail_inbox(self, inbox_id: int, error: str, give_up: bool, record: dict | None = None) -> None:
        values: dict[str, Any] = {"status": "failed" if give_up else "received", "error": error[:2000],
                                  "updated_at": time.time()}
        if record is not None:
            values["payload"] = json.dumps(record, ensure_ascii=False)
        with self.db.begin() as conn:
            conn.execute(update(channel_inbox).where(channel_inbox.c.id == inbox_id).values(**values))

    def legacy_inbox(self, after: int = 0, limit: int = 200) -> list[dict]:
        """Rows stored by an older version (the platform's raw payload), in id order."""
        with self.db.connect() as conn:
            rows = conn.execute(
                select(channel_inbox.c.id, channel_inbox.c.channel, channel_inbox.c.payload, channel_inbox.c.status)
                .where(channel_inbox.c.id > after)
                .where(~channel_inbox.c.payload.startswith(RECORD_PREFIX))
                .order_by(channel_inbox.c.id).limit(limit)
            ).all()
        return [dict(r._mapping) for r in rows]

    def replace_inbox_payload(self, inbox_id: int, record: dict) -> None:
        with self.db.begin() as conn:
            conn.execute(update(channel_inbox).where(channel_inbox.c.id == inbox_id)
                         .values(payload=json.dumps(record, ensure_ascii=False)))

    # outbox
    def enqueue(self, channel: str, user_id: str, payloads: list[dict]) -> list[int]:
        now = time.time()
        with self.db.begin() as conn:
            return [int(conn.execute(insert(channel_outbox).values(
                channel=channel, user_id=user_id, payload=json.dumps(p, ensure_ascii=False), status="pending",
                attempts=0, next_attempt_at=now, created_at=now, updated_at=now,
            )).inserted_primary_key[0]) for p in payloads]

    def _due(self, channel: str, limit: int, now: float) -> Select:
        """The rows of ``channel`` to send now: of each recipient's undelivered messages only the oldest (a later
        one never overtakes it), and only when it is due (its retry time has come, and it is pending or its
        claimer died). Rows waiting for a retry do not count against ``limit``, however many they are."""
        o = channel_outbox
        heads = (select(func.min(o.c.id).label("id"))
                 .where(o.c.channel == channel).where(o.c.status.in_(UNDELIVERED))
                 .group_by(o.c.user_id).subquery())
        return (select(o.c.id, o.c.user_id)
                .join(heads, heads.c.id == o.c.id)
                .where(o.c.next_attempt_at <= now)
                .where(or_(o.c.status == "pending", o.c.updated_at < now - self.lease_s))
                .order_by(o.c.next_attempt_at, o.c.id).limit(limit))

    def due_outbox(self, channel: str, limit: int = 100, now: float | None = None) -> list[dict]:
        """The ids and recipients of the rows of ``channel`` to send now (see ``_due``), unclaimed."""
        with self.db.connect() as conn:
            rows = conn.execute(self._due(channel, limit, time.time() if now is None else now)).all()
        return [dict(r._mapping) for r in rows]

    def claim_outbox(self, outbox_id: int) -> dict | None:
        return self._claim(channel_outbox, outbox_id, free="pending", busy="sending")

    def claim_due_outbox(self, channel: str, limit: int = 100) -> list[dict]:
        """Claim the rows of ``channel`` to send now (at most ``limit``, at most one per recipient), in the order
        to send them, counting an attempt for each.

        On PostgreSQL in one transaction: SELECT … FOR UPDATE SKIP LOCKED, then the UPDATE to 'sending' — a row
        another instance is claiming at that moment is skipped, not waited for, and one it has claimed is no
        longer due. Elsewhere (SQLite) row by row with the conditional UPDATE of ``claim_outbox``."""
        if self.db.dialect.name != "postgresql":
            claimed = (self.claim_outbox(item["id"]) for item in self.due_outbox(channel, limit))
            return [row for row in claimed if row is not None]
        now = time.time()
        o = channel_outbox
        with self.db.begin() as conn:
            ids = list(conn.execute(self._due(channel, limit, now).with_for_update(skip_locked=True, of=o))
                       .scalars())
            if not ids:
                return []
            rows = conn.execute(update(o).where(o.c.id.in_(ids))
                                .values(status="sending", attempts=o.c.attempts + 1, updated_at=now)
                                .returning(*o.c)).all()
        order = {row_id: i for i, row_id in enumerate(ids)}
        return sorted((dict(r._mapping) for r in rows), key=lambda row: order[row["id"]])

    def release_outbox(self, rows: list[dict]) -> int:
        """Give claimed rows back unsent (the platform looks down, the hub is stopping, or a claim has grown too
        old to send on): pending again, their attempt not counted. A row another process has claimed since (its
        claim time differs) is left alone. Returns how many were given back."""
        released = 0
        with self.db.begin() as conn:
            for row in rows:
                released += conn.execute(
                    update(channel_outbox)
                    .where(channel_outbox.c.id == row["id"]).where(channel_outbox.c.status == "sending")
                    .where(channel_outbox.c.updated_at == row["updated_at"])
                    .values(status="pending", attempts=channel_outbox.c.attempts - 1, updated_at=time.time())
                ).rowcount
        return released

    def _claim(self, table: Table, row_id: int, free: str, busy: str) -> dict | None:
        """Take a row for this process: free → busy (or a busy row whose claimer died), counting the attempt.
        The conditional UPDATE is the lock: of several processes, exactly one gets the row."""
        now = time.time()
        with self.db.begin() as conn:
            claimed = conn.execute(
                update(table)
                .where(table.c.id == row_id)
                .where(or_(table.c.status == free, and_(table.c.status == busy,
                                                        table.c.updated_at < now - self.lease_s)))
                .values(status=busy, attempts=table.c.attempts + 1, updated_at=now)
            ).rowcount
            if not claimed:
                return None
            row = conn.execute(select(table).where(table.c.id == row_id)).first()
        return dict(row._mapping)

    def settle_outbox(self, outbox_id: int, status: str, error: str | None = None,
                      next_attempt_at: float | None = None, payload: dict | None = None) -> None:
        """Record a send's outcome. A message that is out of the queue (sent, or failed for good) keeps only its
        masked text: what staff may need to see, none of the personal data a staff reply may have carried."""
        values: dict[str, Any] = {"status": status, "last_error": error, "updated_at": time.time()}
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if payload is not None and status in ("sent", "failed"):
            values["payload"] = json.dumps(mask_json(payload, keep=KEEP_KEYS), ensure_ascii=False)
        with self.db.begin() as conn:
            conn.execute(update(channel_outbox).where(channel_outbox.c.id == outbox_id).values(**values))

    def outbox_rows(self, channel: str | None = None) -> list[dict]:
        query = select(channel_outbox).order_by(channel_outbox.c.id)
        if channel is not None:
            query = query.where(channel_outbox.c.channel == channel)
        with self.db.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query).all()]
        for row in rows:
            row["payload"] = json.loads(row["payload"])
        return rows

    # tokens (rotating credentials such as Zalo's refresh token), encrypted at rest
    def _cipher(self) -> TokenCipher:
        if self.cipher is None:
            raise RuntimeError("channel tokens need a ChannelStore with a TokenCipher")
        return self.cipher

    def token(self, channel: str, name: str) -> str | None:
        with self.db.connect() as conn:
            row = conn.execute(select(channel_tokens.c.value).where(channel_tokens.c.channel == channel)
                               .where(channel_tokens.c.name == name)).first()
        return self._cipher().decrypt(row[0]) if row else None

    def save_tokens(self, channel: str, values: dict[str, str]) -> None:
        now = time.time()
        cipher = self._cipher()
        with self.db.begin() as conn:
            for name, value in values.items():
                stored = cipher.encrypt(value)
                updated = conn.execute(update(channel_tokens).where(channel_tokens.c.channel == channel)
                                       .where(channel_tokens.c.name == name)
                                       .values(value=stored, updated_at=now)).rowcount
                if not updated:
                    conn.execute(insert(channel_tokens).values(channel=channel, name=name, value=stored,
                                                               updated_at=now))

    def encrypt_stored_tokens(self, channel: str) -> int:
        """Encrypt the tokens an older version stored in plaintext (at start, not only at their next refresh).
        Returns how many were encrypted."""
        cipher = self._cipher()
        with self.db.connect() as conn:
            rows = conn.execute(select(channel_tokens.c.name, channel_tokens.c.value)
                                .where(channel_tokens.c.channel == channel)).all()
        plain = {name: value for name, value in rows if not value.startswith(cipher.PREFIX)}
        if plain:
            self.save_tokens(channel, plain)
        return len(plain)


# ---------------------------------------------------------------------------------------------- the hub

SLOW_DOWN_TEXT = "Bạn gửi nhanh quá, vui lòng đợi {seconds} giây rồi gửi tiếp nhé."
OUTAGE_BREAK = 3  # consecutive failed sends in one pass: the platform is down, the rest of the queue waits
MAX_RETRY_AFTER_S = 3600.0  # a platform's retry_after is honoured up to an hour


def backoff_wait(cap: float) -> wait_base:
    """"Equal jitter" (AWS Architecture blog, "Exponential Backoff And Jitter"): half of 1, 2, 4 … seconds fixed,
    half random, capped at ``cap`` — retries after an outage spread out instead of arriving together."""
    half = max(cap, 0.0) / 2
    return wait_exponential(multiplier=0.5, max=half) + wait_random_exponential(multiplier=0.5, max=half)


class _Attempt:
    """The one field of tenacity's RetryCallState that its wait strategies read."""

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number


class ChannelHub:
    """Runs the channels: receives into the inbox, answers through the assistant, delivers from the outbox.

    Each channel delivers from its own task under its own lock: a platform that is down or slow delays only its
    own messages."""

    INBOX_ATTEMPTS = 3
    INBOX_RESCAN_S = 30.0
    DELIVERY_BATCH = 100

    def __init__(self, assistant: Assistant, settings: Settings, channels: list[Channel]) -> None:
        self.assistant = assistant
        self.settings = settings
        self.channels = {c.name: c for c in channels}
        self.store = ChannelStore(assistant.store.db)
        self.limiter = RateLimiter.from_settings(settings)
        # at most one "slow down" notice per user in the longest window of the limit
        windows = [item.get_expiry() for item in parse_many(settings.rate_limit_channel_user)] \
            if settings.rate_limit_channel_user.strip() else []
        self._notice_spec = f"1/{max(windows)}second" if windows else ""
        self._wait = backoff_wait(settings.outbox_max_backoff_s)
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self._locks = {name: asyncio.Lock() for name in self.channels}
        self._kicks = {name: asyncio.Event() for name in self.channels}
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        for channel in self.channels.values():
            await channel.start()
        if self.channels:
            await asyncio.to_thread(self.scrub_legacy_inbox)
            self._loops.append(asyncio.create_task(self._run_inbox(), name="channel-inbox"))
            for name in self.channels:
                self._loops.append(asyncio.create_task(self._run_outbox(name), name=f"channel-outbox-{name}"))

    async def stop(self) -> None:
        self._stopping.set()
        for kick in self._kicks.values():
            kick.set()
        if self._loops:  # let delivery passes finish, so no row is left half-sent
            await asyncio.wait(self._loops, timeout=self.settings.channel_timeout_s + 5)
            for task in self._loops:
                task.cancel()
            await asyncio.gather(*self._loops, return_exceptions=True)
            self._loops.clear()
        if self._tasks:  # let turns in flight finish (their replies are queued in the outbox)
            await asyncio.wait(self._tasks, timeout=10)
        for channel in self.channels.values():
            await channel.stop()

    # ------------------------------------------------------------------ in
    async def receive(self, incoming: Incoming, message_id: str) -> str:
        """Count the message against its sender's limit, store it (masked) and answer it in the background.

        Returns "queued", "duplicate" (a redelivery of a stored message) or "limited" (over the per-user limit:
        not stored, not answered; the sender gets one short notice per window)."""
        outcome = await asyncio.to_thread(self._receive, incoming, message_id)
        if isinstance(outcome, int):
            self._spawn(self.process(outcome))
            return "queued"
        if outcome == "notified":
            self.kick(incoming.channel)
            return "limited"
        if outcome == "duplicate":
            log.info("%s: message %s already received; ignoring the redelivery", incoming.channel, message_id)
        return outcome

    def _receive(self, incoming: Incoming, message_id: str) -> int | str:
        spec = self.settings.rate_limit_channel_user
        wait = self.limiter.hit("channel_user", spec, incoming.session_id) if spec.strip() else None
        if wait is not None:
            if self.limiter.hit("channel_user_notice", self._notice_spec, incoming.session_id) is not None:
                return "limited"  # told already in this window
            channel = self.channels[incoming.channel]
            notice = Outgoing(SLOW_DOWN_TEXT.format(seconds=max(1, int(wait))))
            self.store.enqueue(incoming.channel, incoming.user_id,
                               channel.render(Incoming(incoming.channel, incoming.user_id), notice))
            log.info("%s: a user is over the message limit; told to wait %d s", incoming.channel, wait)
            return "notified"
        inbox_id = self.store.receive(incoming.channel, message_id, incoming.user_id, inbox_record(incoming))
        return "duplicate" if inbox_id is None else inbox_id

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _incoming(self, row: dict) -> tuple[Incoming | None, dict | None]:
        """The message of an inbox row; for a row an older version stored raw, also the record to keep instead."""
        stored = json.loads(row["payload"])
        if isinstance(stored, dict) and stored.get("v") == RECORD_VERSION:
            return Incoming(row["channel"], row["user_id"], str(stored.get("text") or ""),
                            str(stored.get("kind") or "text"), dict(stored.get("meta") or {})), None
        channel = self.channels.get(row["channel"])
        incoming = channel.parse(stored) if channel is not None else None  # BadPayload when unreadable
        return incoming, (inbox_record(incoming) if incoming is not None else EMPTY_RECORD)

    async def process(self, inbox_id: int) -> None:
        row = await asyncio.to_thread(self.store.claim_inbox, inbox_id)
        if row is None:
            return  # another worker has it, or it is done
        channel = self.channels.get(row["channel"])
        try:
            if channel is None:
                raise RuntimeError(f"channel {row['channel']} is not configured")
            incoming, record = await asyncio.to_thread(self._incoming, row)
            payloads: list[dict] = []
            if incoming is not None:
                if incoming.kind == "text":
                    turn = await self.assistant.turn(incoming.session_id, incoming.text, incoming.channel)
                    reply = Outgoing.from_turn(turn)
                else:
                    reply = Outgoing(UNSUPPORTED_TEXT)
                payloads = channel.render(incoming, reply)
            await asyncio.to_thread(self.store.finish_inbox, inbox_id, row["channel"], row["user_id"], payloads,
                                    record)
        except Exception as exc:  # the message stays in the inbox and is tried again
            give_up = row["attempts"] >= self.INBOX_ATTEMPTS
            log.error("%s: processing message %s failed (attempt %d): %s", row["channel"], row["message_id"],
                      row["attempts"], safe_error(exc), exc_info=not isinstance(exc, BadPayload))
            # a raw row of an older version that cannot be processed keeps nothing once given up
            legacy = not row["payload"].startswith(RECORD_PREFIX)
            await asyncio.to_thread(self.store.fail_inbox, inbox_id, safe_error(exc), give_up,
                                    EMPTY_RECORD if give_up and legacy else None)
            return
        self.kick(row["channel"])

    def scrub_legacy_inbox(self) -> int:
        """Rewrite the rows an older version stored as the platform's raw payload (names, usernames, contacts…):
        unanswered ones into the masked record processing needs, the others into an empty record. Returns how
        many were rewritten."""
        done, after = 0, 0
        while batch := self.store.legacy_inbox(after):
            for row in batch:
                after = row["id"]
                record = EMPTY_RECORD
                if row["status"] in ("received", "processing"):
                    with contextlib.suppress(Exception):  # unreadable: nothing worth keeping
                        record = self._incoming({**row, "user_id": ""})[1] or EMPTY_RECORD
                self.store.replace_inbox_payload(row["id"], record)
                done += 1
        if done:
            log.info("channel inbox: %d rows of an older version rewritten without personal data", done)
        return done

    async def send_text(self, channel: str, user_id: str, text: str) -> list[int]:
        """Send a message outside a turn (a staff member's reply to a handed-over conversation): it goes through
        the outbox like any reply. Raises KeyError when the channel is not configured here."""
        adapter = self.channels[channel]
        payloads = adapter.render(Incoming(channel, user_id), Outgoing(text))
        ids = await asyncio.to_thread(self.store.enqueue, channel, user_id, payloads)
        self.kick(channel)
        return ids

    # ------------------------------------------------------------------ out
    def kick(self, channel: str) -> None:
        """Wake the channel's delivery task (a reply was queued)."""
        if channel in self._kicks:
            self._kicks[channel].set()

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next try of a message that failed ``attempts`` times (tenacity's wait strategies):
        exponential with jitter up to ``outbox_max_backoff_s``, and never sooner than the platform asked."""
        delay = self._wait(_Attempt(max(1, attempts)))  # type: ignore[arg-type]  # stands in for RetryCallState
        if retry_after:
            delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_S))
        return delay

    async def deliver(self, channel: str | None = None) -> int:
        """Delivery passes over the outbox (one channel, or each in turn). Returns how many messages were sent."""
        names = [channel] if channel is not None else list(self.channels)
        return sum([await self._deliver(name) for name in names])

    async def _deliver(self, name: str) -> int:
        """Send what is due for one channel, oldest first per recipient, until nothing more is due, the platform
        looks down (OUTAGE_BREAK failures in a row), or the hub stops."""
        channel = self.channels.get(name)
        if channel is None:
            return 0
        sent = 0
        failures = 0
        async with self._locks[name]:
            while not self._stopping.is_set():
                claimed = await asyncio.to_thread(self.store.claim_due_outbox, name, self.DELIVERY_BATCH)
                if not claimed:
                    break
                for index, row in enumerate(claimed):
                    # a claim is sent on only in the first half of its lease: however slow the sends before it,
                    # it cannot still be going out when another instance takes the row as abandoned
                    if (self._stopping.is_set() or failures >= OUTAGE_BREAK
                            or (index and time.time() - row["updated_at"] > self.store.lease_s / 2)):
                        await asyncio.to_thread(self.store.release_outbox, claimed[index:])
                        break
                    outcome = await self._send_one(channel, row)
                    sent += outcome == "sent"
                    failures = failures + 1 if outcome == "retry" else 0
                if failures >= OUTAGE_BREAK:
                    log.warning("%s: %d sends failed in a row; the rest of the queue waits for the next pass",
                                name, failures)
                    break
        return sent

    async def _send_one(self, channel: Channel, row: dict) -> str:
        """Send one claimed row: "sent", "failed" (for good) or "retry" (back in the queue, after a backoff)."""
        payload = json.loads(row["payload"])
        try:
            await channel.send(payload)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded; only DeliveryError is expected
            error = safe_error(exc)
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            if permanent or row["attempts"] >= self.settings.outbox_max_attempts:
                log.error("%s: giving up on message %d: %s", row["channel"], row["id"], error)
                await asyncio.to_thread(self.store.settle_outbox, row["id"], "failed", error, None, payload)
                return "failed"
            delay = self.backoff(row["attempts"], exc.retry_after if isinstance(exc, DeliveryError) else None)
            log.warning("%s: sending message %d failed (attempt %d), retrying in %.1f s: %s",
                        row["channel"], row["id"], row["attempts"], delay, error)
            await asyncio.to_thread(self.store.settle_outbox, row["id"], "pending", error, time.time() + delay)
            return "retry"
        await asyncio.to_thread(self.store.settle_outbox, row["id"], "sent", None, None, payload)
        return "sent"

    async def _run_outbox(self, name: str) -> None:
        """One channel's delivery: what a previous run left first, then whenever a reply is queued, and every
        second for retries."""
        kick = self._kicks[name]
        while not self._stopping.is_set():
            kick.clear()
            try:
                await self._deliver(name)
            except Exception:  # a database hiccup must not stop the loop
                log.exception("%s: outbox pass failed", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(kick.wait(), timeout=1.0)

    async def _run_inbox(self) -> None:
        """Pick up messages a previous run (or a failed try) left unanswered."""
        while not self._stopping.is_set():
            try:
                for inbox_id in await asyncio.to_thread(self.store.unprocessed):
                    self._spawn(self.process(inbox_id))  # claiming makes a second try of a live one a no-op
            except Exception:  # a database hiccup must not stop the loop
                log.exception("channel hub: inbox scan failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.INBOX_RESCAN_S)
