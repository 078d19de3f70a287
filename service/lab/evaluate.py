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
- ``answer_accuracy``: share of answerable questions whose answer span contains a gold
  answer, or lies inside one and covers at least half of it (``answer_matches``);
- ``sentence_accuracy``: the same for the answer's whole sentence (containment only);
- ``citation_exact``: share of answers whose offsets slice the document to their quote;
- ``abstain_precision`` / ``abstain_recall``: of the abstentions, the unanswerable share;
  of the unanswerable questions, the abstained share; ``false_abstain_rate``: share of
  answerable questions abstained on;
- ``latency_p50_ms`` / ``latency_p95_ms``: time of one ``ask``, the question encoded anew.

A metric with nothing to measure in a scope (hit@5 of unanswerable questions) is ``None``.
"""

from __future__ import annotations

import json
import math
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.lab.stats import nearest_rank
from service.records import AskResult, Chunk, Document

__all__ = [
    "METRICS",
    "Claim",
    "Outcome",
    "Question",
    "abstention_curve",
    "answer_matches",
    "dcg",
    "evaluate",
    "evaluate_claims",
    "fold_for_match",
    "load_claims",
    "load_questions",
    "ranking_metrics",
    "summarize",
]

RANKING_METRICS = ("hit@1", "hit@5", "mrr@10", "ndcg@10")
METRICS = (
    *RANKING_METRICS,
    "answer_accuracy",
    "sentence_accuracy",
    "citation_exact",
    "abstain_precision",
    "abstain_recall",
    "false_abstain_rate",
    "latency_p50_ms",
    "latency_p95_ms",
)

UNANSWERABLE = "unanswerable"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    doc_id: str | None
    category: str

    @property
    def answerable(self) -> bool:
        return self.doc_id is not None and bool(self.answers)


def load_questions(path: Path) -> list[Question]:
    """Read and validate a question file; errors name the line and the field."""
    if not path.is_file():
        raise FileNotFoundError(f"question file {path} does not exist")
    questions = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from error
        missing = [key for key in ("id", "question", "answers", "category") if key not in row]
        if missing:
            raise ValueError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        if not isinstance(row["answers"], list):
            raise ValueError(f"{path}:{number}: 'answers' must be a list of strings")
        if row["id"] in seen:
            raise ValueError(f"{path}:{number}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        questions.append(
            Question(
                id=str(row["id"]),
                question=str(row["question"]),
                answers=tuple(str(a) for a in row["answers"]),
                doc_id=row.get("doc_id"),
                category=str(row["category"]),
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


def answer_matches(span: str, answers: Sequence[str]) -> bool:
    """The span contains a gold answer, or lies inside one and covers at least half of it."""
    text = fold_for_match(span)
    for answer in answers:
        gold = fold_for_match(answer)
        if gold in text or (text and text in gold and 2 * len(text) >= len(gold)):
            return True
    return False


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

    def abstains(self, min_confidence: float = 0.0) -> bool:
        """Abstained, or answered below ``min_confidence`` (for the trade-off sweep)."""
        answer = self.result.answer
        return answer is None or answer.confidence < min_confidence

    def answer_right(self, min_confidence: float = 0.0) -> bool:
        answer = self.result.answer
        return (
            not self.abstains(min_confidence)
            and answer is not None
            and answer_matches(answer.text, self.question.answers)
        )

    def sentence_right(self) -> bool:
        answer = self.result.answer
        gold = [fold_for_match(a) for a in self.question.answers]
        return answer is not None and any(g in fold_for_match(answer.sentence) for g in gold)


def run_system(
    ask: Callable[[str], AskResult],
    questions: Sequence[Question],
    chunks: Sequence[Chunk],
    documents: Mapping[str, Document],
) -> list[Outcome]:
    """Ask every question of one system (``ask`` returns at least 10 passages). Each
    system's engine has its own query encoder, so each pays for its own encoding."""
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
        outcomes.append(Outcome(question, result, ranking, exact, seconds))
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
        "answer_accuracy": share(
            sum(o.answer_right(min_confidence) for o in answerable), len(answerable)
        ),
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


def by_category(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Any]]:
    categories = sorted({o.question.category for o in outcomes})
    return {c: summarize([o for o in outcomes if o.question.category == c]) for c in categories}


def evaluate(
    systems: Mapping[str, Callable[[str], AskResult]],
    questions: Sequence[Question],
    chunks: Sequence[Chunk],
    documents: Mapping[str, Document],
    *,
    product: str = "hybrid",
) -> tuple[dict[str, Any], dict[str, list[Outcome]]]:
    """The report ``{"overall", "by_category", "systems": {name: {"overall", "by_category"}}}``
    (top level: the ``product`` system) and every system's outcomes, for charts and misses."""
    outcomes = {
        name: run_system(ask, questions, chunks, documents) for name, ask in systems.items()
    }
    results = {
        name: {"overall": summarize(rows), "by_category": by_category(rows)}
        for name, rows in outcomes.items()
    }
    report = {
        "overall": results[product]["overall"],
        "by_category": results[product]["by_category"],
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


def load_claims(path: Path) -> list[Claim]:
    """Read and validate a claims file: ``{"id", "claim", "label", "doc_id"}`` per line."""
    if not path.is_file():
        raise FileNotFoundError(f"claims file {path} does not exist")
    claims, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from error
        missing = [key for key in ("id", "claim", "label") if key not in row]
        if missing:
            raise ValueError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        if row["label"] not in LABELS:
            raise ValueError(f"{path}:{number}: label must be one of {', '.join(LABELS)}")
        if row["id"] in seen:
            raise ValueError(f"{path}:{number}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        claims.append(Claim(str(row["id"]), str(row["claim"]), row["label"], row.get("doc_id")))
    return claims


def evaluate_claims(
    verify: Callable[[str], Any], claims: Sequence[Claim]
) -> tuple[dict[str, Any], list[tuple[Claim, Any]]]:
    """``{"label_accuracy", "evidence_recall", "confusion", "n"}`` and each claim's check.

    ``confusion[label][verdict]`` counts claims; ``evidence_recall`` is the share of claims
    with a gold document that find it among their evidence.
    """
    checks = [(claim, verify(claim.claim)) for claim in claims]
    confusion = {label: dict.fromkeys(LABELS, 0) for label in LABELS}
    for claim, check in checks:
        confusion[claim.label][check.verdict] += 1
    with_doc = [(c, k) for c, k in checks if c.doc_id]
    found = sum(any(e.citation.doc_id == c.doc_id for e in k.evidence) for c, k in with_doc)
    right = sum(claim.label == check.verdict for claim, check in checks)
    summary = {
        "label_accuracy": round(right / len(checks), 4) if checks else None,
        "evidence_recall": round(found / len(with_doc), 4) if with_doc else None,
        "confusion": confusion,
        "n": len(checks),
    }
    return summary, checks
