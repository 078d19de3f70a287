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
from typing import Literal

from service.records import Document
from service.server.links import document_url, view_url

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PAGE_LANGUAGES",
    "STATIC_DIR",
    "WORDS",
    "citation_text",
    "demo_page",
    "document_page",
    "error_page",
    "page_headers",
    "page_language",
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


PageLanguage = Literal["en", "zh-Hans", "zh-Hant"]
PAGE_LANGUAGES: tuple[PageLanguage, ...] = ("en", "zh-Hans", "zh-Hant")
Words = dict[str, str]
# The document page's words for readers, in each language it is shown in.
WORDS: dict[PageLanguage, Words] = {
    "en": {
        "publisher": "Publisher",
        "date": "Date",
        "author": "Author",
        "not_stated": "not stated",
        "no_title": "Title not stated",
        "no_publisher": "Publisher not stated",
        "no_date": "date not stated",
        "citation": "{title}. {publisher}, {date}.",
        "original": "Original article",
        "copy": "Copy citation",
        "copied": "Citation copied.",
        "copy_failed": "Could not copy: select the text and copy it by hand.",
        "quote_open": "“",
        "quote_close": "”",
        "passage": "Cited passage",
        "show_chrome": "Show page menus and notices",
        "hide_chrome": "Hide page menus and notices",
        "highlighted": "The cited passage is highlighted below.",
        "outside": "This link points outside the document; it may come from an older version.",
        "differs": "This page's text differs from the document; the highlight may be misplaced.",
        "developers": "For developers",
        "gone_title": "This source was removed",
        "gone_text": "The document this link points to was removed from the sources on {date}. "
        "Ask the question again for a current source.",
        "missing_title": "No such source",
        "missing_text": "There is no document {doc_id!r} in the sources; the link may be "
        "mistyped or cut short.",
        "home": "Back to the questions",
    },
    "zh-Hans": {
        "publisher": "来源",
        "date": "日期",
        "author": "作者",
        "not_stated": "未注明",
        "no_title": "标题未注明",
        "no_publisher": "来源未注明",
        "no_date": "日期未注明",
        "citation": "{title}。{publisher}，{date}。",
        "original": "原文",
        "copy": "复制引用",
        "copied": "引用已复制。",
        "copy_failed": "无法复制：请选中文字后手动复制。",
        "quote_open": "“",
        "quote_close": "”",
        "passage": "引文出处",
        "show_chrome": "显示网页菜单和声明",
        "hide_chrome": "隐藏网页菜单和声明",
        "highlighted": "引用的段落已在下文标出。",
        "outside": "此链接指向文档之外，可能来自文档的旧版本。",
        "differs": "本页文字与文档不一致，标出的位置可能有误。",
        "developers": "开发者",
        "gone_title": "此来源已被移除",
        "gone_text": "此链接指向的文档已于 {date} 从来源中移除。请重新提问以获得现有的来源。",
        "missing_title": "没有这个来源",
        "missing_text": "来源中没有文档 {doc_id!r}；链接可能有误或不完整。",
        "home": "返回提问",
    },
    "zh-Hant": {
        "publisher": "來源",
        "date": "日期",
        "author": "作者",
        "not_stated": "未註明",
        "no_title": "標題未註明",
        "no_publisher": "來源未註明",
        "no_date": "日期未註明",
        "citation": "{title}。{publisher}，{date}。",
        "original": "原文",
        "copy": "複製引用",
        "copied": "引用已複製。",
        "copy_failed": "無法複製：請選取文字後手動複製。",
        "quote_open": "「",
        "quote_close": "」",
        "passage": "引文出處",
        "show_chrome": "顯示網頁選單和聲明",
        "hide_chrome": "隱藏網頁選單和聲明",
        "highlighted": "引用的段落已在下文標出。",
        "outside": "此連結指向文件之外，可能來自文件的舊版本。",
        "differs": "本頁文字與文件不一致，標出的位置可能有誤。",
        "developers": "開發者",
        "gone_title": "此來源已被移除",
        "gone_text": "此連結指向的文件已於 {date} 從來源中移除。請重新提問以取得現有的來源。",
        "missing_title": "沒有這個來源",
        "missing_text": "來源中沒有文件 {doc_id!r}；連結可能有誤或不完整。",
        "home": "返回提問",
    },
}


