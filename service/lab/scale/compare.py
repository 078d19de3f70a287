"""``compare_dense``: one corpus's vectors behind each index of ``comparison_grid``.

``python -m service.lab.scale N --compare [--approximate]`` puts the multilingual vectors of
the synthetic corpus of N chunks (encoded, or approximated) behind HNSW and IVF-PQ at
several parameters and measures each (``DenseFigures``): the figures behind the dense
defaults in ``service.config``. Specs that differ only in search parameters share a build.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.encode.encoders import set_threads
from service.ingest.chunk import ChunkingParams
from service.lab.processes import in_fresh_process
from service.lab.scale.measure import DenseFigures
from service.lab.scale.metrics import (
    bytes_under,
    exact_search,
    index_memory,
    query_encoder,
    recall_per_set,
    timed_searches,
)
from service.lab.scale.synthetic import SeedPool, seed_pool, synthetic_queries, synthetic_texts
from service.lab.scale.vectors import approximate_vectors, cache_key, encode_cached, sentence_bank
from service.lab.stats import p50_p99
from service.store.base import DenseParams
from service.store.faiss_store import DenseIndex, theoretical_bytes

_SEARCH_KEYS = frozenset({"efSearch", "nprobe", "refine"})


def _params_for(spec: dict[str, Any]) -> DenseParams:
    """Settings that build the index of ``spec`` (its search parameters are applied at
    load)."""
    defaults = DenseParams.defaults()
    if spec["kind"] == "hnsw":
        return replace(defaults, hnsw_m=spec["M"], hnsw_ef_construction=spec["efConstruction"])
    if spec["kind"] == "ivfpq":
        return replace(defaults, ivf_nlist=spec["nlist"], pq_m=spec["pq_m"])
    return defaults


def _probe_candidates(
    path: Path, specs: Sequence[dict[str, Any]], query_vectors: np.ndarray, depth: int
) -> list[dict[str, Any]]:
    """One built index searched with each spec's search parameters (own process)."""
    set_threads(1)
    memory = index_memory(path, specs[0])
    figures = []
    for spec in specs:
        index = DenseIndex.load(path, spec)
        index.search(query_vectors[0], depth)
        found, times = timed_searches(index.search, list(query_vectors), depth)
        p50, p99 = p50_p99(times)
        figures.append({"memory_bytes": memory, "p50_ms": p50, "p99_ms": p99, "found": found})
        del index
    return figures


def _corpus_vectors(
    pool: SeedPool, n: int, settings: Settings, work_dir: Path, progress: bool, seed: int,
    approximate: bool,
) -> np.ndarray:  # fmt: skip
    """The multilingual vectors of the ``n`` synthetic chunks: encoded (cached), or with
    ``approximate`` the stand-ins of ``approximate_vectors``."""
    model, cache_dir = settings.multilingual_model, work_dir / "vectors"
    if approximate:
        bank_texts, offsets = sentence_bank(pool, seed)
        bank, _, _ = encode_cached(
            model, bank_texts, settings=settings, cache_dir=cache_dir,
            key=cache_key(model, seed, bank=True), progress=progress,
        )  # fmt: skip
        return approximate_vectors(pool, n, seed, bank, offsets, progress)
    vectors, _, _ = encode_cached(
        model, synthetic_texts(pool, n, seed), settings=settings, cache_dir=cache_dir,
        key=cache_key(model, seed), progress=progress,
    )  # fmt: skip
    return vectors


_Probed = tuple[dict[str, Any], float, int, dict[str, Any]]  # spec, build s, bytes, figures


