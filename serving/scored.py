"""One entity kind scored for serving: the live bundle applied to the latest snapshots, held in
memory so that rankings, details and alerts are answered by indexing arrays.

Built once at start and again by each reload (never changed after): the latest
``history_weeks`` snapshots of ``features_<entity>.parquet`` are scored with the bundle (so that
the change since the previous snapshot, ``as_of`` rankings and alerts all use one model); the
latest snapshot is also explained in full; ranks are precomputed for the city and for each
county; the published score history is read from ``score_history_<entity>.parquet``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.warehouse import read_table
from fengqiao.errors import ConfigurationError
from models.batch_scoring import HISTORY_COLUMNS, feature_matrix, history_path
from models.bundle import Explanation, ScoringBundle, explain_rows
from models.data import load_training_table
from models.featuremeta import id_column
from serving.places import Places, project_places, village_places

ALERT_LEVELS = ("orange", "red")


@dataclass(frozen=True)
class HistoryRow:
    snapshot: date
    probability: float
    level: str
    model_version: str
    scored_at: datetime


@dataclass(frozen=True)
class ScoredEntities:
    """Entity kind ``entity`` scored by ``bundle`` at ``snapshots`` (ascending, the last is the
    latest). Arrays are indexed ``[snapshot, entity]`` over ``places.ids``; an entity without a
    feature row at a snapshot is absent there (``present`` False, NaN probability, level None)."""

    entity: str
    bundle: ScoringBundle
    source: str
    loaded_at: datetime
    scoring_seconds: float
    places: Places
    snapshots: tuple[date, ...]
    features: np.ndarray
    present: np.ndarray
    raw_score: np.ndarray
    probability: np.ndarray
    level: np.ndarray
    alerting: np.ndarray
    county_medians: np.ndarray
    home: np.ndarray
    city_rank: np.ndarray
    county_rank: dict[str, np.ndarray]
    order: tuple[np.ndarray, ...]
    explanations: tuple[Explanation | None, ...]
    contributions: np.ndarray
    history: dict[str, tuple[HistoryRow, ...]]
    index: dict[str, int]
    memo: dict = field(default_factory=dict, compare=False, repr=False)
    """Answers the views derive from this state and keep (ranking items of the latest snapshot):
    they never change, and they go with the state when a reload replaces it."""

    @property
    def latest(self) -> int:
        return len(self.snapshots) - 1

    @property
    def version(self) -> str:
        return self.bundle.version

    def reference(self, s: int, rows: np.ndarray) -> np.ndarray:
        """County medians of every feature at snapshot ``s`` for entities ``rows``."""
        return county_reference(self.county_medians, self.home, s, rows)

    def explain(self, s: int, rows: np.ndarray) -> list[Explanation]:
        """Explanations of entities ``rows`` at snapshot ``s`` (the latest's are precomputed)."""
        if s == self.latest:
            return [self.explanations[i] for i in rows]
        return explain_rows(self.bundle, self.features[s, rows], self.reference(s, rows)) if len(rows) else []

    def snapshot_at(self, day: date) -> int | None:
        """The latest snapshot on or before ``day`` (None if ``day`` precedes them all)."""
        s = int(np.searchsorted(np.array(self.snapshots, dtype="datetime64[D]"), np.datetime64(day, "D"), "right")) - 1
        return s if s >= 0 else None


def county_reference(county_medians: np.ndarray, home: np.ndarray, s: int, rows: np.ndarray) -> np.ndarray:
    """Each entity's home-county medians of every feature at snapshot ``s`` (NaN for an entity
    without a county): the comparison shown beside a reason's value."""
    out = np.full((len(rows), county_medians.shape[2]), np.nan)
    known = home[rows] >= 0
    out[known] = county_medians[s, home[rows][known]]
    return out


def read_history(warehouse: Path, entity: str) -> dict[str, tuple[HistoryRow, ...]]:
    """The published scores per entity id, oldest first; a missing or damaged file is a
    ConfigurationError naming it (and the column at fault)."""
    path = history_path(warehouse, entity)
    if not path.exists():
        raise ConfigurationError(f"{path} does not exist: run `fengqiao score` before `fengqiao serve`")
    try:
        table = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 (pyarrow raises several types for a damaged file)
        raise ConfigurationError(f"{path} is not a readable Parquet file ({type(err).__name__}): "
                                 "run `fengqiao score` again") from None
    key = id_column(entity)
    for column in (key, *HISTORY_COLUMNS):
        if column not in table.columns:
            raise ConfigurationError(f"{path} lacks column {column!r}: run `fengqiao score` again")
    try:
        snapshot = pd.to_datetime(table["snapshot"]).dt.date
        scored_at = pd.to_datetime(table["scored_at"], utc=True)
        probability = table["probability"].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{path}: columns snapshot, scored_at and probability must hold dates, "
                                 "times and numbers: run `fengqiao score` again") from None
    table = pd.DataFrame({"id": table[key].astype("str"), "snapshot": snapshot, "probability": probability,
                          "level": table["level"].astype("str"), "model_version": table["model_version"].astype("str"),
                          "scored_at": scored_at}).sort_values(["id", "snapshot", "scored_at"], kind="stable")
    history: dict[str, tuple[HistoryRow, ...]] = {}
    for entity_id, rows in table.groupby("id", sort=False):
        history[str(entity_id)] = tuple(
            HistoryRow(s, float(p), lv, v, t.to_pydatetime())
            for s, p, lv, v, t in zip(rows["snapshot"], rows["probability"], rows["level"], rows["model_version"],
                                      rows["scored_at"]))
    return history


