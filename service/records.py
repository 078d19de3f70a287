"""The records passed between pipeline stages: plain frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Chunk", "Document", "Hit", "Span"]


@dataclass(frozen=True)
class Span:
    """A range ``[start, end)`` of a document's text, in Python string indices.

    ``label`` is the passage language (``en``, ``zh-Hans``, ``zh-Hant``, ``ko``, ``ja``) for
    content spans, or why the text was left out (``navigation``, ``copyright``, ...) for
    boilerplate spans.
    """

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Document:
    """One source document. ``text`` is the original file, character for character."""

    doc_id: str
    path: str
    text: str
    sha256: str
    title: str | None
    source: str | None
    published: str | None  # ISO YYYY-MM-DD, only where the text states a full date
    content: tuple[Span, ...]  # what is indexed, one span per run of same-language paragraphs
    boilerplate: tuple[Span, ...]  # what is kept out of the index, with the reason

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages of the indexed passages, in order of first appearance."""
        return tuple(dict.fromkeys(span.label for span in self.content))


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: ``document.text[char_start:char_end] == text``."""

    chunk_id: str
    doc_id: str
    char_start: int
    char_end: int
    text: str
    language: str


@dataclass(frozen=True)
class Hit:
    """One ranked passage. ``ranks`` holds each retriever's 1-based rank where it found it."""

    chunk: Chunk
    score: float
    rank: int
    ranks: Mapping[str, int] = field(default_factory=dict)
