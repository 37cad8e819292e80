"""Major projects of the synthetic city and the pressure they put on affected villages.

A project moves through announced → acquisition → construction → completed; each stage
weighs on its villages differently, and a low compensation offer, no hearing or an
optimistic (or missing) prior stability assessment make the weight heavier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import BallTree

from features.contracts import ASSESSMENT_LEVELS, PROJECT_KINDS

PROJECTS_PER_MILLION = 47.0
"""About 150 projects over the history for a 3.2-million city."""

KIND_WEIGHT = {
    "land_acquisition": 1.3,
    "demolition_relocation": 1.6,
    "infrastructure": 0.8,
    "industrial_park": 1.0,
    "environmental_facility": 1.3,
    "hydropower": 1.1,
    "mining": 1.2,
    "urban_renewal": 1.2,
}
KIND_SHARE = np.array([0.2, 0.12, 0.22, 0.12, 0.08, 0.06, 0.06, 0.14])
ASSESSMENT_SHARE = np.array([0.4, 0.33, 0.15, 0.12])  # low, medium, high, none
ASSESSMENT_WEIGHT = {"low": 1.3, "medium": 1.0, "high": 0.75, "none": 1.6}
"""A 'low' rating that turns out wrong is the optimistic case; 'high' brought mitigation."""
URBAN_KINDS = {"demolition_relocation", "urban_renewal"}


def build_projects(
    rng: np.random.Generator, regions: pd.DataFrame, start: pd.Timestamp, n_days: int, scale: float
) -> pd.DataFrame:
    """The `projects` table: projects announced up to two years before the history and
    until its end (the platform knows nothing announced later), with their timelines.

    Times are whole days after ``start`` turned into timestamps; ``completed_at`` is empty
    for projects still running at the end.
    """
    total_pop = regions["population"].sum()
    n = max(3, int(round(PROJECTS_PER_MILLION * total_pop / 1e6 * n_days / 1096)))
    kinds = rng.choice(np.array(PROJECT_KINDS), size=n, p=KIND_SHARE / KIND_SHARE.sum())
    announced = rng.integers(-730, n_days - 30, n)
    acquisition = announced + rng.integers(30, 180, n)
    construction = acquisition + rng.integers(60, 360, n)
    completed = construction + rng.integers(180, 900, n)
    urban = (regions["kind"] == "community").to_numpy()
    coords = np.radians(regions[["lat", "lon"]].to_numpy())
    tree = BallTree(coords, metric="haversine")
    village_lists = []
    for kind in kinds:
        pool = np.flatnonzero(urban) if kind in URBAN_KINDS and urban.any() else np.flatnonzero(~urban)
        centre = pool[rng.integers(0, len(pool))]
        k = int(min(len(regions), rng.integers(1, 7)))
        _, idx = tree.query(coords[centre : centre + 1], k=k)
        village_lists.append(np.sort(idx[0]))
    households = np.round(rng.lognormal(np.log(180), 0.8, n) * np.array([len(v) for v in village_lists]) ** 0.5)
    vids = regions["village_id"].to_numpy()
    def at(days: np.ndarray, hours: np.ndarray | int = 0) -> pd.Series:
        return pd.Series(start + pd.to_timedelta(days * 24 + hours, unit="h"))

    frame = pd.DataFrame(
        {
            "project_id": [f"PRJ{str(i + 1).zfill(5)}" for i in range(n)],
            "name": [f"{regions['town_name'].iloc[v[0]]}{_KIND_ZH[k]}项目" for v, k in zip(village_lists, kinds)],
            "kind": kinds,
            "village_ids": ["|".join(vids[v]) for v in village_lists],
            "announced_at": at(announced, rng.integers(9, 17, n)),
            "acquisition_start": at(acquisition),
            "construction_start": at(construction),
            "completed_at": at(completed).where(completed < n_days),
            "investment_cny": np.round(rng.lognormal(np.log(3e8), 1.0, n), -4),
            "affected_households": np.maximum(5, households).astype(np.int64),
            "compensation_ratio": np.round(np.clip(rng.normal(0.88, 0.16, n), 0.45, 1.3), 3),
            "hearing_held": rng.random(n) < 0.6,
            "assessment_level": rng.choice(np.array(ASSESSMENT_LEVELS), size=n, p=ASSESSMENT_SHARE),
        }
    )
    return frame.sort_values("project_id").reset_index(drop=True)


_KIND_ZH = {
    "land_acquisition": "土地征收",
    "demolition_relocation": "征迁安置",
    "infrastructure": "道路建设",
    "industrial_park": "产业园区",
    "environmental_facility": "垃圾处理厂",
    "hydropower": "水电站",
    "mining": "矿山开采",
    "urban_renewal": "城市更新",
}


def project_severity(projects: pd.DataFrame) -> np.ndarray:
    """How hard each project weighs on its villages at full (acquisition-stage) pressure."""
    gap = np.maximum(0.0, 1.0 - projects["compensation_ratio"].to_numpy())
    return (
        np.sqrt(projects["affected_households"].to_numpy() / 200.0)
        * (1.0 + 3.0 * gap)
        * np.where(projects["hearing_held"].to_numpy(), 1.0, 1.6)
        * projects["assessment_level"].map(ASSESSMENT_WEIGHT).to_numpy()
        * projects["kind"].map(KIND_WEIGHT).to_numpy()
    ).astype(np.float64)


def project_day_arrays(projects: pd.DataFrame, start: pd.Timestamp, n_days: int) -> np.ndarray:
    """Stage boundaries as day numbers since ``start``: (announced, acquisition, construction,
    completed), completed = a day past the horizon for running projects. Shape (n, 4)."""
    cols = ["announced_at", "acquisition_start", "construction_start", "completed_at"]
    days = np.empty((len(projects), 4), dtype=np.int64)
    for j, col in enumerate(cols):
        delta = (projects[col] - start).dt.floor("D").dt.days
        days[:, j] = delta.fillna(n_days + 10_000).to_numpy(dtype=np.int64)
    return days


def project_village_pairs(projects: pd.DataFrame, regions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(project index, village index) for every affected village of every project."""
    position = pd.Series(np.arange(len(regions)), index=regions["village_id"].to_numpy())
    proj, vill = [], []
    for j, ids in enumerate(projects["village_ids"]):
        for vid in ids.split("|"):
            proj.append(j)
            vill.append(int(position[vid]))
    return np.asarray(proj, dtype=np.int64), np.asarray(vill, dtype=np.int64)
