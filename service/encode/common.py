"""What the encoders share: unit rows."""

from __future__ import annotations

import numpy as np

__all__ = ["normalize"]


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, in place where possible)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, np.maximum(norms, 1e-12), out=vectors)
    return vectors
