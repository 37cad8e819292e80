"""Long memory: a counter's events since the data begins, and their empirical-Bayes rate per year.

Rare events need it: a village with one incident in three years is not three times as risky as
one with none in one year, and a year's window forgets a village that was quiet last year but
not before. ``incidents_all_history`` counts every event before t; ``incidents_per_year_shrunk``
is the gamma–Poisson posterior mean of the entity's rate per year,

    (k + a_g) / (E + b),

with k the events before t, E the years the entity was observed before t, the prior mean
a_g / b the pooled rate of the entity's group at t (a village's county; all projects for
projects) and the prior strength b (years) by the method of moments over the entities at t:
b = m / (v − mean(m / E)), m and v the mean and variance of the raw rates k / E — the spread
of the raw rates beyond what Poisson noise explains (no spread: pool fully). Everything is
taken at t from events before t (docs/decisions/001-tie-semantics.md).

Observation starts with the source table's earliest event (the data's beginning), and for a
project not before its announcement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.contracts import SECONDS_PER_DAY
from features.engine import kernels
from features.engine.declarations import EventCounter, EventSource
from features.engine.families.base import NEVER_CLOSED, EventFamily, Family, Feature
from features.engine.families.windows import needs
from features.engine.projects import ProjectTimes
from features.engine.registry import FeatureSpec
from features.engine.timeline import NEVER, epoch_seconds

if TYPE_CHECKING:
    from features.engine.engine import EngineState

YEAR_SECONDS = 365.25 * SECONDS_PER_DAY
MIN_EXPOSURE_DAYS = 7
"""The shortest observation a rate is computed over (a project announced days before t)."""
FULL_POOLING = 1e6
"""The prior strength (years) when the raw rates spread no more than Poisson noise: the group's rate."""
_ALL_TIME = np.array([np.iinfo(np.int64).max // 4], dtype=np.int64)


@dataclass(frozen=True)
class AllHistoryCount:
    """Events of ``counter`` before t, since the data begins."""

    source: EventSource
    counter: EventCounter


@dataclass(frozen=True)
class ShrunkRate:
    """The counter's events per year before t, shrunk toward the entity's group (module docstring)."""

    source: EventSource
    counter: EventCounter


def shrunk_rates(counts: np.ndarray, exposure_years: np.ndarray, rows: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The gamma–Poisson rate (k + a_g) / (E + b) per year of each (entity, snapshot) cell.

    Args:
        counts: events before t, shape (entities, snapshots).
        exposure_years: years observed before t (> 0), same shape.
        rows: which cells are rows (the entities the prior is estimated over at t), same shape.
        group: each entity's prior group, integers 0 … n − 1.

    Returns:
        The rates; NaN where a cell is not a row.
    """
    out = np.full(counts.shape, np.nan)
    n_groups = int(group.max()) + 1 if len(group) else 0
    for s in range(counts.shape[1]):
        here = rows[:, s]
        if not here.any():
            continue
        k, e, g = counts[here, s], exposure_years[here, s], group[here]
        raw = k / e
        mean = raw.mean()
        between = raw.var() - np.mean(mean / e)
        strength = mean / between if between > 1e-12 and mean > 0 else FULL_POOLING
        pooled = np.bincount(g, k, n_groups) / np.maximum(np.bincount(g, e, n_groups), 1e-12)
        out[here, s] = (k + pooled[g] * strength) / (e + strength)
    return out


class LongMemory(EventFamily):
    """A counter's events since the data begins, and their shrunk rate per year."""

    def __init__(self, source: EventSource, counter: EventCounter) -> None:
        stem, zh, en = counter.words(None)
        group = counter.group_of(None, source.group)
        wanted = needs(source, counter.columns())
        super().__init__([
            Feature(FeatureSpec(f"{stem}_all_history", group, "count", f"有记录以来{zh}共 {{value}} 件",
                                f"{{value}} {en} since records begin"), AllHistoryCount(source, counter), wanted),
            Feature(FeatureSpec(f"{stem}_per_year_shrunk", group, "per_year",
                                f"长期{zh}年均 {{value}} 件(向同类收缩估计)",
                                f"long-run rate of {en}: {{value}} a year (shrunk toward its peers')"),
                    ShrunkRate(source, counter), wanted),
        ])  # fmt: skip
        self.source, self.counter = source, counter

    @classmethod
    def from_counter(cls, source: EventSource, counter: EventCounter) -> list[Family]:
        return [cls(source, counter)] if counter.long_memory else []

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        ce = state.counter_events(self.source, self.counter)
        kernels.count_in_intervals(ce.entity_ptr, ce.times, NEVER_CLOSED, _ALL_TIME, ce.codes, 1, ce.weights,
                                   state.snapshots, state.step, block[0:1])  # fmt: skip
        shape = (len(state.entities), state.n_snap)
        counts = block[0].reshape(shape).astype(np.float64)
        begins, rows, group = self._observation(state)
        elapsed = state.snapshots[None, :] - begins[:, None]
        exposure = np.maximum(elapsed, MIN_EXPOSURE_DAYS * SECONDS_PER_DAY) / YEAR_SECONDS
        block[1] = shrunk_rates(counts, exposure, rows, group).ravel()

    def _observation(self, state: EngineState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per entity, when its observation begins (epoch seconds) and its prior group; which cells are rows."""
        times = epoch_seconds(state.tables[self.source.table][self.source.time], state.timezone)
        times = times[times != NEVER]
        start = int(times.min()) if len(times) else int(state.snapshots[0])
        n = len(state.entities)
        begins = np.full(n, start, dtype=np.int64)
        rows = np.ones((n, state.n_snap), dtype=bool)
        group = np.zeros(n, dtype=np.int64)
        kind = state.plan.kind
        places = state.entity_frame() if kind.via is None else None
        if kind.table == "projects" and places is not None:
            projects = ProjectTimes.of(places.reset_index(), state.timezone)
            begins = np.maximum(begins, projects.announced)
            rows = projects.rows_at(state.snapshots)
        elif places is not None and "county_id" in places:
            group = pd.factorize(places["county_id"], use_na_sentinel=False)[0].astype(np.int64)
        return begins, rows, group
