"""The bodies of the lab's commands: ``citeqa eval``, ``citeqa bench`` and ``citeqa load``.

``service.cli`` parses the command line, resolves its defaults and imports this module only
when one of these commands runs (so ``citeqa --help`` and the service's own commands never
load the lab). Each function returns the exit status.

The ``lab`` extra (``pip install -e '.[lab]'``) brings what these commands need beyond the
service: matplotlib for the charts of ``eval --report`` and ``bench``, locust for ``load``.
Each command looks for what it needs before it measures anything and, when something is
missing, says which extra to install (``missing_extra``) instead of failing minutes later.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.config import Settings

__all__ = [
    "BenchOptions",
    "LoadOptions",
    "bench_command",
    "evaluate_command",
    "fit_command",
    "load_command",
    "missing_extra",
]

# What each command needs beyond the service, by the module names find_spec looks for.
CHARTS = ("matplotlib",)  # the lab extra: eval --report, bench and their charts
LOCUST = ("locust",)  # the lab extra: load
MILVUS = ("pymilvus", "milvus_lite")  # the milvus extra: bench --stores milvus


def missing_extra(command: str, modules: Sequence[str], extra: str = "lab") -> bool:
    """Whether any of ``modules`` is not installed; if so, say in one line on stderr that
    ``command`` needs ``extra`` and how to install it. Nothing is imported (locust patches
    the standard library when imported)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"{command} needs the {extra} extra ({', '.join(missing)} is not installed): "
            f"pip install -e '.[{extra}]'",
            file=sys.stderr,
        )
    return bool(missing)


# ------------------------------------------------------------------------------ eval


PRACTITIONER = "rrf:bm25+e5"


def _engines(settings: Settings, fusions: Sequence[str]) -> dict[str, Any]:
    """The product ("hybrid"), a baseline per retriever (the product with that retriever
    alone), plain RRF of BM25 and mE5 when both are configured, and the product with each
    of ``fusions``, all over one loaded index."""
    from service.engine import Engine

    product = Engine.from_settings(settings)
    index = product.index
    engines = {
        name: Engine.from_settings(settings, index=index, retrievers=[name])
        for name in product.retriever.retrievers
    }
    if {"bm25", "e5"} <= set(engines):  # the baseline a practitioner would build first
        engines[PRACTITIONER] = Engine.from_settings(
            settings, index=index, retrievers=["bm25", "e5"]
        )
    engines["hybrid"] = product
    for fusion in fusions:
        tried = settings.model_copy(update={"fusion": fusion})
        engines[f"hybrid:{fusion}"] = Engine.from_settings(tried, index=index)
    return engines


def _table(rows: dict[str, Any], scope: str | None, metrics: Sequence[str]) -> str:
    """A fixed-width table: a line per row key, a column per metric."""
    short = [m.replace("_ms", "").replace("abstain_", "abst_") for m in metrics]
    lines = [f"{'':<20}" + "".join(f"{m[:11]:>12}" for m in short)]
    for name, row in rows.items():
        values = row[scope] if scope else row
        cells = [values.get(m) for m in metrics]
        lines.append(
            f"{name[:19]:<20}" + "".join(f"{'-' if v is None else f'{v:.3f}':>12}" for v in cells)
        )
    return "\n".join(lines)


def _print_claims(summary: dict[str, Any], claims_file: Path) -> None:
    print(
        f"\n{summary['n']} claims from {claims_file}: label accuracy "
        f"{summary['label_accuracy']:.3f}, evidence recall {summary['evidence_recall']:.3f}"
    )
    corner = "label / verdict"
    print(f"{corner:<16}" + "".join(f"{v:>14}" for v in summary["confusion"]))
    for label, row in summary["confusion"].items():
        print(f"{label:<16}" + "".join(f"{n:>14}" for n in row.values()))
    splits = summary.get("by_split") or {}
    if len(splits) > 1:
        for split, part in splits.items():
            overall = part["overall"]
            by_label = ", ".join(
                f"{label} {row['label_accuracy']:.3f}" for label, row in part["by_label"].items()
            )
            print(
                f"{split}: {overall['n']} claims, label accuracy {overall['label_accuracy']:.3f} "
                f"({by_label}), ECE {overall['ece']:.3f}"
            )


def _test_split_or_all(outcomes: Sequence[Any]) -> Sequence[Any]:
    """The test split's outcomes, or all of them when the file has no test split."""
    test = [o for o in outcomes if o.question.split == "test"]
    return test or outcomes


