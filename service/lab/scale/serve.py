"""``serve_scale``: the whole service over a synthetic corpus of N chunks.

``python -m service.lab.scale N --serve`` runs, for each N:

1. ``_serve_build`` (own process): ``corpus.write_corpus``, then a real generation by
   ``build_index`` with ``StandInEncoder``s, timed and RSS-sampled per step by ``_Steps``
   (which stops a build that passes the memory guard);
2. ``_serve_probe`` (own process): loads it as ``citeqa serve`` does and measures
   ``Engine.ask`` per stage, BM25 and dense search, and memory;
3. ``serve_http.http_probe``: ``citeqa serve`` with each number of workers;

and checks the row against ``TARGETS``. ``serve_report`` renders the rows as markdown.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.config import Settings
from service.encode.encoders import Encoder, load_encoder, set_threads
from service.ingest.chunk import ChunkingParams
from service.lab.processes import in_fresh_process, load_average, meminfo, rollup, status_bytes
from service.lab.scale.corpus import Composition, write_corpus
from service.lab.scale.metrics import bytes_under, timed_searches
from service.lab.scale.serve_http import http_probe
from service.lab.scale.stand_in import StandInEncoder, real_vectors
from service.lab.scale.synthetic import SeedPool, seed_pool, synthetic_queries
from service.lab.scale.vectors import cache_key, encode_cached, sentence_bank
from service.lab.stats import p50_p99

if TYPE_CHECKING:  # imported where used: each runs in a process of its own
    from service.engine import Engine
    from service.index import CorpusIndex

MEMORY_GUARD = 18 * 2**30  # a build above this RSS (or under 1.5 GiB available) stops


class _Steps:
    """Wall seconds per named step, and the RSS peak seen in each (sampled every 0.2 s by a
    thread that also stops the process when it outgrows ``guard``)."""

    def __init__(self, guard: int, abort_file: Path | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.peaks: dict[str, int] = {}
        self.current = "start"
        self._guard = guard
        self._abort_file = abort_file
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            rss = status_bytes("VmRSS")
            step = self.current
            self.peaks[step] = max(self.peaks.get(step, 0), rss)
            available = meminfo("MemAvailable")
            if rss > self._guard or (available and available < 1.5 * 2**30):
                if self._abort_file is not None:
                    self._abort_file.write_text(
                        json.dumps(
                            {
                                "step": step,
                                "rss_bytes": rss,
                                "mem_available_bytes": available,
                                "elapsed_seconds": round(time.perf_counter() - self._started, 1),
                                "seconds": self.seconds,
                                "peak_rss_by_step": self.peaks,
                            }
                        )
                    )
                os._exit(3)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        outer, self.current = self.current, name
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.current = outer


@dataclass(frozen=True)
class _ServePlan:
    n: int
    seed: int
    settings: Settings  # corpus_dir and index_dir of this N
    cache_dir: Path  # encoded vectors, shared with run_scale and compare_dense
    seeds_dir: Path | None
    onnx_from: Path | None  # ONNX exports to copy instead of exporting again
    progress: bool
    guard: int
    force: bool


def _fresh(settings: Settings) -> Settings:
    """``settings`` as this process's ``Settings`` class has them: a pickled copy from a
    process that imported an older ``service.config`` lacks fields added since (defaults)."""
    given = {k: v for k, v in vars(settings).items() if k in Settings.model_fields}
    return Settings.model_construct(**given)


def _copy_onnx(source: Path | None, index_dir: Path) -> None:
    if source is None or not source.is_dir():
        return
    target = index_dir / "onnx"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.onnx"):
        if not (target / path.name).is_file():
            shutil.copyfile(path, target / path.name)


def _stand_ins(
    plan: _ServePlan, settings: Settings, pool: SeedPool, composition: Composition
) -> dict[str, StandInEncoder]:
    """The stand-in of each encoder: bank vectors (encoded once and cached), the cached
    vectors of the texts encoded before, and the real model for the rest."""
    encoders: dict[str, StandInEncoder] = {}
    bank_texts, _ = sentence_bank(pool, plan.seed)
    for name, model in settings.encoder_models().items():
        bank, _, _ = encode_cached(
            model,
            bank_texts,
            settings=settings,
            cache_dir=plan.cache_dir,
            key=cache_key(model, plan.seed, bank=True),
            progress=plan.progress,
        )

        def load_real(model: str = model) -> Encoder:
            return load_encoder(
                model,
                threads=settings.effective_threads(),
                backend=settings.dense_backend,
                cache_dir=settings.index_dir / "onnx",
            )

        real = real_vectors(plan.cache_dir, model, plan.seed, composition.blocks)
        encoders[name] = StandInEncoder(
            model,
            int(bank.shape[1]),
            bank=bank,
            composition=composition,
            real=real,
            load_real=load_real,
        )
    return encoders


def _serve_build(plan: _ServePlan) -> dict[str, Any]:
    """Write the corpus and build a real generation of it with stand-in encoders (own
    process): seconds and RSS peak per step (``build_index``'s steps, timed by ``_Steps``),
    what each text's vector is."""
    from service.index import build_index

    settings = _fresh(plan.settings)
    set_threads(settings.effective_threads())
    steps = _Steps(plan.guard, settings.index_dir.parent / "build-abort.json")
    params = ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    with steps.step("write corpus"):
        pool = seed_pool(plan.seeds_dir or settings.corpus_dir, params)
        composition = write_corpus(
            pool,
            plan.n,
            plan.seed,
            settings.corpus_dir,
            seeds_dir=plan.seeds_dir,
            params=params,
            progress=plan.progress,
        )
    _copy_onnx(plan.onnx_from, settings.index_dir)
    with steps.step("bank and cached vectors"):
        encoders = _stand_ins(plan, settings, pool, composition)
    try:
        with steps.step("build_index"):
            result = build_index(
                settings, force=plan.force, progress=plan.progress, encoders=encoders, steps=steps
            )
    finally:
        steps.close()
    seconds = dict(steps.seconds)
    inner = sum(
        v
        for k, v in seconds.items()
        if k not in ("write corpus", "bank and cached vectors", "build_index")
    )
    seconds["other (save files, sentence table, ...)"] = seconds["build_index"] - inner
    return {
        "built": result.built,
        "generation": str(result.path),
        "documents": result.documents,
        "chunks": result.chunks,
        "synthetic_documents": composition.documents,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "peak_rss_by_step": steps.peaks,
        "peak_rss_bytes": status_bytes("VmHWM"),
        "stand_ins": {
            name: {
                "model": encoder.name,
                "dim": encoder.dim,
                "counts": encoder.counts,
                "real_vectors_available": len(encoder._real),
            }
            for name, encoder in encoders.items()
        },
    }


def _p50_p99(values: Sequence[float]) -> dict[str, float]:
    p50, p99 = p50_p99(values)
    return {"p50": round(p50, 3), "p99": round(p99, 3)}


def _probe_load(settings: Settings, steps: _Steps) -> tuple[CorpusIndex, Engine]:
    """The generation and an engine over it, loaded as ``citeqa serve`` does, asked once."""
    from service.engine import Engine
    from service.index import load_index

    with steps.step("load_index"):
        index = load_index(settings, steps=steps)
    with steps.step("Engine"):
        engine = Engine.from_settings(settings, index=index)
    with steps.step("warm-up ask"):
        engine.ask("warm up 预热", top_k=1)
    return index, engine


def _probe_asks(
    engine: Engine, index: CorpusIndex, query_sets: dict[str, list[str]]
) -> dict[str, Any]:
    """``Engine.ask`` over every question: ms by stage and by set, what was answered, and
    whether every citation's quote is its document's text at its offsets."""
    stages: dict[str, list[float]] = {}
    per_set: dict[str, list[float]] = {}
    answered = abstained = mismatches = 0
    for set_name, questions in query_sets.items():
        for question in questions:
            result = engine.ask(question, top_k=5)
            for stage, ms in result.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
            per_set.setdefault(set_name, []).append(result.timings_ms["total"])
            if result.answer is None:
                abstained += 1
                continue
            answered += 1
            citation = result.answer.citation
            text = index.documents[citation.doc_id].text
            mismatches += text[citation.char_start : citation.char_end] != citation.quote
    return {
        "ask_ms": {stage: _p50_p99(values) for stage, values in stages.items()},
        "ask_total_ms_by_set": {name: _p50_p99(values) for name, values in per_set.items()},
        "answered": answered,
        "abstained": abstained,
        "citation_mismatches": mismatches,
    }


def _probe_searches(index: CorpusIndex, queries: list[str], depth: int) -> dict[str, Any]:
    """ms of BM25 and of each dense store's search, the query vectors encoded beforehand."""
    _, bm25_times = timed_searches(index.lexical.search, queries, depth)
    dense_times = {}
    for name, store in index.stores.items():
        vectors = index.encoders[name].encode(queries)
        store.search(vectors[0], depth)
        _, dense_times[name] = timed_searches(store.search, list(vectors), depth)
    return {
        "bm25_ms": _p50_p99(bm25_times),
        "dense_ms": {name: _p50_p99(times) for name, times in dense_times.items()},
    }


def _serve_probe(
    settings: Settings, query_sets: dict[str, list[str]], depth: int
) -> dict[str, Any]:
    """Load the generation as ``citeqa serve`` does (``load_index`` and ``Engine``, fresh
    process) and measure loading, memory, ``Engine.ask`` by stage, BM25 and dense search."""
    steps = _Steps(2**62)
    started = time.perf_counter()
    try:
        index, engine = _probe_load(_fresh(settings), steps)
    finally:
        steps.close()
    load_seconds = time.perf_counter() - started
    after_load = rollup()
    asks = _probe_asks(engine, index, query_sets)
    searches = _probe_searches(index, [q for qs in query_sets.values() for q in qs], depth)
    return {
        "load_seconds": round(load_seconds, 2),
        "load_steps": {k: round(v, 2) for k, v in steps.seconds.items()},
        "memory_after_load": after_load,
        "memory_after_queries": rollup(),
        **asks,
        **searches,
        "counts": dict(index.manifest["counts"]),
        "dense_index": index.manifest.get("dense_index", {}),
    }


TARGETS = {  # issue 8, at 1M chunks on the 2-core machine
    "ask_p50_ms": 40.0,
    "rss_bytes": 8 * 2**30,
    "bm25_p50_ms": 10.0,
    "dense_p50_ms": 10.0,
}


def serve_scale(
    sizes: Sequence[int],
    settings: Settings,
    work_dir: Path,
    progress: bool = True,
    *,
    questions: Sequence[str] = (),
    queries: int = 150,
    seed: int = 0,
    workers: Sequence[int] = (1, 2),
    seeds_dir: Path | None = None,
    onnx_from: Path | None = None,
    guard: int = MEMORY_GUARD,
    force: bool = False,
    ready_timeout: float = 3600.0,
) -> Iterator[dict[str, Any]]:
    """The whole service over a synthetic corpus of each size in ``sizes`` (one dict per
    size, as each finishes):

    1. ``write_corpus`` writes about N chunks as documents (and copies ``seeds_dir``);
    2. ``service.index.build_index`` builds a real generation with ``StandInEncoder``s
       (seconds and RSS peak per step; a build over ``guard`` RSS stops, and the result
       says in which step);
    3. a fresh process loads it as ``citeqa serve`` does and measures ``Engine.ask`` per
       stage over ``questions`` (the eval set) and ``queries`` held-out synthetic
       sentences, BM25 and dense search, RSS/PSS;
    4. ``citeqa serve`` with each number of ``workers``: one client's ``/ask`` p50/p99 and
       the server processes' summed RSS/PSS.
    """
    params = ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    seeds_dir = seeds_dir or settings.corpus_dir
    pool = seed_pool(seeds_dir, params)
    asked = {
        "eval questions": list(questions),
        "held-out synthetic": synthetic_queries(pool, queries, seed),
    }
    for n in sorted(sizes):
        directory = work_dir / f"serve-n{n}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "build-abort.json").unlink(missing_ok=True)
        scoped = settings.model_copy(
            update={"corpus_dir": directory / "corpus", "index_dir": directory / "index"}
        )
        plan = _ServePlan(
            n, seed, scoped, work_dir / "vectors", seeds_dir, onnx_from, progress, guard, force
        )
        row: dict[str, Any] = {
            "chunks_target": n,
            "seed": seed,
            "threads": settings.effective_threads(),
            "load_average": load_average(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        try:
            row["build"] = in_fresh_process(_serve_build, plan)
        except BrokenProcessPool:
            abort = directory / "build-abort.json"
            if not abort.is_file():
                raise
            row["build_aborted"] = json.loads(abort.read_text())
            yield row
            continue
        yield row | _measure_built(row["build"], scoped, asked, workers, ready_timeout)


def _measure_built(
    build: dict[str, Any],
    scoped: Settings,
    query_sets: dict[str, list[str]],
    workers: Sequence[int],
    ready_timeout: float,
) -> dict[str, Any]:
    """A built generation's bytes on disk, its in-process probe, its HTTP runs with each
    number of ``workers``, and the targets."""
    generation = Path(build["generation"])
    sizes = {
        path.relative_to(generation).as_posix(): path.stat().st_size
        for path in sorted(generation.rglob("*"))
        if path.is_file()
    }
    sizes["total"] = sum(sizes.values())
    sizes["corpus"] = bytes_under(scoped.corpus_dir)
    probe = in_fresh_process(_serve_probe, scoped, query_sets, scoped.retriever_depth)
    asked = [q for qs in query_sets.values() for q in qs]
    http = [http_probe(scoped, count, asked, ready_timeout) for count in workers]
    row = {"bytes_on_disk": sizes, "in_process": probe, "http": http}
    return row | {"targets": _serve_targets(row)}


def _serve_targets(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    probe = row["in_process"]
    largest_rss = max((run["rss_bytes"] for run in row["http"]), default=0)
    measured = {
        "ask_p50_ms": probe["ask_ms"]["total"]["p50"],
        "rss_bytes": largest_rss,
        "bm25_p50_ms": probe["bm25_ms"]["p50"],
        "dense_p50_ms": max(v["p50"] for v in probe["dense_ms"].values()),
    }
    return {
        name: {"value": value, "limit": TARGETS[name], "met": value <= TARGETS[name]}
        for name, value in measured.items()
    }
