"""Time inside the engine: exact int64 seconds and the snapshot schedule in the city's zone.

Kernels see time as int64 seconds since the Unix epoch (sub-second parts floored, which
changes no comparison with a whole-second snapshot). A missing time (a dispute never
mediated) is ``NEVER``, far enough in the future that no snapshot reaches it and small
enough that adding any window to it cannot overflow. Snapshots are local midnights: in a
zone with daylight saving they are not evenly spaced in seconds, and the kernels do not
assume they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contracts import SECONDS_PER_DAY
from fengqiao.errors import InputDataError

NEVER = np.int64(2**62)
"""A time later than every snapshot: 'not happened (yet)'."""

WARM_UP_DAYS = 365
"""The first snapshot comes this long after the earliest event, so that the longest window is full."""

_UNIT_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def epoch_seconds(values: pd.Series, timezone: str) -> np.ndarray:
    """A timestamp column as int64 seconds since the epoch; missing times become ``NEVER``.

    Timezone-aware columns are exact; naive ones are read as wall time in ``timezone``.
    """
    series = pd.Series(values)
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        if not pd.api.types.is_datetime64_dtype(series.dtype):
            series = pd.to_datetime(series, format="ISO8601")
        if series.dt.tz is None:
            series = series.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
    array = series.array
    raw = np.asarray(array.asi8, dtype=np.int64)
    seconds = np.floor_divide(raw, _UNIT_PER_SECOND[array.unit])
    missing = np.asarray(series.isna())
    if missing.any():
        seconds[missing] = NEVER
    return seconds


def to_timestamps(seconds: np.ndarray, timezone: str) -> pd.DatetimeIndex:
    """Epoch seconds back to timestamps in ``timezone``."""
    utc = pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True)
    return pd.DatetimeIndex(utc).tz_convert(timezone)


def snapshot_times(
    earliest: int, as_of: int, every_days: int, timezone: str, warm_up_days: int = WARM_UP_DAYS
) -> np.ndarray:
    """Snapshot times (epoch seconds): local Mondays 00:00 in ``timezone``, every ``every_days`` days.

    The first is the first Monday midnight at least ``warm_up_days`` after the earliest event;
    the last is the last one at or before ``as_of``. A midnight that daylight saving skips
    becomes the first moment of that day.
    """
    if every_days < 1:
        raise InputDataError(f"snapshot_every_days must be at least 1, got {every_days}")
    start = pd.Timestamp(int(earliest) + warm_up_days * SECONDS_PER_DAY, unit="s", tz="UTC").tz_convert(timezone)
    day = start.tz_localize(None).normalize()
    if _local_midnights(pd.DatetimeIndex([day]), timezone)[0] < int(start.timestamp()):
        day += pd.Timedelta(days=1)
    first = day + pd.Timedelta(days=(7 - day.weekday()) % 7)
    last = pd.Timestamp(int(as_of), unit="s", tz="UTC").tz_convert(timezone).tz_localize(None)
    if first > last:
        return np.empty(0, dtype=np.int64)
    days = pd.date_range(first, last.normalize(), freq=f"{every_days}D")
    seconds = _local_midnights(days, timezone)
    return seconds[seconds <= as_of]


def _local_midnights(days: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    """Epoch seconds of local midnight on each (naive) day; a skipped midnight moves forward."""
    local = days.tz_localize(timezone, ambiguous=np.ones(len(days), dtype=bool), nonexistent="shift_forward")
    return np.asarray(local.as_unit("s").asi8, dtype=np.int64)


def local_days(seconds: np.ndarray, timezone: str) -> np.ndarray:
    """Whole days since 1970-01-01 of each time's local date in ``timezone``."""
    dates = to_timestamps(seconds, timezone).tz_localize(None).normalize()
    return np.asarray(dates.as_unit("s").asi8 // SECONDS_PER_DAY, dtype=np.int64)
