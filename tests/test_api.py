"""The HTTP API against the real app, the real models and the session's real index."""

from __future__ import annotations

import html
import inspect
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from service.cli import main
from service.config import Settings
from service.index import CorpusIndex
from service.records import Document, Span
from service.server import routes
from service.server.app import create_app
from service.server.errors import MAX_BODY_BYTES
from service.server.links import view_url
from service.server.pages import document_page

ANSWER_TYPES = {
    "person", "organisation", "place", "date", "number", "frequency", "duration", "title",
    "list", "reason", "manner", "definition", "other", "sentence",
}  # fmt: skip
ASK_KEYS = {
    "question", "answer", "abstained", "abstain_reason", "passages", "timings_ms",
    "resolved_question", "assumed_subject",
}  # fmt: skip
ANSWER_KEYS = {
    "text",
    "sentence",
    "sentence_start",
    "sentence_end",
    "language",
    "answer_type",
    "confidence",
    "citation",
}
CITATION_KEYS = {
    "doc_id", "title", "publisher", "source", "published", "url_original", "char_start",
    "char_end", "quote", "url",
}  # fmt: skip
PASSAGE_KEYS = {
    "url",
    "rank",
    "score",
    "chunk_id",
    "doc_id",
    "title",
    "source",
    "section",
    "published",
    "language",
    "char_start",
    "char_end",
    "text",
    "highlights",
    "retriever_ranks",
}
SUMMARY_KEYS = {
    "doc_id", "title", "publisher", "source", "author", "published", "published_at", "url",
    "language", "languages", "length",
}  # fmt: skip

QUESTIONS = {
    "en": "Who organized the NEAR International Forum 2023?",
    "zh-Hans": "中日韩地震减灾三边会议由哪些机构举行？",
    "cross-lingual": (
        "Which agencies held the trilateral meetings on earthquake disaster reduction?"
    ),
    "zh-Hant": "中日韓首次反恐磋商在哪裡舉行？",
    "off-topic": "What is the boiling point of liquid nitrogen on Mars?",
}
NEAR = "003_94041ec9e2685c6c"


@pytest.fixture(scope="module")
def client(settings: Settings, corpus_index: CorpusIndex) -> Iterator[TestClient]:
    """One app for the module: the lifespan loads the index and the models once."""
    with TestClient(create_app(settings)) as client:
        yield client


