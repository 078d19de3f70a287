"""The API's request and response bodies: pydantic models at the edge, built from records.

The ``from_*`` constructors are the one place a record becomes JSON, so the HTTP API and
``citeqa ask --json`` print the same thing. Kinds whose set is closed are ``Literal``s, so
the OpenAPI schema lists their values (and a response outside them fails loudly, in the
tests, rather than surprising a client).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from service.answer.followup import MAX_TURN_CHARS, MAX_TURNS, Turn, TurnCitation
from service.engine import MAX_QUESTION_CHARS, MAX_TOP_K, Engine, clean_question
from service.errors import InputError
from service.feedback import FeedbackCitation, FeedbackEntry, FeedbackKind
from service.index import BuildResult
from service.ingest.metadata import Metadata, check_field
from service.records import (
    Answer,
    AnswerType,
    AskResult,
    Citation,
    ClaimCheck,
    Document,
    Evidence,
    FactKind,
    Filters,
    Mismatch,
    Passage,
    Stance,
    Verdict,
)
from service.server.links import view_url

__all__ = [
    "AnswerOut",
    "AnswerType",
    "AskRequest",
    "AskResponse",
    "CitationOut",
    "CiteRequest",
    "CiteResponse",
    "DocumentIn",
    "DocumentOut",
    "DocumentSummary",
    "ErrorBody",
    "ErrorDetail",
    "FeedbackCitationIn",
    "FeedbackCreated",
    "FeedbackRequest",
    "FiltersIn",
    "MetadataIn",
    "MismatchKind",
    "PassageOut",
    "Published",
    "Readiness",
    "SearchParams",
    "SliceOut",
    "Stance",
    "Verdict",
    "VerifyRequest",
    "VerifyResponse",
]

# The core's kinds (service.records), named as the API documents them.
MismatchKind = FactKind

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: str) -> str:
    """Accept only a real calendar date written ``YYYY-MM-DD``; return it unchanged."""
    if _ISO_DATE.fullmatch(value):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    shown = value if len(value) <= 40 else value[:40] + "…"
    raise ValueError(f"{shown!r} is not a date; write it as YYYY-MM-DD, for example 2023-12-13")


IsoDate = Annotated[str, AfterValidator(_iso_date)]


def _check_date_order(published_from: str | None, published_to: str | None) -> None:
    if published_from and published_to and published_from > published_to:
        raise ValueError(
            f"published_from ({published_from}) is after published_to ({published_to}); "
            "give a range whose start is not after its end"
        )


# ----------------------------------------------------------------------------- requests


class FiltersIn(BaseModel):
    """Which passages may answer. Every field is optional; an empty list restricts nothing."""

    model_config = ConfigDict(extra="forbid")

    doc_ids: list[str] | None = Field(
        None, description="Only these documents (ids from GET /documents)."
    )
    languages: list[str] | None = Field(
        None, description="Only passages in these languages: en, zh-Hans, zh-Hant, ja, ko."
    )
    published_from: IsoDate | None = Field(
        None, description="Only documents published on or after this date (YYYY-MM-DD)."
    )
    published_to: IsoDate | None = Field(
        None, description="Only documents published on or before this date (YYYY-MM-DD)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> FiltersIn:
        _check_date_order(self.published_from, self.published_to)
        return self

    def to_filters(self) -> Filters:
        return Filters(
            doc_ids=tuple(self.doc_ids) if self.doc_ids else None,
            languages=tuple(self.languages) if self.languages else None,
            published_from=self.published_from,
            published_to=self.published_to,
        )


class TurnCitationIn(BaseModel):
    """Where a previous answer was quoted from (its ``citation``'s offsets)."""

    model_config = ConfigDict(extra="ignore")  # a whole citation object may be sent back

    doc_id: str = Field(max_length=200)
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)


