"""Repeat keys: distinct pseudonymised keys with at least n events in a window (``repeat_petitioners_90d``).

An aggregate for the place: how many distinct repeat petitioners, never who.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.engine import kernels
from features.engine.declarations import EventSource
from features.engine.events import pair_codes
from features.engine.families.base import EventFamily, Family, Feature, seconds
from features.engine.families.windows import needs
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState


@dataclass(frozen=True)
class RepeatCount:
    """Distinct ``source.repeat.key`` values with at least ``min_count`` events in [t - window_days, t)."""

    source: EventSource
    window_days: int


class RepeatKeyCounts(EventFamily):
    """Distinct repeat keys of a source for each of its repeat windows: one sliding-window sweep."""

    def __init__(self, source: EventSource) -> None:
        rep = source.repeat
        assert rep is not None
        wanted = needs(source, {rep.key})
        super().__init__([
            Feature(FeatureSpec(f"{rep.stem}_{w}d", rep.group, "count", f"近{w}天{rep.zh} {{value}} 人",
                                f"{{value}} {rep.en} in the last {w} days"), RepeatCount(source, w), wanted)
            for w in rep.windows
        ])  # fmt: skip
        self.source = source

    @classmethod
    def from_source(cls, source: EventSource) -> list[Family]:
        return [cls(source)] if source.repeat is not None else []

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        rep = self.source.repeat
        events = state.source_events(self.source)
        pairs, n_pairs = pair_codes(events, rep.key)
        scratch = np.zeros(max(n_pairs, 1), dtype=np.int64)
        kernels.repeat_keys(
            events.entity_ptr, events.times, pairs, rep.min_count, seconds(rep.windows), state.snapshots,
            scratch, block,
        )  # fmt: skip
