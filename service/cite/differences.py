"""What a quote changes against its source, listed as a reader would name it.

The quote and the source window are aligned token by token (``normalise.tokens``: words,
and each Han character alone), folded, by ``rapidfuzz``'s Levenshtein opcodes. A change is
then widened to the units a reader names: a whole Chinese word (jieba's segmentation, so
民眾 against 國民, not 眾 against 國) and a whole value as the claim check reads it (a date,
"May 28", or a number with its qualifier, "fewer than 70"), on both sides, carried across
the alignment; neighbouring changes merge ("took place" against "ensued"). Each difference
is typed where the claim check's parsers can type it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein, Opcodes

from service.cite.normalise import normalise, tokens
from service.text.words import cut
from service.verify.facts import dates, numbers, ordinals

__all__ = ["Difference", "differences", "kind_of", "unstated_values"]

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
_HAN_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_DIGITS = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)*(?![\d])")

Token = tuple[str, int, int]


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


def _units(text: str) -> list[tuple[int, int]]:
    """The spans a change inside them widens to: jieba's words of each Han run (folded
    to Simplified, character for character) and every date, number (with its qualifier)
    and rank of ``text``."""
    folded = normalise(text)
    spans = []
    for run in _HAN_RUN.finditer(folded.text):
        at = run.start()
        for word in cut(run.group()):
            if len(word) > 1:
                spans.append(folded.span(at, at + len(word)))
            at += len(word)
    spans += [(f.start, f.end) for f in dates(text) + ordinals(text)]
    spans += [(f.start - f.lead, f.end) for f in numbers(text)]
    return spans


def _widen(marked: list[bool], words: list[Token], units: list[tuple[int, int]]) -> bool:
    """Mark every token of a unit that holds a marked token; whether any mark was added."""
    added = False
    for start, end in units:
        inside = [n for n, (_, a, b) in enumerate(words) if a < end and b > start]
        if any(marked[n] for n in inside) and not all(marked[n] for n in inside):
            for n in inside:
                marked[n] = True
            added = True
    return added


def _regions(
    ops: Opcodes, q_marked: list[bool], s_marked: list[bool]
) -> list[tuple[int, int, int, int]]:
    """Token ranges (quote start, end, source start, end) of the changes: every non-equal
    block and every marked pair of an equal block, neighbours merged."""
    columns: list[tuple[int, int, int, int, bool]] = []
    for op in ops:
        if op.tag == "equal":
            for i, j in zip(
                range(op.src_start, op.src_end), range(op.dest_start, op.dest_end), strict=True
            ):
                columns.append((i, i + 1, j, j + 1, q_marked[i] or s_marked[j]))
        else:
            columns.append((op.src_start, op.src_end, op.dest_start, op.dest_end, True))
    regions: list[list[int]] = []
    previous = False
    for qa, qb, sa, sb, changed in columns:
        if changed and previous:
            regions[-1][1], regions[-1][3] = qb, sb
        elif changed:
            regions.append([qa, qb, sa, sb])
        previous = changed
    return [(a, b, c, d) for a, b, c, d in regions]


def differences(
    quote: str, passage: str, start: int, end: int, offset: int
) -> tuple[Difference, ...]:
    """What ``quote`` inserts, deletes or changes against ``passage[start:end]``, each with
    offsets in the quote and in the document (``offset``: the passage's in its document)."""
    mine = tokens(quote)
    window = passage[start:end]
    theirs = [(w, a + start, b + start) for w, a, b in tokens(window)]
    fold = lambda word: normalise(word).text  # noqa: E731
    ops = Levenshtein.opcodes([fold(w) for w, _, _ in mine], [fold(w) for w, _, _ in theirs])
    q_marked, s_marked = [False] * len(mine), [False] * len(theirs)
    for op in ops:
        if op.tag != "equal":
            q_marked[op.src_start : op.src_end] = [True] * (op.src_end - op.src_start)
            s_marked[op.dest_start : op.dest_end] = [True] * (op.dest_end - op.dest_start)
    q_units = _units(quote)
    s_units = [(a + start, b + start) for a, b in _units(window)]
    pairs = [
        (i, j)
        for op in ops
        if op.tag == "equal"
        for i, j in zip(
            range(op.src_start, op.src_end), range(op.dest_start, op.dest_end), strict=True
        )
    ]
    while True:  # widen on each side and carry the marks across the alignment until stable
        added = _widen(q_marked, mine, q_units) | _widen(s_marked, theirs, s_units)
        for i, j in pairs:
            if q_marked[i] != s_marked[j]:
                q_marked[i] = s_marked[j] = True
                added = True
        if not added:
            break
    return tuple(
        _difference(quote, passage, mine, theirs, region, offset)
        for region in _regions(ops, q_marked, s_marked)
    )


def _difference(
    quote: str,
    passage: str,
    mine: list[Token],
    theirs: list[Token],
    region: tuple[int, int, int, int],
    offset: int,
) -> Difference:
    qa, qb, sa, sb = region
    q, s = mine[qa:qb], theirs[sa:sb]
    q_text = quote[q[0][1] : q[-1][2]] if q else ""
    s_text = passage[s[0][1] : s[-1][2]] if s else ""
    q_at = (q[0][1], q[-1][2]) if q else (_edge(mine, qa),) * 2
    s_at = (s[0][1], s[-1][2]) if s else (_edge(theirs, sa),) * 2
    operation = "replace" if q and s else "insert" if q else "delete"
    return Difference(
        operation, q_text, q_at[0], q_at[1], s_text, offset + s_at[0], offset + s_at[1],
        kind_of(q_text, s_text),
    )  # fmt: skip


def _edge(words: list[Token], index: int) -> int:
    if not words:
        return 0
    return words[index][1] if index < len(words) else words[-1][2]


def kind_of(quote_text: str, source_text: str) -> str | None:
    """What kind of value differs, where the claim check's parsers can tell: a negation or
    qualifier word one side has and the other lacks, a date, a number or rank, a name."""
    quoted, sourced = (
        {normalise(w).text for w, _, _ in tokens(t)} for t in (quote_text, source_text)
    )
    changed = quoted ^ sourced
    if changed & _NEGATIONS:
        return "negation"
    if changed & _QUALIFIERS:
        return "qualifier"
    if dates(quote_text) or dates(source_text):
        return "date"
    if numbers(quote_text) or numbers(source_text) or ordinals(quote_text) or ordinals(source_text):
        return "number"
    both = f"{quote_text} {source_text}"
    if any(w[:1].isupper() for w in re.findall(r"[A-Za-z][\w-]*", both)):
        return "name"
    return None


def _value(digits: str) -> float:
    return float(digits.replace(",", ""))


def unstated_values(quote: str, sentence: str, offset: int) -> tuple[list[Difference], int]:
    """The numbers ``quote`` writes in digits that ``sentence`` (another language's, at
    ``offset`` in its document) does not state, as differences, and how many digit numbers
    the quote writes. Digits survive translation (2008 and 2008年, 41 and forty-one or 41个,
    9月 and September); numbers written as words are left out: the other language may
    write them as a word the parsers do not count (三国, 两国, 一次). A missing value is
    paired, in order, with a digit number of the sentence the quote does not state (a
    changed value)."""
    written = list(_DIGITS.finditer(quote))
    stated = {_value(m.group()) for m in _DIGITS.finditer(sentence)}
    stated |= {
        float(v) for f in numbers(sentence) + ordinals(sentence) + dates(sentence) for v in f.value
        if v is not None
    }  # fmt: skip
    asked = {_value(m.group()) for m in written}
    others = [m for m in _DIGITS.finditer(sentence) if _value(m.group()) not in asked]
    found = []
    for match in written:
        if _value(match.group()) in stated:
            continue
        other = others.pop(0) if others else None
        source = (other.start(), other.end()) if other else (0, 0)
        kind = "date" if any(f.start <= match.start() < f.end for f in dates(quote)) else "number"
        found.append(
            Difference(
                "replace" if other else "insert", match.group(), match.start(), match.end(),
                other.group() if other else "", offset + source[0], offset + source[1], kind,
            )
        )  # fmt: skip
    return found, len(written)
