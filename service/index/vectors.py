"""The vectors of a build: the current generation's where it holds the text, new ones
encoded once.

Vectors are looked up by a hash of the text they encode (``text_key``), so a rebuild after
adding or removing documents, or after moving the vectors to another store, encodes only
the text that is new; adding one article costs its own encoding.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.encode.encoders import Encoder
from service.errors import IndexCorruptError, IndexMismatchError, VectorStoreError
from service.index.layout import (
    check_files,
    config_of,
    current_generation,
    expected_config,
    read_manifest,
    sentence_vectors_file,
)
from service.index.stores import close_store, open_store
from service.index.texts import read_texts

__all__ = ["VectorCache", "encode_new", "previous_vectors", "text_key"]

# by encoder name: the hash of a text -> its vector (a row of a larger array)
VectorCache = dict[str, dict[bytes, Any]]

_ENCODE_BLOCK = 50_000  # texts encoded at once: bounds the fresh vectors held in memory


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


def _content(config: dict[str, Any]) -> dict[str, Any]:
    """What of a config fixes the vectors (the store they are kept in does not)."""
    return {key: value for key, value in config.items() if key != "dense_store"}


def previous_vectors(settings: Settings) -> tuple[VectorCache, Path | None]:
    """Vectors of the current generation by the hash of the text they encode, for each
    encoder, and that generation (its checksums just passed). Empty and None if there is
    no usable generation (another model or chunking, damaged files), or if its Milvus
    store cannot be opened (Milvus Lite held by a serving process, a server out of
    reach): then everything is encoded again."""
    names = list(settings.encoder_models())
    generation = current_generation(settings.index_dir)
    if generation is None:
        return {name: {} for name in names}, None
    cache: VectorCache = {name: {} for name in names}
    try:
        manifest = read_manifest(generation)
        if _content(config_of(manifest)) != _content(expected_config(settings)):
            return cache, None
        check_files(manifest, generation)
        texts = read_texts(generation)
        for name in names:
            store = open_store(settings, generation, manifest, name, mmap=False)
            try:
                vectors = store.vectors()
            finally:
                close_store(store)
            cache[name].update(zip(map(text_key, texts.chunks), vectors, strict=True))
            sentence_vectors = np.load(generation / sentence_vectors_file(name), allow_pickle=False)
            cache[name].update(zip(map(text_key, texts.sentences), sentence_vectors, strict=True))
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
        return {name: {} for name in names}, None  # no reuse: encode everything
    return cache, generation


def encode_new(
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
        key = text_key(text)
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
