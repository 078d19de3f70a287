"""Answer: the best typed span of the top passages' sentences, or a reasoned "not found".

Extractive only: every answer is a verbatim slice of a document, with its offsets.

1. **Question analysis** (``service.answer.analysis``): the answer type (person, place,
   date, number, title, list, reason ...), the focus noun, the question's entities and
   numbers, the predicate, and the terms bridged to the other language.
2. **Candidates** (``service.answer.candidates``): the typed spans that the build
   annotated in the sentences of the top fused passages (entities, numbers with their
   unit, dates, titles, lists, noun phrases), plus each whole sentence.
3. **Scoring** (``service.answer.features``): each candidate gets plain measurements
   (every encoder's similarity of its sentence to the question, how much of the question,
   its predicate and its names the sentence states, type agreement, distance to the
   question's words, agreement across passages ...), and a logistic model fitted on the
   train split turns them into the probability that it is the answer.
4. **Abstention**: a second fitted classifier decides from the best candidate (its score,
   its margin, whether the question's names and numbers occur in the evidence) whether
   the corpus answers at all; the reason names what is missing.
5. **Confidence**: a third fitted model, the calibrated probability that the answer is
   right.

The three models and the threshold live in the tuned file (``service.tuned``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from service.answer import reasons
from service.answer.analysis import Analysis, analyse_question, numbers_in
from service.answer.candidates import EXPECTED, OPEN_TYPES, SENTENCE, Candidate, candidates_of
from service.answer.features import (
    CANDIDATE_FEATURES,
    Asked,
    Mention,
    Reach,
    SentenceFacts,
    abstain_features,
    anchors_in,
    candidate_features,
    evidence_features,
    sentence_features,
)
from service.answer.model import LinearModel
from service.index import CorpusIndex
from service.records import Answer, Chunk, Citation, Hit, Query
from service.text.bridge import bridged_script, cedict
from service.text.language import detect_language, fold, shares_script
from service.text.tokenize import content_terms
from service.tuned import ReaderTuning

__all__ = ["Best", "Extractor", "Reading", "ScoredSentence"]


@dataclass(frozen=True)
class ScoredSentence:
    """A sentence ranked for a claim (``Extractor.rank_sentences``)."""

    row: int  # sentence row in the index
    chunk: Chunk
    start: int
    end: int
    similarity: float  # mean cosine with the claim over MiniLM and USE where they read
    coverage: float
    prior: float  # the passage's prior (its rank among the retrieved)
    support: float | None  # share of the claim's predicate terms the sentence states
    score: float  # the claim check's closeness


@dataclass(frozen=True)
class Reading:
    """Everything the reader measured for one question, before any fitted model."""

    query: Query
    analysis: Analysis
    chunks: tuple[Chunk, ...]  # of each sentence
    sentences: tuple[SentenceFacts, ...]
    candidates: tuple[Candidate, ...]
    rows: np.ndarray  # (candidates, CANDIDATE_FEATURES)
    asked: Asked  # what every sentence was compared with (the abstention reads it again)


@dataclass(frozen=True)
class Best:
    """The reader's choice for a question and what its models said."""

    candidate: Candidate
    features: Mapping[str, float]
    logit: float  # the candidate scorer's
    answerable: float  # P(the corpus answers), the abstention classifier's
    confidence: float  # P(this answer is right), calibrated