def _ask(client: TestClient, question: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/ask", json={"question": question, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _document_text(client: TestClient, doc_id: str) -> str:
    response = client.get(f"/documents/{doc_id}")
    assert response.status_code == 200
    text: str = response.json()["text"]
    return text


def _check_passage(client: TestClient, passage: dict[str, Any]) -> None:
    assert set(passage) == PASSAGE_KEYS
    text = _document_text(client, passage["doc_id"])
    assert text[passage["char_start"] : passage["char_end"]] == passage["text"]
    span = f"{passage['char_start']}-{passage['char_end']}"
    assert passage["url"] == f"/view/{passage['doc_id']}#{span}"  # the passage's view link
    previous_end = 0
    for start, end in passage["highlights"]:
        assert previous_end <= start < end <= len(passage["text"])
        previous_end = end


def _check_error(response: httpx.Response, status: int, field: str | None, hint: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "errors"}
    assert body["error"] == body["errors"][0]
    assert body["error"]["field"] == field
    assert hint.lower() in body["error"]["message"].lower()


# ----------------------------------------------------------------------------- /ask


def test_ask_contract(client: TestClient, corpus_index: CorpusIndex) -> None:
    # Which questions the engine answers is the answer stage's business: take the first
    # that is answered, so the answer's fields can be checked too.
    answered = [body for q in QUESTIONS.values() if (body := _ask(client, q, top_k=3))["answer"]]
    assert answered, "no question of QUESTIONS was answered, so the contract cannot be checked"
    body = answered[0]
    assert set(body) == ASK_KEYS
    assert body["question"] in QUESTIONS.values()
    assert [p["rank"] for p in body["passages"]] == [1, 2, 3]
    scores = [p["score"] for p in body["passages"]]
    assert scores == sorted(scores, reverse=True)
    assert {"retrieve", "fuse", "answer", "total"} <= set(body["timings_ms"])
    assert all(isinstance(v, float) and v >= 0 for v in body["timings_ms"].values())
    assert body["abstained"] is (body["answer"] is None)
    assert (body["abstain_reason"] is None) is (body["answer"] is not None)
    answer = body["answer"]
    assert answer is not None, body["abstain_reason"]
    assert set(answer) == ANSWER_KEYS
    assert set(answer["citation"]) == CITATION_KEYS
    assert 0.0 <= answer["confidence"] <= 1.0
    assert answer["answer_type"] in ANSWER_TYPES
    document = corpus_index.documents[answer["citation"]["doc_id"]]
    assert answer["citation"]["title"] == document.title
    assert answer["citation"]["published"] == document.published
    for passage in body["passages"]:
        document = corpus_index.documents[passage["doc_id"]]
        assert (passage["title"], passage["source"], passage["published"]) == (
            document.title,
            document.source,
            document.published,
        )


@pytest.mark.parametrize("question", QUESTIONS.values(), ids=QUESTIONS.keys())
def test_ask_offsets_slice_the_original_documents(client: TestClient, question: str) -> None:
    body = _ask(client, question, top_k=5)
    assert 1 <= len(body["passages"]) <= 5
    for passage in body["passages"]:
        _check_passage(client, passage)
    answer = body["answer"]
    if answer is None:
        assert body["abstained"] and body["abstain_reason"]
        return
    citation = answer["citation"]
    doc_id, start, end = citation["doc_id"], citation["char_start"], citation["char_end"]
    text = _document_text(client, doc_id)
    assert text[start:end] == citation["quote"] == answer["text"]
    assert text[answer["sentence_start"] : answer["sentence_end"]] == answer["sentence"]
    assert answer["sentence_start"] <= start < end <= answer["sentence_end"]
    assert citation["url"] == f"/view/{doc_id}#{start}-{end}"
    sliced = client.get(f"/documents/{doc_id}", params={"start": start, "end": end})
    assert sliced.json()["slice"] == {"start": start, "end": end, "text": citation["quote"]}
    page = client.get(citation["url"].split("#")[0])
    assert page.status_code == 200
    assert html.escape(citation["quote"]) in page.text


def test_ask_filters_restrict_the_passages(client: TestClient, corpus_index: CorpusIndex) -> None:
    body = _ask(client, QUESTIONS["en"], top_k=10, filters={"doc_ids": [NEAR]})
    assert body["passages"] and {p["doc_id"] for p in body["passages"]} == {NEAR}

    body = _ask(client, QUESTIONS["cross-lingual"], filters={"languages": ["en"]})
    assert body["passages"] and {p["language"] for p in body["passages"]} == {"en"}

    window = {"published_from": "2023-12-01", "published_to": "2023-12-31"}
    body = _ask(client, QUESTIONS["en"], top_k=10, filters=window)
    published = {corpus_index.documents[p["doc_id"]].published for p in body["passages"]}
    assert body["passages"] and published <= {"2023-12-13"}


@pytest.mark.parametrize(
    "question",
    [
        "🙂 Who organized the NEAR forum? 🎉",
        "من نظم منتدى NEAR الدولي 2023؟",
        "NEAR International Forum 2023 是谁主办的？誰主辦的？",
        "Who organized\x00 the\x1b[31m NEAR\u200b forum\x7f?",
    ],
    ids=["emoji", "rtl", "mixed-scripts", "control-characters"],
)
def test_ask_accepts_any_unicode(client: TestClient, question: str) -> None:
    body = _ask(client, question, top_k=2)
    if question.isprintable():
        assert body["question"] == question
    else:
        assert body["question"].isprintable() and body["question"].split()[-2:] == ["forum", "?"]
    for passage in body["passages"]:
        _check_passage(client, passage)


def test_cli_ask_json_prints_the_ask_body(
    client: TestClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    question = QUESTIONS["zh-Hans"]
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    assert main(["ask", question, "-k", "3", "--json", *args]) == 0
    printed = json.loads(capsys.readouterr().out)
    served = _ask(client, question, top_k=3)
    assert set(printed["timings_ms"]) == set(served["timings_ms"])
    printed.pop("timings_ms")
    served.pop("timings_ms")
    assert printed == served


def test_concurrent_asks_agree_with_serial_ones(client: TestClient) -> None:
    questions = list(QUESTIONS.values()) * 2
    serial = [_ask(client, q)["passages"] for q in questions]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda q: _ask(client, q)["passages"], questions))
    assert parallel == serial


