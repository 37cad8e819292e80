"""The ``fengqiao`` command: the operator's entry point. It parses options and runs jobs.

Every failure the operator can fix — a bad option, a bad setting, unreadable input, a refused
ingest — ends with one line saying what is wrong and exit code 2, never a traceback. Each command
imports the job it runs when it runs: the start-up of a command is the time of its imports.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import pandas as pd
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from typer.core import TyperGroup

from fengqiao.errors import ConfigurationError, FengqiaoError
from fengqiao.log import configure_logging
from fengqiao.settings import Settings
from pipelines.local_prefect import LocalServer, start_local_server
from pipelines.result import JobResult
from pipelines.simulate.config import SimulationConfig

USAGE_ERROR = 2


class OneLineErrors(TyperGroup):
    """Usage errors (unknown option, bad value, missing command) as one line and exit code 2,
    instead of a usage box."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as err:
            message = " ".join(err.format_message().split())
            typer.secho(f"error: {message} (fengqiao --help lists commands and options)", fg=typer.colors.RED,
                        err=True)
            sys.exit(USAGE_ERROR)
        except typer.Abort:
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    help="Fengqiao: social-stability risk assessment and early warning for villages and projects.",
    pretty_exceptions_enable=False,
    add_completion=False,
)
DEFAULTS = SimulationConfig()


def _show_version(show: bool) -> None:
    if show:
        typer.echo(f"fengqiao {package_version('fengqiao')}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    data_root: Annotated[Optional[Path], typer.Option(
        help="Root of raw/, warehouse/ and secrets/ (default: FENGQIAO_DATA_ROOT, else ./var).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Fengqiao: social-stability risk assessment and early warning for villages and projects."""
    ctx.obj = {"data_root": data_root} if data_root is not None else {}


def _settings(ctx: typer.Context) -> Settings:
    """The Settings of this run: the environment, with the global options on top."""
    try:
        return Settings(**(ctx.obj or {}))
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        reason = first["msg"].removeprefix("Value error, ")
        raise ConfigurationError(f"setting {field} (FENGQIAO_{field.upper()}): {reason}") from None


def _run(name: str, job: Callable[[], JobResult]) -> JobResult:
    """Run a job: say that it starts, then print its summary; a project error becomes a
    one-line message and exit code 2, not a trace."""
    configure_logging()
    typer.echo(f"== {name} started", err=True)
    try:
        result = job()
    except FengqiaoError as err:
        _fail(err)
    typer.echo(result.render())
    return result


def _fail(err: FengqiaoError) -> NoReturn:
    typer.secho(f"error: {' '.join(str(err).split())}", fg=typer.colors.RED, err=True)
    raise typer.Exit(USAGE_ERROR) from None


@app.command()
def simulate(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.", min=0, max=2**32 - 1)] = DEFAULTS.seed,
    scale: Annotated[float, typer.Option(help="Multiplies towns, villages, people and events (10: ~20k villages).",
                                         min=0.01, max=50)] = 1.0,
    years: Annotated[float, typer.Option(help="Years of daily history.", min=0.25, max=30)] = DEFAULTS.years,
    start: Annotated[str, typer.Option(help="First day of the history (YYYY-MM-DD).")] = DEFAULTS.start,
    horizon_days: Annotated[Optional[int], typer.Option(
        help="Horizon of the oracle (days); default FENGQIAO_HORIZON_DAYS (30).", min=1, max=365)] = None,
    dirty: Annotated[bool, typer.Option(help="Inject realistic bad data and list it in dirty_injected.csv.")] = False,
    dirty_rate: Annotated[float, typer.Option(help="Share of rows given each kind of defect (0 to 0.2).",
                                              min=0, max=0.2)] = 0.01,
    out: Annotated[Optional[Path], typer.Option(help="Export folder (default <data_root>/raw).")] = None,
) -> None:
    """Simulate a Hanzhong-like city and write it as a platform export (CSV + Parquet)."""
    _date(start, "--start")

    def job() -> JobResult:
        settings = _settings(ctx)
        config = SimulationConfig(seed=seed, scale=scale, years=years, start=start,
                                  horizon_days=horizon_days or settings.horizon_days)
        from pipelines.jobs import simulate_job

        return simulate_job(config, out or settings.raw_dir, dirty=dirty, dirty_rate=dirty_rate,
                            progress=_StepPrinter())

    _run("simulate", job)


class _StepPrinter:
    """Prints a line when each step of a long job starts, and a progress bar (on stderr)
    while a step that counts its work runs. The bar is drawn again at every report (a report
    is a batch of work, not a row), and its total follows the step's latest estimate."""

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
            self._bar.update(self._task, completed=done, total=total)
            self._bar.refresh()
            if done >= total:
                self._stop()

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


SourceArgument = Annotated[Optional[str], typer.Argument(
    help="Export folder, Excel workbook or SQLAlchemy URL (default <data_root>/raw).")]
MappingOption = Annotated[Optional[Path], typer.Option(
    help="YAML column mapping for another platform's export.", exists=True, dir_okay=False)]


@app.command("evaluate-plan")
def evaluate_plan(
    ctx: typer.Context,
    plan: Annotated[Path, typer.Argument(help="The plan file (plan.json), whoever wrote it.")],
    world: Annotated[Path, typer.Option(help="The simulated world's folder (`fengqiao simulate --out DIR`).")],
    replications: Annotated[int, typer.Option(help="Paired replications (with and without the plan).",
                                              min=2, max=100_000)] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the replications' common random numbers.", min=0,
                                      max=2**31 - 1)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help='Print only {"averted": …, "low": …, "high": …}.')] = False,
) -> None:
    """The truth test of a plan: incidents it averts in a simulated world, with a 95% interval —
    the world run forward from the plan's snapshot with and without it (common random numbers)."""
    from pipelines.jobs import evaluate_plan_job

    if not as_json:
        _run("evaluate-plan", lambda: evaluate_plan_job(_settings(ctx), plan, world, replications, seed,
                                                        progress=_StepPrinter())[0])
        return
    configure_logging()
    try:
        _, result = evaluate_plan_job(_settings(ctx), plan, world, replications, seed)
    except FengqiaoError as err:
        _fail(err)
    typer.echo(json.dumps(result.summary()))


