"""A fitted linear model read from the tuned file: standardised features, a weight each.

The reader's candidate scorer, its abstention classifier and its confidence are each one
of these, fitted on the train split by ``citeqa eval --fit`` (``service.lab.fit``) and
saved as plain JSON (no pickle): the feature names, their means and scales, the weights
and the intercept. The service only multiplies and adds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LinearModel"]


@dataclass(frozen=True)
class LinearModel:
    """``P(y) = 1 / (1 + exp(-(w · (x - mean) / scale + b)))`` over named features."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float

    def __post_init__(self) -> None:
        sizes = {len(self.features), len(self.mean), len(self.scale), len(self.weights)}
        if len(sizes) != 1:
            raise ValueError(
                f"a linear model needs one mean, scale and weight per feature: {sizes}"
            )
        if any(s <= 0 for s in self.scale):
            raise ValueError("a linear model's scales must be positive")

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """The linear score of each row of ``rows`` (n, features), in the features' order."""
        if rows.ndim != 2 or rows.shape[1] != len(self.features):
            raise ValueError(f"expected (n, {len(self.features)}) features, got {rows.shape}")
        standard = (rows - np.asarray(self.mean)) / np.asarray(self.scale)
        return standard @ np.asarray(self.weights) + self.intercept

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """``P(y)`` of each row."""
        return 1.0 / (1.0 + np.exp(-self.logits(rows)))

    def row(self, values: Mapping[str, float]) -> np.ndarray:
        """One row in the features' order from named values (a missing name is an error)."""
        missing = [name for name in self.features if name not in values]
        if missing:
            raise KeyError(f"features not computed: {', '.join(missing)}")
        return np.asarray([[values[name] for name in self.features]], dtype=float)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": [round(v, 6) for v in self.mean],
            "scale": [round(v, 6) for v in self.scale],
            "weights": [round(v, 6) for v in self.weights],
            "intercept": round(self.intercept, 6),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LinearModel:
        return cls(
            features=tuple(str(f) for f in raw["features"]),
            mean=_floats(raw["mean"]),
            scale=_floats(raw["scale"]),
            weights=_floats(raw["weights"]),
            intercept=float(raw["intercept"]),
        )


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
