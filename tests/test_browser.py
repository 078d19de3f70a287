"""The chat widget in a real browser: Debian's chromium driven by playwright, against the
real service (``citeqa serve``) started on a free localhost port.

The index is built from the seeds plus one hostile document whose text holds HTML and
script markup. A screenshot of the answered widget is saved under ``test-output/``.

Without chromium these tests are skipped, unless ``CITEQA_REQUIRE_BROWSER=1`` (set by
``.ci/run``, which installs chromium) makes a missing browser a failure.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import Settings
from service.index import build_index
from service.lab.processes import free_port, running_server

playwright = pytest.importorskip("playwright.sync_api")
from chromium_kit import skip_unless_chromium  # noqa: E402
from playwright.sync_api import Browser, Page, expect  # noqa: E402

OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"

HOSTILE = """Harbour Lantern Festival Notice

Source: Test Wire | 2025-03-02

The Harbour Lantern Festival opens on March 14 at the old ferry pier, the organisers said.
Visitors should note the sign that reads <img src=x onerror="window.__pwned=1"> at the gate.
The printed programme also shows <script>window.__pwned=2</script> on its back cover.
"""

skip_unless_chromium()


@pytest.fixture(scope="module")
def browser_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    corpus = tmp_path_factory.mktemp("browser-corpus")
    for path in SEEDS.iterdir():
        shutil.copy(path, corpus / path.name)
    (corpus / "900_hostile.txt").write_text(HOSTILE, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("browser-index"))
    build_index(settings, progress=False)
    return settings


@pytest.fixture(scope="module")
def service_url(browser_settings: Settings) -> Iterator[str]:
    with running_server(browser_settings) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 860}, permissions=["clipboard-read", "clipboard-write"]
    )
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, errors  # no script error on any page


def _open_widget(page: Page, url: str) -> None:
    page.goto(url + "/")
    launcher = page.get_by_role("button", name="Ask the sources")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("textbox", name="Your question")).to_be_focused()


def _ask(page: Page, question: str) -> None:
    box = page.get_by_role("textbox", name="Your question")
    box.fill(question)
    box.press("Enter")


def test_english_question_shows_the_answer_and_a_citation(page: Page, service_url: str) -> None:
    _open_widget(page, service_url)
    _ask(page, "When was the China-Japan-Korea Cooperation Secretariat officially established?")
    answer = page.locator("citeqa-chat .answer").last
    expect(answer).to_be_visible(timeout=20_000)
    expect(answer.locator("mark").first).to_contain_text("September 2011")
    card = answer.locator("a.card").first
    expect(card).to_contain_text("Interview with Ou Boqian")
    href = card.get_attribute("href") or ""
    # the page opens in the reader's language, at the quote
    assert href.startswith(f"{service_url}/view/000_8e6ebfa50e614d2c?lang=en#")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "widget-answered.png"))


def test_copy_citation_puts_the_quote_its_source_and_the_link_on_the_clipboard(
    page: Page, service_url: str
) -> None:
    _open_widget(page, service_url)
    _ask(page, "When was the China-Japan-Korea Cooperation Secretariat officially established?")
    answer = page.locator("citeqa-chat .answer").last
    expect(answer).to_be_visible(timeout=20_000)
    quote = answer.locator("a.card blockquote").first.inner_text()
    answer.get_by_role("button", name="Copy citation").click()
    expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    lines = page.evaluate("() => navigator.clipboard.readText()").split("\n")
    assert lines[0] == f"“{quote}”"
    title, publisher, _date = lines[1].split(" · ")  # each, or "not stated"
    assert "Interview with Ou Boqian" in title and publisher == "China News Agency"
    assert lines[-1].startswith(f"{service_url}/view/000_8e6ebfa50e614d2c#")
    answer.get_by_role("button", name="Copy quote").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == quote


def test_a_citation_opens_the_document_with_the_quote_highlighted(
    page: Page, service_url: str
) -> None:
    _open_widget(page, service_url)
    _ask(page, "When was the China-Japan-Korea Cooperation Secretariat officially established?")
    answer = page.locator("citeqa-chat .answer").last
    expect(answer).to_be_visible(timeout=20_000)
    quote = answer.locator("a.card mark").first.inner_text()
    with page.context.expect_page() as opened:
        answer.locator("a.card").first.click()
    view = opened.value
    view.wait_for_load_state()
    mark = view.locator("mark")
    expect(mark).to_have_count(1)
    expect(mark).to_have_text(quote)
    expect(mark).to_be_in_viewport()


def test_chinese_question_gets_a_chinese_answer(page: Page, service_url: str) -> None:
    _open_widget(page, service_url)
    _ask(page, "中日韩地震减灾三边会议由哪些机构举行？")
    answer = page.locator("citeqa-chat .answer").last
    expect(answer).to_be_visible(timeout=20_000)
    expect(answer.locator(".answer-text")).to_contain_text("中國地震局")
    # the labels are in the reader's language (Simplified), naming the source's script
    expect(answer).to_contain_text("出处")
    expect(answer).to_contain_text("引自繁体中文原文")
    expect(answer.locator("a.card").first).to_be_visible()


def test_unanswerable_question_says_so_and_lists_nearest_passages(
    page: Page, service_url: str
) -> None:
    _open_widget(page, service_url)
    _ask(page, "What is the capital of Australia?")
    reply = page.locator("citeqa-chat .noanswer").last
    expect(reply).to_be_visible(timeout=20_000)
    expect(reply).to_contain_text("No answer in the sources")
    expect(reply.locator("a.card").first).to_be_visible()
    expect(page.locator("citeqa-chat .answer")).to_have_count(0)


def test_markup_in_a_document_is_shown_as_text_and_never_runs(page: Page, service_url: str) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _open_widget(page, service_url)
    _ask(page, "What sign is at the gate of the Harbour Lantern Festival?")
    reply = page.locator("citeqa-chat .a").last
    expect(reply).to_be_visible(timeout=20_000)
    expect(reply).to_contain_text('<img src=x onerror="window.__pwned=1">')
    assert page.locator("citeqa-chat img").count() == 0
    assert page.locator("citeqa-chat script").count() == 0
    # and in the document view the citation opens
    with page.context.expect_page() as opened:
        reply.locator("a.card").first.click()
    view = opened.value
    view.wait_for_load_state()
    expect(view.locator("body")).to_contain_text("<script>window.__pwned=2</script>")
    assert view.locator("img").count() == 0
    for checked in (page, view):
        assert checked.evaluate("() => window.__pwned === undefined")
    assert not dialogs


def test_keyboard_shift_enter_breaks_a_line_and_escape_closes(page: Page, service_url: str) -> None:
    _open_widget(page, service_url)
    box = page.get_by_role("textbox", name="Your question")
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"
    expect(page.locator("citeqa-chat .q")).to_have_count(0)  # nothing was sent
    page.keyboard.press("Escape")
    launcher = page.get_by_role("button", name="Ask the sources")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()
    expect(page.get_by_role("dialog")).to_be_hidden()


def test_usable_at_360_pixels(page: Page, service_url: str) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    _open_widget(page, service_url)
    _ask(page, "三国人员交往目标是多少人次？")
    expect(page.locator("citeqa-chat .answer").last).to_be_visible(timeout=20_000)
    for part in ("citeqa-chat .panel", "citeqa-chat textarea", "citeqa-chat .send"):
        box = page.locator(part).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, part
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "widget-360px.png"))
    # the answer, then its source card, without scrolling the conversation
    log = page.locator("citeqa-chat .log").bounding_box()
    card = page.locator("citeqa-chat .answer a.card").first.bounding_box()  # the source
    assert log is not None and card is not None
    assert card["y"] + min(card["height"], 120) <= log["y"] + log["height"], (card, log)


def test_a_stopped_service_shows_an_error_with_retry(
    page: Page, browser_settings: Settings
) -> None:
    port = free_port()
    with running_server(browser_settings, port=port) as url:
        _open_widget(page, url)
    # the service is stopped now; the page it served is still open
    _ask(page, "When was the China-Japan-Korea Cooperation Secretariat officially established?")
    error = page.locator("citeqa-chat .error")
    expect(error).to_be_visible(timeout=20_000)
    expect(error).to_have_attribute("role", "alert")
    expect(error).to_contain_text("cannot be reached")
    retry = error.get_by_role("button", name="Retry")
    with running_server(browser_settings, port=port):
        retry.click()
        expect(page.locator("citeqa-chat .answer").last).to_be_visible(timeout=20_000)
    expect(page.locator("citeqa-chat .error")).to_have_count(0)


def test_check_a_claim_shows_the_verdict_and_the_mismatch(page: Page, service_url: str) -> None:
    _open_widget(page, service_url)
    page.get_by_role("button", name="Check a claim").click()
    expect(page.get_by_role("button", name="Check a claim")).to_have_attribute(
        "aria-pressed", "true"
    )
    box = page.get_by_role("textbox", name="Claim to check")
    box.fill("The China-Japan-Korea Cooperation Secretariat opened in Seoul in September 2013.")
    box.press("Enter")
    reply = page.locator("citeqa-chat .claim").last
    expect(reply).to_be_visible(timeout=20_000)
    expect(reply.locator(".verdict")).to_have_text("Contradicted by the sources")
    expect(reply.locator(".mismatches li")).to_have_count(1)  # the deciding sentence's only
    expect(reply.locator(".mismatches")).to_contain_text("September 2013")
    deciding = reply.locator("a.card").first
    expect(deciding.locator(".stance")).to_have_text("contradicts")
    expect(deciding.locator("mark.mismatch")).to_have_text("September 2011")
    reply.get_by_role("button", name="ClaimReview JSON-LD").click()
    expect(reply.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith('<script type="application/ld+json">')
    review = json.loads(copied.split("\n", 1)[1].rsplit("\n", 1)[0])
    assert review["@type"] == "ClaimReview" and "September 2013" in review["claimReviewed"]
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "widget-claim.png"))


def test_the_verdict_headline_lists_only_its_stances_mismatches(
    page: Page, service_url: str
) -> None:
    _open_widget(page, service_url)
    page.get_by_role("button", name="Check a claim").click()
    box = page.get_by_role("textbox", name="Claim to check")
    box.fill("中日韓核安全監管高官會目前已舉行四次。")
    box.press("Enter")
    reply = page.locator("citeqa-chat .claim").last
    expect(reply).to_be_visible(timeout=20_000)
    expect(reply.locator(".verdict")).to_have_text("資料支持這一說法")  # in the claim's script
    expect(reply.locator(".mismatches")).to_have_count(0)  # supported: nothing differs
    expect(reply.locator("mark.mismatch")).to_have_count(0)
    expect(reply.locator("a.card").first.locator("mark.match").first).to_have_text("四")  # agrees
    stances = reply.locator("a.card .stance").all_inner_texts()
    assert stances[0] == "支持" and set(stances[1:]) <= {"相關"}, stances
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "widget-claim-zh.png"))


def test_a_follow_up_is_answered_about_the_previous_subject_and_kept_across_reloads(
    page: Page, service_url: str
) -> None:
    _open_widget(page, service_url)
    _ask(page, "What is the China-Japan-Korea Cooperation Secretariat?")
    expect(page.locator("citeqa-chat .a").last).to_be_visible(timeout=20_000)
    _ask(page, "When was it officially established?")
    expect(page.locator("citeqa-chat .a")).to_have_count(2, timeout=20_000)
    reply = page.locator("citeqa-chat .a").last
    expect(reply.locator(".assumed")).to_contain_text("China-Japan-Korea Cooperation Secretariat")
    expect(reply.locator("mark").first).to_contain_text("September 2011")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "widget-follow-up.png"))
    page.reload()  # the conversation is kept for the session
    page.get_by_role("button", name="Ask the sources").click()
    expect(page.locator("citeqa-chat .q")).to_have_count(2)
    expect(page.locator("citeqa-chat .assumed")).to_have_count(1)
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("citeqa-chat .q")).to_have_count(0)
    expect(page.locator("citeqa-chat .empty")).to_be_visible()


def test_report_a_wrong_answer_stores_a_record(
    page: Page, service_url: str, browser_settings: Settings
) -> None:
    _open_widget(page, service_url)
    _ask(page, "When was the China-Japan-Korea Cooperation Secretariat officially established?")
    answer = page.locator("citeqa-chat .answer").last
    expect(answer).to_be_visible(timeout=20_000)
    answer.get_by_role("button", name="Report a wrong answer").click()
    answer.get_by_role("textbox", name="What is wrong?").fill("the day is missing")
    answer.get_by_role("button", name="Send").click()
    expect(answer.get_by_role("status")).to_have_text("Thank you: the newsroom will review it.")
    records = [
        json.loads(line)
        for path in browser_settings.feedback_folder().glob("feedback-*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    mine = [r for r in records if r["note"] == "the day is missing"]
    assert len(mine) == 1 and mine[0]["kind"] == "answer"
    assert mine[0]["citation"]["doc_id"] == "000_8e6ebfa50e614d2c"


def test_a_claim_in_quotation_marks_is_checked_as_a_quote(page: Page, service_url: str) -> None:
    _open_widget(page, service_url)
    page.get_by_role("button", name="Check a claim").click()
    box = page.get_by_role("textbox", name="Claim to check")
    box.fill(
        "“In September 2013, the China-Japan-Korea Cooperation Secretariat was officially "
        "established in Seoul, South Korea.”"
    )
    box.press("Enter")
    reply = page.locator("citeqa-chat .quote").last
    expect(reply).to_be_visible(timeout=20_000)
    expect(reply.locator(".verdict")).to_have_text("Quoted with changes")
    changed = "the quote says “September 2013”, the source “September 2011”"  # the whole date
    expect(reply.locator(".mismatches")).to_contain_text(changed)
    expect(reply.locator("a.card mark.mismatch").first).to_have_text("September 2011")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "widget-quote.png"))
