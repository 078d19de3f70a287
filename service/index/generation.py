"""Index: build the three indexes from the corpus, save them, and load them back checked.

On disk an index is a directory of plainly named files::

    index/
      CURRENT                 name of the generation being served (replaced atomically)
      gen-<time>-<hash>/
        manifest.json         format, versions, models, dims, chunking, corpus hash, checksums
        documents.jsonl       one document a line: metadata, spans and the original text
        chunks.jsonl          one chunk a line, in the row order of every index below
        dense.faiss           sentence-transformers vectors (FAISS, inner product)
        multilingual.faiss    USE-multilingual vectors (FAISS, inner product)
        milvus.db/            instead of the two .faiss files with CITEQA_DENSE_STORE=milvus
                              and no CITEQA_MILVUS_URI: Milvus Lite's data, collections
                              "dense" and "multilingual" (at a CITEQA_MILVUS_URI instead,
                              the collections <prefix>_<generation>_dense and _multilingual)
        sentences.npy         (chunk row, start, end) of every sentence of every chunk
        sentences.dense.npy, sentences.multilingual.npy
                              the sentences' vectors, so a query encodes only the question
        bm25/                 bm25s files (JSON and .npy, no pickle)

A build writes a new generation directory, fsyncs it, then swaps ``CURRENT``; a reader
never sees a half-written index. Loading checks the manifest against the settings and the
files against their checksums, and refuses a mismatch with a message that says what to do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from service import __version__
from service.config import Settings
from service.encode.encoders import Encoder, load_encoder, set_threads
from service.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotBuiltError,
    VectorStoreError,
)
from service.ingest.chunk import (
    SEGMENTER_VERSION,
    ChunkingParams,
    ChunkTable,
    chunk_document,
    indexed_text,
    sentence_spans,
)
from service.ingest.documents import corpus_files, read_document
from service.records import Document, Span
from service.store.bm25 import LexicalIndex
from service.store.faiss_store import DenseIndex, DenseParams, VectorStore
from service.store.rows import RowFile
from service.text.tokenize import TOKENIZER_VERSION

__all__ = [
    "FORMAT_VERSION",
    "BuildResult",
    "CorpusIndex",
    "build_index",
    "check_index",
    "corpus_hash",
    "expected_config",
    "load_index",
]

FORMAT_VERSION = 3
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"
CHUNKS = "chunks.jsonl"
DENSE = "dense.faiss"
MULTILINGUAL = "multilingual.faiss"
DENSE_FILES = {"dense": DENSE, "multilingual": MULTILINGUAL}
MILVUS_LITE = "milvus.db"  # service.store.milvus.LITE_FILE
BM25_DIR = "bm25"
SENTENCES = "sentences.npy"
SENTENCE_VECTORS = {"dense": "sentences.dense.npy", "multilingual": "sentences.multilingual.npy"}
KEEP_GENERATIONS = 2


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
    warning: str | None = None  # set when a damaged current generation was passed over

    @property
    def removed(self) -> dict[str, str]:
        """Documents removed from the corpus (id -> when): their links answer 410 Gone."""
        return dict(self.manifest.get("removed", {}))


@dataclass(frozen=True)
class BuildResult:
    path: Path
    built: bool  # False when the index was already up to date
    seconds: float
    documents: int
    chunks: int


def _encoders(settings: Settings, threads: int, *, query: bool) -> dict[str, Encoder]:
    """The encoders by name, with the configured backend (ONNX exports cached under the
    index). Passages are always encoded at full precision; ``query`` encoders may be int8
    where the settings allow it."""
    cache = settings.index_dir / "onnx"
    return {
        name: load_encoder(
            model,
            threads=threads,
            backend=settings.dense_backend,
            cache_dir=cache,
            int8=query and settings.query_int8 and name in settings.int8_encoders,
        )
        for name, model in settings.encoder_models().items()
    }


def expected_config(settings: Settings) -> dict[str, Any]:
    """Everything that changes the index's content; a loaded index must match it."""
    return {
        "format": FORMAT_VERSION,
        "dense_model": settings.dense_model,
        "multilingual_model": settings.multilingual_model,
        "chunking": ChunkingParams(settings.chunk_size, settings.chunk_overlap).as_dict(),
        "tokenizer": TOKENIZER_VERSION,
        "sentences": SEGMENTER_VERSION,
        "indexed_text": "title + chunk",
        "dense_store": store_kind(settings),
    }


