"""Weekly lags: a counter's events in each of the last few weeks (``incidents_lag_1w`` … ``incidents_lag_5w``).

Week k before t is [t − 7k days, t − 7(k − 1) days): ``incidents_lag_1w`` is the same count as
``incidents_7d``, and the lags together let a model see the shape of the last weeks, not only
their sum (the honest "lag counts only" baseline reads nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.contracts import SECONDS_PER_DAY
from features.engine import kernels
from features.engine.declarations import EventCounter, EventSource
from features.engine.families.base import NEVER_CLOSED, EventFamily, Family, Feature
from features.engine.families.windows import needs
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState

WEEK_SECONDS = 7 * SECONDS_PER_DAY


@dataclass(frozen=True)
class LaggedCount:
    """Events of ``counter`` with time in [t − 7·weeks_back days, t − 7·(weeks_back − 1) days)."""

    source: EventSource
    counter: EventCounter
    weeks_back: int


def _words(k: int, zh: str, en: str) -> tuple[str, str]:
    if k == 1:
        return f"近一周{zh} {{value}} 件", f"{{value}} {en} in the last week"
    return f"{k}周前当周{zh} {{value}} 件", f"{{value}} {en} in the week {k} weeks back"


class WeeklyLags(EventFamily):
    """One counter's events in each of its last ``weeks`` weeks: one interval sweep per week."""

    def __init__(self, source: EventSource, counter: EventCounter, weeks: int) -> None:
        stem, zh, en = counter.words(None)
        group = counter.group_of(None, source.group)
        wanted = needs(source, counter.columns())
        super().__init__([
            Feature(FeatureSpec(f"{stem}_lag_{k}w", group, "count", *_words(k, zh, en)), LaggedCount(source, counter, k),
                    wanted)
            for k in range(1, weeks + 1)
        ])  # fmt: skip
        self.source, self.counter, self.weeks = source, counter, weeks

    @classmethod
    def from_counter(cls, source: EventSource, counter: EventCounter) -> list[Family]:
        return [cls(source, counter, counter.lag_weeks)] if counter.lag_weeks else []

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        ce = state.counter_events(self.source, self.counter)
        span = np.array([WEEK_SECONDS], dtype=np.int64)
        for k in range(1, self.weeks + 1):
            # an event at time x is in week k at t when x + 7(k − 1) days < t <= x + 7k days
            shifted = ce.times + (k - 1) * WEEK_SECONDS
            kernels.count_in_intervals(ce.entity_ptr, shifted, NEVER_CLOSED, span, ce.codes, 1, ce.weights,
                                       state.snapshots, state.step, block[k - 1 : k])  # fmt: skip
