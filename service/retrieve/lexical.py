"""The lexical retriever: BM25 over the Chinese-aware tokenizer (``service.store.bm25``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.config import Settings
from service.index import CorpusIndex
from service.records import Chunk, Hit, Query
from service.retrieve.base import ranked_hits
from service.retrieve.registry import register
from service.store.bm25 import LexicalIndex
from service.text.language import scripts_of
from service.text.words import segmenter

__all__ = ["LexicalRetriever"]


@dataclass(frozen=True)
class LexicalRetriever:
    """BM25 ranks passages by the question's written terms."""

    name: str
    index: LexicalIndex
    chunks: Sequence[Chunk]

    @property
    def encoder(self) -> None:
        return None

    def asks(self, query: Query) -> bool:
        return True

    def reads(self, query: Query, chunk: Chunk) -> bool:
        """Terms only match within a script: an English question's terms say nothing of a
        Chinese passage."""
        return bool(query.scripts & scripts_of(chunk.language))

    def search(self, query: Query, k: int) -> list[Hit]:
        return ranked_hits(self.index.search(query.text, k), self.chunks, self.name)


@register("bm25")
def bm25_retriever(index: CorpusIndex, settings: Settings) -> LexicalRetriever:
    """Loads jieba's dictionary now (about a second), not on the first Chinese question."""
    segmenter()
    return LexicalRetriever("bm25", index.lexical, index.chunks)
