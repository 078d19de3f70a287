"""Engine: one object that answers questions over a loaded index.

A question meets the stages in this order: the query encoder builds its ``Query`` record
(``service.encode.query``), the hybrid retriever ranks passages (``service.retrieve``), the
filters apply, and the reader quotes an answer (``service.answer``). The engine times each
stage. The CLI, the HTTP API and the lab all build it with ``Engine.from_settings``, so
they return the same thing for the same question.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import unicodedata
from collections.abc import Iterator, Mapping, Sequence

from service.answer.extractor import Extractor
from service.answer.followup import Turn, check_history, resolve
from service.answer.highlights import answer_highlights, term_highlights
from service.config import Settings
from service.encode.encoders import Encoder
from service.encode.query import QueryEncoder, analyse
from service.errors import DocumentGoneError, InputError, UnknownDocumentError
from service.index import CorpusIndex, load_index
from service.records import AskResult, Chunk, Document, Filters, Hit, Passage, Query
from service.retrieve.hybrid import HybridRetriever
from service.tuned import Tuned, load_tuned

__all__ = ["MAX_QUESTION_CHARS", "MAX_TOP_K", "Engine", "clean_question"]

MAX_QUESTION_CHARS = 2000
MAX_TOP_K = 50
LANGUAGES = ("en", "zh-Hans", "zh-Hant", "ja", "ko")


def clean_question(text: str, field: str = "question") -> str:
    """Strip control characters and outer white space; refuse empty or overlong text."""
    cleaned = "".join(
        ch if ch in "\t\n" or unicodedata.category(ch)[0] != "C" or ch == "\u200d" else " "
        for ch in text
    ).strip()
    if not cleaned:
        raise InputError(field, f"{field} is empty; send the question as text.")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise InputError(
            field,
            f"{field} has {len(cleaned)} characters; the limit is {MAX_QUESTION_CHARS}.",
        )
    return cleaned


class Engine:
    """Question answering over one loaded index generation."""

    def __init__(
        self,
        index: CorpusIndex,
        settings: Settings,
        tuned: Tuned,
        retriever: HybridRetriever,
        extractor: Extractor,
    ) -> None:
        """Use ``Engine.from_settings``; this only stores what it wired."""
        self.index = index
        self.settings = settings
        self.tuned = tuned
        self.retriever = retriever
        self.extractor = extractor
        self.query_encoder = QueryEncoder(index.encoders)
        self._in_flight = 0  # questions being retrieved now (the server's threads)
        self._in_flight_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        index: CorpusIndex | None = None,
        encoders: Mapping[str, Encoder] | None = None,
        retrievers: Sequence[str] | None = None,
    ) -> Engine:
        """The one place an engine is wired: the CLI, the server, the lab and the tests call it.

        Args:
            settings: the configuration (index folder, models, fusion, thresholds).
            index: an index already loaded (default: load the current generation).
            encoders: models already loaded, reused when loading the index (a reload).
            retrievers: only these retrievers, ranked alone by reciprocal rank fusion (the
                evaluation's one-retriever baselines; default: the configured hybrid).

        Returns:
            An engine over the index.
        """
        tuned = load_tuned(settings.tuned_file)  # a bad file fails before the models load
        if index is None:
            index = load_index(settings, encoders=encoders)
        retriever = HybridRetriever.from_index(index, settings, tuned.fusion)
        if retrievers is not None:
            unknown = sorted(set(retrievers) - set(retriever.retrievers))
            if unknown:
                raise ValueError(
                    f"unknown retrievers {', '.join(unknown)}; "
                    f"use some of {', '.join(retriever.retrievers)}"
                )
            # one run fused by RRF keeps that run's order
            retriever = HybridRetriever(
                {name: retriever.retrievers[name] for name in retrievers}, fusion="rrf"
            )
        extractor = Extractor(
            index,
            tuned.reader,
            settings.reader_languages(),
            min_confidence=settings.min_confidence,
        )
        return cls(index, settings, tuned, retriever, extractor)

    @property
    def documents(self) -> dict[str, Document]:
        return self.index.documents

    def document(self, doc_id: str) -> Document:
        try:
            return self.index.documents[doc_id]
        except KeyError:
            removed = self.index.removed.get(doc_id)
            if removed is not None:
                raise DocumentGoneError(doc_id, removed) from None
            raise UnknownDocumentError(doc_id) from None

    def check_top_k(self, top_k: int) -> None:
        if not 1 <= top_k <= MAX_TOP_K:
            raise InputError("top_k", f"top_k is {top_k}; it must be between 1 and {MAX_TOP_K}.")

    def _check(self, top_k: int, filters: Filters | None) -> None:
        self.check_top_k(top_k)
        if filters is None:
            return
        for doc_id in filters.doc_ids or ():
            if doc_id not in self.index.documents:
                raise UnknownDocumentError(doc_id, field="filters.doc_ids")
        for language in filters.languages or ():
            if language not in LANGUAGES:
                raise InputError(
                    "filters.languages",
                    f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}.",
                )

    def allowed(self, chunk: Chunk, filters: Filters | None = None) -> bool:
        """Whether ``chunk`` may be read: its document is still served and it passes
        ``filters``."""
        if chunk.doc_id in self.index.hidden:  # removed since the generation served
            return False
        if filters is None:
            return True
        if filters.doc_ids and chunk.doc_id not in filters.doc_ids:
            return False
        if filters.languages and chunk.language not in filters.languages:
            return False
        if filters.published_from or filters.published_to:
            published = self.index.documents[chunk.doc_id].published
            if published is None:
                return False
            if filters.published_from and published < filters.published_from:
                return False
            if filters.published_to and published > filters.published_to:
                return False
        return True

    @contextlib.contextmanager
    def request(self) -> Iterator[bool]:
        """A request being served: yields whether it has the process to itself (no other
        request in flight), when its encoders may run side by side."""
        with self._in_flight_lock:
            self._in_flight += 1
            alone = self._in_flight == 1
        try:
            yield alone
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def query(
        self,
        text: str,
        timings: dict[str, float] | None = None,
        *,
        reader: bool = True,
        parallel: bool = False,
    ) -> Query:
        """The ``Query`` record of ``text`` (already cleaned), encoded for the retrievers
        that will read it and, with ``reader``, for the reader as well.

        ``parallel`` runs the encoders side by side (for a question that has the process to
        itself); ``timings`` gets each encode."""
        query = analyse(text)
        names = self.retriever.encoders_for(query)
        if reader:
            names += [n for n in self.extractor.encoders_for(query) if n not in names]
        return self.query_encoder.encode(query, names, timings, parallel=parallel)

    def _retrieve(
        self,
        text: str,
        top_k: int,
        filters: Filters | None,
        timings: dict[str, float],
        *,
        reader: bool,
        alone: bool = False,
    ) -> tuple[Query, list[Hit]]:
        started = time.perf_counter()
        query = self.query(text, timings, reader=reader, parallel=alone)
        runs = self.retriever.runs(query, timings)
        timings["retrieve"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        if filters is not None or self.index.hidden:
            runs = {
                name: [h for h in hits if self.allowed(h.chunk, filters)]
                for name, hits in runs.items()
            }
        hits = self.retriever.fuse(query, runs, top_k)
        timings["fuse"] = (time.perf_counter() - started) * 1000
        return query, hits

    def search(self, query: str, top_k: int = 5, filters: Filters | None = None) -> list[Passage]:
        """Ranked passages, highlights on the query terms."""
        text = clean_question(query, "q")
        self._check(top_k, filters)
        record, hits = self._retrieve(text, top_k, filters, {}, reader=False)
        return [Passage(hit, term_highlights(record, hit.chunk)) for hit in hits]

    def ask(
        self,
        question: str,
        top_k: int = 5,
        filters: Filters | None = None,
        history: Sequence[Turn] = (),
    ) -> AskResult:
        """Answer ``question`` from the corpus, or abstain with the reason.

        Args:
            question: the question, in any language.
            top_k: how many passages to return.
            filters: which passages may answer.
            history: the previous turns of the conversation, newest last (at most
                ``followup.MAX_TURNS``): a follow-up whose subject is a pronoun or missing
                is asked with the previous question's subject (``followup.resolve``), and
                the result says which (``resolved_question``, ``assumed_subject``).
        """
        started = time.perf_counter()
        question = clean_question(question)
        self._check(top_k, filters)
        history = check_history(history)
        timings: dict[str, float] = {}
        resolution = resolve(question, history, self.index.documents) if history else None
        if history:
            timings["resolve"] = (time.perf_counter() - started) * 1000
        asked = resolution.question if resolution else question
        with self.request() as alone:
            result = self._ask(asked, top_k, filters, timings, started, alone=alone)
        if resolution is None:
            return result
        return dataclasses.replace(
            result,
            question=question,
            resolved_question=resolution.question,
            assumed_subject=resolution.subject,
        )

    def _ask(
        self,
        question: str,
        top_k: int,
        filters: Filters | None,
        timings: dict[str, float],
        started: float,
        *,
        alone: bool,
    ) -> AskResult:
        depth = max(top_k, self.extractor.passages_read)
        query, hits = self._retrieve(question, depth, filters, timings, reader=True, alone=alone)
        step = time.perf_counter()
        answer, reason = self.extractor.answer(query, hits)
        timings["answer"] = (time.perf_counter() - step) * 1000
        step = time.perf_counter()
        passages = tuple(
            Passage(hit, answer_highlights(query, hit.chunk, answer)) for hit in hits[:top_k]
        )
        timings["highlight"] = (time.perf_counter() - step) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return AskResult(
            question=question,
            answer=answer,
            abstain_reason=reason,
            passages=passages,
            timings_ms={k: round(v, 3) for k, v in timings.items()},
        )
