"""`citeqa eval --fit`: folds, the cross-validated choice, Platt scaling, and a fit that
reads only the train split and writes a file the service loads."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.answer.features import SENTENCE_FEATURES, SPAN_FEATURES
from service.config import Settings
from service.engine import Engine
from service.lab import commands, fit, fit_reader
from service.lab.evaluate import load_claims, load_questions
from service.tuned import load_tuned
from service.verify.verifier import EVENT_FEATURES

EVAL = Path(__file__).resolve().parent.parent / "eval"


def test_folds_are_stratified_deterministic_and_order_free() -> None:
    ids = [f"q{i}" for i in range(23)]
    strata = ["a"] * 10 + ["b"] * 13
    folds = fit.stratified_folds(ids, strata, 5)
    for stratum in ("a", "b"):
        sizes = Counter_of(folds[[s == stratum for s in strata]])
        assert max(sizes) - min(sizes) <= 1  # each stratum dealt evenly
    reversed_folds = fit.stratified_folds(ids[::-1], strata[::-1], 5)[::-1]
    assert (folds == reversed_folds).all()  # the file's order does not matter


def Counter_of(values: np.ndarray) -> list[int]:
    return [int((values == f).sum()) for f in sorted(set(values.tolist()))]


def test_choose_takes_the_best_point_and_estimates_it_held_out() -> None:
    rng = np.random.default_rng(0)
    scores = (rng.random((3, 60)) < np.array([[0.4], [0.8], [0.5]])).astype(float)
    folds = np.arange(60) % 5
    choice = fit.choose(scores, folds)
    assert choice.index == 1
    assert choice.train == pytest.approx(scores[1].mean(), abs=1e-4)
    assert len(choice.per_fold) == 5 and choice.cross_validated <= choice.train + 1e-9


def test_ties_go_to_the_middle_of_the_grid() -> None:
    assert fit.choose(np.ones((5, 10)), np.arange(10) % 2).index == 2


def test_platt_scaling_recovers_a_known_curve() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 4000)
    y = rng.random(4000) < 1 / (1 + np.exp(-(3 * x - 0.5)))
    a, b = fit.fit_logistic(x, y, l2=0.0)
    assert a == pytest.approx(3, abs=0.4) and b == pytest.approx(-0.5, abs=0.2)


def test_the_fit_refuses_files_without_a_train_split(tmp_path: Path, settings: Settings) -> None:
    questions = tmp_path / "q.jsonl"
    rows = [
        {"id": f"t{i}", "question": "?", "answers": [], "category": "en", "split": "test"}
        for i in range(20)
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    status = commands.fit_command(
        settings,
        questions_file=questions,
        claims_file=EVAL / "claims.jsonl",
        out=tmp_path / "tuned.json",
        quiet=True,
    )
    assert status == 2 and not (tmp_path / "tuned.json").exists()


def test_the_fit_reads_only_the_train_split(
    tmp_path: Path, settings: Settings, corpus_index: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_fit(engine: Any, questions: Any, claims: Any, *args: Any, **kwargs: Any) -> Any:
        seen["questions"], seen["claims"] = questions, claims
        reader = {
            "candidate_scorer": {"answer_accuracy_cross_validated": 0.5, "f1_cross_validated": 0.4},
            "abstention": {"accuracy_cross_validated": 0.4},
            "confidence": {"ece_cross_validated": 0.1},
        }
        claims_record = {
            "label_accuracy_train": 0.5,
            "objective_train": 0.4,
            "objective_cross_validated": 0.3,
        }
        return "{}\n", {"reader": reader, "claims": claims_record}

    monkeypatch.setattr(fit, "fit", fake_fit)
    status = commands.fit_command(
        settings,
        questions_file=EVAL / "questions.jsonl",
        claims_file=EVAL / "claims.jsonl",
        out=tmp_path / "tuned.json",
        quiet=True,
    )
    assert status == 0
    assert seen["questions"] and {q.split for q in seen["questions"]} == {"train"}
    assert seen["claims"] and {c.split for c in seen["claims"]} == {"train"}


def test_a_small_fit_writes_constants_the_service_loads(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fit_reader, "L2_GRID", (1.0,))
    monkeypatch.setattr(fit, "FUSION_WEIGHTS", (0.0, 1.0))
    monkeypatch.setattr(
        fit,
        "CLAIM_GRID",
        {k: v[:2] for k, v in fit.CLAIM_GRID.items()},
    )
    questions = [q for q in load_questions(EVAL / "questions.jsonl") if q.split == "train"]
    claims = [c for c in load_claims(EVAL / "claims.jsonl") if c.split == "train"]
    text, provenance = fit.fit(
        engine,
        questions[::6],
        claims[::4],
        (EVAL / "questions.jsonl", EVAL / "claims.jsonl"),
        folds=3,
        progress=False,
    )
    path = tmp_path / "tuned.json"
    path.write_text(text, encoding="utf-8")
    tuned = load_tuned(path)
    assert tuned.reader.sentence.features == SENTENCE_FEATURES
    assert tuned.reader.span.features == SPAN_FEATURES
    assert tuned.reader.abstain_threshold in fit_reader.THRESHOLDS
    assert tuned.claims.min_event_support in fit.CLAIM_GRID["min_event_support"]
    assert tuned.claims.event.features == EVENT_FEATURES
    assert set(tuned.fusion.weights["other"]) == set(engine.retriever.retrievers)
    assert all(w in (0.0, 1.0) for w in tuned.fusion.weights["other"].values())
    assert (
        "protection" in provenance["fusion"]
        and provenance["fusion"]["points"] == 2 ** len(engine.retriever.retrievers) - 1
    )
    reader = provenance["reader"]
    scorer = reader["candidate_scorer"]
    assert scorer["sentence_l2"] == scorer["span_l2"] == 1.0 and scorer["tier"] in fit_reader.TIERS
    assert 0 <= reader["abstention"]["accuracy_cross_validated"] <= 1
    assert 0 <= reader["confidence"]["ece_cross_validated"] <= 1
    assert provenance["data"][0]["train_rows"] == len(questions[::6])
    assert "test split is never read" in provenance["how"]
