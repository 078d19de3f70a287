from pathlib import Path

import numpy as np
import pytest

import service.store.rows as rows_module
from service.errors import IndexCorruptError
from service.store.rows import RowFile


@pytest.fixture(params=["read", "in memory"])
def saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> tuple[np.ndarray, RowFile]:
    if request.param == "read":  # every file read a row at a time, as at 1M chunks
        monkeypatch.setattr(rows_module, "IN_MEMORY_BYTES", 0)
    array = np.random.default_rng(0).standard_normal((257, 7)).astype(np.float32)
    np.save(tmp_path / "rows.npy", array)
    return array, RowFile(tmp_path / "rows.npy")


def test_rows_read_are_the_saved_rows(saved: tuple[np.ndarray, RowFile]) -> None:
    array, rows = saved
    assert rows.shape == array.shape and len(rows) == 257 and rows.dtype == np.float32
    assert np.array_equal(rows.span(10, 20), array[10:20])
    assert rows.span(5, 5).shape == (0, 7)
    wanted = [200, 3, 4, 5, 3, 256, 0, 199]  # unsorted, repeated, runs of consecutive rows
    assert np.array_equal(rows.take(wanted), array[wanted])
    assert rows.take([]).shape == (0, 7)
    assert np.array_equal(rows.read_all(), array)
    with pytest.raises(IndexError):
        rows.span(250, 258)
    with pytest.raises(IndexError):
        rows.take([3, 257])


def test_a_damaged_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.npy"
    np.save(path, np.ones((10, 4), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:-4])  # truncated
    with pytest.raises(IndexCorruptError, match="bytes where its header needs"):
        RowFile(path)
    path.write_bytes(b"not an array at all")
    with pytest.raises(IndexCorruptError, match=r"not a \.npy file"):
        RowFile(path)
    np.save(path, np.ones(10, dtype=np.float32))
    with pytest.raises(IndexCorruptError, match="not the rows of vectors"):
        RowFile(path)
