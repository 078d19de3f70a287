"""The reader's fitted models: the linear model the service reads, and the two fits the
lab makes. No index, no models."""

from typing import Any

import numpy as np
import pytest

from service.answer.model import LinearModel
from service.lab.fit_reader import fit_softmax, fit_weighted_logistic


def test_a_linear_model_standardises_then_weighs() -> None:
    model = LinearModel(("a", "b"), (1.0, 0.0), (2.0, 1.0), (1.0, -1.0), 0.5)
    rows = np.array([[3.0, 1.0], [1.0, 0.0]])
    assert model.logits(rows).tolist() == pytest.approx([0.5, 0.5])
    assert model.probabilities(np.array([[1.0, -10.0]]))[0] > 0.99
    assert model.row({"b": 2.0, "a": 5.0}).tolist() == [[5.0, 2.0]]


def test_a_linear_model_round_trips_through_json() -> None:
    model = LinearModel(("a",), (0.25,), (2.0,), (-1.5,), 0.125)
    assert LinearModel.from_json(model.to_json()) == model


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mean": (0.0, 0.0)}, "one mean, scale and weight per feature"),
        ({"scale": (0.0,)}, "scales must be positive"),
    ],
)
def test_a_malformed_linear_model_is_refused(kwargs: dict, message: str) -> None:
    fields = {"features": ("a",), "mean": (0.0,), "scale": (1.0,), "weights": (1.0,)}
    with pytest.raises(ValueError, match=message):
        LinearModel(**(fields | kwargs), intercept=0.0)


def test_missing_features_are_named() -> None:
    model = LinearModel(("a", "b"), (0.0, 0.0), (1.0, 1.0), (1.0, 1.0), 0.0)
    with pytest.raises(KeyError, match="features not computed: b"):
        model.row({"a": 1.0})


def test_the_softmax_fit_learns_which_feature_marks_the_answer() -> None:
    """In each group the answer is the row with the largest first feature; the second
    feature is noise. The fitted model must rank the answer first in new groups."""
    rng = np.random.default_rng(0)

    def group() -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((6, 2))
        return x, x[:, 0] == x[:, 0].max()

    model = fit_softmax([group() for _ in range(60)], 1.0, ("signal", "noise"))
    assert model.weights[0] > 5 * abs(model.weights[1])
    fresh = [group() for _ in range(50)]
    assert sum(bool(y[int(np.argmax(model.logits(x)))]) for x, y in fresh) >= 45


def test_the_softmax_fit_skips_groups_without_an_answer() -> None:
    x = np.array([[1.0], [0.0]])
    model = fit_softmax([(x, np.array([True, False])), (x, np.array([False, False]))], 1.0, ("f",))
    assert model.weights[0] > 0


def test_the_logistic_fit_is_calibrated_on_its_own_data() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 1))
    y = rng.random(2000) < 1 / (1 + np.exp(-(2 * x[:, 0] - 0.5)))
    model = fit_weighted_logistic(x, y, 0.01, ("x",))
    assert model.probabilities(x).mean() == pytest.approx(y.mean(), abs=0.01)
    assert model.weights[0] / model.scale[0] == pytest.approx(2.0, abs=0.3)


def test_a_mention_is_found_as_written_or_through_its_translation() -> None:
    from service.answer.features import Mention

    ninth = Mention("ninth", frozenset({"第九"}))
    assert ninth.found("the ninth summit", frozenset())
    assert ninth.found("第九次领导人会议", frozenset({"第九", "会议"}))
    assert not ninth.found("the tenth summit", frozenset({"第十"}))


# ---------------------------------------------------------------- abstention evidence


def _asked(numbers: tuple[str, ...] = (), bridge: dict[str, float] | None = None) -> Any:
    from service.answer.analysis import Analysis
    from service.answer.features import Asked, Mention
    from service.records import Query

    terms = frozenset({"summit", "held"})
    query = Query(
        "When will the tenth summit be held?",
        "",
        "en",
        frozenset({"en"}),
        frozenset({"latin"}),
        terms,
    )
    analysis = Analysis("date", None, None, False, (), numbers, frozenset({"held"}))
    idf = {"summit": 2.0, "held": 1.0, "峰会": 3.0, "举行": 1.0}
    mentions = tuple(Mention(n, frozenset()) for n in numbers)
    return Asked(query, analysis, idf, (), mentions, frozenset(), bridge or {})


