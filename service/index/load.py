"""Load: the current generation, checked, with the models that encode questions.

``check_index`` compares a generation's manifest with the settings and its files with
the manifest's checksums; ``load_index`` then reads it and refuses contents that disagree
with the manifest (counts, ids). A damaged current generation is passed over for the
newest older one that passes every check (``_last_good``). Every refusal says what to do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.encode.encoders import Encoder, set_threads
from service.errors import IndexCorruptError, IndexMismatchError, IndexNotBuiltError
from service.index.annotations import SpanTable, check_annotations
from service.index.encoders import load_encoders
from service.index.layout import (
    BM25_DIR,
    CHUNKS,
    MANIFEST,
    SENTENCES,
    SPANS,
    check_files,
    config_of,
    current_generation,
    expected_config,
    generations,
    newest_removals,
    read_documents,
    read_jsonl,
    read_manifest,
    sentence_vectors_file,
)
from service.index.steps import NO_STEPS, StepObserver
from service.index.stores import open_store
from service.ingest.annotate import TypedSpan
from service.ingest.chunk import ChunkTable
from service.records import Document
from service.store.base import VectorStore
from service.store.bm25 import LexicalIndex
from service.store.rows import RowFile

__all__ = ["CorpusIndex", "check_index", "check_servable", "load_index"]


@dataclass(frozen=True)
class CorpusIndex:
    """A loaded generation: documents, chunks (row order), the three indexes, the models."""

    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: ChunkTable  # a Chunk is made when a row is read
    # by encoder name ("dense", "multilingual": Settings.encoder_models): the chunks'
    # vectors (FAISS DenseIndex or service.store.milvus.MilvusStore) and the query models
    stores: Mapping[str, VectorStore]
    encoders: Mapping[str, Encoder]
    lexical: LexicalIndex
    sentences: np.ndarray  # int64 (n, 3): chunk row, char_start, char_end in the document
    sentence_vectors: Mapping[str, RowFile]  # encoder name -> (n, dim) float32
    annotations: SpanTable  # the typed spans of the sentences, by sentence row
    warning: str | None = None  # set when a damaged current generation was passed over
    # serving an older generation: the removals of the newest manifest that parses, and
    # the documents of this generation they take out (never retrieved, never shown)
    carried_removals: Mapping[str, str] | None = None
    hidden: frozenset[str] = frozenset()

    @property
    def removed(self) -> dict[str, str]:
        """Documents removed from the corpus (id -> when): their links answer 410 Gone."""
        if self.carried_removals is not None:
            return dict(self.carried_removals)
        return dict(self.manifest.get("removed", {}))

    def spans_of(self, sentence_row: int) -> list[TypedSpan]:
        """The typed spans of sentence ``sentence_row`` (a row of ``sentences``), document
        offsets, sorted by start (``service.ingest.annotate``)."""
        return self.annotations.of(sentence_row)


# ------------------------------------------------------------------------------ checks


_STORE_SETTINGS = {
    "faiss": "CITEQA_DENSE_STORE=faiss",
    "milvus-lite": "CITEQA_DENSE_STORE=milvus without CITEQA_MILVUS_URI",
    "milvus-uri": "CITEQA_DENSE_STORE=milvus with CITEQA_MILVUS_URI",
}


def _check_config(manifest: dict[str, Any], settings: Settings, generation: Path) -> None:
    expected = expected_config(settings)
    built = config_of(manifest)
    differences = [
        f"{key}: built with {built.get(key)!r}, settings ask for {value!r}"
        for key, value in expected.items()
        if built.get(key) != value
    ]
    if differences:
        store = built.get("dense_store")
        hint = (
            f" To serve it as built, set {_STORE_SETTINGS[store]}."
            if store != expected["dense_store"] and store in _STORE_SETTINGS
            else ""
        )
        raise IndexMismatchError(
            f"the index at {generation} does not match the current settings ("
            + "; ".join(differences)
            + "). Rebuild it with `citeqa build` (it rebuilds whenever the settings or the "
            "corpus change), or set CITEQA_INDEX_DIR to an index built with these settings." + hint
        )


def _checked(
    settings: Settings, generation: Path | None, steps: StepObserver
) -> tuple[Path, dict[str, Any]]:
    generation = generation or current_generation(settings.index_dir)
    if generation is None:
        raise IndexNotBuiltError(
            f"no index in {settings.index_dir}; build one with `citeqa build` "
            f"(corpus: {settings.corpus_dir})."
        )
    if not (generation / MANIFEST).is_file():
        raise IndexCorruptError(
            f"{generation / MANIFEST} is missing; the index is damaged. Rebuild it with "
            "`citeqa build`."
        )
    try:
        manifest = read_manifest(generation)
    except (OSError, json.JSONDecodeError) as error:
        raise IndexCorruptError(
            f"{generation / MANIFEST} is not valid JSON or cannot be read ({error}); "
            "rebuild with `citeqa build`."
        ) from error
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{generation / MANIFEST} is not an object; run `citeqa build`.")
    _check_config(manifest, settings, generation)
    check_annotations(manifest, generation)
    with steps.step("checksums"):
        check_files(manifest, generation)
    return generation, manifest


def check_index(settings: Settings, generation: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The current generation (or ``generation``) and its manifest, checked against the
    settings and the files, without loading any model. Raises the error that says what to
    do."""
    return _checked(settings, generation, NO_STEPS)