class TurnIn(BaseModel):
    """One previous turn of the conversation."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        min_length=1, max_length=MAX_TURN_CHARS, description="The question asked then."
    )
    answer: str | None = Field(
        None, max_length=MAX_TURN_CHARS, description="Its answer's text (null: abstained)."
    )
    citation: TurnCitationIn | None = Field(None, description="Its answer's citation.")

    def to_turn(self) -> Turn:
        cited = self.citation
        return Turn(
            question=self.question,
            answer=self.answer,
            citation=TurnCitation(cited.doc_id, cited.char_start, cited.char_end)
            if cited
            else None,
        )


class AskRequest(BaseModel):
    """A question, how many passages to show, optional filters, and the conversation so far."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "Who organized the NEAR International Forum 2023?", "top_k": 5},
                {
                    "question": "中日韩地震减灾三边会议由哪些机构举行？",
                    "top_k": 3,
                    "filters": {"languages": ["zh-Hant"], "published_from": "2020-01-01"},
                },
                {
                    "question": "When was it founded?",
                    "history": [
                        {
                            "question": "What is the Trilateral Cooperation Secretariat?",
                            "answer": None,
                            "citation": None,
                        }
                    ],
                },
            ]
        },
    )

    question: str = Field(
        description=(
            f"The question, in any language: 1 to {MAX_QUESTION_CHARS} characters once "
            "control characters are removed."
        )
    )
    top_k: int = Field(
        5, ge=1, le=MAX_TOP_K, strict=True, description="How many passages to return."
    )
    filters: FiltersIn | None = None
    history: list[TurnIn] = Field(
        default_factory=list,
        max_length=MAX_TURNS,
        description=(
            f"The previous turns, newest last, at most {MAX_TURNS}: a follow-up whose "
            "subject is a pronoun or missing ('When was it founded?', '它的秘书长是谁？') is "
            "read with the previous question's subject; the response's assumed_subject says "
            "which."
        ),
    )

    def turns(self) -> list[Turn]:
        return [turn.to_turn() for turn in self.history]


class SearchParams(BaseModel):
    """Query parameters of GET /search."""

    q: str = Field(description=f"The query, 1 to {MAX_QUESTION_CHARS} characters.")
    k: int = Field(5, ge=1, le=MAX_TOP_K, description="How many passages to return.")
    doc_id: list[str] | None = Field(None, description="Only these documents (repeatable).")
    language: list[str] | None = Field(None, description="Only these languages (repeatable).")
    published_from: IsoDate | None = Field(None, description="On or after (YYYY-MM-DD).")
    published_to: IsoDate | None = Field(None, description="On or before (YYYY-MM-DD).")

    @model_validator(mode="after")
    def _ordered(self) -> SearchParams:
        _check_date_order(self.published_from, self.published_to)
        return self

    def to_filters(self) -> Filters | None:
        filters = FiltersIn(
            doc_ids=self.doc_id,
            languages=self.language,
            published_from=self.published_from,
            published_to=self.published_to,
        ).to_filters()
        return None if filters == Filters() else filters


# ----------------------------------------------------------------------------- responses


class CitationOut(BaseModel):
    """Where the answer comes from: ``document.text[char_start:char_end] == quote``."""

    doc_id: str
    title: str | None = Field(description="The headline; null where no source states it.")
    publisher: str | None = Field(description="Who published it; null where not stated.")
    source: str | None = Field(description="The publisher (the older name of `publisher`).")
    published: str | None = Field(description="Its date, YYYY-MM-DD; null where not stated.")
    url_original: str | None = Field(
        None, description="The original article, where the document's metadata states it."
    )
    char_start: int
    char_end: int
    quote: str
    url: str = Field(description="The document page with the quote highlighted.")

    @classmethod
    def from_citation(cls, citation: Citation, base_url: str) -> CitationOut:
        """The citation with its link (``base_url``: ``CITEQA_PUBLIC_URL``, may be empty)."""
        link = view_url(base_url, citation.doc_id, citation.char_start, citation.char_end)
        return cls(**asdict(citation), publisher=citation.publisher, url=link)


