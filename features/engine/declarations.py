"""Event sources declared as data: which table, which time, which entity, what to count.

The engine has one kernel per kind of computation (window counts, open backlogs, decayed
intensities, recency, repeat keys), not one per table. A new source — say hotline calls — is
an ``EventSource`` value handed to ``build_features(..., sources=...)``; its features, reason
texts and registry entries follow from the declaration.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from features.contracts import (
    DISPUTE_CATEGORIES,
    DISPUTE_SOURCES,
    INCIDENT_KINDS,
    LIST_SEPARATOR,
    PATROL_ISSUE_KINDS,
    PETITION_CHANNELS,
    PETITION_LEVELS,
)

_COMPARE = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}

ConditionOp = Literal["in", "not_in", "==", "!=", ">=", ">", "<=", "<", "is_null", "not_null", "contains"]


@dataclass(frozen=True)
class Condition:
    """A per-event test on one column, e.g. ``Condition("participants", ">=", 5)``.

    ``contains`` tests membership in a ``|``-joined list column. Missing values never match
    (except for ``is_null``).
    """

    column: str
    op: ConditionOp
    value: Any = None

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        col = frame[self.column]
        if self.op == "is_null":
            return np.asarray(col.isna())
        if self.op == "not_null":
            return np.asarray(col.notna())
        if self.op in ("in", "not_in"):
            hit = col.isin(list(self.value))
            result = hit if self.op == "in" else ~hit
        elif self.op == "contains":
            sep, item = re.escape(LIST_SEPARATOR), re.escape(str(self.value))
            pattern = f"(?:^|{sep}){item}(?:{sep}|$)"
            result = col.astype("str").str.contains(pattern, regex=True)
        else:
            result = _COMPARE[self.op](col, self.value)
        return np.asarray(pd.Series(result).fillna(False).astype(bool)) & np.asarray(col.notna())


@dataclass(frozen=True)
class Code:
    """One code of a categorical column with its zh/en words for reasons."""

    code: str
    zh: str
    en: str


def codes(values: tuple[str, ...], labels: dict[str, tuple[str, str]]) -> tuple[Code, ...]:
    return tuple(Code(v, *labels[v]) for v in values)


@dataclass(frozen=True)
class Counter:
    """One way of counting a source's events, and which families to build from it.

    ``stem``, ``zh`` and ``en`` name what is counted; with ``by`` (a category column, or a
    ``|``-joined list column with ``by_list``) they hold ``{code}`` and one feature is made per
    code. ``where`` keeps only matching events; ``weight`` sums a column instead of counting.
    Families: ``windows`` (events in the last w days), ``open_windows`` (events of the last
    w days still open at t, see ``EventSource.closure``), ``decays`` (exponentially decayed
    intensity with decay time tau days), ``recency`` (days since the last event: (stem, zh, en)
    of one event, e.g. ("patrol", "巡查", "patrol")).
    """

    stem: str
    zh: str
    en: str
    by: str | None = None
    codes: tuple[Code, ...] = ()
    by_list: bool = False
    where: Condition | None = None
    weight: str | None = None
    windows: tuple[int, ...] = ()
    open_windows: tuple[int, ...] = ()
    decays: tuple[int, ...] = ()
    recency: tuple[str, str, str] | None = None
    group: str | None = None
    code_groups: tuple[tuple[str, str], ...] = ()
    """(code, group) pairs that override the group, e.g. land disputes → land_and_projects."""

    def __post_init__(self) -> None:
        if (self.by is None) != (not self.codes):
            raise ValueError(f"counter {self.stem!r}: give both `by` and `codes`, or neither")
        if self.recency is not None and self.by is not None:
            raise ValueError(f"counter {self.stem!r}: recency is for counters without codes")

    @property
    def n_codes(self) -> int:
        return max(1, len(self.codes))

    def group_of(self, code: Code | None, default: str) -> str:
        if code is not None:
            for c, g in self.code_groups:
                if c == code.code:
                    return g
        return self.group or default

    def words(self, code: Code | None) -> tuple[str, str, str]:
        """(name stem, zh noun, en noun) for one code (or the whole counter)."""
        if code is None:
            return self.stem, self.zh, self.en
        return (
            self.stem.format(code=code.code),
            self.zh.format(code=code.zh),
            self.en.format(code=code.en),
        )

    def columns(self) -> set[str]:
        cols = {c for c in (self.by, self.weight) if c}
        if self.where is not None:
            cols.add(self.where.column)
        return cols


@dataclass(frozen=True)
class Closure:
    """When an event stops being open, as known at the time it was recorded.

    The event is open at t unless ``time`` is before t and (if given) ``when`` holds — e.g.
    a dispute is unresolved until an outcome 'resolved' is recorded at ``mediated_at``.
    """

    time: str
    when: Condition | None = None
    stem: str = "unresolved"
    zh: str = "未化解"
    en: str = "unresolved"
    group: str = "unresolved_backlog"


@dataclass(frozen=True)
class RepeatKeys:
    """Distinct keys (pseudonymised petitioners) with at least ``min_count`` events in a window.

    An aggregate for the place: how many distinct repeat petitioners, never who.
    """

    key: str
    windows: tuple[int, ...]
    min_count: int = 2
    stem: str = "repeat_petitioners"
    zh: str = "重复信访人"
    en: str = "repeat petitioners"
    group: str = "petitions"


@dataclass(frozen=True)
class Ratio:
    """A derived feature ``scale * numerator / denominator`` (NaN where the denominator is 0)."""

    name: str
    numerator: str
    denominator: str
    group: str
    unit: str
    zh: str
    en: str
    scale: float = 1.0


def trend(stem: str, zh: str, en: str) -> Ratio:
    """The 30-day rate of ``stem`` relative to its 365-day rate (1 = as usual)."""
    return Ratio(
        name=f"{stem}_trend",
        numerator=f"{stem}_30d",
        denominator=f"{stem}_365d",
        scale=365 / 30,
        group="trend",
        unit="ratio",
        zh=f"近30天{zh}发生率为全年平均的 {{value}} 倍",
        en=f"{en} in the last 30 days at {{value}}× the yearly rate",
    )


@dataclass(frozen=True)
class EventSource:
    """A table of events for one entity type (``village_id`` or ``project_id`` rows).

    ``name`` keys the source (and prefixes nothing: counter stems name the features).
    ``spill`` lists this source's features to spread over neighbouring villages
    (``nearby_<feature>``); ``ratios`` derives features from its counts.
    """

    name: str
    table: str
    time: str
    counters: tuple[Counter, ...]
    group: str
    entity: str = "village_id"
    closure: Closure | None = None
    repeat: RepeatKeys | None = None
    spill: tuple[str, ...] = ()
    ratios: tuple[Ratio, ...] = field(default=())

    def columns(self) -> set[str]:
        """Every column the source reads."""
        cols = {self.entity, self.time}
        for counter in self.counters:
            cols |= counter.columns()
        if self.closure is not None:
            cols.add(self.closure.time)
            if self.closure.when is not None:
                cols.add(self.closure.when.column)
        if self.repeat is not None:
            cols.add(self.repeat.key)
        return cols


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

ALL_WINDOWS = (7, 30, 90, 365)
DECAYS = (7, 30, 90)
LAND_GROUPS = (("land", "land_and_projects"), ("demolition_compensation", "land_and_projects"))

COLLECTIVE = Condition("participants", ">=", 5)
"""集体访: five or more people petitioning together."""
LEAPFROG = Condition("level", "in", ("city", "province", "national"))
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
            Counter(f"{p}mediations", f"{zh_p}调解结案", f"{en_p}mediations concluded",
                    where=MEDIATION_CONCLUDED, windows=(90, 365)),
            Counter(f"{p}failed_mediations", f"{zh_p}调解失败", f"{en_p}failed mediations",
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


VILLAGE_SOURCES: tuple[EventSource, ...] = (
    EventSource(
        name="disputes",
        table="disputes",
        time="reported_at",
        group="disputes",
        closure=DISPUTE_CLOSURE,
        counters=(
            Counter("disputes", "矛盾纠纷", "disputes", windows=ALL_WINDOWS, open_windows=(30, 90, 365), decays=DECAYS),
            Counter("{code}_disputes", "{code}纠纷", "{code} disputes", by="category",
                    codes=codes(DISPUTE_CATEGORIES, CATEGORY_WORDS), windows=ALL_WINDOWS,
                    open_windows=(30, 365), code_groups=LAND_GROUPS),
            Counter("disputes_via_{code}", "经{code}受理的纠纷", "disputes reported via {code}", by="source",
                    codes=codes(DISPUTE_SOURCES, SOURCE_WORDS), windows=(30, 365)),
            Counter("project_linked_disputes", "涉项目纠纷", "project-linked disputes", where=PROJECT_LINKED,
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
            Counter("petitions", "信访", "petitions", windows=ALL_WINDOWS, open_windows=(30, 90, 365), decays=DECAYS),
            Counter("{code}_petitions", "{code}", "petitions {code}", by="channel",
                    codes=codes(PETITION_CHANNELS, CHANNEL_WORDS), windows=ALL_WINDOWS),
            Counter("petitions_to_{code}", "到{code}信访", "petitions to the {code} level", by="level",
                    codes=codes(PETITION_LEVELS, LEVEL_WORDS), windows=ALL_WINDOWS),
            Counter("petitions_on_{code}", "{code}类信访", "petitions on {code} matters", by="topic",
                    codes=codes(DISPUTE_CATEGORIES, CATEGORY_WORDS), windows=(30, 365), code_groups=LAND_GROUPS),
            Counter("collective_petitions", "集体访", "collective petitions", where=COLLECTIVE,
                    windows=ALL_WINDOWS, decays=(30,)),
            Counter("leapfrog_petitions", "越级访", "leapfrog petitions", where=LEAPFROG,
                    windows=ALL_WINDOWS, decays=(30,)),
            Counter("project_linked_petitions", "涉项目信访", "project-linked petitions", where=PROJECT_LINKED,
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
            Counter("closed_petitions", "办结信访", "petitions closed", windows=(90, 365)),
            Counter("unsatisfied_closed_petitions", "不满意的办结信访", "petitions closed unsatisfied",
                    where=Condition("satisfied", "==", False), windows=(90, 365)),
            Counter("late_closed_petitions", "超期办结信访", "petitions closed late",
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
            Counter("patrols", "网格巡查", "grid patrols", windows=(7, 30, 90), recency=("patrol", "巡查", "patrol")),
            Counter("patrols_with_issues", "发现问题的巡查", "patrols that found issues",
                    where=Condition("issues_found", ">", 0), windows=(30, 90), open_windows=(30, 365)),
            Counter("patrol_issues_found", "巡查发现问题", "issues found on patrol", weight="issues_found",
                    windows=(30, 90)),
            Counter("escalated_patrol_reports", "上报的巡查问题", "patrol reports escalated",
                    where=Condition("escalated", "==", True), windows=(30, 90)),
            Counter("{code}_reports", "巡查发现{code}", "{code} reported on patrol", by="issue_kinds", by_list=True,
                    codes=codes(PATROL_ISSUE_KINDS, ISSUE_WORDS), windows=(30, 90), open_windows=(90,)),
        ),
    ),
    EventSource(
        name="incidents",
        table="incidents",
        time="occurred_at",
        group="incident_history",
        counters=(
            Counter("incidents", "重大事件", "incidents", windows=ALL_WINDOWS, decays=(30, 90, 365),
                    recency=("incident", "重大事件", "incident")),
            Counter("{code}_incidents", "{code}", "{code}", by="kind", codes=codes(INCIDENT_KINDS, INCIDENT_WORDS),
                    windows=(90, 365)),
            Counter("severe_incidents", "较大以上事件", "severe incidents (severity 3–4)",
                    where=Condition("severity", ">=", 3), windows=(90, 365)),
            Counter("project_linked_incidents", "涉项目事件", "project-linked incidents", where=PROJECT_LINKED,
                    windows=(365,), group="land_and_projects"),
        ),
        spill=("incidents_365d", "incidents_decay_90d"),
        ratios=(trend("incidents", "重大事件", "incidents"),),
    ),
)  # fmt: skip
"""The village sources of DESIGN.md, in the order their features appear."""

PROJECT_SOURCES: tuple[EventSource, ...] = (
    EventSource(
        name="linked_disputes",
        table="disputes",
        time="reported_at",
        entity="project_id",
        group="land_and_projects",
        closure=DISPUTE_CLOSURE,
        counters=(
            Counter("linked_disputes", "项目相关纠纷", "project disputes", windows=(30, 90, 365),
                    open_windows=(90, 365), decays=(30,)),
            Counter("linked_{code}_disputes", "项目相关{code}纠纷", "project {code} disputes", by="category",
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
            Counter("linked_petitions", "项目相关信访", "project petitions", windows=(30, 90, 365),
                    open_windows=(90,), decays=(30,)),
            Counter("linked_collective_petitions", "项目相关集体访", "project collective petitions",
                    where=COLLECTIVE, windows=(90, 365)),
            Counter("linked_leapfrog_petitions", "项目相关越级访", "project leapfrog petitions",
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
            Counter("linked_incidents", "项目相关重大事件", "project incidents", windows=(90, 365), decays=(90,),
                    recency=("linked_incident", "项目相关重大事件", "project incident")),
        ),
    ),
)  # fmt: skip
"""Events linked to a project (``project_id``), for project entities."""

DEFAULT_SOURCES = {"village": VILLAGE_SOURCES, "project": PROJECT_SOURCES}
