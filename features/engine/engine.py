"""The feature build: sort each event source once, sweep every family over all snapshots, assemble.

``build_features`` plans the families the city's tables allow for an entity kind, computes
the snapshots (local Monday midnights), runs one computation per family into a float32
matrix — one contiguous row per feature, entity-major columns — and assembles a frame with
one row per entity per snapshot and the label. Event arrays are released as soon as no
later family needs them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.calendar import HolidayCalendar, spring_festival_calendar
from features.contracts import CONTRACTS, TIMEZONE
from features.engine.catalogue import Catalogue, EntityKind, default_catalogue
from features.engine.declarations import EventCounter, EventSource
from features.engine.events import CounterEvents, SortedEvents, counter_events, sort_events
from features.engine.labels import incident_labels
from features.engine.neighbours import NeighbourParams, Neighbours, find_neighbours
from features.engine.plan import FeaturePlan, all_columns, plan_features
from features.engine.projects import ProjectTimes
from features.engine.registry import FeatureRegistry
from features.engine.summary import BuildSummary
from features.engine.timeline import NEVER, epoch_seconds, local_days, snapshot_times, to_timestamps
from fengqiao.errors import InputDataError

REQUIRED_TABLES = ("regions", "incidents")
EVENT_TIMES = {name: c.event_time for name, c in CONTRACTS.items() if c.event_time and name != "projects"}
"""Contract tables of dated events and their event time: they set the data's time range."""


@dataclass(frozen=True)
class EngineOptions:
    """How a city's features are built, beyond its tables: its zone, neighbour rule and calendar."""

    timezone: str = TIMEZONE
    neighbours: NeighbourParams = NeighbourParams()
    calendar: HolidayCalendar | None = field(default_factory=spring_festival_calendar)


@dataclass
class FeatureBuild:
    """A feature table (``frame``) with its ``summary`` and the ``registry`` of its features."""

    entity: str
    frame: pd.DataFrame
    summary: BuildSummary
    registry: FeatureRegistry


class EngineState:
    """What a plan's families share while they fill the feature matrix.

    Entities, snapshots, sorted events (released when no later family needs them), neighbours,
    and the features already computed (``feature``), for families derived from others.
    """

    def __init__(self, tables: Mapping[str, pd.DataFrame], plan: FeaturePlan, entities: pd.Index,
                 snapshots: np.ndarray, options: EngineOptions, village_sources: Sequence[EventSource] = ()) -> None:  # fmt: skip
        self.tables = tables
        self.plan = plan
        self.entities = entities
        self.snapshots = snapshots
        self.options = options
        self.timezone = options.timezone
        self.village_sources = tuple(village_sources)
        self.n_snap = len(snapshots)
        self.step = snapshot_step(snapshots)
        self.values = np.zeros((len(plan.names), len(entities) * self.n_snap), dtype=np.float32)
        self.rows = {name: i for i, name in enumerate(plan.names)}
        self.seconds: dict[str, float] = {}
        self.warnings: list[str] = []
        self._events: dict[tuple[str, str, str], SortedEvents] = {}
        self._counters: dict[tuple[tuple[str, str, str], EventCounter], CounterEvents] = {}
        self._neighbours: Neighbours | None = None

    def events(self, table: str, entity_column: str, time_column: str) -> SortedEvents:
        """A table's events sorted by (entity, time), made once and shared."""
        key = (table, entity_column, time_column)
        if key not in self._events:
            events = sort_events(self.tables[table], entity_column, time_column, self.entities, self.timezone)
            if events.unmatched:
                self.warnings.append(
                    f"{table}: {events.unmatched} rows name a {entity_column} that is not in the entity list "
                    f"and were not counted (ingest should have rejected them)"
                )
            self._events[key] = events
        return self._events[key]

    def source_events(self, source: EventSource) -> SortedEvents:
        return self.events(source.table, source.entity, source.time)

    def counter_events(self, source: EventSource, counter: EventCounter) -> CounterEvents:
        key = ((source.table, source.entity, source.time), counter)
        if key not in self._counters:
            self._counters[key] = counter_events(self.source_events(source), counter)
        return self._counters[key]

    def entity_frame(self) -> pd.DataFrame:
        """The entity table, one row per entity in the engine's order (indexed by id)."""
        kind = self.plan.kind
        return self.tables[kind.table].set_index(kind.id).reindex(self.entities)

    def neighbours(self) -> Neighbours:
        if self._neighbours is None:
            places = self.entity_frame()
            boundaries = places["boundary"].to_numpy() if "boundary" in places else None
            self._neighbours = find_neighbours(places["lat"].to_numpy(float), places["lon"].to_numpy(float),
                                               self.options.neighbours, boundaries)  # fmt: skip
        return self._neighbours

    def row(self, name: str) -> int:
        return self.rows[name]

    def feature(self, name: str) -> np.ndarray:
        """A feature already computed, over all (entity, snapshot) columns."""
        return self.values[self.rows[name]]

    def village_state(self, names: Sequence[str], villages: pd.Index) -> EngineState:
        """The village features ``names`` computed for ``villages`` (what projects aggregate)."""
        kind = EntityKind("village", "regions", "village_id")
        plan = plan_features(kind, {n: set(f.columns) for n, f in self.tables.items()}, self.village_sources,
                             self.options.neighbours, None, only=names)  # fmt: skip
        sub = EngineState(self.tables, plan, villages, self.snapshots, self.options)
        sub.run()  # its warnings repeat the main build's, or are about villages outside the subset
        return sub

    def release_events_except(self, keep: set[tuple[str, str, str]]) -> None:
        for key in list(self._events):
            if key not in keep:
                del self._events[key]
        for key in list(self._counters):
            if key[0] not in keep:
                del self._counters[key]

    def run(self) -> np.ndarray:
        families = self.plan.families
        for i, family in enumerate(families):
            start = time.perf_counter()
            first = self.rows[family.names[0]]
            block = self.values[first : first + len(family.features)]
            if self.n_snap and len(self.entities):
                family.compute(self, block)
            self.release_events_except({k for f in families[i + 1 :] for k in f.event_keys()})
            name = type(family).__name__
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return self.values


