"""The vector stores side by side (``citeqa bench --scale N --stores faiss milvus``).

``compare_stores`` takes, for each N, the multilingual (USE) vectors of ``service.lab.scale``'s N
synthetic chunks from its vector cache and puts them into FAISS (the index ``service.config``
picks for N) and Milvus Lite (FLAT, HNSW and IVF_FLAT: Milvus Lite has no IVF-PQ), each built in
one fresh process and searched in another: build seconds, bytes on disk, query p50/p99 at k =
the retriever depth on one thread, recall@10 against exact search, the largest error of a
returned score against the exact inner product, whether opening and searching left every file
as built, and the searching process's RSS. One ``StoreFigures`` per store and N.

Milvus is the ``milvus`` extra; it is imported only when a Milvus store is measured.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.encode.encoders import set_threads
from service.ingest.chunk import ChunkingParams
from service.lab.processes import in_fresh_process, load_average, status_bytes
from service.lab.scale import (
    cache_key,
    encode_cached,
    held_out,
    query_encoder,
    recall_per_set,
    seed_pool,
    synthetic_queries,
    synthetic_texts,
)
from service.lab.stats import Latency, latency
from service.store.base import DenseParams, VectorStore
from service.store.faiss_store import DenseIndex

__all__ = ["STORES", "STORE_QUERIES", "StoreFigures", "compare_stores"]

STORES = ("faiss", "milvus")  # what --stores accepts
STORE_QUERIES = 200  # held-out synthetic queries a store comparison asks (plus the questions)


@dataclass(frozen=True)
class StoreFigures:
    """One vector store holding the same N vectors as the others (``compare_stores``)."""

    chunks: int
    store: str  # "faiss" or "milvus-lite"
    index: str  # the index type in the store's own terms: "IndexIVFPQ", "HNSW", ...
    spec: dict[str, Any]  # kind and parameters (``DenseParams.spec_for``'s form)
    model: str  # the encoder whose vectors these are
    dim: int
    build_seconds: float  # vectors in memory to a store on disk (FAISS: train, add, save;
    # Milvus Lite: insert, flush, index, load, close)
    build_peak_rss_bytes: int  # the building process (the vectors themselves included)
    bytes_on_disk: int
    open_seconds: float  # from the files to the first answer
    k: int  # rows a query asks for: the retriever depth
    p50_ms: float  # one query a call, k rows, one thread, one client
    p99_ms: float
    recall_at_10: dict[str, float]  # per query set, against exact search
    max_score_error: float  # largest |score - exact inner product| of a row a query returned
    unchanged_by_open: bool  # every file the same (size, sha256) after open, search, close
    rss_bytes: int  # the searching process after opening and every query
    rss_growth_bytes: int  # the same, less what it held before opening the store
    rss_anon_bytes: int  # the part of rss_bytes not backed by files (mapped index files are
    # shared between workers and can be evicted; this cannot)
    exact_p50_ms: float  # FAISS IndexFlatIP over the same vectors and queries
    exact_p99_ms: float
    queries: dict[str, int]  # query set -> how many
    load_average: tuple[float, float, float]  # when this store's measurement began


def _files(directory: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``directory``: its size and sha256."""
    table = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        table[path.relative_to(directory).as_posix()] = (path.stat().st_size, digest)
    return table


def _store_configs(stores: Sequence[str]) -> list[tuple[str, str]]:
    """(store, kind) pairs to measure: FAISS with the index the settings pick for N
    ("auto"); Milvus Lite exact (FLAT), with HNSW (the settings' parameters) and with
    IVF_FLAT (the cells and probes of the settings' IVF-PQ): it has no IVF_PQ."""
    configs: list[tuple[str, str]] = []
    if "faiss" in stores:
        configs.append(("faiss", "auto"))
    if "milvus" in stores:
        configs += [("milvus-lite", "flat"), ("milvus-lite", "hnsw"), ("milvus-lite", "ivfflat")]
    return configs


def _milvus_spec(kind: str, params: DenseParams, n: int, dim: int) -> dict[str, Any]:
    """The spec a Milvus Lite store of ``kind`` is built with (``_store_configs``)."""
    if kind != "ivfflat":
        return params.spec_for(n, dim, kind)
    ivfpq = dataclasses.replace(params, pq_m=1).spec_for(n, dim, "ivfpq")  # any dim
    return {"kind": "ivfflat", "nlist": ivfpq["nlist"], "nprobe": ivfpq["nprobe"]}


_FAISS_NAMES = {"flat": "IndexFlatIP", "hnsw": "IndexHNSWFlat", "ivfpq": "IndexIVFPQ, re-scored"}


