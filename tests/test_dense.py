"""The dense index: its kind by size, its spec in the manifest, save and load (mapped), and
the recall of the approximate kinds against exact search."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from service.config import Settings
from service.errors import IndexCorruptError
from service.index import MANIFEST, CorpusIndex, build_index, load_index
from service.store.base import DenseParams
from service.store.faiss_store import DenseIndex, theoretical_bytes

DEFAULTS = DenseParams.defaults()
SMALL_IVFPQ = replace(DEFAULTS, ann_kind="ivfpq", ivf_nlist=16, pq_m=8)


def _low_rank(n: int, dim: int, *, seed: int = 0, rank: int = 48) -> np.ndarray:
    """Random L2-normalized vectors near a ``rank``-dimensional subspace, plus noise.

    Isotropic Gaussian vectors are not used: in 384 or 512 dimensions they have no
    neighbourhood structure (the 10th and 11th neighbours differ by a hair), and no
    approximate index reaches 0.95 recall on them without scanning most of the set
    (HNSW at the defaults: 0.75 on 5,000). Sentence embeddings have low intrinsic dimension.
    """
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, rank)).astype(np.float32)
    basis = rng.standard_normal((rank, dim)).astype(np.float32)
    noise = 0.2 * np.sqrt(rank) * rng.standard_normal((n, dim)).astype(np.float32)
    vectors = (latent @ basis + noise).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _recall(index: DenseIndex, exact: DenseIndex, queries: np.ndarray, k: int = 10) -> float:
    return float(
        np.mean(
            [
                len({r for r, _ in index.search(q, k)} & {r for r, _ in exact.search(q, k)}) / k
                for q in queries
            ]
        )
    )


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return _low_rank(4200, 384)


def test_the_stores_defaults_are_the_settings_defaults() -> None:
    """The store cannot import the settings (an import cycle), so it writes their defaults
    again: they must stay the same, and the settings must choose exact search under 20k
    chunks and IVF-PQ from there."""
    from_settings = DenseParams.from_settings(Settings.model_construct())
    assert from_settings == DEFAULTS
    assert from_settings.spec_for(19_999, 384) == {"kind": "flat"}
    assert from_settings.spec_for(20_000, 384)["kind"] == "ivfpq"


def test_exact_below_the_threshold_approximate_from_it(vectors: np.ndarray) -> None:
    params = replace(DEFAULTS, ann_threshold=1000, ann_kind="hnsw")
    assert DenseIndex.build(vectors[:999], params=params).kind == "flat"
    assert DenseIndex.build(vectors[:1000], params=params).kind == "hnsw"
    ivfpq = DenseIndex.build(vectors[:3000], params=replace(SMALL_IVFPQ, ann_threshold=1000))
    assert ivfpq.kind == "ivfpq"
    assert ivfpq.spec == {
        "kind": "ivfpq",
        "nlist": 16,
        "nprobe": min(DEFAULTS.ivf_nprobe, 16),
        "pq_m": 8,
        "pq_nbits": 8,
        "refine": DEFAULTS.ivfpq_refine,
    }


def test_the_default_approximate_kind_is_ivfpq_from_the_threshold() -> None:
    """The measured choice (service.config): IVF-PQ re-scored with the exact vectors from
    the threshold on, exact below it."""
    spec = DEFAULTS.spec_for(DEFAULTS.ann_threshold, 512)
    assert spec["kind"] == DEFAULTS.ann_kind == "ivfpq"
    assert spec["refine"] > 1
    assert DEFAULTS.spec_for(DEFAULTS.ann_threshold - 1, 512) == {"kind": "flat"}
    assert DEFAULTS.spec_for(1_000_000, 512)["nlist"] == 4096  # about 4 sqrt(n)


def test_spec_records_the_parameters() -> None:
    params = replace(
        DEFAULTS, ann_kind="hnsw", hnsw_m=12, hnsw_ef_construction=50, hnsw_ef_search=33
    )
    assert params.spec_for(params.ann_threshold, 512) == {
        "kind": "hnsw",
        "M": 12,
        "efConstruction": 50,
        "efSearch": 33,
    }
    assert params.spec_for(params.ann_threshold - 1, 512) == {"kind": "flat"}
    with pytest.raises(ValueError, match="CITEQA_DENSE_PQ_M"):
        replace(params, ann_kind="ivfpq", pq_m=100).spec_for(10**6, 384)
    with pytest.raises(ValueError, match="unknown dense index kind"):
        params.spec_for(10, 384, "annoy")


def test_ivfpq_refuses_too_few_vectors_to_train(vectors: np.ndarray) -> None:
    with pytest.raises(ValueError, match="CITEQA_DENSE_ANN_THRESHOLD"):
        DenseIndex.build(vectors[:300], kind="ivfpq", params=SMALL_IVFPQ)


def test_the_default_hnsw_finds_95_percent_of_the_exact_top_10(vectors: np.ndarray) -> None:
    base, queries = vectors[:4000], vectors[4000:]
    exact = DenseIndex.build(base, kind="flat")
    hnsw = DenseIndex.build(base, kind="hnsw", params=DEFAULTS)
    assert hnsw.spec["efSearch"] == DEFAULTS.hnsw_ef_search
    assert _recall(hnsw, exact, queries) >= 0.95


def test_weak_hnsw_parameters_lose_recall(vectors: np.ndarray) -> None:
    """The recall test above can fail: a sparse graph with a short candidate list does."""
    base, queries = vectors[:4000], vectors[4000:]
    exact = DenseIndex.build(base, kind="flat")
    weak = DenseIndex.build(
        base, kind="hnsw", params=replace(DEFAULTS, hnsw_m=4, hnsw_ef_search=10)
    )
    assert _recall(weak, exact, queries) < 0.9


def test_ivfpq_refines_with_exact_scores(vectors: np.ndarray) -> None:
    base, queries = vectors[:4000], vectors[4000:]
    exact = DenseIndex.build(base, kind="flat")
    ivfpq = DenseIndex.build(base, kind="ivfpq", params=SMALL_IVFPQ)
    hits = ivfpq.search(queries[0], 10)
    # the scores are the exact inner products, best first
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    for row, score in hits:
        assert score == pytest.approx(float(base[row] @ queries[0]), abs=1e-5)
    unrefined = DenseIndex.build(base, kind="ivfpq", params=replace(SMALL_IVFPQ, ivfpq_refine=1))
    assert _recall(ivfpq, exact, queries) > _recall(unrefined, exact, queries)


def _mapped(path: Path) -> bool:
    return str(path.resolve()) in Path("/proc/self/maps").read_text()


@pytest.mark.parametrize(
    ("kind", "params"),
    [("flat", DEFAULTS), ("hnsw", DEFAULTS), ("ivfpq", SMALL_IVFPQ)],
    ids=["flat", "hnsw", "ivfpq"],
)
def test_save_and_load_round_trip(
    tmp_path: Path, vectors: np.ndarray, kind: str, params: DenseParams
) -> None:
    base, query = vectors[:3000], vectors[4100]
    built = DenseIndex.build(base, kind=kind, params=params)
    path = tmp_path / "dense.faiss"
    built.save(path)
    for mmap in (True, False):
        loaded = DenseIndex.load(path, built.spec, mmap=mmap)
        assert (loaded.kind, loaded.spec, loaded.size, loaded.dim) == (
            kind,
            built.spec,
            3000,
            384,
        )
        assert loaded.search(query, 20) == built.search(query, 20)
        assert np.array_equal(loaded.vectors(), base)  # exact for every kind
        assert _mapped(path) == mmap, f"mmap={mmap}"
        del loaded


def test_loading_applies_the_recorded_search_parameters(
    tmp_path: Path, vectors: np.ndarray
) -> None:
    built = DenseIndex.build(vectors[:2000], kind="hnsw", params=DEFAULTS)
    built.save(tmp_path / "x.faiss")
    spec = built.spec | {"efSearch": 7}
    loaded = DenseIndex.load(tmp_path / "x.faiss", spec)
    assert loaded.spec["efSearch"] == 7
    assert loaded._index.hnsw.efSearch == 7


def test_a_file_of_another_kind_is_refused(tmp_path: Path, vectors: np.ndarray) -> None:
    DenseIndex.build(vectors[:2000], kind="hnsw", params=DEFAULTS).save(tmp_path / "x.faiss")
    with pytest.raises(IndexCorruptError, match=r"IndexHNSWFlat but the manifest says 'flat'"):
        DenseIndex.load(tmp_path / "x.faiss", {"kind": "flat"})
    with pytest.raises(IndexCorruptError, match="unknown dense index kind 'annoy'"):
        DenseIndex.load(tmp_path / "x.faiss", {"kind": "annoy"})


def test_theoretical_bytes() -> None:
    assert theoretical_bytes({"kind": "flat"}, 1000, 512) == 1000 * 512 * 4
    hnsw = {"kind": "hnsw", "M": 32, "efConstruction": 80, "efSearch": 64}
    # 2048 bytes of vector, 4 * (64 + 32/31) of links, 12 of level and offset
    assert theoretical_bytes(hnsw, 1000, 512) == round(1000 * (2048 + 4 * (64 + 32 / 31) + 12))
    ivfpq = {"kind": "ivfpq", "nlist": 4096, "nprobe": 32, "pq_m": 64, "pq_nbits": 8}
    expected = 1000 * (64 + 8) + 4 * 4096 * 512 + 4 * 256 * 512
    assert theoretical_bytes(ivfpq, 1000, 512) == expected


# ---------------------------------------------------------------- inside the index build


def test_the_seed_corpus_stays_exact(corpus_index: CorpusIndex) -> None:
    """About 100 chunks: exact search, so nothing in the evaluation changes."""
    assert corpus_index.stores["dense"].kind == corpus_index.stores["multilingual"].kind == "flat"
    assert corpus_index.manifest["dense_index"] == {
        "dense": {"kind": "flat"},
        "multilingual": {"kind": "flat"},
        "e5": {"kind": "flat"},
    }


def test_the_manifest_records_the_kind_and_loading_uses_it(
    tmp_path: Path, settings: Settings, corpus_index: CorpusIndex
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(settings.index_dir, index_dir)
    approximate = settings.model_copy(
        update={
            "index_dir": index_dir,
            "dense_ann_threshold": 10,
            "dense_ann_kind": "hnsw",  # IVF-PQ cannot train on 100 vectors
            "dense_hnsw_ef_search": 40,
        }
    )
    result = build_index(approximate, progress=False)
    assert result.built  # another kind for the same corpus: the indexes are rebuilt
    manifest = json.loads((result.path / MANIFEST).read_text())
    expected = {
        "kind": "hnsw",
        "M": DEFAULTS.hnsw_m,
        "efConstruction": DEFAULTS.hnsw_ef_construction,
        "efSearch": 40,
    }
    assert manifest["dense_index"] == {"dense": expected, "multilingual": expected, "e5": expected}
    assert not build_index(approximate, progress=False).built  # now up to date

    # loading follows the manifest, whatever the settings say now
    loaded = load_index(approximate.model_copy(update={"dense_hnsw_ef_search": 500}))
    assert loaded.stores["dense"].kind == loaded.stores["multilingual"].kind == "hnsw"
    assert loaded.stores["multilingual"]._index.hnsw.efSearch == 40
    # the same vectors as the exact index, in the same rows
    assert np.array_equal(
        loaded.stores["multilingual"].vectors(), corpus_index.stores["multilingual"].vectors()
    )
    query = corpus_index.stores["multilingual"].vectors()[3]
    assert loaded.stores["multilingual"].search(query, 5)[0][0] == 3
