"""NLU quality by cross-validation: ``python -m bot.nlu.evaluate [--folds 5] [--output DIR]``.

Runs Rasa's own cross-validation (``rasa.nlu.test.cross_validate``, what ``rasa test nlu --cross-validation``
runs) with config.yml on the NLU data in nlu_data/ and prints a markdown summary: intent macro-F1 and
accuracy, per-intent F1, and entity precision/recall/F1 per extractor and entity type, with the time taken.
Rasa's full JSON reports and the misclassified examples go to ``--output`` (default var/nlu-eval/). The fold
split is seeded (``--seed``, default 0), so a rerun on the same data gives the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bot.config import PROJECT_DIR
from bot.nlu.entities import RULE_EXTRACTORS

__all__ = ["cross_validation", "markdown_report"]


def cross_validation(folds: int, output: Path, config: Path, files: list[str], seed: int = 0) -> dict[str, Any]:
    """Run Rasa's cross-validation; returns {"intents": report, "entities": {extractor: report}, "seconds"}."""
    from bot.nlu.train import quiet_rasa

    quiet_rasa()
    import numpy as np
    from rasa.nlu.test import cross_validate, drop_intents_below_freq
    from rasa.shared.importers.importer import TrainingDataImporter

    importer = TrainingDataImporter.load_nlu_importer_from_config(str(config), training_data_paths=files)
    data = drop_intents_below_freq(importer.get_nlu_data(), cutoff=folds)
    # Rasa shuffles the folds with numpy's global generator: seeded, every run uses the same folds
    np.random.seed(seed)
    started = time.monotonic()
    intents, entities, _responses = asyncio.run(
        cross_validate(data, folds, str(config), str(output), errors=True, disable_plotting=True, report_as_dict=True)
    )
    return {
        "intents": intents.evaluation,
        "entities": entities.evaluation,
        "seconds": time.monotonic() - started,
        "examples": len(data.intent_examples),
        "entity_examples": len(data.entity_examples),
        "intent_count": len(data.intents),
    }


def _f(x: float) -> str:
    return f"{x:.3f}"


def markdown_report(result: dict[str, Any], folds: int) -> str:
    report = result["intents"]["report"]
    macro = report["macro avg"]
    lines = [
        f"{result['examples']} examples, {result['intent_count']} intents, {result['entity_examples']} with "
        f"entities; {folds}-fold cross-validation in {result['seconds'] / 60:.1f} min on {_machine()}.",
        "",
        "| intents | macro-F1 | macro precision | macro recall | accuracy |",
        "|---|---|---|---|---|",
        f"| all | {_f(macro['f1-score'])} | {_f(macro['precision'])} | {_f(macro['recall'])} | "
        f"{_f(result['intents']['accuracy'])} |",
        "",
        "| intent | F1 | support | confused with |",
        "|---|---|---|---|",
    ]
    for name, row in sorted(report.items()):
        if not isinstance(row, dict) or name.endswith(" avg") or "support" not in row:
            continue
        confused = ", ".join(
            f"{k} ({v})" for k, v in sorted(row.get("confused_with", {}).items(), key=lambda kv: -kv[1])
        )
        lines.append(f"| {name} | {_f(row['f1-score'])} | {row['support']} | {confused} |")
    lines += ["", "| extractor | entity | precision | recall | F1 | support |", "|---|---|---|---|---|---|"]
    for extractor, evaluation in sorted(result["entities"].items()):
        for name, row in sorted(evaluation["report"].items()):
            if (
                not isinstance(row, dict)
                or name in ("micro avg", "macro avg", "weighted avg")
                or not row.get("support")
            ):
                continue
            if extractor in RULE_EXTRACTORS and name not in RULE_EXTRACTORS[extractor]:
                continue  # Rasa scores every extractor on every entity type; a rule extractor gives only its own
            lines.append(
                f"| {extractor} | {name} | {_f(row['precision'])} | {_f(row['recall'])} | {_f(row['f1-score'])} "
                f"| {row['support']} |"
            )
    return "\n".join(lines)


def _machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    from bot.nlu.train import training_files

    parser = argparse.ArgumentParser(prog="python -m bot.nlu.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=PROJECT_DIR / "var" / "nlu-eval")
    parser.add_argument("--config", type=Path, default=PROJECT_DIR / "config.yml")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold split (same folds every run)")
    args = parser.parse_args(argv)
    files = [f for f in training_files() if not f.endswith(("rules.yml", "stories.yml"))]
    result = cross_validation(args.folds, args.output, args.config, files, args.seed)
    print(markdown_report(result, args.folds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
