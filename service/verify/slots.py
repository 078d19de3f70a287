"""Slots: the checkable values of a claim or an evidence sentence, and how they align.

A *slot* is a value a claim commits to: a number (with its unit and qualifier), a date, a
rank, or a name of a person, an organisation or a place. Numbers, dates and ranks are read
by the parsers of ``service.verify.facts``; names are the typed spans of the English
pipeline and jieba (``service.ingest.annotate``): the evidence sentence's spans come from
the build, the claim's are tagged the same way when it is checked. So a claim and its
evidence are read by the same components, in both languages.

Each slot of the claim aligns with one evidence sentence as

- ``matched``: the sentence states it (a name in the other script through CC-CEDICT, in
  either direction: 東京 glosses as "Tokyo", 欧渤芊 reads as "Boqian");
- ``context``: only the sentence before or the headline names it (it still ties the
  sentence to the claim's event);
- ``mismatch``: the sentence states a value of the same kind in its place (five countries,
  not seven; 首爾, not 東京; the eighth, not the ninth);
- ``unknown``: the sentence says nothing of it;
- ``unverifiable``: a name in one script that the dictionary cannot carry into the
  sentence's script, and that the sentence cannot be shown to name.

Names that most passages mention ("China", "中日韩") tie a sentence to no event in
particular, and are not slots.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from service.answer.analysis import chinese_kind
from service.records import FactKind
from service.text.bridge import cedict, chinese_words
from service.text.language import CJK_RE, Script, fold, scripts_of
from service.text.tokenize import content_terms, tokenize
from service.verify.facts import (
    Fact,
    dates,
    dates_agree,
    numbers,
    ordinals,
    same_number,
)

__all__ = ["NAME_KINDS", "Aligned", "Lexicon", "Slot", "align", "slots_of"]

# The annotation labels whose spans are names a claim commits to, by the kind they check.
NAME_KINDS: Mapping[str, FactKind] = {
    "PERSON": "person",
    "ORG": "organization",
    "PLACE": "place",
    "FAC": "place",
}
# A name in at least this share of the documents names no event in particular.
COMMON_SHARE = 0.8
# A name in the other script is stated when this share of its words carries into the
# text's terms, or a name of the text glosses into this share of its terms.
SHARE_STATED = 0.5


@dataclass(frozen=True)
class Slot:
    """A value of a claim or a sentence: a parsed fact, or a typed name."""

    fact: Fact  # kind, text and offsets in its text; value for numbers, dates, ranks

    @property
    def kind(self) -> FactKind:
        return self.fact.kind

    @property
    def named(self) -> bool:
        return self.fact.kind in ("person", "organization", "place")


class Lexicon:
    """What slot alignment asks of the corpus: which documents hold a term, and whether a
    term of the other language occurs (CC-CEDICT's translations are kept to the corpus's
    terms).

    Args:
        lexical: the generation's BM25 index (``rows``, ``knows``).
        chunks: the generation's chunk table (each row's document and language).
    """

    def __init__(self, lexical: Any, chunks: Any) -> None:
        self.lexical = lexical
        self.documents_of_rows = chunks.documents_of_rows
        codes, languages = chunks.languages_of_rows
        self.written: dict[str, frozenset[int]] = {}  # script -> documents with text in it
        for script in ("han", "latin"):
            wanted = [i for i, language in enumerate(languages) if script in scripts_of(language)]
            rows = np.isin(codes, wanted)
            self.written[script] = frozenset(np.unique(self.documents_of_rows[rows]).tolist())
        self._holding: dict[str, frozenset[int]] = {}

    def knows(self, term: str) -> bool:
        return bool(self.lexical.knows(term))

    def holding(self, term: str) -> frozenset[int]:
        """The documents (numbers) with a chunk holding ``term``."""
        found = self._holding.get(term)
        if found is None:
            rows = self.lexical.rows(term)
            found = frozenset(np.unique(self.documents_of_rows[rows]).tolist())
            if len(self._holding) < _HOLDING_KEPT:
                self._holding[term] = found
        return found

    def common(self, name: str) -> bool:
        """The name is in so many of the documents written in its script, or its
        translation in so many of the others (``COMMON_SHARE``), that it ties a sentence
        to no event in particular ("China", "中国", "Japan")."""
        terms = set(tokenize(name))
        if not terms:
            return False
        script = _script(name)
        other = "latin" if script == "han" else "han"
        held = frozenset.intersection(*(self.holding(t) for t in terms))
        carried = self._carried_holding(name)
        return any(
            documents and len(found & documents) >= COMMON_SHARE * len(documents)
            for found, documents in ((held, self.written[script]), (carried, self.written[other]))
        )

    def _carried_holding(self, name: str) -> frozenset[int]:
        """The documents that hold a strong translation of each word of ``name``."""
        held: frozenset[int] | None = None
        for word in _words(name):
            strong = [t for t, w in self.carried(word).items() if w >= _CARRIED_TERM]
            if strong:
                found = frozenset().union(*(self.holding(t) for t in strong))
                held = found if held is None else held & found
        return held or frozenset()

    @staticmethod
    def listed(name: str) -> bool:
        """The dictionary knows ``name`` (whether or not the corpus uses it): a Chinese
        name it translates, an English one its definitions use. A place it knows is a
        place it can tell from another."""
        if _script(name) == "han":
            return bool(cedict().carried(name, "latin", _anything))
        return cedict().defines(name)

    def common_term(self, term: str, script: str) -> bool:
        """``term`` is in most documents written in ``script``."""
        documents = self.written[script]
        return bool(documents) and len(self.holding(term) & documents) >= COMMON_SHARE * len(
            documents
        )

    def carried(self, name: str) -> Mapping[str, float]:
        """``name``'s terms in the other script, weighted (``Dictionary.carried``)."""
        target: Script = "latin" if _script(name) == "han" else "han"
        return cedict().carried(name, target, self.knows)


