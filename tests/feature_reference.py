"""The slow, obviously-correct reference of every feature family, and hand-made tables.

``reference_features`` computes each feature alone, from its recipe in the engine's plan, by
the definition: cross every event with every snapshot, keep the (snapshot, event) pairs that
count under the rule of docs/decisions/001, and group them by (snapshot, entity) with pandas —
no sorting, no sweeps, no recursions, no shared state. It shares with the engine only the
*declarations* (which features exist and what they mean) and the Spring Festival table;
times, snapshots, neighbours (brute-force haversine), stages and every count are computed here
independently.

``table`` builds a warehouse-typed table from a few records, filling the columns a test does
not care about.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.contracts import CONTRACTS, LIST_SEPARATOR, TIMEZONE
from features.engine import EngineOptions, default_catalogue
from features.engine.declarations import Condition, EventCounter, EventSource
from features.engine.engine import plan_for_tables, with_entity_column
from features.engine.families import (
    AffectedVillagesSum,
    AllHistoryCount,
    CalendarValue,
    DaysSinceLast,
    DecayedIntensity,
    EventCount,
    LaggedCount,
    NearbySum,
    ProjectAttribute,
    ProjectExposure,
    ProjectStage,
    RatioOf,
    RegionAttribute,
    RepeatCount,
    ShrunkRate,
)
from features.engine.neighbours import NeighbourParams
from features.engine.plan import AFFECTED_VILLAGE_FEATURES, plan_features
from features.engine.projects import RECENTLY_COMPLETED_DAYS

# --- hand-made tables ----------------------------------------------------------------------

DEFAULTS = {
    "regions": dict(village_name="村", town_name="镇", county_name="县", kind="village", lat=33.07, lon=107.03,
                    population=2000, households=600, mediators=5, legal_adviser=True, grid_cells=4),
    "projects": dict(name="项目", kind="land_acquisition", investment_cny=1e8, affected_households=100,
                     compensation_ratio=0.9, hearing_held=True, assessment_level="medium"),
    "disputes": dict(category="other", parties=2, source="grid", outcome="pending", mediator_kind="village_committee"),
    "petitions": dict(channel="visit", level="town", participants=1, petitioner_key="k0", topic="other",
                      within_limit=True),
    "patrols": dict(grid_id="g1", worker_key="w1", issues_found=0, escalated=False),
    "incidents": dict(kind="mass_gathering", participants=30, severity=2),
}  # fmt: skip


def ts(text: str) -> pd.Timestamp:
    """A Shanghai wall-clock time, e.g. ``ts("2024-03-04 00:00")``."""
    return pd.Timestamp(text, tz=TIMEZONE)


def table(name: str, records: Sequence[dict]) -> pd.DataFrame:
    """A warehouse-typed table (contract columns, warehouse dtypes) from a few records."""
    contract = CONTRACTS[name]
    rows = []
    for i, record in enumerate(records):
        row = {contract.key: f"{contract.key[:1].upper()}{i}", **DEFAULTS.get(name, {}), **record}
        if name == "regions":
            vid = row["village_id"]
            row.setdefault("town_id", vid[:9])
            row.setdefault("county_id", vid[:6])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[c for c in contract.warehouse_columns])
    for col in contract.columns:
        if not col.in_warehouse:
            continue
        s = frame[col.name]
        if col.kind == "timestamp":
            s = pd.to_datetime(s.map(lambda v: v if isinstance(v, pd.Timestamp) or v is None else ts(v)), utc=True)
            frame[col.name] = s.dt.tz_convert(TIMEZONE).dt.as_unit("us")
        elif col.kind == "int":
            frame[col.name] = s.astype("Int64" if col.nullable else "int64")
        elif col.kind == "bool":
            frame[col.name] = s.astype("boolean" if col.nullable else "bool")
        elif col.kind == "float":
            frame[col.name] = s.astype("float64")
        else:
            frame[col.name] = s.astype("str")
    return frame


# --- the reference -------------------------------------------------------------------------


def _reference_mask(frame: pd.DataFrame, cond: Condition) -> pd.Series:
    col = frame[cond.column]
    if cond.op == "is_null":
        return col.isna()
    if cond.op == "not_null":
        return col.notna()
    present = col.notna()
    if cond.op == "contains":
        return present & col.map(lambda v: isinstance(v, str) and cond.value in v.split(LIST_SEPARATOR)).astype(bool)
    if cond.op in ("in", "not_in"):
        hit = col.map(lambda v: v in cond.value).astype(bool)
        return present & (hit if cond.op == "in" else ~hit)
    ops = {
        "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b,
        ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
    }  # fmt: skip
    return present & col.map(lambda v: bool(pd.notna(v) and ops[cond.op](v, cond.value))).astype(bool)


class _World:
    """The event frames of each source, and their pairs with a chunk of snapshots.

    A feature at snapshot t is a sum over events of "does this event count at t": the
    reference takes it literally, crossing every event with every snapshot (a chunk at a time)
    and grouping the pairs that count by (snapshot, entity).
    """

    def __init__(self, tables: dict[str, pd.DataFrame], entities: pd.Index) -> None:
        self.tables = tables
        self.entities = entities
        self.chunk: list[pd.Timestamp] = []
        self._events: dict[str, pd.DataFrame] = {}
        self._masks: dict[tuple, np.ndarray] = {}
        self._pairs: dict[str, pd.DataFrame] = {}

    def events(self, source: EventSource) -> pd.DataFrame:
        if source.name not in self._events:
            frame = self.tables[source.table].copy()
            frame["_entity"] = frame[source.entity]
            frame["_time"] = frame[source.time]
            frame = frame[frame["_entity"].isin(self.entities) & frame["_time"].notna()]
            self._events[source.name] = frame.reset_index(drop=True)
        return self._events[source.name]

    def set_chunk(self, chunk: list[pd.Timestamp]) -> None:
        self.chunk = chunk
        self._pairs.clear()

    def pairs(self, source: EventSource) -> pd.DataFrame:
        """Every (snapshot of the chunk, event) pair: ``_t``, ``_entity``, ``_time``, ``_ev``, columns used."""
        if source.name not in self._pairs:
            ev = self.events(source)
            columns = ["_entity", "_time", *sorted((source.columns() & set(ev.columns)) - {source.entity, source.time})]
            frame = ev[columns].assign(_ev=np.arange(len(ev)))
            self._pairs[source.name] = frame.merge(pd.DataFrame({"_t": self.chunk}), how="cross")
        return self._pairs[source.name]

    def counter_mask(self, source: EventSource, counter: EventCounter, code) -> np.ndarray:
        """Per event: does the counter (and code) take it?"""
        key = (source.name, counter, None if code is None else code.code)
        if key not in self._masks:
            ev = self.events(source)
            mask = pd.Series(True, index=ev.index)
            if counter.where is not None:
                mask &= _reference_mask(ev, counter.where)
            if code is not None:
                op = "contains" if counter.by_list else "=="
                mask &= _reference_mask(ev, Condition(counter.by, op, code.code))
            self._masks[key] = mask.to_numpy(dtype=bool)
        return self._masks[key]

    def closure_applies(self, source: EventSource) -> np.ndarray:
        """Per event: does its closing time close it (e.g. the outcome recorded is 'resolved')?"""
        key = (source.name, "closure")
        if key not in self._masks:
            ev = self.events(source)
            when = source.closure.when
            self._masks[key] = np.ones(len(ev), bool) if when is None else _reference_mask(ev, when).to_numpy(bool)
        return self._masks[key]

    def grid(self, values: pd.Series, fill: float) -> np.ndarray:
        """Values indexed by (snapshot, entity) as an (entities × snapshots of the chunk) array."""
        index = pd.MultiIndex.from_product([self.chunk, self.entities], names=["_t", "_entity"])
        dense = values.reindex(index, fill_value=fill).to_numpy(dtype=float)
        return dense.reshape(len(self.chunk), len(self.entities)).T


def _count(world: _World, r: EventCount) -> np.ndarray:
    p = world.pairs(r.source)
    sel = (p["_time"] >= p["_t"] - pd.Timedelta(days=r.window_days)) & (p["_time"] < p["_t"])
    sel &= world.counter_mask(r.source, r.counter, r.code)[p["_ev"]]
    if r.open:
        close = p[r.source.closure.time]
        sel &= ~((close < p["_t"]) & world.closure_applies(r.source)[p["_ev"]])
    picked = p[sel]
    if r.counter.weight is None:
        return world.grid(picked.groupby(["_t", "_entity"]).size(), 0)
    return world.grid(picked.groupby(["_t", "_entity"])[r.counter.weight].sum(), 0)


def _lagged(world: _World, r: LaggedCount) -> np.ndarray:
    p = world.pairs(r.source)
    week = pd.Timedelta(days=7)
    sel = (p["_time"] >= p["_t"] - r.weeks_back * week) & (p["_time"] < p["_t"] - (r.weeks_back - 1) * week)
    picked = p[sel & world.counter_mask(r.source, r.counter, None)[p["_ev"]]]
    return world.grid(picked.groupby(["_t", "_entity"]).size(), 0)


def _all_history(world: _World, r: AllHistoryCount | ShrunkRate) -> np.ndarray:
    p = world.pairs(r.source)
    picked = p[(p["_time"] < p["_t"]) & world.counter_mask(r.source, r.counter, None)[p["_ev"]]]
    return world.grid(picked.groupby(["_t", "_entity"]).size(), 0)


def _shrunk_rate(world: _World, r: ShrunkRate, kind_table: str, t: pd.Timestamp, counts: np.ndarray) -> np.ndarray:
    """The gamma–Poisson rate at t, written out row by row from its definition."""
    start = world.tables[r.source.table][r.source.time].dropna().min()
    if kind_table == "projects":
        projects = world.tables["projects"].set_index("project_id").reindex(world.entities)
        begins = [max(start, a) if pd.notna(a) else t for a in projects["announced_at"]]
        ends = projects["completed_at"] + pd.Timedelta(days=RECENTLY_COMPLETED_DAYS)
        is_row = [pd.notna(a) and a < t and (pd.isna(end) or t <= end) for a, end in zip(projects["announced_at"], ends)]
        groups = ["all"] * len(world.entities)
    else:
        begins, is_row = [start] * len(world.entities), [True] * len(world.entities)
        groups = list(world.tables["regions"].set_index("village_id").reindex(world.entities)["county_id"])
    rows = []
    for k, begin, row, group in zip(counts, begins, is_row, groups):
        if row:
            days = max((t - begin) / pd.Timedelta(days=1), 7.0)
            rows.append(dict(k=float(k), e=days / 365.25, g=group))
    if not rows:
        return np.full(len(world.entities), np.nan)
    frame = pd.DataFrame(rows)
    raw = frame["k"] / frame["e"]
    mean = raw.mean()
    between = raw.var(ddof=0) - (mean / frame["e"]).mean()
    b = mean / between if between > 1e-12 and mean > 0 else 1e6
    pooled = frame.groupby("g", dropna=False)["k"].transform("sum") / frame.groupby("g", dropna=False)["e"].transform("sum")
    rates = iter(((frame["k"] + pooled * b) / (frame["e"] + b)).tolist())
    return np.array([next(rates) if row else np.nan for row in is_row])


def _decayed(world: _World, r: DecayedIntensity) -> np.ndarray:
    p = world.pairs(r.source)
    picked = p[(p["_time"] < p["_t"]) & world.counter_mask(r.source, r.counter, r.code)[p["_ev"]]]
    age_days = (picked["_t"] - picked["_time"]).dt.total_seconds() / 86_400
    weight = 1.0 if r.counter.weight is None else picked[r.counter.weight].astype(float)
    terms = weight * np.exp(-age_days / r.tau_days)
    return world.grid(terms.groupby([picked["_t"], picked["_entity"]]).sum(), 0)


def _days_since(world: _World, r: DaysSinceLast) -> np.ndarray:
    p = world.pairs(r.source)
    picked = p[(p["_time"] < p["_t"]) & world.counter_mask(r.source, r.counter, None)[p["_ev"]]]
    last = picked.groupby(["_t", "_entity"])["_time"].max()
    days = (last.index.get_level_values("_t") - last) / pd.Timedelta(days=1)
    return world.grid(days, np.nan)


def _repeats(world: _World, r: RepeatCount) -> np.ndarray:
    p = world.pairs(r.source)
    key = r.source.repeat.key
    sel = (p["_time"] >= p["_t"] - pd.Timedelta(days=r.window_days)) & (p["_time"] < p["_t"]) & p[key].notna()
    per_key = p.loc[sel, ["_t", "_entity", key]].value_counts()
    repeaters = per_key[per_key >= r.source.repeat.min_count].reset_index()
    return world.grid(repeaters.groupby(["_t", "_entity"]).size(), 0)


def _haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(a))


def brute_force_neighbours(regions: pd.DataFrame, params: NeighbourParams) -> dict[str, list[tuple[str, float]]]:
    """Each place's neighbours as [(village_id, weight)], by comparing every pair.

    Distances are rounded to a millimetre and ties go to the smaller id, as the engine's rule says.
    """
    out = {}
    for _, v in regions.iterrows():
        others = regions[regions["village_id"] != v["village_id"]]
        d = np.round(_haversine_km(v["lat"], v["lon"], others["lat"].to_numpy(), others["lon"].to_numpy()) / 1e-6) * 1e-6
        nearest = np.lexsort((others["village_id"].to_numpy(), d))[: params.k]
        out[v["village_id"]] = [
            (others["village_id"].iloc[j], float(np.exp(-d[j] / params.scale_km)))
            for j in nearest
            if d[j] <= params.radius_km
        ]
    return out


def _project_pairs(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(village_id, project row) for every village a project lists."""
    projects = tables["projects"]
    rows = [
        {"village_id": vid, **p}
        for p in projects.to_dict("records")
        for vid in str(p["village_ids"]).split(LIST_SEPARATOR)
        if vid in set(tables["regions"]["village_id"])
    ]
    return pd.DataFrame(rows, columns=["village_id", *projects.columns])


