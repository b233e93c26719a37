"""Chat receipts: the answer to a client's message id, so a retried /api/chat request is answered, not run twice.

A web page (or an integrator) sends ``message_id`` with each message and the same one when it retries (the
connection dropped, the instance died). The turn's answer is stored with it in the same transaction as the
conversation's state, so a retry of a message that was answered gets the stored answer back and no second turn
is recorded. Rows are kept for ``RECEIPT_TTL_S`` (bot.conversation) and deleted by the retention purge.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_receipts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("session_id", "message_id", name="uq_chat_receipts_message"),
    )
    op.create_index("ix_chat_receipts_created_at", "chat_receipts", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_receipts_created_at", "chat_receipts")
    op.drop_table("chat_receipts")
