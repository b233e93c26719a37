"""How well the diacritics restorer (bot/text/diacritics.py) puts the marks back on questions it was not counted from.

    .venv/bin/python scripts/restore_check.py eval/devset eval/heldout

Takes every question of the sets' procedure_questions.jsonl that is written WITH diacritics, strips them (fold) and
asks the engine's restorer to put them back; prints, per set, the share of syllables and of whole questions restored
exactly (case aside), and the ten most frequent confusions. The restorer is the one the engine builds (records counted
at index build, the NLU examples and the lexicon at start-up), so the index must be current.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.eval import load_parts  # noqa: E402
from bot.text.vietnamese import fold, has_diacritics, normalize  # noqa: E402

_SYLLABLE = re.compile(r"[^\W\d_]+")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path, help="evaluation folders with a procedure_questions.jsonl")
    args = parser.parse_args()
    settings = Settings()
    index, encoder = load_parts(settings)
    engine = Engine(index, encoder, settings)
    print("| set | questions | syllables right | questions right | ms per question |")
    print("|---|---:|---:|---:|---:|")
    confusions: Counter[tuple[str, str]] = Counter()
    for folder in args.sets:
        rows = [json.loads(line) for line in (folder / "procedure_questions.jsonl").read_text("utf-8").splitlines()]
        written = [normalize(r["question"]) for r in rows if has_diacritics(r["question"])]
        right = total = whole = 0
        started = time.perf_counter()
        for question in written:
            gold = _SYLLABLE.findall(question.lower())
            got = _SYLLABLE.findall(engine.restorer.restore(fold(question)).lower())
            whole += gold == got
            for a, b in zip(gold, got, strict=True):
                total += 1
                right += a == b
                if a != b:
                    confusions[(a, b)] += 1
        ms = (time.perf_counter() - started) * 1000 / max(1, len(written))
        print(f"| {folder} | {len(written)} | {right / total:.3f} | {whole / len(written):.3f} | {ms:.2f} |")
    print("\nmost frequent confusions (written → restored):",
          ", ".join(f"{a} → {b} ({n})" for (a, b), n in confusions.most_common(10)))  # fmt: skip


if __name__ == "__main__":
    main()
