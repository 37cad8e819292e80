"""Feature building partitioned by county, for a cluster: the same table as one build, in parts.

A county's part holds its own villages and their spill-over neighbours from other counties
(the *halo*: spill-over features read the neighbours' events), the projects touching its
villages, and the events of all those places. Each part is built by the ordinary engine with
the city's global time frame (first snapshot and end of data), and only the county's own
villages are kept. Two things a county cannot know are settled on the whole city afterwards:
the long-memory rates, whose empirical-Bayes prior strength is estimated over every entity
(``LongMemory``: recomputed from the whole incident table, which is small), and the entity
order. The result equals ``build_features`` on the whole city, value for value (tested).

Kinds other than places with a county (projects, kinds grouping places) are built whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd

from features.engine.catalogue import Catalogue, EntityKind, default_catalogue
from features.engine.engine import (
    EngineOptions,
    EngineState,
    FeatureBuild,
    build_features,
    entity_index,
    event_time_range,
    plan_for_tables,
    with_entity_column,
)
from features.engine.families.longmemory import LongMemory
from features.engine.neighbours import find_neighbours
from features.engine.plan import plan_features
from features.engine.projects import project_villages
from features.engine.timeline import epoch_seconds, snapshot_times, to_timestamps

COUNTY = "county_id"

Mapper = Callable[[Callable, Iterable], Iterable]
"""How parts are built: the builtin ``map`` in process, or one that submits each to a cluster."""


@dataclass(frozen=True)
class CountyPart:
    """One county's share of the work: its tables (own villages and halo) and its own village ids."""

    county: str
    tables: dict[str, pd.DataFrame]
    own: np.ndarray


def partitionable(tables: Mapping[str, pd.DataFrame], kind: EntityKind) -> bool:
    """Whether ``kind`` can be built by county: a place kind whose table has a county column."""
    return kind.via is None and kind.table == "regions" and COUNTY in tables[kind.table]


def county_parts(tables: Mapping[str, pd.DataFrame], kind: EntityKind, options: EngineOptions) -> list[CountyPart]:
    """Each county's part: its villages, their neighbours (the halo), the projects touching its
    villages, and every event table cut to those places."""
    places = tables[kind.table]
    ids = places[kind.id].astype("str").to_numpy()
    boundaries = places["boundary"].to_numpy() if "boundary" in places else None
    nb = find_neighbours(places["lat"].to_numpy(float), places["lon"].to_numpy(float), options.neighbours, boundaries)
    counties = places[COUNTY].astype("str").to_numpy()
    projects = tables.get("projects")
    links = project_villages(projects, pd.Index(ids)) if projects is not None and "village_ids" in projects else None
    parts = []
    for county in pd.unique(counties):
        own = np.flatnonzero(counties == county)
        halo = np.unique(np.concatenate([own, *(nb.indices[nb.indptr[v] : nb.indptr[v + 1]] for v in own)]))
        keep = set(ids[halo])
        cut = {}
        for name, frame in tables.items():
            if name == kind.table:
                cut[name] = frame.iloc[halo]
            elif name == "projects" and links is not None:
                cut[name] = frame.iloc[np.unique(links[0][np.isin(links[1], own)])]
            elif kind.id in frame:
                cut[name] = frame[frame[kind.id].astype("str").isin(keep).to_numpy(bool)]
            else:
                cut[name] = frame
        parts.append(CountyPart(str(county), cut, ids[own]))
    return parts


def _build_part(part: CountyPart, kind: EntityKind, snapshot_every_days: int, horizon_days: int,
                since: pd.Timestamp, as_of: pd.Timestamp, catalogue: Catalogue, options: EngineOptions) -> FeatureBuild:
    build = build_features(part.tables, kind, snapshot_every_days, horizon_days, as_of, since=since,
                           catalogue=catalogue, options=options)  # fmt: skip
    own = build.frame[kind.id].isin(part.own).to_numpy()
    return replace(build, frame=build.frame[own])


