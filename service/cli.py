"""The ``citeqa`` command (also ``python -m service``).

One small handler per command. The service's commands (build, add, remove, search, ask,
verify, serve) run here; the lab's (eval, bench, load) resolve their options here and run in
``service.lab.commands``, imported only when one of them runs, so ``citeqa --help`` and the
service never load the lab or its extra.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import re
import sys
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service import __version__
from service.config import Settings, export_to_workers
from service.errors import CiteqaError, InputError, VectorStoreError

DEFAULT_QUESTIONS = Path("eval/questions.jsonl")
PACKAGED_TUNED = Path("service/tuned.json")  # the tuned constants the package ships
DEFAULT_CLAIMS = Path("eval/claims.jsonl")
DEFAULT_FOLLOWUPS = Path("eval/followups.jsonl")
DEFAULT_QUOTES = Path("eval/quotes.jsonl")
REPORTS = Path("eval/reports")  # the generated reports; `make reports` rewrites them
EVAL_REPORT = REPORTS / "eval.md"  # its charts go in eval/reports/eval/
BENCH_OUT = REPORTS / "bench"
LOAD_OUT = REPORTS / "load"

__all__ = ["check_workers", "main"]

FUSIONS = ["competent_zscore", "competent_rrf", "rrf", "minmax"]
STORES = ["faiss", "milvus"]  # service.lab.stores.STORES, without importing it for --help


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for option in ("corpus_dir", "index_dir", "fusion"):
        value = getattr(args, option, None)
        if value is not None:
            overrides[option] = value
    return Settings(**overrides)


def _build(args: argparse.Namespace) -> int:
    from service.index import build_index
    from service.index.live import write_lock

    settings = _settings(args)
    with write_lock(settings):  # not while a live change (or another build) publishes
        result = build_index(settings, force=args.force, progress=not args.quiet)
    if result.built:
        print(
            f"built {result.path} in {result.seconds:.1f} s: "
            f"{result.documents} documents, {result.chunks} chunks "
            f"(sentences annotated in {result.annotation_seconds:.1f} s)"
        )
    else:
        print(f"index is up to date: {result.path} (use --force to rebuild)")
    return 0


def _backend(args: argparse.Namespace) -> Any:
    """The running service of ``--server`` / ``CITEQA_SERVER``, else the local engine."""
    from service.server.client import backend

    settings = _settings(args)
    if getattr(args, "server", None):
        settings = settings.model_copy(update={"server": args.server})
    return backend(settings)


def _filters(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--doc``, ``--lang``, ``--from``, ``--to`` as the API's ``filters``."""
    filters = {
        "doc_ids": args.doc or None,
        "languages": args.lang or None,
        "published_from": args.date_from,
        "published_to": args.date_to,
    }
    return {key: value for key, value in filters.items() if value} or None


def _inputs(args: argparse.Namespace, name: str) -> list[str]:
    """The one question or claim of the command line, or each line of ``--file``."""
    from service.engine import clean_question

    if args.file is None:
        if getattr(args, name) is None:
            raise InputError(name, f"give a {name}, or --file with one {name} a line")
        return [clean_question(getattr(args, name), name)]
    if getattr(args, name) is not None:
        raise InputError(name, f"give a {name} or --file, not both")
    try:
        lines = args.file.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError("--file", f"cannot read {args.file}: {error.strerror}") from error
    rows = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise InputError("--file", f"{args.file} holds no {name} (one a line; # starts a comment)")
    return [clean_question(row, name) for row in rows]


def _each(items: list[str], quiet: bool, label: str) -> Any:
    """``items``, with a progress bar on standard error for a batch."""
    if len(items) == 1:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=label, unit=label.split()[-1], file=sys.stderr, disable=quiet)


def _search(args: argparse.Namespace) -> int:
    from service.engine import clean_question

    query = clean_question(args.query, "query")  # refuse bad input before loading models
    body = _backend(args).search(query, args.k, _filters(args))
    if args.json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    _print_passages(body["hits"])
    return 0


def _source(row: dict[str, Any]) -> str:
    """Title · publisher · date, each or "not stated"."""
    parts = (row.get("title"), row.get("publisher") or row.get("source"), row.get("published"))
    return " · ".join(part or "not stated" for part in parts)


