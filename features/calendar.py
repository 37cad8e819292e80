"""The Chinese calendar facts the risk depends on: Spring Festival (春节) dates.

Wage-arrears disputes and year-end petitions peak in the weeks before Spring Festival,
so both the simulator and the calendar features need its date. No dependency is needed
for a fixed table; extend it before 2035. A city elsewhere supplies its own dated events
(``HolidayCalendar`` from a file, named in its configuration).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.contracts import SECONDS_PER_DAY
from fengqiao.errors import ConfigurationError

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


@dataclass(frozen=True)
class HolidayCalendar:
    """A city's dated yearly event that risk gathers before (Spring Festival by default).

    ``dates`` are local ISO dates. A day is *covered* when the next date is known: on or before
    the last date, and no more than ``lead_days`` before the first (for a yearly event, less
    than the shortest gap between two dates, so that no earlier one can fall in between).
    ``season_days`` before each date form the season flag (the pre-festival wage season).
    """

    name: str
    zh: str
    en: str
    dates: tuple[str, ...]
    season_days: int
    season_name: str
    season_zh: str
    season_en: str
    source: str

    @property
    def day_numbers(self) -> np.ndarray:
        """The dates as whole days since 1970-01-01, ascending."""
        return np.sort(np.asarray(pd.to_datetime(list(self.dates)).as_unit("s").asi8 // SECONDS_PER_DAY, dtype=np.int64))

    @property
    def lead_days(self) -> int:
        days = self.day_numbers
        return int(np.diff(days).min()) - 1 if len(days) > 1 else 0

    def covers(self, days: np.ndarray) -> np.ndarray:
        """Which day numbers (since 1970-01-01) the calendar can tell the next date of."""
        known = self.day_numbers
        if len(known) == 0:
            return np.zeros(len(days), dtype=bool)
        return (days <= known[-1]) & (days > known[0] - self.lead_days)

    def days_to_next(self, days: np.ndarray) -> np.ndarray:
        """Days from each day number to the next date (0 on the day), NaN where not covered."""
        out = np.full(len(days), np.nan)
        known = self.covers(days)
        out[known] = days_to_spring_festival(days[known], self.day_numbers)
        return out


def spring_festival_calendar() -> HolidayCalendar:
    """The default calendar: Spring Festival and the 45-day wage-settlement season before it."""
    return HolidayCalendar(
        name="spring_festival", zh="春节", en="the Spring Festival", dates=SPRING_FESTIVAL,
        season_days=PRE_FESTIVAL_DAYS, season_name="pre_festival_wage_season", season_zh="春节前欠薪高发期",
        season_en="pre-festival wage-arrears season", source="features/calendar.py",
    )  # fmt: skip


def read_holiday_file(path: Path, name: str, zh: str, en: str, season_days: int) -> HolidayCalendar:
    """A city's own dated events from a CSV file with a ``date`` column (ISO dates, one a row)."""
    try:
        frame = pd.read_csv(path, dtype=str)
        dates = pd.to_datetime(frame["date"].str.strip(), format="ISO8601")
    except (OSError, KeyError, ValueError) as err:
        raise ConfigurationError(
            f"holiday file {path}: {err}; it must be a CSV file with a `date` column of ISO dates (2026-12-24)"
        ) from err
    return HolidayCalendar(
        name=name, zh=zh, en=en, dates=tuple(d.date().isoformat() for d in dates.sort_values()),
        season_days=season_days, season_name=f"pre_{name}_season", season_zh=f"{zh}前{season_days}天",
        season_en=f"the {season_days} days before {en}", source=str(path),
    )  # fmt: skip