class Extractor:
    """Extractive answers from an index's precomputed sentences and annotations."""

    def __init__(
        self,
        index: CorpusIndex,
        tuning: ReaderTuning,
        readers: Mapping[str, frozenset[str] | None],
        *,
        min_confidence: float = 0.0,
    ) -> None:
        """Args:
        index: the loaded generation (sentences, their vectors and annotations, BM25).
        tuning: the reader's fitted models (``service.tuned``).
        readers: the encoders whose sentence vectors score similarity, each with the
            languages it reads (None: all); ``Settings.reader_languages()``.
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

    def with_tuning(self, tuning: ReaderTuning) -> Extractor:
        """This reader under other models, sharing the index (for the fitting command)."""
        other = copy.copy(self)
        other.tuning = tuning
        return other

    # -- sentences -----------------------------------------------------------------------

    def sentence_text(self, scored: ScoredSentence) -> str:
        return self.index.documents[scored.chunk.doc_id].text[scored.start : scored.end]

    def _sentence_rows(self, chunk: Chunk) -> range:
        row = self.index.chunks.row_of(chunk.chunk_id)
        return range(int(self._first[row]), int(self._first[row + 1]))

    def _context(self, chunk: Chunk, row: int, start: int) -> str:
        """What a sentence leaves to its surroundings: the previous sentence of its
        document and, for the article itself, the document's title."""
        document = self.index.documents[chunk.doc_id]
        parts = [document.title or ""] if chunk.section == "main" else []
        if row > 0:  # the sentence before, in this passage or the one before it
            chunk_row, before, end = (int(v) for v in self.index.sentences[row - 1])
            if self.index.chunks[chunk_row].doc_id == document.doc_id and end <= start:
                parts.append(document.text[before:end])
        return "\n".join(parts)

    def context_text(self, scored: ScoredSentence) -> str:
        return self._context(scored.chunk, scored.row, scored.start)

    def _similarities(self, query: Query, chunk: Chunk, rows: range) -> dict[str, np.ndarray]:
        """Each reading encoder's cosine of the question with every sentence of ``rows``."""
        found = {}
        for name in self.encoders_for(query):
            languages = self.readers[name]
            if languages is not None and chunk.language not in languages:
                continue
            vectors = self.index.sentence_vectors[name].span(rows.start, rows.stop)
            found[name] = (vectors @ query.vector(name)).astype(np.float64)
        if not found:
            raise ValueError(f"no encoder of the reader reads {chunk.language!r} passages")
        return found

    def _asked(self, query: Query, analysis: Analysis) -> Asked:
        bridge = self._bridge(query)
        terms = query.terms | analysis.predicate | set(bridge)
        idf = {t: self.index.lexical.idf(t) for t in terms}
        return Asked(
            query,
            analysis,
            idf,
            self._mentions(analysis.entities),
            self._mentions(analysis.numbers),
            self._focus_terms(analysis.focus),
            bridge,
        )

    def _translated(self, text: str) -> frozenset[str]:
        """The index terms of ``text`` in the other language (CC-CEDICT)."""
        if detect_language(text) == "en":
            return frozenset(cedict().to_chinese(text, self.index.lexical.knows))
        return frozenset(cedict().to_english(text))

    def _focus_terms(self, focus: str | None) -> frozenset[str]:
        """The focus noun's terms and their translations ("budget": 预算 as well)."""
        if not focus:
            return frozenset()
        return content_terms(focus) | self._translated(focus)

    def _mentions(self, mentions: Iterable[str]) -> tuple[Mention, ...]:
        folded = dict.fromkeys(fold(m) for m in mentions if fold(m).strip())
        return tuple(Mention(m, self._translated(m)) for m in folded)

    def _bridge(self, query: Query) -> Mapping[str, float]:
        """The question's terms carried into the other language, weighted as the bridge
        retriever weighs them (and shared with it: the dictionary translates a question
        once)."""
        script = bridged_script(query)
        if script is None:
            return {}
        return cedict().carried(query.text, script, self.index.lexical.knows)

    def _sentences(
        self, asked: Asked, hits: Iterable[Hit]
    ) -> tuple[list[Chunk], list[SentenceFacts]]:
        chunks, facts = [], []
        hits = list(hits)
        top = hits[0].score if hits else 0.0
        for hit in hits:
            document = self.index.documents[hit.chunk.doc_id]
            rows = self._sentence_rows(hit.chunk)
            similarities = self._similarities(asked.query, hit.chunk, rows)
            same_script = shares_script(hit.chunk.language, asked.query.language)
            for i, row in enumerate(rows):
                _, start, end = (int(v) for v in self.index.sentences[row])
                features = sentence_features(
                    asked,
                    document.text[start:end],
                    self._context(hit.chunk, row, start),
                    {name: float(values[i]) for name, values in similarities.items()},
                    same_script=same_script,
                    passage_rank=hit.rank,
                    passage_score=hit.score - top,
                    passage_votes=sum(r <= 5 for r in hit.ranks.values()) / _RETRIEVERS,
                )
                chunks.append(hit.chunk)
                anchors = anchors_in(asked, document.text[start:end])
                facts.append(SentenceFacts(row, start, end, features, anchors))
        order = sorted(range(len(facts)), key=lambda i: -facts[i].features["similarity_mean"])
        for rank, i in enumerate(order):
            facts[i].features["similarity_rank"] = 1.0 / (1 + rank)  # type: ignore[index]
        return chunks, facts

    # -- reading and choosing ------------------------------------------------------------

    def read(self, query: Query, hits: list[Hit]) -> Reading:
        """Measure every candidate of the top passages for ``query`` (no model applied)."""
        analysis = analyse_question(query)
        asked = self._asked(query, analysis)
        chunks, sentences = self._sentences(asked, hits[: self.passages_read])
        candidates: list[Candidate] = []
        for position, sentence in enumerate(sentences):
            text = self.index.documents[chunks[position].doc_id].text
            bounds = (sentence.start, sentence.end)
            candidates += candidates_of(
                self.index, position, sentence.row, bounds, text, query.folded
            )
        texts = [self._text(chunks, c) for c in candidates]
        holders: dict[str, set[int]] = {}
        for candidate, text in zip(candidates, texts, strict=True):
            if not candidate.whole:
                holders.setdefault(fold(text), set()).add(candidate.sentence)
        rows = []
        for candidate, text in zip(candidates, texts, strict=True):
            document = self.index.documents[chunks[candidate.sentence].doc_id].text
            others = 0 if candidate.whole else len(holders[fold(text)]) - 1
            values = candidate_features(
                asked, sentences[candidate.sentence], candidate, document, others
            )
            rows.append([values[name] for name in CANDIDATE_FEATURES])
        matrix = np.asarray(rows, dtype=float).reshape(len(rows), len(CANDIDATE_FEATURES))
        _sentence_holds(matrix, candidates)
        _lists_of_type(matrix, candidates, EXPECTED.get(analysis.answer_type, frozenset()))
        return Reading(
            query, analysis, tuple(chunks), tuple(sentences), tuple(candidates), matrix, asked
        )

    def _text(self, chunks: list[Chunk] | tuple[Chunk, ...], candidate: Candidate) -> str:
        document = self.index.documents[chunks[candidate.sentence].doc_id]
        return document.text[candidate.start : candidate.end]

    def candidate_texts(self, reading: Reading) -> list[str]:
        """The verbatim text of each candidate of ``reading`` (for the fitting command)."""
        return [self._text(reading.chunks, c) for c in reading.candidates]

    def scores(self, reading: Reading) -> np.ndarray:
        """Each candidate's log-probability of being the answer: that of its sentence
        among the question's sentences (the sentence model), plus its own among its
        sentence's candidates (the span model)."""
        tuning = self.tuning
        sentence_of = np.asarray([c.sentence for c in reading.candidates])
        sentence_logits = tuning.sentence.logits(_columns(reading.rows, tuning.sentence))
        span_logits = tuning.span.logits(_columns(reading.rows, tuning.span))
        firsts = np.flatnonzero(np.r_[True, sentence_of[1:] != sentence_of[:-1]])
        per_sentence = sentence_logits[firsts]  # candidates of one sentence are adjacent
        sentence_lp = per_sentence - _log_sum_exp(per_sentence)
        within = np.empty_like(span_logits)
        for begin, end in zip(firsts, [*firsts[1:], len(span_logits)], strict=True):
            within[begin:end] = span_logits[begin:end] - _log_sum_exp(span_logits[begin:end])
        return np.repeat(sentence_lp, np.diff([*firsts, len(span_logits)])) + within

    def choose(self, reading: Reading) -> Best | None:
        """The best candidate under the fitted models, or None without candidates."""
        if not reading.candidates:
            return None
        tuning = self.tuning
        scores = self.scores(reading)
        best = int(np.argmax(scores))
        features = dict(zip(CANDIDATE_FEATURES, reading.rows[best].tolist(), strict=True))
        question = self._question_features(reading, scores, best, features)
        answerable = float(tuning.abstain.probabilities(tuning.abstain.row(question))[0])
        values = {"candidate_logit": float(scores[best]), "answerable": answerable}
        confidence = float(tuning.confidence.probabilities(tuning.confidence.row(values))[0])
        return Best(reading.candidates[best], features, float(scores[best]), answerable, confidence)

    def _question_features(
        self, reading: Reading, scores: np.ndarray, best: int, features: Mapping[str, float]
    ) -> dict[str, float]:
        answer_type = reading.analysis.answer_type
        wanted = EXPECTED.get(answer_type, frozenset())
        row = reading.rows[best : best + 1]
        raw = (
            float(self.tuning.sentence.logits(_columns(row, self.tuning.sentence))[0]),
            float(self.tuning.span.logits(_columns(row, self.tuning.span))[0]),
        )
        question = abstain_features(
            features,
            scores.tolist(),
            float(scores[best]),
            raw=raw,
            open_type=answer_type in OPEN_TYPES,
            typed_in_reach=any(c.label in wanted for c in reading.candidates),
        )
        return question | evidence_features(
            reading.asked,
            self._reach(reading, reading.candidates[best].sentence),
            [s.features for s in reading.sentences],
            features,
            known=self.index.lexical.knows,
        )

    def _reach(self, reading: Reading, position: int) -> Reach:
        """The terms of the passages read in another script than the question's, and
        whether the sentence at ``position`` states a number."""
        sentence, chunk = reading.sentences[position], reading.chunks[position]
        text = self.index.documents[chunk.doc_id].text[sentence.start : sentence.end]
        other = frozenset().union(
            *(
                content_terms(passage.text)
                for passage in dict.fromkeys(reading.chunks)
                if not shares_script(passage.language, reading.query.language)
            )
        )
        return Reach(other=other, states_numbers=bool(numbers_in(text)))

    def abstain_row(self, reading: Reading, best: Best) -> dict[str, float]:
        """The abstention classifier's features for ``best`` (the fitting command's)."""
        scores = self.scores(reading)
        index = reading.candidates.index(best.candidate)
        return self._question_features(reading, scores, index, best.features)

    # -- answering -----------------------------------------------------------------------

    def answer(self, query: Query, hits: list[Hit]) -> tuple[Answer | None, str | None]:
        """The answer and ``None``, or ``None`` and why the corpus does not answer."""
        if not hits:
            return None, "No passage of the corpus matches the question."
        reading = self.read(query, hits)
        best = self.choose(reading)
        if best is None:
            return None, "The matching passages have no sentences to quote."
        if best.answerable < self.tuning.abstain_threshold:
            return None, self.reason(reading, best)
        if best.confidence < self.min_confidence:
            return None, (
                f"The best answer found has confidence {best.confidence:.2f}, under the "
                f"configured minimum of {self.min_confidence:.2f}."
            )
        return self.quote(reading, best), None

    def unabstained(self, query: Query, hits: list[Hit]) -> Answer | None:
        """The answer the reader would quote if it never abstained (for the evaluation's
        reader-only metrics); None only when there is no sentence to quote."""
        reading = self.read(query, hits)
        best = self.choose(reading)
        return None if best is None else self.quote(reading, best)

    def reason(self, reading: Reading, best: Best) -> str:
        """Why the corpus does not answer: what of the question the evidence lacks."""
        features, analysis = best.features, reading.analysis
        sentence = reading.sentences[best.candidate.sentence]
        document = self.index.documents[reading.chunks[best.candidate.sentence].doc_id]
        raw = document.text[sentence.start : sentence.end] + "\n"
        raw += self._context(reading.chunks[best.candidate.sentence], sentence.row, sentence.start)
        evidence, terms = fold(raw), content_terms(raw)
        missing = [
            written
            for written in dict.fromkeys((*analysis.numbers, *analysis.entities))
            if fold(written).strip()
            and not Mention(fold(written), self._translated(written)).found(evidence, terms)
        ]
        language = reading.query.language
        if missing:
            return reasons.missing_names(missing, language)
        unstated = _unstated_words(reading.query.text, analysis.predicate, evidence)
        if unstated and features["same_script"]:
            return reasons.unstated(unstated[:4], language)
        if analysis.answer_type not in OPEN_TYPES and not features["type_match"]:
            return reasons.no_type(analysis.answer_type, language)
        return reasons.no_answer(language)

    def quote(self, reading: Reading, best: Best) -> Answer:
        """The answer record: the span (or the whole sentence) with its citation."""
        candidate = best.candidate
        sentence = reading.sentences[candidate.sentence]
        chunk = reading.chunks[candidate.sentence]
        document = self.index.documents[chunk.doc_id]
        start, end = candidate.start, candidate.end
        return Answer(
            text=document.text[start:end],
            sentence=document.text[sentence.start : sentence.end],
            sentence_start=sentence.start,
            sentence_end=sentence.end,
            citation=Citation(
                doc_id=document.doc_id,
                title=document.title,
                source=document.source,
                published=document.published,
                char_start=start,
                char_end=end,
                quote=document.text[start:end],
                url_original=document.url,
            ),
            confidence=round(best.confidence, 4),
            language=chunk.language,
            answer_type="sentence" if candidate.label == SENTENCE else reading.analysis.answer_type,
        )

    # -- claims --------------------------------------------------------------------------

    def rank_sentences(
        self, query: Query, hits: Iterable[Hit], closeness: tuple[float, float, float, float]
    ) -> list[ScoredSentence]:
        """The sentences of ``hits``, closest to the claim ``query`` first. ``closeness``
        is the claim check's (similarity, coverage, passage prior, cross-script) weights."""
        w_similarity, w_coverage, w_prior, cross_script = closeness
        asked = self._asked(query, analyse_question(query))
        hits = list(hits)
        chunks, sentences = self._sentences(asked, hits)
        ranked = []
        for chunk, sentence in zip(chunks, sentences, strict=True):
            f = sentence.features
            read = [f[f"similarity_{n}"] for n in ("dense", "multilingual") if f[f"similarity_{n}"]]
            similarity = sum(read) / len(read) if read else f["similarity_mean"]
            same = bool(f["same_script"])
            coverage = f["context_coverage"] if same else cross_script * similarity
            support = f["support"] if same and f["has_predicate"] else None
            score = w_similarity * similarity + w_coverage * coverage
            score += w_prior * f["passage_prior"]
            ranked.append(
                ScoredSentence(
                    sentence.row,
                    chunk,
                    sentence.start,
                    sentence.end,
                    similarity,
                    coverage,
                    f["passage_prior"],
                    support,
                    score,
                )
            )
        return sorted(ranked, key=lambda s: -s.score)


