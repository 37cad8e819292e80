"""The Chinese calendar facts the risk depends on: Spring Festival (春节) dates.

Wage-arrears disputes and year-end petitions peak in the weeks before Spring Festival,
so both the simulator and the calendar features need its date. No dependency is needed
for a fixed table; extend it before 2035.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPRING_FESTIVAL = (
    "2015-02-19", "2016-02-08", "2017-01-28", "2018-02-16", "2019-02-05", "2020-01-25",
    "2021-02-12", "2022-02-01", "2023-01-22", "2024-02-10", "2025-01-29", "2026-02-17",
    "2027-02-06", "2028-01-26", "2029-02-13", "2030-02-03", "2031-01-23", "2032-02-11",
    "2033-01-31", "2034-02-19", "2035-02-08",
)
PRE_FESTIVAL_DAYS = 45
"""Length of the wage-settlement season before Spring Festival (腊月 and before)."""


def spring_festival_days(epoch: pd.Timestamp) -> np.ndarray:
    """Spring Festival dates as whole days since ``epoch`` (ascending, int64)."""
    dates = pd.to_datetime(list(SPRING_FESTIVAL))
    base = pd.Timestamp(epoch).tz_localize(None).normalize()
    return np.asarray((dates - base).days, dtype=np.int64)


def days_to_spring_festival(days: np.ndarray, festival_days: np.ndarray) -> np.ndarray:
    """For day numbers ``days`` (same epoch as ``festival_days``), days until the next
    Spring Festival (0 on the day itself)."""
    nxt = np.searchsorted(festival_days, days, side="left")
    if (nxt >= len(festival_days)).any():
        raise ValueError("date past the Spring Festival table in features/calendar.py: extend it")
    return festival_days[nxt] - days


def pre_festival_ramp(days: np.ndarray, festival_days: np.ndarray) -> np.ndarray:
    """0 outside the pre-festival season, rising linearly to 1 on the eve of the festival."""
    to_go = days_to_spring_festival(days, festival_days)
    return np.clip(1.0 - to_go / PRE_FESTIVAL_DAYS, 0.0, 1.0) * (to_go > 0)
