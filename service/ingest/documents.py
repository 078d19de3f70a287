"""Ingest: read the corpus and describe each document without changing a character of it.

A document's ``text`` is the file exactly as written (decoded UTF-8, newlines untouched), so
offsets into it are citations. What ingestion adds is a description of that text:

- metadata: title, source/publisher, author and publication date, where the text states
  them, and what the document's sidecar ``NAME.meta.json`` states (it wins; see
  ``service.ingest.metadata``); a field neither states is left unknown;
- *content* spans: the passages worth indexing, grouped into runs of one language;
- *boilerplate* spans: page chrome kept out of the index (skip links, menus, breadcrumbs,
  CMS buttons, attachment lines, copyright and reprint notices, sidebar headings such as
  "Top News"), each with the reason it was left out. The stories under a sidebar heading
  are indexed, marked as ``sidebar``: they are not the article, but readers ask about them.

Boilerplate is recognised line by line from the shapes web pages give it, not from the
wording of any one document.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from service.errors import CorpusError
from service.ingest.metadata import SIDECAR_SUFFIX, Metadata, read_sidecar
from service.records import Document, Span
from service.text.language import detect_language

__all__ = ["SUFFIXES", "corpus_files", "parse_document", "read_corpus", "read_document"]

SUFFIXES = (".txt", ".md")

# ---------------------------------------------------------------------------------------
# Line shapes of page chrome. Each rule reads one stripped line (it holds no line break).
#
# A scraped page is user text, and ``re`` holds the GIL while it matches: a pattern whose
# repeated item could also take the separator's spaces ("(\s*\|\s*[^.|]{0,25})+") tried
# every way of splitting a menu line and took seconds on 34 characters, freezing the server.
# So no pattern here nests quantifiers that can match the same text; the item lists are
# plain code; every rule takes time linear in the line (tests/test_ingest_redos.py fuzzes
# them), and the rules for whole-line shapes read no line longer than ``_SHAPE_MAX``.

_Rule = Callable[[str], bool]

# A line longer than this is body text whatever its shape: no menu, breadcrumb, button,
# file name or heading is this long. Rules that look for a word anywhere read every line.
_SHAPE_MAX = 500
# Sentence ends: a line with one is prose, not a menu or a breadcrumb.
_SENTENCE_MARKS = frozenset(".。!?！？")
# Nor is a menu item a clause: no commas or colons either.
_BAR_ITEM_MARKS = _SENTENCE_MARKS | frozenset(",，:：")
_BAR_ITEM_MAX = 25
_CRUMB_ARROWS = frozenset(">»›")
_CRUMB_MAX = 40


def _search(pattern: str) -> _Rule:
    """A rule that holds where the case-blind ``pattern`` matches."""
    compiled = re.compile(pattern, re.I)
    return lambda line: compiled.search(line) is not None


def _shape(rule: _Rule) -> _Rule:
    """``rule`` for lines of at most ``_SHAPE_MAX`` characters; longer lines are body text."""
    return lambda line: len(line) <= _SHAPE_MAX and rule(line)


def _is_bar_menu(line: str) -> bool:
    """A line made only of items separated by bars: "News | Secretariat", "|". An item
    has at most 25 characters besides the spaces around its bars, and no punctuation."""
    if "|" not in line or not _BAR_ITEM_MARKS.isdisjoint(line):
        return False
    first, *middle, last = line.split("|")
    return (
        len(first.rstrip()) <= _BAR_ITEM_MAX
        and len(last.lstrip()) <= _BAR_ITEM_MAX
        and all(len(item.strip()) <= _BAR_ITEM_MAX for item in middle)
    )


def _is_breadcrumb(line: str) -> bool:
    """Three or more items of 1 to 40 characters joined by an arrow between two spaces
    ("Home > News > Asia", also » and ›), and no sentence punctuation. An item may hold an
    arrow itself ("A > B" as one item), so the line is read left to right: ``reach`` maps
    each place an item can start to the most arrows before it (two are enough)."""
    if not _SENTENCE_MARKS.isdisjoint(line):
        return False
    reach = {0: 0}
    for arrow in range(1, len(line) - 1):
        if line[arrow] not in _CRUMB_ARROWS:
            continue
        if not (line[arrow - 1].isspace() and line[arrow + 1].isspace()):
            continue
        item_end = arrow - 1
        starts = range(max(0, item_end - _CRUMB_MAX), item_end)  # items of 1 to 40
        arrows = max((reach[start] for start in starts if start in reach), default=-1)
        if arrows >= 0:
            reach[arrow + 2] = max(reach.get(arrow + 2, 0), min(arrows + 1, 2))
    return any(
        arrows == 2 and 1 <= len(line) - start <= _CRUMB_MAX for start, arrows in reach.items()
    )


_CHROME_LINES: tuple[tuple[str, _Rule], ...] = (
    # "skip to main content" links, in the languages of the region
    (
        "navigation",
        _shape(
            _search(
                r"^(본문\s*바로\s*가기|skip to (main )?content|跳(转|轉)?到?主要?内容|"
                r"本文へ(移動|スキップ))$"
            )
        ),
    ),
    # breadcrumbs: "position: A > B > C", "Home > News", "当前位置：首页 > 新闻"
    (
        "navigation",
        _search(r"^(position|location|you are here|当前位置|當前位置|현재\s*위치)\s*[:：]"),
    ),
    ("navigation", _shape(_is_breadcrumb)),
    ("navigation", _shape(_is_bar_menu)),
    # buttons a content management system leaves in the text
    (
        "interface",
        _shape(
            _search(
                r"^(WriteAdmin|Write|Edit|Delete|Print|Share|List|Login|Log in|Sign in|Top|"
                r"Back to (top|list)|목록|인쇄|공유|글쓰기|打印|分享|返回(顶部|頂部)?|关闭|關閉)$"
            )
        ),
    ),
    # attachments: "File 첨부파일 1.JPG", "첨부파일", "Attachment: report.pdf", "附件"
    ("attachment", _search(r"(첨부\s*파일|^attachments?\b|^附件)")),
    (
        "attachment",
        _shape(
            _search(r"^(file\s+)?\S{0,60}\.(jpe?g|png|gif|pdf|hwp|hwpx|docx?|xlsx?|pptx?|zip)$")
        ),
    ),
    # copyright, reprint and site-liability notices
    (
        "copyright",
        _search(
            r"(copyright|©|all rights reserved|\breprint|without (written )?(permission|"
            r"authori[sz]ation)|does not represent the views|service agreement|版权|版權|"
            r"转载|轉載|未经授权|未經授權|저작권|무단\s*전재)"
        ),
    ),
)

# A heading after which the rest of the page is a sidebar of other stories.
_SIDEBAR_HEADING = re.compile(
    r"^(top news|top stories|related (news|articles|stories|reading|links)|more news|"
    r"recommended|most (read|popular)|latest news|hot news|热点新闻|熱點新聞|相关阅读|相關閱讀|"
    r"相关新闻|相關新聞|推荐阅读|推薦閱讀|延伸阅读|延伸閱讀|많이 본 뉴스|관련\s*기사)\s*[:：]?$",
    re.I,
)

# A menu entry: a short bullet with no sentence punctuation. Three in a row make a menu.
_MENU_ITEM = re.compile(r"^[-•*·]\s*[^.。!?！？,，;；]{1,14}$")
_MENU_RUN = 3

# Lines that introduce metadata rather than a headline.
_META_LINE = re.compile(
    r"^(source|release time|released|published|posted|updated|date|author|by|editor|"
    r"来源|來源|发布时间|發布時間|时间|時間|作者|责任编辑|責任編輯)\b\s*[:：]?",
    re.I,
)
# The label of a "Source: Xinhua | 2024-06-12" field; its value runs to the next bar.
_SOURCE_LABEL = re.compile(r"(?:^|[\s|])(?:source|来源|來源)\s*[:：]", re.I)
# And of an "Author: GONG Qian" field, on the same header lines.
_AUTHOR_LABEL = re.compile(r"(?:^|[\s|])(?:author|作者)\s*[:：]", re.I)
# A numbered section heading ("二、政治安全領域", "(一)伙伴關系", "第三章", "2. Scope",
# "II. Scope", "Chapter 3") names a part of a longer work, not the document: a page that
# opens with one states no headline. Each alternative is a plain run, linear in the line.
_SECTION_HEADING = re.compile(
    r"^(?:[一二三四五六七八九十百零〇]+\s*[、.．]"
    r"|[(（]\s*[一二三四五六七八九十百零〇\d]+\s*[)）]"
    r"|第\s*[一二三四五六七八九十百零〇\d]+\s*[章节節部篇卷条條]"
    r"|\d+(?:\.\d+)*\s*[.、．]\s"
    r"|[IVXLC]+\.\s"
    r"|(?:chapter|section|part)\s+[\dIVXLC]+\b)",
    re.I,
)
_AGENCY_DATELINE = re.compile(
    r"^(?P<source>[A-Z][\w.&' -]{1,50}?\b(?:News Agency|News Service|News Network|Agency|Press|"
    r"News|Daily|Times|Post|Herald)),\s+\S",
)

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, str, str]], ...] = (
    (
        re.compile(r"(?<!\d)(?P<y>(?:19|20)\d\d)[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)"),
        ("y", "m", "d"),
    ),
    (
        re.compile(r"(?P<y>(?:19|20)\d\d)\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日"),
        ("y", "m", "d"),
    ),
    (
        re.compile(
            rf"\b(?P<m>{_MONTH_RE})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>(?:19|20)\d\d)\b",
            re.I,
        ),
        ("y", "m", "d"),
    ),
    (
        re.compile(
            rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<m>{_MONTH_RE})\.?,?\s+(?P<y>(?:19|20)\d\d)\b",
            re.I,
        ),
        ("y", "m", "d"),
    ),
)

# A line shorter than this joins the passage above it whatever its language.
_SHORT_LINE = 40
# How far below the title a dateline may stand, in non-blank lines.
_HEADER_LINES = 4
# A line this long, or ending like a sentence, is body text rather than header chrome.
_BODY_LINE = 80


@dataclass(frozen=True)
class _Line:
    start: int  # offset of the first non-blank character
    end: int  # offset after the last non-blank character
    text: str  # the stripped line

    @property
    def blank(self) -> bool:
        return not self.text


def _lines(text: str) -> list[_Line]:
    """Split into lines, keeping exact offsets of each line's stripped content."""
    lines = []
    offset = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        stripped = body.strip()
        lead = len(body) - len(body.lstrip())
        start = offset + lead
        lines.append(_Line(start, start + len(stripped), stripped))
        offset += len(raw)
    return lines