class AnswerOut(BaseModel):
    """A verbatim span of one sentence of one document."""

    text: str
    sentence: str
    sentence_start: int = Field(description="Offset of the sentence in the document.")
    sentence_end: int
    language: str
    answer_type: AnswerType = Field(
        description="What the question asks for; 'sentence' when no shorter span answers it."
    )
    confidence: float
    citation: CitationOut

    @classmethod
    def from_answer(cls, answer: Answer, base_url: str) -> AnswerOut:
        fields = asdict(answer)
        fields["citation"] = CitationOut.from_citation(answer.citation, base_url)
        return cls(**fields)


class PassageOut(BaseModel):
    """A ranked passage: ``document.text[char_start:char_end] == text``."""

    rank: int
    score: float
    chunk_id: str
    doc_id: str
    title: str | None
    source: str | None
    published: str | None
    language: str
    section: str = Field(
        description="'main' for the article, 'sidebar' for another story listed under it."
    )
    char_start: int
    char_end: int
    text: str
    highlights: list[tuple[int, int]] = Field(
        description="Ranges [start, end) of `text` that match the question or hold the answer."
    )
    retriever_ranks: dict[str, int] = Field(
        description="Each retriever's own 1-based rank of this passage, where it found it."
    )
    url: str = Field(description="The document page with the passage highlighted.")

    @classmethod
    def from_passage(
        cls, passage: Passage, documents: dict[str, Document], base_url: str
    ) -> PassageOut:
        hit = passage.hit
        chunk = hit.chunk
        document = documents[chunk.doc_id]
        return cls(
            rank=hit.rank,
            score=round(hit.score, 6),
            chunk_id=chunk.chunk_id,
            doc_id=chunk.doc_id,
            title=document.title,
            source=document.source,
            published=document.published,
            language=chunk.language,
            section=chunk.section,
            char_start=chunk.char_start,
            char_end=chunk.char_end,
            text=chunk.text,
            highlights=[(start, end) for start, end in passage.highlights],
            retriever_ranks=dict(hit.ranks),
            url=view_url(base_url, chunk.doc_id, chunk.char_start, chunk.char_end),
        )


class AskResponse(BaseModel):
    """The answer with its citation, or the reason there is none, and the passages read."""

    question: str = Field(description="The question as answered (control characters removed).")
    answer: AnswerOut | None
    abstained: bool
    abstain_reason: str | None
    passages: list[PassageOut]
    timings_ms: dict[str, float]
    resolved_question: str | None = Field(
        None,
        description="The follow-up as it was answered, its pronoun replaced or its subject "
        "added; null when the question needed no resolution.",
    )
    assumed_subject: str | None = Field(
        None,
        description="The previous question's subject the follow-up was read with; null "
        "when the question stands on its own.",
    )

    @classmethod
    def from_result(
        cls, result: AskResult, documents: dict[str, Document], base_url: str
    ) -> AskResponse:
        answer = result.answer
        return cls(
            question=result.question,
            answer=AnswerOut.from_answer(answer, base_url) if answer else None,
            abstained=result.abstained,
            abstain_reason=result.abstain_reason,
            passages=[PassageOut.from_passage(p, documents, base_url) for p in result.passages],
            timings_ms=dict(result.timings_ms),
            resolved_question=result.resolved_question,
            assumed_subject=result.assumed_subject,
        )


