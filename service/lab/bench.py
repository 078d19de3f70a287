"""Bench: the benchmark suite behind ``citeqa bench``.

What it measures, on the configured corpus and index:

- **query path, in-process**: ``Engine.ask``'s own ``timings_ms`` per stage (each encoder,
  each index search, fusion, answer) and, per request, the sum of those stages;
- **HTTP**: ``POST /ask`` against ``citeqa serve`` started on a free localhost port, with 1,
  8 and 32 concurrent clients: requests per second, p50/p99, errors, and the CPU time the
  server and the clients spent per request. Every response carries the server's own
  ``timings_ms``, so the one-client run compares each request's end-to-end latency with
  the sum of the stages the server measured for that same request. The server runs with
  the rate limit off (``processes.serve`` sets ``CITEQA_RATE_LIMIT_PER_MINUTE=0``): every
  client is one loopback address, and the bench measures the service, not the limit;
- **ingest**: a real ``build_index`` of the corpus into a scratch folder, with the time of
  each encoder's build-path encoding (chunk texts, then sentence texts, exactly as
  ``build_index`` calls it) set against a plain ``encode()`` of the same texts, 32 at a
  time, by the same encoder; and BM25's indexing rate over the same chunk texts;
- **scale** (``--scale N ...``): ``service.lab.scale.run_scale`` for each size; or, with
  ``--stores``, the vector stores side by side instead (``service.lab.stores``).

``service.lab.bench_report`` writes the ``BenchReport`` as ``bench.json``, a markdown summary
``bench.md`` and a chart ``bench.png``. Each target is reported as met or missed, never
asserted.

Every request carries a question no earlier request used (an eval question with a request
number appended), so the query-vector cache never answers for the encoders. Clients are
threads using ``http.client`` with keep-alive: the load generator shares the machine with
the server, and httpx costs about six times more CPU per request.
"""

from __future__ import annotations

import datetime as dt
import http.client
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.encode.encoders import Encoder
from service.engine import Engine
from service.index import IndexTexts, build_index, load_encoders, read_texts
from service.lab.evaluate import load_claims, load_questions
from service.lab.processes import (
    cpu_seconds,
    load_average,
    serve,
    tree_rss,
)
from service.lab.quotes import load_quotes
from service.lab.stats import Latency, latency
from service.lab.stores import STORES, StoreFigures, compare_stores
from service.store.bm25 import LexicalIndex

__all__ = [
    "AGGREGATE_STAGES",
    "RAW_BATCH",
    "BenchReport",
    "IngestRate",
    "LoadRun",
    "Target",
    "run_bench",
    "scale_available",
    "stage_sum",
]

# Timings that add up other stages; every other key of ``timings_ms`` is one stage.
AGGREGATE_STAGES = frozenset({"retrieve", "total"})
RAW_BATCH = 32
TARGETS = {  # name: (limit, at_most, unit)
    "HTTP /ask p50, 1 client": (15.0, True, "ms"),
    "HTTP /ask p99, 1 client": (40.0, True, "ms"),
    "HTTP /verify p50, 1 client": (30.0, True, "ms"),
    "HTTP /cite p50, 1 client": (20.0, True, "ms"),
    "throughput, 8 clients": (150.0, False, "requests/s"),
    "end-to-end / sum of stages (p50, 1 client)": (1.3, True, ""),
}
INGEST_TARGET = 0.8  # build-path rate over raw encode() rate, per encoder
SCALE_DIR = Path(tempfile.gettempdir()) / "citeqa-scale"


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class LoadRun:
    """``clients`` concurrent keep-alive clients sharing ``requests`` questions."""

    clients: int
    requests: int
    errors: int  # non-200 answers and failed connections
    error_kinds: dict[str, int]  # "HTTP 503", "RemoteDisconnected", ... -> how many
    seconds: float
    requests_per_s: float
    latency: Latency | None  # end-to-end at the client, successful requests
    server_total: Latency | None  # the server's own Engine.ask time for those requests
    server_stage_sum: Latency | None  # the sum of the stages the server reported
    e2e_over_stages: float | None  # latency p50 / server_stage_sum p50
    e2e_over_stages_per_request: float | None  # median over requests of the same ratio
    e2e_over_total: float | None  # latency p50 / server_total p50 (framework and network)
    server_cpu_ms_per_request: float | None  # user + system, server and workers
    client_cpu_ms_per_request: float  # this process: the clients' threads


