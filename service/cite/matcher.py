"""Citation retrieval: where does a quote come from, and does it say what the source says?

1. **Candidates**, in two stages, never the whole corpus: first BM25's top passages alone
   (a quote in the source's own words shares them; no encoder runs); only when none of
   those holds the quote, the fused top passages of every retriever (lexical, dense,
   dictionary-bridged), and for a translation the other script's passages each
   multilingual retriever ranks first.
2. **Exact / normalised**: the quote is found verbatim in a passage, or after folding both
   (``service.cite.normalise``: case, width, white space, quote marks, dashes, the two
   Chinese scripts); the offsets are exact into the document.
3. **Near**: ``rapidfuzz``'s partial-ratio alignment finds the passage window closest to
   the quote; a window at least ``near`` similar (fitted on the train quotes) is a near
   match, and the words inserted, deleted and changed are listed, typed where the claim
   check's parsers can type them (number, date, negation, qualifier, name).
4. **Translated**: a quote in another script than the passage is matched to the sentence
   the multilingual encoders find closest, when that similarity reaches ``translated``.
5. Otherwise ``none``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz

from service.cite.differences import Difference, differences, unstated_values
from service.cite.normalise import normalise
from service.encode.query import analyse
from service.engine import Engine, clean_question
from service.records import Hit, Query
from service.store.bm25 import LexicalIndex, tokenize
from service.text.language import shares_script

__all__ = [
    "CiteMatch",
    "CiteResult",
    "Citer",
    "Difference",
    "Passage",
    "copies_to_read",
    "find_in",
    "holding_the_difference",
    "in_passages",
    "with_differences",
]  # fmt: skip

MATCH_KINDS = ("exact", "normalised", "near", "translated", "none")
TRANSLATIONS_READ = 5  # the encoders' closest sentences whose numbers are compared


@dataclass(frozen=True)
class CiteMatch:
    doc_id: str
    char_start: int
    char_end: int
    source_text: str
    match: str  # one of MATCH_KINDS
    similarity: float
    differences: tuple[Difference, ...]


Passage = tuple[str, str, int, int]  # doc_id, the document's text, the passage's start, end


@dataclass(frozen=True)
class CiteResult:
    quote: str
    matches: tuple[CiteMatch, ...]
    timings_ms: dict[str, float]


class Citer:
    """Quotes traced to their sources over an engine's index."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tuning = engine.tuned.cite

    def cite(self, quote: str, top_k: int = 3) -> CiteResult:
        """The ``top_k`` best source spans for ``quote``, best first (a ``none`` match
        when nothing corresponds)."""
        quote = clean_question(quote, "quote")
        if not re.search(r"[^\W_]", quote):
            raise_input("quote", "the quote holds no word or character to look for")
        self.engine.check_top_k(top_k)
        started = time.perf_counter()
        timings: dict[str, float] = {}
        read = self.tuning.passages_read
        query = analyse(quote)
        deep = self._readable(self._lexical(query, max(read, self.engine.retriever.depth)))
        hits = deep[:read]
        found = in_passages(quote, [self._passage(h) for h in deep], read, self.tuning.near)
        found += self._among_copies(quote, found, deep)
        timings["lexical"] = (time.perf_counter() - started) * 1000
        if not found:
            with self.engine.request() as alone:
                found = self._every_retriever(quote, hits, timings, alone)
        found = [self._listed(quote, m) for m in _best_first(found)[:top_k]]
        timings["total"] = (time.perf_counter() - started) * 1000
        return CiteResult(quote, tuple(found), {k: round(v, 3) for k, v in timings.items()})

    def _lexical(self, query: Query, k: int) -> list[Hit]:
        retriever = self.engine.retriever.retrievers.get("bm25")
        return retriever.search(query, k) if retriever is not None else []

    def _among_copies(self, quote: str, found: list[CiteMatch], read: list[Hit]) -> list[CiteMatch]:
        depth = max(self.tuning.passages_read, self.engine.retriever.depth)
        rows = copies_to_read(self.engine.index.lexical, quote, found, depth)
        seen = {hit.chunk.chunk_id for hit in read}
        chunks = [self.engine.index.chunks[row] for row in rows]
        hits = self._readable([Hit(c, 0.0, 0) for c in chunks if c.chunk_id not in seen])
        return in_passages(quote, [self._passage(h) for h in hits], 0, self.tuning.near)

    def _readable(self, hits: list[Hit]) -> list[Hit]:
        return [hit for hit in hits if self.engine.allowed(hit.chunk)]

    def _passage(self, hit: Hit) -> Passage:
        return hit.chunk.doc_id, self._text(hit), hit.chunk.char_start, hit.chunk.char_end

    def _every_retriever(
        self, quote: str, read: list[Hit], timings: dict[str, float], alone: bool
    ) -> list[CiteMatch]:
        """The second stage: the quote encoded and searched by every retriever; its
        matches in the fused passages not read yet, else its translations."""
        started = time.perf_counter()
        retriever = self.engine.retriever
        query = self.engine.query(quote, timings, parallel=alone)
        runs = {name: self._readable(hits) for name, hits in retriever.runs(query, timings).items()}
        fused = retriever.fuse(query, runs, self.tuning.passages_read)
        seen = {hit.chunk.chunk_id for hit in read}
        unread = [self._passage(h) for h in fused if h.chunk.chunk_id not in seen]
        found = in_passages(quote, unread, len(unread), self.tuning.near)
        timings["retrieve"] = (time.perf_counter() - started) * 1000
        if not found:
            started = time.perf_counter()
            other = _other_script(query, fused, runs, self.tuning.other_per_ranking)
            found = self._translated(query, other)
            timings["translate"] = (time.perf_counter() - started) * 1000
        return found

    def _text(self, hit: Hit) -> str:
        return self.engine.index.documents[hit.chunk.doc_id].text

    def _listed(self, quote: str, match: CiteMatch) -> CiteMatch:
        """A near match with what the quote changed listed (only for the matches returned:
        the listing costs more than the match)."""
        if match.match != "near":
            return match
        text = self.engine.index.documents[match.doc_id].text
        return with_differences(quote, text, match)

    def _translated(self, query: Query, other: list[Hit]) -> list[CiteMatch]:
        """Sentences of ``other`` (passages in another script than the quote's), as close
        as the multilingual encoders find them, less ``unstated`` for the share of the
        quote's digit numbers a sentence does not state (listed as differences); those at
        least ``translated``, best first."""
        if not other:
            return []
        ranked = self.engine.extractor.rank_sentences(query, other, self.tuning.closeness)
        found = []
        for scored in ranked[:TRANSLATIONS_READ]:
            text = self._text(Hit(scored.chunk, 0.0, 0))
            sentence = text[scored.start : scored.end]
            missing, written = unstated_values(query.text, sentence, scored.start)
            similarity = scored.similarity - self.tuning.unstated * len(missing) / max(written, 1)
            if similarity >= self.tuning.translated:
                found.append(
                    CiteMatch(
                        scored.chunk.doc_id, scored.start, scored.end, sentence, "translated",
                        round(similarity, 4), tuple(missing),
                    )
                )  # fmt: skip
        return sorted(found, key=lambda m: -m.similarity)[:3]


