"""What a question asks: its type (when, number, who, where, other), whether it wants
several things, and the words that say what is asked about its subject."""

from __future__ import annotations

import re

from service.records import Query, QuestionType
from service.text.language import is_han
from service.text.tokenize import content_terms, tokenize

__all__ = ["is_plural", "predicate_terms", "predicate_words", "question_type"]

_TYPE_CUES: tuple[tuple[QuestionType, re.Pattern[str]], ...] = (
    (
        "when",
        re.compile(
            r"\b(when|what (year|date|day|month|time)|which (year|date|day|month)|how long ago|"
            r"since when|in what year|on what (day|date))\b|何时|何時|什么时候|什麼時候|哪一?年|"
            r"哪一?天|几月|幾月|何年|日期|时间|時間",
            re.I,
        ),
    ),
    (
        "number",
        re.compile(
            r"\b(how (many|much|large|big|long)|what (number|percentage|share|proportion)|"
            r"what is the (number|total))\b|多少|多长|多長|多久|几个|幾個|几次|幾次|几届|幾屆|"
            r"几位|幾位|几项|幾項|几国|幾國|几|幾",
            re.I,
        ),
    ),
    (
        "where",
        re.compile(
            r"\b(where|in which (city|country|place|town|venue|region)|which (city|country|place|"
            r"town|venue|region|campus|university)|what (city|country|place|venue))\b|哪里|哪裡|"
            r"何地|在哪|哪个城市|哪個城市|哪座城市|哪个国家|哪個國家|地点|地點",
            re.I,
        ),
    ),
    (
        "who",
        re.compile(
            r"\b(who|whom|whose|which (person|people|organi[sz]ations?|agenc(y|ies)|institutions?|"
            r"bod(y|ies)|compan(y|ies)|officials?|ministr(y|ies)|group)|what (organi[sz]ation|"
            r"agency|institution|body))\b|谁|誰|哪位|何人|哪些机构|哪些機構|哪个机构|哪個機構|"
            r"什么机构|什麼機構|哪些部门|哪些部門",
            re.I,
        ),
    ),
)


def question_type(question: str) -> QuestionType:
    """``when``, ``number``, ``where``, ``who`` or ``other``: the kind whose cue comes first
    ("How many ... when ...?" asks for a number)."""
    found = [
        (match.start(), order, kind)
        for order, (kind, pattern) in enumerate(_TYPE_CUES)
        if (match := pattern.search(question))
    ]
    return min(found)[2] if found else "other"


# "Which agencies ...", "Who were ...", "哪些机构": the answer is likely several things.
_PLURAL_QUESTION = re.compile(
    r"\b(?:which|what)\s+(?:\w+\s+)?\w{3,}(?<!s)s\b|\bwho (?:are|were)\b|哪些", re.I
)


def is_plural(query: Query) -> bool:
    """Whether the question likely wants several things (a list)."""
    return bool(_PLURAL_QUESTION.search(query.text))


# Words that name the kind of answer wanted, not something the source must state.
_ANSWER_KIND_WORDS = frozenset(
    tokenize(
        "city country place year date day month time number name kind kinds type people "
        "person organization agency body position role article story report item news piece"
    )
)
_NAME_RE = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:(?:of|the|and|for|on)\s+)*[A-Z][\w'’-]*)*|\d+")


def predicate_words(query: Query) -> list[str]:
    """The question's words that say what is asked about its subject (names, numbers and
    answer-kind words removed): "move", "new", "office" in "When did the TCS move to a new
    office?". Latin script only; empty for Chinese, which has no capitals to find names by."""
    if is_han(query.language):
        return []
    names = {t for m in _NAME_RE.finditer(query.text) for t in tokenize(m.group())}
    words = []
    for match in re.finditer(r"[^\W\d_]+", query.text):
        terms = content_terms(match.group())
        if len(match.group()) > 2 and terms and not terms & (names | _ANSWER_KIND_WORDS):
            words.append(match.group().lower())
    return words


def predicate_terms(query: Query) -> frozenset[str]:
    """The content terms of ``predicate_words``."""
    return frozenset(t for word in predicate_words(query) for t in content_terms(word))