def _print_passages(hits: Sequence[dict[str, Any]]) -> None:
    if not hits:
        print("no passages found")
    for hit in hits:
        print(f"{hit['rank']}. {_source(hit)}  ({hit['language']}, score {hit['score']:.4f})")
        snippet = " ".join(hit["text"].split())
        print(textwrap.indent(textwrap.shorten(snippet, 300, placeholder=" …"), "   "))
        print(f"   {hit['url']}")


@dataclass(frozen=True)
class _Batch:
    """How one of ask, verify and cite reads its inputs and shows what came back."""

    field: str  # the request's field: question, claim, quote
    label: str  # the progress bar's
    header: tuple[str, ...]  # the --file table's columns
    row: Callable[[dict[str, Any]], tuple[str, ...]]
    show: Callable[[dict[str, Any]], None]  # one body, for a person


def _run_batch(args: argparse.Namespace, batch: _Batch, send: Callable[[str], Any]) -> int:
    """Each input (the command line's, or each line of ``--file``) sent to the backend's
    ``send``; the bodies printed as JSON, a table (``--file``) or for a person."""
    inputs = _inputs(args, batch.field)  # refuse bad input before loading the models
    bodies = [send(text) for text in _each(inputs, args.quiet, batch.label)]
    if args.json:
        for body in bodies:
            print(json.dumps(body, ensure_ascii=False, indent=None if args.file else 2))
    elif args.file:
        _table(batch.header, [batch.row(body) for body in bodies])
    else:
        batch.show(bodies[0])
    return 0


def _ask(args: argparse.Namespace) -> int:
    backend, filters = _backend(args), _filters(args)
    header = ("question", "answer", "confidence", "source")
    batch = _Batch("question", "asking questions", header, _answer_row, _print_answer)
    return _run_batch(args, batch, lambda q: backend.ask(q, args.k, filters))


def _verify(args: argparse.Namespace) -> int:
    backend = _backend(args)
    header = ("claim", "verdict", "confidence", "evidence")
    batch = _Batch("claim", "checking claims", header, _verdict_row, _print_check)
    return _run_batch(args, batch, lambda c: backend.verify(c, args.k))


def _cite(args: argparse.Namespace) -> int:
    backend = _backend(args)
    header = ("quote", "match", "similarity", "source", "differences")
    batch = _Batch("quote", "tracing quotes", header, _cite_row, _print_cite)
    return _run_batch(args, batch, lambda q: backend.cite(q, args.k))


def _answer_row(body: dict[str, Any]) -> tuple[str, ...]:
    answer = body["answer"]
    if answer is None:
        return (body["question"], "(no answer)", "", body["abstain_reason"] or "")
    citation = answer["citation"]
    return (body["question"], answer["text"], f"{answer['confidence']:.2f}", citation["url"])


