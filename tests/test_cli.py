import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli import main
from service.config import Settings
from service.index import CorpusIndex


def _args(settings: Settings) -> list[str]:
    return ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]


def test_build_reports_up_to_date(
    settings: Settings, corpus_index: CorpusIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", *_args(settings), "--quiet"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_search_prints_ranked_passages(
    settings: Settings, corpus_index: CorpusIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "Who organized the NEAR International Forum 2023?"
    assert main(["search", query, *_args(settings), "-k", "3"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("1. 003_94041ec9e2685c6c [") and "score" in first
    assert "Gyeongsangbuk-do" in out


def test_search_json(
    settings: Settings, corpus_index: CorpusIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "地震减灾", *_args(settings), "--json", "-k", "2"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["query"] == "地震减灾"
    assert [hit["rank"] for hit in body["hits"]] == [1, 2]
    hit = body["hits"][0]
    document = corpus_index.documents[hit["doc_id"]]
    assert document.text[hit["char_start"] : hit["char_end"]] == hit["text"]


def test_search_without_index_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "anything", "--index", str(tmp_path)]) == 2
    assert "citeqa build" in capsys.readouterr().err


def test_bad_k_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "x", "-k", "0"]) == 2
    assert "-k must be at least 1" in capsys.readouterr().err


def test_python_dash_m_service_has_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("build", "search", "serve"):
        assert command in result.stdout


def test_serve_without_an_index_explains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--index", str(tmp_path), "--port", "1"]) == 2
    assert "citeqa build" in capsys.readouterr().err


def test_eval_json_has_the_documented_shape(
    settings: Settings,
    corpus_index: CorpusIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from service.lab.evaluate import METRICS

    source = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()
    questions = tmp_path / "some.jsonl"  # any file in the format, not only ours
    questions.write_text("\n".join(lines[:6] + lines[-3:]) + "\n", encoding="utf-8")
    report = tmp_path / "out" / "report.md"
    args = ["eval", *_args(settings), "--questions", str(questions), "--json"]
    assert main([*args, "--report", str(report)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"overall", "by_category", "systems"}
    assert set(printed["systems"]) == {"dense", "multilingual", "bm25", "hybrid"}
    assert set(printed["overall"]) == {*METRICS, "n"} and printed["overall"]["n"] == 9
    assert report.is_file() and (tmp_path / "out" / "report" / "abstention.png").is_file()


def test_verify_json_is_the_api_body(
    settings: Settings, corpus_index: CorpusIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    claim = "中日韓核安全監管高官會目前已舉行六次。"
    assert main(["verify", claim, *_args(settings), "--json", "-k", "2"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["verdict"] == "contradicted" and len(body["evidence"]) <= 2
    assert main(["verify", "  ", *_args(settings)]) == 2
    assert "claim is empty" in capsys.readouterr().err


def test_eval_claims_json(
    settings: Settings,
    corpus_index: CorpusIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = Path(__file__).resolve().parent.parent / "eval" / "claims.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()
    claims = tmp_path / "claims.jsonl"
    claims.write_text("\n".join(lines[:3] + lines[30:33] + lines[-3:]) + "\n", encoding="utf-8")
    assert main(["eval", *_args(settings), "--claims", str(claims), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"claims"}
    summary = printed["claims"]
    assert set(summary) == {"label_accuracy", "evidence_recall", "confusion", "n"}
    assert summary["n"] == 9
    assert sum(sum(row.values()) for row in summary["confusion"].values()) == 9
