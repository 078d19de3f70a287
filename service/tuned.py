"""The tuned constants of the fusion, the reader and the claim check, from one versioned file.

Every weight, threshold and calibration that a measurement chose lives in a JSON file
(``service/tuned.json`` by default, ``CITEQA_TUNED_FILE`` to use another), with a record
of the data and the method that chose it. The stages take these records; nothing else
in the code sets such a number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.answer.model import LinearModel
from service.errors import ConfigError

__all__ = [
    "FORMAT",
    "PACKAGED",
    "ClaimTuning",
    "FusionTuning",
    "Logistic",
    "ReaderTuning",
    "Tuned",
    "language_pair",
    "load_tuned",
    "query_group",
]

FORMAT = "citeqa-tuned/6"
PACKAGED = Path(__file__).with_name("tuned.json")


@dataclass(frozen=True)
class Logistic:
    """``1 / (1 + exp(-slope * (x - center)))``."""

    slope: float
    center: float


# The question groups a fusion is fitted for: by the question's language.
GROUPS = {"en": "en", "zh-Hans": "zh", "zh-Hant": "zh", "zh": "zh", "ja": "ja", "ko": "ko"}
DEFAULT_GROUP = "other"  # any other language, and a group with too few train questions


def query_group(language: str) -> str:
    """The fusion group of a question in ``language``."""
    return GROUPS.get(language, DEFAULT_GROUP)


def language_pair(question_group: str, passage_group: str) -> str:
    """The key of a question group asking a passage group: ``"zh>en"``."""
    return f"{question_group}>{passage_group}"


@dataclass(frozen=True)
class FusionTuning:
    """The fitted fusion's constants (``service.retrieve.fusion.weighted_zscore``): per
    question group, a weight per retriever; and per language pair (question group >
    passage group), the retrievers strong enough there that their first passage is kept
    in the top ``keep_within``."""

    weights: dict[str, dict[str, float]]  # group -> retriever -> weight
    protected: dict[str, tuple[str, ...]]  # "zh>en" -> retrievers whose first hit survives
    keep_within: int  # the rank a protected first hit is kept at or above

    def weights_for(self, group: str) -> dict[str, float]:
        """The weights of ``group`` (the pooled ``other`` group's if it has none)."""
        return self.weights.get(group, self.weights[DEFAULT_GROUP])

    def protects(self, question_group: str, passage_group: str, retriever: str) -> bool:
        """Whether ``retriever``'s first passage, in ``passage_group``, is kept."""
        pair = language_pair(question_group, passage_group)
        return retriever in self.protected.get(pair, ())


@dataclass(frozen=True)
class ReaderTuning:
    """The reader's fitted models (``service.answer.extractor.Extractor``)."""

    passages_read: int  # top fused passages whose sentences compete
    sentence: LinearModel  # which sentence holds the answer (softmax over the question's)
    span: LinearModel  # which candidate of a sentence is the answer (softmax within it)
    abstain: LinearModel  # P(the corpus answers the question), over ABSTAIN_FEATURES
    abstain_threshold: float  # abstain when that probability is below this
    confidence: LinearModel  # P(the answer is right): candidate_logit, answerable


@dataclass(frozen=True)
class ClaimTuning:
    """The claim check's constants (``service.verify.verifier.Verifier``)."""

    passages_read: int
    sentences_read: int
    # a sentence's closeness to the claim: weights of its similarity, term coverage and
    # passage prior, and the coverage of a sentence in another script (x similarity)
    closeness: tuple[float, float, float, float]
    event: LinearModel  # P(a sentence is about the claim's event), over EVENT_FEATURES
    min_event_support: float  # a sentence stating every slot supports from this P
    min_event_contradict: float  # a sentence stating a slot differently contradicts from this
    contradict_unknown: int  # slots a contradicting sentence may leave unstated
    support_unverifiable: int  # names across scripts a supporting sentence may not show
    confidence_found: Logistic  # of a verdict, by the deciding sentence's P(same event)
    confidence_not_found: Logistic  # of not_found, by the most likely sentence's (decreasing)


@dataclass(frozen=True)
class CiteTuning:
    """Citation retrieval's constants (``service.cite.matcher.Citer``)."""

    passages_read: int  # the retrieved passages a quote is looked for in
    near: float  # partial-ratio similarity from which a window is a near match
    translated: float  # sentence similarity from which another script's sentence matches
    unstated: float  # taken off that similarity for all of the quote's digit numbers missing
    other_per_ranking: int  # other-script passages each retriever's ranking adds for that
    closeness: tuple[float, float, float, float]  # how sentences are ranked (as for claims)


@dataclass(frozen=True)
class Tuned:
    fusion: FusionTuning
    reader: ReaderTuning
    claims: ClaimTuning
    cite: CiteTuning
    provenance: dict[str, Any]
    path: Path


def _cite(raw: dict[str, Any]) -> CiteTuning:
    return CiteTuning(
        passages_read=int(raw["passages_read"]),
        near=float(raw["near"]),
        translated=float(raw["translated"]),
        unstated=float(raw["unstated"]),
        other_per_ranking=int(raw["other_per_ranking"]),
        closeness=_closeness(raw["closeness"]),
    )


def _fusion(raw: dict[str, Any]) -> FusionTuning:
    weights = {
        group: {name: float(w) for name, w in by_name.items()}
        for group, by_name in raw["weights"].items()
    }
    if DEFAULT_GROUP not in weights:
        raise ValueError(f"fusion.weights.{DEFAULT_GROUP}")
    protected = {group: tuple(names) for group, names in raw["protected"].items()}
    return FusionTuning(weights, protected, int(raw["keep_within"]))


def _reader(raw: dict[str, Any]) -> ReaderTuning:
    return ReaderTuning(
        passages_read=int(raw["passages_read"]),
        sentence=LinearModel.from_json(raw["sentence"]),
        span=LinearModel.from_json(raw["span"]),
        abstain=LinearModel.from_json(raw["abstain"]),
        abstain_threshold=float(raw["abstain_threshold"]),
        confidence=LinearModel.from_json(raw["confidence"]),
    )


def _claims(raw: dict[str, Any]) -> ClaimTuning:
    found, not_found = raw["confidence_found"], raw["confidence_not_found"]
    return ClaimTuning(
        passages_read=int(raw["passages_read"]),
        sentences_read=int(raw["sentences_read"]),
        closeness=_closeness(raw["closeness"]),
        event=LinearModel.from_json(raw["event"]),
        min_event_support=float(raw["min_event_support"]),
        min_event_contradict=float(raw["min_event_contradict"]),
        contradict_unknown=int(raw["contradict_unknown"]),
        support_unverifiable=int(raw["support_unverifiable"]),
        confidence_found=Logistic(float(found["slope"]), float(found["center"])),
        confidence_not_found=Logistic(float(not_found["slope"]), float(not_found["center"])),
    )


def _closeness(raw: dict[str, Any]) -> tuple[float, float, float, float]:
    keys = ("similarity", "coverage", "prior", "cross_script")
    a, b, c, d = (float(raw[key]) for key in keys)
    return a, b, c, d


def load_tuned(path: Path | None = None) -> Tuned:
    """The constants in ``path`` (default: the packaged file), checked.

    Raises:
        ConfigError: the file is missing, not JSON, of another format, or lacks a value;
            the message names the file and what to fix.
    """
    path = path or PACKAGED
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read the tuned constants {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); fix or regenerate it") from error
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise ConfigError(
            f"{path} has format {found!r}; this version of citeqa reads {FORMAT!r}: "
            "regenerate it, or unset CITEQA_TUNED_FILE to use the packaged one"
        )
    try:
        return Tuned(
            _fusion(raw["fusion"]),
            _reader(raw["reader"]),
            _claims(raw["claims"]),
            _cite(raw["cite"]),
            raw["provenance"],
            path,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(
            f"{path} lacks or mistypes the value {error}; compare it with {PACKAGED}"
        ) from error
