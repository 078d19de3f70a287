"""Measuring helpers shared by ``run_scale``, ``compare_dense``, ``serve_scale`` and the bench's
store comparison: bytes on disk (``bytes_under``); timed searches (``timed_searches``); an
index's own memory (``index_memory``); exact search (``IndexFlatIP``, ``exact_search``) and
recall@k against it (``recall_at_k``: ties with the k-th exact score count; ``recall_per_set``);
the encoder the server encodes questions with (``query_encoder``).

Fresh processes and /proc memory are in ``service.lab.processes``, percentiles in
``service.lab.stats``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.encode.encoders import Encoder, load_encoder
from service.lab.processes import status_bytes
from service.lab.stats import p50_p99
from service.store.faiss_store import DenseIndex

RECALL_K = 10


def bytes_under(path: Path) -> int:
    """The bytes of the file at ``path``, or of every file under the folder ``path``."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def recall_at_k(
    found: Sequence[int], exact: Sequence[int], score: Callable[[int], float], k: int
) -> float:
    """Share of the exact top ``k`` that ``found`` (an approximate top ``k``) holds. A row
    not in the exact list still counts when its exact score ties the ``k``-th one (equal
    vectors come in any order). ``score(row)`` is a row's exact score for this query."""
    exact_top = list(exact)[:k]
    if not exact_top:
        return 1.0
    bar = score(exact_top[-1]) - 1e-6
    wanted = set(exact_top)
    hits = sum(1 for row in list(found)[:k] if row in wanted or score(row) >= bar)
    return min(hits, len(exact_top)) / len(exact_top)


def timed_searches(
    search: Any, items: Sequence[Any], depth: int
) -> tuple[list[list[int]], list[float]]:
    """``search(item, depth)`` for each of ``items``: the rows each found, and the
    milliseconds each took."""
    rows, times = [], []
    for item in items:
        started = time.perf_counter()
        hits = search(item, depth)
        times.append((time.perf_counter() - started) * 1000)
        rows.append([row for row, _ in hits])
    return rows, times


def index_memory(path: Path, spec: dict[str, Any]) -> int:
    """RSS growth of this process when the index at ``path`` is read into memory."""
    before = status_bytes("VmRSS")
    index = DenseIndex.load(path, spec, mmap=False)
    grown = status_bytes("VmRSS") - before
    del index
    return grown


def exact_search(
    vectors: np.ndarray, query_vectors: np.ndarray, depth: int
) -> tuple[list[list[int]], float, float]:
    """Exact search (``IndexFlatIP``, this process's threads) over ``vectors``: the rows
    found for each query, and its p50 and p99 in milliseconds."""
    exact = DenseIndex.build(vectors, kind="flat")
    rows, times = timed_searches(exact.search, list(query_vectors), depth)
    return (rows, *p50_p99(times))


def recall_per_set(
    vectors: np.ndarray,
    query_vectors: np.ndarray,
    found: Sequence[Sequence[int]],
    exact: Sequence[Sequence[int]],
    set_sizes: dict[str, int],
) -> dict[str, float]:
    """Mean recall@10 of ``found`` against ``exact`` per query set (queries in the order of
    ``set_sizes``)."""
    recalls: dict[str, list[float]] = {}
    offset = 0
    for set_name, size in set_sizes.items():
        for i in range(offset, offset + size):

            def score(row: int, query: np.ndarray = query_vectors[i]) -> float:
                return float(vectors[row] @ query)

            recalls.setdefault(set_name, []).append(
                recall_at_k(found[i], exact[i], score, RECALL_K)
            )
        offset += size
    return {name: float(np.mean(values)) for name, values in recalls.items()}


def query_encoder(model: str, settings: Settings, threads: int) -> Encoder:
    """The encoder the server encodes questions with."""
    return load_encoder(
        model,
        threads=threads,
        backend=settings.dense_backend,
        cache_dir=settings.index_dir / "onnx",
        int8=settings.query_int8,
    )
