"""The local services tests of the scale-out path use for real: PostgreSQL (a fresh schema per test) and Redis
(a fresh key prefix per test). Outside CI a test whose service is absent is skipped; under CI it fails."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from bot.config import Settings

POSTGRES_URL = os.environ.get("VNA_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VNA_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


def unavailable(what: str, exc: Exception) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not reachable: {exc}")
    pytest.skip(f"{what} is not reachable: {exc}")


@contextmanager
def pg_schema(prefix: str = "vna") -> Iterator[str]:
    """A SQLAlchemy URL whose connections use a new, empty schema of the test database (dropped afterwards)."""
    admin = create_engine(POSTGRES_URL, future=True)
    try:
        with admin.connect():
            pass
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        unavailable(f"PostgreSQL at {POSTGRES_URL}", exc)
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield POSTGRES_URL + ("&" if "?" in POSTGRES_URL else "?") + f"options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def redis_prefix(**settings: object) -> Iterator[Settings]:
    """Settings pointing at the local Redis with a key prefix of their own (its keys deleted afterwards)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        client.close()
        unavailable(f"Redis at {REDIS_URL}", exc)
    prefix = f"t{uuid.uuid4().hex[:12]}"
    try:
        yield Settings(**settings, redis_url=REDIS_URL, redis_key_prefix=prefix)
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()
