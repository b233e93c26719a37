"""Custom actions (rasa-sdk): the dialogue decides *what* to do, these do it with the engine.

Every factual reply still comes from :class:`bot.engine.Engine` — composed from the knowledge records, with the
sources attached as the message's custom payload — so answers keep their grounding whatever Rasa predicts.
The slots hold the engine's conversation state (the procedure being discussed, the aspect asked, the pending
options and the count of unanswered turns), so a follow-up, a choice or a handoff works from any process.

The actions run in the serving process by default (:mod:`bot.dialogue.runtime` hands Rasa an in-process
endpoint), or in a separate rasa-sdk server (``python -m bot actions``) when ``VNA_ACTION_ENDPOINT`` is set.
Either way they reach the assistant they were given with :func:`bind` (an :class:`ActionBackend`), never a
module of the serving side.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Protocol, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.answer.options import offered_options
from bot.answer.variants import facts as title_facts
from bot.answer.variants import procedure_levels
from bot.config import Settings
from bot.conversation import ConversationStore
from bot.domain import ConversationState, Reply
from bot.engine import Engine

log = logging.getLogger(__name__)

HANDOFF_AFTER_MISSES = 2  # consecutive turns the assistant could not answer before it offers a person


class ActionBackend(Protocol):
    """What the actions need from the assistant (``bot.service.Assistant`` is one): the engine and its answers,
    the conversation store (state in degraded mode, handoff tickets, ratings) and the settings."""

    engine: Engine
    store: ConversationStore
    settings: Settings

    def ask(self, text: object, state: ConversationState | None = None) -> tuple[Reply, ConversationState]: ...


_backend: ActionBackend | None = None


def bind(backend: ActionBackend) -> None:
    """Give the actions the assistant they work with: the serving process binds its own before Rasa runs an
    action; ``python -m bot actions`` binds one it loads for the separate action server."""
    global _backend
    _backend = backend


def assistant() -> ActionBackend:
    """The assistant the actions were given (see :func:`bind`)."""
    if _backend is None:
        raise RuntimeError("no assistant bound to the custom actions: call bot.dialogue.actions.bind() first")
    return _backend


# ------------------------------------------------------------------------------------------------ helpers
def state_of(tracker: Tracker) -> ConversationState:
    state = ConversationState(
        procedure=tracker.get_slot("procedure"),
        aspects=list(tracker.get_slot("aspect") or []),
        options=list(tracker.get_slot("pending_options") or []),
        misses=int(tracker.get_slot("misses") or 0),
    )
    # The place the citizen named (bot.places) has no slot: it is read from the conversation store, which every
    # turn's state is saved to; a turn answered without Rasa (degraded mode) left its whole state only there.
    stored = assistant().store.load(tracker.sender_id)
    if state.procedure is None and not state.options and stored.procedure is not None:
        return stored
    state.place = stored.place
    return state


def slots_for(state: ConversationState, handoff_offered: bool = False) -> list[dict]:
    return [
        SlotSet("procedure", state.procedure),
        SlotSet("aspect", list(state.aspects) or None),
        SlotSet("pending_options", list(state.options) or None),
        SlotSet("misses", float(state.misses)),
        SlotSet("handoff_offered", handoff_offered),
        SlotSet("rating_requested", False),
    ]


def payload(reply: Reply, state: ConversationState | None) -> dict:
    """What the serving side needs besides the text: grounding and the state (for degraded mode)."""
    return {
        "sources": [s.__dict__ for s in reply.sources],
        "fallback": reply.fallback,
        "outcome": reply.outcome,
        "engine_intent": reply.intent,
        "state": state.to_dict() if state is not None else None,
        "answer": reply.answer,  # the structured answer of the JSON contract (bot.answer.structured)
    }


def option_buttons(state: ConversationState) -> list[dict]:
    return [o.contract() for o in offered_options(assistant().engine.kb.procedures, state.options, payload="rasa")]


def utter_reply(dispatcher: CollectingDispatcher, reply: Reply, state: ConversationState) -> None:
    dispatcher.utter_message(text=reply.reply, buttons=option_buttons(state) or None, json_message=payload(reply, state))


T = TypeVar("T")


async def engine_call(fn: Callable[..., T], *args: object) -> T:
    """Run a (CPU-bound) engine call off the event loop; the assistant serialises inference itself."""
    return await asyncio.to_thread(fn, *args)


def latest_text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "")


def latest_intent(tracker: Tracker) -> str:
    return str((tracker.latest_message.get("intent") or {}).get("name") or "")


def transcript(tracker: Tracker) -> list[dict]:
    out = []
    for event in tracker.events:
        if event.get("event") == "user" and event.get("text"):
            out.append({"role": "user", "text": event["text"]})
        elif event.get("event") == "bot" and event.get("text"):
            out.append({"role": "bot", "text": event["text"]})
    return out


_RULE_EXTRACTORS = ("ChoiceExtractor", "VariantFactExtractor", "LocalityExtractor", "ProcedureNameExtractor")


def entity_values(tracker: Tracker, entity: str) -> list[str]:
    """Values of ``entity`` in the latest message, the rule extractors' normalised ones first (DIET may also
    tag a stray word, e.g. "số" in "số 2")."""
    found = [e for e in tracker.latest_message.get("entities") or [] if e.get("entity") == entity]
    found.sort(key=lambda e: e.get("extractor") not in _RULE_EXTRACTORS)
    values: list[str] = []
    for e in found:
        if str(e.get("value")) not in values:
            values.append(str(e.get("value")))
    return values


def channel_of(tracker: Tracker) -> str:
    return str(tracker.get_latest_input_channel() or "api")[:32]


# ------------------------------------------------------------------------------------------------ actions
class ActionAnswer(Action):
    """Answer the latest message with the engine (procedure, plan, follow-up, or an honest "not sure")."""

    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        state = state_of(tracker)
        reply, new_state = await engine_call(assistant().ask, latest_text(tracker), state)
        utter_reply(dispatcher, reply, new_state)
        offer = reply.outcome == "unknown" and new_state.misses >= HANDOFF_AFTER_MISSES
        if offer:
            dispatcher.utter_message(response="utter_offer_handoff")
        return slots_for(new_state, handoff_offered=offer)


_LEVELS = frozenset({"xa", "tinh", "bo"})  # as bot.answer.variants.procedure_levels names them
_OPTION_RE = re.compile(r"^(?:[1-9]|last|xa|tinh|bo)$")


def resolve_option(option: str | None, facts: list[str], pending: list[str], intent: str) -> str | None:
    """Which pending procedure the citizen picked: "2" / "last" / a level / a fact, or "yes" to a single offer."""
    if not pending:
        return None
    kb = assistant().engine.kb
    if option:
        if option.isdigit():
            n = int(option)
            return pending[n - 1] if 1 <= n <= len(pending) else None
        if option == "last":
            return pending[-1]
        if option in _LEVELS:
            for code in pending:
                proc = kb.procedures.get(code)
                if proc is not None and option in procedure_levels(proc):
                    return code
            return None
    for fact in facts:
        for code in pending:
            proc = kb.procedures.get(code)
            if proc is not None and fact in title_facts(proc.title):
                return code
    if intent == "affirm" and len(pending) == 1:
        return pending[0]
    return None


class ActionChooseOption(Action):
    """The citizen picks one of the offered procedures: by button, by number ("cái thứ 2") or by words
    ("cái ở xã", "cái có yếu tố nước ngoài"); a "yes" picks a single offered procedure."""

    def name(self) -> str:
        return "action_choose_option"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        state = state_of(tracker)
        intent = latest_intent(tracker)
        option = next((v for v in entity_values(tracker, "option") if _OPTION_RE.match(v)), None)
        facts = entity_values(tracker, "fact")
        code = resolve_option(option, facts, state.options, intent)
        if code is not None:
            reply, new_state = await engine_call(assistant().engine.describe, code, latest_text(tracker),
                                                 state.aspects or ["general"], state)
            utter_reply(dispatcher, reply, new_state)
            return slots_for(new_state)
        if state.options and (option or intent in ("affirm", "choose_option")):
            dispatcher.utter_message(response="utter_pick_number", buttons=option_buttons(state) or None)
            return [SlotSet("rating_requested", False)]
        if intent in ("affirm", "deny"):
            dispatcher.utter_message(response="utter_anything_else")
            return [SlotSet("rating_requested", False)]
        return await ActionAnswer().run(dispatcher, tracker, domain)


class ActionHandoff(Action):
    """Hand the conversation to a person: store a ticket with the conversation so far, tell the citizen how."""

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        a = assistant()
        reason = "requested" if latest_intent(tracker) == "ask_human" else "unanswered"
        ticket = await engine_call(a.store.open_ticket, tracker.sender_id, channel_of(tracker), reason,
                                   transcript(tracker))
        hotline = a.settings.hotline
        text = (
            f"Mình đã chuyển cuộc trò chuyện cho cán bộ của Trung tâm Phục vụ hành chính công (mã yêu cầu "
            f"#{ticket}). Cán bộ sẽ liên hệ lại với bạn qua chính kênh này trong giờ hành chính. Nếu cần gấp, "
            f"bạn gọi tổng đài {hotline}."
        )
        reply = Reply(latest_text(tracker), text, "ask_human", True, outcome="handoff")
        dispatcher.utter_message(text=text, json_message=payload(reply, None) | {"ticket": ticket})
        return [SlotSet("handoff_offered", False), SlotSet("misses", 0.0)]


class ActionDeclineHandoff(Action):
    def name(self) -> str:
        return "action_decline_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        dispatcher.utter_message(response="utter_handoff_declined")
        return [SlotSet("handoff_offered", False), SlotSet("misses", 0.0)]


_SCORE_RE = re.compile(r"^[1-5]$")
# a rating before any answer (ConversationStore.rate refuses it): said instead of the thanks
NOTHING_TO_RATE = ("Mình chưa trả lời câu hỏi nào của bạn nên chưa thể ghi nhận đánh giá. Bạn cần hỏi về thủ tục "
                   "gì, cứ nhắn cho mình nhé; sau khi được trả lời, bạn có thể đánh giá từ 1 đến 5 sao.")


class ActionAskRating(Action):
    def name(self) -> str:
        return "action_ask_rating"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        dispatcher.utter_message(response="utter_ask_rating")
        return [SlotSet("rating_requested", True)]


class ActionRate(Action):
    """Store the citizen's 1–5 rating of the conversation (for the staff's satisfaction figures).

    The score is the ``score`` entity, or — right after the assistant asked for a rating — a bare number the
    classifier took for an option ("4")."""

    def name(self) -> str:
        return "action_rate"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict]:
        values = entity_values(tracker, "score")
        if tracker.get_slot("rating_requested"):
            values += entity_values(tracker, "option")
        score = next((str(v) for v in values if _SCORE_RE.match(str(v))), None)
        if score is None:
            dispatcher.utter_message(response="utter_ask_rating")
            return [SlotSet("rating_requested", True)]
        result = await engine_call(assistant().store.rate, tracker.sender_id, channel_of(tracker), int(score))
        if result in ("unknown", "unanswered"):  # nothing answered yet in this conversation: nothing to rate
            dispatcher.utter_message(text=NOTHING_TO_RATE)
            return [SlotSet("rating_requested", False)]
        dispatcher.utter_message(response="utter_thanks_for_rating")
        return [SlotSet("rating", float(score)), SlotSet("rating_requested", False), SlotSet("rated", True)]
