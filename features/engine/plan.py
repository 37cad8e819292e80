"""What to compute for an entity kind: its families, given the tables and columns a city has.

``plan_features`` lines up candidate families — each event source's, then ratios, then the
families of the kind's table (spill-over, project exposure and static covariates for places;
attributes, stages and affected-village sums for projects), then the calendar — and keeps a
feature only when everything it needs is there: a ``table.column`` of the warehouse, a feature
planned before it, a calendar that reaches the snapshots. What is left out, and why, goes to
the run summary. Nothing is filled with an invented constant.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from features.calendar import HolidayCalendar
from features.contracts import CONTRACTS
from features.engine.catalogue import EntityKind
from features.engine.declarations import EventSource
from features.engine.families import (
    COUNTER_FAMILIES,
    SOURCE_FAMILIES,
    AffectedVillageSums,
    Family,
    Feature,
    HolidayCountdown,
    Month,
    NearbySums,
    ProjectAttributes,
    ProjectExposures,
    ProjectStages,
    Ratios,
    RegionAttributes,
)
from features.engine.neighbours import NeighbourParams
from features.engine.registry import FeatureRegistry

AFFECTED_VILLAGE_FEATURES = (
    "disputes_30d",
    "unresolved_disputes_90d",
    "land_disputes_365d",
    "demolition_compensation_disputes_365d",
    "disputes_decay_30d",
    "petitions_30d",
    "collective_petitions_365d",
    "incidents_365d",
    "population",
    "households",
)
"""Village features summed over a project's affected villages (``villages_<name>``)."""


@dataclass(frozen=True)
class FeaturePlan:
    """The families to compute for one entity kind, the sources they count, and what was left out."""

    kind: EntityKind
    families: tuple[Family, ...]
    left_out: tuple[str, ...]
    sources: tuple[EventSource, ...]

    @property
    def features(self) -> list[Feature]:
        return [f for family in self.families for f in family.features]

    @property
    def names(self) -> list[str]:
        return [f.spec.name for f in self.features]

    @property
    def registry(self) -> FeatureRegistry:
        return FeatureRegistry(f.spec for f in self.features)


def _source_families(source: EventSource) -> list[Family]:
    families = [f for counter in source.counters for cls in COUNTER_FAMILIES for f in cls.from_counter(source, counter)]
    return families + [f for cls in SOURCE_FAMILIES for f in cls.from_source(source)]


def _kind_families(kind: EntityKind, specs: dict, sources: Sequence[EventSource], neighbours: NeighbourParams,
                   village_sources: Sequence[EventSource]) -> list[Family]:  # fmt: skip
    """The families a kind gets from its own table: places (regions rows) and projects."""
    if kind.via is not None:
        return []
    if kind.table == "regions":
        bases = [specs[b] for s in sources for b in s.spill if b in specs]
        return [NearbySums(bases, neighbours), ProjectExposures(), RegionAttributes(neighbours)]
    if kind.table == "projects":
        village = _candidates(kind_of_villages(), village_sources, neighbours, None, village_sources)
        village_features = {f.spec.name: f for family in village for f in family.features}
        bases = [village_features[b] for b in AFFECTED_VILLAGE_FEATURES if b in village_features]
        return [ProjectAttributes(), ProjectStages(), AffectedVillageSums(bases)]
    return []


def kind_of_villages() -> EntityKind:
    return EntityKind("village", "regions", "village_id")


def _candidates(kind: EntityKind, sources: Sequence[EventSource], neighbours: NeighbourParams,
                calendar: HolidayCalendar | None, village_sources: Sequence[EventSource]) -> list[Family]:  # fmt: skip
    """Every family the kind could have, in output order, before checking what the city has."""
    families = [f for s in sources for f in _source_families(s)]
    specs = {f.spec.name: f.spec for family in families for f in family.features}
    families += _kind_families(kind, specs, sources, neighbours, village_sources)
    ratios = [r for s in sources for r in s.ratios]
    if ratios:  # after the place's own attributes, which a ratio may divide by (patrols per grid cell)
        families.append(Ratios(ratios))
    if calendar is not None:
        families.append(HolidayCountdown(calendar))
    families.append(Month())
    return [f for f in families if f.features]


