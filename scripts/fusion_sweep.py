"""Channel weights of the fused ranking tried side by side, on the sets they may be chosen on.

    .venv/bin/python scripts/fusion_sweep.py 0.5,0.2,0.1 0.5,0.2,0.2 0.4,0.3,0.3

Each argument is ``lexical,dense,no_diacritics_dense`` (bot.ranking.weights.RankingWeights; the other weights stay
as they are). For each, one engine with those weights answers the development set, the held-out set and the two
halves of the generated conversations (hybrid), and one line gives procedure hit@1 (all, without diacritics),
in-scope wrongly declined and out-of-scope declined, and the follow-ups' right procedure on every later turn. The
blind set is deliberately not offered: weights are chosen without it (docs/evaluation.md, "Re-weighing the two
channels"). About 2.5 minutes per setting on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.eval import evaluate_mode, load_devset, load_parts  # noqa: E402
from bot.ranking.weights import WEIGHTS  # noqa: E402

SETS = {"dev": "eval/devset", "held-out": "eval/heldout", "generated dev": "eval/generated/dev",
        "generated check": "eval/generated/check"}  # fmt: skip


def _setting(text: str) -> tuple[float, float, float]:
    lexical, dense, unmarked = (float(v) for v in text.split(","))
    return lexical, dense, unmarked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="+", type=_setting, help="lexical,dense,no_diacritics_dense")
    args = parser.parse_args()
    settings = Settings()
    index, encoder = load_parts(settings)
    sets = {name: load_devset(ROOT / folder) for name, folder in SETS.items()}
    for lexical, dense, unmarked in args.settings:
        weights = replace(WEIGHTS, lexical=lexical, dense=dense, no_diacritics_dense=unmarked)
        engine = Engine(index, encoder, settings, weights=weights)
        cells = []
        for name, devset in sets.items():
            result = evaluate_mode(engine, devset, "hybrid")
            if devset["procedures"]:
                cells.append(f"{name}: hit@1 {result.mean('proc:hit1'):.3f} "
                             f"(no diacritics {result.mean('proc:no_diacritics:hit1') or 0:.3f}), "
                             f"wrongly declined {result.mean('inscope:declined'):.3f}, "
                             f"out-of-scope declined {result.mean('oos:declined') or 0:.3f}")  # fmt: skip
            else:
                cells.append(f"{name}: follow-ups {result.mean('followup') or 0:.3f}")
        print(f"{lexical},{dense},{unmarked} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
