"""The knowledge base in memory: parsed procedures and plan passages, looked up by id when answering."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.knowledge.models import PlanDocument, PlanPassage, Procedure
from bot.knowledge.plans import load_plan_documents, load_plan_passages
from bot.knowledge.procedures import load_procedures


@dataclass
class KnowledgeBase:
    procedures: dict[str, Procedure] = field(default_factory=dict)
    documents: dict[str, PlanDocument] = field(default_factory=dict)
    passages: dict[str, PlanPassage] = field(default_factory=dict)

    @classmethod
    def from_sources(cls, knowledge_dir: Path, domains: list[str] | None = None) -> KnowledgeBase:
        """Parse the project's copy of the source data; `domains` keeps only procedures of those domains."""
        procs = load_procedures(knowledge_dir)
        if domains:
            procs = [p for p in procs if p.domain in set(domains)]
        return cls(
            procedures={p.code: p for p in procs},
            documents={d.doc_id: d for d in load_plan_documents(knowledge_dir)},
            passages={p.passage_id: p for p in load_plan_passages(knowledge_dir)},
        )

    def save(self, path: Path) -> None:
        payload = {
            "procedures": [p.to_dict() for p in self.procedures.values()],
            "documents": [asdict(d) for d in self.documents.values()],
            "passages": [asdict(p) for p in self.passages.values()],
        }
        path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> KnowledgeBase:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            procedures={p["code"]: Procedure.from_dict(p) for p in payload["procedures"]},
            documents={d["doc_id"]: PlanDocument(**d) for d in payload["documents"]},
            passages={p["passage_id"]: PlanPassage(**p) for p in payload["passages"]},
        )


def fingerprint(*paths: Path, pattern: str = "*") -> str:
    """Hash of the given files and of every file matching `pattern` under the given folders, so an index built
    from other data (or by other parsing code) is rebuilt rather than trusted."""
    digest = hashlib.sha256()
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob(pattern))
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