def _store_path(directory: Path, store: str) -> Path:
    # milvus.LITE_FILE, without importing pymilvus before the RSS baseline
    return directory / ("multilingual.faiss" if store == "faiss" else "milvus.db")


def _store_build(
    store: str, kind: str, params: DenseParams, vectors_file: Path, directory: Path, threads: int
) -> dict[str, Any]:
    """Build one store over the saved vectors (own process); its spec, seconds, peak RSS."""
    set_threads(threads)
    vectors = np.load(vectors_file, allow_pickle=False)
    directory.mkdir(parents=True)
    path = _store_path(directory, store)
    started = time.perf_counter()
    if store == "faiss":
        index = DenseIndex.build(vectors, kind=kind, params=params)
        index.save(path)
        spec, name = index.spec, _FAISS_NAMES[index.kind]
    else:
        from service.store.milvus import MilvusStore, milvus_index_type

        built = MilvusStore.build(
            vectors,
            uri=str(path),
            collection="multilingual",
            spec=_milvus_spec(kind, params, *vectors.shape),
        )
        built.close()  # drains Milvus Lite's background work: part of the build
        spec, name = built.spec, milvus_index_type(built.spec)
    seconds = time.perf_counter() - started
    return {"spec": spec, "index": name, "seconds": seconds, "peak": status_bytes("VmHWM")}


def _store_probe(
    store: str, spec: dict[str, Any], directory: Path, queries: np.ndarray, depth: int
) -> dict[str, Any]:
    """Open one store as the server would and search it once per query (own process)."""
    set_threads(1)
    # The service has FAISS loaded whichever store it uses, and Milvus Lite searches with
    # FAISS too: its first search's allocations come before the baseline. pymilvus and
    # milvus_lite are imported after it: they are part of what Milvus adds to a process.
    DenseIndex.build(np.eye(queries.shape[1], dtype=np.float32), kind="flat").search(
        queries[0], depth
    )
    before = status_bytes("VmRSS")
    path = _store_path(directory, store)
    started = time.perf_counter()
    opened: VectorStore
    if store == "faiss":
        opened = DenseIndex.load(path, spec)
    else:
        from service.store.milvus import MilvusStore

        opened = MilvusStore.open(uri=str(path), collection="multilingual", spec=spec)
    opened.search(queries[0], depth)
    open_seconds = time.perf_counter() - started
    for query in queries[:10]:  # warm code paths and caches
        opened.search(query, depth)
    found, scores, times = [], [], []
    for query in queries:
        started = time.perf_counter()
        hits = opened.search(query, depth)
        times.append((time.perf_counter() - started) * 1000)
        found.append([row for row, _ in hits])
        scores.append([score for _, score in hits])
    rss, anon = status_bytes("VmRSS"), status_bytes("RssAnon")
    close = getattr(opened, "close", None)
    if close is not None:
        close()
    return {"open_seconds": open_seconds, "times": times, "found": found, "scores": scores,
            "rss": rss, "anon": anon, "before": before}  # fmt: skip


def _max_score_error(
    vectors: np.ndarray,
    query_vectors: np.ndarray,
    found: Sequence[Sequence[int]],
    scores: Sequence[Sequence[float]],
) -> float:
    """The largest |score - exact inner product| over every row a query returned."""
    errors = [
        float(np.max(np.abs(vectors[list(rows)] @ query - np.asarray(given))))
        for query, rows, given in zip(query_vectors, found, scores, strict=True)
        if rows
    ]
    return max(errors, default=0.0)


def compare_stores(
    sizes: Sequence[int],
    stores: Sequence[str],
    settings: Settings,
    work_dir: Path,
    *,
    questions: Sequence[str] = (),
    queries: int = STORE_QUERIES,
    seed: int = 0,
    progress: bool = False,
) -> list[StoreFigures]:
    """For each N in ``sizes``: the multilingual (USE) vectors of ``service.lab.scale``'s N
    synthetic chunks (encoded once, cached under ``work_dir/vectors``) in each of ``stores``
    (``STORES``; see ``_store_configs``), side by side (``_measure_stores``), searched once
    for each of ``queries`` held-out synthetic queries and each of ``questions``."""
    if unknown := set(stores) - set(STORES):
        raise ValueError(f"unknown stores {sorted(unknown)}; use {', '.join(STORES)}")
    model = settings.multilingual_model
    pool = seed_pool(
        settings.corpus_dir, ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    )
    encoder = query_encoder(model, settings, threads=1)
    rows: list[StoreFigures] = []
    for n in sorted(sizes):
        texts = synthetic_texts(pool, n, seed)
        vectors, _, _ = encode_cached(
            model, texts, settings=settings, cache_dir=work_dir / "vectors",
            key=cache_key(model, seed), progress=progress,
        )  # fmt: skip
        query_sets = {"held-out": held_out(synthetic_queries(pool, queries, seed), texts)}
        if questions:
            query_sets["questions"] = list(questions)
        query_vectors = encoder.encode([q for qs in query_sets.values() for q in qs])
        rows += _measure_stores(
            vectors, query_vectors, query_sets, stores, settings, work_dir / f"stores-n{n}",
            progress=progress,
        )  # fmt: skip
    return rows


