"""Build, store and load the on-disk knowledge index (parsed records + BM25 + FAISS), atomically."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot import __version__
from bot.config import Settings
from bot.knowledge.store import KnowledgeBase, fingerprint
from bot.retrieval.dense import DenseIndex
from bot.retrieval.documents import SearchDoc, plan_doc, procedure_doc
from bot.retrieval.embedding_model import Encoder, load_encoder
from bot.retrieval.lexical import LexicalIndex
from bot.text.acronyms import derive_acronyms
from bot.text.diacritics import Restorer
from bot.text.vietnamese import fold, syllables

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ACRONYMS = "acronyms.json"
DIACRITICS = "diacritics.json"
_BOT = Path(__file__).resolve().parent.parent


@dataclass
class KnowledgeIndex:
    kb: KnowledgeBase
    docs: list[SearchDoc]
    lexical: LexicalIndex
    dense: DenseIndex
    manifest: dict
    vocabulary: frozenset[str]  # every folded syllable of the knowledge (all fields, not only what is indexed)
    acronyms: dict[str, str] = field(default_factory=dict)  # learned from the titles (bot/text/acronyms.py)
    restorer: Restorer = field(default_factory=Restorer)  # diacritics counted from the records (bot/text/diacritics.py)


def knowledge_texts(kb: KnowledgeBase) -> Iterator[str]:
    """The written text of the knowledge, field by field (a plan passage as repaired for search): what the vocabulary
    and the diacritics restorer are made of."""
    for proc in kb.procedures.values():
        yield from (proc.title, proc.domain, proc.subjects, proc.agency, proc.conditions)
        yield from proc.steps
        yield from proc.results
        yield from (d.name for d in proc.documents)
        yield from (b.title for b in proc.legal_basis)
    for passage in kb.passages.values():
        yield passage.search_text or passage.text


def domain_vocabulary(kb: KnowledgeBase) -> set[str]:
    """Words the knowledge base uses anywhere. A question whose topic words are mostly outside it
    ("đăng ký kênh youtube", "gia hạn gói cước 4G") is about something the records do not cover."""
    vocab: set[str] = set()
    for text in knowledge_texts(kb):
        vocab.update(syllables(fold(text)))
    return vocab


def search_docs(kb: KnowledgeBase) -> list[SearchDoc]:
    docs = [procedure_doc(p) for p in kb.procedures.values()]
    docs += [plan_doc(p, kb.documents[p.doc_id]) for p in kb.passages.values()]
    return docs


# What a build reads, and nothing else: the lexicon (knowledge/lexicon.yml, bot/text/lexicon.py) only rewrites
# questions, so editing it must not cost a rebuild (tests/test_index.py checks that the build never loads it).
INDEX_SOURCES = ("procedures", "plans")  # under the knowledge folder
INDEX_CODE = (
    _BOT / "knowledge",  # record parser, plan splitter and OCR repair, the knowledge base
    _BOT / "text" / "vietnamese.py",  # normalize / fold / syllables / lexical_tokens
    _BOT / "text" / "acronyms.py",  # acronyms learned from the titles
    _BOT / "text" / "diacritics.py",  # diacritics restored, counted from the records
    *(_BOT / "retrieval" / f"{name}.py" for name in ("documents", "lexical", "dense", "embedding_model",
                                                       "onnx_encoder", "index")),
)


def _wanted_manifest(settings: Settings) -> dict:
    return {
        "version": __version__,
        "knowledge": fingerprint(*(settings.knowledge_dir / name for name in INDEX_SOURCES)),
        "code": fingerprint(*INDEX_CODE, pattern="*.py"),
        "embedding_model": settings.embedding_model,
        "embedding_quantize": settings.embedding_quantize,
        "procedure_domains": settings.procedure_domains,
    }


def index_is_current(settings: Settings) -> bool:
    path = settings.resolved_index_dir / MANIFEST
    if not path.exists():
        return False
    have = json.loads(path.read_text(encoding="utf-8"))
    return all(have.get(k) == v for k, v in _wanted_manifest(settings).items())


def build_index(settings: Settings, encoder: Encoder | None = None, progress: bool = True) -> dict:
    """Parse the knowledge, embed it and write the index next to the old one, then swap it in, so a failed
    or interrupted build never leaves a half-written index behind. Returns the manifest."""
    started = time.perf_counter()
    target = settings.resolved_index_dir
    tmp = target.with_name(target.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    kb = KnowledgeBase.from_sources(settings.knowledge_dir, settings.procedure_domains)
    docs = search_docs(kb)
    parsed_at = time.perf_counter()

    lexical = LexicalIndex.build([d.lexical_text for d in docs])
    encoder = encoder or load_encoder(settings.embedding_model, settings.cache_dir, quantize=settings.embedding_quantize)
    vectors = encoder.encode_passages([d.dense_text for d in docs], progress=progress)
    dense = DenseIndex.build(vectors)

    kb.save(tmp / "knowledge.json")
    (tmp / "docs.jsonl").write_text(
        "\n".join(json.dumps(d.__dict__, ensure_ascii=False) for d in docs) + "\n", encoding="utf-8"
    )
    vocabulary = domain_vocabulary(kb)
    (tmp / "vocabulary.txt").write_text("\n".join(sorted(vocabulary)), encoding="utf-8")
    acronyms = derive_acronyms((p.title for p in kb.procedures.values()), vocabulary)
    (tmp / ACRONYMS).write_text(json.dumps(acronyms, ensure_ascii=False, indent=0), encoding="utf-8")
    restorer = Restorer.learn(knowledge_texts(kb))
    (tmp / DIACRITICS).write_text(json.dumps(restorer.to_dict(), ensure_ascii=False), encoding="utf-8")
    lexical.save(tmp / "bm25")
    dense.save(tmp / "dense.faiss")
    manifest = _wanted_manifest(settings) | {
        "procedures": len(kb.procedures),
        "plan_passages": len(kb.passages),
        "documents": len(docs),
        "acronyms": len(acronyms),
        "dimension": int(vectors.shape[1]),
        "parse_seconds": round(parsed_at - started, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")

    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    log.info("index built in %.1fs: %s", manifest["build_seconds"], manifest)
    return manifest


def load_index(settings: Settings) -> KnowledgeIndex:
    directory = settings.resolved_index_dir
    docs = [
        SearchDoc(**json.loads(line))
        for line in (directory / "docs.jsonl").read_text(encoding="utf-8").splitlines()
        if line
    ]
    return KnowledgeIndex(
        kb=KnowledgeBase.load(directory / "knowledge.json"),
        docs=docs,
        lexical=LexicalIndex.load(directory / "bm25"),
        dense=DenseIndex.load(directory / "dense.faiss"),
        manifest=json.loads((directory / MANIFEST).read_text(encoding="utf-8")),
        vocabulary=frozenset((directory / "vocabulary.txt").read_text(encoding="utf-8").split()),
        acronyms=json.loads((directory / ACRONYMS).read_text(encoding="utf-8")),
        restorer=Restorer.from_dict(json.loads((directory / DIACRITICS).read_text(encoding="utf-8"))),
    )


def ensure_index(settings: Settings, encoder: Encoder | None = None, progress: bool = True) -> KnowledgeIndex:
    if not index_is_current(settings):
        log.info("building the knowledge index in %s", settings.resolved_index_dir)
        build_index(settings, encoder=encoder, progress=progress)
    return load_index(settings)