_HOLDING_KEPT = 65536
_CARRIED_TERM = 0.3  # a translation this strong stands for the name


def _anything(term: str) -> bool:
    return True


def _script(text: str) -> Script:
    return "han" if CJK_RE.search(text) else "latin"


def slots_of(
    text: str, spans: Iterable[tuple[int, int, str]], lexicon: Lexicon, *, claim: bool = False
) -> list[Slot]:
    """The slots of ``text`` given its typed spans ((start, end, label), offsets in
    ``text``). In a claim, a year inside a name ("NEAR International Forum 2024") is part
    of the name, not a date of its own."""
    spans = list(spans)
    counts = [(start, end) for start, end, label in spans if label in _COUNTS]
    nouns = [(start, end) for start, end, label in spans if label == "NOUN"]
    names = []
    for start, end, label in spans:
        if label not in NAME_KINDS:
            continue
        kind = NAME_KINDS[label]
        if CJK_RE.match(text[start]):
            start, end, kind = _noun_run(text, start, end, kind, nouns, counts)
        end -= len(_POSSESSIVE.search(text[start:end]).group())  # type: ignore[union-attr]
        if end <= start or _overlaps(start, end, counts):
            continue  # a span that is also a count (三國, 第九次) is the count
        if not lexicon.common(text[start:end]):
            names.append(Fact(kind, text[start:end], start, end))
    names = _distinct(names)
    inside = [(n.start, n.end) for n in names] if claim else []
    found_dates = [d for d in dates(text) if not _overlaps(d.start, d.start + 1, inside)]
    counts_stated = [n for n in numbers(text) if not _REFERRING.search(text[: n.start])]
    facts = counts_stated + found_dates + ordinals(text) + names
    return [Slot(f) for f in facts]


# "the three countries", "these two forums": a number that refers to what the text has
# named, not a count it states
_REFERRING = re.compile(r"\b(?:the|these|those|both|all)\s+$", re.I)
_COUNTS = frozenset({"NUMBER", "ORDINAL", "DATE", "PERCENT", "MONEY", "QUANTITY"})
_POSSESSIVE = re.compile(r"(?:['’]s?)?$")


def _distinct(names: list[Fact]) -> list[Fact]:
    """One slot per extent and per written name (the first)."""
    seen: set[tuple[int, int] | str] = set()
    kept = []
    for name in names:
        if (name.start, name.end) not in seen and fold(name.text) not in seen:
            seen.update({(name.start, name.end), fold(name.text)})
            kept.append(name)
    return kept


