"""Report: the evaluation as a markdown page with PNG charts (``citeqa eval --report``).

The page holds the targets and how far each is from being met on the test split, train and
test side by side, every metric per system and per category with a chart per split, the
calibration of the confidence (reliability table and ECE), the abstention trade-off, the
claim check per split, and the train questions the product gets wrong with what it
answered. The test split's misses are counted, not listed: a list of them would invite
fixing them one by one. Charts are written next to the page, in ``<stem>/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from service.lab.evaluate import METRICS, Outcome
from service.lab.quotes import quotes_section

__all__ = ["TARGETS", "write_report"]

SYSTEM_LABELS = {
    "bm25": "BM25 only",
    "dense": "MiniLM dense only",
    "multilingual": "USE-multilingual dense only",
    "e5": "multilingual-e5-small dense only",
    "bridge": "dictionary-bridged BM25 only",
    "rrf:bm25+e5": "RRF of BM25 and mE5 (a practitioner's baseline)",
    "hybrid": "hybrid (the product)",
}

# (metric, comparison, bound), from the evaluation issue.
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("hit@5", ">=", 0.95),
    ("answer_accuracy", ">=", 0.85),
    ("abstain_precision", ">=", 0.90),
    ("abstain_recall", ">=", 0.90),
    ("false_abstain_rate", "<=", 0.05),
)
CATEGORY_FLOOR = 0.75  # no category's hit@5 or answer accuracy below this


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _text(value: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(value.split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _label(system: str) -> str:
    return SYSTEM_LABELS.get(system, system)


def _targets(report: dict[str, Any]) -> list[str]:
    overall = report["overall"]
    rows = []
    for metric, comparison, bound in TARGETS:
        value = overall.get(metric)
        if value is None:
            rows.append((f"{metric} {comparison} {bound}", None, "not measured"))
            continue
        gap = bound - value if comparison == ">=" else value - bound
        verdict = "met" if gap <= 0 else f"**missed by {gap:.3f}**"
        rows.append((f"{metric} {comparison} {bound}", value, verdict))
    for metric in ("hit@5", "answer_accuracy"):
        for category, values in report["by_category"].items():
            value = values.get(metric)
            if value is not None and value < CATEGORY_FLOOR:
                rows.append(
                    (
                        f"{metric} of `{category}` >= {CATEGORY_FLOOR}",
                        value,
                        f"**missed by {CATEGORY_FLOOR - value:.3f}**",
                    )
                )
    low = [r for r in rows if r[0].startswith(("hit@5 of", "answer_accuracy of"))]
    if not low:
        rows.append(
            (f"every category's hit@5 and answer accuracy >= {CATEGORY_FLOOR}", None, "met")
        )
    return _table(("target", "product", "status"), rows)


def _scope(values: Mapping[str, Any], split: str | None) -> Mapping[str, Any]:
    """A system's ``{"overall", "by_category"}``: of one split, or of every question."""
    if split is None:
        return values
    return values["by_split"][split]


def _chart_by_category(report: dict[str, Any], path: Path, split: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(report["systems"])
    product = _scope(report["systems"]["hybrid"], split)
    categories = [
        c
        for c, values in product["by_category"].items()
        if values.get("hit@5") is not None  # unanswerable questions have neither measure
    ]
    figure, axes = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    width = 0.8 / len(systems)
    for axis, metric, title in (
        (axes[0], "hit@5", "hit@5 (a passage with a gold answer in the top 5)"),
        (axes[1], "answer_accuracy", "answer accuracy (the quoted span holds a gold answer)"),
    ):
        for i, system in enumerate(systems):
            rows = _scope(report["systems"][system], split)["by_category"]
            values = [rows[c].get(metric) or 0.0 for c in categories]
            positions = [x + (i - (len(systems) - 1) / 2) * width for x in range(len(categories))]
            axis.bar(positions, values, width, label=_label(system))
        axis.set_title(f"{split} split: {title}" if split else title, fontsize=11)
        axis.set_ylim(0, 1.05)
        axis.axhline(CATEGORY_FLOOR, color="grey", linewidth=0.8, linestyle="--")
        axis.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(categories)), categories, rotation=20)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncols=len(systems), fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _unit_square(axis: Any, xlabel: str, ylabel: str, title: str, *, legend: str) -> None:
    """Labels, title, legend and a grid for a chart of two shares (0 to 1 on both axes)."""
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_xlim(0, 1.02)
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(loc=legend)
    axis.set_title(title, fontsize=11)