def _print_answer(body: dict[str, Any]) -> None:
    if body.get("assumed_subject"):
        print(f"(taken as a question about «{body['assumed_subject']}»)")
    answer = body["answer"]
    if answer is None:
        print(f"no answer: {body['abstain_reason']}")
    else:
        citation = answer["citation"]
        start = citation["char_start"] - answer["sentence_start"]
        end = citation["char_end"] - answer["sentence_start"]
        sentence = answer["sentence"]
        marked = f"{sentence[:start]}«{sentence[start:end]}»{sentence[end:]}"
        print(f"answer: {answer['text']}")
        kind, language = answer["answer_type"], answer["language"]
        print(f"   {kind}, {language}, confidence {answer['confidence']:.2f}")
        print(textwrap.indent(textwrap.fill(" ".join(marked.split()), 96), "   "))
        print(f"   {_source(citation)}")
        print(f"   {citation['url']}")
    print("\npassages:")
    _print_passages(body["passages"])


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A tab-separated table: one row a line, cells on one line each."""
    print("\t".join(header))
    for row in rows:
        print("\t".join(" ".join(str(cell).split()) for cell in row))


def _add(args: argparse.Namespace) -> int:
    from service.index.live import add_files

    result = add_files(_settings(args), args.paths)
    print(f"published {result.path.name}: {result.documents} documents, {result.chunks} chunks")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from service.index.live import remove_documents

    result = remove_documents(_settings(args), args.doc_ids)
    print(f"published {result.path.name}: {result.documents} documents, {result.chunks} chunks")
    return 0


def _cite_row(body: dict[str, Any]) -> tuple[str, ...]:
    if not body["matches"]:
        return (body["quote"], "none", "", "", "")
    best = body["matches"][0]
    changed = "; ".join(_difference(d) for d in best["differences"])
    return (body["quote"], best["match"], f"{best['similarity']:.2f}", best["url"], changed)


def _difference(d: dict[str, Any]) -> str:
    kind = f" ({d['type']})" if d["type"] else ""
    return f"{d['operation']}{kind}: «{d['quote_text']}» / «{d['source_text']}»"


def _print_cite(body: dict[str, Any]) -> None:
    if not body["matches"]:
        print("no source says this (match: none)")
    for m in body["matches"]:
        print(f"{m['match']} (similarity {m['similarity']:.2f}): {_source(m)}")
        print(textwrap.indent(textwrap.fill(" ".join(m["source_text"].split()), 96), "   "))
        for d in m["differences"]:
            print(f"   {_difference(d)}")
        print(f"   {m['doc_id']} [{m['char_start']}:{m['char_end']}]  {m['url']}")


def _verdict_row(body: dict[str, Any]) -> tuple[str, ...]:
    evidence = body["evidence"]
    deciding = evidence[0]["citation"]["url"] if evidence and body["verdict"] != "not_found" else ""
    return (body["claim"], body["verdict"], f"{body['confidence']:.2f}", deciding)


def _print_check(body: dict[str, Any]) -> None:
    print(f"verdict: {body['verdict']} (confidence {body['confidence']:.2f})")
    for evidence in body["evidence"]:
        c = evidence["citation"]
        print(f"\n[{evidence['stance']}] {_source(c)}")
        print(textwrap.indent(textwrap.fill(" ".join(evidence["quote"].split()), 96), "   "))
        for m in evidence["mismatches"]:
            claimed, found = m["claim_text"], m["evidence_text"]
            print(f"   {m['kind']}: the claim says «{claimed}», the source «{found}»")
        print(f"   {c['url']}")


def _eval(args: argparse.Namespace) -> int:
    from service.lab.commands import evaluate_command

    # No file named: the defaults (the follow-up pairs when that file exists). Some
    # named: only those.
    named = bool(args.questions or args.claims or args.followups or args.quotes)
    questions = args.questions or (None if named else DEFAULT_QUESTIONS)
    claims = args.claims or (None if named else DEFAULT_CLAIMS)
    followups = args.followups or (
        DEFAULT_FOLLOWUPS if not named and DEFAULT_FOLLOWUPS.is_file() else None
    )
    quotes = args.quotes or (DEFAULT_QUOTES if not named and DEFAULT_QUOTES.is_file() else None)
    if args.fit is not None:
        from service.lab.commands import fit_command

        return fit_command(
            _settings(args),
            questions_file=args.questions or DEFAULT_QUESTIONS,
            claims_file=args.claims or DEFAULT_CLAIMS,
            out=args.fit,
            folds=args.folds,
            quiet=args.quiet,
            quotes_file=args.quotes or (DEFAULT_QUOTES if DEFAULT_QUOTES.is_file() else None),
        )
    return evaluate_command(
        _settings(args),
        questions_file=questions,
        claims_file=claims,
        followups_file=followups,
        quotes_file=quotes,
        report_path=args.report,
        fusions=args.compare_fusion or (),
        as_json=args.json,
        quiet=args.quiet,
    )


def _bench_line(args: argparse.Namespace, workers: int) -> str:
    """The command line the bench report records: every option that shapes the figures,
    the worker count resolved."""
    command = [
        "citeqa bench", f"--requests {args.requests}", f"--workers {workers}",
        "--clients " + " ".join(map(str, args.clients)), f"--out {args.out}",
    ]  # fmt: skip
    command += ["--no-ingest"] if args.no_ingest else []
    command += ["--scale " + " ".join(map(str, args.scale))] if args.scale else []
    command += ["--stores " + " ".join(args.stores)] if args.stores else []
    command += [f"--scale-dir {args.scale_dir}"] if args.scale_dir else []
    command += [f"--questions {args.questions}"] if args.questions != DEFAULT_QUESTIONS else []
    return " ".join(command)


def _bench(args: argparse.Namespace) -> int:
    if args.stores and not args.scale:
        print("citeqa bench: error: --stores compares stores at --scale N chunks", file=sys.stderr)
        return 2
    if args.requests < 1 or min(args.clients) < 1 or min(args.scale or [1]) < 1:
        print("citeqa bench: error: counts must be at least 1", file=sys.stderr)
        return 2
    settings = _settings(args)
    workers = args.workers or settings.workers
    check_workers(settings, workers)  # before minutes of measuring
    from service.lab.commands import BenchOptions, bench_command

    options = BenchOptions(
        questions_file=args.questions,
        requests=args.requests,
        workers=workers,
        clients=args.clients,
        ingest=not args.no_ingest,
        scale=args.scale or (),
        scale_dir=args.scale_dir,
        stores=args.stores or (),
        progress=not args.quiet,
    )
    return bench_command(settings, options, out=args.out, command=_bench_line(args, workers))


def _load(args: argparse.Namespace) -> int:
    settings = _settings(args)
    workers = args.workers or settings.workers
    check_workers(settings, workers)
    from service.lab.commands import LoadOptions, load_command

    soak = args.soak is not None
    seconds = args.soak if soak else args.seconds
    invalid = args.invalid_share if args.invalid_share is not None else (0.3 if soak else 0.0)
    options = LoadOptions(
        clients=[8] if soak and not args.clients else (args.clients or [8, 32]),
        seconds=seconds,
        questions=args.questions,
        workers=workers,
        claims=DEFAULT_CLAIMS if soak and DEFAULT_CLAIMS.is_file() else None,
        invalid_share=invalid,
        check_share=0.05 if soak else 0.0,
        sample_every=args.sample_every,
        warmup_seconds=min(120.0, seconds / 5) if soak else 0.0,
        name="soak" if soak else "load",
    )
    return load_command(settings, options, out=args.out)


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse more than one server worker on Milvus Lite, which one process at a time may
    open (a Milvus server takes any number)."""
    if workers > 1 and settings.milvus_lite():
        where = settings.milvus_uri or "each index generation (no CITEQA_MILVUS_URI)"
        raise VectorStoreError(
            f"the dense vectors are in Milvus Lite ({where}), which one process at a time "
            f"may open, and {workers} workers would each open it. Serve with --workers 1 "
            "(CITEQA_WORKERS=1), or run a Milvus server and set CITEQA_MILVUS_URI to it "
            "(http://host:19530), or use CITEQA_DENSE_STORE=faiss."
        )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.index.recover import prepare_to_serve
    from service.server.app import create_app, server_options

    settings = _settings(args)
    workers = args.workers or settings.workers
    check_workers(settings, workers)
    # a missing or stale index is a clear error, not a traceback; a damaged one is passed
    # over for the last good one; what a crash left behind is cleaned up and published
    prepared = prepare_to_serve(settings)
    if prepared.warning:
        print(f"warning: {prepared.warning}", file=sys.stderr)
    host = args.host or settings.host
    port = args.port or settings.port
    if workers == 1:
        uvicorn.run(
            create_app(settings), host=host, port=port, log_level="info", **server_options(settings)
        )
        return 0
    # Each worker process imports the app itself and reads the settings from the
    # environment, so the command line's choices travel there.
    export_to_workers(settings)
    uvicorn.run(
        "service.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        **server_options(settings),
    )
    return 0


