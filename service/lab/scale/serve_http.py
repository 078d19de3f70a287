"""The HTTP part of ``serve_scale``: the real server, asked over the network.

``http_probe`` starts ``citeqa serve --workers N`` on a free port (``service.lab.processes.serve``),
times one keep-alive client's ``POST /ask`` and sums the server processes' RSS/PSS;
``_check_citations`` checks every answer's citation slices out of its corpus file.
"""

from __future__ import annotations

import glob
import http.client
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.config import Settings
from service.lab.processes import serve, tree_rss
from service.lab.stats import p50_p99


def _ask_each(port: int, questions: Sequence[str]) -> tuple[list[float], int, list[bytes]]:
    """``POST /ask`` once per question over one keep-alive connection: the milliseconds
    each took, how many did not answer 200, and the bodies."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times, errors, payloads = [], 0, []
    headers = {"Content-Type": "application/json"}
    try:
        for question in questions:
            body = json.dumps({"question": question, "top_k": 5})
            begun = time.perf_counter()
            connection.request("POST", "/ask", body, headers)
            response = connection.getresponse()
            payload = response.read()
            times.append((time.perf_counter() - begun) * 1000)
            errors += response.status != 200
            payloads.append(payload)
    finally:
        connection.close()
    return times, errors, payloads


def http_probe(
    settings: Settings, workers: int, questions: Sequence[str], ready_timeout: float
) -> dict[str, Any]:
    """``citeqa serve --workers N`` on a free port: seconds until ``/readyz``, one
    keep-alive client's ``POST /ask`` p50/p99, and the server processes' summed RSS/PSS."""
    # the default budget (10 s) would turn a slow request at a large N into a 503: time it
    budget = {"CITEQA_REQUEST_BUDGET_SECONDS": "120"}
    with serve(settings, workers, env=budget, ready_timeout=ready_timeout) as server:
        pids = server.pids()
        rss_ready, pss_ready = tree_rss(pids)
        times, errors, payloads = _ask_each(server.port, questions)
        answered, mismatches = _check_citations(settings.corpus_dir, payloads)
        rss, pss = tree_rss(pids)
    p50, p99 = p50_p99(times)
    return {
        "workers": workers,
        "processes": len(pids),
        "ready_seconds": round(server.ready_seconds, 1),
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
