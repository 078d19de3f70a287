"""Evaluate: the whole pipeline on a hand-written question set, per system and category.

A question file is JSON lines: ``{"id", "question", "answers": [...], "doc_id", "category"}``
(``doc_id`` null and ``answers`` empty where the corpus does not answer). A passage is
relevant to a question when it comes from ``doc_id`` and contains one of ``answers`` after
Unicode NFKC and whitespace folding.

Each system is a full ``ask`` (retrieve, fuse, extract an answer or abstain); the baselines
differ from the product only in their retriever. Metrics (binary relevance, ranks from 1):

- ``hit@k``: share of answerable questions with a relevant passage in the top k;
- ``mrr@10``: mean of 1/rank of the first relevant passage (0 beyond rank 10);
- ``ndcg@10``: DCG = sum of 1/log2(rank+1) over relevant passages in the top 10, divided by
  the DCG of the ideal ranking (all relevant passages of the corpus first);
- ``accuracy``: share of all questions handled right: a right answer, or an abstention on
  an unanswerable question;
- ``answer_accuracy``: share of answerable questions whose answer span contains a gold
  answer, or lies inside one and covers at least half of it (``answer_matches``; a
  ``multi`` question's span must contain a gold answer or every one of its ``parts``);
- ``answer_accuracy_answerable``: the same, but with the span the reader would have quoted
  had it not abstained, so that abstention cannot hide a weak reader;
- ``f1`` / ``f1_answerable``: SQuAD-style token F1 of the span against the best gold
  answer (words for Latin text, characters for CJK; an abstention scores 0 in ``f1``, its
  unabstained span in ``f1_answerable``);
- ``sentence_accuracy``: the same for the answer's whole sentence (containment only);
- ``citation_exact``: share of answers whose offsets slice the document to their quote;
- ``abstain_precision`` / ``abstain_recall``: of the abstentions, the unanswerable share;
  of the unanswerable questions, the abstained share; ``false_abstain_rate``: share of
  answerable questions abstained on;
- ``latency_p50_ms`` / ``latency_p95_ms``: time of one ``ask``, the question encoded anew.

A metric with nothing to measure in a scope (hit@5 of unanswerable questions) is ``None``.
Each question may carry ``"split": "train" | "test"``; the report gives every metric per
split (``by_split``) beside ``by_category``, and the calibration of the answers' confidence
(``calibration``: a reliability table and the expected calibration error).

Follow-up pairs (``load_followups``: ``{"id", "split", "language", "first", "followup",
"answers", "doc_id", "subject"}``) are asked as a conversation: the first question, then
the follow-up with that turn as its history and, for comparison, alone. ``followup_metrics``
gives per split the share whose assumed subject names the gold ``subject`` (folded
containment either way) and the answer accuracy of the follow-up with and without history.
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.lab.stats import nearest_rank
from service.records import Answer, AskResult, Chunk, Document
from service.text.language import fold

__all__ = [
    "METRICS",
    "Claim",
    "Followup",
    "FollowupOutcome",
    "Outcome",
    "Question",
    "abstention_curve",
    "answer_matches",
    "dcg",
    "eval_rows",
    "evaluate",
    "evaluate_claims",
    "fold_for_match",
    "followup_metrics",
    "load_claims",
    "load_followups",
    "load_questions",
    "ranking_metrics",
    "run_followups",
    "subject_matches",
    "summarize",
]

RANKING_METRICS = ("hit@1", "hit@5", "mrr@10", "ndcg@10")
METRICS = (
    *RANKING_METRICS,
    "accuracy",
    "answer_accuracy",
    "answer_accuracy_answerable",
    "f1",
    "f1_answerable",
    "sentence_accuracy",
    "citation_exact",
    "abstain_precision",
    "abstain_recall",
    "false_abstain_rate",
    "latency_p50_ms",
    "latency_p95_ms",
)

UNANSWERABLE = "unanswerable"
SPLITS = ("train", "test")
UNSPLIT = "unsplit"  # the split of a question whose row names none


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    doc_id: str | None
    category: str
    split: str = UNSPLIT
    parts: tuple[str, ...] = ()  # a list answer's items: a span with all of them is right

    @property
    def answerable(self) -> bool:
        return self.doc_id is not None and bool(self.answers)


def eval_rows(
    path: Path, what: str, required: Sequence[str], *, nonempty: bool = False
) -> Iterator[tuple[int, dict[str, Any], str]]:
    """The rows of an evaluation file (JSON lines), each with its line number and split,
    checked alike: the file exists, every line is JSON with the ``required`` fields
    (present, or with ``nonempty`` also not empty), ids are unique and splits known. Errors
    name the file, the line and what to fix."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from error
        if nonempty:
            missing = [key for key in required if not row.get(key)]
        else:
            missing = [key for key in required if key not in row]
        if missing:
            empty = "missing or empty" if nonempty else "missing"
            raise ValueError(f"{path}:{number}: {empty} field(s) {', '.join(missing)}")
        if row["id"] in seen:
            raise ValueError(f"{path}:{number}: duplicate id {row['id']!r}")
        split = row.get("split", UNSPLIT)
        if split not in (*SPLITS, UNSPLIT):
            raise ValueError(f"{path}:{number}: 'split' must be one of {', '.join(SPLITS)}")
        seen.add(row["id"])
        yield number, row, split


