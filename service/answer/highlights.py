"""Highlights: the ranges of a passage that match the question's terms or hold the answer."""

from __future__ import annotations

import re
from functools import lru_cache

from service.records import Answer, Chunk, Query
from service.text.language import fold
from service.text.tokenize import literal

__all__ = ["answer_highlights", "term_highlights"]

Ranges = tuple[tuple[int, int], ...]


def term_highlights(query: Query, chunk: Chunk) -> Ranges:
    """Ranges of ``chunk.text`` that match the query's terms (folded, stemmed prefix)."""
    folded = fold(chunk.text)
    if len(folded) != len(chunk.text):
        return ()  # folding changed lengths (rare ligatures): offsets would not line up
    ranges = [
        (match.start(), match.end())
        for term in query.terms
        for match in _term_pattern(term).finditer(folded)
    ]
    return _merge(ranges)


def answer_highlights(query: Query, chunk: Chunk, answer: Answer | None) -> Ranges:
    """The term highlights of ``chunk`` and, where the answer lies in it, the answer."""
    ranges = list(term_highlights(query, chunk))
    if answer is not None and answer.citation.doc_id == chunk.doc_id:
        start = max(answer.citation.char_start, chunk.char_start) - chunk.char_start
        end = min(answer.citation.char_end, chunk.char_end) - chunk.char_start
        if start < end:
            ranges.append((start, end))
    return _merge(ranges)


@lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern[str]:
    """A Latin stem marks whole words it begins ("organiz" -> "organizations"); Chinese
    terms mark where they occur."""
    if term.isascii():
        return re.compile(rf"(?<![a-z0-9]){re.escape(term)}[a-z0-9]*")
    return literal(term)


def _merge(ranges: list[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)
