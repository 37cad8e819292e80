"""The warehouse edge of the engine: read the inputs it needs, publish its outputs as one set.

A run writes ``features_<entity>.parquet`` for each entity kind and ``features_catalogue.json``
(the event sources it counted) as one publication (``fengqiao.publish``): staged, then moved in
together, and the feature files of earlier runs that this run did not write are removed, so the
warehouse never holds feature tables of two runs side by side. Each file carries the run's id.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.contracts import CONTRACTS
from features.engine.catalogue import Catalogue, EntityKind, default_catalogue
from features.engine.engine import EVENT_TIMES, EngineOptions, FeatureBuild, build_features
from features.engine.partition import Mapper, build_partitioned
from features.engine.registry import FeatureRegistry
from features.engine.summary import BuildSummary
from features.engine.timeline import WARM_UP_DAYS
from features.warehouse import table_path
from fengqiao.errors import InputDataError
from fengqiao.publish import publishing

CATALOGUE_FILE = "features_catalogue.json"
FEATURE_FILES = "features_*.parquet"


def features_path(warehouse_dir: Path, entity: str) -> Path:
    return Path(warehouse_dir) / f"features_{entity}.parquet"


def read_feature_inputs(warehouse_dir: Path, catalogue: Catalogue, entity_columns: Collection[str] = ()) -> dict[str, pd.DataFrame]:
    """The warehouse tables the feature build reads, with only the columns it uses.

    Keys and free-text columns (``summary``, ``notes``) are never read: at ``--scale 10`` that
    is most of the tables' memory. A table that lacks a column simply comes without it.
    """
    columns: dict[str, set[str]] = {"regions": set(CONTRACTS["regions"].warehouse_columns),
                                    "projects": set(CONTRACTS["projects"].warehouse_columns)}  # fmt: skip
    for kind in catalogue.entities:
        columns.setdefault(kind.table, set()).update(c for c in (kind.id, kind.via) if c)
    for source in catalogue.sources:
        columns.setdefault(source.table, set()).update(source.columns())
    for name, time_column in EVENT_TIMES.items():
        columns.setdefault(name, set()).update({time_column, *entity_columns})
    tables = {}
    for name, wanted in columns.items():
        path = table_path(warehouse_dir, name)
        if path.exists():
            available = pq.read_schema(path).names
            tables[name] = pd.read_parquet(path, columns=[c for c in available if c in wanted])
    return tables


def _feature_table(build: FeatureBuild, run_id: str) -> pa.Table:
    """A feature frame as Arrow, with the registry, the build summary and the run id in its metadata.

    Columns go to Arrow without a copy; only the id is dictionary-encoded later, and only the
    id and snapshot carry statistics (what readers filter on) — the float columns cost the time.
    """
    frame = build.frame
    schema = pa.Schema.from_pandas(frame.iloc[:0], preserve_index=False)
    arrays = [pa.array(frame[c].to_numpy(), type=schema.field(c).type) if frame[c].dtype == np.float32
              else pa.array(frame[c], type=schema.field(c).type) for c in frame.columns]  # fmt: skip
    meta = dict(schema.metadata or {})
    meta[b"fengqiao.features"] = json.dumps([s.__dict__ for s in build.registry], ensure_ascii=False).encode()
    meta[b"fengqiao.summary"] = json.dumps(build.summary.as_dict(), ensure_ascii=False, default=str).encode()
    meta[b"fengqiao.run"] = run_id.encode()
    return pa.Table.from_arrays(arrays, schema=schema.with_metadata(meta))


ROW_GROUP_ROWS = 65_536
"""Rows of a feature file's row group, at least (whole snapshots each): small enough that one
snapshot's reader reads a few percent of the default city's history, large enough that
compression and reading stay as fast as one group (smaller groups doubled the file)."""


def _write_by_snapshot(table: pa.Table, path: Path) -> None:
    """Write a feature table sorted by snapshot, then id, in row groups of whole snapshots
    (``ROW_GROUP_ROWS`` rows at least): a reader of one snapshot (the planner, scoring) reads
    only the row group that holds it, found by the snapshot's statistics, not the whole history.
    One row group is copied at a time, so writing needs no second copy of the table."""
    key, snapshot = table.column_names[:2]
    order = pc.sort_indices(table.select([snapshot, key]), [(snapshot, "ascending"), (key, "ascending")])
    days = table.column(snapshot).take(order).to_numpy()
    new_day = np.flatnonzero(np.r_[True, days[1:] != days[:-1]]) if len(days) else np.zeros(1, dtype=np.int64)
    bounds = [0]
    for start in new_day[1:]:
        if start - bounds[-1] >= ROW_GROUP_ROWS:
            bounds.append(int(start))
    bounds.append(len(days))
    with pq.ParquetWriter(path, table.schema, use_dictionary=[key], write_statistics=[key, snapshot],
                          compression="zstd", compression_level=1) as writer:
        for start, end in itertools.pairwise(bounds):
            writer.write_table(table.take(order[start:end]), row_group_size=max(end - start, 1))


def publish_features(warehouse_dir: Path, builds: Sequence[FeatureBuild], catalogue: Catalogue) -> list[Path]:
    """Write the built feature tables and the catalogue as one set, replacing every earlier run's.

    Returns the published paths.
    """
    warehouse_dir = Path(warehouse_dir)
    run_id = uuid.uuid4().hex
    names = [features_path(warehouse_dir, b.entity).name for b in builds] + [CATALOGUE_FILE]
    with publishing(warehouse_dir) as publication:
        for build in builds:
            _write_by_snapshot(_feature_table(build, run_id), publication.stage(features_path(warehouse_dir, build.entity).name))
        publication.stage(CATALOGUE_FILE).write_text(catalogue.as_json(), encoding="utf-8")
        for old in warehouse_dir.glob(FEATURE_FILES):
            if old.name not in names:
                publication.remove(old.name)
    published = [warehouse_dir / name for name in names]
    return published



def build_and_write(
    warehouse_dir: Path,
    entities: Sequence[str] | None = None,
    snapshot_every_days: int = 7,
    horizon_days: int = 30,
    *,
    as_of: pd.Timestamp | str | None = None,
    catalogue: Catalogue | None = None,
    options: EngineOptions = EngineOptions(),
    mapper: Mapper | None = None,
) -> list[FeatureBuild]:
    """Build every entity kind's feature table from the warehouse and publish them as one set.

    With ``mapper`` (a ``map`` that runs its calls on a cluster), place kinds are built by
    county through it (``features.engine.partition``): the same tables, built in parts.

    A kind whose table (or whose incident link) the city lacks is not built, with a one-line
    summary of its own. A run that would build no snapshots for a kind is refused before
    anything is written (``InputDataError``): the previous run's files stay, whole.
    """
    catalogue = catalogue or default_catalogue()
    kinds = [catalogue.entity(e) for e in entities] if entities is not None else list(catalogue.entities)
    tables = read_feature_inputs(warehouse_dir, catalogue, [k.event_key for k in kinds])
    builds, built = [], []
    for kind in kinds:
        reason = _cannot_build(tables, kind)
        if reason is not None and kind.table != "regions":
            summary = BuildSummary(kind.name, built=False, timezone=options.timezone, horizon_days=horizon_days,
                                   snapshot_every_days=snapshot_every_days, warnings=[reason])  # fmt: skip
            builds.append(FeatureBuild(kind.name, pd.DataFrame(), summary, FeatureRegistry()))
            continue
        if mapper is None:
            build = build_features(tables, kind, snapshot_every_days, horizon_days, as_of, catalogue=catalogue,
                                   options=options)  # fmt: skip
        else:
            build = build_partitioned(tables, kind, snapshot_every_days, horizon_days, as_of, catalogue=catalogue,
                                      options=options, mapper=mapper)  # fmt: skip
        if build.summary.snapshots == 0:
            raise InputDataError(
                f"no snapshots to build for {kind.name}s: the first snapshot is the first Monday "
                f"{WARM_UP_DAYS} days after the earliest event, and the data (as of {build.summary.as_of}) "
                f"ends before it; nothing was written, the previous feature files are unchanged"
            )
        builds.append(build)
        built.append(build)
    started = time.perf_counter()
    publish_features(warehouse_dir, built, catalogue)
    for build in built:
        build.summary.seconds["write"] = (time.perf_counter() - started) / len(built)
        build.summary.seconds["total"] += build.summary.seconds["write"]
    return builds


def _cannot_build(tables: dict[str, pd.DataFrame], kind: EntityKind) -> str | None:
    """Why a kind's features cannot be built from these tables (None when they can)."""
    if kind.table not in tables:
        return f"no `{kind.table}` table in the warehouse: {kind.name} features were not built"
    if "incidents" in tables and kind.event_key not in tables["incidents"]:
        return f"incidents carry no `{kind.event_key}`: {kind.name} features (and labels) were not built"
    return None
