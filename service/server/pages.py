"""The HTML pages: a document's, and the demo page that hosts the chat widget.

A document's page holds the original text character for character, as plain text the
browser cannot mistake for markup, so ``static/view.js`` can count the citation offsets of
``#start-end`` in the DOM and wrap that range in ``<mark>``. Two things the HTML parser
would change are written as character references to keep the count: a carriage return (the
parser turns CR LF into LF) and NUL (dropped from text).

No page runs inline script or style (``CONTENT_SECURITY_POLICY``); links to documents come
from ``service.server.links``.
"""

from __future__ import annotations

import html
from collections.abc import Collection
from pathlib import Path

from service.records import Document
from service.server.links import document_url, view_url

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "STATIC_DIR",
    "demo_page",
    "document_page",
    "page_headers",
    "segments",
]

STATIC_DIR = Path(__file__).resolve().parent / "static"

# No inline script or style: pages run only our own scripts and style sheets (the widget's
# styles are a constructed style sheet, which is no inline style). connect-src: the widget
# on the demo page asks /ask on the same origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
)


def page_headers(frame_ancestors: str = "'none'") -> dict[str, str]:
    """Security headers of every HTML page (``frame_ancestors``: who may frame it)."""
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY.format(ancestors=frame_ancestors),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _text(text: str) -> str:
    return html.escape(text).replace("\r", "&#13;").replace("\x00", "&#0;")


def segments(document: Document) -> list[tuple[int, int, str, str]]:
    """The text cut into ``(start, end, kind, label)`` pieces that cover it exactly.

    ``kind`` is ``content`` (label: its language), ``boilerplate`` (label: why it is left
    out of the index) or ``plain`` (between spans, label empty).
    """
    spans = sorted(
        [(s.start, s.end, "content", s.label) for s in document.content]
        + [(s.start, s.end, "boilerplate", s.label) for s in document.boilerplate]
    )
    pieces: list[tuple[int, int, str, str]] = []
    position = 0
    for start, end, kind, label in spans:
        start = max(start, position)  # spans should not overlap; if they do, cut the later one
        end = min(end, len(document.text))
        if start >= end:
            continue
        if start > position:
            pieces.append((position, start, "plain", ""))
        pieces.append((start, end, kind, label))
        position = end
    if position < len(document.text):
        pieces.append((position, len(document.text), "plain", ""))
    return pieces


def _piece(text: str, kind: str, label: str) -> str:
    if kind == "content":
        return f'<span class="content" lang="{html.escape(label)}">{_text(text)}</span>'
    if kind == "boilerplate":
        reason = html.escape(f"left out of the index: {label}")
        return f'<span class="boilerplate" title="{reason}">{_text(text)}</span>'
    return _text(text)


def document_page(document: Document) -> str:
    """The whole page; the citation range comes from the URL fragment, read by view.js."""
    title = document.title or document.doc_id
    json_link = document_url("..", document.doc_id)  # relative to /view/<id>
    languages = document.languages
    facts = [
        ("source", document.source),
        ("published", document.published),
        ("languages", ", ".join(languages) or None),
        ("document", document.doc_id),
        ("length", f"{len(document.text)} characters"),
    ]
    rows = "".join(
        f"<div><dt>{name}</dt><dd>{html.escape(value)}</dd></div>" for name, value in facts if value
    )
    body = "".join(
        _piece(document.text[start:end], kind, label)
        for start, end, kind, label in segments(document)
    )
    # Nothing may sit between <article> and the text: view.js counts from its first character.
    return (
        "<!doctype html>\n"
        f'<html lang="{html.escape(languages[0] if languages else "und")}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)} · citeqa</title>\n"
        '<link rel="stylesheet" href="../static/view.css">\n'
        '<script src="../static/view.js" defer></script>\n'
        "</head>\n"
        "<body>\n"
        '<header class="meta">\n'
        f"<h1>{html.escape(title)}</h1>\n"
        f"<dl>{rows}</dl>\n"
        f'<p class="links"><a href="{html.escape(json_link)}">JSON</a>'
        ' · <a href="../docs">API</a></p>\n'
        '<p id="cite-status" class="cite-status" role="status" hidden></p>\n'
        "</header>\n"
        "<main>\n"
        f'<article id="text" class="text" data-length="{len(document.text)}">{body}</article>\n'
        "</main>\n"
        "</body>\n"
        "</html>\n"
    )


_LANGUAGE_NAMES = {
    "en": "English",
    "zh-Hans": "Simplified Chinese",
    "zh-Hant": "Traditional Chinese",
}


def demo_page(documents: Collection[Document]) -> str:
    """The page at ``/``: what the service covers in two lines, the widget, the sources."""
    languages = sorted({_LANGUAGE_NAMES.get(lang, lang) for d in documents for lang in d.languages})
    items = "".join(
        f'<li><a href="{html.escape(view_url("", d.doc_id))}">{html.escape(d.title or d.doc_id)}'
        f"</a>{' — ' + html.escape(d.published) if d.published else ''}</li>"
        for d in documents
    )
    return f"""<!doctype html>
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
cooperation secretariat and regional forums from {len(documents)} news and reference
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
