"""Recency: days since a counter's last event (``days_since_last_patrol``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.engine import kernels
from features.engine.declarations import EventCounter, EventSource
from features.engine.families.base import EventFamily, Family, Feature
from features.engine.families.windows import needs
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState


@dataclass(frozen=True)
class DaysSinceLast:
    """Days from the counter's last event before t to t; NaN if none."""

    source: EventSource
    counter: EventCounter


class Recency(EventFamily):
    """Days since the counter's last event before each snapshot."""

    def __init__(self, source: EventSource, counter: EventCounter) -> None:
        stem, zh, en = counter.recency  # type: ignore[misc]
        spec = FeatureSpec(f"days_since_last_{stem}", counter.group_of(None, source.group), "days",
                           f"距上次{zh}已 {{value}} 天", f"{{value}} days since the last {en}")  # fmt: skip
        super().__init__([Feature(spec, DaysSinceLast(source, counter), needs(source, counter.columns()))])
        self.source, self.counter = source, counter

    @classmethod
    def from_counter(cls, source: EventSource, counter: EventCounter) -> list[Family]:
        return [cls(source, counter)] if counter.recency is not None else []

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        ce = state.counter_events(self.source, self.counter)
        kernels.days_since_last(ce.entity_ptr, ce.times, ce.codes, 1, state.snapshots, block)