def _sentence_holds(rows: np.ndarray, candidates: list[Candidate]) -> None:
    """Fill each sentence's ``holds_type`` / ``holds_related`` in ``rows``: whether any of
    its candidates is of the asked type (or a related one)."""
    if not len(rows):
        return
    sentence_of = np.asarray([c.sentence for c in candidates])
    for feature, source in (("holds_type", "type_match"), ("holds_related", "type_related")):
        column, values = CANDIDATE_FEATURES.index(feature), CANDIDATE_FEATURES.index(source)
        for sentence in np.unique(sentence_of):
            inside = sentence_of == sentence
            rows[inside, column] = rows[inside, values].max()


def _lists_of_type(rows: np.ndarray, candidates: list[Candidate], wanted: frozenset[str]) -> None:
    """Mark in ``rows`` each list that holds two or more candidates of the asked type
    ("中國地震局、日本氣象廳和韓國氣象廳" for "which agencies")."""
    column = CANDIDATE_FEATURES.index("list_of_type")
    for n, candidate in enumerate(candidates):
        if candidate.label != "LIST":
            continue
        inside = sum(
            other.label in wanted
            and other.sentence == candidate.sentence
            and candidate.start <= other.start
            and other.end <= candidate.end
            for other in candidates
        )
        rows[n, column] = float(inside >= 2)


_RETRIEVERS = 5  # the product's retrievers: a passage's votes are a share of them


def _columns(rows: np.ndarray, model: LinearModel) -> np.ndarray:
    """The columns of ``rows`` (``CANDIDATE_FEATURES``) that ``model`` reads, in its order."""
    return rows[:, [CANDIDATE_FEATURES.index(name) for name in model.features]]


def _log_sum_exp(values: np.ndarray) -> float:
    top = float(values.max())
    return top + float(np.log(np.exp(values - top).sum()))


def _unstated_words(question: str, predicate: frozenset[str], evidence: str) -> list[str]:
    """The question's words whose predicate terms the evidence does not state."""
    stated = content_terms(evidence)
    words = []
    for match in re.finditer(r"[^\W\d_]+", question):
        terms = content_terms(match.group()) & predicate
        if terms and not terms & stated:
            words.append(match.group())
    return list(dict.fromkeys(words))
