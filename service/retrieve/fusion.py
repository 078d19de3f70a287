"""Fuse: combine several rankings of the same passages into one. Pure functions.

Four methods, chosen by ``Settings.fusion`` and compared in the README:

- ``reciprocal_rank_fusion``: Cormack, Clarke and Büttcher, "Reciprocal Rank Fusion
  outperforms Condorcet and individual Rank Learning Methods", SIGIR 2009. A passage scores
  the sum over rankings of ``1 / (rrf_k + rank)``.
- ``competent_rrf``: RRF where a ranking only votes on passages its retriever can read,
  and a passage's score is the *mean* over the rankings that could. An English-only encoder
  or an English query's BM25 terms cannot judge a Chinese passage; plain RRF counts their
  silence as a vote against it, and the multilingual retriever's cross-lingual hit sinks.
- ``competent_zscore``: the same "only readers vote, mean over readers" rule
  on standardised scores instead of ranks. Each ranking's scores become z-scores
  ``(s - mean) / std`` over that ranking, so a passage one retriever finds far above its other
  candidates (a cross-lingual hit) stands out, while a passage that retriever merely ranks
  first among equally poor candidates does not. A reader that did not return a passage gives
  it its lowest z-score.
- ``weighted_zscore`` (``fitted``, the default): ``competent_zscore`` with a weight per
  retriever for each question group (English, Chinese, Japanese, Korean, other), fitted on
  the evaluation's train split (``citeqa eval --fit``, in ``service/tuned.json``): the mean
  becomes a weighted mean over the readers, and a retriever with weight 0 does not vote.
  A retriever whose first passage is right often enough for a language pair (a Chinese
  question's English passage: ``zh>en``) is *protected* there: its first passage is kept
  within the top ``keep_within`` (5), so a strong retriever's best find is never voted out
  by weaker ones.
- ``minmax_fusion``: the naive blend, scores min-max normalised per ranking and summed; kept
  as the baseline that loses cross-lingual hits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import get_args

from service.records import FusionName

__all__ = [
    "COMPETENT",
    "FUSIONS",
    "FusionName",
    "competent_rrf",
    "competent_zscore",
    "fuse",
    "minmax_fusion",
    "reciprocal_rank_fusion",
    "weighted_zscore",
]

Ranking = Sequence[tuple[str, float]]  # (item id, retriever score), best first
FUSIONS: tuple[FusionName, ...] = get_args(FusionName)
# The fusions that only let a retriever vote where it can read: they ask each retriever
# whether it can read the query and each passage.
COMPETENT: frozenset[FusionName] = frozenset({"competent_zscore", "competent_rrf", "fitted"})


def _ranked(scores: Mapping[str, float], k: int | None) -> list[tuple[str, float]]:
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return ordered if k is None else ordered[:k]


def reciprocal_rank_fusion(
    runs: Mapping[str, Ranking], *, rrf_k: int = 60, k: int | None = None
) -> list[tuple[str, float]]:
    """Sum of ``1 / (rrf_k + rank)`` over the rankings (ranks start at 1). Ties by id."""
    scores: dict[str, float] = {}
    for ranking in runs.values():
        for rank, (item, _) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (rrf_k + rank)
    return _ranked(scores, k)


def competent_rrf(
    runs: Mapping[str, Ranking],
    can_read: Callable[[str, str], bool],
    *,
    rrf_k: int = 60,
    k: int | None = None,
) -> list[tuple[str, float]]:
    """Mean of ``1 / (rrf_k + rank)`` over the rankings whose retriever can read the item.

    ``can_read(run_name, item)`` says whether that retriever is competent for that item
    (for this query). A competent retriever that did not return the item contributes 0.
    Items no retriever can read are dropped.
    """
    items = {item for ranking in runs.values() for item, _ in ranking}
    ranks = {
        name: {item: r for r, (item, _) in enumerate(ranking, 1)} for name, ranking in runs.items()
    }
    scores: dict[str, float] = {}
    for item in items:
        judges = [name for name in runs if can_read(name, item)]
        if not judges:
            continue
        total = sum(1.0 / (rrf_k + ranks[name][item]) for name in judges if item in ranks[name])
        scores[item] = total / len(judges)
    return _ranked(scores, k)


def _zscores(ranking: Ranking) -> dict[str, float]:
    values = [score for _, score in ranking]
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    if spread == 0:
        return {item: 0.0 for item, _ in ranking}
    return {item: (score - mean) / spread for item, score in ranking}


def competent_zscore(
    runs: Mapping[str, Ranking],
    can_read: Callable[[str, str], bool],
    *,
    k: int | None = None,
) -> list[tuple[str, float]]:
    """Mean z-score over the rankings whose retriever can read the item.

    Scores are standardised within each ranking (population standard deviation). A competent
    retriever that did not return the item counts with its lowest z-score. Items no retriever
    can read are dropped; empty rankings are ignored.
    """
    zscores = {name: _zscores(ranking) for name, ranking in runs.items() if ranking}
    floors = {name: min(z.values()) for name, z in zscores.items()}
    items = {item for z in zscores.values() for item in z}
    scores: dict[str, float] = {}
    for item in items:
        votes = [z.get(item, floors[name]) for name, z in zscores.items() if can_read(name, item)]
        if votes:
            scores[item] = sum(votes) / len(votes)
    return _ranked(scores, k)


def weighted_zscore(
    runs: Mapping[str, Ranking],
    can_read: Callable[[str, str], bool],
    weights: Mapping[str, float],
    *,
    protected: Sequence[str] = (),
    keep_within: int = 5,
    k: int | None = None,
) -> list[tuple[str, float]]:
    """Weighted mean z-score over the rankings whose retriever can read the item and has a
    weight above 0 (a retriever missing from ``weights`` weighs 1), then each protected
    ranking's first item moved up to rank ``keep_within`` if it fell below."""
    zscores = {
        name: _zscores(ranking)
        for name, ranking in runs.items()
        if ranking and weights.get(name, 1.0) > 0
    }
    floors = {name: min(z.values()) for name, z in zscores.items()}
    items = {item for z in zscores.values() for item in z}
    scores: dict[str, float] = {}
    for item in items:
        voters = [name for name in zscores if can_read(name, item)]
        total = sum(weights.get(name, 1.0) for name in voters)
        if total > 0:
            votes = sum(weights.get(n, 1.0) * zscores[n].get(item, floors[n]) for n in voters)
            scores[item] = votes / total
    ranked = _ranked(scores, None)
    for name in protected:
        first = runs.get(name) or ()
        if not first:
            continue
        position = next((i for i, (item, _) in enumerate(ranked) if item == first[0][0]), None)
        if position is not None and position >= keep_within:
            ranked.insert(keep_within - 1, ranked.pop(position))
    return ranked if k is None else ranked[:k]


