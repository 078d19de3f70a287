"""Answer: pick the sentence that answers, then the shortest span of it that does.

Extractive only: every answer is a verbatim slice of a document, with its offsets.

1. The question's *type* comes from its wording (``service.answer.question``): when,
   number (how many / how much), who, where, or other (English and Chinese cue words).
2. Candidate sentences are those of the top fused passages (sentence boundaries and vectors
   were computed at build time). Each is scored by its similarity to the question (every
   encoder that reads both: USE-multilingual always, MiniLM too when both are English),
   the share of the question's terms it contains, the rank of its passage, and whether it
   holds a span of the wanted type.
3. In the best sentence the span is the typed candidate (``service.answer.spans``: a date,
   a number with its noun, a name, a place) nearest the question's terms and not itself
   part of the question; other questions, or no confident span, get the whole sentence.
4. The answer abstains when the best sentence's similarity or term coverage is below the
   thresholds for the question's script; the reason says so.

Every weight and threshold comes from the tuned constants (``service.tuned``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from service.answer.bylines import RELATED, asked_field
from service.answer.question import is_plural, predicate_terms, predicate_words, question_type
from service.answer.spans import Counted, best_span, counted, counts_what_was_asked, is_list
from service.index import CorpusIndex
from service.records import Answer, Chunk, Citation, Hit, Query, QuestionType
from service.text.language import is_han, shares_script
from service.text.tokenize import content_terms
from service.tuned import ReaderTuning

__all__ = ["Extractor", "ScoredSentence"]

_NOTHING_COUNTED: Counted = (frozenset(), ())


def _excerpt(text: str, limit: int = 90) -> str:
    """``text`` cut to about ``limit`` characters at a word boundary, marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate sentence for a question, with what its score is made of."""

    row: int  # sentence row in the index
    chunk: Chunk
    start: int
    end: int
    similarity: float
    coverage: float
    support: float | None  # share of the question's predicate terms the sentence states
    span: tuple[int, int] | None  # document offsets of the best typed span, if any
    score: float


@dataclass(frozen=True)
class _Asked:
    """What scoring needs of a question, worked out once for all its sentences."""

    query: Query
    kind: QuestionType
    plural: bool
    counted: Counted
    predicate: frozenset[str]
    byline_keys: frozenset[str]  # what a byline field must be called: "Author" for "who wrote"
    idf: dict[str, float]
    total_idf: float
    total_predicate: float


class Extractor:
    """Extractive answers from an index's precomputed sentences."""

    def __init__(
        self,
        index: CorpusIndex,
        tuning: ReaderTuning,
        readers: Mapping[str, frozenset[str] | None],
        *,
        min_confidence: float = 0.0,
    ) -> None:
        """Args:
        index: the loaded generation (sentences, their vectors, BM25 statistics).
        tuning: the reader's constants (``service.tuned``).
        readers: the encoders whose sentence vectors score similarity, each with the
            languages it reads (None: all); ``Settings.encoder_languages()``.
        min_confidence: abstain below this confidence (``CITEQA_MIN_CONFIDENCE``).
        """
        self.index = index
        self.tuning = tuning
        self.readers = dict(readers)
        self.min_confidence = min_confidence
        rows = index.sentences[:, 0]
        self._first = np.searchsorted(rows, np.arange(len(index.chunks) + 1))

    @property
    def passages_read(self) -> int:
        """How many of the top passages' sentences compete to answer."""
        return self.tuning.passages_read

    def encoders_for(self, query: Query) -> list[str]:
        """The encoders whose vectors of ``query`` the reader compares with sentences."""
        return [
            name
            for name, languages in self.readers.items()
            if languages is None or query.language in languages
        ]

    # -- sentences -----------------------------------------------------------------------

    def sentence_text(self, scored: ScoredSentence) -> str:
        return self.index.documents[scored.chunk.doc_id].text[scored.start : scored.end]

    def _sentence_rows(self, chunk: Chunk) -> range:
        row = self.index.chunks.row_of(chunk.chunk_id)
        return range(int(self._first[row]), int(self._first[row + 1]))

    def context_text(self, scored: ScoredSentence) -> str:
        """What a sentence leaves to its surroundings: the previous sentence of its passage
        and, for the article itself, the document's title."""
        document = self.index.documents[scored.chunk.doc_id]
        parts = [document.title or ""] if scored.chunk.section == "main" else []
        if scored.row > 0:  # the sentence before, in this passage or the one before it
            chunk_row, start, end = (int(v) for v in self.index.sentences[scored.row - 1])
            if self.index.chunks[chunk_row].doc_id == document.doc_id and end <= scored.start:
                parts.append(document.text[start:end])
        return "\n".join(parts)

    # -- scoring -------------------------------------------------------------------------

    def rank_sentences(self, query: Query, hits: Iterable[Hit]) -> list[ScoredSentence]:
        """The sentences of ``hits``, best first, scored against ``query`` (a claim)."""
        return self._score_sentences(query, "other", hits)

    def _asked(self, query: Query, kind: QuestionType) -> _Asked:
        predicate = predicate_terms(query)
        idf = {term: self.index.lexical.idf(term) for term in query.terms | predicate}
        return _Asked(
            query=query,
            kind=kind,
            plural=is_plural(query),
            counted=counted(query.text) if kind == "number" else _NOTHING_COUNTED,
            predicate=predicate,
            byline_keys=frozenset().union(*(RELATED.get(t, frozenset()) for t in predicate)),
            idf=idf,
            total_idf=sum(idf.values()),
            total_predicate=sum(idf[t] for t in predicate),
        )

    def _similarities(self, query: Query, chunk: Chunk, rows: range) -> list[float]:
        """Each sentence's mean cosine with the question over the encoders that read both."""
        total: np.ndarray | None = None
        readers = 0
        for name in self.encoders_for(query):
            languages = self.readers[name]
            if languages is not None and chunk.language not in languages:
                continue
            vectors = self.index.sentence_vectors[name].span(rows.start, rows.stop)
            similarity = (vectors @ query.vector(name)).astype(np.float64)
            total = similarity if total is None else total + similarity
            readers += 1
        if total is None:
            raise ValueError(f"no encoder of the reader reads {chunk.language!r} passages")
        return (total / readers).tolist()

    def _score_sentences(
        self, query: Query, kind: QuestionType, hits: Iterable[Hit]
    ) -> list[ScoredSentence]:
        asked = self._asked(query, kind)
        scored = []
        for hit in hits:
            document = self.index.documents[hit.chunk.doc_id]
            main = hit.chunk.section == "main"
            title = content_terms(document.title or "") if main else frozenset()
            context = title
            rows = self._sentence_rows(hit.chunk)
            similarities = self._similarities(query, hit.chunk, rows)
            same_script = shares_script(hit.chunk.language, query.language)
            for row, similarity in zip(rows, similarities, strict=True):
                _, start, end = (int(v) for v in self.index.sentences[row])
                text = document.text[start:end]
                own = content_terms(text)
                scored.append(
                    self._score(
                        asked,
                        hit,
                        row,
                        (start, end),
                        text,
                        own | context,
                        own,
                        similarity,
                        same_script,
                    )
                )
                context = own | title  # for the next sentence
        return sorted(scored, key=lambda s: -s.score)

    def _score(
        self,
        asked: _Asked,
        hit: Hit,
        row: int,
        bounds: tuple[int, int],
        text: str,
        seen: frozenset[str],
        own: frozenset[str],
        similarity: float,
        same_script: bool,
    ) -> ScoredSentence:
        """One sentence's score: similarity, term coverage, passage prior, typed span.

        ``seen`` is what the sentence and its context (the heading or the sentence
        before) state; ``own`` what the sentence itself states."""
        tuning = self.tuning
        if same_script:
            # terms the sentence leaves to its heading or the sentence before count half
            weights = {t: 1.0 if t in own else 0.5 for t in asked.query.terms & seen}
            weighted = sum(asked.idf[t] * w for t, w in weights.items())
            coverage = weighted / asked.total_idf if asked.total_idf else 0.0
            stated = sum(asked.idf[t] for t in asked.predicate if RELATED.get(t, {t}) & seen)
            support = stated / asked.total_predicate if asked.total_predicate else None
        else:  # across scripts, shared terms cannot be counted: the vectors stand in,
            coverage = tuning.cross_script * similarity  # discounted as weaker evidence
            support = None
        span, typed, support = self._typed_span(asked, text, support)
        w_sim, w_cov, w_prior, w_typed = tuning.weights
        prior = 1.0 / math.sqrt(hit.rank)
        score = w_sim * similarity + w_cov * coverage + w_prior * prior + w_typed * typed
        start, end = bounds
        located = (start + span[0], start + span[1]) if span else None
        return ScoredSentence(
            row, hit.chunk, start, end, similarity, coverage, support, located, score
        )

    @staticmethod
    def _typed_span(
        asked: _Asked, text: str, support: float | None
    ) -> tuple[tuple[int, int] | None, float, float | None]:
        """The sentence's best span of the asked type, how well it fits (0, 0.5, 1, or 2 for
        a byline field that names what was asked), and the support, which such a field
        settles."""
        kind = asked.kind
        span = best_span(asked.query, kind, text, plural=asked.plural, asked=asked.counted)
        typed = 0.0
        if span:  # a plural question ("which agencies") is best met by a list,
            piece = text[span[0] : span[1]]  # a count by a count of what was asked
            typed = 0.5 if asked.plural and not is_list(piece) else 1.0
            if any(asked.counted) and not counts_what_was_asked(piece, asked.counted):
                typed = 0.5
        field = asked_field(text, asked.byline_keys) if asked.byline_keys else None
        if field:  # "Author: GONG Qian" for "Who wrote ...?": the field says it
            if span is None or kind not in ("when", "number"):
                span = field
            typed, support = 2.0, 1.0
        return span, typed, support

    # -- answering -----------------------------------------------------------------------

    def answer(self, query: Query, hits: list[Hit]) -> tuple[Answer | None, str | None]:
        """The answer and ``None``, or ``None`` and why the corpus does not answer."""
        if not hits:
            return None, "No passage of the corpus matches the question."
        kind, best = self.best_sentence(query, hits)
        if best is None:
            return None, "The matching passages have no sentences to quote."
        reason = self.abstain_reason(query, kind, best)
        if reason:
            return None, reason
        confidence = self.confidence(best)
        if confidence < self.min_confidence:
            return None, (
                f"The best answer found has confidence {confidence:.2f}, under the "
                f"configured minimum of {self.min_confidence:.2f}."
            )
        return self.quote(best, kind, confidence), None

    def unabstained(self, query: Query, hits: list[Hit]) -> Answer | None:
        """The answer the reader would quote if it never abstained (for the evaluation's
        reader-only metrics); None only when there is no sentence to quote."""
        kind, best = self.best_sentence(query, hits)
        return None if best is None else self.quote(best, kind, self.confidence(best))

    def with_tuning(self, tuning: ReaderTuning) -> Extractor:
        """This reader under other constants, sharing the index (for the fitting command)."""
        other = copy.copy(self)
        other.tuning = tuning
        return other

    def best_sentence(
        self, query: Query, hits: list[Hit]
    ) -> tuple[QuestionType, ScoredSentence | None]:
        """The question's type and the best-scored sentence of the passages read."""
        kind = question_type(query.text)
        scored = self._score_sentences(query, kind, hits[: self.passages_read])
        return kind, (scored[0] if scored else None)

    def confidence(self, best: ScoredSentence) -> float:
        """The calibrated confidence of quoting ``best``."""
        tuning = self.tuning
        return 1 / (
            1 + math.exp(-(tuning.confidence_slope * best.score + tuning.confidence_intercept))
        )

    def abstain_reason(self, query: Query, kind: QuestionType, best: ScoredSentence) -> str | None:
        """Why the best sentence does not answer, or None if it may."""
        tuning = self.tuning
        script = "han" if is_han(query.language) else "latin"
        min_similarity, min_coverage = tuning.abstain_below[script]
        if best.similarity < min_similarity or best.coverage < min_coverage:
            return (
                "The sources do not seem to answer this: the closest sentence is too far from "
                f"the question (similarity {best.similarity:.2f}, "
                f"{best.coverage:.0%} of its key terms)."
            )
        weak = best.similarity < tuning.weak_similarity and best.support is not None
        if best.support is not None and (
            best.support < tuning.min_support or (weak and best.support < tuning.weak_support)
        ):
            missing = ", ".join(sorted(predicate_words(query))[:4])
            return (
                "The sources mention what the question is about but not what it asks: the "
                f"closest passage says nothing of {missing}."
            )
        if best.span is None and kind in ("when", "number"):
            wanted = "date or time" if kind == "when" else "number"
            return (
                f"The closest passage is about the question but gives no {wanted}: "
                f"«{_excerpt(self.sentence_text(best))}»."
            )
        return None

    def quote(self, best: ScoredSentence, kind: QuestionType, confidence: float) -> Answer:
        """The answer record: the span (or the whole sentence) with its citation."""
        start, end = best.span or (best.start, best.end)
        document = self.index.documents[best.chunk.doc_id]
        return Answer(
            text=document.text[start:end],
            sentence=document.text[best.start : best.end],
            sentence_start=best.start,
            sentence_end=best.end,
            citation=Citation(
                doc_id=document.doc_id,
                title=document.title,
                source=document.source,
                published=document.published,
                char_start=start,
                char_end=end,
                quote=document.text[start:end],
            ),
            confidence=round(confidence, 4),
            language=best.chunk.language,
            answer_type=kind if best.span else "sentence",
        )
