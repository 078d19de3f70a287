"""The API documentation pages work with no network: /docs (Swagger UI) and /redoc (ReDoc)
in a real browser against the real service (``citeqa serve`` on the session's index), every
request to another host blocked. Screenshots go to ``test-output/``.

Without chromium these tests are skipped, unless ``CITEQA_REQUIRE_BROWSER=1`` makes a
missing browser a failure (as in ``tests/test_browser.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from service import __version__
from service.config import Settings
from service.index import CorpusIndex
from service.lab.processes import running_server

playwright = pytest.importorskip("playwright.sync_api")
from chromium_kit import skip_unless_chromium  # noqa: E402
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect  # noqa: E402

OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
# ReDoc's bundle draws Redocly's logo from their CDN (an <img> in its sidebar footer, with no
# option to turn it off); the pages' CSP blocks it before any request is made.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

skip_unless_chromium()


@dataclass
class Offline:
    """A page whose requests to any host but the service are aborted, and what it tried."""

    page: Page
    url: str
    off_host: list[str] = field(default_factory=list)  # requests the route aborted
    refused_by_policy: list[str] = field(default_factory=list)  # CSP console errors
    failed: list[str] = field(default_factory=list)  # local requests that failed

    def open(self, path: str) -> None:
        response = self.page.goto(self.url + path)
        assert response is not None and response.status == 200


@pytest.fixture(scope="module")
def service_url(settings: Settings, corpus_index: CorpusIndex) -> Iterator[str]:
    with running_server(settings) as url:
        yield url


@pytest.fixture
def offline(browser: Browser, service_url: str) -> Iterator[Offline]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = Offline(context.new_page(), service_url)

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(service_url + "/"):
            route.continue_()
        else:
            opened.off_host.append(route.request.url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            opened.refused_by_policy.append(message.text)

    errors: list[str] = []
    context.route("**/*", only_the_service)
    opened.page.on("console", on_console)
    opened.page.on("pageerror", lambda error: errors.append(str(error)))
    opened.page.on(
        "requestfailed",
        lambda request: (
            opened.failed.append(request.url) if request.url.startswith(service_url) else None
        ),
    )
    yield opened
    context.close()
    assert not errors, errors  # no script error on either page


def test_swagger_ui_renders_the_operations_offline(offline: Offline) -> None:
    offline.open("/docs")
    page = offline.page
    paths = page.locator(".opblock-summary-path")
    for path in ("/ask", "/verify", "/search", "/feedback"):
        expect(paths.filter(has_text=path).first).to_be_visible(timeout=20_000)
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"citeqa {__version__}")
    page.locator(".opblock-summary").filter(has_text="/verify").first.click()
    expect(page.get_by_role("button", name="Try it out")).to_be_visible()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "docs-swagger-offline.png"))
    assert offline.off_host == []
    assert offline.refused_by_policy == []
    assert offline.failed == []


def test_redoc_renders_the_operations_offline(offline: Offline) -> None:
    offline.open("/redoc")
    page = offline.page
    for title in ("Ask", "Verify", "Report a wrong answer"):
        expect(page.locator("h2", has_text=title).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/verify", exact=True).first).to_be_attached()
    expect(page.get_by_role("heading", name=f"citeqa ({__version__})")).to_be_visible()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "docs-redoc-offline.png"))
    assert offline.off_host == []
    assert all(REDOCLY_LOGO in refused for refused in offline.refused_by_policy)
    assert offline.failed == []


def test_the_doc_pages_load_nothing_from_another_host(offline: Offline) -> None:
    for path in ("/docs", "/redoc"):
        offline.open(path)
        offline.page.wait_for_load_state("networkidle")
        sources = offline.page.eval_on_selector_all(
            "script[src], link[href]", "nodes => nodes.map(n => n.src || n.href)"
        )
        assert sources and all(s.startswith(offline.url + "/static/apidocs/") for s in sources)
    assert offline.off_host == []
