import dataclasses
import time
from collections import Counter

import pytest

from service.ingest.chunk import (
    ChunkingParams,
    ChunkTable,
    chunk_document,
    indexed_text,
    sentence_spans,
    weighted_length,
)
from service.ingest.documents import parse_document
from service.records import Document

PARAMS = ChunkingParams(chunk_size=600, chunk_overlap=90)


def test_offsets_slice_exactly_on_every_seed(documents: dict[str, Document]) -> None:
    total = 0
    for document in documents.values():
        for chunk in chunk_document(document, PARAMS):
            assert document.text[chunk.char_start : chunk.char_end] == chunk.text
            assert chunk.doc_id == document.doc_id
            total += 1
    assert total > 20


@pytest.mark.parametrize(("size", "overlap"), [(120, 30), (300, 0), (1000, 200)])
def test_offsets_hold_for_other_chunk_sizes(
    documents: dict[str, Document], size: int, overlap: int
) -> None:
    for document in documents.values():
        for chunk in chunk_document(document, ChunkingParams(size, overlap)):
            assert document.text[chunk.char_start : chunk.char_end] == chunk.text


def test_chunks_respect_the_size_budget(documents: dict[str, Document]) -> None:
    # A short tail joins the piece before it, so a chunk may pass the size by less than it.
    for document in documents.values():
        for chunk in chunk_document(document, PARAMS):
            assert weighted_length(chunk.text) < PARAMS.chunk_size + PARAMS.min_paragraph


def test_chunks_never_cover_boilerplate(documents: dict[str, Document]) -> None:
    for document in documents.values():
        for chunk in chunk_document(document, PARAMS):
            for span in document.boilerplate:
                assert chunk.char_end <= span.start or chunk.char_start >= span.end


def test_no_chunk_is_a_stray_short_tail(documents: dict[str, Document]) -> None:
    chunks = chunk_document(documents["004_f0aa982511d8ddb1"], PARAMS)
    tail = "目前三國正在積極落實上述共識。"
    assert all(chunk.text != tail for chunk in chunks)
    assert any(chunk.text.endswith(tail) and len(chunk.text) > len(tail) for chunk in chunks)


def test_chinese_is_split_at_chinese_punctuation(documents: dict[str, Document]) -> None:
    chunks = chunk_document(documents["004_f0aa982511d8ddb1"], PARAMS)
    assert len(chunks) > 5
    ends = Counter(chunk.text[-1] for chunk in chunks)
    assert ends["。"] >= len(chunks) // 2


def test_ids_are_unique_and_deterministic(documents: dict[str, Document]) -> None:
    first = [c.chunk_id for d in documents.values() for c in chunk_document(d, PARAMS)]
    again = [c.chunk_id for d in documents.values() for c in chunk_document(d, PARAMS)]
    assert first == again
    assert len(set(first)) == len(first)


def test_ids_survive_an_edit_elsewhere_in_the_document() -> None:
    body = "\n\n".join(
        f"Paragraph {i} says something about cooperation{'!' * (i % 7)} at some length."
        for i in range(30)
    )
    before = parse_document("doc", body)
    after = parse_document("doc", "A new lead paragraph was added.\n\n" + body)
    ids_before = {c.chunk_id: c for c in chunk_document(before, ChunkingParams(200, 0))}
    ids_after = {c.chunk_id: c for c in chunk_document(after, ChunkingParams(200, 0))}
    kept = ids_before.keys() & ids_after.keys()
    assert len(kept) >= len(ids_before) - 1
    for chunk_id in kept:  # same id, same text, new offsets
        assert ids_before[chunk_id].text == ids_after[chunk_id].text
        assert ids_after[chunk_id].char_start > ids_before[chunk_id].char_start


def test_repeated_text_gets_distinct_ids() -> None:
    document = parse_document("doc", "Same line.\n\nOther line.\n\nSame line.")
    chunks = chunk_document(document, ChunkingParams(12, 0))
    same = [c for c in chunks if c.text == "Same line."]
    assert len(same) == 2 and same[0].chunk_id != same[1].chunk_id


def test_chunk_language_follows_the_passage(documents: dict[str, Document]) -> None:
    chunks = chunk_document(documents["000_8e6ebfa50e614d2c"], PARAMS)
    assert {c.language for c in chunks} == {"en", "zh-Hans"}
    for chunk in chunks:
        has_han = any("\u4e00" <= ch <= "\u9fff" for ch in chunk.text)
        assert (chunk.language == "zh-Hans") == has_han


