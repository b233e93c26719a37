"""Rasa in the serving process: NLU, dialogue policies and the custom actions, one turn at a time.

Why one process (docs/architecture.md, "Processes"): Rasa's model keeps TensorFlow resident (~0.6 GB), the
engine keeps the index (~1.1 GB); a Rasa server, an action server and the API as three processes would hold
TensorFlow or the index twice and pay two HTTP hops per turn on a 2-core machine with a 2.5 GB budget. So the
API loads a Rasa ``Agent`` itself and gives it an endpoint that runs the rasa-sdk actions in-process (same
wire format, no socket). ``VNA_ACTION_ENDPOINT`` points Rasa at a separate rasa-sdk server instead
(``python -m bot actions``), for operators who want the actions apart.

Degraded mode: when the model cannot be loaded, or a turn fails, times out (``VNA_DIALOGUE_TIMEOUT_S``) or
produces no reply (e.g. the action server is down), the caller answers from the engine alone; every such
turn is logged and counted in :meth:`Dialogue.status` (shown by ``GET /health``).

Its own event loop: Rasa's message handling is written as coroutines but does its CPU work (NLU featurisation,
DIET, the policies) inside them, holding whichever event loop runs it. So the agent runs on a dedicated event
loop in a thread of its own (:meth:`Dialogue.start`), and :meth:`Dialogue.handle` hands each turn over to it
from the serving loop: ``/health``, the other conversations, the webhooks and the phone line stay responsive
while a turn is slow. Everything of Rasa's that lives across turns — the lock store (one session's messages in
order), the tracker store, the batched parser — is used from that loop only.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.config import Settings
from bot.domain import ConversationState, Option, Reply, Source

if TYPE_CHECKING:  # Rasa is imported when the dialogue layer loads, not by every importer of this module
    from rasa.core.agent import Agent
    from rasa.core.featurizers.precomputation import MessageContainerForCoreFeaturization
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.training_data.message import Message
    from rasa.utils.endpoints import EndpointConfig

    from bot.dialogue.tracker_store import CachingSQLTrackerStore

log = logging.getLogger(__name__)
T = TypeVar("T")
# async (session_id, text) -> Reply: the engine's answer with the stored conversation state
SecondOpinion = Callable[[str, str], Awaitable[Reply]]


# Intents answered without the engine (a fixed reply, a rating, a handoff…). When the classifier picks one of
# them without conviction, the engine is asked too (see Dialogue.arbitrate).
_CONVERSATIONAL = frozenset({
    "greet", "goodbye", "thanks", "bot_challenge", "affirm", "deny", "ask_human", "rate", "choose_option",
    "smalltalk_how_are_you", "smalltalk_capabilities", "smalltalk_insult",
})
# Small talk whose fixed reply would be wrong for a real question; a greeting or a yes/no is kept however unsure.
_SMALL_TALK_GUESSES = frozenset({"smalltalk_how_are_you", "smalltalk_capabilities", "smalltalk_insult"})
ARBITRATION_BELOW = 0.9  # classifier confidence under which a conversational intent gets a second opinion

# NLU intents that do not say what was asked; the engine's aspect is reported instead when it found one
_VAGUE_INTENTS = frozenset({"ask_general", "nlu_fallback", "out_of_scope"})


class DialogueError(RuntimeError):
    """The dialogue layer could not handle a turn (the caller answers from the engine instead)."""


@dataclass
class DialogueTurn:
    reply: Reply
    state: ConversationState | None  # the engine state after the turn, when an engine-backed action ran
    buttons: list[Option] = field(default_factory=list)
    confidence: float | None = None  # the NLU's confidence in the intent it chose


class InProcessActions:
    """An action endpoint that runs the rasa-sdk actions of ``package`` in this process.

    Rasa's ``RemoteAction`` calls ``endpoint.request(json=action_call)`` and reads the action server's JSON
    answer; this gives it the same answer from rasa-sdk's own executor, without HTTP.
    """

    def __new__(cls, package: str) -> EndpointConfig:  # an instance of an EndpointConfig subclass
        from rasa.utils.endpoints import EndpointConfig
        from rasa_sdk.executor import ActionExecutor

        class _Endpoint(EndpointConfig):
            in_process = True  # results come from rasa-sdk's executor here (see skip_remote_validation_in_process)

            def __init__(self) -> None:
                super().__init__(url=f"inprocess://{package}")
                self.executor = ActionExecutor()
                self.executor.register_package(package)

            async def request(self, method: str = "post", subpath: str | None = None, content_type: str | None = None,
                              compress: bool = False, **kwargs: Any) -> dict[str, Any] | None:
                return await self.executor.run(kwargs["json"])

        return _Endpoint()


def tracker_store_for(settings: Settings, domain: Domain) -> CachingSQLTrackerStore:
    """Rasa's SQL tracker store on the configured database (a SQLite file beside the assistant's by default),
    keeping the conversations in flight in memory (bot.dialogue.tracker_store)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import sessionmaker
    from sqlalchemy.pool import QueuePool

    from bot.conversation import sqlite_pragmas
    from bot.dialogue.tracker_store import CachingSQLTrackerStore

    url = make_url(settings.resolved_tracker_url)
    if url.drivername.startswith("sqlite"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        store = CachingSQLTrackerStore(domain=domain, dialect="sqlite", db=url.database)
        # Rasa opens a new SQLite connection for every read and write (SQLAlchemy 1.4's default for files): keep
        # a pool instead, with the assistant database's settings (WAL; commits durable across an application
        # crash without an fsync each)
        engine = create_engine(f"sqlite:///{url.database}", poolclass=QueuePool,
                               connect_args={"check_same_thread": False})
        event.listen(engine, "connect", sqlite_pragmas)
        store.engine.dispose()
        store.engine, store.sessionmaker = engine, sessionmaker(bind=engine)
        return store
    # the URL's query (e.g. ?options=-csearch_path=… for a PostgreSQL schema) is kept, as Rasa's own URL does
    return CachingSQLTrackerStore(domain=domain, dialect=url.drivername, host=url.host, port=url.port,
                                  db=url.database, username=url.username, password=url.password,
                                  query=dict(url.query) or None)


def compile_action_result_schema() -> None:
    """Validate custom actions' results against a schema compiled once.

    Rasa 3.6's ``RemoteAction`` calls ``jsonschema.validate`` on every action result, which re-checks the
    (large, constant) events schema itself each time: ~45 ms of CPU per action on this machine, more than the
    rest of the turn. The same validation with a validator built once costs well under a millisecond.
    """
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    if getattr(RemoteAction, "_vna_compiled", False):
        return
    schema = RemoteAction.action_response_format_spec()
    validator = validator_for(schema)(schema)

    def validate(self: RemoteAction, result: dict) -> bool:  # replaces RemoteAction._validate_action_result
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        if not isinstance(error, ValidationError):  # pragma: no cover - best_match returns ValidationErrors
            raise error
        error.message += (
            ". Failed to validate Action server response from API, make sure your response from the Action "
            f"endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = validate
    RemoteAction._vna_compiled = True


def cache_event_types() -> None:
    """Resolve event type names with a dictionary instead of a class-tree walk.

    Rasa 3.6's ``Event.resolve_by_type`` lists every subclass of ``Event`` (recursively, with an
    ``inspect.isabstract`` check each) for every event it deserialises — about a hundred times a turn, ~10 ms.
    The first class found for a name is remembered, as the walk would find it first; an unknown name walks
    again (a class imported since), so the behaviour is unchanged.
    """
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    if getattr(Event, "_vna_cached", False):
        return
    found: dict[str, type] = {}

    def resolve_by_type(type_name: str, default: type | None = None) -> type | None:
        cls = found.get(type_name)
        if cls is None:
            for sub in all_subclasses(Event):
                found.setdefault(sub.type_name, sub)
            cls = found.get(type_name)
        if cls is not None:
            return cls
        if type_name == "topic":
            return None  # as Rasa: old TopicSet events
        if default is not None:
            return default
        raise ValueError(f"Unknown event name '{type_name}'.")

    Event.resolve_by_type = staticmethod(resolve_by_type)
    Event._vna_cached = True


def _canonical(value: object) -> object:
    if isinstance(value, dict):
        return [[str(k), _canonical(v)] for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))]
    if isinstance(value, (frozenset, set)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def memoize_ted_predictions(size: int = 4096) -> None:
    """Remember TEDPolicy's predictions by the dialogue states it featurises.

    TED's inference is a pure function of the featurised states of the last ``max_history`` turns (intent,
    entity names, featurised slots, previous action, active loop) when the model was not trained end-to-end on
    user text; it costs ~13 ms of TensorFlow per prediction here, two predictions a turn, while the same few
    hundred state sequences recur in every conversation. The prediction for a state sequence seen before is
    returned from a bounded cache (a deep copy: callers may change it). A model trained with text features is
    never memoised.
    """
    import copy
    from collections import OrderedDict

    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.shared.nlu.constants import TEXT

    if getattr(TEDPolicy, "_vna_memoized", False):
        return
    original = TEDPolicy.predict_action_probabilities

    @functools.wraps(original)  # the signature Rasa validates when it trains (see batch_diet_inference)
    def predict_action_probabilities(self: TEDPolicy, tracker: DialogueStateTracker, domain: Domain,
                                     rule_only_data: dict[str, Any] | None = None,
                                     precomputations: MessageContainerForCoreFeaturization | None = None,
                                     **kwargs: Any) -> PolicyPrediction:
        if self.model is None or self.only_e2e or TEXT in (self.fake_features or {}):
            return original(self, tracker, domain, rule_only_data, precomputations, **kwargs)
        states = self._prediction_states(tracker, domain, False, rule_only_data)
        key = json.dumps(_canonical(states), default=repr)
        cache = self.__dict__.setdefault("_vna_predictions", OrderedDict())
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return copy.deepcopy(hit)
        prediction = original(self, tracker, domain, rule_only_data, precomputations, **kwargs)
        cache[key] = copy.deepcopy(prediction)
        if len(cache) > size:
            cache.popitem(last=False)
        return prediction

    TEDPolicy.predict_action_probabilities = predict_action_probabilities
    TEDPolicy._vna_original_predict = original
    TEDPolicy._vna_memoized = True


def skip_remote_validation_in_process() -> None:
    """Validate action results only when they come from a separate action server.

    Rasa checks every custom action's result against its JSON schema, because an action server is a separate
    program that may answer anything. In-process, the result is built by rasa-sdk's own executor from rasa-sdk's
    event classes, so the walk over the schema (~5 ms a turn, even compiled) checks nothing that can differ; a
    separate server (``VNA_ACTION_ENDPOINT``) is still validated.
    """
    from rasa.core.actions.action import RemoteAction

    if getattr(RemoteAction, "_vna_in_process_trusted", False):
        return
    validate = RemoteAction._validate_action_result

    def _validate(self: RemoteAction, result: dict) -> bool:
        if getattr(self.action_endpoint, "in_process", False):
            return True
        return validate(self, result)

    RemoteAction._validate_action_result = _validate
    RemoteAction._vna_in_process_trusted = True


def trust_certain_rules(processor: MessageProcessor) -> bool:
    """Skip the other policies when RulePolicy is certain, as the policy ensemble would pick it anyway.

    Every turn makes two predictions (the action, then ``action_listen``) and each runs RulePolicy,
    MemoizationPolicy and TEDPolicy before the ensemble picks one: ~25 ms of CPU a turn, TED's TensorFlow
    inference the largest part. Rasa 3.6's ensemble (``DefaultPolicyPredictionEnsemble._pick_best_policy``)
    picks the prediction with the highest (confidence, priority); only RulePolicy can make a "no user" (loop)
    prediction, TED an end-to-end one only when trained on text, and Memoization and TED predictions carry no
    events. So when RulePolicy predicts an action with confidence 1.0, has the highest priority, TED is not
    end-to-end and no action was rejected, the ensemble's answer *is* RulePolicy's, whatever the others say:
    this computes RulePolicy's prediction first and, in that case, passes it alone through the real ensemble
    (which adds its usual events). Otherwise the whole graph runs as before. Every rule of ``nlu_data/`` ends
    in a certain prediction, so most turns skip TED entirely; a test holds the scripted conversations both
    ways and compares every prediction and reply.

    Returns whether the shortcut was installed (it is not for a model it cannot be exact for).
    """
    from rasa.core.policies.policy import Policy
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.engine.constants import PLACEHOLDER_TRACKER
    from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected
    from rasa.shared.nlu.constants import TEXT

    runner = processor.graph_runner
    nodes = runner._instantiated_nodes
    target = processor.model_metadata.core_target
    schema = processor.model_metadata.predict_schema.nodes
    if target not in schema:
        return False
    policy_nodes = [n for n in schema[target].needs.values() if n in schema and issubclass(schema[n].uses, Policy)]
    rule_nodes = [n for n in policy_nodes if issubclass(schema[n].uses, RulePolicy)]
    if len(rule_nodes) != 1:
        return False
    rule_node = rule_nodes[0]
    components = {n: nodes[n]._component for n in policy_nodes}
    rule = components[rule_node]
    for name, component in components.items():
        if name == rule_node:
            continue
        if getattr(component, "priority", 0) >= rule.priority:
            return False
        if isinstance(component, TEDPolicy) and (component.only_e2e or TEXT in (component.fake_features or {})):
            return False
    ensemble = nodes[target]._component
    original = type(processor)._predict_next_with_tracker

    def predict(tracker: DialogueStateTracker) -> PolicyPrediction:
        if tracker.followup_action:
            return original(processor, tracker)
        last_action = next((e for e in reversed(tracker.events)
                            if isinstance(e, (ActionExecutionRejected, ActionExecuted))), None)
        if not isinstance(last_action, ActionExecutionRejected):
            prediction = runner.run(inputs={PLACEHOLDER_TRACKER: tracker}, targets=[rule_node])[rule_node]
            if prediction.max_confidence >= 1.0:
                processor._vna_rule_shortcuts = getattr(processor, "_vna_rule_shortcuts", 0) + 1
                return ensemble.combine_predictions([prediction], tracker, processor.domain)
        return original(processor, tracker)

    processor._predict_next_with_tracker = predict
    return True


def batch_diet_inference() -> None:
    """Let DIETClassifier classify several messages in one TensorFlow call.

    Rasa 3.6's ``DIETClassifier.process`` takes a list of messages but runs the model once per message; a call
    costs ~6 ms of CPU here, most of it TensorFlow's per-call overhead, so ten messages in one call cost about
    what two cost one by one. Padding and masks keep each message's result independent of the others in the
    batch (the outputs agree to float rounding; a test compares every dev-set question both ways). One message,
    or a batch the model data cannot line up with its messages, goes the original way.
    """
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.shared.constants import DIAGNOSTIC_DATA
    from rasa.shared.nlu.constants import ENTITIES, INTENT
    from rasa.utils.tensorflow.constants import ENTITY_RECOGNITION, INTENT_CLASSIFICATION

    if getattr(DIETClassifier, "_vna_batched", False):
        return
    original = DIETClassifier.process

    # wraps: Rasa validates a graph component's run function by its signature (List[Message] -> List[Message])
    # when it trains a model, which a process that loaded one may do again
    @functools.wraps(original)
    def process(self: DIETClassifier, messages: list[Message]) -> list[Message]:
        if (self.model is None or len(messages) < 2 or self._execution_context.should_add_diagnostic_data
                or not self.component_config[INTENT_CLASSIFICATION]):
            return original(self, messages)
        data = self._create_model_data(messages, training=False)
        if data.is_empty() or data.number_of_examples() != len(messages):
            return original(self, messages)
        out = self.model.run_inference(data, batch_size=len(messages))
        for i, message in enumerate(messages):
            one = {key: value[i:i + 1] for key, value in out.items() if key != DIAGNOSTIC_DATA}
            label, ranking = self._predict_label(one)
            message.set(INTENT, label, add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)
            if self.component_config[ENTITY_RECOGNITION]:
                message.set(ENTITIES, self._predict_entities(one, message), add_to_output=True)
        return messages

    DIETClassifier.process = process
    DIETClassifier._vna_batched = True


def warm_up_nlu(processor: MessageProcessor) -> None:
    """Parse a message alone and two together once at load, so TensorFlow traces DIET's inference for both shapes
    now rather than in a citizen's first turns (~0.5 s each)."""
    from rasa.core.channels.channel import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker.from_events("warm-up", [])
    for texts in (["làm lại căn cước ở đâu"], ["lệ phí đăng ký kết hôn", "cảm ơn"]):
        processor.graph_runner.run(inputs={PLACEHOLDER_MESSAGE: [UserMessage(t) for t in texts],
                                           PLACEHOLDER_TRACKER: tracker},
                                   targets=[processor.model_metadata.nlu_target])


class BatchedParser:
    """Parses the messages that arrive together in one run of Rasa's NLU graph.

    Under load, while one turn holds the dialogue's event loop, the next turns queue up on it; when the loop comes
    back they all reach the NLU in the same iteration. Each asks :meth:`parse` and waits; the first schedules one flush
    for the end of the iteration, which runs the graph once for all of them (DIET batched, above) and builds
    each parse exactly as ``MessageProcessor.parse_message`` does. A lone message is a batch of one.
    """

    def __init__(self, processor: MessageProcessor, max_batch: int = 32) -> None:
        self.processor = processor
        self.max_batch = max_batch
        self._waiting: list[tuple[str, Any]] = []
        self.batches = 0
        self.messages = 0

    async def parse(self, text: str) -> dict:
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((text, future))
        if len(self._waiting) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        from rasa.core.channels.channel import UserMessage
        from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
        from rasa.shared.core.trackers import DialogueStateTracker
        from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT

        waiting, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
        if self._waiting:
            import asyncio

            asyncio.get_running_loop().call_soon(self._flush)
        waiting = [(text, future) for text, future in waiting if not future.done()]  # timed-out turns drop out
        if not waiting:
            return
        processor = self.processor
        target = processor.model_metadata.nlu_target
        try:
            results = processor.graph_runner.run(
                inputs={PLACEHOLDER_MESSAGE: [UserMessage(text) for text, _ in waiting],
                        PLACEHOLDER_TRACKER: DialogueStateTracker.from_events("default", [])},
                targets=[target])[target]
            parses = []
            for message in results:
                parse = {TEXT: "", INTENT: {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, ENTITIES: []}
                parse.update(message.as_dict(only_output_properties=True))
                processor._update_full_retrieval_intent(parse)
                processor._check_for_unseen_features(parse)
                parses.append(parse)
        except Exception as exc:  # noqa: BLE001 - every waiting turn fails (and is answered by the engine)
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        self.messages += len(waiting)
        for (_, future), parse in zip(waiting, parses, strict=True):
            if not future.done():
                future.set_result(parse)


class Dialogue:
    """The loaded Rasa agent, with the bookkeeping /health shows."""

    def __init__(self, settings: Settings, agent: Agent, second_opinion: SecondOpinion | None = None) -> None:
        self.settings = settings
        self.agent = agent
        # Rasa's own parse when an external NLU server is configured, else batched (BatchedParser)
        self.parser = None if agent.processor.http_interpreter else BatchedParser(agent.processor)
        self.second_opinion = second_opinion
        self._lock = threading.Lock()
        self.turns = 0
        self.degraded_turns = 0
        self.last_failure: dict | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the dialogue's own event loop (start)
        self._thread: threading.Thread | None = None

    @classmethod
    def load(cls, settings: Settings, model_path: Path, second_opinion: SecondOpinion | None = None) -> Dialogue:
        from bot.nlu.train import quiet_rasa

        quiet_rasa()
        compile_action_result_schema()
        cache_event_types()
        memoize_ted_predictions()
        batch_diet_inference()
        from rasa.core.agent import Agent
        from rasa.utils.endpoints import EndpointConfig

        if settings.action_endpoint:
            endpoint = EndpointConfig(url=settings.action_endpoint)
        else:
            endpoint = InProcessActions("bot.dialogue.actions")
        from bot.dialogue.lock_store import lock_store_for

        # the agent wraps the store in Rasa's FailSafeTrackerStore and gives it the model's domain; without
        # VNA_REDIS_URL the lock store is None and the agent keeps one conversation's messages in order in memory
        agent = Agent.load(str(model_path), action_endpoint=endpoint, tracker_store=tracker_store_for(settings, None),
                           lock_store=lock_store_for(settings))
        skip_remote_validation_in_process()
        if settings.dialogue_rule_shortcut and not trust_certain_rules(agent.processor):
            log.info("the rule shortcut does not apply to this model; every prediction runs all policies")
        dialogue = cls(settings, agent, second_opinion)
        dialogue.start()
        try:
            dialogue.call(warm_up_nlu, agent.processor)  # traced in the thread that will run it
        except BaseException:
            dialogue.close()
            raise
        return dialogue

    # ----- the dialogue's own event loop
    def start(self) -> None:
        """Start the event loop (in a daemon thread) that every turn of this agent runs on."""
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            try:
                loop.run_forever()
                for task in asyncio.all_tasks(loop):  # turns still in flight at close
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="dialogue-loop", daemon=True)
        self._thread.start()
        started.wait()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the dialogue's loop: turns still in flight are cancelled (their callers answer from the engine)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run a plain function in the dialogue's thread and wait for its result (from any other thread)."""
        async def run() -> T:
            return fn(*args)

        if self._loop is None:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    async def handle(self, session_id: str, text: str, channel: str,
                     on_reply: Callable[[DialogueTurn], Awaitable[None]] | None = None,
                     before: Callable[[], Awaitable[None]] | None = None) -> DialogueTurn:
        """One turn through Rasa, run on the dialogue's loop; awaitable from any event loop.

        ``on_reply`` (awaited on the dialogue's loop) stores the turn while the conversation's lock is still held, so
        the next message of this conversation — on this instance or, with the Redis lock store, on another — starts
        from the state this turn saved. Once it has started it runs to its end even if the caller gives up.

        ``before`` (awaited on the dialogue's loop once the lock is held, before Rasa sees the message) may raise to
        stop the turn: a retried message finds its first attempt's answer there.

        Cancelling the caller (a timeout) cancels the turn on the dialogue's loop as soon as that loop gets
        control back."""
        loop = self._loop
        if loop is None:
            raise DialogueError("the dialogue layer is closed")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - handle is a coroutine: awaited on some loop
            running = None
        if running is loop:
            return await self._handle(session_id, text, channel, on_reply, before)
        try:
            return await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._handle(session_id, text, channel, on_reply, before), loop))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the caller gave up (a timeout): as any cancellation
            raise DialogueError("the dialogue layer stopped during the turn") from None  # closed under it

    async def _handle(self, session_id: str, text: str, channel: str,
                      on_reply: Callable[[DialogueTurn], Awaitable[None]] | None = None,
                      before: Callable[[], Awaitable[None]] | None = None) -> DialogueTurn:
        from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

        parsed = await (self.parser.parse(text) if self.parser else self.agent.parse_message(text))
        parse = await self.arbitrate(session_id, text, parsed)
        intent = (parse.get("intent") or {}).get("name")
        message = UserMessage(text, CollectingOutputChannel(), session_id, input_channel=channel, parse_data=parse)
        # what Agent.handle_message does (the conversation's lock around the processor), with the turn stored
        # before the lock is released
        async with self.agent.lock_store.lock(session_id):
            if before is not None:
                await before()
            messages = await self.agent.processor.handle_message(message)
            if not messages:
                raise DialogueError(f"no reply for intent {intent!r} (an action failed or the action server is down)")
            turn = self._merge(text, intent, messages)
            turn.confidence = float((parse.get("intent") or {}).get("confidence") or 0.0)
            if on_reply is not None:
                storing = asyncio.ensure_future(on_reply(turn))
                try:
                    await asyncio.shield(storing)
                except asyncio.CancelledError:  # the caller gave up while the turn is being stored: finish storing
                    await storing  # before the lock is released, then give up too
                    raise
        return turn

    async def arbitrate(self, session_id: str, text: str, parse: dict) -> dict:
        """A real question the classifier mistakes for small talk, a yes/no or a request for a person — "Nhà có
        người quen lên ngủ lại thì có phải báo lưu trú không?" as ``bot_challenge`` (0.59) — would get a fixed
        reply. Such guesses are unsure (the real ones score ≥ 0.97 on the dev examples), so below
        ``ARBITRATION_BELOW`` the engine is asked: if it answers from a record, the turn goes to the engine with
        the aspect the engine found; if it declines the message as off-topic, it goes there as ``out_of_scope``; if it
        cannot place a message taken for small talk, it goes to ``nlu_fallback``. Button payloads ("/affirm") are
        never second-guessed."""
        intent = parse.get("intent") or {}
        name, confidence = intent.get("name"), float(intent.get("confidence") or 0.0)
        if (self.second_opinion is None or name not in _CONVERSATIONAL or confidence >= ARBITRATION_BELOW
                or text.lstrip().startswith("/")):
            return parse
        reply = await self.second_opinion(session_id, text)
        if reply.outcome == "answered" and reply.intent in self.agent.domain.intents:
            chosen = reply.intent
        elif reply.outcome == "declined":
            chosen = "out_of_scope"
        elif reply.outcome == "unknown" and name in _SMALL_TALK_GUESSES:
            # "mẫu đơn xin nghỉ phép gửi sếp viết thế nào" as smalltalk_how_are_you (0.75): a question nobody can
            # place gets the engine's "I'm not sure" with its closest records, not a chat line
            chosen = "nlu_fallback"
        else:
            return parse
        log.info("intent %s (%.2f) overruled by the engine: %s", name, confidence, chosen)
        return parse | {"intent": {"name": chosen, "confidence": confidence}, "overruled_intent": name}

    def _merge(self, text: str, intent: str | None, messages: list[dict]) -> DialogueTurn:
        texts: list[str] = []
        buttons: list[Option] = []
        sources: list[Source] = []
        fallback, outcome, state, engine_intent, answer = False, "small_talk", None, None, None
        for m in messages:
            if m.get("text"):
                texts.append(m["text"])
            buttons += [Option(str(b.get("title", "")), str(b.get("payload", ""))) for b in m.get("buttons") or []]
            custom = m.get("custom") or {}
            if not custom:
                continue
            if not sources and custom.get("sources"):
                sources = [Source(**s) for s in custom["sources"]]
            fallback = fallback or bool(custom.get("fallback"))
            outcome = custom.get("outcome") or outcome
            engine_intent = engine_intent or custom.get("engine_intent")
            answer = answer or custom.get("answer")
            if custom.get("state") is not None:
                state = ConversationState.from_dict(custom["state"])
        if intent in ("out_of_scope", "nlu_fallback") and outcome == "small_talk":
            fallback, outcome = True, "declined"
        if intent == "nlu_fallback" and outcome == "declined":
            intent = "out_of_scope"  # the classifier was unsure; the engine's scope rules refused it
        if outcome == "answered" and intent in _VAGUE_INTENTS and engine_intent not in (None, "ask_general"):
            # "lệ phí đăng ký kết hôn": the classifier saw a procedure name, the engine also saw what was asked
            intent = engine_intent
        reply = Reply(text, "\n\n".join(texts), intent, fallback, sources, outcome=outcome, answer=answer)
        return DialogueTurn(reply, state, buttons)

    def record(self, ok: bool, error: str | None = None) -> None:
        with self._lock:
            self.turns += 1
            if not ok:
                self.degraded_turns += 1
                self.last_failure = {"at": time.time(), "error": error}

    def status(self) -> dict:
        with self._lock:
            recent = self.last_failure is not None and time.time() - self.last_failure["at"] < 60
            return {
                "status": "degraded" if recent else "ok",
                "model": self.agent.model_name if self.agent else None,
                "actions": self.settings.action_endpoint or "in-process",
                "turns": self.turns,
                "degraded_turns": self.degraded_turns,
                "last_failure": self.last_failure,
            }

