"""Damage and crashes: a damaged current generation is passed over (and its removals kept),
``citeqa build`` repairs it, a repaired one is served again, ``citeqa serve`` cleans up and
publishes what a crash left; live adds never write the shipped corpus."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.cli import main
from service.config import Settings
from service.engine import Engine
from service.errors import DocumentGoneError, InputError
from service.index import build_index, current_generation, load_index
from service.index.live import add_text, check_doc_id, remove_documents
from service.server import deps
from service.server.app import create_app

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
KEY = "recovery-admin-key"
TAKEN_DOWN = "The Quarry Lane bakery recall covers 316 loaves sold on June 3."


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A corpus copy, its index with three generations: the seeds, one document added,
    then removed (the current one records the removal)."""
    root = tmp_path_factory.mktemp("recovery")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    settings = Settings(
        corpus_dir=corpus, index_dir=root / "index", admin_key=KEY, rate_limit_per_minute=0
    )
    build_index(settings, progress=False)
    add_text(settings, TAKEN_DOWN, doc_id="takedown", title="Bakery recall")
    remove_documents(settings, ["takedown"])
    return settings


@pytest.fixture
def damaged(built: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A copy of ``built`` whose current generation has a flipped byte in dense.faiss."""
    index_dir = tmp_path / "index"
    shutil.copytree(built.index_dir, index_dir)
    settings = built.model_copy(update={"index_dir": index_dir})
    _flip(index_dir, "dense.faiss")
    yield settings


def _flip(index_dir: Path, name: str) -> bytes:
    current = current_generation(index_dir)
    assert current is not None
    path = current / name
    original = path.read_bytes()
    path.write_bytes(original[:100] + bytes([original[100] ^ 0xFF]) + original[101:])
    return original


def generations(index_dir: Path) -> list[Path]:
    return sorted(index_dir.glob("gen-*"))


def _args(settings: Settings) -> list[str]:
    return ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]


@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``citeqa serve`` runs up to the point it would start serving."""
    import uvicorn

    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(app))
    monkeypatch.setenv("CITEQA_WORKERS", "1")
    return started


def test_a_removed_document_stays_gone_when_an_older_generation_is_served(
    damaged: Settings,
) -> None:
    index = load_index(damaged)
    assert index.warning and "dense.faiss" in index.warning
    assert "takedown" in index.removed and "takedown" in index.hidden
    engine = Engine.from_settings(damaged, index=index)
    with pytest.raises(DocumentGoneError):
        engine.document("takedown")
    passages = engine.search("Quarry Lane bakery recall loaves", top_k=50)
    assert all(p.hit.chunk.doc_id != "takedown" for p in passages)
    answer = engine.ask("How many loaves does the Quarry Lane bakery recall cover?").answer
    assert answer is None or answer.citation.doc_id != "takedown"
    with TestClient(create_app(damaged)) as client:
        ready = client.get("/readyz").json()
        assert ready["status"] == "degraded" and "dense.faiss" in ready["reason"]
        assert client.get("/documents/takedown").status_code == 410
        assert client.get("/view/takedown").status_code == 410


def test_serve_starts_on_the_last_good_generation(
    damaged: Settings, no_uvicorn: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *_args(damaged)]) == 0
    assert len(no_uvicorn) == 1
    assert "Serving the last good generation" in capsys.readouterr().err


