"""Citation links: spelled in one place, with the document id escaped."""

import pytest

from service.server.links import document_url, view_url


@pytest.mark.parametrize(
    ("base", "doc_id", "start", "end", "expected"),
    [
        ("", "003_abc", 5, 9, "/view/003_abc#5-9"),
        ("https://qa.example.org/", "003_abc", 0, 3, "https://qa.example.org/view/003_abc#0-3"),
        ("", "a b/c", 1, 2, "/view/a%20b%2Fc#1-2"),
        ("", "003_abc", None, None, "/view/003_abc"),
    ],
    ids=["relative", "absolute-base-trailing-slash", "escaped-id", "no-range"],
)
def test_view_url_spells_the_cited_range(
    base: str, doc_id: str, start: int | None, end: int | None, expected: str
) -> None:
    assert view_url(base, doc_id, start, end) == expected


def test_document_url_escapes_the_id() -> None:
    assert document_url("", "中日/韩") == "/documents/%E4%B8%AD%E6%97%A5%2F%E9%9F%A9"
