"""``run_scale``: what a synthetic corpus of N chunks costs to build, hold and search.

For each N, ``_build`` builds what ``citeqa build`` builds (the encoders' vectors, the
dense indexes of the kind ``service.store.faiss_store`` picks for N, BM25) and saves it; then
``_probe``, in a fresh process that loads the files the way the server does
(memory-mapped, query threads), measures:

- seconds per part: generating, encoding per encoder, each dense index, BM25, saving;
- bytes on disk per part; the build's peak RSS; the serving process's RSS with the indexes
  and the query encoders loaded, after every query;
- dense search p50/p99 (k = the retriever depth, one thread) and recall@10 against exact
  search (``IndexFlatIP`` over the same vectors) on held-out queries; the exact search's
  own p50/p99 beside it;
- each dense index's memory (RSS growth when it is read into memory without mmap) against
  its theoretical bytes (``service.store.faiss_store.theoretical_bytes``);
- BM25 query p50/p99 (``LexicalIndex.search``, same depth);
- ``/cite``'s first stage (``service.lab.scale.cite``): quotes drawn from the chunks,
  verbatim and with a word changed, searched by BM25 and matched by the service's matcher
  in the passages found: p50/p99 and the share found with the right kind.

The English encoder is skipped above ``dense_encoder_limit`` chunks, and above
``multilingual_encoder_limit`` the multilingual vectors are approximated
(``vectors.approximate_vectors``); the result says which, and how long encoding would have
taken at the measured rate. The figures are a ``ScaleResult`` per N, with a
``DenseFigures`` per dense index (``compare_dense`` reports those too).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.encode.encoders import set_threads
from service.ingest.chunk import ChunkingParams
from service.lab.processes import in_fresh_process, load_average, status_bytes
from service.lab.scale.cite import ScaleQuote, cite_probe, scale_quotes
from service.lab.scale.metrics import (
    bytes_under,
    exact_search,
    index_memory,
    query_encoder,
    recall_per_set,
    timed_searches,
)
from service.lab.scale.synthetic import held_out, seed_pool, synthetic_queries, synthetic_texts
from service.lab.scale.vectors import (
    approximate_vectors,
    cache_key,
    encode_cached,
    encoding_estimate,
    sentence_bank,
)
from service.lab.stats import p50_p99
from service.store.base import DenseParams
from service.store.bm25 import LexicalIndex
from service.store.faiss_store import DenseIndex, theoretical_bytes
from service.tuned import load_tuned


@dataclass(frozen=True)
class DenseFigures:
    """One dense index at one N."""

    model: str
    dim: int
    spec: dict[str, Any]  # kind and parameters, as the manifest records them
    build_seconds: float
    bytes_on_disk: int
    memory_bytes: int  # RSS growth when read into memory without mmap
    theoretical_bytes: int  # service.store.faiss_store.theoretical_bytes
    memory_ratio: float
    p50_ms: float  # search at k = retriever depth, one thread, loaded as the server does
    p99_ms: float
    exact_p50_ms: float  # IndexFlatIP over the same vectors, same queries and k
    exact_p99_ms: float
    recall_at_10: dict[str, float]  # per query set, ties with the 10th exact score count


@dataclass(frozen=True)
class ScaleResult:
    """What a synthetic corpus of ``chunks`` chunks costs to build, hold and search."""

    chunks: int
    seed: int
    queries: dict[str, int]  # query set -> how many
    encoders: dict[str, str]  # index name -> model, for the encoders that ran
    approximated: tuple[str, ...]  # index names whose vectors are approximated
    skipped: tuple[str, ...]  # what was not measured, and why
    seconds: dict[str, float]  # per part of the build
    encoded_now: dict[str, int]  # texts encoded in this run (the rest came from the cache)
    bytes_on_disk: dict[str, int]  # per part, and "total"
    rss_build_peak_bytes: int
    rss_service_bytes: int  # serving process: indexes (mmap) and query encoders, after queries
    rss_service_anon_bytes: int  # the part that is not file-backed (not shared by workers)
    dense: dict[str, DenseFigures]
    bm25_p50_ms: float
    bm25_p99_ms: float
    threads: int
    load_average: tuple[float, float, float]  # of the machine when the measurement began
    cite: dict[str, Any] = field(default_factory=dict)  # /cite's BM25 stage (``cite_probe``)


@dataclass(frozen=True)
class _Plan:
    n: int
    seed: int
    settings: Settings
    directory: Path  # the built files of this N
    cache_dir: Path  # encoded vectors, shared by every N
    encoders: dict[str, str]
    query_sets: dict[str, list[str]]
    progress: bool
    approximate: frozenset[str] = frozenset()  # index names whose vectors are approximated


def _build(plan: _Plan) -> dict[str, Any]:
    """Generate, encode, index and save the corpus of ``plan.n`` chunks (own process)."""
    settings = plan.settings
    set_threads(settings.effective_threads())
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    pool = seed_pool(
        settings.corpus_dir, ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    )
    texts = synthetic_texts(pool, plan.n, plan.seed)
    seconds["generate"] = time.perf_counter() - started
    plan.directory.mkdir(parents=True, exist_ok=True)
    encoded_now, specs, dims = {}, {}, {}
    params = DenseParams.from_settings(settings)
    for name, model in plan.encoders.items():
        if name in plan.approximate:
            bank_texts, offsets = sentence_bank(pool, plan.seed)
            bank, bank_seconds, encoded_now[name] = encode_cached(
                model, bank_texts, settings=settings, cache_dir=plan.cache_dir,
                key=cache_key(model, plan.seed, bank=True), progress=plan.progress,
            )  # fmt: skip
            started = time.perf_counter()
            vectors = approximate_vectors(pool, plan.n, plan.seed, bank, offsets, plan.progress)
            seconds[f"encode {name}"] = bank_seconds + time.perf_counter() - started
        else:
            vectors, seconds[f"encode {name}"], encoded_now[name] = encode_cached(
                model, texts, settings=settings, cache_dir=plan.cache_dir,
                key=cache_key(model, plan.seed), progress=plan.progress,
            )  # fmt: skip
        started = time.perf_counter()
        index = DenseIndex.build(vectors, params=params, progress=plan.progress)
        seconds[f"index {name}"] = time.perf_counter() - started
        index.save(plan.directory / f"{name}.faiss")
        np.save(plan.directory / f"exact.{name}.npy", vectors, allow_pickle=False)
        specs[name], dims[name] = index.spec, index.dim
        del index, vectors
    started = time.perf_counter()
    lexical = LexicalIndex.build(texts)
    seconds["bm25"] = time.perf_counter() - started
    started = time.perf_counter()
    (plan.directory / "bm25").mkdir(exist_ok=True)
    lexical.save(plan.directory / "bm25")
    seconds["save bm25"] = time.perf_counter() - started
    return {
        "seconds": seconds,
        "encoded_now": encoded_now,
        "specs": specs,
        "dims": dims,
        "rss_build_peak_bytes": status_bytes("VmHWM"),
        "query_sets": {name: held_out(qs, texts) for name, qs in plan.query_sets.items()},
        "quotes": scale_quotes(texts, CITE_QUOTES, plan.seed),
    }


CITE_QUOTES = 100  # of each kind (verbatim, a word changed)


def _probe(
    plan: _Plan, specs: dict[str, dict[str, Any]], quotes: Sequence[ScaleQuote]
) -> dict[str, Any]:
    """Load the built files as the server does and query them (own process)."""
    settings = plan.settings
    threads = min(settings.query_threads, settings.effective_threads())
    set_threads(threads)
    depth = settings.retriever_depth
    queries = [q for texts in plan.query_sets.values() for q in texts]
    # each index alone, read into memory: its own footprint
    figures: dict[str, Any] = {
        "dense": {
            name: {"memory_bytes": index_memory(plan.directory / f"{name}.faiss", spec)}
            for name, spec in specs.items()
        }
    }

    # as the server holds them: mapped indexes, mapped BM25, the query encoders
    dense = {
        name: DenseIndex.load(plan.directory / f"{name}.faiss", spec)
        for name, spec in specs.items()
    }
    lexical = LexicalIndex.load(plan.directory / "bm25")
    query_vectors = {
        name: query_encoder(model, settings, threads).encode(queries)
        for name, model in plan.encoders.items()
    }
    found = {}
    for name, index in dense.items():
        index.search(query_vectors[name][0], depth)  # first touch of the mapped file
        found[name], times = timed_searches(index.search, list(query_vectors[name]), depth)
        figures["dense"][name] |= dict(zip(("p50_ms", "p99_ms"), p50_p99(times), strict=True))
    _, times = timed_searches(lexical.search, queries, depth)
    figures["bm25_p50_ms"], figures["bm25_p99_ms"] = p50_p99(times)
    figures["rss_service_bytes"] = status_bytes("VmRSS")
    figures["rss_service_anon_bytes"] = status_bytes("RssAnon")
    figures["cite"] = _cite(plan, lexical, quotes)
    del dense, lexical

    # exact search over the same vectors, for recall and as the baseline
    set_sizes = {name: len(texts) for name, texts in plan.query_sets.items()}
    for name in specs:
        vectors = np.load(plan.directory / f"exact.{name}.npy", allow_pickle=False)
        exact, p50, p99 = exact_search(vectors, query_vectors[name], depth)
        figures["dense"][name] |= {
            "exact_p50_ms": p50,
            "exact_p99_ms": p99,
            "recall_at_10": recall_per_set(
                vectors, query_vectors[name], found[name], exact, set_sizes
            ),
        }
        del vectors
    return figures


def _cite(plan: _Plan, lexical: LexicalIndex, quotes: Sequence[ScaleQuote]) -> dict[str, Any]:
    """/cite's BM25 stage over this corpus, with the service's fitted constants (after the
    memory figures: the chunk texts, made again here, are the candidates' text)."""
    settings = plan.settings
    pool = seed_pool(
        settings.corpus_dir, ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    )
    texts = synthetic_texts(pool, plan.n, plan.seed)
    tuning = load_tuned(settings.tuned_file).cite
    depth = max(tuning.passages_read, settings.retriever_depth)
    return cite_probe(lexical, texts, quotes, tuning.passages_read, depth, tuning.near)


@dataclass(frozen=True)
class _Limits:
    """Up to how many chunks each encoder encodes (above: skipped, or approximated)."""

    dense: int
    multilingual: int


def _plan(
    n: int, settings: Settings, work_dir: Path, limits: _Limits, base: _Plan
) -> tuple[_Plan, list[str]]:
    """What to build for ``n`` chunks (``base`` with this N's folder, encoders and
    approximations), and what will not be measured and why."""
    encoders = {"multilingual": settings.multilingual_model}
    skipped = []
    cache_dir, seed = base.cache_dir, base.seed
    if n <= limits.dense:
        encoders["dense"] = settings.dense_model
    else:
        skipped.append(
            f"dense ({settings.dense_model}): not encoded above {limits.dense} "
            f"chunks{encoding_estimate(cache_dir, settings.dense_model, seed, n)}"
        )
    approximate = frozenset({"multilingual"} if n > limits.multilingual else ())
    if approximate:
        skipped.append(
            f"multilingual ({settings.multilingual_model}): vectors approximated from "
            f"encoded sentence variants above {limits.multilingual} chunks"
            f"{encoding_estimate(cache_dir, settings.multilingual_model, seed, n)}"
        )
    plan = replace(
        base, n=n, directory=work_dir / f"n{n}", encoders=encoders, approximate=approximate
    )
    return plan, skipped


def _bytes_on_disk(plan: _Plan) -> dict[str, int]:
    """Bytes per built part (and IVF-PQ's float copy), and their ``total``."""
    directory = plan.directory
    sizes = {name: bytes_under(directory / f"{name}.faiss") for name in plan.encoders}
    sizes["bm25"] = bytes_under(directory / "bm25")
    for name in plan.encoders:
        if (directory / f"{name}.vectors.npy").is_file():
            sizes[f"{name} float copy"] = bytes_under(directory / f"{name}.vectors.npy")
    sizes["total"] = sum(sizes.values())
    return sizes


def _dense_figures(
    plan: _Plan, built: dict[str, Any], probed: dict[str, Any], sizes: dict[str, int]
) -> dict[str, DenseFigures]:
    dense = {}
    for name, model in plan.encoders.items():
        spec, dim, got = built["specs"][name], built["dims"][name], probed["dense"][name]
        theory = theoretical_bytes(spec, plan.n, dim)
        dense[name] = DenseFigures(
            model=model,
            dim=dim,
            spec=spec,
            build_seconds=round(built["seconds"][f"index {name}"], 3),
            bytes_on_disk=sizes[name],
            memory_bytes=got["memory_bytes"],
            theoretical_bytes=theory,
            memory_ratio=round(got["memory_bytes"] / theory, 3),
            p50_ms=round(got["p50_ms"], 3),
            p99_ms=round(got["p99_ms"], 3),
            exact_p50_ms=round(got["exact_p50_ms"], 3),
            exact_p99_ms=round(got["exact_p99_ms"], 3),
            recall_at_10={k: round(v, 4) for k, v in got["recall_at_10"].items()},
        )
    return dense


def _measure(plan: _Plan, skipped: Sequence[str]) -> ScaleResult:
    """Build the plan in one fresh process and probe it in another."""
    started_load = load_average()
    built = in_fresh_process(_build, plan)
    plan = replace(plan, query_sets=built["query_sets"])  # without queries that are chunks
    probed = in_fresh_process(_probe, plan, built["specs"], built["quotes"])
    sizes = _bytes_on_disk(plan)
    return ScaleResult(
        chunks=plan.n,
        seed=plan.seed,
        queries={k: len(v) for k, v in plan.query_sets.items()},
        encoders=plan.encoders,
        approximated=tuple(sorted(plan.approximate)),
        skipped=tuple(skipped),
        seconds={k: round(v, 3) for k, v in built["seconds"].items()},
        encoded_now=built["encoded_now"],
        bytes_on_disk=sizes,
        rss_build_peak_bytes=built["rss_build_peak_bytes"],
        rss_service_bytes=probed["rss_service_bytes"],
        rss_service_anon_bytes=probed["rss_service_anon_bytes"],
        dense=_dense_figures(plan, built, probed, sizes),
        bm25_p50_ms=round(probed["bm25_p50_ms"], 3),
        bm25_p99_ms=round(probed["bm25_p99_ms"], 3),
        threads=plan.settings.effective_threads(),
        load_average=started_load,
        cite=probed["cite"],
    )


def run_scale(
    sizes: Sequence[int],
    settings: Settings,
    work_dir: Path,
    progress: bool = True,
    *,
    queries: int = 200,
    seed: int = 0,
    questions: Sequence[str] = (),
    dense_encoder_limit: int = 10_000,
    multilingual_encoder_limit: int = 100_000,
) -> list[ScaleResult]:
    """Build and measure a synthetic corpus of each size in ``sizes`` (see the module
    docstring); files go under ``work_dir`` (vectors are cached there across runs).

    ``queries`` held-out synthetic sentences are the query set ``"held-out"``; real
    ``questions`` (e.g. the eval questions) form a second set, ``"questions"``. The English
    encoder runs only up to ``dense_encoder_limit`` chunks (it is the slowest); above
    ``multilingual_encoder_limit`` chunks the multilingual vectors are approximated
    (``approximate_vectors``) and the result says so, with the time encoding them would
    take at the rate measured for the cached ones.
    """
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive chunk counts, not {list(sizes)!r}")
    pool = seed_pool(
        settings.corpus_dir, ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    )
    query_sets = {"held-out": synthetic_queries(pool, queries, seed)}
    if questions:
        query_sets["questions"] = list(questions)
    limits = _Limits(dense_encoder_limit, multilingual_encoder_limit)
    base = _Plan(
        n=0, seed=seed, settings=settings, directory=work_dir, cache_dir=work_dir / "vectors",
        encoders={}, query_sets=query_sets, progress=progress,
    )  # fmt: skip
    results = []
    for n in sorted(sizes):
        plan, skipped = _plan(n, settings, work_dir, limits, base)
        results.append(_measure(plan, skipped))
    return results
