"""Would a learned off-topic classifier decline what the scope rules and the confidence gate let through?

    .venv/bin/python scripts/offtopic_probe.py eval/devset eval/heldout eval/blind

A logistic regression over the question embedding (the engine's own question encoder) is fitted on data that no
evaluation set contributes to: in scope, the NLU examples of the ``ask_*`` intents, the unlabeled citizen questions
of ``/work/shared/data/dev`` (bot.learning.train.in_domain_questions) and one generated question per procedure
(bot.learning.corpus); off topic, the NLU ``out_of_scope`` examples and the generated off-topic rows. Its threshold
is the lowest at which no in-scope question of the FIRST set that the engine answers is flagged. For each set the
script prints out-of-scope declined and in-scope wrongly declined for the engine alone and for the engine with the
classifier's veto (declined when either declines). The later sets are only reported on (docs/evaluation.md, "An
off-topic classifier"); the engine is not changed by this script. About 6 minutes on 2 cores, most of it embedding
the ~4,700 training questions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.linear_model import LogisticRegression  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.engine import NLU_EXAMPLES, Engine  # noqa: E402
from bot.eval import load_parts  # noqa: E402
from bot.learning.corpus import generate, off_topic_questions  # noqa: E402
from bot.learning.train import in_domain_questions  # noqa: E402
from bot.text.diacritics import conversation_texts  # noqa: E402

SEED = 16
OFF_TOPIC_ROWS = 400
STRENGTH = 1.0  # inverse L2 penalty of the regression (0.3 / 1 / 3 / 10 tried: 1 separates dev and held-out best)


def _questions(folder: Path, *names: str) -> list[str]:
    out = []
    for name in names:
        path = folder / name
        if path.exists():
            out += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path, help="evaluation folders; the threshold is set on the first")
    args = parser.parse_args()
    settings = Settings()
    index, encoder = load_parts(settings)
    engine = Engine(index, encoder, settings)

    def embed(texts: list[str]) -> np.ndarray:
        return np.vstack([encoder.encode_queries(texts[i : i + 64]) for i in range(0, len(texts), 64)])

    inside = conversation_texts(NLU_EXAMPLES, lambda name: name.startswith("ask_") and name != "ask_human")
    inside += [e.text for e in in_domain_questions()]
    procedures = sorted(index.kb.procedures.values(), key=lambda p: p.code)
    inside += [e.text for e in generate(procedures, engine.lexicon, SEED, 1, index.vocabulary, off_topic=0)]
    outside = conversation_texts(NLU_EXAMPLES, lambda name: name == "out_of_scope")
    outside += [e.text for e in off_topic_questions(index.vocabulary, SEED, OFF_TOPIC_ROWS)]
    print(f"training: {len(inside)} in scope, {len(outside)} off topic", file=sys.stderr)
    x = embed(inside + outside)
    y = np.array([0] * len(inside) + [1] * len(outside))
    model = LogisticRegression(C=STRENGTH, class_weight="balanced", max_iter=2000).fit(x, y)

    threshold = None
    print("| set | threshold | out-of-scope declined: engine → with veto | wrongly declined: engine → with veto |")
    print("|---|---:|---:|---:|")
    for folder in args.sets:
        in_scope = _questions(folder, "procedure_questions.jsonl", "plan_questions.jsonl")
        off = _questions(folder, "out_of_scope.jsonl")
        declined_in = np.array([engine.answer(q)[0].fallback for q in in_scope], dtype=bool)
        declined_off = np.array([engine.answer(q)[0].fallback for q in off], dtype=bool)
        p_in = model.predict_proba(embed(in_scope))[:, 1]
        p_off = model.predict_proba(embed(off))[:, 1]
        if threshold is None:  # the first set: flag none of the in-scope questions the engine answers
            answered = p_in[~declined_in]
            threshold = float(answered.max()) + 1e-6 if answered.size else 0.5
        vetoed_in, vetoed_off = declined_in | (p_in >= threshold), declined_off | (p_off >= threshold)
        print(f"| {folder} | {threshold:.3f} | {declined_off.mean():.3f} → {vetoed_off.mean():.3f} "
              f"| {declined_in.mean():.3f} → {vetoed_in.mean():.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
