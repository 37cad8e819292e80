"""A small world to plan over, made by hand: villages in three counties and projects, each kind
scored by a real LightGBM bundle trained on synthetic rows where the catalogue's levers lower
the risk (more mediators per 10,000 people, a legal adviser, patrols; a hearing, full
compensation)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np

from models.bundle import ScoringBundle, load_bundle
from models.bundle.export import BundleFacts, export_booster
from models.prevention import EntityRows, PlanningInputs

VILLAGE_FEATURES = ["incidents_90d", "mediators", "mediators_per_10k_people", "legal_adviser", "patrols_7d",
                    "patrols_30d", "patrols_90d", "days_since_last_patrol"]
PROJECT_FEATURES = ["linked_incidents_90d", "hearing_held", "compensation_ratio", "compensation_gap"]
COUNTIES = ("C1", "C2", "C3")
SNAPSHOT = date(2026, 1, 5)


def _village_rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Village features and residents."""
    population = rng.integers(300, 5000, n).astype(float)
    mediators = rng.integers(0, 6, n).astype(float)
    patrols_7d = rng.poisson(2.0, n).astype(float)
    X = np.column_stack([rng.poisson(1.5, n), mediators, mediators * 10_000 / population,
                         rng.random(n) < 0.3, patrols_7d, patrols_7d * 30 / 7 + rng.poisson(1, n),
                         patrols_7d * 90 / 7 + rng.poisson(3, n), rng.exponential(6.0, n)]).astype(float)
    return X, population


def _village_label(rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
    signal = (0.8 * X[:, 0] - 0.05 * X[:, 2] - 1.0 * X[:, 3] - 0.04 * X[:, 5] + 0.05 * X[:, 7] - 0.5)
    return (rng.random(len(X)) < 1 / (1 + np.exp(-signal))).astype(int)


def _project_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    ratio = rng.uniform(0.5, 1.2, n)
    return np.column_stack([rng.poisson(1.0, n), rng.random(n) < 0.4, ratio, np.clip(1 - ratio, 0, None)]).astype(float)


def _project_label(rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
    signal = 0.7 * X[:, 0] - 1.2 * X[:, 1] + 3.0 * X[:, 3] - 0.8
    return (rng.random(len(X)) < 1 / (1 + np.exp(-signal))).astype(int)


def train(folder: Path, entity: str, seed: int = 5) -> ScoringBundle:
    """A LightGBM model of the entity kind on 4,000 synthetic rows, exported as a bundle."""
    rng = np.random.default_rng(seed)
    if entity == "village":
        X, _ = _village_rows(rng, 4000)
        y, names = _village_label(rng, X), VILLAGE_FEATURES
    else:
        X = _project_rows(rng, 4000)
        y, names = _project_label(rng, X), PROJECT_FEATURES
    booster = lgb.train({"objective": "binary", "verbose": -1, "seed": seed, "num_leaves": 15,
                         "min_data_in_leaf": 20, "num_threads": 1, "deterministic": True}, lgb.Dataset(X, y),
                        num_boost_round=60)
    return load_bundle(export_booster(booster, folder, BundleFacts(entity, 30, (0.3, 0.15, 0.05)), names))


def planning_inputs(n_villages: int = 30, n_projects: int = 6, seed: int = 1) -> PlanningInputs:
    """Villages V00.. spread over the three counties, projects P0.. each touching one or two
    counties (P0 touches C1 and C2)."""
    rng = np.random.default_rng(seed)
    X, population = _village_rows(rng, n_villages)
    village_ids = np.array([f"V{i:02d}" for i in range(n_villages)], dtype=object)
    village_county = [COUNTIES[i % 3] for i in range(n_villages)]
    project_ids = np.array([f"P{i}" for i in range(n_projects)], dtype=object)
    project_counties = tuple((COUNTIES[i % 3], COUNTIES[(i + 1) % 3]) if i % 2 == 0 else (COUNTIES[i % 3],)
                             for i in range(n_projects))
    villages = EntityRows("village", village_ids, X, tuple((c,) for c in village_county),
                          np.array(village_county, dtype=object), population)
    projects = EntityRows("project", project_ids, _project_rows(rng, n_projects), project_counties,
                          np.array([cs[0] for cs in project_counties], dtype=object), np.full(n_projects, np.nan))
    return PlanningInputs(SNAPSHOT, {"village": villages, "project": projects})