@app.command()
def ingest(
    ctx: typer.Context,
    source: SourceArgument = None,
    mapping: MappingOption = None,
    create_key: Annotated[bool, typer.Option(
        help="Create a random pseudonymisation key under <data_root>/secrets if none is set.")] = False,
    as_of: Annotated[Optional[str], typer.Option(
        help="Moment of the export (ISO 8601); later timestamps are rejected as future dates. "
             "Default: the end of a simulated world (its world.json), else now.")] = None,
    allow_shrink: Annotated[bool, typer.Option(
        help="Publish even if a table loses more than FENGQIAO_MAX_SHRINK_SHARE of its rows, a required table "
             "accepts none, or an optional table is absent from the source (it is then removed).")] = False,
) -> None:
    """Validate an export into the warehouse; rejected rows are kept with their reason."""
    def job() -> JobResult:
        settings = _settings(ctx)
        moment = _timestamp(as_of, settings.timezone)
        from pipelines.jobs import ingest_job

        return ingest_job(settings, source or str(settings.raw_dir), mapping, create_key, moment, allow_shrink,
                          progress=_StepPrinter())

    _run("ingest", job)


def _timestamp(text: str | None, timezone: str) -> pd.Timestamp | None:
    """An ISO 8601 option as a tz-aware timestamp (naive → ``timezone``); a bad one is a ConfigurationError."""
    if text is None:
        return None
    try:
        moment = pd.Timestamp(text)
    except ValueError:
        raise ConfigurationError(
            f"--as-of: not an ISO 8601 time: {text!r} (e.g. 2026-11-27 or 2026-11-27T00:00+08:00)") from None
    return moment.tz_localize(timezone) if moment.tzinfo is None else moment


def _date(text: str, option: str) -> None:
    """Refuse a date option that is not YYYY-MM-DD with a one-line usage error."""
    try:
        pd.Timestamp(text)
    except ValueError:
        raise typer.BadParameter(f"not a date: {text!r} (write YYYY-MM-DD)", param_hint=option) from None


QUICK_TRAINING = {"model": "lightgbm", "tuning_trials": 0, "backtest_months": 3,
                  "compare_with": ("recent_incidents", "incident_lags"), "untuned_learning_rates": {"village": 0.1}}
"""What the demo's quick training changes (recorded in the MLflow run like any setting): the
trees alone instead of the blend (its logistic regression costs about 20 s a fit on the default
world's 204k village rows, one per fold and one for the final model, against 73 s for the
demo's whole training without it, and minutes at --scale 10), no parameter search,
3 monthly folds, the honest baselines without the plain all-features LightGBM (300 trees a
fold: half the demo's training time), and the village model at learning rate 0.1, which needs
half the trees for the same backtest (default world: ROC-AUC 0.862 vs 0.859, PR-AUC 0.304 vs
0.309, in 52 s instead of 96 s); the project model keeps 0.05, since its small table
early-stops at 0.1 after 16 trees and loses PR-AUC (0.356 vs 0.413)."""

