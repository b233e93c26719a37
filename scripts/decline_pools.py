"""What the engine alone declines (or is unsure of) in pools of questions no evaluation set contributes to.

    VNA_DIALOGUE=false .venv/bin/python scripts/decline_pools.py

In scope: the NLU examples of the ``ask_*`` intents (some are context-free fragments or requests for a person, which
the engine alone should not answer from a record either), the unlabeled citizen questions of ``/work/shared/data/dev``
and one generated question per procedure (bot.learning.corpus; its hit@1 too, the procedure it was made from or a
variant it also names). Off topic: the NLU ``out_of_scope`` examples and the generated off-topic rows (everyday
topics in the aspect phrasings, and the shared small talk and portal-support questions). Each question is asked in
a fresh conversation. About 3 minutes on 2 cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.engine import NLU_EXAMPLES, Engine  # noqa: E402
from bot.eval import load_parts  # noqa: E402
from bot.knowledge.procedures import load_procedures  # noqa: E402
from bot.learning.corpus import generate, off_topic_questions  # noqa: E402
from bot.learning.train import in_domain_questions  # noqa: E402
from bot.text.diacritics import conversation_texts  # noqa: E402

SEED = 16


def main() -> None:
    settings = Settings()
    index, encoder = load_parts(settings)
    engine = Engine(index, encoder, settings)
    pools = {
        "in scope: NLU ask_* examples": conversation_texts(NLU_EXAMPLES, lambda intent: intent.startswith("ask_")),
        "in scope: shared citizen questions": [e.text for e in in_domain_questions()],
        "off topic: NLU out_of_scope examples": conversation_texts(NLU_EXAMPLES, lambda i: i == "out_of_scope"),
        "off topic: generated off-topic rows": [e.text for e in off_topic_questions(index.vocabulary, SEED, 400)],
    }
    print("| pool | questions | declined or unsure |\n|---|---:|---:|")
    for name, texts in pools.items():
        fallback = sum(engine.answer(text)[0].fallback for text in texts)
        print(f"| {name} | {len(texts)} | {fallback} ({fallback / len(texts):.3f}) |")
    generated = generate(load_procedures(ROOT / "knowledge"), engine.lexicon, SEED, 1, off_topic=0)
    hits = fallback = 0
    for example in generated:
        reply, _ = engine.answer(example.text)
        fallback += reply.fallback
        hits += bool(not reply.fallback and reply.sources and reply.sources[0].id in (example.code, *example.acceptable))
    print(f"| in scope: generated, one per procedure | {len(generated)} | {fallback} ({fallback / len(generated):.3f}); "
          f"hit@1 {hits / len(generated):.4f} |")


if __name__ == "__main__":
    main()
