"""The staff console: accounts, sessions, sign-in attempts, the audit log, resolved review items, staff replies.

Also who took a handed-over conversation (handoff_tickets.assigned_to).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handoff_tickets") as batch:
        batch.add_column(sa.Column("assigned_to", sa.String(64)))
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_login_at", sa.Float),
        sa.UniqueConstraint("username", name="uq_staff_users_username"),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
    )
    op.create_index("ix_staff_sessions_user_id", "staff_sessions", ["user_id"])
    op.create_index("ix_staff_sessions_expires_at", "staff_sessions", ["expires_at"])
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_login_attempts_username", "login_attempts", ["username"])
    op.create_index("ix_login_attempts_ip", "login_attempts", ["ip"])
    op.create_index("ix_login_attempts_created_at", "login_attempts", ["created_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32)),
        sa.Column("target_id", sa.String(64)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "review_items",
        sa.Column("turn_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("faq_id", sa.Integer),
        sa.Column("procedure", sa.String(32)),
        sa.Column("resolved_by", sa.String(64), nullable=False),
        sa.Column("resolved_at", sa.Float, nullable=False),
    )
    op.create_table(
        "staff_replies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("outbox_ids", sa.Text),
    )
    op.create_index("ix_staff_replies_ticket_id", "staff_replies", ["ticket_id"])
    op.create_index("ix_staff_replies_session_id", "staff_replies", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_replies_session_id", "staff_replies")
    op.drop_index("ix_staff_replies_ticket_id", "staff_replies")
    op.drop_table("staff_replies")
    op.drop_table("review_items")
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_table("audit_log")
    for column in ("created_at", "ip", "username"):
        op.drop_index(f"ix_login_attempts_{column}", "login_attempts")
    op.drop_table("login_attempts")
    op.drop_index("ix_staff_sessions_expires_at", "staff_sessions")
    op.drop_index("ix_staff_sessions_user_id", "staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_table("staff_users")
    with op.batch_alter_table("handoff_tickets") as batch:
        batch.drop_column("assigned_to")
