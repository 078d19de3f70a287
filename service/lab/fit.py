"""Fit the reader's and the claim check's constants on the train split: ``citeqa eval --fit``.

Only rows marked ``"split": "train"`` are read; the test split is never looked at. The
search is a grid over the constants a measurement chooses, scored on the train questions
with the retrieval done once (a grid point changes only the reader's or the claim check's
decisions, never what was retrieved):

- reader: the weights of a sentence's score (similarity, coverage, typed span) and the
  abstention thresholds (similarity and coverage per script, the predicate support);
  the objective is ``accuracy`` (a right answer, or an abstention on an unanswerable
  question). Then the confidence is calibrated: a logistic regression of "the answer is
  right" on the chosen sentence's score (Platt scaling).
- claims: the closeness thresholds; the objective is label accuracy. Then the two
  confidence curves are fitted the same way, on the deciding (or closest) sentence's
  closeness.

Every choice is cross-validated: k folds stratified by category (or label), a grid point
chosen on k-1 folds and scored on the held-out one. The held-out figure is the honest
estimate of the fitted constants' accuracy; the file records it beside the in-sample one,
and the constants themselves are chosen on the whole train split. Ties go to the grid
point nearest the middle of the grid, the least extreme choice. The constants that are
not searched (how many passages and sentences are read, the prior's weight, the cross-
script discount) are kept from the file the fit starts from, and the provenance says so.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from service.answer.model import LinearModel
from service.lab.evaluate import (
    Claim,
    Question,
    expected_calibration_error,
    is_relevant,
)
from service.lab.fit_reader import fit_reader, fit_weighted_logistic, l2_by_cross_validation
from service.text.tokenize import content_terms
from service.tuned import (
    DEFAULT_GROUP,
    FORMAT,
    CiteTuning,
    ClaimTuning,
    FusionTuning,
    ReaderTuning,
    Tuned,
    language_pair,
    query_group,
)

__all__ = [
    "CLAIM_GRID",
    "FOLDS",
    "Choice",
    "choose",
    "fit_claims",
    "fit_fusion",
    "fit_logistic",
    "stratified_folds",
    "tuned_json",
]

FOLDS = 5
EVENT_L2_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
FUSION_WEIGHTS = (0.0, 0.5, 1.0, 2.0)  # each retriever's weight, in every group
STRONG = (0.5, 0.6, 0.7, 0.8, 0.9, 1.01)  # hit@1 alone that protects a first hit (1.01: none)
MIN_GROUP = 20  # answerable train questions a group needs to be fitted on its own
MIN_PAIR = 5  # first passages a retriever must rank in a language pair to be judged there
KEEP_WITHIN = 5
CLAIM_GRID: dict[str, Sequence[float]] = {
    "min_event_support": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    "min_event_contradict": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    "contradict_unknown": (0, 1, 2),
    "support_unverifiable": (0, 1),
}


# ---------------------------------------------------------------------- cross-validation


def stratified_folds(ids: Sequence[str], strata: Sequence[str], k: int = FOLDS) -> np.ndarray:
    """A fold number per item: within each stratum, items in the order of their id's hash
    are dealt to the folds in turn (deterministic, and independent of the file's order)."""
    folds = np.zeros(len(ids), dtype=int)
    for stratum in sorted(set(strata)):
        members = [i for i, s in enumerate(strata) if s == stratum]
        members.sort(key=lambda i: hashlib.sha256(ids[i].encode()).hexdigest())
        for turn, i in enumerate(members):
            folds[i] = turn % k
    return folds


@dataclass(frozen=True)
class Choice:
    """The grid point chosen on the whole train split, and how well choosing generalises."""

    index: int  # into the grid's points
    train: float  # its mean score on the train split (in-sample)
    cross_validated: float  # mean held-out score of the points chosen on the other folds
    per_fold: tuple[float, ...]


def _pick(means: np.ndarray) -> int:
    """The best point; among ties, the one nearest the middle of the grid's order."""
    best = np.flatnonzero(means >= means.max() - 1e-12)
    middle = (len(means) - 1) / 2
    return int(best[np.argmin(np.abs(best - middle))])


def choose(scores: np.ndarray, folds: np.ndarray) -> Choice:
    """``scores[point, item]`` (1 right, 0 wrong): the point best on all items, and the
    k-fold estimate of the point that choosing on k-1 folds would score on the last."""
    per_fold = []
    held_out = np.zeros(scores.shape[1])
    for fold in sorted(set(folds.tolist())):
        inside = folds != fold
        point = _pick(scores[:, inside].mean(axis=1))
        held_out[~inside] = scores[point, ~inside]
        per_fold.append(round(float(scores[point, ~inside].mean()), 4))
    best = _pick(scores.mean(axis=1))
    return Choice(
        best,
        round(float(scores[best].mean()), 4),
        round(float(held_out.mean()), 4),
        tuple(per_fold),
    )


def fit_logistic(x: Any, y: Any, l2: float = 1e-2) -> tuple[float, float]:
    """``(a, b)`` of ``P(y) = 1 / (1 + exp(-(a x + b)))`` by Newton's method on the log loss
    with a small ridge on ``a`` (so separable data gives a steep, finite curve)."""
    features = np.column_stack([np.asarray(x, dtype=float), np.ones(len(x))])
    target = np.asarray(y, dtype=float)
    weights = np.zeros(2)
    ridge = np.diag([l2, 0.0])
    for _ in range(100):
        p = 1 / (1 + np.exp(-features @ weights))
        gradient = features.T @ (p - target) + ridge @ weights
        hessian = features.T @ (features * (p * (1 - p))[:, None]) + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-9:
            break
    return float(weights[0]), float(weights[1])


def _calibrate(
    x: Sequence[float], y: Sequence[bool], folds: np.ndarray
) -> tuple[tuple[float, float], dict[str, Any]]:
    """The logistic fit on all rows, and its held-out expected calibration error."""
    x_arr, y_arr = np.asarray(x, dtype=float), np.asarray(y, dtype=bool)
    predicted = np.zeros(len(x_arr))
    for fold in sorted(set(folds.tolist())):
        inside = folds != fold
        if inside.sum() and (~inside).sum():
            a, b = fit_logistic(x_arr[inside], y_arr[inside])
            predicted[~inside] = 1 / (1 + np.exp(-(a * x_arr[~inside] + b)))
    a, b = fit_logistic(x_arr, y_arr)
    fitted = 1 / (1 + np.exp(-(a * x_arr + b)))
    return (a, b), {
        "rows": len(x_arr),
        "share_right": round(float(y_arr.mean()), 4) if len(y_arr) else None,
        "ece_train": expected_calibration_error(
            list(zip(fitted.tolist(), y_arr.tolist(), strict=True))
        ),
        "ece_cross_validated": expected_calibration_error(
            list(zip(predicted.tolist(), y_arr.tolist(), strict=True))
        ),
    }


def _grid(grid: dict[str, Sequence[float]], keys: Sequence[str]) -> list[dict[str, float]]:
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]