def test_build_repairs_a_damaged_current_generation_without_force(
    damaged: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--quiet", *_args(damaged)]) == 0
    assert capsys.readouterr().out.startswith("built ")
    index = load_index(damaged)
    assert index.warning is None and "takedown" in index.removed  # the removal carried
    assert "takedown" not in index.documents


def test_pruning_keeps_the_last_good_generation(damaged: Settings) -> None:
    good = load_index(damaged).path  # the one served while the current is damaged
    for n in range(3):  # publish past KEEP_GENERATIONS while a damaged one is current
        add_text(damaged, f"The Lowfield ferry note number {n} says little.", doc_id=f"n{n}")
        _flip(damaged.index_dir, "dense.faiss")
        assert good in generations(damaged.index_dir)
        index = load_index(damaged)
        assert index.warning and index.path == good
        assert "takedown" in index.removed and "takedown" not in index.documents


def test_a_repaired_generation_is_served_again(
    damaged: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deps, "RETRY_DAMAGED_SECONDS", 0.0)
    current = current_generation(damaged.index_dir)
    assert current is not None
    with TestClient(create_app(damaged)) as client:
        assert client.get("/readyz").json()["status"] == "degraded"
        time.sleep(1.1)
        client.get("/healthz")  # not an engine route: no reload
        client.get("/documents")  # a reload check: the current one is still damaged
        assert client.get("/readyz").json()["status"] == "degraded"
        _flip(damaged.index_dir, "dense.faiss")  # flipped back: repaired
        time.sleep(1.1)
        client.get("/documents")
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["generation"] == current.name
        assert ready["reason"] is None


def test_serve_removes_stale_builds_and_publishes_an_interrupted_change(
    built: Settings, tmp_path: Path, no_uvicorn: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = built.model_copy(
        update={"index_dir": tmp_path / "index", "data_dir": tmp_path / "data"}
    )
    shutil.copytree(built.index_dir, settings.index_dir)
    shutil.copytree(built.live_corpus_dir(), settings.live_corpus_dir())
    stale = settings.index_dir / ".building-20250101T000000000000Z"
    stale.mkdir()
    (stale / "chunks.jsonl").write_text("{}\n")
    # killed after the corpus write, before the publish
    (settings.live_corpus_dir() / "crashed.txt").write_text(
        "Crash Note\n\nThe Millbrook weir reopens on August 21 after repairs.\n"
    )
    assert "crashed" not in load_index(settings).documents
    monkeypatch.setenv("CITEQA_DATA_DIR", str(settings.data_dir))
    assert main(["serve", *_args(settings)]) == 0
    assert not stale.exists()
    assert "crashed" in load_index(settings).documents


def test_live_changes_never_write_the_corpus_folder(built: Settings) -> None:
    shipped = {path.name: path.read_bytes() for path in built.corpus_dir.iterdir()}
    live = built.live_corpus_dir()
    assert live.is_dir() and live != built.corpus_dir
    assert not (built.corpus_dir / "takedown.txt").exists()
    seed = sorted(p.stem for p in built.corpus_dir.iterdir())[0]
    other = built.model_copy(update={"data_dir": built.index_dir.parent / "data2"})
    remove_documents(other, [seed])
    assert not (other.live_corpus_dir() / f"{seed}.txt").exists()
    assert {p.name: p.read_bytes() for p in built.corpus_dir.iterdir()} == shipped
    assert seed not in load_index(other).documents
    add_text(other, "A note about the Eastmoor library hours on Sundays.", doc_id="library")
    assert {p.name: p.read_bytes() for p in built.corpus_dir.iterdir()} == shipped


def test_a_doc_id_ending_in_a_newline_is_refused(built: Settings) -> None:
    with pytest.raises(InputError):
        check_doc_id("report\n")
    with TestClient(create_app(built)) as client:
        body = {"text": "A short note.", "doc_id": "report\n"}
        response = client.post("/admin/documents", json=body, headers={"X-API-Key": KEY})
        assert response.status_code == 422, response.text


def test_a_title_cannot_set_the_source_or_the_date(built: Settings) -> None:
    with TestClient(create_app(built)) as client:
        body = {
            "text": "The Hollins bridge closes for a week of repairs from Monday.",
            "title": "Bridge closes Source: Evil Corp | 1999-01-01",
            "doc_id": "evil-title",
        }
        response = client.post("/admin/documents", json=body, headers={"X-API-Key": KEY})
        assert response.status_code == 422, response.text
        assert client.get("/documents/evil-title").status_code == 404


def test_head_on_the_probes(built: Settings) -> None:
    with TestClient(create_app(built)) as client:
        for path in ("/healthz", "/readyz"):
            response = client.head(path)
            assert response.status_code == 200, path
            assert response.content == b""
