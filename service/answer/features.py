"""What the reader's fitted models see: features of a sentence, of a candidate in it, and
of a question's best candidate (for abstention).

Every feature is a plain measurement (a cosine, a share of the question's terms, a
distance, a flag); none is weighted here. The weights are fitted on the train split
(``service.lab.fit``) and live in the tuned file (``service.answer.model.LinearModel``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.answer.analysis import Analysis
from service.answer.candidates import OPEN_TYPES, Candidate, type_agreement
from service.records import Query
from service.text.language import fold
from service.text.tokenize import content_terms, literal

__all__ = [
    "ABSTAIN_FEATURES",
    "CANDIDATE_FEATURES",
    "ENCODERS",
    "EVIDENCE_FEATURES",
    "SENTENCE_FEATURES",
    "SPAN_FEATURES",
    "Asked",
    "Mention",
    "Reach",
    "SentenceFacts",
    "abstain_features",
    "anchors_in",
    "candidate_features",
    "evidence_features",
]

ENCODERS = ("dense", "multilingual", "e5")  # a similarity feature each (0 where it cannot read)

SENTENCE_FEATURES = (
    *(f"similarity_{name}" for name in ENCODERS),
    "similarity_mean",
    "similarity_rank",
    "coverage",
    "context_coverage",
    "bridged_coverage",
    "bridged_context",
    "support",
    "has_predicate",
    "entities_found",
    "has_entities",
    "numbers_found",
    "has_numbers",
    "focus_found",
    "has_focus",
    "same_script",
    "passage_prior",
    "passage_score",
    "passage_votes",
    "coverage_either",
    "similarity_e5_across",
    "similarity_multilingual_across",
    "holds_type",  # set once every candidate is known (Extractor.read)
    "holds_related",
)
SPAN_FEATURES = (
    "type_match",
    "type_related",
    "whole",
    "whole_open",
    "whole_typed",
    "whole_plural",
    "echo",
    "distance",
    "length",
    "agreement",
    "counts_asked",
    "plural_list",
    "list_of_type",  # set once every candidate is known (Extractor.read)
)
CANDIDATE_FEATURES = (*SENTENCE_FEATURES, *SPAN_FEATURES)
# The best candidate's own features the abstention classifier reads as they are.
_CARRIED = (
    "similarity_e5",
    "similarity_mean",
    "coverage",
    "context_coverage",
    "coverage_either",
    "bridged_coverage",
    "bridged_context",
    "support",
    "has_predicate",
    "entities_found",
    "has_entities",
    "numbers_found",
    "has_numbers",
    "focus_found",
    "has_focus",
    "same_script",
    "holds_type",
    "type_match",
    "passage_score",
)
# What the reader's whole reach (every sentence and passage it read for the question) says
# of it, beyond the best candidate's own sentence (``evidence_features``); kept by 5-fold
# CV on the train split (``service.lab.fit_reader``).
EVIDENCE_FEATURES = (
    "bridged_reach",
    "unknown_terms",
    "numbers_anywhere",
    "number_conflict",
    "similarity_top",
    "similarity_gap",
    # a linear model cannot multiply: what is missing counts in the question's own script
    "missing_numbers_same",
    "missing_entities_same",
    "similarity_top_across",
)
ABSTAIN_FEATURES = (
    "best_logit",
    "sentence_raw",
    "span_raw",
    "margin",
    "similarity_max",
    "missing_numbers",
    "missing_entities",
    "missing_focus",
    "unsupported",
    "open_type",
    "typed_in_reach",
    *_CARRIED,
    *EVIDENCE_FEATURES,
)


@dataclass(frozen=True)
class Mention:
    """A name or number of the question: as written (folded) and as translated."""

    folded: str
    translated: frozenset[str]  # index terms of the other language (CC-CEDICT)

    def found(self, folded_text: str, terms: frozenset[str]) -> bool:
        """Whether a text (folded, and its index terms) states it, in either language."""
        return self.folded in folded_text or bool(self.translated & terms)


@dataclass(frozen=True)
class Asked:
    """What every sentence is compared with, worked out once per question."""

    query: Query
    analysis: Analysis
    idf: Mapping[str, float]  # of the question's terms, predicate and bridged terms
    # the question's entities, and its numbers, ordinals and dates: each folded, with its
    # dictionary translations (index terms) for a sentence in the other script
    mentions: tuple[Mention, ...]
    numbers: tuple[Mention, ...]
    focus: frozenset[str]  # the focus noun's terms, in both languages (empty: no focus)
    bridge: Mapping[str, float]  # index terms of the other language, weighted (the bridge's)

    def bridged_share(self, found: frozenset[str]) -> float:
        """How much of the question the sentence states in the other language: the share
        of the bridge's weighted terms (each English word's Chinese headwords share its
        weight, and the reverse; ``service.text.bridge``) that ``found`` holds, by idf."""
        total = sum(w * self.idf.get(t, 0.0) for t, w in self.bridge.items())
        held = sum(w * self.idf.get(t, 0.0) for t, w in self.bridge.items() if t in found)
        return held / total if total else 0.0

    def share(self, terms: frozenset[str], found: frozenset[str]) -> float:
        """The idf-weighted share of ``terms`` that ``found`` holds (0 without terms)."""
        total = sum(self.idf.get(t, 0.0) for t in terms)
        return sum(self.idf.get(t, 0.0) for t in terms & found) / total if total else 0.0


@dataclass(frozen=True)
class SentenceFacts:
    """One sentence of a question's top passages, with its sentence-level features."""

    row: int
    start: int  # document offsets
    end: int
    features: Mapping[str, float]
    anchors: tuple[int, ...] = ()  # where the question's terms occur (sentence offsets)