def _before(value, t: pd.Timestamp) -> bool:
    return pd.notna(value) and value < t


def _exposure(world: _World, r: ProjectExposure, t: pd.Timestamp, pairs: pd.DataFrame) -> np.ndarray:
    values = pd.Series(0.0, index=world.entities)
    for p in pairs.to_dict("records"):
        announced, acq, cons, done = (p[c] for c in ("announced_at", "acquisition_start", "construction_start",
                                                     "completed_at"))  # fmt: skip
        active = _before(announced, t) and not _before(done, t)
        if r.measure == "announced":
            hit = _before(announced, t) and not _before(acq, t)
        elif r.measure == "acquisition":
            hit = _before(acq, t) and not _before(cons, t)
        elif r.measure == "construction":
            hit = _before(cons, t) and not _before(done, t)
        elif r.measure == "completed_recently":
            hit = _before(done, t) and t <= done + pd.Timedelta(days=RECENTLY_COMPLETED_DAYS)
        elif r.measure == "without_hearing":
            hit = active and not p["hearing_held"]
        elif r.measure == "assessment":
            hit = active and p["assessment_level"] == r.level
        else:
            hit = active
        if not hit:
            continue
        vid = p["village_id"]
        if r.measure == "households":
            values[vid] += p["affected_households"]
        elif r.measure == "compensation_gap":
            values[vid] = max(values[vid], max(0.0, 1.0 - p["compensation_ratio"]))
        else:
            values[vid] += 1
    return values.to_numpy()