def _exact(
    vectors: np.ndarray, query_vectors: np.ndarray, depth: int
) -> tuple[list[list[int]], Latency]:
    """Exact search (FAISS ``IndexFlatIP``, one thread): each query's rows, and the times."""
    set_threads(1)
    exact = DenseIndex.build(vectors, kind="flat")
    rows, times = [], []
    for query in query_vectors:
        started = time.perf_counter()
        rows.append([row for row, _ in exact.search(query, depth)])
        times.append((time.perf_counter() - started) * 1000)
    return rows, latency(times)


@dataclass(frozen=True)
class _Measurement:
    """What every store of one N is measured against."""

    vectors: np.ndarray
    vectors_file: Path  # the same, saved for the building processes
    query_vectors: np.ndarray
    set_sizes: dict[str, int]  # query set -> how many, in the order of ``query_vectors``
    exact_rows: list[list[int]]
    exact: Latency
    settings: Settings


def _measure_store(store: str, kind: str, target: Path, m: _Measurement) -> StoreFigures:
    """Build one store in a fresh process, open and search it in another; its figures."""
    settings, depth = m.settings, m.settings.retriever_depth
    started_load = load_average()
    built = in_fresh_process(
        _store_build, store, kind, DenseParams.from_settings(settings), m.vectors_file, target,
        settings.effective_threads(),
    )  # fmt: skip
    files = _files(target)
    probed = in_fresh_process(_store_probe, store, built["spec"], target, m.query_vectors, depth)
    recalls = recall_per_set(m.vectors, m.query_vectors, probed["found"], m.exact_rows, m.set_sizes)
    figures = latency(probed["times"])
    return StoreFigures(
        chunks=len(m.vectors),
        store=store,
        index=built["index"],
        spec=built["spec"],
        model=settings.multilingual_model,
        dim=int(m.vectors.shape[1]),
        build_seconds=round(built["seconds"], 3),
        build_peak_rss_bytes=built["peak"],
        bytes_on_disk=sum(size for size, _ in files.values()),
        open_seconds=round(probed["open_seconds"], 3),
        k=depth,
        p50_ms=figures.p50_ms,
        p99_ms=figures.p99_ms,
        recall_at_10={name: round(v, 4) for name, v in recalls.items()},
        max_score_error=_max_score_error(
            m.vectors, m.query_vectors, probed["found"], probed["scores"]
        ),
        unchanged_by_open=_files(target) == files,
        rss_bytes=probed["rss"],
        rss_growth_bytes=probed["rss"] - probed["before"],
        rss_anon_bytes=probed["anon"],
        exact_p50_ms=m.exact.p50_ms,
        exact_p99_ms=m.exact.p99_ms,
        queries=m.set_sizes,
        load_average=started_load,
    )


def _measure_stores(
    vectors: np.ndarray,
    query_vectors: np.ndarray,
    query_sets: Mapping[str, Sequence[str]],
    stores: Sequence[str],
    settings: Settings,
    directory: Path,
    *,
    progress: bool = False,
) -> list[StoreFigures]:
    """``vectors`` (the settings' multilingual model's) in each of ``stores``, one row each.
    Every store is built in a fresh process (``effective_threads``) and searched in another
    (one thread), once for each of ``query_vectors`` (``query_sets``' items in order), at
    the retriever depth; recall@10 and score errors are against exact search over the same
    vectors. ``directory`` holds the stores while they are measured, and is removed."""
    exact_rows, exact = _exact(vectors, query_vectors, settings.retriever_depth)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    vectors_file = directory / "vectors.npy"
    np.save(vectors_file, vectors, allow_pickle=False)
    set_sizes = {name: len(items) for name, items in query_sets.items()}
    measurement = _Measurement(
        vectors, vectors_file, query_vectors, set_sizes, exact_rows, exact, settings
    )
    rows: list[StoreFigures] = []
    try:
        for store, kind in _store_configs(stores):
            if progress:
                print(
                    f"stores: {store} ({kind}) over {len(vectors)} vectors ...",
                    file=sys.stderr,
                    flush=True,
                )
            target = directory / f"{store}-{kind}"
            rows.append(_measure_store(store, kind, target, measurement))
            shutil.rmtree(target, ignore_errors=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return rows