def _other_script(
    query: Query, fused: list[Hit], runs: dict[str, list[Hit]], per_ranking: int
) -> list[Hit]:
    """The passages a translation of the quote may be in: those in another script than
    the quote's among the fused ones, then each retriever's first ``per_ranking`` such
    passages (an English quote's fused passages can all be English while a Chinese source
    waits lower in the multilingual rankings)."""
    chosen: dict[str, Hit] = {}
    for hits, k in ((fused, len(fused)), *((hits, per_ranking) for hits in runs.values())):
        other = [h for h in hits if not shares_script(h.chunk.language, query.language)]
        for hit in other[:k]:
            chosen.setdefault(hit.chunk.chunk_id, hit)
    return list(chosen.values())


def find_in(
    quote: str, doc_id: str, text: str, start: int, end: int, near: float
) -> CiteMatch | None:
    """``quote`` in the passage ``text[start:end]`` of document ``doc_id``: exact,
    normalised, or near (``rapidfuzz``'s partial-ratio alignment at least ``near``), with
    offsets into ``text``; or None."""
    passage = text[start:end]
    stripped = quote.strip()
    at = passage.find(stripped)
    if at >= 0:
        return CiteMatch(doc_id, start + at, start + at + len(stripped), stripped, "exact", 1.0, ())
    asked, source = normalise(quote), normalise(passage)
    if not asked.text:
        return None
    at = source.text.find(asked.text)
    if at >= 0:
        a, b = source.span(at, at + len(asked.text))
        return CiteMatch(
            doc_id, start + a, start + b, text[start + a : start + b], "normalised", 1.0, ()
        )
    aligned = fuzz.partial_ratio_alignment(asked.text, source.text)
    if aligned is None or aligned.dest_end <= aligned.dest_start or aligned.score / 100 < near:
        return None
    a, b = _whole_words(passage, *source.span(aligned.dest_start, aligned.dest_end))
    similarity = round(aligned.score / 100, 4)
    return CiteMatch(
        doc_id, start + a, start + b, text[start + a : start + b], "near", similarity, ()
    )


