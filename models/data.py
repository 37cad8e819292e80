"""The training table of one entity kind, read from the warehouse: the feature table, the oracle (simulated worlds only), each row's county, the
projects' prior assessment, and a fingerprint of the inputs. The I/O edge of models/."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contracts import CONTRACTS, LIST_SEPARATOR
from features.engine.store import features_path
from features.truth import oracle_column, read_oracle
from features.warehouse import read_table, table_path
from fengqiao.errors import InputDataError
from models.featuremeta import feature_columns, id_column
from models.hawkes import EventHistory
from models.timesplit import as_datetime64

ASSESSMENT_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}
"""The prior stability assessment (稳评) as a ranking: the level it declared; no assessment
declares nothing and ranks lowest."""


@dataclass
class HawkesInputs:
    """What the Hawkes model needs beside the features: every incident of the entities, the
    neighbour graph and background covariates, and each row's entity and day."""

    history: EventHistory
    row_entity: np.ndarray
    row_day: np.ndarray


NEIGHBOURS, NEIGHBOUR_RADIUS_KM, NEIGHBOUR_SCALE_KM = 8, 15.0, 5.0
"""The spill-over graph of the Hawkes model: a village's 8 nearest other villages within
15 km, weighted exp(−d / 5 km) — the feature engine's spill-over rule."""
_EARTH_KM = 6371.0


def village_neighbours(lat: np.ndarray, lon: np.ndarray) -> list[list[tuple[int, float]]]:
    """Each village's neighbours (index, weight) by haversine distance."""
    from sklearn.neighbors import BallTree

    coords = np.radians(np.column_stack([lat, lon]))
    k = min(NEIGHBOURS + 1, len(coords))
    dist, idx = BallTree(coords, metric="haversine").query(coords, k=k)
    out = []
    for i in range(len(coords)):
        km = dist[i] * _EARTH_KM
        out.append([(int(j), float(np.exp(-d / NEIGHBOUR_SCALE_KM))) for j, d in zip(idx[i], km)
                    if j != i and d <= NEIGHBOUR_RADIUS_KM][:NEIGHBOURS])
    return out


def hawkes_inputs(frame: pd.DataFrame, entity: str, incidents: pd.DataFrame, regions: pd.DataFrame) -> HawkesInputs:
    """Incidents as days since the first one, per village (with neighbours and covariates:
    log population, log households, mediators per 1,000 people) or per project (linked
    incidents; no neighbours, no covariates)."""
    key = id_column(entity)
    if entity == "village":
        ids = pd.Index(regions["village_id"].astype("str"))
        population = regions["population"].to_numpy(dtype=float)
        z = np.column_stack([np.log1p(population), np.log1p(regions["households"].to_numpy(dtype=float)),
                             1000 * regions["mediators"].to_numpy(dtype=float) / np.maximum(population, 1)])
        z = (z - z.mean(axis=0)) / np.where(z.std(axis=0) > 0, z.std(axis=0), 1)
        neighbours = village_neighbours(regions["lat"].to_numpy(dtype=float), regions["lon"].to_numpy(dtype=float))
    else:
        ids = pd.Index(frame[key].astype("str").unique())
        z = np.zeros((len(ids), 0))
        neighbours = [[] for _ in ids]
    link = "village_id" if entity == "village" else "project_id"
    events = incidents[incidents[link].notna()]
    owner = ids.get_indexer(events[link].astype("str"))
    event_ns = as_datetime64(events["occurred_at"]).astype(np.int64)[owner >= 0]
    row_ns = as_datetime64(frame["snapshot"]).astype(np.int64)
    origin = min(event_ns.min() if len(event_ns) else row_ns.min(), row_ns.min())
    day = 86_400 * 10**9
    history = EventHistory.from_events(owner[owner >= 0], (event_ns - origin) / day, len(ids), neighbours, z)
    return HawkesInputs(history, ids.get_indexer(frame[key].astype("str")), (row_ns - origin) / day)


@dataclass
class TrainingTable:
    """Rows with a known label, time-ordered, and what belongs with them."""

    entity: str
    frame: pd.DataFrame
    features: list[str]
    sources: list[str]
    fingerprint: str
    oracle: np.ndarray | None = None
    county: np.ndarray = field(default_factory=lambda: np.array([]))
    assessment: np.ndarray | None = None
    hawkes: HawkesInputs | None = None

    @property
    def X(self) -> pd.DataFrame:
        return self.frame[self.features]

    @property
    def y(self) -> np.ndarray:
        return self.frame["label"].to_numpy(dtype=int)

    @property
    def snapshots(self) -> np.ndarray:
        return self.frame["snapshot"].to_numpy()

    @property
    def ids(self) -> np.ndarray:
        return self.frame[id_column(self.entity)].astype("str").to_numpy()