DaskOption = Annotated[bool, typer.Option(
    "--dask", help="Start a local Dask cluster (FENGQIAO_N_JOBS workers) for the flow; FENGQIAO_DASK_ADDRESS "
    "uses a running one instead: features are built by county and LightGBM trains on the cluster.")]


@app.command()
def features(
    ctx: typer.Context,
    horizon_days: Annotated[Optional[int], typer.Option(
        help="Label horizon (days); default FENGQIAO_HORIZON_DAYS (30).", min=1, max=365)] = None,
    dask: DaskOption = False,
) -> None:
    """Build weekly point-in-time features and labels → <data_root>/warehouse/features_<entity>.parquet
    (by county on a Dask cluster, as a Prefect flow, with --dask or FENGQIAO_DASK_ADDRESS)."""
    try:
        settings = _settings(ctx)
    except FengqiaoError as err:
        _fail(err)
    if horizon_days is not None:
        settings = settings.model_copy(update={"horizon_days": horizon_days})
    if dask or settings.dask_address:
        server = _use_local_prefect(settings)
        from pipelines.flows import build_features_flow

        flow = _on_cluster(build_features_flow, settings, dask)
        _run_flow("build_features", lambda: flow(settings, force=True), server)
        return
    from pipelines.jobs import features_job

    _run("features", lambda: features_job(settings))


ENTITY_CHOICES = ("village", "project", "all")
EntitiesOption = Annotated[str, typer.Option(help="village, project or all.")]
ModelOption = Annotated[Optional[str], typer.Option(help="Model name (default FENGQIAO_MODEL, lightgbm): lightgbm, "
                                                    "logistic, recent_incidents, incident_lags, plain_lightgbm.")]
TrialsOption = Annotated[Optional[int], typer.Option(min=0, help="Tuning trials (default FENGQIAO_TUNING_TRIALS).")]


def _entities(entity: str) -> tuple[str, ...]:
    if entity not in ENTITY_CHOICES:
        raise typer.BadParameter(f"must be one of {', '.join(ENTITY_CHOICES)}")
    return ("village", "project") if entity == "all" else (entity,)


def _model_settings(ctx: typer.Context, model: str | None, trials: int | None) -> Settings:
    """The run's Settings with the model options on top."""
    settings = _settings(ctx)
    update = {k: v for k, v in (("model", model), ("tuning_trials", trials)) if v is not None}
    return settings.model_copy(update=update) if update else settings


@app.command()
def train(
    ctx: typer.Context,
    entity: EntitiesOption = "all",
    model: ModelOption = None,
    trials: TrialsOption = None,
    promote: Annotated[bool, typer.Option(help="Run the promotion gate on the new version.")] = True,
    dask: DaskOption = False,
) -> None:
    """Tune, backtest, log to MLflow, register as village-risk / project-risk, and gate (as the
    train flow, the final trees grown on a Dask cluster, with --dask or FENGQIAO_DASK_ADDRESS)."""
    entities = _entities(entity)
    try:
        settings = _model_settings(ctx, model, trials)
    except FengqiaoError as err:
        _fail(err)
    if dask or settings.dask_address:
        if not promote:
            raise typer.BadParameter("the train flow always runs the promotion gate: drop --no-promote", param_hint="--dask")
        server = _use_local_prefect(settings)
        from pipelines.flows import train_flow

        flow = _on_cluster(train_flow, settings, dask)
        _run_flow("train", lambda: flow(settings, list(entities), force=True), server)
        return
    from pipelines.model_jobs import train_job

    _run("train", lambda: train_job(settings, entities, register=True, gate=promote, progress=_StepPrinter()))


@app.command()
def backtest(
    ctx: typer.Context,
    entity: EntitiesOption = "all",
    model: ModelOption = None,
    trials: TrialsOption = None,
) -> None:
    """Rolling-origin backtest against the baselines (and the oracle) as an MLflow run with its report; registers nothing."""
    entities = _entities(entity)
    from pipelines.model_jobs import backtest_job

    _run("backtest", lambda: backtest_job(_model_settings(ctx, model, trials), entities, progress=_StepPrinter()))