def store_kind(settings: Settings) -> str:
    """Where the dense vectors live: "faiss" (files in the generation), "milvus-lite"
    (Milvus Lite in the generation) or "milvus-uri" (collections at CITEQA_MILVUS_URI, a
    Milvus server or a Milvus Lite file; the address itself is not recorded: a server may
    move)."""
    if settings.dense_store == "faiss":
        return "faiss"
    return "milvus-uri" if settings.milvus_uri else "milvus-lite"


def _config_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's config. Generations built before the store was recorded hold FAISS
    files: they keep matching a FAISS configuration."""
    config = dict(manifest.get("config") or {})
    if config:
        config.setdefault("dense_store", "faiss")
    return config


def _milvus_place(
    settings: Settings, kind: str, directory: Path, generation: str, name: str
) -> tuple[str, str]:
    """(uri, collection) of dense store ``name`` of ``generation``, a ``kind`` store
    (``store_kind``) whose files are in ``directory`` (the .building-* one while built)."""
    from service.store.milvus import collection_name

    if kind == "milvus-lite":
        return str(directory / MILVUS_LITE), name
    if not settings.milvus_uri:
        raise VectorStoreError(
            f"the dense vectors of {generation} are in Milvus collections at a URI, and "
            "CITEQA_MILVUS_URI is not set; set it (and CITEQA_MILVUS_TOKEN) to that Milvus."
        )
    return settings.milvus_uri, collection_name(generation, name, settings.milvus_prefix)


def _milvus_token(settings: Settings) -> str:
    return settings.milvus_token.get_secret_value() if settings.milvus_token else ""


def _write_store(
    settings: Settings,
    params: DenseParams,
    name: str,
    vectors: np.ndarray,
    work: Path,
    generation: str,
) -> dict[str, Any]:
    """Write dense store ``name`` of the generation being built in ``work``; its spec.
    A Milvus store is closed at once: Milvus Lite's files are checksummed and renamed next."""
    kind = store_kind(settings)
    if kind == "faiss":
        index = DenseIndex.build(vectors, params=params)
        index.save(work / DENSE_FILES[name])
        return index.spec
    from service.store.milvus import MilvusStore

    uri, collection = _milvus_place(settings, kind, work, generation, name)
    store = MilvusStore.build(
        vectors,
        uri=uri,
        collection=collection,
        token=_milvus_token(settings),
        params=params,
        timeout=settings.milvus_timeout_seconds,
    )
    store.close()
    return store.spec


def _open_store(
    settings: Settings, generation: Path, manifest: dict[str, Any], name: str, *, mmap: bool = True
) -> VectorStore:
    """Dense store ``name`` of a generation, where its manifest says it is. A Milvus store
    lets go of its connection (and of Milvus Lite's lock) when closed or collected."""
    spec = _dense_spec(manifest, name)
    kind = _config_of(manifest).get("dense_store", "faiss")
    if kind == "faiss":
        return DenseIndex.load(generation / DENSE_FILES[name], spec, mmap=mmap)
    from service.store.milvus import MilvusStore

    uri, collection = _milvus_place(settings, kind, generation, generation.name, name)
    return MilvusStore.open(
        uri=uri,
        collection=collection,
        token=_milvus_token(settings),
        spec=spec,
        timeout=settings.milvus_timeout_seconds,
    )


def _check_store_supports(settings: Settings, params: DenseParams, chunks: int) -> None:
    """Refuse an index kind the configured store cannot build (Milvus Lite has no IVF-PQ)."""
    approximate = chunks >= params.ann_threshold
    if approximate and params.ann_kind == "ivfpq" and settings.milvus_lite():
        raise VectorStoreError(
            f"Milvus Lite has no IVF_PQ index, which the settings choose from "
            f"{params.ann_threshold} chunks ({chunks} here); use CITEQA_DENSE_ANN_KIND=hnsw, "
            "or a Milvus server (CITEQA_MILVUS_URI=http://host:19530)."
        )


def _close_store(store: VectorStore) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