def _chart_abstention(curve: Sequence[Mapping[str, float]], current: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floors = [p["min_confidence"] for p in curve]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    recall = [p["abstain_recall"] or 0.0 for p in curve]
    precision = [p["abstain_precision"] or 0.0 for p in curve]
    left.plot(recall, precision, marker=".", color="tab:blue")
    here = min(range(len(floors)), key=lambda i: abs(floors[i] - current))
    left.scatter([recall[here]], [precision[here]], color="tab:red", zorder=3, label="configured")
    _unit_square(
        left,
        "abstain recall (unanswerable questions abstained on)",
        "abstain precision (abstentions that were right)",
        "precision against recall as the floor rises",
        legend="lower left",
    )
    for key, label in (
        ("abstain_precision", "abstain precision"),
        ("abstain_recall", "abstain recall"),
        ("false_abstain_rate", "false abstain rate"),
        ("answer_accuracy", "answer accuracy"),
    ):
        right.plot(floors, [p[key] or 0.0 for p in curve], label=label)
    right.axvline(current, color="tab:red", linewidth=0.8, linestyle="--")
    right.set_xlabel("minimum confidence (CITEQA_MIN_CONFIDENCE)")
    right.set_ylim(0, 1.02)
    right.grid(alpha=0.3)
    right.legend(loc="center right", fontsize=9)
    right.set_title("every measure against the floor", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _calibration(report: dict[str, Any]) -> list[str]:
    """The reliability table of each split and its expected calibration error."""
    lines = []
    for split, values in report["by_split"].items():
        table = values["calibration"]
        lines += [
            f"**{split} split**: {table['answered']} answers, expected calibration error "
            f"{_cell(table['ece'])}.",
            "",
            *_table(
                ("confidence", "answers", "mean confidence", "share right"),
                [(b["bin"], b["n"], b["confidence"], b["accuracy"]) for b in table["table"]],
            ),
            "",
        ]
    return lines


def _chart_reliability(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--", label="calibrated")
    for split, values in report["by_split"].items():
        table = values["calibration"]["table"]
        axis.plot(
            [b["confidence"] for b in table],
            [b["accuracy"] for b in table],
            marker="o",
            label=f"{split} (ECE {_cell(values['calibration']['ece'])})",
        )
    _unit_square(
        axis,
        "confidence of the answer (bin mean)",
        "share of answers right",
        "reliability of the product's confidence",
        legend="upper left",
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _claims_section(
    summary: dict[str, Any] | None, checks: Sequence[Any], path: Path | None
) -> list[str]:
    """Label accuracy per split and label, the confusion matrix of the test split, the
    test split by language, crossing and kind of change, and the train claims it got wrong."""
    if not summary:
        return []
    splits = summary.get("by_split") or {}
    labels = list(summary["confusion"])
    lines = [
        "## Claim check",
        "",
        f"`POST /verify` on the {summary['n']} claims of `{path}`. Targets on the test split: "
        "label accuracy >= 0.85; no `supported` verdict on a contradicted or not_found claim; "
        "evidence recall >= 0.95; the mismatch names the changed value for >= 90% of the "
        "contradicted claims.",
        "",
        *_table(
            (
                "split",
                "claims",
                "label accuracy",
                *labels,
                "wrongly supported",
                "change named",
                "evidence recall",
                "ECE",
            ),
            [
                (
                    split,
                    part["overall"]["n"],
                    part["overall"]["label_accuracy"],
                    *(part["by_label"].get(label, {}).get("label_accuracy") for label in labels),
                    part["overall"].get("supported_wrongly"),
                    part["overall"].get("mismatch_named"),
                    part["overall"]["evidence_recall"],
                    part["overall"]["ece"],
                )
                for split, part in splits.items()
            ],
        ),
        "",
    ]
    test = splits.get("test")
    if test:
        confusion = test["overall"]["confusion"]
        false_support = test["overall"].get("supported_wrongly", 0)
        lines += [
            f"Test split, confusion matrix (rows: the label; columns: the verdict); "
            f"contradicted or not_found claims called supported: {false_support}.",
            "",
            *_table(("label", *labels), [(lab, *confusion[lab].values()) for lab in labels]),
            "",
            "Test split by the claim's language, by crossing languages, and by what a "
            "contradicted claim changed:",
            "",
            *_table(
                ("group", "claims", "label accuracy"),
                [
                    (name, row["n"], row["label_accuracy"])
                    for key in ("by_language", "by_crossing", "by_kind")
                    for name, row in test[key].items()
                ],
            ),
            "",
        ]
    wrong = [
        (c.id, c.label, check.verdict, _text(c.claim))
        for c, check in checks
        if c.label != check.verdict and c.split != "test"
    ]
    return [
        *lines,
        "Train claims with the wrong verdict (the test split's are counted above, not listed):",
        "",
        *_table(("id", "label", "verdict", "claim"), wrong),
        "",
    ]


def _followups_section(
    summary: dict[str, Any] | None, outcomes: Sequence[Any], path: Path | None
) -> list[str]:
    """Per split: how often the assumed subject is the gold one and how often the follow-up
    is answered with its history and alone; the train pairs it resolved wrong."""
    if not summary:
        return []
    rows = [
        (
            split,
            row["n"],
            row["resolution_accuracy"],
            row["answer_accuracy"],
            row["answer_accuracy_without_history"],
        )
        for split, row in summary["by_split"].items()
    ]
    wrong = [
        (o.pair.id, _text(o.pair.followup), o.pair.subject, o.with_history.assumed_subject)
        for o in outcomes
        if o.pair.split != "test" and not o.resolved_right
    ]
    return [
        "## Follow-up questions",
        "",
        f"The {summary['all']['n']} pairs of `{path}`: the first question asked, then the "
        'follow-up ("When was it founded?") with that turn as its `history` and, for '
        "comparison, alone. *Resolved*: the subject the service assumed names the pair's "
        "subject (either contains the other, folded); *answered*: the follow-up's span "
        "holds a gold answer.",
        "",
        *_table(("split", "pairs", "resolved", "answered with history", "answered alone"), rows),
        "",
        "Train pairs whose subject was not the one assumed (the test split's are only counted):",
        "",
        *_table(("id", "follow-up", "subject", "assumed"), wrong),
        "",
    ]


def _misses(outcomes: Sequence[Outcome]) -> list[str]:
    rows = []
    for o in outcomes:
        q = o.question
        answer = o.result.answer
        if q.split == "test" or (q.answerable and o.answer_right()):
            continue
        if not q.answerable and answer is None:
            continue
        if answer is None:
            what = f"abstained: {o.result.abstain_reason}"
        else:
            what = f"«{answer.text}» ({answer.citation.doc_id}, confidence {answer.confidence:.2f})"
        gold = " / ".join(q.answers) if q.answers else "(should abstain)"
        rows.append((q.id, q.category, _text(q.question), _text(gold), _text(what)))
    return _table(("id", "category", "question", "gold", "the product said"), rows)


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    """What the targets are judged on: the test split, or every question when unsplit."""
    return report["by_split"].get("test") or {
        "overall": report["overall"],
        "by_category": report["by_category"],
    }


def _intro(report: dict[str, Any], product: Sequence[Outcome], questions_file: Path) -> list[str]:
    splits = {s: v["overall"]["n"] for s, v in report["by_split"].items()}
    answerable = sum(o.question.answerable for o in product)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    counts = {c: v["n"] for c, v in report["by_category"].items()}
    return [
        "# Evaluation report",
        "",
        f"Generated by `citeqa eval --report` on {when} from `{questions_file}`: "
        f"{len(product)} questions ({answerable} answerable; "
        + ", ".join(f"{s} split {n}" for s, n in splits.items())
        + "), "
        + ", ".join(f"{c} {n}" for c, n in counts.items())
        + ". Every system runs the whole pipeline in one process on the same chunks: "
        "retrieve, fuse, then extract an answer or abstain. The baselines replace the "
        "product's fused retrieval with one retriever alone. Latency is one `ask`, the "
        "question encoded anew, on this machine.",
        "",
        "The tuned constants (`service/tuned.json`) are fitted on the train split only "
        "(`citeqa eval --fit`, cross-validated). The test split was written blind, from the "
        "documents alone, by a writer who saw neither the code, its output nor the train "
        "questions (`eval/README.md`). **The test split's figures are the ones to quote.**",
        "",
        "## Targets (test split)",
        "",
        *_targets(_headline(report)),
        "",
    ]


def _side_by_side(report: dict[str, Any]) -> list[str]:
    """The product's every metric on train and test, and test minus train."""
    splits = report["by_split"]
    if len(splits) < 2:
        return []
    gap = report.get("split_gap") or {}
    names = list(splits)
    shown = [m for m in METRICS if not m.startswith("latency")]
    rows = [(m, *(splits[s]["overall"].get(m) for s in names), gap.get(m)) for m in shown]
    categories = sorted({c for s in names for c in splits[s]["by_category"]})
    per_category = []
    for category in categories:
        cells: list[Any] = [category]
        for metric in ("hit@5", "answer_accuracy", "accuracy", "f1"):
            for split in names:
                cells.append(splits[split]["by_category"].get(category, {}).get(metric))
        per_category.append(cells)
    return [
        "## Train and test, side by side (the product)",
        "",
        *_table(("metric", *names, "test − train"), rows),
        "",
        *_table(
            (
                "category",
                *(f"{m} {s}" for m in ("hit@5", "answer acc.", "accuracy", "F1") for s in names),
            ),
            per_category,
        ),
        "",
    ]


def _systems(report: dict[str, Any], charts: Mapping[str, str]) -> list[str]:
    """Every metric of every system on each split, overall and then per category."""
    lines: list[str] = []
    for split in report["by_split"]:
        lines += [
            f"## Every system, {split} split",
            "",
            *_table(
                ("system", *METRICS),
                [
                    (_label(name), *(values["by_split"][split]["overall"].get(m) for m in METRICS))
                    for name, values in report["systems"].items()
                ],
            ),
            "",
            f"![{split} split: hit@5 and answer accuracy per category]({charts[split]})",
            "",
        ]
        for name, values in report["systems"].items():
            lines += [
                f"### {_label(name)}, {split} split, per category",
                "",
                *_table(
                    ("category", "n", *METRICS),
                    [
                        (category, row["n"], *(row.get(m) for m in METRICS))
                        for category, row in values["by_split"][split]["by_category"].items()
                    ],
                ),
                "",
            ]
    return lines


def _abstention(
    curve: Sequence[Mapping[str, float]], min_confidence: float, chart: str
) -> list[str]:
    """The trade-off as the confidence floor moves, at every tenth."""
    marks = [p for p in curve if round(p["min_confidence"] * 10, 6) % 1 == 0]
    measures = ("abstain_precision", "abstain_recall", "false_abstain_rate", "answer_accuracy")
    return [
        "## Abstention trade-off (test split)",
        "",
        "The product abstains when its fitted abstention classifier gives the question less "
        "than the fitted threshold's probability of being answerable (see the README). "
        "A confidence floor (`CITEQA_MIN_CONFIDENCE`, now "
        f"{min_confidence:.2f}) turns low-confidence answers into abstentions as well; this is "
        "what moving it does on the test split.",
        "",
        f"![abstention precision against recall]({chart})",
        "",
        *_table(
            ("min confidence", *(m.replace("_", " ") for m in measures)),
            [(f"{p['min_confidence']:.1f}", *(p[m] for m in measures)) for p in marks],
        ),
        "",
    ]


def write_report(
    path: Path,
    report: dict[str, Any],
    outcomes: Mapping[str, Sequence[Outcome]],
    curve: Sequence[Mapping[str, float]],
    *,
    questions_file: Path,
    min_confidence: float,
    claims: tuple[dict[str, Any] | None, Sequence[Any], Path | None] = (None, (), None),
    followups: tuple[dict[str, Any] | None, Sequence[Any], Path | None] = (None, (), None),
    quotes: tuple[dict[str, Any] | None, Path | None] = (None, None),
) -> list[Path]:
    """Write the page and its charts (in ``<stem>/`` beside it).

    Args:
        path: the markdown page to write.
        report, outcomes: what ``evaluate`` returned (``outcomes["hybrid"]`` is the product).
        curve: ``abstention_curve`` of the product (on the test split, when there is one).
        questions_file: the question file the report names.
        min_confidence: the configured confidence floor, marked on the trade-off.
        claims: the claim check's summary, its (claim, check) pairs and its file, if run.
        followups: the follow-up pairs' figures, their outcomes and their file, if run.
        quotes: the quotes' figures and their file, if traced.

    Returns:
        The page's path, then the charts'.
    """
    charts = path.parent / path.stem
    charts.mkdir(parents=True, exist_ok=True)
    for stale in charts.glob("*.png"):
        stale.unlink()  # a chart of a split that is gone must not linger
    written = [path]
    by_split_png = {}
    for split in report["by_split"]:
        png = charts / f"by_category_{split}.png"
        _chart_by_category(report, png, split)
        by_split_png[split] = f"{charts.name}/{png.name}"
        written.append(png)
    abstention_png = charts / "abstention.png"
    reliability_png = charts / "reliability.png"
    _chart_abstention(curve, min_confidence, abstention_png)
    _chart_reliability(report, reliability_png)
    written += [abstention_png, reliability_png]

    product = outcomes["hybrid"]
    lines = [
        *_intro(report, product, questions_file),
        *_side_by_side(report),
        "## Confidence calibration",
        "",
        "Of the product's answers, how often the span was right, by the confidence it gave "
        "(an answer to an unanswerable question counts as wrong), and the expected "
        "calibration error: the answers' mean distance between confidence and accuracy.",
        "",
        f"![reliability of the confidence]({charts.name}/{reliability_png.name})",
        "",
        *_calibration(report),
        *_abstention(curve, min_confidence, f"{charts.name}/{abstention_png.name}"),
        *_claims_section(*claims),
        *_followups_section(*followups),
        *quotes_section(*quotes),
        *_systems(report, by_split_png),
        "## Where the product is wrong (train split)",
        "",
        "Answerable train questions whose answer span holds no gold answer (or that it "
        "abstained on), and unanswerable train questions it answered. The test split's "
        "misses are only counted (above), so that nobody fixes them one by one.",
        "",
        *_misses(product),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return written
