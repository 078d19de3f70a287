"""The live corpus against a real server (``citeqa serve`` in a child process): reads while
documents come and go, and kill -9 in the middle of changes (marked slow)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import threading
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from service.index import build_index, check_index, current_generation
from service.lab.processes import free_port, running_server

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
KEY = "live-serving-key"
QUESTIONS = [
    "Who organized the NEAR International Forum 2023?",
    "中日韩地震减灾三边会议由哪些机构举行？",
    "When does the Harbour Lantern Festival open?",
    "When was the China-Japan-Korea Cooperation Secretariat officially established?",
]


@pytest.fixture
def live_settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in SEEDS.iterdir():
        shutil.copy(path, corpus / path.name)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", admin_key=KEY)
    build_index(settings, progress=False)
    return settings


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers these tests start take the admin key and no rate limit from here."""
    monkeypatch.setenv("CITEQA_ADMIN_KEY", KEY)
    monkeypatch.setenv("CITEQA_RATE_LIMIT_PER_MINUTE", "0")


def _document(n: int) -> dict[str, str]:
    return {
        "doc_id": f"churn-{n % 3}",
        "title": "Harbour Lantern Festival Notice",
        "text": f"The Harbour Lantern Festival opens on March {10 + n % 3} at the old ferry pier.",
    }


def _citations_match(client: httpx.Client, body: dict) -> bool:
    """Every quote slices out of its document (a document removed since reads 410)."""
    cited = [body["answer"]["citation"]] if body.get("answer") else []
    for citation in cited:
        response = client.get(f"/documents/{citation['doc_id']}")
        if response.status_code == 410:
            continue
        text = response.json()["text"]
        if text[citation["char_start"] : citation["char_end"]] != citation["quote"]:
            return False
    return True


def test_reads_during_writes(live_settings: Settings, server_env: None) -> None:
    stop = threading.Event()
    failures: list[str] = []
    answered = [0]

    def reader(url: str, n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = n
            while not stop.is_set():
                question = QUESTIONS[i % len(QUESTIONS)]
                response = client.post("/ask", json={"question": question})
                if response.status_code >= 500:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                elif response.status_code == 200:
                    answered[0] += 1
                    if not _citations_match(client, response.json()):
                        failures.append(f"mismatched citation for {question!r}")
                i += 1

    with running_server(live_settings, workers=2) as url:
        threads = [threading.Thread(target=reader, args=(url, n)) for n in range(8)]
        for thread in threads:
            thread.start()
        with httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": KEY}) as admin:
            for n in range(6):
                added = admin.post("/admin/documents", json=_document(n))
                assert added.status_code == 201, added.text
                if n % 2:
                    removed = admin.delete(f"/admin/documents/{_document(n)['doc_id']}")
                    assert removed.status_code == 200, removed.text
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures, failures[:5]
    assert answered[0] > 20


@pytest.mark.slow
def test_kill_9_during_changes_loses_nothing_acknowledged(
    live_settings: Settings, server_env: None
) -> None:
    """50 add/remove/rebuild calls; the server is killed at random moments and restarted.
    Every change answered 2xx is in the served index (unless a later, unanswered change to
    the same document may have landed); every generation loads clean."""
    rng = random.Random(7)
    port = free_port()
    expected: dict[str, bool] = {}  # doc_id -> present, per acknowledged change
    kills = operations = 0
    while operations < 50:
        with running_server(live_settings, port=port) as url:
            pid = _server_pid(port)
            killer = threading.Timer(rng.uniform(0.5, 6.0), os.kill, (pid, signal.SIGKILL))
            killer.start()
            with httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": KEY}) as c:
                try:
                    while operations < 50:
                        operations += 1
                        doc_id = f"kill-{rng.randrange(6)}"
                        kind = rng.choice(["add", "add", "remove", "rebuild"])
                        if kind == "add":
                            body = {"doc_id": doc_id, "text": f"Note {doc_id}: {operations}."}
                            if c.post("/admin/documents", json=body).status_code == 201:
                                expected[doc_id] = True
                        elif kind == "remove":
                            if c.delete(f"/admin/documents/{doc_id}").status_code == 200:
                                expected[doc_id] = False
                        else:
                            c.post("/admin/rebuild")
                except httpx.HTTPError:
                    kills += 1  # killed mid-call: that change was not acknowledged, so it
                    expected.pop(doc_id, None)  # may or may not have landed; both are fine
            killer.cancel()
    check_index(live_settings)  # the current generation is whole
    with (
        running_server(live_settings, port=port) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        for doc_id, present in expected.items():
            status = c.get(f"/documents/{doc_id}").status_code
            assert (status == 200) is present, (doc_id, present, status)
    assert kills >= 1 and current_generation(live_settings.index_dir) is not None
    _damaged_current_keeps_removals(live_settings, port, expected)


def _damaged_current_keeps_removals(
    settings: Settings, port: int, expected: dict[str, bool]
) -> None:
    """One more add and its removal, then a flipped byte in the current generation: the
    server starts on the older one, says "degraded", and nothing removed comes back."""
    from service.index.live import add_text, remove_documents

    add_text(settings, "The Kiln Street market opens at dawn.", doc_id="kill-final")
    remove_documents(settings, ["kill-final"])
    current = current_generation(settings.index_dir)
    assert current is not None
    target = current / "dense.faiss"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))
    with running_server(settings, port=port) as url, httpx.Client(base_url=url, timeout=60) as c:
        ready = c.get("/readyz").json()
        assert ready["status"] == "degraded" and ready["generation"] != current.name
        assert c.get("/documents/kill-final").status_code == 410
        for doc_id, present in expected.items():
            if not present:
                assert c.get(f"/documents/{doc_id}").status_code != 200, doc_id


def _server_pid(port: int) -> int:
    """The pid of the process listening on ``port`` (the uvicorn server)."""
    inode = None
    hex_port = f"{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{hex_port}") and fields[3] == "0A":
            inode = fields[9]
            break
    assert inode is not None, "nothing listens on the port"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) == f"socket:[{inode}]":
                    return int(proc.name)
        except OSError:
            continue
    raise AssertionError("no process owns the listening socket")


def test_manifest_records_removals(live_settings: Settings) -> None:
    from service.index.live import add_text, remove_documents

    add_text(live_settings, "A note that will not stay.", doc_id="brief-note")
    remove_documents(live_settings, ["brief-note"])
    generation = current_generation(live_settings.index_dir)
    assert generation is not None
    manifest = json.loads((generation / "manifest.json").read_text())
    assert "brief-note" in manifest["removed"]
