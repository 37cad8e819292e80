"""Calendar: days to the city's holiday, its season, and the local month of each snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from features.calendar import HolidayCalendar
from features.engine.families.base import Family, Feature
from features.engine.registry import FeatureSpec
from features.engine.timeline import local_days, to_timestamps

if TYPE_CHECKING:
    from features.engine.engine import EngineState


@dataclass(frozen=True)
class CalendarValue:
    """``days_to``: days from t's local date to the next holiday date; ``season``: 1 when that is
    at most ``season_days``; ``month``: t's local month."""

    measure: Literal["days_to", "season", "month"]
    calendar: HolidayCalendar | None = None


class HolidayCountdown(Family):
    """Days to the next holiday and the season flag; NaN where the calendar does not reach."""

    def __init__(self, calendar: HolidayCalendar) -> None:
        c = calendar
        needs = (f"calendar.{c.name}",)
        super().__init__([
            Feature(FeatureSpec(f"days_to_{c.name}", "calendar", "days", f"距{c.zh} {{value}} 天",
                                f"{{value}} days to {c.en}"), CalendarValue("days_to", c), needs),
            Feature(FeatureSpec(c.season_name, "calendar", "flag", f"{c.season_zh}(1=是) {{value}}",
                                f"{c.season_en} (1 = yes): {{value}}"), CalendarValue("season", c), needs),
        ])  # fmt: skip
        self.calendar = calendar

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        days = self.calendar.days_to_next(local_days(state.snapshots, state.timezone))
        with np.errstate(invalid="ignore"):
            season = np.where(np.isnan(days), np.nan, (days <= self.calendar.season_days).astype(np.float64))
        block[0] = np.tile(days, len(state.entities))
        block[1] = np.tile(season, len(state.entities))


class Month(Family):
    """The local month of the snapshot (1–12)."""

    def __init__(self) -> None:
        super().__init__([Feature(FeatureSpec("month", "calendar", "month", "月份 {value}", "month {value}"),
                                  CalendarValue("month"))])  # fmt: skip

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        months = to_timestamps(state.snapshots, state.timezone).month.to_numpy(dtype=np.float64)
        block[0] = np.tile(months, len(state.entities))
