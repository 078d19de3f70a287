"""Search: three retrievers over one chunk table, fused into a single ranking.

Every retriever keeps the same contract, ``search(query, k) -> list[Hit]``:

- ``dense``: the sentence-transformers (English) encoder and its vector store (FAISS, or
  Milvus with ``CITEQA_DENSE_STORE=milvus``: ``service.store.faiss_store.VectorStore``);
- ``multilingual``: USE-multilingual and its vector store, for cross-lingual questions;
- ``bm25``: the Chinese-aware BM25 index.

``HybridRetriever`` asks each for ``depth`` hits and fuses them (``service.retrieve.fusion``).
With the default ``competent_zscore`` a retriever only votes on passages it can read for this query:
the English encoder on English passages of an English question, BM25 on passages that share
a script with the question, the multilingual encoder on everything.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np

from service.config import Settings, available_cores
from service.encode.encoders import Encoder, UseEncoder
from service.index import CorpusIndex
from service.records import Chunk, Hit
from service.retrieve.fusion import (
    competent_rrf,
    competent_zscore,
    minmax_fusion,
    reciprocal_rank_fusion,
)
from service.store.bm25 import LexicalIndex
from service.store.faiss_store import VectorStore
from service.text.language import detect_language

__all__ = [
    "DenseRetriever",
    "HybridRetriever",
    "LexicalRetriever",
    "Retriever",
    "query_vector",
    "scripts_of",
]


class Retriever(Protocol):
    @property
    def name(self) -> str: ...

    def search(self, query: str, k: int) -> list[Hit]: ...


def _hits(rows: Sequence[tuple[int, float]], chunks: Sequence[Chunk], name: str) -> list[Hit]:
    return [
        Hit(chunk=chunks[row], score=score, rank=rank, ranks={name: rank})
        for rank, (row, score) in enumerate(rows, start=1)
    ]


class _Pending:
    __slots__ = ("error", "text", "vector")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None


class _Batcher:
    """Concurrent question encodes for one encoder, run as one batch.

    A thread that finds the encoder busy leaves its question in the queue; whichever thread
    gets the encoder next encodes everything queued at once. A question alone never waits
    for company. USE's forward pass streams its weights once per batch, so a batch of short
    questions costs little more than one; its vectors do not depend on the batch."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._encoder_lock = threading.Lock()

    def encode(self, text: str) -> np.ndarray:
        pending = _Pending(text)
        with self._queue_lock:
            self._queue.append(pending)
        with self._encoder_lock:
            if pending.vector is None and pending.error is None:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                try:
                    vectors = self.encoder.encode([p.text for p in batch])
                except BaseException as error:
                    for p in batch:
                        p.error = error
                else:
                    for p, vector in zip(batch, vectors, strict=True):
                        p.vector = vector
        if pending.vector is None:
            raise pending.error or RuntimeError(f"no vector came back for {text!r}")
        return pending.vector


_batchers: dict[Encoder, _Batcher] = {}
_batchers_lock = threading.Lock()


@lru_cache(maxsize=1024)
def query_vector(encoder: Encoder, query: str) -> np.ndarray:
    """A query's vector, cached: search and answer extraction share one encode call."""
    if isinstance(encoder, UseEncoder):
        with _batchers_lock:
            batcher = _batchers.setdefault(encoder, _Batcher(encoder))
        vector = batcher.encode(query).copy()
    else:
        vector = encoder.encode([query])[0]
    vector.flags.writeable = False  # shared by every caller of the cache
    return vector


@dataclass(frozen=True)
class DenseRetriever:
    name: str
    encoder: Encoder
    index: VectorStore
    chunks: Sequence[Chunk]

    def vector(self, query: str) -> np.ndarray:
        """The query's vector; cached, so answer extraction reuses what search computed."""
        return query_vector(self.encoder, query)

    def search(self, query: str, k: int) -> list[Hit]:
        return self.search_vector(self.vector(query), k)

    def search_vector(self, vector: np.ndarray, k: int) -> list[Hit]:
        return _hits(self.index.search(vector, k), self.chunks, self.name)


