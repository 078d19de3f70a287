"""Fusion is checked against rankings computed by hand."""

import pytest

from service.retrieve.fusion import (
    competent_rrf,
    competent_zscore,
    fuse,
    minmax_fusion,
    reciprocal_rank_fusion,
    weighted_zscore,
)
from service.tuned import FusionTuning

RUNS = {
    "a": [("x", 9.0), ("y", 5.0), ("z", 1.0)],
    "b": [("y", 0.9), ("w", 0.8)],
}


def test_rrf_hand_computed() -> None:
    fused = dict(reciprocal_rank_fusion(RUNS, rrf_k=60))
    assert fused["y"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["x"] == pytest.approx(1 / 61)
    assert fused["w"] == pytest.approx(1 / 62)
    assert fused["z"] == pytest.approx(1 / 63)
    assert [item for item, _ in reciprocal_rank_fusion(RUNS, rrf_k=60)] == ["y", "x", "w", "z"]


def test_rrf_truncates_to_k() -> None:
    assert [item for item, _ in reciprocal_rank_fusion(RUNS, k=2)] == ["y", "x"]


def test_competent_rrf_averages_over_retrievers_that_can_read() -> None:
    # "b" cannot read "x": x is judged by "a" alone, so its single first place counts fully.
    fused = dict(competent_rrf(RUNS, lambda run, item: not (run == "b" and item == "x")))
    assert fused["x"] == pytest.approx(1 / 61)
    assert fused["y"] == pytest.approx((1 / 62 + 1 / 61) / 2)
    assert fused["z"] == pytest.approx((1 / 63 + 0) / 2)
    assert fused["x"] > fused["y"]


def test_competent_rrf_drops_items_nobody_can_read() -> None:
    assert competent_rrf(RUNS, lambda run, item: item != "w")[-1][0] != "w"
    assert "w" not in dict(competent_rrf(RUNS, lambda run, item: item != "w"))


def test_plain_rrf_lets_silence_outvote_a_single_retriever() -> None:
    # The failure competent_rrf fixes: an item only one retriever can see loses to
    # items that two retrievers agree on, even when that one ranks it first.
    runs = {
        "multilingual": [("zh", 0.9), ("en1", 0.5), ("en2", 0.4)],
        "english": [("en1", 0.8), ("en2", 0.7)],
        "bm25": [("en2", 7.0), ("en1", 6.0)],
    }
    plain = [item for item, _ in reciprocal_rank_fusion(runs)]
    assert plain.index("zh") == 2
    competent = competent_rrf(runs, lambda run, item: run == "multilingual" or item != "zh")
    assert competent[0][0] == "zh"


def test_minmax_hand_computed() -> None:
    fused = dict(minmax_fusion(RUNS))
    assert fused["x"] == pytest.approx(1.0)
    assert fused["y"] == pytest.approx(0.5 + 1.0)
    assert fused["z"] == pytest.approx(0.0)
    assert fused["w"] == pytest.approx(0.0)


def test_competent_zscore_hand_computed() -> None:
    # run a: scores 9, 5, 1 -> mean 5, population std sqrt(32/3); z = +-1.2247, 0
    # run b: scores 0.9, 0.8 -> mean 0.85, std 0.05; z = +1, -1 (its floor)
    z_a = 4 / (32 / 3) ** 0.5
    fused = dict(competent_zscore(RUNS, lambda run, item: True))
    assert fused["x"] == pytest.approx((z_a + -1.0) / 2)  # b did not return x: its floor
    assert fused["y"] == pytest.approx((0.0 + 1.0) / 2)
    assert fused["z"] == pytest.approx((-z_a + -1.0) / 2)
    assert fused["w"] == pytest.approx((-z_a + -1.0) / 2)  # a's floor is z's score


def test_competent_zscore_only_readers_vote() -> None:
    z_a = 4 / (32 / 3) ** 0.5
    fused = dict(competent_zscore(RUNS, lambda run, item: not (run == "b" and item == "x")))
    assert fused["x"] == pytest.approx(z_a)
    assert [item for item, _ in competent_zscore(RUNS, lambda r, i: i != "y")] == ["x", "w", "z"]


def test_competent_zscore_lets_a_standout_cross_lingual_hit_win() -> None:
    runs = {
        "multilingual": [("zh", 0.60), ("en1", 0.30), ("en2", 0.29), ("en3", 0.28)],
        "english": [("en1", 0.50), ("en2", 0.49), ("en3", 0.48)],
    }
    fused = competent_zscore(runs, lambda run, item: run == "multilingual" or item != "zh")
    assert fused[0][0] == "zh"


def test_competent_zscore_survives_flat_and_empty_rankings() -> None:
    runs = {"flat": [("a", 1.0), ("b", 1.0)], "empty": []}
    assert dict(competent_zscore(runs, lambda run, item: True)) == {"a": 0.0, "b": 0.0}


def _everyone(run: str, item: str) -> bool:
    return True


def test_weighted_zscore_with_equal_weights_is_competent_zscore() -> None:
    equal = weighted_zscore(RUNS, _everyone, {"a": 1.0, "b": 1.0})
    expected = competent_zscore(RUNS, _everyone)
    assert [item for item, _ in equal] == [item for item, _ in expected]
    assert [score for _, score in equal] == pytest.approx([score for _, score in expected])


def test_a_heavier_retriever_decides_and_a_zero_weight_one_does_not_vote() -> None:
    runs = {"a": [("x", 3.0), ("y", 2.0), ("z", 1.0)], "b": [("y", 3.0), ("x", 2.0), ("z", 1.0)]}
    assert weighted_zscore(runs, _everyone, {"a": 2.0, "b": 1.0})[0][0] == "x"
    assert weighted_zscore(runs, _everyone, {"a": 1.0, "b": 2.0})[0][0] == "y"
    alone = weighted_zscore(runs, _everyone, {"a": 0.0, "b": 1.0})
    assert [item for item, _ in alone] == ["y", "x", "z"]


def test_a_protected_retrievers_first_hit_stays_in_the_top_five() -> None:
    many = {"a": [(f"i{n}", 10.0 - n) for n in range(8)], "b": [("i7", 1.0), ("i0", 0.9)]}
    plain = [item for item, _ in weighted_zscore(many, _everyone, {"a": 3.0, "b": 0.1})]
    assert plain.index("i7") >= 5  # out-voted
    kept = weighted_zscore(many, _everyone, {"a": 3.0, "b": 0.1}, protected=["b"], keep_within=5)
    assert [item for item, _ in kept].index("i7") == 4
    assert len(kept) == len(plain)  # moved, nothing lost


def test_the_fitted_fusion_needs_its_weights_and_falls_back_to_the_pooled_group() -> None:
    with pytest.raises(ValueError, match=r"tuned\.json"):
        fuse("fitted", RUNS, _everyone)
    tuning = FusionTuning({"other": {"a": 1.0}, "zh": {"b": 1.0}}, {"zh>en": ("b",)}, 5)
    assert tuning.weights_for("ja") == {"a": 1.0} and tuning.weights_for("zh") == {"b": 1.0}
    assert tuning.protects("zh", "en", "b")  # a Chinese question, b's first passage English
    assert not tuning.protects("zh", "zh", "b") and not tuning.protects("zh", "en", "a")