class VerifyRequest(BaseModel):
    """A claim to check against the sources."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"claim": "The NEAR forum in Gyeongju drew delegates from seven countries."},
                {"claim": "中日韓核安全監管高官會機制於2008年啟動。", "top_k": 3},
            ]
        },
    )

    claim: str = Field(
        description=(
            f"The claim, in any language: 1 to {MAX_QUESTION_CHARS} characters once control "
            "characters are removed."
        )
    )
    top_k: int = Field(
        5, ge=1, le=MAX_TOP_K, strict=True, description="How many evidence sentences to return."
    )


class MismatchOut(BaseModel):
    kind: MismatchKind = Field(description="What kind of value it is.")
    claim_text: str = Field(description="The value as the claim states it.")
    evidence_text: str = Field(description="The value as the evidence states it (in its quote).")
    evidence_start: int = Field(description="Where evidence_text starts in the quote.")
    evidence_end: int = Field(description="Where it ends: quote[evidence_start:evidence_end].")


class EvidenceOut(BaseModel):
    quote: str = Field(description="The evidence sentence, verbatim.")
    citation: CitationOut
    stance: Stance = Field(description="What this sentence says of the claim.")
    mismatches: list[MismatchOut]
    matches: list[MismatchOut] = Field(
        description="For a deciding sentence, the values it states as the claim does "
        "(numbers, dates, ranks), with their offsets in the quote."
    )

    @classmethod
    def from_evidence(cls, evidence: Evidence, base_url: str) -> EvidenceOut:
        return cls(
            quote=evidence.quote,
            citation=CitationOut.from_citation(evidence.citation, base_url),
            stance=evidence.stance,
            mismatches=[_value(m) for m in evidence.mismatches],
            matches=[_value(m) for m in evidence.agreements],
        )


def _value(m: Mismatch) -> MismatchOut:
    return MismatchOut(
        kind=m.kind,
        claim_text=m.claim_text,
        evidence_text=m.evidence_text,
        evidence_start=m.evidence_start,
        evidence_end=m.evidence_end,
    )


class VerifyResponse(BaseModel):
    """The verdict on a claim and the evidence quoted for it."""

    claim: str = Field(description="The claim as checked (control characters removed).")
    verdict: Verdict = Field(
        description="'not_found' when no sentence of the sources is about the same event."
    )
    confidence: float
    evidence: list[EvidenceOut]
    timings_ms: dict[str, float]
    claim_review: dict[str, Any] = Field(
        description="The check as schema.org ClaimReview JSON-LD, for a fact-check article to "
        'embed in a <script type="application/ld+json"> tag.'
    )

    @classmethod
    def from_check(cls, check: ClaimCheck, base_url: str) -> VerifyResponse:
        evidence = [EvidenceOut.from_evidence(e, base_url) for e in check.evidence]
        return cls(
            claim=check.claim,
            verdict=check.verdict,
            confidence=check.confidence,
            evidence=evidence,
            timings_ms=dict(check.timings_ms),
            claim_review=claim_review(check, evidence),
        )


# How a verdict reads in a ClaimReview: its rating (1 to 5) and the words shown.
_RATINGS: dict[str, tuple[int | None, str]] = {
    "supported": (5, "Supported by the sources"),
    "contradicted": (1, "Contradicted by the sources"),
    "not_found": (None, "Not found in the sources"),
}


def claim_review(check: ClaimCheck, evidence: list[EvidenceOut]) -> dict[str, Any]:
    """schema.org ClaimReview of a check: the claim, the rating, and the deciding source
    (the first evidence sentence, unless nothing decided)."""
    value, words = _RATINGS[check.verdict]
    rating: dict[str, Any] = {"@type": "Rating", "alternateName": words}
    if value is not None:
        rating |= {"ratingValue": value, "bestRating": 5, "worstRating": 1}
    review: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "ClaimReview",
        "claimReviewed": check.claim,
        "reviewRating": rating,
        "author": {"@type": "Organization", "name": "citeqa"},
        "datePublished": dt.datetime.now(dt.UTC).date().isoformat(),
    }
    if check.verdict != "not_found" and evidence:
        source = evidence[0].citation
        work: dict[str, Any] = {"@type": "CreativeWork", "url": source.url_original or source.url}
        if source.title:
            work["headline"] = source.title
        if source.publisher:
            work["publisher"] = {"@type": "Organization", "name": source.publisher}
        if source.published:
            work["datePublished"] = source.published
        review["itemReviewed"] = {"@type": "Claim", "appearance": [work]}
    return review


class DocumentSummary(BaseModel):
    """A document as it is cited; a field no source states is null (never guessed)."""

    doc_id: str
    title: str | None = Field(description="The headline.")
    publisher: str | None
    source: str | None = Field(description="The publisher (the older name of `publisher`).")
    author: str | None
    published: str | None = Field(description="Its date, YYYY-MM-DD.")
    published_at: str | None = Field(
        description="Its date and time (ISO 8601), where a time is stated too."
    )
    url: str | None = Field(description="The original article.")
    language: str | None = Field(description="The language its metadata declares.")
    languages: list[str] = Field(description="The languages of its indexed passages.")
    length: int = Field(description="Characters in the original text.")

    @classmethod
    def from_document(cls, document: Document) -> DocumentSummary:
        return cls(
            doc_id=document.doc_id,
            title=document.title,
            publisher=document.source,
            source=document.source,
            author=document.author,
            published=document.published,
            published_at=document.published_at,
            url=document.url,
            language=document.language,
            languages=list(document.languages),
            length=len(document.text),
        )


class SliceOut(BaseModel):
    start: int
    end: int
    text: str = Field(description="`text[start:end]` of the document.")

    @classmethod
    def within(cls, text: str, start: int | None, end: int | None) -> SliceOut:
        """``text[start:end]`` (no start: from 0; no end: to the last character), or an
        ``InputError`` naming the offset that does not fit."""
        length = len(text)
        first = 0 if start is None else start
        last = length if end is None else end
        allowed = f"the document has {length} characters; use 0 <= start <= end <= {length}"
        if first > length:
            raise InputError("start", f"start is {first} but {allowed}.")
        if last > length:
            raise InputError("end", f"end is {last} but {allowed}.")
        if first > last:
            raise InputError("end", f"end ({last}) is before start ({first}); {allowed}.")
        return cls(start=first, end=last, text=text[first:last])


class DocumentOut(DocumentSummary):
    """A document's metadata and its original text, character for character."""

    sha256: str
    view_url: str = Field(description="A readable HTML page of the document.")
    text: str
    slice: SliceOut | None = Field(description="The requested ?start=&end= range, if any.")

    @classmethod
    def from_document(
        cls, document: Document, start: int | None = None, end: int | None = None
    ) -> DocumentOut:
        """The document; with ``start`` or ``end``, that slice of it too."""
        wanted = start is not None or end is not None
        return cls(
            **DocumentSummary.from_document(document).model_dump(),
            sha256=document.sha256,
            view_url=view_url("", document.doc_id),
            text=document.text,
            slice=SliceOut.within(document.text, start, end) if wanted else None,
        )


