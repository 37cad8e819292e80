"""Static attributes: a place's size and local capacity, a project's attributes, and its stage at t."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from features.contracts import ASSESSMENT_LEVELS, PROJECT_KINDS, SECONDS_PER_DAY
from features.engine.families.base import Family, Feature
from features.engine.families.exposure import ASSESSMENT_WORDS
from features.engine.neighbours import NeighbourParams
from features.engine.projects import MILESTONES, ProjectTimes, compensation_gap, project_villages
from features.engine.registry import FeatureSpec

if TYPE_CHECKING:
    from features.engine.engine import EngineState


@dataclass(frozen=True)
class RegionAttribute:
    """A static covariate of the place from ``regions`` (or its neighbour count)."""

    measure: str


class RegionAttributes(Family):
    """Population, households, mediation capacity, grid cells, community or not, neighbours."""

    divisible = True

    def __init__(self, neighbours: NeighbourParams) -> None:
        cap = "capacity"

        def feature(name: str, group: str, unit: str, zh: str, en: str, *columns: str) -> Feature:
            return Feature(FeatureSpec(name, group, unit, zh, en), RegionAttribute(name),
                           tuple(f"regions.{c}" for c in columns))  # fmt: skip

        super().__init__([
            feature("population", cap, "people", "常住人口 {value} 人", "population {value}", "population"),
            feature("households", cap, "households", "户数 {value} 户", "{value} households", "households"),
            feature("mediators", cap, "count", "人民调解员 {value} 名", "{value} people's mediators", "mediators"),
            feature("mediators_per_10k_people", cap, "ratio", "每万人调解员 {value} 名",
                    "{value} mediators per 10,000 people", "mediators", "population"),
            feature("legal_adviser", cap, "flag", "配备法律顾问(1=是) {value}",
                    "legal adviser in place (1 = yes): {value}", "legal_adviser"),
            feature("grid_cells", cap, "count", "网格 {value} 个", "{value} grid cells", "grid_cells"),
            feature("households_per_grid_cell", cap, "ratio", "每个网格 {value} 户", "{value} households per grid cell",
                    "households", "grid_cells"),
            feature("is_community", cap, "flag", "城市社区(1=是) {value}", "urban community (1 = yes): {value}", "kind"),
            feature("nearby_villages", "neighbourhood", "count", neighbours.zh_words("{value}"),
                    neighbours.en_words("{value}"), *neighbours.columns),
        ])  # fmt: skip

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        regions = state.entity_frame()
        for j, feature in enumerate(self.features):
            measure = feature.recipe.measure  # type: ignore[attr-defined]
            if measure == "nearby_villages":
                values = state.neighbours().counts().astype(np.float64)
            else:
                values = region_attribute(regions, measure)
            block[j] = np.repeat(values, state.n_snap)


def region_attribute(regions: pd.DataFrame, measure: str) -> np.ndarray:
    """One static covariate per place (rows of ``regions``); ratios are NaN over a zero."""

    def col(name: str) -> np.ndarray:
        return regions[name].to_numpy(dtype=np.float64, na_value=np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "mediators_per_10k_people":
            pop = col("population")
            return np.where(pop > 0, 1e4 * col("mediators") / pop, np.nan)
        if measure == "households_per_grid_cell":
            cells = col("grid_cells")
            return np.where(cells > 0, col("households") / cells, np.nan)
    if measure == "is_community":
        return (regions["kind"] == "community").to_numpy(dtype=np.float64, na_value=np.nan)
    if measure == "legal_adviser":
        return regions["legal_adviser"].astype("float64").to_numpy(na_value=np.nan)
    return col(measure)


@dataclass(frozen=True)
class ProjectAttribute:
    """A static attribute of the project (known from its announcement)."""

    measure: str
    code: str | None = None


_PROJECT_KIND_WORDS = {
    "land_acquisition": "征地",
    "demolition_relocation": "拆迁安置",
    "infrastructure": "基础设施",
    "industrial_park": "产业园区",
    "environmental_facility": "环保设施",
    "hydropower": "水电",
    "mining": "矿产开发",
    "urban_renewal": "城市更新",
}


class ProjectAttributes(Family):
    """Households and villages affected, investment, compensation, hearing, assessment, kind."""

    divisible = True

    def __init__(self) -> None:
        def feature(name: str, unit: str, zh: str, en: str, recipe: ProjectAttribute, column: str) -> Feature:
            return Feature(FeatureSpec(name, "land_and_projects", unit, zh, en), recipe, (f"projects.{column}",))

        super().__init__([
            feature("affected_households", "households", "项目涉及 {value} 户", "{value} households affected by the project",
                    ProjectAttribute("affected_households"), "affected_households"),
            feature("affected_villages", "count", "项目涉及村社 {value} 个", "{value} villages affected",
                    ProjectAttribute("affected_villages"), "village_ids"),
            feature("investment_cny", "CNY", "总投资 {value} 元", "investment of CNY {value}",
                    ProjectAttribute("investment_cny"), "investment_cny"),
            feature("compensation_ratio", "share", "补偿标准为区域标准的 {value}",
                    "compensation offer at {value} of the regional standard", ProjectAttribute("compensation_ratio"),
                    "compensation_ratio"),
            feature("compensation_gap", "share", "补偿低于区域标准 {value}",
                    "compensation offer below the regional standard by {value}", ProjectAttribute("compensation_gap"),
                    "compensation_ratio"),
            feature("hearing_held", "flag", "已举行听证(1=是) {value}", "public hearing held (1 = yes): {value}",
                    ProjectAttribute("hearing_held"), "hearing_held"),
            *[
                feature(f"assessment_{level}", "flag", f"稳评等级:{ASSESSMENT_WORDS[level][0]}(1=是) {{value}}",
                        f"prior stability assessment {level} (1 = yes): {{value}}", ProjectAttribute("assessment", level),
                        "assessment_level")
                for level in ASSESSMENT_LEVELS
            ],
            *[
                feature(f"kind_{kind}", "flag", f"项目类型:{_PROJECT_KIND_WORDS[kind]}(1=是) {{value}}",
                        f"project kind {kind.replace('_', ' ')} (1 = yes): {{value}}", ProjectAttribute("kind", kind),
                        "kind")
                for kind in PROJECT_KINDS
            ],
        ])  # fmt: skip

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        projects = state.entity_frame()
        villages = pd.Index(state.tables["regions"]["village_id"].astype("str"))
        for j, feature in enumerate(self.features):
            values = project_attribute(projects, feature.recipe, villages)  # type: ignore[arg-type]
            block[j] = np.repeat(values, state.n_snap)


def project_attribute(projects: pd.DataFrame, recipe: ProjectAttribute, villages: pd.Index) -> np.ndarray:
    """One static attribute per project (rows of ``projects``, indexed by project)."""
    if recipe.measure == "affected_villages":
        rows, _ = project_villages(projects.reset_index(), villages)
        return np.bincount(rows, minlength=len(projects)).astype(np.float64)
    if recipe.measure == "compensation_gap":
        return compensation_gap(projects)
    if recipe.measure == "hearing_held":
        return projects["hearing_held"].astype("float64").to_numpy(na_value=np.nan)
    if recipe.measure in ("assessment", "kind"):
        column = "assessment_level" if recipe.measure == "assessment" else "kind"
        return (projects[column] == recipe.code).to_numpy(dtype=np.float64, na_value=0.0)
    return projects[recipe.measure].to_numpy(dtype=np.float64, na_value=np.nan)


Stage = Literal["announced", "acquisition", "construction", "completed"]
_NEXT_STAGE = {"announced": "acquisition", "acquisition": "construction", "construction": "completed"}


@dataclass(frozen=True)
class ProjectStage:
    """The project's stage at t (a flag) or the days since a stage began (NaN before)."""

    measure: Literal["in_stage", "days_since"]
    stage: Stage


