"""The reader's fitted models: the linear model the service reads, and the two fits the
lab makes. No index, no models."""

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