def fingerprint_files(paths: list[Path]) -> str:
    """SHA-256 over the bytes of the files, in order (first 16 hex digits)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def feature_table(warehouse: Path, entity: str) -> Path:
    """``features_<entity>.parquet`` of the warehouse; an InputDataError if it was never built."""
    path = features_path(warehouse, entity)
    if not path.exists():
        raise InputDataError(f"{path} does not exist: run `fengqiao features` first")
    return path


def read_snapshot_rows(path: Path, snapshot: date | None = None) -> pd.DataFrame:
    """The rows of one snapshot of a feature table (default the latest), read without the
    others: scoring needs one week, and at ``--scale 10`` the whole village table takes
    gigabytes to read."""
    snapshots = pd.read_parquet(path, columns=["snapshot"])["snapshot"]
    if snapshot is None:
        chosen = snapshots.max()
    else:
        found = snapshots[snapshots.dt.date == snapshot]
        if found.empty:
            raise InputDataError(f"{path} has no snapshot {snapshot}")
        chosen = found.iloc[0]
    if pd.isna(chosen):
        raise InputDataError(f"{path} has no rows: run `fengqiao features`")
    return pd.read_parquet(path, filters=[("snapshot", "==", chosen)])


def load_training_table(warehouse: Path, entity: str, horizon_days: int, labelled_only: bool = True,
                        latest_only: bool = False) -> TrainingTable:
    """Read ``features_<entity>.parquet`` and the tables it needs; keep the rows with a known
    label (unless ``labelled_only`` is False), or with ``latest_only`` the rows of the latest
    snapshot alone (unlabelled: what scoring reads)."""
    path = feature_table(warehouse, entity)
    frame = read_snapshot_rows(path) if latest_only else pd.read_parquet(path)
    incidents = read_table(warehouse, "incidents")
    regions = read_table(warehouse, "regions")
    if incidents is None or regions is None:
        raise InputDataError(f"{warehouse} lacks regions or incidents: run `fengqiao ingest` first")
    if labelled_only and not latest_only:
        frame = frame[frame["label"].notna()]
    order = ["snapshot", id_column(entity)]
    if not pd.MultiIndex.from_frame(frame[order]).is_monotonic_increasing:  # files written before they were sorted
        frame = frame.sort_values(order, kind="stable")
    frame = frame.reset_index(drop=True)
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps what reading freed: at scale 10, gigabytes
    features = feature_columns(frame)
    sources = [name for name in CONTRACTS if table_path(warehouse, name).exists()]
    inputs = [path] + [table_path(warehouse, name) for name in sources]
    ids = frame[id_column(entity)].astype("str")
    table = TrainingTable(entity, frame, features, sources, fingerprint_files(inputs))
    table.hawkes = hawkes_inputs(frame, entity, incidents, regions)
    if entity == "village":
        county = regions.set_index(regions["village_id"].astype("str"))["county_id"].astype("str")
        table.county = county.reindex(ids).fillna("?").to_numpy()
    projects = read_table(warehouse, "projects") if "projects" in sources else None
    if entity == "project" and projects is not None:
        first_village = projects["village_ids"].fillna("").astype("str").str.split(LIST_SEPARATOR).str[0]
        county = regions.set_index(regions["village_id"].astype("str"))["county_id"].astype("str")
        per_project = pd.Series(county.reindex(first_village).to_numpy(), index=projects["project_id"].astype("str"))
        table.county = per_project.reindex(ids).fillna("?").to_numpy()
        level = pd.Series(projects["assessment_level"].astype("str").map(ASSESSMENT_RANK).to_numpy(),
                          index=projects["project_id"].astype("str"))
        table.assessment = level.reindex(ids).to_numpy(dtype=float)
    oracle = read_oracle(warehouse, entity, horizon_days)
    if oracle is not None:
        key = id_column(entity)
        merged = frame[[key, "snapshot"]].merge(oracle, on=[key, "snapshot"], how="left", validate="one_to_one")
        table.oracle = merged[oracle_column(horizon_days)].to_numpy(dtype=float)
    return table
