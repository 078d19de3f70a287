"""The query encoder: one ``Query`` record per question, read by every later stage.

``analyse`` works out what the text says about itself (languages, scripts, content
terms); ``QueryEncoder.encode`` adds each asked encoder's vector. Retrieval, the reader
and the claim check all read the same record, so none of them detects a language or
encodes the question again.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache

import numpy as np

from service.config import available_cores
from service.encode.encoders import Encoder, UseEncoder
from service.records import Query
from service.text.language import detect_language, fold, languages_in, scripts_of
from service.text.tokenize import content_terms

__all__ = ["QueryEncoder", "analyse"]


def analyse(text: str) -> Query:
    """The text fields of a query (no vectors yet)."""
    language = detect_language(text)
    languages = languages_in(text, language)
    return Query(
        text=text,
        folded=fold(text),
        language=language,
        languages=languages,
        scripts=frozenset().union(*(scripts_of(language) for language in languages)),
        terms=content_terms(text),
    )


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
        return pending.vector.copy()


@lru_cache(maxsize=1)
def _encode_pool() -> ThreadPoolExecutor:
    """One thread that encodes a question with the second encoder while the first runs."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="citeqa-encode")


# A forked child has the parent's pool but not its thread: work sent to it would never run.
os.register_at_fork(after_in_child=_encode_pool.cache_clear)

_PARALLEL_ENCODE = available_cores() > 1
_CACHED_VECTORS = 1024  # per encoder: the evaluation and retries ask the same text again


class QueryEncoder:
    """Encodes questions with the index's encoders, by name."""

    def __init__(self, encoders: Mapping[str, Encoder]) -> None:
        """Args:
        encoders: the query-time models by name (``CorpusIndex.encoders``).
        """
        self.encoders = dict(encoders)
        # USE batches concurrent questions (``_Batcher``); other encoders run as called
        self._batchers = {
            name: _Batcher(encoder)
            for name, encoder in self.encoders.items()
            if isinstance(encoder, UseEncoder)
        }
        self._cache: dict[str, OrderedDict[str, np.ndarray]] = {n: OrderedDict() for n in encoders}
        self._cache_lock = threading.Lock()
        self._cost: dict[str, float] = {}  # milliseconds per question, by encoder

    def encode(
        self,
        query: Query,
        names: Collection[str],
        timings: MutableMapping[str, float] | None = None,
        *,
        parallel: bool = False,
    ) -> Query:
        """``query`` with the vectors of the encoders ``names``.

        Args:
            query: the analysed question (``analyse``).
            names: the encoders to run, in order (the first runs on this thread).
            timings: gets ``encode`` (wall time of them all) and ``encode_<name>`` (each
                one's own), in milliseconds.
            parallel: run the slowest encoder on a second thread beside the others, so the
                question waits for the slower side, not for the sum: about 4 ms less wait
                with the five retrievers on the seeds, but more CPU (the threads contend for
                Python's lock), so it only pays while no other question is in the process.

        Returns:
            A new ``Query`` whose ``vectors`` hold one read-only unit vector per name.
        """
        unknown = [name for name in names if name not in self.encoders]
        if unknown:
            raise KeyError(f"no encoder {unknown[0]!r}; the index has {', '.join(self.encoders)}")
        timings = {} if timings is None else timings
        started = time.perf_counter()
        ordered = list(names)
        beside = self._beside(ordered) if parallel and _PARALLEL_ENCODE else []
        pending: dict[str, Future[np.ndarray]] = {
            name: _encode_pool().submit(self._timed, name, query.text, timings) for name in beside
        }
        vectors = {
            name: self._timed(name, query.text, timings) for name in ordered if name not in pending
        }
        vectors |= {name: future.result() for name, future in pending.items()}
        timings["encode"] = (time.perf_counter() - started) * 1000
        return replace(query, vectors={**query.vectors, **vectors})

    def _beside(self, names: list[str]) -> list[str]:
        """The encoder to run on the second thread: the slowest one so far, so the question
        waits for max(slowest, the rest) rather than for the first plus all the others."""
        if len(names) < 2:
            return []
        return [max(names, key=lambda name: self._cost.get(name, 0.0))]

    def _timed(self, name: str, text: str, timings: MutableMapping[str, float]) -> np.ndarray:
        started = time.perf_counter()
        vector = self._vector(name, text)
        elapsed = (time.perf_counter() - started) * 1000
        timings[f"encode_{name}"] = elapsed
        # a running mean of each encoder's cost (cache hits count too: they are rare)
        self._cost[name] = 0.9 * self._cost.get(name, elapsed) + 0.1 * elapsed
        return vector

    def _vector(self, name: str, text: str) -> np.ndarray:
        """One encoder's vector of ``text``, from the cache when it was asked recently."""
        cache = self._cache[name]
        with self._cache_lock:
            if text in cache:
                cache.move_to_end(text)
                return cache[text]
        batcher = self._batchers.get(name)
        if batcher is not None:
            vector = batcher.encode(text)
        else:
            vector = self.encoders[name].encode([text])[0]
        vector.flags.writeable = False  # shared by every reader of the record and the cache
        with self._cache_lock:
            cache[text] = vector
            if len(cache) > _CACHED_VECTORS:
                cache.popitem(last=False)
        return vector
