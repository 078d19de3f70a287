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
   (a right answer, or an abstention on an unanswerable question) among those whose
   cross-validated false-abstain rate stays within ``MAX_FALSE_ABSTAIN``.
3. **Confidence**: a logistic regression of "the answer is right" on the candidate's score
   and the abstention probability, both out of fold (Platt scaling in two variables).

Only the rows given (the train split) are read.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import rankdata
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

__all__ = [
    "L2_GRID",
    "MAX_FALSE_ABSTAIN",
    "THRESHOLDS",
    "fit_reader",
    "fit_softmax",
    "fit_weighted_logistic",
]

L2_GRID = (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
ABSTAIN_L2_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
TIERS = (0.2, 0.4, 0.6, 1.0)  # how much F1 a precise span may give up and stay a positive
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.1, 0.91, 0.05))
MAX_FALSE_ABSTAIN = 0.08  # issue 20's bound on abstaining on answerable questions
_CONFIDENCE_FEATURES = ("candidate_logit", "answerable")


@dataclass(frozen=True)
class _Item:
    """One train question, read once: its candidates' features and labels."""

    question: Question
    reading: Any  # service.answer.extractor.Reading
    right: np.ndarray  # bool per candidate: answer_matches (what accuracy counts)
    f1: np.ndarray  # token F1 per candidate against the gold answers

    def positives(self, tier: float) -> np.ndarray:
        """The right candidates whose F1 is within ``tier`` of the best right one's: the
        span model learns to prefer a precise span by that much over a longer one."""
        if not self.right.any():
            return self.right
        best = self.f1[self.right].max()
        return self.right & (self.f1 >= best - tier)

    @property
    def sentence_of(self) -> np.ndarray:
        return np.asarray([c.sentence for c in self.reading.candidates])


def _item(question: Question, reading: Any, texts: Sequence[str]) -> _Item:
    right = np.asarray(
        [
            question.answerable and answer_matches(t, question.answers, question.parts)
            for t in texts
        ],
        dtype=bool,
    )
    f1 = np.asarray([token_f1(t, question.answers) if question.answerable else 0.0 for t in texts])
    return _Item(question, reading, right, f1)


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


def l2_by_cross_validation(
    rows: np.ndarray,
    target: np.ndarray,
    folds: np.ndarray,
    grid: Sequence[float],
    features: Sequence[str],
) -> tuple[float, dict[float, float], np.ndarray]:
    """The L2 of ``grid`` whose ``fit_weighted_logistic`` models, each fitted on the other
    folds, give the lowest held-out log loss; every L2's loss, and the chosen one's
    out-of-fold probabilities (``folds``: one per row)."""
    losses: dict[float, float] = {}
    by_l2: dict[float, np.ndarray] = {}
    for l2 in grid:
        predicted = np.zeros(len(rows))
        for fold in sorted(set(folds.tolist())):
            inside = folds != fold
            model = fit_weighted_logistic(rows[inside], target[inside], l2, features)
            predicted[~inside] = model.probabilities(rows[~inside])
        clipped = np.clip(predicted, 1e-6, 1 - 1e-6)
        losses[l2] = float(-np.mean(np.where(target, np.log(clipped), np.log(1 - clipped))))
        by_l2[l2] = predicted
    l2 = min(losses, key=lambda key: losses[key])
    return l2, losses, by_l2[l2]


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
        sentence_of = item.sentence_of
        firsts = np.flatnonzero(np.r_[True, sentence_of[1:] != sentence_of[:-1]])
        held = np.asarray([item.right[sentence_of == sentence_of[f]].any() for f in firsts])
        groups.append((item.reading.rows[firsts][:, columns], held))
    return groups


