"""Chunk: split each document's content spans into passages with exact offsets.

Chunks follow paragraphs. A paragraph (a line of text) is a chunk of its own; one shorter
than a quarter of the chunk size (a heading, a photo credit) joins the paragraphs after it,
and one longer than the chunk size is split by langchain's ``RecursiveCharacterTextSplitter``
with separators for both English and Chinese sentence punctuation. Boundaries therefore
depend only on the nearby text: an edit to one paragraph leaves the other chunks, and their
ids, as they were.

The splitter It keeps separators at the end of pieces and
only strips outer whitespace, so every chunk is a substring of its span; we locate it with
a forward scan and check the invariant ``document.text[char_start:char_end] == chunk.text``.

Length is counted with Chinese characters weighing three (a Han character carries about as
much as a short English word plus its space), so a chunk holds a comparable amount of
meaning in either language.

Chunk ids hash the document id, the chunk text and which occurrence of that text in the
document it is. They do not depend on offsets, so a rebuild of unchanged text keeps every id
and old citation links keep resolving even when text elsewhere in the document moved.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from service.language import CJK_RE
from service.records import Chunk, Document

__all__ = [
    "SEGMENTER_VERSION",
    "SEPARATORS",
    "ChunkingParams",
    "chunk_document",
    "chunk_id",
    "indexed_text",
    "sentence_spans",
    "weighted_length",
]

# From coarse to fine: paragraphs, lines, sentence ends, clause breaks, words, characters.
SEPARATORS: tuple[str, ...] = (
    "\n\n",
    "\n",
    "。",
    "！",
    "？",
    "；",
    ". ",
    "! ",
    "? ",
    "; ",
    "，",
    "、",
    ", ",
    ",",
    " ",
    "",
)
CJK_WEIGHT = 3


def weighted_length(text: str) -> int:
    """Length with each Chinese character counted ``CJK_WEIGHT`` times."""
    return len(text) + (CJK_WEIGHT - 1) * len(CJK_RE.findall(text))


@dataclass(frozen=True)
class ChunkingParams:
    """What determines the chunks; recorded in the index manifest."""

    chunk_size: int
    chunk_overlap: int

    @property
    def min_paragraph(self) -> int:
        """Paragraphs shorter than this join the next one."""
        return self.chunk_size // 4

    def as_dict(self) -> dict[str, object]:
        return {
            "splitter": "paragraphs, then RecursiveCharacterTextSplitter",
            "min_paragraph": self.min_paragraph,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "length": f"characters, CJK x{CJK_WEIGHT}",
            "separators": list(SEPARATORS),
        }

    def splitter(self) -> RecursiveCharacterTextSplitter:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size "
                f"({self.chunk_size}); lower CITEQA_CHUNK_OVERLAP."
            )
        return RecursiveCharacterTextSplitter(
            separators=list(SEPARATORS),
            keep_separator="end",
            is_separator_regex=False,
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            length_function=weighted_length,
            strip_whitespace=True,
        )


def chunk_id(doc_id: str, text: str, occurrence: int) -> str:
    """Stable id of the ``occurrence``-th chunk with this text in this document."""
    digest = hashlib.sha256(f"{doc_id}\x00{occurrence}\x00{text}".encode()).hexdigest()
    return digest[:16]


def _locate(span_text: str, pieces: Iterable[str], overlap: int) -> Iterator[tuple[int, str]]:
    """Offsets of the splitter's pieces, which come in order and overlap by at most
    ``overlap`` characters (the weighted overlap bounds the character overlap)."""
    previous_start, previous_end = -1, 0
    for piece in pieces:
        start = span_text.find(piece, max(previous_start + 1, previous_end - overlap))
        if start < 0:
            raise AssertionError(f"splitter returned text not found in its input: {piece[:40]!r}")
        yield start, piece
        previous_start, previous_end = start, start + len(piece)


def _paragraph_units(text: str, min_length: int) -> list[tuple[int, int]]:
    """Offsets of paragraph groups: each non-blank line, short ones joined to what follows."""
    pending_end = 0
    units: list[tuple[int, int]] = []
    start: int | None = None
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped:
            line_start = offset + line.index(stripped[0])
            line_end = line_start + len(stripped)
            start = line_start if start is None else start
            if weighted_length(stripped) >= min_length:  # the line's own length, so that
                # a boundary depends on that line alone and edits do not ripple onward
                units.append((start, line_end))
                start = None
            else:
                pending_end = line_end
        offset += len(line)
    if start is not None:
        if units and start > units[-1][1]:
            units[-1] = (units[-1][0], pending_end)  # a short tail joins the paragraph above
        else:
            units.append((start, pending_end))
    return units


def chunk_document(document: Document, params: ChunkingParams) -> list[Chunk]:
    """Split every content span of ``document`` into chunks with exact offsets."""
    splitter = params.splitter()
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for span in document.content:
        span_text = document.text[span.start : span.end]
        for unit_start, unit_end in _paragraph_units(span_text, params.min_paragraph):
            unit = span_text[unit_start:unit_end]
            located = list(_locate(unit, splitter.split_text(unit), params.chunk_overlap))
            if len(located) > 1 and weighted_length(located[-1][1]) < params.min_paragraph:
                # A short tail ("目前三國正在積極落實上述共識。") says little on its own and
                # matches everything vaguely: it joins the piece before it.
                tail_start, tail = located.pop()
                head_start, _ = located.pop()
                located.append((head_start, unit[head_start : tail_start + len(tail)]))
            for local_start, piece in located:
                start = span.start + unit_start + local_start
                occurrence = seen.get(piece, 0)
                seen[piece] = occurrence + 1
                chunks.append(
                    Chunk(
                        chunk_id=chunk_id(document.doc_id, piece, occurrence),
                        doc_id=document.doc_id,
                        char_start=start,
                        char_end=start + len(piece),
                        text=piece,
                        language=span.label,
                        section=span.section,
                    )
                )
    return chunks


def indexed_text(chunk: Chunk, document: Document) -> str:
    """What the retrievers index for a chunk: its text under the document's title.

    A passage often leaves its subject to the headline ("Jointly organized by ..." under
    "NEAR International Forum 2023 ..."); indexing the title with it lets a question that
    names the subject find the passage that answers it. Citations still use ``chunk.text``.
    A sidebar story is not about the document's headline, so it is indexed alone.
    """
    title = document.title
    if not title or title in chunk.text or chunk.section != "main":
        return chunk.text
    return f"{title}\n{chunk.text}"


# A sentence ends at Chinese 。！？, or at English .!? before white space and a capital,
# digit, quote or Chinese character (closing quotes and brackets stay with the sentence).
# Sentence ends. A Chinese semicolon between clauses ends one too: news prose strings
# "首先…；其次…；第三…" into one 200-character sentence, and each part is what a question
# is about (the part is quoted whole, so its facts are not cut apart).
SEGMENTER_VERSION = "cjk-semicolon/2"
_SENTENCE_END = re.compile(
    r"[。！？!?][”’」』\"')）]*"
    r"|[；;](?=[\u4e00-\u9fff])"
    r"|\.[”’\"')]*(?=\s+[\"“‘(（A-Z0-9\u4e00-\u9fff])"
    r"|\.[”’\"')]*$"
)
_ABBREVIATIONS = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|Prof|St|No|Vol|Gen|Gov|Sen|Rep|Jr|Sr|vs|etc|e\.g|i\.e|U\.S|[A-Z])\.$"
)


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentences of ``text`` as ``(start, end)`` offsets (plus ``offset``), stripped of
    surrounding white space. Lines always end a sentence."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\r\n]+", text):
        start = line.start()
        for end_mark in _SENTENCE_END.finditer(line.group()):
            end = line.start() + end_mark.end()
            if end_mark.group().startswith(".") and _ABBREVIATIONS.search(text[start:end]):
                continue
            spans.append((start, end))
            start = end
        spans.append((start, line.end()))
    result = []
    for start, end in spans:
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = start + piece.index(stripped[0])
            result.append((offset + lead, offset + lead + len(stripped)))
    return result
