"""Verify: does the corpus support a claim, contradict it, or say nothing about it?

1. The claim is searched like a question; the sentences of the top passages are ranked by
   how closely they match it (``Extractor.rank_sentences``: similarity and shared terms).
2. The facts of the claim and of each close sentence are compared (``service.verify.facts``):
   numbers with their units and qualifiers, dates, and names within one script. A fact the
   sentence states the same way *matches*; a same-kind fact it states differently
   (five countries, not seven) is a *mismatch*.
3. A close sentence *contradicts* when it has a mismatch and also matches something else of
   the claim, or shares most of its words (it is about the same event); it *supports* when
   every fact it can check matches and it shares the claim's content; otherwise it is
   *related*.
4. The verdict follows the decisive sentence that matches most of the claim's facts (ties
   to the closer sentence): supported or contradicted. No decisive sentence: not_found.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from service.answer.extractor import ScoredSentence
from service.engine import Engine, clean_question
from service.records import Citation, ClaimCheck, Evidence, Mismatch, Stance, Verdict
from service.text.language import detect_language, fold, is_han
from service.tuned import ClaimTuning
from service.verify.facts import (
    Fact,
    dates,
    dates_agree,
    mentions,
    names,
    numbers,
    same_number,
    translatable,
)

__all__ = ["ClaimCheck", "Evidence", "Match", "Mismatch", "Reading", "Verifier"]


def _script(text: str) -> str:
    """``han`` or ``latin``: which names of the claim the sentence can show as written."""
    return "han" if is_han(detect_language(text)) else "latin"


_COUNTRIES = frozenset(
    fold(name)
    for name in (
        "China", "Japan", "Korea", "South Korea", "Republic of Korea", "ROK", "PRC", "DPRK",
        "Mongolia", "Russia", "United States", "US", "中国", "日本", "韩国", "韓國", "蒙古",
        "俄罗斯", "美国", "China-Japan-ROK", "China-Japan-Korea", "中日韩", "中日韓",
    )
)  # fmt: skip


def _other_edition(name: str, text: str) -> bool:
    """The claim names a yearly event ("NEAR International Forum 2024") that ``text``
    names for another year: a sentence about another edition says nothing of this one."""
    match = re.fullmatch(r"(.+?)\s+((?:19|20)\d\d)", name)
    if not match or mentions(text, name):
        return False
    return re.search(rf"{re.escape(match.group(1))}\s+(?:19|20)\d\d", text) is not None


def _misbound(claim_facts: list[Fact], found: list[Fact], text: str) -> list[Mismatch]:
    """A claim that ties a person to an organisation ("LEE Hee-sup ... of WeGo") against a
    sentence that names both but ties the person to another one: in "P, secretary-general
    of X, ..., Q, WeGo secretary-general" P's organisation is X."""
    people = sorted((f for f in found if f.kind == "person" and _personal(f.text)),
                    key=lambda f: f.start)  # fmt: skip
    mismatches = []
    claim_people = [f for f in claim_facts if f.kind == "person" and mentions(text, f.text)]
    claim_orgs = [f for f in claim_facts if f.kind == "organization" and mentions(text, f.text)]
    for person in claim_people:
        mine = next((p for p in people if mentions(p.text, person.text)), None)
        if mine is None:
            continue
        following = [p.start for p in people if p.start > mine.start]
        segment = (mine.end, following[0] if following else len(text))
        own_orgs = [
            f for f in found
            if f.kind == "organization" and segment[0] <= f.start < segment[1]
        ]  # fmt: skip
        for org in claim_orgs:
            if own_orgs and not any(mentions(o.text, org.text) for o in own_orgs):
                other = own_orgs[0]
                mismatches.append(
                    Mismatch("organization", org.text, other.text, other.start, other.end)
                )
    return mismatches


def _personal(name: str) -> bool:
    """A person's name ("LIM Byung-jin", "Ou Boqian"), not a title ("President of ...")."""
    words = name.split()
    return 1 < len(words) <= 4 and not any(w.lower() in ("of", "the", "and", "for") for w in words)


@dataclass(frozen=True)
class Match:
    """What one close sentence states of a claim's facts, before any threshold."""

    scored: ScoredSentence
    text: str
    matched: int = 0  # facts it states the same way
    matched_required: int = 0  # ...of them numbers and dates; -1: a place left unstated
    unknown: int = 0  # facts it cannot show either way
    mismatches: tuple[Mismatch, ...] = ()
    in_context: int = 0  # names stated only in the sentence before or the headline
    other_edition: bool = False  # it is about another year's edition of the claim's event


@dataclass(frozen=True)
class Reading:
    """A claim, its facts and its matched sentences: ``Verifier.read``'s work, which
    ``Verifier.judge`` turns into a verdict under a set of constants."""

    claim: str
    facts: tuple[Fact, ...]
    matches: tuple[Match, ...]
    started: float  # perf_counter when the check began
    timings_ms: dict[str, float]


