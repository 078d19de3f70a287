"""Document metadata: the sidecar NAME.meta.json, its checks, the seeds' sidecars, and how
an index generation carries it. No models are loaded except by the index tests, which use
the session's index built from the seeds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service.config import Settings
from service.errors import CorpusError, IndexMismatchError, InputError
from service.index import CorpusIndex, build_index, current_generation, load_index
from service.index.layout import MANIFEST, read_documents
from service.index.live import add_text
from service.ingest.documents import corpus_files, find_date, read_corpus, read_document
from service.ingest.metadata import Metadata, check_metadata, read_sidecar

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
TEXT = (
    "Harbour lanterns return\n\nSource: Wire One | 2025-03-02\n\nThe festival opens on March 14.\n"
)


def _corpus(tmp_path: Path, meta: object | None = None, raw: str | None = None) -> Path:
    (tmp_path / "doc.txt").write_text(TEXT, encoding="utf-8")
    if meta is not None or raw is not None:
        payload = raw if raw is not None else json.dumps(meta)
        (tmp_path / "doc.meta.json").write_text(payload, encoding="utf-8")
    return tmp_path / "doc.txt"


def test_without_a_sidecar_only_what_the_text_states_is_filled(tmp_path: Path) -> None:
    document = read_document(_corpus(tmp_path))
    assert (document.title, document.source, document.published) == (
        "Harbour lanterns return",
        "Wire One",
        "2025-03-02",
    )
    assert (document.author, document.url, document.language, document.published_at) == (
        None,
        None,
        None,
        None,
    )


def test_the_sidecar_wins_over_the_text_and_leaves_the_rest_as_stated(tmp_path: Path) -> None:
    meta = {"publisher": "Wire Two", "published": "2025-03-01T09:15", "url": "https://a.example/x"}
    document = read_document(_corpus(tmp_path, meta))
    assert document.title == "Harbour lanterns return"  # the text's, the sidecar is silent
    assert (document.source, document.url) == ("Wire Two", "https://a.example/x")
    assert (document.published, document.published_at) == ("2025-03-01", "2025-03-01T09:15:00")


def test_a_numbered_section_heading_is_not_a_title() -> None:
    document = read_document(SEEDS / "004_f0aa982511d8ddb1.txt")
    assert document.title is None  # «二、政治安全領域» heads a section, the text has no headline
    assert document.text.lstrip("- \n").find("二、政治安全領域") >= 0


def test_an_author_field_in_the_header_is_read() -> None:
    assert read_document(SEEDS / "001_e414230abc2dfe9b.txt").author == "GONG Qian"


@pytest.mark.parametrize(
    ("meta", "field", "hint"),
    [
        ({"headline": "x"}, "headline", "not a metadata field"),
        ({"title": 3}, "title", "must be a string"),
        ({"published": "2024-02-30"}, "published", "not a real date"),
        ({"published": "May 25, 2024"}, "published", "YYYY-MM-DD"),
        ({"url": "www.example.com/a"}, "url", "http(s)"),
        ({"url": "javascript:alert(1)"}, "url", "http(s)"),
        ({"language": "English!"}, "language", "language tag"),
        ({"title": "x" * 501}, "title", "at most 500"),
    ],
    ids=["unknown", "type", "bad-date", "not-iso", "no-scheme", "script-url", "language", "long"],
)
def test_a_bad_sidecar_is_an_error_naming_the_file_and_the_field(
    tmp_path: Path, meta: object, field: str, hint: str
) -> None:
    path = _corpus(tmp_path, meta)
    with pytest.raises(CorpusError) as raised:
        read_document(path)
    message = str(raised.value)
    assert "doc.meta.json" in message and f"field {field!r}" in message and hint in message


@pytest.mark.parametrize(
    ("raw", "hint"), [("{not json", "not UTF-8 JSON"), ('["a"]', "JSON object")], ids=str
)
def test_a_sidecar_that_is_not_a_json_object_is_refused(
    tmp_path: Path, raw: str, hint: str
) -> None:
    with pytest.raises(CorpusError, match=r"doc\.meta\.json") as raised:
        read_sidecar(_corpus(tmp_path, raw=raw))
    assert hint in str(raised.value)


def test_a_sidecar_without_its_document_is_refused(tmp_path: Path) -> None:
    _corpus(tmp_path)
    (tmp_path / "gone.meta.json").write_text("{}", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"gone\.meta\.json describes no document"):
        corpus_files(tmp_path)


def test_a_build_with_a_bad_sidecar_fails_before_writing_anything(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _corpus(corpus, {"published": "soon"})
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    with pytest.raises(CorpusError, match="'published'"):
        build_index(settings, progress=False)
    assert current_generation(settings.index_dir) is None
    assert not list((tmp_path / "index").glob("*building*"))


def test_metadata_fields_are_normalised() -> None:
    meta = check_metadata({"title": "  Two\n lines ", "author": None, "published": "2024-05-25"})
    assert meta == Metadata(title="Two lines", published="2024-05-25")


def test_admin_text_refuses_a_field_sent_two_ways(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=SEEDS, index_dir=tmp_path / "index")
    with pytest.raises(InputError, match="sent twice") as raised:
        add_text(settings, "Some text.", title="A", metadata=Metadata(title="B"))
    assert raised.value.field == "title"


# ------------------------------------------------------------------------ the seeds' sidecars


@pytest.mark.parametrize("sidecar", sorted(SEEDS.glob("*.meta.json")), ids=lambda p: p.name[:3])
def test_the_seed_sidecars_state_only_what_their_text_states(sidecar: Path) -> None:
    text = sidecar.with_name(sidecar.name.replace(".meta.json", ".txt")).read_text("utf-8")
    meta = read_sidecar(sidecar.with_name(sidecar.name.replace(".meta.json", ".txt")))
    assert meta is not None
    for value in (meta.title, meta.publisher, meta.url):
        assert value is None or value in text
    for name in (meta.author or "").split(", "):
        assert name in text
    if meta.published:
        found = find_date(text)
        assert found is not None and found[0] == meta.published[:10]


def test_every_seed_has_a_sidecar_and_004_states_no_headline() -> None:
    documents = {d.doc_id: d for d in read_corpus(SEEDS)}
    assert all((SEEDS / f"{doc_id}.meta.json").is_file() for doc_id in documents)
    assert documents["004_f0aa982511d8ddb1"].title is None
    assert documents["000_8e6ebfa50e614d2c"].title.startswith("Interview with Ou Boqian")  # type: ignore[union-attr]


# ------------------------------------------------------------------------ the index generation


def test_a_generation_carries_the_metadata(corpus_index: CorpusIndex, settings: Settings) -> None:
    generation = current_generation(settings.index_dir)
    assert generation is not None
    stored = {d.doc_id: d for d in read_documents(generation)}
    assert stored["001_e414230abc2dfe9b"].published_at == "2024-06-12T10:17:40"
    assert stored["002_270caa0b0e5228a9"].language == "en"
    assert corpus_index.documents["000_8e6ebfa50e614d2c"].author == "Liu Xu, Liu Jingni"
    manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    assert "documents.jsonl" in manifest["files"]  # its checksum covers the metadata


def test_an_index_of_the_previous_format_asks_for_a_rebuild(
    corpus_index: CorpusIndex, settings: Settings, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    shutil.copytree(settings.index_dir, index)
    generation = current_generation(index)
    assert generation is not None
    manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    manifest["config"]["format"] = 3
    (generation / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match=r"format: built with 3.*Rebuild it"):
        load_index(settings.model_copy(update={"index_dir": index}))


def test_a_changed_sidecar_is_a_changed_corpus(tmp_path: Path) -> None:
    from service.index.layout import corpus_hash

    path = _corpus(tmp_path)
    before = corpus_hash([path])
    (tmp_path / "doc.meta.json").write_text('{"publisher": "Wire Two"}', encoding="utf-8")
    assert corpus_hash([path]) != before
