"""``python -m service.lab.scale``: the command line of the scale study (``main``).

One mode per run, each printing one JSON line per result: ``run_scale`` (the default),
``compare_dense`` (``--compare``), ``serve_scale`` (``--serve``, which can also update
``OUT/serve.jsonl`` and ``OUT/serve.md``) or ``encode_throughput`` (``--throughput``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from service.config import Settings
from service.lab.evaluate import load_questions
from service.lab.scale.compare import compare_dense, comparison_grid
from service.lab.scale.measure import run_scale
from service.lab.scale.serve import MEMORY_GUARD, serve_scale
from service.lab.scale.serve_report import save_serve_row
from service.lab.scale.vectors import encode_throughput

_DESCRIPTION = """\
Synthetic corpora of N chunks (recombined, varied seed sentences; nothing is
downloaded), and what building, holding and searching them costs. Prints one
JSON line per result.

modes:
  (default)     build each N as `citeqa build` would, then measure it loaded
                as the server loads it: seconds, bytes, RSS, dense and BM25
                p50/p99, recall@10 against exact search (run_scale)
  --compare     one corpus's multilingual vectors behind each index of
                comparison_grid(): HNSW and IVF-PQ at several parameters
  --serve       the whole service over a real generation of N chunks: build,
                load, Engine.ask per stage, `citeqa serve` over HTTP
                (serve_scale)
  --throughput  each encoder's chunks/s over the first N chunks

Encoded vectors are cached under WORK_DIR/vectors, so reruns and smaller N
skip encoding. More in the docstrings of service/lab/scale/.
"""

_EXAMPLES = """\
examples:
  python -m service.lab.scale 10000 100000 --questions eval/questions.jsonl
  python -m service.lab.scale 100000 --compare --approximate --questions eval/questions.jsonl
  python -m service.lab.scale 100000 --serve --questions eval/questions.jsonl \\
      --out eval/reports/scale
  python -m service.lab.scale 500 --throughput
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.lab.scale",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sizes", nargs="+", type=int, help="chunk counts, e.g. 10000 100000")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("scale-work"),
        help="where the corpora, cached vectors and indexes are kept (default: scale-work)",
    )
    parser.add_argument("--queries", type=int, default=200, help="held-out synthetic queries")
    parser.add_argument(
        "--seed", type=int, default=0, help="the same seed makes the same corpus (default 0)"
    )
    parser.add_argument("--questions", type=Path, help="also query with these (eval JSONL)")
    parser.add_argument(
        "--dense-encoder-limit",
        type=int,
        default=10_000,
        help="encode with the English model up to this many chunks (14-48 a second here)",
    )
    parser.add_argument(
        "--multilingual-encoder-limit",
        type=int,
        default=100_000,
        help="above this many chunks, approximate the multilingual vectors (see --approximate)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_modes(parser)
    return parser


def _add_modes(parser: argparse.ArgumentParser) -> None:
    """The modes other than the default, and their own options."""
    parser.add_argument(
        "--compare",
        action="store_true",
        help="instead: the multilingual vectors behind each index of comparison_grid()",
    )
    parser.add_argument(
        "--approximate", action="store_true", help="with --compare: approximated vectors"
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="instead: the whole service over a real generation of N chunks (serve_scale)",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="with --serve: servers to start"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="with --serve: update OUT/serve.jsonl and OUT/serve.md (the committed ones are in "
        "eval/reports/scale)",
    )
    parser.add_argument(
        "--force", action="store_true", help="with --serve: rebuild an up-to-date generation"
    )
    parser.add_argument(
        "--memory-guard-gib",
        type=float,
        default=MEMORY_GUARD / 2**30,
        help="with --serve: stop a build whose RSS passes this (or leaves < 1.5 GiB free)",
    )
    parser.add_argument(
        "--throughput",
        action="store_true",
        help="instead: each encoder's chunks/s over the first N chunks (encode_throughput)",
    )


def _print(row: dict[str, Any]) -> None:
    print(json.dumps(row, ensure_ascii=False), flush=True)


def _throughput(args: argparse.Namespace) -> None:
    settings = Settings()
    for n in args.sizes:
        for model in (settings.multilingual_model, settings.dense_model):
            rates = encode_throughput(model, settings, n, args.seed)
            print(json.dumps({"model": model, "chunks": n, "chunks_per_s": rates}), flush=True)


def _serve(args: argparse.Namespace, questions: list[str], command: str) -> None:
    settings = Settings()
    for row in serve_scale(
        args.sizes,
        settings,
        args.work_dir,
        not args.quiet,
        questions=questions,
        queries=args.queries,
        seed=args.seed,
        workers=args.workers,
        onnx_from=settings.index_dir / "onnx",
        guard=int(args.memory_guard_gib * 2**30),
        force=args.force,
    ):
        row["command"] = command
        _print(row)
        if args.out:
            save_serve_row(args.out, row)


def _compare(args: argparse.Namespace, questions: list[str]) -> None:
    settings = Settings()
    for n in args.sizes:
        for figures in compare_dense(
            n,
            comparison_grid(n, 512),
            settings,
            args.work_dir,
            not args.quiet,
            queries=args.queries,
            seed=args.seed,
            questions=questions,
            approximate=args.approximate,
        ):
            _print({"chunks": n, **asdict(figures)})


def _measure(args: argparse.Namespace, questions: list[str]) -> None:
    for n in sorted(args.sizes):  # a line as soon as each size is measured
        results = run_scale(
            [n],
            Settings(),
            args.work_dir,
            not args.quiet,
            queries=args.queries,
            seed=args.seed,
            questions=questions,
            dense_encoder_limit=args.dense_encoder_limit,
            multilingual_encoder_limit=args.multilingual_encoder_limit,
        )
        _print(asdict(results[0]))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m service.lab.scale N [N ...]``: measure and print one JSON line per result;
    returns the exit status."""
    args = _parser().parse_args(argv)
    questions: list[str] = []
    if args.questions:
        questions = [q.question for q in load_questions(args.questions)]
    if args.throughput:
        _throughput(args)
    elif args.serve:
        _serve(args, questions, "python -m service.lab.scale " + " ".join(argv or sys.argv[1:]))
    elif args.compare:
        _compare(args, questions)
    else:
        _measure(args, questions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