_Commands = Any  # argparse's sub-parser action (private in typeshed)


def _command(commands: _Commands, name: str, help_text: str) -> argparse.ArgumentParser:
    """A sub-command with the options every command takes."""
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    sub.add_argument("--corpus", dest="corpus_dir", type=Path, help="corpus folder")
    sub.add_argument("--index", dest="index_dir", type=Path, help="index folder")
    return sub


def _add_build(commands: _Commands) -> None:
    build = _command(
        commands, "build", "Build the indexes (skipped when corpus and settings are unchanged)."
    )
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.set_defaults(handler=_build)


def _add_live_changes(commands: _Commands) -> None:
    add = _command(
        commands,
        "add",
        "Add (or replace) documents while the service runs: copies the files into the corpus "
        "and publishes a new index generation, encoding only new text.",
    )
    add.add_argument("paths", nargs="+", type=Path, help=".txt or .md files")
    add.set_defaults(handler=_add)
    remove = _command(
        commands,
        "remove",
        "Remove documents by id (the file name without suffix) and publish the index "
        "without them; their citation links then answer 410 Gone.",
    )
    remove.add_argument("doc_ids", nargs="+", help="document ids")
    remove.set_defaults(handler=_remove)


def _add_search_and_ask(commands: _Commands) -> None:
    search = _command(commands, "search", "Print the ranked passages for a query.")
    search.add_argument("query", help="the question or keywords, in any language")
    search.add_argument("-k", type=int, default=5, help="how many passages (top_k, default 5)")
    search.add_argument("--json", action="store_true", help="print the JSON of GET /search")
    search.add_argument("--fusion", choices=FUSIONS, help="override the fusion (local only)")
    _add_filters(search)
    _add_server(search)
    search.set_defaults(handler=_search)
    ask = _command(
        commands, "ask", "Answer a question from the corpus, with its quote and citation."
    )
    ask.add_argument("question", nargs="?", help="the question, in any language")
    ask.add_argument("-k", type=int, default=5, help="how many passages (top_k, default 5)")
    _add_batch(ask, "POST /ask", "ask")
    _add_filters(ask)
    ask.set_defaults(handler=_ask)


