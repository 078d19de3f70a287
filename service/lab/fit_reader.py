"""Fit the reader's three models on the train split (part of ``citeqa eval --fit``).

1. **Candidate scorer**: a conditional logit (a softmax over each question's candidates)
   of which candidate is the answer, with an L2 penalty chosen by k-fold cross-validation
   on top-1 answer accuracy. A candidate is a positive when it matches a gold answer
   (``answer_matches``) and its token F1 is within 0.2 of the best matching candidate's,
   so a precise span is preferred to the whole sentence when the annotations hold one.
2. **Abstention classifier**: a logistic regression of "the question is answerable" on the
   best candidate's question-level features (``ABSTAIN_FEATURES``), computed with the
   candidate scorer fitted on the other folds, so the classifier sees the scores it will
   meet on new questions. Its threshold is the one with the best cross-validated accuracy
   (a right answer, or an abstention on an unanswerable question).
3. **Confidence**: a logistic regression of "the answer is right" on the candidate's score
   and the abstention probability, both out of fold (Platt scaling in two variables).

Only the rows given (the train split) are read.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import minimize
from tqdm.auto import tqdm

from service.answer.features import (
    ABSTAIN_FEATURES,
    CANDIDATE_FEATURES,
    SENTENCE_FEATURES,
    SPAN_FEATURES,
)
from service.answer.model import LinearModel
from service.lab.evaluate import Question, answer_matches, expected_calibration_error, token_f1
from service.tuned import ReaderTuning

__all__ = ["L2_GRID", "THRESHOLDS", "fit_reader", "fit_softmax", "fit_weighted_logistic"]

L2_GRID = (1.0, 10.0, 100.0, 1000.0)
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.1, 0.91, 0.05))
_CONFIDENCE_FEATURES = ("candidate_logit", "answerable")


@dataclass(frozen=True)
class _Item:
    """One train question, read once: its candidates' features and labels."""

    question: Question
    reading: Any  # service.answer.extractor.Reading
    positives: np.ndarray  # bool per candidate
    right: np.ndarray  # bool per candidate: answer_matches (what accuracy counts)


def _label(question: Question, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    right = np.asarray(
        [
            question.answerable and answer_matches(t, question.answers, question.parts)
            for t in texts
        ],
        dtype=bool,
    )
    if not right.any():
        return right, right
    f1 = np.asarray(
        [token_f1(t, question.answers) if r else 0.0 for t, r in zip(texts, right, strict=True)]
    )
    return right & (f1 >= f1.max() - 0.2), right


# ------------------------------------------------------------------------------- models


def _standardise(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit_softmax(
    groups: Sequence[tuple[np.ndarray, np.ndarray]], l2: float, names: Sequence[str]
) -> LinearModel:
    """A conditional logit over groups of rows: ``groups`` is (features, positives) per
    question; the loss is -log of the softmax mass on the positives, plus ``l2 |w|^2 / 2``."""
    rows = np.vstack([x for x, _ in groups])
    mean, scale = _standardise(rows)
    standard = [((x - mean) / scale, y.astype(bool)) for x, y in groups if y.any()]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, gradient = 0.5 * l2 * w @ w, l2 * w
        for x, y in standard:
            z = x @ w
            z = z - z.max()
            p = np.exp(z) / np.exp(z).sum()
            q = np.where(y, p, 0.0) / p[y].sum()  # the posterior over the positives
            total -= np.log(p[y].sum())
            gradient = gradient + x.T @ (p - q)
        return float(total), gradient

    result = minimize(loss, np.zeros(rows.shape[1]), jac=True, method="L-BFGS-B")
    return LinearModel(
        tuple(names), tuple(mean.tolist()), tuple(scale.tolist()), tuple(result.x.tolist()), 0.0
    )


def fit_weighted_logistic(
    rows: np.ndarray, target: np.ndarray, l2: float, names: Sequence[str]
) -> LinearModel:
    """A logistic regression with an L2 penalty on the weights (not the intercept)."""
    mean, scale = _standardise(rows)
    x = np.column_stack([(rows - mean) / scale, np.ones(len(rows))])
    y = target.astype(float)
    ridge = np.diag([l2] * rows.shape[1] + [0.0])
    w = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-x @ w))
        gradient = x.T @ (p - y) + ridge @ w
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + ridge + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return LinearModel(
        tuple(names),
        tuple(mean.tolist()),
        tuple(scale.tolist()),
        tuple(w[:-1].tolist()),
        float(w[-1]),
    )


