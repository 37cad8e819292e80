"""The input-table contracts of DESIGN.md: names, column types, code lists and roles.

One declaration serves the simulator (what it writes), ingest (what it validates and how it
treats personal data) and the feature engine (which columns carry times and entities).
A platform export may carry *extra* personal columns (names, free text) that are declared
here with a role so that ingest knows to drop or redact them; the warehouse keeps only the
contract columns, pseudonymised and redacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TIMEZONE = "Asia/Shanghai"
"""The default city time zone (Hanzhong's); a city sets its own with ``FENGQIAO_TIMEZONE``."""

SECONDS_PER_DAY = 86_400
"""The one day length of the project: timestamps are compared in exact seconds."""

LIST_SEPARATOR = "|"
"""Joins the items of an ``id_list`` or ``category_list`` cell (``610722104201|610722104202``)."""

COLLECTIVE_MIN_PARTICIPANTS = 5
"""集体访: a petition (or incident) of at least this many people is collective."""

LEAPFROG_LEVELS = ("city", "province", "national")
"""越级访: petitions received above the county, the level that should handle a village's matter."""

REGION_KINDS = ("village", "community")
PROJECT_KINDS = (
    "land_acquisition",
    "demolition_relocation",
    "infrastructure",
    "industrial_park",
    "environmental_facility",
    "hydropower",
    "mining",
    "urban_renewal",
)
ASSESSMENT_LEVELS = ("low", "medium", "high", "none")
DISPUTE_CATEGORIES = (
    "land",
    "neighbour",
    "family",
    "labour_wages",
    "property_management",
    "medical",
    "traffic",
    "environment",
    "demolition_compensation",
    "other",
)
DISPUTE_SOURCES = ("grid", "walk_in", "hotline", "referral")
DISPUTE_OUTCOMES = ("resolved", "partial", "failed", "to_court", "pending")
MEDIATOR_KINDS = ("village_committee", "professional_committee", "lawyer", "township_office")
PETITION_CHANNELS = ("visit", "letter", "online", "hotline_12345")
PETITION_LEVELS = ("town", "county", "city", "province", "national")
PATROL_ISSUE_KINDS = ("dispute_lead", "safety_hazard", "environment", "public_order", "infrastructure")
INCIDENT_KINDS = (
    "collective_petition",
    "leapfrog_petition",
    "mass_gathering",
    "blockade",
    "violent_conflict",
)

ColumnKind = Literal[
    "id", "str", "category", "int", "float", "bool", "timestamp", "id_list", "category_list", "geometry"
]
"""``geometry``: a polygon as text, WKT or GeoJSON in sources, WKT in the warehouse."""
ColumnRole = Literal["data", "identifier", "name", "free_text"]
"""``identifier``: pseudonymised by keyed HMAC at ingest; ``name``: dropped at ingest;
``free_text``: ID-card and phone numbers redacted at ingest."""


@dataclass(frozen=True)
class Column:
    """One column of an input table.

    ``required`` columns must exist in every source of the table: nothing works without them
    (an id, the entity, the event time; for regions also the name, county and coordinates).
    Every other column is optional: a source may lack it, and the features that need it are
    left out — it is never filled with invented values. ``nullable`` is about cells: whether
    a column that exists may have empty ones.

    ``codes`` lists the allowed values of a category column (or of each item of a
    ``category_list``, ``|``-joined in files). ``references`` names ``table.column`` that
    each value (or each item of an ``id_list``) must exist in. ``in_warehouse`` is False for
    columns that never reach the warehouse (names). ``planned`` marks a scheduled date (a
    project's next stage) that may lie after the export date; other timestamps may not.
    """

    name: str
    kind: ColumnKind
    nullable: bool = False
    required: bool = False
    codes: tuple[str, ...] = ()
    references: str | None = None
    role: ColumnRole = "data"
    min_value: float | None = None
    max_value: float | None = None
    planned: bool = False

    @property
    def in_warehouse(self) -> bool:
        return self.role != "name"


@dataclass(frozen=True)
class TableContract:
    """An input table: its key, columns, the time order its timestamps must respect."""

    name: str
    key: str
    columns: tuple[Column, ...]
    required: bool = False
    event_time: str | None = None
    entity: str = "village_id"
    time_order: tuple[tuple[str, str], ...] = field(default=())
    """Pairs (earlier, later): ``later`` may be null but never before ``earlier``."""

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def warehouse_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.in_warehouse]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def timestamp_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "timestamp"]


VILLAGE_REF = "regions.village_id"
PROJECT_REF = "projects.project_id"

REGIONS = TableContract(
    name="regions",
    key="village_id",
    required=True,
    columns=(
        Column("village_id", "id", required=True),
        Column("village_name", "str", required=True),
        Column("town_id", "id"),
        Column("town_name", "str"),
        Column("county_id", "id", required=True),
        Column("county_name", "str"),
        Column("kind", "category", codes=REGION_KINDS),
        Column("lat", "float", min_value=-90, max_value=90, required=True),
        Column("lon", "float", min_value=-180, max_value=180, required=True),
        Column("population", "int", min_value=0),
        Column("households", "int", min_value=0),
        Column("mediators", "int", min_value=0),
        Column("legal_adviser", "bool"),
        Column("grid_cells", "int", min_value=0),
        Column("boundary", "geometry", nullable=True),
    ),
)

