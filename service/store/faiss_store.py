"""FAISS: inner-product search over L2-normalized embeddings (cosine similarity).

The index kind follows the number of vectors (``service.store.base.DenseParams.spec_for``):

- under ``ann_threshold`` vectors (20,000 by default), ``flat``: ``IndexFlatIP``, exact.
  One query reads every vector, which costs little on a small corpus (the seeds are about
  100 chunks);
- from ``ann_threshold`` on, an approximate index:

  - ``ivfpq`` (the default): ``IndexIVFPQ``, ``nlist`` k-means cells, each vector stored as
    ``pq_m`` bytes; a query visits ``nprobe`` cells, then re-scores ``refine`` times ``k``
    candidates with the exact vectors (a float copy kept beside the index, read a few
    rows a query with ``service.store.rows.RowFile``);
  - ``hnsw``: ``IndexHNSWFlat`` with the inner-product metric, a graph of ``M`` links a
    vector (``2M`` on the bottom layer) over the float vectors. ``efSearch`` is the
    candidate list a query keeps: recall against speed.

The kind and its parameters form the index's ``spec``; the index manifest records it and
loading applies it (``efSearch``, ``nprobe`` and ``refine`` are search-time settings).

On disk an index is one FAISS file (``ivfpq`` adds ``<name>.vectors.npy``). ``load`` maps
what FAISS can map (``IO_FLAG_MMAP_IFC``): the flat vectors; for HNSW the stored vectors
and the neighbour lists, while its per-vector levels and offsets (12 bytes a vector) are
read into memory; for IVF-PQ the codes and ids of the inverted lists. Mapped pages are
shared by every worker process that loads the same generation. (``IO_FLAG_MMAP``, used
before, maps only on-disk IVF lists: with faiss-cpu 1.15 it read a flat index whole into
private memory.) Which kind and parameters, and why: ``service.config`` and
``service.lab.scale``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from service.errors import IndexCorruptError
from service.store.base import DenseParams
from service.store.rows import RowFile

__all__ = ["DenseIndex", "theoretical_bytes"]

_FAISS_TYPES = {"flat": faiss.IndexFlatIP, "hnsw": faiss.IndexHNSWFlat, "ivfpq": faiss.IndexIVFPQ}
_ADD_BLOCK = 20_000  # vectors added per FAISS call: progress without slowing the build


def theoretical_bytes(spec: dict[str, Any], n: int, dim: int) -> int:
    """The bytes the index's data structures need for ``n`` vectors, from its spec alone:

    - flat: the float32 vectors, ``4 n d``;
    - hnsw: the vectors, ``4 (2M + M/(M-1))`` bytes of links a vector (``2M`` on the bottom
      layer, ``M`` on each upper one, a vector reaching ``1/(M-1)`` upper layers on
      average), and 12 bytes of level and offset;
    - ivfpq: ``pq_m`` code bytes and an 8-byte id a vector, the coarse centroids
      (``4 nlist d``) and the PQ codebooks (``4 * 256 * d``). The float copy used for
      refinement and ``vectors()`` is memory-mapped and not counted.
    """
    kind = spec["kind"]
    if kind == "flat":
        return 4 * n * dim
    if kind == "hnsw":
        m = int(spec["M"])
        links = 2 * m + m / (m - 1)
        return round(n * (4 * dim + 4 * links + 12))
    if kind == "ivfpq":
        code = int(spec["pq_m"]) * int(spec["pq_nbits"]) // 8
        return (
            n * (code + 8) + 4 * int(spec["nlist"]) * dim + 4 * (2 ** int(spec["pq_nbits"])) * dim
        )
    raise ValueError(f"unknown dense index kind {kind!r}")


class DenseIndex:
    """Inner-product search; ``search`` returns (row, score) pairs, best first."""

    def __init__(
        self,
        index: faiss.Index,
        spec: dict[str, Any] | None = None,
        vectors: np.ndarray | RowFile | None = None,
    ) -> None:
        """``vectors`` is the float copy an ``ivfpq`` index keeps (refinement, ``vectors()``):
        in memory after a build, read from its file a few rows a query after ``load``."""
        self._index = index
        self._spec = dict(spec or {"kind": "flat"})
        self._vectors = vectors
        _apply_search_params(index, self._spec)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> str:
        return str(self._spec["kind"])

    @property
    def spec(self) -> dict[str, Any]:
        """The kind and its parameters, as the manifest records them."""
        return dict(self._spec)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        kind: str = "auto",
        params: DenseParams | None = None,
        progress: bool = False,
    ) -> DenseIndex:
        """An index over ``vectors`` (L2-normalized rows). ``kind="auto"`` picks exact or
        approximate by the number of rows (``DenseParams.spec_for``)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        spec = (params or DenseParams.defaults()).spec_for(n, dim, kind)
        if spec["kind"] == "flat":
            index: faiss.Index = faiss.IndexFlatIP(dim)
        elif spec["kind"] == "hnsw":
            index = faiss.IndexHNSWFlat(dim, int(spec["M"]), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(spec["efConstruction"])
        else:
            index = _trained_ivfpq(vectors, spec)
        _add(index, vectors, progress=progress, what=spec["kind"])
        return cls(index, spec, vectors if spec["kind"] == "ivfpq" else None)

    def save(self, path: Path) -> None:
        """Write the FAISS file (and, for ``ivfpq``, the float copy beside it)."""
        faiss.write_index(self._index, str(path))
        if self._vectors is not None:
            np.save(_vectors_path(path), self.vectors(), allow_pickle=False)

    @classmethod
    def load(
        cls, path: Path, spec: dict[str, Any] | None = None, *, mmap: bool = True
    ) -> DenseIndex:
        """Read an index saved with ``spec`` (None: an exact index, as every index built
        before specs were recorded). The file must hold that kind."""
        spec = dict(spec or {"kind": "flat"})
        kind = spec.get("kind")
        if kind not in _FAISS_TYPES:
            raise IndexCorruptError(
                f"the manifest names an unknown dense index kind {kind!r} for {path}; "
                "rebuild with `citeqa build --force`."
            )
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(path), flags)
        if not isinstance(index, _FAISS_TYPES[kind]):
            raise IndexCorruptError(
                f"{path} holds a {type(index).__name__} but the manifest says {kind!r}; "
                "rebuild with `citeqa build --force`."
            )
        vectors = None
        if kind == "ivfpq":  # the float copy: read a few rows a query (``service.store.rows``)
            vectors = RowFile(_vectors_path(path))
            if vectors.shape != (index.ntotal, index.d):
                raise IndexCorruptError(
                    f"{_vectors_path(path)} holds {vectors.shape} vectors, the index "
                    f"{(index.ntotal, index.d)}; rebuild with `citeqa build --force`."
                )
        return cls(index, spec, vectors)

    def vectors(self) -> np.ndarray:
        """Every stored vector, in row order, as it was added (exact for every kind: flat
        and HNSW store the floats, IVF-PQ keeps a float copy)."""
        if not self.size:
            return np.zeros((0, self.dim), dtype=np.float32)
        if isinstance(self._vectors, RowFile):
            return self._vectors.read_all()
        if self._vectors is not None:
            return np.array(self._vectors, dtype=np.float32)
        return np.asarray(self._index.reconstruct_n(0, self.size), dtype=np.float32)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        k = min(k, self.size)
        if k <= 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        if self._vectors is None:
            scores, rows = self._index.search(query, k)
            return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
        # IVF-PQ: rank the approximate candidates again by their exact inner product
        depth = min(self.size, k * max(1, int(self._spec.get("refine", 1))))
        _, candidates = self._index.search(query, depth)
        found = np.sort(candidates[0][candidates[0] >= 0])  # in file order
        rows = (
            self._vectors.take(found)
            if isinstance(self._vectors, RowFile)
            else self._vectors[found]
        )
        exact = np.asarray(rows, dtype=np.float32) @ query[0]
        order = np.argsort(-exact, kind="stable")[:k]
        return [(int(r), float(s)) for r, s in zip(found[order], exact[order], strict=True)]


