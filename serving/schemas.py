"""The API's request and response bodies: typed, so that the OpenAPI document is complete.

Probabilities are calibrated probabilities of an incident within the model's horizon (days,
``/v1/models``); ``log_odds`` are contributions to the raw score (natural log-odds). A value
that is unknown (a feature the city does not record, no county median) is ``null``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fengqiao.interventions import Plan, PlanEffect

Entity = Literal["village", "project"]
Level = Literal["red", "orange", "yellow", "blue"]
EntityId = Annotated[str, Field(pattern=r"^[0-9A-Za-z_.-]{1,64}$", description="A village or project id.")]
Probability = Annotated[float, Field(ge=0, le=1)]
FeatureName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Model):
    code: str = Field(description="Machine-readable: unauthorized, forbidden, invalid_request, rate_limited, …")
    message: str = Field(description="What was wrong and what to do; never a submitted value.")
    field: str | None = Field(description="The request field at fault (query.limit, body.features.x), if one.")


class ErrorResponse(Model):
    error: ErrorDetail


class Health(Model):
    status: Literal["ok"]


class Readiness(Model):
    ready: bool
    models: dict[str, str] = Field(description="Live model version per entity kind.")
    snapshots: dict[str, date] = Field(description="Latest feature snapshot per entity kind.")


class ModelInfo(Model):
    entity: Entity
    version: str = Field(description="Registry version of the live model (or 'file' for a bundle folder).")
    source: str = Field(description="Where it was loaded from: an MLflow model URI or a bundle folder.")
    trained_at: str | None
    mlflow_run_id: str | None
    horizon_days: int = Field(description="Probabilities are of an incident within this many days.")
    fingerprint: str | None = Field(description="Fingerprint of the training data.")
    metrics: dict[str, float | None] = Field(description="Backtest metrics recorded with the model.")
    snapshot: date = Field(description="Latest feature snapshot scored by this model.")
    loaded_at: datetime
    n_features: int
    last_drift_check: datetime | None = Field(
        description="When a refresh last compared the latest snapshot with the model's training data (none yet: null).")
    drift_warnings: list[str] = Field(description="That check's warnings: features whose distribution or missing "
                                                  "share moved beyond the configured thresholds, label-rate drift.")


class FeatureInfo(Model):
    name: str
    group: str
    actionable: bool = Field(description="A lever the committee controls (mediators, patrols, hearings, …).")


class ModelDetail(ModelInfo):
    level_thresholds: dict[str, float] = Field(description="Probability at which each level begins.")
    features: list[FeatureInfo]


class ModelList(Model):
    models: list[ModelInfo]


class Reason(Model):
    feature: str
    group: str
    value: float | None = Field(description="The feature's value for this entity.")
    county_median: float | None
    log_odds: float = Field(description="Contribution to the raw score (log-odds).")
    probability_change: float = Field(description="Share of the probability above the base attributed to it.")
    text_zh: str
    text_en: str


class Place(Model):
    """Where an entity is: its id, name, and home county and town (a project's: its first
    affected village's)."""

    id: str
    name: str | None
    county_id: str | None
    county_name: str | None
    town_id: str | None
    town_name: str | None


class RankingItem(Place):
    probability: Probability
    level: Level
    rank: int = Field(ge=1, description="Rank among the entities this token may see (1 = highest risk).")
    change: float | None = Field(description="Probability change since the previous snapshot (null: not scored then).")
    reasons: list[Reason] = Field(description="Up to three features that raise the risk most.")


class Ranking(Model):
    entity: Entity
    snapshot: date
    model_version: str
    total: int = Field(description="Entities matching the filters (all pages).")
    limit: int
    offset: int
    items: list[RankingItem]


class FeatureContribution(Model):
    feature: str
    value: float | None
    county_median: float | None
    log_odds: float
    actionable: bool


class GroupExplanation(Model):
    group: str
    title_zh: str
    title_en: str
    log_odds: float
    probability_change: float
    features: list[FeatureContribution] = Field(description="The group's features by |log_odds|, largest first.")


class Explanation(Model):
    raw_score: float = Field(description="Model output before calibration (log-odds).")
    probability: Probability
    level: Level
    base_probability: Probability = Field(description="Probability at the model's bias alone (an average entity).")
    groups: list[GroupExplanation] = Field(
        description="Factor groups by |log_odds|; base_probability plus their probability changes is the probability.")
    reasons: list[Reason]


class HistoryPoint(Model):
    snapshot: date
    probability: Probability
    level: Level
    model_version: str
    scored_at: datetime


class EntityDetail(Place):
    entity: Entity
    snapshot: date
    model_version: str
    probability: Probability
    level: Level
    rank: int = Field(ge=1, description="Rank among the entities this token may see (1 = highest risk).")
    change: float | None
    explanation: Explanation
    history: list[HistoryPoint] = Field(description="Published scores (batch scoring), oldest first.")


class VillageDetail(EntityDetail):
    entity: Literal["village"]
    kind: str | None = Field(description="village, community or cell.")


class ProjectDetail(EntityDetail):
    entity: Literal["project"]
    kind: str | None = Field(description="land_acquisition, demolition_relocation, infrastructure, …")
    counties: list[str] = Field(description="Counties of the affected villages this token may see.")
    villages: list[str] = Field(description="Affected villages this token may see.")


class WhatIfRequest(Model):
    id: EntityId | None = Field(
        None, description="Start from this entity's current features; without it every feature not given is missing.")
    county: str | None = Field(
        None, max_length=32, description="Without id: the county whose medians the reasons compare with.")
    features: dict[FeatureName, Annotated[float, Field(allow_inf_nan=False)] | None] = Field(
        default_factory=dict, max_length=500, description="Feature values to use (null: missing).")


class WhatIfResult(Model):
    entity: Entity
    id: str | None
    model_version: str
    snapshot: date | None = Field(description="The snapshot of the entity's current features, with id.")
    probability: Probability
    level: Level
    current_probability: Probability | None = Field(description="The entity's current probability, with id.")
    change: float | None = Field(description="probability − current_probability.")
    explanation: Explanation
    overridden: list[str] = Field(description="Features given in the request.")
    missing: int = Field(description="Features scored as missing.")
    model_ms: float = Field(description="Time spent in the model: scoring and explaining (milliseconds).")


class AlertItem(Place):
    entity: Entity
    entered_on: date = Field(description="Snapshot at which the entity entered orange or red.")
    level: Level = Field(description="The level it entered.")
    probability: Probability
    current_level: Level
    current_probability: Probability


class Alerts(Model):
    since: date
    from_snapshot: date | None = Field(
        description="First snapshot considered (the service holds a window of snapshots); null: none after since.")
    to_snapshot: date
    total: int
    limit: int
    offset: int
    items: list[AlertItem]


class ReloadedModel(Model):
    entity: Entity
    previous_version: str
    version: str
    snapshot: date


class ReloadResult(Model):
    models: list[ReloadedModel]
    seconds: float


class PlanRequest(Model):
    budgets: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
                  Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict, max_length=32,
        description="Budgets by name in each kind's units (mediation_team=20 teams, patrol_hours=500 hours); "
                    "each replaces the service's default, 0 sends none.")
    scope: str | None = Field(None, pattern=r"^(city|county:[0-9A-Za-z_-]{1,32})$",
                              description="city or county:<id>; default the token's county (city for city and admin).")
    in_force: list[Plan] = Field(
        default_factory=list, max_length=104,
        description="Earlier plans (plan.json's format, e.g. plans this route returned) whose actions are running: "
                    "those the city's data does not record (mediation teams, advisers, hearings, compensation) are "
                    "applied to their entities' features before planning, so a village is not sent a second "
                    "adviser.")


