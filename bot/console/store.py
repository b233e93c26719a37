"""What the console reads and writes besides accounts: the review queue, handed-over conversations and staff
replies (tables turns, ratings, handoff_tickets, review_items, staff_replies)."""

from __future__ import annotations

import json
import time

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Select, Subquery

from bot.console.audit import record
from bot.schema import channel_outbox, handoff_tickets, ratings, review_items, staff_replies, turns

LOW_CONFIDENCE = 0.6  # the NLU's intent confidence under which a turn is worth a look
LOW_RATING = 2  # a conversation rated this or lower: its answers are worth a look
REVIEW_STATUSES = ("linked", "faq", "out_of_scope")
# Channels a staff reply can reach outside a turn: through the hub's outbox, or fetched by the web page
PUSH_CHANNELS = ("telegram", "zalo")


class AlreadyResolved(Exception):
    """Another staff member resolved this review item first."""


def _lowest_rating() -> Subquery:
    return (select(ratings.c.session_id, func.min(ratings.c.score).label("score"))
            .group_by(ratings.c.session_id).subquery("lowest_rating"))


class ConsoleStore:
    def __init__(self, db: SqlEngine) -> None:
        self.db = db

    # ---- review queue --------------------------------------------------------------------------------------------
    def _review_query(self, columns: list, channel: str | None) -> Select:
        """Turns that need a person and nobody resolved yet: declined, not known, a fallback (not unreadable input),
        a low NLU confidence, or in a conversation the citizen rated LOW_RATING or lower."""
        lowest = _lowest_rating()
        needs = and_(
            turns.c.outcome.notin_(("invalid", "handoff")),
            turns.c.question != "",
            or_(
                turns.c.outcome.in_(("declined", "unknown")),
                turns.c.fallback.is_(True),
                turns.c.confidence < LOW_CONFIDENCE,
                and_(lowest.c.score <= LOW_RATING, turns.c.outcome != "small_talk"),
            ),
            ~exists().where(review_items.c.turn_id == turns.c.id),
        )
        query = (select(*columns).select_from(turns.outerjoin(lowest, lowest.c.session_id == turns.c.session_id))
                 .where(needs))
        if channel:
            query = query.where(turns.c.channel == channel)
        return query, lowest

    def review_queue(self, *, channel: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
        """Unresolved turns that need a person, newest first, with why; and how many there are in all."""
        query, lowest = self._review_query(
            [turns.c.id, turns.c.session_id, turns.c.channel, turns.c.question, turns.c.reply, turns.c.intent,
             turns.c.outcome, turns.c.fallback, turns.c.confidence, turns.c.created_at, turns.c.simulated], channel)
        query = query.add_columns(lowest.c.score.label("rating"))
        count, _ = self._review_query([func.count()], channel)
        with self.db.connect() as conn:
            total = conn.execute(count).scalar_one()
            rows = conn.execute(query.order_by(turns.c.id.desc()).limit(limit).offset(offset)).all()
        return [self._with_reasons(dict(r._mapping)) for r in rows], total

    @staticmethod
    def _with_reasons(row: dict) -> dict:
        reasons = []
        if row["outcome"] == "declined":
            reasons.append("Từ chối (ngoài phạm vi)")
        elif row["outcome"] == "unknown":
            reasons.append("Không chắc chắn")
        elif row["fallback"]:
            reasons.append("Chưa trả lời được")
        if row["confidence"] is not None and row["confidence"] < LOW_CONFIDENCE:
            reasons.append(f"Độ tin cậy thấp ({row['confidence']:.2f})")
        if row.get("rating") is not None and row["rating"] <= LOW_RATING:
            reasons.append(f"Bị đánh giá {row['rating']}★")
        row["reasons"] = reasons
        return row

    def turn(self, turn_id: int) -> dict | None:
        """One turn with its review resolution (None if unresolved) and the conversation's lowest rating."""
        lowest = _lowest_rating()
        query = (select(turns, lowest.c.score.label("rating"))
                 .select_from(turns.outerjoin(lowest, lowest.c.session_id == turns.c.session_id))
                 .where(turns.c.id == turn_id))
        with self.db.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            resolved = conn.execute(select(review_items).where(review_items.c.turn_id == turn_id)).first()
        item = self._with_reasons(dict(row._mapping))
        item["resolution"] = dict(resolved._mapping) if resolved else None
        return item

    def is_resolved(self, turn_id: int) -> bool:
        with self.db.connect() as conn:
            return conn.execute(select(review_items.c.turn_id).where(review_items.c.turn_id == turn_id)).first() is not None

    def resolve(self, turn_id: int, status: str, actor: str, *, faq_id: int | None = None,
                procedure: str | None = None) -> None:
        """Mark a turn resolved (and audit it); AlreadyResolved if someone else was first."""
        if status not in REVIEW_STATUSES:
            raise ValueError(f"unknown review status {status!r}")
        try:
            with self.db.begin() as conn:
                conn.execute(insert(review_items).values(turn_id=turn_id, status=status, faq_id=faq_id,
                                                         procedure=procedure, resolved_by=actor,
                                                         resolved_at=time.time()))
                record(conn, actor, f"review.{status}", "turn", turn_id,
                       {"faq_id": faq_id, "procedure": procedure})
        except IntegrityError as exc:
            raise AlreadyResolved(turn_id) from exc

    def session_turns(self, session_id: str, turn_id: int, before: int = 6, after: int = 3) -> list[dict]:
        """The conversation around a turn: up to ``before`` turns before it, the turn, ``after`` turns after."""
        columns = (turns.c.id, turns.c.question, turns.c.reply, turns.c.created_at)
        with self.db.connect() as conn:
            earlier = conn.execute(select(*columns).where(turns.c.session_id == session_id, turns.c.id <= turn_id)
                                   .order_by(turns.c.id.desc()).limit(before + 1)).all()
            later = conn.execute(select(*columns).where(turns.c.session_id == session_id, turns.c.id > turn_id)
                                 .order_by(turns.c.id).limit(after)).all()
        return [dict(r._mapping) for r in [*reversed(earlier), *later]]

    # ---- handed-over conversations ---------------------------------------------------------------------------------
    def tickets(self, status: str = "open", limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
        """Tickets with this status, newest first, with their number of staff replies; and the total."""
        replies = (select(staff_replies.c.ticket_id, func.count().label("replies"))
                   .group_by(staff_replies.c.ticket_id).subquery("reply_counts"))
        query = (select(handoff_tickets.c.id, handoff_tickets.c.session_id, handoff_tickets.c.channel,
                        handoff_tickets.c.reason, handoff_tickets.c.status, handoff_tickets.c.created_at,
                        handoff_tickets.c.assigned_to, handoff_tickets.c.simulated, handoff_tickets.c.transcript,
                        func.coalesce(replies.c.replies, 0).label("replies"))
                 .select_from(handoff_tickets.outerjoin(replies, replies.c.ticket_id == handoff_tickets.c.id))
                 .where(handoff_tickets.c.status == status)
                 .order_by(handoff_tickets.c.id.desc()).limit(limit).offset(offset))
        with self.db.connect() as conn:
            total = conn.execute(select(func.count()).select_from(handoff_tickets)
                                 .where(handoff_tickets.c.status == status)).scalar_one()
            rows = [dict(r._mapping) for r in conn.execute(query).all()]
        for row in rows:  # the citizen's last words before the handover, as a preview
            said = [m.get("text", "") for m in _transcript(row.pop("transcript")) if m.get("role") == "user"]
            row["last_question"] = said[-1] if said else ""
        return rows, total

    def ticket(self, ticket_id: int) -> dict | None:
        with self.db.connect() as conn:
            row = conn.execute(select(handoff_tickets).where(handoff_tickets.c.id == ticket_id)).first()
        if row is None:
            return None
        ticket = dict(row._mapping)
        ticket["transcript"] = _transcript(ticket["transcript"])
        return ticket

    def conversation_after(self, ticket: dict) -> list[dict]:
        """What happened after the handover, in time order: the citizen's later turns and the staff replies.

        The turn that asked for the handover is stored just after its ticket, and the transcript already ends
        with it, so it is left out here."""
        with self.db.connect() as conn:
            later = conn.execute(
                select(turns.c.id, turns.c.question, turns.c.reply, turns.c.created_at)
                .where(turns.c.session_id == ticket["session_id"], turns.c.created_at >= ticket["created_at"])
                .order_by(turns.c.id)).all()
        said = [m.get("text") for m in ticket["transcript"] if m.get("role") == "user"]
        entries: list[dict] = []
        for i, t in enumerate(later):
            if i == 0 and said and t.question == said[-1] and t.created_at - ticket["created_at"] < 60:
                continue
            entries.append({"who": "user", "text": t.question, "at": t.created_at})
            entries.append({"who": "bot", "text": t.reply, "at": t.created_at})
        entries += [{"who": "staff", **r, "at": r["created_at"]} for r in self.replies(ticket["id"])]
        entries.sort(key=lambda e: e["at"])
        return entries

    def assign(self, ticket_id: int, actor: str) -> None:
        with self.db.begin() as conn:
            conn.execute(update(handoff_tickets).where(handoff_tickets.c.id == ticket_id).values(assigned_to=actor))
            record(conn, actor, "handoff.assign", "ticket", ticket_id, {})

    def close(self, ticket_id: int, actor: str) -> None:
        with self.db.begin() as conn:
            conn.execute(update(handoff_tickets).where(handoff_tickets.c.id == ticket_id).values(status="closed"))
            record(conn, actor, "handoff.close", "ticket", ticket_id, {})

    # ---- staff replies -------------------------------------------------------------------------------------------
    def add_reply(self, ticket: dict, author: str, text: str, *, delivered: bool, error: str | None = None,
                  outbox_ids: list[int] | None = None) -> int:
        """Store a staff reply to a ticket (the first reply also assigns the ticket to its author); audited."""
        with self.db.begin() as conn:
            reply_id = int(conn.execute(insert(staff_replies).values(
                ticket_id=ticket["id"], session_id=ticket["session_id"], channel=ticket["channel"], author=author,
                text=text, created_at=time.time(), delivered=delivered, error=error,
                outbox_ids=json.dumps(outbox_ids) if outbox_ids else None,
            )).inserted_primary_key[0])
            conn.execute(update(handoff_tickets).where(handoff_tickets.c.id == ticket["id"],
                                                       handoff_tickets.c.assigned_to.is_(None))
                         .values(assigned_to=author))
            record(conn, author, "handoff.reply", "ticket", ticket["id"],
                   {"reply_id": reply_id, "channel": ticket["channel"], "delivered": delivered, "error": error})
        return reply_id

    def replies(self, ticket_id: int) -> list[dict]:
        """A ticket's staff replies, oldest first, each with its delivery state for the staff member:
        status sent | queued | failed | stored | fetched, and the error when there is one."""
        with self.db.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(staff_replies).where(staff_replies.c.ticket_id == ticket_id).order_by(staff_replies.c.id)).all()]
            ids = [i for r in rows for i in json.loads(r["outbox_ids"] or "[]")]
            outbox = {o.id: o for o in conn.execute(
                select(channel_outbox.c.id, channel_outbox.c.status, channel_outbox.c.last_error)
                .where(channel_outbox.c.id.in_(ids))).all()} if ids else {}
        for row in rows:
            parts = [outbox[i] for i in json.loads(row.pop("outbox_ids") or "[]") if i in outbox]
            if row["channel"] == "web":
                row["status"] = "fetched" if row["delivered"] else "waiting"
            elif not row["delivered"]:
                row["status"] = "stored"
            elif any(p.status == "failed" for p in parts):
                row["status"] = "failed"
                row["error"] = next(p.last_error for p in parts if p.status == "failed")
            elif parts and all(p.status == "sent" for p in parts):
                row["status"] = "sent"
            else:
                row["status"] = "queued"
        return rows

    def web_messages(self, session_id: str, after: int = 0, limit: int = 50) -> list[dict]:
        """Staff replies to a web-chat conversation after reply id ``after`` (what the page polls for); marks them
        fetched. Only the web channel: other channels' session ids are guessable (telegram:<chat id>)."""
        where = (staff_replies.c.session_id == session_id, staff_replies.c.channel == "web",
                 staff_replies.c.id > after)
        with self.db.connect() as conn:
            rows = conn.execute(select(staff_replies.c.id, staff_replies.c.text, staff_replies.c.created_at,
                                       staff_replies.c.delivered)
                                .where(*where).order_by(staff_replies.c.id).limit(limit)).all()
        fresh = [r.id for r in rows if not r.delivered]
        if fresh:
            with self.db.begin() as conn:
                conn.execute(update(staff_replies).where(staff_replies.c.id.in_(fresh)).values(delivered=True))
        return [{"id": r.id, "text": r.text, "author_display": "Nhân viên", "created_at": r.created_at} for r in rows]


def _transcript(raw: str | list) -> list[dict]:
    if isinstance(raw, list):
        return raw
    try:
        items = json.loads(raw or "[]")
    except ValueError:
        return []
    return [m for m in items if isinstance(m, dict)] if isinstance(items, list) else []