def snapshot_step(snapshots: np.ndarray) -> int:
    """The spacing of evenly spaced snapshots in seconds, or 0 when they are not even (daylight saving)."""
    if len(snapshots) < 2:
        return 0
    gaps = np.diff(snapshots)
    return int(gaps[0]) if (gaps == gaps[0]).all() else 0


# --- the time frame ----------------------------------------------------------------------


def event_time_range(tables: Mapping[str, pd.DataFrame], sources: Sequence[EventSource], timezone: str) -> tuple[int, int] | None:
    """(earliest, latest) event time in epoch seconds over the event tables present.

    Each table contributes its event time (``occurred_at``, ``reported_at`` …, or the declared
    time of an extra source's table). Project dates are plans and milestones, not events, and
    outcome times (``mediated_at`` …) are not the data's end: neither sets the range.
    """
    event_time = dict(EVENT_TIMES)
    for source in sources:
        event_time.setdefault(source.table, source.time)
    lo, hi = None, None
    for name, time_column in event_time.items():
        frame = tables.get(name)
        if frame is None or time_column not in frame:
            continue
        seconds = epoch_seconds(frame[time_column], timezone)
        seconds = seconds[seconds != NEVER]
        if len(seconds):
            lo = seconds.min() if lo is None else min(lo, seconds.min())
            hi = seconds.max() if hi is None else max(hi, seconds.max())
    if lo is None or hi is None:
        return None
    return int(lo), int(hi)


def _as_seconds(as_of: pd.Timestamp | str | None, timezone: str) -> int | None:
    if as_of is None:
        return None
    return int(epoch_seconds(pd.Series([pd.Timestamp(as_of)]), timezone)[0])


# --- entities and rows -------------------------------------------------------------------


def with_entity_column(tables: Mapping[str, pd.DataFrame], kind: EntityKind) -> dict[str, pd.DataFrame]:
    """For a kind that groups places (``via``), each event table gains the kind's id column."""
    if kind.via is None:
        return dict(tables)
    lookup = tables[kind.table].drop_duplicates(kind.via).set_index(kind.via)[kind.id]
    out = {}
    for name, frame in tables.items():
        if name != kind.table and kind.via in frame and kind.id not in frame:
            frame = frame.assign(**{kind.id: frame[kind.via].map(lookup).astype("str")})
        out[name] = frame
    return out