def _region(world: _World, r: RegionAttribute, neighbours: dict) -> np.ndarray:
    reg = world.tables["regions"].set_index("village_id").reindex(world.entities)
    m = r.measure
    if m == "mediators_per_10k_people":
        return np.array([1e4 * a / b if b > 0 else np.nan for a, b in zip(reg["mediators"], reg["population"])])
    if m == "households_per_grid_cell":
        return np.array([a / b if b > 0 else np.nan for a, b in zip(reg["households"], reg["grid_cells"])])
    if m == "is_community":
        return (reg["kind"] == "community").to_numpy(dtype=float)
    if m == "nearby_villages":
        return np.array([len(neighbours[v]) for v in world.entities], dtype=float)
    return reg[m].astype(float).to_numpy()


def _calendar(r: CalendarValue, t: pd.Timestamp) -> float:
    if r.measure == "month":
        return float(t.month)
    today = t.date()
    dates = sorted(dt.date.fromisoformat(d) for d in r.calendar.dates)
    shortest_gap = min((b - a).days for a, b in zip(dates, dates[1:]))
    upcoming = [d for d in dates if d >= today]
    if not upcoming or (dates[0] - today).days >= shortest_gap - 1:  # past the table, or an earlier date may fall between
        return np.nan
    days = (upcoming[0] - today).days
    return float(days) if r.measure == "days_to" else float(days <= r.calendar.season_days)


