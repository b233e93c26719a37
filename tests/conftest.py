"""Shared fixtures: a small index built from real records (a few citizen-facing domains, all plans).

The embedding model is built once per machine into VNA_CACHE_DIR (default ~/.cache/vnassist) and reused;
the test index and database live in a temporary folder per test session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings
from bot.service import Assistant

# Real procedure domains citizens ask about most; ~180 records, enough to have near-identical variants.
TEST_DOMAINS = [
    "Hộ tịch",
    "Cấp, quản lý căn cước",
    "Đăng ký, quản lý cư trú",
    "Sát hạch, cấp giấy phép lái xe",
    "Lý lịch tư pháp",
    "Chứng thực",
    "Bảo hiểm",
]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("var")
    return Settings(data_dir=data_dir, procedure_domains=TEST_DOMAINS)


@pytest.fixture(scope="session")
def env_for(settings: Settings) -> dict[str, str]:
    """Environment that makes a `python -m bot …` subprocess use the test index and database."""
    import json

    return dict(
        os.environ,
        VNA_DATA_DIR=str(settings.data_dir),
        VNA_PROCEDURE_DOMAINS=json.dumps(settings.procedure_domains, ensure_ascii=False),
        VNA_CACHE_DIR=str(settings.cache_dir),
    )


@pytest.fixture(scope="session")
def assistant(settings: Settings) -> Assistant:
    return Assistant(settings, progress=False)


@pytest.fixture(scope="session")
def engine(assistant: Assistant):  # noqa: ANN201
    return assistant.engine


@pytest.fixture(scope="session")
def client(settings: Settings, assistant: Assistant) -> Iterator[TestClient]:
    with TestClient(create_app(settings, assistant), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def project_dir() -> Path:
    return Path(__file__).resolve().parent.parent
