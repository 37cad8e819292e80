"""Labels: did an incident of the entity occur in [t, t + horizon)? Missing where the data ends first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contracts import SECONDS_PER_DAY
from features.engine import kernels
from features.engine.events import SortedEvents

_EMPTY_I64 = np.empty(0, dtype=np.int64)
_EMPTY_F64 = np.empty(0, dtype=np.float64)


def incident_labels(
    incidents: SortedEvents, n_entities: int, snapshots: np.ndarray, step: int, horizon_days: int, as_of: int
) -> pd.arrays.IntegerArray:
    """1 when an incident occurs in [t, t + horizon), 0 when none, NA when t + horizon > as_of.

    An incident in [t, t + h) is an interval (time - h, time] holding t: the interval kernel
    of the window counts, on times shifted back by the horizon.
    """
    horizon = np.int64(horizon_days) * SECONDS_PER_DAY
    hits = np.zeros((1, n_entities * len(snapshots)), dtype=np.float32)
    if len(snapshots) and n_entities:
        kernels.count_in_intervals(
            incidents.entity_ptr, incidents.times - horizon, _EMPTY_I64, np.array([horizon]),
            np.zeros(len(incidents), dtype=np.int32), 1, _EMPTY_F64, snapshots, step, hits,
        )  # fmt: skip
    known = np.tile(snapshots + horizon <= as_of, n_entities)
    return pd.arrays.IntegerArray((hits[0] > 0).astype(np.int8), ~known)
