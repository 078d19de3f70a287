"""Load and soak: a real load generator (locust, headless) against ``citeqa serve`` on
loopback, with the server's memory sampled while it runs (``citeqa load``).

- ``load_suite`` starts the server (``processes.serve``: the rate limit off,
  ``CITEQA_RATE_LIMIT_PER_MINUTE=0``, as all locust users are one loopback address), warms
  it, runs ``run_load`` once per client count and writes ``load.json`` and ``load.md``
  (``soak.json`` and ``soak.md`` for a soak);
- ``run_load`` drives ``clients`` concurrent locust users (``service/lab/locustfile.py``) for
  ``seconds`` against a running server and reads locust's own CSV statistics: requests,
  failures, requests/s, p50 and p99. While it runs, the server's resident memory (the
  ``citeqa serve`` process and its workers) is sampled every ``sample_every`` seconds.
- ``rss_growth`` is the soak's memory verdict: the largest RSS after warm-up against the
  RSS when warm-up ended;
- ``render`` rewrites the markdown of a saved report from its JSON, without measuring.

Locust is the ``lab`` extra; it runs in its own process (it patches the standard library with
gevent on import), so nothing here imports it.

A failure is any response other than the one expected (200 for valid requests, the exact
4xx for each malformed one), any 5xx, timeout or dropped connection, and any citation that
does not slice out of its document.
"""

from __future__ import annotations

import csv
import functools
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from service.config import Settings, available_cores
from service.lab.processes import serve, tree_rss

__all__ = [
    "LoadResult",
    "RssSample",
    "load_suite",
    "render",
    "rss_growth",
    "run_load",
]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class RssSample:
    seconds: float  # since the run started
    rss_bytes: int  # resident memory of the server and its workers, summed
    pss_bytes: int  # the same with shared pages (mapped index files, libraries) split


@dataclass(frozen=True)
class LoadResult:
    clients: int
    seconds: float
    invalid_share: float
    requests: int
    failures: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    failure_examples: tuple[str, ...] = ()
    rss: tuple[RssSample, ...] = field(default=(), repr=False)

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> LoadResult:
        """A result as ``load.json`` holds it (``asdict`` and its ``error_rate``)."""
        plain: tuple[str, ...] = ("clients", "seconds", "invalid_share", "requests")
        plain += ("failures", "requests_per_s", "p50_ms", "p99_ms")
        return cls(
            **{key: row[key] for key in plain},
            failure_examples=tuple(row.get("failure_examples", ())),
            rss=tuple(RssSample(**sample) for sample in row.get("rss", ())),
        )


# ---------------------------------------------------------------------------- memory


def rss_growth(samples: Sequence[RssSample], warmup_seconds: float) -> float:
    """The largest RSS after warm-up over the RSS when warm-up ended, minus one (0.03 is
    3% growth). Needs samples on both sides of the warm-up."""
    after = [s for s in samples if s.seconds >= warmup_seconds]
    if len(after) < 2:
        raise ValueError(
            f"too few memory samples after {warmup_seconds:.0f} s of warm-up to judge growth; "
            "run longer or sample more often."
        )
    return max(s.rss_bytes for s in after[1:]) / after[0].rss_bytes - 1


# ------------------------------------------------------------------------------ load


def _locust() -> str:
    found = shutil.which("locust", path=str(Path(sys.executable).parent)) or shutil.which("locust")
    if found is None:
        raise RuntimeError(
            "locust is not installed; install the lab extra with `pip install -e '.[lab]'` "
            "(`make install` installs it)."
        )
    return found


def _aggregated(stats_csv: Path) -> dict[str, str]:
    with stats_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return row
    raise RuntimeError(f"locust wrote no aggregated row to {stats_csv}")


def _failures(failures_csv: Path, most: int = 5) -> tuple[str, ...]:
    if not failures_csv.is_file():
        return ()
    with failures_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return tuple(f"{r['Occurrences']}x {r['Name']}: {r['Error']}"[:300] for r in rows[:most])


@dataclass(frozen=True)
class _Mix:
    """What the locust users send (the options of ``service/lab/locustfile.py``)."""

    questions: Path
    claims: Path | None = None
    invalid_share: float = 0.0
    check_share: float = 0.0
    admin_key_set: bool = False

    def options(self) -> list[str]:
        options = ["--questions", str(self.questions), "--invalid-share", str(self.invalid_share)]
        options += ["--check-share", str(self.check_share)]
        options += ["--claims", str(self.claims)] if self.claims is not None else []
        return options + (["--admin-key-set"] if self.admin_key_set else [])


def _locust_command(url: str, clients: int, seconds: float, prefix: Path, mix: _Mix) -> list[str]:
    """Headless locust: ``clients`` users, all started at once, CSV statistics at ``prefix``."""
    return [
        _locust(), "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--users", str(clients), "--spawn-rate", str(clients),
        "--run-time", f"{max(1, round(seconds))}s", "--stop-timeout", "30",
        "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
        *mix.options(),
    ]  # fmt: skip


@contextmanager
def _sampled(pids: Sequence[int], every: float) -> Iterator[list[RssSample]]:
    """Sample the summed memory of ``pids`` every ``every`` seconds while the block runs
    (no samples when ``pids`` is empty)."""
    samples: list[RssSample] = []
    done = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while True:
            rss, pss = tree_rss(pids)
            samples.append(RssSample(round(time.monotonic() - started, 1), rss, pss))
            if done.wait(every):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    if pids:
        sampler.start()
    try:
        yield samples
    finally:
        done.set()
        if pids:
            sampler.join()


