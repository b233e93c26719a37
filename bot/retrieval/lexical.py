"""Lexical channel: BM25 (bm25s) over diacritic-folded, segmented tokens."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np

from bot.text.vietnamese import lexical_tokens


class LexicalIndex:
    """BM25 over `lexical_tokens`, which treats documents and queries identically (folded, so typing
    without diacritics loses nothing)."""

    def __init__(self, retriever: bm25s.BM25) -> None:
        self._bm25 = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        retriever = bm25s.BM25()
        retriever.index([lexical_tokens(t) or ["_"] for t in texts], show_progress=False)
        return cls(retriever)

    def save(self, directory: Path) -> None:
        self._bm25.save(str(directory))

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        return cls(bm25s.BM25.load(str(directory)))

    def known(self, tokens: list[str]) -> list[str]:
        return [t for t in tokens if t in self._vocab]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for `query` (zeros when no query token is in the vocabulary)."""
        tokens = self.known(lexical_tokens(query))
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    @property
    def size(self) -> int:
        return int(self._bm25.scores["num_docs"])
