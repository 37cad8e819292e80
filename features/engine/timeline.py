"""Time inside the engine: exact int64 seconds, the snapshot schedule, days to Spring Festival.

Kernels see time as int64 seconds since the Unix epoch (sub-second parts floored, which
changes no comparison with a whole-second snapshot). A missing time (a dispute never
mediated) is ``NEVER``, far enough in the future that no snapshot reaches it and small
enough that adding any window to it cannot overflow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.calendar import days_to_spring_festival as calendar_days_to_spring_festival
from features.calendar import spring_festival_days
from features.contracts import TIMEZONE
from fengqiao.errors import InputDataError

NEVER = np.int64(2**62)
"""A time later than every snapshot: 'not happened (yet)'."""

SECONDS_PER_DAY = 86_400

_UNIT_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def epoch_seconds(values: pd.Series) -> np.ndarray:
    """A timestamp column as int64 seconds since the epoch; missing times become ``NEVER``.

    Timezone-aware columns are exact; naive ones are read as Asia/Shanghai wall time.
    """
    series = pd.Series(values)
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        if not pd.api.types.is_datetime64_dtype(series.dtype):
            series = pd.to_datetime(series, format="ISO8601")
        if series.dt.tz is None:
            series = series.dt.tz_localize(TIMEZONE)
    array = series.array
    raw = np.asarray(array.asi8, dtype=np.int64)
    seconds = np.floor_divide(raw, _UNIT_PER_SECOND[array.unit])
    missing = np.asarray(series.isna())
    if missing.any():
        seconds[missing] = NEVER
    return seconds


def to_timestamps(seconds: np.ndarray) -> pd.DatetimeIndex:
    """Epoch seconds back to tz-aware Asia/Shanghai timestamps."""
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True)).tz_convert(
        TIMEZONE
    )


def snapshot_times(earliest: int, as_of: int, every_days: int = 7, warm_up_days: int = 365) -> np.ndarray:
    """Snapshot times (epoch seconds): Mondays 00:00 Asia/Shanghai, every ``every_days`` days.

    The first is the first Monday at least ``warm_up_days`` after the earliest event, so that
    the longest window is full; the last is the last one at or before ``as_of``.
    """
    if every_days < 1:
        raise InputDataError(f"snapshot_every_days must be at least 1, got {every_days}")
    start = pd.Timestamp(int(earliest) + warm_up_days * SECONDS_PER_DAY, unit="s", tz="UTC").tz_convert(TIMEZONE)
    day = start.normalize()
    if day < start:
        day += pd.Timedelta(days=1)
    first = day + pd.Timedelta(days=(7 - day.weekday()) % 7)
    first_s = int(first.timestamp())
    if first_s > as_of:
        return np.empty(0, dtype=np.int64)
    step = every_days * SECONDS_PER_DAY
    return np.arange(first_s, int(as_of) + 1, step, dtype=np.int64)


def days_to_spring_festival(seconds: np.ndarray) -> np.ndarray:
    """Whole days from each time's Asia/Shanghai date to the next Spring Festival (0 on the day).

    From the table in ``features.calendar``; NaN where the table cannot tell (past its last
    festival, or more than a short lunar year before its first).
    """
    epoch = pd.Timestamp("2000-01-01")
    days = np.asarray((to_timestamps(seconds).tz_localize(None).normalize() - epoch).days, dtype=np.int64)
    festivals = spring_festival_days(epoch)
    known = (days <= festivals[-1]) & (days > festivals[0] - _SHORTEST_LUNAR_YEAR_DAYS)
    out = np.full(len(days), np.nan)
    out[known] = calendar_days_to_spring_festival(days[known], festivals)
    return out


_SHORTEST_LUNAR_YEAR_DAYS = 353
