"""GET /widget.js (the chat widget) and GET / (a demo page that hosts it)."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from service.server.deps import EngineDep
from service.server.pages import STATIC_DIR, page_headers

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
def demo(engine: EngineDep, request: Request) -> HTMLResponse:
    """A page hosting the widget, saying in two lines what the service covers."""
    documents = engine.documents.values()
    names = {"en": "English", "zh-Hans": "Simplified Chinese", "zh-Hant": "Traditional Chinese"}
    languages = sorted({names.get(lang, lang) for d in documents for lang in d.languages})
    items = "".join(
        f'<li><a href="/view/{html.escape(d.doc_id)}">{html.escape(d.title or d.doc_id)}</a>'
        f"{' — ' + html.escape(d.published) if d.published else ''}</li>"
        for d in documents
    )
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>citeqa — cited answers on China–Japan–ROK cooperation</title>
<link rel="stylesheet" href="/static/demo.css">
</head>
<body>
<div class="masthead">The Trilateral Desk
<small>citeqa demo · questions answered from the sources</small></div>
<h1>Ask about China–Japan–ROK cooperation</h1>
<p class="lede">The chat button at the bottom right answers questions about trilateral summits, the
cooperation secretariat and regional forums from {len(engine.documents)} news and reference
documents in {html.escape(", ".join(languages))}.
Every answer is a quote from a source, with a link to the exact passage; when the sources
do not say, it says so.</p>
<p>Ask in English or Chinese: an English question finds answers written in Chinese, and a
Simplified-Chinese question finds Traditional text.</p>
<p class="note">The sources:</p>
<ul class="note">{items}</ul>
<script src="/widget.js" defer></script>
</body>
</html>
"""
    return HTMLResponse(page, headers=page_headers(request.app.state.settings.frame_ancestors))
