"""Alembic environment: migrations run on the connection `bot.db.migrate` hands over (no alembic.ini needed).

For a developer: `python -m bot db revision -m "what changes"` writes a new revision file next to the others.
"""

from __future__ import annotations

from alembic import context

from bot.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through bot.db
    raise RuntimeError("run migrations through bot.db.migrate (python -m bot db upgrade)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