def _add_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--doc", action="append", metavar="DOC_ID", help="only this document (repeatable)"
    )
    command.add_argument(
        "--lang", action="append", metavar="LANG",
        help="only passages in this language: en, zh-Hans, zh-Hant, ja, ko (repeatable)",
    )  # fmt: skip
    command.add_argument(
        "--from", dest="date_from", metavar="YYYY-MM-DD", help="published on or after"
    )
    command.add_argument(
        "--to", dest="date_to", metavar="YYYY-MM-DD", help="published on or before"
    )


def _add_batch(command: argparse.ArgumentParser, endpoint: str, verb: str) -> None:
    """What ask, verify and cite share: --json, --file, --quiet and --server."""
    command.add_argument("--json", action="store_true", help=f"print the JSON body of {endpoint}")
    command.add_argument(
        "--file", type=Path, help=f"{verb} each line of FILE; print a table or JSON lines"
    )
    command.add_argument("--quiet", action="store_true", help="no progress bar with --file")
    _add_server(command)


def _add_server(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--server", metavar="URL",
        help="send to the citeqa service at URL "
        "(default CITEQA_SERVER; unset: load the models here)",
    )  # fmt: skip


def _add_eval(commands: _Commands) -> None:
    evaluate = _command(
        commands,
        "eval",
        "Run the pipeline and its one-retriever baselines on a question file; print "
        "retrieval, answer and abstention metrics per system and category, and the claim "
        "check's accuracy on a claims file.",
    )
    evaluate.add_argument(
        "--questions",
        type=Path,
        help="JSON-lines file of {id, question, answers, doc_id, category} "
        f"(default {DEFAULT_QUESTIONS} when --claims is not given)",
    )
    evaluate.add_argument(
        "--claims",
        type=Path,
        help="JSON-lines file of {id, claim, label, doc_id} "
        f"(default {DEFAULT_CLAIMS} when --questions is not given)",
    )
    evaluate.add_argument(
        "--followups",
        type=Path,
        help="JSON-lines file of {id, split, first, followup, answers, doc_id, subject}: "
        "each follow-up asked after its first question, with and without that history "
        f"(default {DEFAULT_FOLLOWUPS} when it exists and no other file is named)",
    )
    evaluate.add_argument(
        "--quotes",
        type=Path,
        help="JSON-lines file of {id, split, kind, quote, doc_id, char_start, char_end, "
        "changed}: each quote traced by POST /cite "
        f"(default {DEFAULT_QUOTES} when it exists and no other file is named)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument(
        "--report",
        type=Path,
        nargs="?",
        const=EVAL_REPORT,
        help="also write a markdown report with PNG charts in a folder beside it "
        f"(default {EVAL_REPORT}; needs the lab extra)",
    )
    evaluate.add_argument("--quiet", action="store_true", help="no progress messages")
    evaluate.add_argument(
        "--fit",
        type=Path,
        nargs="?",
        const=PACKAGED_TUNED,
        help="instead of evaluating, fit the reader's and the claim check's constants on "
        "the train split of --questions and --claims (cross-validated; the test split is "
        f"never read) and write them to this file (default {PACKAGED_TUNED}, the one the "
        "service reads unless CITEQA_TUNED_FILE names another)",
    )
    evaluate.add_argument(
        "--folds", type=int, default=5, help="cross-validation folds of --fit (default 5)"
    )
    evaluate.add_argument(
        "--compare-fusion",
        nargs="*",
        choices=FUSIONS,
        help="also run the hybrid with these fusions, side by side",
    )
    evaluate.set_defaults(handler=_eval)


