"""The assistant as one object: loads the index and the model once, answers questions for sessions.

The CLI, the HTTP API and (later) the channels all go through `Assistant`, so they behave identically.
"""

from __future__ import annotations

import logging
import threading
import time

from bot.config import Settings
from bot.conversation import ConversationStore
from bot.engine import ConversationState, Engine, Mode, Reply
from bot.retrieval.embedding_model import Encoder
from bot.retrieval.index import ensure_index
from bot.retrieval.onnx_encoder import load_question_encoder
from bot.text import warm_up

log = logging.getLogger(__name__)


class Assistant:
    def __init__(self, settings: Settings, progress: bool = True, store: ConversationStore | None = None) -> None:
        self.settings = settings
        encoder = load_question_encoder(settings, progress=progress)
        # the passage encoder (torch) is loaded only if the index has to be (re)built
        index = ensure_index(settings, encoder=encoder if isinstance(encoder, Encoder) else None, progress=progress)
        self.engine = Engine(index, encoder, settings)
        # Load the segmenter and run one question through every stage now, so /health only answers once the
        # first citizen's question is as fast as the rest.
        warm_up()
        self.engine.answer("làm lại căn cước ở đâu")
        self.store = store or ConversationStore(settings.resolved_database_url)
        # The engine's CPU work (tokenising, one small transformer pass) is done under one lock per
        # process: two cores serve many connections better with one inference at a time than with
        # every request thread fighting over them (see docs/benchmarks.md).
        self._lock = threading.Lock()

    def ask(self, text: object, state: ConversationState | None = None, mode: Mode = "hybrid") -> tuple[
        Reply, ConversationState
    ]:
        with self._lock:
            return self.engine.answer(text, state, mode)

    def chat(self, session_id: str, text: object, channel: str = "api") -> Reply:
        """One turn of a stored conversation."""
        started = time.perf_counter()
        state = self.store.load(session_id)
        reply, new_state = self.ask(text, state)
        latency_ms = (time.perf_counter() - started) * 1000
        self.store.record(session_id, channel, reply, new_state, latency_ms)
        return reply