def _bar(total: int, what: str, progress: bool) -> tqdm[Any]:
    return tqdm(total=total, desc=what, unit="step", disable=not progress, file=sys.stderr)


# ---------------------------------------------------------------------------- the fusion


@dataclass(frozen=True)
class _Asked:
    """One answerable train question as the fusion fit sees it."""

    question: Question
    query: Any
    runs: dict[str, list[Any]]  # retriever -> its hits
    group: str


def _hit_score(fused: Any, item: _Asked) -> float:
    """(hit@1 + hit@5) / 2 of ``item``'s runs fused by ``fused``."""
    relevant = [
        is_relevant(hit.chunk, item.question) for hit in fused.fuse(item.query, item.runs, 5)
    ]
    return (float(any(relevant[:1])) + float(any(relevant))) / 2


def _fusion_scores(
    hybrid: Any, asked: Sequence[_Asked], points: Sequence[dict[str, float]], progress: bool
) -> np.ndarray:
    """``scores[point, question]`` under each point's weights (one set for every group)."""
    rows = []
    for weights in tqdm(points, desc="fusion grid", disable=not progress, file=sys.stderr):
        fused = hybrid.with_tuning(FusionTuning({DEFAULT_GROUP: weights}, {}, KEEP_WITHIN))
        rows.append([_hit_score(fused, item) for item in asked])
    return np.asarray(rows, dtype=float)


