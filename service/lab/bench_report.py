"""The bench report: ``bench.json``, the markdown summary ``bench.md`` and the chart ``bench.png``.

``write`` saves a ``BenchReport`` as all three (``citeqa bench``); ``render`` rewrites the
markdown and the chart from a saved ``bench.json`` without measuring (``make reports``).
The markdown puts the targets first, then the query path per stage, the HTTP runs, ingest,
and the scale rows or the store comparison; the chart is latency and memory against corpus
size (the seed corpus as its own point) and throughput against clients. Charts need
matplotlib (the ``lab`` extra), imported only when one is drawn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from service.lab.bench import (
    AGGREGATE_STAGES,
    RAW_BATCH,
    BenchReport,
    IngestRate,
    LoadRun,
    Target,
)
from service.lab.stats import Latency
from service.lab.stores import StoreFigures

__all__ = ["chart", "markdown", "read", "render", "write"]

_Series = dict[str, list[tuple[int, float]]]  # a line to plot: name -> (chunks, value)


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value / 2**20:.0f}"


def _figure(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _errors(run: LoadRun) -> str:
    kinds = ", ".join(f"{kind} × {count}" for kind, count in sorted(run.error_kinds.items()))
    return f"{run.errors} ({kinds})" if kinds else str(run.errors)


def _target_line(target: Target) -> str:
    sign = "≤" if target.at_most else "≥"
    unit = f" {target.unit}" if target.unit else ""
    verdict = {True: "met", False: "**missed**", None: "not measured"}[target.met]
    return (
        f"| {target.name} | {_figure(target.value)}{unit if target.value is not None else ''} "
        f"| {sign} {target.limit:g}{unit} | {verdict} |"
    )


def _scale_points(rows: Sequence[Mapping[str, Any]]) -> _Series:
    """Series to plot from ``asdict(ScaleResult)`` rows: name -> (chunks, value)."""
    series: _Series = {}

    def add(name: str, n: Any, value: Any) -> None:
        if isinstance(n, int) and isinstance(value, int | float):
            series.setdefault(name, []).append((n, float(value)))

    for row in rows:
        n = row.get("chunks")
        for name, figures in (row.get("dense") or {}).items():
            add(f"{name} search p50", n, figures.get("p50_ms"))
            add(f"{name} search p99", n, figures.get("p99_ms"))
        add("BM25 search p50", n, row.get("bm25_p50_ms"))
        add("BM25 search p99", n, row.get("bm25_p99_ms"))
        add("/cite BM25 stage p50", n, (row.get("cite") or {}).get("p50_ms"))
        for key in ("rss_service_bytes", "rss_build_peak_bytes"):
            value = row.get(key)
            add(f"RSS {key.removeprefix('rss_').removesuffix('_bytes')}", n, value)
    return series


def _scale_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names = sorted({name for row in rows for name in (row.get("dense") or {})})
    header = ["chunks", "build s", "disk MiB", "serving RSS MiB", "build peak RSS MiB"]
    for name in names:
        header += [f"{name} p50/p99 ms", f"{name} recall@10"]
    header += ["BM25 p50/p99 ms", "/cite BM25 stage p50/p99 ms", "/cite found (verbatim, changed)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        seconds = row.get("seconds") or {}
        disk = (row.get("bytes_on_disk") or {}).get("total")
        cells = [
            str(row.get("chunks")),
            _figure(sum(seconds.values()), 1) if seconds else "–",
            _mib(disk),
            _mib(row.get("rss_service_bytes")),
            _mib(row.get("rss_build_peak_bytes")),
        ]
        for name in names:
            figures = (row.get("dense") or {}).get(name) or {}
            cells.append(f"{_figure(figures.get('p50_ms'))} / {_figure(figures.get('p99_ms'))}")
            recall = figures.get("recall_at_10") or {}
            cells.append(", ".join(f"{k} {v:.3f}" for k, v in recall.items()) or "–")
        cells.append(f"{_figure(row.get('bm25_p50_ms'))} / {_figure(row.get('bm25_p99_ms'))}")
        cells += _cite_cells(row.get("cite") or {})
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        f"\nNot measured at {row['chunks']:,} chunks: {note}."
        for row in rows
        for note in row.get("skipped") or ()
    ]
    return lines


def _cite_cells(cite: Mapping[str, Any]) -> list[str]:
    """/cite's first stage at this size (``service.lab.scale.cite``), or dashes for a row
    measured before it was."""
    if not cite:
        return ["–", "–"]
    found = ", ".join(f"{cite[k]['found']:.2f}" for k in ("exact", "near") if k in cite)
    return [f"{_figure(cite.get('p50_ms'))} / {_figure(cite.get('p99_ms'))}", found or "–"]


def _spec_text(spec: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in spec.items() if key != "kind")


def _stores_table(rows: Sequence[StoreFigures]) -> list[str]:
    header = [
        "chunks", "store", "index", "build s", "MiB on disk", "open s", "query p50 / p99 ms",
        "recall@10", "max score error", "RSS MiB (growth from opening)",
        "of which anonymous MiB", "build peak RSS MiB", "files unchanged",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        parameters = _spec_text(row.spec)
        recall = ", ".join(f"{name} {value:.3f}" for name, value in row.recall_at_10.items())
        cells = [
            f"{row.chunks:,}",
            row.store,
            f"{row.index} ({parameters})" if parameters else row.index,
            f"{row.build_seconds:.1f}",
            _mib(row.bytes_on_disk),
            f"{row.open_seconds:.2f}",
            f"{row.p50_ms:.2f} / {row.p99_ms:.2f}",
            recall,
            f"{row.max_score_error:.1e}",
            f"{_mib(row.rss_bytes)} ({_mib(row.rss_growth_bytes)})",
            _mib(row.rss_anon_bytes),
            _mib(row.build_peak_rss_bytes),
            "yes" if row.unchanged_by_open else "**no**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for n in sorted({row.chunks for row in rows}):
        first = next(row for row in rows if row.chunks == n)
        asked = ", ".join(f"{count} {name}" for name, count in first.queries.items())
        lines.append(
            f"\n{n:,} chunks: {first.model} vectors ({first.dim} dims) of the synthetic corpus; "
            f"queries: {asked}, one at a time on one thread, k = {first.k}; exact search "
            f"(FAISS IndexFlatIP) over the same vectors: p50 {first.exact_p50_ms:.2f} ms, "
            f"p99 {first.exact_p99_ms:.2f} ms. Recall@10: the share of the exact top 10 found; "
            "max score error: the largest difference between a score returned and the exact "
            "inner product; files unchanged: every file of the store the same (size, sha256) "
            "after it was opened, searched and closed."
        )
    return lines


def _header(report: BenchReport) -> list[str]:
    start, end = report.load_average["start"], report.load_average["end"]
    corpus = report.corpus
    return [
        "# citeqa bench",
        "",
        f"`{report.command}` at {report.started_at}: {report.cores} cores, "
        f"{report.workers} server workers, load average (1 min) {start[0]} at the start and "
        f"{end[0]} at the end. Corpus: {corpus['documents']} documents, {corpus['chunks']} "
        f"chunks, {corpus['sentences']} sentences.",
        "",
        "## Targets",
        "",
        "| target | measured | limit | |",
        "| --- | --- | --- | --- |",
        *map(_target_line, report.targets),
    ]


def _query_path(report: BenchReport) -> list[str]:
    lines = [
        "",
        "## Query path",
        "",
        "In-process, `Engine.ask` on one thread; its own `timings_ms`. `retrieve` is the "
        "encoders and searches together; `total` includes the highlights and input checks.",
        "",
        "| stage | requests | p50 ms | p99 ms | mean ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows = [(f"`{s}`", f) for s, f in report.in_process.items() if s not in AGGREGATE_STAGES]
    rows.append(("**sum of stages**", report.in_process_stage_sum))
    rows += [(f"`{s}`", f) for s, f in report.in_process.items() if s in AGGREGATE_STAGES]
    for name, figures in rows:
        lines.append(
            f"| {name} | {figures.count} | {figures.p50_ms:.2f} | {figures.p99_ms:.2f} "
            f"| {figures.mean_ms:.2f} |"
        )
    return lines


def _load_line(run: LoadRun) -> str:
    e2e, total, sums = run.latency, run.server_total, run.server_stage_sum
    return (
        f"| {run.clients} | {run.requests} | {_errors(run)} | {run.requests_per_s:.1f} "
        f"| {_figure(e2e.p50_ms if e2e else None)} | {_figure(e2e.p99_ms if e2e else None)} "
        f"| {_figure(total.p50_ms if total else None)} "
        f"| {_figure(sums.p50_ms if sums else None)} "
        f"| {_figure(run.e2e_over_stages)} | {_figure(run.e2e_over_total)} "
        f"| {_figure(run.server_cpu_ms_per_request)} "
        f"| {_figure(run.client_cpu_ms_per_request)} |"
    )


def _http(report: BenchReport) -> list[str]:
    return [
        "",
        "## HTTP `POST /ask` over loopback",
        "",
        "| clients | requests | errors | requests/s | p50 ms | p99 ms | server `total` p50 ms "
        "| server sum of stages p50 ms | end-to-end / stages | end-to-end / `total` "
        "| server CPU ms/request | client CPU ms/request |",
        "|" + " --- |" * 12,
        *map(_load_line, report.load),
        "\nEnd-to-end / stages: the clients' p50 over the p50 of the stage sums the server "
        "reported for the same requests; end-to-end / `total`: the same over the server's "
        "whole `Engine.ask` (the rest is HTTP, the framework and the client). With more "
        "clients both include queueing. Largest server process after the runs: "
        f"{_mib(report.server_rss_bytes)} MiB resident.",
        *_one_client(
            report.verify,
            "/verify",
            "One client checking the claims of `eval/claims.jsonl` in turn (each claim is "
            "retrieved, tagged, and its slots aligned with the close sentences).",
        ),
        *_one_client(
            report.cite,
            "/cite",
            "One client tracing the quotes of `eval/quotes.jsonl` in turn, each once (BM25's "
            "passages first; the encoders only for a quote they do not hold: translated or "
            "found nowhere).",
        ),
    ]


def _one_client(run: LoadRun | None, endpoint: str, what: str) -> list[str]:
    if run is None:
        return []
    return [
        "",
        f"## HTTP `POST {endpoint}` over loopback",
        "",
        what,
        "",
        "| clients | requests | errors | requests/s | p50 ms | p99 ms | server `total` p50 ms "
        "| server sum of stages p50 ms | end-to-end / stages | end-to-end / `total` "
        "| server CPU ms/request | client CPU ms/request |",
        "|" + " --- |" * 12,
        _load_line(run),
    ]


def _ingest(report: BenchReport) -> list[str]:
    if not report.ingest:
        return []
    lines = [
        "",
        "## Ingest",
        "",
        f"`citeqa build` of the corpus into a scratch folder ({report.build_seconds:.1f} s "
        "with model loading). Each encoder's time is what the build spent encoding "
        "the chunk texts and then the sentence texts; raw is `encode()` on the same "
        f"texts, {RAW_BATCH} at a time, right after, with the same encoder.",
        "",
        "| part | chunks | texts | build s | chunks/s | texts/s | raw texts/s | build / raw |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rate in report.ingest:
        lines.append(
            f"| {rate.part} | {rate.chunks} | {rate.texts} | {rate.seconds:.2f} "
            f"| {rate.chunks_per_s:.1f} | {rate.texts_per_s:.1f} "
            f"| {_figure(rate.raw_texts_per_s, 1)} | {_figure(rate.ratio)} |"
        )
    return lines


def _stores(report: BenchReport) -> list[str]:
    if not report.stores:
        return []
    return [
        "",
        "## Vector stores",
        "",
        "The same vectors in each store: each built in a fresh process, then opened and "
        "searched in another, as a server would (RSS: that process, the query vectors "
        "included; Milvus Lite's embedded server runs inside it; anonymous: the part "
        "not backed by a file, which worker processes cannot share).",
        "",
        *_stores_table(report.stores),
    ]


def markdown(report: BenchReport, chart: str | None = "bench.png") -> str:
    """The report as a markdown summary (targets first), linking the chart file ``chart``
    when given."""
    lines = _header(report) + _query_path(report) + _http(report) + _ingest(report)
    if report.scale:
        lines += ["", "## Scale", ""]
        if report.scale_from:
            earlier = f"Measured earlier, by {report.scale_from}; the encoders are in each row."
            lines += [earlier, ""]
        lines += _scale_table(report.scale)
    lines += _stores(report)
    if chart:
        lines += ["", f"![latency and memory against corpus size; throughput]({chart})"]
    return "\n".join(lines)


_COLOURS = {"dense": "tab:blue", "multilingual": "tab:green", "BM25": "tab:orange"}
_SEED_STAGES = (
    ("search_dense", "dense"),
    ("search_multilingual", "multilingual"),
    ("search_bm25", "BM25"),
)


def _latency_axes(lat: Any, report: BenchReport, series: _Series) -> None:
    """Index search p50/p99 against corpus size; the seed corpus's stages as stars."""
    seed_n = report.corpus["chunks"]
    for name, points in series.items():
        if name.startswith("RSS"):
            continue
        xs, ys = zip(*sorted(points), strict=True)
        index = name.split(" ")[0]
        lat.plot(
            xs,
            ys,
            marker="o",
            color=_COLOURS.get(index),
            linestyle="--" if "p99" in name else "-",
            label=name,
        )
    for stage, index in _SEED_STAGES:
        if stage in report.in_process:
            figures = report.in_process[stage]
            colour = _COLOURS[index]
            lat.scatter([seed_n], [figures.p50_ms], marker="*", s=120, color=colour, zorder=3)
            lat.scatter([seed_n], [figures.p99_ms], marker="X", s=70, color=colour, zorder=3)
            lat.plot([], [], marker="*", linestyle="", color=colour, label=f"seed {index} p50/p99")
    lat.set(xscale="log", yscale="log", xlabel="chunks in the corpus", ylabel="ms")
    lat.set_title("index search latency (p50 solid / ★, p99 dashed / ✕)")


