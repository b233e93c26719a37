"""One value per entity type from a Rasa parse result, for the dialogue.

The pipeline keeps every extractor's entities (DIETClassifier's and the rule-based ones, see
:mod:`bot.nlu.components`). The rule-based extractors give normalised values — today's unit name, a fact's
name, an official procedure name, a number — so they come first; DIET's values (mapped through the synonyms)
fill in what no rule found, e.g. a procedure named in words no lookup table holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["RULE_EXTRACTORS", "entity_values"]

# the rule-based extractors (bot.nlu.components) and the entity types each one gives
RULE_EXTRACTORS: dict[str, frozenset[str]] = {
    "ProcedureNameExtractor": frozenset({"procedure"}),
    "LocalityExtractor": frozenset({"locality"}),
    "VariantFactExtractor": frozenset({"fact"}),
    "ChoiceExtractor": frozenset({"option", "score"}),
}


def entity_values(entities: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Values by entity type, best first, without duplicates: rule-based extractors first, then the others,
    each in text order.

    >>> entity_values([
    ...     {"entity": "procedure", "value": "cccd", "start": 8, "end": 12, "extractor": "DIETClassifier"},
    ...     {"entity": "procedure", "value": "thẻ căn cước", "start": 8, "end": 12, "extractor": "ProcedureNameExtractor"},
    ... ])
    {'procedure': ['thẻ căn cước', 'cccd']}
    """
    ranked = sorted(
        entities,
        key=lambda e: (e.get("extractor") not in RULE_EXTRACTORS, e.get("start", 0)),
    )
    values: dict[str, list[str]] = {}
    for e in ranked:
        value = str(e.get("value", "")).strip()
        bucket = values.setdefault(str(e.get("entity")), [])
        if value and value not in bucket:
            bucket.append(value)
    return {k: v for k, v in values.items() if v}