def test_model_work_never_runs_on_the_event_loop() -> None:
    """A route is plain ``def`` (FastAPI runs it in the thread pool), or ``async def`` that
    hands its work to the thread pool through ``within_budget`` (``within_admin_budget``
    for an admin change)."""
    modules = (
        routes.ask, routes.verify, routes.search, routes.documents, routes.view, routes.ops,
        routes.admin, routes.widget,
    )  # fmt: skip
    api = [r for m in modules for r in m.router.routes if isinstance(r, APIRoute)]
    assert {"/ask", "/verify", "/search", "/view/{doc_id}"} <= {r.path for r in api}
    for route in api:
        if inspect.iscoroutinefunction(route.endpoint):
            source = inspect.getsource(route.endpoint)
            assert re.search(r"await within_(admin_)?budget\(", source), route.path


# ----------------------------------------------------------------------------- bad input

_LONG = "x" * 2001
_JSON = {"content-type": "application/json"}

BAD_ASKS: list[tuple[str, dict[str, Any], int, str | None, str]] = [
    ("empty", {"json": {"question": ""}}, 422, "question", "empty"),
    ("whitespace", {"json": {"question": " \n\t\u3000 "}}, 422, "question", "empty"),
    ("control-only", {"json": {"question": "\x00\x07\x1b"}}, 422, "question", "empty"),
    ("too-long", {"json": {"question": _LONG}}, 422, "question", "2000"),
    ("missing-question", {"json": {"top_k": 3}}, 422, "question", "required"),
    ("null-question", {"json": {"question": None}}, 422, "question", "string"),
    ("top-k-zero", {"json": {"question": "q", "top_k": 0}}, 422, "top_k", "1"),
    ("top-k-51", {"json": {"question": "q", "top_k": 51}}, 422, "top_k", "50"),
    ("top-k-text", {"json": {"question": "q", "top_k": "5"}}, 422, "top_k", "integer"),
    ("top-k-fraction", {"json": {"question": "q", "top_k": 2.5}}, 422, "top_k", "integer"),
    (
        "date-slashes",
        {"json": {"question": "q", "filters": {"published_from": "2023/01/01"}}},
        422,
        "filters.published_from",
        "YYYY-MM-DD",
    ),
    (
        "date-impossible",
        {"json": {"question": "q", "filters": {"published_to": "2023-02-30"}}},
        422,
        "filters.published_to",
        "YYYY-MM-DD",
    ),
    (
        "date-words",
        {"json": {"question": "q", "filters": {"published_to": "yesterday"}}},
        422,
        "filters.published_to",
        "YYYY-MM-DD",
    ),
    (
        "dates-reversed",
        {
            "json": {
                "question": "q",
                "filters": {"published_from": "2024-01-01", "published_to": "2023-01-01"},
            }
        },
        422,
        "filters",
        "after",
    ),
    (
        "unknown-doc",
        {"json": {"question": "q", "filters": {"doc_ids": [NEAR, "no_such_doc"]}}},
        404,
        "filters.doc_ids",
        "GET /documents",
    ),
    (
        "unknown-language",
        {"json": {"question": "q", "filters": {"languages": ["fr"]}}},
        422,
        "filters.languages",
        "zh-Hans",
    ),
    ("misspelt-field", {"json": {"question": "q", "topk": 3}}, 422, "topk", "not a field"),
    ("not-json", {"content": b'{"question": "q",', "headers": _JSON}, 422, "body", "JSON"),
    ("json-array", {"json": ["q"]}, 422, "body", "JSON object"),
    ("no-body", {}, 422, "body", "no body"),
    (
        "text-plain",
        {"content": b"question=q", "headers": {"content-type": "text/plain"}},
        422,
        "body",
        "application/json",
    ),
    ("nested-too-deep", {"content": b"[" * 50_000, "headers": _JSON}, 400, "body", "JSON"),
    (
        "lone-surrogate-key",
        {"content": b'{"\\ud800": 1, "question": "q"}', "headers": _JSON},
        422,
        "body",
        "invalid",
    ),
    (
        "over-64-kib",
        {"json": {"question": "x" * (MAX_BODY_BYTES + 1)}},
        413,
        "body",
        "64 KiB",
    ),
    (
        "over-64-kib-chunked",
        {"chunks": [b'{"question": "', b"x" * 40_000, b"x" * 40_000, b'"}'], "headers": _JSON},
        413,
        "body",
        "64 KiB",
    ),
    # Just under the limit the body reaches the app, which refuses the question's length.
    ("under-64-kib", {"json": {"question": "x" * 60_000}}, 422, "question", "2000"),
]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "field", "hint"),
    [case[1:] for case in BAD_ASKS],
    ids=[case[0] for case in BAD_ASKS],
)
def test_bad_ask_gets_a_clear_error(
    client: TestClient, request_kwargs: dict[str, Any], status: int, field: str, hint: str
) -> None:
    kwargs = dict(request_kwargs)
    if "chunks" in kwargs:  # an iterator has no length: httpx sends it chunked
        kwargs["content"] = iter(kwargs.pop("chunks"))
    _check_error(client.post("/ask", **kwargs), status, field, hint)