def _metadata_field(name: str) -> AfterValidator:
    """The core's rule for metadata field ``name`` (``service.ingest.metadata``)."""
    return AfterValidator(lambda value: check_field(name, value))


class MetadataIn(BaseModel):
    """What to cite the document as; stored beside its text as ``NAME.meta.json``."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str | None, _metadata_field("title")] = Field(None, description="Headline.")
    publisher: Annotated[str | None, _metadata_field("publisher")] = None
    author: Annotated[str | None, _metadata_field("author")] = None
    published: Annotated[str | None, _metadata_field("published")] = Field(
        None, description="ISO date or date and time: 2024-05-25 or 2024-05-25T15:23."
    )
    url: Annotated[str | None, _metadata_field("url")] = Field(
        None, description="The original article (http or https)."
    )
    language: Annotated[str | None, _metadata_field("language")] = Field(
        None, description="Language tag: en, zh-Hans, zh-Hant, ko, ja."
    )

    def to_metadata(self) -> Metadata:
        return Metadata(**self.model_dump())


class DocumentIn(BaseModel):
    """A document to add; ``text`` is stored as sent, under the title and source lines
    (``metadata`` leaves it as sent and is stored beside it)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="The document's text (plain or markdown).")
    title: str | None = Field(None, max_length=500)
    source: str | None = Field(None, max_length=200, description="The publisher.")
    published: IsoDate | None = Field(None, description="Publication date, YYYY-MM-DD.")
    doc_id: str | None = Field(
        None, description="Its id (a new one is made from the title if absent); same id: replaced."
    )
    markdown: bool = Field(False, description="Store as .md rather than .txt.")
    metadata: MetadataIn | None = Field(
        None, description="Title, publisher, author, date, original URL, language to cite."
    )


