"""Interventions as data: what the committee can send, what it costs, and which features it changes.

The catalogue is configuration (defaults below, a YAML file to override them) shared by the two
sides of prevention: the planner reads ``features`` — how an action changes the entity's
actionable features, for the scorer's what-if — and the simulator reads ``mechanism`` — what
the action physically is (so many mediators, so many patrol hours), applied to the true state.
A plan (``plan.json``) is a list of actions in these kinds; ``Plan`` is its contract.

Units: an action's ``amount`` is counted in its kind's ``unit`` (teams, advisers, hours, …) and
draws ``amount × unit_cost`` from the budget its kind names; it lasts ``weeks`` weeks from the
plan's snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fengqiao.errors import ConfigurationError

PlanEffect = Literal["dose", "pooled", "entity"]
"""How the planner turns the model's what-ifs into benefits (``models.prevention.planner``):
dose, pooled or entity; the first is the default."""

Lever = Literal["mediation_team", "legal_adviser", "patrol_hours", "hearing", "compensation"]
"""The physical levers the simulator knows; a catalogue may rename costs and features, not add levers."""


class FeatureChange(BaseModel):
    """How one action changes one feature of the entity it is sent to (or of the villages a
    project touches, in ``linked_village_features``).

    ``how``: ``add`` adds ``value × amount``; ``add_per_week`` adds ``value × amount / weeks``;
    ``add_per_10k_people`` adds ``value × amount × 10,000 / population``; ``set`` sets
    ``value``; ``at_most`` / ``at_least`` clip the feature to ``value``. ``per_feature`` divides
    an ``add`` or ``add_per_week`` change by the entity's own value of another feature: patrol
    hours spread over a village's grid cells raise its rounds per cell by less where it has more
    cells.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str
    how: Literal["add", "add_per_week", "add_per_10k_people", "set", "at_most", "at_least"]
    value: float
    per_feature: str | None = Field(
        None, description="A feature of the same row the change is divided by (grid_cells: a change per grid cell); "
        "the changed value is unknown where that feature is missing, zero or not one of the model's."
    )

    @model_validator(mode="after")
    def _per_feature_divides_an_addition(self) -> FeatureChange:
        if self.per_feature is not None and self.how not in ("add", "add_per_week"):
            raise ValueError(f"per_feature divides an add or add_per_week change, not {self.how}")
        return self


class InterventionKind(BaseModel):
    """One kind of action the committee can take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lever: Lever
    entity: Literal["village", "project"]
    budget: str = Field(description="Name of the budget the action draws on (--budget NAME=…).")
    unit: str = Field(description="What one unit of ``amount`` is, in words (team, adviser, hour).")
    unit_cost: float = Field(1.0, gt=0, description="Budget drawn per unit of amount.")
    default_amount: float = Field(1.0, gt=0)
    default_weeks: int = Field(8, ge=1)
    mechanism: float = Field(
        description="What one unit physically is, for the simulator: mediators per team (mediation_team), "
        "hours of patrol per hour bought (patrol_hours), the compensation ratio paid (compensation), "
        "1 for an adviser assigned or a hearing held."
    )
    features: tuple[FeatureChange, ...] = ()
    linked_village_features: tuple[FeatureChange, ...] = Field(
        (), description="Changes to each village a project touches (project kinds only)."
    )
    recorded: bool = Field(
        False, description="Whether the city's data records the action once taken, so that the features already "
        "show it (patrol hours: the patrol records count the rounds). An unrecorded action still running — a "
        "temporary mediation team or adviser, which changes no register — is applied to its entity's row "
        "before the planner scores, when its plan is given as in force."
    )
    zh: str = Field(description="The action in Chinese, with {amount} and {weeks}.")
    en: str = Field(description="The action in English, with {amount} and {weeks}.")


HOURS_PER_PATROL_ROUND = 1.5
"""A grid worker's round of one cell takes about this long; the patrol features count rounds."""

