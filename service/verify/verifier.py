"""Verify: does the corpus support a claim, contradict it, or say nothing about it?

1. The claim is searched like a question; the sentences of the top passages are ranked by
   how close they are to it (``Extractor.rank_sentences``: the encoders' similarity, shared
   terms, the passage's rank).
2. The claim's *slots* (numbers, dates, ranks, and the people, organisations and places
   the annotators tag) are aligned with each close sentence's, from the build-time
   annotations (``service.verify.slots``): matched, stated only in the context, stated
   differently (a mismatch), not stated, or not checkable across scripts.
3. A logistic model fitted on the train split (``citeqa eval --fit``: the gold evidence
   sentences are its positives) gives each sentence the probability that it is about the
   claim's event, from its closeness and how its slots align (``EVENT_FEATURES``).
4. A sentence *supports* when it states every slot and is likely enough about the same
   event; it *contradicts* when it is about the same event and a slot differs; otherwise
   it is *related*. The two thresholds are fitted too.
5. The verdict follows the decisive sentence most likely about the claim's event:
   supported or contradicted. No decisive sentence: not_found.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from service.answer.extractor import ScoredSentence
from service.engine import Engine, clean_question
from service.ingest.annotate import LABELS, Annotator
from service.records import Citation, ClaimCheck, Evidence, Mismatch, Stance, Verdict
from service.tuned import ClaimTuning
from service.verify.slots import Aligned, Lexicon, Slot, align, slots_of

__all__ = ["ClaimCheck", "Evidence", "Match", "Mismatch", "Reading", "Verifier"]


@dataclass(frozen=True)
class Match:
    """How one close sentence aligns with the claim's slots, before any threshold."""

    scored: ScoredSentence
    text: str
    aligned: tuple[Aligned, ...]

    def count(self, *statuses: str) -> int:
        return sum(a.status in statuses for a in self.aligned)

    @property
    def matched(self) -> int:
        return self.count("matched", "context")

    @property
    def pinned(self) -> int:
        """Matched slots that pin down an event: a bare year does not (every year has
        many)."""
        return sum(
            a.status in ("matched", "context") and not _bare_year(a.slot) for a in self.aligned
        )

    def features(self) -> dict[str, float]:
        """``EVENT_FEATURES``: how close the sentence is, and how its slots other than the
        differing ones align. They do not depend on whether a slot differs, so the same
        model scores a sentence that would support the claim and one that would
        contradict it."""
        scored = self.scored
        others = max(len(self.aligned) - self.count("mismatch"), 1)
        return {
            "similarity": scored.similarity,
            "prior": scored.prior,
            "coverage": scored.coverage,
            "support": scored.support or 0.0,
            "has_support": float(scored.support is not None),
            "slots": float(len(self.aligned)),
            "no_slots": float(not self.aligned),
            "pinned_share": self.pinned / others,
            "agreed_share": self.matched / others,
            "unknown_share": self.count("unknown") / others,
            "unverifiable_share": self.count("unverifiable") / others,
        }

    @property
    def agreements(self) -> tuple[Mismatch, ...]:
        """The values the sentence states as the claim does (numbers, dates, ranks), with
        their offsets in the sentence: what a supporting quote marks."""
        return tuple(
            Mismatch(a.slot.kind, a.slot.fact.text, a.found.text, a.found.start, a.found.end)
            for a in self.aligned
            if a.status == "matched" and a.found is not None
        )

    @property
    def mismatches(self) -> tuple[Mismatch, ...]:
        return tuple(
            Mismatch(a.slot.kind, a.slot.fact.text, a.found.text, a.found.start, a.found.end)
            for a in self.aligned
            if a.status == "mismatch" and a.found is not None
        )


@dataclass(frozen=True)
class Reading:
    """A claim, its slots and its matched sentences: ``Verifier.read``'s work, which
    ``Verifier.judge`` turns into a verdict under a set of constants."""

    claim: str
    slots: tuple[Slot, ...]
    matches: tuple[Match, ...]
    started: float  # perf_counter when the check began
    timings_ms: dict[str, float]


# What the same-event model reads of a sentence against a claim (``Match.features``).
EVENT_FEATURES = (
    "similarity",
    "prior",
    "coverage",
    "support",
    "has_support",
    "slots",
    "no_slots",
    "pinned_share",
    "agreed_share",
    "unknown_share",
    "unverifiable_share",
)


def _stance(match: Match, event: float, tuning: ClaimTuning) -> Stance:
    """supports, contradicts or related (see the module's description); ``event`` is the
    fitted probability that the sentence is about the claim's event."""
    open_slots = match.count("unknown", "unverifiable")
    if match.mismatches:  # one slot stated differently, on the same event, contradicts
        if (
            len(match.mismatches) == 1
            and event >= tuning.min_event_contradict
            and open_slots <= tuning.contradict_unknown
        ):
            return "contradicts"
        return "related"  # several differ: another event
    if match.count("unknown") or match.count("unverifiable") > tuning.support_unverifiable:
        return "related"  # a slot it does not state: nothing is supported
    return "supports" if event >= tuning.min_event_support else "related"


_SLOTS_KEPT = 65536


def _bare_year(slot: Slot) -> bool:
    return slot.kind == "date" and slot.fact.value[1:] == (None, None)


