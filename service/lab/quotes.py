"""Citation retrieval measured: ``eval/quotes.jsonl``, and the fit of its two thresholds.

Each row is a quote written from the documents (verbatim, re-punctuated or in the other
script, truncated, lightly edited, with a value changed, translated, or found nowhere) with
its gold span. A trace is right when its best match overlaps the gold span by 80% of the
gold span (or, for a quote found nowhere, when it finds nothing); the match kind is right
when it says what the quote is (``KIND_OF``); the changed words are recalled when the
differences listed name them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.lab.evaluate import eval_rows
from service.text.language import fold

__all__ = [
    "NEAR_GRID",
    "OTHER_PER_RANKING_GRID",
    "TRANSLATED_GRID",
    "UNSTATED_GRID",
    "Quote",
    "QuoteOutcome",
    "load_quotes",
    "product_cite",
    "quote_metrics",
    "quote_score",
    "quotes_section",
    "trace_quotes",
]

# The match kind a quote of each written kind should get.
KIND_OF = {
    "exact": {"exact"},
    "normalised": {"normalised"},
    "truncated": {"exact", "normalised"},
    "near": {"near"},
    "altered": {"near"},
    "translated": {"translated"},
    "absent": {"none"},
}
NEAR_GRID = (0.7, 0.75, 0.8, 0.85, 0.9)
TRANSLATED_GRID = (0.3, 0.4, 0.5, 0.6, 0.7)
UNSTATED_GRID = (0.0, 0.15, 0.3, 0.5)
OTHER_PER_RANKING_GRID = (0, 4, 8)


@dataclass(frozen=True)
class Quote:
    id: str
    split: str
    kind: str
    quote: str
    doc_id: str | None
    char_start: int | None
    char_end: int | None
    changed: tuple[str, ...]


@dataclass(frozen=True)
class QuoteOutcome:
    quote: Quote
    match: str  # the best match's kind, or none
    span_right: bool
    kind_right: bool
    changed_found: int  # of quote.changed, how many the differences name


def load_quotes(path: Path) -> list[Quote]:
    """The quotes of a JSON lines file, checked as every evaluation file is
    (``eval_rows``), and each of a known kind; an error names the line."""
    rows = []
    for number, raw, split in eval_rows(path, "quotes", ("id", "kind", "quote")):
        if raw["kind"] not in KIND_OF:
            raise ValueError(f"{path}:{number}: 'kind' must be one of {', '.join(KIND_OF)}")
        rows.append(
            Quote(
                str(raw["id"]), split, raw["kind"], raw["quote"],
                raw.get("doc_id"), raw.get("char_start"), raw.get("char_end"),
                tuple(raw.get("changed") or ()),
            )
        )  # fmt: skip
    return rows


def product_cite(citer: Any) -> Callable[[str], dict[str, Any]]:
    """``citer`` (a ``service.cite.matcher.Citer``) answering as ``POST /cite`` does: the
    response body, for ``trace_quotes``."""
    from service.server.schemas import CiteResponse

    def cite(quote: str) -> dict[str, Any]:
        result = citer.cite(quote)
        return CiteResponse.from_result(result, citer.engine.documents, "").model_dump(mode="json")

    return cite


def _outcome(quote: Quote, body: dict[str, Any]) -> QuoteOutcome:
    best = body["matches"][0] if body["matches"] else None
    match = best["match"] if best else "none"
    if quote.doc_id is None:
        span_right = best is None
    else:
        assert quote.char_start is not None and quote.char_end is not None
        overlap = 0
        if best and best["doc_id"] == quote.doc_id:
            overlap = min(best["char_end"], quote.char_end) - max(
                best["char_start"], quote.char_start
            )
        span_right = overlap >= 0.8 * (quote.char_end - quote.char_start)
    listed = " ".join(
        f"{d['quote_text']} {d['source_text']}" for d in (best["differences"] if best else [])
    )
    found = sum(fold(word) in fold(listed) for word in quote.changed)
    return QuoteOutcome(quote, match, span_right, match in KIND_OF[quote.kind], found)


def trace_quotes(
    cite: Callable[[str], dict[str, Any]], quotes: Sequence[Quote]
) -> list[QuoteOutcome]:
    """Each quote traced (``cite`` returns the body of POST /cite)."""
    return [_outcome(q, cite(q.quote)) for q in quotes]


def _figures(outcomes: Sequence[QuoteOutcome]) -> dict[str, Any]:
    if not outcomes:
        return {"n": 0}
    changed = [o for o in outcomes if o.quote.kind in ("near", "altered") and o.quote.changed]
    absent = [o for o in outcomes if o.quote.kind == "absent"]
    return {
        "n": len(outcomes),
        "span_accuracy": round(float(np.mean([o.span_right for o in outcomes])), 4),
        "kind_accuracy": round(float(np.mean([o.kind_right for o in outcomes])), 4),
        "changed_recall": round(
            sum(o.changed_found for o in changed)
            / max(sum(len(o.quote.changed) for o in changed), 1),
            4,
        ),
        "false_matches_on_absent": sum(o.match != "none" for o in absent),
        "absent": len(absent),
    }


def quote_metrics(outcomes: Sequence[QuoteOutcome]) -> dict[str, Any]:
    """The figures overall, per split, and per split and written kind."""
    splits = sorted({o.quote.split for o in outcomes})
    by_split = {s: [o for o in outcomes if o.quote.split == s] for s in splits}
    return {
        "all": _figures(outcomes),
        "by_split": {s: _figures(rows) for s, rows in by_split.items()},
        "by_kind": {
            s: {k: _figures([o for o in rows if o.quote.kind == k]) for k in KIND_OF}
            for s, rows in by_split.items()
        },
    }


def quote_score(outcome: QuoteOutcome) -> float:
    """The fit's objective for one quote: the span found (or nothing, for an absent
    quote) and the kind right; a false match on an absent quote costs one."""
    if outcome.quote.kind == "absent":
        return 1.0 if outcome.match == "none" else -1.0
    return float(outcome.span_right) * (0.5 + 0.5 * float(outcome.kind_right))


def quotes_section(summary: dict[str, Any] | None, path: Path | None) -> list[str]:
    """The report's "Citation retrieval" section."""
    if not summary:
        return []
    lines = [
        "## Citation retrieval",
        "",
        f"`POST /cite` on the {summary['all']['n']} quotes of `{path}`. A trace is right when "
        "its best match covers 80% of the gold span (a quote found nowhere: no match). Targets "
        "on the test split: exact and normalised 100%, near and altered ≥ 0.95 with the change "
        "listed, translated ≥ 0.80, absent quotes `none` ≥ 0.95.",
        "",
        "| split | kind | quotes | span right | kind right | changed words listed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for split, kinds in summary["by_kind"].items():
        for kind, row in kinds.items():
            if row["n"]:
                lines.append(
                    f"| {split} | {kind} | {row['n']} | {row['span_accuracy']:.3f} | "
                    f"{row['kind_accuracy']:.3f} | {row['changed_recall']:.3f} |"
                )
    return [*lines, ""]
