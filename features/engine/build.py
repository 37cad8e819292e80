"""The feature build: warehouse tables in, one feature table per entity type out.

``build_features`` plans the families the city's tables allow, sorts each event source once
by (entity, time), runs one kernel per family over all snapshots, and assembles a frame with
one row per entity per snapshot. The feature matrix is float32, one contiguous row per
feature, filled family by family; event arrays are released as soon as no family needs them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contracts import CONTRACTS, LIST_SEPARATOR
from features.engine import kernels
from features.engine.declarations import PROJECT_SOURCES, VILLAGE_SOURCES, Counter, EventSource
from features.engine.events import (
    CounterEvents,
    SortedEvents,
    close_times,
    counter_events,
    entity_pointers,
    pair_codes,
    sort_events,
)
from features.engine.neighbours import NeighbourParams, Neighbours, find_neighbours
from features.engine.plan import (
    ENTITY_ID,
    RECENTLY_COMPLETED_DAYS,
    REQUIRED_TABLES,
    WAGE_SEASON_DAYS,
    Entity,
    Family,
    FeaturePlan,
    ProjectAttribute,
    ProjectExposure,
    ProjectStage,
    plan_features,
    village_plan_for_projects,
)
from features.engine.registry import FeatureRegistry
from features.engine.timeline import (
    NEVER,
    SECONDS_PER_DAY,
    days_to_spring_festival,
    epoch_seconds,
    snapshot_times,
    to_timestamps,
)
from features.warehouse import table_path
from fengqiao.errors import InputDataError

EVENT_TABLES = {name: c.event_time for name, c in CONTRACTS.items() if c.event_time and name != "projects"}
"""Contract tables of dated events and their event time: they set the data's time range."""

_EMPTY_I64 = np.empty(0, dtype=np.int64)
_EMPTY_F64 = np.empty(0, dtype=np.float64)


@dataclass
class BuildSummary:
    """What a build produced, what it left out and why, and where the time went."""

    entity: str
    built: bool = True
    rows: int = 0
    entities: int = 0
    snapshots: int = 0
    first_snapshot: pd.Timestamp | None = None
    last_snapshot: pd.Timestamp | None = None
    as_of: pd.Timestamp | None = None
    horizon_days: int = 30
    snapshot_every_days: int = 7
    features: int = 0
    labelled_rows: int = 0
    positive_labels: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = dict(self.__dict__)
        for k in ("first_snapshot", "last_snapshot", "as_of"):
            out[k] = None if out[k] is None else out[k].isoformat()
        return out

    def __str__(self) -> str:
        if not self.built:
            return "\n".join([f"features_{self.entity}: not built", *(f"  warning: {w}" for w in self.warnings)])
        rate = self.positive_labels / self.labelled_rows if self.labelled_rows else float("nan")
        lines = [
            f"features_{self.entity}: {self.rows:,} rows = {self.entities:,} {self.entity}s × "
            f"{self.snapshots} snapshots ({self.first_snapshot:%Y-%m-%d} … {self.last_snapshot:%Y-%m-%d}), "
            f"{self.features} features"
            if self.snapshots
            else f"features_{self.entity}: no snapshots (less than a year of history before as_of)",
            f"  labels: {self.labelled_rows:,} labelled rows, {self.positive_labels:,} positive ({rate:.2%}), "
            f"horizon {self.horizon_days} days, data as of {self.as_of}",
            f"  time: {self.seconds.get('total', 0.0):.1f} s ("
            + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items() if k != "total")
            + ")",
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass
class FeatureBuild:
    """A feature table (``frame``) with its ``summary`` and the ``registry`` of its features."""

    entity: str
    frame: pd.DataFrame
    summary: BuildSummary
    registry: FeatureRegistry


# --- the time frame ----------------------------------------------------------------------


