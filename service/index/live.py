"""Live corpus: add and remove documents while the service answers.

A change writes the live corpus folder (``Settings.live_corpus_dir``: the shipped
``corpus_dir`` is copied there on the first change and never written), then builds and
publishes a new index generation (``service.index.build``: written aside, every file
fsynced, switched to by an atomic rename of ``CURRENT``). Only text that is new gets
encoded, so adding one article takes seconds.
Changes are serialized by an exclusive lock on ``<index_dir>/.write.lock``, across
processes (the CLI and every server worker); readers never wait for it.

If a process dies between writing the corpus folder and publishing, ``citeqa serve``
publishes the difference before it starts (``service.index.recover``), as would the next
change or ``citeqa build``; a generation is never seen half-written.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from service.config import Settings
from service.errors import CorpusError, InputError, UnknownDocumentError
from service.index.build import BuildResult, build_index
from service.index.layout import fsync_path, live_corpus
from service.ingest.documents import SUFFIXES, corpus_files, parse_document
from service.ingest.metadata import Metadata, read_sidecar, sidecar_bytes, sidecar_of
from service.records import Document

__all__ = ["add_files", "add_text", "rebuild", "remove_documents", "write_lock"]

LOCK = ".write.lock"
_DOC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@contextmanager
def write_lock(settings: Settings) -> Iterator[None]:
    """Hold the index's write lock (blocks until the running change is published)."""
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    with (settings.index_dir / LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with staging.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
    fsync_path(path.parent)


def _place(folder: Path, doc_id: str, suffix: str, text: str, metadata: Metadata | None) -> None:
    """Write document ``doc_id`` into the corpus ``folder``, replacing one of that id (its
    other suffix, and its sidecar: metadata not sent again is not kept for new text)."""
    old = _existing(folder).get(doc_id)
    target = folder / f"{doc_id}{suffix}"
    _write_atomic(target, text.encode("utf-8"))
    if old is not None and old != target:
        old.unlink()  # same id, other suffix: the new file replaces it
    sidecar = sidecar_of(target)
    if metadata is not None and metadata.as_dict():
        _write_atomic(sidecar, sidecar_bytes(metadata))
    elif sidecar.is_file():
        sidecar.unlink()
        fsync_path(folder)


def _existing(folder: Path) -> dict[str, Path]:
    try:
        return {path.stem: path for path in corpus_files(folder)}
    except CorpusError:
        return {}


def check_doc_id(doc_id: str) -> str:
    if not _DOC_ID.fullmatch(doc_id):  # match() with $ let an id ending in a newline through
        raise InputError(
            "doc_id",
            f"doc_id {doc_id!r} is not allowed: use 1 to 100 letters, digits, '_', '-' or "
            "'.', starting with a letter or digit.",
        )
    return doc_id


def add_files(settings: Settings, paths: Sequence[Path]) -> BuildResult:
    """Copy text or markdown files into the corpus (replacing same-named documents), each
    with its sidecar ``NAME.meta.json`` if one lies beside it, and publish the new
    generation. The document id is the file name without its suffix."""
    payloads = []
    for path in paths:
        if path.suffix not in SUFFIXES:
            raise CorpusError(f"{path} is not a .txt or .md file; only those can be indexed.")
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError as error:
            raise CorpusError(f"{path} does not exist.") from error
        except UnicodeDecodeError as error:
            raise CorpusError(f"{path} is not UTF-8 text; convert it first.") from error
        check_doc_id(path.stem)
        payloads.append((path.stem, path.suffix, text, read_sidecar(path)))  # checked now
    with write_lock(settings):
        folder = live_corpus(settings)
        for doc_id, suffix, text, metadata in payloads:
            _place(folder, doc_id, suffix, text, metadata)
        return build_index(settings, progress=False)


def compose(text: str, *, title: str | None, source: str | None, published: str | None) -> str:
    """A document file from an API body: the title line, a source/date line, the text."""
    head = []
    if title:
        head.append(" ".join(title.split()))
    facts = [f"Source: {' '.join(source.split())}" if source else "", published or ""]
    if any(facts):
        head.append(" | ".join(part for part in facts if part))
    return "\n\n".join([*head, text]) if head else text


def _check_metadata(
    document: Document, *, title: str | None, source: str | None, published: str | None
) -> None:
    """Refuse a document whose file would read back with other metadata than was sent: a
    title holding "Source: X | 1999-01-01" must not set the source or the date. Text sent
    without any of them is read as a file is (its own header lines count)."""
    if title is None and source is None and published is None:
        return
    sent = {
        "title": " ".join(title.split()) if title else None,
        "source": " ".join(source.split()) if source else None,
        "published": published,
    }
    read = {"title": document.title, "source": document.source, "published": document.published}
    if title is None:
        read["title"] = sent["title"] = None  # taken from the text, as for a file
    wrong = [key for key in sent if sent[key] is not None and read[key] != sent[key]]
    wrong += [key for key in ("source", "published") if sent[key] is None and read[key]]
    if wrong:
        shown = ", ".join(f"{key} {read[key]!r}" for key in wrong)
        raise InputError(
            "title" if title else "text",
            f"the document would read back with {shown}, not what was sent: the title or "
            "the text looks like a source or date line. Send them in 'source' and "
            "'published', and leave them out of the title.",
        )


def _slug(title: str | None, text: str) -> str:
    base = unicodedata.normalize("NFKD", title or text[:60]).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", base).strip("-").lower()[:40]
    return slug or "document"


def add_text(
    settings: Settings,
    text: str,
    *,
    doc_id: str | None = None,
    title: str | None = None,
    source: str | None = None,
    published: str | None = None,
    markdown: bool = False,
    metadata: Metadata | None = None,
) -> tuple[str, BuildResult]:
    """Add one document given as text (the admin API); returns its id and the build.

    ``title``, ``source`` and ``published`` are written into the text as its header lines;
    ``metadata`` is written beside it as its sidecar (``NAME.meta.json``), the text left
    as sent. A field may come one way or the other, not both."""
    if not text.strip():
        raise InputError("text", "text is empty; send the document's text.")
    _check_one_way(metadata, title=title, source=source, published=published)
    body = compose(text, title=title, source=source, published=published)
    if doc_id is None:
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]
        named = title or (metadata.title if metadata else None)
        doc_id = f"{_slug(named, text)}_{digest}"
    check_doc_id(doc_id)
    suffix = ".md" if markdown else ".txt"
    parsed = parse_document(doc_id, body, path=f"{doc_id}{suffix}")  # fails here, not mid-build
    _check_metadata(parsed, title=title, source=source, published=published)
    with write_lock(settings):
        _place(live_corpus(settings), doc_id, suffix, body, metadata)
        return doc_id, build_index(settings, progress=False)


