"""Bench: how fast ``/ask`` is, in-process per stage and over HTTP on localhost.

Every request carries a question no earlier request used (an eval question with a request
number appended), so the query-vector cache never answers for the encoders.

- in-process: ``Engine.ask`` timings per stage (retrieve = the three encoders and searches,
  fuse, answer) and in total;
- HTTP, one client: p50/p99 of ``POST /ask`` against ``citeqa serve`` started on a free port;
- HTTP, 8 clients: requests per second and p50/p99 over a fixed number of requests;
- overhead: (HTTP p50 - in-process p50) / HTTP p50, the share HTTP and the framework add.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from service.config import Settings
from service.engine import Engine
from service.evaluate import load_questions
from service.index import load_index

__all__ = ["run_bench"]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _questions(path: Path, count: int) -> list[str]:
    base = [q.question for q in load_questions(path)]
    return [f"{base[i % len(base)]} (#{i})" for i in range(count)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(settings: Settings, workers: int = 1) -> Iterator[str]:
    """``citeqa serve`` in a child process on a free localhost port, ready when yielded."""
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "CITEQA_INDEX_DIR": str(settings.index_dir.resolve()),
            "CITEQA_CORPUS_DIR": str(settings.corpus_dir.resolve()),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"the server exited before it was ready:\n{error[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready within 120 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _in_process(settings: Settings, questions: list[str]) -> dict[str, Any]:
    engine = Engine(load_index(settings), settings)
    engine.ask("warm up", top_k=5)
    stages: dict[str, list[float]] = {}
    for question in questions:
        for stage, ms in engine.ask(question, top_k=5).timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return {
        stage: {"p50_ms": round(statistics.median(v), 2), "p99_ms": round(_percentile(v, 0.99), 2)}
        for stage, v in stages.items()
    }


def _clients(url: str, questions: list[str], clients: int) -> dict[str, Any]:
    """``clients`` sequential clients sharing the questions; latency and throughput."""
    shares = [questions[i::clients] for i in range(clients)]

    def worker(share: list[str]) -> tuple[list[float], int]:
        latencies, errors = [], 0
        with httpx.Client(base_url=url, timeout=30) as client:
            for question in share:
                started = time.perf_counter()
                response = client.post("/ask", json={"question": question, "top_k": 5})
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code != 200
        return latencies, errors

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(worker, shares))
    seconds = time.perf_counter() - started
    latencies = [ms for part, _ in results for ms in part]
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": sum(errors for _, errors in results),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
    }


def run_bench(
    settings: Settings, questions_file: Path, requests: int = 400, workers: int = 1
) -> dict[str, Any]:
    """Measure everything above; returns the figures as a JSON-ready dict."""
    questions = _questions(questions_file, 3 * requests)
    report: dict[str, Any] = {
        "stages_in_process": _in_process(settings, questions[:requests]),
    }
    with _server(settings, workers) as url:
        _clients(url, _questions(questions_file, 20 * workers), 1)  # warm every worker
        report["http_one_client"] = _clients(url, questions[requests : 2 * requests], 1)
        report["http_8_clients"] = _clients(url, questions[2 * requests :], 8)
    in_process = report["stages_in_process"]["total"]["p50_ms"]
    http = report["http_one_client"]["p50_ms"]
    report["http_overhead_share"] = round((http - in_process) / http, 3)
    report["cores"] = settings.effective_threads()
    report["workers"] = workers
    return report


def markdown(report: dict[str, Any]) -> str:
    """The figures as a short markdown table."""
    stages = report["stages_in_process"]
    lines = [
        "| measure | p50 ms | p99 ms | other |",
        "| --- | --- | --- | --- |",
    ]
    for stage, figures in stages.items():
        lines.append(f"| in-process `{stage}` | {figures['p50_ms']} | {figures['p99_ms']} | |")
    one = report["http_one_client"]
    lines.append(
        f"| HTTP `/ask`, 1 client | {one['p50_ms']} | {one['p99_ms']} | "
        f"{one['requests']} requests, {one['errors']} errors |"
    )
    eight = report["http_8_clients"]
    lines.append(
        f"| HTTP `/ask`, 8 clients | {eight['p50_ms']} | {eight['p99_ms']} | "
        f"{eight['requests_per_s']} requests/s, {eight['errors']} errors |"
    )
    lines.append(f"\nServer workers: {report['workers']}; cores: {report['cores']}.")
    lines.append(
        f"HTTP and framework share of the one-client p50: {report['http_overhead_share']:.0%}."
    )
    return "\n".join(lines)


def write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "bench.md").write_text(markdown(report) + "\n")
