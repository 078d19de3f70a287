"""Percentiles of measured durations, shared by the bench, the load suite and the scale study.

Two rank rules are in use, each kept so that new figures compare with the committed ones:

- ``nearest_rank`` (the bench's ``latency`` and the evaluation's latency): the smallest value
  with at least ``share`` of the values at or below it, rank ``ceil(share * n)``;
- ``p50_p99`` (the scale study): the median and the value at rank ``round(0.99 * n)``,
  which is one rank lower than nearest rank for some ``n`` (150 values: 148 against 149).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Latency", "latency", "nearest_rank", "p50_p99"]


@dataclass(frozen=True)
class Latency:
    """Percentiles of a set of durations (nearest rank)."""

    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float


def nearest_rank(ordered: Sequence[float], share: float) -> float:
    """The value at rank ``ceil(share * n)`` of ``ordered`` (sorted, not empty)."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def latency(values_ms: Sequence[float]) -> Latency:
    """p50 (the median), p99 (nearest rank) and mean of ``values_ms``.

    Raises:
        ValueError: when ``values_ms`` is empty.
    """
    if not values_ms:
        raise ValueError("no durations to summarise")
    ordered = sorted(values_ms)
    return Latency(
        count=len(ordered),
        p50_ms=round(statistics.median(ordered), 3),
        p99_ms=round(nearest_rank(ordered, 0.99), 3),
        mean_ms=round(statistics.fmean(ordered), 3),
    )


def p50_p99(values_ms: Sequence[float]) -> tuple[float, float]:
    """The median and the value at rank ``round(0.99 * n)`` of ``values_ms`` (not empty):
    the scale study's rule, unrounded."""
    ordered = sorted(values_ms)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return statistics.median(ordered), p99
