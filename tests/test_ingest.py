import itertools
from pathlib import Path

import pytest

from service.errors import CorpusError
from service.ingest.documents import find_date, parse_document, read_corpus
from service.records import Document

EXPECTED = {
    "000_8e6ebfa50e614d2c": {
        "title_starts": "Interview with Ou Boqian",  # its sidecar states it without the dateline
        "source": "China News Agency",
        "published": None,  # "January 26th" has no year: the text does not state the date
        "languages": ("en", "zh-Hans"),
    },
    "001_e414230abc2dfe9b": {
        "title_starts": "Revived China-Japan-ROK Summit a 'Golden Opportunity'",
        "source": "科技日报",
        "published": "2024-06-12",
        "languages": ("en",),  # the one Chinese line, "Editor: 龚茜", is too short to stand alone
    },
    "002_270caa0b0e5228a9": {
        "title_starts": "[Question from East to West] Li Xixie: The restart",
        "source": "China News Network",
        "published": "2024-05-25",
        "languages": ("en",),
    },
    "003_94041ec9e2685c6c": {
        "title_starts": "NEAR International Forum 2023 and the 14th Subcommittee",
        "source": None,
        "published": "2023-12-13",
        "languages": ("en",),
    },
    "004_f0aa982511d8ddb1": {
        "title_starts": None,  # it opens with a section heading, «二、政治安全領域»: no headline
        "source": None,
        "published": None,
        "languages": ("zh-Hant",),
    },
}

# Page chrome that must stay out of the index, by document.
BOILERPLATE = {
    "001_e414230abc2dfe9b": ["position: EnglishChannel", "Top News"],
    "002_270caa0b0e5228a9": [
        "Copyright notice",
        "It is forbidden to reprint",
        "All Rights Reserved",
        "news review service agreement",
    ],
    "003_94041ec9e2685c6c": ["본문 바로가기", "WriteAdmin", "첨부파일", "News | Secretariat"],
    "004_f0aa982511d8ddb1": ["- 政策解讀", "- 項目中心", "相關閱讀"],
}


def _content_text(document: Document) -> str:
    return "\n".join(document.text[s.start : s.end] for s in document.content)


def test_every_seed_is_read(documents: dict[str, Document]) -> None:
    assert sorted(documents) == sorted(EXPECTED)


@pytest.mark.parametrize("doc_id", sorted(EXPECTED))
def test_metadata(documents: dict[str, Document], doc_id: str) -> None:
    document, expected = documents[doc_id], EXPECTED[doc_id]
    if expected["title_starts"] is None:
        assert document.title is None
    else:
        assert document.title is not None
        assert document.title.startswith(expected["title_starts"])
    assert document.source == expected["source"]
    assert document.published == expected["published"]
    assert document.languages == expected["languages"]


@pytest.mark.parametrize(
    ("first_line", "title"),
    [
        ("二、政治安全領域", None),
        ("(一)伙伴關系", None),
        ("第三章 合作機制", None),
        ("2. Scope of the agreement", None),
        ("II. Political security", None),
        ("Chapter 4 Outlook", None),
        ("2024 summit revives trilateral talks", "2024 summit revives trilateral talks"),
        ("10 things the summit agreed", "10 things the summit agreed"),
    ],
    ids=["zh-ordinal", "zh-bracket", "zh-chapter", "decimal", "roman", "chapter", "year", "count"],
)
def test_a_numbered_section_heading_is_no_title(first_line: str, title: str | None) -> None:
    text = f"{first_line}\n\nThe three countries agreed to meet again next year.\n"
    assert parse_document("d", text, path="d.txt").title == title


def test_title_drops_a_glued_date(documents: dict[str, Document]) -> None:
    title = documents["003_94041ec9e2685c6c"].title
    assert title is not None and title.endswith("Subcommittee Held")


@pytest.mark.parametrize("doc_id", sorted(EXPECTED))
def test_text_is_the_original_file(
    documents: dict[str, Document], seeds_dir: Path, doc_id: str
) -> None:
    path = seeds_dir / f"{doc_id}.txt"
    assert documents[doc_id].text.encode("utf-8") == path.read_bytes()


@pytest.mark.parametrize("doc_id", sorted(BOILERPLATE))
def test_boilerplate_is_out_of_content(documents: dict[str, Document], doc_id: str) -> None:
    document = documents[doc_id]
    content = _content_text(document)
    left_out = "\n".join(document.text[s.start : s.end] for s in document.boilerplate)
    for phrase in BOILERPLATE[doc_id]:
        assert phrase in document.text  # the original keeps it...
        assert phrase not in content  # ...the index does not
        assert phrase in left_out


def test_body_text_is_kept(documents: dict[str, Document]) -> None:
    content = _content_text(documents["003_94041ec9e2685c6c"])
    assert "Jointly organized by Gyeongsangbuk-do" in content
    assert "38 members from 5 countries" in content  # summary bullets are content, not a menu
    assert "Editor: 龚茜" in _content_text(documents["001_e414230abc2dfe9b"])


def test_spans_are_ordered_and_disjoint(documents: dict[str, Document]) -> None:
    for document in documents.values():
        spans = sorted([*document.content, *document.boilerplate], key=lambda s: s.start)
        for before, after in itertools.pairwise(spans):
            assert before.end <= after.start, document.doc_id


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Source: 科技日报 | 2024-06-12 10:17:40 | Author: GONG Qian", "2024-06-12"),
        ("Release time: 15:23, May 25, 2024 Source: China News Network", "2024-05-25"),
        ("Exchange Subcommittee Held2023-12-13", "2023-12-13"),
        ("发布时间：2024年5月27日 09:00", "2024-05-27"),
        ("Published 3 March 2025", "2025-03-03"),
        ("On January 26th the agency said", None),
        ("2024-02-30 is not a date", None),
    ],
    ids=[
        "iso-with-time",
        "month-name",
        "glued-to-headline",
        "chinese",
        "day-month",
        "no-year",
        "invalid",
    ],
)
def test_find_date(text: str, iso: str | None) -> None:
    found = find_date(text)
    assert (found[0] if found else None) == iso


def test_markdown_title_and_crlf_offsets() -> None:
    text = "# A headline\r\n\r\nFirst paragraph.\r\nSecond line.\r\n"
    document = parse_document("note", text, path="note.md")
    assert document.title == "A headline"
    (span,) = document.content
    assert text[span.start : span.end] == "# A headline\r\n\r\nFirst paragraph.\r\nSecond line."


def test_non_utf8_file_is_refused_with_advice(tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"not UTF-8.*convert it"):
        list(read_corpus(tmp_path))


def test_empty_or_missing_corpus_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"no \.txt or \.md files"):
        list(read_corpus(tmp_path))
    with pytest.raises(CorpusError, match="CITEQA_CORPUS_DIR"):
        list(read_corpus(tmp_path / "missing"))


def test_duplicate_document_ids_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "a.md").write_text("two")
    with pytest.raises(CorpusError, match="rename"):
        list(read_corpus(tmp_path))


def test_sidebar_stories_are_content_marked_as_sidebar(documents: dict[str, Document]) -> None:
    document = documents["001_e414230abc2dfe9b"]
    sidebar = [s for s in document.content if s.section == "sidebar"]
    assert sidebar and all(s.label == "en" for s in sidebar)
    text = "\n".join(document.text[s.start : s.end] for s in sidebar)
    assert "Sino-French satellite" in text and "Top News" not in text
    main = "\n".join(document.text[s.start : s.end] for s in document.content if s not in sidebar)
    assert "Sino-French" not in main and "Yan Liang" in main
