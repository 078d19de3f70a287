"""Scale: synthetic corpora of N chunks, and what building and searching them costs.

Nothing is downloaded. A synthetic chunk recombines sentences of the seed corpus
(``seeds/``: English, Simplified and Traditional Chinese) in one language, to the length of
a real chunk of that language, with every number, English month and seed person name
varied. The same seed gives the same texts, and the first N texts of a larger corpus are
the corpus of N (so vectors encoded for 100k serve 10k too).

``run_scale`` builds, for each N, what ``citeqa build`` builds (the encoders' vectors, the
dense indexes of the kind ``service.dense`` picks for N, BM25), saves it, and then, in a
fresh process that loads the files the way the server does (memory-mapped, query threads),
measures:

- seconds per part: generating, encoding per encoder, each dense index, BM25, saving;
- bytes on disk per part; the build's peak RSS; the serving process's RSS with the indexes
  and the query encoders loaded, after every query;
- dense search p50/p99 (k = the retriever depth, one thread) and recall@10 against exact
  search (``IndexFlatIP`` over the same vectors) on held-out queries; the exact search's
  own p50/p99 beside it;
- each dense index's memory (RSS growth when it is read into memory without mmap) against
  its theoretical bytes (``service.dense.theoretical_bytes``);
- BM25 query p50/p99 (``LexicalIndex.search``, same depth).

Encoding is the expensive part: vectors are cached under ``work_dir/vectors`` (a growing
prefix per encoder and seed, with the measured seconds of each block), so reruns and
smaller N skip it. Encoders run in one single-threaded process per core: two BLAS threads
in one process spin-wait on a shared 2-core machine (``encode_throughput`` measures the
three ways). The English encoder is skipped above ``dense_encoder_limit`` chunks, and
above ``multilingual_encoder_limit`` the multilingual vectors are approximated from encoded
sentence variants (``approximate_vectors``); the result says which, and how long encoding
would have taken at the measured rate.

``compare_dense`` puts one corpus's vectors behind each index of ``comparison_grid`` (HNSW
and IVF-PQ at several parameters): the figures behind the defaults in ``service.config``.

    python -m service.scale 10000 100000 --questions eval/questions.jsonl   # run_scale
    python -m service.scale 100000 --compare [--approximate] --questions ...
    python -m service.scale 500 --throughput                                  # encoders

print one JSON line per result.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from service.chunk import ChunkingParams, chunk_document, indexed_text, sentence_spans
from service.chunk import weighted_length as _weighted_length
from service.config import Settings
from service.dense import DenseIndex, DenseParams, theoretical_bytes
from service.embed import Encoder, load_encoder, set_threads
from service.ingest import find_date, read_corpus
from service.lexical import LexicalIndex

__all__ = [
    "Composition",
    "DenseFigures",
    "ScaleResult",
    "SeedPool",
    "StandInEncoder",
    "compare_dense",
    "comparison_grid",
    "encode_throughput",
    "held_out",
    "recall_at_k",
    "run_scale",
    "seed_pool",
    "serve_markdown",
    "serve_scale",
    "synthetic_queries",
    "synthetic_texts",
    "write_corpus",
]

# Bump when synthetic_texts() changes: cached vectors are keyed by it.
GENERATOR_VERSION = 2
RECALL_K = 10
_BLOCK = 1000  # texts per encode task and per cached block

# Person names in the seeds, by script; each occurrence is swapped for a made-up name.
_SEED_NAMES_LATIN = (
    "Ou Boqian", "Li Xixie", "Liu Xu", "Liu Jingni", "Liu Xian", "GONG Qian", "LEE Dal-hee",
    "LEE Hee-sup", "LEE Kang-deok", "PARK Jung Sook", "SHIN Bong-seop", "SHIN Bongkil",
    "YU Shenfei", "Ni Yueju", "Osamu Onodera", "Wang Jiayi", "Wang Dongqian", "Yan Liang",
    "Nam Eunyoung",
)  # fmt: skip
_SEED_NAMES_HAN = ("欧渤芊",)
_SURNAMES = ("Zhang", "Wang", "Chen", "Kim", "Park", "Choi", "Sato", "Suzuki", "Tanaka", "Zhao")
_GIVEN = ("Wei", "Min-jun", "Haruto", "Jiayi", "Seo-yeon", "Yui", "Hao", "Ji-ho", "Ren", "Lin")
_HAN_SURNAMES = "张王李赵陈刘杨黄周吴"
_HAN_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超"
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_NUMBER_RE = re.compile(r"\d+")
_MONTH_RE = re.compile(r"\b(?:" + "|".join(_MONTHS) + r")\b")
_NAME_RE = re.compile("|".join(map(re.escape, _SEED_NAMES_LATIN + _SEED_NAMES_HAN)))


# ------------------------------------------------------------------------ synthetic text


@dataclass(frozen=True)
class SeedPool:
    """What synthetic chunks are made of: the seed sentences per language, and the language
    and weighted length of every real chunk (the shape each synthetic chunk copies)."""

    sentences: dict[str, tuple[str, ...]]
    profiles: tuple[tuple[str, int], ...]


def seed_pool(corpus_dir: Path, params: ChunkingParams) -> SeedPool:
    """Sentences and chunk shapes of the corpus in ``corpus_dir``, chunked with ``params``."""
    sentences: dict[str, list[str]] = {}
    profiles = []
    for document in read_corpus(corpus_dir):
        for chunk in chunk_document(document, params):
            profiles.append((chunk.language, _weighted_length(indexed_text(chunk, document))))
            sentences.setdefault(chunk.language, []).extend(
                document.text[start:end]
                for start, end in sentence_spans(chunk.text, chunk.char_start)
            )
    if not profiles:
        raise ValueError(f"no chunks in {corpus_dir}; synthetic corpora recombine its sentences.")
    return SeedPool({k: tuple(v) for k, v in sentences.items()}, tuple(profiles))


def held_out(queries: Sequence[str], texts: Sequence[str]) -> list[str]:
    """``queries`` without those that are, letter for letter, the text of a chunk."""
    corpus = set(texts)
    return [query for query in queries if query not in corpus]


def _made_up_name(rng: random.Random, han: bool) -> str:
    if han:
        return rng.choice(_HAN_SURNAMES) + "".join(rng.choices(_HAN_GIVEN, k=rng.randint(1, 2)))
    return f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}"


def _number_like(rng: random.Random, digits: str) -> str:
    if len(digits) == 4 and digits[:2] in ("19", "20"):
        return str(rng.randint(1990, 2035))
    if len(digits) == 1:
        return str(rng.randint(1, 9))
    return str(rng.randint(10 ** (len(digits) - 1), 10 ** len(digits) - 1))


def _vary(sentence: str, rng: random.Random) -> str:
    """The sentence with each number, English month and seed person name replaced."""
    sentence = _NUMBER_RE.sub(lambda m: _number_like(rng, m.group()), sentence)
    sentence = _MONTH_RE.sub(lambda _m: rng.choice(_MONTHS), sentence)
    return _NAME_RE.sub(lambda m: _made_up_name(rng, not m.group().isascii()), sentence)


def _compose(pool: SeedPool, n: int, seed: int) -> Iterator[tuple[str, list[int], list[str], str]]:
    """The ``n`` synthetic chunks of ``seed``: language, the seed sentences used (indexes
    into ``pool.sentences[language]``), their varied copies (joined, they are the text) and
    the text. Texts are distinct: a draw that repeats an earlier text (seed sentences
    without a number or name to vary) is drawn again."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < n:
        language, target = rng.choice(pool.profiles)
        sentences = pool.sentences[language]
        joiner = " " if language == "en" else ""
        picks: list[int] = []
        parts: list[str] = []
        length = 0
        while length < target:  # sentences while they bring the length closer to target
            pick = rng.randrange(len(sentences))
            part = _vary(sentences[pick], rng)
            grown = length + _weighted_length(part) + (len(joiner) if parts else 0)
            if parts and grown - target > target - length:
                break
            picks.append(pick)
            parts.append(part)
            length = grown
        text = joiner.join(parts)
        if text not in seen:
            seen.add(text)
            yield language, picks, parts, text