def _memory_axes(mem: Any, report: BenchReport, series: _Series) -> None:
    """Resident memory against corpus size; the seed corpus's largest server process."""
    for name, points in series.items():
        if name.startswith("RSS"):
            xs, ys = zip(*sorted(points), strict=True)
            mem.plot(xs, [y / 2**20 for y in ys], marker="o", label=name)
    if report.server_rss_bytes:
        mem.scatter(
            [report.corpus["chunks"]],
            [report.server_rss_bytes / 2**20],
            marker="*",
            s=120,
            color="black",
            zorder=3,
            label="seed: largest server process",
        )
    mem.set(xscale="log", xlabel="chunks in the corpus", ylabel="MiB resident")
    mem.set_title("memory")


def _load_axes(load: Any, report: BenchReport) -> None:
    """Requests/s and p99 against concurrent clients."""
    from matplotlib.ticker import NullFormatter

    runs = [run for run in report.load if run.latency]
    clients = [run.clients for run in runs]
    load.plot(
        clients, [run.requests_per_s for run in runs], marker="o", color="tab:blue", label="req/s"
    )
    load.set(xscale="log", xlabel="concurrent clients", ylabel="requests/s")
    load.set_xticks(clients, [str(c) for c in clients])
    load.xaxis.set_minor_formatter(NullFormatter())
    load.set_ylim(bottom=0)
    p99 = load.twinx()
    p99.plot(
        clients,
        [run.latency.p99_ms for run in runs if run.latency],
        marker="s",
        color="tab:red",
        linestyle="--",
        label="p99 ms",
    )
    p99.set_ylabel("p99 ms")
    p99.set_ylim(bottom=0)
    load.set_title(f"HTTP /ask over loopback, {report.workers} workers")
    load.legend(
        load.get_legend_handles_labels()[0] + p99.get_legend_handles_labels()[0],
        ["requests/s", "p99 ms"],
        fontsize=7,
        loc="upper left",
    )


