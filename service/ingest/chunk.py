"""Chunk: split each document's content spans into passages with exact offsets.

Chunks follow paragraphs. A paragraph (a line of text) is a chunk of its own; one shorter
than a quarter of the chunk size (a heading, a photo credit) joins the paragraphs after it,
and one longer than the chunk size is split by langchain's ``RecursiveCharacterTextSplitter``
with separators for both English and Chinese sentence punctuation. Boundaries therefore
depend only on the nearby text: an edit to one paragraph leaves the other chunks, and their
ids, as they were.

The splitter keeps separators at the end of pieces and
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
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter

from service.records import Chunk, Document
from service.text.language import CJK_RE

__all__ = [
    "SEGMENTER_VERSION",
    "SEPARATORS",
    "ChunkTable",
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
# Longer than the longest abbreviation ("Prof."): the part of a sentence it is looked for in.
# Searching the whole sentence so far for each period took time quadratic in a line of
# initials ("A. B. C. ..."); ``\b`` still sees the character before the window.
_ABBREVIATION_WINDOW = 8


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentences of ``text`` as ``(start, end)`` offsets (plus ``offset``), stripped of
    surrounding white space. Lines always end a sentence."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\r\n]+", text):
        start = line.start()
        for end_mark in _SENTENCE_END.finditer(line.group()):
            end = line.start() + end_mark.end()
            if end_mark.group().startswith(".") and _ABBREVIATIONS.search(
                text, max(start, end - _ABBREVIATION_WINDOW), end
            ):
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


class ChunkTable(Sequence[Chunk]):
    """The chunks of a loaded index in row order, held as columns.

    At 1M chunks, one ``Chunk`` object a row with its own copy of the text took 1.9 GB in
    every worker. Here a row is its document's number, its offsets, its language and
    section codes and its id (about 40 bytes); ``table[row]`` makes the ``Chunk`` when a
    retriever asks for it, its text sliced from the document, which is the invariant
    ``document.text[char_start:char_end] == chunk.text`` that ``from_rows`` checks. The
    last ``MADE_KEPT`` chunks made are kept (every retriever of a question asks for many of
    the same rows; on a small corpus that is all of them).
    """

    MADE_KEPT = 8192

    def __init__(
        self,
        documents: Sequence[Document],
        columns: Mapping[str, np.ndarray],
        labels: tuple[str, ...],
        sections: tuple[str, ...],
    ) -> None:
        self._documents = documents
        self._doc = columns["doc"]
        self._start = columns["start"]
        self._end = columns["end"]
        self._label = columns["label"]
        self._section = columns["section"]
        self._ids = columns["ids"]
        self._labels = labels
        self._sections = sections
        self._by_id = np.argsort(self._ids, kind="stable")  # row_of: binary search
        self._made: dict[int, Chunk] = {}

    @classmethod
    def from_rows(
        cls, documents: Mapping[str, Document], rows: Iterable[Mapping[str, Any]]
    ) -> ChunkTable:
        """A table of ``chunks.jsonl`` rows (``Chunk`` fields). Raises ``ValueError`` for a
        row whose document is not in ``documents`` or whose text is not the document's text
        at its offsets."""
        number = {doc_id: i for i, doc_id in enumerate(documents)}
        texts = [document.text for document in documents.values()]
        doc, start, end = array("i"), array("q"), array("q")
        label, section = array("B"), array("B")
        labels: dict[str, int] = {}
        sections: dict[str, int] = {}
        ids: list[bytes] = []
        for row in rows:
            chunk_id, doc_id = row["chunk_id"], row["doc_id"]
            at = number.get(doc_id)
            if at is None:
                raise ValueError(f"chunk {chunk_id} belongs to document {doc_id!r}, not held")
            first, last = int(row["char_start"]), int(row["char_end"])
            if texts[at][first:last] != row["text"]:
                raise ValueError(
                    f"chunk {chunk_id}'s text is not its document's text at {first}:{last}"
                )
            doc.append(at)
            start.append(first)
            end.append(last)
            label.append(labels.setdefault(row["language"], len(labels)))
            section.append(sections.setdefault(row.get("section", "main"), len(sections)))
            ids.append(chunk_id.encode())
        columns: dict[str, np.ndarray] = {
            "doc": np.frombuffer(doc, dtype=np.int32),
            "start": np.frombuffer(start, dtype=np.int64),
            "end": np.frombuffer(end, dtype=np.int64),
            "label": np.frombuffer(label, dtype=np.uint8),
            "section": np.frombuffer(section, dtype=np.uint8),
            "ids": np.array(ids, dtype=bytes) if ids else np.zeros(0, dtype="S16"),
        }
        return cls(list(documents.values()), columns, tuple(labels), tuple(sections))

    def __len__(self) -> int:
        return len(self._doc)

    @property
    def documents_of_rows(self) -> np.ndarray:
        """Each row's document number (int32, the order of the documents given)."""
        return self._doc

    @property
    def languages_of_rows(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """Each row's language code (uint8), and the languages the codes stand for."""
        return self._label, self._labels

    @overload
    def __getitem__(self, row: int) -> Chunk: ...

    @overload
    def __getitem__(self, row: slice) -> list[Chunk]: ...

    def __getitem__(self, row: int | slice) -> Chunk | list[Chunk]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"chunk row {row} of {len(self)}")
        made = self._made.get(row)
        if made is None:
            if len(self._made) >= self.MADE_KEPT:
                self._made.clear()  # simpler than LRU order, and as good for a question
            made = self._made[row] = self._make(row)
        return made

    def _make(self, row: int) -> Chunk:
        document = self._documents[self._doc[row]]
        start, end = int(self._start[row]), int(self._end[row])
        return Chunk(
            chunk_id=self._ids[row].decode(),
            doc_id=document.doc_id,
            char_start=start,
            char_end=end,
            text=document.text[start:end],
            language=self._labels[self._label[row]],
            section=self._sections[self._section[row]],
        )

    def __iter__(self) -> Iterator[Chunk]:  # a pass over every row keeps none of them
        return (self._make(row) for row in range(len(self)))

    def row_of(self, chunk_id: str) -> int:
        """The row of a chunk id; ``KeyError`` if the table has no such chunk."""
        key = chunk_id.encode()
        at = int(np.searchsorted(self._ids, key, sorter=self._by_id))
        if at < len(self) and self._ids[self._by_id[at]] == key:
            return int(self._by_id[at])
        raise KeyError(chunk_id)

    def distinct_ids(self) -> int:
        return len(np.unique(self._ids))
