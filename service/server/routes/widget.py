"""GET /widget.js (the chat widget) and GET / (a demo page that hosts it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from service.server.deps import EngineDep, SettingsDep
from service.server.pages import STATIC_DIR, demo_page, page_headers

router = APIRouter(tags=["widget"])


@router.get("/widget.js", include_in_schema=False)
def widget() -> FileResponse:
    """The self-contained chat widget: ``<script src="/widget.js" defer></script>``."""
    return FileResponse(
        STATIC_DIR / "widget.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """No icon: an empty answer instead of a 404 in every browser console."""
    return Response(status_code=204)


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def demo(engine: EngineDep, settings: SettingsDep) -> HTMLResponse:
    """A page hosting the widget, saying in two lines what the service covers."""
    page = demo_page(list(engine.documents.values()))
    return HTMLResponse(page, headers=page_headers(settings.frame_ancestors))