def chart(report: BenchReport, path: Path) -> None:
    """Latency and resident memory against corpus size (scale results and the seed corpus),
    and throughput and p99 against concurrent clients, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _scale_points(report.scale)
    figure, (lat, mem, load) = plt.subplots(1, 3, figsize=(16, 5))
    _latency_axes(lat, report, series)
    _memory_axes(mem, report, series)
    _load_axes(load, report)
    for axes in (lat, mem):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
        axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(report: BenchReport, out: Path) -> list[Path]:
    """Write ``bench.json``, ``bench.md`` and ``bench.png`` into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bench.json", out / "bench.md", out / "bench.png"]
    paths[0].write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n")
    paths[1].write_text(markdown(report, paths[2].name) + "\n")
    chart(report, paths[2])
    return paths


# ------------------------------------------------------------------------------ from JSON


def _latency(value: Mapping[str, Any] | None) -> Latency | None:
    return None if value is None else Latency(**value)


def _load_run_from(row: Mapping[str, Any]) -> LoadRun:
    timed = ("latency", "server_total", "server_stage_sum")
    fields: dict[str, Any] = dict(row)
    fields.update({key: _latency(row[key]) for key in timed})
    return LoadRun(**fields)


def _store(row: Mapping[str, Any]) -> StoreFigures:
    fields: dict[str, Any] = dict(row)
    fields["load_average"] = tuple(row["load_average"])
    return StoreFigures(**fields)


