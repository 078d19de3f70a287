"""GET /view/{doc_id}: a document for people, the citation range highlighted."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from service.server.deps import EngineDep, SettingsDep
from service.server.errors import responses
from service.server.pages import document_page, page_headers

router = APIRouter(tags=["documents"])


@router.get(
    "/view/{doc_id}",
    response_class=HTMLResponse,
    responses=responses(404, 410, 422, 503, html=True),
)
def view_document(doc_id: str, engine: EngineDep, settings: SettingsDep) -> HTMLResponse:
    """The document as a readable page. A citation url ends in ``#start-end``; the page
    wraps that range in ``<mark>`` and scrolls to it (``/static/view.js``)."""
    page = document_page(engine.document(doc_id))
    return HTMLResponse(page, headers=page_headers(settings.frame_ancestors))
