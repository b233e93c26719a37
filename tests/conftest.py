"""Shared fixtures: a small index built from real records (a few citizen-facing domains, all plans).

The embedding model is built once per machine into VNA_CACHE_DIR (default ~/.cache/vnassist) and reused;
the test index and database live in a temporary folder per test session. ``VNA_TEST_INDEX_FROM=<a var folder of an
earlier run>`` copies that run's test index instead of building it (a shortcut while iterating; not for CI).
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
from tests.channel_peers import TelegramPeer, ZaloPeer, serve, telegram_bot_api, zalo_api

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


# Abuse limits the shared fixtures never meet: the whole suite comes from one address (testclient / 127.0.0.1) and
# reuses session ids. Tests of the limits build their own app with strict ones (tests/test_api_limits.py).
GENEROUS_LIMITS = {
    "rate_limit_session": "100000/minute",
    "rate_limit_address": "1000000/minute",
    "rate_limit_channel_user": "100000/minute",
    "rate_limit_rating": "100000/minute",
}


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("var")
    built = os.environ.get("VNA_TEST_INDEX_FROM")  # a developer's shortcut: reuse the test index of an earlier run
    if built:
        import shutil

        shutil.copytree(Path(built) / "index", data_dir / "index")
    # no scheduled purge in the shared app: tests that backdate rows must not see them vanish (tests/test_retention.py
    # runs the loop on its own database)
    return Settings(data_dir=data_dir, procedure_domains=TEST_DOMAINS, retention_interval_s=0, **GENEROUS_LIMITS)


@pytest.fixture(scope="session")
def env_for(settings: Settings) -> dict[str, str]:
    """Environment that makes a `python -m bot …` subprocess use the test index and database."""
    import json

    return dict(
        os.environ,
        VNA_DATA_DIR=str(settings.data_dir),
        VNA_PROCEDURE_DOMAINS=json.dumps(settings.procedure_domains, ensure_ascii=False),
        VNA_CACHE_DIR=str(settings.cache_dir),
        VNA_DIALOGUE="false",  # engine only unless a test turns the dialogue layer on (it loads TensorFlow)
        **{f"VNA_{name.upper()}": value for name, value in GENEROUS_LIMITS.items()},
    )


@pytest.fixture(scope="session")
def assistant(settings: Settings) -> Assistant:
    return Assistant(settings, progress=False, dialogue=False)  # the engine alone; see test_dialogue.py


@pytest.fixture(scope="session")
def engine(assistant: Assistant):
    return assistant.engine


@pytest.fixture(scope="session")
def client(settings: Settings, assistant: Assistant) -> Iterator[TestClient]:
    with TestClient(create_app(settings, assistant), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def rasa_assistant(settings: Settings, trained_model: Path, assistant: Assistant) -> Assistant:
    """The assistant with its dialogue layer (Rasa, in-process actions); one per test module that asks for it."""
    a = Assistant(settings, progress=False, dialogue=True)
    assert a.dialogue is not None, a.dialogue_error
    return a


@pytest.fixture(scope="module")
def rasa_client(settings: Settings, rasa_assistant: Assistant) -> Iterator[TestClient]:
    with TestClient(create_app(settings, rasa_assistant), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def project_dir() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tg_peer() -> Iterator[TelegramPeer]:
    """A local server speaking the Telegram Bot API (tests/channel_peers.py), one per test module."""
    peer = TelegramPeer()
    with serve(telegram_bot_api(peer)) as url:
        peer.url = url
        yield peer


@pytest.fixture(scope="module")
def zalo_peer() -> Iterator[ZaloPeer]:
    """A local server speaking the Zalo OA message and OAuth APIs, one per test module."""
    peer = ZaloPeer()
    with serve(zalo_api(peer)) as url:
        peer.url = url
        yield peer


@pytest.fixture(scope="session")
def trained_model(settings: Settings) -> Path:
    """The Rasa model of this checkout (`python -m bot train`), in the test data dir.

    Training takes minutes, so a model is kept under VNA_CACHE_DIR/test-models/<fingerprint>/ and reused while
    config.yml, nlu_data/, bot/nlu, bot/text and the lexicon are unchanged (the same rule as `train` itself).
    """
    import hashlib
    import shutil

    from bot.nlu.train import model_fingerprint, train_model

    key = hashlib.sha256(model_fingerprint().encode()).hexdigest()[:16]
    cached = settings.cache_dir / "test-models" / key
    models = settings.data_dir / "models"
    if (cached / "model.json").exists() and not (models / "model.json").exists():
        shutil.copytree(cached, models, dirs_exist_ok=True)
    model = train_model(settings, progress=False)
    if model.trained:
        shutil.copytree(models, cached, dirs_exist_ok=True, ignore=shutil.ignore_patterns("building"))
    return model.path