def _unabstained(engine: Any) -> Any:
    """The span ``engine``'s reader would quote for a question it abstained on, read from
    the passages the ask returned (ten, more than the reader reads)."""
    from service.engine import clean_question

    def force(question: str, result: Any) -> Any:
        query = engine.query(clean_question(question))
        return engine.extractor.unabstained(query, [p.hit for p in result.passages])

    return force


def _print_splits(report: dict[str, Any], metrics: Sequence[str]) -> None:
    """The product per split, then each category's train and test figures side by side."""
    splits = report.get("by_split") or {}
    if len(splits) < 2:
        return
    print("\nhybrid (the product) by split")
    print(_table(splits, "overall", metrics))
    gap = report.get("split_gap")
    if gap:
        worst = sorted(gap.items(), key=lambda item: item[1])[:4]
        print("test minus train: " + ", ".join(f"{m} {v:+.3f}" for m, v in worst))
    categories = sorted({c for split in splits.values() for c in split["by_category"]})
    rows = {
        f"{category} {split}": splits[split]["by_category"][category]
        for category in categories
        for split in splits
        if category in splits[split]["by_category"]
    }
    print("\nhybrid by category and split")
    print(_table(rows, None, metrics))


@dataclass(frozen=True)
class _Evaluation:
    report: dict[str, Any]  # {"overall", "by_category", "systems"} and/or {"claims"}
    outcomes: dict[str, Any]  # system -> its Outcomes (for the report's charts and misses)
    checks: list[Any]  # (Claim, ClaimCheck) pairs


def _run_evaluation(
    settings: Settings,
    questions: Sequence[Any],
    claims: Sequence[Any],
    fusions: Sequence[str],
    progress: bool,
) -> _Evaluation:
    from service.lab.evaluate import evaluate, evaluate_claims
    from service.verify.verifier import Verifier

    engines = _engines(settings, fusions)
    product = engines["hybrid"]
    systems = {name: functools.partial(engine.ask, top_k=10) for name, engine in engines.items()}
    force = {name: _unabstained(engine) for name, engine in engines.items()}
    report: dict[str, Any] = {}
    outcomes: dict[str, Any] = {}
    if questions:
        if progress:
            print(
                f"asking {len(questions)} questions of {len(systems)} systems ...", file=sys.stderr
            )
        index = product.index
        report, outcomes = evaluate(systems, questions, index.chunks, index.documents, force=force)
    checks: list[Any] = []
    if claims:
        if progress:
            print(f"checking {len(claims)} claims ...", file=sys.stderr)
        report["claims"], checks = evaluate_claims(Verifier(product).verify, claims)
    return _Evaluation(report, outcomes, checks)


def _run_followups(
    settings: Settings, pairs: Sequence[Any], progress: bool
) -> tuple[dict[str, Any], list[Any]]:
    """The follow-up pairs asked of the product: their figures and their outcomes."""
    from service.engine import Engine
    from service.lab.evaluate import followup_metrics, run_followups

    if progress:
        print(f"asking {len(pairs)} follow-up pairs ...", file=sys.stderr)
    outcomes = run_followups(functools.partial(Engine.from_settings(settings).ask, top_k=10), pairs)
    return followup_metrics(outcomes), outcomes


def _print_followups(summary: dict[str, Any], path: Path) -> None:
    print(f"\nfollow-up pairs from {path}")
    print(f"{'split':<8} {'n':>4} {'resolved':>9} {'answer':>7} {'alone':>7}")
    for split, row in summary["by_split"].items():
        print(
            f"{split:<8} {row['n']:>4} {row['resolution_accuracy']:>9.3f} "
            f"{row['answer_accuracy']:>7.3f} {row['answer_accuracy_without_history']:>7.3f}"
        )


def _run_quotes(settings: Settings, quotes: Sequence[Any], progress: bool) -> dict[str, Any]:
    """The quotes traced by the product's /cite: their figures."""
    from service.cite.matcher import Citer
    from service.engine import Engine
    from service.lab.quotes import product_cite, quote_metrics, trace_quotes

    if progress:
        print(f"tracing {len(quotes)} quotes ...", file=sys.stderr)
    citer = Citer(Engine.from_settings(settings))
    return quote_metrics(trace_quotes(product_cite(citer), quotes))


def _print_quotes(summary: dict[str, Any], path: Path) -> None:
    print(f"\nquotes from {path}")
    print(f"{'split':<8} {'n':>4} {'span':>6} {'kind':>6} {'changed':>8} {'false':>6}")
    for split, row in summary["by_split"].items():
        print(
            f"{split:<8} {row['n']:>4} {row['span_accuracy']:>6.3f} {row['kind_accuracy']:>6.3f} "
            f"{row['changed_recall']:>8.3f} {row['false_matches_on_absent']:>6}"
        )