def test_indexed_text_puts_the_title_above_the_passage(documents: dict[str, Document]) -> None:
    document = documents["003_94041ec9e2685c6c"]
    chunk = next(c for c in chunk_document(document, PARAMS) if "Jointly organized" in c.text)
    assert indexed_text(chunk, document) == f"{document.title}\n{chunk.text}"


def test_overlap_larger_than_size_is_refused() -> None:
    with pytest.raises(ValueError, match="CITEQA_CHUNK_OVERLAP"):
        ChunkingParams(100, 100).splitter()


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            'He said so. "We saw progress." The U.S. team met Dr. Li. Then 2.5 million came.',
            [
                "He said so.",
                '"We saw progress."',
                "The U.S. team met Dr. Li.",
                "Then 2.5 million came.",
            ],
        ),
        (
            "“合作二十多年。”三国合作脱胎于互通共融。第三句！",
            ["“合作二十多年。”", "三国合作脱胎于互通共融。", "第三句！"],
        ),
        ("A heading\nA line with no period", ["A heading", "A line with no period"]),
        (
            "首先,稳定供应链;其次,应对老龄化；第三,推动交往。Tea; coffee.",
            ["首先,稳定供应链;", "其次,应对老龄化；", "第三,推动交往。", "Tea; coffee."],
        ),
    ],
    ids=["english-abbreviations", "chinese-quotes", "lines", "chinese-semicolons"],
)
def test_sentence_spans(text: str, sentences: list[str]) -> None:
    spans = sentence_spans(text, offset=5)
    assert [text[start - 5 : end - 5] for start, end in spans] == sentences


def test_a_line_of_initials_is_split_in_linear_time() -> None:
    # each period looked for an abbreviation in the whole sentence so far: 3.7 s here
    text = "A. " * 6_666 + "Then the end. It ends."
    started = time.perf_counter()
    spans = sentence_spans(text)
    assert time.perf_counter() - started < 0.5
    # initials end no sentence
    assert [text[start:end] for start, end in spans] == [text[:-9], "It ends."]


def test_sidebar_chunks_are_indexed_without_the_articles_title(
    documents: dict[str, Document],
) -> None:
    document = documents["001_e414230abc2dfe9b"]
    chunks = chunk_document(document, PARAMS)
    sidebar = [c for c in chunks if c.section == "sidebar"]
    assert sidebar and all(indexed_text(c, document) == c.text for c in sidebar)
    main = next(c for c in chunks if c.section == "main" and document.title not in c.text)
    assert indexed_text(main, document).startswith(str(document.title))


def test_chunk_table_gives_back_the_chunks_it_was_made_from(
    documents: dict[str, Document],
) -> None:
    chunks = [c for d in documents.values() for c in chunk_document(d, PARAMS)]
    rows = [dataclasses.asdict(c) for c in chunks]
    table = ChunkTable.from_rows(documents, rows)
    assert len(table) == len(chunks) and list(table) == chunks
    assert table[-1] == chunks[-1] and table[2:5] == chunks[2:5]
    assert table.distinct_ids() == len({c.chunk_id for c in chunks})
    for row in (0, len(chunks) // 2, len(chunks) - 1):
        assert table.row_of(chunks[row].chunk_id) == row
    with pytest.raises(KeyError):
        table.row_of("0" * 16)
    with pytest.raises(IndexError):
        table[len(chunks)]


def test_chunk_table_keeps_a_bounded_number_of_made_chunks(
    documents: dict[str, Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [c for d in documents.values() for c in chunk_document(d, PARAMS)]
    table = ChunkTable.from_rows(documents, [dataclasses.asdict(c) for c in chunks])
    monkeypatch.setattr(ChunkTable, "MADE_KEPT", 3)
    assert table[1] is table[1]  # kept: the same object again
    for row in range(len(chunks)):  # more rows than are kept: every one still right
        assert table[row] == chunks[row]
        assert len(table._made) <= 3


def test_chunk_table_refuses_rows_that_do_not_slice_their_document(
    documents: dict[str, Document],
) -> None:
    document = next(iter(documents.values()))
    row = dataclasses.asdict(chunk_document(document, PARAMS)[0])
    moved = row | {"char_start": row["char_start"] + 1}
    with pytest.raises(ValueError, match="not its document's text"):
        ChunkTable.from_rows(documents, [moved])
    with pytest.raises(ValueError, match="not held"):
        ChunkTable.from_rows(documents, [row | {"doc_id": "no-such-document"}])
