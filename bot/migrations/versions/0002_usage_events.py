"""Usage events: what each turn was about (procedure, aspect, NLU confidence) and simulated (demo) data.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("procedure", sa.String(32)))
        batch.add_column(sa.Column("aspect", sa.String(32)))
        batch.add_column(sa.Column("confidence", sa.Float))
        batch.add_column(sa.Column("simulated", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("ix_turns_procedure", "turns", ["procedure"])
    for table in ("conversations", "ratings", "handoff_tickets"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("simulated", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("ix_conversations_created_at", "conversations", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_created_at", "conversations")
    for table in ("conversations", "ratings", "handoff_tickets"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("simulated")
    op.drop_index("ix_turns_procedure", "turns")
    with op.batch_alter_table("turns") as batch:
        for column in ("simulated", "confidence", "aspect", "procedure"):
            batch.drop_column(column)