def load_questions(path: Path) -> list[Question]:
    """Read and validate a question file; errors name the line and the field."""
    questions = []
    required = ("id", "question", "answers", "category")
    for number, row, split in eval_rows(path, "question", required):
        if not isinstance(row["answers"], list):
            raise ValueError(f"{path}:{number}: 'answers' must be a list of strings")
        questions.append(
            Question(
                id=str(row["id"]),
                question=str(row["question"]),
                answers=tuple(str(a) for a in row["answers"]),
                doc_id=row.get("doc_id"),
                category=str(row["category"]),
                split=split,
                parts=tuple(str(p) for p in row.get("parts") or ()),
            )
        )
    return questions


def fold_for_match(text: str) -> str:
    """NFKC and whitespace folding, for comparing answers with passages."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def is_relevant(chunk: Chunk, question: Question) -> bool:
    if chunk.doc_id != question.doc_id:
        return False
    text = fold_for_match(chunk.text)
    return any(fold_for_match(answer) in text for answer in question.answers)


def dcg(relevances: Sequence[bool], k: int) -> float:
    return sum(1.0 / math.log2(rank + 1) for rank, rel in enumerate(relevances[:k], 1) if rel)


def ranking_metrics(relevances: Sequence[bool], relevant_in_corpus: int) -> dict[str, float]:
    """hit@1, hit@5, mrr@10 and ndcg@10 of one ranking (booleans, best first)."""
    first = next((rank for rank, rel in enumerate(relevances[:10], 1) if rel), None)
    ideal = dcg([True] * min(relevant_in_corpus, 10), 10)
    return {
        "hit@1": float(any(relevances[:1])),
        "hit@5": float(any(relevances[:5])),
        "mrr@10": 1.0 / first if first else 0.0,
        "ndcg@10": dcg(relevances, 10) / ideal if ideal else 0.0,
    }


def answer_matches(span: str, answers: Sequence[str], parts: Sequence[str] = ()) -> bool:
    """The span contains a gold answer, or lies inside one and covers at least half of it.
    With ``parts`` (a list answer) it must contain a gold answer or every part: half a list
    is not the answer."""
    text = fold_for_match(span)
    if parts:
        folded = [fold_for_match(answer) for answer in answers]
        return any(g in text for g in folded) or all(fold_for_match(p) in text for p in parts)
    for answer in answers:
        gold = fold_for_match(answer)
        if gold in text or (text and text in gold and 2 * len(text) >= len(gold)):
            return True
    return False


_ARTICLES = {"a", "an", "the"}
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]|[^\W_]+")


def f1_tokens(text: str) -> list[str]:
    """SQuAD's normalisation (lower case, no punctuation, no English articles), with each
    CJK character a token of its own and Latin runs split on non-word characters."""
    return [t for t in _TOKEN.findall(fold_for_match(text).lower()) if t not in _ARTICLES]


def token_f1(span: str, answers: Sequence[str]) -> float:
    """The best token F1 of ``span`` against any of ``answers`` (0 without answers)."""
    predicted = Counter(f1_tokens(span))
    best = 0.0
    for answer in answers:
        gold = Counter(f1_tokens(answer))
        common = sum((predicted & gold).values())
        if common:
            precision = common / sum(predicted.values())
            recall = common / sum(gold.values())
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _percentile(values: Sequence[float], share: float) -> float:
    return nearest_rank(sorted(values), share) if values else 0.0


@dataclass(frozen=True)
class Outcome:
    """One question asked of one system: what came back, how it ranks, how long it took."""

    question: Question
    result: AskResult
    ranking: Mapping[str, float]  # RANKING_METRICS; empty for an unanswerable question
    citation_exact: bool  # the answer's offsets slice its document to its quote
    seconds: float
    forced: Answer | None = None  # the span the reader would quote had it not abstained

    def abstains(self, min_confidence: float = 0.0) -> bool:
        """Abstained, or answered below ``min_confidence`` (for the trade-off sweep)."""
        answer = self.result.answer
        return answer is None or answer.confidence < min_confidence

    def answer_right(self, min_confidence: float = 0.0) -> bool:
        answer = self.result.answer
        return (
            not self.abstains(min_confidence)
            and answer is not None
            and answer_matches(answer.text, self.question.answers, self.question.parts)
        )

    def right(self, min_confidence: float = 0.0) -> bool:
        """Handled right: answered right, or abstained on an unanswerable question."""
        if self.question.answerable:
            return self.answer_right(min_confidence)
        return self.abstains(min_confidence)

    def forced_right(self) -> bool:
        span = self.forced or self.result.answer
        return span is not None and answer_matches(
            span.text, self.question.answers, self.question.parts
        )

    def f1(self, *, forced: bool = False) -> float:
        span = (self.forced or self.result.answer) if forced else self.result.answer
        return token_f1(span.text, self.question.answers) if span is not None else 0.0

    def sentence_right(self) -> bool:
        answer = self.result.answer
        gold = [fold_for_match(a) for a in self.question.answers]
        return answer is not None and any(g in fold_for_match(answer.sentence) for g in gold)


Force = Callable[[str, AskResult], Answer | None]


def run_system(
    ask: Callable[[str], AskResult],
    questions: Sequence[Question],
    chunks: Sequence[Chunk],
    documents: Mapping[str, Document],
    force: Force | None = None,
) -> list[Outcome]:
    """Ask every question of one system (``ask`` returns at least 10 passages). Each
    system's engine has its own query encoder, so each pays for its own encoding.
    ``force(question, result)`` gives the span the reader would quote without abstaining
    (for ``answer_accuracy_answerable``; timed apart from the question)."""
    outcomes = []
    for question in questions:
        started = time.perf_counter()
        result = ask(question.question)
        seconds = time.perf_counter() - started
        ranking: dict[str, float] = {}
        if question.answerable:
            relevances = [is_relevant(p.hit.chunk, question) for p in result.passages]
            in_corpus = sum(is_relevant(chunk, question) for chunk in chunks)
            ranking = ranking_metrics(relevances, in_corpus)
        exact = False
        if result.answer is not None:
            c = result.answer.citation
            exact = documents[c.doc_id].text[c.char_start : c.char_end] == c.quote
        forced = None
        if force is not None and question.answerable and result.answer is None:
            forced = force(question.question, result)
        outcomes.append(Outcome(question, result, ranking, exact, seconds, forced))
    return outcomes


def summarize(outcomes: Sequence[Outcome], min_confidence: float = 0.0) -> dict[str, Any]:
    """Every metric of ``METRICS`` (``None`` where undefined) and ``n``."""

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    answerable = [o for o in outcomes if o.question.answerable]
    unanswerable = [o for o in outcomes if not o.question.answerable]
    abstained = [o for o in outcomes if o.abstains(min_confidence)]
    answered = [o for o in outcomes if not o.abstains(min_confidence)]
    latencies = [o.seconds * 1000 for o in outcomes]
    summary: dict[str, Any] = {
        metric: (
            round(sum(o.ranking[metric] for o in answerable) / len(answerable), 4)
            if answerable
            else None
        )
        for metric in RANKING_METRICS
    }
    summary |= {
        "accuracy": share(sum(o.right(min_confidence) for o in outcomes), len(outcomes)),
        "answer_accuracy": share(
            sum(o.answer_right(min_confidence) for o in answerable), len(answerable)
        ),
        "answer_accuracy_answerable": share(
            sum(o.forced_right() for o in answerable), len(answerable)
        ),
        "f1": _mean([o.f1() if not o.abstains(min_confidence) else 0.0 for o in answerable]),
        "f1_answerable": _mean([o.f1(forced=True) for o in answerable]),
        "sentence_accuracy": share(
            sum(o.sentence_right() for o in answerable if not o.abstains(min_confidence)),
            len(answerable),
        ),
        "citation_exact": share(sum(o.citation_exact for o in answered), len(answered)),
        "abstain_precision": share(
            sum(not o.question.answerable for o in abstained), len(abstained)
        ),
        "abstain_recall": share(
            sum(o.abstains(min_confidence) for o in unanswerable), len(unanswerable)
        ),
        "false_abstain_rate": share(
            sum(o.abstains(min_confidence) for o in answerable), len(answerable)
        ),
        "latency_p50_ms": round(_percentile(latencies, 0.5), 2),
        "latency_p95_ms": round(_percentile(latencies, 0.95), 2),
        "n": len(outcomes),
    }
    return summary


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def by_category(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Any]]:
    categories = sorted({o.question.category for o in outcomes})
    return {c: summarize([o for o in outcomes if o.question.category == c]) for c in categories}


def by_split(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Any]]:
    """Per split: ``{"overall", "by_category", "calibration"}``, and for a train/test pair
    ``"gap"``: test minus train for every metric of ``METRICS`` both define."""
    splits = sorted({o.question.split for o in outcomes}, key=_split_order)
    result: dict[str, dict[str, Any]] = {}
    for split in splits:
        rows = [o for o in outcomes if o.question.split == split]
        result[split] = {
            "overall": summarize(rows),
            "by_category": by_category(rows),
            "calibration": calibration(rows),
        }
    return result


def _split_order(split: str) -> int:
    return (*SPLITS, UNSPLIT).index(split)


def split_gap(splits: Mapping[str, Mapping[str, Any]]) -> dict[str, float] | None:
    """Test minus train, metric by metric (latency aside), when both splits are there."""
    if not all(s in splits for s in SPLITS):
        return None
    train, test = splits["train"]["overall"], splits["test"]["overall"]
    return {
        m: round(test[m] - train[m], 4)
        for m in METRICS
        if not m.startswith("latency") and test.get(m) is not None and train.get(m) is not None
    }


def calibration(outcomes: Sequence[Outcome], bins: int = 10) -> dict[str, Any]:
    """The reliability table of the answers given (confidence bins of width ``1/bins``:
    how many answers, their mean confidence, the share right; an answer to an unanswerable
    question is wrong) and the expected calibration error, the answers' weighted mean
    distance between confidence and accuracy."""
    scored = [
        (o.result.answer.confidence, o.answer_right())
        for o in outcomes
        if o.result.answer is not None
    ]
    table = []
    for b in range(bins):
        inside = [(p, ok) for p, ok in scored if _bin(p, bins) == b]
        if inside:
            table.append(
                {
                    "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                    "n": len(inside),
                    "confidence": round(sum(p for p, _ in inside) / len(inside), 4),
                    "accuracy": round(sum(ok for _, ok in inside) / len(inside), 4),
                }
            )
    return {
        "answered": len(scored),
        "ece": expected_calibration_error(scored, bins),
        "table": table,
    }


def _bin(confidence: float, bins: int) -> int:
    return min(int(confidence * bins), bins - 1)


def evaluate(
    systems: Mapping[str, Callable[[str], AskResult]],
    questions: Sequence[Question],
    chunks: Sequence[Chunk],
    documents: Mapping[str, Document],
    *,
    product: str = "hybrid",
    force: Mapping[str, Force] | None = None,
) -> tuple[dict[str, Any], dict[str, list[Outcome]]]:
    """The report ``{"overall", "by_category", "by_split", "split_gap", "systems": {name:
    {"overall", "by_category", "by_split"}}}`` (top level: the ``product`` system) and every
    system's outcomes, for charts and misses. ``force`` maps a system to its unabstained
    reader (``run_system``)."""
    force = force or {}
    outcomes = {
        name: run_system(ask, questions, chunks, documents, force.get(name))
        for name, ask in systems.items()
    }
    results = {
        name: {
            "overall": summarize(rows),
            "by_category": by_category(rows),
            "by_split": by_split(rows),
        }
        for name, rows in outcomes.items()
    }
    report = {
        "overall": results[product]["overall"],
        "by_category": results[product]["by_category"],
        "by_split": results[product]["by_split"],
        "split_gap": split_gap(results[product]["by_split"]),
        "systems": results,
    }
    return report, outcomes


def abstention_curve(outcomes: Sequence[Outcome], steps: int = 50) -> list[dict[str, float]]:
    """Abstention precision and recall as a confidence floor rises from 0 to 1: answers below
    the floor count as abstentions. The floor is ``CITEQA_MIN_CONFIDENCE`` in the service."""
    points = []
    for step in range(steps + 1):
        floor = step / steps
        summary = summarize(outcomes, floor)
        points.append(
            {
                "min_confidence": floor,
                "abstain_precision": summary["abstain_precision"],
                "abstain_recall": summary["abstain_recall"],
                "false_abstain_rate": summary["false_abstain_rate"],
                "answer_accuracy": summary["answer_accuracy"],
            }
        )
    return points


# ----------------------------------------------------------------------------- claims

LABELS = ("supported", "contradicted", "not_found")


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    label: str
    doc_id: str | None
    split: str = UNSPLIT
    language: str | None = None  # "en" | "zh-Hans" | "zh-Hant"
    cross_language: bool = False  # the claim's language differs from its evidence's
    kind: str | None = None  # what a contradicted claim changed: number, date, place, ...
    evidence: str | None = None  # the source sentence that decides it (None for not_found)


def load_claims(path: Path) -> list[Claim]:
    """Read and validate a claims file: ``{"id", "claim", "label", "doc_id"}`` per line."""
    claims = []
    for number, row, split in eval_rows(path, "claims", ("id", "claim", "label")):
        if row["label"] not in LABELS:
            raise ValueError(f"{path}:{number}: label must be one of {', '.join(LABELS)}")
        claims.append(
            Claim(
                str(row["id"]),
                str(row["claim"]),
                row["label"],
                row.get("doc_id"),
                split=split,
                language=row.get("language"),
                cross_language=bool(row.get("cross_language")),
                kind=row.get("kind"),
                evidence=row.get("evidence"),
            )
        )
    return claims


def evaluate_claims(
    verify: Callable[[str], Any], claims: Sequence[Claim]
) -> tuple[dict[str, Any], list[tuple[Claim, Any]]]:
    """The summary of ``claim_metrics`` over all claims, with ``by_split`` (each split's
    summary, and per label, language, crossing and contradiction kind) and ``split_gap``;
    and each claim's check."""
    checks = [(claim, verify(claim.claim)) for claim in claims]
    summary = claim_metrics(checks)
    splits = sorted({c.split for c in claims}, key=_split_order)
    summary["by_split"] = {split: _claim_breakdown(checks, split) for split in splits}
    gap = None
    if all(s in summary["by_split"] for s in SPLITS):
        train, test = (summary["by_split"][s]["overall"] for s in SPLITS)
        gap = {
            m: round(test[m] - train[m], 4)
            for m in ("label_accuracy", "evidence_recall", "ece")
            if test[m] is not None and train[m] is not None
        }
    summary["split_gap"] = gap
    return summary, checks