PROJECTS = TableContract(
    name="projects",
    key="project_id",
    entity="project_id",
    event_time="announced_at",
    columns=(
        Column("project_id", "id", required=True),
        Column("name", "str"),
        Column("kind", "category", codes=PROJECT_KINDS),
        Column("village_ids", "id_list", references=VILLAGE_REF),
        Column("announced_at", "timestamp", required=True),
        Column("acquisition_start", "timestamp", planned=True),
        Column("construction_start", "timestamp", planned=True),
        Column("completed_at", "timestamp", nullable=True),
        Column("investment_cny", "float", min_value=0),
        Column("affected_households", "int", min_value=0),
        Column("compensation_ratio", "float", min_value=0, max_value=5),
        Column("hearing_held", "bool"),
        Column("assessment_level", "category", codes=ASSESSMENT_LEVELS),
    ),
    time_order=(
        ("announced_at", "acquisition_start"),
        ("acquisition_start", "construction_start"),
        ("construction_start", "completed_at"),
    ),
)

DISPUTES = TableContract(
    name="disputes",
    key="dispute_id",
    event_time="reported_at",
    columns=(
        Column("dispute_id", "id", required=True),
        Column("village_id", "id", references=VILLAGE_REF, required=True),
        Column("reported_at", "timestamp", required=True),
        Column("category", "category", codes=DISPUTE_CATEGORIES),
        Column("parties", "int", min_value=2),
        Column("project_id", "id", nullable=True, references=PROJECT_REF),
        Column("source", "category", codes=DISPUTE_SOURCES),
        Column("mediated_at", "timestamp", nullable=True),
        Column("outcome", "category", codes=DISPUTE_OUTCOMES),
        Column("mediator_kind", "category", codes=MEDIATOR_KINDS),
        Column("summary", "str", nullable=True, role="free_text"),
    ),
    time_order=(("reported_at", "mediated_at"),),
)

PETITIONS = TableContract(
    name="petitions",
    key="petition_id",
    event_time="filed_at",
    columns=(
        Column("petition_id", "id", required=True),
        Column("village_id", "id", references=VILLAGE_REF, required=True),
        Column("filed_at", "timestamp", required=True),
        Column("channel", "category", codes=PETITION_CHANNELS),
        Column("level", "category", codes=PETITION_LEVELS),
        Column("participants", "int", min_value=1),
        Column("petitioner_key", "id", role="identifier"),
        Column("petitioner_name", "str", nullable=True, role="name"),
        Column("topic", "category", codes=DISPUTE_CATEGORIES),
        Column("project_id", "id", nullable=True, references=PROJECT_REF),
        Column("dispute_id", "id", nullable=True, references="disputes.dispute_id"),
        Column("closed_at", "timestamp", nullable=True),
        Column("within_limit", "bool"),
        Column("satisfied", "bool", nullable=True),
        Column("summary", "str", nullable=True, role="free_text"),
    ),
    time_order=(("filed_at", "closed_at"),),
)

PATROLS = TableContract(
    name="patrols",
    key="patrol_id",
    event_time="patrolled_at",
    columns=(
        Column("patrol_id", "id", required=True),
        Column("village_id", "id", references=VILLAGE_REF, required=True),
        Column("grid_id", "id"),
        Column("patrolled_at", "timestamp", required=True),
        Column("worker_key", "id", role="identifier"),
        Column("worker_name", "str", nullable=True, role="name"),
        Column("issues_found", "int", min_value=0),
        Column("issue_kinds", "category_list", nullable=True, codes=PATROL_ISSUE_KINDS),
        Column("escalated", "bool"),
        Column("resolved_at", "timestamp", nullable=True),
        Column("notes", "str", nullable=True, role="free_text"),
    ),
    time_order=(("patrolled_at", "resolved_at"),),
)

INCIDENTS = TableContract(
    name="incidents",
    key="incident_id",
    required=True,
    event_time="occurred_at",
    columns=(
        Column("incident_id", "id", required=True),
        Column("village_id", "id", references=VILLAGE_REF, required=True),
        Column("occurred_at", "timestamp", required=True),
        Column("kind", "category", codes=INCIDENT_KINDS),
        Column("participants", "int", min_value=1),
        Column("project_id", "id", nullable=True, references=PROJECT_REF),
        Column("severity", "int", min_value=1, max_value=4),
    ),
)

CONTRACTS: dict[str, TableContract] = {
    c.name: c for c in (REGIONS, PROJECTS, DISPUTES, PETITIONS, PATROLS, INCIDENTS)
}
"""All input tables, in dependency order (a table may reference only earlier ones)."""
