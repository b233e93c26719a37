"""Work every serving process shares, done once before they start (kept import-light: the process that runs
`serve --workers N` only supervises the workers and should stay small)."""

from __future__ import annotations

from pathlib import Path


def prepare_shared() -> None:
    """Migrate the database, export the question encoder and build the index if they are missing or stale
    (what every worker process of `serve --workers N` uses). Run in a child process so the supervisor never holds them."""
    from bot.config import get_settings
    from bot.retrieval.index import build_index, index_is_current
    from bot.retrieval.onnx_encoder import load_question_encoder

    settings = get_settings()
    from sqlalchemy import create_engine

    from bot.db import migrate

    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    migrate(engine)  # once, before the workers start (each would otherwise race to do it on SQLite)
    engine.dispose()
    load_question_encoder(settings, progress=True)
    if not index_is_current(settings):
        build_index(settings, progress=True)
    if settings.dialogue:
        from bot.nlu.train import train_model

        train_model(settings, progress=True)  # skipped when the model is up to date
