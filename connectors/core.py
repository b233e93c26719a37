"""What every chat channel shares: one message model, a persistent inbox and outbox, and the hub that runs turns.

A channel adapter (Telegram, Zalo) does three things only: turn a platform payload into an `Incoming`, render an
`Outgoing` into the platform's send payloads, and send one payload. Everything else is here, once:

    webhook ──► inbox (de-duplicated on the platform's message id) ──► Assistant.turn ──► outbox ──► send
                 └ answered 200 at once; processed in the background       retried with backoff until delivered

Both tables live in the assistant's database, so a reply survives a channel outage and a restart: unprocessed
inbox rows are picked up again at start, and undelivered outbox rows are retried until they go out (or, after
`outbox_max_attempts`, are kept as failed for staff to see). Rows are claimed with a conditional UPDATE, so
several worker processes can share the tables without sending a reply twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import (
    Table,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.domain import Option
from bot.privacy import mask_json
from bot.schema import channel_inbox, channel_outbox, channel_tokens
from bot.service import Assistant, ChatTurn

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
        options, rating = [], []
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


class Channel(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def parse(self, raw: dict) -> Incoming | None:
        """The citizen's message in a stored webhook payload, or None for an event that needs no answer."""

    def render(self, incoming: Incoming, reply: Outgoing) -> list[dict]:
        """The platform payloads that deliver ``reply``, in order (each is one outbox row)."""

    async def send(self, payload: dict) -> None:
        """Deliver one payload; raise DeliveryError on failure."""


# ---------------------------------------------------------------------------------------------- persistence

STALE_CLAIM_S = 120.0  # a row claimed longer ago than this belongs to a process that died


class ChannelStore:
    """The channel tables in the assistant's database (created by its migrations, bot.db)."""

    def __init__(self, db: SqlEngine) -> None:
        self.db = db

    # inbox
    def receive(self, channel: str, message_id: str, user_id: str, payload: dict) -> int | None:
        """Store an incoming payload; None when this message id was already received (a redelivery)."""
        now = time.time()
        try:
            with self.db.begin() as conn:
                result = conn.execute(insert(channel_inbox).values(
                    channel=channel, message_id=message_id[:128], user_id=user_id[:128],
                    payload=json.dumps(payload, ensure_ascii=False), status="received", attempts=0,
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
                                channel_inbox.c.updated_at < time.time() - STALE_CLAIM_S)))
                .order_by(channel_inbox.c.id)
            ).all()
        return [r[0] for r in rows]

    def finish_inbox(self, inbox_id: int, channel: str, user_id: str, payloads: list[dict],
                     masked: dict | None = None) -> list[int]:
        """Queue the reply's payloads and mark the message done, in one transaction; the stored platform payload
        is replaced by ``masked`` (the citizen's words with personal data masked, bot.privacy)."""
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
            if masked is not None:
                done["payload"] = json.dumps(masked, ensure_ascii=False)
            conn.execute(update(channel_inbox).where(channel_inbox.c.id == inbox_id).values(**done))
        return ids

    def fail_inbox(self, inbox_id: int, error: str, give_up: bool) -> None:
        with self.db.begin() as conn:
            conn.execute(update(channel_inbox).where(channel_inbox.c.id == inbox_id).values(
                status="failed" if give_up else "received", error=error[:2000], updated_at=time.time()))

    # outbox
    def enqueue(self, channel: str, user_id: str, payloads: list[dict]) -> list[int]:
        now = time.time()
        with self.db.begin() as conn:
            return [int(conn.execute(insert(channel_outbox).values(
                channel=channel, user_id=user_id, payload=json.dumps(p, ensure_ascii=False), status="pending",
                attempts=0, next_attempt_at=now, created_at=now, updated_at=now,
            )).inserted_primary_key[0]) for p in payloads]

    def outbox_queue(self, limit: int = 500) -> list[dict]:
        """Undelivered rows (pending, or claimed by a live sender), oldest first."""
        with self.db.connect() as conn:
            rows = conn.execute(
                select(channel_outbox.c.id, channel_outbox.c.channel, channel_outbox.c.user_id,
                       channel_outbox.c.status, channel_outbox.c.next_attempt_at, channel_outbox.c.updated_at)
                .where(channel_outbox.c.status.in_(("pending", "sending")))
                .order_by(channel_outbox.c.id).limit(limit)
            ).all()
        return [dict(r._mapping) for r in rows]

    def claim_outbox(self, outbox_id: int) -> dict | None:
        return self._claim(channel_outbox, outbox_id, free="pending", busy="sending")

    def _claim(self, table: Table, row_id: int, free: str, busy: str) -> dict | None:
        """Take a row for this process: free → busy (or a busy row whose claimer died), counting the attempt.
        The conditional UPDATE is the lock: of several processes, exactly one gets the row."""
        now = time.time()
        with self.db.begin() as conn:
            claimed = conn.execute(
                update(table)
                .where(table.c.id == row_id)
                .where(or_(table.c.status == free, and_(table.c.status == busy,
                                                        table.c.updated_at < now - STALE_CLAIM_S)))
                .values(status=busy, attempts=table.c.attempts + 1, updated_at=now)
            ).rowcount
            if not claimed:
                return None
            row = conn.execute(select(table).where(table.c.id == row_id)).first()
        return dict(row._mapping)

    def settle_outbox(self, outbox_id: int, status: str, error: str | None = None,
                      next_attempt_at: float | None = None) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error, "updated_at": time.time()}
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
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

    # tokens (rotating credentials such as Zalo's refresh token)
    def token(self, channel: str, name: str) -> str | None:
        with self.db.connect() as conn:
            row = conn.execute(select(channel_tokens.c.value).where(channel_tokens.c.channel == channel)
                               .where(channel_tokens.c.name == name)).first()
        return row[0] if row else None

    def save_tokens(self, channel: str, values: dict[str, str]) -> None:
        now = time.time()
        with self.db.begin() as conn:
            for name, value in values.items():
                updated = conn.execute(update(channel_tokens).where(channel_tokens.c.channel == channel)
                                       .where(channel_tokens.c.name == name)
                                       .values(value=value, updated_at=now)).rowcount
                if not updated:
                    conn.execute(insert(channel_tokens).values(channel=channel, name=name, value=value,
                                                               updated_at=now))


