"""What every feature family is: features declared with their registry entries, computed together.

A family is one computation (usually one kernel call) that fills a block of the feature
matrix — one row per feature, one column per (entity, snapshot). It declares its features
(``Feature``: the registry entry, a *recipe* that says what the value means, which the slow
reference in the tests computes alone, and the table columns it needs) and computes them
from the engine's shared state (``EngineState``): sorted events, snapshots, other features.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.contracts import SECONDS_PER_DAY
from features.engine.declarations import EventSource
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState


@dataclass(frozen=True)
class Feature:
    """One feature: its registry entry, what it means (``recipe``) and the ``table.column``s it needs."""

    spec: FeatureSpec
    recipe: object
    needs: tuple[str, ...] = ()


class Family(ABC):
    """Features computed together; ``features`` in the order the computation writes them.

    ``divisible`` families compute each feature on its own, so that a feature whose column
    a city lacks can be left out alone; the others are kept or left out whole.
    """

    divisible: bool = False

    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = tuple(features)

    @property
    def names(self) -> list[str]:
        return [f.spec.name for f in self.features]

    def keeping(self, features: Sequence[Feature]) -> Family:
        """The same family with only ``features`` (only for ``divisible`` families)."""
        kept = object.__new__(type(self))
        kept.__dict__.update(self.__dict__)
        kept.features = tuple(features)
        return kept

    def event_keys(self) -> set[tuple[str, str, str]]:
        """The (table, entity column, time column) event sorts this family reads."""
        return set()

    @abstractmethod
    def compute(self, state: EngineState, block: np.ndarray) -> None:
        """Fill ``block`` (features × entity-major (entity, snapshot) columns, float32)."""


class EventFamily(Family):
    """A family computed from one event source's sorted events (``self.source``)."""

    source: EventSource

    def event_keys(self) -> set[tuple[str, str, str]]:
        return {(self.source.table, self.source.entity, self.source.time)}


NEVER_CLOSED = np.empty(0, dtype=np.int64)
"""The close times of events that never close (``kernels.count_in_intervals``: none given)."""


def seconds(days: Sequence[int]) -> np.ndarray:
    """Whole days as int64 seconds."""
    return np.asarray(list(days), dtype=np.int64) * SECONDS_PER_DAY