@dataclass(frozen=True)
class IngestRate:
    """One part of the build: how fast the build path indexed the corpus."""

    part: str
    chunks: int
    texts: int  # texts handed to the build step (chunks, and sentences for an encoder)
    seconds: float
    chunks_per_s: float
    texts_per_s: float
    raw_seconds: float | None  # the same texts through encode(), RAW_BATCH at a time
    raw_texts_per_s: float | None
    ratio: float | None  # texts_per_s / raw_texts_per_s


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None  # None: not measured in this run
    limit: float
    at_most: bool  # met when value <= limit (else when value >= limit)
    unit: str
    met: bool | None


@dataclass(frozen=True)
class BenchReport:
    command: str
    started_at: str
    cores: int
    workers: int
    load_average: dict[str, tuple[float, float, float]]  # "start", "end"
    corpus: dict[str, int]  # documents, chunks, sentences
    in_process: dict[str, Latency]  # per stage, plus "retrieve" and "total"
    in_process_stage_sum: Latency
    load: list[LoadRun]
    server_rss_bytes: int | None  # the largest server process after the load runs
    ingest: list[IngestRate]
    build_seconds: float | None
    scale: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    stores: list[StoreFigures] = field(default_factory=list)
    # where the scale rows come from, when an earlier run measured them (they take hours)
    scale_from: str | None = None
    verify: LoadRun | None = None  # POST /verify, one client, the claims file's claims
    cite: LoadRun | None = None  # POST /cite, one client, the quotes file's quotes

    def run(self, clients: int) -> LoadRun | None:
        return next((run for run in self.load if run.clients == clients), None)


# ------------------------------------------------------------------------------ helpers


def stage_sum(timings_ms: Mapping[str, float]) -> float:
    """The sum of the stages of one ``Engine.ask`` (every timing but the aggregates). The
    encoders run side by side: where ``encode`` (their wall time) is timed, it counts and
    each encoder's own ``encode_<name>`` inside it does not."""
    overlapped = "encode" in timings_ms
    return sum(
        ms
        for stage, ms in timings_ms.items()
        if stage not in AGGREGATE_STAGES and not (overlapped and stage.startswith("encode_"))
    )


def _questions(path: Path, count: int) -> list[str]:
    base = [q.question for q in load_questions(path)]
    return [f"{base[i % len(base)]} (#{i})" for i in range(count)]


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ query path


def _in_process(
    settings: Settings, questions: Sequence[str]
) -> tuple[dict[str, Latency], Latency, dict[str, int]]:
    engine = Engine.from_settings(settings)
    engine.ask("warm up 预热", top_k=5)
    stages: dict[str, list[float]] = {}
    sums = []
    for question in questions:
        timings = engine.ask(question, top_k=5).timings_ms
        for stage, ms in timings.items():
            stages.setdefault(stage, []).append(ms)
        sums.append(stage_sum(timings))
    counts = engine.index.manifest.get("counts", {})
    corpus = {
        "documents": len(engine.documents),
        "chunks": len(engine.index.chunks),
        "sentences": int(counts.get("sentences", len(engine.index.sentences))),
    }
    return {stage: latency(v) for stage, v in stages.items()}, latency(sums), corpus


_Done = list[tuple[float, dict[str, float]]]  # (end-to-end ms, the server's timings_ms)


