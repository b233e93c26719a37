"""One value per entity type from a Rasa parse result, for the dialogue.

The pipeline keeps every extractor's entities (DIETClassifier's and the rule-based ones, see
:mod:`bot.nlu.components`). The rule-based extractors give normalised values — today's unit name, a fact's
name, an official procedure name, a number — so they come first; DIET's values (mapped through the synonyms)
fill in what no rule found, e.g. a procedure named in words no lookup table holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["RULE_EXTRACTORS", "entity_values"]

# the rule-based extractors (bot.nlu.components) and the entity types each one gives
RULE_EXTRACTORS: dict[str, frozenset[str]] = {
    "ProcedureNameExtractor": frozenset({"procedure"}),
    "LocalityExtractor": frozenset({"locality"}),
    "VariantFactExtractor": frozenset({"fact"}),
    "ChoiceExtractor": frozenset({"option", "score"}),
}


# entity types with a closed set of values: another extractor's value counts only if it is one of them (DIET's
# raw spans, "dưới" or "14 tuổi", are not facts; its synonyms-mapped "lost" is)
_VALID: dict[str, Callable[[str], bool]] = {
    "fact": lambda v: v in {"under14", "foreign", "lost", "damaged", "expired", "re_register"},
    "option": lambda v: v in {"last", "xa", "tinh", "bo"} or (v.isdigit() and 1 <= int(v) <= 9),
    "score": lambda v: v.isdigit() and 1 <= int(v) <= 5,
}


def entity_values(entities: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Values by entity type, best first, without duplicates: rule-based extractors first, then the others,
    each in text order; for fact, option and score only valid values.

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
        name = str(e.get("entity"))
        bucket = values.setdefault(name, [])
        if value and value not in bucket and _VALID.get(name, bool)(value):
            bucket.append(value)
    return {k: v for k, v in values.items() if v}
