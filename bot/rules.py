"""The hand rules kept as data under ``knowledge/`` (beside ``lexicon.yml``), read and checked by one loader.

A rule file is YAML. Its pattern sets all have the same shape, so staff can add a word without reading Python::

    weather:
      guarded: true            # (scope only) see knowledge/scope.yml
      words: [thoi tiet, du bao, troi (mua|nang)]   # regex fragments on folded text, matched as \\b(…)\\b
      patterns: ['^(xin )?chao']                    # regexes on folded text, any of them may match

A set compiles to one regex: ``\\b(<words joined by |>)\\b``, then each pattern, joined by ``|``. A malformed file
or entry raises :class:`RuleError` naming the file, the set and the entry, when the assistant starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"
_SET_KEYS = frozenset({"words", "patterns", "guarded"})


class RuleError(ValueError):
    """A rule file or one of its entries is malformed (the message says where)."""


@dataclass(frozen=True)
class PatternSet:
    """One named set of words and patterns, compiled."""

    name: str
    regex: re.Pattern[str]
    guarded: bool = False

    def search(self, text: str) -> re.Match[str] | None:
        return self.regex.search(text)


def pattern_source(entry: Mapping[str, Any], placeholders: Mapping[str, str] | None = None) -> str:
    """The regex a set's words and patterns make together; a pattern written ``{name}`` stands for
    ``placeholders[name]`` (a pattern the code builds from lists, e.g. the countries of knowledge/variants.yml).

    >>> pattern_source({"words": ["thoi tiet", "du bao"], "patterns": ["^alo"]})
    '\\\\b(thoi tiet|du bao)\\\\b|^alo'
    """
    parts = [r"\b(" + "|".join(entry["words"]) + r")\b"] if entry.get("words") else []
    patterns = [_placeholder(p, placeholders or {}) for p in entry.get("patterns") or []]
    return "|".join(parts + patterns)


def _placeholder(pattern: str, placeholders: Mapping[str, str]) -> str:
    name = pattern[1:-1] if pattern.startswith("{") and pattern.endswith("}") else None
    if name is None or not name.isidentifier():
        return pattern
    if name not in placeholders:
        raise RuleError(f"{{{name}}} names no pattern (known: {sorted(placeholders)})")
    return placeholders[name]


def pattern_set(name: str, entry: object, where: str, placeholders: Mapping[str, str] | None = None) -> PatternSet:
    """Check and compile one set (``where`` names the file for the error message)."""
    if not isinstance(entry, Mapping):
        raise RuleError(f"{where}: '{name}' must be a mapping with words and/or patterns, not {type(entry).__name__}")
    unknown = set(entry) - _SET_KEYS
    if unknown:
        raise RuleError(f"{where}: '{name}' has unknown keys {sorted(unknown)} (expected {sorted(_SET_KEYS)})")
    if not entry.get("words") and not entry.get("patterns"):
        raise RuleError(f"{where}: '{name}' has neither words nor patterns")
    for key in ("words", "patterns"):
        items = entry.get(key) or []
        if not isinstance(items, list):
            raise RuleError(f"{where}: '{name}.{key}' must be a list")
        for n, item in enumerate(items, 1):
            if not isinstance(item, str) or not item.strip():
                raise RuleError(f"{where}: '{name}.{key}' entry {n} must be a non-empty string, not {item!r}")
            try:
                re.compile(item)
            except re.error as exc:
                raise RuleError(f"{where}: '{name}.{key}' entry {n} {item!r} is not a valid pattern: {exc}") from exc
    guarded = entry.get("guarded", False)
    if not isinstance(guarded, bool):
        raise RuleError(f"{where}: '{name}.guarded' must be true or false")
    try:
        source = pattern_source(entry, placeholders)
    except RuleError as exc:
        raise RuleError(f"{where}: '{name}.patterns': {exc}") from None
    return PatternSet(name, re.compile(source), guarded)


def pattern_sets(data: object, where: str, placeholders: Mapping[str, str] | None = None) -> dict[str, PatternSet]:
    """A mapping of named sets, each checked and compiled, in file order."""
    if not isinstance(data, Mapping):
        raise RuleError(f"{where}: expected a mapping of named sets")
    return {str(name): pattern_set(str(name), entry, where, placeholders) for name, entry in data.items()}


def word_list(data: Mapping[str, Any], key: str, where: str) -> list[str]:
    """A plain list of words (regex fragments) under ``key``, checked like a set's words."""
    pattern_set(key, {"words": data.get(key)}, where)  # checks it: a list of non-empty, valid fragments
    return list(data[key])


def load_rules(name: str, directory: Path | None = None) -> Mapping[str, Any]:
    """The YAML rule file ``<directory>/<name>.yml`` (default ``knowledge/``) as a mapping, cached per file."""
    path = ((directory or KNOWLEDGE_DIR) / f"{name}.yml").resolve()
    return _read(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _read(path: str, mtime_ns: int) -> Mapping[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise RuleError(f"{path}: expected a mapping at the top level")
    return data
