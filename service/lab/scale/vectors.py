"""Vectors of synthetic texts: encoded (and cached), timed, or approximated.

- ``encode_cached``: one single-threaded encoder process per core encodes blocks of 1,000
  texts (two BLAS threads in one process spin-wait on a shared 2-core machine); whole
  blocks are cached under ``work_dir/vectors`` (``VectorCache``: a growing prefix per
  encoder and seed, with the measured seconds of each block), so reruns and smaller N
  skip encoding.
- ``encode_throughput``: an encoder's chunks a second, three ways (one thread, a thread per
  core, a single-threaded process per core).
- ``sentence_bank`` and ``approximate_vectors``: ``BANK_VARIANTS`` encoded variants of every seed
  sentence, and from them stand-ins for the vectors of corpora too large to encode;
  ``encoding_estimate`` says how long encoding them would have taken at the cached rate.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import re
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from service.config import Settings
from service.encode.encoders import Encoder, load_encoder, set_threads
from service.ingest.chunk import ChunkingParams
from service.ingest.chunk import weighted_length as _weighted_length
from service.lab.processes import in_fresh_process
from service.lab.scale.synthetic import (
    GENERATOR_VERSION,
    SeedPool,
    compose,
    seed_pool,
    synthetic_texts,
    vary,
)

BLOCK = 1000  # texts per encode task and per cached block


_worker_encoder: Encoder | None = None


def _start_worker(name: str, backend: str, cache_dir: str) -> None:
    global _worker_encoder
    set_threads(1)
    _worker_encoder = load_encoder(name, threads=1, backend=backend, cache_dir=Path(cache_dir))


def _encode_block(texts: Sequence[str]) -> np.ndarray:
    if _worker_encoder is None:
        raise RuntimeError("encode worker was not initialised")
    return _worker_encoder.encode(texts)


def block_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


@dataclass
class VectorCache:
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
            block = texts[i * BLOCK : (i + 1) * BLOCK]
            if len(block) < BLOCK:
                break
            if block_digest(block) != digest:
                del self.digests[i:], self.seconds[i:]
                with self.data.open("r+b") as handle:
                    handle.truncate(i * BLOCK * self.dim * 4)
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
    encodes blocks of 1,000, and whole blocks are cached under ``cache_dir`` by ``key``
    (``cache_key``).
    Returns the vectors, the wall seconds encoding them took (measured when each block was
    encoded, model loading included) and how many texts were encoded now."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = VectorCache(cache_dir, key)
    cache.open(texts)
    full = len(texts) // BLOCK
    cached = min(len(cache.digests), full)
    todo = [texts[i : i + BLOCK] for i in range(cached * BLOCK, len(texts), BLOCK)]
    seconds = sum(cache.seconds[:cached])
    parts = [cache.rows(cached * BLOCK)] if cached else []
    if todo:
        bar = tqdm(total=len(texts), initial=cached * BLOCK, desc=f"encode {name}",
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
                if len(block) == BLOCK:
                    cache.append(vectors, block_digest(block), elapsed)
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
        "1 process, 1 thread": n / in_fresh_process(_encode_in_process, name, settings, 1, texts),
        f"1 process, {cores} threads": n
        / in_fresh_process(_encode_in_process, name, settings, cores, texts),
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


BANK_VARIANTS = 8  # encoded variants of every seed sentence


def cache_key(model: str, seed: int, *, bank: bool = False) -> str:
    """The file name (no suffix) a model's cached vectors of one text stream go under:
    the synthetic texts of ``seed``, or with ``bank`` the encoded sentence variants."""
    kind = f"bank{BANK_VARIANTS}-" if bank else ""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}-{kind}seed{seed}-gen{GENERATOR_VERSION}")


def sentence_bank(pool: SeedPool, seed: int) -> tuple[list[str], dict[str, int]]:
    """``BANK_VARIANTS`` varied copies of every seed sentence, and where each language's
    sentences start: variant ``v`` of sentence ``i`` is at ``offsets[language] + i * V + v``."""
    rng = random.Random(f"bank-{seed}")
    texts: list[str] = []
    offsets = {}
    for language in sorted(pool.sentences):
        offsets[language] = len(texts)
        for sentence in pool.sentences[language]:
            texts.extend(vary(sentence, rng) for _ in range(BANK_VARIANTS))
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
    chunks = tqdm(compose(pool, n, seed), total=n, desc="approximate", unit="chunk",
                  disable=not progress)  # fmt: skip
    for row, (language, picks, _, _) in enumerate(chunks):
        variants = rng.integers(0, BANK_VARIANTS, len(picks))
        rows = offsets[language] + np.asarray(picks) * BANK_VARIANTS + variants
        vector = lengths[language][picks] @ bank[rows]
        out[row] = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return out


def encoding_estimate(cache_dir: Path, model: str, seed: int, n: int) -> str:
    """How long encoding ``n`` chunks would take, at the rate the cached ones took."""
    meta = VectorCache(cache_dir, cache_key(model, seed)).meta
    seconds = json.loads(meta.read_text())["seconds"] if meta.is_file() else []
    if not seconds or sum(seconds) <= 0:
        return " (no encoding of this model was measured yet to estimate the time)"
    rate = len(seconds) * BLOCK / sum(seconds)
    needed = n / rate
    duration = f"{needed / 3600:.1f} h" if needed >= 3600 else f"{needed / 60:.0f} min"
    return (
        f" (encoding them would take about {duration} at the {rate:.1f} chunks/s "
        f"measured on {len(seconds) * BLOCK} cached chunks)"
    )