def _span_groups(items: Sequence[_Item], tier: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sentence that holds a positive: its candidates' span features and labels."""
    columns = [CANDIDATE_FEATURES.index(name) for name in SPAN_FEATURES]
    groups = []
    for item in items:
        sentence_of, positives = item.sentence_of, item.positives(tier)
        for sentence in np.unique(sentence_of[positives]):
            inside = sentence_of == sentence
            groups.append((item.reading.rows[inside][:, columns], positives[inside]))
    return groups


@dataclass(frozen=True)
class _Choice:
    sentence_l2: float
    span_l2: float
    tier: float
    held_out: dict[str, Any]  # the cross-validated figures behind each choice


def _held_out(
    items: Sequence[_Item], folds: np.ndarray, fit: Any, score: Any
) -> tuple[float, list[Any]]:
    """The mean of ``score(model, held-out items)`` over the folds, ``fit(items)`` fitted
    on the others; and the per-fold models."""
    values, models = [], []
    for fold in sorted(set(folds.tolist())):
        model = fit([i for i, f in zip(items, folds, strict=True) if f != fold])
        models.append(model)
        values += score(model, [i for i, f in zip(items, folds, strict=True) if f == fold])
    return float(np.mean(values)), models


def _sentence_right(model: LinearModel, items: Sequence[_Item]) -> list[float]:
    """Whether the sentence ``model`` ranks first holds a right candidate."""
    columns = [CANDIDATE_FEATURES.index(name) for name in SENTENCE_FEATURES]
    found = []
    for item in items:
        best = int(np.argmax(model.logits(item.reading.rows[:, columns])))
        found.append(float(item.right[item.sentence_of == item.sentence_of[best]].any()))
    return found


def _answer_quality(extractor: Any, tuning: ReaderTuning, items: Sequence[_Item]) -> list[Any]:
    """Per item: whether the best candidate under ``tuning`` is right, and its F1."""
    reader = extractor.with_tuning(tuning)
    chosen = [int(np.argmax(reader.scores(i.reading))) for i in items]
    return [(float(i.right[c]), float(i.f1[c])) for i, c in zip(items, chosen, strict=True)]


def _fit_candidates(
    extractor: Any, items: Sequence[_Item], folds: np.ndarray, bar: tqdm[Any]
) -> tuple[_Choice, list[ReaderTuning]]:
    """The penalties and the tier, chosen by k-fold CV on the answerable items: the
    sentence model's L2 by how often its first sentence holds the answer; then the span
    model's L2 and the tier by the mean of answer accuracy and F1. Returns the choice and
    the per-fold tunings at it (for the out-of-fold abstention rows)."""
    base = extractor.tuning
    sentence_scores = {}
    for l2 in L2_GRID:
        sentence_scores[l2], _ = _held_out(
            items,
            folds,
            lambda part, l2=l2: fit_softmax(_sentence_groups(part), l2, SENTENCE_FEATURES),
            _sentence_right,
        )
        bar.update()
    sentence_l2 = _best(sentence_scores)

    def fit(part: Sequence[_Item], span_l2: float, tier: float) -> ReaderTuning:
        sentence = fit_softmax(_sentence_groups(part), sentence_l2, SENTENCE_FEATURES)
        span = fit_softmax(_span_groups(part, tier), span_l2, SPAN_FEATURES)
        return replace(base, sentence=sentence, span=span)

    answer_scores, per_fold = {}, {}
    for span_l2, tier in itertools.product(L2_GRID, TIERS):
        quality, per_fold[span_l2, tier] = _held_out(
            items,
            folds,
            lambda part, a=span_l2, b=tier: fit(part, a, b),
            lambda tuning, part: [
                (right + f1) / 2 for right, f1 in _answer_quality(extractor, tuning, part)
            ],
        )
        answer_scores[span_l2, tier] = quality
        bar.update()
    span_l2, tier = _best(answer_scores)
    choice = _Choice(
        sentence_l2,
        span_l2,
        tier,
        {
            "sentence_top1_by_l2": {f"{k:g}": round(v, 4) for k, v in sentence_scores.items()},
            "answer_accuracy_and_f1_by_span_l2_and_tier": {
                f"{a:g},{b:g}": round(v, 4) for (a, b), v in answer_scores.items()
            },
        },
    )
    return choice, per_fold[span_l2, tier]


def _best(scores: dict[Any, float]) -> Any:
    """The best key; ties go to the first in the grid's order."""
    top = max(scores.values())
    return next(key for key, value in scores.items() if value >= top - 1e-12)


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
    """The abstention classifier (its L2 chosen by held-out log loss), its threshold
    (chosen by held-out accuracy) and the out-of-fold probabilities."""
    l2, losses, probabilities = l2_by_cross_validation(
        rows, answerable, folds, ABSTAIN_L2_GRID, ABSTAIN_FEATURES
    )
    trade_off = {t: _abstention_at(probabilities, t, answerable, right) for t in THRESHOLDS}
    chosen = _threshold(trade_off)
    model = fit_weighted_logistic(rows, answerable, l2, ABSTAIN_FEATURES)
    record = {
        "l2": l2,
        "log_loss_cross_validated_by_l2": {f"{k:g}": round(v, 4) for k, v in losses.items()},
        "auc_cross_validated": round(_auc(probabilities, answerable), 4),
        "threshold": chosen,
        "threshold_rule": "best cross-validated accuracy among the thresholds whose "
        f"cross-validated false-abstain rate is at most {MAX_FALSE_ABSTAIN} (issue 20)",
        "accuracy_cross_validated": trade_off[chosen]["accuracy"],
        "cross_validated_by_threshold": {str(t): figures for t, figures in trade_off.items()},
    }
    return model, chosen, probabilities, record


def _abstention_at(
    probabilities: np.ndarray, threshold: float, answerable: np.ndarray, right: np.ndarray
) -> dict[str, float]:
    """The held-out figures of abstaining below ``threshold``: accuracy (a right answer,
    or an abstention on an unanswerable question), abstain precision and recall, and the
    false-abstain rate (answerable questions abstained on)."""
    abstains = probabilities < threshold
    unanswerable = ~answerable
    handled = np.where(answerable, ~abstains & right, abstains)
    return {
        "accuracy": round(float(handled.mean()), 4),
        "abstain_precision": round(
            float((abstains & unanswerable).sum() / max(abstains.sum(), 1)), 4
        ),
        "abstain_recall": round(
            float((abstains & unanswerable).sum() / max(unanswerable.sum(), 1)), 4
        ),
        "false_abstain_rate": round(
            float((abstains & answerable).sum() / max(answerable.sum(), 1)), 4
        ),
    }


def _threshold(trade_off: dict[float, dict[str, float]]) -> float:
    """The threshold of the best accuracy among those that abstain on at most
    ``MAX_FALSE_ABSTAIN`` of the answerable questions (the lowest threshold if none
    does): accuracy alone does not mind abstaining on a question the reader would have
    answered wrong, and would trade a trusted "not found" for it."""
    allowed = [t for t, f in trade_off.items() if f["false_abstain_rate"] <= MAX_FALSE_ABSTAIN]
    if not allowed:
        return min(trade_off)
    return max(allowed, key=lambda t: (trade_off[t]["accuracy"], -abs(t - 0.5)))


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The area under the ROC curve: the chance a positive outscores a negative."""
    ranks = rankdata(scores)  # ties share their mean rank
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


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
        items.append(_item(question, reading, extractor.candidate_texts(reading)))
    answerable_items = [i for i in items if i.question.answerable]
    answerable_folds = folds[[i.question.answerable for i in items]]
    steps = len(L2_GRID) * (1 + len(TIERS))
    with tqdm(total=steps, desc="candidate scorer", disable=not progress) as bar:
        choice, per_fold = _fit_candidates(extractor, answerable_items, answerable_folds, bar)
    sentence = fit_softmax(
        _sentence_groups(answerable_items), choice.sentence_l2, SENTENCE_FEATURES
    )
    span = fit_softmax(_span_groups(answerable_items, choice.tier), choice.span_l2, SPAN_FEATURES)
    pair = replace(extractor.tuning, sentence=sentence, span=span)
    # unanswerable questions get the model of their fold too, through their fold number
    fold_ids = sorted(set(answerable_folds.tolist()))
    fold_tunings = [
        per_fold[fold_ids.index(f)] if f in fold_ids else pair for f in range(max(folds) + 1)
    ]
    rows, logits, right = _out_of_fold(extractor, items, folds, fold_tunings)
    answered = [
        _answer_quality(extractor, t, [i])
        for i, t in zip(items, [fold_tunings[f] for f in folds], strict=True)
        if i.question.answerable
    ]
    answerable = np.asarray([i.question.answerable for i in items], dtype=bool)
    abstain, threshold, probabilities, abstain_record = _fit_abstention(
        rows, answerable, right, folds
    )
    confidence, confidence_record = _fit_confidence(logits, probabilities, right, folds)
    tuning = replace(pair, abstain=abstain, abstain_threshold=threshold, confidence=confidence)
    record = {
        "candidate_scorer": {
            "model": "conditional logits: which sentence of the question's, then which "
            "candidate of that sentence",
            "l2_grid": list(L2_GRID),
            "tiers": list(TIERS),
            "sentence_l2": choice.sentence_l2,
            "span_l2": choice.span_l2,
            "tier": choice.tier,
            **choice.held_out,
            "answer_accuracy_cross_validated": round(
                float(np.mean([a[0][0] for a in answered])), 4
            ),
            "f1_cross_validated": round(float(np.mean([a[0][1] for a in answered])), 4),
            "questions": len(answerable_items),
            "candidates": int(sum(len(i.right) for i in items)),
        },
        "abstention": abstain_record,
        "confidence": confidence_record,
        "kept": ["passages_read"],
    }
    return tuning, record