def build_partitioned(
    tables: Mapping[str, pd.DataFrame],
    entity: str | EntityKind,
    snapshot_every_days: int = 7,
    horizon_days: int = 30,
    as_of: pd.Timestamp | str | None = None,
    *,
    catalogue: Catalogue | None = None,
    options: EngineOptions = EngineOptions(),
    mapper: Mapper = map,
) -> FeatureBuild:
    """``build_features`` by county through ``mapper``; kinds that cannot be partitioned are built whole."""
    catalogue = catalogue or default_catalogue()
    kind = entity if isinstance(entity, EntityKind) else catalogue.entity(entity)
    if not partitionable(tables, kind):
        return build_features(tables, kind, snapshot_every_days, horizon_days, as_of, catalogue=catalogue,
                              options=options)  # fmt: skip
    tz = options.timezone
    sources = tuple(catalogue.sources_of(kind))
    span = event_time_range(tables, [s for s in sources if s.table in tables], tz)
    if span is None:  # no snapshots at all: the whole-city build says so
        return build_features(tables, kind, snapshot_every_days, horizon_days, as_of, catalogue=catalogue,
                              options=options)  # fmt: skip
    since = to_timestamps(np.array([span[0]]), tz)[0]
    end = pd.Timestamp(as_of) if as_of is not None else to_timestamps(np.array([span[1]]), tz)[0]
    build_one = partial(_build_part, kind=kind, snapshot_every_days=snapshot_every_days, horizon_days=horizon_days,
                        since=since, as_of=end, catalogue=catalogue, options=options)
    builds = list(mapper(build_one, county_parts(tables, kind, options)))
    entities = entity_index(tables, kind)
    as_of_s = span[1] if as_of is None else int(epoch_seconds(pd.Series([pd.Timestamp(as_of)]), tz)[0])
    snapshots = snapshot_times(span[0], as_of_s, snapshot_every_days, tz)
    frame = pd.concat([b.frame for b in builds], ignore_index=True)
    order = np.lexsort((frame["snapshot"].to_numpy(), entities.get_indexer(frame[kind.id])))
    frame = frame.iloc[order].reset_index(drop=True)
    _settle_long_memory(frame, tables, kind, sources, catalogue, options, entities, snapshots)
    return FeatureBuild(kind.name, frame, _merged_summary(builds, frame, kind), builds[0].registry)


def _settle_long_memory(frame: pd.DataFrame, tables: Mapping[str, pd.DataFrame], kind: EntityKind, sources,
                        catalogue: Catalogue, options: EngineOptions, entities: pd.Index, snapshots: np.ndarray) -> None:
    """Recompute the long-memory features over the whole city (their prior is the city's)."""
    tables = with_entity_column(tables, kind)
    full, _ = plan_for_tables(tables, kind, sources, catalogue, options, snapshots)
    names = [n for f in full.families if isinstance(f, LongMemory) for n in f.names]
    if not names:
        return
    plan = plan_features(kind, {n: set(f.columns) for n, f in tables.items()}, sources, options.neighbours, None,
                         only=names)  # fmt: skip
    state = EngineState(tables, plan, entities, snapshots, options)
    state.run()
    for name in plan.names:
        frame[name] = state.feature(name)


def _merged_summary(builds: list[FeatureBuild], frame: pd.DataFrame, kind: EntityKind):
    summary = replace(builds[0].summary)
    summary.warnings = sorted({w for b in builds for w in b.summary.warnings})
    summary.rows = len(frame)
    summary.entities = int(frame[kind.id].nunique())
    summary.labelled_rows = int((~frame["label"].isna()).sum())
    summary.positive_labels = int(frame["label"].sum())
    summary.seconds = {k: sum(b.summary.seconds.get(k, 0.0) for b in builds)
                       for k in {k for b in builds for k in b.summary.seconds}}
    return summary
