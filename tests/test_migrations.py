"""Schema migrations (Alembic): a new database, an old one made before migrations, and the code's tables agree.

The same checks run on PostgreSQL (the local service at 127.0.0.1:5432, database `test`) when it is reachable;
under CI it must be.
"""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from bot.db import current, head, migrate
from bot.schema import metadata

POSTGRES_URL = os.environ.get("VNA_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def differences(engine) -> list:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    return [d for d in diff if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "alembic_version")]


def test_a_new_sqlite_database_is_migrated_to_the_code_schema(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'new.db'}", future=True)
    migrate(engine)
    assert current(engine) == head()
    assert differences(engine) == []
    migrate(engine)  # a second start changes nothing
    assert current(engine) == head()


def test_a_database_from_before_migrations_is_stamped_and_upgraded(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}", future=True)
    migrate(engine, "0001")
    with engine.begin() as conn:  # what create_all made before: the tables, no version table
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO ratings (session_id, channel, score, created_at) VALUES ('s', 'web', 5, 1)"))
    migrate(engine)
    assert current(engine) == head() and differences(engine) == []
    with engine.connect() as conn:  # the data is kept, with the new column's default
        assert conn.execute(text("SELECT score, simulated FROM ratings")).all() == [(5, False)]


def postgres_engine():
    try:
        engine = create_engine(POSTGRES_URL, future=True, pool_pre_ping=True)
        with engine.connect():
            pass
        return engine
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")


def test_postgresql_is_migrated_to_the_code_schema() -> None:
    engine = postgres_engine()
    schema = f"vna_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    scoped = create_engine(POSTGRES_URL, future=True, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrate(scoped)
        assert current(scoped) == head()
        assert set(inspect(scoped).get_table_names()) >= {t for t in metadata.tables}
        assert differences(scoped) == []
    finally:
        scoped.dispose()
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def _ratings_deduplicated(engine) -> None:
    migrate(engine, "0004")
    with engine.begin() as conn:  # a citizen who rated three times, another once (what /api/rating allowed before)
        for session, score, at in (("web:a", 5, 1.0), ("web:a", 2, 2.0), ("zalo:7", 4, 3.0), ("web:a", 1, 4.0)):
            conn.execute(text("INSERT INTO ratings (session_id, channel, score, created_at) VALUES (:s, 'web', :v, :t)"),
                         {"s": session, "v": score, "t": at})
    migrate(engine)
    assert current(engine) == head() and differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT session_id, score FROM ratings ORDER BY session_id")).all() == [
            ("web:a", 1), ("zalo:7", 4)]  # the latest rating of each conversation is the one kept
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO ratings (session_id, channel, score, created_at) VALUES ('web:a', 'web', 5, 5)"))


def test_duplicate_ratings_are_reduced_to_the_latest_on_sqlite(tmp_path) -> None:
    _ratings_deduplicated(create_engine(f"sqlite:///{tmp_path / 'ratings.db'}", future=True))


def test_duplicate_ratings_are_reduced_to_the_latest_on_postgresql() -> None:
    engine = postgres_engine()
    schema = f"vna_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    scoped = create_engine(POSTGRES_URL, future=True, connect_args={"options": f"-csearch_path={schema}"})
    try:
        _ratings_deduplicated(scoped)
    finally:
        scoped.dispose()
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
