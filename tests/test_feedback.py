"""Readers' reports of a wrong answer: POST /feedback, the feedback log, ``citeqa feedback``.

The API tests drive the real app (every middleware, the real handlers) without its lifespan:
POST /feedback never reads the index, so no models are loaded for it.
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.cli import main
from service.config import Settings
from service.feedback import FeedbackCitation, FeedbackEntry, FeedbackLog
from service.server.app import create_app
from service.server.errors import MAX_BODY_BYTES

REPORT: dict[str, Any] = {
    "question": "When was the Trilateral Cooperation Secretariat officially established?",
    "answer": "September 2011",
    "citation": {"doc_id": "000_8e6ebfa50e614d2c", "char_start": 1027, "char_end": 1041},
    "note": "The article says the agreement was signed in 2010.",
    "language": "en",
    "kind": "answer",
}


def _settings(folder: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "index_dir": folder / "index",
        "feedback_dir": folder / "feedback",
        "rate_limit_per_minute": 0,
        "feedback_rate_per_minute": 0,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "feedback"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return TestClient(create_app(_settings(tmp_path)))


def _lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.open()]


def _entry(question: str, note: str = "wrong date", kind: str = "answer") -> FeedbackEntry:
    citation = FeedbackCitation("003_94041ec9e2685c6c", 10, 20)
    return FeedbackEntry(kind, question, "an answer", citation, note, "en")  # type: ignore[arg-type]


def _at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


# ----------------------------------------------------------------------------- the endpoint


def test_a_report_is_stored_as_one_line_of_todays_file(client: TestClient, folder: Path) -> None:
    response = client.post("/feedback", json=REPORT)
    assert response.status_code == 201
    report_id = response.json()["id"]
    assert list(response.json()) == ["id"]
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert [p.name for p in folder.iterdir()] == [f"feedback-{today}.jsonl"]
    (line,) = _lines(folder)
    assert line == {"id": report_id, "received": line["received"], **REPORT}
    received = dt.datetime.fromisoformat(line["received"])
    assert received.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - received).total_seconds()) < 60


def test_a_report_without_answer_or_citation_is_stored_with_nulls(
    client: TestClient, folder: Path
) -> None:
    body = {"question": "它是什么时候成立的？", "note": "没有回答", "kind": "claim"}
    assert client.post("/feedback", json=body).status_code == 201
    (line,) = _lines(folder)
    assert line["answer"] is None and line["citation"] is None and line["language"] is None
    assert line["question"] == "它是什么时候成立的？" and line["kind"] == "claim"


def test_control_characters_never_reach_the_log(client: TestClient, folder: Path) -> None:
    body = {**REPORT, "note": "\x1b[2J\x1b]0;owned\x07 wrong year\x00"}
    assert client.post("/feedback", json=body).status_code == 201
    (line,) = _lines(folder)
    assert not any(ord(ch) < 32 for ch in line["note"])
    assert line["note"].endswith("wrong year")


@pytest.mark.parametrize("field", ["question", "answer", "note"])
def test_a_field_over_2000_characters_is_refused_naming_it(
    client: TestClient, folder: Path, field: str
) -> None:
    response = client.post("/feedback", json={**REPORT, field: "字" * 2001})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == field
    assert "2001 characters" in error["message"] and "2000" in error["message"]
    assert not folder.exists()  # nothing stored


def test_2000_characters_are_allowed(client: TestClient, folder: Path) -> None:
    body = {**REPORT, "question": "问" * 2000, "answer": "答" * 2000, "note": "错" * 2000}
    assert client.post("/feedback", json=body).status_code == 201
    assert _lines(folder)[0]["note"] == "错" * 2000


def test_a_body_over_the_size_limit_is_refused_unread(client: TestClient, folder: Path) -> None:
    body = json.dumps({**REPORT, "note": "x" * MAX_BODY_BYTES})
    response = client.post("/feedback", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"
    assert not folder.exists()


CITED = {"doc_id": "d", "char_start": 1, "char_end": 3}
MALFORMED = [
    ({k: v for k, v in REPORT.items() if k != "note"}, "note", "required"),
    ({k: v for k, v in REPORT.items() if k != "question"}, "question", "required"),
    ({**REPORT, "note": "  \n\t "}, "note", "empty"),
    ({**REPORT, "kind": "typo"}, "kind", "'answer' or 'claim'"),
    ({**REPORT, "citation": {"doc_id": "d", "char_start": 9, "char_end": 3}}, "citation", "before"),
    ({**REPORT, "citation": {**CITED, "char_start": -1}}, "citation.char_start", "greater"),
    ({**REPORT, "citation": {"char_start": 1, "char_end": 3}}, "citation.doc_id", "required"),
    ({**REPORT, "citation": {**CITED, "char_start": "1"}}, "citation.char_start", "integer"),
    ({**REPORT, "language": "x" * 36}, "language", "at most 35"),
    ({**REPORT, "email": "reader@example.org"}, "email", "not a field"),
    ({**REPORT, "note": ["a", "list"]}, "note", "string"),
    (["not", "an", "object"], "body", "JSON object"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field", "says"),
    MALFORMED,
    ids=[
        "no-note", "no-question", "blank-note", "unknown-kind", "citation-backwards",
        "negative-offset", "citation-without-doc", "offset-as-string", "long-language",
        "unknown-field", "note-not-text", "not-an-object",
    ],
)  # fmt: skip
def test_a_malformed_report_is_refused_saying_what_to_fix(
    client: TestClient, folder: Path, body: Any, field: str, says: str
) -> None:
    response = client.post("/feedback", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e["field"] == field and says in e["message"] for e in errors), errors
    assert not folder.exists()


def test_a_body_that_is_not_json_is_refused(client: TestClient) -> None:
    response = client.post(
        "/feedback", content=b"note=wrong", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]["message"]


def test_reports_have_their_own_rate_limit_answering_429(tmp_path: Path) -> None:
    settings = _settings(tmp_path, feedback_rate_per_minute=1, feedback_rate_burst=3)
    client = TestClient(create_app(settings))
    statuses = [client.post("/feedback", json=REPORT).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    refused = client.post("/feedback", json=REPORT)
    assert int(refused.headers["retry-after"]) >= 1
    assert "/feedback" in refused.json()["error"]["message"]
    assert len(_lines(tmp_path / "feedback")) == 3
    assert client.get("/docs").status_code == 200  # the rest of the service is not limited


def test_the_service_wide_limit_still_applies_to_reports(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, rate_limit_per_minute=1, rate_limit_burst=2, feedback_rate_per_minute=600
    )
    client = TestClient(create_app(settings))
    statuses = [client.post("/feedback", json=REPORT).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]


def test_a_full_day_answers_503_until_tomorrow(tmp_path: Path) -> None:
    client = TestClient(create_app(_settings(tmp_path, feedback_max_day_bytes=1000)))
    assert client.post("/feedback", json=REPORT).status_code == 201
    response = client.post("/feedback", json={**REPORT, "note": "n" * 800})
    assert response.status_code == 503
    assert "full" in response.json()["error"]["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 86_400
    assert len(_lines(tmp_path / "feedback")) == 1


def test_the_feedback_folder_defaults_to_one_beside_the_index() -> None:
    assert Settings(index_dir=Path("/srv/citeqa/index")).feedback_folder() == Path(
        "/srv/citeqa/feedback"
    )
    named = Settings(index_dir=Path("index"), feedback_dir=Path("/var/log/citeqa"))
    assert named.feedback_folder() == Path("/var/log/citeqa")


# ----------------------------------------------------------------------------- the log


def test_concurrent_reports_never_interleave_their_lines(folder: Path) -> None:
    log = FeedbackLog(folder, max_day_bytes=100_000_000)
    notes = [f"{n:03d}" + "长" * 1990 for n in range(200)]  # 6 KB lines: over a pipe buffer
    with ThreadPoolExecutor(max_workers=8) as pool:
        records = list(pool.map(lambda note: log.add(_entry("Q?", note)), notes))
    lines = _lines(folder)
    assert sorted(line["note"] for line in lines) == sorted(notes)
    assert {line["id"] for line in lines} == {r.id for r in records}


def test_a_torn_line_is_skipped_when_reading(folder: Path) -> None:
    log = FeedbackLog(folder, max_day_bytes=1_000_000)
    log.add(_entry("first"), now=_at("2025-06-01", 9))
    with log.day_file(dt.date(2025, 6, 1)).open("a", encoding="utf-8") as torn:
        torn.write('{"id": "x", "recei\n[1, 2]\n')
    log.add(_entry("second"), now=_at("2025-06-01", 10))
    assert [r.entry.question for r in log.records()] == ["second", "first"]


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture
def three_days(folder: Path) -> Path:
    log = FeedbackLog(folder, max_day_bytes=1_000_000)
    log.add(_entry("Who organised the NEAR forum?"), now=_at("2025-06-01", 8))
    log.add(_entry("中日韩合作秘书处何时成立？", note="日期错了"), now=_at("2025-06-02", 9))
    log.add(_entry("The summit was in Seoul.", kind="claim"), now=_at("2025-06-02", 7))
    log.add(_entry("Who leads it?", note="wrong person"), now=_at("2025-06-03", 23))
    return folder


def _feedback(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["feedback", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_cli_lists_reports_newest_first_in_a_table(
    three_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _feedback(capsys, "--dir", str(three_days))
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split() == ["received", "(UTC)", "kind", "question", "note"]
    assert [row[:16] for row in rows] == [
        "2025-06-03 23:00", "2025-06-02 09:00", "2025-06-02 07:00", "2025-06-01 08:00",
    ]  # fmt: skip
    assert "Who leads it?" in rows[0] and "wrong person" in rows[0]
    assert "claim" in rows[2]
    # the note column starts at the same terminal cell whatever the question's script
    assert rows[0].index("wrong") == _cells(rows[1][: rows[1].index("日期")])


def _cells(text: str) -> int:
    return sum(2 if "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" else 1 for ch in text)


def test_the_cli_filters_by_day_and_limits_the_count(
    three_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _feedback(capsys, "--dir", str(three_days), "--since", "2025-06-02", "--json")
    questions = [json.loads(line)["question"] for line in out.splitlines()]
    assert questions == ["Who leads it?", "中日韩合作秘书处何时成立？", "The summit was in Seoul."]
    _, out, _ = _feedback(capsys, "--dir", str(three_days), "--limit", "2", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["question"] for r in records] == ["Who leads it?", "中日韩合作秘书处何时成立？"]
    assert set(records[0]) == {"id", "received", *REPORT}


def test_the_cli_shortens_long_text_to_its_column(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    FeedbackLog(folder, 1_000_000).add(_entry("问" * 300, note="a\nlong\nnote " * 100))
    _, out, _ = _feedback(capsys, "--dir", str(folder))
    row = out.splitlines()[1]
    assert "问" * 19 + "…" in row and "问" * 20 not in row
    assert "\n" not in row and len(row) < 140


def test_the_cli_says_so_when_there_is_no_feedback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    status, out, _ = _feedback(capsys, "--dir", str(missing))
    assert status == 0 and f"{missing} does not exist" in out
    missing.mkdir()
    status, out, _ = _feedback(capsys, "--dir", str(missing))
    assert status == 0 and out.startswith("no feedback in")
    status, out, err = _feedback(capsys, "--dir", str(missing), "--json")
    assert out == "" and "no feedback" in err  # stdout stays JSON lines


def test_the_cli_says_none_since_a_day_after_the_last(
    three_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _feedback(capsys, "--dir", str(three_days), "--since", "2025-07-01")
    assert out.strip() == f"no feedback since 2025-07-01 in {three_days}"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "2025-6-1"], "YYYY-MM-DD"),
        (["--since", "2025-02-30"], "YYYY-MM-DD"),
        (["--limit", "0"], "whole number from 1"),
        (["--limit", "ten"], "whole number from 1"),
    ],
)
def test_the_cli_refuses_a_bad_day_or_count(
    folder: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["feedback", "--dir", str(folder), *args])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err
