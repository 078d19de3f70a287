"""Build: a new generation from the corpus folder, written aside, then published.

``build_index`` does nothing when the current generation was built from the same corpus
with the same settings. Otherwise it

1. reads the documents, chunks them and finds every chunk's sentences (``_read_corpus``);
2. encodes the chunks and the sentences with each encoder, taking the current
   generation's vectors where it holds the text (``_encode``; ``service.index.vectors``);
3. annotates every sentence with its typed spans, taking the current generation's spans
   where it holds the sentence (``_annotate``; ``service.index.annotations``);
4. builds BM25 over the chunk texts;
5. writes documents, chunks, the dense stores, the sentence table, the spans, BM25 and the
   manifest into a ``.building-*`` directory (``_write``, ``_manifest``);
6. renames it to ``gen-*`` and publishes it (``service.index.layout.publish``).

A failure or an interrupt before the rename leaves no ``.building-*`` directory behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from service import __version__
from service.config import Settings
from service.encode.encoders import Encoder, set_threads
from service.index.annotations import annotate_sentences, annotations_current, previous_spans
from service.index.encoders import load_encoders
from service.index.layout import (
    BM25_DIR,
    CHUNKS,
    DOCUMENTS,
    FORMAT_VERSION,
    SENTENCES,
    SPANS,
    config_of,
    corpus_folder,
    corpus_hash,
    current_generation,
    document_row,
    expected_config,
    file_table,
    intact,
    newest_removals,
    publish,
    read_manifest,
    sentence_vectors_file,
    store_kind,
    write_jsonl,
    write_manifest,
)
from service.index.steps import NO_STEPS, StepObserver
from service.index.stores import (
    check_store_supports,
    dense_specs,
    drop_stale_collections,
    write_store,
)
from service.index.texts import chunk_texts, sentence_table, sentence_texts
from service.index.vectors import VectorCache, encode_new, previous_vectors, text_key
from service.ingest.annotate import Annotator, versions
from service.ingest.chunk import ChunkingParams, chunk_document
from service.ingest.documents import corpus_files, read_document
from service.records import Chunk, Document
from service.store.base import DenseParams
from service.store.bm25 import LexicalIndex

__all__ = ["BuildResult", "build_index"]


@dataclass(frozen=True)
class BuildResult:
    """What ``build_index`` did: the generation now current, and whether it built it."""

    path: Path
    built: bool  # False when the index was already up to date
    seconds: float
    documents: int
    chunks: int
    annotation_seconds: float = 0.0  # annotating the sentences, the English model's load included


@dataclass(frozen=True)
class _Corpus:
    """The corpus as the build indexes it: documents, chunks and the sentence table."""

    documents: list[Document]
    chunks: list[Chunk]
    sentences: np.ndarray  # int64 (n, 3): chunk row, char_start, char_end in the document

    def by_id(self) -> dict[str, Document]:
        return {document.doc_id: document for document in self.documents}


def _up_to_date(settings: Settings, corpus: str) -> Path | None:
    """The current generation if it was built from this corpus with these settings, dense
    index kinds included (changed ones rebuild the indexes from the same vectors), and
    every file still matches its checksum (a damaged one is rebuilt)."""
    generation = current_generation(settings.index_dir)
    if generation is None:
        return None
    try:
        manifest = read_manifest(generation)
    except (OSError, json.JSONDecodeError):  # missing, or not JSON
        return None
    if config_of(manifest) != expected_config(settings) or manifest.get("corpus_hash") != corpus:
        return None
    if not annotations_current(manifest):  # another annotator or English model
        return None
    params = DenseParams.from_settings(settings)
    try:
        dims = {name: manifest["dims"][name] for name in settings.encoder_models()}
        wanted = dense_specs(params, manifest["counts"]["chunks"], dims)
    except (KeyError, TypeError, ValueError):
        return None
    if manifest.get("dense_index") != wanted:
        return None
    return generation if intact(generation) else None


def _read_corpus(files: list[Path], params: ChunkingParams, steps: StepObserver) -> _Corpus:
    """Read the corpus ``files``, chunk each document and find the sentences of each chunk."""
    with steps.step("read documents"):
        documents = [read_document(path) for path in files]
    with steps.step("chunk"):
        chunks = [chunk for document in documents for chunk in chunk_document(document, params)]
    with steps.step("sentence spans"):
        sentences = sentence_table(chunks)
    return _Corpus(documents, chunks, sentences)


def _removed(index_dir: Path, now: Iterable[str], present: set[str]) -> dict[str, str]:
    """Removed document ids and when, carried from the newest manifest that parses (the
    current one unless it is damaged)."""
    removed = newest_removals(index_dir)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    removed.update(dict.fromkeys(now, stamp))
    return {doc_id: when for doc_id, when in removed.items() if doc_id not in present}


@dataclass(frozen=True)
class _Job:
    """A build under way: where it writes the new generation, and who watches."""

    settings: Settings
    work: Path  # the ``.building-*`` directory the generation is written in
    generation: Path  # the ``gen-*`` path it is renamed to once complete
    progress: bool
    bar: tqdm[Any]
    steps: StepObserver

    @classmethod
    def start(
        cls, settings: Settings, corpus: str, progress: bool, bar: tqdm[Any], steps: StepObserver
    ) -> _Job:
        """Make the ``.building-*`` directory of a generation of ``corpus`` (its hash)."""
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        work = settings.index_dir / f".building-{stamp}"
        work.mkdir()
        generation = settings.index_dir / f"gen-{stamp}-{corpus[:8]}"
        return cls(settings, work, generation, progress, bar, steps)

    def say(self, status: str) -> None:
        self.bar.set_postfix_str(status)


def _encode(
    job: _Job, models: Mapping[str, Encoder], corpus: _Corpus, texts: list[str], reuse: bool
) -> tuple[dict[str, np.ndarray], Path | None]:
    """Each encoder's vectors of the chunk ``texts`` (returned) and of the sentences
    (written into their memory-mapped files: 3 a chunk, 10 GB at 1M chunks, never all in
    memory). With ``reuse``, the current generation's vector of a text is taken instead
    of encoding it; those vectors and the sentence texts leave memory on return. Also
    returned: the generation the vectors came from (its checksums passed), or None."""
    names = job.settings.encoder_models()
    cache: VectorCache = {name: {} for name in names}
    verified = None
    if reuse:
        with job.steps.step("previous generation's vectors"):
            cache, verified = previous_vectors(job.settings)
    sentences = sentence_texts(corpus.by_id(), corpus.chunks, corpus.sentences)
    vectors = {}
    for name, model in names.items():
        encoder = models[name]
        job.say(f"encoding {len(texts)} chunks ({model})")
        with job.steps.step(f"encode {name} chunks"):
            vectors[name] = encode_new(encoder, texts, cache[name], job.progress)
        # a sentence that is a whole chunk gets that chunk's vector (rows are views, not
        # copies), so the next build, which looks both up by text, finds the same vector
        cache[name].update(zip(map(text_key, texts), vectors[name], strict=True))
        out = np.lib.format.open_memmap(
            job.work / sentence_vectors_file(name),
            mode="w+",
            dtype=np.float32,
            shape=(len(sentences), encoder.dim),
        )
        with job.steps.step(f"encode {name} sentences"):
            encode_new(encoder, sentences, cache[name], job.progress, out=out)
        out.flush()
        del out
        job.bar.update()
    return vectors, verified


@dataclass(frozen=True)
class _Spans:
    """The typed spans of the sentence table (``spans.npy``) and what making them took."""

    table: np.ndarray  # int64 (n, 4): sentence row, start, end, label index
    annotated: int  # distinct sentences annotated anew (the others were reused)
    seconds: float


def _annotate(job: _Job, corpus: _Corpus, reuse: bool) -> _Spans:
    """The typed spans of every sentence; with ``reuse``, the current generation's spans of
    a sentence it holds are taken instead of annotating it again."""
    started = time.perf_counter()
    cache = {}
    if reuse:
        with job.steps.step("previous generation's spans"):
            cache = previous_spans(job.settings)
    job.say(f"annotating {len(corpus.sentences)} sentences")
    with job.steps.step("annotate sentences"):
        texts = sentence_texts(corpus.by_id(), corpus.chunks, corpus.sentences)
        table, annotated = annotate_sentences(Annotator(), corpus.sentences, texts, cache)
    job.bar.update()
    return _Spans(table, annotated, time.perf_counter() - started)


def _write(
    job: _Job,
    params: DenseParams,
    corpus: _Corpus,
    vectors: dict[str, np.ndarray],
    lexical: LexicalIndex,
    spans: _Spans,
) -> dict[str, Any]:
    """Write the generation's files but the manifest; the dense stores' specs by encoder
    name. Each store's vectors leave ``vectors`` (and memory) once it is written."""
    job.say("writing")
    with job.steps.step("write jsonl"):
        write_jsonl(job.work / DOCUMENTS, (document_row(d) for d in corpus.documents))
        write_jsonl(job.work / CHUNKS, (asdict(c) for c in corpus.chunks))
    job.say(f"dense indexes ({store_kind(job.settings)})")
    specs = {}
    for name in job.settings.encoder_models():
        specs[name] = write_store(
            job.settings,
            params,
            name,
            vectors.pop(name),
            job.work,
            job.generation.name,
            job.steps,
        )
    np.save(job.work / SENTENCES, corpus.sentences, allow_pickle=False)
    np.save(job.work / SPANS, spans.table, allow_pickle=False)
    (job.work / BM25_DIR).mkdir()
    lexical.save(job.work / BM25_DIR)
    return specs


