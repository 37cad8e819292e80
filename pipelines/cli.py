"""The ``fengqiao`` command: the operator's entry point. It parses options and runs jobs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fengqiao.errors import FengqiaoError
from fengqiao.log import configure_logging
from fengqiao.settings import Settings
from pipelines.jobs import JobResult, features_job, ingest_job, simulate_job
from pipelines.model_jobs import backtest_job, promote_job, train_job
from pipelines.simulate.config import SimulationConfig

app = typer.Typer(
    help="Fengqiao: social-stability risk assessment and early warning for villages and projects.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
DEFAULTS = SimulationConfig()


def _run(job) -> JobResult:
    """Run a job; a project error becomes a one-line message and exit code 2, not a trace."""
    configure_logging()
    try:
        result = job()
    except FengqiaoError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err
    typer.echo(result.render())
    return result


def _start_date(text: str) -> str:
    """``--start`` must be a calendar date."""
    try:
        pd.Timestamp(text)
    except ValueError as err:
        raise typer.BadParameter("must be a date written YYYY-MM-DD, e.g. 2023-11-27") from err
    return text


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Random seed: same seed, same bytes.")] = DEFAULTS.seed,
    scale: Annotated[float, typer.Option(min=0.01, max=50, help="Multiplies towns, villages, people and events (10: ~20k villages).")] = 1.0,
    years: Annotated[float, typer.Option(min=0.25, max=30, help="Years of daily history.")] = DEFAULTS.years,
    start: Annotated[str, typer.Option(callback=_start_date, help="First day of the history (YYYY-MM-DD).")] = DEFAULTS.start,
    horizon_days: Annotated[Optional[int], typer.Option(min=1, max=365, help="Horizon of the oracle (days); default FENGQIAO_HORIZON_DAYS (30).")] = None,
    dirty: Annotated[bool, typer.Option(help="Inject realistic bad data and list it in dirty_injected.csv.")] = False,
    dirty_rate: Annotated[float, typer.Option(min=0.0, max=0.2, help="Share of rows given each kind of defect (0 to 0.2).")] = 0.01,
    out: Annotated[Optional[Path], typer.Option(help="Export folder (default <data_root>/raw).")] = None,
) -> None:
    """Simulate a Hanzhong-like city and write it as a platform export (CSV + Parquet)."""
    settings = Settings()
    _run(lambda: simulate_job(
        SimulationConfig(seed=seed, scale=scale, years=years, start=start,
                         horizon_days=horizon_days or settings.horizon_days),
        out or settings.raw_dir, dirty=dirty, dirty_rate=dirty_rate, progress=_StepPrinter(),
    ))


class _StepPrinter:
    """Prints a line when each step of a long job starts, and a progress bar (on stderr)
    while a step that counts its work runs."""

    def __init__(self) -> None:
        self._step: str | None = None
        self._bar: Progress | None = None
        self._task = None

    def __call__(self, step: str, done: int, total: int) -> None:
        if step != self._step:
            self._stop()
            self._step = step
            typer.echo(f"-- {step}", err=True)
            if total:
                self._bar = Progress(TextColumn("   "), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=Console(stderr=True), transient=True)
                self._task = self._bar.add_task(step, total=total)
                self._bar.start()
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
            if done >= total:
                self._stop()

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@app.command()
def ingest(
    source: Annotated[Optional[str], typer.Argument(help="Export folder, Excel workbook or SQLAlchemy URL (default <data_root>/raw).")] = None,
    mapping: Annotated[Optional[Path], typer.Option(help="YAML column mapping for another platform's export.")] = None,
    create_key: Annotated[bool, typer.Option(help="Create a random pseudonymisation key under <data_root>/secrets if none is set.")] = False,
    as_of: Annotated[Optional[str], typer.Option(help="Moment of the export (ISO 8601); later timestamps are rejected as future dates. Default: the end of a simulated world (its world.json), else now.")] = None,
) -> None:
    """Validate an export into the warehouse; rejected rows are kept with their reason."""
    settings = Settings()
    moment = _timestamp(as_of, settings.timezone)
    _run(lambda: ingest_job(settings, source or str(settings.raw_dir), mapping, create_key, moment))


def _timestamp(text: str | None, timezone: str) -> pd.Timestamp | None:
    """An ISO 8601 option as a tz-aware timestamp (naive → ``timezone``); a bad one stops with a clear message."""
    if text is None:
        return None
    try:
        moment = pd.Timestamp(text)
    except ValueError as err:
        raise typer.BadParameter(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-27 or 2026-11-27T00:00+08:00)") from err
    return moment.tz_localize(timezone) if moment.tzinfo is None else moment


@app.command()
def features(
    horizon_days: Annotated[Optional[int], typer.Option(min=1, max=365, help="Label horizon (days); default FENGQIAO_HORIZON_DAYS (30).")] = None,
) -> None:
    """Build weekly point-in-time features and labels → <data_root>/warehouse/features_<entity>.parquet."""
    settings = Settings()
    if horizon_days is not None:
        settings = settings.model_copy(update={"horizon_days": horizon_days})
    _run(lambda: features_job(settings))


ENTITY_CHOICES = ("village", "project", "all")


def _entities(entity: str) -> tuple[str, ...]:
    if entity not in ENTITY_CHOICES:
        raise typer.BadParameter(f"must be one of {', '.join(ENTITY_CHOICES)}")
    return ("village", "project") if entity == "all" else (entity,)


def _model_settings(model: str | None, trials: int | None) -> Settings:
    settings = Settings()
    update = {k: v for k, v in (("model", model), ("tuning_trials", trials)) if v is not None}
    return settings.model_copy(update=update) if update else settings


@app.command()
def train(
    entity: Annotated[str, typer.Option(help="village, project or all.")] = "all",
    model: Annotated[Optional[str], typer.Option(help="Model name (default FENGQIAO_MODEL, lightgbm): lightgbm, logistic, recent_incidents, incident_lags, plain_lightgbm.")] = None,
    trials: Annotated[Optional[int], typer.Option(min=0, help="Tuning trials (default FENGQIAO_TUNING_TRIALS).")] = None,
    promote: Annotated[bool, typer.Option(help="Run the promotion gate on the new version.")] = True,
) -> None:
    """Tune, backtest, log to MLflow, register as village-risk / project-risk, and gate."""
    settings = _model_settings(model, trials)
    _run(lambda: train_job(settings, _entities(entity), register=True, gate=promote, progress=_StepPrinter()))


@app.command()
def backtest(
    entity: Annotated[str, typer.Option(help="village, project or all.")] = "all",
    model: Annotated[Optional[str], typer.Option(help="Model name (default FENGQIAO_MODEL).")] = None,
    trials: Annotated[Optional[int], typer.Option(min=0, help="Tuning trials (default FENGQIAO_TUNING_TRIALS).")] = None,
) -> None:
    """Rolling-origin backtest against the baselines (and the oracle) as an MLflow run with its report; registers nothing."""
    settings = _model_settings(model, trials)
    _run(lambda: backtest_job(settings, _entities(entity), progress=_StepPrinter()))


@app.command()
def promote(
    entity: Annotated[str, typer.Option(help="village or project.")] = "village",
    version: Annotated[Optional[str], typer.Option(help="Registered version to judge (default: the latest).")] = None,
) -> None:
    """Promotion gate: score a version and the champion on the same folds; move the alias `champion` only if it is not worse."""
    if entity not in ("village", "project"):
        raise typer.BadParameter("must be village or project")
    settings = Settings()
    _run(lambda: promote_job(settings, entity, version, progress=_StepPrinter()))


@app.command()
def demo() -> None:
    """The main job on the embedded defaults: simulate → ingest → features → train, register
    and promote (scoring and the API come with later issues)."""
    settings = Settings()
    config = dataclasses.replace(DEFAULTS, horizon_days=settings.horizon_days)
    results = [
        _run(lambda: simulate_job(config, settings.raw_dir, progress=_StepPrinter())),
        _run(lambda: ingest_job(settings, str(settings.raw_dir), create_key=True)),
        _run(lambda: features_job(settings)),
        _run(lambda: train_job(settings, progress=_StepPrinter())),
    ]
    total = sum(r.seconds for r in results)
    wh = settings.warehouse_dir
    typer.echo(f"\ndemo finished in {total:.0f} s. Look at:\n"
               f"  {settings.raw_dir}/world.json            the simulated world and its realised rates\n"
               f"  {wh}/ingest_report.json    counts in / accepted / rejected per table and reason\n"
               f"  {wh}/rejects/              every rejected row with its reason\n"
               f"  {wh}/features_village.parquet, features_project.parquet   features and labels\n"
               f"  {wh}/oracle.parquet        the true {config.horizon_days}-day incident probability (synthetic worlds only)\n"
               f"  MLflow store: {settings.tracking_uri} (artifacts under {settings.mlflow_dir / 'artifacts'})\n"
               f"  open it with: mlflow ui --backend-store-uri {settings.tracking_uri}")


if __name__ == "__main__":
    app()
