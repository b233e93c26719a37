"""The project's Rasa 3.6 graph components, named in config.yml as ``bot.nlu.components.<Class>``.

Each is a thin adapter: the Vietnamese logic lives in plain functions (:mod:`bot.nlu.words`,
:mod:`bot.nlu.procedure_names`, :mod:`bot.nlu.localities`, :mod:`bot.nlu.facts`, :mod:`bot.nlu.choices`)
that are tested and usable without Rasa or TensorFlow.

The rule-based extractors run after DIETClassifier. DIET also learns every annotated entity and generalises
to wording no rule knows; the rules give normalised values (today's unit name, a fact's name, an official
procedure name, a number). Both stay in the parse result, each tagged with its ``extractor``, and
:func:`bot.nlu.entities.entity_values` picks one value per entity type for the dialogue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.choices import find_option, find_score
from bot.nlu.facts import find_facts
from bot.nlu.localities import find_localities
from bot.nlu.procedure_names import ProcedureNameMatcher
from bot.nlu.words import message_words
from bot.text.lexicon import Lexicon, load_lexicon

__all__ = [
    "ChoiceExtractor",
    "LocalityExtractor",
    "ProcedureNameExtractor",
    "VariantFactExtractor",
    "VietnameseTokenizer",
]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class VietnameseTokenizer(Tokenizer):
    """Folded, segmented Vietnamese words (see :mod:`bot.nlu.words`).

    A token's ``text`` is the folded word ("dang_ky"); its ``lemma``, which CountVectorsFeaturizer reads by
    default, the folded syllables plus the lexicon's official wording ("cccd" → "cccd the can cuoc");
    ``start``/``end`` point into the message as received, so entity spans cut the citizen's own text.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
            "use_lexicon": True,
            "lexicon": None,  # path; default knowledge/lexicon.yml
        }

    def __init__(self, config: dict[str, Any]) -> None:
        config = {**self.get_default_config(), **config}
        super().__init__(config)
        self._lexicon: Lexicon | None = None
        if config["use_lexicon"]:
            self._lexicon = load_lexicon(Path(config["lexicon"]) if config["lexicon"] else None)

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        text = message.get(attribute)
        words = message_words(text, self._lexicon)
        if not words:
            # emoji or symbols only ("👍", "?"): one token, so the character n-grams still see it
            stripped = text.strip() or text
            start = text.find(stripped)
            return [Token(stripped, start, start + len(stripped))]
        return self._apply_token_pattern([Token(w.text, w.start, w.end, lemma=w.features) for w in words])


class _RuleExtractor(GraphComponent, EntityExtractorMixin):
    """Base of the untrained extractors: adds the entities ``_find`` returns for a message."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> _RuleExtractor:
        return cls()

    def _find(self, message: Message) -> list[dict[str, Any]]:
        raise NotImplementedError

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if not message.get(TEXT):
                continue
            entities = self._find(message)
            if entities:
                message.set(ENTITIES, message.get(ENTITIES, []) + self.add_extractor_name(entities), add_to_output=True)
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LocalityExtractor(_RuleExtractor):
    """``locality`` entities named as today's units (old addresses converted; :mod:`bot.nlu.localities`)."""

    def __init__(self) -> None:
        find_localities("")  # load the gazetteer (~2 s) with the model, not on the first message

    def _find(self, message: Message) -> list[dict[str, Any]]:
        return [loc.entity() for loc in find_localities(message.get(TEXT))]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class VariantFactExtractor(_RuleExtractor):
    """``fact`` entities: under14, foreign, lost, damaged, expired, re_register (:mod:`bot.nlu.facts`)."""

    def _find(self, message: Message) -> list[dict[str, Any]]:
        return find_facts(message.get(TEXT))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class ChoiceExtractor(_RuleExtractor):
    """An ``option`` in a choose_option message, a ``score`` in a rate message (:mod:`bot.nlu.choices`).

    Placed after the intent classifier: "2" is an option or a score depending on the intent.
    """

    def _find(self, message: Message) -> list[dict[str, Any]]:
        intent = (message.get(INTENT) or {}).get("name")
        if intent == "choose_option":
            found = find_option(message.get(TEXT))
        elif intent == "rate":
            found = find_score(message.get(TEXT))
        else:
            return []
        return [found] if found else []


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class ProcedureNameExtractor(_RuleExtractor):
    """``procedure`` entities from the generated lookup table, valued by its synonyms' official wording.

    Trained = reads the lookup table named ``lookup`` (default "procedure") and the synonyms from the
    training data (nlu_data/lookups/procedure.yml, ``python -m bot.nlu.generate``) and stores them with the
    model, so a served model does not depend on the data folder.
    """

    FILE = "procedure_names.json"

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"lookup": "procedure"}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ProcedureNameExtractor:
        return cls({**cls.get_default_config(), **config}, model_storage, resource)

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        names: list[str] | None = None,
        synonyms: dict[str, str] | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._names = names or []
        self._synonyms = synonyms or {}
        self._matcher = ProcedureNameMatcher(self._names, self._synonyms)

    def train(self, training_data: TrainingData) -> Resource:
        names: list[str] = []
        for table in training_data.lookup_tables:
            if table["name"] == self._config["lookup"] and isinstance(table["elements"], list):
                names.extend(str(e) for e in table["elements"])
        wanted = {n.lower() for n in names}
        synonyms = {k: v for k, v in training_data.entity_synonyms.items() if k in wanted}
        with self._model_storage.write_to(self._resource) as folder:
            (folder / self.FILE).write_text(json.dumps({"names": names, "synonyms": synonyms}, ensure_ascii=False))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> ProcedureNameExtractor:
        config = {**cls.get_default_config(), **config}
        try:
            with model_storage.read_from(resource) as folder:
                data = json.loads((folder / cls.FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            data = {}
        return cls(config, model_storage, resource, data.get("names"), data.get("synonyms"))

    def _find(self, message: Message) -> list[dict[str, Any]]:
        return self._matcher.find(message.get(TEXT))