def sentence_features(
    asked: Asked,
    text: str,
    context: str,
    similarities: Mapping[str, float],
    *,
    same_script: bool,
    passage_rank: int,
    passage_score: float,
    passage_votes: float,
) -> dict[str, float]:
    """The sentence-level features of one sentence (``similarity_rank`` is set later,
    when every sentence of the question has its similarity). ``passage_score`` is the
    passage's fused score less the first passage's; ``passage_votes`` the share of the
    retrievers that ranked it in their top 5."""
    own = content_terms(text)
    around = content_terms(context) | own
    query, analysis = asked.query, asked.analysis
    folded = fold(text + "\n" + context)
    found = [m for m in asked.mentions if m.found(folded, around)]
    numbers = [m for m in asked.numbers if m.found(folded, around)]
    read = [v for v in similarities.values()]
    features = {f"similarity_{name}": similarities.get(name, 0.0) for name in ENCODERS}
    features |= {
        "similarity_mean": sum(read) / len(read) if read else 0.0,
        "similarity_rank": 0.0,
        "coverage": asked.share(query.terms, own) if same_script else 0.0,
        "context_coverage": asked.share(query.terms, around) if same_script else 0.0,
        "bridged_coverage": asked.bridged_share(own),
        "bridged_context": asked.bridged_share(around),
        "support": asked.share(analysis.predicate, around | own),
        "has_predicate": float(bool(analysis.predicate)),
        "entities_found": len(found) / len(asked.mentions) if asked.mentions else 1.0,
        "has_entities": float(bool(asked.mentions)),
        "numbers_found": len(numbers) / len(asked.numbers) if asked.numbers else 1.0,
        "has_numbers": float(bool(asked.numbers)),
        "focus_found": float(bool(asked.focus & around)) if asked.focus else 1.0,
        "has_focus": float(bool(asked.focus)),
        "same_script": float(same_script),
        "passage_prior": 1.0 / math.sqrt(passage_rank),
        "passage_score": passage_score,
        "passage_votes": passage_votes,
        "holds_type": 0.0,
        "holds_related": 0.0,
    }
    # a linear model cannot multiply: the evidence that counts differs across scripts
    across = 0.0 if same_script else 1.0
    features["coverage_either"] = (
        features["context_coverage"] if same_script else features["bridged_context"]
    )
    features["similarity_e5_across"] = across * features["similarity_e5"]
    features["similarity_multilingual_across"] = across * features["similarity_multilingual"]
    return features


def anchors_in(asked: Asked, sentence: str) -> tuple[int, ...]:
    """Where the question's terms occur in ``sentence`` (offsets in its folding)."""
    folded = fold(sentence)
    return tuple(m.start() for t in asked.query.terms for m in literal(t).finditer(folded))


