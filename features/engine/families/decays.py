"""Decayed intensities: the exponentially decayed (Hawkes) sum of past events (``disputes_decay_30d``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.engine import kernels
from features.engine.declarations import Code, EventCounter, EventSource
from features.engine.families.base import EventFamily, Family, seconds
from features.engine.families.windows import per_code_and_days
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState


@dataclass(frozen=True)
class DecayedIntensity:
    """sum over events before t of exp(-(t - time) / tau), tau = ``tau_days`` days."""

    source: EventSource
    counter: EventCounter
    code: Code | None
    tau_days: int


class DecayedIntensities(EventFamily):
    """One counter's decayed intensity for each decay time (days) and code: one O(n) recursion."""

    def __init__(self, source: EventSource, counter: EventCounter, taus_days: tuple[int, ...]) -> None:
        def spec(tau: int, code: Code | None, stem: str, zh: str, en: str) -> FeatureSpec:
            return FeatureSpec(f"{stem}_decay_{tau}d", counter.group_of(code, source.group), "decayed_count",
                               f"{zh}近期强度(按{tau}天衰减) {{value}}",
                               f"recent intensity of {en} ({tau}-day decay): {{value}}")  # fmt: skip

        super().__init__(per_code_and_days(source, counter, taus_days, spec,
                                           lambda tau, code: DecayedIntensity(source, counter, code, tau)))  # fmt: skip
        self.source, self.counter, self.taus_days = source, counter, taus_days

    @classmethod
    def from_counter(cls, source: EventSource, counter: EventCounter) -> list[Family]:
        return [cls(source, counter, counter.decays)] if counter.decays else []

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        ce = state.counter_events(self.source, self.counter)
        taus = seconds(self.taus_days).astype(np.float64)
        kernels.decayed_counts(
            ce.entity_ptr, ce.times, ce.codes, self.counter.n_codes, ce.weights, taus, state.snapshots, block
        )