def find_date(text: str) -> tuple[str, int, int] | None:
    """The first full calendar date in ``text`` as ISO ``YYYY-MM-DD``, with its offsets."""
    found: list[tuple[int, int, str]] = []
    for pattern, _ in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            month = match["m"]
            number = int(month) if month.isdigit() else _MONTHS[month.lower()]
            try:
                date = dt.date(int(match["y"]), number, int(match["d"]))
            except ValueError:
                continue
            found.append((match.start(), match.end(), date.isoformat()))
            break
    if not found:
        return None
    start, end, iso = min(found)
    return iso, start, end


def _chrome_reason(line: str) -> str | None:
    for reason, rule in _CHROME_LINES:
        if rule(line):
            return reason
    return None


def _is_sidebar_heading(line: str) -> bool:
    return len(line) <= _SHAPE_MAX and _SIDEBAR_HEADING.match(line) is not None


def _is_menu_item(line: str) -> bool:
    return len(line) <= _SHAPE_MAX and _MENU_ITEM.match(line) is not None


def _source_field(line: str, labels: re.Pattern[str] = _SOURCE_LABEL) -> str | None:
    """The value of the line's first "Source: ..." field (or another of ``labels``), up to
    the next bar, stripped; ``None`` without one or if it is blank. A label with nothing at
    all after it ("Source:|") is no field, and a later one on the line may be.

    Plain code rather than a lazy group before optional spaces, which took time quadratic
    in a long run of spaces. Each label that yields nothing is followed by a bar or the end,
    so the scan is linear."""
    for label in labels.finditer(line):
        bar = line.find("|", label.end())
        value = line[label.end() : bar if bar >= 0 else len(line)]
        if value:
            return value.strip() or None
    return None