class PlannedAction(Model):
    kind: str = Field(description="The intervention kind (mediation_team, legal_adviser, patrol_hours, hearing, …).")
    entity: Entity
    id: str
    weeks: int
    amount: float = Field(description="In the kind's unit (teams, advisers, hours, hearings, projects).")
    county: str | None = Field(description="The entity's (home) county.")
    budget: str
    cost: float = Field(description="Drawn from the budget: amount × unit cost.")
    probability_before: Probability
    probability_after: Probability = Field(
        description="With all the plan's actions on this entity, as the plan's effect reading values them.")
    probability_what_if: Probability = Field(
        description="The model's own what-if: this entity's features changed by all its actions, scored.")
    probability_drop: float
    expected_incidents_averted: float = Field(
        description="Of the entity, by all its actions together (repeated on each of them).")
    together_with: list[str] = Field(description="The other kinds the plan sends to the same entity.")
    basis: Literal["model", "risk"] = Field(
        description="model: chosen for its predicted effect; risk: a budget's remainder, placed by risk rank.")
    reasons_zh: list[str]
    reasons_en: list[str]


class PlanInForce(Model):
    plans: int = Field(description="Plans given as in force.")
    applied: int = Field(description="Their actions running at the snapshot, applied to the features.")
    recorded: int = Field(description="Running, of a kind the city's data records (already in the features).")
    not_running: int = Field(description="Ended before the snapshot, or beginning after it.")
    unknown_entity: int = Field(description="On an entity the snapshot's rows lack.")


class PlanSolver(Model):
    method: str
    candidates: int = Field(description="(entity, option) pairs scored by the model's what-if.")
    offered: int = Field(description="Candidates offered to the solver: with a predicted benefit and not dominated.")
    optimality_gap: float = Field(description="Relative gap to the solver's bound on the best plan (0: optimal).")
    bound: float = Field(description="The solver's bound on the incidents averted by the best plan.")
    seconds: float


class PlanResult(Model):
    snapshot: date
    horizon_days: int
    scope: str
    expected_incidents_averted: float = Field(description="Over the horizon, each entity counted once.")
    budgets: dict[str, float]
    budget_used: dict[str, float]
    model_versions: dict[str, str]
    effect: PlanEffect = Field(
        description="How what-ifs became benefits: dose (each option's city-wide relative effect, varying with how "
                    "much it changes the entity's features, applied to the entity's risk), pooled (one city-wide "
                    "relative effect per option) or entity (each entity's own what-if).")
    in_force: PlanInForce
    solver: PlanSolver
    actions: list[PlannedAction]
    note: str | None = Field(None, description="Why the plan is empty, when it is.")
