import json
import math
from pathlib import Path

import pytest

from service.evaluate import (
    Question,
    evaluate_retrieval,
    fold_for_match,
    is_relevant,
    load_questions,
    ranking_metrics,
)
from service.index import CorpusIndex
from service.records import Chunk, Document
from service.search import HybridRetriever

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


def test_evaluate_retrieval_reports_each_system_and_category(
    corpus_index: CorpusIndex, retriever: HybridRetriever
) -> None:
    questions = [q for q in load_questions(QUESTIONS) if q.category in ("en", "unanswerable")]
    results = evaluate_retrieval(
        {"hybrid": retriever.search, "bm25": retriever.retrievers["bm25"].search},
        questions,
        corpus_index.chunks,
    )
    for system in ("hybrid", "bm25"):
        overall = results[system]["overall"]
        assert overall["n"] == len(questions)
        assert {"hit@1", "hit@5", "mrr@10", "ndcg@10", "latency_p50_ms"} <= set(overall)
        assert set(results[system]["by_category"]) == {"en", "unanswerable"}
    assert results["hybrid"]["by_category"]["en"]["hit@5"] >= 0.9