def fit_fusion(
    engine: Any, questions: Sequence[Question], *, folds: int = FOLDS, progress: bool = True
) -> tuple[FusionTuning, dict[str, Any]]:
    """The fitted fusion's weights and protected retrievers, and what the fit measured."""
    from service.engine import clean_question

    hybrid = engine.retriever
    names = list(hybrid.retrievers)
    asked = []
    for question in tqdm(
        [q for q in questions if q.answerable],
        desc="running the retrievers",
        disable=not progress,
        file=sys.stderr,
    ):
        query = engine.query(clean_question(question.question), reader=False)
        asked.append(_Asked(question, query, hybrid.runs(query), query_group(query.language)))
    points = [
        dict(zip(names, values, strict=True))
        for values in itertools.product(FUSION_WEIGHTS, repeat=len(names))
        if any(values)
    ]
    split = stratified_folds(
        [a.question.id for a in asked], [a.question.category for a in asked], folds
    )
    pooled_scores = _fusion_scores(hybrid, asked, points, progress)
    pooled = choose(pooled_scores, split)
    weights = {DEFAULT_GROUP: points[pooled.index]}
    groups: dict[str, Any] = {}
    for group in sorted({a.group for a in asked}):
        inside = np.asarray([a.group == group for a in asked])
        record: dict[str, Any] = {"questions": int(inside.sum())}
        own = choose(pooled_scores[:, inside], split[inside])
        pooled_held_out = _held_out_of(pooled_scores, split, inside)
        record |= {
            "own_cross_validated": own.cross_validated,
            "pooled_cross_validated": pooled_held_out,
        }
        if inside.sum() >= MIN_GROUP and own.cross_validated > pooled_held_out:
            weights[group] = points[own.index]
            record["weights"] = "own"
        else:
            record["weights"] = "pooled"
        groups[group] = record
    tuning = FusionTuning(weights, {}, KEEP_WITHIN)
    tuning, protection = _fit_protection(hybrid, asked, tuning, split)
    return tuning, {
        "objective": "mean of hit@1 and hit@5 over the answerable train questions",
        "retrievers": names,
        "weight_grid": list(FUSION_WEIGHTS),
        "points": len(points),
        "pooled": {"train": pooled.train, "cross_validated": pooled.cross_validated},
        "groups": groups,
        "protection": protection,
    }


def _held_out_of(scores: np.ndarray, folds: np.ndarray, inside: np.ndarray) -> float:
    """The pooled choice's held-out score on the questions ``inside`` a group: each fold's
    point chosen on every other fold's questions, scored on this fold's group members."""
    total, count = 0.0, 0
    for fold in sorted(set(folds.tolist())):
        point = _pick(scores[:, folds != fold].mean(axis=1))
        members = (folds == fold) & inside
        total += float(scores[point, members].sum())
        count += int(members.sum())
    return round(total / count, 4) if count else 0.0


def _first_hit_precision(asked: Sequence[_Asked], names: Sequence[str]) -> dict[str, Any]:
    """Per language pair (question group > the group of the passage a retriever ranks
    first), each retriever's share of right first passages, over the pairs where it ranked
    at least ``MIN_PAIR`` questions' first passage."""
    counts: dict[str, dict[str, list[int]]] = {}
    for item in asked:
        for name in names:
            hits = item.runs.get(name) or []
            if not hits:
                continue
            pair = language_pair(item.group, query_group(hits[0].chunk.language))
            tally = counts.setdefault(pair, {}).setdefault(name, [0, 0])
            tally[0] += is_relevant(hits[0].chunk, item.question)
            tally[1] += 1
    return {
        pair: {
            n: round(right / seen, 4) for n, (right, seen) in by_name.items() if seen >= MIN_PAIR
        }
        for pair, by_name in sorted(counts.items())
    }


def _fit_protection(
    hybrid: Any, asked: Sequence[_Asked], tuning: FusionTuning, folds: np.ndarray
) -> tuple[FusionTuning, dict[str, Any]]:
    """Choose the share ``strong`` (cross-validated over every question) and protect, per
    language pair, the retrievers whose first passage there is right that often."""
    precision = _first_hit_precision(asked, list(hybrid.retrievers))
    rows = []
    candidates = []
    for strong in STRONG:
        protected = {
            pair: tuple(n for n, share in shares.items() if share >= strong)
            for pair, shares in precision.items()
        }
        candidate = FusionTuning(
            tuning.weights, {p: n for p, n in protected.items() if n}, KEEP_WITHIN
        )
        fused = hybrid.with_tuning(candidate)
        rows.append([_hit_score(fused, item) for item in asked])
        candidates.append(candidate)
    choice = choose(np.asarray(rows, dtype=float), folds)
    return candidates[choice.index], {
        "strong_grid": list(STRONG),
        "strong": STRONG[choice.index],
        "first_hit_precision_by_pair": precision,
        "train": choice.train,
        "cross_validated": choice.cross_validated,
    }