def _claim_breakdown(checks: Sequence[tuple[Claim, Any]], split: str) -> dict[str, Any]:
    rows = [(c, k) for c, k in checks if c.split == split]

    def group(key: Callable[[Claim], str | None]) -> dict[str, Any]:
        names = sorted({name for c, _ in rows if (name := key(c)) is not None})
        return {n: claim_metrics([(c, k) for c, k in rows if key(c) == n]) for n in names}

    return {
        "overall": claim_metrics(rows),
        "by_label": group(lambda c: c.label),
        "by_language": group(lambda c: c.language),
        "by_crossing": group(lambda c: "cross-language" if c.cross_language else "same-language"),
        "by_kind": group(lambda c: c.kind if c.label == "contradicted" else None),
    }


def claim_metrics(checks: Sequence[tuple[Claim, Any]]) -> dict[str, Any]:
    """``{"label_accuracy", "evidence_recall", "ece", "confusion", "n"}`` of some checks.

    ``confusion[label][verdict]`` counts claims; ``evidence_recall`` is the share of claims
    with a gold document that find it among their evidence; ``ece`` the expected calibration
    error of the verdicts' confidence (ten bins); ``supported_wrongly`` counts contradicted
    and not_found claims called supported; ``mismatch_named`` is the share of contradicted
    claims whose check names the changed value (``_names_the_change``).
    """
    confusion = {label: dict.fromkeys(LABELS, 0) for label in LABELS}
    for claim, check in checks:
        confusion[claim.label][check.verdict] += 1
    with_doc = [(c, k) for c, k in checks if c.doc_id]
    found = sum(any(e.citation.doc_id == c.doc_id for e in k.evidence) for c, k in with_doc)
    right = sum(claim.label == check.verdict for claim, check in checks)
    contradicted = [(c, k) for c, k in checks if c.label == "contradicted"]
    named = sum(_names_the_change(c, k) for c, k in contradicted)
    return {
        "label_accuracy": round(right / len(checks), 4) if checks else None,
        "supported_wrongly": sum(
            c.label != "supported" and k.verdict == "supported" for c, k in checks
        ),
        "mismatch_named": round(named / len(contradicted), 4) if contradicted else None,
        "evidence_recall": round(found / len(with_doc), 4) if with_doc else None,
        "ece": expected_calibration_error(
            [(k.confidence, c.label == k.verdict) for c, k in checks]
        ),
        "confusion": confusion,
        "n": len(checks),
    }


