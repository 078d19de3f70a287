"""Evaluate: retrieval quality on a hand-written question set, per system and per category.

A question file is JSON lines: ``{"id", "question", "answers": [...], "doc_id", "category"}``
(``doc_id`` null and ``answers`` empty where the corpus does not answer). A passage is
relevant to a question when it comes from ``doc_id`` and contains one of ``answers`` after
Unicode NFKC and whitespace folding.

Metrics (binary relevance, ranks from 1):

- ``hit@k``: share of answerable questions with a relevant passage in the top k;
- ``mrr@10``: mean of 1/rank of the first relevant passage (0 beyond rank 10);
- ``ndcg@10``: DCG = sum of 1/log2(rank+1) over relevant passages in the top 10, divided by
  the DCG of the ideal ranking (all relevant passages of the corpus first).
"""

from __future__ import annotations

import json
import math
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.records import AskResult, Chunk, Document, Hit

__all__ = [
    "Question",
    "answer_matches",
    "dcg",
    "evaluate_answers",
    "evaluate_retrieval",
    "fold_for_match",
    "load_questions",
    "ranking_metrics",
]

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


def _mean(rows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    rows = list(rows)
    if not rows:
        return {}
    return {key: round(sum(row[key] for row in rows) / len(rows), 4) for key in rows[0]}


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def _summary(per_question: list[tuple[Question, dict[str, float], float]]) -> dict[str, Any]:
    answerable = [metrics for q, metrics, _ in per_question if q.answerable]
    latencies = [seconds * 1000 for _, _, seconds in per_question]
    summary: dict[str, Any] = _mean(answerable)
    summary["latency_p50_ms"] = round(_percentile(latencies, 0.5), 2)
    summary["latency_p95_ms"] = round(_percentile(latencies, 0.95), 2)
    summary["n"] = len(per_question)
    return summary


def evaluate_retrieval(
    systems: Mapping[str, Callable[[str, int], list[Hit]]],
    questions: Sequence[Question],
    chunks: Sequence[Chunk],
) -> dict[str, dict[str, Any]]:
    """Per system: ``{"overall": {...}, "by_category": {...}}``."""
    relevant_counts = {
        q.id: sum(is_relevant(chunk, q) for chunk in chunks) for q in questions if q.answerable
    }
    from service.search import query_vector

    results: dict[str, dict[str, Any]] = {}
    for name, search in systems.items():
        query_vector.cache_clear()  # each system pays for its own encoding
        per_question = []
        for question in questions:
            started = time.perf_counter()
            hits = search(question.question, 10)
            seconds = time.perf_counter() - started
            relevances = [is_relevant(hit.chunk, question) for hit in hits]
            metrics = ranking_metrics(relevances, relevant_counts.get(question.id, 0))
            per_question.append((question, metrics, seconds))
        categories = sorted({q.category for q in questions})
        results[name] = {
            "overall": _summary(per_question),
            "by_category": {
                category: _summary([row for row in per_question if row[0].category == category])
                for category in categories
            },
        }
    return results


def answer_matches(span: str, answers: Sequence[str]) -> bool:
    """The span contains a gold answer, or lies inside one and covers at least half of it."""
    text = fold_for_match(span)
    for answer in answers:
        gold = fold_for_match(answer)
        if gold in text or (text and text in gold and 2 * len(text) >= len(gold)):
            return True
    return False


def _answer_summary(rows: list[tuple[Question, AskResult, float, bool]]) -> dict[str, Any]:
    answerable = [row for row in rows if row[0].answerable]
    unanswerable = [row for row in rows if not row[0].answerable]
    abstained = [row for row in rows if row[1].abstained]
    answered = [row for row in rows if not row[1].abstained]
    latencies = [row[2] * 1000 for row in rows]

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "answer_accuracy": share(
            sum(
                1
                for q, r, _, _ in answerable
                if r.answer is not None and answer_matches(r.answer.text, q.answers)
            ),
            len(answerable),
        ),
        "sentence_accuracy": share(
            sum(
                1
                for q, r, _, _ in answerable
                if r.answer is not None and answer_matches(r.answer.sentence, q.answers)
            ),
            len(answerable),
        ),
        "citation_exact": share(sum(1 for *_, exact in answered if exact), len(answered)),
        "abstain_precision": share(
            sum(1 for q, *_ in abstained if not q.answerable), len(abstained)
        ),
        "abstain_recall": share(
            sum(1 for _, r, *_ in unanswerable if r.abstained), len(unanswerable)
        ),
        "false_abstain_rate": share(
            sum(1 for _, r, *_ in answerable if r.abstained), len(answerable)
        ),
        "latency_p50_ms": round(_percentile(latencies, 0.5), 2),
        "latency_p95_ms": round(_percentile(latencies, 0.95), 2),
        "n": len(rows),
    }


def evaluate_answers(
    ask: Callable[[str], AskResult],
    questions: Sequence[Question],
    documents: Mapping[str, Document],
) -> dict[str, Any]:
    """Answer metrics of a pipeline: ``{"overall": {...}, "by_category": {...}, "rows": [...]}``.

    ``rows`` keeps, per question, what was answered, for reports of the misses.
    """
    from service.search import query_vector

    query_vector.cache_clear()  # the answer timings include encoding the question
    rows = []
    for question in questions:
        started = time.perf_counter()
        result = ask(question.question)
        seconds = time.perf_counter() - started
        exact = False
        if result.answer is not None:
            c = result.answer.citation
            exact = documents[c.doc_id].text[c.char_start : c.char_end] == c.quote
        rows.append((question, result, seconds, exact))
    categories = sorted({q.category for q in questions})
    return {
        "overall": _answer_summary(rows),
        "by_category": {
            category: _answer_summary([row for row in rows if row[0].category == category])
            for category in categories
        },
        "rows": [
            {
                "id": q.id,
                "category": q.category,
                "question": q.question,
                "answers": list(q.answers),
                "answered": None if r.answer is None else r.answer.text,
                "abstain_reason": r.abstain_reason,
                "correct": (
                    r.abstained
                    if not q.answerable
                    else r.answer is not None and answer_matches(r.answer.text, q.answers)
                ),
            }
            for q, r, _, _ in rows
        ],
    }