def _add_verify(commands: _Commands) -> None:
    verify = _command(
        commands, "verify", "Check a claim: supported, contradicted or not found, with evidence."
    )
    verify.add_argument("claim", nargs="?", help="the claim, in any language")
    verify.add_argument(
        "-k", type=int, default=5, help="how many evidence sentences (top_k, default 5)"
    )
    _add_batch(verify, "POST /verify", "check")
    verify.set_defaults(handler=_verify)


def _add_cite(commands: _Commands) -> None:
    cite = _command(
        commands, "cite", "Trace a quote to its source: the exact span, and what differs."
    )
    cite.add_argument("quote", nargs="?", help="the quote, in any language")
    cite.add_argument("-k", type=int, default=3, help="how many matches (top_k, default 3)")
    _add_batch(cite, "POST /cite", "trace")
    cite.set_defaults(handler=_cite)


def _add_bench(commands: _Commands) -> None:
    bench = _command(
        commands,
        "bench",
        "Benchmark suite: /ask per stage in-process and over HTTP at several concurrencies, "
        "ingest rates, and (--scale) synthetic corpora; writes JSON, markdown and a chart "
        "(needs the lab extra).",
    )
    bench.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="question source")
    bench.add_argument("--requests", type=int, default=400, help="requests per measurement")
    bench.add_argument(
        "--workers", type=int, help="server worker processes (default: one per core)"
    )
    bench.add_argument(
        "--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrencies to measure"
    )
    bench.add_argument("--no-ingest", action="store_true", help="skip the ingest measurement")
    bench.add_argument(
        "--scale", type=int, nargs="+", metavar="N", help="also measure corpora of N chunks"
    )
    bench.add_argument(
        "--stores",
        nargs="+",
        choices=STORES,
        metavar="STORE",
        help="with --scale: instead of the full scale build, put the same N synthetic chunks' "
        "multilingual vectors into each vector store and compare them side by side (build "
        "seconds, bytes on disk, query p50/p99, recall@10, RSS): faiss (the index the "
        "settings pick for N) and milvus (Milvus Lite: FLAT, HNSW and IVF_FLAT; it has no "
        "IVF_PQ; needs the milvus extra); e.g. --scale 100000 --stores faiss milvus",
    )
    bench.add_argument(
        "--scale-dir",
        type=Path,
        help="where --scale builds and caches vectors (default: citeqa-scale in the temp dir)",
    )
    bench.add_argument("--quiet", action="store_true", help="no progress messages")
    bench.add_argument(
        "--out", type=Path, default=BENCH_OUT, help=f"output folder (default {BENCH_OUT})"
    )
    bench.set_defaults(handler=_bench)


def _add_load(commands: _Commands) -> None:
    load = _command(
        commands,
        "load",
        "Load test over loopback with locust: requests/s, p50/p99 and errors at each client "
        "count; --soak runs long with mixed valid and invalid input and checks memory "
        "(needs the lab extra).",
    )
    load.add_argument(
        "--clients", type=int, nargs="+", help="concurrent clients per run (default 8 32)"
    )
    load.add_argument("--seconds", type=float, default=60, help="length of each run (default 60)")
    load.add_argument(
        "--soak",
        type=float,
        nargs="?",
        const=1800.0,
        metavar="SECONDS",
        help="soak instead: 8 clients for SECONDS (default 1800), 30%% invalid input, "
        "citations checked, server RSS sampled; fails on any error or on RSS growth >= 5%% "
        "after warm-up; writes soak.json and soak.md",
    )
    load.add_argument(
        "--invalid-share", type=float, help="share of malformed or hostile requests (0 to 1)"
    )
    load.add_argument(
        "--sample-every", type=float, default=10.0, help="seconds between RSS samples"
    )
    load.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="question source")
    load.add_argument("--workers", type=int, help="server worker processes (default: one per core)")
    load.add_argument(
        "--out", type=Path, default=LOAD_OUT, help=f"output folder (default {LOAD_OUT})"
    )
    load.set_defaults(handler=_load)