def _vectors_path(path: Path) -> Path:
    return path.with_name(path.stem + ".vectors.npy")


def _apply_search_params(index: Any, spec: dict[str, Any]) -> None:
    if spec["kind"] == "hnsw":
        index.hnsw.efSearch = int(spec["efSearch"])
    elif spec["kind"] == "ivfpq":
        index.nprobe = int(spec["nprobe"])


def _trained_ivfpq(vectors: np.ndarray, spec: dict[str, Any]) -> faiss.Index:
    n, dim = vectors.shape
    nlist, pq_m = int(spec["nlist"]), int(spec["pq_m"])
    needed = max(39 * nlist, 2 ** int(spec["pq_nbits"]))
    if n < needed:
        raise ValueError(
            f"an IVF-PQ index with {nlist} cells needs at least {needed} vectors to train, "
            f"not {n}; raise CITEQA_DENSE_ANN_THRESHOLD or lower CITEQA_DENSE_IVF_NLIST."
        )
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(
        quantizer, dim, nlist, pq_m, int(spec["pq_nbits"]), faiss.METRIC_INNER_PRODUCT
    )
    # a seeded sample: 64 vectors a cell for the coarse k-means (FAISS caps at 256), and
    # the 39 a centroid FAISS asks for the PQ codebooks
    sample = min(n, max(64 * nlist, 39 * 2 ** int(spec["pq_nbits"])))
    rows = np.sort(np.random.default_rng(0).choice(n, size=sample, replace=False))
    index.train(vectors[rows])
    return index  # faiss's Python wrapper keeps the quantizer alive with the index


def _add(index: faiss.Index, vectors: np.ndarray, *, progress: bool, what: str) -> None:
    from tqdm.auto import tqdm

    with tqdm(
        total=len(vectors), desc=f"index {what}", unit="vec", disable=not progress, leave=False
    ) as bar:
        for start in range(0, len(vectors), _ADD_BLOCK):
            block = vectors[start : start + _ADD_BLOCK]
            index.add(block)
            bar.update(len(block))