def _client(url: str, share: Sequence[str], endpoint: str = "/ask") -> tuple[_Done, list[str]]:
    """One keep-alive client sending ``share`` in turn (questions to ``/ask``, claims to
    ``/verify``, quotes to ``/cite``): the answered requests, and the kind of each failure
    (reconnecting after a failed connection)."""
    field = {"/verify": "claim", "/cite": "quote"}.get(endpoint, "question")
    host, port = url.removeprefix("http://").split(":")
    done: _Done = []
    errors: list[str] = []
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Content-Type": "application/json"}
    try:
        for question in share:
            body = json.dumps({field: question, "top_k": 5})
            started = time.perf_counter()
            try:
                connection.request("POST", endpoint, body, headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                errors.append(type(error).__name__)
                connection.close()  # reconnects on the next request
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if response.status == 200:
                done.append((elapsed, json.loads(payload)["timings_ms"]))
            else:
                errors.append(f"HTTP {response.status}")
    finally:
        connection.close()
    return done, errors


def _ratio(top: Latency | None, bottom: Latency | None) -> float | None:
    """``top``'s p50 over ``bottom``'s, where both are measured."""
    return round(top.p50_ms / bottom.p50_ms, 3) if top and bottom and bottom.p50_ms else None


def _load_run(
    url: str, questions: Sequence[str], clients: int, pids: Sequence[int], endpoint: str = "/ask"
) -> LoadRun:
    """``clients`` concurrent keep-alive clients sharing ``questions`` (or claims)."""
    shares = [questions[i::clients] for i in range(clients)]
    cpu_before = cpu_seconds(pids)
    client_before = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda share: _client(url, share, endpoint), shares))
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    cpu_after = cpu_seconds(pids)
    done = [item for part, _ in results for item in part]
    kinds = Counter(kind for _, errors in results for kind in errors)
    requests = len(done) + sum(kinds.values())
    ends = [ms for ms, _ in done]
    sums = [stage_sum(timings) for _, timings in done]
    e2e = latency(ends) if done else None
    stages = latency(sums) if done else None
    total = latency([timings["total"] for _, timings in done]) if done else None
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return LoadRun(
        clients=clients,
        requests=requests,
        errors=sum(kinds.values()),
        error_kinds=dict(kinds),
        seconds=round(seconds, 3),
        requests_per_s=round(len(done) / seconds, 1),
        latency=e2e,
        server_total=total,
        server_stage_sum=stages,
        e2e_over_stages=_ratio(e2e, stages),
        e2e_over_total=_ratio(e2e, total),
        e2e_over_stages_per_request=(
            round(statistics.median(e / s for e, s in zip(ends, sums, strict=True) if s), 3)
            if any(sums)
            else None
        ),
        server_cpu_ms_per_request=(
            round(1000 * server_cpu / requests, 2) if server_cpu is not None and requests else None
        ),
        client_cpu_ms_per_request=round(1000 * client_cpu / max(requests, 1), 2),
    )


# ------------------------------------------------------------------------------ ingest


@dataclass(frozen=True)
class _EncodeCall:
    texts: tuple[str, ...]
    seconds: float


