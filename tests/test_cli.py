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
    # a passage names its source as a reader would cite it: title · publisher · date
    assert first.startswith("1. ") and "score" in first and " · " in first
    assert "Gyeongsangbuk-do" in out and "/view/003_94041ec9e2685c6c#" in out


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
    assert "-k (top_k) must be at least 1" in capsys.readouterr().err


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
    tested = [line for line in lines if '"split": "test"' in line][:3]
    questions.write_text("\n".join(lines[:6] + tested) + "\n", encoding="utf-8")
    report = tmp_path / "out" / "report.md"
    args = ["eval", *_args(settings), "--questions", str(questions), "--json"]
    assert main([*args, "--report", str(report)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"overall", "by_category", "by_split", "split_gap", "systems"}
    assert set(printed["systems"]) == {
        "dense",
        "multilingual",
        "bm25",
        "e5",
        "bridge",
        "rrf:bm25+e5",  # the practitioner's baseline
        "hybrid",
    }
    assert set(printed["overall"]) == {*METRICS, "n"} and printed["overall"]["n"] == 9
    assert {s: v["overall"]["n"] for s, v in printed["by_split"].items()} == {"train": 6, "test": 3}
    assert report.is_file() and (tmp_path / "out" / "report" / "abstention.png").is_file()
    # the split is optional: a file without it is one "unsplit" scope and no gap
    rows = [json.loads(line) for line in lines[:4]]
    questions.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "split"}) + "\n" for r in rows)
    )
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["by_split"]) == {"unsplit"} and printed["split_gap"] is None


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
    assert set(summary) == {
        "label_accuracy",
        "supported_wrongly",
        "mismatch_named",
        "evidence_recall",
        "ece",
        "confusion",
        "n",
        "by_split",
        "split_gap",
    }
    assert summary["n"] == 9
    assert sum(sum(row.values()) for row in summary["confusion"].values()) == 9


@pytest.mark.parametrize(
    ("argv", "module", "extra"),
    [
        (["eval", "--report", "REPORT"], "matplotlib", "lab"),
        (["bench", "--requests", "1", "--clients", "1"], "matplotlib", "lab"),
        (["bench", "--scale", "10", "--stores", "milvus"], "pymilvus", "milvus"),
        (["load", "--seconds", "1"], "locust", "lab"),
    ],
    ids=["eval --report", "bench", "bench --stores milvus", "load"],
)
def test_a_lab_command_names_the_extra_it_misses(
    argv: list[str],
    module: str,
    extra: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before it measures anything: one line saying what to install, exit status 2."""
    monkeypatch.setitem(sys.modules, module, None)  # import and find_spec now fail
    argv = [str(tmp_path / "report.md") if a == "REPORT" else a for a in argv]
    assert main([*argv, "--index", str(tmp_path / "index")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"needs the {extra} extra ({module}" in err
    assert f"pip install -e '.[{extra}]'" in err
    assert not (tmp_path / "report.md").exists() and not (tmp_path / "index").exists()


_EXTRAS = ("matplotlib", "locust", "httpx", "pymilvus", "milvus_lite")


def _python(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def test_help_loads_neither_the_lab_nor_its_extras() -> None:
    code = f"""
import sys
from service.cli import main
for argv in (["--help"], ["eval", "--help"], ["bench", "--help"], ["load", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
print("LOADED", sorted(m for m in sys.modules
                       if m.startswith("service.lab") or m.split(".")[0] in {_EXTRAS!r}))
"""
    out = _python(code)
    assert "--requests" in out and "--soak" in out  # the help of each command was printed
    assert out.splitlines()[-1] == "LOADED []"


def test_the_service_and_the_lab_import_without_the_lab_extra() -> None:
    """The core and the server run without the extras; the lab imports them only where it
    uses them, so its commands can say what is missing."""
    code = f"""
import importlib, sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {_EXTRAS!r}:
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Missing())
for name in ("service.cli", "service.engine", "service.index", "service.index.live",
             "service.verify.verifier", "service.server.app", "service.lab.commands",
             "service.lab.evaluate", "service.lab.bench", "service.lab.bench_report",
             "service.lab.stores", "service.lab.load", "service.lab.report",
             "service.lab.scale", "service.lab.scale.__main__"):
    importlib.import_module(name)
print("OK")
"""
    assert _python(code).strip() == "OK"


def test_a_refused_setting_is_one_line_naming_it_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITEQA_CHUNK_OVERLAP", "700")
    assert main(["build", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "CITEQA_CHUNK_OVERLAP" in err and "Traceback" not in err


def test_ask_and_verify_a_file_print_a_table_with_a_row_each(
    settings: Settings,
    corpus_index: CorpusIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    claims = tmp_path / "claims.txt"
    claims.write_text(
        "# a comment line\n中日韓核安全監管高官會目前已舉行六次。\n\n"
        "The Great Barrier Reef lies off the coast of Queensland.\n",
        encoding="utf-8",
    )
    assert main(["verify", "--file", str(claims), *_args(settings), "--quiet"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["claim", "verdict", "confidence", "evidence"]
    assert [row[1] for row in rows[1:]] == ["contradicted", "not_found"]
    assert main(["ask", "--file", str(claims), *_args(settings), "--quiet", "--json"]) == 0
    bodies = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(bodies) == 2 and all("answer" in body for body in bodies)


def test_a_file_without_questions_and_a_missing_file_are_explained(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n", encoding="utf-8")
    assert main(["verify", "--file", str(empty), *_args(settings)]) == 2
    assert "holds no claim" in capsys.readouterr().err
    assert main(["ask", "--file", str(tmp_path / "nowhere.txt"), *_args(settings)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["ask", *_args(settings)]) == 2
    assert "give a question" in capsys.readouterr().err


def test_filters_restrict_the_passages_and_name_the_option_when_wrong(
    settings: Settings, corpus_index: CorpusIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["search", "secretariat", *_args(settings), "--json", "--lang", "zh-Hant"]
    assert main(argv) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and {hit["language"] for hit in hits} == {"zh-Hant"}
    assert main(["search", "secretariat", *_args(settings), "--doc", "no_such_doc"]) == 2
    assert "--doc" in capsys.readouterr().err


def test_ask_and_verify_go_to_a_running_server(
    settings: Settings, corpus_index: CorpusIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.lab.processes import running_server

    question = "When was the China-Japan-Korea Cooperation Secretariat officially established?"
    with running_server(settings) as url:
        assert main(["ask", question, "--server", url, "--json"]) == 0
        remote = json.loads(capsys.readouterr().out)
        assert main(["verify", "中日韓核安全監管高官會目前已舉行六次。", "--server", url]) == 0
        assert capsys.readouterr().out.startswith("verdict: contradicted")
        assert main(["ask", question, "--server", url, "-k", "999"]) == 2
        assert "-k (top_k)" in capsys.readouterr().err  # the server's refusal, as the option
    assert main(["ask", question, *_args(settings), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert remote["answer"]["citation"] == local["answer"]["citation"]  # the same answer
    assert main(["ask", question, "--server", url]) == 2  # the server has stopped
    assert "cannot reach the citeqa service" in capsys.readouterr().err