@app.command()
def promote(
    ctx: typer.Context,
    entity: Annotated[str, typer.Option(help="village or project.")] = "village",
    version: Annotated[Optional[str], typer.Option(help="Registered version to judge (default: the latest).")] = None,
) -> None:
    """Promotion gate: score a version and the champion on the same folds; move the alias `champion` only if it is not worse."""
    if entity not in ("village", "project"):
        raise typer.BadParameter("must be village or project", param_hint="--entity")
    from pipelines.model_jobs import promote_job

    _run("promote", lambda: promote_job(_settings(ctx), entity, version, progress=_StepPrinter()))


def _use_local_prefect(settings: Settings) -> LocalServer | None:
    """Prefect's home under the data root and no telemetry (intranets have no internet), unless
    the environment already says otherwise; and, unless ``PREFECT_API_URL`` names a Prefect
    server (or ephemeral mode is switched off), Prefect's temporary local server, launched now
    so that it boots while this process imports the flow's libraries
    (``pipelines.local_prefect``); None when Prefect is elsewhere."""
    os.environ.setdefault("PREFECT_HOME", str((settings.data_root / "prefect").resolve()))
    # Prefect makes its home without parents, and without it its server cannot open its database:
    # a new data root (a fresh clone's var/) would leave the flow waiting on a server that never starts
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    ephemeral = os.environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED",
                               os.environ.get("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true"))
    if os.environ.get("PREFECT_API_URL") or ephemeral.strip().lower() in ("0", "false", "no", "off"):
        return None
    # about 16 s on a quiet 2-core machine for a new data root; far more when the machine is busy
    return start_local_server(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")))


def _on_cluster(flow, settings: Settings, dask: bool):
    """``flow`` on the Dask cluster the options or settings ask for, else as it is."""
    from pipelines.cluster import task_runner

    runner = task_runner(settings, local=dask)
    return flow if runner is None else flow.with_options(task_runner=runner)


def _run_flow(name: str, run: Callable[[], list], server: LocalServer | None,
              meanwhile: Callable[[], None] | None = None) -> list:
    """Once Prefect's local ``server`` (if any) is ready — doing ``meanwhile`` while it boots —
    run a flow and print each step's summary, then the run's total; a project error is one line
    and exit 2."""
    configure_logging()
    typer.echo(f"== {name} started (Prefect flow)", err=True)
    started = time.perf_counter()
    try:
        if meanwhile is not None:
            meanwhile()
        if server is not None:
            server.wait_ready()
        outcomes = run()
    except FengqiaoError as err:
        _fail(err)
    for outcome in outcomes:
        status = "" if outcome.ran else ", skipped: inputs unchanged"
        typer.echo("\n".join([f"== {outcome.step} ({outcome.seconds:.1f} s{status})", *outcome.lines]))
    typer.echo(f"== {name} finished in {time.perf_counter() - started:.0f} s: "
               + ", ".join(f"{o.step} {'ran' if o.ran else 'skipped'}" for o in outcomes))
    return outcomes


@app.command()
def refresh(
    ctx: typer.Context,
    source: SourceArgument = None,
    mapping: MappingOption = None,
    allow_shrink: Annotated[bool, typer.Option(help="As for `fengqiao ingest`.")] = False,
    dask: DaskOption = False,
) -> None:
    """The weekly run as a Prefect flow: ingest → features → score → drift check → live record;
    steps whose inputs are unchanged are skipped, and a refused ingest publishes no scores."""
    try:
        settings = _settings(ctx)
    except FengqiaoError as err:
        _fail(err)
    server = _use_local_prefect(settings)
    from pipelines.flows import refresh_flow

    flow = _on_cluster(refresh_flow, settings, dask)
    _run_flow("refresh", lambda: flow(settings, source or str(settings.raw_dir), mapping, allow_shrink), server)


@app.command()
def score(
    ctx: typer.Context,
    entity: EntitiesOption = "all",
    bundle: Annotated[Optional[str], typer.Option(
        help="Bundle folder or MLflow model URI (default: the registry's champion, models:/<entity>-risk@champion).")] = None,
) -> None:
    """Score the latest snapshot: scores_<entity>.parquet (probability, level, rank, top reasons) and the score history."""
    entities = _entities(entity)
    from pipelines.model_jobs import score_job

    _run("score", lambda: score_job(_settings(ctx), entities, bundle))


def _budgets(text: str | None) -> dict[str, float]:
    """``--budget``'s NAME=AMOUNT entries (none: the defaults)."""
    if text is None:
        return {}
    from models.prevention import parse_budgets

    try:
        return parse_budgets(text)
    except ConfigurationError as err:
        raise typer.BadParameter(str(err), param_hint="--budget") from None


@app.command()
def plan(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="The plan file to write (JSON, docs/prevention.md).")],
    budget: Annotated[Optional[str], typer.Option(
        help="Budgets as NAME=AMOUNT,… in each kind's units, e.g. mediation_team=20,legal_adviser=10,"
             "patrol_hours=500; each replaces its default (FENGQIAO_PLAN_BUDGETS), 0 sends none.")] = None,
    scope: Annotated[str, typer.Option(help="city, or county:<county_id> to plan within one county.")] = "city",
    in_force: Annotated[Optional[list[Path]], typer.Option(
        "--in-force", help="An earlier plan file, or a folder of them, whose actions may be running (repeatable): "
                           "those the data does not record (teams, advisers, hearings, compensation) count as in the "
                           "field.")] = None,
) -> None:
    """Plan where to send mediation teams, legal advisers, patrol hours, hearings and compensation:
    the actions that avert the most incidents expected within the horizon, within the budgets."""
    budgets = _budgets(budget)
    from pipelines.plan_job import plan_job

    _run("plan", lambda: plan_job(_settings(ctx), budgets, scope, out, in_force or []))