class ProjectStages(Family):
    """Which stage the project is in at t, and how long since each stage began."""

    def __init__(self) -> None:
        lp = "land_and_projects"
        in_stage = {
            "announced": ("已公布、未启动征收", "announced, acquisition not begun"),
            "acquisition": ("征收阶段", "in land acquisition"),
            "construction": ("建设阶段", "under construction"),
            "completed": ("已完工", "completed"),
        }
        since = {
            "announced": ("公布", "announcement"),
            "acquisition": ("启动征收", "acquisition began"),
            "construction": ("开工", "construction began"),
            "completed": ("完工", "completion"),
        }
        needs = tuple(f"projects.{c}" for c in MILESTONES)
        super().__init__([
            *[Feature(FeatureSpec(f"stage_{stage}", lp, "flag", f"项目处于{zh}阶段(1=是) {{value}}",
                                  f"project {en} (1 = yes): {{value}}"), ProjectStage("in_stage", stage), needs)
              for stage, (zh, en) in in_stage.items()],
            *[Feature(FeatureSpec(f"days_since_{stage}", lp, "days", f"距{zh}已 {{value}} 天",
                                  f"{{value}} days since {en}"), ProjectStage("days_since", stage), needs)
              for stage, (zh, en) in since.items()],
        ])  # fmt: skip

    def compute(self, state: EngineState, block: np.ndarray) -> None:
        times = ProjectTimes.of(state.entity_frame().reset_index(), state.timezone)
        t = state.snapshots[None, :]
        for j, feature in enumerate(self.features):
            recipe: ProjectStage = feature.recipe  # type: ignore[assignment]
            start = getattr(times, recipe.stage)[:, None]
            if recipe.measure == "in_stage":
                inside = start < t
                if recipe.stage in _NEXT_STAGE:
                    inside &= ~(getattr(times, _NEXT_STAGE[recipe.stage])[:, None] < t)
                block[j] = inside.ravel()
            else:
                block[j] = np.where(start < t, (t - start) / SECONDS_PER_DAY, np.nan).ravel()