def test_chunked_body_has_no_content_length(client: TestClient) -> None:
    # The chunked case above must really stream: httpx sends an iterator without a length.
    request = client.build_request("POST", "/ask", content=iter([b"{}"]), headers=_JSON)
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"


@pytest.mark.parametrize(
    ("path", "method", "status", "hint"),
    [("/nowhere", "GET", 404, "/docs"), ("/ask", "GET", 405, "POST")],
    ids=["unknown-route", "wrong-method"],
)
def test_routing_errors_use_the_error_shape(
    client: TestClient, path: str, method: str, status: int, hint: str
) -> None:
    _check_error(client.request(method, path), status, None, hint)


# ----------------------------------------------------------------------------- /search


def test_search_returns_ranked_passages(client: TestClient) -> None:
    response = client.get("/search", params={"q": "地震减灾", "k": 4})
    assert response.status_code == 200
    passages = response.json()
    assert [p["rank"] for p in passages] == [1, 2, 3, 4]
    for passage in passages:
        _check_passage(client, passage)
    assert any(p["highlights"] for p in passages)


def test_search_filters(client: TestClient) -> None:
    response = client.get("/search", params={"q": "forum", "k": 10, "doc_id": NEAR})
    assert response.status_code == 200
    assert {p["doc_id"] for p in response.json()} == {NEAR}
    response = client.get("/search", params={"q": "地震", "language": ["zh-Hant"]})
    assert {p["language"] for p in response.json()} == {"zh-Hant"}


@pytest.mark.parametrize(
    ("params", "status", "field", "hint"),
    [
        ({}, 422, "q", "required"),
        ({"q": "  "}, 422, "q", "empty"),
        ({"q": _LONG}, 422, "q", "2000"),
        ({"q": "x", "k": 0}, 422, "k", "1"),
        ({"q": "x", "k": 51}, 422, "k", "50"),
        ({"q": "x", "k": "five"}, 422, "k", "integer"),
        ({"q": "x", "doc_id": "no_such_doc"}, 404, "doc_id", "GET /documents"),
        ({"q": "x", "language": "fr"}, 422, "language", "zh-Hant"),
        ({"q": "x", "published_from": "2023-1-1"}, 422, "published_from", "YYYY-MM-DD"),
    ],
    ids=[
        "no-q",
        "blank-q",
        "long-q",
        "k-zero",
        "k-51",
        "k-text",
        "unknown-doc",
        "unknown-language",
        "bad-date",
    ],
)
def test_bad_search_gets_a_clear_error(
    client: TestClient, params: dict[str, Any], status: int, field: str, hint: str
) -> None:
    _check_error(client.get("/search", params=params), status, field, hint)


# ----------------------------------------------------------------------------- /documents


def test_documents_lists_the_corpus(client: TestClient, corpus_index: CorpusIndex) -> None:
    response = client.get("/documents")
    assert response.status_code == 200
    rows = response.json()
    assert [row["doc_id"] for row in rows] == list(corpus_index.documents)
    for row in rows:
        document = corpus_index.documents[row["doc_id"]]
        assert set(row) == SUMMARY_KEYS
        assert row["length"] == len(document.text)
        assert row["languages"] == list(document.languages)
        assert (row["title"], row["source"], row["published"]) == (
            document.title,
            document.source,
            document.published,
        )


