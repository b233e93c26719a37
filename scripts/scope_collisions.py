"""Which off-topic entries of knowledge/scope.yml also read words of the procedures, once folded?

    .venv/bin/python scripts/scope_collisions.py           # the entries and how the records spell them
    .venv/bin/python scripts/scope_collisions.py --pools   # what the scope rules decline, in and out of scope

Scope entries are matched on folded text, where "trận đấu" (sport) and "tràn dầu" (oil spills, 58 times in the
records) are the same letters. For every entry of every topic but ``injection`` this prints how the procedure records
(every text field) and the NLU questions of the ``ask_*`` intents write what it matches, with diacritics, and how
often. An entry written without diacritics that the records write with marks it does not mean should be written with
its own marks (bot/rules.py, ``PatternSet.agrees``); an entry the records write with its own marks is a word the
domain shares, which ``guarded: true`` and the domain guard decide. Entries already written with marks show the
spellings that still agree with them. About 2 minutes on 2 cores.

``--pools`` counts the messages the scope rules decline (small talk aside) in pools of questions in scope (every
procedure title as written and folded, the NLU ``ask_*`` examples, the shared citizen questions, one generated
question per procedure) and out of it (the NLU ``out_of_scope`` examples, the generated off-topic rows, the dev and
held-out off-topic questions, counted only); about 10 seconds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answer.scope import classify_scope  # noqa: E402
from bot.engine import NLU_EXAMPLES  # noqa: E402
from bot.knowledge.procedures import load_procedures  # noqa: E402
from bot.learning.corpus import generate, off_topic_questions  # noqa: E402
from bot.learning.train import in_domain_questions  # noqa: E402
from bot.rules import load_rules, pattern_set  # noqa: E402
from bot.text.diacritics import conversation_texts  # noqa: E402
from bot.text.lexicon import load_lexicon  # noqa: E402
from bot.text.vietnamese import fold, has_diacritics, normalize  # noqa: E402


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def marked_texts() -> list[tuple[str, str]]:
    """(normalised lowercase text, its folded form) of the records and the NLU questions, where they align."""
    texts: list[str] = []
    for path in sorted((ROOT / "knowledge" / "procedures").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                texts += [s for s in strings(json.loads(line)) if len(s) > 3]
    texts += conversation_texts(NLU_EXAMPLES, lambda intent: intent.startswith("ask_"))
    pairs = []
    for text in texts:
        typed = normalize(unicodedata.normalize("NFC", text)).lower()
        folded = fold(typed)
        if not typed.isascii() and len(folded) == len(typed):  # positions agree: a span reads the same in both
            pairs.append((typed, folded))
    return pairs


def pools() -> None:
    def questions(path: Path) -> list[str]:
        return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    procedures = load_procedures(ROOT / "knowledge")
    inside = {
        "procedure titles": [p.title for p in procedures],
        "procedure titles, folded": [fold(p.title) for p in procedures],
        "NLU ask_* examples": conversation_texts(NLU_EXAMPLES, lambda intent: intent.startswith("ask_")),
        "shared citizen questions": [e.text for e in in_domain_questions()],
        "generated, one per procedure": [e.text for e in generate(procedures, load_lexicon(), 16, 1, off_topic=0)],
    }
    outside = {
        "NLU out_of_scope examples": conversation_texts(NLU_EXAMPLES, lambda intent: intent == "out_of_scope"),
        "generated off-topic rows": [e.text for e in off_topic_questions([], 16, 400)],
        "dev off-topic": questions(ROOT / "eval" / "devset" / "out_of_scope.jsonl"),
        "held-out off-topic": questions(ROOT / "eval" / "heldout" / "out_of_scope.jsonl"),
    }
    print("| pool | messages | declined by the scope rules |\n|---|---:|---:|")
    for side, groups in (("in scope", inside), ("off topic", outside)):
        for name, texts in groups.items():
            verdicts = [classify_scope(text) for text in texts]
            declined = sum(1 for v in verdicts if v is not None and not v.small_talk)
            print(f"| {side}: {name} | {len(texts)} | {declined} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pools", action="store_true", help="count what the rules decline in and out of scope")
    if parser.parse_args().pools:
        pools()
        return
    pairs = marked_texts()
    topics = load_rules("scope")["topics"]
    print(f"{len(pairs)} texts of the records and the NLU questions\n")
    for category, topic in topics.items():
        if category == "injection":
            continue
        for kind in ("words", "patterns"):
            for entry in topic.get(kind) or []:
                rules = pattern_set(category, {kind: [entry]}, "scope.yml")
                found: Counter[str] = Counter()
                for typed, folded in pairs:
                    for match in rules.regex.finditer(folded):
                        found[typed[match.start() : match.end()]] += 1
                if not found:
                    continue
                shown = []
                for spelling, n in found.most_common(6):
                    agrees = rules.agrees(fold(spelling), spelling) if has_diacritics(entry) else None
                    shown.append(f"{spelling!r} {n}" + ("" if agrees is None else (" (agrees)" if agrees else "")))
                guarded = "guarded" if topic.get("guarded") else "unguarded"
                written = "written with marks" if has_diacritics(entry) else "written bare"
                print(f"{category} ({guarded}) {entry!r}, {written}: " + ", ".join(shown))


if __name__ == "__main__":
    main()