_CHANGE_KINDS = {"organisation": "organization", "qualifier": "number"}


def _names_the_change(claim: Claim, check: Any) -> bool:
    """A contradicted claim's check names what was changed: it is called contradicted, and
    its deciding sentence's mismatch is of the changed kind and quotes a value of the
    claim that the gold evidence does not state."""
    if check.verdict != "contradicted":
        return False
    decisive = next((e for e in check.evidence if e.stance == "contradicts"), None)
    if decisive is None:
        return False
    kind = _CHANGE_KINDS.get(claim.kind or "", claim.kind)
    evidence = fold(claim.evidence or "")
    return any(
        (kind is None or m.kind == kind) and fold(m.claim_text) not in evidence
        for m in decisive.mismatches
    )


def expected_calibration_error(
    scored: Sequence[tuple[float, bool]], bins: int = 10
) -> float | None:
    """The weighted mean gap between confidence and accuracy over ``bins`` equal bins."""
    if not scored:
        return None
    total = 0.0
    for b in range(bins):
        inside = [(p, ok) for p, ok in scored if _bin(p, bins) == b]
        if inside:
            mean = sum(p for p, _ in inside) / len(inside)
            accuracy = sum(ok for _, ok in inside) / len(inside)
            total += len(inside) * abs(mean - accuracy)
    return round(total / len(scored), 4)