def _feedback(args: argparse.Namespace) -> int:
    from service.feedback import FeedbackLog

    settings = _settings(args)
    folder = args.feedback_dir or settings.feedback_folder()
    log = FeedbackLog(folder, settings.feedback_max_day_bytes)
    say = sys.stderr if args.json else sys.stdout  # JSON lines on stdout stay parseable
    if not folder.is_dir():
        print(
            f"no feedback: {folder} does not exist (POST /feedback creates it with the first "
            "report; CITEQA_FEEDBACK_DIR or --dir names another folder)",
            file=say,
        )
        return 0
    records = itertools.islice(log.records(since=args.since), args.limit)
    shown = 0
    for record in records:
        if args.json:
            print(json.dumps(record.to_json(), ensure_ascii=False))
        else:
            if shown == 0:
                print(_feedback_row("received (UTC)", "kind", "question", "note"))
            print(
                _feedback_row(
                    record.received_at.strftime("%Y-%m-%d %H:%M"),
                    record.entry.kind,
                    record.entry.question,
                    record.entry.note,
                )
            )
        shown += 1
    if shown == 0:
        since = f" since {args.since.isoformat()}" if args.since else ""
        print(f"no feedback{since} in {folder}", file=say)
    return 0


_FEEDBACK_COLUMNS = (16, 6, 40, 60)  # received, kind, question, note (terminal cells)


def _feedback_row(*cells: str) -> str:
    return "  ".join(
        _fit(cell, width) for cell, width in zip(cells, _FEEDBACK_COLUMNS, strict=True)
    ).rstrip()


def _fit(text: str, width: int) -> str:
    """``text`` on one line in ``width`` terminal cells (a CJK character takes two),
    shortened with an ellipsis, padded with spaces."""
    flat = " ".join(text.split())
    if _cells(flat) > width:
        kept, used = "", 0
        for ch in flat:
            used += _cells(ch)
            if used > width - 1:
                break
            kept += ch
        flat = kept + "…"
    return flat + " " * (width - _cells(flat))


def _cells(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _day(value: str) -> dt.date:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-06-01"
    )


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a count; give a whole number from 1")
    return int(value)


def _add_feedback(commands: _Commands) -> None:
    feedback = _command(
        commands,
        "feedback",
        "List the readers' reports of wrong answers (POST /feedback), newest first.",
    )
    feedback.add_argument("--json", action="store_true", help="print JSON lines, one a report")
    feedback.add_argument(
        "--since",
        type=_day,
        metavar="YYYY-MM-DD",
        help="only reports received that UTC day or later",
    )
    feedback.add_argument("--limit", type=_positive, metavar="N", help="at most N reports")
    feedback.add_argument(
        "--dir",
        dest="feedback_dir",
        type=Path,
        help="the feedback folder (default CITEQA_FEEDBACK_DIR, or feedback/ beside the index)",
    )
    feedback.set_defaults(handler=_feedback)


def _add_serve(commands: _Commands) -> None:
    serve = _command(commands, "serve", "Start the HTTP service.")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes, each with its own models (default: one per core, CITEQA_WORKERS)",
    )
    serve.set_defaults(handler=_serve)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citeqa",
        description="Cited, extractive question answering over a multilingual news corpus.",
        epilog="Settings can also come from CITEQA_* environment variables (see README). "
        "The lab's commands (eval --report, bench, load) need the lab extra: "
        "pip install -e '.[lab]'.",
    )
    parser.add_argument("--version", action="version", version=f"citeqa {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_build, _add_live_changes, _add_search_and_ask, _add_eval, _add_verify, _add_cite,
        _add_bench,
        _add_load, _add_serve, _add_feedback,
    ):  # fmt: skip
        add(commands)
    return parser


# The API's field names as the command line spells them.
_OPTIONS = {
    "top_k": "-k (top_k)",
    "filters.doc_ids": "--doc",
    "filters.languages": "--lang",
    "filters.published_from": "--from",
    "filters.published_to": "--to",
}


def _option(error: InputError) -> str:
    """An input error's message, naming the option to fix."""
    option = _OPTIONS.get(error.field)
    if option is None:
        return error.message
    return f"{option}: {error.message.replace('top_k', '-k')}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if getattr(args, "k", 1) < 1:
        print("citeqa: error: -k (top_k) must be at least 1", file=sys.stderr)
        return 2
    if (getattr(args, "workers", None) or 1) < 1:
        print("citeqa: error: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except InputError as error:
        print(f"citeqa: error: {_option(error)}", file=sys.stderr)
        return 2
    except CiteqaError as error:
        print(f"citeqa: error: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:  # a CITEQA_* setting the validators refuse
        for problem in error.errors():
            print(f"citeqa: error: {problem['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 2