@dataclass(frozen=True)
class LexicalRetriever:
    name: str
    index: LexicalIndex
    chunks: Sequence[Chunk]

    def search(self, query: str, k: int) -> list[Hit]:
        return _hits(self.index.search(query, k), self.chunks, self.name)


def scripts_of(language: str) -> frozenset[str]:
    """The writing systems a language label's text is in."""
    if language.startswith("zh"):
        return frozenset({"han"})
    return {"ja": frozenset({"han", "kana"}), "ko": frozenset({"hangul"})}.get(
        language, frozenset({"latin"})
    )


def _query_languages(query: str) -> set[str]:
    """Languages present in a query: its overall language, plus English if it has Latin words
    and Chinese if it has Han characters (a mixed query is read by both sides)."""
    languages = {detect_language(query)}
    if any("a" <= ch.lower() <= "z" for ch in query):
        languages.add("en")
    if detect_language("".join(ch for ch in query if ord(ch) > 0x2E80)) != "en":
        languages.add("zh")
    return languages


def _always(_languages: set[str]) -> bool:
    return True


_PARALLEL_ENCODE = available_cores() > 1


@lru_cache(maxsize=1)
def _encode_pool() -> ThreadPoolExecutor:
    """One thread that encodes a question with the second encoder while the first runs."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="citeqa-encode")


# A forked child has the parent's pool but not its thread: work sent to it would never run.
os.register_at_fork(after_in_child=_encode_pool.cache_clear)


def _timed_vector(retriever: DenseRetriever, query: str, timings: dict[str, float]) -> np.ndarray:
    started = time.perf_counter()
    vector = retriever.vector(query)
    timings[f"encode_{retriever.name}"] = (time.perf_counter() - started) * 1000
    return vector


def _encode(
    query: str,
    retrievers: Sequence[tuple[str, DenseRetriever]],
    timings: dict[str, float],
    *,
    parallel: bool,
) -> dict[str, np.ndarray]:
    """Each dense retriever's vector of ``query``; ``timings`` gets ``encode``, the wall
    time of them all, and ``encode_<name>``, each one's own time. ``parallel`` runs the
    encoders side by side, one thread each, so the question waits for the slower one, not
    for both: 1.5 ms less wait on the seeds, but 1.7 ms more CPU (the threads contend for
    Python's lock), so it only pays while no other question is in the process."""
    started = time.perf_counter()
    beside = retrievers[1:] if parallel else []  # the first always runs on this thread
    pending = {
        name: _encode_pool().submit(_timed_vector, retriever, query, timings)
        for name, retriever in beside
    }
    vectors = {
        name: _timed_vector(retriever, query, timings)
        for name, retriever in retrievers
        if name not in pending
    }
    vectors |= {name: future.result() for name, future in pending.items()}
    timings["encode"] = (time.perf_counter() - started) * 1000
    return vectors


class HybridRetriever:
    """Fuses the rankings of several retrievers."""

    def __init__(
        self,
        retrievers: Mapping[str, Retriever],
        *,
        fusion: str = "competent_zscore",
        rrf_k: int = 60,
        depth: int = 50,
        reads: Mapping[str, Callable[[set[str], Chunk], bool]] | None = None,
        asks: Mapping[str, Callable[[set[str]], bool]] | None = None,
    ) -> None:
        self.retrievers = dict(retrievers)
        self.fusion = fusion
        self.rrf_k = rrf_k
        self.depth = depth
        self.reads = dict(reads or {})
        self.asks = dict(asks or {})

    @classmethod
    def from_index(cls, index: CorpusIndex, settings: Settings) -> HybridRetriever:
        dense_languages = set(settings.dense_languages)

        def dense_asked(query_languages: set[str]) -> bool:
            return bool(query_languages & dense_languages)

        def dense_reads(query_languages: set[str], chunk: Chunk) -> bool:
            return chunk.language in dense_languages and dense_asked(query_languages)

        def lexical_reads(query_languages: set[str], chunk: Chunk) -> bool:
            query_scripts = frozenset().union(*(scripts_of(q) for q in query_languages))
            return bool(query_scripts & scripts_of(chunk.language))

        return cls(
            {
                "dense": DenseRetriever(
                    "dense", index.encoders["dense"], index.stores["dense"], index.chunks
                ),
                "multilingual": DenseRetriever(
                    "multilingual",
                    index.encoders["multilingual"],
                    index.stores["multilingual"],
                    index.chunks,
                ),
                "bm25": LexicalRetriever("bm25", index.lexical, index.chunks),
            },
            fusion=settings.fusion,
            rrf_k=settings.rrf_k,
            depth=settings.retriever_depth,
            reads={"dense": dense_reads, "bm25": lexical_reads},
            asks={"dense": dense_asked},
        )

    def runs(
        self, query: str, timings: dict[str, float] | None = None, *, parallel: bool = False
    ) -> dict[str, list[Hit]]:
        """Each retriever's own ranking, ``depth`` deep; ``timings`` gets each encode and
        search in milliseconds. With a competent fusion, a retriever that cannot read the
        query's languages is not asked (its run is empty): the English encoder has no say on
        a Chinese question. ``parallel`` encodes with the encoders side by side (``_encode``:
        for a question that has the process to itself)."""
        languages = _query_languages(query) if self.fusion.startswith("competent") else None
        timings = {} if timings is None else timings
        asked = {
            name: retriever
            for name, retriever in self.retrievers.items()
            if languages is None or self.asks.get(name, _always)(languages)
        }
        dense = [(n, r) for n, r in asked.items() if isinstance(r, DenseRetriever)]
        vectors = _encode(query, dense, timings, parallel=parallel and _PARALLEL_ENCODE)
        runs: dict[str, list[Hit]] = {}
        for name, retriever in self.retrievers.items():
            if name not in asked:
                runs[name] = []
                continue
            started = time.perf_counter()
            if isinstance(retriever, DenseRetriever):
                runs[name] = retriever.search_vector(vectors[name], self.depth)
            else:
                runs[name] = retriever.search(query, self.depth)
            timings[f"search_{name}"] = (time.perf_counter() - started) * 1000
        return runs

    def search(self, query: str, k: int) -> list[Hit]:
        """The fused top ``k`` passages for ``query``."""
        return self.fuse(query, self.runs(query), k)

    def fuse(self, query: str, runs: Mapping[str, list[Hit]], k: int) -> list[Hit]:
        """Fuse already computed rankings (lets callers time retrieval and fusion apart)."""
        by_id = {hit.chunk.chunk_id: hit.chunk for hits in runs.values() for hit in hits}
        ranks: dict[str, dict[str, int]] = {}
        for name, hits in runs.items():
            for hit in hits:
                ranks.setdefault(hit.chunk.chunk_id, {})[name] = hit.rank
        scored = {
            name: [(hit.chunk.chunk_id, hit.score) for hit in hits] for name, hits in runs.items()
        }
        if self.fusion == "rrf":
            fused = reciprocal_rank_fusion(scored, rrf_k=self.rrf_k, k=k)
        elif self.fusion == "minmax":
            fused = minmax_fusion(scored, k=k)
        elif self.fusion in ("competent_rrf", "competent_zscore"):
            languages = _query_languages(query)

            def can_read(name: str, chunk_id: str) -> bool:
                reads = self.reads.get(name)
                return reads is None or reads(languages, by_id[chunk_id])

            if self.fusion == "competent_rrf":
                fused = competent_rrf(scored, can_read, rrf_k=self.rrf_k, k=k)
            else:
                fused = competent_zscore(scored, can_read, k=k)
        else:
            raise ValueError(
                f"unknown fusion {self.fusion!r}; "
                "use competent_zscore, competent_rrf, rrf or minmax"
            )
        return [
            Hit(chunk=by_id[item], score=score, rank=rank, ranks=ranks[item])
            for rank, (item, score) in enumerate(fused, start=1)
        ]