bundle_app = typer.Typer(help="Scoring bundles: export a LightGBM model, explain rows with one.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


@bundle_app.command("export")
def bundle_export(
    ctx: typer.Context,
    model_file: Annotated[Path, typer.Argument(help="LightGBM model text file (binary objective, numeric features).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder to write bundle.json and trees.npz into.")],
    entity: Annotated[str, typer.Option(help="village or project: the entity the model scores.")] = "village",
) -> None:
    """Turn a LightGBM model file into a scoring bundle (no calibration; level thresholds from the settings)."""
    if entity not in ("village", "project"):
        raise typer.BadParameter("must be village or project", param_hint="--entity")
    from pipelines.model_jobs import bundle_export_job

    _run("bundle export", lambda: bundle_export_job(_settings(ctx), model_file, out_dir, entity))


@bundle_app.command("explain")
def bundle_explain(
    bundle: Annotated[str, typer.Argument(help="Bundle folder or MLflow model URI.")],
    features: Annotated[Path, typer.Argument(help="Parquet file with one column per bundle feature.")],
    out: Annotated[Path, typer.Argument(help="Parquet file to write.")],
) -> None:
    """Per row: raw_score, probability, contrib_<feature> for every feature and contrib_bias (TreeSHAP, log-odds)."""
    from pipelines.model_jobs import bundle_explain_job

    _run("bundle explain", lambda: bundle_explain_job(bundle, features, out))


@app.command()
def demo(
    ctx: typer.Context,
    scale: Annotated[float, typer.Option(help="Entities and events multiplier of the simulated city (10: province scale).",
                                         min=0.01, max=50)] = 1.0,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help=(
        "Then serve the API on FENGQIAO_API_HOST:FENGQIAO_API_PORT with a new city token (Ctrl-C stops)."))] = True,
    dask: DaskOption = False,
    full_training: Annotated[bool, typer.Option("--full-training/--quick-training", help=(
        "Quick (the default): the trees alone (FENGQIAO_MODEL=lightgbm) with their default parameters instead of "
        "the search, "
        f"{QUICK_TRAINING['backtest_months']} monthly backtest folds and the two honest baselines "
        "(not the plain all-features LightGBM), the village model at learning rate 0.1, so the demo takes minutes; "
        "full: FENGQIAO_MODEL, FENGQIAO_TUNING_TRIALS and FENGQIAO_BACKTEST_MONTHS, as `fengqiao train`."))] = False,
) -> None:
    """The main job on the embedded defaults, as a Prefect flow: simulate → ingest → features →
    train, register and promote → score the latest snapshot; then serve the API and the
    dashboard. A second run reuses every step whose inputs are unchanged."""
    try:
        settings = _settings(ctx)
        if not full_training:
            settings = settings.model_copy(update=QUICK_TRAINING)
        config = dataclasses.replace(DEFAULTS, horizon_days=settings.horizon_days, scale=scale)
    except FengqiaoError as err:
        _fail(err)
    server = _use_local_prefect(settings)
    from pipelines.flows import demo_flow

    def create_store() -> None:
        """The embedded MLflow store's tables (about 6 s on a new data root), made while
        Prefect's server boots instead of when training waits for them."""
        if settings.tracking_uri.startswith("sqlite:"):
            from models.tracking import use_store

            use_store(settings.tracking_uri).search_experiments(max_results=1)

    flow = _on_cluster(demo_flow, settings, dask)
    _run_flow("demo", lambda: flow(settings, config, progress=_StepPrinter()), server, meanwhile=create_store)
    if server is not None:
        server.stop()  # its work is done; the API below needs no Prefect
    wh = settings.warehouse_dir
    typer.echo(f"\nLook at:\n"
               f"  {settings.raw_dir}/world.json            the simulated world and its realised rates\n"
               f"  {wh}/ingest_report.json    counts in / accepted / rejected per table and reason\n"
               f"  {wh}/rejects/              every rejected row with its reason\n"
               f"  {wh}/features_village.parquet, features_project.parquet   features and labels\n"
               f"  {wh}/oracle.parquet        the true {config.horizon_days}-day incident probability (synthetic worlds only)\n"
               f"  {wh}/scores_village.parquet, scores_project.parquet   the latest scores, levels and top reasons\n"
               f"  MLflow store: {settings.tracking_uri} (artifacts under {settings.mlflow_dir / 'artifacts'})\n"
               f"  open it with: mlflow ui --backend-store-uri {settings.tracking_uri}\n"
               f"  Prefect runs: PREFECT_HOME={os.environ['PREFECT_HOME']} prefect server start")
    if serve_api:
        from serving.tokens import create_token

        token, _ = create_token(settings.tokens_path, "city", note="demo")
        typer.echo(f"\nAPI on http://{settings.api_host}:{settings.api_port} (docs/api.md); a city token, shown "
                   f"only now:\n  {token}\n  curl -H 'Authorization: Bearer {token}' "
                   f"http://{settings.api_host}:{settings.api_port}/v1/rankings/village?limit=10")
        _serve(settings)