def _best(**values: float) -> dict[str, float]:
    base = {
        "has_numbers": 0.0,
        "numbers_found": 1.0,
        "has_entities": 0.0,
        "entities_found": 1.0,
        "same_script": 1.0,
        "similarity_mean": 0.5,
    }
    return base | values


def _evidence(
    asked: Any,
    best: dict[str, float],
    *,
    states_numbers: bool = False,
    other: frozenset[str] = frozenset(),
    known: Any = lambda t: True,
    sentences: list[dict[str, float]] | None = None,
) -> dict[str, float]:
    from service.answer.features import Reach, evidence_features

    return evidence_features(
        asked, Reach(other, states_numbers), sentences or [best], best, known=known
    )


def test_a_number_the_best_sentence_states_instead_of_the_asked_one_is_a_conflict() -> None:
    """ "The tenth summit" over a sentence that dates the ninth: the question's number is
    missing and the sentence states another, which a missing number alone does not say."""
    asked = _asked(numbers=("tenth",))
    lacking = _best(has_numbers=1.0, numbers_found=0.0)
    assert _evidence(asked, lacking, states_numbers=True)["number_conflict"] == 1.0
    assert _evidence(asked, lacking, states_numbers=False)["number_conflict"] == 0.0
    stated = _best(has_numbers=1.0, numbers_found=1.0)
    assert _evidence(asked, stated, states_numbers=True)["number_conflict"] == 0.0


def test_a_number_any_sentence_read_states_counts_as_within_reach() -> None:
    asked = _asked(numbers=("tenth",))
    best = _best(has_numbers=1.0, numbers_found=0.0)
    other = _best(has_numbers=1.0, numbers_found=1.0, similarity_mean=0.2)
    found = _evidence(asked, best, sentences=[best, other])
    assert found["numbers_anywhere"] == 1.0
    assert found["missing_numbers_same"] == 1.0
    assert _evidence(asked, best | {"same_script": 0.0})["missing_numbers_same"] == 0.0


def test_words_the_corpus_never_holds_are_weighed_by_idf() -> None:
    asked = _asked()
    found = _evidence(asked, _best(), known=lambda term: term != "summit")
    assert found["unknown_terms"] == pytest.approx(2.0 / 3.0)  # summit 2 of summit + held 3
    assert _evidence(asked, _best())["unknown_terms"] == 0.0


def test_the_question_carried_into_the_other_language_is_looked_for_in_its_passages() -> None:
    asked = _asked(bridge={"峰会": 1.0, "举行": 1.0})
    assert _evidence(asked, _best(), other=frozenset({"峰会"}))["bridged_reach"] == 0.75
    assert _evidence(asked, _best(), other=frozenset())["bridged_reach"] == 0.0


def test_the_best_sentence_is_compared_with_the_median_sentence_read() -> None:
    best = _best(similarity_mean=0.8)
    sentences = [best, _best(similarity_mean=0.2), _best(similarity_mean=0.4)]
    found = _evidence(_asked(), best, sentences=sentences)
    assert found["similarity_top"] == 0.8
    assert found["similarity_gap"] == pytest.approx(0.4)
    assert found["similarity_top_across"] == 0.0


def test_the_threshold_is_the_most_accurate_within_the_false_abstain_bound() -> None:
    from service.lab.fit_reader import MAX_FALSE_ABSTAIN, _threshold

    def at(accuracy: float, false_abstain: float) -> dict[str, float]:
        return {"accuracy": accuracy, "false_abstain_rate": false_abstain}

    trade_off = {0.3: at(0.5, 0.02), 0.5: at(0.6, MAX_FALSE_ABSTAIN), 0.7: at(0.7, 0.2)}
    assert _threshold(trade_off) == 0.5  # 0.7 is more accurate but abstains too often
    assert _threshold({0.3: at(0.5, 0.3), 0.5: at(0.6, 0.4)}) == 0.3


def test_the_auc_matches_a_hand_count() -> None:
    from service.lab.fit_reader import _auc

    scores = np.array([0.9, 0.4, 0.4, 0.1])
    positive = np.array([True, True, False, False])
    # pairs (positive, negative): 0.9>0.4, 0.9>0.1, 0.4=0.4 (half), 0.4>0.1 -> 3.5 of 4
    assert _auc(scores, positive) == pytest.approx(3.5 / 4)
