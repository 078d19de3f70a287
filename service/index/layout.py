"""How an index lies on disk: its file names, the manifest, checksums and ``CURRENT``.

An index is a directory of plainly named files::

    index/
      CURRENT                 name of the generation being served (replaced atomically)
      gen-<time>-<hash>/
        manifest.json         format, versions, models, dims, chunking, corpus hash, checksums
        documents.jsonl       one document a line: metadata (its sidecar's included),
                              spans and the original text
        chunks.jsonl          one chunk a line, in the row order of every index below
        <encoder>.faiss       each encoder's chunk vectors (FAISS, inner product):
                              dense.faiss (sentence-transformers), multilingual.faiss (USE),
                              e5.faiss (multilingual-e5-small)
        milvus.db/            instead of the .faiss files with CITEQA_DENSE_STORE=milvus
                              and no CITEQA_MILVUS_URI: Milvus Lite's data, one collection
                              an encoder, named for it (at a CITEQA_MILVUS_URI instead,
                              the collections <prefix>_<generation>_<encoder>)
        sentences.npy         (chunk row, start, end) of every sentence of every chunk
        spans.npy             (sentence row, start, end, label) of every typed span of every
                              sentence (``service.index.annotations``)
        sentences.<encoder>.npy
                              the sentences' vectors, so a query encodes only the question
        bm25/                 bm25s files (JSON and .npy, no pickle)

The encoders are ``Settings.encoder_models()`` ("dense", "multilingual", "e5"). A build writes a
new generation directory, fsyncs it, then swaps ``CURRENT`` (``publish``); a reader never
sees a half-written index. Loading checks the manifest against ``expected_config`` and the
files against the manifest's file table (``check_files``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from service.config import Settings
from service.encode.e5 import vectors_kind
from service.errors import IndexCorruptError
from service.ingest.chunk import SEGMENTER_VERSION, ChunkingParams
from service.ingest.metadata import sidecar_of
from service.records import Document, Span
from service.text.tokenize import TOKENIZER_VERSION

FORMAT_VERSION = 4  # 4: documents carry author, url, language, published_at
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"
CHUNKS = "chunks.jsonl"
MILVUS_LITE = "milvus.db"  # service.store.milvus.LITE_FILE (imported only with Milvus)
BM25_DIR = "bm25"
SENTENCES = "sentences.npy"
SPANS = "spans.npy"
KEEP_GENERATIONS = 2  # the one served and the one before it (and the last intact one)


def dense_file(name: str) -> str:
    """The FAISS file of encoder ``name``'s chunk vectors ("dense.faiss")."""
    return f"{name}.faiss"


def sentence_vectors_file(name: str) -> str:
    """The ``.npy`` file of encoder ``name``'s sentence vectors ("sentences.dense.npy")."""
    return f"sentences.{name}.npy"


# ------------------------------------------------------------------------------ config