# ---------------------------------------------------------------------------- the reader


# ----------------------------------------------------------------------------- the claims


def fit_claims(
    engine: Any, claims: Sequence[Claim], *, folds: int = FOLDS, progress: bool = True
) -> tuple[ClaimTuning, dict[str, Any]]:
    """The claim check's models fitted on ``claims`` (the train split), and what the fit
    measured. Each claim is retrieved and matched once (``Verifier.read``).

    1. The same-event model: a logistic regression over ``EVENT_FEATURES`` of each read
       sentence, positive where the sentence is the claim's gold evidence; its L2 penalty
       by cross-validated log loss (folds of claims).
    2. The thresholds (``CLAIM_GRID``) on the out-of-fold probabilities, by the objective
       of ``_claim_score``, with the k-fold estimate of choosing them.
    3. The confidence curves, on the out-of-fold verdicts.
    """
    from service.engine import clean_question
    from service.verify.verifier import Verifier

    verifier = Verifier(engine)
    base = verifier.tuning
    readings = [
        verifier.read(clean_question(c.claim, "claim"))
        for c in tqdm(claims, desc="reading claims", disable=not progress, file=sys.stderr)
    ]
    split = stratified_folds([c.id for c in claims], [c.label for c in claims], folds)
    event, by_fold, event_record = _fit_event(claims, readings, split)
    keys = list(CLAIM_GRID)
    points = _grid(CLAIM_GRID, keys)
    rows = []
    for point in tqdm(points, desc="claim grid", disable=not progress, file=sys.stderr):
        rows.append(
            [
                _claim_score(
                    verifier.judge(r, tuning=_with(base, point, by_fold[f])).verdict,
                    c.label,
                )
                for c, r, f in zip(claims, readings, split, strict=True)
            ]
        )
    choice = choose(np.asarray(rows, dtype=float), split)
    chosen = points[choice.index]
    tuning, calibration = _calibrate_claims(
        verifier, claims, readings, split, _with(base, chosen, event), by_fold
    )
    record = {
        "objective": "label accuracy, minus the share of claims wrongly called supported",
        "event_model": event_record,
        "grid": {k: list(v) for k, v in CLAIM_GRID.items()},
        "points": len(points),
        "chosen": chosen,
        "label_accuracy_train": _share_right(rows[choice.index]),
        "objective_train": choice.train,
        "objective_cross_validated": choice.cross_validated,
        "objective_per_fold": list(choice.per_fold),
        **calibration,
        "kept": ["passages_read", "sentences_read", "closeness"],
    }
    return replace(tuning, event=event), record


def _with(base: ClaimTuning, point: dict[str, float], event: LinearModel) -> ClaimTuning:
    """``base`` with a grid point's thresholds and a same-event model."""
    return replace(
        base,
        event=event,
        min_event_support=point["min_event_support"],
        min_event_contradict=point["min_event_contradict"],
        contradict_unknown=int(point["contradict_unknown"]),
        support_unverifiable=int(point["support_unverifiable"]),
    )


def _is_evidence(sentence: str, evidence: str | None) -> bool:
    """The read sentence is the claim's gold evidence (most of either's terms in the other)."""
    if not evidence:
        return False
    a, b = content_terms(sentence), content_terms(evidence)
    return bool(a and b) and len(a & b) >= 0.6 * min(len(a), len(b))


def _fit_event(
    claims: Sequence[Claim], readings: Sequence[Any], split: np.ndarray
) -> tuple[LinearModel, list[LinearModel], dict[str, Any]]:
    """The same-event model on every claim, one per fold on the other folds' claims, and
    the fit's record."""
    from service.verify.verifier import EVENT_FEATURES

    x, y, group = [], [], []
    for n, (claim, reading) in enumerate(zip(claims, readings, strict=True)):
        for match in reading.matches:
            features = match.features()
            x.append([features[name] for name in EVENT_FEATURES])
            y.append(_is_evidence(match.text, claim.evidence))
            group.append(split[n])
    rows, target, groups = np.asarray(x, float), np.asarray(y, bool), np.asarray(group)
    l2, losses, _ = l2_by_cross_validation(rows, target, groups, EVENT_L2_GRID, EVENT_FEATURES)
    by_fold = []
    for fold in range(int(split.max()) + 1):
        inside = groups != fold
        by_fold.append(fit_weighted_logistic(rows[inside], target[inside], l2, EVENT_FEATURES))
    record = {
        "rows": len(rows),
        "positives": int(target.sum()),
        "l2": l2,
        "log_loss_cross_validated": {str(k): round(v, 4) for k, v in losses.items()},
    }
    return fit_weighted_logistic(rows, target, l2, EVENT_FEATURES), by_fold, record


