"""Answer: pick the sentence that answers, then the shortest span of it that does.

Extractive only: every answer is a verbatim slice of a document, with its offsets.

1. The question's *type* comes from its wording: when, number (how many / how much), who,
   where, or other (English and Chinese cue words).
2. Candidate sentences are those of the top fused passages (sentence boundaries and vectors
   were computed at build time). Each is scored by its similarity to the question (USE-
   multilingual; MiniLM too when both are English), the share of the question's terms it
   contains, the rank of its passage, and whether it holds a span of the wanted type.
3. In the best sentence the span is the typed candidate (a date, a number with its noun, a
   name, a place) nearest the question's terms and not itself part of the question; other
   questions, or no confident span, get the whole sentence.
4. The answer abstains when the best sentence's evidence is below the threshold measured
   on the evaluation set; the reason says which evidence was missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np

from service.index import CorpusIndex
from service.language import CJK_RE, detect_language, fold
from service.lexical import tokenize
from service.records import Answer, Chunk, Citation, Hit
from service.search import query_vector

__all__ = ["Extractor", "candidate_spans", "question_type"]

# ----------------------------------------------------------------------------- question type

_TYPE_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
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
            r"what is the (number|total))\b|多少|几个|幾個|几次|幾次|几届|幾屆|几位|幾位|几项|幾項|"
            r"几国|幾國|几个|几|幾",
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


def question_type(question: str) -> str:
    """``when``, ``number``, ``where``, ``who`` or ``other``."""
    for kind, pattern in _TYPE_CUES:
        if pattern.search(question):
            return kind
    return "other"


# ----------------------------------------------------------------------------- typed spans

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
_DATE_RE = re.compile(
    rf"{_MONTH}\s+\d{{1,2}}(?!\d)(?:st|nd|rd|th)?"
    rf"(?:\s*(?:-|–|and|to)\s*\d{{1,2}}(?!\d)(?:st|nd|rd|th)?)?"
    rf"(?:,?\s+(?:19|20)\d\d)?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}(?:\s+(?:19|20)\d\d)?"
    rf"|{_MONTH}\s+(?:19|20)\d\d"
    r"|(?:19|20)\d\d年(?:至(?:19|20)?\d\d年)?(?:\d{1,2}月)?(?:\d{1,2}日)?"
    r"|(?<![\d.])(?:19|20)\d\d(?:\s*(?:-|–|to)\s*(?:19|20)\d\d)?(?:s)?(?![\d.年])"
    r"|\d{1,2}月(?:\d{1,2}日)?|(?:今年|去年|明年|當年|当年)(?:\d{1,2}月)?"
)
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
_ZH_NUMERAL = r"(?:\d+(?:\.\d+)?|[一二三四五六七八九十百千两兩]+)"
_NUMBER_ZH_RE = re.compile(
    rf"(?:[约約近逾超过過]+)?(?<![A-Za-z]){_ZH_NUMERAL}(?=[\u4e00-\u9fff])(?:多)?(?:万|萬|亿|億)?"
    r"(?:人次|[个個名位次届屆项項国國家年场場种種方部大])?"
    r"(?:(?![、和与與及的在了])[\u4e00-\u9fff]){0,4}"
)
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


_NUMERAL_WORD = re.compile(rf"\b{_NUMBER_WORDS}\b|[一二三四五六七八九十百千两兩]", re.I)

# ----------------------------------------------------------------------------- extraction

_QUESTION_WORDS = frozenset(
    {
        "who", "whom", "whose", "what", "when", "where", "which", "why", "how", "many", "much",
        "year", "date", "kind", "kinds", "type", "name", "did", "does", "do", "is", "are", "was",
        "were",
    }
)  # fmt: skip


def _script(language: str) -> str:
    return "han" if language.startswith("zh") or language == "ja" else language


def _terms(text: str) -> set[str]:
    """Content terms for overlap: stems and Chinese bigrams (unigrams are too common)."""
    terms = set()
    for token in tokenize(text):
        if CJK_RE.match(token) and len(token) == 1:
            continue
        if token in _QUESTION_WORDS:
            continue
        terms.add(token)
    return terms


@dataclass(frozen=True)
class _Scored:
    row: int  # sentence row in the index
    chunk: Chunk
    start: int
    end: int
    similarity: float
    coverage: float
    score: float


class Extractor:
    """Extractive answers from an index's precomputed sentences."""

    passages_read = 5
    # Abstain below this evidence (similarity blended with term coverage), measured on
    # eval/questions.jsonl: see the README's answer section.
    threshold = 0.42

    def __init__(self, index: CorpusIndex, *, base_url: str = "") -> None:
        self.index = index
        self.base_url = base_url.rstrip("/")
        rows = index.sentences[:, 0]
        self._first = np.searchsorted(rows, np.arange(len(index.chunks) + 1))
        self._row_of = {chunk.chunk_id: row for row, chunk in enumerate(index.chunks)}

    # -- helpers -------------------------------------------------------------------------

    def url(self, doc_id: str, start: int, end: int) -> str:
        return f"{self.base_url}/view/{quote(doc_id)}#{start}-{end}"

    def _sentence_rows(self, chunk: Chunk) -> range:
        row = self._row_of[chunk.chunk_id]
        return range(int(self._first[row]), int(self._first[row + 1]))

    def _query_vectors(self, question: str) -> dict[str, np.ndarray]:
        return {
            "dense": query_vector(self.index.dense_encoder, question),
            "multilingual": query_vector(self.index.multilingual_encoder, question),
        }

    # -- scoring -------------------------------------------------------------------------

    def _score_sentences(self, question: str, hits: Iterable[Hit]) -> list[_Scored]:
        vectors = self._query_vectors(question)
        q_terms = _terms(question)
        english_question = detect_language(question) == "en"
        question_script = _script(detect_language(question))
        scored = []
        for hit in hits:
            prior = 1.0 / math.sqrt(hit.rank)
            for row in self._sentence_rows(hit.chunk):
                _, start, end = (int(v) for v in self.index.sentences[row])
                text = self.index.documents[hit.chunk.doc_id].text[start:end]
                vectors_of = self.index.sentence_vectors
                similarity = float(vectors_of["multilingual"][row] @ vectors["multilingual"])
                if english_question and hit.chunk.language == "en":
                    dense = float(self.index.sentence_vectors["dense"][row] @ vectors["dense"])
                    similarity = (similarity + dense) / 2
                if _script(hit.chunk.language) == question_script:
                    coverage = len(q_terms & _terms(text)) / len(q_terms) if q_terms else 0.0
                else:  # across scripts, shared terms cannot be counted: trust the vectors
                    coverage = similarity
                score = 0.55 * similarity + 0.35 * coverage + 0.10 * prior
                scored.append(_Scored(row, hit.chunk, start, end, similarity, coverage, score))
        return sorted(scored, key=lambda s: -s.score)

    def _span(self, question: str, kind: str, sentence: _Scored) -> tuple[int, int] | None:
        """Offsets in the document of the best typed span of the sentence, if any."""
        document = self.index.documents[sentence.chunk.doc_id]
        text = document.text[sentence.start : sentence.end]
        folded_question = fold(question)
        anchors = [
            m.start() for term in _terms(question) for m in re.finditer(re.escape(term), fold(text))
        ]
        best: tuple[float, tuple[int, int]] | None = None
        for start, end in candidate_spans(text, kind):
            piece = fold(text[start:end])
            if piece in folded_question:
                continue  # the question's own words are not its answer
            distance = min((abs(a - start) for a in anchors), default=len(text))
            cost = distance / max(len(text), 1) - 0.001 * (end - start)
            if best is None or cost < best[0]:
                best = (cost, (start, end))
        if best is None:
            return None
        start, end = best[1]
        return sentence.start + start, sentence.start + end

    def answer(self, question: str, hits: list[Hit]) -> tuple[Answer | None, str | None]:
        """The answer and ``None``, or ``None`` and why the corpus does not answer."""
        if not hits:
            return None, "No passage of the corpus matches the question."
        scored = self._score_sentences(question, hits[: self.passages_read])
        if not scored:
            return None, "The matching passages have no sentences to quote."
        best = scored[0]
        evidence = 0.6 * best.similarity + 0.4 * best.coverage
        if evidence < self.threshold:
            return None, (
                "The closest sentence shares too little with the question "
                f"(similarity {best.similarity:.2f}, {best.coverage:.0%} of its terms), "
                "so the sources do not seem to answer it."
            )
        kind = question_type(question)
        span = self._span(question, kind, best) if kind != "other" else None
        start, end = span or (best.start, best.end)
        document = self.index.documents[best.chunk.doc_id]
        confidence = 1 / (1 + math.exp(-12 * (evidence - self.threshold - 0.08)))
        return (
            Answer(
                text=document.text[start:end],
                sentence=document.text[best.start : best.end],
                sentence_start=best.start,
                sentence_end=best.end,
                citation=Citation(
                    doc_id=document.doc_id,
                    title=document.title,
                    published=document.published,
                    char_start=start,
                    char_end=end,
                    quote=document.text[start:end],
                    url=self.url(document.doc_id, start, end),
                ),
                confidence=round(confidence, 4),
                language=best.chunk.language,
                answer_type=kind if span else "sentence",
            ),
            None,
        )

    # -- highlights ----------------------------------------------------------------------

    def term_highlights(self, query: str, chunk: Chunk) -> tuple[tuple[int, int], ...]:
        """Ranges of ``chunk.text`` that match the query's terms (folded, stemmed prefix)."""
        folded = fold(chunk.text)
        if len(folded) != len(chunk.text):
            return ()  # folding changed lengths (rare ligatures): offsets would not line up
        ranges = []
        for term in _terms(query):
            for match in re.finditer(re.escape(term), folded):
                ranges.append((match.start(), match.end()))
        return _merge(ranges)

    def highlights(
        self, question: str, chunk: Chunk, answer: Answer | None
    ) -> tuple[tuple[int, int], ...]:
        ranges = list(self.term_highlights(question, chunk))
        if answer is not None and answer.citation.doc_id == chunk.doc_id:
            start = max(answer.citation.char_start, chunk.char_start) - chunk.char_start
            end = min(answer.citation.char_end, chunk.char_end) - chunk.char_start
            if start < end:
                ranges.append((start, end))
        return _merge(ranges)


def _merge(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)
