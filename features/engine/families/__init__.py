"""The feature families: one module per kind of computation, each declaring its own features.

``COUNTER_FAMILIES`` are made from each counter of an event source, in this order;
``SOURCE_FAMILIES`` from each source. The others are built by the plan from the entity
kind's table. A new family is one new module here and one line in the plan.
"""

from features.engine.families.backlogs import OpenBacklogs
from features.engine.families.base import Family, Feature
from features.engine.families.calendar import CalendarValue, HolidayCountdown, Month
from features.engine.families.decays import DecayedIntensities, DecayedIntensity
from features.engine.families.exposure import ProjectExposure, ProjectExposures
from features.engine.families.lags import LaggedCount, WeeklyLags
from features.engine.families.longmemory import AllHistoryCount, LongMemory, ShrunkRate
from features.engine.families.ratios import RatioOf, Ratios
from features.engine.families.recency import DaysSinceLast, Recency
from features.engine.families.repeats import RepeatCount, RepeatKeyCounts
from features.engine.families.spillover import AffectedVillagesSum, AffectedVillageSums, NearbySum, NearbySums
from features.engine.families.static import (
    ProjectAttribute,
    ProjectAttributes,
    ProjectStage,
    ProjectStages,
    RegionAttribute,
    RegionAttributes,
)
from features.engine.families.windows import EventCount, WindowCounts

COUNTER_FAMILIES = (WindowCounts, OpenBacklogs, DecayedIntensities, Recency, WeeklyLags, LongMemory)
SOURCE_FAMILIES = (RepeatKeyCounts,)

__all__ = [
    "COUNTER_FAMILIES",
    "SOURCE_FAMILIES",
    "AffectedVillageSums",
    "AffectedVillagesSum",
    "AllHistoryCount",
    "CalendarValue",
    "DaysSinceLast",
    "DecayedIntensities",
    "DecayedIntensity",
    "EventCount",
    "Family",
    "Feature",
    "HolidayCountdown",
    "LaggedCount",
    "LongMemory",
    "Month",
    "NearbySum",
    "NearbySums",
    "OpenBacklogs",
    "ProjectAttribute",
    "ProjectAttributes",
    "ProjectExposure",
    "ProjectExposures",
    "ProjectStage",
    "ProjectStages",
    "RatioOf",
    "Ratios",
    "Recency",
    "RegionAttribute",
    "RegionAttributes",
    "RepeatCount",
    "RepeatKeyCounts",
    "ShrunkRate",
    "WeeklyLags",
    "WindowCounts",
]