def page_language(asked: str | None, document: Document | None) -> PageLanguage:
    """The language of a page's labels: the one asked for (``?lang=``, the reader's), else
    the document's declared or first language, else English. Chinese without a script
    reads as Simplified; a language the page has no words for reads as English."""
    own = (document.language or next(iter(document.languages), None)) if document else None
    for candidate in (asked, own):
        if not candidate:
            continue
        for known in PAGE_LANGUAGES:
            if candidate == known:
                return known
        if candidate.split("-")[0] == "zh":
            return (
                "zh-Hant" if "Hant" in candidate or candidate in {"zh-TW", "zh-HK"} else "zh-Hans"
            )
    return "en"


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


def _folded_runs(pieces: list[tuple[int, int, str, str]], text: str) -> list[list[int]]:
    """Indices of ``pieces`` grouped into what is shown: a run of boilerplate pieces (and
    the white space between and after them) is one group, folded away together."""
    groups: list[list[int]] = []
    chrome = False  # the last group is a boilerplate run still open
    for index, (start, end, kind, _) in enumerate(pieces):
        blank = kind == "plain" and not text[start:end].strip()
        if kind == "boilerplate" or (chrome and blank):
            if not chrome:
                groups.append([])
            groups[-1].append(index)
            chrome = True
        else:
            groups.append([index])
            chrome = False
    return groups


def _article(document: Document) -> tuple[str, int]:
    """The ``<article>``'s inner HTML, every character of the text in order, and how many
    boilerplate runs it folds (each in a ``<span class="chrome">``)."""
    pieces = segments(document)
    parts = []
    folded = 0
    for group in _folded_runs(pieces, document.text):
        rendered = "".join(
            _piece(document.text[a:b], k, label) for a, b, k, label in (pieces[i] for i in group)
        )
        if pieces[group[0]][2] == "boilerplate":
            folded += 1
            rendered = f'<span class="chrome">{rendered}</span>'
        parts.append(rendered)
    return "".join(parts), folded


def _head(title: str, lang: str) -> str:
    return (
        "<!doctype html>\n"
        f'<html lang="{html.escape(lang)}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)} · citeqa</title>\n"
        '<link rel="stylesheet" href="../static/view.css">\n'
        '<script src="../static/view.js" defer></script>\n'
        "</head>\n"
    )


def _fact(name: str, value: str | None, words: Words) -> str:
    shown = (
        html.escape(value)
        if value
        else f'<span class="unknown">{html.escape(words["not_stated"])}</span>'
    )
    return f"<div><dt>{html.escape(name)}</dt><dd>{shown}</dd></div>"


def _data(**values: str) -> str:
    """``data-*`` attributes (``quote_open="“"`` -> `` data-quote-open="“"``), escaped."""
    return "".join(
        f' data-{name.replace("_", "-")}="{html.escape(value)}"' for name, value in values.items()
    )


def _original(document: Document, words: Words) -> str:
    if not document.url:
        return html.escape(f"{words['original']}: {words['not_stated']}")
    return (
        f'<a class="original" href="{html.escape(document.url)}" rel="noopener noreferrer">'
        f"{html.escape(words['original'])}</a>"
    )


