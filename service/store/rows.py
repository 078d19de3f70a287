"""Rows: the rows of a 2-D ``.npy`` file, read on demand with ``pread``.

A question reads a few hundred scattered rows of files that run to gigabytes at 1M chunks
(the IVF-PQ float copies, the sentence vectors). Reading them through a memory map counts
far more than those rows in the process's resident memory: each page fault maps the
pages around it too (the kernel's fault-around, 64 KiB), so after a few hundred questions
a worker holds most of the file, and every worker holds its own count of it. ``pread``
copies only the bytes asked for; the kernel's page cache, shared by every worker and
given back under memory pressure, keeps what was read warm. A file of up to
``IN_MEMORY_BYTES`` (the seed corpus's) is read whole instead: no system call a question.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.lib.format as npy

from service.errors import IndexCorruptError

__all__ = ["IN_MEMORY_BYTES", "RowFile"]

IN_MEMORY_BYTES = 32 * 2**20  # files up to this size are read into memory at open


class RowFile:
    """A read-only 2-D array in a ``.npy`` file (C order, as ``np.save`` writes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("rb", buffering=0)  # closed with the object
        try:
            version = npy.read_magic(self._file)
            read_header = (
                npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(self._file)
        except ValueError as error:
            self._file.close()
            raise IndexCorruptError(
                f"{path} is not a .npy file ({error}); rebuild with `citeqa build --force`."
            ) from error
        if len(shape) != 2 or fortran_order or dtype.hasobject:
            self._file.close()
            raise IndexCorruptError(
                f"{path} holds a {shape} {dtype} array (Fortran order: {fortran_order}), not "
                "the rows of vectors it should; rebuild with `citeqa build --force`."
            )
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._offset = self._file.tell()
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        expected = self._offset + self.shape[0] * self._row_bytes
        size = os.fstat(self._file.fileno()).st_size
        if size != expected:
            self._file.close()
            raise IndexCorruptError(
                f"{path} has {size} bytes where its header "
                f"needs {expected}; rebuild with `citeqa build --force`."
            )
        self._rows: np.ndarray | None = None
        if size <= IN_MEMORY_BYTES:
            self._rows = np.load(path, allow_pickle=False)
            self._rows.flags.writeable = False

    def __len__(self) -> int:
        return self.shape[0]

    def span(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop`` (exclusive), in one read."""
        if not 0 <= start <= stop <= self.shape[0]:
            raise IndexError(f"rows {start}:{stop} of {self.shape[0]} in {self.path}")
        if self._rows is not None:
            return self._rows[start:stop]
        size, offset = (stop - start) * self._row_bytes, self._offset + start * self._row_bytes
        data = os.pread(self._file.fileno(), size, offset)
        while len(data) < size:  # one pread returns at most about 2 GiB
            more = os.pread(self._file.fileno(), size - len(data), offset + len(data))
            if not more:
                raise IndexCorruptError(
                    f"{self.path} ended early; rebuild with `citeqa build --force`."
                )
            data += more
        return np.frombuffer(data, dtype=self.dtype).reshape(stop - start, self.shape[1])

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The given rows, in the order given: one ``pread`` a row (a few microseconds
        each; scattered rows gain nothing from being read together)."""
        fd, size, offset = self._file.fileno(), self._row_bytes, self._offset
        wanted = np.asarray(rows, dtype=np.int64)
        if len(wanted) and not (wanted.min() >= 0 and wanted.max() < self.shape[0]):
            raise IndexError(f"a row outside 0:{self.shape[0]} in {self.path}")
        if self._rows is not None:
            return self._rows[wanted]
        data = b"".join([os.pread(fd, size, offset + row * size) for row in wanted.tolist()])
        if len(data) != len(wanted) * size:
            raise IndexCorruptError(
                f"{self.path} ended early; rebuild with `citeqa build --force`."
            )
        return np.frombuffer(data, dtype=self.dtype).reshape(len(wanted), self.shape[1])

    def read_all(self) -> np.ndarray:
        """Every row, as a new array (a rebuild reusing the vectors)."""
        if self._rows is not None:
            return self._rows.copy()
        return np.load(self.path, allow_pickle=False)

    def close(self) -> None:
        self._file.close()
