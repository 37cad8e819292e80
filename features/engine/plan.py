"""What to compute: the feature families of an entity type, each feature with its spec and recipe.

``plan_features`` expands the source declarations (and the fixed families: project exposure,
static covariates, calendar, project attributes) into ``Family`` values. Each family is one
kernel call in the engine; each of its members carries a ``recipe`` that says, for that one
feature, what it means — the slow reference in the tests computes features from the recipes
alone. The registry of an entity type is the plan's specs with every table present.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from features.calendar import PRE_FESTIVAL_DAYS
from features.contracts import ASSESSMENT_LEVELS, PROJECT_KINDS
from features.engine.declarations import DEFAULT_SOURCES, VILLAGE_SOURCES, Code, Counter, EventSource, Ratio
from features.engine.neighbours import NeighbourParams
from features.engine.registry import FeatureRegistry, FeatureSpec

Entity = Literal["village", "project"]
ENTITY_ID = {"village": "village_id", "project": "project_id"}
REQUIRED_TABLES = ("regions", "incidents")

RECENTLY_COMPLETED_DAYS = 180
"""A project counts as 'recently completed' (and project rows continue) this long after completion."""
WAGE_SEASON_DAYS = PRE_FESTIVAL_DAYS
"""The pre-festival wage-arrears season: this many days before the Spring Festival (as the simulator's)."""


# --- recipes: what one feature means -----------------------------------------------------


@dataclass(frozen=True)
class EventCount:
    """Events of ``counter`` (code ``code``) with time in [t - days, t); with ``open``, only those
    not closed (per the source's closure) before t. Sums ``counter.weight`` when it has one."""

    source: EventSource
    counter: Counter
    code: Code | None
    days: int
    open: bool = False


@dataclass(frozen=True)
class DecayedIntensity:
    """sum over events before t of exp(-(t - time) / tau), tau = ``tau_days`` days."""

    source: EventSource
    counter: Counter
    code: Code | None
    tau_days: int


@dataclass(frozen=True)
class DaysSinceLast:
    """Days from the counter's last event before t to t; NaN if none."""

    source: EventSource
    counter: Counter


@dataclass(frozen=True)
class RepeatCount:
    """Distinct ``source.repeat.key`` values with at least ``min_count`` events in [t - days, t)."""

    source: EventSource
    days: int


@dataclass(frozen=True)
class RatioOf:
    ratio: Ratio


@dataclass(frozen=True)
class NearbySum:
    """Sum over the village's neighbours (not itself) of weight × ``base`` at t."""

    base: str
    neighbours: NeighbourParams


@dataclass(frozen=True)
class AffectedVillagesSum:
    """Sum over the project's affected villages of the village feature ``base`` at t."""

    base: str


ExposureMeasure = Literal[
    "announced", "acquisition", "construction", "completed_recently", "active", "households",
    "without_hearing", "assessment", "compensation_gap",
]  # fmt: skip


@dataclass(frozen=True)
class ProjectExposure:
    """A village's exposure to the projects that list it, by stage as known at t.

    A project is *active* from ``announced_at`` until ``completed_at``; in a stage from that
    stage's start until the next one's; a start counts once it is before t.
    """

    measure: ExposureMeasure
    level: str | None = None


@dataclass(frozen=True)
class RegionAttribute:
    """A static covariate of the village from ``regions`` (or its neighbour count)."""

    measure: str


@dataclass(frozen=True)
class CalendarValue:
    measure: Literal["days_to_spring_festival", "pre_festival_wage_season", "month"]


@dataclass(frozen=True)
class ProjectAttribute:
    """A static attribute of the project (known from its announcement)."""

    measure: str
    code: str | None = None


@dataclass(frozen=True)
class ProjectStage:
    """The project's stage at t (a flag) or the days since a stage began (NaN before)."""

    measure: Literal["in_stage", "days_since"]
    stage: Literal["announced", "acquisition", "construction", "completed"]


Recipe = (
    EventCount | DecayedIntensity | DaysSinceLast | RepeatCount | RatioOf | NearbySum | AffectedVillagesSum
    | ProjectExposure | RegionAttribute | CalendarValue | ProjectAttribute | ProjectStage
)  # fmt: skip

FamilyKind = Literal[
    "window", "open", "decay", "recency", "repeat", "ratio", "nearby", "affected_villages", "exposure",
    "region", "calendar", "project", "stage",
]  # fmt: skip


@dataclass(frozen=True)
class Feature:
    spec: FeatureSpec
    recipe: Recipe


@dataclass(frozen=True)
class Family:
    """Features computed together (one kernel call); ``members`` in the kernel's output order."""

    kind: FamilyKind
    members: tuple[Feature, ...]
    source: EventSource | None = None
    counter: Counter | None = None
    days: tuple[int, ...] = ()

    @property
    def names(self) -> list[str]:
        return [m.spec.name for m in self.members]


@dataclass(frozen=True)
class FeaturePlan:
    """The families to compute for one entity type, and what was left out and why."""

    entity: Entity
    families: tuple[Family, ...]
    left_out: tuple[str, ...]
    sources: tuple[EventSource, ...]

    @property
    def features(self) -> list[Feature]:
        return [m for f in self.families for m in f.members]

    @property
    def names(self) -> list[str]:
        return [m.spec.name for m in self.features]

    @property
    def registry(self) -> FeatureRegistry:
        return FeatureRegistry(m.spec for m in self.features)

    def restricted_to(self, names: Collection[str]) -> FeaturePlan:
        """Only the families that produce any of ``names`` (derived families are not kept)."""
        wanted = set(names)
        families = tuple(
            f for f in self.families if f.kind not in ("ratio", "nearby") and wanted.intersection(f.names)
        )
        return FeaturePlan(self.entity, families, self.left_out, self.sources)


# --- expanding an event source -----------------------------------------------------------


def _per_code_and_days(kind: FamilyKind, source: EventSource, counter: Counter, days: tuple[int, ...], spec, recipe) -> Family:
    """A family with a feature per (days, code), in the kernels' order: days-major, then code.

    ``spec(days, code, stem, zh, en)`` makes each spec, ``recipe(days, code)`` its recipe; both
    are called before this returns.
    """
    members = [
        Feature(spec(d, code, *counter.words(code)), recipe(d, code))
        for d in days
        for code in (counter.codes or (None,))
    ]
    return Family(kind, tuple(members), source, counter, days)


def _source_families(source: EventSource) -> list[Family]:
    families = []
    for c in source.counters:
        def group(code: Code | None) -> str:
            return c.group_of(code, source.group)  # noqa: B023 - called within this iteration

        if c.windows:
            families.append(_per_code_and_days(
                "window", source, c, c.windows,
                lambda w, code, stem, zh, en: FeatureSpec(
                    f"{stem}_{w}d", group(code), "count", f"近{w}天{zh} {{value}} 件", f"{{value}} {en} in the last {w} days"),
                lambda w, code: EventCount(source, c, code, w),
            ))  # fmt: skip
        if c.open_windows:
            closure = source.closure
            if closure is None:
                raise ValueError(f"source {source.name!r}: counter {c.stem!r} has open_windows but no closure")
            families.append(_per_code_and_days(
                "open", source, c, c.open_windows,
                lambda w, code, stem, zh, en: FeatureSpec(
                    f"{closure.stem}_{stem}_{w}d", closure.group, "count", f"近{w}天{closure.zh}{zh} {{value}} 件",
                    f"{{value}} {closure.en} {en} in the last {w} days"),
                lambda w, code: EventCount(source, c, code, w, open=True),
            ))  # fmt: skip
        if c.decays:
            families.append(_per_code_and_days(
                "decay", source, c, c.decays,
                lambda tau, code, stem, zh, en: FeatureSpec(
                    f"{stem}_decay_{tau}d", group(code), "decayed_count", f"{zh}近期强度(按{tau}天衰减) {{value}}",
                    f"recent intensity of {en} ({tau}-day decay): {{value}}"),
                lambda tau, code: DecayedIntensity(source, c, code, tau),
            ))  # fmt: skip
        if c.recency is not None:
            one_stem, one_zh, one_en = c.recency
            spec = FeatureSpec(
                f"days_since_last_{one_stem}", group(None), "days",
                f"距上次{one_zh}已 {{value}} 天", f"{{value}} days since the last {one_en}",
            )  # fmt: skip
            families.append(Family("recency", (Feature(spec, DaysSinceLast(source, c)),), source, c))
    if source.repeat is not None:
        rep = source.repeat
        members = [
            Feature(
                FeatureSpec(f"{rep.stem}_{w}d", rep.group, "count", f"近{w}天{rep.zh} {{value}} 人",
                            f"{{value}} {rep.en} in the last {w} days"),
                RepeatCount(source, w),
            )
            for w in rep.windows
        ]  # fmt: skip
        families.append(Family("repeat", tuple(members), source, None, rep.windows))
    return families


def _derived(prefix: str, base: FeatureSpec, group: str, zh: str, en: str) -> FeatureSpec:
    return FeatureSpec(f"{prefix}_{base.name}", group, base.unit, zh + base.zh, en + base.en)


# --- the fixed families ------------------------------------------------------------------

_STAGE_WORDS = {
    "announced": ("已公布、未启动征收", "announced, acquisition not begun"),
    "acquisition": ("征收阶段", "in land acquisition"),
    "construction": ("建设阶段", "under construction"),
    "completed": ("已完工", "completed"),
}
_ASSESSMENT_WORDS = {"low": ("低", "low"), "medium": ("中", "medium"), "high": ("高", "high"), "none": ("未评估", "no")}
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


def _exposure_family() -> Family:
    lp = "land_and_projects"
    specs = [
        (FeatureSpec("projects_announced", lp, "count", "已公布、未启动征收的重大项目 {value} 个",
                     "{value} major projects announced, acquisition not begun"), ProjectExposure("announced")),
        (FeatureSpec("projects_in_acquisition", lp, "count", "处于征收阶段的重大项目 {value} 个",
                     "{value} major projects in land acquisition"), ProjectExposure("acquisition")),
        (FeatureSpec("projects_in_construction", lp, "count", "在建重大项目 {value} 个",
                     "{value} major projects under construction"), ProjectExposure("construction")),
        (FeatureSpec(f"projects_completed_{RECENTLY_COMPLETED_DAYS}d", lp, "count",
                     f"近{RECENTLY_COMPLETED_DAYS}天完工的重大项目 {{value}} 个",
                     f"{{value}} major projects completed in the last {RECENTLY_COMPLETED_DAYS} days"),
         ProjectExposure("completed_recently")),
        (FeatureSpec("active_projects", lp, "count", "涉及本村的在推进重大项目 {value} 个",
                     "{value} active major projects affecting the village"), ProjectExposure("active")),
        (FeatureSpec("active_project_households", lp, "households", "在推进项目涉及 {value} 户",
                     "{value} households affected by active projects"), ProjectExposure("households")),
        (FeatureSpec("active_projects_without_hearing", lp, "count", "未举行听证的在推进项目 {value} 个",
                     "{value} active projects without a public hearing"), ProjectExposure("without_hearing")),
        *[
            (FeatureSpec(f"active_projects_assessed_{level}", lp, "count",
                         f"稳评等级为{_ASSESSMENT_WORDS[level][0]}的在推进项目 {{value}} 个",
                         f"{{value}} active projects with {_ASSESSMENT_WORDS[level][1]} prior stability assessment"
                         if level == "none" else
                         f"{{value}} active projects with a {_ASSESSMENT_WORDS[level][1]}-risk prior assessment"),
             ProjectExposure("assessment", level))
            for level in ASSESSMENT_LEVELS
        ],
        (FeatureSpec("compensation_gap", lp, "share", "在推进项目补偿低于区域标准 {value}",
                     "compensation offer of an active project below the regional standard by {value}"),
         ProjectExposure("compensation_gap")),
    ]  # fmt: skip
    return Family("exposure", tuple(Feature(s, r) for s, r in specs))


def _region_family(neighbours: NeighbourParams) -> Family:
    cap = "capacity"
    specs = [
        FeatureSpec("population", cap, "people", "常住人口 {value} 人", "population {value}"),
        FeatureSpec("households", cap, "households", "户数 {value} 户", "{value} households"),
        FeatureSpec("mediators", cap, "count", "人民调解员 {value} 名", "{value} people's mediators"),
        FeatureSpec("mediators_per_10k_people", cap, "ratio", "每万人调解员 {value} 名",
                    "{value} mediators per 10,000 people"),
        FeatureSpec("legal_adviser", cap, "flag", "配备法律顾问(1=是) {value}", "legal adviser in place (1 = yes): {value}"),
        FeatureSpec("grid_cells", cap, "count", "网格 {value} 个", "{value} grid cells"),
        FeatureSpec("households_per_grid_cell", cap, "ratio", "每个网格 {value} 户", "{value} households per grid cell"),
        FeatureSpec("is_community", cap, "flag", "城市社区(1=是) {value}", "urban community (1 = yes): {value}"),
        FeatureSpec("nearby_villages", "neighbourhood", "count",
                    f"{neighbours.radius_km:g}公里内邻近村社 {{value}} 个",
                    f"{{value}} neighbouring villages within {neighbours.radius_km:g} km"),
    ]  # fmt: skip
    return Family("region", tuple(Feature(s, RegionAttribute(s.name)) for s in specs))


def _calendar_family() -> Family:
    specs = [
        FeatureSpec("days_to_spring_festival", "calendar", "days", "距春节 {value} 天", "{value} days to the Spring Festival"),
        FeatureSpec("pre_festival_wage_season", "calendar", "flag", "春节前欠薪高发期(1=是) {value}",
                    "pre-festival wage-arrears season (1 = yes): {value}"),
        FeatureSpec("month", "calendar", "month", "月份 {value}", "month {value}"),
    ]  # fmt: skip
    return Family("calendar", tuple(Feature(s, CalendarValue(s.name)) for s in specs))  # type: ignore[arg-type]


def _project_family() -> Family:
    lp = "land_and_projects"
    specs = [
        (FeatureSpec("affected_households", lp, "households", "项目涉及 {value} 户",
                     "{value} households affected by the project"), ProjectAttribute("affected_households")),
        (FeatureSpec("affected_villages", lp, "count", "项目涉及村社 {value} 个", "{value} villages affected"),
         ProjectAttribute("affected_villages")),
        (FeatureSpec("investment_cny", lp, "CNY", "总投资 {value} 元", "investment of CNY {value}"),
         ProjectAttribute("investment_cny")),
        (FeatureSpec("compensation_ratio", lp, "share", "补偿标准为区域标准的 {value}",
                     "compensation offer at {value} of the regional standard"), ProjectAttribute("compensation_ratio")),
        (FeatureSpec("compensation_gap", lp, "share", "补偿低于区域标准 {value}",
                     "compensation offer below the regional standard by {value}"), ProjectAttribute("compensation_gap")),
        (FeatureSpec("hearing_held", lp, "flag", "已举行听证(1=是) {value}", "public hearing held (1 = yes): {value}"),
         ProjectAttribute("hearing_held")),
        *[
            (FeatureSpec(f"assessment_{level}", lp, "flag", f"稳评等级:{_ASSESSMENT_WORDS[level][0]}(1=是) {{value}}",
                         f"prior stability assessment {level} (1 = yes): {{value}}"),
             ProjectAttribute("assessment", level))
            for level in ASSESSMENT_LEVELS
        ],
        *[
            (FeatureSpec(f"kind_{kind}", lp, "flag", f"项目类型:{_PROJECT_KIND_WORDS[kind]}(1=是) {{value}}",
                         f"project kind {kind.replace('_', ' ')} (1 = yes): {{value}}"), ProjectAttribute("kind", kind))
            for kind in PROJECT_KINDS
        ],
    ]  # fmt: skip
    return Family("project", tuple(Feature(s, r) for s, r in specs))


def _stage_family() -> Family:
    lp = "land_and_projects"
    members = [
        Feature(FeatureSpec(f"stage_{stage}", lp, "flag", f"项目处于{zh}阶段(1=是) {{value}}",
                            f"project {en} (1 = yes): {{value}}"), ProjectStage("in_stage", stage))
        for stage, (zh, en) in _STAGE_WORDS.items()
    ]  # fmt: skip
    since = {
        "announced": ("公布", "announcement"),
        "acquisition": ("启动征收", "acquisition began"),
        "construction": ("开工", "construction began"),
        "completed": ("完工", "completion"),
    }
    members += [
        Feature(FeatureSpec(f"days_since_{stage}", lp, "days", f"距{zh}已 {{value}} 天",
                            f"{{value}} days since {en}"), ProjectStage("days_since", stage))
        for stage, (zh, en) in since.items()
    ]  # fmt: skip
    return Family("stage", tuple(members))  # type: ignore[arg-type]


AFFECTED_VILLAGE_FEATURES = (
    "disputes_30d",
    "unresolved_disputes_90d",
    "land_disputes_365d",
    "demolition_compensation_disputes_365d",
    "disputes_decay_30d",
    "petitions_30d",
    "collective_petitions_365d",
    "incidents_365d",
    "population",
    "households",
)
"""Village features summed over a project's affected villages (``villages_<name>``)."""


# --- the plan ----------------------------------------------------------------------------


def plan_features(
    entity: Entity,
    tables: Collection[str],
    sources: Sequence[EventSource] | None = None,
    neighbours: NeighbourParams = NeighbourParams(),
) -> FeaturePlan:
    """The families an entity type gets from the tables a city has (names in ``tables``).

    A source whose table is missing is left out with a note in ``left_out``, and so is every
    derived feature (ratio, spill-over) that needs it.
    """
    if entity not in DEFAULT_SOURCES:
        raise ValueError(f"entity must be 'village' or 'project', got {entity!r}")
    sources = tuple(DEFAULT_SOURCES[entity] if sources is None else sources)
    for source in sources:
        if source.entity != ENTITY_ID[entity]:
            raise ValueError(f"source {source.name!r} is keyed by {source.entity!r}, not {ENTITY_ID[entity]!r}")
    present = set(tables)
    families: list[Family] = []
    left_out: list[str] = []
    used = []
    for source in sources:
        if source.table in present:
            families += _source_families(source)
            used.append(source)
        else:
            left_out.append(f"{source.name}: no `{source.table}` table, its features are left out")
    specs = {m.spec.name: m.spec for f in families for m in f.members}

    ratios = []
    for source in used:
        for ratio in source.ratios:
            if ratio.numerator in specs and ratio.denominator in specs:
                spec = FeatureSpec(ratio.name, ratio.group, ratio.unit, ratio.zh, ratio.en)
                ratios.append(Feature(spec, RatioOf(ratio)))
            else:
                left_out.append(f"{ratio.name}: needs {ratio.numerator} and {ratio.denominator}")
    if ratios:
        families.append(Family("ratio", tuple(ratios)))

    if entity == "village":
        nearby = [
            Feature(
                _derived("nearby", specs[base], "neighbourhood", "周边村社(距离加权):", "nearby villages (distance-weighted): "),
                NearbySum(base, neighbours),
            )
            for source in used
            for base in source.spill
            if base in specs
        ]  # fmt: skip
        if nearby:
            families.append(Family("nearby", tuple(nearby)))
        if "projects" in present:
            families.append(_exposure_family())
        else:
            left_out.append("project exposure: no `projects` table, its features are left out")
        families.append(_region_family(neighbours))
    else:
        families += [_project_family(), _stage_family()]
        village = village_plan_for_projects(present, neighbours)
        village_specs = village.registry
        affected = [
            Feature(
                _derived("villages", village_specs[base], "neighbourhood", "受影响村社合计:", "affected villages in total: "),
                AffectedVillagesSum(base),
            )
            for base in AFFECTED_VILLAGE_FEATURES
            if base in village_specs
        ]  # fmt: skip
        if affected:
            families.append(Family("affected_villages", tuple(affected)))
    families.append(_calendar_family())
    plan = FeaturePlan(entity, tuple(families), tuple(left_out), tuple(used))
    plan.registry  # noqa: B018 - a name declared twice raises here
    return plan


def village_plan_for_projects(tables: Collection[str], neighbours: NeighbourParams = NeighbourParams()) -> FeaturePlan:
    """The village families that project entities aggregate over their affected villages."""
    return plan_features("village", tables, VILLAGE_SOURCES, neighbours).restricted_to(AFFECTED_VILLAGE_FEATURES)


def feature_registry(entity: Entity, sources: Sequence[EventSource] | None = None) -> FeatureRegistry:
    """Every feature an entity type can have (all tables present), declared once each."""
    tables = {s.table for s in (DEFAULT_SOURCES[entity] if sources is None else sources)}
    tables |= {"regions", "incidents", "projects", "disputes", "petitions", "patrols"}
    return plan_features(entity, tables, sources).registry
