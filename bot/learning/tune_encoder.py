"""Fine-tune the bundled embedding model on questions generated from the knowledge (issue 16 step 3).

The bundled multilingual-e5-small was never shown a Vietnamese administrative procedure: on its own it puts the
right record first for about a quarter of the development questions (docs/evaluation.md). Here it learns from the
corpus of :mod:`bot.learning.corpus` — citizen-style questions written from every procedure's title, aspects and
the lexicon read in reverse, with and without diacritics — paired with the passage the index embeds for that
procedure (:func:`bot.retrieval.documents.procedure_doc`, the same text and prefixes as the index).

Only the question side learns. The passages are embedded once by the configured model, as the index embeds them,
and stay fixed, so the index is not rebuilt and every procedure of the knowledge base is a candidate in every step:
the loss is the cross-entropy of the question against all of them (cosines × ``SCALE``), with the probability mass
of every record that answers it (a shortened name answers for all the variants it names) as the target. The near-
identical variants and the lexical neighbours are therefore always among the negatives. On CPU, for a time budget
(``--minutes``, default 20 on 2 cores); the word embeddings and the lower ``FROZEN_LAYERS`` layers stay as they are.
Nothing of an evaluation set is read.

The result is an ordinary sentence-transformers folder (the bundled model's configuration, prompts and tokenizer),
written under ``$VNA_CACHE_DIR/tuned/<key>/`` where the key covers the base model, the knowledge, the corpus
settings and this module's version; a complete folder is reused. Use it with ``VNA_QUESTION_MODEL=<folder>``: it
embeds the questions (exported to ONNX on first use like the bundled model), the index keeps ``embedding_model``'s
passages.

    python -m bot.learning.tune_encoder [--minutes 20] [--limit N] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot.config import Settings, get_settings
from bot.knowledge.models import Procedure
from bot.knowledge.store import KnowledgeBase, fingerprint
from bot.learning.corpus import Example, generate
from bot.retrieval.documents import procedure_doc
from bot.retrieval.embedding_model import PASSAGE_PREFIX, QUERY_PREFIX, resolve_model
from bot.text.lexicon import load_lexicon

log = logging.getLogger(__name__)

VERSION = 1  # bump when the training changes: a cached model of another version is trained again
STAMP_FILE = "tuned_stamp.json"
SEED = 16
BATCH = 32
SCALE = 50.0  # cosines times this before the softmax (e5 was trained at 100: its cosines lie close together)
LEARNING_RATE = 3e-5
MAX_TOKENS = 128  # question and passage, during training (the index embeds passages up to 256)
# The embeddings and the lower layers stay as they are (no gradient flows below them): the word-embedding matrix
# is three quarters of the weights, and on 2 cores half the layers train about twice as many batches in the budget.
FROZEN_LAYERS = 6
# Weight of the pull towards the untouched model's vector of the same question (times 1 - cosine): the corpus is
# written from titles, citizens' questions are not; without it the tuned model forgets what it knew of colloquial
# and abbreviated questions and of the plans (dev dense hit@1: no diacritics 0.49 -> 0.77, colloquial 0.84 -> 0.77).
STAY_NEAR = 5.0


def training_pairs(procedures: Sequence[Procedure], examples: Sequence[Example]) -> list[tuple[str, tuple[int, ...]]]:
    """(question, positions of the records that answer it) for every generated question about one of
    ``procedures`` (out-of-scope rows have none; a shortened name answers for every variant it names)."""
    position = {p.code: i for i, p in enumerate(procedures)}
    out = []
    for e in examples:
        gold = tuple(sorted(position[c] for c in e.gold if c in position))
        if e.code in position and gold:
            out.append((e.text, gold))
    return out


def _key(settings: Settings, base: str, limit: int | None, minutes: float) -> str:
    digest = hashlib.sha256(json.dumps({
        "version": VERSION, "base": base, "knowledge": fingerprint(settings.knowledge_dir / "procedures"),
        "lexicon": fingerprint(settings.knowledge_dir, pattern="lexicon.yml"), "limit": limit, "minutes": minutes,
        "seed": SEED, "batch": BATCH, "lr": LEARNING_RATE, "scale": SCALE, "frozen": FROZEN_LAYERS, "stay_near": STAY_NEAR,
    }, sort_keys=True).encode()).hexdigest()
    return digest[:16]


def tuned_dir(settings: Settings, limit: int | None = None, minutes: float = 20.0) -> Path:
    base = resolve_model(settings.embedding_model, settings.cache_dir)
    return settings.cache_dir / "tuned" / _key(settings, base, limit, minutes)


def tune(settings: Settings, *, minutes: float = 20.0, limit: int | None = None, out: Path | None = None,
         progress: bool = True) -> Path:  # fmt: skip
    """Fine-tune the question side of the configured model for ``minutes`` (or one pass over the corpus, whichever
    ends first) and write it to ``out`` (default :func:`tuned_dir`); a complete folder there is returned as it is.
    ``limit``: train on the questions of the first ``limit`` procedures only (tests)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    target = out or tuned_dir(settings, limit, minutes)
    if (target / STAMP_FILE).exists():
        return target
    import torch
    from sentence_transformers import SentenceTransformer
    from tqdm import tqdm

    from bot.retrieval.embedding_model import configure_torch_threads, usable_cpus

    configure_torch_threads(usable_cpus())
    base = resolve_model(settings.embedding_model, settings.cache_dir)
    kb = KnowledgeBase.from_sources(settings.knowledge_dir, settings.procedure_domains)
    procedures = sorted(kb.procedures.values(), key=lambda p: p.code)[:limit]
    examples = generate(procedures, load_lexicon(), seed=SEED, off_topic=0, known=kb.procedures.values())
    pairs = training_pairs(procedures, examples)
    rng = random.Random(SEED)
    rng.shuffle(pairs)
    torch.manual_seed(SEED)
    model = SentenceTransformer(base, device="cpu", local_files_only=True)
    # the passages, as the index embeds them with the same (untouched) model: every procedure is a candidate
    model.max_seq_length = 256
    with torch.no_grad():
        passages = model.encode([PASSAGE_PREFIX + procedure_doc(p).dense_text for p in procedures], batch_size=32,
                                convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=progress)
    passages = passages.clone()  # encode() runs in inference mode; a plain tensor can take part in the loss
    model.max_seq_length = MAX_TOKENS
    reference = SentenceTransformer(base, device="cpu", local_files_only=True) if STAY_NEAR else None
    if reference is not None:
        reference.max_seq_length = MAX_TOKENS
        reference.eval()
    bert = model[0].auto_model
    for frozen in (bert.embeddings, *bert.encoder.layer[:FROZEN_LAYERS]):
        frozen.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LEARNING_RATE)
    plan = [pairs[i:i + BATCH] for i in range(0, len(pairs), BATCH)]
    warmup = max(1, min(50, len(plan) // 20))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    deadline = time.monotonic() + minutes * 60
    model.train()
    losses: list[float] = []
    bar = tqdm(plan, desc="fine-tuning the question encoder", unit="batch", disable=not progress)
    steps = 0
    for batch in bar:
        questions = model.tokenize([QUERY_PREFIX + text for text, _ in batch])
        q = model(dict(questions))["sentence_embedding"]
        logits = SCALE * q @ passages.T
        gold = torch.zeros_like(logits, dtype=torch.bool)
        for row, (_, positions) in enumerate(batch):
            gold[row, list(positions)] = True
        # -log of the probability mass on the records that answer the question (one, or the variants it names)
        loss = (torch.logsumexp(logits, dim=1) - torch.logsumexp(logits.masked_fill(~gold, -1e4), dim=1)).mean()
        if reference is not None:
            with torch.no_grad():
                anchor = reference(dict(questions))["sentence_embedding"]
            loss = loss + STAY_NEAR * (1 - (q * anchor).sum(dim=1)).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        steps += 1
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
        if time.monotonic() > deadline:
            break
    bar.close()
    model.eval()
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.max_seq_length = 256
    model.save(str(tmp))
    stamp = {"version": VERSION, "base": base, "questions": len(pairs), "steps": steps, "batches": len(plan),
             "minutes": minutes, "limit": limit, "first_loss": losses[0] if losses else None,
             "last_loss": sum(losses[-20:]) / max(1, len(losses[-20:]))}
    (tmp / STAMP_FILE).write_text(json.dumps(stamp, indent=2), encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    log.info("fine-tuned question encoder written to %s (%s)", target, stamp)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.learning.tune_encoder", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget (default 20)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N procedures only")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: under the cache)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    folder = tune(get_settings(), minutes=args.minutes, limit=args.limit, out=args.out)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