def _looks_like_body(line: str) -> bool:
    return len(line) >= _BODY_LINE or line.endswith((".", "。", "!", "！", "?", "？", '"', "”"))


def _markdown_title(lines: list[_Line]) -> int | None:
    for index, line in enumerate(lines):
        if line.text.startswith("# "):
            return index
    return None


def _locate_title(lines: list[_Line], skip: set[int]) -> tuple[int | None, str | None]:
    """Index of the title line and, if the date is glued to it, the title without it.

    The title is the line that carries the dateline, or the line just above a metadata
    line ("Source: ... | 2024-06-12") that does; without a dateline, the first line of text.
    """
    candidates = [i for i, line in enumerate(lines) if not line.blank and i not in skip]
    if not candidates:
        return None, None
    for position, index in enumerate(candidates[: 3 * _HEADER_LINES]):
        text = lines[index].text
        date = find_date(text)
        if date is None:
            continue
        if _META_LINE.match(text) or date[1] == 0:
            if position == 0:
                break
            return candidates[position - 1], None
        if len(text) < 200:
            before = text[: date[1]].rstrip(" -|:,")
            return index, before if before and date[2] >= len(text) - 12 else None
        break
    return candidates[0], None


def _metadata(lines: list[_Line], title_index: int | None, skip: set[int]) -> Metadata:
    """Source, author and publication date, read from the title and the few lines below it
    (only these fields: the title is found apart)."""
    if title_index is None:
        return Metadata()
    header = [
        lines[i].text
        for i in range(title_index, len(lines))
        if not lines[i].blank and i not in skip
    ][: _HEADER_LINES + 1]
    published = source = author = None
    for text in header:
        if published is None and (date := find_date(text)):
            published = date[0]
        source = source or _source_field(text)
        author = author or _source_field(text, _AUTHOR_LABEL)
    if source is None and header and (dateline := _AGENCY_DATELINE.match(header[0])):
        source = dateline["source"]
    return Metadata(publisher=source, author=author, published=published)