def _ranks(raw: np.ndarray, present: np.ndarray, ids: np.ndarray,
           masks: dict[str, np.ndarray]) -> tuple[tuple[np.ndarray, ...], np.ndarray, dict[str, np.ndarray]]:
    """Per snapshot: the order of the present entities (raw score descending, then id: batch
    scoring's rank), the city rank, and each county's rank among its own entities (0: not ranked)."""
    n_snap, n = raw.shape
    orders, city = [], np.zeros((n_snap, n), dtype=np.int64)
    county = {c: np.zeros((n_snap, n), dtype=np.int64) for c in masks}
    for s in range(n_snap):
        rows = np.flatnonzero(present[s])
        order = rows[np.lexsort((ids[rows], -raw[s, rows]))]
        orders.append(order)
        city[s, order] = np.arange(1, len(order) + 1)
        for c, mask in masks.items():
            mine = order[mask[order]]
            county[c][s, mine] = np.arange(1, len(mine) + 1)
    return tuple(orders), city, county


def _county_medians(features: np.ndarray, present: np.ndarray, home: np.ndarray, n_counties: int) -> np.ndarray:
    """Median of each feature over each county's present entities, per snapshot (NaN where none)."""
    out = np.full((features.shape[0], n_counties, features.shape[2]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN feature in a county: NaN is the answer
        for s in range(features.shape[0]):
            for c in range(n_counties):
                rows = present[s] & (home == c)
                if rows.any():
                    out[s, c] = np.nanmedian(features[s, rows], axis=0)
    return out


def score_entities(bundle: ScoringBundle, source: str, warehouse: Path, history_weeks: int) -> ScoredEntities:
    """Score and explain ``bundle.entity`` from the warehouse (see the module docstring). Every
    missing or unusable input is a FengqiaoError naming it."""
    entity = bundle.entity
    started = time.perf_counter()
    history = read_history(warehouse, entity)
    frame = load_training_table(warehouse, entity, int(bundle.meta["horizon_days"]), labelled_only=False).frame
    if frame.empty:
        raise ConfigurationError(f"features_{entity}.parquet in {warehouse} has no rows: run `fengqiao features`")
    key = id_column(entity)
    snapshot_days = pd.to_datetime(frame["snapshot"]).dt.date
    kept = sorted(set(snapshot_days))[-history_weeks:]
    frame = frame[snapshot_days.isin(kept).to_numpy()]
    snapshot_days = snapshot_days[snapshot_days.isin(kept)]
    ids = np.array(sorted(frame[key].astype("str").unique()), dtype=object)
    index = {v: i for i, v in enumerate(ids)}
    s_of_row = np.searchsorted(np.array(kept, dtype="datetime64[D]"), snapshot_days.to_numpy(dtype="datetime64[D]"))
    i_of_row = np.array([index[v] for v in frame[key].astype("str")])
    X = feature_matrix(bundle, frame, f"features_{entity}.parquet in {warehouse}")
    n_snap, n, n_feat = len(kept), len(ids), X.shape[1]
    features = np.full((n_snap, n, n_feat), np.nan)
    features[s_of_row, i_of_row] = X
    present = np.zeros((n_snap, n), dtype=bool)
    present[s_of_row, i_of_row] = True
    raw, probability = np.full((n_snap, n), np.nan), np.full((n_snap, n), np.nan)
    raw[s_of_row, i_of_row] = bundle.raw_score(X)
    probability[s_of_row, i_of_row] = bundle.probability_from_raw(raw[s_of_row, i_of_row])
    level = np.full((n_snap, n), None, dtype=object)
    level[s_of_row, i_of_row] = bundle.levels(probability[s_of_row, i_of_row])

    regions = read_table(warehouse, "regions")
    places = (village_places(ids, regions) if entity == "village"
              else project_places(ids, read_table(warehouse, "projects"), regions))
    counties = places.county_ids
    position = {c: k for k, c in enumerate(counties)}
    home = np.array([position.get(c, -1) if c is not None else -1 for c in places.county_id], dtype=np.int64)
    medians = _county_medians(features, present, home, len(counties))
    orders, city_rank, county_rank = _ranks(raw, present, ids,
                                            {c: places.in_county(c) for c in counties})

    latest_rows = np.flatnonzero(present[-1])
    latest_contributions = bundle.contributions(features[-1, latest_rows])
    contributions = np.full((n, n_feat + 1), np.nan)
    contributions[latest_rows] = latest_contributions
    explained = explain_rows(bundle, features[-1, latest_rows],
                             county_reference(medians, home, n_snap - 1, latest_rows),
                             contributions=latest_contributions)
    explanations: list[Explanation | None] = [None] * n
    for i, explanation in zip(latest_rows, explained):
        explanations[i] = explanation
    return ScoredEntities(
        entity=entity, bundle=bundle, source=source, loaded_at=datetime.now(UTC),
        scoring_seconds=time.perf_counter() - started, places=places, snapshots=tuple(kept), features=features,
        present=present, raw_score=raw, probability=probability, level=level,
        alerting=np.isin(level, ALERT_LEVELS), county_medians=medians, home=home,
        city_rank=city_rank, county_rank=county_rank, order=orders, explanations=tuple(explanations),
        contributions=contributions, history=history, index=index)