# --------------------------------------------------------------------------- the stages


def _sentence_groups(items: Sequence[_Item]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per question: one row per sentence (its sentence features), positive where the
    sentence holds a right candidate."""
    columns = [CANDIDATE_FEATURES.index(name) for name in SENTENCE_FEATURES]
    groups = []
    for item in items:
        sentence_of = np.asarray([c.sentence for c in item.reading.candidates])
        firsts = np.flatnonzero(np.r_[True, sentence_of[1:] != sentence_of[:-1]])
        held = np.asarray([item.right[sentence_of == sentence_of[f]].any() for f in firsts])
        groups.append((item.reading.rows[firsts][:, columns], held))
    return groups


def _span_groups(items: Sequence[_Item]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sentence that holds a positive: its candidates' span features and labels."""
    columns = [CANDIDATE_FEATURES.index(name) for name in SPAN_FEATURES]
    groups = []
    for item in items:
        sentence_of = np.asarray([c.sentence for c in item.reading.candidates])
        for sentence in np.unique(sentence_of[item.positives]):
            inside = sentence_of == sentence
            groups.append((item.reading.rows[inside][:, columns], item.positives[inside]))
    return groups


def _fit_pair(items: Sequence[_Item], l2: float, base: ReaderTuning) -> ReaderTuning:
    sentence = fit_softmax(_sentence_groups(items), l2, SENTENCE_FEATURES)
    span = fit_softmax(_span_groups(items), l2, SPAN_FEATURES)
    return replace(base, sentence=sentence, span=span)


def _top_right(extractor: Any, tuning: ReaderTuning, items: Sequence[_Item]) -> np.ndarray:
    """Whether each item's best candidate under ``tuning`` is right."""
    reader = extractor.with_tuning(tuning)
    return np.asarray(
        [bool(i.right[int(np.argmax(reader.scores(i.reading)))]) for i in items], dtype=float
    )


def _fit_candidates(
    extractor: Any, items: Sequence[_Item], folds: np.ndarray, bar: tqdm[Any]
) -> tuple[float, dict[str, float], list[ReaderTuning]]:
    """The chosen L2, the cross-validated top-1 accuracy per L2, and the tunings fitted
    on all folds but one (one per fold) at the chosen L2."""
    answerable = [n for n, i in enumerate(items) if i.question.answerable]
    held: dict[float, float] = {}
    per_fold: dict[float, list[ReaderTuning]] = {}
    base = extractor.tuning
    for l2 in L2_GRID:
        scores, tunings = np.zeros(len(answerable)), []
        for fold in sorted(set(folds.tolist())):
            inside = [items[n] for n in answerable if folds[n] != fold]
            tuning = _fit_pair(inside, l2, base)
            tunings.append(tuning)
            out = [k for k, n in enumerate(answerable) if folds[n] == fold]
            scores[out] = _top_right(extractor, tuning, [items[answerable[k]] for k in out])
            bar.update()
        held[l2] = float(scores.mean())
        per_fold[l2] = tunings
    chosen = max(L2_GRID, key=lambda l2: (held[l2], -abs(np.log10(l2) - 1)))
    return chosen, {str(k): round(v, 4) for k, v in held.items()}, per_fold[chosen]


def _out_of_fold(
    extractor: Any, items: Sequence[_Item], folds: np.ndarray, tunings: Sequence[ReaderTuning]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item, with the fold's models: the abstention features, the best candidate's
    score and whether that candidate is right."""
    rows, logits, right = [], [], []
    fold_ids = sorted(set(folds.tolist()))
    for item, fold in zip(items, folds, strict=True):
        reader = extractor.with_tuning(tunings[fold_ids.index(int(fold))])
        best = reader.choose(item.reading)
        features = reader.abstain_row(item.reading, best)
        rows.append([features[name] for name in ABSTAIN_FEATURES])
        logits.append(best.logit)
        right.append(bool(item.right[item.reading.candidates.index(best.candidate)]))
    return np.asarray(rows), np.asarray(logits), np.asarray(right)


def _fit_abstention(
    rows: np.ndarray, answerable: np.ndarray, right: np.ndarray, folds: np.ndarray
) -> tuple[LinearModel, float, np.ndarray, dict[str, Any]]:
    """The abstention classifier, its threshold (chosen by held-out accuracy) and the
    out-of-fold probabilities."""
    probabilities = np.zeros(len(rows))
    for fold in sorted(set(folds.tolist())):
        inside = folds != fold
        model = fit_weighted_logistic(rows[inside], answerable[inside], 1.0, ABSTAIN_FEATURES)
        probabilities[~inside] = model.probabilities(rows[~inside])
    accuracy = {}
    for threshold in THRESHOLDS:
        answers = probabilities >= threshold
        handled = np.where(answerable, answers & right, ~answers)
        accuracy[threshold] = float(handled.mean())
    chosen = max(THRESHOLDS, key=lambda t: (accuracy[t], -abs(t - 0.5)))
    model = fit_weighted_logistic(rows, answerable, 1.0, ABSTAIN_FEATURES)
    record = {
        "threshold": chosen,
        "accuracy_cross_validated": round(accuracy[chosen], 4),
        "accuracy_by_threshold": {str(t): round(a, 4) for t, a in accuracy.items()},
    }
    return model, chosen, probabilities, record


def _fit_confidence(
    logits: np.ndarray, answerable: np.ndarray, right: np.ndarray, folds: np.ndarray
) -> tuple[LinearModel, dict[str, Any]]:
    rows = np.column_stack([logits, answerable])
    predicted = np.zeros(len(rows))
    for fold in sorted(set(folds.tolist())):
        inside = folds != fold
        model = fit_weighted_logistic(rows[inside], right[inside], 0.1, _CONFIDENCE_FEATURES)
        predicted[~inside] = model.probabilities(rows[~inside])
    model = fit_weighted_logistic(rows, right, 0.1, _CONFIDENCE_FEATURES)
    pairs = list(zip(predicted.tolist(), right.tolist(), strict=True))
    return model, {
        "rows": len(rows),
        "share_right": round(float(right.mean()), 4),
        "ece_cross_validated": expected_calibration_error(pairs),
    }


def fit_reader(
    engine: Any, questions: Sequence[Question], folds: np.ndarray, *, progress: bool = True
) -> tuple[ReaderTuning, dict[str, Any]]:
    """The reader's models fitted on ``questions`` (the train split), and what the fit
    measured. ``folds`` gives each question's fold (stratified by category)."""
    from service.engine import clean_question

    extractor = engine.extractor
    depth = extractor.passages_read
    items = []
    for question in tqdm(questions, desc="reading", disable=not progress, file=sys.stderr):
        query = engine.query(clean_question(question.question))
        reading = extractor.read(query, engine.retriever.search(query, depth))
        positives, right = _label(question, extractor.candidate_texts(reading))
        items.append(_Item(question, reading, positives, right))
    k = len(set(folds.tolist()))
    with tqdm(total=k * len(L2_GRID), desc="candidate scorer", disable=not progress) as bar:
        l2, by_l2, fold_tunings = _fit_candidates(extractor, items, folds, bar)
    answerable_items = [i for i in items if i.question.answerable and i.positives.any()]
    pair = _fit_pair([i for i in items if i.question.answerable], l2, extractor.tuning)
    rows, logits, right = _out_of_fold(extractor, items, folds, fold_tunings)
    answerable = np.asarray([i.question.answerable for i in items], dtype=bool)
    abstain, threshold, probabilities, abstain_record = _fit_abstention(
        rows, answerable, right, folds
    )
    confidence, confidence_record = _fit_confidence(logits, probabilities, right, folds)
    tuning = replace(pair, abstain=abstain, abstain_threshold=threshold, confidence=confidence)
    record = {
        "candidate_scorer": {
            "model": "conditional logits: which sentence of the question's, then which "
            "candidate of that sentence; one L2 for both, chosen by CV",
            "l2_grid": list(L2_GRID),
            "l2": l2,
            "top1_accuracy_cross_validated_by_l2": by_l2,
            "questions": len(answerable_items),
            "candidates": int(sum(len(i.positives) for i in items)),
        },
        "abstention": abstain_record,
        "confidence": confidence_record,
        "kept": ["passages_read"],
    }
    return tuning, record
