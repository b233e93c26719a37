"""One rating per conversation: a second rating replaces the first, so the CSAT counts citizens, not requests.

Existing duplicates are removed first, keeping each conversation's latest rating (the highest id, which is the one
the KPIs already counted), then the index on ratings.session_id becomes unique.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # keep the latest row of each session; the subquery is wrapped once more so MySQL-like engines would accept it
    # too (SQLite and PostgreSQL do either way)
    op.execute(sa.text(
        "DELETE FROM ratings WHERE id NOT IN "
        "(SELECT id FROM (SELECT MAX(id) AS id FROM ratings GROUP BY session_id) AS latest)"
    ))
    op.drop_index("ix_ratings_session_id", "ratings")
    op.create_index("ix_ratings_session_id", "ratings", ["session_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_ratings_session_id", "ratings")
    op.create_index("ix_ratings_session_id", "ratings", ["session_id"])