def _manifest(
    job: _Job,
    corpus: _Corpus,
    digest: str,
    dims: dict[str, int],
    specs: dict[str, Any],
    removed: Iterable[str],
    spans: _Spans,
) -> dict[str, Any]:
    """The manifest of the generation written: what built it, from what (``digest``: the
    corpus hash), and the size and checksum of every file."""
    present = {document.doc_id for document in corpus.documents}
    with job.steps.step("checksums"):
        files = file_table(job.work)
    return {
        "format": FORMAT_VERSION,
        "package_version": __version__,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "corpus_hash": digest,
        "config": expected_config(job.settings),
        "dims": dims,
        "dense_index": specs,
        "versions": versions(),  # what annotated the sentences (``service.index.annotations``)
        "counts": {
            "documents": len(corpus.documents),
            "chunks": len(corpus.chunks),
            "sentences": len(corpus.sentences),
            "spans": len(spans.table),
        },
        "annotation": {"seconds": round(spans.seconds, 2), "annotated": spans.annotated},
        "removed": _removed(job.settings.index_dir, removed, present),
        "files": files,
    }


def _publish(job: _Job, verified: Path | None) -> None:
    with job.steps.step("fsync and publish"):
        publish(job.settings.index_dir, job.generation, known_good=verified)
    if store_kind(job.settings) == "milvus-uri":
        drop_stale_collections(job.settings)
    job.bar.update()
    job.bar.close()


