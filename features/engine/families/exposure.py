"""Project exposure: a place's exposure to the projects that list it, by stage as known at t.

A project is *active* from ``announced_at`` until ``completed_at``; in a stage from that
stage's start until the next one's; a start counts once it is before t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from features.contracts import ASSESSMENT_LEVELS, SECONDS_PER_DAY
from features.engine import kernels
from features.engine.events import entity_pointers
from features.engine.families.base import Family, Feature
from features.engine.projects import RECENTLY_COMPLETED_DAYS, ProjectTimes, compensation_gap, project_villages
from features.engine.registry import FeatureSpec
from features.engine.timeline import NEVER

if TYPE_CHECKING:
    from features.engine.engine import EngineState

ExposureMeasure = Literal[
    "announced", "acquisition", "construction", "completed_recently", "active", "households",
    "without_hearing", "assessment", "compensation_gap",
]  # fmt: skip

ASSESSMENT_WORDS = {"low": ("低", "low"), "medium": ("中", "medium"), "high": ("高", "high"), "none": ("未评估", "no")}
_EMPTY_F64 = np.empty(0, dtype=np.float64)
_MILESTONES = ("projects.village_ids", "projects.announced_at", "projects.acquisition_start",
               "projects.construction_start", "projects.completed_at")  # fmt: skip


@dataclass(frozen=True)
class ProjectExposure:
    """One exposure measure (``level``: the assessment level counted)."""

    measure: ExposureMeasure
    level: str | None = None


def _feature(name: str, unit: str, zh: str, en: str, recipe: ProjectExposure, *columns: str) -> Feature:
    return Feature(FeatureSpec(name, "land_and_projects", unit, zh, en), recipe,
                   (*_MILESTONES, *(f"projects.{c}" for c in columns)))  # fmt: skip


def _assessment_en(level: str) -> str:
    words = ASSESSMENT_WORDS[level][1]
    if level == "none":
        return f"{{value}} active projects with {words} prior stability assessment"
    return f"{{value}} active projects with a {words}-risk prior assessment"


class ProjectExposures(Family):
    """Active projects by stage, their households, hearings, assessments and compensation gap."""

    divisible = True

    def __init__(self) -> None:
        d = RECENTLY_COMPLETED_DAYS
        super().__init__([
            _feature("projects_announced", "count", "已公布、未启动征收的重大项目 {value} 个",
                     "{value} major projects announced, acquisition not begun", ProjectExposure("announced")),
            _feature("projects_in_acquisition", "count", "处于征收阶段的重大项目 {value} 个",
                     "{value} major projects in land acquisition", ProjectExposure("acquisition")),
            _feature("projects_in_construction", "count", "在建重大项目 {value} 个",
                     "{value} major projects under construction", ProjectExposure("construction")),
            _feature(f"projects_completed_{d}d", "count", f"近{d}天完工的重大项目 {{value}} 个",
                     f"{{value}} major projects completed in the last {d} days", ProjectExposure("completed_recently")),
            _feature("active_projects", "count", "涉及本村的在推进重大项目 {value} 个",
                     "{value} active major projects affecting the village", ProjectExposure("active")),
            _feature("active_project_households", "households", "在推进项目涉及 {value} 户",
                     "{value} households affected by active projects", ProjectExposure("households"),
                     "affected_households"),
            _feature("active_projects_without_hearing", "count", "未举行听证的在推进项目 {value} 个",
                     "{value} active projects without a public hearing", ProjectExposure("without_hearing"),
                     "hearing_held"),
            *[
                _feature(f"active_projects_assessed_{level}", "count",
                         f"稳评等级为{ASSESSMENT_WORDS[level][0]}的在推进项目 {{value}} 个", _assessment_en(level),
                         ProjectExposure("assessment", level), "assessment_level")
                for level in ASSESSMENT_LEVELS
            ],
            _feature("compensation_gap", "share", "在推进项目补偿低于区域标准 {value}",
                     "compensation offer of an active project below the regional standard by {value}",
                     ProjectExposure("compensation_gap"), "compensation_ratio"),
        ])  # fmt: skip

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        projects = state.tables["projects"]
        rows, place = project_villages(projects, state.entities)
        order = np.argsort(place, kind="stable")
        rows, place = rows[order], place[order]
        ptr = entity_pointers(place, len(state.entities))
        times = ProjectTimes.of(projects, state.timezone).take(rows)
        stage_bounds = {
            "announced": (times.announced, times.acquisition),
            "acquisition": (times.acquisition, times.construction),
            "construction": (times.construction, times.completed),
            "completed_recently": (times.completed, times.completed + RECENTLY_COMPLETED_DAYS * SECONDS_PER_DAY),
        }
        never = np.array([NEVER], dtype=np.int64)
        zeros = np.zeros(len(rows), dtype=np.int32)
        for j, feature in enumerate(self.features):
            recipe: ProjectExposure = feature.recipe  # type: ignore[assignment]
            starts, ends = stage_bounds.get(recipe.measure, (times.announced, times.completed))
            if recipe.measure == "compensation_gap":
                gap = np.nan_to_num(compensation_gap(projects)[rows])
                kernels.max_in_intervals(ptr, starts, ends, gap, state.snapshots, state.step, block[j])
                continue
            codes, weights = zeros, _EMPTY_F64
            if recipe.measure == "households":
                weights = projects["affected_households"].to_numpy(dtype=np.float64, na_value=0.0)[rows]
            elif recipe.measure == "without_hearing":
                codes = np.where(projects["hearing_held"].fillna(False).to_numpy(bool)[rows], -1, 0).astype(np.int32)
            elif recipe.measure == "assessment":
                codes = np.where(projects["assessment_level"].to_numpy()[rows] == recipe.level, 0, -1).astype(np.int32)
            kernels.count_in_intervals(ptr, starts, ends, never, codes, 1, weights, state.snapshots, state.step,
                                       block[j : j + 1])  # fmt: skip