def run_load(
    url: str,
    *,
    clients: int,
    seconds: float,
    questions: Path,
    out_dir: Path,
    claims: Path | None = None,
    invalid_share: float = 0.0,
    check_share: float = 0.0,
    admin_key_set: bool = False,
    sample_every: float = 10.0,
    server_pids: Sequence[int] = (),
) -> LoadResult:
    """``clients`` locust users on ``url`` for ``seconds``; locust's figures, and the
    server's memory every ``sample_every`` seconds when ``server_pids`` are given.

    Args:
        questions, claims: the question and claim files the users ask from.
        out_dir: where locust's CSV files and log go (``locust-<clients>c*``).
        invalid_share: the share of malformed or hostile requests.
        check_share: the share of answers whose citation is fetched and checked.
        admin_key_set: whether the admin routes are on (hostile requests to them get 401).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / f"locust-{clients}c"
    mix = _Mix(questions, claims, invalid_share, check_share, admin_key_set)
    command = _locust_command(url, clients, seconds, prefix, mix)
    log_path = out_dir / f"locust-{clients}c.log"
    with (
        _sampled(server_pids, sample_every) as samples,
        log_path.open("w", encoding="utf-8") as log,
    ):
        finished = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, timeout=seconds + 120, check=False
        )
    stats = prefix.with_name(prefix.name + "_stats.csv")
    if not stats.is_file():
        tail = log_path.read_text(encoding="utf-8")[-2000:]
        raise RuntimeError(f"locust exited with {finished.returncode} and no statistics:\n{tail}")
    row = _aggregated(stats)
    return LoadResult(
        clients=clients,
        seconds=seconds,
        invalid_share=invalid_share,
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        requests_per_s=round(float(row["Requests/s"]), 1),
        p50_ms=float(row["50%"]),
        p99_ms=float(row["99%"]),
        failure_examples=_failures(prefix.with_name(prefix.name + "_failures.csv")),
        rss=tuple(samples),
    )


# ---------------------------------------------------------------------------- suites


def _markdown(results: Sequence[LoadResult], growth: float | None, warmup: float) -> str:
    lines = [
        "| clients | seconds | bad input | requests | requests/s | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.clients} | {r.seconds:.0f} | {r.invalid_share:.0%} | {r.requests} | "
            f"{r.requests_per_s} | {r.p50_ms:.0f} | {r.p99_ms:.0f} | "
            f"{r.failures} ({r.error_rate:.2%}) |"
        )
    for r in results:
        for example in r.failure_examples:
            lines.append(f"\n- {r.clients} clients: {example}")
        if r.rss:
            mib = [s.rss_bytes / 2**20 for s in r.rss]
            lines.append(
                f"\nServer RSS with {r.clients} clients ({len(mib)} samples): "
                f"{mib[0]:.0f} MiB at start, {max(mib):.0f} MiB at most, {mib[-1]:.0f} MiB at "
                f"the end (PSS at the end {r.rss[-1].pss_bytes / 2**20:.0f} MiB)."
            )
    if growth is not None:
        lines.append(f"\nRSS growth after {warmup:.0f} s of warm-up: {growth:+.2%}.")
    return "\n".join(lines) + "\n"


def render(report_json: Path) -> Path:
    """Rewrite the markdown beside a saved ``load.json`` or ``soak.json`` from it (nothing
    is measured); returns the markdown's path."""
    report = json.loads(report_json.read_text(encoding="utf-8"))
    results = [LoadResult.from_json(row) for row in report["results"]]
    markdown = _markdown(results, report["rss_growth_after_warmup"], report["warmup_seconds"])
    path = report_json.with_suffix(".md")
    path.write_text(markdown, encoding="utf-8")
    return path


def load_suite(
    settings: Settings,
    *,
    clients: Sequence[int],
    seconds: float,
    questions: Path,
    out_dir: Path,
    workers: int,
    claims: Path | None = None,
    invalid_share: float = 0.0,
    check_share: float = 0.0,
    sample_every: float = 10.0,
    warmup_seconds: float = 0.0,
    name: str = "load",
) -> tuple[list[LoadResult], float | None]:
    """Start ``citeqa serve`` with ``workers`` workers, warm it, then one locust run per
    entry of ``clients``; writes ``<name>.json`` and ``<name>.md`` to ``out_dir``. Returns
    the results and, when ``warmup_seconds`` is set, the RSS growth after warm-up of the
    last run (the soak's verdict)."""
    mix = _Mix(questions, claims, invalid_share, check_share, settings.admin_key is not None)
    results: list[LoadResult] = []
    with serve(settings, workers) as server:
        run = functools.partial(run_load, server.url, out_dir=out_dir, **asdict(mix))
        run(clients=max(clients), seconds=5)  # every worker warm
        pids = server.pids()
        for count in clients:
            results.append(
                run(clients=count, seconds=seconds, sample_every=sample_every, server_pids=pids)
            )
    growth = rss_growth(results[-1].rss, warmup_seconds) if warmup_seconds else None
    report = {
        "workers": workers,
        "cores": available_cores(),
        "results": [asdict(r) | {"error_rate": r.error_rate} for r in results],
        "rss_growth_after_warmup": growth,
        "warmup_seconds": warmup_seconds,
    }
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    render(path)
    return results, growth