class Published(BaseModel):
    """The index generation an admin change published."""

    generation: str
    documents: int
    chunks: int
    doc_id: str | None = None

    @classmethod
    def from_build(cls, result: BuildResult, doc_id: str | None = None) -> Published:
        return cls(
            generation=result.path.name,
            documents=result.documents,
            chunks=result.chunks,
            doc_id=doc_id,
        )


class Readiness(BaseModel):
    """What a ready service serves."""

    status: Literal["ready", "degraded"] = Field(
        description="'degraded' while an older generation is served because the current "
        "one is damaged (``reason`` says what is wrong); the service still answers."
    )
    generation: str = Field(description="The index generation being served.")
    documents: int
    chunks: int
    reason: str | None = Field(description="Why the service is degraded (else null).")

    @classmethod
    def from_engine(cls, engine: Engine) -> Readiness:
        index = engine.index
        return cls(
            status="degraded" if index.warning else "ready",
            generation=index.path.name,
            documents=len(index.documents),
            chunks=len(index.chunks),
            reason=index.warning,
        )


class ErrorDetail(BaseModel):
    field: str | None = Field(description="The part of the request to fix, if one is to blame.")
    message: str = Field(description="What is wrong and what is allowed.")


class ErrorBody(BaseModel):
    """Every error response: the first problem, and all of them."""

    error: ErrorDetail
    errors: list[ErrorDetail]


# ----------------------------------------------------------------------------- feedback

MAX_FEEDBACK_CHARS = MAX_QUESTION_CHARS  # question, answer and note each: 2000
MAX_DOC_ID_CHARS = 200
MAX_LANGUAGE_CHARS = 35  # a BCP 47 tag


def _report_text(value: str) -> str:
    """At most ``MAX_FEEDBACK_CHARS``, cleaned as a question is (``clean_question``): control
    characters, such as an escape sequence for the terminal that lists the log, become
    spaces; outer white space goes."""
    if len(value) > MAX_FEEDBACK_CHARS:
        raise ValueError(
            f"has {len(value)} characters; the limit is {MAX_FEEDBACK_CHARS}: shorten it"
        )
    try:
        return clean_question(value, "text")
    except InputError:
        raise ValueError("is empty (once control characters are removed); write it out") from None


ReportText = Annotated[
    str,
    AfterValidator(_report_text),
    Field(json_schema_extra={"minLength": 1, "maxLength": MAX_FEEDBACK_CHARS}),
]


class FeedbackCitationIn(BaseModel):
    """The citation shown with the answer: the document and the cited characters."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str = Field(min_length=1, max_length=MAX_DOC_ID_CHARS)
    char_start: int = Field(ge=0, strict=True)
    char_end: int = Field(ge=0, strict=True)

    @model_validator(mode="after")
    def _ordered(self) -> FeedbackCitationIn:
        if self.char_end < self.char_start:
            raise ValueError(
                f"char_end ({self.char_end}) is before char_start ({self.char_start}); send "
                "the citation's char_start and char_end as the answer gave them"
            )
        return self


class FeedbackRequest(BaseModel):
    """A reader's report that an answer (or a claim check) is wrong."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "When was the Trilateral Cooperation Secretariat founded?",
                    "answer": "September 2011",
                    "citation": {
                        "doc_id": "000_8e6ebfa50e614d2c",
                        "char_start": 1027,
                        "char_end": 1041,
                    },
                    "note": "The article says it was agreed in 2010 and opened in 2011.",
                    "language": "en",
                    "kind": "answer",
                }
            ]
        },
    )

    question: ReportText = Field(
        description=f"The question asked (the claim, for kind 'claim'), at most "
        f"{MAX_FEEDBACK_CHARS} characters."
    )
    answer: ReportText | None = Field(
        None, description="The answer shown (the verdict, for a claim); null if it abstained."
    )
    citation: FeedbackCitationIn | None = Field(
        None, description="The answer's citation, as the response gave it; null if none."
    )
    note: ReportText = Field(
        description=f"What the reader says is wrong, at most {MAX_FEEDBACK_CHARS} characters."
    )
    language: str | None = Field(
        None, max_length=MAX_LANGUAGE_CHARS, description="The question's language (e.g. en)."
    )
    kind: FeedbackKind = Field(
        "answer", description="'answer' (a POST /ask answer) or 'claim' (a POST /verify check)."
    )

    def to_entry(self) -> FeedbackEntry:
        citation = self.citation
        return FeedbackEntry(
            kind=self.kind,
            question=self.question,
            answer=self.answer,
            citation=FeedbackCitation(**citation.model_dump()) if citation else None,
            note=self.note,
            language=self.language,
        )