def _check_one_way(
    metadata: Metadata | None, *, title: str | None, source: str | None, published: str | None
) -> None:
    """Refuse a field sent both as a header line and in ``metadata``: which would count?"""
    if metadata is None:
        return
    pairs = [
        ("title", title, metadata.title),
        ("source", source, metadata.publisher),
        ("published", published, metadata.published),
    ]
    for name, line, stated in pairs:
        if line is not None and stated is not None:
            field = "publisher" if name == "source" else name
            raise InputError(
                name,
                f"{name} is sent twice, as {name!r} and as metadata.{field}; send it once "
                "(metadata, which leaves the text as sent, is the better place).",
            )


def remove_documents(settings: Settings, doc_ids: Sequence[str]) -> BuildResult:
    """Delete documents from the corpus and publish the generation without them; their
    citation links then answer 410 Gone."""
    with write_lock(settings):
        folder = live_corpus(settings)
        existing = _existing(folder)
        unknown = [doc_id for doc_id in doc_ids if doc_id not in existing]
        if unknown:
            raise UnknownDocumentError(unknown[0])
        if len(set(doc_ids)) >= len(existing):
            raise InputError(
                "doc_id", "that would remove every document; the index needs at least one."
            )
        for doc_id in doc_ids:
            existing[doc_id].unlink()
            sidecar_of(existing[doc_id]).unlink(missing_ok=True)
        fsync_path(folder)
        return build_index(settings, progress=False, removed=doc_ids)


def rebuild(settings: Settings) -> BuildResult:
    """Build every vector anew from the corpus folder and publish it."""
    with write_lock(settings):
        return build_index(settings, force=True, progress=False)
