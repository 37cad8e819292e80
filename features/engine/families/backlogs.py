"""Open backlogs: events of the last w days still open at t (``unresolved_disputes_90d``).

An event is open until its source's closure is recorded (``Closure``): a dispute until an
outcome 'resolved' is recorded at ``mediated_at``, a petition until ``closed_at``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from features.engine.declarations import Code, EventCounter, EventSource
from features.engine.events import CounterEvents, close_times
from features.engine.families.base import Family
from features.engine.families.windows import EventCount, WindowCounts, per_code_and_days
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState


class OpenBacklogs(WindowCounts):
    """A counter's events of the last w days not closed before t, for each window w and code."""

    def __init__(self, source: EventSource, counter: EventCounter, windows: tuple[int, ...]) -> None:
        closure = source.closure
        if closure is None:
            raise ValueError(f"source {source.name!r}: counter {counter.stem!r} has open_windows but no closure")

        def spec(w: int, code: Code | None, stem: str, zh: str, en: str) -> FeatureSpec:
            return FeatureSpec(f"{closure.stem}_{stem}_{w}d", closure.group, "count",
                               f"近{w}天{closure.zh}{zh} {{value}} 件",
                               f"{{value}} {closure.en} {en} in the last {w} days")  # fmt: skip

        closing = {closure.time} | ({closure.when.column} if closure.when is not None else set())
        Family.__init__(self, per_code_and_days(source, counter, windows, spec,
                                                lambda w, code: EventCount(source, counter, code, w, open=True),
                                                closing))  # fmt: skip
        self.source, self.counter, self.windows = source, counter, windows

    @classmethod
    def from_counter(cls, source: EventSource, counter: EventCounter) -> list[Family]:
        return [cls(source, counter, counter.open_windows)] if counter.open_windows else []

    def close_times(self, state: EngineState, ce: CounterEvents) -> np.ndarray:
        return ce.take(close_times(state.source_events(self.source), self.source.closure, state.timezone))