# ------------------------------------------------------------------------- follow-ups
@dataclass(frozen=True)
class Followup:
    """A pair of questions: ``followup`` refers to ``subject``, a phrase of ``first``."""

    id: str
    split: str
    language: str
    first: str
    followup: str
    answers: tuple[str, ...]
    doc_id: str | None
    subject: str


_FOLLOWUP_FIELDS = ("id", "first", "followup", "answers", "subject")


def load_followups(path: Path) -> list[Followup]:
    """Read and validate a follow-up pairs file; errors name the line and the field."""
    pairs: list[Followup] = []
    for number, row, split in eval_rows(path, "follow-up", _FOLLOWUP_FIELDS, nonempty=True):
        if not isinstance(row["answers"], list):
            raise ValueError(f"{path}:{number}: 'answers' must be a list of strings")
        pairs.append(
            Followup(
                id=str(row["id"]),
                split=split,
                language=str(row.get("language", "")),
                first=str(row["first"]),
                followup=str(row["followup"]),
                answers=tuple(str(a) for a in row["answers"]),
                doc_id=row.get("doc_id"),
                subject=str(row["subject"]),
            )
        )
    return pairs


def subject_matches(assumed: str | None, gold: str) -> bool:
    """The assumed subject names the gold one: either holds the other once folded (NFKC,
    case, white space, Traditional as Simplified)."""
    if not assumed:
        return False
    a, b = (" ".join(fold(fold_for_match(t)).split()) for t in (assumed, gold))
    return bool(a and b) and (a in b or b in a)


