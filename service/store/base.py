"""What every dense store keeps, and how the kind of its index is chosen.

``VectorStore`` is what a dense retriever needs of a store of chunk vectors, FAISS
(``service.store.faiss_store.DenseIndex``) or Milvus (``service.store.milvus.MilvusStore``).
``DenseParams`` chooses the index kind by the number of vectors, the same rule for both
stores: exact (``flat``) under ``ann_threshold`` vectors, ``ann_kind`` from there (IVF-PQ
by default, or HNSW). ``DenseParams.spec_for`` writes the choice as a ``spec``, the kind
and its parameters, which the index manifest records and loading applies.

The store package does not import ``service.config`` (which imports ``service.store.milvus``
for ``Settings.milvus_lite``): ``DenseParams.from_settings`` reads any object with the
``dense_*`` settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = ["KINDS", "DenseParams", "DenseSettings", "VectorStore"]

KINDS = ("flat", "hnsw", "ivfpq")
_PQ_NBITS = 8  # bits of a PQ code: 256 centroids a sub-quantizer


@runtime_checkable
class VectorStore(Protocol):
    """What a dense retriever needs from a store of chunk vectors.

    Kept by ``DenseIndex`` (FAISS files, the default) and ``MilvusStore``. Rows are chunk
    row numbers (0 .. size-1, the order of ``chunks.jsonl``); vectors are L2-normalised, so
    the inner-product scores ``search`` returns are cosine similarities. Building and
    opening differ (a file beside the manifest against a URI and a collection), so they
    are not part of it.
    """

    @property
    def size(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` rows nearest ``vector`` as (row, score) pairs, best first."""
        ...

    def vectors(self) -> np.ndarray:
        """Every stored vector as a (size, dim) float32 array, in row order."""
        ...


class DenseSettings(Protocol):
    """The settings ``DenseParams`` is made from (``service.config.Settings`` has them)."""

    dense_ann_threshold: int
    dense_ann_kind: Literal["hnsw", "ivfpq"]
    dense_hnsw_m: int
    dense_hnsw_ef_construction: int
    dense_hnsw_ef_search: int
    dense_ivf_nlist: int
    dense_ivf_nprobe: int
    dense_pq_m: int
    dense_ivfpq_refine: int


@dataclass(frozen=True)
class DenseParams:
    """How the index kind is chosen and configured: the ``dense_*`` settings
    (``CITEQA_DENSE_*``; ``service.config`` holds the defaults and where they come from)."""

    ann_threshold: int
    ann_kind: Literal["hnsw", "ivfpq"]
    hnsw_m: int
    hnsw_ef_construction: int
    hnsw_ef_search: int
    ivf_nlist: int  # 0: about 4 sqrt(n)
    ivf_nprobe: int
    pq_m: int
    ivfpq_refine: int

    @classmethod
    def defaults(cls) -> DenseParams:
        """The settings' defaults, without reading the environment. They are written here
        again because the store cannot import the settings; ``tests/test_dense.py`` checks
        that they agree with ``service.config``'s."""
        return cls(
            ann_threshold=20_000,
            ann_kind="ivfpq",
            hnsw_m=32,
            hnsw_ef_construction=80,
            hnsw_ef_search=256,
            ivf_nlist=0,
            ivf_nprobe=64,
            pq_m=64,
            ivfpq_refine=10,
        )

    @classmethod
    def from_settings(cls, settings: DenseSettings) -> DenseParams:
        """The parameters the ``dense_*`` settings of ``settings`` name."""
        return cls(
            ann_threshold=settings.dense_ann_threshold,
            ann_kind=settings.dense_ann_kind,
            hnsw_m=settings.dense_hnsw_m,
            hnsw_ef_construction=settings.dense_hnsw_ef_construction,
            hnsw_ef_search=settings.dense_hnsw_ef_search,
            ivf_nlist=settings.dense_ivf_nlist,
            ivf_nprobe=settings.dense_ivf_nprobe,
            pq_m=settings.dense_pq_m,
            ivfpq_refine=settings.dense_ivfpq_refine,
        )

    def spec_for(self, n: int, dim: int, kind: str = "auto") -> dict[str, Any]:
        """The spec of the index for ``n`` vectors of ``dim`` columns: ``kind`` itself, or
        with ``"auto"``, exact under ``ann_threshold`` vectors and ``ann_kind`` from there."""
        if kind == "auto":
            kind = "flat" if n < self.ann_threshold else self.ann_kind
        if kind == "flat":
            return {"kind": "flat"}
        if kind == "hnsw":
            return {
                "kind": "hnsw",
                "M": self.hnsw_m,
                "efConstruction": self.hnsw_ef_construction,
                "efSearch": self.hnsw_ef_search,
            }
        if kind == "ivfpq":
            if dim % self.pq_m:
                raise ValueError(
                    f"pq_m ({self.pq_m}) must divide the vector dimension ({dim}); "
                    "set CITEQA_DENSE_PQ_M to a divisor of it."
                )
            nlist = self.ivf_nlist or _auto_nlist(n)
            return {
                "kind": "ivfpq",
                "nlist": nlist,
                "nprobe": min(self.ivf_nprobe, nlist),
                "pq_m": self.pq_m,
                "pq_nbits": _PQ_NBITS,
                "refine": self.ivfpq_refine,
            }
        raise ValueError(f"unknown dense index kind {kind!r}; use one of auto, {', '.join(KINDS)}")


def _auto_nlist(n: int) -> int:
    """About 4 sqrt(n) cells, a power of two, with at least 39 training vectors each."""
    target = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n))))
    return int(max(1, min(target, n // 39)))
