"""GET /view/{doc_id}: a document for people, the citation range highlighted.

A browser (``Accept: text/html``) that follows a link to an unknown or removed document
gets a page saying so (404, 410); an API client gets the JSON error as everywhere else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from service.errors import DocumentGoneError, UnknownDocumentError
from service.server.deps import EngineDep, SettingsDep
from service.server.errors import responses
from service.server.pages import PAGE_LANGUAGES, document_page, error_page, page_headers

router = APIRouter(tags=["documents"])


def _html_errors() -> dict[int | str, dict[str, Any]]:
    """The OpenAPI errors of the page: 404 and 410 are HTML for browsers, JSON otherwise."""
    documented = responses(404, 410, 422, 503, html=True)
    for code in (404, 410):  # a copy: the entries share one content mapping
        content = {**documented[code]["content"], "text/html": {"schema": {"type": "string"}}}
        documented[code] = {**documented[code], "content": content}
    return documented


def _wants_html(request: Request) -> bool:
    """True if the client asks for HTML before JSON (a browser following a link)."""
    accept = request.headers.get("accept", "")
    html_at = accept.find("text/html")
    json_at = accept.find("application/json")
    return html_at >= 0 and (json_at < 0 or html_at < json_at)


LangQuery = Annotated[
    str | None,
    Query(
        description="The reader's language for the page's labels: "
        + ", ".join(PAGE_LANGUAGES)
        + " (default: the document's).",
        max_length=35,
    ),
]


@router.get("/view/{doc_id}", response_class=HTMLResponse, responses=_html_errors())
def view_document(
    doc_id: str,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    lang: LangQuery = None,
) -> HTMLResponse:
    """The document as a readable page. A citation url ends in ``#start-end``; the page
    wraps that range in ``<mark>`` and scrolls to it (``/static/view.js``)."""
    headers = page_headers(settings.frame_ancestors)
    try:
        document = engine.document(doc_id)
    except UnknownDocumentError as error:
        if not _wants_html(request):
            raise
        gone = isinstance(error, DocumentGoneError)
        status = 410 if gone else 404
        removed = engine.index.removed.get(doc_id) if gone else None
        page = error_page(status, doc_id, removed, lang)
        return HTMLResponse(page, status_code=status, headers=headers)
    return HTMLResponse(document_page(document, lang), headers=headers)