@dataclass(frozen=True)
class FollowupOutcome:
    """One pair asked: the first question, then the follow-up with and without it."""

    pair: Followup
    first: AskResult
    with_history: AskResult
    without_history: AskResult

    @property
    def resolved_right(self) -> bool:
        return subject_matches(self.with_history.assumed_subject, self.pair.subject)

    def answered_right(self, *, history: bool = True) -> bool:
        answer = (self.with_history if history else self.without_history).answer
        return answer is not None and answer_matches(answer.text, self.pair.answers)


def run_followups(
    ask: Callable[..., AskResult], pairs: Sequence[Followup]
) -> list[FollowupOutcome]:
    """Ask each pair's first question, then its follow-up with that turn (its answer and
    citation, as a client would send them) and without it.

    Args:
        ask: the product's ``Engine.ask`` (takes ``history=``).
        pairs: the follow-up pairs.
    """
    from service.answer.followup import Turn, TurnCitation

    outcomes = []
    for pair in pairs:
        first = ask(pair.first)
        answer = first.answer
        cited = answer.citation if answer else None
        turn = Turn(
            question=pair.first,
            answer=answer.text if answer else None,
            citation=TurnCitation(cited.doc_id, cited.char_start, cited.char_end)
            if cited
            else None,
        )
        with_history = ask(pair.followup, history=[turn])
        outcomes.append(FollowupOutcome(pair, first, with_history, ask(pair.followup)))
    return outcomes


def followup_metrics(outcomes: Sequence[FollowupOutcome]) -> dict[str, Any]:
    """Per split (and ``all``): ``n``, ``resolution_accuracy`` (the assumed subject names
    the gold one), ``answer_accuracy`` of the follow-up asked with its history and
    ``answer_accuracy_without_history`` of the same follow-up asked alone."""

    def figures(group: Sequence[FollowupOutcome]) -> dict[str, Any]:
        n = len(group)
        return {
            "n": n,
            "resolution_accuracy": sum(o.resolved_right for o in group) / n,
            "answer_accuracy": sum(o.answered_right() for o in group) / n,
            "answer_accuracy_without_history": sum(o.answered_right(history=False) for o in group)
            / n,
        }

    splits: dict[str, list[FollowupOutcome]] = {}
    for outcome in outcomes:
        splits.setdefault(outcome.pair.split, []).append(outcome)
    by_split = {split: figures(splits[split]) for split in sorted(splits, key=_split_order)}
    return {"all": figures(outcomes) if outcomes else {"n": 0}, "by_split": by_split}