def _build_and_probe(
    vectors: np.ndarray,
    query_vectors: np.ndarray,
    candidates: Sequence[dict[str, Any]],
    settings: Settings,
    directory: Path,
    progress: bool,
) -> list[_Probed]:
    """Each candidate's index built here (specs that differ only in search parameters
    share one build) and searched in a fresh process."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for spec in candidates:
        build_part = {k: v for k, v in spec.items() if k not in _SEARCH_KEYS}
        groups.setdefault(json.dumps(build_part, sort_keys=True), []).append(spec)
    results: list[_Probed] = []
    for number, specs in enumerate(groups.values()):
        set_threads(settings.effective_threads())
        started = time.perf_counter()
        index = DenseIndex.build(
            vectors, kind=specs[0]["kind"], params=_params_for(specs[0]), progress=progress
        )
        build_seconds = time.perf_counter() - started
        path = directory / f"candidate-{number}.faiss"
        index.save(path)
        del index
        size = bytes_under(path)
        probed = in_fresh_process(
            _probe_candidates, path, specs, query_vectors, settings.retriever_depth
        )
        results += [
            (spec, build_seconds, size, got) for spec, got in zip(specs, probed, strict=True)
        ]
    return results


def compare_dense(
    n: int,
    candidates: Sequence[dict[str, Any]],
    settings: Settings,
    work_dir: Path,
    progress: bool = True,
    *,
    queries: int = 200,
    seed: int = 0,
    questions: Sequence[str] = (),
    approximate: bool = False,
) -> list[DenseFigures]:
    """The multilingual encoder's vectors of the synthetic corpus of ``n`` chunks (encoded,
    or with ``approximate`` the stand-ins of ``approximate_vectors``) behind each candidate
    index spec (``DenseParams.spec_for``'s form): build seconds, bytes, memory against
    theory, search p50/p99 at the retriever depth on one thread, recall@10 against exact
    search. Specs that differ only in search parameters share one build."""
    model = settings.multilingual_model
    pool = seed_pool(
        settings.corpus_dir, ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    )
    directory = work_dir / f"compare-n{n}{'-approximated' if approximate else ''}"
    directory.mkdir(parents=True, exist_ok=True)
    set_threads(settings.effective_threads())
    vectors = _corpus_vectors(pool, n, settings, work_dir, progress, seed, approximate)
    query_texts = {"held-out": synthetic_queries(pool, queries, seed)}
    if questions:
        query_texts["questions"] = list(questions)
    encoder = query_encoder(model, settings, settings.effective_threads())
    query_vectors = encoder.encode([q for qs in query_texts.values() for q in qs])
    results = _build_and_probe(vectors, query_vectors, candidates, settings, directory, progress)
    set_threads(1)
    set_sizes = {name: len(texts) for name, texts in query_texts.items()}
    label = f"{model} (approximated)" if approximate else model
    exact, exact_p50, exact_p99 = exact_search(vectors, query_vectors, settings.retriever_depth)
    figures = []
    for spec, build_seconds, size, got in results:
        recall = recall_per_set(vectors, query_vectors, got["found"], exact, set_sizes)
        theory = theoretical_bytes(spec, n, vectors.shape[1])
        figures.append(
            DenseFigures(
                model=label,
                dim=int(vectors.shape[1]),
                spec=spec,
                build_seconds=round(build_seconds, 3),
                bytes_on_disk=size,
                memory_bytes=got["memory_bytes"],
                theoretical_bytes=theory,
                memory_ratio=round(got["memory_bytes"] / theory, 3),
                p50_ms=round(got["p50_ms"], 3),
                p99_ms=round(got["p99_ms"], 3),
                exact_p50_ms=round(exact_p50, 3),
                exact_p99_ms=round(exact_p99, 3),
                recall_at_10={k: round(v, 4) for k, v in recall.items()},
            )
        )
    return figures


def comparison_grid(n: int, dim: int) -> list[dict[str, Any]]:
    """The candidates ``python -m service.lab.scale --compare`` measures: HNSW with M 16 and 32
    at several efSearch, IVF-PQ (about 4 sqrt(n) cells, 64-byte codes) at several nprobe,
    with and without re-scoring. (FAISS keeps max(efSearch, k) candidates, and the server
    asks for ``retriever_depth`` = 50: efSearch under 50 changes nothing there.)"""
    defaults = DenseParams.defaults()
    specs = []
    for m in (16, 32):
        for ef in (64, 128, 256, 512):
            params = replace(defaults, hnsw_m=m, hnsw_ef_search=ef)
            specs.append(params.spec_for(n, dim, "hnsw"))
    for nprobe in (16, 32, 64):
        for refine in (1, 10):
            params = replace(defaults, pq_m=64, ivf_nprobe=nprobe, ivfpq_refine=refine)
            specs.append(params.spec_for(n, dim, "ivfpq"))
    return specs