def evaluate_command(
    settings: Settings,
    *,
    questions_file: Path | None,
    claims_file: Path | None,
    followups_file: Path | None = None,
    quotes_file: Path | None = None,
    report_path: Path | None = None,
    fusions: Sequence[str] = (),
    as_json: bool = False,
    quiet: bool = False,
) -> int:
    """``citeqa eval``: ask every question of the product and its baselines and check every
    claim; print the metrics (a table, or JSON) and with ``report_path`` write the report.

    Args:
        questions_file, claims_file: the question and claim files (None: not run).
        followups_file: the follow-up pairs, asked as conversations (None: not run).
        quotes_file: quotes traced to their sources by POST /cite (None: not run).
        report_path: the markdown report to write, its charts in a folder beside it.
        fusions: more fusions to run the product with, side by side.
        as_json: print the metrics as JSON instead of tables.
        quiet: no progress messages.
    """
    from service.lab.evaluate import (
        abstention_curve,
        load_claims,
        load_followups,
        load_questions,
    )
    from service.lab.quotes import load_quotes

    if report_path is not None and missing_extra("citeqa eval --report", CHARTS):
        return 2
    try:
        questions = load_questions(questions_file) if questions_file else []
        claims = load_claims(claims_file) if claims_file else []
        pairs = load_followups(followups_file) if followups_file else []
        quotes = load_quotes(quotes_file) if quotes_file else []
    except (OSError, ValueError) as error:
        print(f"citeqa eval: error: {error}", file=sys.stderr)
        return 2
    if report_path is not None and not questions:
        print("citeqa eval: error: --report needs questions as well", file=sys.stderr)
        return 2
    done = _run_evaluation(settings, questions, claims, fusions, not (as_json or quiet))
    report = done.report
    followed: list[Any] = []
    if pairs:
        report["followups"], followed = _run_followups(settings, pairs, not (as_json or quiet))
    if quotes:
        report["quotes"] = _run_quotes(settings, quotes, not (as_json or quiet))
    if report_path is not None and questions_file is not None:
        from service.lab.report import write_report

        written = write_report(
            report_path,
            report,
            done.outcomes,
            abstention_curve(_test_split_or_all(done.outcomes["hybrid"])),
            questions_file=questions_file,
            min_confidence=settings.min_confidence,
            claims=(report.get("claims"), done.checks, claims_file),
            followups=(report.get("followups"), followed, followups_file),
            quotes=(report.get("quotes"), quotes_file),
        )
        print(f"wrote {written[0]} and {len(written) - 1} charts", file=sys.stderr)
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    files = {"questions": questions_file, "claims": claims_file, "followups": followups_file}
    _print_report(report, files | {"quotes": quotes_file})
    return 0


def _print_report(report: dict[str, Any], files: dict[str, Path | None]) -> None:
    """The evaluation's tables, for what ran."""
    from service.lab.evaluate import METRICS

    if "systems" in report:
        print(f"{report['overall']['n']} questions from {files['questions']}\n")
        print(_table(report["systems"], "overall", METRICS))
        print("\nhybrid (the product) by category")
        print(_table(report["by_category"], None, METRICS))
        _print_splits(report, METRICS)
    if report.get("claims") and files["claims"] is not None:
        _print_claims(report["claims"], files["claims"])
    if report.get("followups") and files["followups"] is not None:
        _print_followups(report["followups"], files["followups"])
    if report.get("quotes") and files["quotes"] is not None:
        _print_quotes(report["quotes"], files["quotes"])