def _drop_stale_collections(settings: Settings) -> None:
    """At CITEQA_MILVUS_URI, drop this deployment's collections whose generation is gone
    (removed by ``_publish``, or a build that died). A failure only logs: the new
    generation is published, and the next build tries again."""
    from service.store.milvus import collection_name, drop_stale_collections

    keep = [
        collection_name(generation.name, name, settings.milvus_prefix)
        for generation in settings.index_dir.glob("gen-*")
        for name in DENSE_FILES
    ]
    try:
        dropped = drop_stale_collections(
            uri=settings.milvus_uri,
            keep=keep,
            prefix=settings.milvus_prefix,
            token=_milvus_token(settings),
            timeout=settings.milvus_timeout_seconds,
        )
    except VectorStoreError as error:
        logging.getLogger(__name__).warning("old Milvus collections stay: %s", error)
        return
    if dropped:
        logging.getLogger(__name__).info("dropped Milvus collections %s", ", ".join(dropped))


def corpus_hash(files: Iterable[Path]) -> str:
    """Hash of the corpus: every file's name and bytes."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode())
        digest.update(b"\x00")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# ------------------------------------------------------------------------------ writing


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_table(directory: Path) -> dict[str, dict[str, Any]]:
    return {
        path.relative_to(directory).as_posix(): {
            "bytes": path.stat().st_size,
            "sha256": _sha256_file(path),
        }
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path != directory / MANIFEST  # Milvus Lite has its own
    }


def _document_row(document: Document) -> dict[str, Any]:
    row = asdict(document)
    row["content"] = [[s.start, s.end, s.label, s.section] for s in document.content]
    row["boilerplate"] = [[s.start, s.end, s.label] for s in document.boilerplate]
    return row


def _document_from_row(row: dict[str, Any]) -> Document:
    return Document(
        **{
            **row,
            "content": tuple(Span(*span) for span in row["content"]),
            "boilerplate": tuple(Span(*span) for span in row["boilerplate"]),
        }
    )


def current_generation(index_dir: Path) -> Path | None:
    """The generation ``CURRENT`` names, or None if nothing was built yet."""
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        return None
    return index_dir / pointer.read_text(encoding="utf-8").strip()


def _publish(index_dir: Path, generation: Path) -> None:
    """Point ``CURRENT`` at ``generation`` atomically, then drop old generations."""
    for path in generation.rglob("*"):
        _fsync_path(path)
    _fsync_path(generation)
    pointer = index_dir / CURRENT
    staging = index_dir / f".{CURRENT}.tmp"
    staging.write_text(generation.name + "\n", encoding="utf-8")
    _fsync_path(staging)
    os.replace(staging, pointer)
    _fsync_path(index_dir)
    generations = sorted(p for p in index_dir.glob("gen-*") if p.is_dir())
    for old in generations[:-KEEP_GENERATIONS]:
        if old != generation:
            shutil.rmtree(old, ignore_errors=True)


def _removed(index_dir: Path, now: Iterable[str], present: set[str]) -> dict[str, str]:
    """Removed document ids and when, carried from the current generation's manifest."""
    removed: dict[str, str] = {}
    generation = current_generation(index_dir)
    if generation is not None:
        try:
            manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
            removed = dict(manifest.get("removed", {}))
        except (OSError, json.JSONDecodeError):
            pass
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    removed.update(dict.fromkeys(now, stamp))
    return {doc_id: when for doc_id, when in removed.items() if doc_id not in present}


def _dense_specs(params: DenseParams, chunks: int, dims: dict[str, int]) -> dict[str, Any]:
    """The dense index kinds and parameters ``params`` choose for ``chunks`` chunks; the
    manifest records them as ``dense_index`` and loading applies them."""
    return {name: params.spec_for(chunks, dims[name]) for name in ("dense", "multilingual")}