_HEAD_KINDS: Mapping[str, FactKind] = {
    "person": "person",
    "organisation": "organization",
    "place": "place",
}


def _noun_run(
    text: str,
    start: int,
    end: int,
    kind: FactKind,
    nouns: list[tuple[int, int]],
    counts: list[tuple[int, int]],
) -> tuple[int, int, FactKind]:
    """A Chinese name as the longest run of nouns holding it, when the run's head (its
    last word) is a person, organisation or place by its dictionary senses: jieba cuts
    东北亚地区地方政府联合会 into words and tags 东北亚地区 a place, but the name is the
    run, an organisation (联合会). Otherwise the span as tagged."""
    holding = [(a, b) for a, b in nouns if a <= start and end <= b and not _overlaps(a, b, counts)]
    if not holding:
        return start, end, kind
    first, last = max(holding, key=lambda run: run[1] - run[0])
    words = chinese_words(text[first:last])
    head = _HEAD_KINDS.get(chinese_kind(words[-1]) or "") if words else None
    if head is None or (first, last) == (start, end):
        return start, end, kind
    return first, last, head


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < b and a < end for a, b in spans)


@dataclass(frozen=True)
class Aligned:
    """One claim slot against one sentence: its status and, for a mismatch, the
    sentence's value (offsets in the sentence)."""

    slot: Slot
    status: str  # matched, context, mismatch, unknown, unverifiable
    found: Fact | None = None  # the sentence's value: the differing one, or the same one


def align(
    claim: str,
    claim_slots: Sequence[Slot],
    sentence: str,
    sentence_slots: Sequence[Slot],
    context: str,
    lexicon: Lexicon,
) -> list[Aligned]:
    """Each of the claim's slots against ``sentence`` (``context``: the sentence before
    and the headline)."""
    found = _Text(sentence, lexicon)
    around = _Text(context, lexicon)
    asked = _Text(claim, lexicon)
    named = [s.fact for s in claim_slots if s.named]
    aligned = []
    context_dates = _dates(context)
    sentence_names = [s.fact for s in sentence_slots if s.named]
    for slot in claim_slots:
        same_kind = [s.fact for s in sentence_slots if s.kind == slot.kind]
        ranks = [s.fact for s in sentence_slots if s.kind in ("number", "ordinal")]
        same = next((f for f in ranks if _same_value(slot.fact, f)), None)
        if slot.kind in ("number", "ordinal") and same is not None:
            aligned.append(Aligned(slot, "matched", same))  # 25週年 is the 25th anniversary
        elif slot.kind == "number":
            aligned.append(_number(slot, same_kind))
        elif slot.kind == "date":
            dated = _date(slot, same_kind)
            if dated.status == "unknown" and _date(slot, context_dates).status == "matched":
                dated = Aligned(slot, "context")  # 當年5月 after a sentence dated 2011
            aligned.append(dated)
        elif slot.kind == "ordinal":
            aligned.append(_ordinal(slot, same_kind))
        else:
            aligned.append(_name(slot, same_kind, sentence_names, (found, around, asked), named))
    return aligned


@lru_cache(maxsize=4096)
def _dates(text: str) -> list[Fact]:
    """``dates`` of a context (the same headlines and sentences come back); read-only."""
    return dates(text)


def _same_value(claim: Fact, evidence: Fact) -> bool:
    """A count and a rank of the same value, unqualified (the 25th and 25 years)."""
    if claim.kind == evidence.kind or claim.qualifier or evidence.qualifier:
        return False
    return claim.value == evidence.value


def _number(slot: Slot, found: list[Fact]) -> Aligned:
    fact = slot.fact
    comparable = [f for f in found if fact.unit and f.unit and fact.unit & f.unit]
    same = next((f for f in comparable if same_number(fact, f)), None)
    if same is None and not fact.unit:
        same = next((f for f in found if same_number(fact, f)), None)
    if same is not None:
        return Aligned(slot, "matched", same)
    if comparable:
        return Aligned(slot, "mismatch", comparable[0])
    return Aligned(slot, "unknown")