def _buttons(document: Document, words: Words, folded: int) -> str:
    """Copy citation, and the toggle of the folded page chrome if there is any."""
    copy = _data(
        citation=citation_text(document, words),
        quote_open=words["quote_open"],
        quote_close=words["quote_close"],
        passage=words["passage"],
        copied=words["copied"],
        failed=words["copy_failed"],
    )
    buttons = (
        f'<button type="button" id="copy-citation"{copy}>{html.escape(words["copy"])}</button>'
    )
    if folded:
        toggle = _data(show=words["show_chrome"], hide=words["hide_chrome"])
        buttons += (
            '<button type="button" id="chrome-toggle" aria-expanded="false" aria-controls="text"'
            f"{toggle}>{html.escape(words['show_chrome'])}</button>"
        )
    return buttons


def _header(document: Document, words: Words, folded: int) -> str:
    """The sticky header: what to cite the document as, "not stated" where no source
    states it, the link to the original, and the buttons view.js drives."""
    date = document.published_at.replace("T", " ")[:16] if document.published_at else None
    facts = [
        _fact(words["publisher"], document.source, words),
        _fact(words["date"], date or document.published, words),
    ]
    if document.author:
        facts.append(_fact(words["author"], document.author, words))
    title = html.escape(document.title or words["no_title"])
    heading = "<h1>" if document.title else '<h1 class="unknown">'
    status = _data(
        highlighted=words["highlighted"], outside=words["outside"], differs=words["differs"]
    )
    return (
        '<header class="meta">\n'
        f"{heading}{title}</h1>\n"
        f"<dl>{''.join(facts)}</dl>\n"
        f'<p class="actions"><span class="original-link">{_original(document, words)}</span>'
        f"{_buttons(document, words, folded)}</p>\n"
        f'<p id="cite-status" class="cite-status" role="status" hidden{status}></p>\n'
        "</header>\n"
    )


def citation_text(document: Document, words: Words) -> str:
    """The citation of ``document`` in plain text, "not stated" where a field is unknown:
    ``Title. Publisher, date.`` and the original's link on a line of its own. (view.js puts
    the quote above it and the link to the cited passage below.)"""
    title = document.title or words["no_title"]
    publisher = document.source or words["no_publisher"]
    date = document.published or words["no_date"]
    line = words["citation"].format(title=title, publisher=publisher, date=date)
    return f"{line}\n{document.url}" if document.url else line


def document_page(document: Document, language: str | None = None) -> str:
    """The whole page; the citation range comes from the URL fragment, read by view.js.

    ``language``: the reader's (``en``, ``zh-Hans``, ``zh-Hant``) for the page's labels;
    by default the document's own."""
    lang = page_language(language, document)
    words = WORDS[lang]
    json_link = document_url("..", document.doc_id)  # relative to /view/<id>
    body, folded = _article(document)
    # Nothing may sit between <article> and the text: view.js counts from its first character.
    return (
        _head(document.title or words["no_title"], lang)
        + "<body>\n"
        + _header(document, words, folded)
        + "<main>\n"
        f'<article id="text" class="text{" folded" if folded else ""}"'
        f' data-length="{len(document.text)}">{body}</article>\n'
        "</main>\n"
        f'<footer class="dev">{html.escape(words["developers"])}:'
        f' <a href="{html.escape(json_link)}">JSON</a> · <a href="../docs">API</a></footer>\n'
        "</body>\n"
        "</html>\n"
    )


def error_page(status: int, doc_id: str, removed_at: str | None, language: str | None) -> str:
    """The page a browser gets for a link to an unknown (404) or removed (410) document."""
    words = WORDS[page_language(language, None)]
    if status == 410:
        heading = words["gone_title"]
        when = (removed_at or "")[:10] or words["not_stated"]
        message = words["gone_text"].format(date=when)
    else:
        heading = words["missing_title"]
        message = words["missing_text"].format(doc_id=doc_id)
    return (
        _head(heading, page_language(language, None))
        + '<body class="error">\n<header class="meta">\n'
        f"<h1>{html.escape(heading)}</h1>\n</header>\n<main>\n"
        f"<p>{html.escape(message)}</p>\n"
        f'<p><a href="../">{html.escape(words["home"])}</a></p>\n'
        "</main>\n</body>\n</html>\n"
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