def test_document_has_the_original_text(client: TestClient, corpus_index: CorpusIndex) -> None:
    document = corpus_index.documents[NEAR]
    body = client.get(f"/documents/{NEAR}").json()
    assert set(body) == SUMMARY_KEYS | {"sha256", "view_url", "text", "slice"}
    assert body["text"] == document.text
    assert body["sha256"] == document.sha256
    assert body["slice"] is None
    assert client.get(body["view_url"]).status_code == 200


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"start": 628, "end": 880}, (628, 880)),
        ({"start": 7000}, (7000, None)),
        ({"end": 9}, (0, 9)),
    ],
    ids=["both", "start-only", "end-only"],
)
def test_document_slice(
    client: TestClient,
    corpus_index: CorpusIndex,
    params: dict[str, int],
    expected: tuple[int, int | None],
) -> None:
    text = corpus_index.documents[NEAR].text
    start, end = expected[0], len(text) if expected[1] is None else expected[1]
    body = client.get(f"/documents/{NEAR}", params=params).json()
    assert body["slice"] == {"start": start, "end": end, "text": text[start:end]}


@pytest.mark.parametrize(
    ("params", "field", "hint"),
    [
        ({"start": 900, "end": 880}, "end", "before start"),
        ({"start": 0, "end": 10**6}, "end", "characters"),
        ({"start": 10**6}, "start", "characters"),
        ({"start": -1, "end": 5}, "start", "greater than or equal to 0"),
        ({"start": "a"}, "start", "integer"),
    ],
    ids=["reversed", "end-past-text", "start-past-text", "negative", "not-a-number"],
)
def test_bad_slice_is_422(
    client: TestClient, params: dict[str, Any], field: str, hint: str
) -> None:
    _check_error(client.get(f"/documents/{NEAR}", params=params), 422, field, hint)


@pytest.mark.parametrize("path", ["/documents/no_such_doc", "/view/no_such_doc"])
def test_unknown_document_is_404(client: TestClient, path: str) -> None:
    _check_error(client.get(path), 404, "doc_id", "GET /documents")


# ----------------------------------------------------------------------------- /view


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)


