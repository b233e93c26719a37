"""Database schema management: Alembic migrations applied at start, for SQLite and PostgreSQL alike.

`migrate(engine)` brings any database to the newest revision. A database made by a version from before
migrations (tables present, no alembic_version table) is first stamped at revision 0001, which describes exactly
those tables. On PostgreSQL the migration runs under an advisory lock, so worker processes starting together
migrate once.

CLI: `python -m bot db upgrade | current | history | revision -m "…"` (docs/operations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"
_LOCK_KEY = 0x766E61  # "vna": PostgreSQL advisory lock id for migrations


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migration in {MIGRATIONS_DIR}")
    return revision


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        config = alembic_config(conn)
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables and "conversations" in tables:
            log.info("database made before migrations: stamping it at %s", BASELINE)
            command.stamp(config, BASELINE)
        if MigrationContext.configure(conn).get_current_revision() != head() or revision != "head":
            command.upgrade(config, revision)


@contextmanager
def tracker_events(url: str) -> Iterator[Engine | None]:
    """Rasa's SQL tracker store (its table ``events`` keeps its own copy of each conversation), or None when that
    store has no such table yet; for code that deletes from it (the demo data's removal, the retention purge)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        yield None
        return
    engine = create_engine(url, future=True)
    try:
        yield engine if "events" in inspect(engine).get_table_names() else None
    finally:
        engine.dispose()