def plan_features(
    kind: EntityKind,
    columns: Mapping[str, Collection[str]],
    sources: Sequence[EventSource],
    neighbours: NeighbourParams = NeighbourParams(),
    calendar: HolidayCalendar | None = None,
    *,
    village_sources: Sequence[EventSource] = (),
    calendar_reaches: bool = True,
    only: Collection[str] | None = None,
) -> FeaturePlan:
    """The families of ``kind`` that the city's tables allow.

    Args:
        kind: the entity kind.
        columns: the columns of each table the city has (table name → column names).
        sources: the kind's event sources (keyed by ``kind.id``).
        neighbours: the neighbour rule of spill-over features.
        calendar: the holiday calendar (None: no holiday features).
        village_sources: the village sources that project entities aggregate.
        calendar_reaches: whether the calendar covers any snapshot.
        only: keep only the families holding these features (a project's village aggregates).
    """
    for source in sources:
        if source.entity != kind.id:
            raise ValueError(f"source {source.name!r} is keyed by {source.entity!r}, not {kind.id!r}")
    left_out: list[str] = []
    absent: dict[str, list[str]] = {}
    planned: set[str] = set()
    dropped: set[str] = set()
    kept_families: list[Family] = []

    def available(need: str) -> bool:
        where, _, what = need.partition(".")
        if where == "feature":
            return what in planned
        if where == "calendar":
            return calendar_reaches
        return where in columns and what in columns[where]

    for family in _candidates(kind, sources, neighbours, calendar, village_sources):
        if only is not None and not set(only) & set(family.names):
            continue
        kept, missing = [], {}
        for feature in family.features:
            lacking = tuple(n for n in feature.needs if not available(n))
            if lacking:
                missing.setdefault(lacking, []).append(feature.spec.name)
            else:
                kept.append(feature)
        if missing and not family.divisible:
            missing = {tuple(sorted({n for k in missing for n in k})): family.names}
            kept = []
        for lacking, names in missing.items():
            dropped.update(names)
            tables = sorted({n.split(".")[0] for n in lacking} - {"feature", "calendar"} - set(columns))
            if tables:
                absent.setdefault(tables[0], []).extend(names)
            elif not all(n.startswith("feature.") and n.split(".", 1)[1] in dropped for n in lacking):
                left_out.append(f"{_listed(names)}: left out, {_reason(lacking)}")
        if kept:
            family = family if len(kept) == len(family.features) else family.keeping(kept)
            kept_families.append(family)
            planned.update(family.names)
    left_out[:0] = [f"no `{table}` table: {len(names)} features left out ({_listed(names)})"
                    for table, names in absent.items()]  # fmt: skip
    used = tuple(s for s in sources if s.table in columns)
    plan = FeaturePlan(kind, tuple(kept_families), tuple(left_out), used)
    plan.registry  # noqa: B018 - a name declared twice raises here
    return plan


def _listed(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])} and {len(names) - 3} more"


def _reason(lacking: tuple[str, ...]) -> str:
    """Why features were left out, in the words of the run summary."""
    words = []
    for need in lacking:
        where, _, what = need.partition(".")
        if where == "feature":
            words.append(f"needs {what}")
        elif where == "calendar":
            words.append(f"the {what} calendar does not reach the snapshots")
        else:
            words.append(f"the `{where}` table has no `{what}` column")
    return "; ".join(words)


def all_columns(sources: Sequence[EventSource]) -> dict[str, set[str]]:
    """Every contract column of every table, and every column the sources read: a city with everything."""
    columns = {name: set(c.column_names) for name, c in CONTRACTS.items()}
    for source in sources:
        columns.setdefault(source.table, set()).update(source.columns())
    return columns
