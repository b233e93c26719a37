"""Curated FAQ entries written by staff: question variants, an answer and/or a linked procedure.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "faqs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("variants", sa.Text, nullable=False),
        sa.Column("answer", sa.Text),
        sa.Column("procedure", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source_turn_id", sa.Integer),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_faqs_updated_at", "faqs", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_faqs_updated_at", "faqs")
    op.drop_table("faqs")
