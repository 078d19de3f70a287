"""The live corpus: add, remove and rebuild while serving; generations; damaged files."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.cli import main
from service.config import Settings
from service.engine import Engine
from service.errors import DocumentGoneError, InputError, UnknownDocumentError
from service.index import CURRENT, MANIFEST, build_index, current_generation, load_index
from service.index.live import add_text, remove_documents
from service.server.app import create_app

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
KEY = "s3cret-admin-key"
LANTERN = (
    "Harbour Lantern Festival Notice\n\n"
    "The Harbour Lantern Festival opens on March 14 at the old ferry pier, organisers said.\n"
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    corpus = tmp_path_factory.mktemp("live-corpus")
    for path in SEEDS.iterdir():
        shutil.copy(path, corpus / path.name)
    settings = Settings(
        corpus_dir=corpus,
        index_dir=tmp_path_factory.mktemp("live-index"),
        admin_key=KEY,
        rate_limit_per_minute=0,
    )
    build_index(settings, progress=False)
    return settings


@pytest.fixture(scope="module")
def client(live: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(live)) as client:
        yield client


def _chunk_ids(settings: Settings) -> dict[str, set[str]]:
    generation = current_generation(settings.index_dir)
    assert generation is not None
    ids: dict[str, set[str]] = {}
    for line in (generation / "chunks.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        ids.setdefault(row["doc_id"], set()).add(row["chunk_id"])
    return ids


def test_cli_add_and_remove_publish_generations(
    live: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _chunk_ids(live)
    first = current_generation(live.index_dir)
    document = tmp_path / "910_lantern.txt"
    document.write_text(LANTERN, encoding="utf-8")
    args = ["--corpus", str(live.corpus_dir), "--index", str(live.index_dir)]
    assert main(["add", str(document), *args]) == 0
    assert "published" in capsys.readouterr().out
    second = current_generation(live.index_dir)
    assert second != first
    after = _chunk_ids(live)
    assert "910_lantern" in after
    for doc_id, ids in before.items():  # unchanged text keeps its chunk ids (and links)
        assert after[doc_id] == ids
    engine = Engine.from_settings(live)
    answer = engine.ask("When does the Harbour Lantern Festival open?").answer
    assert answer is not None and answer.text == "March 14"

    assert main(["remove", "910_lantern", *args]) == 0
    engine = Engine.from_settings(live)
    with pytest.raises(DocumentGoneError, match="was removed"):
        engine.document("910_lantern")
    assert "910_lantern" in engine.index.removed
    assert _chunk_ids(live) == before
    with pytest.raises(UnknownDocumentError):
        remove_documents(live, ["no-such-document"])


def test_removing_every_document_is_refused(live: Settings) -> None:
    everything = [p.stem for p in live.corpus_dir.iterdir() if p.suffix in (".txt", ".md")]
    with pytest.raises(InputError, match="every document"):
        remove_documents(live, everything)


def test_admin_routes_need_the_key(live: Settings, client: TestClient) -> None:
    body = {"text": "A short test note about nothing in particular.", "title": "Note"}
    assert client.post("/admin/documents", json=body).status_code == 401
    wrong = client.post("/admin/documents", json=body, headers={"X-API-Key": "wrong"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert wrong.json()["error"]["message"].startswith("a valid admin key is required")
    preflight = client.options(
        "/admin/rebuild",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers  # no CORS on admin


def test_admin_routes_are_off_without_a_key(live: Settings) -> None:
    settings = live.model_copy(update={"admin_key": None})
    with TestClient(create_app(settings)) as other:
        response = other.post("/admin/rebuild", headers={"X-API-Key": KEY})
    assert response.status_code == 404
    assert "CITEQA_ADMIN_KEY" in response.json()["error"]["message"]


def test_admin_add_is_served_at_once_and_delete_answers_410(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {
        "text": "The Riverside Kite Contest drew 412 entrants on its opening day.",
        "title": "Riverside Kite Contest",
        "source": "Test Wire",
        "published": "2025-04-02",
        "doc_id": "920_kites",
    }
    added = client.post("/admin/documents", json=body, headers=headers)
    assert added.status_code == 201, added.text
    assert added.json()["doc_id"] == "920_kites"
    document = client.get("/documents/920_kites").json()
    assert document["title"] == "Riverside Kite Contest"
    assert document["published"] == "2025-04-02" and document["source"] == "Test Wire"
    answer = client.post("/ask", json={"question": "How many entrants did the kite contest draw?"})
    passages = answer.json()["passages"]  # what the reader then quotes is the eval's business
    assert passages and passages[0]["doc_id"] == "920_kites" and "412" in passages[0]["text"]

    quote = {"quote": "The Riverside Kite Contest drew 412 entrants"}
    cited = client.post("/cite", json=quote).json()
    assert cited["match"] == "exact" and cited["matches"][0]["doc_id"] == "920_kites"

    removed = client.delete("/admin/documents/920_kites", headers=headers)
    assert removed.status_code == 200
    after = client.post("/cite", json=quote)
    assert after.status_code == 200 and after.json()["match"] == "none", after.text
    for path in ("/documents/920_kites", "/view/920_kites"):
        gone = client.get(path)
        assert gone.status_code == 410 and "removed" in gone.json()["error"]["message"]
    assert client.get("/documents/never-there").status_code == 404
    assert client.delete("/admin/documents/never-there", headers=headers).status_code == 404


def test_a_change_from_another_process_is_picked_up(live: Settings, client: TestClient) -> None:
    before = client.get("/readyz").json()["generation"]
    add_text(live, "The Northgate Choir sings on May 9 at the town hall.", doc_id="930_choir")
    time.sleep(1.1)  # the app looks at CURRENT at most once a second
    client.get("/healthz")
    assert client.get("/documents/930_choir").status_code == 200
    assert client.get("/readyz").json()["generation"] != before


def test_a_damaged_generation_is_refused_and_the_last_good_one_served(
    live: Settings, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(live.index_dir, index_dir)
    settings = live.model_copy(update={"index_dir": index_dir})
    add_text(settings, "The Eastbank Ferry runs every 20 minutes.", doc_id="940_ferry")
    good = current_generation(index_dir)  # holds 940_ferry; the damaged one removed it
    assert good is not None
    remove_documents(settings, ["940_ferry"])
    damaged = current_generation(index_dir)
    assert damaged is not None and damaged != good
    manifest = json.loads((damaged / MANIFEST).read_text())
    for name in manifest["files"]:  # flip a byte in each file in turn, then truncate it
        path = damaged / name
        original = path.read_bytes()
        if not original:
            continue
        path.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])
        index = load_index(settings)
        assert index.path == good and index.warning and name in index.warning
        assert "940_ferry" in index.removed and "940_ferry" not in index.documents
        path.write_bytes(original[: len(original) // 2])
        index = load_index(settings)
        assert index.path == good and "940_ferry" not in index.documents
        path.write_bytes(original)
    assert load_index(settings).path == damaged
    assert (index_dir / CURRENT).read_text().strip() == damaged.name


def test_a_manifest_that_disagrees_with_its_files_is_refused(
    live: Settings, tmp_path: Path
) -> None:
    """Checksums pass, but the manifest's counts or the chunk ids say otherwise: the
    generation is refused with the count named, and the last good one is served."""
    index_dir = tmp_path / "index"
    shutil.copytree(live.index_dir, index_dir)
    settings = live.model_copy(update={"index_dir": index_dir})
    good = current_generation(index_dir)
    add_text(settings, "The Westbank Ferry runs every 30 minutes.", doc_id="950_ferry")
    changed = current_generation(index_dir)
    assert changed is not None and changed != good
    manifest_path = changed / MANIFEST
    original = manifest_path.read_text()
    for key, what in (("chunks", "chunks"), ("sentences", "sentences"), ("documents", "docu")):
        manifest = json.loads(original)
        manifest["counts"][key] += 1
        manifest_path.write_text(json.dumps(manifest))
        index = load_index(settings)
        assert index.path == good, key
        assert index.warning and "manifest says" in index.warning and what in index.warning
    chunks_path = changed / "chunks.jsonl"  # a duplicated chunk id, checksum updated
    rows = chunks_path.read_text(encoding="utf-8").splitlines()
    first, second = json.loads(rows[0]), json.loads(rows[1])
    second["chunk_id"] = first["chunk_id"]
    rows[1] = json.dumps(second, ensure_ascii=False)
    chunks_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    manifest = json.loads(original)
    manifest["files"]["chunks.jsonl"] = {
        "bytes": chunks_path.stat().st_size,
        "sha256": hashlib.sha256(chunks_path.read_bytes()).hexdigest(),
    }
    manifest_path.write_text(json.dumps(manifest))
    index = load_index(settings)
    assert index.path == good and index.warning and "distinct chunk ids" in index.warning


def test_an_admin_change_over_its_budget_answers_503_and_is_published_anyway(
    live: Settings, client: TestClient
) -> None:
    """The caller is not kept waiting past CITEQA_ADMIN_BUDGET_SECONDS; the change is not
    lost: it goes on in the background, and the service serves it once published."""
    headers = {"Authorization": f"Bearer {KEY}"}
    impatient = live.model_copy(update={"admin_budget_seconds": 0.01})
    body = {"text": LANTERN, "title": "Harbour Lantern Festival", "doc_id": "930_lanterns"}
    with TestClient(create_app(impatient)) as hurried:
        answer = hurried.post("/admin/documents", json=body, headers=headers)
        assert answer.status_code == 503, answer.text
        assert "goes on in the background" in answer.json()["error"]["message"]
        deadline = time.monotonic() + 120
        while hurried.get("/documents/930_lanterns").status_code != 200:
            assert time.monotonic() < deadline, "the change was never published"
            time.sleep(0.5)
    assert client.delete("/admin/documents/930_lanterns", headers=headers).status_code == 200