def _project_attribute(world: _World, r: ProjectAttribute) -> np.ndarray:
    projects = world.tables["projects"].set_index("project_id").reindex(world.entities)
    known = set(world.tables["regions"]["village_id"])
    out = []
    for _, p in projects.iterrows():
        if r.measure == "affected_villages":
            out.append(sum(v in known for v in str(p["village_ids"]).split(LIST_SEPARATOR)))
        elif r.measure == "compensation_gap":
            out.append(max(0.0, 1.0 - p["compensation_ratio"]))
        elif r.measure == "assessment":
            out.append(float(p["assessment_level"] == r.code))
        elif r.measure == "kind":
            out.append(float(p["kind"] == r.code))
        else:
            out.append(float(p[r.measure]))
    return np.array(out, dtype=float)


_STAGE_START = {"announced": "announced_at", "acquisition": "acquisition_start",
                "construction": "construction_start", "completed": "completed_at"}  # fmt: skip
_NEXT_STAGE = {"announced": "acquisition", "acquisition": "construction", "construction": "completed"}


def _project_stage(world: _World, r: ProjectStage, t: pd.Timestamp) -> np.ndarray:
    projects = world.tables["projects"].set_index("project_id").reindex(world.entities)
    out = []
    for _, p in projects.iterrows():
        start = p[_STAGE_START[r.stage]]
        if r.measure == "days_since":
            out.append((t - start).total_seconds() / 86_400 if _before(start, t) else np.nan)
        else:
            nxt = _NEXT_STAGE.get(r.stage)
            out.append(float(_before(start, t) and not (nxt and _before(p[_STAGE_START[nxt]], t))))
    return np.array(out, dtype=float)


