"""The hand rules kept as data under ``knowledge/`` (beside ``lexicon.yml``), read and checked by one loader.

A rule file is YAML. Its pattern sets all have the same shape, so staff can add a word without reading Python::

    weather:
      guarded: true            # (scope only) see knowledge/scope.yml
      words: [thoi tiet, du bao, troi (mua|nang)]   # regex fragments on folded text, matched as \\b(…)\\b
      patterns: ['^(xin )?chao']                    # regexes on folded text, any of them may match

A set compiles to one regex: ``\\b(<words joined by |>)\\b``, then each pattern, joined by ``|``. A malformed file
or entry raises :class:`RuleError` naming the file, the set and the entry, when the assistant starts.

An entry may be written with its diacritics ("trận đấu", "bị (sốt|ho|cảm)") where its folded form is also another
phrase ("tràn dầu", "bị cấm"). :meth:`PatternSet.search` reads every entry folded, as before; :meth:`PatternSet.agrees`
reads the diacritics the citizen typed: a match typed without any mark is the entry, one typed with marks must carry
the entry's own, so "bị cấm xuất cảnh" is not "bị cảm" while "bi cam" may be. (Stricter than the lexicon, which
checks word by word: "danh dự bao lâu" is not "dự báo".)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.text.vietnamese import fold, has_diacritics, normalize

KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"
_SET_KEYS = frozenset({"words", "patterns", "guarded"})


class RuleError(ValueError):
    """A rule file or one of its entries is malformed (the message says where)."""


@dataclass(frozen=True)
class PatternSet:
    """One named set of words and patterns, compiled."""

    name: str
    regex: re.Pattern[str]  # every entry, folded: for folded text
    guarded: bool = False
    bare: re.Pattern[str] | None = None  # the entries written without diacritics, for folded text
    marked: re.Pattern[str] | None = None  # those written with them, for typed text (normalised, lowercase) …
    exact: re.Pattern[str] | None = None  # … and as written: a match typed with any mark must be one of these

    def search(self, text: str) -> re.Match[str] | None:
        """A match in folded ``text``, every entry read folded."""
        return self.regex.search(text)

    def agrees(self, folded: str, typed: str) -> bool:
        """Whether a message matches, the entries written with diacritics only where the message's own diacritics
        agree with theirs (``folded`` = :func:`fold` of the message, ``typed`` = its :func:`normalize` lowercased).

        A match typed without any mark is read as the entry; one typed with marks must have the entry's own: "đủ bao
        nhiêu" is not "dự báo", nor is "danh dự bao lâu" ("bao" typed among marked words is "bao").

        >>> sport = pattern_set("sport", {"words": ["bóng đá", "trận đấu"]}, "example")
        >>> [sport.agrees(fold(t), normalize(t).lower()) for t in ("xem trận đấu", "tran dau", "sự cố tràn dầu")]
        [True, True, False]
        """
        if self.marked is None or self.exact is None:
            return self.regex.search(folded) is not None
        if self.bare is not None and self.bare.search(folded):
            return True
        return any(fold(m[0]) == m[0] or self.exact.fullmatch(m[0]) for m in self.marked.finditer(typed))


def folded_pattern(pattern: str) -> str:
    """``pattern`` with its diacritics removed (escapes and ASCII kept as written): the entry read on folded text."""
    return "".join(c if c.isascii() else fold(c) for c in normalize(pattern))


def typed_pattern(pattern: str) -> str:
    """``pattern`` (written with diacritics) for finding, in typed text, the spans that could be it: each marked letter
    also matches its bare form, so "trận đấu" finds "tran dau" and "trận đấu" but not "tràn dầu" (a span found typed
    with some marks must then be the entry as written: :meth:`PatternSet.agrees`).

    >>> typed_pattern("đùa (đi|chút)")
    '[đd][ùu]a ([đd]i|ch[úu]t)'
    """
    out, escaped, in_class = [], False, False
    for c in normalize(pattern).lower():
        bare = fold(c) if not c.isascii() else c
        if escaped:
            out.append(c)
            escaped = False
        elif c == "\\":
            out.append(c)
            escaped = True
        elif bare != c:
            out.append(c + bare if in_class else f"[{c}{bare}]")
        else:
            in_class = (in_class or c == "[") and c != "]"
            out.append(c)
    return "".join(out)


def pattern_source(entry: Mapping[str, Any], placeholders: Mapping[str, str] | None = None) -> str:
    """The regex a set's words and patterns make together; a pattern written ``{name}`` stands for
    ``placeholders[name]`` (a pattern the code builds from lists, e.g. the countries of knowledge/variants.yml).

    >>> pattern_source({"words": ["thoi tiet", "du bao"], "patterns": ["^alo"]})
    '\\\\b(thoi tiet|du bao)\\\\b|^alo'
    """
    parts = [r"\b(" + "|".join(map(folded_pattern, entry["words"])) + r")\b"] if entry.get("words") else []
    patterns = [folded_pattern(_placeholder(p, placeholders or {})) for p in entry.get("patterns") or []]
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
    words, patterns = entry.get("words") or [], entry.get("patterns") or []
    if not any(map(has_diacritics, [*words, *patterns])):
        return PatternSet(name, re.compile(source), guarded)
    bare = pattern_source({"words": [w for w in words if not has_diacritics(w)],
                           "patterns": [p for p in patterns if not has_diacritics(p)]}, placeholders)  # fmt: skip
    own = [w for w in words if has_diacritics(w)]
    own_patterns = [p for p in patterns if has_diacritics(p)]
    exact = [r"\b(" + "|".join(normalize(w).lower() for w in own) + r")\b"] if own else []
    exact += [normalize(p).lower() for p in own_patterns]
    typed = [r"\b(" + "|".join(map(typed_pattern, own)) + r")\b"] if own else []
    typed += [typed_pattern(p) for p in own_patterns]
    return PatternSet(name, re.compile(source), guarded, re.compile(bare) if bare else None,
                      re.compile("|".join(typed)), re.compile("|".join(exact)))  # fmt: skip


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
