"""The shape of the code: no import circle in bot/, and the engine and scorers hold no weight of their own."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"


def _module_name(path: Path) -> str:
    parts = path.relative_to(BOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the bot modules it imports, at module level or inside a function (a lazy import still ties the
    two modules together)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {known(a.name) for a in node.names if a.name.split(".")[0] == "bot"}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*kept, base] if base else kept)
                if base.split(".")[0] == "bot":
                    found |= {known(f"{base}.{a.name}") for a in node.names}
        graph[name] = {m for m in found if m and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        for dep in sorted(graph.get(module, ())):
            found = visit(dep, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def test_no_module_of_bot_imports_itself_through_others() -> None:
    modules = {_module_name(p): p for p in BOT.rglob("*.py")}
    assert _cycle(_imports(modules)) is None


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"bot.a": {"bot.b"}, "bot.b": {"bot.c"}, "bot.c": {"bot.a"}}) == ["bot.a", "bot.b", "bot.c", "bot.a"]
    assert _cycle({"bot.a": {"bot.b"}, "bot.b": set()}) is None


def test_the_engine_and_the_scorers_hold_no_weight_of_their_own() -> None:
    """Every weight of the ranking is a field of bot.ranking.weights.RankingWeights."""
    for path in [BOT / "engine.py", *sorted((BOT / "ranking").glob("*.py"))]:
        if path.name == "weights.py":
            continue
        floats = [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                  if isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value not in (0.0, 1.0)]
        # the one float allowed: the guard against a zero span when normalising dense similarities
        assert floats in ([], [1e-6]), (path.name, floats)
