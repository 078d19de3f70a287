"""Dense: FAISS inner-product search over L2-normalized embeddings (cosine similarity)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

__all__ = ["DenseIndex"]


class DenseIndex:
    """Exact inner-product search; ``search`` returns (row, score) pairs, best first."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @classmethod
    def build(cls, vectors: np.ndarray) -> DenseIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return cls(index)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, *, mmap: bool = True) -> DenseIndex:
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        return cls(faiss.read_index(str(path), flags))

    def vectors(self) -> np.ndarray:
        """Every stored vector, in row order (an exact index keeps them as they were)."""
        return self._index.reconstruct_n(0, self.size) if self.size else np.zeros((0, self.dim))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        k = min(k, self.size)
        if k <= 0:
            return []
        scores, rows = self._index.search(vector.reshape(1, -1).astype(np.float32), k)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
