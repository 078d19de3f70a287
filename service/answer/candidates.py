"""Answer candidates: the typed spans of a sentence, and the sentence itself.

The spans come from the build-time annotations (``CorpusIndex.spans_of``: spaCy's
entities and noun chunks for English, jieba's tagged words for Chinese, number, date,
title and list patterns for both). Which labels can answer which kind of question is a
definition, not a tuned number (``EXPECTED``, ``RELATED``); how much a match is worth
against everything else is the fitted scorer's business (``service.answer.features``).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.index import CorpusIndex
from service.records import QuestionType
from service.text.language import fold

__all__ = ["EXPECTED", "OPEN_TYPES", "RELATED", "SENTENCE", "Candidate", "candidates_of"]

SENTENCE = "SENTENCE"  # the label of the whole-sentence candidate

# The labels that answer each kind of question, and those that sometimes do (an
# organisation for "who", a number for "how often").
EXPECTED: dict[str, frozenset[str]] = {
    "person": frozenset({"PERSON"}),
    "organisation": frozenset({"ORG"}),
    "place": frozenset({"PLACE", "FAC"}),
    "date": frozenset({"DATE", "TIME"}),
    "number": frozenset({"NUMBER", "QUANTITY", "MONEY", "PERCENT"}),
    "frequency": frozenset({"DATE", "TIME"}),
    "duration": frozenset({"DATE", "TIME", "QUANTITY"}),
    "title": frozenset({"TITLE", "WORK", "EVENT", "LAW"}),
    "list": frozenset({"LIST"}),
}
RELATED: dict[str, frozenset[str]] = {
    "person": frozenset({"ORG", "NORP"}),
    "organisation": frozenset({"PERSON", "NORP", "FAC", "PRODUCT"}),
    "place": frozenset({"ORG", "NORP"}),
    "number": frozenset({"ORDINAL"}),
    "frequency": frozenset({"NUMBER", "QUANTITY"}),
    "duration": frozenset({"NUMBER"}),
    "title": frozenset({"NOUN", "ORG", "PRODUCT"}),
    "list": frozenset({"NOUN", "ORG", "PLACE"}),
}
# Kinds answered by a clause or a whole sentence rather than a typed phrase.
OPEN_TYPES = frozenset({"reason", "manner", "definition", "other"})


@dataclass(frozen=True)
class Candidate:
    """One possible answer: a span of one of the question's sentences."""

    sentence: int  # position in the reader's list of sentences for this question
    start: int  # document offsets
    end: int
    label: str  # an annotation label, or SENTENCE

    @property
    def whole(self) -> bool:
        return self.label == SENTENCE


def candidates_of(
    index: CorpusIndex,
    position: int,
    row: int,
    bounds: tuple[int, int],
    text: str,
    question_folded: str,
) -> list[Candidate]:
    """The candidates of sentence ``row`` (document offsets ``bounds``; ``text`` is the
    document's text): the whole sentence, then each annotated span that is not made of
    the question's own words."""
    start, end = bounds
    found = [Candidate(position, start, end, SENTENCE)]
    seen = {(start, end)}
    for span in index.spans_of(row):
        if (span.start, span.end) in seen or span.end <= span.start:
            continue
        seen.add((span.start, span.end))
        if fold(text[span.start : span.end]) in question_folded:
            continue  # the question's own words are not its answer
        found.append(Candidate(position, span.start, span.end, span.label))
    return found


def type_agreement(answer_type: QuestionType, label: str) -> tuple[float, float]:
    """Whether ``label`` is a label that answers ``answer_type`` (1, 0), and whether it is
    one that sometimes does."""
    return (
        float(label in EXPECTED.get(answer_type, ())),
        float(label in RELATED.get(answer_type, ())),
    )