def entity_index(tables: Mapping[str, pd.DataFrame], kind: EntityKind) -> pd.Index:
    """The kind's entity ids, sorted (a place kind's ids must be unique)."""
    ids = tables[kind.table][kind.id].dropna().astype("str")
    if kind.via is None and ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise InputDataError(f"{kind.id} {dup!r} appears more than once; ingest should deduplicate it")
    return pd.Index(np.sort(ids.unique()), dtype="str", name=kind.id)


def _project_rows(tables: Mapping[str, pd.DataFrame], projects: pd.Index, snapshots: np.ndarray, timezone: str) -> np.ndarray:
    """Which (project, snapshot) cells are rows, entity-major (``ProjectTimes.rows_at``)."""
    frame = tables["projects"].set_index("project_id").reindex(projects).reset_index()
    return ProjectTimes.of(frame, timezone).rows_at(snapshots).ravel()


def _check_tables(tables: Mapping[str, pd.DataFrame], kind: EntityKind) -> None:
    for name in REQUIRED_TABLES:
        if name not in tables:
            raise InputDataError(
                f"the `{name}` table is required to build features (have: {', '.join(sorted(tables)) or 'none'}); "
                f"ingest it into the warehouse first"
            )
    if kind.table not in tables:
        raise InputDataError(f"{kind.name} features need a `{kind.table}` table, and this city has none")
    if kind.id not in tables[kind.table]:
        raise InputDataError(f"{kind.name} features need the `{kind.table}.{kind.id}` column, and this city has none")
    if kind.event_key not in tables["incidents"]:
        raise InputDataError(
            f"{kind.name} labels need incidents linked to a {kind.name} (`incidents.{kind.event_key}`), "
            f"and this city's incidents are not"
        )