def _affected_villages_sum(
    tables: dict[str, pd.DataFrame], village_frame: pd.DataFrame, projects: pd.Index, base: str, t: pd.Timestamp
) -> np.ndarray:
    at = village_frame[village_frame["snapshot"] == t].set_index("village_id")[base]
    village_lists = tables["projects"].set_index("project_id").reindex(projects)["village_ids"]
    return np.array([sum(at[u] for u in str(ids).split(LIST_SEPARATOR) if u in at.index) for ids in village_lists])


def _label(
    incidents: pd.DataFrame, id_column: str, entities: pd.Index, t: pd.Timestamp, horizon: pd.Timedelta, as_of
) -> np.ndarray:
    """1 if the entity has an incident in [t, t + horizon); NaN where t + horizon is past as_of."""
    if t + horizon > as_of:
        return np.full(len(entities), np.nan)
    during = (incidents["occurred_at"] >= t) & (incidents["occurred_at"] < t + horizon)
    return entities.isin(set(incidents.loc[during, id_column].dropna())).astype(float)


def reference_snapshots(
    tables: dict[str, pd.DataFrame], every_days: int, as_of: pd.Timestamp | None, sources: Sequence[EventSource],
    timezone: str,
) -> tuple[list[pd.Timestamp], pd.Timestamp]:
    """Local Mondays 00:00 from the first at least 365 days after the earliest event, up to as_of.

    Days are counted on the local calendar: across a daylight-saving change a week is not 168 hours.
    """
    times = {name: c.event_time for name, c in CONTRACTS.items() if c.event_time and name != "projects"}
    for s in sources:
        times.setdefault(s.table, s.time)
    present = [tables[n][c].dropna() for n, c in times.items()
               if n in tables and c in tables[n] and tables[n][c].notna().any()]  # fmt: skip
    if not present:
        return [], as_of
    stamps = pd.concat(present)
    if as_of is None:
        as_of = stamps.max()
    first = (stamps.min() + pd.Timedelta(days=365)).tz_convert(timezone)
    day = first.tz_localize(None).normalize()
    if pd.Timestamp(day).tz_localize(timezone, nonexistent="shift_forward") < first:
        day += pd.Timedelta(days=1)
    while day.weekday() != 0:
        day += pd.Timedelta(days=1)
    snapshots = []
    while (local := day.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")) <= as_of:
        snapshots.append(local)
        day += pd.Timedelta(days=every_days)
    return snapshots, as_of


def reference_features(
    tables: dict[str, pd.DataFrame],
    entity: str,
    snapshot_every_days: int = 7,
    horizon_days: int = 30,
    as_of: pd.Timestamp | None = None,
    sources: Sequence[EventSource] | None = None,
    options: EngineOptions = EngineOptions(),
    village_frame: pd.DataFrame | None = None,
    only: Sequence[str] | None = None,
    at: Sequence[pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """The feature table, computed feature by feature, for every snapshot.

    ``only`` limits it to the families that hold those features (for a project's village
    aggregates); ``at`` to some of the snapshots (the benchmark samples them on big worlds).
    """
    catalogue = default_catalogue()
    kind = catalogue.entity(entity)
    tables = with_entity_column(tables, kind)
    kind_sources = catalogue.sources_of(kind) if sources is None else tuple(sources)
    neighbours, tz = options.neighbours, options.timezone
    snapshots, as_of = reference_snapshots(
        tables, snapshot_every_days, as_of, [s for s in kind_sources if s.table in tables], tz
    )
    seconds = np.array([int(t.timestamp()) for t in snapshots], dtype=np.int64)
    if only is None:
        plan, _ = plan_for_tables(tables, kind, kind_sources, catalogue, options, seconds)
    else:
        plan = plan_features(kind, {n: set(f.columns) for n, f in tables.items()}, kind_sources, neighbours,
                             only=only)  # fmt: skip
    entities = pd.Index(sorted(tables[kind.table][kind.id].dropna().astype(str).unique()), dtype="str")
    if at is not None:
        snapshots = [t for t in snapshots if t in set(at)]
    world = _World(tables, entities)
    nb = brute_force_neighbours(tables["regions"], neighbours) if kind.table == "regions" and not kind.via else {}
    pairs = _project_pairs(tables) if "projects" in tables else None
    if kind.table == "projects" and village_frame is None and snapshots:
        village_frame = reference_features(
            tables, "village", snapshot_every_days, horizon_days, as_of, options=options,
            only=AFFECTED_VILLAGE_FEATURES, at=at,
        )
    horizon = pd.Timedelta(days=horizon_days)
    incidents = tables["incidents"]

    def per_snapshot(value_at) -> np.ndarray:
        return np.column_stack([np.asarray(value_at(t), dtype=float) for t in world.chunk])

    most_events = max([len(world.events(s)) for s in plan.sources] + [1])
    chunk_size = max(1, 2_000_000 // most_events)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in plan.names}
    labels = []
    for first in range(0, len(snapshots), chunk_size):
        world.set_chunk(snapshots[first : first + chunk_size])
        at: dict[str, np.ndarray] = {}  # name -> entities × snapshots of the chunk
        for feature in plan.features:
            r = feature.recipe
            if isinstance(r, EventCount):
                v = _count(world, r)
            elif isinstance(r, DecayedIntensity):
                v = _decayed(world, r)
            elif isinstance(r, LaggedCount):
                v = _lagged(world, r)
            elif isinstance(r, AllHistoryCount):
                v = _all_history(world, r)
            elif isinstance(r, ShrunkRate):
                counts = _all_history(world, r)
                v = np.column_stack([_shrunk_rate(world, r, kind.table, t, counts[:, j]) for j, t in enumerate(world.chunk)])
            elif isinstance(r, DaysSinceLast):
                v = _days_since(world, r)
            elif isinstance(r, RepeatCount):
                v = _repeats(world, r)
            elif isinstance(r, RatioOf):
                num, den = at[r.ratio.numerator], at[r.ratio.denominator]
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = np.where(den > 0, r.ratio.scale * num / den, np.nan)
            elif isinstance(r, NearbySum):
                rows = dict(zip(entities, at[r.base]))
                v = np.array([sum((w * rows[u] for u, w in nb[vid]), np.zeros(len(world.chunk))) for vid in entities])
            elif isinstance(r, ProjectExposure):
                v = per_snapshot(lambda t: _exposure(world, r, t, pairs))
            elif isinstance(r, RegionAttribute):
                v = per_snapshot(lambda t: _region(world, r, nb))
            elif isinstance(r, CalendarValue):
                v = per_snapshot(lambda t: np.full(len(entities), _calendar(r, t)))
            elif isinstance(r, ProjectAttribute):
                v = per_snapshot(lambda t: _project_attribute(world, r))
            elif isinstance(r, ProjectStage):
                v = per_snapshot(lambda t: _project_stage(world, r, t))
            elif isinstance(r, AffectedVillagesSum):
                v = per_snapshot(lambda t: _affected_villages_sum(tables, village_frame, entities, r.base, t))
            else:
                raise TypeError(f"no reference for {type(r).__name__}")
            at[feature.spec.name] = np.asarray(v, dtype=float).reshape(len(entities), len(world.chunk))
            columns[feature.spec.name].append(at[feature.spec.name])
        labels.append(per_snapshot(lambda t: _label(incidents, kind.id, entities, t, horizon, as_of)))

    n_snap = len(snapshots)

    def entity_major(chunks: list[np.ndarray]) -> np.ndarray:
        return np.hstack(chunks).ravel() if n_snap else np.empty(0)

    frame = pd.DataFrame({
        kind.id: np.repeat(entities.to_numpy(), n_snap),
        "snapshot": pd.DatetimeIndex(np.tile(np.array(snapshots, dtype=object), len(entities))
                                     if n_snap else [], tz=tz),
        **{name: entity_major(per_snapshot) for name, per_snapshot in columns.items()},
        "label": pd.Series(entity_major(labels), dtype=float).astype("Int8"),
    })  # fmt: skip
    if kind.table == "projects" and n_snap:
        projects = tables["projects"].set_index("project_id")
        announced = frame["project_id"].map(projects["announced_at"])
        ends = frame["project_id"].map(projects["completed_at"]) + pd.Timedelta(days=RECENTLY_COMPLETED_DAYS)
        keep = (announced < frame["snapshot"]) & (ends.isna() | (frame["snapshot"] <= ends))
        frame = frame[keep.to_numpy()].reset_index(drop=True)
    return frame


def assert_same_table(engine: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Same rows and columns; counts equal, real-valued features equal to float32 precision."""
    assert list(engine.columns) == list(reference.columns)
    assert len(engine) == len(reference)
    assert (engine.iloc[:, 0].to_numpy() == reference.iloc[:, 0].to_numpy()).all()
    assert (engine["snapshot"].to_numpy() == reference["snapshot"].to_numpy()).all()
    for name in engine.columns[2:-1]:
        np.testing.assert_allclose(
            engine[name].to_numpy(np.float64),
            reference[name].to_numpy(np.float64).astype(np.float32),
            rtol=2e-6, atol=1e-5, equal_nan=True, err_msg=name,
        )  # fmt: skip
    assert engine["label"].astype("float").equals(reference["label"].astype("float"))