def _stance(match: Match, facts: Sequence[Fact], tuning: ClaimTuning) -> Stance:
    """supports, contradicts or related (see the module's description)."""
    scored = match.scored
    required = sum(f.kind in ("number", "date") for f in facts)
    if scored.score < tuning.min_closeness:
        return "related"
    if match.mismatches:
        same_event = match.matched or match.in_context or scored.coverage >= 0.5
        return "contradicts" if same_event else "related"
    if not facts:
        return "supports" if scored.score >= tuning.min_closeness_without_facts else "related"
    if match.matched_required < required:
        return "related"  # a number, date or place it does not state the same way
    if not required and (
        scored.score < tuning.min_closeness_unverified
        or (scored.support is not None and scored.support < tuning.min_predicate_support)
    ):
        return "related"  # names alone do not pin down what happened: the words do
    if match.matched and (
        not match.unknown or match.matched >= 2 or scored.score >= tuning.min_closeness_unverified
    ):
        return "supports"
    return "related"


class Verifier:
    """Claim checks over an engine's index."""

    def __init__(self, engine: Engine) -> None:
        """Args:
        engine: the engine whose retriever, reader and tuned constants
            (``engine.tuned.claims``: closeness thresholds, calibration) the check uses.
        """
        self.engine = engine
        self.tuning = engine.tuned.claims

    def verify(self, claim: str, top_k: int = 5) -> ClaimCheck:
        """The verdict on ``claim``, with the ``top_k`` sentences weighed shown."""
        claim = clean_question(claim, "claim")
        self.engine.check_top_k(top_k)
        return self.judge(self.read(claim, top_k), top_k)

    def read(self, claim: str, top_k: int = 5) -> Reading:
        """Retrieve the claim's closest sentences and match its facts against each: all
        the work that no closeness threshold changes (``claim`` already cleaned)."""
        started = time.perf_counter()
        query = self.engine.query(claim)
        tuning = self.tuning
        hits = self.engine.retriever.search(query, max(top_k, tuning.passages_read))
        retrieved = time.perf_counter()
        ranked = self.engine.extractor.rank_sentences(
            query, hits[: tuning.passages_read], tuning.closeness
        )
        facts = self._facts(claim, claim=True)
        script = _script(claim)
        matches = tuple(
            self._match(claim, facts, script, scored) for scored in ranked[: tuning.sentences_read]
        )
        return Reading(
            claim,
            tuple(facts),
            matches,
            started,
            {"retrieve": (retrieved - started) * 1000, "compare": 0.0},
        )

    def judge(
        self, reading: Reading, top_k: int = 5, tuning: ClaimTuning | None = None
    ) -> ClaimCheck:
        """The verdict on a read claim under ``tuning`` (default: the engine's constants;
        the fitting command tries others on the same reading)."""
        tuning = tuning or self.tuning
        step = time.perf_counter()
        evidence = [self._weigh(match, reading, tuning) for match in reading.matches]
        verdict, decisive = self._decide(evidence)
        timings = dict(reading.timings_ms)
        timings["compare"] += (time.perf_counter() - step) * 1000
        timings["total"] = (time.perf_counter() - reading.started) * 1000
        shown = sorted(evidence, key=lambda e: (e is not decisive, -e.closeness))[:top_k]
        return ClaimCheck(
            claim=reading.claim,
            verdict=verdict,
            confidence=self._confidence(decisive, evidence, tuning),
            evidence=tuple(shown),
            timings_ms={k: round(v, 3) for k, v in timings.items()},
        )

    # -- comparing -----------------------------------------------------------------------

    def _facts(self, text: str, *, claim: bool = False) -> list[Fact]:
        """The checkable facts of ``text``: names found in most documents ("China", "ROK")
        say nothing about which event a sentence is about, and in a claim a year inside a
        name ("NEAR International Forum 2024") is part of the name, not a date to check."""
        found_names = [n for n in names(text) if not self._common(n.text)]
        inside = [(n.start, n.end) for n in found_names] if claim else []
        found_dates = [d for d in dates(text) if not any(a <= d.start < b for a, b in inside)]
        return numbers(text) + found_dates + found_names

    @lru_cache(maxsize=4096)  # noqa: B019 - one verifier lives as long as its index
    def _common(self, name: str) -> bool:
        if fold(name) in _COUNTRIES:
            return True  # a country names a party, not an event
        documents = self.engine.documents.values()
        mentioned = sum(mentions(d.text, name) for d in documents)
        return mentioned >= max(3, 0.8 * len(documents))  # China, Japan, Korea here

    def _match(self, claim: str, facts: list[Fact], script: str, scored: ScoredSentence) -> Match:
        extractor = self.engine.extractor
        text = extractor.sentence_text(scored)
        evidence_script = _script(text)
        found = self._facts(text)
        found_numbers = [f for f in found if f.kind == "number"]
        found_dates = [f for f in found if f.kind == "date"]
        found_names = [f for f in found if f.kind not in ("number", "date")]
        # names the sentence leaves to the one before or to the headline still tie it to
        # the claim's event ("The forum ... five countries" after "NEAR ... in Gyeongju")
        context = extractor.context_text(scored)
        in_context = 0
        matched, matched_required, unknown_places, unknown, mismatches = 0, 0, 0, 0, []
        for fact in facts:
            result: bool | Fact | None = None
            if fact.kind == "number":
                result = self._number(fact, found_numbers)
            elif fact.kind == "date":
                result = self._date(fact, found_dates)
            elif _other_edition(fact.text, text):
                return Match(scored, text, other_edition=True)  # another year's event
            else:
                name_script = "latin" if fact.text.isascii() else "han"
                if not mentions(text, fact.text) and mentions(context, fact.text):
                    in_context += 1  # ties the sentence to the event, but is not stated in it
                    result = None
                elif name_script == evidence_script or translatable(fact.text):
                    result = self._name(fact, text, claim, found_names, scored.coverage)
            if result is True:
                matched += 1
                matched_required += fact.kind in ("number", "date")
            elif isinstance(result, Fact):
                mismatches.append(
                    Mismatch(fact.kind, fact.text, result.text, result.start, result.end)
                )
            else:
                unknown += 1
                unknown_places += fact.kind == "place"
        mismatches += _misbound(facts, found_names, text)
        if unknown_places:  # where it happened is no detail: unstated, nothing is supported
            matched_required = -1
        return Match(
            scored, text, matched, matched_required, unknown, tuple(mismatches), in_context
        )

    def _weigh(self, match: Match, reading: Reading, tuning: ClaimTuning) -> Evidence:
        if match.other_edition:
            return self._evidence(match.scored, match.text, "related", (), 0)
        stance = _stance(match, reading.facts, tuning)
        return self._evidence(match.scored, match.text, stance, match.mismatches, match.matched)

    def _evidence(
        self,
        scored: ScoredSentence,
        text: str,
        stance: Stance,
        mismatches: tuple[Mismatch, ...],
        matched: int,
    ) -> Evidence:
        document = self.engine.document(scored.chunk.doc_id)
        citation = Citation(
            doc_id=document.doc_id,
            title=document.title,
            source=document.source,
            published=document.published,
            char_start=scored.start,
            char_end=scored.end,
            quote=text,
        )
        return Evidence(text, citation, stance, mismatches, matched, scored.score)

    @staticmethod
    def _number(fact: Fact, found: list[Fact]) -> bool | Fact | None:
        comparable = [f for f in found if fact.unit and f.unit and fact.unit & f.unit]
        if any(same_number(fact, f) for f in comparable):
            return True
        if not fact.unit and any(same_number(fact, f) for f in found):
            return True
        return comparable[0] if comparable else None

    @staticmethod
    def _date(fact: Fact, found: list[Fact]) -> bool | Fact | None:
        verdicts = [(dates_agree(fact, f), f) for f in found]
        if any(agree is True for agree, _ in verdicts):
            return True
        return next((f for agree, f in verdicts if agree is False), None)

    @staticmethod
    def _name(
        fact: Fact, text: str, claim: str, found: list[Fact], coverage: float
    ) -> bool | Fact | None:
        """A name the sentence also states matches. It mismatches a different name of the
        same kind only where that is the one difference: a place after "in/at" against
        another place, an acronym against another acronym, or a person or organisation in
        a sentence that states most of the claim's words."""
        if mentions(text, fact.text):
            return True
        if fact.kind == "person" and not _personal(fact.text):
            return None  # "the President of the ROK" is a title, not a checkable name
        acronym = bool(re.fullmatch(r"[A-Z]{2,6}", fact.text))
        if fact.kind == "organization" and fact.text.isascii() and not acronym:
            return None  # English organisation names are paraphrased too freely to compare
        if fact.kind == "person" and coverage < 0.6:
            return None
        for other in found:
            if other.kind != fact.kind or mentions(claim, other.text):
                continue
            if acronym != bool(re.fullmatch(r"[A-Z]{2,6}", other.text)) and fact.kind != "place":
                continue
            if fact.kind == "person" and not _personal(other.text):
                continue
            return other
        return None

    # -- deciding ------------------------------------------------------------------------

    def _decide(self, evidence: list[Evidence]) -> tuple[Verdict, Evidence | None]:
        decisive = [e for e in evidence if e.stance in ("supports", "contradicts")]
        if not decisive:
            return "not_found", None
        best = max(decisive, key=lambda e: (e.matched, e.closeness))
        return ("supported" if best.stance == "supports" else "contradicted"), best

    @staticmethod
    def _confidence(
        decisive: Evidence | None, evidence: list[Evidence], tuning: ClaimTuning
    ) -> float:
        """A logistic function of how close the deciding sentence is (not yet calibrated
        against outcomes): for not_found, falling with the closest sentence's closeness."""
        if decisive is None:
            closest = max((e.closeness for e in evidence), default=0.0)
            curve = tuning.confidence_not_found
            return round(1 / (1 + math.exp(curve.slope * (closest - curve.center))), 3)
        curve = tuning.confidence_found
        return round(1 / (1 + math.exp(-curve.slope * (decisive.closeness - curve.center))), 3)