def _date(slot: Slot, found: list[Fact]) -> Aligned:
    verdicts = [(dates_agree(slot.fact, f), f) for f in found]
    same = next((f for agree, f in verdicts if agree is True and _covers(f, slot.fact)), None)
    if same is not None:
        return Aligned(slot, "matched", same)
    differing = next((f for agree, f in verdicts if agree is False), None)
    return Aligned(slot, "unknown") if differing is None else Aligned(slot, "mismatch", differing)


def _covers(evidence: Fact, claim: Fact) -> bool:
    """The evidence's date states every part the claim's does (a month is no day)."""
    stated = all(b is not None for a, b in zip(claim.value, evidence.value, strict=True) if a)
    return stated and (not claim.unit or bool(evidence.unit))


def _ordinal(slot: Slot, found: list[Fact]) -> Aligned:
    same = next((f for f in found if f.value == slot.fact.value), None)
    if same is not None:
        return Aligned(slot, "matched", same)
    return Aligned(slot, "mismatch", found[0]) if found else Aligned(slot, "unknown")


class _Text:
    """A text as name matching reads it: folded, its index terms and its scripts."""

    def __init__(self, text: str, lexicon: Lexicon) -> None:
        self.folded = fold(text)
        self.terms = frozenset(tokenize(text))
        self.scripts = {"han"} if CJK_RE.search(text) else set()
        if re.search(r"[A-Za-z]", text):
            self.scripts.add("latin")
        self.lexicon = lexicon

    def states(self, name: str, spans: Sequence[Fact] = ()) -> bool:
        """The text names ``name``: as written (folded), or through the dictionary. An
        English name is carried word by word into Chinese headwords (most of its words
        must be found); a name of the text (``spans``) is glossed back into the other
        script and must hold most of ``name``'s terms (東京 glosses as "Tokyo", 欧渤芊
        reads as "Boqian"). A Chinese name is stated by a gloss the text holds that most
        documents do not ("Tokyo" of 東京's "Tokyo, capital of Japan", not "Japan")."""
        if not name.strip():
            return False
        if fold(name) in self.folded:
            return True
        if _script(name) == "latin":
            carried = [self.lexicon.carried(word) for word in _words(name)]
            carried = [terms for terms in carried if terms]
            stated = sum(bool(self.terms.intersection(terms)) for terms in carried)
            if carried and stated >= SHARE_STATED * len(carried):
                return True
        elif "latin" in self.scripts:  # a gloss of the name the text uses, not a common one
            glossed = self.terms.intersection(self.lexicon.carried(name))
            if any(not self.lexicon.common_term(t, "latin") for t in glossed):
                return True
        wanted = content_terms(name) or frozenset(tokenize(name))
        for span in spans:
            if _script(span.text) == _script(name):
                continue
            glossed = frozenset(self.lexicon.carried(span.text))
            if wanted and len(wanted & glossed) >= SHARE_STATED * len(wanted):
                return True
        return False


def _words(name: str) -> list[str]:
    """The words of a name that the dictionary carries one by one: jieba's words of its
    Han runs, and its Latin-script words."""
    return chinese_words(name) + re.findall(r"[A-Za-z][A-Za-z'’-]*", name)


def _name(
    slot: Slot,
    same_kind: list[Fact],
    sentence_names: list[Fact],
    texts: tuple[_Text, _Text, _Text],
    claim_names: list[Fact],
) -> Aligned:
    """A name of the claim against the sentence (``texts``: the sentence, its context and
    the claim)."""
    found, around, asked = texts
    name = slot.fact.text
    if found.states(name, sentence_names):
        return Aligned(slot, "matched")
    if around.states(name):
        return Aligned(slot, "context")
    others = [f for f in same_kind if not asked.states(f.text, claim_names)]
    if _script(name) in found.scripts:
        return Aligned(slot, "mismatch", others[0]) if others else Aligned(slot, "unknown")
    # across scripts a person or an organisation the dictionary cannot show is unknowable;
    # a place it glosses (首爾 is "Seoul") can be shown to be another one
    glossed = [f for f in others if slot.kind == "place" and found.lexicon.listed(f.text)]
    return Aligned(slot, "mismatch", glossed[0]) if glossed else Aligned(slot, "unverifiable")
