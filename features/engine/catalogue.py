"""The default event sources as data: DESIGN.md's tables, what each counts, and their words.

A run's catalogue — these defaults (with the windows and decay times of its settings) plus
the sources a city declares in its configuration file — is written beside the feature
tables (``features_catalogue.json``), so that a feature table always says what it counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from pydantic import TypeAdapter, ValidationError

from features.contracts import (
    COLLECTIVE_MIN_PARTICIPANTS,
    DISPUTE_CATEGORIES,
    DISPUTE_SOURCES,
    INCIDENT_KINDS,
    LEAPFROG_LEVELS,
    PATROL_ISSUE_KINDS,
    PETITION_CHANNELS,
    PETITION_LEVELS,
)
from features.engine.declarations import (
    Closure,
    Condition,
    EventCounter,
    EventSource,
    Ratio,
    RepeatKeys,
    codes,
    trend,
)
from fengqiao.errors import ConfigurationError

# --- code words -------------------------------------------------------------------------

CATEGORY_WORDS = {
    "land": ("土地", "land"),
    "neighbour": ("邻里", "neighbour"),
    "family": ("婚姻家庭", "family"),
    "labour_wages": ("劳资欠薪", "wage-arrears"),
    "property_management": ("物业", "property-management"),
    "medical": ("医疗", "medical"),
    "traffic": ("交通", "traffic"),
    "environment": ("环境", "environmental"),
    "demolition_compensation": ("征迁补偿", "demolition-compensation"),
    "other": ("其他", "other"),
}
SOURCE_WORDS = {
    "grid": ("网格员", "grid workers"),
    "walk_in": ("群众来访", "walk-ins"),
    "hotline": ("热线", "the hotline"),
    "referral": ("转介", "referral"),
}
CHANNEL_WORDS = {
    "visit": ("来访", "by visit"),
    "letter": ("来信", "by letter"),
    "online": ("网上信访", "online"),
    "hotline_12345": ("12345热线诉求", "via the 12345 hotline"),
}
LEVEL_WORDS = {
    "town": ("乡镇", "town"),
    "county": ("县级", "county"),
    "city": ("市级", "city"),
    "province": ("省级", "province"),
    "national": ("国家级", "national"),
}
ISSUE_WORDS = {
    "dispute_lead": ("矛盾线索", "dispute leads"),
    "safety_hazard": ("安全隐患", "safety hazards"),
    "environment": ("环境问题", "environmental problems"),
    "public_order": ("治安问题", "public-order problems"),
    "infrastructure": ("基础设施问题", "infrastructure problems"),
}
INCIDENT_WORDS = {
    "collective_petition": ("集体访事件", "collective-petition incidents"),
    "leapfrog_petition": ("越级访事件", "leapfrog-petition incidents"),
    "mass_gathering": ("聚集事件", "mass gatherings"),
    "blockade": ("堵路阻工事件", "blockades"),
    "violent_conflict": ("暴力冲突事件", "violent conflicts"),
}

WINDOWS_DAYS = (7, 30, 90, 365)
"""Default windows of the main counts (``FENGQIAO_WINDOWS_DAYS``)."""
DECAY_DAYS = (7, 30, 90)
"""Default decay times of the main intensities (``FENGQIAO_DECAY_DAYS``)."""
LAG_WEEKS = 5
"""Weekly lag counts of incidents (``incidents_lag_1w`` … ``_5w``): the input of the lag-counts baseline."""
LAND_GROUPS = (("land", "land_and_projects"), ("demolition_compensation", "land_and_projects"))

COLLECTIVE = Condition("participants", ">=", COLLECTIVE_MIN_PARTICIPANTS)
"""集体访: five or more people petitioning together."""
LEAPFROG = Condition("level", "in", LEAPFROG_LEVELS)
"""越级访: received above the county, the level that should handle a village's matter."""
PROJECT_LINKED = Condition("project_id", "not_null")
DISPUTE_RESOLVED = Condition("outcome", "in", ("resolved",))
MEDIATION_CONCLUDED = Condition("outcome", "in", ("resolved", "partial", "failed", "to_court"))
MEDIATION_FAILED = Condition("outcome", "in", ("failed", "to_court"))

DISPUTE_CLOSURE = Closure(time="mediated_at", when=DISPUTE_RESOLVED)
PETITION_CLOSURE = Closure(time="closed_at", stem="unclosed", zh="未办结", en="unclosed")
PATROL_CLOSURE = Closure(time="resolved_at", stem="open", zh="未整改", en="open")