def _title(
    lines: list[_Line], reasons: dict[int, str], markdown: bool
) -> tuple[int | None, str | None]:
    """Index of the headline's line and the headline; the title is None where the text
    states none (it opens with a numbered section heading)."""
    if markdown:
        index = _markdown_title(lines)
        return index, lines[index].text.lstrip("# ").strip() if index is not None else None
    index, title = _locate_title(lines, set(reasons))
    if index is not None and title is None:
        title = lines[index].text
    if title is not None and _SECTION_HEADING.match(title):
        title = None
    return index, title


def _sidebar_start(lines: list[_Line]) -> int:
    """Index of the sidebar heading ("Top News"), or ``len(lines)`` if there is none."""
    return next((i for i, line in enumerate(lines) if _is_sidebar_heading(line.text)), len(lines))


def _boilerplate_lines(lines: list[_Line]) -> dict[int, str]:
    """Map of line index to the reason that line is chrome."""
    reasons: dict[int, str] = {}
    for index, line in enumerate(lines):
        if line.blank:
            continue
        if _is_sidebar_heading(line.text):
            reasons[index] = "sidebar heading"
            continue
        reason = _chrome_reason(line.text)
        if reason:
            reasons[index] = reason
    # runs of short bullets are menus
    run: list[int] = []
    for index, line in enumerate([*lines, _Line(0, 0, "")]):
        if index < len(lines) and _is_menu_item(line.text) and index not in reasons:
            run.append(index)
            continue
        if line.blank and run and index < len(lines):
            continue
        if len(run) >= _MENU_RUN:
            reasons.update(dict.fromkeys(run, "navigation"))
        run = []
    return reasons


def _line_languages(lines: list[_Line], reasons: dict[int, str]) -> dict[int, str]:
    """Language of each content line; script-neutral Chinese takes its neighbours' script."""
    languages = {
        index: detect_language(line.text)
        for index, line in enumerate(lines)
        if not line.blank and index not in reasons
    }
    chinese = [(i, lang) for i, lang in languages.items() if lang.startswith("zh-")]
    at_line = [i for i, _ in chinese]
    for index, language in languages.items():
        if language != "zh":
            continue
        # a binary search: scanning the list for each line was quadratic in the lines
        at = bisect.bisect_right(at_line, index)  # the first Chinese line below this one
        after = chinese[at][1] if at < len(chinese) else None
        before = chinese[at - 1][1] if at > 0 else None
        languages[index] = after or before or "zh-Hans"
    return languages


