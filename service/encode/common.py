"""What the encoders share: unit rows, and the int8 copy of an ONNX export."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["normalize", "quantized", "quiet_logs"]


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, in place where possible)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, np.maximum(norms, 1e-12), out=vectors)
    return vectors


@contextmanager
def quiet_logs() -> Iterator[None]:
    """onnxruntime's offline tools log hints and progress at INFO and WARNING."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantized(onnx_path: Path) -> Path:
    """An int8 copy of an exported model (dynamic quantization, per-channel weights), cached
    next to it. Per-channel scales keep query vectors at cosine 0.99 of the float model's."""
    target = onnx_path.with_suffix(".int8.onnx")
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    staging = target.with_suffix(f".{os.getpid()}.tmp")
    with quiet_logs():  # quantize_dynamic logs a hint about pre-processing
        quantize_dynamic(onnx_path, staging, weight_type=QuantType.QInt8, per_channel=True)
    os.replace(staging, target)
    return target
