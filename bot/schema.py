"""The database schema in one place: every table the assistant and its channels use.

The schema itself is created and changed by the migrations in bot/migrations (Alembic), applied at start by
`bot.db.migrate`; these Table objects are how the code reads and writes it, and a test checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("state", Text, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
    Column("updated_at", Float, nullable=False),
    Column("simulated", Boolean, nullable=False, server_default=false()),  # demo data (python -m bot demo-data)
    # ---- migration 0006: several instances (bot.conversation)
    # bumped whenever the state is written: a turn computed from an older version is not saved over a newer one
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("answered", Boolean, nullable=False, server_default=false()),  # a reply was recorded (rating allowed)
    Column("rated", Boolean, nullable=False, server_default=false()),  # the citizen rated it (a new rating replaces)
)

turns = Table(
    "turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(128), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("question", Text, nullable=False),
    Column("reply", Text, nullable=False),
    Column("intent", String(64)),
    Column("fallback", Boolean, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("sources", Text, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
    Column("procedure", String(32), index=True),  # the procedure the reply was about (code), if any
    Column("aspect", String(32)),  # what was asked of it: documents, fee, time, … (the first one)
    Column("confidence", Float),  # the NLU's intent confidence (None without the dialogue layer)
    Column("simulated", Boolean, nullable=False, server_default=false()),
    # the event it was written from (bot.conversation, with an event broker): written once however often delivered
    Column("event_id", String(32), index=True, unique=True),
)


# the answer given to a client's message id (/api/chat's message_id, migration 0007): a retry gets it back
chat_receipts = Table(
    "chat_receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(128), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("response", Text, nullable=False),  # the JSON answer /api/chat gave
    Column("created_at", Float, nullable=False, index=True),
    UniqueConstraint("session_id", "message_id", name="uq_chat_receipts_message"),
)


handoff_tickets = Table(
    "handoff_tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(128), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("reason", String(32), nullable=False),  # requested | unanswered
    Column("transcript", Text, nullable=False),  # JSON list of {"role": "user"|"bot", "text": str}
    Column("status", String(16), nullable=False, default="open"),  # open | closed (set by staff)
    Column("created_at", Float, nullable=False, index=True),
    Column("simulated", Boolean, nullable=False, server_default=false()),
)

ratings = Table(
    "ratings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(128), nullable=False, index=True, unique=True),  # one rating per conversation
    Column("channel", String(32), nullable=False),
    Column("score", Integer, nullable=False),  # 1..5
    Column("created_at", Float, nullable=False, index=True),
    Column("simulated", Boolean, nullable=False, server_default=false()),
    Column("event_id", String(32), index=True, unique=True),  # as turns.event_id (migration 0006)
)

channel_inbox = Table(
    "channel_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(32), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("payload", Text, nullable=False),  # the platform's JSON, as received
    Column("status", String(16), nullable=False),  # received | processing | done | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("created_at", Float, nullable=False, index=True),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("channel", "message_id", name="uq_channel_inbox_message"),
)

channel_outbox = Table(
    "channel_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(32), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("payload", Text, nullable=False),  # what Channel.send gets
    Column("status", String(16), nullable=False, index=True),  # pending | sending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text),
    Column("inbox_id", Integer),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

channel_tokens = Table(
    "channel_tokens",
    metadata,
    Column("channel", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

faqs = Table(
    "faqs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("variants", Text, nullable=False),  # JSON list of the question's wordings (at least one)
    Column("answer", Text),  # the curated answer; None: answer with the linked procedure's record
    Column("procedure", String(32)),  # linked procedure code, if any
    Column("status", String(16), nullable=False),  # active | retired
    Column("source_turn_id", Integer),  # the unanswered turn it was written for, if any
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", Float, nullable=False, index=True),
)

# ---- the staff console (bot/console; migration 0004) ------------------------------------------------------------

# who took a handed-over conversation in the console (None: nobody yet)
handoff_tickets.append_column(Column("assigned_to", String(64)))

staff_users = Table(
    "staff_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("password_hash", String(255), nullable=False),  # argon2id (argon2-cffi)
    Column("role", String(16), nullable=False),  # viewer | editor | admin
    Column("active", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_login_at", Float),
    UniqueConstraint("username", name="uq_staff_users_username"),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie's token; the token is never stored
    Column("user_id", Integer, ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
    Column("last_seen_at", Float, nullable=False),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, index=True),
    Column("ip", String(64), nullable=False, index=True),
    Column("success", Boolean, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("actor", String(64), nullable=False),  # a staff username, or "cli"
    Column("action", String(64), nullable=False),  # faq.create, handoff.reply, user.role, …
    Column("target_type", String(32)),
    Column("target_id", String(64)),
    Column("detail", Text),  # JSON object
)

review_items = Table(
    "review_items",
    metadata,
    Column("turn_id", Integer, primary_key=True, autoincrement=False),  # a turn that needed a person, resolved
    Column("status", String(16), nullable=False),  # linked | faq | out_of_scope
    Column("faq_id", Integer),
    Column("procedure", String(32)),
    Column("resolved_by", String(64), nullable=False),
    Column("resolved_at", Float, nullable=False),
)

staff_replies = Table(
    "staff_replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, nullable=False, index=True),
    Column("session_id", String(128), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("author", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("delivered", Boolean, nullable=False),  # handed to the channel (web: fetched by the page)
    Column("error", Text),  # why it could not be sent
    Column("outbox_ids", Text),  # JSON list of channel_outbox ids (Telegram, Zalo)
)
