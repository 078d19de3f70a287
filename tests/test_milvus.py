"""MilvusStore against Milvus Lite (embedded, in a temporary directory) and FAISS."""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install 'citeqa[milvus]')")
pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (citeqa[milvus])")

from service.cli import check_workers, main
from service.config import Settings
from service.encode.encoders import Encoder
from service.engine import Engine
from service.errors import IndexCorruptError, IndexMismatchError, VectorStoreError
from service.index import (
    CURRENT,
    KEEP_GENERATIONS,
    CorpusIndex,
    build_index,
    check_index,
    current_generation,
    load_index,
)
from service.lab.evaluate import load_questions
from service.store.base import DenseParams, VectorStore
from service.store.faiss_store import DenseIndex
from service.store.milvus import (
    LITE_FILE,
    MilvusStore,
    collection_name,
    drop_stale_collections,
    is_local,
)

REPO = Path(__file__).resolve().parent.parent


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def clustered_rows(n: int, queries: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors and queries around ``n // 50`` random centres, each at cosine about 0.7
    from its centre: closer to real embeddings than ``unit_rows``, whose rows are all nearly
    orthogonal, so nearest neighbours stand out."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 50), dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(m: int) -> np.ndarray:
        noise = rng.standard_normal((m, dim), dtype=np.float32) / np.sqrt(dim)
        rows = centres[rng.integers(0, len(centres), m)] + noise
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(queries)


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
    store = corpus_index.stores[name]
    queries = np.asarray(corpus_index.sentence_vectors[name].span(0, 200), dtype=np.float32)
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
        vectors, queries = clustered_rows(10_000, 100, 128, seed=3)
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
        vectors,
        uri=lite,
        collection="large",
        params=replace(params, ann_threshold=300, ann_kind="hnsw"),  # Lite has no IVF-PQ
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


def test_milvus_lite_builds_the_index_with_the_parameters_given(lite: str) -> None:
    """pymilvus sends each build parameter as its own key, which Milvus Lite ignores (it
    builds HNSW with M 16, efConstruction 200 then): the files must show ours."""
    import faiss

    vectors = unit_rows(1000, 16, seed=23)
    hnsw = {"kind": "hnsw", "M": 8, "efConstruction": 40, "efSearch": 64}
    MilvusStore.build(vectors, uri=lite, collection="hnsw", spec=hnsw).close()
    ivf = {"kind": "ivfflat", "nlist": 8, "nprobe": 8}
    store = MilvusStore.build(vectors, uri=lite, collection="ivf", spec=ivf)
    exact = DenseIndex.build(vectors, kind="flat")
    try:  # every cell probed: exact
        for query in unit_rows(10, 16, seed=24):
            assert [r for r, _ in store.search(query, 5)] == [r for r, _ in exact.search(query, 5)]
    finally:
        store.close()
    files = {p.name: p for p in Path(lite).rglob("*.idx")}
    (graph,) = [faiss.read_index(str(p)) for n, p in files.items() if n.endswith(".hnsw.idx")]
    assert graph.hnsw.nb_neighbors(0) == 2 * 8 and graph.hnsw.efConstruction == 40
    (cells,) = [faiss.read_index(str(p)) for n, p in files.items() if "ivf" in n]
    assert faiss.extract_index_ivf(cells).nlist == 8


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
        "from service.store.milvus import MilvusStore\n"
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


# ------------------------------------------------------------ the service on Milvus Lite

QUESTIONS = REPO / "eval" / "questions.jsonl"
SAME_QUESTIONS = 24  # eval questions asked of both stores (every category comes early)


def _copy_index(source: Settings, target: Path) -> Settings:
    """The session's FAISS generation copied into ``target`` (the ONNX exports linked), so
    a build there reuses its vectors and encodes nothing."""
    generation = current_generation(source.index_dir)
    assert generation is not None
    target.mkdir(parents=True)
    shutil.copytree(generation, target / generation.name)
    shutil.copy(source.index_dir / CURRENT, target / CURRENT)
    (target / "onnx").symlink_to((source.index_dir / "onnx").resolve())
    return source.model_copy(update={"index_dir": target})


@pytest.fixture(scope="module")
def lite_settings(
    settings: Settings, corpus_index: CorpusIndex, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """An index built by `citeqa build` with CITEQA_DENSE_STORE=milvus (Milvus Lite inside
    the generation), from a copy of the session's FAISS index."""
    faiss = _copy_index(settings, tmp_path_factory.mktemp("milvus") / "index")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITEQA_DENSE_STORE", "milvus")
        patch.delenv("CITEQA_MILVUS_URI", raising=False)
        args = ["--corpus", str(settings.corpus_dir), "--index", str(faiss.index_dir)]
        assert main(["build", *args, "--quiet"]) == 0
    return faiss.model_copy(update={"dense_store": "milvus"})


def _encoders(corpus_index: CorpusIndex) -> Mapping[str, Encoder]:
    return corpus_index.encoders


def test_citeqa_build_puts_the_vectors_in_milvus_lite_inside_the_generation(
    lite_settings: Settings, corpus_index: CorpusIndex
) -> None:
    generation, manifest = check_index(lite_settings)  # every checksum passes
    assert generation != corpus_index.path
    assert manifest["config"]["dense_store"] == "milvus-lite"
    assert manifest["dense_index"] == corpus_index.manifest["dense_index"]  # flat, as FAISS
    files = manifest["files"]
    assert not {"dense.faiss", "multilingual.faiss"} & set(files)
    lite_files = [name for name in files if name.startswith(f"{LITE_FILE}/")]
    # Milvus Lite's own manifest.json files are checksummed; only the top one is not
    assert any(name.endswith("/manifest.json") for name in lite_files)
    assert "manifest.json" not in files
    on_disk = {p.relative_to(generation).as_posix() for p in generation.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(files)
    # the vectors came from the FAISS generation, not from encoding again
    for name in ("dense", "multilingual"):
        store = MilvusStore.open(uri=str(generation / LITE_FILE), collection=name)
        try:
            faiss_store = corpus_index.stores[name]
            assert np.array_equal(store.vectors(), faiss_store.vectors())
        finally:
            store.close()
    assert tree(generation / LITE_FILE) == {  # reading changed nothing
        name.removeprefix(f"{LITE_FILE}/"): value
        for name, value in tree(generation).items()
        if name.startswith(f"{LITE_FILE}/")
    }


def test_answers_on_milvus_lite_equal_the_faiss_ones(
    lite_settings: Settings, settings: Settings, corpus_index: CorpusIndex
) -> None:
    """Both stores are exact at this size: the same passages, scores and answers."""
    index = load_index(lite_settings, encoders=_encoders(corpus_index))
    assert isinstance(index.stores["dense"], MilvusStore) and isinstance(
        index.stores["multilingual"], MilvusStore
    )
    on_milvus, on_faiss = (
        Engine.from_settings(lite_settings, index=index),
        Engine.from_settings(settings, index=corpus_index),
    )
    questions = [q.question for q in load_questions(QUESTIONS)[:SAME_QUESTIONS]]
    questions += ["中日韩地震减灾三边会议由哪些机构举行？", "Who organized the NEAR forum 2023?"]
    answered = 0
    for question in questions:
        got, want = on_milvus.ask(question, top_k=10), on_faiss.ask(question, top_k=10)
        assert [p.hit.chunk.chunk_id for p in got.passages] == [
            p.hit.chunk.chunk_id for p in want.passages
        ], question
        assert [p.hit.ranks for p in got.passages] == [p.hit.ranks for p in want.passages]
        assert np.allclose(
            [p.hit.score for p in got.passages], [p.hit.score for p in want.passages], atol=1e-4
        )
        assert got.answer == want.answer, question
        assert got.abstain_reason == want.abstain_reason
        answered += got.answer is not None
    assert answered >= len(questions) // 2


def test_a_faiss_index_and_a_milvus_one_refuse_the_other_store(
    lite_settings: Settings, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    milvus_on_faiss = settings.model_copy(update={"dense_store": "milvus"})
    with pytest.raises(IndexMismatchError) as caught:
        check_index(milvus_on_faiss)
    message = str(caught.value)
    assert "dense_store: built with 'faiss', settings ask for 'milvus-lite'" in message
    assert "citeqa build" in message and "set CITEQA_DENSE_STORE=faiss" in message

    faiss_on_milvus = lite_settings.model_copy(update={"dense_store": "faiss"})
    with pytest.raises(IndexMismatchError, match="built with 'milvus-lite'") as caught:
        load_index(faiss_on_milvus)
    assert "CITEQA_DENSE_STORE=milvus without CITEQA_MILVUS_URI" in str(caught.value)

    uri_on_lite = lite_settings.model_copy(update={"milvus_uri": "http://milvus:19530"})
    with pytest.raises(IndexMismatchError, match="settings ask for 'milvus-uri'"):
        check_index(uri_on_lite)

    args = ["--corpus", str(settings.corpus_dir), "--index", str(lite_settings.index_dir)]
    assert main(["search", "NEAR forum", *args]) == 2  # CITEQA_DENSE_STORE is unset: faiss
    assert "CITEQA_DENSE_STORE=milvus" in capsys.readouterr().err


def test_serve_refuses_several_workers_on_milvus_lite(
    lite_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--corpus", str(lite_settings.corpus_dir), "--index", str(lite_settings.index_dir)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITEQA_DENSE_STORE", "milvus")
        for uri in ("", str(tmp_path / "vectors.db")):
            patch.setenv("CITEQA_MILVUS_URI", uri)
            assert main(["serve", *args, "--workers", "2"]) == 2
            error = capsys.readouterr().err
            assert "Milvus Lite" in error and "one process at a time" in error
            assert "--workers 1" in error and "CITEQA_MILVUS_URI" in error
    check_workers(lite_settings, 1)  # one worker may
    server = lite_settings.model_copy(update={"milvus_uri": "http://milvus:19530"})
    check_workers(server, 4)  # a Milvus server takes any number
    check_workers(lite_settings.model_copy(update={"dense_store": "faiss"}), 4)


def test_an_unreachable_milvus_uri_is_a_clear_error(
    settings: Settings, corpus_index: CorpusIndex, tmp_path: Path
) -> None:
    """Building publishes nothing; loading is refused (not served from an older
    generation) with a message that says what to fix."""
    faiss = _copy_index(settings, tmp_path / "index")
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    unreachable = faiss.model_copy(
        update={"dense_store": "milvus", "milvus_uri": uri, "milvus_timeout_seconds": 2.0}
    )
    before = current_generation(faiss.index_dir)
    started = time.monotonic()
    with pytest.raises(VectorStoreError) as caught:
        build_index(unreachable, progress=False, encoders=_encoders(corpus_index))
    assert time.monotonic() - started < 30
    assert f"cannot reach the Milvus server at {uri}" in str(caught.value)
    assert "CITEQA_MILVUS_URI" in str(caught.value)
    assert current_generation(faiss.index_dir) == before
    assert not list(faiss.index_dir.glob(".building-*"))  # nothing left behind

    # an index whose collections are at a URI (here a Milvus Lite file), then unreachable
    at_file = unreachable.model_copy(  # starting Milvus Lite may take more than 2 s
        update={"milvus_uri": str(tmp_path / "vectors.db"), "milvus_timeout_seconds": 10.0}
    )
    build_index(at_file, progress=False, encoders=_encoders(corpus_index))
    with pytest.raises(VectorStoreError, match=f"cannot reach the Milvus server at {uri}"):
        load_index(unreachable, encoders=_encoders(corpus_index))


def test_collections_at_a_uri_are_per_generation_and_dropped_with_it(
    settings: Settings, corpus_index: CorpusIndex, tmp_path: Path
) -> None:
    """With CITEQA_MILVUS_URI (a Milvus Lite file stands in for a server) every generation
    has its own collections; a build drops those of generations no longer kept. Each
    build adds a short document (only its text is encoded)."""
    corpus = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, corpus)
    faiss = _copy_index(settings, tmp_path / "index")
    uri = str(tmp_path / "vectors.db")
    at_uri = faiss.model_copy(
        update={"dense_store": "milvus", "milvus_uri": uri, "corpus_dir": corpus}
    )
    encoders = _encoders(corpus_index)
    seed_rows = corpus_index.stores["multilingual"].size
    generations = []
    for i in range(KEEP_GENERATIONS + 1):
        if generations:
            (corpus / f"zz_extra_{i}.md").write_text(
                f"# Extra {i}\n\nThe trilateral summit number {i} met in Seoul.\n"
            )
        result = build_index(at_uri, progress=False, encoders=encoders)
        assert result.built
        generations.append(result.path.name)
        index = load_index(at_uri, encoders=encoders)
        assert isinstance(index.stores["multilingual"], MilvusStore)
        assert index.stores["multilingual"].collection == collection_name(
            result.path.name, "multilingual"
        )
        assert index.stores["multilingual"].size == len(index.chunks) == seed_rows + i
        assert np.array_equal(
            index.stores["multilingual"].vectors()[:seed_rows],
            corpus_index.stores["multilingual"].vectors(),
        )
        assert not (result.path / LITE_FILE).exists()  # nothing of Milvus in the generation
        del index
        gc.collect()
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    try:
        names = set(client.list_collections())
    finally:
        client.close()
        from milvus_lite import server_manager_instance

        server_manager_instance.release_server(str(Path(uri).resolve()))
    kept = {collection_name(g, n) for g in generations[1:] for n in ("dense", "multilingual", "e5")}
    assert names == kept  # the first generation's went with it


def test_a_damaged_milvus_lite_file_is_refused(
    lite_settings: Settings, corpus_index: CorpusIndex, tmp_path: Path
) -> None:
    damaged = _copy_index(lite_settings, tmp_path / "index").model_copy(
        update={"dense_store": "milvus"}
    )
    generation = current_generation(damaged.index_dir)
    assert generation is not None
    segment = next(p for p in sorted((generation / LITE_FILE).rglob("*.parquet")))
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=f"{segment.name} does not match its checksum"):
        load_index(damaged, encoders=_encoders(corpus_index))


def test_milvus_lite_refuses_ivfpq_before_encoding(settings: Settings, tmp_path: Path) -> None:
    """At a size where the settings choose IVF-PQ, which Milvus Lite lacks, the build stops
    before loading a model or encoding a chunk."""
    lite = settings.model_copy(
        update={"index_dir": tmp_path / "index", "dense_store": "milvus", "dense_ann_threshold": 10}
    )
    started = time.monotonic()
    with pytest.raises(VectorStoreError, match="CITEQA_DENSE_ANN_KIND=hnsw"):
        build_index(lite, progress=False)
    assert time.monotonic() - started < 5
    assert not (tmp_path / "index").exists()