# ---------------------------------------------------------------------------------------------- the hub


class ChannelHub:
    """Runs the channels: receives into the inbox, answers through the assistant, delivers from the outbox."""

    INBOX_ATTEMPTS = 3
    INBOX_RESCAN_S = 30.0

    def __init__(self, assistant: Assistant, settings: Settings, channels: list[Channel]) -> None:
        self.assistant = assistant
        self.settings = settings
        self.channels = {c.name: c for c in channels}
        self.store = ChannelStore(assistant.store.db)
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None
        self._deliver_lock = asyncio.Lock()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        for channel in self.channels.values():
            await channel.start()
        if self.channels:
            self._loop_task = asyncio.create_task(self._run(), name="channel-hub")

    async def stop(self) -> None:
        self._stopping.set()
        if self._loop_task is not None:  # let a delivery pass finish, so no row is left half-sent
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._loop_task, timeout=self.settings.channel_timeout_s + 5)
        if self._tasks:  # let turns in flight finish (their replies are queued in the outbox)
            await asyncio.wait(self._tasks, timeout=10)
        for channel in self.channels.values():
            await channel.stop()

    async def receive(self, channel: str, message_id: str, user_id: str, payload: dict) -> bool:
        """Store a webhook payload and process it in the background; False for a duplicate delivery."""
        inbox_id = await asyncio.to_thread(self.store.receive, channel, message_id, user_id, payload)
        if inbox_id is None:
            log.info("%s: message %s already received; ignoring the redelivery", channel, message_id)
            return False
        self._spawn(self.process(inbox_id))
        return True

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def process(self, inbox_id: int) -> None:
        row = await asyncio.to_thread(self.store.claim_inbox, inbox_id)
        if row is None:
            return  # another worker has it, or it is done
        channel = self.channels.get(row["channel"])
        try:
            if channel is None:
                raise RuntimeError(f"channel {row['channel']} is not configured")
            incoming = channel.parse(json.loads(row["payload"]))
            payloads: list[dict] = []
            if incoming is not None:
                if incoming.kind == "text":
                    turn = await self.assistant.turn(incoming.session_id, incoming.text, incoming.channel)
                    reply = Outgoing.from_turn(turn)
                else:
                    reply = Outgoing(UNSUPPORTED_TEXT)
                payloads = channel.render(incoming, reply)
            await asyncio.to_thread(self.store.finish_inbox, inbox_id, row["channel"], row["user_id"], payloads,
                                    mask_json(json.loads(row["payload"])))
        except Exception as exc:  # noqa: BLE001 - the message stays in the inbox and is tried again
            give_up = row["attempts"] >= self.INBOX_ATTEMPTS
            log.exception("%s: processing message %s failed (attempt %d)", row["channel"], row["message_id"],
                          row["attempts"])
            await asyncio.to_thread(self.store.fail_inbox, inbox_id, f"{type(exc).__name__}: {exc}", give_up)
            return
        await self.deliver()

    async def send_text(self, channel: str, user_id: str, text: str) -> list[int]:
        """Send a message outside a turn (a staff member's reply to a handed-over conversation): it goes through
        the outbox like any reply. Raises KeyError when the channel is not configured here."""
        adapter = self.channels[channel]
        payloads = adapter.render(Incoming(channel, user_id), Outgoing(text))
        ids = await asyncio.to_thread(self.store.enqueue, channel, user_id, payloads)
        self._spawn(self.deliver())
        return ids

    def backoff(self, attempts: int) -> float:
        return min(self.settings.outbox_max_backoff_s, 2.0 ** max(0, attempts - 1))

    async def deliver(self) -> int:
        """One pass over the outbox: send what is due, in order per recipient. Returns how many were sent."""
        sent = 0
        async with self._deliver_lock:
            queue = await asyncio.to_thread(self.store.outbox_queue)
            blocked: set[tuple[str, str]] = set()  # a recipient whose earlier message is not out yet
            now = time.time()
            for item in queue:
                key = (item["channel"], item["user_id"])
                if key in blocked:
                    continue
                stale = item["status"] == "sending" and item["updated_at"] < now - STALE_CLAIM_S
                if (item["status"] == "sending" and not stale) or item["next_attempt_at"] > now:
                    blocked.add(key)
                    continue
                channel = self.channels.get(item["channel"])
                if channel is None:
                    blocked.add(key)
                    continue
                row = await asyncio.to_thread(self.store.claim_outbox, item["id"])
                if row is None:
                    blocked.add(key)
                    continue
                try:
                    await channel.send(json.loads(row["payload"]))
                except Exception as exc:  # noqa: BLE001 - every failure is recorded; only DeliveryError is expected
                    error = f"{type(exc).__name__}: {exc}"
                    permanent = isinstance(exc, DeliveryError) and exc.permanent
                    if permanent or row["attempts"] >= self.settings.outbox_max_attempts:
                        log.error("%s: giving up on message %d to %s: %s", row["channel"], row["id"],
                                  row["user_id"], error)
                        await asyncio.to_thread(self.store.settle_outbox, row["id"], "failed", error)
                        if not permanent:
                            blocked.add(key)
                        continue
                    delay = self.backoff(row["attempts"])
                    if isinstance(exc, DeliveryError) and exc.retry_after:
                        delay = max(delay, exc.retry_after)
                    log.warning("%s: sending message %d failed (attempt %d), retrying in %.0f s: %s",
                                row["channel"], row["id"], row["attempts"], delay, error)
                    await asyncio.to_thread(self.store.settle_outbox, row["id"], "pending", error,
                                            time.time() + delay)
                    blocked.add(key)
                    continue
                await asyncio.to_thread(self.store.settle_outbox, row["id"], "sent")
                sent += 1
        return sent

    async def _run(self) -> None:
        """Pick up what a previous run left (unprocessed messages, undelivered replies), then keep retrying."""
        last_inbox_scan = -1e9
        while not self._stopping.is_set():
            try:
                if time.monotonic() - last_inbox_scan > self.INBOX_RESCAN_S:
                    last_inbox_scan = time.monotonic()
                    for inbox_id in await asyncio.to_thread(self.store.unprocessed):
                        self._spawn(self.process(inbox_id))  # claiming makes a second try of a live one a no-op
                await self.deliver()
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the loop
                log.exception("channel hub: outbox pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=1.0)
