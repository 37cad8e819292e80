"""The one configuration object, read from the environment (prefix ``FENGQIAO_``).

Only entry points (CLI, flows, the app factory) build a ``Settings``; library functions
take the paths and numbers they need as arguments.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import PlanEffect


def known_timezone(zone: str) -> str:
    """``zone`` if it names an IANA time zone (Asia/Shanghai, Europe/Berlin); else ValueError."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{zone!r} is not an IANA time zone such as Asia/Shanghai or Europe/Berlin") from exc
    return zone


class Settings(BaseSettings):
    """Where data lives and the few numbers every stage must agree on."""

    model_config = SettingsConfigDict(env_prefix="FENGQIAO_", env_file=".env", extra="ignore")

    data_root: Path = Field(Path("var"), description="Root of warehouse/, raw/, mlflow/ and secrets/.")
    timezone: str = Field(
        "Asia/Shanghai",
        description="The city's time zone: naive input times, snapshots (local Monday midnight), months, "
        "calendars and output times.",
    )
    pseudonym_key: SecretStr | None = Field(
        None, description="HMAC key for pseudonymising personal identifiers; else read from pseudonym_key_file."
    )
    pseudonym_key_file: Path | None = Field(
        None, description="File holding the HMAC key (default: <data_root>/secrets/pseudonym.key)."
    )
    snapshot_every_days: int = Field(7, ge=1, description="Days between snapshots (weekly: Mondays).")
    horizon_days: int = Field(30, ge=1, description="Label horizon: incident within this many days after t.")
    max_shrink_share: float = Field(
        0.5, ge=0, le=1, description="Ingest refuses a table whose accepted rows fall by more than this share."
    )
    max_column_reject_share: float = Field(
        0.5, gt=0, le=1, description="Ingest stops when one column rejects more than this share of a table's rows."
    )
    min_rows_for_reject_share: int = Field(
        1000, ge=1, description="Tables with fewer rows are never stopped by max_column_reject_share."
    )
    max_assign_distance_km: float = Field(
        5.0, gt=0, description="Events located by coordinates go to the nearest region centre within this distance."
    )
    ingest_batch_rows: int = Field(
        1_000_000, ge=1, description="Rows of a table ingest reads and validates at a time (memory holds one batch)."
    )
    city_config: Path | None = Field(
        None, description="YAML file of the city's extra tables, event sources, entity kinds and holiday calendar."
    )
    interventions_config: Path | None = Field(
        None, description="YAML file of the intervention kinds (costs, durations, features changed); default built in."
    )
    plan_budgets: dict[str, float] = Field(
        {"mediation_team": 20, "legal_adviser": 10, "patrol_hours": 500, "hearing": 5, "compensation": 3},
        description="Default budgets of `fengqiao plan` and POST /v1/plans, in each kind's units (teams, advisers, "
        "hours, hearings, projects); a budget named on the command line or in the request replaces its default.")
    plans_in_force: Path | None = Field(
        None, description="The committee's adopted plans — a plan file or a folder of them — whose running actions "
        "count as in the field in every plan: `fengqiao plan`, POST /v1/plans and the dashboard (docs/prevention.md).")
    plan_effect: PlanEffect = Field(
        "dose", description="How the planner values an action: dose (the option's city-wide relative effect from "
        "the model's what-ifs, varying with how much it changes each entity's features, applied to each entity's "
        "risk), pooled (one city-wide relative effect per option) or entity (each entity's own what-if).")
    windows_days: tuple[int, ...] = Field((7, 30, 90, 365), description="Windows (days) of the main event counts.")
    decay_days: tuple[int, ...] = Field((7, 30, 90), description="Decay times (days) of the main decayed intensities.")
    neighbour_rule: Literal["nearest", "contiguity"] = Field(
        "nearest", description="Spill-over neighbours: k nearest within a radius, or shared boundaries."
    )
    neighbour_k: int = Field(8, ge=1, description="Most neighbours a place has under the nearest rule.")
    neighbour_radius_km: float = Field(15.0, gt=0, description="Farthest neighbour under the nearest rule (km).")
    neighbour_scale_km: float = Field(5.0, gt=0, description="Spill-over weight exp(-distance / scale) (km).")
    model: str = Field("blend", description="Model trained by `fengqiao train` (see models.catalogue.MODEL_NAMES).")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default a SQLite store under <data_root>/mlflow."
    )
    backtest_months: int = Field(6, ge=1, le=24, description="Months of monthly backtest folds before the data's end.")
    alert_budget: float = Field(0.05, gt=0, lt=1, description="Share of entities alerted per snapshot (precision@k).")
    compare_with: tuple[str, ...] = Field(
        ("recent_incidents", "incident_lags", "plain_lightgbm"),
        description="Models the backtest compares the trained one with, on the same folds (the report's baselines).",
    )
    tuning_trials: int = Field(4, ge=0, description="Optuna trials of the main model's parameter search (0: defaults).")
    untuned_learning_rates: dict[Literal["village", "project"], Annotated[float, Field(gt=0, le=1)]] = Field(
        {}, description="Learning rate of the main model per entity when it is not tuned (default 0.05), "
        'e.g. {"village": 0.1}: half the trees, for a large table.',
    )
    bootstrap_draws: int = Field(200, ge=0, description="Bootstrap resamples of snapshots for metric intervals.")
    calibration: Literal["auto", "isotonic", "platt"] = Field(
        "auto", description="Calibration: isotonic, Platt, or auto (lower held-out log-loss)."
    )
    level_thresholds: tuple[float, float, float] = Field(
        (0.30, 0.15, 0.05), description="Calibrated probabilities at which 红, 橙, 黄 begin (descending)."
    )
    level_budgets: tuple[float, float, float] | None = Field(
        None, description="If set, levels by alert budget instead: cumulative shares of entities 红, 橙, 黄."
    )
    drift_psi_warn: float = Field(0.25, gt=0, description="A refresh warns when a feature's PSI exceeds this.")
    drift_missing_warn: float = Field(
        0.1, gt=0, le=1, description="A refresh warns when a feature's share of missing values grows by more than this."
    )
    service_timeout_s: float = Field(
        10.0, gt=0, description="Seconds to wait for an external service (MLflow server) before a flow says it is down."
    )
    dask_address: str | None = Field(
        None, description="Dask scheduler (tcp://host:8786): flows build features by county and train LightGBM on it."
    )
    n_jobs: int = Field(
        2, ge=1, description="Model fits run at once in training (backtest folds × models, tuning folds), "
        "each LightGBM single-threaded: about the number of cores to give it."
    )
    api_host: str = Field("127.0.0.1", description="Address `fengqiao serve` listens on (0.0.0.0: every interface).")
    api_port: int = Field(8000, ge=1, le=65535, description="Port `fengqiao serve` listens on.")
    api_entities: tuple[Literal["village", "project"], ...] = Field(
        ("village", "project"), min_length=1, description="Entity kinds the API serves; each needs its model.")
    api_village_model: str | None = Field(
        None, description="Village bundle: a folder or an MLflow URI (default models:/village-risk@champion).")
    api_project_model: str | None = Field(
        None, description="Project bundle: a folder or an MLflow URI (default models:/project-risk@champion).")
    api_tokens_file: Path | None = Field(
        None, description="The API's token store (default <data_root>/secrets/api_tokens.json).")
    api_audit_log: Path | None = Field(
        None, description="The API's append-only audit log (default <data_root>/audit/api.jsonl).")
    api_history_weeks: int = Field(
        13, ge=2, le=156, description="Latest snapshots the API scores with the live model: changes, as_of, alerts.")
    api_rate_per_second: float = Field(20.0, gt=0, description="Requests per second a token may make on average.")
    api_rate_burst: int = Field(40, ge=1, description="Requests a token may make at once before the rate applies.")
    api_max_body_bytes: int = Field(65_536, ge=1024, description="Largest request body the API accepts (bytes).")
    api_max_page: int = Field(200, ge=1, le=10_000, description="Most items one page of a list may hold.")
    api_cors_origins: tuple[str, ...] = Field(
        (), description="Origins allowed to call the API from a browser (none: the dashboard is same-origin).")
    api_shutdown_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM, how long in-flight requests may take to finish (seconds).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        return known_timezone(zone)

    @field_validator("windows_days", "decay_days")
    @classmethod
    def _positive_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if not days or min(days) < 1:
            raise ValueError("give at least one whole number of days, each at least 1")
        return tuple(sorted(set(days)))

    @property
    def raw_dir(self) -> Path:
        """Default place for a platform export (the simulator writes here)."""
        return self.data_root / "raw"

    @property
    def warehouse_dir(self) -> Path:
        """Validated tables, features and truth files."""
        return self.data_root / "warehouse"

    @property
    def mlflow_dir(self) -> Path:
        """The embedded MLflow store: mlflow.db and artifacts/."""
        return self.data_root / "mlflow"

    @property
    def bundle_cache_dir(self) -> Path:
        """Local copies of registry bundles (``models.bundle.cache``)."""
        return self.data_root / "cache" / "bundles"

    @property
    def tracking_uri(self) -> str:
        """The configured tracking URI, else ``sqlite:///<data_root>/mlflow/mlflow.db``."""
        return self.mlflow_tracking_uri or f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    @property
    def tokens_path(self) -> Path:
        return self.api_tokens_file or self.data_root / "secrets" / "api_tokens.json"

    @property
    def audit_path(self) -> Path:
        return self.api_audit_log or self.data_root / "audit" / "api.jsonl"

    def model_source(self, entity: str) -> str:
        """Where the API loads ``entity``'s bundle from: the setting, else the registry's champion."""
        configured = self.api_village_model if entity == "village" else self.api_project_model
        return configured or f"models:/{entity}-risk@champion"

    @property
    def key_file(self) -> Path:
        return self.pseudonym_key_file or self.data_root / "secrets" / "pseudonym.key"

    def hmac_key(self, create: bool = False) -> bytes:
        """The pseudonymisation key; with ``create`` a new random key is written if none exists.

        Production sets ``FENGQIAO_PSEUDONYM_KEY`` (or a key file kept outside the data root);
        the demo creates one under ``var/secrets``.
        """
        if self.pseudonym_key is not None:
            return self.pseudonym_key.get_secret_value().encode()
        path = self.key_file
        if not path.exists():
            if not create:
                raise ConfigurationError(
                    f"No pseudonymisation key: set FENGQIAO_PSEUDONYM_KEY or create {path} "
                    "(`fengqiao ingest --create-key` makes a random one)."
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()
