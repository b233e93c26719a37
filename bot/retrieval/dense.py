"""Dense channel: sentence embeddings in a FAISS inner-product index (vectors are L2-normalised)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np


class DenseIndex:
    """Exact inner-product search; the knowledge base is a few thousand records, so a flat index is both
    exact and sub-millisecond."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray) -> DenseIndex:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        return cls(faiss.read_index(str(path)))

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def search(self, query_vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, cosine scores) for one query vector."""
        scores, ids = self._index.search(np.ascontiguousarray(query_vector.reshape(1, -1), dtype=np.float32), k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]
