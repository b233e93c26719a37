"""The assistant as one object: loads the index and the model once, answers questions for sessions.

The CLI, the HTTP API and (later) the channels all go through `Assistant`, so they behave identically.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.answer.options import offered_options
from bot.config import Settings
from bot.conversation import AlreadyAnswered, ConversationStore, StateConflict
from bot.domain import ConversationState, Mode, Option, Reply, Source
from bot.engine import Engine
from bot.events import publisher_for
from bot.faq import FaqMatcher, FaqStore, faq_answer
from bot.metrics import observe_turn
from bot.privacy import mask
from bot.retrieval.index import ensure_index
from bot.retrieval.onnx_encoder import load_question_encoder, passage_encoder
from bot.shared import Announcements
from bot.text import warm_up

if TYPE_CHECKING:
    from bot.dialogue.runtime import Dialogue, DialogueTurn

log = logging.getLogger(__name__)

# What a stored over-long message ends with: its first characters are kept (masked), never the whole text.
CUT_MARKER = " […]"
# Characters no store or model should receive: C0/C1 controls (a NUL breaks PostgreSQL's text type) and lone
# surrogates (not encodable as UTF-8). They become U+FFFD, which the engine's input check counts as garbage.
_UNSAFE_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# How far back a cut looks for the start of the word or number it split (a phone number cut in two would
# escape masking): further than any phone, ID-card or e-mail the masking knows, short enough to keep a prefix.
_CUT_LOOKBACK = 48
# Times an engine-answered turn is computed when other turns of the same conversation keep saving the state first
# (another instance); after that it is recorded without changing the state (ConversationStore.StateConflict).
STATE_ATTEMPTS = 3


def cut(text: str, budget: int) -> str:
    """The first ``budget`` characters of an over-long ``text``, without the word or number split by the cut.

    Work is bounded by ``budget`` (and ``_CUT_LOOKBACK``), never by ``len(text)``. A word cut in two is dropped
    (half an e-mail address is not masked), then a trailing run of digits and separators (the start of a phone
    or ID-card number that goes on past the cut), each at most ``_CUT_LOOKBACK`` characters back."""
    head = text[:budget]
    if len(text) <= budget:
        return head
    end = len(head)
    if not text[budget].isspace():
        i = end
        while i > 0 and end - i < _CUT_LOOKBACK and not head[i - 1].isspace():
            i -= 1
        if i > 0 and head[i - 1].isspace():
            end = i
    i = end
    while i > 0 and end - i < _CUT_LOOKBACK and (head[i - 1].isdigit() or head[i - 1] in " .-/+()"):
        i -= 1
    return head[:i].rstrip()


@dataclass(frozen=True)
class Admitted:
    """A citizen's message once bounded and masked: what every later step (and the store) sees."""

    text: str  # masked, at most max_input_chars characters (an over-long message: its cut prefix + CUT_MARKER)
    refusal: str | None  # the clear reply for a message that is not answered (empty, too long, binary), else None


@dataclass
class ChatTurn:
    reply: Reply
    buttons: list[Option] = field(default_factory=list)  # choices the channel may render (numbered in text)
    # a retried message id answered before: the answer it got (the HTTP contract's JSON), sent again as it was
    replayed: dict | None = None

    def contract(self) -> dict:
        """The turn as /api/chat answers it (BRIEF.md's contract, with the answer's fields and the buttons)."""
        if self.replayed is not None:
            return self.replayed
        return self.reply.contract() | {"buttons": [b.contract() for b in self.buttons]}