def event_time_range(tables: dict[str, pd.DataFrame], sources: Iterable[EventSource] = ()) -> tuple[int, int] | None:
    """(earliest, latest) event time in epoch seconds over the event tables present.

    Each table contributes its event time (``occurred_at``, ``reported_at`` …, or the declared
    time of an extra source's table). Project dates are plans and milestones, not events, and
    outcome times (``mediated_at`` …) are not the data's end: neither sets the range.
    """
    event_time = dict(EVENT_TABLES)
    for source in sources:
        event_time.setdefault(source.table, source.time)
    lo, hi = None, None
    for name, time_column in event_time.items():
        frame = tables.get(name)
        if frame is None:
            continue
        seconds = epoch_seconds(frame[time_column])
        seconds = seconds[seconds != NEVER]
        if len(seconds):
            lo = seconds.min() if lo is None else min(lo, seconds.min())
            hi = seconds.max() if hi is None else max(hi, seconds.max())
    if lo is None or hi is None:
        return None
    return int(lo), int(hi)


def _as_seconds(as_of: pd.Timestamp | str | None) -> int | None:
    if as_of is None:
        return None
    return int(epoch_seconds(pd.Series([pd.Timestamp(as_of)]))[0])


# --- the engine --------------------------------------------------------------------------


class FeatureEngine:
    """Computes a plan's families into one float32 matrix (a row per feature, entity-major columns).

    Holds what the families share: entities, snapshots, sorted events (released when no later
    family needs them), neighbours. ``build_features`` is the way in; the benchmark uses this
    directly to time some families alone.
    """

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        plan: FeaturePlan,
        entities: pd.Index,
        snapshots: np.ndarray,
        neighbours: NeighbourParams,
    ) -> None:
        self.tables = tables
        self.plan = plan
        self.entities = entities
        self.snapshots = snapshots
        self.neighbour_params = neighbours
        self.n_snap = len(snapshots)
        self.values = np.zeros((len(plan.names), len(entities) * self.n_snap), dtype=np.float32)
        self.rows = {name: i for i, name in enumerate(plan.names)}
        self.seconds: dict[str, float] = {}
        self.warnings: list[str] = []
        self.step = snapshot_step(snapshots)
        self._events: dict[tuple[str, str, str], SortedEvents] = {}
        self._counters: dict[tuple[tuple[str, str, str], Counter], CounterEvents] = {}
        self._neighbours: Neighbours | None = None

    # events ---------------------------------------------------------------------------

    def events(self, table: str, entity_column: str, time_column: str) -> SortedEvents:
        key = (table, entity_column, time_column)
        if key not in self._events:
            events = sort_events(self.tables[table], entity_column, time_column, self.entities)
            if events.unmatched:
                self.warnings.append(
                    f"{table}: {events.unmatched} rows name a {entity_column} that is not in the entity list "
                    f"and were not counted (ingest should have rejected them)"
                )
            self._events[key] = events
        return self._events[key]

    def counter_events(self, source: EventSource, counter: Counter) -> CounterEvents:
        key = (_source_key(source), counter)
        if key not in self._counters:
            self._counters[key] = counter_events(self.events(*key[0]), counter)
        return self._counters[key]

    def release_events_except(self, keep: set[tuple[str, str, str]]) -> None:
        for key in list(self._events):
            if key not in keep:
                del self._events[key]
        for key in list(self._counters):
            if key[0] not in keep:
                del self._counters[key]

    # the run --------------------------------------------------------------------------

    def run(self) -> np.ndarray:
        families = self.plan.families
        keys = [_source_key(f.source) if f.source is not None else None for f in families]
        for i, family in enumerate(families):
            start = time.perf_counter()
            first = self.rows[family.members[0].spec.name]
            block = self.values[first : first + len(family.members)]
            if self.n_snap and len(self.entities):
                _COMPUTE[family.kind](self, family, block)
            self.release_events_except({k for k in keys[i + 1 :] if k is not None})
            self.seconds[family.kind] = self.seconds.get(family.kind, 0.0) + time.perf_counter() - start
        return self.values


def snapshot_step(snapshots: np.ndarray) -> int:
    """The spacing of evenly spaced snapshots in seconds, or 0 when they are not even."""
    if len(snapshots) < 2:
        return 0
    gaps = np.diff(snapshots)
    return int(gaps[0]) if (gaps == gaps[0]).all() else 0


def _source_key(source: EventSource) -> tuple[str, str, str]:
    return (source.table, source.entity, source.time)


def _days(days: Iterable[int]) -> np.ndarray:
    return np.asarray(list(days), dtype=np.int64) * SECONDS_PER_DAY


# --- one function per family kind --------------------------------------------------------


