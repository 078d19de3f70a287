"""The document page (/view/...) as a reader meets it, in a real browser against the real
service: the header says what to cite the document as ("not stated" where no source says),
"copy citation" puts the citation on the clipboard, the page's menus are folded away, the
cited characters are highlighted exactly with no offsets shown, and a stale link gets an
HTML page. Screenshots (English and Chinese) are saved under ``test-output/``.

The service runs with the admin routes on: one document is removed through them (its
links answer 410) and one is added with metadata (publisher, date, original URL).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.index import build_index
from service.lab.processes import serve

playwright = pytest.importorskip("playwright.sync_api")
from chromium_kit import skip_unless_chromium  # noqa: E402
from playwright.sync_api import Browser, Page, expect  # noqa: E402

# As tests/test_browser.py launches it.
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"
skip_unless_chromium()

KEY = "view-test-admin-key-0123456789abcdef"
STALE = "950_stale"
NEAR = "003_94041ec9e2685c6c"
GOLDEN = "001_e414230abc2dfe9b"
POLICY = "004_f0aa982511d8ddb1"  # Traditional Chinese, states no headline, publisher or date
HARBOUR_TEXT = (
    "The Harbour Lantern Festival opens on March 14 at the old ferry pier, the organisers "
    "said. More than 300 lanterns will line the quay.\n"
)
HARBOUR_META = {
    "title": "Lanterns return to the harbour",
    "publisher": "Test Wire",
    "published": "2025-03-02T08:30",
    "url": "https://news.example.org/2025/03/02/lanterns",
    "language": "en",
}


def _call(url: str, method: str = "GET", body: Any = None, **headers: str) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {KEY}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def view_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    corpus = tmp_path_factory.mktemp("view-corpus")
    for path in SEEDS.iterdir():
        shutil.copy(path, corpus / path.name)
    (corpus / f"{STALE}.txt").write_text("A notice that will be withdrawn.\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("view-index"))
    build_index(settings, progress=False)
    return settings


@pytest.fixture(scope="module")
def service_url(view_settings: Settings) -> Iterator[str]:
    with serve(view_settings, env={"CITEQA_ADMIN_KEY": KEY}) as server:
        status, _ = _call(f"{server.url}/admin/documents/{STALE}", "DELETE")
        assert status == 200
        body = {"doc_id": "960_harbour", "text": HARBOUR_TEXT, "metadata": HARBOUR_META}
        status, added = _call(f"{server.url}/admin/documents", "POST", body)
        assert status == 201, added
        yield server.url


@pytest.fixture
def page(browser: Browser, service_url: str) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 860},
        permissions=["clipboard-read", "clipboard-write"],
    )
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, errors


def _fact(page: Page, name: str) -> Any:
    """The value the header shows for ``name`` ("Publisher", "Date")."""
    return (
        page.locator("header.meta dl div")
        .filter(has=page.locator("dt", has_text=name))
        .locator("dd")
    )


def _text_of(service_url: str, doc_id: str) -> str:
    status, body = _call(f"{service_url}/documents/{doc_id}")
    assert status == 200
    return str(body["text"])


def _range_of(text: str, quote: str) -> tuple[int, int]:
    start = text.index(quote)
    return start, start + len(quote)


def test_header_shows_title_publisher_and_date(page: Page, service_url: str) -> None:
    page.goto(f"{service_url}/view/{GOLDEN}")
    header = page.locator("header.meta")
    expect(header.locator("h1")).to_have_text(
        "Revived China-Japan-ROK Summit a 'Golden Opportunity'"
    )
    expect(_fact(page, "Publisher")).to_have_text("科技日报")
    expect(_fact(page, "Date")).to_have_text("2024-06-12 10:17")
    expect(header).to_contain_text("Original article: not stated")
    expect(header).not_to_contain_text("characters")
    page.mouse.wheel(0, 3000)  # the header stays in view as the reader scrolls
    expect(header.locator("h1")).to_be_in_viewport()


def test_header_says_not_stated_where_no_source_states_a_field(
    page: Page, service_url: str
) -> None:
    page.goto(f"{service_url}/view/{POLICY}")
    header = page.locator("header.meta")
    expect(header.locator("h1")).to_have_text("標題未註明")  # not its section heading
    expect(_fact(page, "來源")).to_have_text("未註明")
    expect(_fact(page, "日期")).to_have_text("未註明")
    page.goto(f"{service_url}/view/{POLICY}?lang=en")  # the reader's language
    expect(header.locator("h1")).to_have_text("Title not stated")
    expect(_fact(page, "Publisher")).to_have_text("not stated")
    expect(_fact(page, "Date")).to_have_text("not stated")


def test_header_links_to_the_original_stated_in_metadata(page: Page, service_url: str) -> None:
    page.goto(f"{service_url}/view/960_harbour")
    link = page.get_by_role("link", name="Original article")
    expect(link).to_have_attribute("href", HARBOUR_META["url"])
    expect(_fact(page, "Publisher")).to_have_text("Test Wire")


def test_copy_citation_puts_the_quote_title_publisher_date_and_link_on_the_clipboard(
    page: Page, service_url: str
) -> None:
    quote = "The Harbour Lantern Festival opens on March 14 at the old ferry pier"
    start, end = _range_of(HARBOUR_TEXT, quote)
    link = f"{service_url}/view/960_harbour#{start}-{end}"
    page.goto(link)
    page.get_by_role("button", name="Copy citation").click()
    expect(page.locator("#cite-status")).to_have_text("Citation copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == (
        f"“{quote}”\n"
        "Lanterns return to the harbour. Test Wire, 2025-03-02.\n"
        f"{HARBOUR_META['url']}\n"
        f"Cited passage: {link}"
    )


def test_copy_citation_says_not_stated_for_unknown_fields(page: Page, service_url: str) -> None:
    text = _text_of(service_url, POLICY)
    quote = "2012年3月,首次中日韓亞洲政策磋商在北京舉行。"
    start, end = _range_of(text, quote)
    link = f"{service_url}/view/{POLICY}#{start}-{end}"
    page.goto(link)
    page.get_by_role("button", name="複製引用").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"「{quote}」\n標題未註明。來源未註明，日期未註明。\n引文出處: {link}"


@pytest.mark.parametrize(
    ("doc_id", "quote", "shot"),
    [
        (NEAR, "took place in Gyeongju-si between December 6 and 8", "view-en.png"),
        (POLICY, "2012年3月,首次中日韓亞洲政策磋商在北京舉行", "view-zh-hant.png"),
    ],
    ids=["english", "chinese"],
)
def test_cited_characters_are_highlighted_exactly_and_no_offsets_are_shown(
    page: Page, service_url: str, doc_id: str, quote: str, shot: str
) -> None:
    start, end = _range_of(_text_of(service_url, doc_id), quote)
    page.goto(f"{service_url}/view/{doc_id}#{start}-{end}")
    marked = page.locator("mark.cite")
    expect(marked.first).to_be_in_viewport()
    assert "".join(marked.all_text_contents()) == quote
    body = page.locator("body").inner_text()
    assert f"{start}" not in body.replace(quote, "")  # no raw offset anywhere a reader sees
    expect(page.locator("#cite-status")).not_to_contain_text("character")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / shot))


def test_page_menus_are_folded_behind_a_toggle(page: Page, service_url: str) -> None:
    page.goto(f"{service_url}/view/{POLICY}?lang=en")
    menu = page.locator("article .chrome").first
    expect(menu).to_be_hidden()
    expect(menu).to_contain_text("政策解讀")
    toggle = page.get_by_role("button", name="Show page menus and notices")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(menu).to_be_visible()
    expect(page.get_by_role("button", name="Hide page menus and notices")).to_have_attribute(
        "aria-expanded", "true"
    )


def test_a_stale_view_link_shows_an_html_410_page(page: Page, service_url: str) -> None:
    response = page.goto(f"{service_url}/view/{STALE}#0-10")
    assert response is not None and response.status == 410
    assert response.headers["content-type"].startswith("text/html")
    expect(page.locator("h1")).to_have_text("This source was removed")
    expect(page.locator("main")).to_contain_text("was removed from the sources on")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "view-410.png"))


def test_an_unknown_view_link_shows_an_html_404_page(page: Page, service_url: str) -> None:
    response = page.goto(f"{service_url}/view/no_such_document")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("No such source")


def test_api_clients_still_get_json_errors_from_view(service_url: str) -> None:
    status, body = _call(f"{service_url}/view/{STALE}", Accept="application/json")
    assert status == 410 and body["error"]["field"] == "doc_id"
    status, body = _call(f"{service_url}/view/no_such_document")  # Accept: */*
    assert status == 404 and "GET /documents" in body["error"]["message"]


def test_citations_carry_the_publisher_and_the_original_url(service_url: str) -> None:
    question = {"question": "When does the Harbour Lantern Festival open?"}
    status, body = _call(f"{service_url}/ask", "POST", question)
    assert status == 200 and body["answer"] is not None, body
    citation = body["answer"]["citation"]
    assert citation["doc_id"] == "960_harbour"
    assert (citation["publisher"], citation["url_original"]) == ("Test Wire", HARBOUR_META["url"])
    assert citation["published"] == "2025-03-02"


def test_documents_lists_the_metadata_sent_to_admin(service_url: str) -> None:
    status, rows = _call(f"{service_url}/documents")
    assert status == 200
    row = next(r for r in rows if r["doc_id"] == "960_harbour")
    assert (row["title"], row["publisher"], row["published"], row["url"]) == (
        HARBOUR_META["title"],
        "Test Wire",
        "2025-03-02",
        HARBOUR_META["url"],
    )
    assert row["published_at"] == "2025-03-02T08:30:00"
    assert STALE not in {r["doc_id"] for r in rows}


def test_admin_refuses_bad_metadata_naming_the_field(service_url: str) -> None:
    body = {"text": HARBOUR_TEXT, "metadata": {"published": "March 2025"}}
    status, error = _call(f"{service_url}/admin/documents", "POST", body)
    assert status == 422
    assert error["error"]["field"] == "metadata.published"
    assert "YYYY-MM-DD" in error["error"]["message"]
    body = {"text": HARBOUR_TEXT, "metadata": {"publsher": "Typo Wire"}}
    status, error = _call(f"{service_url}/admin/documents", "POST", body)
    assert status == 422 and error["error"]["field"] == "metadata.publsher"
