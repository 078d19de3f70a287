"""Typed answer spans: the dates, numbers, names and places of a sentence, and the best
of them for a question."""

from __future__ import annotations

import re
from functools import lru_cache

from service.ingest.patterns import DATE_RE as _DATE_RE
from service.ingest.patterns import MONTH as _MONTH
from service.ingest.patterns import NUMBER_ZH_RE as _NUMBER_ZH_RE
from service.ingest.patterns import ZH_MEASURE as _ZH_MEASURE
from service.records import Query, QuestionType
from service.text.language import fold
from service.text.tokenize import content_terms

__all__ = [
    "Counted",
    "best_span",
    "candidate_spans",
    "counted",
    "counts_what_was_asked",
    "is_list",
    "literal",
]

_NUMBER_WORDS = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    r"eighty|ninety|hundred|dozen)(?:-(?:one|two|three|four|five|six|seven|eight|nine))?"
)
_NUMBER_EN_RE = re.compile(
    rf"(?:(?:more than|over|about|around|nearly|almost|at least|up to|some|approximately|"
    rf"fewer than|less than)\s+)?"
    rf"(?:\d[\d,]*(?:\.\d+)?(?![\d.]|st\b|nd\b|rd\b|th\b)|\b{_NUMBER_WORDS}\b)"
    rf"(?:\s+(?:million|billion|thousand|hundred|percent))?%?"
    rf"(?:\s+(?!(?:of|from|in|and|to|the|with|as|that|which|on|at|for|by|or|were|was|are|"
    rf"is|have|has|had)\b)[a-z][\w-]*){{0,3}}",
    re.I,
)
# What a count question counts: "how many members" -> members, "幾次" -> 次.
_ASKED_NOUN_EN = re.compile(r"\bhow many\s+(?:[\w-]+\s+){0,2}?([a-z]{3,})\b", re.I)
_ASKED_MEASURE_ZH = re.compile(rf"(?:几|幾|多少)({_ZH_MEASURE})")
_CAPITALISED = r"(?:[A-Z][\w'’.-]*|[A-Z]{2,}[\w-]*)"
_NAME_EN_RE = re.compile(
    rf"{_CAPITALISED}(?:\s+(?:(?:of|the|and|for|on|&|de|in)\s+)*{_CAPITALISED})*"
    r"(?:\s+\([A-Z][\w-]*\))?"
)
_ORG_ZH_RE = re.compile(
    r"[\u4e00-\u9fff]{1,10}?(?:局|廳|厅|部|委員會|委员会|組織|组织|協會|协会|大學|大学|學院|学院|研究院|"
    r"研究所|秘書處|秘书处|政府|中心|銀行|银行|公司|警方|論壇|论坛)"
    r"(?:[、和与與及][\u4e00-\u9fff]{1,10}?(?:局|廳|厅|部|委員會|委员会|組織|组织|協會|协会|大學|大学|"
    r"政府|中心|警方))*"
)
_PERSON_ZH_RE = re.compile(r"[\u4e00-\u9fff]{2,3}(?=表示|认为|認為|说|說|指出|坦言|强调|強調)")
_PLACE_EN_RE = re.compile(
    rf"\b(?:in|at|near|from)\s+(?P<span>{_CAPITALISED}(?:,?\s+{_CAPITALISED})*)"
)
_PLACE_ZH_RE = re.compile(
    r"(?<=在)[\u4e00-\u9fff]{2,8}?(?=舉行|举行|召開|召开|舉辦|举办|成立|設立|设立)"
    r"|[\u4e00-\u9fff]{1,4}(?:市|省|島|岛|道|縣|县|州)"
)
_LEADING_NOISE = re.compile(r"^(?:The|A|An|In|On|At|During|This|That|These|Both|Additionally),?\s+")

_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "when": (_DATE_RE,),
    "number": (_NUMBER_EN_RE, _NUMBER_ZH_RE),
    "who": (_NAME_EN_RE, _ORG_ZH_RE, _PERSON_ZH_RE),
    "where": (_PLACE_EN_RE, _PLACE_ZH_RE),
}


