"""Time-respecting splits of a weekly panel.

A row at snapshot s carries the label "an incident in [s, s + horizon)", so its label is known
only at s + horizon. Rows may train a model that is judged (or calibrated, or early-stopped)
from a moment T only if s + horizon ≤ T: their label window closed before T. Every split in
models/ goes through ``label_closed_before``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def as_datetime64(snapshots: np.ndarray | pd.Series) -> np.ndarray:
    """Snapshots as naive UTC datetime64[ns] (tz-aware inputs are converted, not dropped)."""
    series = pd.Series(snapshots)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[ns]")


def label_closed_before(snapshots: np.ndarray, moment: np.datetime64, horizon_days: int) -> np.ndarray:
    """True where the label window [s, s + horizon) closes at or before ``moment``."""
    return as_datetime64(snapshots) + np.timedelta64(horizon_days, "D") <= moment


def last_weeks(snapshots: np.ndarray, weeks: int) -> tuple[np.ndarray, np.datetime64]:
    """The rows of the last ``weeks`` distinct snapshots, and the first of those snapshots."""
    snaps = as_datetime64(snapshots)
    distinct = np.unique(snaps)
    start = distinct[max(len(distinct) - weeks, 0)]
    return snaps >= start, start


def held_out_split(snapshots: np.ndarray, weeks: int, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows): the held-out rows are the last ``weeks`` snapshots; the fit
    rows are those whose label closed before the first held-out snapshot. Rows in between
    (label window overlapping the held-out slice) are in neither."""
    held, start = last_weeks(snapshots, weeks)
    fit = label_closed_before(snapshots, start, horizon_days) & ~held
    if not fit.any() or not held.any():
        raise ValueError(f"too few snapshots for a {weeks}-week held-out slice after a {horizon_days}-day gap "
                         f"({len(np.unique(as_datetime64(snapshots)))} snapshots)")
    return fit, held


def take_rows(X: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``X[rows]`` for a boolean mask ``rows``. On a table sorted by snapshot every time split
    above is one contiguous run of rows, and a run is taken as a slice, which shares ``X``'s
    memory (copy-on-write) instead of copying it: at ``--scale 10`` a fold's training rows are
    2 GB, and each split of a split copied them again."""
    where = np.flatnonzero(rows)
    if len(where) and where[-1] - where[0] + 1 == len(where):
        return X.iloc[where[0]: where[-1] + 1]
    return X[rows]
