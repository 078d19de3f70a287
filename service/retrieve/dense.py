"""Dense retrievers: a query vector against the chunks' vectors in a vector store.

Three are registered, one per encoder of the index: ``dense`` (the English sentence-
transformers model, which reads only ``Settings.dense_languages``), ``multilingual``
(USE-multilingual, which reads every language, so it carries cross-lingual questions) and
``e5`` (multilingual-e5-small, every language, strongest on paraphrases and on Japanese
and Korean questions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.config import Settings
from service.index import CorpusIndex
from service.records import Chunk, Hit, Query
from service.retrieve.base import ranked_hits
from service.retrieve.registry import register
from service.store.base import VectorStore

__all__ = ["DenseRetriever"]


@dataclass(frozen=True)
class DenseRetriever:
    """Nearest chunks to the query's vector by encoder ``name``."""

    name: str
    store: VectorStore
    chunks: Sequence[Chunk]
    languages: frozenset[str] | None = None  # what the encoder can read (None: everything)

    @property
    def encoder(self) -> str:
        return self.name

    def asks(self, query: Query) -> bool:
        return self.languages is None or bool(query.languages & self.languages)

    def reads(self, query: Query, chunk: Chunk) -> bool:
        return self.languages is None or (chunk.language in self.languages and self.asks(query))

    def search(self, query: Query, k: int) -> list[Hit]:
        return ranked_hits(self.store.search(query.vector(self.name), k), self.chunks, self.name)


@register("dense")
def english_retriever(index: CorpusIndex, settings: Settings) -> DenseRetriever:
    """The English encoder: no say on passages or questions in other languages."""
    languages = settings.encoder_languages()["dense"]
    return DenseRetriever("dense", index.stores["dense"], index.chunks, languages)


@register("multilingual")
def multilingual_retriever(index: CorpusIndex, settings: Settings) -> DenseRetriever:
    """The multilingual encoder: reads every language."""
    languages = settings.encoder_languages()["multilingual"]
    return DenseRetriever("multilingual", index.stores["multilingual"], index.chunks, languages)


@register("e5")
def e5_retriever(index: CorpusIndex, settings: Settings) -> DenseRetriever:
    """multilingual-e5-small: reads every language."""
    return DenseRetriever(
        "e5", index.stores["e5"], index.chunks, settings.encoder_languages()["e5"]
    )