def build_features(
    tables: Mapping[str, pd.DataFrame],
    entity: str | EntityKind,
    snapshot_every_days: int = 7,
    horizon_days: int = 30,
    as_of: pd.Timestamp | str | None = None,
    *,
    since: pd.Timestamp | str | None = None,
    catalogue: Catalogue | None = None,
    sources: Sequence[EventSource] | None = None,
    options: EngineOptions = EngineOptions(),
) -> FeatureBuild:
    """Point-in-time features and labels for every entity of a kind at every snapshot.

    Args:
        tables: warehouse tables by name (``regions`` and ``incidents`` required; others optional,
            and tables of extra sources by the names the sources declare).
        entity: an entity kind of the catalogue (``"village"``, ``"project"``) or an ``EntityKind``.
        snapshot_every_days: days between snapshots (7: every Monday).
        horizon_days: the label looks at incidents in [t, t + horizon_days).
        as_of: the end of the data (default: the latest time recorded in an event table); rows
            whose label window passes it get a missing label.
        catalogue: the entity kinds and event sources (default: DESIGN.md's).
        sources: the kind's event sources, instead of the catalogue's.
        options: the city's time zone, neighbour rule and holiday calendar.

    Returns:
        The frame (``<entity>_id``, ``snapshot`` in the city's zone, features as float32,
        ``label`` Int8), a summary and the registry of the features built.
    """
    started = time.perf_counter()
    catalogue = catalogue or default_catalogue()
    kind = entity if isinstance(entity, EntityKind) else catalogue.entity(entity)
    _check_tables(tables, kind)
    if horizon_days < 1:
        raise InputDataError(f"horizon_days must be at least 1, got {horizon_days}")
    tz = options.timezone
    tables = with_entity_column(tables, kind)
    kind_sources = tuple(catalogue.sources_of(kind) if sources is None else sources)
    entities = entity_index(tables, kind)
    span = event_time_range(tables, [s for s in kind_sources if s.table in tables], tz)
    as_of_s = _as_seconds(as_of, tz)
    summary = BuildSummary(kind.name, timezone=tz, horizon_days=horizon_days, snapshot_every_days=snapshot_every_days)
    if span is None:
        summary.warnings.append("no dated events in any table: no snapshots")
        snapshots = np.empty(0, dtype=np.int64)
        as_of_s = as_of_s or 0
    else:
        as_of_s = span[1] if as_of_s is None else as_of_s
        since_s = _as_seconds(since, tz)
        snapshots = snapshot_times(span[0] if since_s is None else since_s, as_of_s, snapshot_every_days, tz)
    plan, calendar_note = plan_for_tables(tables, kind, kind_sources, catalogue, options, snapshots)
    summary.calendar = None if options.calendar is None else f"{options.calendar.name} from {options.calendar.source}"
    summary.warnings += calendar_note
    summary.warnings += list(plan.left_out)
    state = EngineState(tables, plan, entities, snapshots, options, plan_village_sources(catalogue, kind))
    state.run()
    step = state.step
    labels = incident_labels(state.events("incidents", kind.id, "occurred_at"), len(entities), snapshots, step,
                             horizon_days, as_of_s)  # fmt: skip
    values = state.values
    rows = np.ones(values.shape[1], dtype=bool)
    if kind.table == "projects":
        rows = _project_rows(tables, entities, snapshots, tz)
        values, labels = values[:, rows], labels[rows]
    entity_of_row, snapshot_of_row = np.divmod(np.flatnonzero(rows), max(len(snapshots), 1))
    frame = pd.DataFrame(values.T, columns=plan.names, copy=False)  # a view: no copy of the matrix
    frame.insert(0, kind.id, pd.array(entities.to_numpy(), dtype="str").take(entity_of_row))
    frame.insert(1, "snapshot", to_timestamps(snapshots, tz).take(snapshot_of_row))
    frame["label"] = labels

    summary.warnings += state.warnings
    summary.rows = len(frame)
    summary.entities = int(frame[kind.id].nunique()) if kind.table == "projects" else len(entities)
    summary.snapshots = len(snapshots)
    if len(snapshots):
        summary.first_snapshot, summary.last_snapshot = to_timestamps(snapshots[[0, -1]], tz)
    summary.as_of = to_timestamps(np.array([as_of_s]), tz)[0]
    summary.features = len(plan.names)
    summary.labelled_rows = int((~labels.isna()).sum())
    summary.positive_labels = int(labels.sum())
    summary.seconds = {**state.seconds, "total": time.perf_counter() - started}
    return FeatureBuild(kind.name, frame, summary, plan.registry)


def plan_for_tables(
    tables: Mapping[str, pd.DataFrame],
    kind: EntityKind,
    sources: Sequence[EventSource],
    catalogue: Catalogue,
    options: EngineOptions,
    snapshots: np.ndarray,
) -> tuple[FeaturePlan, list[str]]:
    """The plan for these tables and snapshots, and a note when the calendar covers only some snapshots."""
    calendar, notes = options.calendar, []
    reaches = False
    if calendar is not None:
        covered = calendar.covers(local_days(snapshots, options.timezone))
        reaches = bool(covered.any())
        if reaches and not covered.all():
            notes.append(f"the {calendar.name} calendar covers {covered.sum()} of {len(covered)} snapshots: "
                         f"days_to_{calendar.name} is missing at the others")  # fmt: skip
    plan = plan_features(
        kind, {n: set(f.columns) for n, f in tables.items()}, sources, options.neighbours, calendar,
        village_sources=plan_village_sources(catalogue, kind), calendar_reaches=reaches,
    )  # fmt: skip
    return plan, notes


def plan_village_sources(catalogue: Catalogue, kind: EntityKind) -> tuple[EventSource, ...]:
    """The village sources a project kind aggregates over its affected villages (none for other kinds)."""
    return catalogue.sources_of(catalogue.entity("village")) if kind.table == "projects" else ()


def feature_registry(entity: str, catalogue: Catalogue | None = None, options: EngineOptions = EngineOptions()) -> FeatureRegistry:
    """Every feature an entity kind can have (every table and column present), declared once each."""
    catalogue = catalogue or default_catalogue()
    kind = catalogue.entity(entity)
    sources = catalogue.sources_of(kind)
    return plan_features(kind, all_columns(catalogue.sources), sources, options.neighbours, options.calendar,
                         village_sources=plan_village_sources(catalogue, kind)).registry  # fmt: skip