def _calibrate_claims(
    verifier: Any,
    claims: Sequence[Claim],
    readings: Sequence[Any],
    split: np.ndarray,
    tuning: ClaimTuning,
    by_fold: list[LinearModel],
) -> tuple[ClaimTuning, dict[str, Any]]:
    """The confidence curves of found and not_found verdicts, on out-of-fold verdicts."""
    found: tuple[list[float], list[bool], list[int]] = ([], [], [])
    not_found: tuple[list[float], list[bool], list[int]] = ([], [], [])
    for claim, reading, fold in zip(claims, readings, split, strict=True):
        check = verifier.judge(reading, tuning=replace(tuning, event=by_fold[fold]))
        closest = max((e.closeness for e in check.evidence), default=0.0)
        decisive = next((e for e in check.evidence if e.stance != "related"), None)
        bucket = not_found if check.verdict == "not_found" else found
        bucket[0].append(closest if decisive is None else decisive.closeness)
        bucket[1].append(check.verdict == claim.label)
        bucket[2].append(int(fold))
    (a, b), found_record = _calibrate(found[0], found[1], np.asarray(found[2], dtype=int))
    (c, d), not_found_record = _calibrate(
        not_found[0], not_found[1], np.asarray(not_found[2], dtype=int)
    )
    tuning = replace(
        tuning,
        confidence_found=_curve(a, b, tuning.confidence_found),
        confidence_not_found=_curve(-c, -d, tuning.confidence_not_found),
    )
    return tuning, {"calibration_found": found_record, "calibration_not_found": not_found_record}


def _share_right(scores: Sequence[float]) -> float:
    return round(float(np.mean(np.asarray(scores) == 1.0)), 4)


def _claim_score(verdict: str, label: str) -> float:
    """The claim fit's objective for one claim: 1 for the right verdict, and a wrong
    "supported" costs as much as a right verdict gains (a journalist prints it)."""
    if verdict == label:
        return 1.0
    return -1.0 if verdict == "supported" else 0.0


def _values(point: dict[str, float]) -> dict[str, Any]:
    return dict(point)


def _curve(a: float, b: float, fallback: Any) -> Any:
    """``slope, center`` of the logistic ``a x + b`` (the fallback when it is flat)."""
    if abs(a) < 1e-6:
        return fallback
    return type(fallback)(slope=round(a, 4), center=round(-b / a, 4))


# ----------------------------------------------------------------------------- the quotes


def fit_cite(
    engine: Any, quotes: Sequence[Any], folds: np.ndarray
) -> tuple[CiteTuning, dict[str, Any]]:
    """Citation retrieval's constants chosen on the train quotes, in two grids (``choose``:
    the best point, and the k-fold estimate of choosing it): first the near threshold (it
    decides which quotes reach the second stage), then together the translated threshold,
    the unstated-number penalty and how many other-script passages each ranking adds."""
    from service.cite.matcher import Citer
    from service.lab.quotes import (
        NEAR_GRID,
        OTHER_PER_RANKING_GRID,
        TRANSLATED_GRID,
        UNSTATED_GRID,
        product_cite,
        quote_score,
        trace_quotes,
    )

    citer = Citer(engine)
    cite = product_cite(citer)

    def scores(tuning: CiteTuning) -> list[float]:
        citer.tuning = tuning
        return [quote_score(o) for o in trace_quotes(cite, quotes)]

    base = citer.tuning
    nears = [replace(base, near=near) for near in NEAR_GRID]
    first = choose(np.asarray([scores(t) for t in nears]), folds)
    near = nears[first.index]
    points = [
        replace(near, translated=t, unstated=u, other_per_ranking=k)
        for t in TRANSLATED_GRID
        for u in UNSTATED_GRID
        for k in OTHER_PER_RANKING_GRID
    ]
    second = choose(np.asarray([scores(t) for t in points]), folds)
    chosen = points[second.index]
    record = {
        "objective": "span found and kind right (an absent quote: nothing found; a false match -1)",
        "grid": {
            "near": list(NEAR_GRID),
            "translated": list(TRANSLATED_GRID),
            "unstated": list(UNSTATED_GRID),
            "other_per_ranking": list(OTHER_PER_RANKING_GRID),
        },
        "chosen": {
            "near": chosen.near,
            "translated": chosen.translated,
            "unstated": chosen.unstated,
            "other_per_ranking": chosen.other_per_ranking,
        },
        "near_objective_cross_validated": first.cross_validated,
        "objective_train": second.train,
        "objective_cross_validated": second.cross_validated,
        "quotes": len(quotes),
    }
    return chosen, record