def _dense_spec(manifest: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The recorded spec of one dense index (None: built before specs were recorded: exact)."""
    spec: dict[str, Any] | None = manifest.get("dense_index", {}).get(name)
    return spec


def _up_to_date(
    index_dir: Path, config: dict[str, Any], corpus: str, params: DenseParams
) -> Path | None:
    """The current generation if it was built from this corpus with these settings, dense
    index kinds included (changed ones rebuild the indexes from the same vectors)."""
    generation = current_generation(index_dir)
    if generation is None or not (generation / MANIFEST).is_file():
        return None
    try:
        manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if _config_of(manifest) != config or manifest.get("corpus_hash") != corpus:
        return None
    try:
        wanted = _dense_specs(params, manifest["counts"]["chunks"], manifest["dims"])
    except (KeyError, TypeError, ValueError):
        return None
    return generation if manifest.get("dense_index") == wanted else None


def _text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


def _previous_vectors(settings: Settings, config: dict[str, Any]) -> dict[str, dict[bytes, Any]]:
    """Vectors of the current generation by the hash of the text they encode, so a rebuild
    after adding or removing documents, or moving the vectors to another store, encodes
    only new text. Empty if there is no usable generation (another model or chunking,
    damaged files), or if its Milvus store cannot be opened (Milvus Lite held by a serving
    process, a server out of reach): then everything is encoded again."""
    cache: dict[str, dict[bytes, Any]] = {"dense": {}, "multilingual": {}}
    generation = current_generation(settings.index_dir)

    def content(config: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in config.items() if key != "dense_store"}

    try:
        if generation is None:
            return cache
        manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
        if content(_config_of(manifest)) != content(config):
            return cache
        _check_files(manifest, generation)
        documents = {d.doc_id: d for d in _read_documents(generation)}
        chunks = ChunkTable.from_rows(documents, _read_jsonl(generation / CHUNKS))
        texts = [indexed_text(c, documents[c.doc_id]) for c in chunks]
        sentences = np.load(generation / SENTENCES, allow_pickle=False)
        sentence_texts = [documents[chunks[r].doc_id].text[a:b] for r, a, b in sentences.tolist()]
        for name, sentence_file in SENTENCE_VECTORS.items():
            store = _open_store(settings, generation, manifest, name, mmap=False)
            try:
                vectors = store.vectors()
            finally:
                _close_store(store)
            cache[name].update(zip(map(_text_key, texts), vectors, strict=True))
            sentence_vectors = np.load(generation / sentence_file, allow_pickle=False)
            cache[name].update(zip(map(_text_key, sentence_texts), sentence_vectors, strict=True))
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        IndexCorruptError,
        IndexMismatchError,
        VectorStoreError,
    ) as error:
        if isinstance(error, VectorStoreError):
            logging.getLogger(__name__).warning("encoding everything again: %s", error)
        return {"dense": {}, "multilingual": {}}  # no reuse: encode everything
    return cache


_ENCODE_BLOCK = 50_000  # texts encoded at once: bounds the fresh vectors held in memory


def _encode_new(
    encoder: Encoder,
    texts: list[str],
    cache: dict[bytes, Any],
    progress: bool,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Vectors for ``texts``: from ``cache`` (the previous generation's vectors) where
    known, encoded otherwise, written row by row into ``out`` (a new array if None; a
    memory-mapped ``.npy`` keeps them out of memory). Texts are encoded a block at a time
    and each distinct text once; new vectors are not added to ``cache``, so no copy of
    them outlives the call (at 1M chunks the sentence vectors alone are 10 GB)."""
    if out is None:
        out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    first: dict[bytes, int] = {}  # a new text's key -> the row it was first written to
    todo: list[int] = []  # rows to encode now

    def flush() -> None:
        if todo:
            out[todo] = encoder.encode([texts[i] for i in todo], progress=progress)
            todo.clear()

    repeats: list[tuple[int, int]] = []  # (row, row of the same text written earlier)
    for row, text in enumerate(texts):
        key = _text_key(text)
        known = cache.get(key)
        if known is not None:
            out[row] = known
        elif key in first:
            repeats.append((row, first[key]))
        else:
            first[key] = row
            todo.append(row)
            if len(todo) >= _ENCODE_BLOCK:
                flush()
    flush()
    for row, earlier in repeats:
        out[row] = out[earlier]
    return out


def build_index(
    settings: Settings,
    *,
    force: bool = False,
    progress: bool = True,
    removed: Iterable[str] = (),
    encoders: Mapping[str, Encoder] | None = None,
) -> BuildResult:
    """Build all three indexes from the corpus, unless an up-to-date build exists.

    Text whose vectors the current generation already holds is not encoded again, so
    adding a document costs its own encoding. ``removed`` names documents taken out by
    this change; the manifest keeps every removed id (so their links answer 410 Gone)
    until a document with that id comes back. ``encoders`` (by name, as
    ``Settings.encoder_models``) replace the configured models; they must have the
    configured names and dimensions (``service.lab.scale`` passes stand-ins for corpora
    too large to encode).
    """
    started = time.perf_counter()
    files = corpus_files(settings.corpus_dir)
    config = expected_config(settings)
    corpus = corpus_hash(files)
    index_dir = settings.index_dir
    dense_params = DenseParams.from_settings(settings)
    if not force and (existing := _up_to_date(index_dir, config, corpus, dense_params)):
        manifest = json.loads((existing / MANIFEST).read_text(encoding="utf-8"))
        counts = manifest["counts"]
        return BuildResult(
            existing, False, time.perf_counter() - started, counts["documents"], counts["chunks"]
        )

    threads = settings.effective_threads()
    set_threads(threads)
    steps = tqdm(total=6, desc="build", unit="step", disable=not progress)

    steps.set_postfix_str("reading corpus")
    documents = [read_document(path) for path in files]
    params = ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    chunks = [chunk for document in documents for chunk in chunk_document(document, params)]
    by_id = {document.doc_id: document for document in documents}
    texts = [indexed_text(chunk, by_id[chunk.doc_id]) for chunk in chunks]
    sentences = np.array(
        [
            (row, start, end)
            for row, chunk in enumerate(chunks)
            for start, end in sentence_spans(chunk.text, chunk.char_start)
        ],
        dtype=np.int64,
    ).reshape(-1, 3)
    sentence_texts = [by_id[chunks[r].doc_id].text[a:b] for r, a, b in sentences.tolist()]
    steps.update()

    _check_store_supports(settings, dense_params, len(chunks))  # before minutes of encoding
    steps.set_postfix_str(f"loading {settings.dense_model}")
    models = encoders or _encoders(settings, threads, query=False)
    dense_encoder, multilingual_encoder = models["dense"], models["multilingual"]
    steps.update()

    cache = {"dense": {}, "multilingual": {}} if force else _previous_vectors(settings, config)
    # The generation is written aside from here on: the sentence vectors (3 a chunk, 10 GB
    # at 1M chunks) go straight into their memory-mapped files, never all in memory.
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    generation = index_dir / f"gen-{stamp}-{corpus[:8]}"
    work = index_dir / f".building-{stamp}"
    work.mkdir()

    def sentence_file(name: str, dim: int) -> np.memmap[Any, Any]:
        return np.lib.format.open_memmap(
            work / SENTENCE_VECTORS[name],
            mode="w+",
            dtype=np.float32,
            shape=(len(sentences), dim),
        )

    try:
        steps.set_postfix_str(f"encoding {len(texts)} chunks ({settings.dense_model})")
        dense_vectors = _encode_new(dense_encoder, texts, cache["dense"], progress)
        # a sentence that is a whole chunk gets that chunk's vector (rows are views, not
        # copies), so the next build, which looks both up by text, finds the same vector
        cache["dense"].update(zip(map(_text_key, texts), dense_vectors, strict=True))
        sentence_dense = sentence_file("dense", dense_encoder.dim)
        _encode_new(dense_encoder, sentence_texts, cache["dense"], progress, out=sentence_dense)
        sentence_dense.flush()
        del sentence_dense
        steps.update()
        steps.set_postfix_str(f"encoding {len(texts)} chunks ({settings.multilingual_model})")
        multilingual_vectors = _encode_new(
            multilingual_encoder, texts, cache["multilingual"], progress
        )
        cache["multilingual"].update(zip(map(_text_key, texts), multilingual_vectors, strict=True))
        sentence_multilingual = sentence_file("multilingual", multilingual_encoder.dim)
        _encode_new(
            multilingual_encoder,
            sentence_texts,
            cache["multilingual"],
            progress,
            out=sentence_multilingual,
        )
        sentence_multilingual.flush()
    except BaseException:  # a failed or interrupted encode leaves no half-written generation
        shutil.rmtree(work, ignore_errors=True)
        raise
    del sentence_multilingual, cache, sentence_texts
    steps.update()
    steps.set_postfix_str("BM25")
    lexical = LexicalIndex.build(texts)
    del texts
    steps.update()

    steps.set_postfix_str("writing")
    _write_jsonl(work / DOCUMENTS, (_document_row(d) for d in documents))
    _write_jsonl(work / CHUNKS, (asdict(c) for c in chunks))
    steps.set_postfix_str(f"dense indexes ({store_kind(settings)})")
    try:
        specs = {
            "dense": _write_store(
                settings, dense_params, "dense", dense_vectors, work, generation.name
            )
        }
        del dense_vectors  # each store's vectors leave memory once it is written
        specs["multilingual"] = _write_store(
            settings, dense_params, "multilingual", multilingual_vectors, work, generation.name
        )
        del multilingual_vectors
    except BaseException:  # a store that cannot be written (Milvus out of reach): no leftovers
        shutil.rmtree(work, ignore_errors=True)
        raise
    np.save(work / SENTENCES, sentences, allow_pickle=False)
    (work / BM25_DIR).mkdir()
    lexical.save(work / BM25_DIR)
    manifest = {
        "format": FORMAT_VERSION,
        "package_version": __version__,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "corpus_hash": corpus,
        "config": config,
        "dims": {"dense": dense_encoder.dim, "multilingual": multilingual_encoder.dim},
        "dense_index": specs,
        "counts": {
            "documents": len(documents),
            "chunks": len(chunks),
            "sentences": len(sentences),
        },
        "removed": _removed(index_dir, removed, {d.doc_id for d in documents}),
        "files": _file_table(work),
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    os.replace(work, generation)
    _publish(index_dir, generation)
    if store_kind(settings) == "milvus-uri":
        _drop_stale_collections(settings)
    steps.update()
    steps.close()
    return BuildResult(generation, True, time.perf_counter() - started, len(documents), len(chunks))


# ------------------------------------------------------------------------------ loading


_STORE_SETTINGS = {
    "faiss": "CITEQA_DENSE_STORE=faiss",
    "milvus-lite": "CITEQA_DENSE_STORE=milvus without CITEQA_MILVUS_URI",
    "milvus-uri": "CITEQA_DENSE_STORE=milvus with CITEQA_MILVUS_URI",
}


def _check_config(manifest: dict[str, Any], settings: Settings, generation: Path) -> None:
    expected = expected_config(settings)
    built = _config_of(manifest)
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


def _check_files(manifest: dict[str, Any], generation: Path) -> None:
    recorded: dict[str, dict[str, Any]] = manifest.get("files", {})
    for name, entry in recorded.items():
        path = generation / name
        if not path.is_file():
            problem = "is missing"
        elif path.stat().st_size != entry["bytes"]:
            problem = f"has {path.stat().st_size} bytes, the manifest says {entry['bytes']}"
        elif _sha256_file(path) != entry["sha256"]:
            problem = "does not match its checksum"
        else:
            continue
        raise IndexCorruptError(
            f"index file {path} {problem}; the index is damaged. "
            "Rebuild it with `citeqa build --force`."
        )


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a JSON-lines file, one at a time (a million chunks never sit in memory
    as dicts)."""
    with path.open(encoding="utf-8") as handle:
        yield from (json.loads(line) for line in handle if line.strip())


def _read_documents(generation: Path) -> list[Document]:
    return [_document_from_row(row) for row in _read_jsonl(generation / DOCUMENTS)]


def check_index(settings: Settings, generation: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The current generation (or ``generation``) and its manifest, checked against the
    settings and the files, without loading any model. Raises the error that says what to
    do."""
    generation = generation or current_generation(settings.index_dir)
    if generation is None or not (generation / MANIFEST).is_file():
        raise IndexNotBuiltError(
            f"no index in {settings.index_dir}; build one with `citeqa build` "
            f"(corpus: {settings.corpus_dir})."
        )
    try:
        manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise IndexCorruptError(
            f"{generation / MANIFEST} is not valid JSON ({error}); rebuild with "
            "`citeqa build --force`."
        ) from error
    _check_config(manifest, settings, generation)
    _check_files(manifest, generation)
    return generation, manifest


@dataclass(frozen=True)
class _Files:
    """A generation's files, read and checked against its manifest (no models yet)."""

    documents: list[Document]
    chunks: ChunkTable
    dense: VectorStore
    multilingual: VectorStore
    lexical: LexicalIndex
    sentences: np.ndarray
    sentence_vectors: dict[str, RowFile]


def _read_generation(settings: Settings, generation: Path, manifest: dict[str, Any]) -> _Files:
    """Read a generation whose checksums passed; refuse it when its contents disagree with
    the manifest (counts of vectors, BM25 documents, sentences; chunk and document ids)."""
    documents = _read_documents(generation)
    chunks = ChunkTable.from_rows(
        {d.doc_id: d for d in documents}, _read_jsonl(generation / CHUNKS)
    )
    files = _Files(
        documents=documents,
        chunks=chunks,
        dense=_open_store(settings, generation, manifest, "dense"),
        multilingual=_open_store(settings, generation, manifest, "multilingual"),
        lexical=LexicalIndex.load(generation / BM25_DIR),
        sentences=np.load(generation / SENTENCES, allow_pickle=False),
        sentence_vectors={  # read a passage's rows at a time (``service.store.rows``)
            name: RowFile(generation / file) for name, file in SENTENCE_VECTORS.items()
        },
    )
    counts = manifest["counts"]
    sizes = {
        "documents": (len(documents), counts["documents"]),
        "chunks": (len(chunks), counts["chunks"]),
        "dense vectors": (files.dense.size, counts["chunks"]),
        "multilingual vectors": (files.multilingual.size, counts["chunks"]),
        "BM25 documents": (files.lexical.size, counts["chunks"]),
        "sentences": (len(files.sentences), counts["sentences"]),
        "distinct chunk ids": (chunks.distinct_ids(), counts["chunks"]),
        "distinct document ids": (len({d.doc_id for d in documents}), counts["documents"]),
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
    return files


def _open(settings: Settings, generation: Path | None) -> tuple[Path, dict[str, Any], _Files]:
    generation, manifest = check_index(settings, generation)
    try:
        return generation, manifest, _read_generation(settings, generation, manifest)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:  # faiss: Runtime
        raise IndexCorruptError(
            f"the index at {generation} cannot be read ({error}); rebuild it with "
            "`citeqa build --force`."
        ) from error


def _last_good(
    settings: Settings, failure: IndexCorruptError
) -> tuple[Path, dict[str, Any], _Files]:
    """The newest older generation that passes every check, or the original failure."""
    current = current_generation(settings.index_dir)
    older = sorted(
        (p for p in settings.index_dir.glob("gen-*") if p.is_dir() and p != current),
        reverse=True,
    )
    for generation in older:
        try:
            return _open(settings, generation)
        except (IndexCorruptError, IndexMismatchError, IndexNotBuiltError):
            continue
    raise failure


def load_index(settings: Settings, *, encoders: Mapping[str, Encoder] | None = None) -> CorpusIndex:
    """Load the current generation, checked against the settings and its manifest.

    A damaged current generation (checksums, or contents that disagree with the manifest)
    is refused; the newest older one that passes every check is served instead
    (``CorpusIndex.warning`` says so), and only if there is none does loading fail.
    ``encoders`` reuses models already loaded (a reload after a change).
    """
    warning = None
    try:
        generation, manifest, files = _open(settings, None)
    except IndexCorruptError as error:
        generation, manifest, files = _last_good(settings, error)
        warning = f"{error} Serving the last good generation, {generation.name}."
        logging.getLogger(__name__).error(warning)
    stores = {"dense": files.dense, "multilingual": files.multilingual}

    # Serving encodes one short question at a time: parallel kernels only add spin-waiting
    # threads that starve the other encoder and concurrent requests (measured in the README).
    threads = min(settings.query_threads, settings.effective_threads())
    set_threads(threads)
    models = dict(encoders or _encoders(settings, threads, query=True))
    for name, index in stores.items():
        encoder = models[name]
        if encoder.dim != index.dim:
            raise IndexMismatchError(
                f"the {name} model {encoder.name!r} makes {encoder.dim}-d vectors but the index "
                f"at {generation} holds {index.dim}-d ones; rebuild with `citeqa build --force`."
            )
    return CorpusIndex(
        path=generation,
        manifest=manifest,
        documents={d.doc_id: d for d in files.documents},
        chunks=files.chunks,
        stores=stores,
        encoders=models,
        lexical=files.lexical,
        sentences=files.sentences,
        sentence_vectors=files.sentence_vectors,
        warning=warning,
    )
