"""Ratios of two features already computed: failure rates, dissatisfaction rates, trends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.engine.declarations import Ratio
from features.engine.families.base import Family, Feature
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState


@dataclass(frozen=True)
class RatioOf:
    """``scale * numerator / denominator`` at t; NaN where the denominator is 0."""

    ratio: Ratio


class Ratios(Family):
    """Derived features ``scale * numerator / denominator``, computed after their inputs."""

    divisible = True

    def __init__(self, ratios: list[Ratio]) -> None:
        super().__init__([
            Feature(FeatureSpec(r.name, r.group, r.unit, r.zh, r.en), RatioOf(r), (f"feature.{r.numerator}",
                                                                                    f"feature.{r.denominator}"))
            for r in ratios
        ])  # fmt: skip

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        for j, feature in enumerate(self.features):
            ratio = feature.recipe.ratio  # type: ignore[attr-defined]
            num = state.feature(ratio.numerator).astype(np.float64)
            den = state.feature(ratio.denominator).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                block[j] = np.where(den > 0, ratio.scale * num / den, np.nan)