def candidate_spans(text: str, kind: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that could answer a question of type ``kind``."""
    spans: list[tuple[int, int]] = []
    for pattern in _PATTERNS.get(kind, ()):
        for match in pattern.finditer(text):
            start, end = match.span("span" if "span" in pattern.groupindex else 0)
            piece = text[start:end]
            trimmed = piece.rstrip(" ,.;:")
            lead = _LEADING_NOISE.match(trimmed)
            if lead:
                start += lead.end()
                trimmed = trimmed[lead.end() :]
            end = start + len(trimmed)
            if end > start and (
                kind != "number"
                or any(c.isdigit() for c in trimmed)
                or _NUMERAL_WORD.search(trimmed)
            ):
                spans.append((start, end))
    return sorted(set(spans))


_LIST_RE = re.compile(r"、|和|与|與|及|\band\b|, ")
_AGENT_BEFORE = re.compile(r"\bby\s+$|由$|被$", re.I)
_MONTHS_AND_DAYS = re.compile(
    rf"^(?:{_MONTH}|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)$", re.I
)


Counted = tuple[frozenset[str], tuple[str, ...]]  # English nouns, Chinese measure words


def counted(question: str) -> Counted:
    """What a count question counts: English noun terms ("member") and Chinese measure
    words ("次"), folded."""
    nouns = [content_terms(m.group(1)) for m in _ASKED_NOUN_EN.finditer(question)]
    measures = tuple(fold(m.group(1)) for m in _ASKED_MEASURE_ZH.finditer(question))
    return frozenset().union(*nouns), measures


def counts_what_was_asked(piece: str, asked: Counted) -> bool:
    """Whether ``piece`` counts what the question counts."""
    nouns, measures = asked
    return bool(nouns & content_terms(piece)) or any(m in fold(piece) for m in measures)


def _weak_name(text: str, start: int, end: int) -> bool:
    """A capitalised word that is no name: a month, or one ordinary word opening a sentence."""
    piece = text[start:end]
    if _MONTHS_AND_DAYS.match(piece):
        return True
    single = " " not in piece and "-" not in piece and not piece.isupper()
    return single and not text[:start].strip() and piece[:1].isupper() and piece[1:].islower()


_NUMERAL_WORD = re.compile(rf"\b{_NUMBER_WORDS}\b|[一二三四五六七八九十百千两兩]", re.I)


# Compiled once per term: the questions' terms outnumber the re module's own cache.
@lru_cache(maxsize=4096)
def literal(term: str) -> re.Pattern[str]:
    """A pattern matching ``term`` literally."""
    return re.compile(re.escape(term))


def best_span(
    query: Query, kind: QuestionType, text: str, *, plural: bool, asked: Counted
) -> tuple[int, int] | None:
    """Offsets in ``text`` of its best span of type ``kind`` for ``query``, if it has one:
    the candidate nearest the question's terms that is not made of the question's words.

    Args:
        query: the question.
        kind: its type (``service.answer.question.question_type``).
        text: one sentence.
        plural: whether the question wants several things (a list scores better).
        asked: what a count question counts (``counted``).
    """
    if kind == "other":
        return None
    folded_text = fold(text)
    anchors = [m.start() for t in query.terms for m in literal(t).finditer(folded_text)]
    best: tuple[float, tuple[int, int]] | None = None
    for start, end in candidate_spans(text, kind):
        piece = fold(text[start:end])
        if piece in query.folded:
            continue  # the question's own words are not its answer
        if kind in ("who", "where") and _weak_name(text, start, end):
            continue
        cost = _span_cost(query, kind, text, (start, end), anchors, plural, asked)
        if best is None or cost < best[0]:
            best = (cost, (start, end))
    return best[1] if best else None


def _span_cost(
    query: Query,
    kind: QuestionType,
    text: str,
    span: tuple[int, int],
    anchors: list[int],
    plural: bool,
    asked: Counted,
) -> float:
    """Lower is better: distance to the question's terms, echo of its words, and the cues
    of a name, a list or a count of what was asked."""
    start, end = span
    piece = fold(text[start:end])
    echo = 0.0
    if kind in ("who", "where"):  # a name made of the question's words is its subject
        own = content_terms(piece)
        echo = len(own & query.terms) / len(own) if own else 0.0
    distance = min(
        (0 if start <= a <= end else min(abs(a - start), abs(a - end)) for a in anchors),
        default=len(text),
    )
    cost = distance / max(len(text), 1) + echo - 0.001 * (end - start)
    if kind == "who" and _AGENT_BEFORE.search(text[max(0, start - 4) : start]):
        cost -= 0.3  # "organized by X": X did it
    words = text[start:end].split()
    latin = words[0][0].isascii()
    if kind == "who" and latin and len(words) == 1 and not words[0].isupper():
        cost += 0.1  # in English, one capitalised word is less often a name than two
    if kind == "who":  # a run of many capitalised words is a headline, not a name
        cost += 0.05 * max(0, len(words) - 4)
    if plural and _LIST_RE.search(text[start:end]):
        cost -= 0.3
    if any(asked) and counts_what_was_asked(piece, asked):
        cost -= 0.5  # counts what was asked: "38 members" for "how many members"
    return cost


def is_list(piece: str) -> bool:
    """Whether ``piece`` names several things ("A, B and C", "甲、乙")."""
    return _LIST_RE.search(piece) is not None