def build_index(
    settings: Settings,
    *,
    force: bool = False,
    progress: bool = True,
    removed: Iterable[str] = (),
    encoders: Mapping[str, Encoder] | None = None,
    steps: StepObserver = NO_STEPS,
) -> BuildResult:
    """Build a generation from the corpus and publish it, unless an up-to-date one exists.

    Text whose vectors the current generation already holds is not encoded again, so
    adding a document costs its own encoding.

    Args:
        force: build even if the current generation is up to date, encoding every text.
        progress: show a progress bar.
        removed: documents taken out by this change; the manifest keeps every removed id
            (so their links answer 410 Gone) until a document with that id comes back.
        encoders: by name, as ``Settings.encoder_models``, instead of the configured
            models; they must have the configured names and dimensions
            (``service.lab.scale`` passes stand-ins for corpora too large to encode).
        steps: told of each step (``service.index.steps``), to time them.
    """
    started = time.perf_counter()
    files = corpus_files(corpus_folder(settings))
    with steps.step("corpus hash"):
        digest = corpus_hash(files)
    if not force and (existing := _up_to_date(settings, digest)):
        counts = read_manifest(existing)["counts"]
        seconds = time.perf_counter() - started
        return BuildResult(existing, False, seconds, counts["documents"], counts["chunks"])

    threads = settings.effective_threads()
    set_threads(threads)
    names = settings.encoder_models()
    bar = tqdm(total=5 + len(names), desc="build", unit="step", disable=not progress)
    bar.set_postfix_str("reading corpus")
    corpus = _read_corpus(files, ChunkingParams(settings.chunk_size, settings.chunk_overlap), steps)
    texts = chunk_texts(corpus.by_id(), corpus.chunks)
    bar.update()
    params = DenseParams.from_settings(settings)
    check_store_supports(settings, params, len(corpus.chunks))  # before minutes of encoding
    bar.set_postfix_str(f"loading {', '.join(names.values())}")
    models = encoders or load_encoders(settings, threads, query=False)
    bar.update()
    job = _Job.start(settings, digest, progress, bar, steps)
    try:
        vectors, verified = _encode(job, models, corpus, texts, reuse=not force)
        spans = _annotate(job, corpus, reuse=not force)
        job.say("BM25")
        with steps.step("bm25 build"):
            lexical = LexicalIndex.build(texts)
        del texts
        job.bar.update()
        specs = _write(job, params, corpus, vectors, lexical, spans)
        dims = {name: models[name].dim for name in names}
        write_manifest(job.work, _manifest(job, corpus, digest, dims, specs, removed, spans))
        os.replace(job.work, job.generation)
    except BaseException:  # a failed or interrupted build leaves no half-written generation
        shutil.rmtree(job.work, ignore_errors=True)
        raise
    _publish(job, verified)
    seconds = time.perf_counter() - started
    return BuildResult(
        job.generation,
        True,
        seconds,
        len(corpus.documents),
        len(corpus.chunks),
        annotation_seconds=spans.seconds,
    )