def synthetic_texts(pool: SeedPool, n: int, seed: int) -> list[str]:
    """``n`` distinct chunk texts: each copies the language of a random real chunk and comes
    as close to its length as whole varied seed sentences of that language allow. A prefix
    of a longer list made with the same seed."""
    return [text for _, _, _, text in _compose(pool, n, seed)]


def synthetic_queries(pool: SeedPool, n: int, seed: int) -> list[str]:
    """``n`` distinct held-out queries from their own random stream: the first two thirds of a
    varied seed sentence of at least 40 (weighted) characters, cut at a word (in Chinese,
    at a character). A chunk is whole sentences, so a query shares words with many chunks
    but is never one."""
    rng = random.Random(f"queries-{seed}")
    candidates = {
        language: [s for s in sentences if _weighted_length(s) >= 40]
        for language, sentences in pool.sentences.items()
    }
    languages = [language for language, _ in pool.profiles if candidates[language]]
    queries: dict[str, None] = {}  # distinct, in order
    while len(queries) < n:
        language = rng.choice(languages)
        sentence = _vary(rng.choice(candidates[language]), rng)
        if language == "en":
            words = sentence.split()
            queries[" ".join(words[: max(3, 2 * len(words) // 3)])] = None
        else:
            queries[sentence[: max(8, 2 * len(sentence) // 3)]] = None
    return list(queries)


# ------------------------------------------------------------------------------ encoding

_worker_encoder: Encoder | None = None


def _start_worker(name: str, backend: str, cache_dir: str) -> None:
    global _worker_encoder
    set_threads(1)
    _worker_encoder = load_encoder(name, threads=1, backend=backend, cache_dir=Path(cache_dir))


def _encode_block(texts: Sequence[str]) -> np.ndarray:
    if _worker_encoder is None:
        raise RuntimeError("encode worker was not initialised")
    return _worker_encoder.encode(texts)


def _digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


@dataclass
class _VectorCache:
    """A growing prefix of one encoder's vectors for one text stream: ``<key>.f32`` (raw
    float32 rows, appended 1,000 at a time) and ``<key>.json`` (dim, each block's text
    digest and the wall seconds it took)."""

    directory: Path
    key: str
    dim: int = 0
    digests: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.directory / f"{self.key}.f32"

    @property
    def meta(self) -> Path:
        return self.directory / f"{self.key}.json"

    def open(self, texts: Sequence[str]) -> None:
        """Read the metadata; drop every block from the first whose texts differ from
        ``texts`` (blocks past the end of ``texts`` stay: a longer run checks them)."""
        if not (self.meta.is_file() and self.data.is_file()):
            return
        meta = json.loads(self.meta.read_text())
        self.dim, self.digests, self.seconds = int(meta["dim"]), meta["digests"], meta["seconds"]
        for i, digest in enumerate(self.digests):
            block = texts[i * _BLOCK : (i + 1) * _BLOCK]
            if len(block) < _BLOCK:
                break
            if _digest(block) != digest:
                del self.digests[i:], self.seconds[i:]
                with self.data.open("r+b") as handle:
                    handle.truncate(i * _BLOCK * self.dim * 4)
                self._write_meta()
                break

    def append(self, vectors: np.ndarray, digest: str, seconds: float) -> None:
        self.dim = int(vectors.shape[1])
        with self.data.open("ab") as handle:
            handle.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self.digests.append(digest)
        self.seconds.append(seconds)
        self._write_meta()

    def _write_meta(self) -> None:
        payload = {"dim": self.dim, "digests": self.digests, "seconds": self.seconds}
        staging = self.meta.with_suffix(".tmp")
        staging.write_text(json.dumps(payload))
        os.replace(staging, self.meta)

    def rows(self, n: int) -> np.ndarray:
        return np.fromfile(self.data, dtype=np.float32, count=n * self.dim).reshape(n, self.dim)


def encode_cached(
    name: str,
    texts: Sequence[str],
    *,
    settings: Settings,
    cache_dir: Path,
    key: str,
    progress: bool,
) -> tuple[np.ndarray, float, int]:
    """Vectors of ``texts`` by the encoder ``name``: one single-threaded process per core
    encodes blocks of 1,000, and whole blocks are cached under ``cache_dir`` by ``key``.
    Returns the vectors, the wall seconds encoding them took (measured when each block was
    encoded, model loading included) and how many texts were encoded now."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = _VectorCache(cache_dir, re.sub(r"[^A-Za-z0-9._-]+", "_", key))
    cache.open(texts)
    full = len(texts) // _BLOCK
    cached = min(len(cache.digests), full)
    todo = [texts[i : i + _BLOCK] for i in range(cached * _BLOCK, len(texts), _BLOCK)]
    seconds = sum(cache.seconds[:cached])
    parts = [cache.rows(cached * _BLOCK)] if cached else []
    if todo:
        bar = tqdm(total=len(texts), initial=cached * _BLOCK, desc=f"encode {name}",
                   unit="text", disable=not progress)  # fmt: skip
        with ProcessPoolExecutor(
            max(1, min(settings.effective_threads(), len(todo))),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(name, settings.dense_backend, str(settings.index_dir / "onnx")),
        ) as pool:
            started = time.perf_counter()
            for block, vectors in zip(todo, pool.map(_encode_block, todo), strict=True):
                # wall time between finished blocks: what the processes together took
                now = time.perf_counter()
                elapsed, started = now - started, now
                seconds += elapsed
                if len(block) == _BLOCK:
                    cache.append(vectors, _digest(block), elapsed)
                parts.append(vectors)
                bar.update(len(block))
        bar.close()
    if not parts:
        return np.zeros((0, cache.dim), dtype=np.float32), 0.0, 0
    vectors = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    return vectors, seconds, sum(map(len, todo))


def _encode_in_process(
    name: str, settings: Settings, threads: int, texts: list[str], start: Any = None
) -> float:
    """Seconds one process with ``threads`` threads takes to encode ``texts`` (the model is
    loaded and warmed first, then the process waits at the barrier ``start`` if given)."""
    set_threads(threads)
    encoder = load_encoder(
        name, threads=threads, backend=settings.dense_backend, cache_dir=settings.index_dir / "onnx"
    )
    encoder.encode(texts[:32])
    if start is not None:
        start.wait()
    started = time.perf_counter()
    encoder.encode(texts)
    return time.perf_counter() - started


def _encode_share(name: str, settings: Settings, texts: list[str], start: Any, out: Any) -> None:
    out.put(_encode_in_process(name, settings, 1, texts, start))


def encode_throughput(
    name: str, settings: Settings, n: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Chunks a second the encoder ``name`` encodes synthetic chunks at, three ways: one
    process with one thread, one process with a thread per core, and one single-threaded
    process per core (each on its share of the texts, started together; loading excluded).
    """
    cores = settings.effective_threads()
    pool = seed_pool(
        settings.corpus_dir, ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    )
    texts = synthetic_texts(pool, n, seed)
    rates = {
        "1 process, 1 thread": n / _in_process(_encode_in_process, name, settings, 1, texts),
        f"1 process, {cores} threads": n
        / _in_process(_encode_in_process, name, settings, cores, texts),
    }
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(cores), context.Queue()
    workers = [
        context.Process(target=_encode_share, args=(name, settings, texts[i::cores], start, out))
        for i in range(cores)
    ]
    for worker in workers:
        worker.start()
    seconds = [out.get() for _ in workers]  # all start encoding together: the slowest paces
    for worker in workers:
        worker.join()
    rates[f"{cores} processes, 1 thread each"] = n / max(seconds)
    return {k: round(v, 1) for k, v in rates.items()}


# ------------------------------------------------------------------ approximated vectors

BANK_VARIANTS = 8  # encoded variants of every seed sentence


def _cache_key(model: str, seed: int, *, bank: bool = False) -> str:
    kind = f"bank{BANK_VARIANTS}-" if bank else ""
    return f"{model}-{kind}seed{seed}-gen{GENERATOR_VERSION}"


def _bank(pool: SeedPool, seed: int) -> tuple[list[str], dict[str, int]]:
    """``BANK_VARIANTS`` varied copies of every seed sentence, and where each language's
    sentences start: variant ``v`` of sentence ``i`` is at ``offsets[language] + i * V + v``."""
    rng = random.Random(f"bank-{seed}")
    texts: list[str] = []
    offsets = {}
    for language in sorted(pool.sentences):
        offsets[language] = len(texts)
        for sentence in pool.sentences[language]:
            texts.extend(_vary(sentence, rng) for _ in range(BANK_VARIANTS))
    return texts, offsets


def approximate_vectors(
    pool: SeedPool,
    n: int,
    seed: int,
    bank: np.ndarray,
    offsets: dict[str, int],
    progress: bool = False,
) -> np.ndarray:
    """Stand-ins for the encoded vectors of the ``n`` chunks of ``seed``, when encoding them
    all would take hours: each chunk's vector is the L2-normalized sum of the vectors of
    the seed sentences it is made of (a random encoded variant of each), weighted by their
    length. Against the USE vectors of the first 20,000 chunks the cosine is 0.885 on
    average (0.82 at the 10th percentile): not the chunks' vectors, but a cloud of the same
    kind. ``compare_dense`` with and without ``approximate`` at 100k measured the same
    ranking of index kinds on both (recall within about 0.03)."""
    rng = np.random.default_rng(seed)
    lengths = {
        language: np.array([_weighted_length(s) for s in sentences], dtype=np.float32)
        for language, sentences in pool.sentences.items()
    }
    out = np.empty((n, bank.shape[1]), dtype=np.float32)
    chunks = tqdm(_compose(pool, n, seed), total=n, desc="approximate", unit="chunk",
                  disable=not progress)  # fmt: skip
    for row, (language, picks, _, _) in enumerate(chunks):
        variants = rng.integers(0, BANK_VARIANTS, len(picks))
        rows = offsets[language] + np.asarray(picks) * BANK_VARIANTS + variants
        vector = lengths[language][picks] @ bank[rows]
        out[row] = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return out


def _estimate(cache_dir: Path, model: str, seed: int, n: int) -> str:
    """How long encoding ``n`` chunks would take, at the rate the cached ones took."""
    meta = _VectorCache(cache_dir, _cache_key(model, seed)).meta
    seconds = json.loads(meta.read_text())["seconds"] if meta.is_file() else []
    if not seconds or sum(seconds) <= 0:
        return " (no encoding of this model was measured yet to estimate the time)"
    rate = len(seconds) * _BLOCK / sum(seconds)
    needed = n / rate
    duration = f"{needed / 3600:.1f} h" if needed >= 3600 else f"{needed / 60:.0f} min"
    return (
        f" (encoding them would take about {duration} at the {rate:.1f} chunks/s "
        f"measured on {len(seconds) * _BLOCK} cached chunks)"
    )


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class DenseFigures:
    """One dense index at one N."""

    model: str
    dim: int
    spec: dict[str, Any]  # kind and parameters, as the manifest records them
    build_seconds: float
    bytes_on_disk: int
    memory_bytes: int  # RSS growth when read into memory without mmap
    theoretical_bytes: int  # service.dense.theoretical_bytes
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
            bank_texts, offsets = _bank(pool, plan.seed)
            bank, bank_seconds, encoded_now[name] = encode_cached(
                model, bank_texts, settings=settings, cache_dir=plan.cache_dir,
                key=_cache_key(model, plan.seed, bank=True), progress=plan.progress,
            )  # fmt: skip
            started = time.perf_counter()
            vectors = approximate_vectors(pool, plan.n, plan.seed, bank, offsets, plan.progress)
            seconds[f"encode {name}"] = bank_seconds + time.perf_counter() - started
        else:
            vectors, seconds[f"encode {name}"], encoded_now[name] = encode_cached(
                model, texts, settings=settings, cache_dir=plan.cache_dir,
                key=_cache_key(model, plan.seed), progress=plan.progress,
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
        "rss_build_peak_bytes": _status("VmHWM"),
        "query_sets": {name: held_out(qs, texts) for name, qs in plan.query_sets.items()},
    }


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


def _recalls(
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


def _probe(plan: _Plan, specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Load the built files as the server does and query them (own process)."""
    settings = plan.settings
    threads = min(settings.query_threads, settings.effective_threads())
    set_threads(threads)
    depth = settings.retriever_depth
    queries = [q for texts in plan.query_sets.values() for q in texts]
    # each index alone, read into memory: its own footprint
    figures: dict[str, Any] = {
        "dense": {
            name: {"memory_bytes": _index_memory(plan.directory / f"{name}.faiss", spec)}
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
        name: _query_encoder(model, settings, threads).encode(queries)
        for name, model in plan.encoders.items()
    }
    found = {}
    for name, index in dense.items():
        index.search(query_vectors[name][0], depth)  # first touch of the mapped file
        found[name], times = _timed(index.search, list(query_vectors[name]), depth)
        figures["dense"][name] |= dict(zip(("p50_ms", "p99_ms"), _percentiles(times), strict=True))
    _, times = _timed(lexical.search, queries, depth)
    figures["bm25_p50_ms"], figures["bm25_p99_ms"] = _percentiles(times)
    figures["rss_service_bytes"] = _status("VmRSS")
    figures["rss_service_anon_bytes"] = _status("RssAnon")
    del dense, lexical

    # exact search over the same vectors, for recall and as the baseline
    set_sizes = {name: len(texts) for name, texts in plan.query_sets.items()}
    for name in specs:
        vectors = np.load(plan.directory / f"exact.{name}.npy", allow_pickle=False)
        exact, p50, p99 = _exact_search(vectors, query_vectors[name], depth)
        figures["dense"][name] |= {
            "exact_p50_ms": p50,
            "exact_p99_ms": p99,
            "recall_at_10": _recalls(vectors, query_vectors[name], found[name], exact, set_sizes),
        }
        del vectors
    return figures


def _query_encoder(model: str, settings: Settings, threads: int) -> Encoder:
    """The encoder the server encodes questions with."""
    return load_encoder(
        model,
        threads=threads,
        backend=settings.dense_backend,
        cache_dir=settings.index_dir / "onnx",
        int8=settings.query_int8,
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
    results = []
    for n in sorted(sizes):
        encoders = {"multilingual": settings.multilingual_model}
        skipped = []
        cache_dir = work_dir / "vectors"
        if n <= dense_encoder_limit:
            encoders["dense"] = settings.dense_model
        else:
            skipped.append(
                f"dense ({settings.dense_model}): not encoded above {dense_encoder_limit} "
                f"chunks{_estimate(cache_dir, settings.dense_model, seed, n)}"
            )
        approximate = frozenset({"multilingual"} if n > multilingual_encoder_limit else ())
        if approximate:
            skipped.append(
                f"multilingual ({settings.multilingual_model}): vectors approximated from "
                f"encoded sentence variants above {multilingual_encoder_limit} chunks"
                f"{_estimate(cache_dir, settings.multilingual_model, seed, n)}"
            )
        plan = _Plan(
            n=n,
            seed=seed,
            settings=settings,
            directory=work_dir / f"n{n}",
            cache_dir=cache_dir,
            encoders=encoders,
            query_sets=query_sets,
            progress=progress,
            approximate=approximate,
        )
        load_average = os.getloadavg()
        built = _in_process(_build, plan)
        plan = replace(plan, query_sets=built["query_sets"])  # without queries that are chunks
        probed = _in_process(_probe, plan, built["specs"])
        bytes_on_disk = {
            name: _bytes_under(plan.directory / f"{name}.faiss") for name in encoders
        } | {"bm25": _bytes_under(plan.directory / "bm25")}
        ivfpq_copies = {
            name: _bytes_under(plan.directory / f"{name}.vectors.npy")
            for name in encoders
            if (plan.directory / f"{name}.vectors.npy").is_file()
        }
        for name, size in ivfpq_copies.items():
            bytes_on_disk[f"{name} float copy"] = size
        bytes_on_disk["total"] = sum(bytes_on_disk.values())
        dense = {}
        for name, model in encoders.items():
            spec, dim, got = built["specs"][name], built["dims"][name], probed["dense"][name]
            theory = theoretical_bytes(spec, n, dim)
            dense[name] = DenseFigures(
                model=model,
                dim=dim,
                spec=spec,
                build_seconds=round(built["seconds"][f"index {name}"], 3),
                bytes_on_disk=bytes_on_disk[name],
                memory_bytes=got["memory_bytes"],
                theoretical_bytes=theory,
                memory_ratio=round(got["memory_bytes"] / theory, 3),
                p50_ms=round(got["p50_ms"], 3),
                p99_ms=round(got["p99_ms"], 3),
                exact_p50_ms=round(got["exact_p50_ms"], 3),
                exact_p99_ms=round(got["exact_p99_ms"], 3),
                recall_at_10={k: round(v, 4) for k, v in got["recall_at_10"].items()},
            )
        results.append(
            ScaleResult(
                chunks=n,
                seed=seed,
                queries={k: len(v) for k, v in plan.query_sets.items()},
                encoders=encoders,
                approximated=tuple(sorted(approximate)),
                skipped=tuple(skipped),
                seconds={k: round(v, 3) for k, v in built["seconds"].items()},
                encoded_now=built["encoded_now"],
                bytes_on_disk=bytes_on_disk,
                rss_build_peak_bytes=built["rss_build_peak_bytes"],
                rss_service_bytes=probed["rss_service_bytes"],
                rss_service_anon_bytes=probed["rss_service_anon_bytes"],
                dense=dense,
                bm25_p50_ms=round(probed["bm25_p50_ms"], 3),
                bm25_p99_ms=round(probed["bm25_p99_ms"], 3),
                threads=settings.effective_threads(),
                load_average=load_average,
            )
        )
    return results


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
    memory = _index_memory(path, specs[0])
    figures = []
    for spec in specs:
        index = DenseIndex.load(path, spec)
        index.search(query_vectors[0], depth)
        found, times = _timed(index.search, list(query_vectors), depth)
        p50, p99 = _percentiles(times)
        figures.append({"memory_bytes": memory, "p50_ms": p50, "p99_ms": p99, "found": found})
        del index
    return figures


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
    cache_dir = work_dir / "vectors"
    set_threads(settings.effective_threads())
    if approximate:
        bank_texts, offsets = _bank(pool, seed)
        bank, _, _ = encode_cached(
            model, bank_texts, settings=settings, cache_dir=cache_dir,
            key=_cache_key(model, seed, bank=True), progress=progress,
        )  # fmt: skip
        vectors = approximate_vectors(pool, n, seed, bank, offsets, progress)
    else:
        vectors, _, _ = encode_cached(
            model, synthetic_texts(pool, n, seed), settings=settings, cache_dir=cache_dir,
            key=_cache_key(model, seed), progress=progress,
        )  # fmt: skip
    query_texts = {"held-out": synthetic_queries(pool, queries, seed)}
    if questions:
        query_texts["questions"] = list(questions)
    encoder = _query_encoder(model, settings, settings.effective_threads())
    query_vectors = encoder.encode([q for qs in query_texts.values() for q in qs])
    groups: dict[str, list[dict[str, Any]]] = {}
    for spec in candidates:
        build_part = {k: v for k, v in spec.items() if k not in _SEARCH_KEYS}
        groups.setdefault(json.dumps(build_part, sort_keys=True), []).append(spec)
    results: list[tuple[dict[str, Any], float, int, dict[str, Any]]] = []
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
        size = _bytes_under(path)
        probed = _in_process(
            _probe_candidates, path, specs, query_vectors, settings.retriever_depth
        )
        results += [
            (spec, build_seconds, size, got) for spec, got in zip(specs, probed, strict=True)
        ]
    set_threads(1)
    set_sizes = {name: len(texts) for name, texts in query_texts.items()}
    label = f"{model} (approximated)" if approximate else model
    exact, exact_p50, exact_p99 = _exact_search(vectors, query_vectors, settings.retriever_depth)
    figures = []
    for spec, build_seconds, size, got in results:
        recall = _recalls(vectors, query_vectors, got["found"], exact, set_sizes)
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
    """The candidates ``python -m service.scale --compare`` measures: HNSW with M 16 and 32
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


# ------------------------------------------------------------------- the whole service

SERVE_SOURCE = "Synthetic Wire"
_DOC_PARAGRAPHS = (20, 60)  # synthetic chunks a document holds (uniform): some dozens
_FIRST_DAY = 735_234  # 2014-01-01 as a date ordinal
_DAYS = 4_383  # to the end of 2025
_MEMORY_GUARD = 18 * 2**30  # a build above this RSS (or under 1.5 GiB available) stops


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


@dataclass
class Composition:
    """How the texts of a written synthetic corpus were made, for the stand-in encoders.

    Every sentence (``sentence_spans`` of a synthetic paragraph, and every title) maps to
    the seed-sentence variants it is made of: rows of the bank (``_bank``) and their
    weighted lengths. ``paragraphs`` maps each synthetic paragraph to its row in the
    synthetic stream (whose encoded vectors the cache may hold); ``real_texts`` are the
    texts of the copied seed documents, which are encoded for real."""

    segments: dict[bytes, int] = field(default_factory=dict)  # sentence key -> entry
    ends: dict[bytes, int] = field(default_factory=dict)  # a part's first/last 16 -> row
    starts: list[int] = field(default_factory=lambda: [0])  # entry -> first part
    rows: list[int] = field(default_factory=list)  # part -> bank row
    weights: list[float] = field(default_factory=list)  # part -> weighted length
    paragraphs: dict[bytes, int] = field(default_factory=dict)  # paragraph key -> row
    blocks: list[str] = field(default_factory=list)  # _digest of each full 1,000 paragraphs
    real_texts: set[bytes] = field(default_factory=set)
    documents: int = 0

    def add_sentence(self, text: str, parts: Sequence[tuple[int, float]]) -> None:
        key = _key(text)
        if key in self.segments:
            return
        self.segments[key] = len(self.starts) - 1
        for row, weight in parts:
            self.rows.append(row)
            self.weights.append(weight)
        self.starts.append(len(self.rows))

    def parts(self, text: str) -> tuple[list[int], list[float]] | None:
        entry = self.segments.get(_key(text))
        if entry is None:
            return None
        start, end = self.starts[entry], self.starts[entry + 1]
        return self.rows[start:end], self.weights[start:end]

    def piece(self, text: str) -> int | None:
        """The bank row of the seed sentence a piece of one begins or ends like (the
        splitter cuts long paragraphs inside sentences, at commas or spaces)."""
        if len(text) < _END:
            return None
        found = self.ends.get(_key("<" + text[:_END]))
        return found if found is not None else self.ends.get(_key(">" + text[-_END:]))


_END = 16  # characters of a part's start and end that identify a piece of it


def _bank_row(offsets: dict[str, int], language: str, pick: int, part: str) -> int:
    """The bank row of a varied seed sentence: one of its ``BANK_VARIANTS`` encoded
    variants, chosen by the text (the same text always gets the same)."""
    return offsets[language] + pick * BANK_VARIANTS + _key(part)[0] % BANK_VARIANTS


def _register(
    composition: Composition,
    offsets: dict[str, int],
    language: str,
    picks: Sequence[int],
    parts: Sequence[str],
    text: str,
) -> None:
    """Map each sentence of the paragraph ``text`` (joined ``parts``) to its parts."""
    joiner = len(text) - sum(map(len, parts))
    joiner = joiner // (len(parts) - 1) if len(parts) > 1 else 0
    spans, position = [], 0
    for pick, part in zip(picks, parts, strict=True):
        spans.append(
            (
                position,
                position + len(part),
                _bank_row(offsets, language, pick, part),
                _weighted_length(part),
            )
        )
        position += len(part) + joiner
        if len(part) >= _END:
            composition.ends.setdefault(_key("<" + part[:_END]), spans[-1][2])
            composition.ends.setdefault(_key(">" + part[-_END:]), spans[-1][2])
    for start, end in sentence_spans(text):
        composition.add_sentence(
            text[start:end],
            [
                (row, weight * (min(end, b) - max(start, a)) / max(1, b - a))
                for a, b, row, weight in spans
                if a < end and b > start
            ],
        )


def _title(
    rng: random.Random, pool: SeedPool, language: str, offsets: dict[str, int]
) -> tuple[str, int]:
    """A headline: a varied seed sentence of ``language`` of 40 to 140 weighted characters
    without a date in it (the dateline is the line below), and its bank row."""
    sentences = pool.sentences[language]
    fitting = [i for i, s in enumerate(sentences) if 40 <= _weighted_length(s) <= 140]
    fitting = fitting or list(range(len(sentences)))
    for _ in range(20):
        pick = rng.choice(fitting)
        title = _vary(sentences[pick], rng)
        if "\n" not in title and find_date(title) is None:
            break
    return title, _bank_row(offsets, language, pick, title)


def write_corpus(
    pool: SeedPool,
    n: int,
    seed: int,
    corpus_dir: Path,
    *,
    seeds_dir: Path | None = None,
    params: ChunkingParams | None = None,
    progress: bool = False,
) -> Composition:
    """Write the ``n`` synthetic chunks of ``seed`` as documents in ``corpus_dir``, one a
    paragraph, 20 to 60 a document, under a headline and a ``Source: ... | date`` line (the
    shape of the seed pages), plus a copy of every file of ``seeds_dir`` (so the eval
    questions have their answers). Files of earlier corpora there are removed."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for old in corpus_dir.iterdir():
        if old.is_file() and old.suffix in (".txt", ".md"):
            old.unlink()
    _, offsets = _bank(pool, seed)
    composition = Composition()
    rng = random.Random(f"documents-{seed}")
    block: list[str] = []
    paragraphs: list[str] = []
    size = rng.randint(*_DOC_PARAGRAPHS)
    header: tuple[str, str] = ("", "")

    def flush() -> None:
        title, date = header
        text = f"{title}\n\nSource: {SERVE_SOURCE} | {date}\n\n" + "\n\n".join(paragraphs) + "\n"
        name = f"syn{seed}-{composition.documents:07d}.txt"
        (corpus_dir / name).write_text(text, encoding="utf-8")
        composition.documents += 1

    stream = tqdm(
        _compose(pool, n, seed), total=n, desc="write corpus", unit="chunk", disable=not progress
    )
    for row, (language, picks, parts, text) in enumerate(stream):
        if not paragraphs:
            title, title_row = _title(rng, pool, language, offsets)
            composition.add_sentence(title, [(title_row, float(_weighted_length(title)))])
            day = dt.date.fromordinal(_FIRST_DAY + rng.randrange(_DAYS)).isoformat()
            header = (title, day)
        _register(composition, offsets, language, picks, parts, text)
        composition.paragraphs[_key(text)] = row
        paragraphs.append(text)
        block.append(text)
        if len(block) == _BLOCK:
            composition.blocks.append(_digest(block))
            block = []
        if len(paragraphs) == size:
            flush()
            paragraphs, size = [], rng.randint(*_DOC_PARAGRAPHS)
    if paragraphs:
        flush()
    if seeds_dir is not None:
        params = params or ChunkingParams(600, 90)
        for path in sorted(seeds_dir.iterdir()):
            if path.is_file() and path.suffix in (".txt", ".md"):
                (corpus_dir / path.name).write_bytes(path.read_bytes())
        for document in read_corpus(seeds_dir):
            for chunk in chunk_document(document, params):
                composition.real_texts.add(_key(indexed_text(chunk, document)))
                composition.real_texts.update(
                    _key(document.text[a:b])
                    for a, b in sentence_spans(chunk.text, chunk.char_start)
                )
    return composition


class StandInEncoder:
    """An encoder with a configured model's ``name`` and ``dim`` whose vectors stand in for
    the model's own, for corpora too large to encode (see ``serve_scale``). Each text gets:

    - ``real``: the model's cached vector of that synthetic paragraph;
    - ``real body + title from bank``: a paragraph under its document's headline (what
      ``indexed_text`` indexes): the cached vector of the paragraph and the bank vector of
      the headline, weighted by length;
    - ``sentence from bank``: a sentence made of one seed sentence: the encoded vector of a
      variant of it (``_bank``);
    - ``approximated``: the length-weighted sum of the bank vectors of its sentences'
      seed sentences, L2-normalised (``approximate_vectors``' way); a piece of a sentence
      (the splitter cuts long paragraphs at commas and spaces) counts as its seed sentence
      when it begins or ends like it (``sentence piece from bank`` when it is the whole
      text); sentences of no seed (a dateline) are left out of the sum;
    - ``encoded``: the copied seed documents' texts, by the model itself;
    - ``fallback (encoded)``: a text with nothing known (a dateline alone), by the model
      itself, the first ``fallback_budget`` of them (the English model encodes about 13
      chunks a second here); ``fallback (random)``: the others, a random unit vector
      seeded by the text.

    ``counts`` adds up what each text got."""

    def __init__(
        self,
        name: str,
        dim: int,
        *,
        bank: np.ndarray,
        composition: Composition,
        real: np.ndarray | None,
        load_real: Callable[[], Encoder],
        fallback_budget: int = 2000,
    ) -> None:
        self.name = name
        self.dim = dim
        self.counts: dict[str, int] = {}
        self._bank = bank
        self._composition = composition
        self._real = real if real is not None else np.zeros((0, dim), dtype=np.float32)
        self._load_real = load_real
        self._model: Encoder | None = None
        self._fallback_budget = fallback_budget
        self._fallbacks_encoded = 0

    def __hash__(self) -> int:
        return id(self)

    def _count(self, kind: str, number: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + number

    def _sentences(self, text: str) -> tuple[np.ndarray | None, int, int, int]:
        """Weighted bank sum of the sentences of ``text`` (pieces of sentences by their
        start or end); how many sentences were known, pieces, unknown."""
        total = np.zeros(self.dim, dtype=np.float32)
        known = pieces = unknown = 0
        for start, end in sentence_spans(text):
            sentence = text[start:end]
            found = self._composition.parts(sentence)
            if found is not None:
                rows, weights = found
                total += np.asarray(weights, dtype=np.float32) @ self._bank[rows]
                known += 1
            elif (row := self._composition.piece(sentence)) is not None:
                total += _weighted_length(sentence) * self._bank[row]
                pieces += 1
            else:
                unknown += 1
        return (total if known or pieces else None), known, pieces, unknown

    def _vector(self, text: str) -> tuple[np.ndarray | None, str]:
        composition = self._composition
        key = _key(text)
        if key in composition.real_texts:
            return None, "encoded"
        row = composition.paragraphs.get(key)
        if row is not None and row < len(self._real):
            return self._real[row], "real"
        title, newline, body = text.partition("\n")
        row = composition.paragraphs.get(_key(body)) if newline else None
        if row is not None and row < len(self._real):
            found = composition.parts(title)
            if found is not None:
                rows, weights = found
                vector = np.asarray(weights, dtype=np.float32) @ self._bank[rows]
                vector = vector + _weighted_length(body) * self._real[row]
                return _unit(vector), "real body + title from bank"
        vector, known, pieces, unknown = self._sentences(text)
        if vector is None:
            if self._fallbacks_encoded < self._fallback_budget:
                self._fallbacks_encoded += 1
                return None, "fallback (encoded)"
            vector = np.random.default_rng(int.from_bytes(key, "little")).normal(size=self.dim)
            return _unit(vector.astype(np.float32)), "fallback (random)"
        if known == 1 and not (pieces or unknown):
            return _unit(vector), "sentence from bank"
        if pieces == 1 and not (known or unknown):
            return _unit(vector), "sentence piece from bank"
        return _unit(vector), "approximated"

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        todo: list[int] = []
        for i, text in enumerate(
            tqdm(texts, desc=f"stand-in {self.name}", unit="text", disable=not progress)
        ):
            vector, kind = self._vector(text)
            self._count(kind)
            if vector is None:
                todo.append(i)
            else:
                out[i] = vector
        if todo:
            if self._model is None:
                self._model = self._load_real()
            out[todo] = self._model.encode([texts[i] for i in todo], progress=progress)
        return out


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _real_vectors(
    cache_dir: Path, model: str, seed: int, blocks: Sequence[str]
) -> np.ndarray | None:
    """The cached encoded vectors of the synthetic stream's first blocks, as many as match
    ``blocks`` (the text digests of the corpus written now), or None."""
    cache = _VectorCache(cache_dir, re.sub(r"[^A-Za-z0-9._-]+", "_", _cache_key(model, seed)))
    if not (cache.meta.is_file() and cache.data.is_file()):
        return None
    meta = json.loads(cache.meta.read_text())
    cache.dim = int(meta["dim"])
    matching = 0
    for cached, wanted in zip(meta["digests"], blocks, strict=False):
        if cached != wanted:
            break
        matching += 1
    return cache.rows(matching * _BLOCK) if matching else None


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
            rss = _status("VmRSS")
            step = self.current
            self.peaks[step] = max(self.peaks.get(step, 0), rss)
            available = _meminfo("MemAvailable")
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

    def wrap(self, owner: Any, attribute: str, name: str | Callable[[], str]) -> Callable[[], None]:
        """Time every call of ``owner.attribute`` as step ``name`` (a callable names each
        call); returns what undoes it."""
        original = getattr(owner, attribute, None)
        if original is None:  # not there in this version of the module: not timed
            return lambda: None
        raw = owner.__dict__.get(attribute) if isinstance(owner, type) else None

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.step(name() if callable(name) else name):
                return original(*args, **kwargs)

        setattr(owner, attribute, staticmethod(timed) if isinstance(owner, type) else timed)

        def undo() -> None:
            setattr(owner, attribute, raw if raw is not None else original)

        return undo


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


def _serve_build(plan: _ServePlan) -> dict[str, Any]:
    """Write the corpus and build a real generation of it with stand-in encoders (own
    process): seconds and RSS peak per step, what each text's vector is."""
    from service import index as index_module

    settings = _fresh(plan.settings)
    set_threads(settings.effective_threads())
    directory = settings.index_dir.parent
    steps = _Steps(plan.guard, directory / "build-abort.json")
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
    encoders = []
    with steps.step("bank and cached vectors"):
        bank_texts, _ = _bank(pool, plan.seed)
        for model in (settings.dense_model, settings.multilingual_model):
            bank, _, _ = encode_cached(
                model,
                bank_texts,
                settings=settings,
                cache_dir=plan.cache_dir,
                key=_cache_key(model, plan.seed, bank=True),
                progress=plan.progress,
            )

            def load_real(model: str = model) -> Encoder:
                return load_encoder(
                    model,
                    threads=settings.effective_threads(),
                    backend=settings.dense_backend,
                    cache_dir=settings.index_dir / "onnx",
                )

            real = _real_vectors(plan.cache_dir, model, plan.seed, composition.blocks)
            encoders.append(
                StandInEncoder(
                    model,
                    int(bank.shape[1]),
                    bank=bank,
                    composition=composition,
                    real=real,
                    load_real=load_real,
                )
            )
    calls = iter(
        [
            "encode dense chunks",
            "encode dense sentences",
            "encode multilingual chunks",
            "encode multilingual sentences",
        ]
    )
    undo = [
        steps.wrap(index_module, "corpus_hash", "corpus hash"),
        steps.wrap(index_module, "read_document", "read documents"),
        steps.wrap(index_module, "chunk_document", "chunk"),
        steps.wrap(index_module, "sentence_spans", "sentence spans"),
        steps.wrap(index_module, "_previous_vectors", "previous generation's vectors"),
        steps.wrap(index_module, "_encode_new", lambda: next(calls, "encode")),
        steps.wrap(index_module.DenseIndex, "build", "dense index build"),
        steps.wrap(index_module.LexicalIndex, "build", "bm25 build"),
        steps.wrap(index_module, "_write_jsonl", "write jsonl"),
        steps.wrap(index_module, "_file_table", "checksums"),
        steps.wrap(index_module, "_publish", "fsync and publish"),
    ]
    try:
        with steps.step("build_index"):
            result = index_module.build_index(
                settings,
                force=plan.force,
                progress=plan.progress,
                encoders=(encoders[0], encoders[1]),
            )
    finally:
        for step in undo:
            step()
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
        "peak_rss_bytes": _status("VmHWM"),
        "stand_ins": {
            name: {
                "model": encoder.name,
                "dim": encoder.dim,
                "counts": encoder.counts,
                "real_vectors_available": len(encoder._real),
            }
            for name, encoder in zip(("dense", "multilingual"), encoders, strict=True)
        },
    }


def _serve_probe(
    settings: Settings, query_sets: dict[str, list[str]], depth: int
) -> dict[str, Any]:
    """Load the generation as ``citeqa serve`` does (``load_index`` and ``Engine``, fresh
    process) and measure loading, memory, ``Engine.ask`` by stage, BM25 and dense search."""
    from service import index as index_module
    from service.engine import Engine

    settings = _fresh(settings)
    steps = _Steps(2**62)
    undo = [
        steps.wrap(index_module, "_check_files", "checksums"),
        steps.wrap(index_module, "_read_documents", "read documents"),
        steps.wrap(index_module.ChunkTable, "from_rows", "read chunks"),
        steps.wrap(index_module.DenseIndex, "load", "dense load"),
        steps.wrap(index_module.LexicalIndex, "load", "bm25 load"),
        steps.wrap(index_module, "_encoders", "query encoders"),
    ]
    started = time.perf_counter()
    try:
        with steps.step("load_index"):
            index = index_module.load_index(settings)
        with steps.step("Engine"):
            engine = Engine(index, settings, base_url=settings.public_url)
        with steps.step("warm-up ask"):
            engine.ask("warm up 预热", top_k=1)
    finally:
        for step in undo:
            step()
        steps.close()
    load_seconds = time.perf_counter() - started
    after_load = _rollup()
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
    queries = [q for qs in query_sets.values() for q in qs]
    _, bm25_times = _timed(index.lexical.search, queries, depth)
    dense_times = {}
    for name, store, encoder in (
        ("multilingual", index.multilingual, index.multilingual_encoder),
        ("dense", index.dense, index.dense_encoder),
    ):
        vectors = encoder.encode(queries)
        store.search(vectors[0], depth)
        _, dense_times[name] = _timed(store.search, list(vectors), depth)
    after = _rollup()

    def figures(values: Sequence[float]) -> dict[str, float]:
        p50, p99 = _percentiles(values)
        return {"p50": round(p50, 3), "p99": round(p99, 3)}

    return {
        "load_seconds": round(load_seconds, 2),
        "load_steps": {k: round(v, 2) for k, v in steps.seconds.items()},
        "memory_after_load": after_load,
        "memory_after_queries": after,
        "ask_ms": {stage: figures(values) for stage, values in stages.items()},
        "ask_total_ms_by_set": {name: figures(values) for name, values in per_set.items()},
        "answered": answered,
        "abstained": abstained,
        "citation_mismatches": mismatches,
        "bm25_ms": figures(bm25_times),
        "dense_ms": {name: figures(times) for name, times in dense_times.items()},
        "counts": dict(index.manifest["counts"]),
        "dense_index": index.manifest.get("dense_index", {}),
    }


def _serve_http(
    settings: Settings, workers: int, questions: Sequence[str], ready_timeout: float
) -> dict[str, Any]:
    """``citeqa serve --workers N`` on a free port: seconds until ``/readyz``, one
    keep-alive client's ``POST /ask`` p50/p99, and the server processes' summed RSS/PSS."""
    import http.client
    import socket
    import subprocess

    from service.load import server_processes, tree_rss

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = dict(os.environ) | {
        "CITEQA_INDEX_DIR": str(settings.index_dir.resolve()),
        "CITEQA_CORPUS_DIR": str(settings.corpus_dir.resolve()),
        "CITEQA_RATE_LIMIT_PER_MINUTE": "0",
        "CITEQA_REQUEST_BUDGET_SECONDS": "120",
    }
    command = [
        sys.executable,
        "-m",
        "service",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"the server exited before it was ready:\n{error[-2000:]}")
            try:
                connection.request("GET", "/readyz")
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    break
            except (OSError, http.client.HTTPException):
                connection.close()
            if time.perf_counter() - started > ready_timeout:
                raise RuntimeError(f"the server was not ready within {ready_timeout:.0f} s")
            time.sleep(0.5)
        ready = time.perf_counter() - started
        pids = server_processes(process.pid) or [process.pid]
        rss_ready, pss_ready = tree_rss(pids)
        times, errors, payloads = [], 0, []
        headers = {"Content-Type": "application/json"}
        for question in questions:
            body = json.dumps({"question": question, "top_k": 5})
            begun = time.perf_counter()
            connection.request("POST", "/ask", body, headers)
            response = connection.getresponse()
            payload = response.read()
            times.append((time.perf_counter() - begun) * 1000)
            errors += response.status != 200
            payloads.append(payload)
        answered, mismatches = _check_citations(settings.corpus_dir, payloads)
        rss, pss = tree_rss(pids)
        p50, p99 = _percentiles(times)
        return {
            "workers": workers,
            "processes": len(pids),
            "ready_seconds": round(ready, 1),
            "requests": len(times),
            "errors": errors,
            "answered": answered,
            "citation_mismatches": mismatches,
            "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2),
            "rss_ready_bytes": rss_ready,
            "pss_ready_bytes": pss_ready,
            "rss_bytes": rss,
            "pss_bytes": pss,
        }
    finally:
        connection.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _check_citations(corpus_dir: Path, payloads: Sequence[bytes]) -> tuple[int, int]:
    """How many ``/ask`` answers there were, and how many of their citations do not slice
    out of the corpus file (read byte for byte, as ingestion reads it)."""
    texts: dict[str, str] = {}
    answered = mismatches = 0
    for payload in payloads:
        answer = json.loads(payload).get("answer")
        if not answer:
            continue
        answered += 1
        citation = answer["citation"]
        doc_id = citation["doc_id"]
        if doc_id not in texts:
            path = next(corpus_dir.glob(f"{glob.escape(doc_id)}.*"))
            texts[doc_id] = path.read_bytes().decode("utf-8")
        quote = texts[doc_id][citation["char_start"] : citation["char_end"]]
        mismatches += quote != citation["quote"]
    return answered, mismatches


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
    guard: int = _MEMORY_GUARD,
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
    synthetic = synthetic_queries(pool, queries, seed)
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
            "load_average": os.getloadavg(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        try:
            row["build"] = _in_process(_serve_build, plan)
        except BrokenProcessPool:
            abort = directory / "build-abort.json"
            if not abort.is_file():
                raise
            row["build_aborted"] = json.loads(abort.read_text())
            yield row
            continue
        generation = Path(row["build"]["generation"])
        row["bytes_on_disk"] = {
            path.relative_to(generation).as_posix(): path.stat().st_size
            for path in sorted(generation.rglob("*"))
            if path.is_file()
        }
        row["bytes_on_disk"]["total"] = sum(row["bytes_on_disk"].values())
        row["bytes_on_disk"]["corpus"] = _bytes_under(scoped.corpus_dir)
        query_sets = {"eval questions": list(questions), "held-out synthetic": synthetic}
        row["in_process"] = _in_process(_serve_probe, scoped, query_sets, scoped.retriever_depth)
        asked = [*questions, *synthetic]
        row["http"] = [_serve_http(scoped, count, asked, ready_timeout) for count in workers]
        row["targets"] = _serve_targets(row)
        yield row


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


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def _cell(row: dict[str, Any], path: str, kind: str = "") -> str:
    """The value at ``path`` (keys joined by ``/``; a number picks from a list) in ``row``,
    formatted by ``kind``: ``mib``, ``s`` (seconds), ``ms`` (``p50 / p99``) or plain."""
    value: Any = row
    try:
        for key in path.split("/"):
            value = value[int(key)] if isinstance(value, list) else value[key]
    except (KeyError, IndexError, TypeError, ValueError):
        return "–"
    if kind == "mib":
        return _mib(value)
    if kind == "s":
        return f"{value:,.1f}"
    if kind == "ms":
        return f"{value['p50']:.2f} / {value['p99']:.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _stand_in_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """What each text build_index encoded got, per size and encoder."""
    kinds = dict.fromkeys(
        kind
        for row in rows
        for encoder in row.get("build", {}).get("stand_ins", {}).values()
        for kind in encoder["counts"]
    )
    columns = [(row, name) for row in rows for name in row.get("build", {}).get("stand_ins", {})]
    lines = [
        "| vector | "
        + " | ".join(f"{row['chunks_target']:,}: {name}" for row, name in columns)
        + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for kind in kinds:
        cells = [
            f"{row['build']['stand_ins'][name]['counts'].get(kind, 0):,}" for row, name in columns
        ]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append(
        "| cached encoded paragraphs available | "
        + " | ".join(
            f"{row['build']['stand_ins'][name]['real_vectors_available']:,}"
            for row, name in columns
        )
        + " |"
    )
    return lines


def serve_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The ``serve_scale`` results as markdown: how they were made, the figures (one
    column per corpus size), the targets, and what each vector is."""
    commands = dict.fromkeys(row["command"] for row in rows if row.get("command"))
    head = [
        "# The whole service at scale (`python -m service.scale N --serve`)",
        "",
        "Generated by `service.scale.serve_scale` from `serve.jsonl` (every figure is there,",
        "with more detail). Commands, each run under `flock /tmp/citeqa-measure.lock`:",
        "",
        *[f"    {command}" for command in commands],
        "",
        "A synthetic corpus of N paragraphs (varied seed sentences, 20-60 a document under a",
        "headline and a `Source: ... | date` line, plus the 5 seed documents) is built into a",
        "real generation by `service.index.build_index` with stand-in encoders (vectors below),",
        "then loaded in a fresh process as `citeqa serve` loads it (`load_index`, `Engine`),",
        "and served by `citeqa serve` with 1 and 2 workers. Questions: the 150 of",
        "`eval/questions.jsonl` and 150 held-out synthetic sentence fragments; one client.",
        "",
    ]
    for row in rows:
        if row.get("note"):
            head += [f"**{row['chunks_target']:,}**: {row['note']}", ""]
        if row.get("build_aborted"):
            aborted = row["build_aborted"]
            head.append(
                f"**{row['chunks_target']:,}: the build was stopped** in step "
                f"`{aborted['step']}` at {_mib(aborted['rss_bytes'])} RSS "
                f"({_mib(aborted['mem_available_bytes'])} available) after "
                f"{aborted['elapsed_seconds']:.0f} s; seconds so far: {aborted['seconds']}."
            )
            head.append("")
    rows = [row for row in rows if "build" in row]
    lines = [
        "| | " + " | ".join(f"{row['chunks_target']:,} paragraphs" for row in rows) + " |",
        "| --- |" + " --- |" * len(rows),
    ]

    def add(label: str, path: str, kind: str = "") -> None:
        lines.append(f"| {label} | " + " | ".join(_cell(r, path, kind) for r in rows) + " |")

    add("chunks (real chunker)", "build/chunks")
    add("documents (synthetic + seeds)", "build/documents")
    add("sentences", "in_process/counts/sentences")
    add("**build seconds** (build_index)", "build/seconds/build_index", "s")
    steps = dict.fromkeys(k for r in rows for k in r.get("build", {}).get("seconds", {}))
    for step in steps:
        if step != "build_index":
            add(f"- {step}", f"build/seconds/{step}", "s")
    add("build peak RSS", "build/peak_rss_bytes", "mib")
    add("**bytes on disk** (generation)", "bytes_on_disk/total", "mib")
    files = dict.fromkeys(k for r in rows for k in r.get("bytes_on_disk", {}))
    for name in files:
        if name != "total" and not name.startswith("bm25/"):
            add(f"- {name}", f"bytes_on_disk/{name}", "mib")
    add("**load seconds** (load_index + Engine + warm-up)", "in_process/load_seconds", "s")
    for step in dict.fromkeys(
        k for r in rows for k in r.get("in_process", {}).get("load_steps", {})
    ):
        add(f"- {step}", f"in_process/load_steps/{step}", "s")
    for when in ("load", "queries"):
        for part in ("rss", "pss", "anonymous"):
            add(f"in-process {part} after {when}", f"in_process/memory_after_{when}/{part}", "mib")
    for stage in dict.fromkeys(k for r in rows for k in r.get("in_process", {}).get("ask_ms", {})):
        add(f"Engine.ask `{stage}` p50 / p99 ms", f"in_process/ask_ms/{stage}", "ms")
    add("BM25 search p50 / p99 ms", "in_process/bm25_ms", "ms")
    add("dense search, USE p50 / p99 ms", "in_process/dense_ms/multilingual", "ms")
    add("dense search, MiniLM p50 / p99 ms", "in_process/dense_ms/dense", "ms")
    add("answered", "in_process/answered")
    add("abstained", "in_process/abstained")
    add("citation mismatches", "in_process/citation_mismatches")
    for i in range(2):
        add(f"HTTP run {i + 1}: workers", f"http/{i}/workers")
        add("- seconds until /readyz", f"http/{i}/ready_seconds", "s")
        add("- /ask p50 ms (one client)", f"http/{i}/p50_ms")
        add("- /ask p99 ms", f"http/{i}/p99_ms")
        add("- server RSS summed", f"http/{i}/rss_bytes", "mib")
        add("- server PSS summed", f"http/{i}/pss_bytes", "mib")
        add("- answered", f"http/{i}/answered")
        add("- citation mismatches", f"http/{i}/citation_mismatches")
    targets = ["", "Targets (issue 8, meant for 1M chunks):", "",
               "| target | limit | " + " | ".join(f"{r['chunks_target']:,}" for r in rows) + " |",
               "| --- | --- |" + " --- |" * len(rows)]  # fmt: skip
    for name, limit in TARGETS.items():
        shown = _mib(limit) if name == "rss_bytes" else f"{limit:g} ms"
        cells = []
        for row in rows:
            got = row.get("targets", {}).get(name)
            if got is None:
                cells.append("–")
                continue
            value = _mib(got["value"]) if name == "rss_bytes" else f"{got['value']:.2f} ms"
            cells.append(f"{value} {'met' if got['met'] else '**missed**'}")
        targets.append(f"| {name} | {shown} | " + " | ".join(cells) + " |")
    vectors = ["", "What each text's vector is (`StandInEncoder`; counts of texts build_index",
               "asked to encode):", "", *_stand_in_table(rows)]  # fmt: skip
    return "\n".join(head + lines + targets + vectors) + "\n"


def _save_serve_row(out: Path, row: dict[str, Any]) -> None:
    """Put ``row`` into ``out/serve.jsonl`` (replacing the row of the same size) and
    write ``out/serve.md`` from every row."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "serve.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    rows = sorted(
        [r for r in rows if r["chunks_target"] != row["chunks_target"]] + [row],
        key=lambda r: r["chunks_target"],
    )
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (out / "serve.md").write_text(serve_markdown(rows))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m service.scale N [N ...]``: measure and print one JSON line per N."""
    parser = argparse.ArgumentParser(prog="python -m service.scale", description=__doc__)
    parser.add_argument("sizes", nargs="+", type=int, help="chunk counts, e.g. 10000 100000")
    parser.add_argument("--work-dir", type=Path, default=Path("scale-work"))
    parser.add_argument("--queries", type=int, default=200, help="held-out synthetic queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--questions", type=Path, help="also query with these (eval JSONL)")
    parser.add_argument(
        "--dense-encoder-limit",
        type=int,
        default=10_000,
        help="encode with the English model up to this many chunks (about 14 a second here)",
    )
    parser.add_argument(
        "--multilingual-encoder-limit",
        type=int,
        default=100_000,
        help="above this many chunks, approximate the multilingual vectors (see --approximate)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="instead: the multilingual vectors behind each index of comparison_grid()",
    )
    parser.add_argument(
        "--approximate", action="store_true", help="with --compare: approximated vectors"
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="instead: the whole service over a real generation of N chunks (serve_scale)",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="with --serve: servers to start"
    )
    parser.add_argument(
        "--out", type=Path, help="with --serve: update OUT/serve.jsonl and OUT/serve.md"
    )
    parser.add_argument(
        "--force", action="store_true", help="with --serve: rebuild an up-to-date generation"
    )
    parser.add_argument(
        "--memory-guard-gib",
        type=float,
        default=_MEMORY_GUARD / 2**30,
        help="with --serve: stop a build whose RSS passes this (or leaves < 1.5 GiB free)",
    )
    parser.add_argument(
        "--throughput",
        action="store_true",
        help="instead: each encoder's chunks/s over the first N chunks (encode_throughput)",
    )
    args = parser.parse_args(argv)
    questions: list[str] = []
    if args.questions:
        from service.evaluate import load_questions

        questions = [q.question for q in load_questions(args.questions)]
    if args.throughput:
        settings = Settings()
        for n in args.sizes:
            for model in (settings.multilingual_model, settings.dense_model):
                rates = encode_throughput(model, settings, n, args.seed)
                print(json.dumps({"model": model, "chunks": n, "chunks_per_s": rates}), flush=True)
        return 0
    if args.serve:
        settings = Settings()
        for row in serve_scale(
            args.sizes,
            settings,
            args.work_dir,
            not args.quiet,
            questions=questions,
            queries=args.queries,
            seed=args.seed,
            workers=args.workers,
            onnx_from=settings.index_dir / "onnx",
            guard=int(args.memory_guard_gib * 2**30),
            force=args.force,
        ):
            row["command"] = "python -m service.scale " + " ".join(argv or sys.argv[1:])
            print(json.dumps(row, ensure_ascii=False), flush=True)
            if args.out:
                _save_serve_row(args.out, row)
        return 0
    if args.compare:
        settings = Settings()
        for n in args.sizes:
            for figures in compare_dense(
                n,
                comparison_grid(n, 512),
                settings,
                args.work_dir,
                not args.quiet,
                queries=args.queries,
                seed=args.seed,
                questions=questions,
                approximate=args.approximate,
            ):
                print(json.dumps({"chunks": n, **asdict(figures)}, ensure_ascii=False), flush=True)
        return 0
    for n in sorted(args.sizes):  # a line as soon as each size is measured
        results = run_scale(
            [n],
            Settings(),
            args.work_dir,
            not args.quiet,
            queries=args.queries,
            seed=args.seed,
            questions=questions,
            dense_encoder_limit=args.dense_encoder_limit,
            multilingual_encoder_limit=args.multilingual_encoder_limit,
        )
        print(json.dumps(asdict(results[0]), ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
