"""``/cite``'s first stage at scale: BM25's passages, then the quote matched in them.

A quote in the source's own words (exact, re-punctuated, with a word changed) is found in
BM25's passages and never reaches the encoders (``service.cite.matcher``). This is that
stage over a synthetic corpus of N chunks: ``scale_quotes`` draws quotes from the chunks (a
whole sentence verbatim, and the same sentence with one word or character changed);
``cite_probe`` runs, for each, ``LexicalIndex.search`` at the retriever depth and the
service's own first-stage matcher (``service.cite.matcher.in_passages``: full matching in
the first ``CiteTuning.passages_read`` passages, letter for letter below; then, when only
near copies were found, ``copies_to_read``: the passages holding the words the closest
copy lacks), timed together, and says whether the quote was found with the right kind.
The second stage (a translated quote, or one found nowhere) adds the query encoders and
the dense searches, which the same scale row measures on their own.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.cite.matcher import Passage, copies_to_read, in_passages, with_differences
from service.lab.stats import p50_p99
from service.store.bm25 import LexicalIndex

__all__ = ["ScaleQuote", "cite_probe", "scale_quotes"]

_SENTENCE = re.compile(r"[^。！？!?]+?(?:[。！？!?]|\.(?=\s|$))")
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"\b[A-Za-z]{4,}\b")


@dataclass(frozen=True)
class ScaleQuote:
    kind: str  # exact or near
    quote: str
    row: int  # the chunk it was drawn from


def _changed(sentence: str, rng: random.Random) -> str | None:
    """``sentence`` with one word (a Han character in Chinese) replaced, or None."""
    if _HAN.search(sentence):
        spots = [m.start() for m in _HAN.finditer(sentence)]
        at = rng.choice(spots[1:-1] or spots)
        other = "国" if sentence[at] != "国" else "家"
        return sentence[:at] + other + sentence[at + 1 :]
    words = list(_LATIN_WORD.finditer(sentence))
    if not words:
        return None
    word = rng.choice(words)
    return sentence[: word.start()] + "several" + sentence[word.end() :]


def scale_quotes(texts: Sequence[str], count: int, seed: int) -> list[ScaleQuote]:
    """``count`` quotes of each kind from random chunks of ``texts``: a sentence of at least
    30 characters verbatim, and the same with one word changed."""
    rng = random.Random(f"quotes-{seed}")
    quotes: list[ScaleQuote] = []
    tries = 0
    while len(quotes) < 2 * count and tries < 20 * count:
        tries += 1
        row = rng.randrange(len(texts))
        sentences = [s.strip() for s in _SENTENCE.findall(texts[row]) if len(s.strip()) >= 30]
        if not sentences:
            continue
        sentence = rng.choice(sentences)
        changed = _changed(sentence, rng)
        if changed is None:
            continue
        quotes += [ScaleQuote("exact", sentence, row), ScaleQuote("near", changed, row)]
    return quotes


def _passage(row: int, texts: Sequence[str]) -> Passage:
    return str(row), texts[row], 0, len(texts[row])


def cite_probe(
    lexical: LexicalIndex,
    texts: Sequence[str],
    quotes: Sequence[ScaleQuote],
    passages: int,
    depth: int,
    near: float,
) -> dict[str, Any]:
    """Each quote searched (``lexical``: BM25 over ``texts``) ``depth`` deep and matched as
    ``/cite``'s first stage matches it (``in_passages``: fully in the first ``passages``,
    letter for letter below): p50/p99 milliseconds per kind and overall, and the share found with
    the kind it was written as (the best match exact for a verbatim quote, near for a
    changed one)."""
    times: dict[str, list[float]] = {}
    found: dict[str, int] = {}
    for quote in quotes:
        started = time.perf_counter()
        rows = [row for row, _ in lexical.search(quote.quote, depth)]
        matches = in_passages(quote.quote, [_passage(r, texts) for r in rows], passages, near)
        copies = copies_to_read(lexical, quote.quote, matches, depth)
        matches += in_passages(quote.quote, [_passage(r, texts) for r in copies], 0, near)
        elapsed = (time.perf_counter() - started) * 1000
        times.setdefault(quote.kind, []).append(elapsed)
        best = min(matches, key=lambda m: (m.match != "exact", -m.similarity), default=None)
        if best is not None and best.match == "near":  # listed, as /cite lists its matches
            best = with_differences(quote.quote, texts[int(best.doc_id)], best)
        found[quote.kind] = found.get(quote.kind, 0) + (
            best is not None and best.match == quote.kind
        )
    every = [ms for values in times.values() for ms in values]
    result: dict[str, Any] = {"quotes": len(quotes), "passages": passages, "depth": depth}
    if every:
        result |= dict(
            zip(("p50_ms", "p99_ms"), map(lambda v: round(v, 3), p50_p99(every)), strict=True)
        )
    for kind, values in times.items():
        p50, p99 = p50_p99(values)
        result[kind] = {
            "quotes": len(values),
            "p50_ms": round(p50, 3),
            "p99_ms": round(p99, 3),
            "found": round(found[kind] / len(values), 4),
        }
    return result
