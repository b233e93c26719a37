"""Every regular expression compiled at module level where citizen text goes runs in linear time (issue 15).

Citizen text is cut at max_input_chars (2,000) before anything else, but a pattern with nested or overlapping
quantifiers can still spend seconds on 2,000 hostile characters, on the event loop. This test imports the modules
that read citizen text (bot/text, bot/answer, bot/nlu, bot/faq.py, bot/engine.py, bot/privacy.py, connectors/),
collects every compiled pattern among their module globals (also inside lists, tuples, sets and dicts, and as
class attributes), and runs each over hostile shapes of n and 8n characters: the time may grow about 8 times,
never 64 (a quadratic pattern) — the bound is a generous 30. RE2 patterns (bot/privacy.py) are collected too.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import pkgutil
import re
import sys
import time
from types import ModuleType

import pytest

PACKAGES = ["bot.text", "bot.answer", "bot.nlu", "connectors"]
MODULES = ["bot.faq", "bot.engine", "bot.privacy"]
N = 2_000  # texts are cut at max_input_chars = 2,000 before anything else

# shapes that make backtracking engines struggle: long runs of one class, then a character that breaks the match
SHAPES = [
    "1", "a", " ", "@", ".", "-", "/", "\n", "1 ", "a ", "ạ ", "1/", "1.", "1,", "1-", "a.", "a@", ". ", "1 a",
    "Ab ", "😀 ", "a1", "! ", "a, ", "\u0301", "hỏi ", "thủ tục ", "không ",
]
ENDINGS = ["", "x"]
FLOOR = 0.0005  # seconds: below this a time is timer noise


def _modules() -> list[ModuleType]:
    names = list(MODULES)
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, package + ".")]
    return [importlib.import_module(name) for name in names]


def _patterns_in(value: object, found: dict[int, object], depth: int = 0) -> None:
    if depth > 4:
        return
    if isinstance(value, re.Pattern) or type(value).__name__ == "_Regexp":
        found.setdefault(id(value), value)
    elif isinstance(value, dict):
        for item in value.values():
            _patterns_in(item, found, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _patterns_in(item, found, depth + 1)


def _collect() -> dict[str, object]:
    patterns: dict[str, object] = {}
    for module in _modules():
        for name, value in vars(module).items():
            found: dict[int, object] = {}
            if isinstance(value, type) and value.__module__ == module.__name__:
                for member in vars(value).values():
                    _patterns_in(member, found)
            else:
                _patterns_in(value, found)
            for index, pattern in enumerate(found.values()):
                patterns.setdefault(f"{module.__name__}.{name}" + (f"[{index}]" if len(found) > 1 else ""), pattern)
    # the same pattern object may be reachable under several names: test it once
    unique: dict[int, str] = {}
    for key, pattern in patterns.items():
        unique.setdefault(id(pattern), key)
    return {key: patterns[key] for key in unique.values()}


PATTERNS = _collect()


def _words_of(pattern: object) -> list[str]:
    """Words spelled in the pattern (its keywords), to build shapes that get far into it."""
    source = pattern.pattern if isinstance(pattern.pattern, str) else ""  # type: ignore[attr-defined]
    return sorted(set(re.findall(r"[^\W\d_]{2,}", re.sub(r"\\[a-zA-Z]", " ", source))))[:8]


def _uses() -> dict[str, str]:
    """How each pattern is applied: "fullmatch" or "match" when its module only ever calls that on it by name
    (an anchored pattern need not be linear under search), else "finditer" (search at every position)."""
    uses = {}
    for key in PATTERNS:
        module_name, _, name = key.rpartition(".")
        name = name.split("[")[0]
        source = inspect.getsource(sys.modules[module_name])
        methods = set(re.findall(rf"\b{re.escape(name)}(?:\[[^\]]*\])?\.(\w+)\(", source))
        if methods and methods <= {"match", "fullmatch"}:
            uses[key] = "fullmatch" if methods == {"fullmatch"} else "match"
    return uses


USES = _uses()


def _seconds(pattern: object, use: str, text: str, repeat: int = 3) -> float:
    """CPU seconds of this process to apply the pattern as its module does (the best of ``repeat``: other
    processes on a shared machine do not count)."""
    best = float("inf")
    gc.disable()  # a collection of the whole test session's objects is not the pattern's time
    try:
        for _ in range(repeat):
            start = time.process_time()
            if use == "finditer":
                for _match in pattern.finditer(text):  # type: ignore[attr-defined]
                    pass
            else:
                getattr(pattern, use)(text)
            best = min(best, time.process_time() - start)
    finally:
        gc.enable()
    return best


def _texts(unit: str, n: int) -> list[str]:
    body = (unit * (n // len(unit) + 1))[:n]
    return [body[: n - len(end)] + end for end in ENDINGS]


def test_the_patterns_are_collected() -> None:
    assert len(PATTERNS) > 50
    assert any(key.startswith("bot.privacy.") for key in PATTERNS)
    assert any(key.startswith("bot.text.") for key in PATTERNS)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_runs_in_linear_time(name: str) -> None:
    pattern = PATTERNS[name]
    use = USES.get(name, "finditer")
    words = _words_of(pattern)
    units = SHAPES + [word + " " for word in words] + ["1 " + word + " " for word in words[:3]]
    for unit in units:
        # n/8 → n first: a cubic pattern would not finish on 8n characters
        for n in (N // 8, N):
            for small_text, large_text in zip(_texts(unit, n), _texts(unit, 8 * n), strict=True):
                large = _seconds(pattern, use, large_text, repeat=1)
                if large < 30 * FLOOR:
                    continue  # fast whatever the small text took
                small, large = _seconds(pattern, use, small_text), _seconds(pattern, use, large_text)
                # 8 times the text: at most 30 times the time (a quadratic pattern gives 64); a floor for noise
                assert large < 30 * max(small, FLOOR), (use, repr(unit), 8 * n, small, large)