class Verifier:
    """Claim checks over an engine's index."""

    def __init__(self, engine: Engine, annotator: Annotator | None = None) -> None:
        """Args:
        engine: the engine whose retriever, reader, annotations and tuned constants
            (``engine.tuned.claims``: closeness thresholds, calibration) the check uses.
        annotator: tags the claim as the build tagged the sentences (default: a new one;
            it loads the English pipeline on first use).
        """
        self.engine = engine
        self.tuning = engine.tuned.claims
        self.annotator = annotator or Annotator()
        index = engine.index
        self.lexicon = Lexicon(index.lexical, index.chunks)
        self._slots: dict[int, list[Slot]] = {}  # by sentence row

    def verify(self, claim: str, top_k: int = 5) -> ClaimCheck:
        """The verdict on ``claim``, with the ``top_k`` sentences weighed shown."""
        claim = clean_question(claim, "claim")
        self.engine.check_top_k(top_k)
        return self.judge(self.read(claim, top_k), top_k)

    def read(self, claim: str, top_k: int = 5) -> Reading:
        """Retrieve the claim's closest sentences and align its slots with each: all the
        work that no closeness threshold changes (``claim`` already cleaned)."""
        started = time.perf_counter()
        query = self.engine.query(claim)
        tuning = self.tuning
        hits = self.engine.retriever.search(query, max(top_k, tuning.passages_read))
        retrieved = time.perf_counter()
        ranked = self.engine.extractor.rank_sentences(
            query, hits[: tuning.passages_read], tuning.closeness
        )
        (spans,) = self.annotator.annotate_texts([claim])
        slots = slots_of(claim, _labelled(spans), self.lexicon, claim=True)
        matches = tuple(self._match(claim, slots, s) for s in ranked[: tuning.sentences_read])
        aligned = time.perf_counter()
        return Reading(
            claim,
            tuple(slots),
            matches,
            started,
            {
                "retrieve": (retrieved - started) * 1000,
                "align": (aligned - retrieved) * 1000,  # rank, tag the claim, align slots
                "compare": 0.0,
            },
        )

    def judge(
        self, reading: Reading, top_k: int = 5, tuning: ClaimTuning | None = None
    ) -> ClaimCheck:
        """The verdict on a read claim under ``tuning`` (default: the engine's constants;
        the fitting command tries others on the same reading)."""
        tuning = tuning or self.tuning
        step = time.perf_counter()
        evidence = [self._weigh(match, tuning) for match in reading.matches]
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

    def _match(self, claim: str, slots: list[Slot], scored: ScoredSentence) -> Match:
        extractor = self.engine.extractor
        text = extractor.sentence_text(scored)
        found = self._sentence_slots(scored, text)
        context = extractor.context_text(scored)
        return Match(scored, text, tuple(align(claim, slots, text, found, context, self.lexicon)))

    def _sentence_slots(self, scored: ScoredSentence, text: str) -> list[Slot]:
        """The slots of an indexed sentence, from its build-time spans; kept, as the same
        sentences come back claim after claim (``_SLOTS_KEPT``)."""
        found = self._slots.get(scored.row)
        if found is None:
            spans = [
                (span.start - scored.start, span.end - scored.start, span.label)
                for span in self.engine.index.spans_of(scored.row)
            ]
            found = slots_of(text, spans, self.lexicon)
            if len(self._slots) < _SLOTS_KEPT:
                self._slots[scored.row] = found
        return found

    def _weigh(self, match: Match, tuning: ClaimTuning) -> Evidence:
        event = float(tuning.event.probabilities(tuning.event.row(match.features()))[0])
        stance = _stance(match, event, tuning)
        mismatches = match.mismatches if stance == "contradicts" else ()
        agreements = match.agreements if stance != "related" else ()
        return self._evidence(match, stance, mismatches, event, agreements)

    def _evidence(
        self,
        match: Match,
        stance: Stance,
        mismatches: tuple[Mismatch, ...],
        event: float,
        agreements: tuple[Mismatch, ...] = (),
    ) -> Evidence:
        scored, text = match.scored, match.text
        document = self.engine.document(scored.chunk.doc_id)
        citation = Citation(
            doc_id=document.doc_id,
            title=document.title,
            source=document.source,
            published=document.published,
            char_start=scored.start,
            char_end=scored.end,
            quote=text,
            url_original=document.url,
        )
        return Evidence(
            text, citation, stance, mismatches, match.matched, round(event, 4), agreements
        )

    # -- deciding ------------------------------------------------------------------------

    def _decide(self, evidence: list[Evidence]) -> tuple[Verdict, Evidence | None]:
        decisive = [e for e in evidence if e.stance in ("supports", "contradicts")]
        if not decisive:
            return "not_found", None
        best = max(decisive, key=lambda e: e.closeness)
        return ("supported" if best.stance == "supports" else "contradicted"), best

    @staticmethod
    def _confidence(
        decisive: Evidence | None, evidence: list[Evidence], tuning: ClaimTuning
    ) -> float:
        """A logistic function of the deciding sentence's P(same event), fitted on the train
        split's outcomes; for not_found, falling with the most likely sentence's."""
        if decisive is None:
            closest = max((e.closeness for e in evidence), default=0.0)
            curve = tuning.confidence_not_found
            return round(1 / (1 + math.exp(curve.slope * (closest - curve.center))), 3)
        curve = tuning.confidence_found
        return round(1 / (1 + math.exp(-curve.slope * (decisive.closeness - curve.center))), 3)


def _labelled(spans: list[tuple[int, int, int]]) -> list[tuple[int, int, str]]:
    return [(start, end, LABELS[label]) for start, end, label in spans]