token_app = typer.Typer(cls=OneLineErrors, help="API tokens: create (shown once), list, revoke.",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")


def _token_store(ctx: typer.Context) -> Path:
    try:
        return _settings(ctx).tokens_path
    except FengqiaoError as err:
        _fail(err)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    scope: Annotated[str, typer.Option(help="city, admin or county:<county_id> (e.g. county:610722).")],
    note: Annotated[str, typer.Option(help="Whose token this is, for the operators (no personal data).")] = "",
) -> None:
    """Create an API token and print it — once: the store keeps only its SHA-256 digest."""
    from serving.tokens import create_token

    path = _token_store(ctx)
    try:
        token, record = create_token(path, scope, note)
    except FengqiaoError as err:
        _fail(err)
    typer.echo(f"token {record.id} (scope {record.scope}) added to {path}; it is shown only now:", err=True)
    typer.echo(token)


@token_app.command("list")
def token_list(ctx: typer.Context) -> None:
    """List the tokens: id, scope, creation time, note (never the tokens or their digests)."""
    from serving.tokens import read_records

    try:
        records = read_records(_token_store(ctx))
    except FengqiaoError as err:
        _fail(err)
    for record in records:
        typer.echo(f"{record.id}  {record.scope:<20} {record.created_at}  {record.note}")


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="The token's id (8 hex digits).")]) -> None:
    """Revoke a token; a running server stops accepting it within a second."""
    from serving.tokens import revoke_token

    try:
        record = revoke_token(_token_store(ctx), token_id)
    except FengqiaoError as err:
        _fail(err)
    typer.echo(f"revoked token {record.id} (scope {record.scope})")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default FENGQIAO_API_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FENGQIAO_API_PORT, 8000).", min=1, max=65535)] = None,
) -> None:
    """Serve the scoring API (uvicorn): loads the champion models and the latest snapshot, then answers
    until SIGTERM or Ctrl-C, letting in-flight requests finish."""
    try:
        settings = _settings(ctx)
    except FengqiaoError as err:
        _fail(err)
    _serve(settings, host, port)


def _serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Build the app (a missing or damaged input ends in one line, exit 2) and run uvicorn until
    SIGTERM or Ctrl-C, with JSON-line logs."""
    import uvicorn

    from serving.app import create_app

    configure_logging(structured=True)
    try:
        application = create_app(settings)
    except FengqiaoError as err:
        _fail(err)
    uvicorn.run(application, host=host or settings.api_host, port=port or settings.api_port, access_log=False,
                log_config=None, timeout_graceful_shutdown=settings.api_shutdown_seconds)


if __name__ == "__main__":
    app()