def _mediation_sources(prefix: str, entity: str) -> EventSource:
    """Mediation outcomes, keyed by the time they were recorded (``mediated_at``)."""
    p = f"{prefix}_" if prefix else ""
    zh_p, en_p = ("涉项目", "project-linked ") if prefix else ("", "")
    return EventSource(
        name=f"{p}mediations",
        table="disputes",
        time="mediated_at",
        entity=entity,
        group="unresolved_backlog",
        counters=(
            EventCounter(f"{p}mediations", f"{zh_p}调解结案", f"{en_p}mediations concluded",
                    where=MEDIATION_CONCLUDED, windows=(90, 365)),
            EventCounter(f"{p}failed_mediations", f"{zh_p}调解失败", f"{en_p}failed mediations",
                    where=MEDIATION_FAILED, windows=(90, 365)),
        ),
        ratios=tuple(
            Ratio(
                name=f"{p}mediation_failure_rate_{w}d",
                numerator=f"{p}failed_mediations_{w}d",
                denominator=f"{p}mediations_{w}d",
                group="unresolved_backlog",
                unit="share",
                zh=f"近{w}天{zh_p}调解失败率 {{value}}",
                en=f"{en_p}mediation failure rate in the last {w} days: {{value}}",
            )
            for w in (90, 365)
        ),
    )  # fmt: skip


