"""The records passed between pipeline stages: plain frozen dataclasses, and their kinds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "Answer",
    "AnswerType",
    "AskResult",
    "Chunk",
    "Citation",
    "ClaimCheck",
    "Document",
    "Evidence",
    "FactKind",
    "Filters",
    "FusionName",
    "Hit",
    "Mismatch",
    "Passage",
    "Query",
    "QuestionType",
    "Span",
    "Stance",
    "Verdict",
]

# What a question asks for (``service.answer.analysis``).
QuestionType = Literal[
    "person", "organisation", "place", "date", "number", "frequency", "duration", "title",
    "list", "reason", "manner", "definition", "other",
]  # fmt: skip
# An answer's type: the question's, or "sentence" when the answer is a whole sentence.
AnswerType = Literal[
    "person", "organisation", "place", "date", "number", "frequency", "duration", "title",
    "list", "reason", "manner", "definition", "other", "sentence",
]  # fmt: skip
Stance = Literal["supports", "contradicts", "related"]  # of one evidence sentence
# a checkable value of a claim
FactKind = Literal["number", "date", "ordinal", "person", "place", "organization"]
Verdict = Literal["supported", "contradicted", "not_found"]  # on a whole claim
FusionName = Literal[
    "fitted", "competent_zscore", "competent_rrf", "rrf", "minmax"
]  # retrieve.fusion


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
    section: str = "main"  # "sidebar" for other stories listed under the article


@dataclass(frozen=True)
class Document:
    """One source document. ``text`` is the original file, character for character.

    Its metadata is what the text states (``service.ingest.documents``) or, winning over
    it, what its sidecar ``NAME.meta.json`` states (``service.ingest.metadata``); a field
    neither states is None, never guessed.
    """

    doc_id: str
    path: str
    text: str
    sha256: str
    title: str | None  # the headline
    source: str | None  # the publisher
    published: str | None  # ISO YYYY-MM-DD, only where a full date is stated
    content: tuple[Span, ...]  # what is indexed, one span per run of same-language paragraphs
    boilerplate: tuple[Span, ...]  # what is kept out of the index, with the reason
    author: str | None = None
    url: str | None = None  # the original article, as its sidecar states it
    language: str | None = None  # the language its sidecar declares
    published_at: str | None = None  # ISO date and time, where a time is stated too

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
    section: str = "main"  # "sidebar": another story listed under the article ("Top News")


@dataclass(frozen=True)
class Query:
    """A question (or a claim, or a search) as every stage reads it, worked out once.

    ``service.encode.query.analyse`` fills in the text fields and
    ``QueryEncoder.encode`` the vectors; no stage detects a language or encodes again.
    """

    text: str  # as asked, control characters removed (``engine.clean_question``)
    folded: str  # NFKC, case-folded, Traditional folded to Simplified: for matching
    language: str  # its overall language (``detect_language``)
    languages: frozenset[str]  # every language it is written in (mixed text: several)
    scripts: frozenset[str]  # the writing systems of those languages
    terms: frozenset[str]  # content terms (``service.text.tokenize.content_terms``)
    vectors: Mapping[str, np.ndarray] = field(default_factory=dict)  # encoder name -> unit

    def vector(self, encoder: str) -> np.ndarray:
        """The question's vector by ``encoder``; a clear error if it was not encoded."""
        try:
            return self.vectors[encoder]
        except KeyError:
            raise KeyError(
                f"the query was not encoded with {encoder!r} (encoded: "
                f"{', '.join(self.vectors) or 'none'}); ask QueryEncoder.encode for it"
            ) from None


@dataclass(frozen=True)
class Hit:
    """One ranked passage. ``ranks`` holds each retriever's 1-based rank where it found it."""

    chunk: Chunk
    score: float
    rank: int
    ranks: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Citation:
    """Where a quote comes from: ``document.text[char_start:char_end] == quote``."""

    doc_id: str
    title: str | None
    published: str | None
    char_start: int
    char_end: int
    quote: str
    source: str | None = None  # the publisher, where the document names one
    url_original: str | None = None  # the original article, where its metadata states it

    @property
    def publisher(self) -> str | None:
        """The publisher (the API's name for ``source``)."""
        return self.source


@dataclass(frozen=True)
class Answer:
    """An extractive answer: a verbatim span inside a verbatim sentence of one document."""

    text: str
    sentence: str
    sentence_start: int  # offsets of the sentence in the document
    sentence_end: int
    citation: Citation  # offsets and quote of ``text``
    confidence: float
    language: str
    answer_type: AnswerType


@dataclass(frozen=True)
class Passage:
    """A ranked hit as shown to a reader, with highlight ranges inside ``hit.chunk.text``."""

    hit: Hit
    highlights: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Filters:
    """Restrictions on which passages may answer."""

    doc_ids: tuple[str, ...] | None = None
    languages: tuple[str, ...] | None = None
    published_from: str | None = None  # ISO dates, inclusive
    published_to: str | None = None


@dataclass(frozen=True)
class AskResult:
    question: str
    answer: Answer | None
    abstain_reason: str | None
    passages: tuple[Passage, ...]
    timings_ms: Mapping[str, float]
    resolved_question: str | None = None  # a follow-up as asked of the engine, if rewritten
    assumed_subject: str | None = None  # the previous question's subject it was read with

    @property
    def abstained(self) -> bool:
        return self.answer is None


@dataclass(frozen=True)
class Mismatch:
    """A fact the claim states one way and the evidence another."""

    kind: FactKind
    claim_text: str
    evidence_text: str
    evidence_start: int  # offsets of evidence_text in the quote, for highlighting
    evidence_end: int


@dataclass(frozen=True)
class Evidence:
    """One sentence weighed against a claim."""

    quote: str  # the sentence, verbatim
    citation: Citation
    stance: Stance
    mismatches: tuple[Mismatch, ...]
    matched: int  # how many of the claim's facts it states the same way
    closeness: float  # P(the sentence is about the claim's event), fitted on the train split
    # the values it states as the claim does (a Mismatch's fields: the same value twice)
    agreements: tuple[Mismatch, ...] = ()


@dataclass(frozen=True)
class ClaimCheck:
    """The verdict on a claim and the evidence shown for it."""

    claim: str
    verdict: Verdict
    confidence: float
    evidence: tuple[Evidence, ...]
    timings_ms: Mapping[str, float]
