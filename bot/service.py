"""The assistant as one object: loads the index and the model once, answers questions for sessions.

The CLI, the HTTP API and (later) the channels all go through `Assistant`, so they behave identically.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

from bot.answer.options import offered_options
from bot.config import Settings
from bot.conversation import ConversationStore
from bot.domain import ConversationState, Mode, Option, Reply
from bot.engine import Engine
from bot.faq import FaqMatcher, FaqStore, faq_answer
from bot.metrics import observe_turn
from bot.privacy import mask
from bot.retrieval.embedding_model import Encoder
from bot.retrieval.index import ensure_index
from bot.retrieval.onnx_encoder import load_question_encoder
from bot.text import warm_up

log = logging.getLogger(__name__)


@dataclass
class ChatTurn:
    reply: Reply
    buttons: list[Option] = field(default_factory=list)  # choices the channel may render (numbered in text)


class Assistant:
    def __init__(self, settings: Settings, progress: bool = True, store: ConversationStore | None = None,
                 dialogue: bool | None = None) -> None:
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
        # curated answers written by staff; edits go live within the matcher's refresh interval
        self.faqs = FaqStore(self.store.db, known_procedure=lambda code: code in self.engine.kb.procedures)
        self.faq_matcher = FaqMatcher(self.faqs, lexicon=self.engine.lexicon)
        # The engine's CPU work (tokenising, one small transformer pass) is done under one lock per
        # process: two cores serve many connections better with one inference at a time than with
        # every request thread fighting over them (see docs/benchmarks.md).
        self._lock = threading.Lock()
        self.dialogue = None
        self.dialogue_error: str | None = None
        if settings.dialogue if dialogue is None else dialogue:
            self._load_dialogue(progress)

    def _load_dialogue(self, progress: bool) -> None:
        """Train the Rasa model if it is missing or stale, then load it; on failure, serve from the engine."""
        from bot.dialogue import actions

        actions.bind(self)
        try:
            from bot.dialogue.runtime import Dialogue
            from bot.nlu.train import train_model

            model = train_model(self.settings, progress=progress)
            self.dialogue = Dialogue.load(self.settings, model.path, second_opinion=self._engine_opinion)
        except Exception as exc:  # noqa: BLE001 - any failure here means: answer without the dialogue layer
            self.dialogue_error = f"{type(exc).__name__}: {exc}"
            log.exception("the dialogue layer is unavailable; answering from the engine alone")

    async def _engine_opinion(self, session_id: str, text: str) -> Reply:
        state = await asyncio.to_thread(self.store.load, session_id)
        reply, _ = await asyncio.to_thread(self.ask, text, state)
        return reply

    def dialogue_status(self) -> dict:
        if self.dialogue is not None:
            return self.dialogue.status()
        if self.dialogue_error:
            return {"status": "down", "error": self.dialogue_error}
        return {"status": "off"}

    def ask(self, text: object, state: ConversationState | None = None, mode: Mode = "hybrid") -> tuple[
        Reply, ConversationState
    ]:
        state = state or ConversationState()
        if self.engine.validate(text) is None:
            # a curated FAQ answer first (matching is cheap, so it runs outside the inference lock)
            curated = faq_answer(self.engine, self.faq_matcher, text, state)
            if curated is not None:
                return curated
        with self._lock:
            return self.engine.answer(text, state, mode)

    async def turn(self, session_id: str, text: object, channel: str = "api", simulated: bool = False) -> ChatTurn:
        """One turn of a stored conversation: through Rasa when it is up, else from the engine alone.

        Personal data in the text (phone, ID-card numbers, e-mail, street addresses) is masked here, first, so
        nothing after this point — Rasa's tracker, the turn log, handoff tickets, the console — ever holds it."""
        started = time.perf_counter()
        if isinstance(text, str):
            text = mask(text)
        result: ChatTurn | None = None
        new_state: ConversationState | None = None
        confidence: float | None = None
        if self.dialogue is not None and self.engine.validate(text) is None:
            try:
                turn = await asyncio.wait_for(self.dialogue.handle(session_id, text, channel),
                                              self.settings.dialogue_timeout_s)
                self.dialogue.record(ok=True)
                result, new_state, confidence = ChatTurn(turn.reply, turn.buttons), turn.state, turn.confidence
            except Exception as exc:  # noqa: BLE001 - a failed or slow turn is answered by the engine
                error = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
                log.warning("dialogue turn failed (%s); answering from the engine alone", error)
                self.dialogue.record(ok=False, error=error)
        if result is None:
            state = await asyncio.to_thread(self.store.load, session_id)
            reply, new_state = await asyncio.to_thread(self.ask, text, state)
            result = ChatTurn(reply, offered_options(self.engine.kb.procedures, new_state.options) if reply.sources else [])
        latency_ms = (time.perf_counter() - started) * 1000
        observe_turn(channel, latency_ms / 1000)
        await asyncio.to_thread(self.store.record, session_id, channel, result.reply, new_state, latency_ms,
                                procedure=self._procedure_of(result.reply, new_state), confidence=confidence,
                                simulated=simulated)
        return result

    @staticmethod
    def _procedure_of(reply: Reply, state: ConversationState | None) -> str | None:
        """The procedure a reply was about: the one it answered for, not the options it merely listed."""
        if reply.outcome != "answered":
            return None
        if reply.sources and reply.sources[0].kind == "faq":  # a curated answer: its linked procedure, if any
            return next((s.id for s in reply.sources if s.kind == "procedure"), None)
        if state is not None and state.procedure:
            return state.procedure
        first = next((s for s in reply.sources if s.kind == "procedure"), None)
        return first.id if first is not None else None

