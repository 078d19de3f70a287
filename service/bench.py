"""Bench: how fast ``/ask`` is, in-process per stage and over HTTP on localhost.

Every request carries a question no earlier request used (an eval question with a request
number appended), so the query-vector cache never answers for the encoders.

- in-process: ``Engine.ask`` timings per stage (each encoder, each index search, fusion,
  answer; ``retrieve`` is encoders plus searches) and in total;
- HTTP, one client: p50/p99 of ``POST /ask`` against ``citeqa serve`` started on a free port;
- HTTP, 8 and 32 clients: requests per second and p50/p99 over a fixed number of requests;
- overhead: for the one-client requests, the share of the end-to-end time spent outside
  ``Engine.ask`` (the server reports its own ``timings_ms.total`` in each answer), and the
  ratio end-to-end / in-process.

Clients are threads using ``http.client`` with keep-alive: the load generator shares the
machine with the server, and httpx costs about six times more CPU per request.
"""

from __future__ import annotations

import http.client
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

__all__ = ["free_port", "run_bench", "running_server"]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _questions(path: Path, count: int) -> list[str]:
    base = [q.question for q in load_questions(path)]
    return [f"{base[i % len(base)]} (#{i})" for i in range(count)]


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(settings: Settings, workers: int = 1, port: int | None = None) -> Iterator[str]:
    """``citeqa serve`` in a child process on localhost (a free port unless given); yields
    its base URL once ``/readyz`` answers, and stops it on exit."""
    port = port or free_port()
    env = dict(os.environ)
    env.update(
        {
            "CITEQA_INDEX_DIR": str(settings.index_dir.resolve()),
            "CITEQA_CORPUS_DIR": str(settings.corpus_dir.resolve()),
            "CITEQA_RATE_LIMIT_PER_MINUTE": "0",  # the load generator is one client
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
    host, port = url.removeprefix("http://").split(":")

    def worker(share: list[str]) -> tuple[list[float], list[float], int]:
        latencies, server, errors = [], [], 0
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Content-Type": "application/json"}
        try:
            for question in share:
                body = json.dumps({"question": question, "top_k": 5})
                started = time.perf_counter()
                connection.request("POST", "/ask", body, headers)
                response = connection.getresponse()
                payload = response.read()
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status == 200:
                    server.append(json.loads(payload)["timings_ms"]["total"])
                else:
                    errors += 1
        finally:
            connection.close()
        return latencies, server, errors

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(worker, shares))
    seconds = time.perf_counter() - started
    latencies = [ms for part, _, _ in results for ms in part]
    server = [ms for _, part, _ in results for ms in part]
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": sum(errors for _, _, errors in results),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "server_p50_ms": round(statistics.median(server), 2) if server else None,
    }


def run_bench(
    settings: Settings, questions_file: Path, requests: int = 400, workers: int = 1
) -> dict[str, Any]:
    """Measure everything above; returns the figures as a JSON-ready dict."""
    questions = _questions(questions_file, 4 * requests)
    report: dict[str, Any] = {
        "stages_in_process": _in_process(settings, questions[:requests]),
    }
    with running_server(settings, workers) as url:
        _clients(url, _questions(questions_file, 50 * workers), 8)  # warm every worker
        one = _clients(url, questions[requests : 2 * requests], 1)
        report["http_one_client"] = one
        report["http_8_clients"] = _clients(url, questions[2 * requests : 3 * requests], 8)
        report["http_32_clients"] = _clients(url, questions[3 * requests :], 32)
    report["http_overhead_share"] = round((one["p50_ms"] - one["server_p50_ms"]) / one["p50_ms"], 3)
    report["end_to_end_over_in_process"] = round(
        one["p50_ms"] / report["stages_in_process"]["total"]["p50_ms"], 2
    )
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
    for key in ("http_8_clients", "http_32_clients"):
        many = report[key]
        lines.append(
            f"| HTTP `/ask`, {many['clients']} clients | {many['p50_ms']} | {many['p99_ms']} | "
            f"{many['requests_per_s']} requests/s, {many['errors']} errors |"
        )
    lines.append(f"\nServer workers: {report['workers']}; cores: {report['cores']}.")
    lines.append(
        "HTTP and framework share of the one-client p50 (outside `Engine.ask`): "
        f"{report['http_overhead_share']:.0%}; end-to-end / in-process p50: "
        f"{report['end_to_end_over_in_process']}."
    )
    return "\n".join(lines)


def write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "bench.md").write_text(markdown(report) + "\n")
