"""Several instances on one database: a version on each conversation's state, reply and rating markers, event ids.

- ``conversations.version`` is bumped whenever the state is written, so a turn computed from an older state is
  not saved over a newer one (``ConversationStore.record``'s compare-and-set).
- ``conversations.answered`` / ``rated``: a reply was recorded / the citizen rated; written with the conversation,
  so a rating is checked (404, 409, stored or replaced) without reading the turns and ratings, which an event
  broker may write later. Existing conversations get them from their turns and ratings.
- ``turns.event_id`` and ``ratings.event_id`` (unique; empty for rows written directly): the event a row was
  written from, so an event delivered twice is written once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("answered", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("rated", sa.Boolean, nullable=False, server_default=sa.false()))
    for table in ("turns", "ratings"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("event_id", sa.String(32)))
        op.create_index(f"ix_{table}_event_id", table, ["event_id"], unique=True)
    conversations = sa.table("conversations", sa.column("session_id"), sa.column("answered", sa.Boolean),
                             sa.column("rated", sa.Boolean))
    for marker, table in (("answered", "turns"), ("rated", "ratings")):
        rows = sa.table(table, sa.column("session_id"))
        op.execute(conversations.update()
                   .where(sa.exists().where(rows.c.session_id == conversations.c.session_id))
                   .values({marker: sa.true()}))


def downgrade() -> None:
    for table in ("ratings", "turns"):
        op.drop_index(f"ix_{table}_event_id", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("event_id")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("rated")
        batch.drop_column("answered")
        batch.drop_column("version")