def village_sources(windows: tuple[int, ...] = WINDOWS_DAYS, decays: tuple[int, ...] = DECAY_DAYS) -> tuple[EventSource, ...]:
    """The village sources of DESIGN.md, in the order their features appear.

    ``windows`` (days) are the main counts' windows, ``decays`` (days) the main intensities'
    decay times; secondary counts keep the windows given here.
    """
    return (
    EventSource(
        name="disputes",
        table="disputes",
        time="reported_at",
        group="disputes",
        closure=DISPUTE_CLOSURE,
        counters=(
            EventCounter("disputes", "矛盾纠纷", "disputes", windows=windows, open_windows=(30, 90, 365), decays=decays),
            EventCounter("{code}_disputes", "{code}纠纷", "{code} disputes", by="category",
                    codes=codes(DISPUTE_CATEGORIES, CATEGORY_WORDS), windows=windows,
                    open_windows=(30, 365), code_groups=LAND_GROUPS),
            EventCounter("disputes_via_{code}", "经{code}受理的纠纷", "disputes reported via {code}", by="source",
                    codes=codes(DISPUTE_SOURCES, SOURCE_WORDS), windows=(30, 365)),
            EventCounter("project_linked_disputes", "涉项目纠纷", "project-linked disputes", where=PROJECT_LINKED,
                    windows=(30, 90, 365), open_windows=(90,), decays=(30,), group="land_and_projects"),
        ),
        spill=("disputes_30d", "disputes_decay_30d", "unresolved_disputes_90d"),
        ratios=(trend("disputes", "矛盾纠纷", "disputes"),),
    ),
    _mediation_sources("", "village_id"),
    EventSource(
        name="petitions",
        table="petitions",
        time="filed_at",
        group="petitions",
        closure=PETITION_CLOSURE,
        repeat=RepeatKeys(key="petitioner_key", windows=(30, 90, 365)),
        counters=(
            EventCounter("petitions", "信访", "petitions", windows=windows, open_windows=(30, 90, 365), decays=decays),
            EventCounter("{code}_petitions", "{code}", "petitions {code}", by="channel",
                    codes=codes(PETITION_CHANNELS, CHANNEL_WORDS), windows=windows),
            EventCounter("petitions_to_{code}", "到{code}信访", "petitions to the {code} level", by="level",
                    codes=codes(PETITION_LEVELS, LEVEL_WORDS), windows=windows),
            EventCounter("petitions_on_{code}", "{code}类信访", "petitions on {code} matters", by="topic",
                    codes=codes(DISPUTE_CATEGORIES, CATEGORY_WORDS), windows=(30, 365), code_groups=LAND_GROUPS),
            EventCounter("collective_petitions", "集体访", "collective petitions", where=COLLECTIVE,
                    windows=windows, decays=(30,)),
            EventCounter("leapfrog_petitions", "越级访", "leapfrog petitions", where=LEAPFROG,
                    windows=windows, decays=(30,)),
            EventCounter("project_linked_petitions", "涉项目信访", "project-linked petitions", where=PROJECT_LINKED,
                    windows=(30, 365), group="land_and_projects"),
        ),
        spill=("petitions_30d", "petitions_decay_30d", "collective_petitions_90d"),
        ratios=(trend("petitions", "信访", "petitions"),),
    ),
    EventSource(
        name="petition_closures",
        table="petitions",
        time="closed_at",
        group="petitions",
        counters=(
            EventCounter("closed_petitions", "办结信访", "petitions closed", windows=(90, 365)),
            EventCounter("unsatisfied_closed_petitions", "不满意的办结信访", "petitions closed unsatisfied",
                    where=Condition("satisfied", "==", False), windows=(90, 365)),
            EventCounter("late_closed_petitions", "超期办结信访", "petitions closed late",
                    where=Condition("within_limit", "==", False), windows=(90, 365)),
        ),
        ratios=(
            Ratio("petition_dissatisfaction_rate_365d", "unsatisfied_closed_petitions_365d", "closed_petitions_365d",
                  group="petitions", unit="share", zh="近365天信访办结不满意率 {value}",
                  en="share of petitions closed unsatisfied in the last 365 days: {value}"),
            Ratio("petition_late_closure_rate_365d", "late_closed_petitions_365d", "closed_petitions_365d",
                  group="petitions", unit="share", zh="近365天信访超期办结率 {value}",
                  en="share of petitions closed late in the last 365 days: {value}"),
        ),
    ),
    EventSource(
        name="patrols",
        table="patrols",
        time="patrolled_at",
        group="patrol_coverage",
        closure=PATROL_CLOSURE,
        counters=(
            EventCounter("patrols", "网格巡查", "grid patrols", windows=(7, 30, 90), recency=("patrol", "巡查", "patrol")),
            EventCounter("patrols_with_issues", "发现问题的巡查", "patrols that found issues",
                    where=Condition("issues_found", ">", 0), windows=(30, 90), open_windows=(30, 365)),
            EventCounter("patrol_issues_found", "巡查发现问题", "issues found on patrol", weight="issues_found",
                    windows=(30, 90)),
            EventCounter("escalated_patrol_reports", "上报的巡查问题", "patrol reports escalated",
                    where=Condition("escalated", "==", True), windows=(30, 90)),
            EventCounter("{code}_reports", "巡查发现{code}", "{code} reported on patrol", by="issue_kinds", by_list=True,
                    codes=codes(PATROL_ISSUE_KINDS, ISSUE_WORDS), windows=(30, 90), open_windows=(90,)),
        ),
        # coverage: how often each grid cell is walked, the measure of grid management (rounds per cell per week)
        ratios=tuple(Ratio(f"patrols_per_grid_cell_week_{w}d", f"patrols_{w}d", "grid_cells", group="patrol_coverage",
                           unit="ratio", zh=f"近{w}天每个网格每周巡查 {{value}} 次",
                           en=f"{{value}} patrol rounds per grid cell per week in the last {w} days", scale=7 / w)
                     for w in (30, 90)),
    ),
    EventSource(
        name="incidents",
        table="incidents",
        time="occurred_at",
        group="incident_history",
        counters=(
            EventCounter("incidents", "重大事件", "incidents", windows=windows, decays=(30, 90, 365),
                    recency=("incident", "重大事件", "incident"), lag_weeks=LAG_WEEKS, long_memory=True),
            EventCounter("{code}_incidents", "{code}", "{code}", by="kind", codes=codes(INCIDENT_KINDS, INCIDENT_WORDS),
                    windows=(90, 365)),
            EventCounter("severe_incidents", "较大以上事件", "severe incidents (severity 3–4)",
                    where=Condition("severity", ">=", 3), windows=(90, 365)),
            EventCounter("project_linked_incidents", "涉项目事件", "project-linked incidents", where=PROJECT_LINKED,
                    windows=(365,), group="land_and_projects"),
        ),
        spill=("incidents_365d", "incidents_decay_90d"),
        ratios=(trend("incidents", "重大事件", "incidents"),),
    ),
)  # fmt: skip




