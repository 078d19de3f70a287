"""The HTTP part of ``serve_scale``: the real server, asked over the network.

``_serve_http`` starts ``citeqa serve --workers N`` on a free port, waits for ``/readyz``,
times one keep-alive client's ``POST /ask`` and sums the server processes' RSS/PSS;
``_check_citations`` checks every answer's citation slices out of its corpus file.
"""

from __future__ import annotations

import glob
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.config import Settings, child_environment
from service.lab.scale.metrics import _percentiles


def _serve_http(
    settings: Settings, workers: int, questions: Sequence[str], ready_timeout: float
) -> dict[str, Any]:
    """``citeqa serve --workers N`` on a free port: seconds until ``/readyz``, one
    keep-alive client's ``POST /ask`` p50/p99, and the server processes' summed RSS/PSS."""
    import http.client
    import socket
    import subprocess

    from service.lab.load import server_processes, tree_rss

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = child_environment(
        {
            "CITEQA_INDEX_DIR": str(settings.index_dir.resolve()),
            "CITEQA_CORPUS_DIR": str(settings.corpus_dir.resolve()),
            "CITEQA_RATE_LIMIT_PER_MINUTE": "0",
            "CITEQA_REQUEST_BUDGET_SECONDS": "120",
        }
    )
    command = [
        sys.executable,
        "-m",
        "service",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"the server exited before it was ready:\n{error[-2000:]}")
            try:
                connection.request("GET", "/readyz")
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    break
            except (OSError, http.client.HTTPException):
                connection.close()
            if time.perf_counter() - started > ready_timeout:
                raise RuntimeError(f"the server was not ready within {ready_timeout:.0f} s")
            time.sleep(0.5)
        ready = time.perf_counter() - started
        pids = server_processes(process.pid) or [process.pid]
        rss_ready, pss_ready = tree_rss(pids)
        times, errors, payloads = [], 0, []
        headers = {"Content-Type": "application/json"}
        for question in questions:
            body = json.dumps({"question": question, "top_k": 5})
            begun = time.perf_counter()
            connection.request("POST", "/ask", body, headers)
            response = connection.getresponse()
            payload = response.read()
            times.append((time.perf_counter() - begun) * 1000)
            errors += response.status != 200
            payloads.append(payload)
        answered, mismatches = _check_citations(settings.corpus_dir, payloads)
        rss, pss = tree_rss(pids)
        p50, p99 = _percentiles(times)
        return {
            "workers": workers,
            "processes": len(pids),
            "ready_seconds": round(ready, 1),
            "requests": len(times),
            "errors": errors,
            "answered": answered,
            "citation_mismatches": mismatches,
            "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2),
            "rss_ready_bytes": rss_ready,
            "pss_ready_bytes": pss_ready,
            "rss_bytes": rss,
            "pss_bytes": pss,
        }
    finally:
        connection.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _check_citations(corpus_dir: Path, payloads: Sequence[bytes]) -> tuple[int, int]:
    """How many ``/ask`` answers there were, and how many of their citations do not slice
    out of the corpus file (read byte for byte, as ingestion reads it)."""
    texts: dict[str, str] = {}
    answered = mismatches = 0
    for payload in payloads:
        answer = json.loads(payload).get("answer")
        if not answer:
            continue
        answered += 1
        citation = answer["citation"]
        doc_id = citation["doc_id"]
        if doc_id not in texts:
            path = next(corpus_dir.glob(f"{glob.escape(doc_id)}.*"))
            texts[doc_id] = path.read_bytes().decode("utf-8")
        quote = texts[doc_id][citation["char_start"] : citation["char_end"]]
        mismatches += quote != citation["quote"]
    return answered, mismatches