class FeedbackCreated(BaseModel):
    """The stored report's id (``citeqa feedback`` lists it)."""

    id: str = Field(description="The report's id, a UUID.")


# ----------------------------------------------------------------------------- /cite


class CiteRequest(BaseModel):
    """A quote to trace to its source."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"quote": "the Secretariat was officially established in Seoul"},
                {"quote": "中日韓核安全監管高官會目前已舉行五次", "top_k": 1},
            ]
        },
    )

    quote: str = Field(
        description=f"The quote, in any language: 1 to {MAX_QUESTION_CHARS} characters once "
        "control characters are removed, with at least one word or character."
    )
    top_k: int = Field(3, ge=1, le=MAX_TOP_K, strict=True, description="How many matches.")


class DifferenceOut(BaseModel):
    operation: Literal["insert", "delete", "replace"] = Field(
        description="What the quote does to the source: inserts, deletes or replaces words."
    )
    quote_text: str
    quote_start: int = Field(description="Offsets of quote_text in the quote as sent.")
    quote_end: int
    source_text: str
    source_start: int = Field(description="Offsets of source_text in the document.")
    source_end: int
    type: Literal["number", "date", "negation", "qualifier", "name"] | None = Field(
        description="What kind of value differs, where it can be told."
    )


class CiteMatchOut(BaseModel):
    doc_id: str
    title: str | None
    publisher: str | None
    published: str | None
    char_start: int = Field(description="The source span: document.text[char_start:char_end].")
    char_end: int
    source_text: str
    match: Literal["exact", "normalised", "near", "translated", "none"] = Field(
        description="exact: verbatim; normalised: equal once case, width, white space, quote "
        "marks, dashes and the Chinese scripts are folded; near: small edits (listed under "
        "differences); translated: the same sentence in the other language."
    )
    similarity: float = Field(description="In [0, 1].")
    differences: list[DifferenceOut]
    url: str = Field(description="The document page with the source span highlighted.")
    url_original: str | None


class CiteResponse(BaseModel):
    """Where a quote comes from; `matches` is empty when nothing corresponds (`match`
    none)."""

    quote: str
    match: Literal["exact", "normalised", "near", "translated", "none"] = Field(
        description="The best match's kind, or none."
    )
    matches: list[CiteMatchOut]
    timings_ms: dict[str, float]

    @classmethod
    def from_result(
        cls, result: Any, documents: dict[str, Document], base_url: str
    ) -> CiteResponse:
        matches = []
        for m in result.matches:
            document = documents[m.doc_id]
            matches.append(
                CiteMatchOut(
                    doc_id=m.doc_id, title=document.title, publisher=document.source,
                    published=document.published, char_start=m.char_start, char_end=m.char_end,
                    source_text=m.source_text, match=m.match, similarity=m.similarity,
                    differences=[DifferenceOut(**asdict(d)) for d in m.differences],
                    url=view_url(base_url, m.doc_id, m.char_start, m.char_end),
                    url_original=document.url,
                )
            )  # fmt: skip
        best = matches[0].match if matches else "none"
        return cls(quote=result.quote, match=best, matches=matches, timings_ms=result.timings_ms)