def project_sources() -> tuple[EventSource, ...]:
    """Events linked to a project (``project_id``), for project entities."""
    return (
    EventSource(
        name="linked_disputes",
        table="disputes",
        time="reported_at",
        entity="project_id",
        group="land_and_projects",
        closure=DISPUTE_CLOSURE,
        counters=(
            EventCounter("linked_disputes", "项目相关纠纷", "project disputes", windows=(30, 90, 365),
                    open_windows=(90, 365), decays=(30,)),
            EventCounter("linked_{code}_disputes", "项目相关{code}纠纷", "project {code} disputes", by="category",
                    codes=codes(DISPUTE_CATEGORIES, CATEGORY_WORDS), windows=(90,)),
        ),
        ratios=(trend("linked_disputes", "项目相关纠纷", "project disputes"),),
    ),
    _mediation_sources("linked", "project_id"),
    EventSource(
        name="linked_petitions",
        table="petitions",
        time="filed_at",
        entity="project_id",
        group="petitions",
        closure=PETITION_CLOSURE,
        repeat=RepeatKeys(key="petitioner_key", windows=(90, 365), stem="linked_repeat_petitioners",
                          zh="项目相关重复信访人", en="repeat petitioners about the project"),
        counters=(
            EventCounter("linked_petitions", "项目相关信访", "project petitions", windows=(30, 90, 365),
                    open_windows=(90,), decays=(30,)),
            EventCounter("linked_collective_petitions", "项目相关集体访", "project collective petitions",
                    where=COLLECTIVE, windows=(90, 365)),
            EventCounter("linked_leapfrog_petitions", "项目相关越级访", "project leapfrog petitions",
                    where=LEAPFROG, windows=(90, 365)),
        ),
    ),
    EventSource(
        name="linked_incidents",
        table="incidents",
        time="occurred_at",
        entity="project_id",
        group="incident_history",
        counters=(
            EventCounter("linked_incidents", "项目相关重大事件", "project incidents", windows=(90, 365), decays=(90,),
                    recency=("linked_incident", "项目相关重大事件", "project incident"), lag_weeks=LAG_WEEKS,
                    long_memory=True),
        ),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class EntityKind:
    """What a row of a feature table is about: a village, a project, a town, a grid cell.

    The distinct values of ``table.id`` are the entities. With ``via`` the kind groups places:
    ``via`` is a column of ``table`` that events name (``village_id``), and an event counts for
    the entity on that row — a town's villages (``EntityKind("town", "regions", "town_id",
    via="village_id")``).
    """

    name: str
    table: str
    id: str
    via: str | None = None

    @property
    def event_key(self) -> str:
        """The column of the event tables that names this kind's entities (directly or via)."""
        return self.via or self.id


VILLAGE = EntityKind("village", "regions", "village_id")
PROJECT = EntityKind("project", "projects", "project_id")


@dataclass(frozen=True)
class Catalogue:
    """The entity kinds of a city and every event source, each keyed by its entity column."""

    entities: tuple[EntityKind, ...]
    sources: tuple[EventSource, ...]

    def entity(self, name: str) -> EntityKind:
        for kind in self.entities:
            if kind.name == name:
                return kind
        raise ConfigurationError(f"no entity kind {name!r}; the kinds are {', '.join(k.name for k in self.entities)}")

    def sources_of(self, kind: EntityKind) -> tuple[EventSource, ...]:
        """The sources that count events for ``kind`` (re-keyed to ``kind.id`` for a grouping kind)."""
        keyed = tuple(s for s in self.sources if s.entity == kind.event_key)
        return keyed if kind.via is None else tuple(replace(s, entity=kind.id) for s in keyed)

    def as_json(self) -> str:
        """The catalogue as JSON, as recorded beside the feature tables."""
        return json.dumps(_ADAPTER.dump_python(self, mode="json"), ensure_ascii=False, indent=1)

    @classmethod
    def from_data(cls, data: object) -> Catalogue:
        """A catalogue from parsed JSON or YAML (what ``as_json`` writes)."""
        try:
            return _ADAPTER.validate_python(data)
        except ValidationError as err:
            raise ConfigurationError(f"the event-source catalogue is not valid: {err}") from err


def default_catalogue(windows: tuple[int, ...] = WINDOWS_DAYS, decays: tuple[int, ...] = DECAY_DAYS) -> Catalogue:
    """DESIGN.md's entity kinds and sources, with the main counts' windows and decay times (days)."""
    return Catalogue(entities=(VILLAGE, PROJECT), sources=(*village_sources(windows, decays), *project_sources()))


_ADAPTER = TypeAdapter(Catalogue)