def _content_spans(lines: list[_Line], reasons: dict[int, str]) -> tuple[Span, ...]:
    """Runs of consecutive content paragraphs that share a language. The stories under a
    sidebar heading are content too (readers ask about them), marked ``section="sidebar"``."""
    languages = _line_languages(lines, reasons)
    sidebar = _sidebar_start(lines)
    spans: list[Span] = []
    broken = True  # boilerplate between two paragraphs starts a new span
    for index, line in enumerate(lines):
        if index in reasons:
            broken = True
            continue
        if line.blank:
            continue
        language = languages[index]
        if spans and not broken and len(line.text) < _SHORT_LINE:
            language = spans[-1].label  # a short line ("Editor: 龚茜") is no passage of its own
        section = "sidebar" if index > sidebar else "main"
        if spans and not broken and spans[-1].label == language:
            spans[-1] = Span(spans[-1].start, line.end, language, section)
        else:
            spans.append(Span(line.start, line.end, language, section))
        broken = False
    return tuple(spans)


def _merge_reasons(lines: list[_Line], reasons: dict[int, str]) -> tuple[Span, ...]:
    spans: list[Span] = []
    for index in sorted(reasons):
        line = lines[index]
        spans.append(Span(line.start, line.end, reasons[index]))
    return tuple(spans)


def parse_document(
    doc_id: str, text: str, *, path: str = "", metadata: Metadata | None = None
) -> Document:
    """Describe one document: metadata, content spans and boilerplate spans.

    Args:
        metadata: what the document's sidecar states; each field it states wins over
            what the text states.
    """
    lines = _lines(text)
    reasons = _boilerplate_lines(lines)
    title_index, title = _title(lines, reasons, path.endswith(".md"))
    if title_index is not None:
        # Short lines above the headline are the site's header: logo text, taglines.
        for index in range(title_index):
            if not lines[index].blank and not _looks_like_body(lines[index].text):
                reasons.setdefault(index, "header")
    stated = _metadata(lines, title_index, set(reasons))
    given = metadata or Metadata()
    published_at = given.published if given.published and len(given.published) > 10 else None
    return Document(
        doc_id=doc_id,
        path=path,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        title=given.title or title,
        source=given.publisher or stated.publisher,
        published=given.published[:10] if given.published else stated.published,
        content=_content_spans(lines, reasons),
        boilerplate=_merge_reasons(lines, reasons),
        author=given.author or stated.author,
        url=given.url,
        language=given.language,
        published_at=published_at,
    )


def read_document(path: Path) -> Document:
    """Read one file as UTF-8 without translating newlines, with its sidecar
    (``NAME.meta.json``) if it has one, and describe it."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); "
            "convert it to UTF-8 or remove it from the corpus folder."
        ) from error
    return parse_document(path.stem, text, path=path.name, metadata=read_sidecar(path))


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The corpus files, sorted by name; fails clearly if there are none."""
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"corpus folder {corpus_dir} does not exist; set CITEQA_CORPUS_DIR to a folder "
            "of .txt and .md files."
        )
    files = sorted(p for p in corpus_dir.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise CorpusError(f"corpus folder {corpus_dir} has no .txt or .md files to index.")
    stems = [p.stem for p in files]
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        raise CorpusError(
            f"two files share the document id(s) {', '.join(duplicates)} (the file name "
            "without its extension); rename one of each pair."
        )
    orphans = sorted(
        p.name
        for p in corpus_dir.glob(f"*{SIDECAR_SUFFIX}")
        if p.name.removesuffix(SIDECAR_SUFFIX) not in stems
    )
    if orphans:
        raise CorpusError(
            f"{corpus_dir / orphans[0]} describes no document: there is no "
            f"{orphans[0].removesuffix(SIDECAR_SUFFIX)}.txt or .md beside it; rename it to "
            "match its document or remove it."
        )
    return files


def read_corpus(corpus_dir: Path) -> Iterator[Document]:
    """Every document of the corpus folder, in file-name order."""
    for path in corpus_files(corpus_dir):
        yield read_document(path)