def expected_config(settings: Settings) -> dict[str, Any]:
    """Everything that changes the index's content; a loaded index must match it."""
    models = {f"{name}_model": model for name, model in settings.encoder_models().items()}
    return {
        "format": FORMAT_VERSION,
        **models,  # "dense_model", "multilingual_model", "e5_model"
        "e5_vectors": vectors_kind(settings.e5_int8),  # its export's version, int8 or float
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


def config_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's config. Generations built before the store was recorded hold FAISS
    files: they keep matching a FAISS configuration."""
    config = dict(manifest.get("config") or {})
    if config:
        config.setdefault("dense_store", "faiss")
    return config


def corpus_hash(files: Iterable[Path]) -> str:
    """Hash of the corpus: every file's name and bytes, and its sidecar's (a changed
    sidecar is a changed corpus)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        for part in (path, sidecar_of(path)):
            if part is path or part.is_file():
                digest.update(part.name.encode())
                digest.update(b"\x00")
                digest.update(hashlib.sha256(part.read_bytes()).digest())
    return digest.hexdigest()


def corpus_folder(settings: Settings) -> Path:
    """The folder a build reads: the live corpus once a live change made it
    (``Settings.live_corpus_dir``), the shipped ``corpus_dir`` until then."""
    live = settings.live_corpus_dir()
    return live if live.is_dir() else settings.corpus_dir


def live_corpus(settings: Settings) -> Path:
    """The live corpus folder, made the first time as a copy of ``corpus_dir`` (written
    aside, fsynced, renamed into place: never half-copied). ``corpus_dir`` is never written."""
    live = settings.live_corpus_dir()
    if live.is_dir():
        return live
    live.parent.mkdir(parents=True, exist_ok=True)
    staging = live.with_name(f".{live.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    if settings.corpus_dir.is_dir():
        for path in sorted(settings.corpus_dir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                shutil.copy2(path, staging / path.name)
                fsync_path(staging / path.name)
    fsync_path(staging)
    os.replace(staging, live)
    fsync_path(live.parent)
    return live


# ------------------------------------------------------------------ manifest and checksums


def read_manifest(generation: Path) -> dict[str, Any]:
    """The manifest of ``generation``. Raises ``OSError`` or ``json.JSONDecodeError``."""
    manifest: dict[str, Any] = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    return manifest


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_table(directory: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under ``directory`` but the manifest: the manifest's
    ``files``."""
    return {
        path.relative_to(directory).as_posix(): {
            "bytes": path.stat().st_size,
            "sha256": _sha256_file(path),
        }
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path != directory / MANIFEST  # Milvus Lite has its own
    }


def check_files(manifest: dict[str, Any], generation: Path) -> None:
    """Refuse a generation whose files differ from its manifest's file table."""
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
            f"index file {path} {problem}; the index is damaged. Rebuild it with `citeqa build`."
        )


# ------------------------------------------------------------------ documents and chunks


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a JSON-lines file, one at a time (a million chunks never sit in memory
    as dicts)."""
    with path.open(encoding="utf-8") as handle:
        yield from (json.loads(line) for line in handle if line.strip())


def document_row(document: Document) -> dict[str, Any]:
    """A line of ``documents.jsonl``: the document, its spans as lists."""
    row = asdict(document)
    row["content"] = [[s.start, s.end, s.label, s.section] for s in document.content]
    row["boilerplate"] = [[s.start, s.end, s.label] for s in document.boilerplate]
    return row


def _document_from_row(row: dict[str, Any]) -> Document:
    """A document of ``documents.jsonl``. Rows of format 3 lack the sidecar's fields: they
    read as unknown, so a build can still reuse that generation's annotations (loading it
    to serve is refused by its format: ``load._check_config`` asks for a rebuild)."""
    return Document(
        **{
            **row,
            "content": tuple(Span(*span) for span in row["content"]),
            "boilerplate": tuple(Span(*span) for span in row["boilerplate"]),
        }
    )


def read_documents(generation: Path) -> list[Document]:
    """The documents of ``generation``, in file order."""
    return [_document_from_row(row) for row in read_jsonl(generation / DOCUMENTS)]


# ------------------------------------------------------------------------- publishing


def current_generation(index_dir: Path) -> Path | None:
    """The generation ``CURRENT`` names, or None if nothing was built yet."""
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        return None
    return index_dir / pointer.read_text(encoding="utf-8").strip()


def fsync_path(path: Path) -> None:
    """Flush a file or a directory (its entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def generations(index_dir: Path) -> list[Path]:
    """The ``gen-*`` directories of ``index_dir``, oldest first (their names sort by time)."""
    return sorted(p for p in index_dir.glob("gen-*") if p.is_dir())


def intact(generation: Path) -> bool:
    """True if ``generation``'s manifest parses and every file matches its checksum."""
    try:
        check_files(read_manifest(generation), generation)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexCorruptError):
        return False
    return True


def newest_removals(index_dir: Path) -> dict[str, str]:
    """The removed documents (id -> when) of the newest manifest that parses, looking no
    further than the current generation: a damaged current manifest does not lose them."""
    current = current_generation(index_dir)
    for generation in reversed(generations(index_dir)):
        if current is not None and generation.name > current.name:
            continue  # renamed but never published (a crash)
        try:
            removed = read_manifest(generation).get("removed", {})
        except (OSError, ValueError, AttributeError):  # missing, not JSON, not an object
            continue
        if isinstance(removed, dict):
            return {str(doc_id): str(when) for doc_id, when in removed.items()}
    return {}


def _last_intact(older: list[Path], known_good: Path | None) -> Path | None:
    """The newest of ``older`` (oldest first) that is intact; ``known_good`` was just
    checked by the caller and is not hashed again."""
    for candidate in reversed(older):
        if candidate == known_good or intact(candidate):
            return candidate
    return None


def publish(index_dir: Path, generation: Path, known_good: Path | None = None) -> None:
    """Point ``CURRENT`` at ``generation`` atomically, then drop old generations.

    Kept: the ``KEEP_GENERATIONS`` newest and, whatever their state, the newest older
    generation that is intact, so a damaged new generation always has a good one to fall
    back on. ``known_good``: a generation the caller has just verified (not hashed again).
    """
    for path in generation.rglob("*"):
        fsync_path(path)
    fsync_path(generation)
    pointer = index_dir / CURRENT
    staging = index_dir / f".{CURRENT}.tmp"
    staging.write_text(generation.name + "\n", encoding="utf-8")
    fsync_path(staging)
    os.replace(staging, pointer)
    fsync_path(index_dir)
    every = generations(index_dir)
    keep = set(every[-KEEP_GENERATIONS:]) | {generation}
    older = [p for p in every if p.name < generation.name]
    if (good := _last_intact(older, known_good)) is not None:
        keep.add(good)
    for old in every:
        if old not in keep:
            shutil.rmtree(old, ignore_errors=True)