DEFAULT_KINDS: dict[str, InterventionKind] = {
    "mediation_team": InterventionKind(
        lever="mediation_team", entity="village", budget="mediation_team", unit="team", default_weeks=8,
        mechanism=3.0,
        features=(FeatureChange(feature="mediators", how="add", value=3.0),
                  FeatureChange(feature="mediators_per_10k_people", how="add_per_10k_people", value=3.0)),
        zh="派驻调解组 {amount:g} 个，{weeks} 周", en="send {amount:g} mediation team(s) for {weeks} weeks",
    ),
    "legal_adviser": InterventionKind(
        lever="legal_adviser", entity="village", budget="legal_adviser", unit="adviser", default_weeks=26,
        mechanism=1.0, features=(FeatureChange(feature="legal_adviser", how="set", value=1.0),),
        zh="配备法律顾问，{weeks} 周", en="assign a legal adviser for {weeks} weeks",
    ),
    "patrol_hours": InterventionKind(
        lever="patrol_hours", entity="village", budget="patrol_hours", unit="hour", default_amount=40.0,
        default_weeks=4, mechanism=1.0, recorded=True,
        features=(
            FeatureChange(feature="patrols_7d", how="add_per_week", value=1.0 / HOURS_PER_PATROL_ROUND),
            FeatureChange(feature="patrols_30d", how="add_per_week", value=30.0 / 7.0 / HOURS_PER_PATROL_ROUND),
            FeatureChange(feature="patrols_90d", how="add_per_week", value=90.0 / 7.0 / HOURS_PER_PATROL_ROUND),
            FeatureChange(feature="days_since_last_patrol", how="at_most", value=3.5),
            *(FeatureChange(feature=f"patrols_per_grid_cell_week_{w}d", how="add_per_week",
                            value=1.0 / HOURS_PER_PATROL_ROUND, per_feature="grid_cells") for w in (30, 90)),
        ),
        zh="增加巡查 {amount:g} 小时（{weeks} 周内）", en="add {amount:g} patrol hours over {weeks} weeks",
    ),
    "hearing": InterventionKind(
        lever="hearing", entity="project", budget="hearing", unit="hearing", default_weeks=4, mechanism=1.0,
        features=(FeatureChange(feature="hearing_held", how="set", value=1.0),),
        linked_village_features=(FeatureChange(feature="active_projects_without_hearing", how="add", value=-1.0),),
        zh="召开听证会", en="hold a public hearing",
    ),
    "compensation": InterventionKind(
        lever="compensation", entity="project", budget="compensation", unit="project", default_weeks=26,
        mechanism=1.0,
        features=(FeatureChange(feature="compensation_ratio", how="at_least", value=1.0),
                  FeatureChange(feature="compensation_gap", how="set", value=0.0)),
        zh="补偿提高到区域标准", en="raise compensation to the regional standard",
    ),
}


class Catalogue(BaseModel):
    """The kinds of action, by name (the ``kind`` of a plan's actions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: dict[str, InterventionKind] = Field(default_factory=lambda: dict(DEFAULT_KINDS))

    def kind(self, name: str) -> InterventionKind:
        """The kind called ``name``; a ConfigurationError listing the known ones otherwise."""
        if name not in self.kinds:
            raise ConfigurationError(f"unknown intervention kind {name!r}; known: {', '.join(sorted(self.kinds))}")
        return self.kinds[name]

    def budgets(self) -> list[str]:
        """The budget names the kinds draw on."""
        return sorted({k.budget for k in self.kinds.values()})


def load_catalogue(path: Path | None) -> Catalogue:
    """The catalogue in the YAML file ``path`` (a mapping ``kinds: {name: {...}}``), or the defaults."""
    if path is None:
        return Catalogue()
    try:
        return Catalogue.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    except OSError as exc:
        raise ConfigurationError(f"cannot read the interventions file {path}: {exc.strerror}") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigurationError(f"{path}: not a valid interventions catalogue: {exc}") from exc


class PlanAction(BaseModel):
    """One action of a plan. Extra keys (the planner's predicted drop, reasons) are kept and ignored."""

    model_config = ConfigDict(extra="allow")

    kind: str
    entity: Literal["village", "project"]
    id: str = Field(min_length=1)
    weeks: int | None = Field(None, ge=1, description="Default: the kind's default_weeks.")
    amount: float | None = Field(None, gt=0, description="In the kind's unit; default: its default_amount.")


class Plan(BaseModel):
    """A plan file: the snapshot it starts from, its horizon, and its actions."""

    model_config = ConfigDict(extra="allow")

    snapshot: dt.date
    horizon_days: int = Field(ge=1)
    actions: list[PlanAction] = Field(default_factory=list)

    @field_validator("snapshot")
    @classmethod
    def _monday(cls, snapshot: dt.date) -> dt.date:
        if snapshot.weekday() != 0:
            raise ValueError("must be a Monday (a snapshot of the weekly scores)")
        return snapshot


def resolved(action: PlanAction, catalogue: Catalogue) -> tuple[InterventionKind, float, int]:
    """The action's kind, amount and weeks (defaults filled in); a ConfigurationError when the
    kind is unknown or is sent to the wrong entity."""
    kind = catalogue.kind(action.kind)
    if kind.entity != action.entity:
        raise ConfigurationError(f"a {action.kind} action goes to a {kind.entity}, not a {action.entity}")
    amount = kind.default_amount if action.amount is None else action.amount
    weeks = kind.default_weeks if action.weeks is None else action.weeks
    return kind, amount, weeks


def plan_paths(paths: Sequence[Path]) -> list[Path]:
    """The plan files named: each path a plan file, or a folder whose ``*.json`` files are all
    plans, by name (the committee's folder of adopted plans). A path that does not exist is a
    ConfigurationError."""
    out = []
    for path in map(Path, paths):
        if not path.exists():
            raise ConfigurationError(f"{path}: no such plan file or folder")
        out += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return out


def read_plan(path: Path) -> Plan:
    """The plan in the JSON file ``path``; a ConfigurationError naming the file and field otherwise."""
    try:
        return Plan.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"cannot read the plan {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"{path}: not a valid plan: {where}") from exc