def minmax_fusion(runs: Mapping[str, Ranking], *, k: int | None = None) -> list[tuple[str, float]]:
    """Sum of per-ranking min-max normalised scores (an item a ranking lacks scores 0)."""
    scores: dict[str, float] = {}
    for ranking in runs.values():
        if not ranking:
            continue
        values = [score for _, score in ranking]
        low, high = min(values), max(values)
        spread = high - low
        for item, score in ranking:
            normalised = (score - low) / spread if spread > 0 else 1.0
            scores[item] = scores.get(item, 0.0) + normalised
    return _ranked(scores, k)


_Fuse = Callable[[Mapping[str, Ranking], Callable[[str, str], bool], int, int | None], list]

_DISPATCH: dict[FusionName, _Fuse] = {
    "competent_zscore": lambda runs, can_read, rrf_k, k: competent_zscore(runs, can_read, k=k),
    "competent_rrf": lambda runs, can_read, rrf_k, k: competent_rrf(
        runs, can_read, rrf_k=rrf_k, k=k
    ),
    "rrf": lambda runs, can_read, rrf_k, k: reciprocal_rank_fusion(runs, rrf_k=rrf_k, k=k),
    "minmax": lambda runs, can_read, rrf_k, k: minmax_fusion(runs, k=k),
}


def fuse(
    method: FusionName,
    runs: Mapping[str, Ranking],
    can_read: Callable[[str, str], bool],
    *,
    rrf_k: int = 60,
    k: int | None = None,
    fitted: tuple[Mapping[str, float], Sequence[str], int] | None = None,
) -> list[tuple[str, float]]:
    """Fuse ``runs`` by ``method``; ``can_read`` is consulted by the competent methods only;
    ``fitted`` is the weights, protected retrievers and rank of the ``fitted`` method."""
    if method == "fitted":
        if fitted is None:
            raise ValueError("the fitted fusion needs its weights (service/tuned.json)")
        weights, protected, keep_within = fitted
        return weighted_zscore(
            runs, can_read, weights, protected=protected, keep_within=keep_within, k=k
        )
    try:
        fusion = _DISPATCH[method]
    except KeyError:
        raise ValueError(f"unknown fusion {method!r}; use {', '.join(FUSIONS)}") from None
    return fusion(runs, can_read, rrf_k, k)
