"""Sums over related entities: a village's neighbours (spill-over) and a project's affected villages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.engine import kernels
from features.engine.events import entity_pointers
from features.engine.families.base import Family, Feature
from features.engine.neighbours import NeighbourParams
from features.engine.projects import project_villages
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState


@dataclass(frozen=True)
class NearbySum:
    """Sum over the place's neighbours (not itself) of weight × ``base`` at t."""

    base: str
    neighbours: NeighbourParams


def _derived(prefix: str, base: FeatureSpec, group: str, zh: str, en: str) -> FeatureSpec:
    return FeatureSpec(f"{prefix}_{base.name}", group, base.unit, zh + base.zh, en + base.en)


class NearbySums(Family):
    """Distance-weighted sums of some of a place's features over its neighbours (``nearby_<feature>``)."""

    divisible = True

    def __init__(self, bases: list[FeatureSpec], neighbours: NeighbourParams) -> None:
        super().__init__([
            Feature(_derived("nearby", b, "neighbourhood", "周边村社(距离加权):", "nearby villages (distance-weighted): "),
                    NearbySum(b.name, neighbours), (f"feature.{b.name}",))
            for b in bases
        ])  # fmt: skip

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        nb = state.neighbours()
        rows = np.array([state.row(f.recipe.base) for f in self.features], dtype=np.int64)  # type: ignore[attr-defined]
        kernels.weighted_sums(nb.indptr, nb.indices, nb.weights, state.n_snap, state.values, rows, block)


@dataclass(frozen=True)
class AffectedVillagesSum:
    """Sum over the project's affected villages of the village feature ``base`` at t."""

    base: str


class AffectedVillageSums(Family):
    """Village features summed over each project's affected villages (``villages_<feature>``)."""

    divisible = True

    def __init__(self, bases: list[Feature]) -> None:
        """``bases``: the village features summed, each needing what it needs for villages."""
        super().__init__([
            Feature(_derived("villages", b.spec, "neighbourhood", "受影响村社合计:", "affected villages in total: "),
                    AffectedVillagesSum(b.spec.name), ("projects.village_ids", *b.needs))
            for b in bases
        ])  # fmt: skip

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        villages = pd.Index(np.sort(state.tables["regions"]["village_id"].astype("str").unique()), dtype="str")
        projects = state.entity_frame().reset_index()
        rows, village = project_villages(projects, villages)
        used = np.unique(village)
        sub = state.village_state([f.recipe.base for f in self.features], villages[used])  # type: ignore[attr-defined]
        ptr = entity_pointers(rows, len(projects))  # project_villages gives rows sorted by project
        local = np.searchsorted(used, village).astype(np.int64)
        src_rows = np.array([sub.row(f.recipe.base) for f in self.features], dtype=np.int64)  # type: ignore[attr-defined]
        kernels.weighted_sums(ptr, local, np.ones(len(local)), state.n_snap, sub.values, src_rows, block)