# ----------------------------------------------------------------------------- the file


_CLOSENESS_KEYS = ("similarity", "coverage", "prior", "cross_script")


def tuned_json(
    fusion: FusionTuning,
    reader: ReaderTuning,
    claims: ClaimTuning,
    provenance: dict[str, Any],
    cite: CiteTuning,
) -> str:
    """The tuned file's text (``service.tuned`` reads it back)."""
    data = {
        "format": FORMAT,
        "provenance": provenance,
        "fusion": {
            "weights": fusion.weights,
            "protected": {group: list(names) for group, names in fusion.protected.items()},
            "keep_within": fusion.keep_within,
        },
        "reader": {
            "passages_read": reader.passages_read,
            "sentence": reader.sentence.to_json(),
            "span": reader.span.to_json(),
            "abstain": reader.abstain.to_json(),
            "abstain_threshold": reader.abstain_threshold,
            "confidence": reader.confidence.to_json(),
        },
        "claims": {
            "passages_read": claims.passages_read,
            "sentences_read": claims.sentences_read,
            "closeness": dict(zip(_CLOSENESS_KEYS, claims.closeness, strict=True)),
            "event": claims.event.to_json(),
            "min_event_support": claims.min_event_support,
            "min_event_contradict": claims.min_event_contradict,
            "contradict_unknown": int(claims.contradict_unknown),
            "support_unverifiable": int(claims.support_unverifiable),
            "confidence_found": vars(claims.confidence_found),
            "confidence_not_found": vars(claims.confidence_not_found),
        },
        "cite": {
            "passages_read": cite.passages_read,
            "near": cite.near,
            "translated": cite.translated,
            "unstated": cite.unstated,
            "other_per_ranking": cite.other_per_ranking,
            "closeness": dict(zip(_CLOSENESS_KEYS, cite.closeness, strict=True)),
        },
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _file_record(path: Path, rows: int) -> dict[str, Any]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"file": str(path), "sha256": digest, "train_rows": rows}


def fit(
    engine: Any,
    questions: Sequence[Question],
    claims: Sequence[Claim],
    files: tuple[Path, Path],
    *,
    folds: int = FOLDS,
    progress: bool = True,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    quotes: Sequence[Any] = (),
) -> tuple[str, dict[str, Any]]:
    """Fit both stages on the train rows given; the new tuned file's text and the
    provenance it records."""
    tuned: Tuned = engine.tuned
    fusion, fusion_record = fit_fusion(engine, questions, folds=folds, progress=progress)
    engine = copy.copy(engine)  # the caller's engine keeps its fusion
    engine.retriever = engine.retriever.with_tuning(fusion)  # the reader reads what it fuses
    split = stratified_folds([q.id for q in questions], [q.category for q in questions], folds)
    reader, reader_record = fit_reader(engine, questions, split, progress=progress)
    engine.extractor = engine.extractor.with_tuning(reader)  # the claims read with it
    claim_tuning, claims_record = fit_claims(engine, claims, folds=folds, progress=progress)
    cite, cite_record = tuned.cite, {"kept": "no quotes given"}
    if quotes:
        quote_folds = stratified_folds([q.id for q in quotes], [q.kind for q in quotes], folds)
        cite, cite_record = fit_cite(engine, quotes, quote_folds)
    provenance = {
        "how": "fusion, reader, claim check and citation retrieval fitted by `citeqa eval "
        "--fit` on the train "
        f"split only, {folds}-fold cross-validated (service/lab/fit.py); "
        "the test split is never read",
        "fitted_at": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "started_from": str(tuned.path.name),
        "data": [_file_record(files[0], len(questions)), _file_record(files[1], len(claims))],
        "folds": folds,
        "fusion": fusion_record,
        "reader": reader_record,
        "claims": claims_record,
        "cite": cite_record,
    }
    return tuned_json(fusion, reader, claim_tuning, provenance, cite), provenance