class Assistant:
    def __init__(self, settings: Settings, progress: bool = True, store: ConversationStore | None = None,
                 dialogue: bool | None = None) -> None:
        self.settings = settings
        encoder = load_question_encoder(settings, progress=progress)
        # the passage encoder (torch) is loaded only if the index has to be (re)built
        index = ensure_index(settings, encoder=passage_encoder(settings, encoder), progress=progress)
        self.engine = Engine(index, encoder, settings)
        # Load the segmenter and run one question through every stage now, so /health only answers once the
        # first citizen's question is as fast as the rest.
        warm_up()
        self.engine.answer("làm lại căn cước ở đâu")
        # with VNA_EVENT_BROKER_URL, turns, ratings and handoffs are published for `kpi-consumer` (bot/events.py)
        self.store = store or ConversationStore(settings.resolved_database_url, events=publisher_for(settings))
        # curated answers written by staff; edits go live within the matcher's refresh interval, or at once on
        # every instance when they are announced through Redis (VNA_REDIS_URL)
        self.faqs = FaqStore(self.store.db, known_procedure=lambda code: code in self.engine.kb.procedures,
                             announcements=Announcements.from_settings(settings, "faq"))
        self.faq_matcher = FaqMatcher(self.faqs, lexicon=self.engine.lexicon)
        # The engine's CPU work (tokenising, one small transformer pass) is done under one lock per
        # process: two cores serve many connections better with one inference at a time than with
        # every request thread fighting over them (see docs/benchmarks.md).
        self._lock = threading.Lock()
        self.dialogue: Dialogue | None = None
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
        except Exception as exc:  # any failure here means: answer without the dialogue layer
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

    def close(self) -> None:
        """Stop the dialogue layer's thread (the assistant answers from the engine alone afterwards)."""
        dialogue, self.dialogue = self.dialogue, None
        if dialogue is not None:
            dialogue.close()
        self.faq_matcher.close()
        if self.store.events is not None:
            self.store.events.close()

    def ask(self, text: object, state: ConversationState | None = None, mode: Mode = "hybrid") -> tuple[
        Reply, ConversationState
    ]:
        state = state or ConversationState()
        limit = self.settings.max_input_chars
        if isinstance(text, str) and len(text) > limit:  # refused before any matching, echoed only in part
            question = cut(text, limit - len(CUT_MARKER)) + CUT_MARKER
            return Reply(question, self._too_long(), None, True, outcome="invalid"), state
        if isinstance(text, str) and self.engine.validate(text) is None:
            # a curated FAQ answer first (matching is cheap, so it runs outside the inference lock)
            curated = faq_answer(self.engine, self.faq_matcher, text, state)
            if curated is not None:
                return curated
        with self._lock:
            return self.engine.answer(text, state, mode)

    def _too_long(self) -> str:
        """The engine's own reply to an over-long message (Engine.validate keeps the wording in one place)."""
        return self.engine.validate("?" * (self.settings.max_input_chars + 1)) or ""

    def admit(self, text: object) -> Admitted:
        """Bound, clean and mask one incoming message, in that order; nothing here depends on its full length.

        Over ``max_input_chars`` characters the message is refused with the engine's "too long" reply and only its
        first characters are kept (cut, masked, then marked). Bytes are decoded (bounded first), any other
        non-text becomes empty; control characters and lone surrogates become U+FFFD. Then personal data is
        masked, and the engine's input check decides whether the result can be answered. CPU work: call it off
        the event loop (``Assistant.turn`` does)."""
        limit = self.settings.max_input_chars
        if isinstance(text, (bytes, bytearray, memoryview)):
            text = bytes(text[: 4 * (limit + 1)]).decode("utf-8", "replace")
        elif not isinstance(text, str):
            text = ""
        if len(text) > limit:
            head = mask(_UNSAFE_RE.sub("\ufffd", cut(text, limit - len(CUT_MARKER))))
            return Admitted(head[: limit - len(CUT_MARKER)] + CUT_MARKER, self._too_long())
        # a placeholder can be longer than what it replaces ("123456789" -> "[số giấy tờ]"): cut again
        masked = mask(_UNSAFE_RE.sub("\ufffd", text))[:limit]
        return Admitted(masked, self.engine.validate(masked))

    async def turn(self, session_id: str, text: object, channel: str = "api", simulated: bool = False,
                   message_id: str | None = None) -> ChatTurn:
        """One turn of a stored conversation: through Rasa when it is up, else from the engine alone.

        Every channel (API, web chat, Telegram, Zalo, the phone line's recognised speech, the CLI chat) comes
        through here. The text is bounded first, then personal data (phone, ID-card numbers, e-mail, street
        addresses) is masked (:meth:`admit`, in a worker thread), so nothing after this point — Rasa's tracker, the
        turn log, handoff tickets, the console — ever holds more than ``max_input_chars`` masked characters.
        Rasa runs on its own event loop (bot.dialogue.runtime), the engine in worker threads: a slow turn never
        holds this event loop.

        ``message_id`` (the client's id of this message, sent again with a retry): a message id answered before
        gets that answer back (``ChatTurn.replayed``) and nothing is run or recorded again; checked before the
        turn, again inside the conversation's lock (through Rasa) and by the store as the turn is recorded."""
        started = time.perf_counter()
        if message_id is not None:
            answered = await asyncio.to_thread(self.store.receipt, session_id, message_id)
            if answered is not None:
                return _replay(session_id, answered)
        try:
            return await self._turn(session_id, text, channel, simulated, message_id, started)
        except AlreadyAnswered as done:  # a retry that ran alongside its first attempt: one of them was recorded
            return _replay(session_id, done.response)

    async def _turn(self, session_id: str, text: object, channel: str, simulated: bool, message_id: str | None,
                    started: float) -> ChatTurn:
        admitted = await asyncio.to_thread(self.admit, text)
        text = admitted.text
        result: ChatTurn | None = None
        new_state: ConversationState | None = None
        confidence: float | None = None
        if admitted.refusal is not None:  # not a question: the clear reply, no model, the conversation unchanged
            result = ChatTurn(Reply(text, admitted.refusal, None, True, outcome="invalid"))
        elif self.dialogue is not None:
            # Rasa's turn is stored while the conversation's lock is held (Dialogue.handle's on_reply), so the next
            # message of this conversation, here or on another instance, starts from the state this one saved.
            stored: dict = {}

            async def store_in_lock(turn: DialogueTurn) -> None:
                stored["turn"] = turn  # from here on the turn stands, even if the caller stops waiting
                latency = (time.perf_counter() - started) * 1000
                stored["latency_ms"] = latency
                receipt = None if message_id is None else (message_id, ChatTurn(turn.reply, turn.buttons).contract())
                await asyncio.to_thread(self.store.record, session_id, channel, turn.reply, turn.state, latency,
                                        procedure=self._procedure_of(turn.reply, turn.state),
                                        confidence=turn.confidence, simulated=simulated, receipt=receipt)

            async def answered_in_lock() -> None:  # a retry that waited for its first attempt's lock
                if message_id is not None:
                    answered = await asyncio.to_thread(self.store.receipt, session_id, message_id)
                    if answered is not None:
                        raise AlreadyAnswered(answered)

            try:
                turn = await asyncio.wait_for(self.dialogue.handle(session_id, text, channel, on_reply=store_in_lock,
                                                                   before=answered_in_lock),
                                              self.settings.dialogue_timeout_s)
                self.dialogue.record(ok=True)
            except AlreadyAnswered:
                self.dialogue.record(ok=True)
                raise
            except Exception as exc:  # a failed or slow turn is answered by the engine
                error = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
                self.dialogue.record(ok=False, error=error)
                if "turn" not in stored:
                    log.warning("dialogue turn failed (%s); answering from the engine alone", error)
                elif isinstance(exc, TimeoutError):  # answered and being stored as the time ran out: it stands
                    log.warning("dialogue turn of %s stored after the timeout; its reply is sent", session_id)
                    turn = stored["turn"]
                else:
                    raise  # the turn could not be stored (the database is down): as the engine's path would
            if "turn" in stored:
                observe_turn(channel, stored["latency_ms"] / 1000)
                return ChatTurn(turn.reply, turn.buttons)
        # The engine answers from the stored state, and the state it saves must not overwrite one that another turn
        # of this conversation (on another instance) saved meanwhile: such a turn is answered again from the fresh
        # state; after STATE_ATTEMPTS it is recorded as it is, leaving the other turn's state.
        engine_turn = result is None
        for attempt in range(1, STATE_ATTEMPTS + 1):
            version: int | None = None
            if engine_turn:
                state, version = await asyncio.to_thread(self.store.load_versioned, session_id)
                reply, engine_state = await asyncio.to_thread(self.ask, text, state)
                new_state = engine_state
                result = ChatTurn(reply, offered_options(self.engine.kb.procedures, engine_state.options)
                                  if reply.sources else [])
            assert result is not None  # the refusal, or the engine's answer just above
            latency_ms = (time.perf_counter() - started) * 1000
            record = functools.partial(self.store.record, session_id, channel, result.reply, latency_ms=latency_ms,
                                       procedure=self._procedure_of(result.reply, new_state), confidence=confidence,
                                       simulated=simulated,
                                       receipt=None if message_id is None else (message_id, result.contract()))
            try:
                await asyncio.to_thread(record, state=new_state, expected_version=version)
                break
            except StateConflict:
                if attempt < STATE_ATTEMPTS:
                    log.info("a turn of %s was computed from a state another turn changed: answering again",
                             session_id)
                    continue
                log.warning("a turn of %s lost %d times to concurrent turns: recorded without its state",
                            session_id, attempt)
                await asyncio.to_thread(record, state=None)
        observe_turn(channel, latency_ms / 1000)
        assert result is not None  # (the loop runs at least once)
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


def _replay(session_id: str, response: dict) -> ChatTurn:
    """A retried message's first answer, as a turn (its reply rebuilt for logs; the channel sends ``replayed``)."""
    # a warning: the first answer was lost on its way to the client (a dropped connection, an instance that died)
    log.warning("a retried message of %s was answered before: its answer is sent again", session_id)
    sources = [Source(**source) for source in response.get("sources") or []]  # our own stored contract
    return ChatTurn(Reply(str(response.get("question", "")), str(response.get("reply", "")),
                          response.get("intent"), bool(response.get("fallback")), sources), replayed=response)
