"""Follow-up questions: resolution in every language, the history's bounds, the API's
assumed subject and the evaluator's figures on a tiny pairs file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.answer.followup import MAX_TURN_CHARS, MAX_TURNS, Turn, check_history, resolve
from service.config import Settings
from service.engine import Engine
from service.errors import InputError
from service.index import CorpusIndex
from service.lab.evaluate import (
    answer_matches,
    followup_metrics,
    load_followups,
    run_followups,
    subject_matches,
)
from service.server.app import create_app

TCS = "What is the Trilateral Cooperation Secretariat?"
SECRETARIAT_ZH = "中日韩合作秘书处是什么？"
SECRETARIAT_HANT = "中日韓合作秘書處是什麼？"
SECRETARIAT_JA = "日中韓協力事務局とは何ですか"
SECRETARIAT_KO = "한중일 협력사무국은 무엇인가요?"
NEAR_FORUM = "Who organized the NEAR International Forum 2023?"
CJK = "What is the China-Japan-Korea Cooperation Secretariat?"
CITY = "Which city was it established in?"
SEOUL = ["Seoul", "Seoul, South Korea"]

RESOLVED = [
    (TCS, "When was it founded?", "Trilateral Cooperation Secretariat", "When was the Trilateral"),
    (TCS, "Who leads it?", "Trilateral Cooperation Secretariat", "Who leads the Trilateral"),
    (TCS, "What is its mission?", "Trilateral Cooperation Secretariat", "What is the mission of"),
    (NEAR_FORUM, "Where was it held?", "NEAR International Forum 2023", "Where was the NEAR"),
    (SECRETARIAT_ZH, "它是什么时候成立的？", "中日韩合作秘书处", "中日韩合作秘书处是什么时候"),
    (SECRETARIAT_ZH, "它的秘书长是谁？", "中日韩合作秘书处", "中日韩合作秘书处的秘书长"),
    (SECRETARIAT_ZH, "是什么时候成立的？", "中日韩合作秘书处", "中日韩合作秘书处是什么时候"),
    (SECRETARIAT_HANT, "它是什麼時候成立的？", "中日韓合作秘書處", "中日韓合作秘書處是什麼"),
    (SECRETARIAT_JA, "その事務局長は誰ですか", "日中韓協力事務局", "日中韓協力事務局の事務局長"),
    (SECRETARIAT_JA, "いつ設立されましたか", "日中韓協力事務局", "日中韓協力事務局はいつ"),
    (SECRETARIAT_KO, "그곳은 어디에 있나요?", "한중일 협력사무국", "한중일 협력사무국은 어디"),
    (SECRETARIAT_KO, "언제 설립되었나요?", "한중일 협력사무국", "한중일 협력사무국은 언제"),
]


@pytest.mark.parametrize(
    ("first", "followup", "subject", "rewritten"),
    RESOLVED,
    ids=[f"{i}-{row[1]}" for i, row in enumerate(RESOLVED)],
)
def test_a_followup_is_read_with_the_previous_questions_subject(
    first: str, followup: str, subject: str, rewritten: str
) -> None:
    resolution = resolve(followup, [Turn(first)])
    assert resolution is not None
    assert resolution.subject == subject
    assert resolution.question.startswith(rewritten)


def test_the_pronoun_agrees_in_animacy_with_its_antecedent() -> None:
    first = "Who is the Secretary General of the China-Japan-Korea Cooperation Secretariat?"
    thing = resolve("When was it founded?", [Turn(first)])
    person = resolve("Where is he from?", [Turn(first)])
    assert thing is not None and thing.subject == "China-Japan-Korea Cooperation Secretariat"
    assert person is not None and person.subject.startswith("Secretary General")


def test_they_takes_a_plural_antecedent() -> None:
    first = "What did Ou Boqian say about people-to-people exchanges among the three countries?"
    resolution = resolve("How many person-trips had they reached by 2018?", [Turn(first)])
    assert resolution is not None and resolution.subject == "three countries"


def test_a_chain_of_followups_keeps_the_first_subject() -> None:
    history = [Turn(TCS), Turn("When was it founded?")]
    resolution = resolve("Who leads it?", history)
    assert resolution is not None
    assert resolution.subject == "Trilateral Cooperation Secretariat"


@pytest.mark.parametrize(
    "question",
    [
        "Who organized the Ninth Trilateral Summit?",
        "What did Ou Boqian say about his plans?",  # "his" is Ou Boqian's
        "中日韩合作秘书处在哪里？",
        "NEAR 국제포럼 2023은 어디에서 열렸나요?",
    ],
)
def test_a_question_that_stands_on_its_own_is_not_rewritten(question: str) -> None:
    assert resolve(question, [Turn(TCS)]) is None


def test_without_history_nothing_is_resolved() -> None:
    assert resolve("When was it founded?", []) is None


def test_the_history_is_bounded() -> None:
    check_history([Turn(TCS)] * MAX_TURNS)
    with pytest.raises(InputError) as turns:
        check_history([Turn(TCS)] * (MAX_TURNS + 1))
    assert turns.value.field == "history"
    with pytest.raises(InputError) as long:
        check_history([Turn(TCS), Turn(TCS, answer="x" * (MAX_TURN_CHARS + 1))])
    assert long.value.field == "history[1].answer"


# ------------------------------------------------------------------------- the service
@pytest.fixture(scope="module")
def client(settings: Settings, corpus_index: CorpusIndex) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_api_answers_a_followup_and_names_the_subject_it_assumed(client: TestClient) -> None:
    first = client.post("/ask", json={"question": CJK}).json()
    answer = first["answer"] or {"text": None, "citation": None}
    # the citation is sent back whole, as the widget has it
    turn = {"question": CJK, "answer": answer["text"], "citation": answer["citation"]}
    response = client.post("/ask", json={"question": CITY, "history": [turn]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["assumed_subject"] == "China-Japan-Korea Cooperation Secretariat"
    assert body["resolved_question"] == (
        "Which city was the China-Japan-Korea Cooperation Secretariat established in?"
    )
    assert body["question"] == CITY
    assert body["answer"] is not None and answer_matches(body["answer"]["text"], SEOUL)
    alone = client.post("/ask", json={"question": CITY}).json()
    assert alone["answer"] is None or not answer_matches(alone["answer"]["text"], SEOUL)


def test_the_api_leaves_a_question_without_history_alone(client: TestClient) -> None:
    body = client.post("/ask", json={"question": "When was it founded?"}).json()
    assert body["assumed_subject"] is None and body["resolved_question"] is None


@pytest.mark.parametrize(
    ("history", "field"),
    [
        ([{"question": TCS}] * (MAX_TURNS + 1), "history"),
        ([{"question": "x" * (MAX_TURN_CHARS + 1)}], "history[0].question"),
        ([{"question": TCS, "answer": "x" * (MAX_TURN_CHARS + 1)}], "history[0].answer"),
    ],
    ids=["too-many-turns", "long-question", "long-answer"],
)
def test_the_api_refuses_a_history_over_its_bounds(
    client: TestClient, history: list[dict[str, str]], field: str
) -> None:
    response = client.post("/ask", json={"question": "Who leads it?", "history": history})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


# --------------------------------------------------------------------------- evaluation
def test_subject_matching_folds_and_accepts_containment_either_way() -> None:
    assert subject_matches(
        "Trilateral Cooperation Secretariat", "the trilateral cooperation secretariat"
    )
    assert subject_matches("中日韓合作秘書處", "中日韩合作秘书处")
    assert not subject_matches(
        "NEAR International Forum 2023", "Trilateral Cooperation Secretariat"
    )
    assert not subject_matches(None, "Trilateral Cooperation Secretariat")


def test_the_evaluator_computes_its_figures_on_a_tiny_file(engine: Engine, tmp_path: Path) -> None:
    rows = [
        {"id": "t1", "split": "train", "category": "followup", "language": "en", "first": CJK,
         "followup": CITY, "answers": SEOUL, "doc_id": "000_8e6ebfa50e614d2c",
         "subject": "the China-Japan-Korea Cooperation Secretariat"},
        {"id": "t2", "split": "test", "category": "followup", "language": "en", "first": CJK,
         "followup": CITY, "answers": SEOUL, "doc_id": "000_8e6ebfa50e614d2c",
         "subject": "the NEAR International Forum 2023"},
    ]  # fmt: skip
    path = tmp_path / "followups.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    outcomes = run_followups(engine.ask, load_followups(path))
    figures = followup_metrics(outcomes)
    train, test = figures["by_split"]["train"], figures["by_split"]["test"]
    assert train["n"] == test["n"] == 1
    assert train["resolution_accuracy"] == 1.0
    assert test["resolution_accuracy"] == 0.0  # the gold subject there is another one
    assert train["answer_accuracy"] == 1.0
    assert train["answer_accuracy_without_history"] == 0.0
    assert figures["all"]["resolution_accuracy"] == 0.5
