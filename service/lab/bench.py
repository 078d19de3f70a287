"""Bench: the benchmark suite behind ``citeqa bench``.

What it measures, on the configured corpus and index:

- **query path, in-process**: ``Engine.ask``'s own ``timings_ms`` per stage (each encoder,
  each index search, fusion, answer) and, per request, the sum of those stages;
- **HTTP**: ``POST /ask`` against ``citeqa serve`` started on a free localhost port, with 1,
  8 and 32 concurrent clients: requests per second, p50/p99, errors, and the CPU time the
  server and the clients spent per request. Every response carries the server's own
  ``timings_ms``, so the one-client run compares each request's end-to-end latency with
  the sum of the stages the server measured for that same request;
- **ingest**: a real ``build_index`` of the corpus into a scratch folder, with the time of
  each encoder's build-path encoding (chunk texts, then sentence texts, exactly as
  ``build_index`` calls it) set against a plain ``encode()`` of the same texts, 32 at a
  time, by the same encoder; and BM25's indexing rate over the same chunk texts;
- **scale** (``--scale N ...``): ``service.lab.scale.run_scale`` for each size; or, with
  ``--stores``, the vector stores side by side instead (``compare_stores``): the same N
  synthetic chunks' multilingual (USE) vectors, from ``service.lab.scale``'s vector cache, put
  into FAISS (the index ``service.config`` picks for N) and Milvus Lite (FLAT, and HNSW:
  Milvus Lite has no IVF-PQ), each built in one fresh process and searched in another:
  build seconds, bytes on disk, query p50/p99 at k = the retriever depth on one thread,
  recall@10 against exact search, the largest error of a returned score against the exact
  inner product, whether opening and searching left every file as built, and the
  searching process's RSS.

``write`` saves the report as ``bench.json``, a markdown summary ``bench.md`` and a chart
``bench.png`` (latency and memory against corpus size, the seed corpus as its own point,
and throughput against clients). Each target is reported as met or missed, never asserted.

Every request carries a question no earlier request used (an eval question with a request
number appended), so the query-vector cache never answers for the encoders. Clients are
threads using ``http.client`` with keep-alive: the load generator shares the machine with
the server, and httpx costs about six times more CPU per request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import http.client
import importlib.util
import json
import math
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from service.config import Settings, child_environment
from service.encode.encoders import Encoder, load_encoder, set_threads
from service.engine import Engine
from service.index import IndexTexts, build_index, load_encoders, read_texts
from service.lab.evaluate import load_questions
from service.lab.load import server_processes, tree_rss
from service.store.bm25 import LexicalIndex
from service.store.faiss_store import DenseIndex, DenseParams, VectorStore

__all__ = [
    "AGGREGATE_STAGES",
    "STORES",
    "BenchReport",
    "IngestRate",
    "Latency",
    "LoadRun",
    "StoreFigures",
    "Target",
    "compare_stores",
    "free_port",
    "latency",
    "markdown",
    "run_bench",
    "running_server",
    "scale_available",
    "stage_sum",
    "write",
]

# Timings that add up other stages; every other key of ``timings_ms`` is one stage.
AGGREGATE_STAGES = frozenset({"retrieve", "total"})
RAW_BATCH = 32
TARGETS = {  # name: (limit, at_most, unit)
    "HTTP /ask p50, 1 client": (15.0, True, "ms"),
    "HTTP /ask p99, 1 client": (40.0, True, "ms"),
    "throughput, 8 clients": (150.0, False, "requests/s"),
    "end-to-end / sum of stages (p50, 1 client)": (1.3, True, ""),
}
INGEST_TARGET = 0.8  # build-path rate over raw encode() rate, per encoder
SCALE_DIR = Path(tempfile.gettempdir()) / "citeqa-scale"
STORES = ("faiss", "milvus")  # what --stores accepts
STORE_QUERIES = 200  # held-out synthetic queries a store comparison asks (plus the questions)


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Latency:
    """Percentiles of a set of durations (nearest rank)."""

    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float


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

    def run(self, clients: int) -> LoadRun | None:
        return next((run for run in self.load if run.clients == clients), None)


# ------------------------------------------------------------------------------ helpers


def _percentile(ordered: Sequence[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def latency(values_ms: Sequence[float]) -> Latency:
    """p50, p99 and mean of ``values_ms``."""
    if not values_ms:
        raise ValueError("no durations to summarise")
    ordered = sorted(values_ms)
    return Latency(
        count=len(ordered),
        p50_ms=round(statistics.median(ordered), 3),
        p99_ms=round(_percentile(ordered, 0.99), 3),
        mean_ms=round(statistics.fmean(ordered), 3),
    )


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


def _load_average() -> tuple[float, float, float]:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return (math.nan, math.nan, math.nan)
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def _cpu_seconds(pids: Sequence[int]) -> float | None:
    """User + system CPU seconds of ``pids`` (Linux /proc); None where unavailable."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rpartition(")")[2].split()  # the name may hold spaces
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(
    settings: Settings, workers: int = 1, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = port or free_port()
    env = child_environment(
        {
            "CITEQA_INDEX_DIR": str(settings.index_dir.resolve()),
            "CITEQA_CORPUS_DIR": str(settings.corpus_dir.resolve()),
            "CITEQA_RATE_LIMIT_PER_MINUTE": "0",  # the load generator is one client
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"the server exited before it was ready:\n{error[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready within 120 s")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def running_server(settings: Settings, workers: int = 1, port: int | None = None) -> Iterator[str]:
    """``citeqa serve`` in a child process on localhost (a free port unless given); yields
    its base URL once ``/readyz`` answers, and stops it on exit."""
    with _server(settings, workers, port) as (url, _process):
        yield url


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


def _load_run(url: str, questions: Sequence[str], clients: int, pids: Sequence[int]) -> LoadRun:
    """``clients`` sequential keep-alive clients sharing ``questions``."""
    shares = [questions[i::clients] for i in range(clients)]
    host, port = url.removeprefix("http://").split(":")

    def client(share: Sequence[str]) -> tuple[list[tuple[float, dict[str, float]]], list[str]]:
        done: list[tuple[float, dict[str, float]]] = []
        errors: list[str] = []
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Content-Type": "application/json"}
        try:
            for question in share:
                body = json.dumps({"question": question, "top_k": 5})
                started = time.perf_counter()
                try:
                    connection.request("POST", "/ask", body, headers)
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

    cpu_before = _cpu_seconds(pids)
    client_before = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, shares))
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    cpu_after = _cpu_seconds(pids)
    done = [item for part, _ in results for item in part]
    kinds = Counter(kind for _, errors in results for kind in errors)
    errors = sum(kinds.values())
    requests = len(done) + errors
    ends = [ms for ms, _ in done]
    sums = [stage_sum(timings) for _, timings in done]
    e2e = latency(ends) if done else None
    stages = latency(sums) if done else None
    total = latency([timings["total"] for _, timings in done]) if done else None
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return LoadRun(
        clients=clients,
        requests=requests,
        errors=errors,
        error_kinds=dict(kinds),
        seconds=round(seconds, 3),
        requests_per_s=round(len(done) / seconds, 1),
        latency=e2e,
        server_total=total,
        server_stage_sum=stages,
        e2e_over_stages=(
            round(e2e.p50_ms / stages.p50_ms, 3) if e2e and stages and stages.p50_ms else None
        ),
        e2e_over_total=(
            round(e2e.p50_ms / total.p50_ms, 3) if e2e and total and total.p50_ms else None
        ),
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


# ------------------------------------------------------------------------------ stores


def _status_bytes(name: str) -> int:
    """A memory figure of this process (``VmRSS``, ``VmHWM``) from /proc, in bytes."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _files(directory: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``directory``: its size and sha256."""
    table = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        table[path.relative_to(directory).as_posix()] = (path.stat().st_size, digest)
    return table


def _in_fresh_process(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a new interpreter, so its memory and threads are its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


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
    return {"spec": spec, "index": name, "seconds": seconds, "peak": _status_bytes("VmHWM")}


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
    before = _status_bytes("VmRSS")
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
    rss, anon = _status_bytes("VmRSS"), _status_bytes("RssAnon")
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
    from service.ingest.chunk import ChunkingParams
    from service.lab.scale import (
        cache_key,
        encode_cached,
        held_out,
        seed_pool,
        synthetic_queries,
        synthetic_texts,
    )

    if unknown := set(stores) - set(STORES):
        raise ValueError(f"unknown stores {sorted(unknown)}; use {', '.join(STORES)}")
    model = settings.multilingual_model
    pool = seed_pool(
        settings.corpus_dir, ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    )
    encoder = load_encoder(
        model,
        threads=1,
        backend=settings.dense_backend,
        cache_dir=settings.index_dir / "onnx",
        int8=settings.query_int8,
    )
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
    from service.lab.scale import recall_per_set

    set_sizes = {name: len(items) for name, items in query_sets.items()}
    params = DenseParams.from_settings(settings)
    depth = settings.retriever_depth
    n = len(vectors)
    set_threads(1)
    exact = DenseIndex.build(vectors, kind="flat")
    exact_rows, exact_times = [], []
    for query in query_vectors:
        started = time.perf_counter()
        exact_rows.append([row for row, _ in exact.search(query, depth)])
        exact_times.append((time.perf_counter() - started) * 1000)
    exact_figures = latency(exact_times)
    del exact

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    vectors_file = directory / "vectors.npy"
    np.save(vectors_file, vectors, allow_pickle=False)
    rows: list[StoreFigures] = []
    try:
        for store, kind in _store_configs(stores):
            _say(progress, f"stores: {store} ({kind}) over {n} vectors ...")
            load_average = _load_average()
            target = directory / f"{store}-{kind}"
            built = _in_fresh_process(
                _store_build, store, kind, params, vectors_file, target,
                settings.effective_threads(),
            )  # fmt: skip
            files = _files(target)
            probed = _in_fresh_process(
                _store_probe, store, built["spec"], target, query_vectors, depth
            )
            recalls = recall_per_set(vectors, query_vectors, probed["found"], exact_rows, set_sizes)
            figures = latency(probed["times"])
            rows.append(
                StoreFigures(
                    chunks=n,
                    store=store,
                    index=built["index"],
                    spec=built["spec"],
                    model=settings.multilingual_model,
                    dim=int(vectors.shape[1]),
                    build_seconds=round(built["seconds"], 3),
                    build_peak_rss_bytes=built["peak"],
                    bytes_on_disk=sum(size for size, _ in files.values()),
                    open_seconds=round(probed["open_seconds"], 3),
                    k=depth,
                    p50_ms=figures.p50_ms,
                    p99_ms=figures.p99_ms,
                    recall_at_10={name: round(v, 4) for name, v in recalls.items()},
                    max_score_error=_max_score_error(
                        vectors, query_vectors, probed["found"], probed["scores"]
                    ),
                    unchanged_by_open=_files(target) == files,
                    rss_bytes=probed["rss"],
                    rss_growth_bytes=probed["rss"] - probed["before"],
                    rss_anon_bytes=probed["anon"],
                    exact_p50_ms=exact_figures.p50_ms,
                    exact_p99_ms=exact_figures.p99_ms,
                    queries=set_sizes,
                    load_average=load_average,
                )
            )
            shutil.rmtree(target, ignore_errors=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return rows


# ------------------------------------------------------------------------------ targets


def _target(name: str, value: float | None, limit: float, at_most: bool, unit: str) -> Target:
    met = None if value is None else (value <= limit if at_most else value >= limit)
    return Target(name, value, limit, at_most, unit, met)


def _targets(load: Sequence[LoadRun], ingest: Sequence[IngestRate]) -> list[Target]:
    one = next((run for run in load if run.clients == 1), None)
    eight = next((run for run in load if run.clients == 8), None)
    values = {
        "HTTP /ask p50, 1 client": one.latency.p50_ms if one and one.latency else None,
        "HTTP /ask p99, 1 client": one.latency.p99_ms if one and one.latency else None,
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
    ``run_scale``."""
    if requests < 1 or not clients or min(clients) < 1:
        raise ValueError("requests and every client count must be at least 1")
    if unknown := set(stores) - set(STORES):
        raise ValueError(f"unknown stores {sorted(unknown)}; use {', '.join(STORES)}")
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load_start = _load_average()
    questions = _questions(questions_file, (1 + len(clients)) * requests)

    _say(progress, f"in-process: {requests} questions through Engine.ask ...")
    stages, sums, corpus = _in_process(settings, questions[:requests])

    runs = []
    rss = None
    with _server(settings, workers) as (url, process):
        pids = server_processes(process.pid) or [process.pid]
        warm = _questions(questions_file, min(50 * workers, 4 * requests))
        _load_run(url, [f"{q} (warm-up)" for q in warm], max(clients), pids)
        for i, count in enumerate(clients):
            _say(progress, f"HTTP: {requests} requests from {count} clients ...")
            part = questions[(i + 1) * requests : (i + 2) * requests]
            runs.append(_load_run(url, part, count, pids))
        sizes = [tree_rss([pid])[0] for pid in pids]
        rss = max(sizes) if any(sizes) else None

    rates: list[IngestRate] = []
    build_seconds = None
    if ingest:
        _say(progress, "ingest: building the corpus into a scratch folder ...")
        rates, build_seconds = _ingest(settings)

    scale_rows: list[dict[str, Any]] = []
    store_rows: list[StoreFigures] = []
    if scale and stores:
        _say(progress, f"stores: {', '.join(stores)} at {', '.join(map(str, scale))} chunks ...")
        store_rows = compare_stores(
            scale,
            stores,
            settings,
            scale_dir or SCALE_DIR,
            questions=[q.question for q in load_questions(questions_file)],
            progress=progress,
        )
    elif scale:
        _say(progress, f"scale: corpora of {', '.join(map(str, scale))} chunks ...")
        scale_rows = _scale(scale, settings, scale_dir, progress)

    return BenchReport(
        command=command,
        started_at=started_at,
        cores=settings.effective_threads(),
        workers=workers,
        load_average={"start": load_start, "end": _load_average()},
        corpus=corpus,
        in_process=stages,
        in_process_stage_sum=sums,
        load=runs,
        server_rss_bytes=rss,
        ingest=rates,
        build_seconds=build_seconds,
        scale=scale_rows,
        targets=_targets(runs, rates),
        stores=store_rows,
    )


# ------------------------------------------------------------------------------ output


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value / 2**20:.0f}"


def _figure(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _errors(run: LoadRun) -> str:
    kinds = ", ".join(f"{kind} × {count}" for kind, count in sorted(run.error_kinds.items()))
    return f"{run.errors} ({kinds})" if kinds else str(run.errors)


def _target_line(target: Target) -> str:
    sign = "≤" if target.at_most else "≥"
    unit = f" {target.unit}" if target.unit else ""
    verdict = {True: "met", False: "**missed**", None: "not measured"}[target.met]
    return (
        f"| {target.name} | {_figure(target.value)}{unit if target.value is not None else ''} "
        f"| {sign} {target.limit:g}{unit} | {verdict} |"
    )


def _scale_points(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Series to plot from ``asdict(ScaleResult)`` rows: name -> (chunks, value)."""
    series: dict[str, list[tuple[int, float]]] = {}

    def add(name: str, n: Any, value: Any) -> None:
        if isinstance(n, int) and isinstance(value, int | float):
            series.setdefault(name, []).append((n, float(value)))

    for row in rows:
        n = row.get("chunks")
        for name, figures in (row.get("dense") or {}).items():
            add(f"{name} search p50", n, figures.get("p50_ms"))
            add(f"{name} search p99", n, figures.get("p99_ms"))
        add("BM25 search p50", n, row.get("bm25_p50_ms"))
        add("BM25 search p99", n, row.get("bm25_p99_ms"))
        for key in ("rss_service_bytes", "rss_build_peak_bytes"):
            value = row.get(key)
            add(f"RSS {key.removeprefix('rss_').removesuffix('_bytes')}", n, value)
    return series


def _scale_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names = sorted({name for row in rows for name in (row.get("dense") or {})})
    header = ["chunks", "build s", "disk MiB", "serving RSS MiB", "build peak RSS MiB"]
    for name in names:
        header += [f"{name} p50/p99 ms", f"{name} recall@10"]
    header.append("BM25 p50/p99 ms")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        seconds = row.get("seconds") or {}
        disk = (row.get("bytes_on_disk") or {}).get("total")
        cells = [
            str(row.get("chunks")),
            _figure(sum(seconds.values()), 1) if seconds else "–",
            _mib(disk),
            _mib(row.get("rss_service_bytes")),
            _mib(row.get("rss_build_peak_bytes")),
        ]
        for name in names:
            figures = (row.get("dense") or {}).get(name) or {}
            cells.append(f"{_figure(figures.get('p50_ms'))} / {_figure(figures.get('p99_ms'))}")
            recall = figures.get("recall_at_10") or {}
            cells.append(", ".join(f"{k} {v:.3f}" for k, v in recall.items()) or "–")
        cells.append(f"{_figure(row.get('bm25_p50_ms'))} / {_figure(row.get('bm25_p99_ms'))}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        f"\nNot measured at {row['chunks']:,} chunks: {note}."
        for row in rows
        for note in row.get("skipped") or ()
    ]
    return lines


def _spec_text(spec: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in spec.items() if key != "kind")


def _stores_table(rows: Sequence[StoreFigures]) -> list[str]:
    header = [
        "chunks", "store", "index", "build s", "MiB on disk", "open s", "query p50 / p99 ms",
        "recall@10", "max score error", "RSS MiB (growth from opening)",
        "of which anonymous MiB", "build peak RSS MiB", "files unchanged",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        parameters = _spec_text(row.spec)
        recall = ", ".join(f"{name} {value:.3f}" for name, value in row.recall_at_10.items())
        cells = [
            f"{row.chunks:,}",
            row.store,
            f"{row.index} ({parameters})" if parameters else row.index,
            f"{row.build_seconds:.1f}",
            _mib(row.bytes_on_disk),
            f"{row.open_seconds:.2f}",
            f"{row.p50_ms:.2f} / {row.p99_ms:.2f}",
            recall,
            f"{row.max_score_error:.1e}",
            f"{_mib(row.rss_bytes)} ({_mib(row.rss_growth_bytes)})",
            _mib(row.rss_anon_bytes),
            _mib(row.build_peak_rss_bytes),
            "yes" if row.unchanged_by_open else "**no**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for n in sorted({row.chunks for row in rows}):
        first = next(row for row in rows if row.chunks == n)
        asked = ", ".join(f"{count} {name}" for name, count in first.queries.items())
        lines.append(
            f"\n{n:,} chunks: {first.model} vectors ({first.dim} dims) of the synthetic corpus; "
            f"queries: {asked}, one at a time on one thread, k = {first.k}; exact search "
            f"(FAISS IndexFlatIP) over the same vectors: p50 {first.exact_p50_ms:.2f} ms, "
            f"p99 {first.exact_p99_ms:.2f} ms. Recall@10: the share of the exact top 10 found; "
            "max score error: the largest difference between a score returned and the exact "
            "inner product; files unchanged: every file of the store the same (size, sha256) "
            "after it was opened, searched and closed."
        )
    return lines


def markdown(report: BenchReport, chart: str | None = "bench.png") -> str:
    """The report as a markdown summary (targets first)."""
    start, end = report.load_average["start"], report.load_average["end"]
    corpus = report.corpus
    lines = [
        "# citeqa bench",
        "",
        f"`{report.command}` at {report.started_at}: {report.cores} cores, "
        f"{report.workers} server workers, load average (1 min) {start[0]} at the start and "
        f"{end[0]} at the end. Corpus: {corpus['documents']} documents, {corpus['chunks']} "
        f"chunks, {corpus['sentences']} sentences.",
        "",
        "## Targets",
        "",
        "| target | measured | limit | |",
        "| --- | --- | --- | --- |",
        *map(_target_line, report.targets),
        "",
        "## Query path",
        "",
        "In-process, `Engine.ask` on one thread; its own `timings_ms`. `retrieve` is the "
        "encoders and searches together; `total` includes the highlights and input checks.",
        "",
        "| stage | requests | p50 ms | p99 ms | mean ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows = [(f"`{s}`", f) for s, f in report.in_process.items() if s not in AGGREGATE_STAGES]
    rows.append(("**sum of stages**", report.in_process_stage_sum))
    rows += [(f"`{s}`", f) for s, f in report.in_process.items() if s in AGGREGATE_STAGES]
    for name, figures in rows:
        lines.append(
            f"| {name} | {figures.count} | {figures.p50_ms:.2f} | {figures.p99_ms:.2f} "
            f"| {figures.mean_ms:.2f} |"
        )
    lines += [
        "",
        "## HTTP `POST /ask` over loopback",
        "",
        "| clients | requests | errors | requests/s | p50 ms | p99 ms | server `total` p50 ms "
        "| server sum of stages p50 ms | end-to-end / stages | end-to-end / `total` "
        "| server CPU ms/request | client CPU ms/request |",
        "|" + " --- |" * 12,
    ]
    for run in report.load:
        e2e, total, sums = run.latency, run.server_total, run.server_stage_sum
        lines.append(
            f"| {run.clients} | {run.requests} | {_errors(run)} | {run.requests_per_s:.1f} "
            f"| {_figure(e2e.p50_ms if e2e else None)} | {_figure(e2e.p99_ms if e2e else None)} "
            f"| {_figure(total.p50_ms if total else None)} "
            f"| {_figure(sums.p50_ms if sums else None)} "
            f"| {_figure(run.e2e_over_stages)} | {_figure(run.e2e_over_total)} "
            f"| {_figure(run.server_cpu_ms_per_request)} "
            f"| {_figure(run.client_cpu_ms_per_request)} |"
        )
    lines.append(
        "\nEnd-to-end / stages: the clients' p50 over the p50 of the stage sums the server "
        "reported for the same requests; end-to-end / `total`: the same over the server's "
        "whole `Engine.ask` (the rest is HTTP, the framework and the client). With more "
        "clients both include queueing. Largest server process after the runs: "
        f"{_mib(report.server_rss_bytes)} MiB resident."
    )
    if report.ingest:
        lines += [
            "",
            "## Ingest",
            "",
            f"`citeqa build` of the corpus into a scratch folder ({report.build_seconds:.1f} s "
            "with model loading). Each encoder's time is what the build spent encoding "
            "the chunk texts and then the sentence texts; raw is `encode()` on the same "
            f"texts, {RAW_BATCH} at a time, right after, with the same encoder.",
            "",
            "| part | chunks | texts | build s | chunks/s | texts/s | raw texts/s | build / raw |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for rate in report.ingest:
            lines.append(
                f"| {rate.part} | {rate.chunks} | {rate.texts} | {rate.seconds:.2f} "
                f"| {rate.chunks_per_s:.1f} | {rate.texts_per_s:.1f} "
                f"| {_figure(rate.raw_texts_per_s, 1)} | {_figure(rate.ratio)} |"
            )
    if report.scale:
        lines += ["", "## Scale", "", *_scale_table(report.scale)]
    if report.stores:
        lines += [
            "",
            "## Vector stores",
            "",
            "The same vectors in each store: each built in a fresh process, then opened and "
            "searched in another, as a server would (RSS: that process, the query vectors "
            "included; Milvus Lite's embedded server runs inside it; anonymous: the part "
            "not backed by a file, which worker processes cannot share).",
            "",
            *_stores_table(report.stores),
        ]
    if chart:
        lines += ["", f"![latency and memory against corpus size; throughput]({chart})"]
    return "\n".join(lines)


_COLOURS = {"dense": "tab:blue", "multilingual": "tab:green", "BM25": "tab:orange"}


def chart(report: BenchReport, path: Path) -> None:
    """Latency and resident memory against corpus size (scale results and the seed corpus),
    and throughput and p99 against concurrent clients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    series = _scale_points(report.scale)
    seed_n = report.corpus["chunks"]
    figure, (lat, mem, load) = plt.subplots(1, 3, figsize=(16, 5))

    for name, points in series.items():
        if name.startswith("RSS"):
            continue
        xs, ys = zip(*sorted(points), strict=True)
        index = name.split(" ")[0]
        lat.plot(
            xs,
            ys,
            marker="o",
            color=_COLOURS.get(index),
            linestyle="--" if "p99" in name else "-",
            label=name,
        )
    for stage, index in (
        ("search_dense", "dense"),
        ("search_multilingual", "multilingual"),
        ("search_bm25", "BM25"),
    ):
        if stage in report.in_process:
            figures = report.in_process[stage]
            colour = _COLOURS[index]
            lat.scatter([seed_n], [figures.p50_ms], marker="*", s=120, color=colour, zorder=3)
            lat.scatter([seed_n], [figures.p99_ms], marker="X", s=70, color=colour, zorder=3)
            lat.plot([], [], marker="*", linestyle="", color=colour, label=f"seed {index} p50/p99")
    lat.set(xscale="log", yscale="log", xlabel="chunks in the corpus", ylabel="ms")
    lat.set_title("index search latency (p50 solid / ★, p99 dashed / ✕)")

    for name, points in series.items():
        if name.startswith("RSS"):
            xs, ys = zip(*sorted(points), strict=True)
            mem.plot(xs, [y / 2**20 for y in ys], marker="o", label=name)
    if report.server_rss_bytes:
        mem.scatter(
            [seed_n],
            [report.server_rss_bytes / 2**20],
            marker="*",
            s=120,
            color="black",
            zorder=3,
            label="seed: largest server process",
        )
    mem.set(xscale="log", xlabel="chunks in the corpus", ylabel="MiB resident")
    mem.set_title("memory")

    runs = [run for run in report.load if run.latency]
    clients = [run.clients for run in runs]
    load.plot(
        clients, [run.requests_per_s for run in runs], marker="o", color="tab:blue", label="req/s"
    )
    load.set(xscale="log", xlabel="concurrent clients", ylabel="requests/s")
    load.set_xticks(clients, [str(c) for c in clients])
    load.xaxis.set_minor_formatter(NullFormatter())
    load.set_ylim(bottom=0)
    p99 = load.twinx()
    p99.plot(
        clients,
        [run.latency.p99_ms for run in runs if run.latency],
        marker="s",
        color="tab:red",
        linestyle="--",
        label="p99 ms",
    )
    p99.set_ylabel("p99 ms")
    p99.set_ylim(bottom=0)
    load.set_title(f"HTTP /ask over loopback, {report.workers} workers")
    load.legend(
        load.get_legend_handles_labels()[0] + p99.get_legend_handles_labels()[0],
        ["requests/s", "p99 ms"],
        fontsize=7,
        loc="upper left",
    )

    for axes in (lat, mem):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
        axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(report: BenchReport, out: Path) -> list[Path]:
    """Write ``bench.json``, ``bench.md`` and ``bench.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bench.json", out / "bench.md", out / "bench.png"]
    paths[0].write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n")
    paths[1].write_text(markdown(report, paths[2].name) + "\n")
    chart(report, paths[2])
    return paths