def copies_to_read(
    lexical: LexicalIndex, quote: str, found: Sequence[CiteMatch], depth: int
) -> list[int]:
    """When only near copies of ``quote`` were ``found``, the rows of the passages holding
    every word of the quote the closest copy lacks (its own number, its own name), to be
    looked through letter for letter: among many copies of one sentence the quote's own
    may rank below BM25's depth. Else none."""
    if not found or any(m.match != "near" for m in found):
        return []
    closest = max(found, key=lambda m: m.similarity)
    return holding_the_difference(lexical, quote, closest.source_text, depth)


def holding_the_difference(lexical: LexicalIndex, quote: str, copy: str, depth: int) -> list[int]:
    """The rows of the chunks holding every index term of ``quote`` that ``copy`` (a near
    copy of it) lacks, best BM25 score for the quote first, ``depth`` at most; none when
    the copy lacks none or no chunk holds them all."""
    missing = set(tokenize(quote)) - set(tokenize(copy))
    if not missing:
        return []
    mask = np.ones(lexical.size, dtype=bool)
    for term in missing:
        holding = np.zeros(lexical.size, dtype=bool)
        holding[lexical.rows(term)] = True
        mask &= holding
        if not mask.any():
            return []
    return [
        row
        for row, score in lexical.search_terms(Counter(tokenize(quote)), depth, mask)
        if score > 0
    ]


def with_differences(quote: str, text: str, match: CiteMatch) -> CiteMatch:
    """``match`` (a near match in the document ``text``) with the quote's changes listed."""
    found = differences(quote, text, match.char_start, match.char_end, 0)
    return dataclasses.replace(match, differences=found)


def in_passages(quote: str, passages: Sequence[Passage], read: int, near: float) -> list[CiteMatch]:
    """The quote's matches in ``passages`` (best ranked first): exact, normalised or near in
    the first ``read``, and letter for letter (a plain substring search, cheap enough to
    look deeper) in the rest: a quote among many near copies of its sentence may rank
    below them."""
    found = [find_in(quote, *passage, near) for passage in passages[:read]]
    stripped = quote.strip()
    for doc_id, text, start, end in passages[read:]:
        at = text.find(stripped, start, end)
        if at >= 0:
            found.append(CiteMatch(doc_id, at, at + len(stripped), stripped, "exact", 1.0, ()))
    return [m for m in found if m is not None]


def raise_input(field: str, message: str) -> None:
    from service.errors import InputError

    raise InputError(field, message)


_ORDER = {kind: n for n, kind in enumerate(MATCH_KINDS)}


def _best_first(found: list[CiteMatch]) -> list[CiteMatch]:
    """Best kind first, then most similar; one match per source span."""
    seen: set[tuple[str, int, int]] = set()
    kept = []
    for match in sorted(found, key=lambda m: (_ORDER[m.match], -m.similarity)):
        key = (match.doc_id, match.char_start, match.char_end)
        if key not in seen:
            seen.add(key)
            kept.append(match)
    return kept


def _whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """A window widened to whole words (an alignment may cut a word at either end)."""
    while (
        start > 0 and text[start - 1].isalnum() and text[start].isalnum() and text[start].isascii()
    ):
        start -= 1
    while (
        end < len(text) and text[end - 1].isalnum() and text[end].isalnum() and text[end].isascii()
    ):
        end += 1
    return start, end