# ------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class _Files:
    """A generation's files, read and checked against its manifest (no models yet)."""

    documents: list[Document]
    chunks: ChunkTable
    stores: dict[str, VectorStore]  # by encoder name
    lexical: LexicalIndex
    sentences: np.ndarray
    sentence_vectors: dict[str, RowFile]  # by encoder name
    annotations: SpanTable


def _read_files(
    settings: Settings, generation: Path, manifest: dict[str, Any], steps: StepObserver
) -> _Files:
    """Read a generation whose checksums passed."""
    names = list(settings.encoder_models())
    with steps.step("read documents"):
        documents = read_documents(generation)
    with steps.step("read chunks"):
        by_id = {d.doc_id: d for d in documents}
        chunks = ChunkTable.from_rows(by_id, read_jsonl(generation / CHUNKS))
    stores = {}
    for name in names:
        with steps.step("dense load"):
            stores[name] = open_store(settings, generation, manifest, name)
    with steps.step("bm25 load"):
        lexical = LexicalIndex.load(generation / BM25_DIR)
    sentences = np.load(generation / SENTENCES, allow_pickle=False)
    spans = np.load(generation / SPANS, mmap_mode="r", allow_pickle=False)
    return _Files(
        documents=documents,
        chunks=chunks,
        stores=stores,
        lexical=lexical,
        sentences=sentences,
        sentence_vectors={  # read a passage's rows at a time (``service.store.rows``)
            name: RowFile(generation / sentence_vectors_file(name)) for name in names
        },
        annotations=SpanTable(spans, len(sentences)),  # ValueError: not a span table
    )


def _check_sizes(files: _Files, manifest: dict[str, Any], generation: Path) -> None:
    """Refuse a generation whose contents disagree with its manifest (counts of vectors,
    BM25 documents, sentences; chunk and document ids)."""
    counts = manifest["counts"]
    sizes = {
        "documents": (len(files.documents), counts["documents"]),
        "chunks": (len(files.chunks), counts["chunks"]),
    }
    sizes |= {
        f"{name} vectors": (store.size, counts["chunks"]) for name, store in files.stores.items()
    }
    sizes |= {
        "BM25 documents": (files.lexical.size, counts["chunks"]),
        "sentences": (len(files.sentences), counts["sentences"]),
        "typed spans": (len(files.annotations), counts["spans"]),
        "distinct chunk ids": (files.chunks.distinct_ids(), counts["chunks"]),
        "distinct document ids": (len({d.doc_id for d in files.documents}), counts["documents"]),
    }
    sizes |= {
        f"{name} sentence vectors": (len(vectors), counts["sentences"])
        for name, vectors in files.sentence_vectors.items()
    }
    for what, (size, expected) in sizes.items():
        if size != expected:
            raise IndexCorruptError(
                f"the index at {generation} has {size} {what} but its manifest says "
                f"{expected}; rebuild it with `citeqa build --force`."
            )


