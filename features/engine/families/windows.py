"""Window counts: events of the last w days before t, by code (``disputes_30d``, ``land_disputes_365d``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.engine import kernels
from features.engine.declarations import Code, EventCounter, EventSource
from features.engine.families.base import NEVER_CLOSED, EventFamily, Family, Feature, seconds
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState
    from features.engine.events import CounterEvents



@dataclass(frozen=True)
class EventCount:
    """Events of ``counter`` (code ``code``) with time in [t - window_days, t); with ``open``, only
    those not closed (per the source's closure) before t. Sums ``counter.weight`` when it has one."""

    source: EventSource
    counter: EventCounter
    code: Code | None
    window_days: int
    open: bool = False


def needs(source: EventSource, columns: set[str]) -> tuple[str, ...]:
    """``table.column`` names of a source's entity, time and ``columns``."""
    return tuple(sorted(f"{source.table}.{c}" for c in {source.entity, source.time, *columns}))


def per_code_and_days(source: EventSource, counter: EventCounter, days: tuple[int, ...], spec, recipe,
                      extra_columns: set[str] = frozenset()) -> list[Feature]:  # fmt: skip
    """A feature per (days, code), in the kernels' order: days-major, then code.

    ``spec(days, code, stem, zh, en)`` makes each registry entry, ``recipe(days, code)`` its recipe.
    """
    wanted = needs(source, counter.columns() | set(extra_columns))
    return [
        Feature(spec(d, code, *counter.words(code)), recipe(d, code), wanted)
        for d in days
        for code in (counter.codes or (None,))
    ]


class WindowCounts(EventFamily):
    """One counter's events in the last w days, for each window w and code: one interval sweep."""

    def __init__(self, source: EventSource, counter: EventCounter, windows: tuple[int, ...]) -> None:
        def spec(w: int, code: Code | None, stem: str, zh: str, en: str) -> FeatureSpec:
            return FeatureSpec(f"{stem}_{w}d", counter.group_of(code, source.group), "count",
                               f"近{w}天{zh} {{value}} 件", f"{{value}} {en} in the last {w} days")  # fmt: skip

        super().__init__(per_code_and_days(source, counter, windows, spec,
                                           lambda w, code: EventCount(source, counter, code, w)))  # fmt: skip
        self.source, self.counter, self.windows = source, counter, windows

    @classmethod
    def from_counter(cls, source: EventSource, counter: EventCounter) -> list[Family]:
        return [cls(source, counter, counter.windows)] if counter.windows else []

    def close_times(self, state: EngineState, ce: CounterEvents) -> np.ndarray:
        """When each of ``ce``'s events stops counting before its window ends (empty: never)."""
        return NEVER_CLOSED

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        ce = state.counter_events(self.source, self.counter)
        kernels.count_in_intervals(
            ce.entity_ptr, ce.times, self.close_times(state, ce), seconds(self.windows), ce.codes,
            self.counter.n_codes, ce.weights, state.snapshots, state.step, block,
        )  # fmt: skip
