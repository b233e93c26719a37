"""Dense features from the project's sentence-embedding model (the one retrieval uses), for DIETClassifier.

Rasa's LanguageModelFeaturizer only takes its own list of Hugging Face architectures; this component runs the
project's sentence-transformers model (``VNA_EMBEDDING_MODEL``, by default the bundled multilingual-e5-small,
built offline by :mod:`bot.retrieval.embedding_model`) once per message and emits

* a sentence feature: the mean-pooled, L2-normalised embedding of ``"query: " + text`` — the vector retrieval
  uses for the same question;
* sequence features: for each of the tokenizer's words, the mean of the transformer's output vectors for the
  subword pieces inside the word's span (zeros when the model truncated it away).

Optional: config.yml only lists it where it measurably helps (docs/nlu.md has the comparison).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

__all__ = ["SentenceEmbeddingFeaturizer"]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """Sentence and per-word features from the project's sentence-transformers model (module docstring)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "model": None,  # default: the assistant's setting (VNA_EMBEDDING_MODEL)
            "batch_size": 32,
            "max_length": 128,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        pass

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        return cls({**cls.get_default_config(), **config}, execution_context.node_name)

    def __init__(self, config: dict[str, Any], name: str) -> None:
        super().__init__(name, config)
        from bot.config import get_settings
        from bot.retrieval.embedding_model import load_encoder

        settings = get_settings()
        encoder = load_encoder(config["model"] or settings.embedding_model, settings.cache_dir, quantize=True)
        self._prefix = encoder.query_prefix
        self._tokenizer = encoder.model.tokenizer
        transformer = encoder.model.transformers_model  # the first module's transformers model
        if transformer is None:
            raise ValueError(f"{config['model'] or settings.embedding_model}: no transformers model inside")
        self._transformer = transformer

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process([m for m in training_data.training_examples if m.get(TEXT)])
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        todo = [m for m in messages if m.get(TEXT) and m.get(TOKENS_NAMES[TEXT])]
        size = self._config["batch_size"]
        for i in range(0, len(todo), size):
            batch = todo[i : i + size]
            for message, (sequence, sentence) in zip(batch, self._features(batch), strict=True):
                self.add_features_to_message(sequence, sentence, TEXT, message)
        return messages

    def _features(self, messages: list[Message]) -> list[tuple[np.ndarray, np.ndarray]]:
        import torch

        texts = [self._prefix + m.get(TEXT) for m in messages]
        encoded = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self._config["max_length"],
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = encoded.pop("offset_mapping").numpy()
        with torch.inference_mode():
            hidden = self._transformer(**encoded).last_hidden_state.numpy()
        mask = encoded["attention_mask"].numpy().astype(bool)
        out: list[tuple[np.ndarray, np.ndarray]] = []
        shift = len(self._prefix)
        for k, message in enumerate(messages):
            vectors, spans = hidden[k][mask[k]], offsets[k][mask[k]]
            sentence = vectors.mean(axis=0)
            sentence /= np.linalg.norm(sentence) or 1.0
            tokens = message.get(TOKENS_NAMES[TEXT])
            sequence = np.zeros((len(tokens), vectors.shape[1]), dtype=np.float32)
            for j, token in enumerate(tokens):
                inside = (spans[:, 1] > token.start + shift) & (spans[:, 0] < token.end + shift)
                if inside.any():
                    sequence[j] = vectors[inside].mean(axis=0)
            out.append((sequence, sentence[np.newaxis, :].astype(np.float32)))
        return out