def _window_counts(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    source, counter = family.source, family.counter
    ce = engine.counter_events(source, counter)
    closes = _EMPTY_I64
    if family.kind == "open":
        closes = ce.take(close_times(engine.events(*_source_key(source)), source.closure))
    kernels.count_in_intervals(
        ce.entity_ptr, ce.times, closes, _days(family.days), ce.codes, counter.n_codes, ce.weights,
        engine.snapshots, engine.step, block,
    )  # fmt: skip


def _decays(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    ce = engine.counter_events(family.source, family.counter)
    taus = _days(family.days).astype(np.float64)
    kernels.decayed_counts(
        ce.entity_ptr, ce.times, ce.codes, family.counter.n_codes, ce.weights, taus, engine.snapshots, block
    )


def _recency(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    ce = engine.counter_events(family.source, family.counter)
    kernels.days_since_last(ce.entity_ptr, ce.times, ce.codes, 1, engine.snapshots, block)


def _repeats(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    source = family.source
    events = engine.events(*_source_key(source))
    pairs, n_pairs = pair_codes(events, source.repeat.key)
    scratch = np.zeros(max(n_pairs, 1), dtype=np.int64)
    kernels.repeat_keys(
        events.entity_ptr, events.times, pairs, source.repeat.min_count, _days(family.days), engine.snapshots,
        scratch, block,
    )  # fmt: skip


def _ratios(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    for j, member in enumerate(family.members):
        ratio = member.recipe.ratio  # type: ignore[union-attr]
        num = engine.values[engine.rows[ratio.numerator]].astype(np.float64)
        den = engine.values[engine.rows[ratio.denominator]].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            block[j] = np.where(den > 0, ratio.scale * num / den, np.nan)


def _neighbours(engine: FeatureEngine) -> Neighbours:
    if engine._neighbours is None:
        regions = engine.tables["regions"].set_index("village_id").reindex(engine.entities)
        engine._neighbours = find_neighbours(
            regions["lat"].to_numpy(float), regions["lon"].to_numpy(float), engine.neighbour_params
        )
    return engine._neighbours


def _nearby(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    nb = _neighbours(engine)
    src_rows = np.array([engine.rows[m.recipe.base] for m in family.members], dtype=np.int64)  # type: ignore[union-attr]
    kernels.weighted_sums(nb.indptr, nb.indices, nb.weights, engine.n_snap, engine.values, src_rows, block)


@dataclass(frozen=True)
class _ProjectTimes:
    """Per-project milestones in epoch seconds (``NEVER`` when not reached)."""

    announced: np.ndarray
    acquisition: np.ndarray
    construction: np.ndarray
    completed: np.ndarray

    @classmethod
    def of(cls, projects: pd.DataFrame) -> _ProjectTimes:
        return cls(*(epoch_seconds(projects[c]) for c in ("announced_at", "acquisition_start", "construction_start",
                                                          "completed_at")))  # fmt: skip

    def take(self, idx: np.ndarray) -> _ProjectTimes:
        return _ProjectTimes(self.announced[idx], self.acquisition[idx], self.construction[idx], self.completed[idx])


def compensation_gap(projects: pd.DataFrame) -> np.ndarray:
    """How far each project's compensation offer falls short of the regional standard (0 if not)."""
    return np.clip(1.0 - projects["compensation_ratio"].to_numpy(dtype=np.float64, na_value=np.nan), 0.0, None)


def project_villages(projects: pd.DataFrame, villages: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(project row, village index) pairs from ``village_ids``; unknown villages are skipped."""
    lists = projects["village_ids"].fillna("").astype("str").str.split(LIST_SEPARATOR)
    counts = lists.str.len().to_numpy()
    project_rows = np.repeat(np.arange(len(projects)), counts)
    flat = pd.Index([v.strip() for ids in lists for v in ids], dtype="str")
    village_idx = villages.get_indexer(flat)
    known = village_idx >= 0
    return project_rows[known], village_idx[known]


def _exposure(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    projects = engine.tables["projects"]
    rows, village = project_villages(projects, engine.entities)
    order = np.argsort(village, kind="stable")
    rows, village = rows[order], village[order]
    ptr = entity_pointers(village, len(engine.entities))
    times = _ProjectTimes.of(projects).take(rows)
    stage_bounds = {
        "announced": (times.announced, times.acquisition),
        "acquisition": (times.acquisition, times.construction),
        "construction": (times.construction, times.completed),
        "completed_recently": (times.completed, times.completed + RECENTLY_COMPLETED_DAYS * SECONDS_PER_DAY),
    }
    never = np.array([NEVER], dtype=np.int64)
    zeros = np.zeros(len(rows), dtype=np.int32)
    for j, member in enumerate(family.members):
        recipe: ProjectExposure = member.recipe  # type: ignore[assignment]
        out = block[j : j + 1]
        starts, ends = stage_bounds.get(recipe.measure, (times.announced, times.completed))
        if recipe.measure == "compensation_gap":
            gap = np.nan_to_num(compensation_gap(projects)[rows])
            kernels.max_in_intervals(ptr, starts, ends, gap, engine.snapshots, engine.step, block[j])
            continue
        codes, weights = zeros, _EMPTY_F64
        if recipe.measure == "households":
            weights = projects["affected_households"].to_numpy(dtype=np.float64, na_value=0.0)[rows]
        elif recipe.measure == "without_hearing":
            codes = np.where(projects["hearing_held"].fillna(False).to_numpy(bool)[rows], -1, 0).astype(np.int32)
        elif recipe.measure == "assessment":
            codes = np.where(projects["assessment_level"].to_numpy()[rows] == recipe.level, 0, -1).astype(np.int32)
        kernels.count_in_intervals(ptr, starts, ends, never, codes, 1, weights, engine.snapshots, engine.step, out)


def _region(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    regions = engine.tables["regions"].set_index("village_id").reindex(engine.entities)
    for j, member in enumerate(family.members):
        measure = member.recipe.measure  # type: ignore[union-attr]
        if measure == "nearby_villages":
            values = _neighbours(engine).counts().astype(np.float64)
        else:
            values = region_attribute(regions, measure)
        block[j] = np.repeat(values, engine.n_snap)


def region_attribute(regions: pd.DataFrame, measure: str) -> np.ndarray:
    """One static covariate per village (rows of ``regions``); ratios are NaN over a zero."""

    def col(name: str) -> np.ndarray:
        return regions[name].to_numpy(dtype=np.float64, na_value=np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "mediators_per_10k_people":
            pop = col("population")
            return np.where(pop > 0, 1e4 * col("mediators") / pop, np.nan)
        if measure == "households_per_grid_cell":
            cells = col("grid_cells")
            return np.where(cells > 0, col("households") / cells, np.nan)
    if measure == "is_community":
        return (regions["kind"] == "community").to_numpy(dtype=np.float64, na_value=np.nan)
    if measure == "legal_adviser":
        return regions["legal_adviser"].astype("float64").to_numpy(na_value=np.nan)
    return col(measure)


def calendar_values(snapshots: np.ndarray, measure: str) -> np.ndarray:
    """A calendar feature of each snapshot time."""
    if measure == "month":
        return to_timestamps(snapshots).month.to_numpy(dtype=np.float64)
    days = days_to_spring_festival(snapshots)
    if measure == "days_to_spring_festival":
        return days
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(days), np.nan, (days <= WAGE_SEASON_DAYS).astype(np.float64))


def _calendar(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    for j, member in enumerate(family.members):
        block[j] = np.tile(calendar_values(engine.snapshots, member.recipe.measure), len(engine.entities))  # type: ignore[union-attr]


def _projects_frame(engine: FeatureEngine) -> pd.DataFrame:
    return engine.tables["projects"].set_index("project_id").reindex(engine.entities)


def project_attribute(projects: pd.DataFrame, recipe: ProjectAttribute, villages: pd.Index) -> np.ndarray:
    """One static attribute per project (rows of ``projects``, indexed by project)."""
    if recipe.measure == "affected_villages":
        rows, _ = project_villages(projects.reset_index(), villages)
        return np.bincount(rows, minlength=len(projects)).astype(np.float64)
    if recipe.measure == "compensation_gap":
        return compensation_gap(projects)
    if recipe.measure == "hearing_held":
        return projects["hearing_held"].astype("float64").to_numpy(na_value=np.nan)
    if recipe.measure in ("assessment", "kind"):
        column = "assessment_level" if recipe.measure == "assessment" else "kind"
        return (projects[column] == recipe.code).to_numpy(dtype=np.float64, na_value=0.0)
    return projects[recipe.measure].to_numpy(dtype=np.float64, na_value=np.nan)


def _project(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    projects = _projects_frame(engine)
    villages = pd.Index(engine.tables["regions"]["village_id"].astype("str"))
    for j, member in enumerate(family.members):
        block[j] = np.repeat(project_attribute(projects, member.recipe, villages), engine.n_snap)  # type: ignore[arg-type]


def _stage(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    times = _ProjectTimes.of(_projects_frame(engine).reset_index())
    t = engine.snapshots[None, :]
    following = {"announced": "acquisition", "acquisition": "construction", "construction": "completed"}
    for j, member in enumerate(family.members):
        recipe: ProjectStage = member.recipe  # type: ignore[assignment]
        start = getattr(times, recipe.stage)[:, None]
        if recipe.measure == "in_stage":
            inside = start < t
            if recipe.stage in following:
                inside &= ~(getattr(times, following[recipe.stage])[:, None] < t)
            block[j] = inside.ravel()
        else:
            block[j] = np.where(start < t, (t - start) / SECONDS_PER_DAY, np.nan).ravel()


def _affected_villages(engine: FeatureEngine, family: Family, block: np.ndarray) -> None:
    villages = pd.Index(np.sort(engine.tables["regions"]["village_id"].astype("str").unique()), dtype="str")
    projects = _projects_frame(engine).reset_index()
    rows, village = project_villages(projects, villages)
    used = np.unique(village)
    sub = FeatureEngine(
        engine.tables, village_plan_for_projects(engine.tables.keys(), engine.neighbour_params), villages[used],
        engine.snapshots, engine.neighbour_params,
    )  # fmt: skip
    sub.run()  # its warnings repeat the main build's, or are about villages outside the subset
    ptr = entity_pointers(rows, len(projects))  # rows come out of project_villages sorted by project
    local = np.searchsorted(used, village)
    src_rows = np.array([sub.rows[m.recipe.base] for m in family.members], dtype=np.int64)  # type: ignore[union-attr]
    ones = np.ones(len(local))
    kernels.weighted_sums(ptr, local.astype(np.int64), ones, engine.n_snap, sub.values, src_rows, block)


_COMPUTE = {
    "window": _window_counts,
    "open": _window_counts,
    "decay": _decays,
    "recency": _recency,
    "repeat": _repeats,
    "ratio": _ratios,
    "nearby": _nearby,
    "exposure": _exposure,
    "region": _region,
    "calendar": _calendar,
    "project": _project,
    "stage": _stage,
    "affected_villages": _affected_villages,
}


# --- labels and rows ---------------------------------------------------------------------


def _labels(engine: FeatureEngine, entity: Entity, horizon_days: int, as_of: int) -> pd.arrays.IntegerArray:
    """1 when an incident (of the entity) occurs in [t, t + horizon), 0 when none, NA when t + horizon > as_of."""
    events = engine.events("incidents", ENTITY_ID[entity], "occurred_at")
    horizon = np.int64(horizon_days) * SECONDS_PER_DAY
    hits = np.zeros((1, len(engine.entities) * engine.n_snap), dtype=np.float32)
    if engine.n_snap and len(engine.entities):
        kernels.count_in_intervals(
            events.entity_ptr, events.times - horizon, _EMPTY_I64, np.array([horizon]),
            np.zeros(len(events), dtype=np.int32), 1, _EMPTY_F64, engine.snapshots, engine.step, hits,
        )  # fmt: skip
    known = np.tile(engine.snapshots + horizon <= as_of, len(engine.entities))
    return pd.arrays.IntegerArray((hits[0] > 0).astype(np.int8), ~known)


def _project_rows(tables: dict[str, pd.DataFrame], projects: pd.Index, snapshots: np.ndarray) -> np.ndarray:
    """Which (project, snapshot) cells are rows: announced before t, completed (if ever) at most
    180 days before t."""
    frame = tables["projects"].set_index("project_id").reindex(projects).reset_index()
    times = _ProjectTimes.of(frame)
    t = snapshots[None, :]
    end = times.completed + RECENTLY_COMPLETED_DAYS * SECONDS_PER_DAY
    return ((times.announced[:, None] < t) & (t <= end[:, None])).ravel()


def _entity_index(tables: dict[str, pd.DataFrame], entity: Entity) -> pd.Index:
    table = tables["regions"] if entity == "village" else tables["projects"]
    ids = table[ENTITY_ID[entity]].astype("str")
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise InputDataError(f"{ENTITY_ID[entity]} {dup!r} appears more than once; ingest should deduplicate it")
    return pd.Index(np.sort(ids.to_numpy()), dtype="str", name=ENTITY_ID[entity])


def _check_tables(tables: dict[str, pd.DataFrame], entity: Entity) -> None:
    for name in REQUIRED_TABLES:
        if name not in tables:
            raise InputDataError(
                f"the `{name}` table is required to build features (have: {', '.join(sorted(tables)) or 'none'}); "
                f"ingest it into the warehouse first"
            )
    if entity == "project" and "projects" not in tables:
        raise InputDataError("project features need a `projects` table, and this city has none")


def build_features(
    tables: dict[str, pd.DataFrame],
    entity: Entity,
    snapshot_every_days: int = 7,
    horizon_days: int = 30,
    as_of: pd.Timestamp | str | None = None,
    *,
    sources: Sequence[EventSource] | None = None,
    neighbours: NeighbourParams = NeighbourParams(),
) -> FeatureBuild:
    """Point-in-time features and labels for every entity of a type at every snapshot.

    Args:
        tables: warehouse tables by name (``regions`` and ``incidents`` required; others optional,
            and tables of extra sources by the names the sources declare).
        entity: ``"village"`` or ``"project"``.
        snapshot_every_days: days between snapshots (7: every Monday).
        horizon_days: the label looks at incidents in [t, t + horizon_days).
        as_of: the end of the data (default: the latest time recorded in an event table); rows
            whose label window passes it get a missing label.
        sources: the event sources (default: DESIGN.md's for the entity type).
        neighbours: how spill-over finds and weights neighbouring villages.

    Returns:
        The frame (``<entity>_id``, ``snapshot``, features as float32, ``label`` Int8), a summary
        and the registry of the features built.
    """
    started = time.perf_counter()
    _check_tables(tables, entity)
    if horizon_days < 1:
        raise InputDataError(f"horizon_days must be at least 1, got {horizon_days}")
    plan = plan_features(entity, tables.keys(), sources, neighbours)
    summary = BuildSummary(entity, horizon_days=horizon_days, snapshot_every_days=snapshot_every_days)
    summary.warnings += list(plan.left_out)
    entities = _entity_index(tables, entity)
    span = event_time_range(tables, plan.sources)
    as_of_s = _as_seconds(as_of)
    if span is None:
        summary.warnings.append("no dated events in any table: no snapshots")
        snapshots = np.empty(0, dtype=np.int64)
        as_of_s = as_of_s or 0
    else:
        as_of_s = span[1] if as_of_s is None else as_of_s
        snapshots = snapshot_times(span[0], as_of_s, snapshot_every_days)
    engine = FeatureEngine(tables, plan, entities, snapshots, neighbours)
    engine.run()
    labels = _labels(engine, entity, horizon_days, as_of_s)
    values = engine.values
    rows = np.ones(values.shape[1], dtype=bool)
    if entity == "project":
        rows = _project_rows(tables, entities, snapshots)
        values, labels = values[:, rows], labels[rows]
    entity_of_row, snapshot_of_row = np.divmod(np.flatnonzero(rows), max(len(snapshots), 1))
    frame = pd.DataFrame(values.T, columns=plan.names, copy=False)  # a view: no copy of the matrix
    frame.insert(0, ENTITY_ID[entity], pd.array(entities.to_numpy(), dtype="str").take(entity_of_row))
    frame.insert(1, "snapshot", to_timestamps(snapshots).take(snapshot_of_row))
    frame["label"] = labels

    summary.warnings += engine.warnings
    summary.rows = len(frame)
    summary.entities = int(frame[ENTITY_ID[entity]].nunique()) if entity == "project" else len(entities)
    summary.snapshots = len(snapshots)
    if len(snapshots):
        summary.first_snapshot, summary.last_snapshot = to_timestamps(snapshots[[0, -1]])
    summary.as_of = to_timestamps(np.array([as_of_s]))[0]
    summary.features = len(plan.names)
    summary.labelled_rows = int((~labels.isna()).sum())
    summary.positive_labels = int(labels.sum())
    summary.seconds = {**engine.seconds, "total": time.perf_counter() - started}
    return FeatureBuild(entity, frame, summary, plan.registry)


# --- the warehouse edge ------------------------------------------------------------------


def read_feature_inputs(warehouse_dir: Path, sources: Sequence[EventSource] = ()) -> dict[str, pd.DataFrame]:
    """The warehouse tables the feature build reads, with only the columns it uses.

    Keys and free-text columns (``summary``, ``notes``) are never read: at ``--scale 10`` that
    is most of the tables' memory.
    """
    columns: dict[str, set[str]] = {"regions": set(CONTRACTS["regions"].warehouse_columns),
                                    "projects": set(CONTRACTS["projects"].warehouse_columns)}  # fmt: skip
    for source in (*VILLAGE_SOURCES, *PROJECT_SOURCES, *sources):
        columns.setdefault(source.table, set()).update(source.columns())
    for name, time_column in EVENT_TABLES.items():
        columns.setdefault(name, set()).add(time_column)
    tables = {}
    for name, wanted in columns.items():
        path = table_path(warehouse_dir, name)
        if path.exists():
            available = pq.read_schema(path).names
            tables[name] = pd.read_parquet(path, columns=[c for c in available if c in wanted])
    return tables


def write_features(build: FeatureBuild, path: Path) -> Path:
    """Write a feature table atomically, with the registry and build summary in the file's metadata.

    Columns go to Arrow without a copy; only the id is dictionary-encoded and only the id and
    snapshot carry statistics (what readers filter on) — the float columns cost the time.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = build.frame
    schema = pa.Schema.from_pandas(frame.iloc[:0], preserve_index=False)
    arrays = [pa.array(frame[c].to_numpy(), type=schema.field(c).type) if frame[c].dtype == np.float32
              else pa.array(frame[c], type=schema.field(c).type) for c in frame.columns]  # fmt: skip
    meta = dict(schema.metadata or {})
    meta[b"fengqiao.features"] = json.dumps([s.__dict__ for s in build.registry], ensure_ascii=False).encode()
    meta[b"fengqiao.summary"] = json.dumps(build.summary.as_dict(), ensure_ascii=False, default=str).encode()
    table = pa.Table.from_arrays(arrays, schema=schema.with_metadata(meta))
    keys = list(frame.columns[:2])
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, use_dictionary=keys[:1], write_statistics=keys, compression="zstd", compression_level=1)
    tmp.replace(path)
    return path


def features_path(warehouse_dir: Path, entity: str) -> Path:
    return Path(warehouse_dir) / f"features_{entity}.parquet"


def build_and_write(
    warehouse_dir: Path,
    entities: Sequence[Entity] = ("village", "project"),
    snapshot_every_days: int = 7,
    horizon_days: int = 30,
    *,
    as_of: pd.Timestamp | str | None = None,
    sources: dict[str, Sequence[EventSource]] | None = None,
) -> list[FeatureBuild]:
    """Build and write ``features_<entity>.parquet`` in the warehouse for each entity type.

    The project build is skipped (with a warning in the village summary, or a one-line
    summary of its own) when the city has no projects table.
    """
    sources = sources or {}
    extra = [s for group in sources.values() for s in group]
    tables = read_feature_inputs(warehouse_dir, extra)
    builds = []
    for entity in entities:
        if entity == "project" and "projects" not in tables:
            summary = BuildSummary(
                "project", built=False, horizon_days=horizon_days, snapshot_every_days=snapshot_every_days
            )
            summary.warnings.append("no `projects` table in the warehouse: project features were not built")
            builds.append(FeatureBuild("project", pd.DataFrame(), summary, FeatureRegistry()))
            continue
        build = build_features(
            tables, entity, snapshot_every_days, horizon_days, as_of, sources=sources.get(entity)
        )
        write_started = time.perf_counter()
        write_features(build, features_path(warehouse_dir, entity))
        build.summary.seconds["write"] = time.perf_counter() - write_started
        build.summary.seconds["total"] += build.summary.seconds["write"]
        builds.append(build)
    return builds