def candidate_features(
    asked: Asked,
    sentence: SentenceFacts,
    candidate: Candidate,
    text: str,
    agreement: int,
) -> dict[str, float]:
    """The features of ``candidate`` (``text``: the document's text); ``agreement`` is how
    many other sentences of the question hold a candidate with the same folded text."""
    analysis = asked.analysis
    piece = text[candidate.start : candidate.end]
    sentence_text = text[sentence.start : sentence.end]
    match, related = type_agreement(analysis.answer_type, candidate.label)
    is_open = analysis.answer_type in OPEN_TYPES
    own = content_terms(piece)
    anchors = sentence.anchors
    left, right = candidate.start - sentence.start, candidate.end - sentence.start
    distance = min(
        (0 if left <= a <= right else min(abs(a - left), abs(a - right)) for a in anchors),
        default=len(sentence_text),
    )
    counted = analysis.counted
    return {
        **sentence.features,
        "type_match": match,
        "type_related": related,
        "whole": float(candidate.whole),
        "whole_open": float(candidate.whole and is_open),
        "whole_typed": float(candidate.whole and not is_open),
        "whole_plural": float(
            candidate.whole and (analysis.plural or analysis.answer_type == "list")
        ),
        "echo": len(own & asked.query.terms) / len(own) if own else 0.0,
        "distance": 0.0 if candidate.whole else distance / max(len(sentence_text), 1),
        "length": math.log1p(len(piece)),
        "agreement": math.log1p(agreement),
        "counts_asked": float(bool(counted) and fold(counted) in fold(piece)),
        "plural_list": float(analysis.plural and candidate.label == "LIST"),
        "list_of_type": 0.0,
    }


def abstain_features(
    best: Mapping[str, float],
    logits: Sequence[float],
    best_logit: float,
    *,
    raw: tuple[float, float],
    open_type: bool,
    typed_in_reach: bool,
) -> dict[str, float]:
    """The question-level features of the abstention classifier: the best candidate's
    features and score, its margin over the runner-up, and whether any candidate of the
    asked type was in reach. ``raw`` is the sentence and span models' own scores of the
    best candidate (before the softmax over the question's candidates, which hides how
    good the best one is in itself)."""
    ordered = sorted(logits, reverse=True)
    margin = ordered[0] - ordered[1] if len(ordered) > 1 else 5.0
    return {
        "best_logit": best_logit,
        "sentence_raw": raw[0],
        "span_raw": raw[1],
        "margin": min(margin, 5.0),
        "similarity_max": max(best[f"similarity_{name}"] for name in ENCODERS),
        # what the question names and the evidence lacks: a linear model cannot multiply
        "missing_numbers": best["has_numbers"] * (1 - best["numbers_found"]),
        "missing_entities": best["has_entities"] * (1 - best["entities_found"]),
        "missing_focus": best["has_focus"] * (1 - best["focus_found"]),
        "unsupported": best["has_predicate"] * (1 - best["support"]),
        "open_type": float(open_type),
        "typed_in_reach": float(typed_in_reach),
        **{name: best[name] for name in _CARRIED},
    }


@dataclass(frozen=True)
class Reach:
    """What the reader read for a question besides its sentences' features: the content
    terms of the passages read in another script than the question's, and whether the
    best sentence states a number of its own."""

    other: frozenset[str]
    states_numbers: bool  # the best sentence states a number, ordinal or date


def evidence_features(
    asked: Asked,
    reach: Reach,
    sentences: Sequence[Mapping[str, float]],
    best: Mapping[str, float],
    *,
    known: Callable[[str], bool],
) -> dict[str, float]:
    """The question-level evidence of the reader's whole reach.

    Args:
        asked: the question's terms and weights.
        reach: the other-script passages' terms, the best sentence's numbers.
        sentences: the sentence features of every sentence read.
        best: the best candidate's features.
        known: whether the index holds a term at all.

    Returns:
        ``bridged_reach``: the share of the question carried into the other language that
        the passages read in it state; ``unknown_terms``: the idf-weighted share of the
        question's terms that no passage of the corpus holds; ``numbers_anywhere``: the
        best share of the question's numbers any sentence read states; ``number_conflict``:
        the best sentence lacks a number of the question and states another ("the tenth
        summit" over a sentence dating the ninth); ``similarity_top`` / ``similarity_gap``:
        the best mean similarity of any sentence read, and the best candidate's sentence's
        over the median sentence's; and three products with the script.
    """
    terms = asked.query.terms | asked.analysis.predicate
    total = sum(asked.idf.get(t, 0.0) for t in terms)
    unknown = sum(asked.idf.get(t, 0.0) for t in terms if not known(t))
    means = [s["similarity_mean"] for s in sentences] or [0.0]
    missing_numbers = best["has_numbers"] * (1 - best["numbers_found"])
    same = best["same_script"]
    return {
        "bridged_reach": asked.bridged_share(reach.other),
        "unknown_terms": unknown / total if total else 0.0,
        "numbers_anywhere": max((s["numbers_found"] for s in sentences), default=0.0),
        "number_conflict": missing_numbers * float(reach.states_numbers),
        "similarity_top": max(means),
        "similarity_gap": best["similarity_mean"] - float(np.median(means)),
        "missing_numbers_same": missing_numbers * same,
        "missing_entities_same": best["has_entities"] * (1 - best["entities_found"]) * same,
        "similarity_top_across": max(means) * (1 - same),
    }
