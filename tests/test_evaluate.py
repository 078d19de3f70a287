import functools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.engine import Engine
from service.index import CorpusIndex
from service.lab.evaluate import (
    METRICS,
    Outcome,
    Question,
    abstention_curve,
    answer_matches,
    evaluate,
    fold_for_match,
    is_relevant,
    load_questions,
    ranking_metrics,
)
from service.lab.report import write_report
from service.records import Chunk, Document

QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"
MINIMUM = {
    "en": 30,
    "zh-Hans": 10,
    "zh-Hant": 10,
    "cross-lingual": 15,
    "zh-Hans-on-zh-Hant": 8,
    "paraphrase": 20,
    "unanswerable": 20,
}


def test_question_set_meets_its_brief(documents: dict[str, Document]) -> None:
    questions = load_questions(QUESTIONS)
    assert len(questions) >= 120
    for category, minimum in MINIMUM.items():
        assert sum(q.category == category for q in questions) >= minimum, category
    for question in questions:
        if question.category == "unanswerable":
            assert question.doc_id is None and not question.answers, question.id
            continue
        assert question.doc_id in documents, question.id
        for answer in question.answers:  # verbatim in the original text
            assert answer in documents[question.doc_id].text, (question.id, answer)
    assert {q.doc_id for q in questions if q.doc_id} == set(documents)


def test_ranking_metrics_hand_computed() -> None:
    metrics = ranking_metrics([False, True, False, True], relevant_in_corpus=2)
    assert metrics["hit@1"] == 0.0
    assert metrics["hit@5"] == 1.0
    assert metrics["mrr@10"] == 0.5
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert metrics["ndcg@10"] == pytest.approx(dcg / ideal)
    assert ranking_metrics([False] * 5 + [True], 1)["hit@5"] == 0.0
    assert ranking_metrics([False] * 10 + [True], 1)["mrr@10"] == 0.0


def test_relevance_folds_width_and_whitespace() -> None:
    question = Question("q", "?", ("38 members",), "d", "en")
    chunk = Chunk("c", "d", 0, 20, "with ３８\n  members from", "en")
    assert fold_for_match("３８\n members") == "38 members"
    assert is_relevant(chunk, question)
    assert not is_relevant(Chunk("c", "other", 0, 20, chunk.text, "en"), question)


def test_bad_question_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "x", "answers": [], "category": "en"}\n{oops\n')
    with pytest.raises(ValueError, match=r"q\.jsonl:2: not JSON"):
        load_questions(path)
    path.write_text(json.dumps({"id": "a", "question": "x"}) + "\n")
    with pytest.raises(ValueError, match="missing field"):
        load_questions(path)


@pytest.fixture(scope="module")
def small_run(
    corpus_index: CorpusIndex, settings: Settings
) -> tuple[list[Question], dict[str, Any], dict[str, list[Outcome]]]:
    questions = [
        q for q in load_questions(QUESTIONS) if q.category in ("en", "zh-Hant", "unanswerable")
    ]
    product = Engine.from_settings(settings, index=corpus_index)
    bm25 = Engine.from_settings(settings, index=corpus_index, retrievers=["bm25"])
    systems = {
        "bm25": functools.partial(bm25.ask, top_k=10),
        "hybrid": functools.partial(product.ask, top_k=10),
    }
    report, outcomes = evaluate(systems, questions, corpus_index.chunks, corpus_index.documents)
    return questions, report, outcomes


def test_evaluate_reports_every_metric_per_system_and_category(
    small_run: tuple[list[Question], dict[str, Any], dict[str, list[Outcome]]],
) -> None:
    questions, report, _ = small_run
    assert set(report) == {"overall", "by_category", "systems"}
    assert report["overall"] == report["systems"]["hybrid"]["overall"]
    for system in ("hybrid", "bm25"):
        overall = report["systems"][system]["overall"]
        assert set(overall) == {*METRICS, "n"} and overall["n"] == len(questions)
        by_category = report["systems"][system]["by_category"]
        assert set(by_category) == {"en", "zh-Hant", "unanswerable"}
        assert by_category["unanswerable"]["hit@5"] is None  # nothing to rank
        assert by_category["en"]["abstain_recall"] is None  # nothing to abstain on
    assert report["by_category"]["en"]["hit@5"] >= 0.9
    assert report["overall"]["citation_exact"] == 1.0
    assert report["by_category"]["unanswerable"]["abstain_recall"] >= 0.5


def test_summary_counts_agree_with_the_outcomes(
    small_run: tuple[list[Question], dict[str, Any], dict[str, list[Outcome]]],
) -> None:
    _, report, outcomes = small_run
    rows = outcomes["hybrid"]
    answerable = [o for o in rows if o.question.answerable]
    right = sum(
        o.result.answer is not None and answer_matches(o.result.answer.text, o.question.answers)
        for o in answerable
    )
    assert report["overall"]["answer_accuracy"] == round(right / len(answerable), 4)
    abstained = [o for o in rows if o.result.abstained]
    wrong = sum(o.question.answerable for o in abstained)
    assert report["overall"]["abstain_precision"] == round(1 - wrong / len(abstained), 4)


def test_abstention_curve_moves_one_way(
    small_run: tuple[list[Question], dict[str, Any], dict[str, list[Outcome]]],
) -> None:
    _, report, outcomes = small_run
    curve = abstention_curve(outcomes["hybrid"], steps=10)
    assert curve[0]["abstain_recall"] == report["overall"]["abstain_recall"]
    recalls = [p["abstain_recall"] for p in curve]
    false = [p["false_abstain_rate"] for p in curve]
    assert recalls == sorted(recalls) and false == sorted(false)
    assert curve[-1]["min_confidence"] == 1.0 and curve[-1]["false_abstain_rate"] == 1.0


def test_report_has_tables_charts_and_misses(
    small_run: tuple[list[Question], dict[str, Any], dict[str, list[Outcome]]],
    tmp_path: Path,
) -> None:
    _, report, outcomes = small_run
    path = tmp_path / "report.md"
    written = write_report(
        path,
        report,
        outcomes,
        abstention_curve(outcomes["hybrid"]),
        questions_file=QUESTIONS,
        min_confidence=0.0,
    )
    text = path.read_text()
    for heading in ("## Targets", "## Every system, overall", "## Abstention trade-off"):
        assert heading in text
    assert "BM25 only" in text and "hybrid (the product)" in text
    for png in written[1:]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.parent.name}/{png.name})" in text
    wrong = [
        o
        for o in outcomes["hybrid"]
        if (o.question.answerable and not o.answer_right())
        or (not o.question.answerable and o.result.answer is not None)
    ]
    for outcome in wrong:
        assert f"| {outcome.question.id} |" in text