def read(path: Path) -> BenchReport:
    """A ``BenchReport`` from the ``bench.json`` that ``write`` saved."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return BenchReport(
        **{k: data[k] for k in ("command", "started_at", "cores", "workers", "corpus")},
        load_average={k: tuple(v) for k, v in data["load_average"].items()},
        in_process={stage: Latency(**v) for stage, v in data["in_process"].items()},
        in_process_stage_sum=Latency(**data["in_process_stage_sum"]),
        load=[_load_run_from(row) for row in data["load"]],
        server_rss_bytes=data["server_rss_bytes"],
        ingest=[IngestRate(**row) for row in data["ingest"]],
        build_seconds=data["build_seconds"],
        scale=data.get("scale", []),
        targets=[Target(**row) for row in data.get("targets", [])],
        stores=[_store(row) for row in data.get("stores", [])],
        scale_from=data.get("scale_from"),
        verify=_load_run_from(data["verify"]) if data.get("verify") else None,
        cite=_load_run_from(data["cite"]) if data.get("cite") else None,
    )


def render(bench_json: Path) -> list[Path]:
    """Rewrite ``bench.md`` and ``bench.png`` beside ``bench_json`` from it (nothing is
    measured); returns their paths."""
    report = read(bench_json)
    paths = [bench_json.with_name("bench.md"), bench_json.with_name("bench.png")]
    paths[0].write_text(markdown(report, paths[1].name) + "\n")
    chart(report, paths[1])
    return paths
