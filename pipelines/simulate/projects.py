"""Major projects of the synthetic city and the pressure they put on affected villages.

A project moves through announced → acquisition → construction → completed; each stage
weighs on its villages differently, and a low compensation offer, no hearing or an
optimistic (or missing) prior stability assessment make the weight heavier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.neighbors import BallTree

from features.contracts import ASSESSMENT_LEVELS, LIST_SEPARATOR, PROJECT_KINDS

PROJECTS_PER_MILLION_PER_YEAR = 9.5
"""Announcements per million people per year: about 150 projects announced in the two years
before a 3-year history and during it, for a 3.2-million city."""
HISTORY_BEFORE_DAYS = 730
"""Projects announced up to this many days before the recorded history still weigh on it."""

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
ASSESSMENT_WEIGHT = {"low": 1.8, "medium": 1.0, "high": 0.5, "none": 2.5}
"""A 'low' rating that turns out wrong is the optimistic case; 'high' brought mitigation."""
URBAN_KINDS = {"demolition_relocation", "urban_renewal"}
MAX_VILLAGES_PER_PROJECT = 6


def announcements_per_day(regions: pd.DataFrame) -> float:
    """The rate of the Poisson process of project announcements in a city (per day)."""
    return PROJECTS_PER_MILLION_PER_YEAR * regions["population"].sum() / 1e6 / 365.25


@dataclass(frozen=True)
class ProjectDraws:
    """Projects drawn from the generating process, before they get ids and dates.

    ``stages`` holds, per project, the days from announcement to the acquisition start, to
    the construction start and to completion (shape (n, 3), increasing); ``villages`` the
    indices (in regions order) of the affected villages.
    """

    kind: np.ndarray
    stages: np.ndarray
    villages: list[np.ndarray]
    households: np.ndarray
    compensation_ratio: np.ndarray
    hearing_held: np.ndarray
    assessment_level: np.ndarray
    investment_cny: np.ndarray

    @property
    def severity(self) -> np.ndarray:
        return severity(self.kind, self.households, self.compensation_ratio, self.hearing_held,
                        self.assessment_level)


@dataclass(frozen=True)
class ProjectSites:
    """Where projects can go: the regions' coordinates (radians) in a haversine BallTree, and
    the pools of urban and rural units that project centres are drawn from."""

    tree: BallTree
    coords: np.ndarray
    pools: dict[bool, np.ndarray]

    @classmethod
    def of(cls, regions: pd.DataFrame) -> ProjectSites:
        coords = np.radians(regions[["lat", "lon"]].to_numpy())
        urban = (regions["kind"] == "community").to_numpy()
        everyone = np.arange(len(regions))
        pools = {True: np.flatnonzero(urban) if urban.any() else everyone,
                 False: np.flatnonzero(~urban) if (~urban).any() else everyone}
        return cls(BallTree(coords, metric="haversine"), coords, pools)


def draw_projects(rng: np.random.Generator, sites: ProjectSites, n: int) -> ProjectDraws:
    """``n`` projects from the generating process: kind, timeline, the villages around a
    centre (urban kinds in communities), size and the decisions that set their pressure."""
    kinds = rng.choice(np.array(PROJECT_KINDS), size=n, p=KIND_SHARE / KIND_SHARE.sum())
    to_acquisition = rng.integers(30, 180, n)
    to_construction = to_acquisition + rng.integers(60, 360, n)
    to_completion = to_construction + rng.integers(180, 900, n)
    is_urban_kind = np.isin(kinds, list(URBAN_KINDS))
    centres = np.empty(n, dtype=np.int64)
    u = rng.random(n)
    for flag in (True, False):
        rows = is_urban_kind == flag
        pool = sites.pools[flag]
        centres[rows] = pool[(u[rows] * len(pool)).astype(np.int64)]
    sizes = np.minimum(len(sites.coords), rng.integers(1, 1 + MAX_VILLAGES_PER_PROJECT, n))
    nearest = sites.tree.query(sites.coords[centres], k=int(sizes.max(initial=1)))[1] if n else np.empty((0, 1))
    villages = [np.sort(near[:k]).astype(np.int64) for near, k in zip(nearest, sizes)]
    households = np.round(rng.lognormal(np.log(180), 0.8, n) * sizes ** 0.5)
    return ProjectDraws(
        kind=kinds,
        stages=np.column_stack([to_acquisition, to_construction, to_completion]).astype(np.int64),
        villages=villages,
        households=np.maximum(5, households).astype(np.int64),
        compensation_ratio=np.round(np.clip(rng.normal(0.88, 0.16, n), 0.45, 1.3), 3),
        hearing_held=rng.random(n) < 0.6,
        assessment_level=rng.choice(np.array(ASSESSMENT_LEVELS), size=n, p=ASSESSMENT_SHARE),
        investment_cny=np.round(rng.lognormal(np.log(3e8), 1.0, n), -4),
    )


def build_projects(rng: np.random.Generator, regions: pd.DataFrame, sites: ProjectSites, start: pd.Timestamp,
                   n_days: int) -> pd.DataFrame:
    """The `projects` table: every project announced in the two years before the history
    and during it (a Poisson process; the platform knows nothing announced later), with its
    timeline.

    Times are whole days after ``start`` turned into timestamps; ``completed_at`` is empty
    for projects still running at the end.
    """
    span = HISTORY_BEFORE_DAYS + n_days
    n = int(rng.poisson(announcements_per_day(regions) * span))
    draws = draw_projects(rng, sites, n)
    announced = rng.integers(-HISTORY_BEFORE_DAYS, n_days, n)
    acquisition, construction, completed = (announced + draws.stages[:, k] for k in range(3))
    vids = regions["village_id"].to_numpy()

    def at(days: np.ndarray, hours: np.ndarray | int = 0) -> pd.Series:
        return pd.Series(start + pd.to_timedelta(days * 24 + hours, unit="h"))

    frame = pd.DataFrame(
        {
            "project_id": [f"PRJ{str(i + 1).zfill(5)}" for i in range(n)],
            "name": [f"{regions['town_name'].iloc[v[0]]}{_KIND_ZH[k]}项目" for v, k in zip(draws.villages, draws.kind)],
            "kind": draws.kind,
            "village_ids": [LIST_SEPARATOR.join(vids[v]) for v in draws.villages],
            "announced_at": at(announced, rng.integers(9, 17, n)),
            "acquisition_start": at(acquisition),
            "construction_start": at(construction),
            "completed_at": at(completed).where(completed < n_days),
            "investment_cny": draws.investment_cny,
            "affected_households": draws.households,
            "compensation_ratio": draws.compensation_ratio,
            "hearing_held": draws.hearing_held,
            "assessment_level": draws.assessment_level,
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


def severity(kind: np.ndarray, households: np.ndarray, compensation_ratio: np.ndarray,
             hearing_held: np.ndarray, assessment_level: np.ndarray) -> np.ndarray:
    """How hard each project weighs on its villages at full (acquisition-stage) pressure."""
    gap = np.maximum(0.0, 1.0 - np.asarray(compensation_ratio, dtype=float))
    return (
        np.sqrt(np.asarray(households, dtype=float) / 200.0)
        * (1.0 + 8.0 * gap)
        * np.where(np.asarray(hearing_held, dtype=bool), 1.0, 2.5)
        * np.array([ASSESSMENT_WEIGHT[a] for a in assessment_level], dtype=float)
        * np.array([KIND_WEIGHT[k] for k in kind], dtype=float)
    )


def project_severity(projects: pd.DataFrame) -> np.ndarray:
    """``severity`` of each row of the `projects` table."""
    return severity(projects["kind"].to_numpy(), projects["affected_households"].to_numpy(),
                    projects["compensation_ratio"].to_numpy(), projects["hearing_held"].to_numpy(),
                    projects["assessment_level"].to_numpy())


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
        for vid in ids.split(LIST_SEPARATOR):
            proj.append(j)
            vill.append(int(position[vid]))
    return np.asarray(proj, dtype=np.int64), np.asarray(vill, dtype=np.int64)