class _TimedEncoder:
    """An encoder handed to ``build_index`` that records every ``encode`` call the build
    makes with its duration; the build runs unchanged."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.calls: list[_EncodeCall] = []

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.encode(texts, progress=progress)
        self.calls.append(_EncodeCall(tuple(texts), time.perf_counter() - started))
        return vectors


def _rate(count: int, seconds: float) -> float:
    return round(count / max(seconds, 1e-9), 1)


def _encoder_rate(encoder: _TimedEncoder, texts: IndexTexts) -> IngestRate:
    """How fast the build encoded the chunk and sentence ``texts`` it was handed (each
    distinct text once, the rest from its copies), against a plain ``encode()`` of the
    same texts RAW_BATCH at a time, right after."""
    if not encoder.calls:
        raise RuntimeError(
            f"the build encoded nothing with the {encoder.name} encoder it was given; the "
            "ingest measurement must follow how build_index encodes now."
        )
    seconds = sum(call.seconds for call in encoder.calls)
    started = time.perf_counter()
    for part in (texts.chunks, texts.sentences):  # the build encodes chunks, then sentences
        for i in range(0, len(part), RAW_BATCH):
            encoder.inner.encode(part[i : i + RAW_BATCH])
    raw_seconds = time.perf_counter() - started
    count = len(texts.chunks) + len(texts.sentences)
    texts_per_s, raw_rate = _rate(count, seconds), _rate(count, raw_seconds)
    return IngestRate(
        part=f"{encoder.name} ({type(encoder.inner).__name__})",
        chunks=len(texts.chunks),
        texts=count,
        seconds=round(seconds, 3),
        chunks_per_s=_rate(len(texts.chunks), seconds),
        texts_per_s=texts_per_s,
        raw_seconds=round(raw_seconds, 3),
        raw_texts_per_s=raw_rate,
        ratio=round(texts_per_s / raw_rate, 3),
    )


def _bm25_rate(chunk_texts: list[str]) -> IngestRate:
    """BM25: the call build_index makes, on the same chunk texts."""
    started = time.perf_counter()
    LexicalIndex.build(chunk_texts)
    seconds = time.perf_counter() - started
    return IngestRate(
        part="BM25 (LexicalIndex.build)",
        chunks=len(chunk_texts),
        texts=len(chunk_texts),
        seconds=round(seconds, 3),
        chunks_per_s=_rate(len(chunk_texts), seconds),
        texts_per_s=_rate(len(chunk_texts), seconds),
        raw_seconds=None,
        raw_texts_per_s=None,
        ratio=None,
    )


def _ingest(settings: Settings) -> tuple[list[IngestRate], float]:
    """Build the corpus into a scratch folder with the encoders timed, then encode the
    texts the build was handed with a plain ``encode()`` RAW_BATCH at a time; the build's
    seconds, model loading included."""
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-") as scratch:
        index_dir = Path(scratch) / "index"
        index_dir.mkdir()
        onnx_cache = settings.index_dir / "onnx"
        if onnx_cache.is_dir():  # reuse the ONNX export rather than exporting again
            (index_dir / "onnx").symlink_to(onnx_cache.resolve(), target_is_directory=True)
        scratch_settings = settings.model_copy(update={"index_dir": index_dir})
        started = time.perf_counter()
        loaded = load_encoders(scratch_settings, scratch_settings.effective_threads(), query=False)
        timed = {name: _TimedEncoder(encoder) for name, encoder in loaded.items()}
        built = build_index(scratch_settings, force=True, progress=False, encoders=timed)
        build_seconds = time.perf_counter() - started
        texts = read_texts(built.path)
    rates = [_encoder_rate(encoder, texts) for encoder in timed.values()]
    return [*rates, _bm25_rate(texts.chunks)], round(build_seconds, 3)


# ------------------------------------------------------------------------------ scale


def scale_available() -> bool:
    """Whether ``service.lab.scale`` (the corpus-size study) is installed."""
    return importlib.util.find_spec("service.lab.scale") is not None


def _scale(
    sizes: Sequence[int], settings: Settings, work_dir: Path | None, progress: bool
) -> list[dict[str, Any]]:
    from service.lab.scale import run_scale

    # Kept between runs: run_scale caches the encoded vectors there, the costly part.
    work_dir = work_dir or SCALE_DIR
    work_dir.mkdir(parents=True, exist_ok=True)
    return [asdict(result) for result in run_scale(sizes, settings, work_dir, progress)]


# ------------------------------------------------------------------------------ targets


def _target(name: str, value: float | None, limit: float, at_most: bool, unit: str) -> Target:
    met = None if value is None else (value <= limit if at_most else value >= limit)
    return Target(name, value, limit, at_most, unit, met)


def _p50(run: LoadRun | None) -> float | None:
    return run.latency.p50_ms if run and run.latency else None


def _targets(
    load: Sequence[LoadRun],
    ingest: Sequence[IngestRate],
    verify: LoadRun | None = None,
    cite: LoadRun | None = None,
) -> list[Target]:
    one = next((run for run in load if run.clients == 1), None)
    eight = next((run for run in load if run.clients == 8), None)
    values = {
        "HTTP /ask p50, 1 client": one.latency.p50_ms if one and one.latency else None,
        "HTTP /ask p99, 1 client": one.latency.p99_ms if one and one.latency else None,
        "HTTP /verify p50, 1 client": _p50(verify),
        "HTTP /cite p50, 1 client": _p50(cite),
        "throughput, 8 clients": eight.requests_per_s if eight else None,
        "end-to-end / sum of stages (p50, 1 client)": one.e2e_over_stages if one else None,
    }
    targets = [
        _target(name, values[name], limit, at_most, unit)
        for name, (limit, at_most, unit) in TARGETS.items()
    ]
    targets += [
        _target(f"ingest {rate.part} / raw encode()", rate.ratio, INGEST_TARGET, False, "")
        for rate in ingest
        if rate.ratio is not None
    ]
    return targets


# ------------------------------------------------------------------------------ the suite


@dataclass(frozen=True)
class _Http:
    runs: list[LoadRun]
    server_rss_bytes: int | None  # the largest server process after the runs
    verify: LoadRun | None  # one client checking the claims file's claims
    cite: LoadRun | None  # one client tracing the quotes file's quotes


def _claims(questions_file: Path, count: int) -> list[str]:
    """Up to ``count`` claims of the claims file beside the questions file (none if absent),
    each sent twice at most."""
    path = questions_file.with_name("claims.jsonl")
    if not path.is_file():
        return []
    claims = [c.claim for c in load_claims(path)]
    return (claims * 2)[:count]


def _quotes(questions_file: Path, count: int) -> list[str]:
    """Up to ``count`` quotes of the quotes file beside the questions file (none if absent),
    each sent once: a second request for a quote would find its vectors cached."""
    path = questions_file.with_name("quotes.jsonl")
    return [q.quote for q in load_quotes(path)][:count] if path.is_file() else []


def _one_client(
    url: str, pids: Sequence[int], endpoint: str, texts: Sequence[str], progress: bool
) -> LoadRun | None:
    """``texts`` sent to ``endpoint`` by one client after a warm-up on 20 of them altered
    (so the warm-up leaves no vector in the cache for the measured requests)."""
    if not texts:
        return None
    _say(progress, f"HTTP: {len(texts)} requests to {endpoint} from 1 client ...")
    _load_run(url, [f"{t} (warm-up)" for t in texts[:20]], 1, pids, endpoint)
    return _load_run(url, texts, 1, pids, endpoint)


def _over_http(
    settings: Settings,
    questions_file: Path,
    questions: Sequence[str],
    *,
    requests: int,
    workers: int,
    clients: Sequence[int],
    progress: bool,
) -> _Http:
    """A warm-up, then ``requests`` of ``questions`` per entry of ``clients`` against one
    server with ``workers`` workers."""
    runs = []
    with serve(settings, workers) as server:
        pids = server.pids()
        warm = _questions(questions_file, min(50 * workers, 4 * requests))
        _load_run(server.url, [f"{q} (warm-up)" for q in warm], max(clients), pids)
        for i, count in enumerate(clients):
            _say(progress, f"HTTP: {requests} requests from {count} clients ...")
            part = questions[i * requests : (i + 1) * requests]
            runs.append(_load_run(server.url, part, count, pids))
        verify = _one_client(
            server.url, pids, "/verify", _claims(questions_file, requests), progress
        )
        cite = _one_client(server.url, pids, "/cite", _quotes(questions_file, requests), progress)
        sizes = [tree_rss([pid])[0] for pid in pids]
    return _Http(runs, max(sizes) if any(sizes) else None, verify, cite)


def _at_scale(
    settings: Settings,
    questions_file: Path,
    scale: Sequence[int],
    scale_dir: Path | None,
    stores: Sequence[str],
    progress: bool,
) -> tuple[list[dict[str, Any]], list[StoreFigures]]:
    """The scale rows (``run_scale``), or with ``stores`` the store comparison instead."""
    if scale and stores:
        _say(progress, f"stores: {', '.join(stores)} at {', '.join(map(str, scale))} chunks ...")
        questions = [q.question for q in load_questions(questions_file)]
        work_dir = scale_dir or SCALE_DIR
        return [], compare_stores(
            scale, stores, settings, work_dir, questions=questions, progress=progress
        )
    if scale:
        _say(progress, f"scale: corpora of {', '.join(map(str, scale))} chunks ...")
        return _scale(scale, settings, scale_dir, progress), []
    return [], []


def run_bench(
    settings: Settings,
    questions_file: Path,
    *,
    requests: int = 400,
    workers: int = 1,
    clients: Sequence[int] = (1, 8, 32),
    ingest: bool = True,
    scale: Sequence[int] = (),
    scale_dir: Path | None = None,
    stores: Sequence[str] = (),
    progress: bool = False,
    command: str = "citeqa bench",
) -> BenchReport:
    """Run the suite (see the module docstring); ``requests`` per measurement. With
    ``stores``, each ``scale`` size compares those vector stores instead of running
    ``run_scale``. ``command`` is recorded in the report as what ran."""
    if requests < 1 or not clients or min(clients) < 1:
        raise ValueError("requests and every client count must be at least 1")
    if unknown := set(stores) - set(STORES):
        raise ValueError(f"unknown stores {sorted(unknown)}; use {', '.join(STORES)}")
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load_start = load_average()
    questions = _questions(questions_file, (1 + len(clients)) * requests)

    _say(progress, f"in-process: {requests} questions through Engine.ask ...")
    stages, sums, corpus = _in_process(settings, questions[:requests])
    http = _over_http(
        settings, questions_file, questions[requests:], requests=requests, workers=workers,
        clients=clients, progress=progress,
    )  # fmt: skip
    rates: list[IngestRate] = []
    build_seconds = None
    if ingest:
        _say(progress, "ingest: building the corpus into a scratch folder ...")
        rates, build_seconds = _ingest(settings)
    scale_rows, store_rows = _at_scale(settings, questions_file, scale, scale_dir, stores, progress)
    return BenchReport(
        command=command,
        started_at=started_at,
        cores=settings.effective_threads(),
        workers=workers,
        load_average={"start": load_start, "end": load_average()},
        corpus=corpus,
        in_process=stages,
        in_process_stage_sum=sums,
        load=http.runs,
        server_rss_bytes=http.server_rss_bytes,
        ingest=rates,
        build_seconds=build_seconds,
        scale=scale_rows,
        targets=_targets(http.runs, rates, http.verify, http.cite),
        stores=store_rows,
        verify=http.verify,
        cite=http.cite,
    )
