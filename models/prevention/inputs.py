"""What the planner plans over, and the budgets and scope it is given.

``PlanningInputs`` holds, per entity kind, a snapshot's feature rows (the latest by default) in the bundle's
order, the counties each entity belongs to (a project: every county of its affected villages,
as the API's scope rule) and each village's population. ``read_planning_inputs`` reads them
from the warehouse (the CLI's edge); the API builds them from the rows it already holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from features.contracts import LIST_SEPARATOR
from features.warehouse import read_table
from fengqiao.errors import ConfigurationError, InputDataError
from fengqiao.interventions import Catalogue
from models.batch_scoring import feature_matrix
from models.bundle import ScoringBundle
from models.data import feature_table, read_snapshot_rows
from models.featuremeta import id_column


@dataclass(frozen=True)
class EntityRows:
    """One entity kind at the planning snapshot, ids ascending. ``X`` (n, features) is in the
    bundle's feature order; ``population`` is residents (NaN where unknown, and for projects)."""

    entity: str
    ids: np.ndarray
    X: np.ndarray
    counties: tuple[tuple[str, ...], ...]
    home_county: np.ndarray
    population: np.ndarray

    def in_county(self, county: str | None) -> np.ndarray:
        """Mask of the entities a plan of ``county`` (None: the city) may act on."""
        if county is None:
            return np.ones(len(self.ids), dtype=bool)
        return np.fromiter((county in cs for cs in self.counties), bool, len(self.ids))


@dataclass(frozen=True)
class PlanningInputs:
    """The rows of each entity kind at ``snapshot`` (a Monday)."""

    snapshot: date
    rows: dict[str, EntityRows]

    def counties(self) -> list[str]:
        """Every county some entity belongs to."""
        return sorted({c for rows in self.rows.values() for cs in rows.counties for c in cs})


def check_budgets(budgets: Mapping[str, float], catalogue: Catalogue) -> dict[str, float]:
    """The budgets by name, each a finite amount ≥ 0 of a budget some kind draws on; else a
    ConfigurationError naming the budget."""
    known = catalogue.budgets()
    out = {}
    for name, amount in budgets.items():
        if name not in known:
            raise ConfigurationError(f"unknown budget {name!r}; the intervention kinds draw on: {', '.join(known)}")
        amount = float(amount)
        if not math.isfinite(amount) or amount < 0:
            raise ConfigurationError(f"budget {name!r} must be a finite amount of at least 0")
        out[name] = amount
    return out


def parse_budgets(text: str) -> dict[str, float]:
    """``NAME=AMOUNT,NAME=AMOUNT`` as a mapping; a ConfigurationError names the entry at fault."""
    out: dict[str, float] = {}
    for entry in (e.strip() for e in text.split(",")):
        name, sep, amount = (part.strip() for part in entry.partition("="))
        if not sep or not name or not amount:
            raise ConfigurationError(f"budget entry {entry!r} is not NAME=AMOUNT (e.g. mediation_team=20)")
        try:
            out[name] = float(amount)
        except ValueError:
            raise ConfigurationError(f"budget {name!r}: the amount must be a number") from None
    return out


def scope_county(scope: str, counties: list[str]) -> str | None:
    """The county of ``county:ID`` (None for ``city``); a ConfigurationError for anything else
    or a county the data does not know."""
    if scope == "city":
        return None
    county = scope.removeprefix("county:")
    if not scope.startswith("county:") or not county:
        raise ConfigurationError(f"scope {scope!r} is not city or county:<county_id>")
    if county not in counties:
        shown = ", ".join(counties[:12]) + (" …" if len(counties) > 12 else "")
        raise ConfigurationError(f"scope {scope!r}: no such county in the data (counties: {shown})")
    return county


def project_counties(project_ids: np.ndarray, projects: pd.DataFrame | None,
                     village_county: Mapping[str, str]) -> tuple[tuple[str, ...], ...]:
    """Every county of each project's affected villages, first village's first."""
    listed: dict[str, str] = {}
    if projects is not None and "village_ids" in projects.columns:
        listed = dict(zip(projects["project_id"].astype("str"), projects["village_ids"].fillna("").astype("str")))
    return tuple(tuple(dict.fromkeys(village_county[v] for v in listed.get(p, "").split(LIST_SEPARATOR)
                                     if v in village_county)) for p in project_ids)


def _snapshot_rows(warehouse: Path, entity: str, bundle: ScoringBundle,
                   snapshot: date | None = None) -> tuple[date, np.ndarray, np.ndarray]:
    """A snapshot of ``features_<entity>.parquet`` (default the latest), its ids (ascending) and features."""
    path = feature_table(warehouse, entity)
    frame = read_snapshot_rows(path, snapshot)
    key = id_column(entity)
    frame = frame.assign(**{key: frame[key].astype("str")}).sort_values(key, kind="stable")
    X = feature_matrix(bundle, frame, f"{path}")
    return pd.Timestamp(frame["snapshot"].iloc[0]).date(), frame[key].to_numpy(dtype=object), X


def read_planning_inputs(warehouse: Path, bundles: Mapping[str, ScoringBundle],
                         snapshot: date | None = None) -> PlanningInputs:
    """A snapshot's rows (default the latest) of each entity kind ``bundles`` scores, from the warehouse."""
    regions = read_table(warehouse, "regions")
    if regions is None:
        raise InputDataError(f"{warehouse} lacks the regions table: run `fengqiao ingest` first")
    regions = regions.set_index(regions["village_id"].astype("str"))
    village_county = regions["county_id"].astype("str").to_dict()
    rows, snapshots = {}, []
    for entity, bundle in bundles.items():
        found, ids, X = _snapshot_rows(warehouse, entity, bundle, snapshot)
        snapshots.append(found)
        if entity == "village":
            counties = tuple((village_county[v],) if v in village_county else () for v in ids)
            population = (regions["population"].reindex(ids).to_numpy(dtype=float, na_value=np.nan)
                          if "population" in regions.columns else np.full(len(ids), np.nan))
        else:
            counties = project_counties(ids, read_table(warehouse, "projects"), village_county)
            population = np.full(len(ids), np.nan)
        home = np.array([cs[0] if cs else None for cs in counties], dtype=object)
        rows[entity] = EntityRows(entity, ids, X, counties, home, population)
    return PlanningInputs(max(snapshots), rows)