def test_view_page(client: TestClient, corpus_index: CorpusIndex) -> None:
    document = corpus_index.documents[NEAR]
    response = client.get(f"/view/{NEAR}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page = response.text
    assert not _INLINE_SCRIPT.search(page)
    assert '<script src="../static/view.js" defer></script>' in page
    # its JSON, relative to the page, so it resolves under any CITEQA_PUBLIC_URL path
    assert f'<a href="../documents/{NEAR}">JSON</a>' in page
    assert client.get(f"/view/../documents/{NEAR}").status_code == 200
    assert re.search(r"<h1>[^<]*NEAR International Forum 2023", page)
    # The article holds the whole text, character for character, once tags are removed.
    article = re.search(r'<article id="text"[^>]*>(.*)</article>', page, re.S)
    assert article is not None
    assert html.unescape(re.sub(r"<[^>]+>", "", article.group(1))) == document.text
    assert 'class="boilerplate"' in page and 'lang="en"' in page

    script = client.get("/static/view.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "location.hash" in script.text and "innerHTML" not in script.text
    assert client.get("/static/view.css").status_code == 200


def test_view_page_escapes_markup() -> None:
    text = "Menu\r\n<script>alert('x')</script> & <b onclick=\"x()\">😀 中文</b>\x00 end\n"
    document = Document(
        doc_id="evil<id>",
        path="evil.txt",
        text=text,
        sha256="0" * 64,
        title="<img src=x onerror=alert(1)>",
        source="A & B",
        published=None,
        content=(Span(6, 40, "en"), Span(40, len(text), "zh-Hans")),
        boilerplate=(Span(0, 4, "navigation"),),
    )
    page = document_page(document)
    assert "<script>alert" not in page and "<img" not in page and "<b onclick" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "evil%3Cid%3E" in page  # the JSON link quotes the id
    article = re.search(r'<article id="text"[^>]*>(.*)</article>', page, re.S)
    assert article is not None
    # A browser reads &#13; back as CR (not LF) and &#0; as U+FFFD, so offsets stay put.
    assert "\r" not in article.group(1) and "&#13;" in article.group(1)
    unescaped = html.unescape(re.sub(r"<[^>]+>", "", article.group(1)))
    assert unescaped == text.replace("\x00", "\ufffd")
    assert f'data-length="{len(text)}"' in page


# ----------------------------------------------------------------------------- ops and docs


def test_health_and_readiness(client: TestClient, corpus_index: CorpusIndex) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert (body["documents"], body["chunks"]) == (
        len(corpus_index.documents),
        len(corpus_index.chunks),
    )


def test_not_ready_before_the_lifespan(settings: Settings) -> None:
    app = create_app(settings)
    client = TestClient(app)  # no `with`: the lifespan has not loaded anything
    assert client.get("/healthz").status_code == 200
    _check_error(client.get("/readyz"), 503, None, "loading")
    _check_error(client.post("/ask", json={"question": "q"}), 503, None, "/readyz")


def test_openapi_documents_the_contract(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/ask", "/search", "/documents", "/documents/{doc_id}", "/view/{doc_id}"} <= set(
        spec["paths"]
    )
    ask = spec["paths"]["/ask"]["post"]
    ok = ask["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/AskResponse")
    for status in ("404", "413", "422"):
        error = ask["responses"][status]["content"]["application/json"]["schema"]
        assert error["$ref"].endswith("/ErrorBody")
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    view = spec["paths"]["/view/{doc_id}"]["get"]["responses"]
    assert "text/html" in view["200"]["content"]
    assert list(view["404"]["content"]) == ["application/json", "text/html"]  # browsers: HTML


@pytest.mark.parametrize(
    ("schema", "field", "values"),
    [
        ("AnswerOut", "answer_type", ANSWER_TYPES),
        ("VerifyResponse", "verdict", {"supported", "contradicted", "not_found"}),
        ("EvidenceOut", "stance", {"supports", "contradicts", "related"}),
        ("MismatchOut", "kind", {"number", "date", "ordinal", "person", "place", "organization"}),
    ],
)
def test_openapi_lists_every_closed_kind(
    client: TestClient, schema: str, field: str, values: set[str]
) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas[schema]["properties"][field]["enum"]) == values
    assert field in schemas[schema]["required"]


def test_readiness_is_documented_as_it_answers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ok = spec["paths"]["/readyz"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/Readiness")
    readiness = spec["components"]["schemas"]["Readiness"]
    assert set(readiness["required"]) == set(client.get("/readyz").json())


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:5173", True),
        ("http://127.0.0.1:8080", True),
        ("https://news.example.org", False),
        ("http://localhost.evil.example", False),
    ],
)
def test_cross_origin_calls_only_from_allowed_origins(
    client: TestClient, origin: str, allowed: bool
) -> None:
    preflight = client.options(
        "/ask",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed
    response = client.post("/ask", json={"question": "NEAR forum"}, headers={"Origin": origin})
    assert response.status_code == 200
    assert (response.headers.get("access-control-allow-origin") == origin) is allowed


def test_configured_origins_may_call(settings: Settings, corpus_index: CorpusIndex) -> None:
    configured = settings.model_copy(update={"cors_origins": ("https://news.example.org",)})
    with TestClient(create_app(configured)) as other:
        response = other.get(
            "/search", params={"q": "NEAR"}, headers={"Origin": "https://news.example.org"}
        )
    assert response.headers.get("access-control-allow-origin") == "https://news.example.org"


def test_widget_script_and_demo_page(client: TestClient) -> None:
    script = client.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "customElements.define" in script.text and "innerHTML" not in script.text
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/widget.js" defer></script>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the CSP would block it
    for summary in client.get("/documents").json():  # every source, linked to its page
        assert f'<a href="{view_url("", summary["doc_id"])}">' in page.text


def test_verify_contract(client: TestClient) -> None:
    claim = "The China-Japan-Korea Cooperation Secretariat opened in Seoul in September 2013."
    response = client.post("/verify", json={"claim": claim, "top_k": 3})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"claim", "verdict", "confidence", "evidence", "timings_ms", "claim_review"}
    assert body["claim"] == claim and body["verdict"] == "contradicted"
    review = body["claim_review"]  # schema.org JSON-LD a fact-check article can embed
    assert (review["@context"], review["@type"]) == ("https://schema.org", "ClaimReview")
    assert review["claimReviewed"] == claim
    assert review["reviewRating"]["alternateName"] == "Contradicted by the sources"
    appearance = review["itemReviewed"]["appearance"][0]
    assert appearance["url"] in (body["evidence"][0]["citation"]["url_original"],
                                 body["evidence"][0]["citation"]["url"])  # fmt: skip
    assert 0 <= body["confidence"] <= 1 and 1 <= len(body["evidence"]) <= 3
    for evidence in body["evidence"]:
        assert set(evidence) == {"quote", "citation", "stance", "mismatches", "matches"}
        assert set(evidence["citation"]) == CITATION_KEYS
        assert evidence["stance"] in ("supports", "contradicts", "related")
        c = evidence["citation"]
        text = client.get(f"/documents/{c['doc_id']}").json()["text"]
        assert text[c["char_start"] : c["char_end"]] == evidence["quote"]
        for m in evidence["mismatches"] + evidence["matches"]:
            assert set(m) == {
                "kind", "claim_text", "evidence_text", "evidence_start", "evidence_end"
            }  # fmt: skip
            assert evidence["quote"][m["evidence_start"] : m["evidence_end"]] == m["evidence_text"]
    deciding = body["evidence"][0]  # the deciding sentence comes first
    assert deciding["stance"] == "contradicts"
    assert [(m["kind"], m["claim_text"]) for m in deciding["mismatches"]] == [
        ("date", "September 2013")
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"claim": "  "}, "claim"),
        ({"claim": "x" * 2001}, "claim"),
        ({"claim": "a claim", "top_k": 0}, "top_k"),
        ({"claim": "a claim", "top_k": 51}, "top_k"),
        ({"claim": "a claim", "extra": 1}, "extra"),
        ({}, "claim"),
    ],
)
def test_verify_bad_input(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/verify", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"].endswith(field)


