"""``python -m service.lab.render [REPORTS]``: rewrite the measured reports from their JSON.

The bench, load and scale reports take minutes to hours to measure, and each saves every
figure as JSON beside its markdown. This rewrites the markdown (and the bench's chart) from
that JSON without measuring anything, so a change to how a report reads reaches the
committed ones (``make reports``, with the evaluation report, which is measured anew):

- ``REPORTS/bench/**/bench.json``: ``bench.md`` and ``bench.png`` (``bench_report.render``);
- ``REPORTS/load/*.json``: ``load.md``, ``soak.md`` (``load.render``);
- ``REPORTS/scale/serve.jsonl``: ``serve.md`` (``scale.serve_report.render``).

``REPORTS`` is ``eval/reports`` by default. The bench's chart needs the ``lab`` extra.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from service.lab.commands import CHARTS, missing_extra

__all__ = ["main", "render_all"]


def render_all(reports: Path) -> list[Path]:
    """Rewrite every measured report under ``reports`` from its JSON; the files written."""
    from service.lab import bench_report, load
    from service.lab.scale import serve_report

    written: list[Path] = []
    for bench_json in sorted(reports.glob("bench/**/bench.json")):
        written += bench_report.render(bench_json)
    for load_json in sorted(reports.glob("load/*.json")):
        written.append(load.render(load_json))
    serve_jsonl = reports / "scale" / "serve.jsonl"
    if serve_jsonl.is_file():
        written.append(serve_report.render(serve_jsonl))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the reports; returns the exit status (2 when the folder or the lab extra is
    missing)."""
    parser = argparse.ArgumentParser(
        prog="python -m service.lab.render",
        description="Rewrite the markdown (and charts) of the bench, load and scale reports "
        "from their saved JSON, without measuring.",
    )
    parser.add_argument(
        "reports",
        type=Path,
        nargs="?",
        default=Path("eval/reports"),
        help="the reports folder (default eval/reports)",
    )
    args = parser.parse_args(argv)
    if not args.reports.is_dir():
        print(f"render: error: no folder {args.reports}", file=sys.stderr)
        return 2
    if missing_extra("python -m service.lab.render", CHARTS):
        return 2
    for path in render_all(args.reports):
        print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
