"""Measuring helpers shared by ``run_scale``, ``compare_dense`` and ``serve_scale``.

A fresh interpreter per measurement (``_in_process``, so its memory is its own); this
process's memory from /proc (``_status``, ``_meminfo``, ``_rollup``); bytes on disk; timed
searches and their p50/p99; exact search (``IndexFlatIP``) and recall@k against it
(``recall_at_k``: ties with the k-th exact score count); the encoder the server encodes
questions with.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.encode.encoders import Encoder, load_encoder
from service.store.faiss_store import DenseIndex

RECALL_K = 10


def _status(field_name: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _percentiles(values_ms: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(values_ms)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return statistics.median(ordered), p99


def _bytes_under(path: Path) -> int:
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


def _in_process(function: Any, *args: Any) -> Any:
    """Run ``function(*args)`` in a fresh interpreter, so its memory is its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _timed(search: Any, items: Sequence[Any], depth: int) -> tuple[list[list[int]], list[float]]:
    rows, times = [], []
    for item in items:
        started = time.perf_counter()
        hits = search(item, depth)
        times.append((time.perf_counter() - started) * 1000)
        rows.append([row for row, _ in hits])
    return rows, times


def _index_memory(path: Path, spec: dict[str, Any]) -> int:
    """RSS growth of this process when the index at ``path`` is read into memory."""
    before = _status("VmRSS")
    index = DenseIndex.load(path, spec, mmap=False)
    grown = _status("VmRSS") - before
    del index
    return grown


def _exact_search(
    vectors: np.ndarray, query_vectors: np.ndarray, depth: int
) -> tuple[list[list[int]], float, float]:
    """Exact search (``IndexFlatIP``, this process's threads) over ``vectors``: the rows
    found for each query, and its p50 and p99 in milliseconds."""
    exact = DenseIndex.build(vectors, kind="flat")
    rows, times = _timed(exact.search, list(query_vectors), depth)
    return (rows, *_percentiles(times))


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


def _query_encoder(model: str, settings: Settings, threads: int) -> Encoder:
    """The encoder the server encodes questions with."""
    return load_encoder(
        model,
        threads=threads,
        backend=settings.dense_backend,
        cache_dir=settings.index_dir / "onnx",
        int8=settings.query_int8,
    )


def _meminfo(field_name: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _rollup() -> dict[str, int]:
    """This process's memory from /proc/self/smaps_rollup (Rss, Pss, shared, private,
    anonymous), in bytes."""
    wanted = {
        "Rss",
        "Pss",
        "Shared_Clean",
        "Shared_Dirty",
        "Private_Clean",
        "Private_Dirty",
        "Anonymous",
    }
    values = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        if name in wanted:
            values[name.lower()] = int(rest.split()[0]) * 1024
    return values
