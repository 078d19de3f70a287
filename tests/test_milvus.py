"""MilvusStore against Milvus Lite (embedded, in a temporary directory) and FAISS."""

from __future__ import annotations

import gc
import hashlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install 'citeqa[milvus]')")
pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (citeqa[milvus])")

from service.dense import DenseIndex, DenseParams, VectorStore
from service.errors import IndexMismatchError, VectorStoreError
from service.index import CorpusIndex
from service.milvus import (
    LITE_FILE,
    MilvusStore,
    collection_name,
    compare_stores,
    drop_stale_collections,
    is_local,
    synthetic_vectors,
)

REPO = Path(__file__).resolve().parent.parent


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def tree(path: Path) -> dict[str, tuple[int, str, int]]:
    """Every file under ``path``: size, sha256 and modification time."""
    return {
        p.relative_to(path).as_posix(): (
            p.stat().st_size,
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def lite(tmp_path: Path) -> str:
    """A Milvus Lite path inside a fresh generation-like directory."""
    generation = tmp_path / "gen-test"
    generation.mkdir()
    return str(generation / LITE_FILE)


# ------------------------------------------------------------------- exact = FAISS exact


def seed_vectors(corpus_index: CorpusIndex, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The seed corpus's chunk vectors and, as queries, its sentence vectors."""
    store = corpus_index.dense if name == "dense" else corpus_index.multilingual
    queries = np.asarray(corpus_index.sentence_vectors[name][:200], dtype=np.float32)
    return store.vectors(), queries


@pytest.mark.parametrize(
    "data", ["random-64d", "seed-dense-384d", "seed-multilingual-512d"], ids=str
)
def test_flat_search_equals_faiss_exact(
    data: str, lite: str, request: pytest.FixtureRequest
) -> None:
    if data == "random-64d":
        vectors, queries = unit_rows(3000, 64, seed=1), unit_rows(50, 64, seed=2)
    else:
        corpus_index = request.getfixturevalue("corpus_index")
        vectors, queries = seed_vectors(corpus_index, data.split("-")[1])
    assert len(vectors) > 50 and len(queries) >= 50
    exact = DenseIndex.build(vectors, kind="flat")
    store = MilvusStore.build(vectors, uri=lite, collection="dense", kind="flat")
    try:
        assert (store.size, store.dim, store.kind) == (len(vectors), vectors.shape[1], "flat")
        for query in queries:
            want, got = exact.search(query, 10), store.search(query, 10)
            assert [row for row, _ in got] == [row for row, _ in want]
            assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-4, rtol=0)
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["hnsw"], ids=str)
@pytest.mark.parametrize("data", ["clustered-128d", "seed-multilingual-512d"], ids=str)
def test_approximate_kind_finds_the_exact_top_10(
    kind: str, data: str, lite: str, request: pytest.FixtureRequest
) -> None:
    if data == "clustered-128d":
        vectors, queries = synthetic_vectors(10_000, 100, 128, clustered=True, seed=3)
    else:
        vectors, queries = seed_vectors(request.getfixturevalue("corpus_index"), "multilingual")
    exact = DenseIndex.build(vectors, kind="flat")
    store = MilvusStore.build(vectors, uri=lite, collection="dense", kind=kind)
    try:
        assert store.kind == kind
        recall = np.mean(
            [
                len({r for r, _ in store.search(q, 10)} & {r for r, _ in exact.search(q, 10)}) / 10
                for q in queries
            ]
        )
    finally:
        store.close()
    assert recall >= 0.95, f"recall@10 {recall:.3f}"


def test_the_kind_follows_the_number_of_rows_like_faiss(lite: str) -> None:
    params = DenseParams.defaults()
    vectors = unit_rows(300, 16, seed=4)
    small = MilvusStore.build(
        vectors, uri=lite, collection="small", params=replace(params, ann_threshold=301)
    )
    large = MilvusStore.build(
        vectors, uri=lite, collection="large", params=replace(params, ann_threshold=300)
    )
    try:
        assert small.spec == {"kind": "flat"}
        assert large.spec == {
            "kind": "hnsw",
            "M": params.hnsw_m,
            "efConstruction": params.hnsw_ef_construction,
            "efSearch": params.hnsw_ef_search,
        }
    finally:
        small.close()
        large.close()


def test_milvus_lite_has_no_ivfpq_and_says_what_to_use(lite: str) -> None:
    with pytest.raises(VectorStoreError, match="CITEQA_DENSE_ANN_KIND=hnsw"):
        MilvusStore.build(unit_rows(100, 64, seed=5), uri=lite, collection="d", kind="ivfpq")
    assert not Path(lite).exists()  # refused before anything was written


# ------------------------------------------------------------------ building and opening


def test_open_gives_back_what_was_built_after_the_directory_moved(tmp_path: Path) -> None:
    """A build is written under .building-*, closed, renamed to gen-*, then opened."""
    work = tmp_path / ".building-1"
    work.mkdir()
    vectors = unit_rows(2500, 48, seed=6)
    built = MilvusStore.build(vectors, uri=str(work / LITE_FILE), collection="dense", kind="hnsw")
    spec = built.spec
    expected = [built.search(q, 10) for q in vectors[:20]]
    built.close()
    generation = tmp_path / "gen-1"
    work.rename(generation)

    store = MilvusStore.open(uri=str(generation / LITE_FILE), collection="dense", spec=spec)
    try:
        assert isinstance(store, VectorStore)
        assert (store.size, store.dim, store.spec) == (2500, 48, spec)
        assert np.array_equal(store.vectors(), vectors)  # every row, in row order, exact
        assert [store.search(q, 10) for q in vectors[:20]] == expected
        assert store.search(vectors[7], 1)[0][0] == 7
        assert store.search(vectors[7], 0) == []
        assert len(store.search(vectors[7], 10_000)) == 2500  # k is capped at the size
    finally:
        store.close()


def test_open_without_a_spec_takes_the_collections_own(lite: str) -> None:
    MilvusStore.build(unit_rows(200, 8, seed=7), uri=lite, collection="d", kind="hnsw").close()
    store = MilvusStore.open(uri=lite, collection="d")
    try:
        assert store.spec == DenseParams.defaults().spec_for(200, 8, "hnsw")
    finally:
        store.close()


def test_open_refuses_a_spec_the_collection_was_not_built_with(lite: str) -> None:
    MilvusStore.build(unit_rows(200, 8, seed=8), uri=lite, collection="d", kind="flat").close()
    hnsw = DenseParams.defaults().spec_for(200, 8, "hnsw")
    with pytest.raises(IndexMismatchError, match="citeqa build --force"):
        MilvusStore.open(uri=lite, collection="d", spec=hnsw)


def test_an_empty_store_answers_nothing(lite: str) -> None:
    store = MilvusStore.build(np.zeros((0, 32), np.float32), uri=lite, collection="d")
    try:
        assert (store.size, store.dim) == (0, 32)
        assert store.search(unit_rows(1, 32, seed=9)[0], 5) == []
        assert store.vectors().shape == (0, 32)
    finally:
        store.close()


def test_bad_input_is_refused(lite: str) -> None:
    with pytest.raises(ValueError, match="d >= 2"):
        MilvusStore.build(np.ones(8, np.float32), uri=lite, collection="d")
    store = MilvusStore.build(unit_rows(20, 8, seed=10), uri=lite, collection="d")
    try:
        with pytest.raises(ValueError, match="9 dimensions"):
            store.search(np.ones(9, np.float32), 3)
        with pytest.raises(VectorStoreError, match="already has a collection 'd'"):
            MilvusStore.build(unit_rows(20, 8, seed=11), uri=lite, collection="d")
    finally:
        store.close()


def test_stores_on_one_file_share_its_server(lite: str) -> None:
    """The dense and multilingual collections live in one milvus.db: closing one store
    leaves the other working; once both are closed the data can be opened again."""
    dense = MilvusStore.build(unit_rows(50, 8, seed=12), uri=lite, collection="dense")
    multilingual = MilvusStore.build(unit_rows(60, 16, seed=13), uri=lite, collection="ml")
    dense.close()
    dense.close()  # idempotent
    assert multilingual.search(unit_rows(1, 16, seed=14)[0], 3)
    multilingual.close()
    reopened = MilvusStore.open(uri=lite, collection="ml")
    assert reopened.size == 60
    reopened.close()


# --------------------------------------------------------------- the generation's files


@pytest.mark.parametrize(
    ("rows", "segments"), [(3000, 3), (4000, None)], ids=["three-segments", "compacted"]
)
def test_opening_searching_and_closing_change_no_file(
    rows: int, segments: int | None, lite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest checksums every file of milvus.db: using it must not touch them. A
    small MemTable makes Milvus Lite flush a segment per insert batch of 1,000 vectors:
    three stay three, four are merged by its background compaction during the build
    (which ``close`` waits for)."""
    import milvus_lite.engine.collection as lite_collection

    monkeypatch.setattr(lite_collection, "MEMTABLE_MEMORY_LIMIT", 64 * 1024)
    vectors = unit_rows(rows, 64, seed=15)
    MilvusStore.build(vectors, uri=lite, collection="dense", kind="flat", batch_rows=1000).close()
    MilvusStore.build(vectors[:2000], uri=lite, collection="ml", kind="hnsw").close()
    files = tree(Path(lite))
    if segments is not None:
        data = [name for name in files if "/dense/" in name and name.endswith(".parquet")]
        assert len(data) == segments
    assert any(name.endswith(".hnsw.idx") for name in files)

    for _ in range(2):
        dense = MilvusStore.open(uri=lite, collection="dense")
        multilingual = MilvusStore.open(uri=lite, collection="ml")
        for query in vectors[:30]:
            dense.search(query, 10)
            multilingual.search(query, 10)
        assert np.array_equal(dense.vectors(), vectors)
        dense.close()
        multilingual.close()
        assert tree(Path(lite)) == files


def test_a_killed_reader_leaves_the_files_as_they_were(lite: str) -> None:
    vectors = unit_rows(500, 16, seed=16)
    MilvusStore.build(vectors, uri=lite, collection="dense").close()
    files = tree(Path(lite))
    reader = _hold_open(lite)
    reader.kill()
    reader.wait(timeout=30)
    store = MilvusStore.open(uri=lite, collection="dense")
    assert store.search(vectors[3], 1)[0][0] == 3
    store.close()
    assert tree(Path(lite)) == files


def _hold_open(lite: str) -> subprocess.Popen[str]:
    """Another process that opens the store and keeps it open until killed."""
    code = (
        "import sys\n"
        "from service.milvus import MilvusStore\n"
        f"store = MilvusStore.open(uri={lite!r}, collection='dense')\n"
        "print('open', flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "open"
    return process


# ------------------------------------------------------------------------------ errors


def test_a_second_process_gets_an_error_that_says_what_to_do(lite: str) -> None:
    MilvusStore.build(unit_rows(100, 16, seed=17), uri=lite, collection="dense").close()
    holder = _hold_open(lite)
    try:
        with pytest.raises(VectorStoreError, match="open in another process") as caught:
            MilvusStore.open(uri=lite, collection="dense")
        assert "CITEQA_WORKERS=1" in str(caught.value)
        assert "CITEQA_MILVUS_URI" in str(caught.value)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    MilvusStore.open(uri=lite, collection="dense").close()  # free again


def test_a_store_dropped_without_close_lets_go_of_milvus_lite(lite: str) -> None:
    """An engine replaced by a reload just drops its stores: the lock must go with them."""
    MilvusStore.build(unit_rows(100, 16, seed=21), uri=lite, collection="dense").close()
    store = MilvusStore.open(uri=lite, collection="dense")
    assert store.size == 100
    del store
    gc.collect()
    other = _hold_open(lite)  # another process can open it now
    other.kill()
    other.wait(timeout=30)


def test_an_unreachable_server_is_a_clear_error() -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(VectorStoreError) as caught:
        MilvusStore.open(uri=uri, collection="citeqa_gen_dense", timeout=5)
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert f"cannot reach the Milvus server at {uri}" in message
    assert "CITEQA_MILVUS_URI" in message and "CITEQA_MILVUS_TOKEN" in message


def test_a_call_that_outlasts_its_timeout_is_a_store_error(lite: str) -> None:
    """pymilvus lets gRPC's DEADLINE_EXCEEDED through as it is; it must not escape raw."""
    MilvusStore.build(unit_rows(3000, 256, seed=22), uri=lite, collection="dense").close()
    with pytest.raises(VectorStoreError, match="CITEQA_MILVUS"):
        store = MilvusStore.open(uri=lite, collection="dense", timeout=0.002)
        try:
            store.vectors()  # if opening made it: 3 MB of floats cannot come back in 2 ms
        finally:
            store.close()


def test_a_missing_collection_is_a_clear_error(lite: str) -> None:
    MilvusStore.build(unit_rows(10, 8, seed=18), uri=lite, collection="dense").close()
    with pytest.raises(VectorStoreError, match="has no collection 'multilingual'") as caught:
        MilvusStore.open(uri=lite, collection="multilingual")
    assert "citeqa build --force" in str(caught.value)


def test_missing_lite_data_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "gen-x" / LITE_FILE
    path.parent.mkdir()
    with pytest.raises(VectorStoreError, match="no Milvus Lite data at"):
        MilvusStore.open(uri=str(path), collection="dense")
    assert not path.exists()


def test_a_uri_that_is_neither_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VectorStoreError, match="neither a Milvus URI"):
        MilvusStore.open(uri=str(tmp_path / "vectors.sqlite"), collection="dense")


def test_a_collection_citeqa_did_not_make_is_refused(lite: str) -> None:
    from milvus_lite import server_manager_instance
    from pymilvus import MilvusClient

    client = MilvusClient(lite)
    client.create_collection("other", dimension=8)  # pymilvus's quick schema: id + vector
    client.close()
    server_manager_instance.release_server(lite)
    with pytest.raises(IndexMismatchError, match="was not made by citeqa"):
        MilvusStore.open(uri=lite, collection="other")


# ------------------------------------------------------------------ names and clean-up


def test_collection_names_carry_the_generation() -> None:
    assert (
        collection_name("gen-20250301T120000123456Z-0a1b2c3d", "multilingual")
        == "citeqa_gen_20250301T120000123456Z_0a1b2c3d_multilingual"
    )
    assert is_local("index/gen-1/milvus.db")
    assert not is_local("http://milvus:19530") and not is_local("https://x.example.org")


def test_stale_collections_are_dropped_and_kept_ones_stay(lite: str) -> None:
    """Only this deployment's generations (``<prefix>_gen_*``) are candidates."""
    names = [
        collection_name("gen-1", "dense"),
        collection_name("gen-2", "dense"),
        collection_name("gen-1", "dense", prefix="citeqa_prod"),  # another deployment
        "someone_elses",
    ]
    for name in names:
        MilvusStore.build(unit_rows(10, 8, seed=19), uri=lite, collection=name).close()
    dropped = drop_stale_collections(uri=lite, keep={collection_name("gen-2", "dense")})
    assert dropped == ["citeqa_gen_1_dense"]
    for name, exists in zip(names, (False, True, True, True), strict=True):
        if exists:
            MilvusStore.open(uri=lite, collection=name).close()
        else:
            with pytest.raises(VectorStoreError, match="has no collection"):
                MilvusStore.open(uri=lite, collection=name)


# ------------------------------------------------------------------------- measuring


def test_compare_stores_measures_each_store(tmp_path: Path) -> None:
    vectors, queries = synthetic_vectors(1500, 40, 32, clustered=True, seed=20)
    results = compare_stores(
        vectors,
        queries,
        10,
        workdir=tmp_path,
        stores=("faiss-flat", "milvus-lite-flat", "milvus-lite-hnsw"),
        build_threads=1,
    )
    assert list(results) == ["faiss-flat", "milvus-lite-flat", "milvus-lite-hnsw"]
    assert results["faiss-flat"].recall_at_k == 1.0
    assert results["milvus-lite-flat"].recall_at_k == 1.0
    assert results["milvus-lite-flat"].max_score_error < 1e-4
    assert results["faiss-flat"].bytes_on_disk == (tmp_path / "faiss-flat.faiss").stat().st_size
    for m in results.values():
        assert m.unchanged_by_open
        assert 0 < m.query_p50_ms <= m.query_p99_ms
        assert m.bytes_on_disk >= 4 * vectors.size  # the floats are all kept
