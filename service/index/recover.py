"""Before serving: what a crash left behind is cleaned up, and the corpus and the index
are brought back in step.

A process killed mid-change can leave a ``.building-*`` directory (a build never
renamed), staging files, or a corpus folder that holds a change the index does not (the
corpus was written, the generation never published). ``prepare_to_serve`` removes the
former and publishes the latter, under the write lock, so no change runs meanwhile.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from service.config import Settings
from service.errors import CorpusError
from service.index.build import build_index
from service.index.layout import corpus_folder, corpus_hash, read_manifest
from service.index.live import write_lock
from service.index.load import check_servable
from service.ingest.documents import corpus_files

__all__ = ["Prepared", "prepare_to_serve", "remove_stale_builds"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """What ``prepare_to_serve`` found: the generation to serve and what it did."""

    generation: Path
    warning: str | None  # set when the current generation is damaged (an older one is served)
    removed: tuple[str, ...]  # the leftovers of interrupted builds it deleted
    published: bool  # the corpus differed from the current generation: published it


def remove_stale_builds(index_dir: Path) -> tuple[str, ...]:
    """Delete ``.building-*`` directories and staging files left by killed processes.
    Call with the write lock held: then no build is under way."""
    stale = [*index_dir.glob(".building-*"), *index_dir.glob(".*.tmp")]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return tuple(sorted(path.name for path in stale))


def _corpus_changed(settings: Settings, generation: Path) -> bool:
    folder = corpus_folder(settings)
    for staging in folder.glob(".*.tmp"):  # a corpus file written aside, never renamed
        staging.unlink(missing_ok=True)
    try:
        digest = corpus_hash(corpus_files(folder))
    except CorpusError:
        return False  # no corpus to compare: serve the index as it is
    return bool(read_manifest(generation).get("corpus_hash") != digest)


def prepare_to_serve(settings: Settings) -> Prepared:
    """Clean up after crashes and publish a corpus change the index lacks; raise the
    error that says what to do when no generation can be served.

    With a damaged current generation nothing is published (an older one is served,
    ``/readyz`` says "degraded"; ``citeqa build`` repairs it)."""
    with write_lock(settings):
        removed = remove_stale_builds(settings.index_dir)
        if removed:
            logger.warning("removed what interrupted builds left: %s", ", ".join(removed))
        generation, warning = check_servable(settings)
        published = False
        if warning is None and _corpus_changed(settings, generation):
            logger.warning("the corpus holds changes the index lacks (an interrupted change)")
            generation = build_index(settings, progress=False).path
            published = True
    return Prepared(generation, warning, removed, published)