def test_every_response_says_nosniff(client: TestClient) -> None:
    for path in ("/healthz", "/documents", "/documents/nope", "/widget.js", "/"):
        assert client.get(path).headers["x-content-type-options"] == "nosniff", path


def test_rate_limit_answers_429_with_retry_after(
    settings: Settings, corpus_index: CorpusIndex
) -> None:
    strict = settings.model_copy(update={"rate_limit_per_minute": 60, "rate_limit_burst": 3})
    with TestClient(create_app(strict)) as limited:
        statuses = [limited.get("/documents").status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        refused = limited.get("/documents")
        assert int(refused.headers["retry-after"]) >= 1
        assert "too many requests" in refused.json()["error"]["message"]
        assert limited.get("/healthz").status_code == 200  # probes are not counted
        # a proxy's X-Forwarded-For is ignored unless the proxy is trusted
        spoofed = limited.get("/documents", headers={"X-Forwarded-For": "203.0.113.9"})
        assert spoofed.status_code == 429
    trusting = strict.model_copy(update={"trusted_proxies": ("testclient",)})
    with TestClient(create_app(trusting)) as proxied:
        for n in range(5):  # the proxy appends each client's own address
            forwarded = {"X-Forwarded-For": f"10.0.0.1, 203.0.113.{n}"}
            assert proxied.get("/documents", headers=forwarded).status_code == 200


def test_a_request_over_its_budget_is_a_503_and_the_worker_recovers(
    settings: Settings, corpus_index: CorpusIndex
) -> None:
    hurried = settings.model_copy(update={"request_budget_seconds": 0.0005})
    with TestClient(create_app(hurried)) as client:
        slow = client.post("/ask", json={"question": "Who organized the NEAR forum in 2023?"})
        assert slow.status_code == 503
        assert "budget" in slow.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200


def test_frame_ancestors_are_configurable(settings: Settings, corpus_index: CorpusIndex) -> None:
    framed = settings.model_copy(update={"frame_ancestors": "'self' https://news.example.org"})
    with TestClient(create_app(framed)) as client:
        policy = client.get("/").headers["content-security-policy"]
    assert "frame-ancestors 'self' https://news.example.org" in policy