def _open(
    settings: Settings, generation: Path | None, steps: StepObserver
) -> tuple[Path, dict[str, Any], _Files]:
    generation, manifest = _checked(settings, generation, steps)
    try:
        files = _read_files(settings, generation, manifest, steps)
        _check_sizes(files, manifest, generation)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:  # faiss: Runtime
        raise IndexCorruptError(
            f"the index at {generation} cannot be read ({error}); rebuild it with "
            "`citeqa build --force`."
        ) from error
    return generation, manifest, files


def _older(settings: Settings) -> list[Path]:
    """The generations older than the current one, newest first."""
    current = current_generation(settings.index_dir)
    return [
        generation
        for generation in reversed(generations(settings.index_dir))
        if current is None or generation.name < current.name
    ]


def _last_good(
    settings: Settings, failure: IndexCorruptError, steps: StepObserver
) -> tuple[Path, dict[str, Any], _Files]:
    """The newest older generation that passes every check, or the original failure."""
    for generation in _older(settings):
        try:
            return _open(settings, generation, steps)
        except (IndexCorruptError, IndexMismatchError, IndexNotBuiltError):
            continue
    raise failure


def check_servable(settings: Settings) -> tuple[Path, str | None]:
    """The generation ``load_index`` would serve, checked (settings and checksums; no
    model, no contents), and why it is not the current one (None when it is). Raises the
    current generation's error when no generation passes."""
    try:
        return check_index(settings)[0], None
    except IndexCorruptError as failure:
        for generation in _older(settings):
            try:
                check_index(settings, generation)
            except (IndexCorruptError, IndexMismatchError, IndexNotBuiltError):
                continue
            return generation, f"{failure} Serving the last good generation, {generation.name}."
        raise


# ------------------------------------------------------------------------------ loading


def _query_encoders(
    settings: Settings,
    stores: Mapping[str, VectorStore],
    generation: Path,
    encoders: Mapping[str, Encoder] | None,
    steps: StepObserver,
) -> dict[str, Encoder]:
    """The models that encode questions, refused when their dimension is not the store's."""
    # Serving encodes one short question at a time: parallel kernels only add spin-waiting
    # threads that starve the other encoder and concurrent requests (measured in the README).
    threads = min(settings.query_threads, settings.effective_threads())
    set_threads(threads)
    if encoders:
        models = dict(encoders)
    else:
        with steps.step("query encoders"):
            models = load_encoders(settings, threads, query=True)
    for name, store in stores.items():
        encoder = models[name]
        if encoder.dim != store.dim:
            raise IndexMismatchError(
                f"the {name} model {encoder.name!r} makes {encoder.dim}-d vectors but the index "
                f"at {generation} holds {store.dim}-d ones; rebuild with `citeqa build --force`."
            )
    return models


def load_index(
    settings: Settings,
    *,
    encoders: Mapping[str, Encoder] | None = None,
    steps: StepObserver = NO_STEPS,
) -> CorpusIndex:
    """Load the current generation, checked against the settings and its manifest.

    A damaged current generation (checksums, or contents that disagree with the manifest)
    is refused; the newest older one that passes every check is served instead
    (``CorpusIndex.warning`` says so), and only if there is none does loading fail.

    Args:
        encoders: models already loaded, by encoder name, to reuse (a reload after a
            change); None loads the configured ones.
        steps: told of each step (``service.index.steps``), to time them.
    """
    warning = None
    carried: dict[str, str] | None = None
    try:
        generation, manifest, files = _open(settings, None, steps)
    except IndexCorruptError as error:
        generation, manifest, files = _last_good(settings, error, steps)
        warning = f"{error} Serving the last good generation, {generation.name}."
        carried = newest_removals(settings.index_dir)  # removed since stay removed
        logging.getLogger(__name__).error(warning)
    hidden = frozenset(d.doc_id for d in files.documents if d.doc_id in (carried or {}))
    models = _query_encoders(settings, files.stores, generation, encoders, steps)
    return CorpusIndex(
        path=generation,
        manifest=manifest,
        documents={d.doc_id: d for d in files.documents if d.doc_id not in hidden},
        chunks=files.chunks,
        stores=files.stores,
        encoders=models,
        lexical=files.lexical,
        sentences=files.sentences,
        sentence_vectors=files.sentence_vectors,
        annotations=files.annotations,
        warning=warning,
        carried_removals=carried,
        hidden=hidden,
    )
