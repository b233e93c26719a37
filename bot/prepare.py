"""Work every serving process shares, done once before they start (kept import-light: the process that runs
`serve --workers N` only supervises the workers and should stay small)."""

from __future__ import annotations


def prepare_shared() -> None:
    """Export the question encoder and build the index if they are missing or stale (what every worker
    process of `serve --workers N` loads). Run in a child process so the supervisor never holds them."""
    from bot.config import get_settings
    from bot.retrieval.index import build_index, index_is_current
    from bot.retrieval.onnx_encoder import load_question_encoder

    settings = get_settings()
    load_question_encoder(settings, progress=True)
    if not index_is_current(settings):
        build_index(settings, progress=True)
    if settings.dialogue:
        from bot.nlu.train import train_model

        train_model(settings, progress=True)  # skipped when the model is up to date
