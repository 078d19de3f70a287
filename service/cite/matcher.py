"""Citation retrieval: where does a quote come from, and does it say what the source says?

1. **Candidates**: the quote is searched like a question; the top passages (lexical, dense
   and dictionary-bridged, fused) are the only text compared, never the whole corpus.
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

import re
import time
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from service.cite.normalise import Normalised, normalise, tokens
from service.engine import Engine, clean_question
from service.records import Hit, Query
from service.text.language import shares_script
from service.verify.facts import dates, numbers, ordinals

__all__ = ["CiteMatch", "CiteResult", "Citer", "Difference"]

MATCH_KINDS = ("exact", "normalised", "near", "translated", "none")
# Grammar words that turn or bound a statement, in both languages.
_NEGATIONS = frozenset(
    ("not", "no", "never", "none", "nor", "n't", "without",
     "不", "没", "沒", "未", "非", "无", "無", "别", "別", "勿", "否")
)  # fmt: skip
_QUALIFIERS = frozenset(
    ("more", "less", "fewer", "over", "under", "above", "below", "about", "around", "nearly",
     "almost", "least", "most", "approximately", "roughly",
     "超过", "超過", "逾", "以上", "多", "不到", "不足", "少于", "少於", "近", "将近", "將近",
     "约", "約", "左右")
)  # fmt: skip


@dataclass(frozen=True)
class Difference:
    """A word the quote inserts, deletes or changes, with offsets in both (quote offsets
    into the quote as given, source offsets into the document)."""

    operation: str  # insert, delete, replace
    quote_text: str
    quote_start: int
    quote_end: int
    source_text: str
    source_start: int
    source_end: int
    type: str | None  # number, date, negation, qualifier, name, or None


@dataclass(frozen=True)
class CiteMatch:
    doc_id: str
    char_start: int
    char_end: int
    source_text: str
    match: str  # one of MATCH_KINDS
    similarity: float
    differences: tuple[Difference, ...]


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
        query = self.engine.query(quote)
        hits = self.engine.retriever.search(query, self.tuning.passages_read)
        retrieved = time.perf_counter()
        found = [m for m in (self._in(quote, hit) for hit in hits) if m is not None]
        if not any(m.match in ("exact", "normalised", "near") for m in found):
            found += self._translated(quote, query, hits)
        found = _best_first(found)[:top_k]
        timings = {
            "retrieve": (retrieved - started) * 1000,
            "match": (time.perf_counter() - retrieved) * 1000,
        }
        timings["total"] = timings["retrieve"] + timings["match"]
        return CiteResult(quote, tuple(found), {k: round(v, 3) for k, v in timings.items()})

    def _text(self, hit: Hit) -> str:
        return self.engine.index.documents[hit.chunk.doc_id].text

    def _in(self, quote: str, hit: Hit) -> CiteMatch | None:
        """The quote in one passage: exact, normalised or near, or None."""
        chunk, text = hit.chunk, self._text(hit)
        passage = text[chunk.char_start : chunk.char_end]
        stripped = quote.strip()
        at = passage.find(stripped)
        if at >= 0:
            start = chunk.char_start + at
            return CiteMatch(chunk.doc_id, start, start + len(stripped), stripped, "exact", 1.0, ())
        asked, source = normalise(quote), normalise(passage)
        if not asked.text:
            return None
        at = source.text.find(asked.text)
        if at >= 0:
            start, end = source.span(at, at + len(asked.text))
            return self._match(chunk.doc_id, chunk.char_start, text, start, end, "normalised", 1.0)
        aligned = fuzz.partial_ratio_alignment(asked.text, source.text)
        if aligned is None or aligned.dest_end <= aligned.dest_start:
            return None
        similarity = aligned.score / 100
        if similarity < self.tuning.near:
            return None
        start, end = source.span(aligned.dest_start, aligned.dest_end)
        start, end = _whole_words(passage, start, end)
        differences = _differences(quote, asked, passage, start, end, chunk.char_start)
        return self._match(
            chunk.doc_id, chunk.char_start, text, start, end, "near", similarity, differences
        )

    @staticmethod
    def _match(
        doc_id: str,
        offset: int,
        text: str,
        start: int,
        end: int,
        kind: str,
        similarity: float,
        differences: tuple[Difference, ...] = (),
    ) -> CiteMatch:
        start, end = offset + start, offset + end
        return CiteMatch(
            doc_id, start, end, text[start:end], kind, round(similarity, 4), differences
        )

    def _translated(self, quote: str, query: Query, hits: list[Hit]) -> list[CiteMatch]:
        """Sentences in another script than the quote's, as close as the multilingual
        encoders find them (``translated``)."""
        language = query.language
        other = [h for h in hits if not shares_script(h.chunk.language, language)]
        if not other:
            return []
        ranked = self.engine.extractor.rank_sentences(query, other, self.tuning.closeness)
        found = []
        for scored in ranked[:3]:
            if scored.similarity < self.tuning.translated:
                break
            text = self._text(Hit(scored.chunk, 0.0, 0))
            found.append(
                CiteMatch(
                    scored.chunk.doc_id, scored.start, scored.end, text[scored.start : scored.end],
                    "translated", round(scored.similarity, 4), (),
                )
            )  # fmt: skip
        return found


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


def _differences(
    quote: str, asked: Normalised, passage: str, start: int, end: int, offset: int
) -> tuple[Difference, ...]:
    """What the quote inserts, deletes or changes against ``passage[start:end]``, word by
    word (folded), each with offsets in the quote and in the document."""
    mine = tokens(quote)
    theirs = [(w, a + start, b + start) for w, a, b in tokens(passage[start:end])]
    fold = lambda word: normalise(word).text  # noqa: E731
    ops = Levenshtein.opcodes([fold(w) for w, _, _ in mine], [fold(w) for w, _, _ in theirs])
    found = []
    for op in ops:
        if op.tag == "equal":
            continue
        q = mine[op.src_start : op.src_end]
        s = theirs[op.dest_start : op.dest_end]
        q_text = quote[q[0][1] : q[-1][2]] if q else ""
        s_text = passage[s[0][1] : s[-1][2]] if s else ""
        q_at = (q[0][1], q[-1][2]) if q else (_edge(mine, op.src_start), _edge(mine, op.src_start))
        s_at = (s[0][1], s[-1][2]) if s else (_edge(theirs, op.dest_start),) * 2
        found.append(
            Difference(
                {"insert": "delete", "delete": "insert"}.get(op.tag, op.tag),
                q_text, q_at[0], q_at[1], s_text, offset + s_at[0], offset + s_at[1],
                _kind(q_text, s_text),
            )
        )  # fmt: skip
    return tuple(found)


def _edge(words: list[tuple[str, int, int]], index: int) -> int:
    if not words:
        return 0
    return words[index][1] if index < len(words) else words[-1][2]


def _kind(quote_text: str, source_text: str) -> str | None:
    """What kind of value differs, where the claim check's parsers can tell."""
    both = f"{quote_text} {source_text}"
    words = {normalise(w).text for w, _, _ in tokens(both)}
    if words & _NEGATIONS:
        return "negation"
    if words & _QUALIFIERS:
        return "qualifier"
    if dates(quote_text) or dates(source_text):
        return "date"
    if numbers(quote_text) or numbers(source_text) or ordinals(quote_text) or ordinals(source_text):
        return "number"
    if any(w[:1].isupper() for w in re.findall(r"[A-Za-z][\w-]*", both)):
        return "name"
    return None