def fit_command(
    settings: Settings,
    *,
    questions_file: Path,
    claims_file: Path,
    out: Path,
    folds: int = 5,
    quiet: bool = False,
    quotes_file: Path | None = None,
) -> int:
    """``citeqa eval --fit``: fit the tuned constants on the train split of the files
    (``service.lab.fit``; the quotes' thresholds too when ``quotes_file`` is given), write
    them to ``out`` and print what the fit measured."""
    from service.engine import Engine
    from service.lab.evaluate import load_claims, load_questions
    from service.lab.fit import fit
    from service.lab.quotes import load_quotes

    if folds < 2:
        print("citeqa eval --fit: error: --folds must be at least 2", file=sys.stderr)
        return 2
    try:
        questions = [q for q in load_questions(questions_file) if q.split == "train"]
        claims = [c for c in load_claims(claims_file) if c.split == "train"]
        quotes = [q for q in load_quotes(quotes_file) if q.split == "train"] if quotes_file else []
    except (OSError, ValueError) as error:
        print(f"citeqa eval --fit: error: {error}", file=sys.stderr)
        return 2
    for rows, path in ((questions, questions_file), (claims, claims_file)):
        if len(rows) < 2 * folds:
            print(
                f'citeqa eval --fit: error: {path} has {len(rows)} rows marked "split": '
                f'"train"; the fit needs at least {2 * folds} (it never reads the test split)',
                file=sys.stderr,
            )
            return 2
    engine = Engine.from_settings(settings)
    text, provenance = fit(
        engine,
        questions,
        claims,
        (questions_file, claims_file),
        folds=folds,
        progress=not quiet,
        quotes=quotes,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    reader, claims_fit = provenance["reader"], provenance["claims"]
    scorer = reader["candidate_scorer"]
    print(
        f"reader, held out ({folds}-fold on the train split): the best candidate right "
        f"{scorer['answer_accuracy_cross_validated']:.3f} of answerable questions, token F1 "
        f"{scorer['f1_cross_validated']:.3f}; accuracy with abstention "
        f"{reader['abstention']['accuracy_cross_validated']:.3f}; confidence ECE "
        f"{reader['confidence']['ece_cross_validated']}\n"
        f"claims: label accuracy {claims_fit['label_accuracy_train']:.3f} on the train split; "
        f"objective (accuracy less wrong supports) {claims_fit['objective_train']:.3f}, "
        f"{claims_fit['objective_cross_validated']:.3f} held out\n"
        f"wrote {out}"
    )
    return 0


# ------------------------------------------------------------------------------ bench


@dataclass(frozen=True)
class BenchOptions:
    """What ``citeqa bench`` measures (``service.lab.bench.run_bench``'s parameters)."""

    questions_file: Path
    requests: int
    workers: int
    clients: Sequence[int]
    ingest: bool = True
    scale: Sequence[int] = ()
    scale_dir: Path | None = None
    stores: Sequence[str] = ()
    progress: bool = True


def bench_command(settings: Settings, options: BenchOptions, *, out: Path, command: str) -> int:
    """``citeqa bench``: run the suite, write ``bench.json``, ``bench.md`` and ``bench.png``
    into ``out`` and print the summary. ``command`` is the command line the report records."""
    if missing_extra("citeqa bench", CHARTS):
        return 2
    if "milvus" in options.stores and missing_extra(
        "citeqa bench --stores milvus", MILVUS, "milvus"
    ):
        return 2
    from service.lab.bench import run_bench, scale_available

    if options.scale and not scale_available():  # fail before minutes of measuring
        print("citeqa bench: error: --scale needs service/lab/scale/", file=sys.stderr)
        return 2
    from service.lab.bench_report import markdown, write

    report = run_bench(
        settings,
        options.questions_file,
        requests=options.requests,
        workers=options.workers,
        clients=options.clients,
        ingest=options.ingest,
        scale=options.scale,
        scale_dir=options.scale_dir,
        stores=options.stores,
        progress=options.progress,
        command=command,
    )
    written = write(report, out)
    print(markdown(report, chart=None))
    print(f"\nwritten: {', '.join(map(str, written))}")
    return 0


# ------------------------------------------------------------------------------ load


@dataclass(frozen=True)
class LoadOptions:
    """What ``citeqa load`` sends (``service.lab.load.load_suite``'s parameters)."""

    clients: Sequence[int]
    seconds: float
    questions: Path
    workers: int
    claims: Path | None = None
    invalid_share: float = 0.0
    check_share: float = 0.0
    sample_every: float = 10.0
    warmup_seconds: float = 0.0
    name: str = "load"  # the report's file names: load.json and load.md, or soak.*


def load_command(settings: Settings, options: LoadOptions, *, out: Path) -> int:
    """``citeqa load``: build the index if the corpus changed, run the load suite, write
    ``<name>.json`` and ``<name>.md`` into ``out`` and print the markdown. Exit status 1 on
    any failed request, or on RSS growth of 5% or more after a soak's warm-up."""
    if missing_extra("citeqa load", LOCUST):
        return 2
    from service.index import build_index
    from service.lab.load import load_suite

    build_index(settings, progress=False)  # serve what the corpus holds now
    results, growth = load_suite(
        settings,
        clients=options.clients,
        seconds=options.seconds,
        questions=options.questions,
        claims=options.claims,
        out_dir=out,
        workers=options.workers,
        invalid_share=options.invalid_share,
        check_share=options.check_share,
        sample_every=options.sample_every,
        warmup_seconds=options.warmup_seconds,
        name=options.name,
    )
    print((out / f"{options.name}.md").read_text(encoding="utf-8"))
    print(f"written to {out}/{options.name}.json and {options.name}.md")
    failed = any(r.failures for r in results) or (growth is not None and growth >= 0.05)
    return 1 if failed else 0
