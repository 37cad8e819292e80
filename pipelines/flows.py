"""The Prefect flows the data team runs: simulate, ingest, build_features, train, and refresh.

Flows only wire tasks; each task calls one job of ``pipelines.jobs`` / ``pipelines.model_jobs``
(the same functions the CLI's single commands call). A task first asks the ledger whether its
inputs and outputs are those of its last success: then it skips the work, so a re-run with
the same inputs is a no-op and a failed run resumes where it stopped. Tasks that talk to an
external system (a database source, the MLflow store) retry on connection errors, never on a
mistake in the data or the configuration. Every flow run logs each step's lines (row counts,
rejects, timings) and leaves its summary as a markdown artifact.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from features.truth import ORACLE_FILES
from fengqiao.progress import Progress, quiet
from fengqiao.settings import Settings
from models.featuremeta import ENTITIES
from models.tracking import git_commit
from pipelines.cluster import cluster_client, cluster_mapper, on_cluster
from pipelines.jobs import JobResult, city_of, features_job, ingest_job, simulate_job
from pipelines.ledger import Ledger, fingerprint
from pipelines.model_jobs import check_store, drift_job, has_champion, live_record_job, score_job, train_job
from pipelines.simulate.config import SimulationConfig

LEDGER_FILE = "pipeline_ledger.json"
TRANSIENT: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OperationalError,
                                             requests.exceptions.ConnectionError)
"""Errors worth a retry, anywhere in an error's chain of causes: a database or an MLflow server
that did not answer. Anything else (bad data, bad configuration, a missing file) would fail
the same way again and is not retried."""


@dataclass
class StepOutcome:
    """What one step did in a flow run: ran or skipped (inputs unchanged), its seconds and lines."""

    step: str
    ran: bool
    seconds: float
    lines: list[str]


def _settings_print(settings: Settings) -> dict:
    """The settings as fingerprint values: every field but secrets, and the code's commit."""
    values = settings.model_dump(mode="json", exclude={"pseudonym_key"})
    values["code"] = git_commit()
    return values


def is_transient(error: BaseException | None) -> bool:
    """Whether ``error`` or one of its causes is a connection failure worth a retry."""
    while error is not None:
        if isinstance(error, TRANSIENT):
            return True
        error = error.__cause__ or error.__context__
    return False


def _retry_on_transient(task, task_run, state) -> bool:
    try:
        state.result()
    except BaseException as error:  # noqa: BLE001 — only inspected, never swallowed: Prefect re-raises it
        return is_transient(error)
    return False


def warehouse_tables(settings: Settings) -> list[Path]:
    """The warehouse's data: the city's tables and the oracle (what the features read)."""
    wh = settings.warehouse_dir
    return [*(wh / f"{name}.parquet" for name in city_of(settings).contracts),
            *(wh / name for name in ORACLE_FILES.values())]


def ingest_outputs(settings: Settings) -> list[Path]:
    """Everything ingest publishes: the data, the rejects and the report."""
    wh = settings.warehouse_dir
    return [*warehouse_tables(settings), wh / "rejects", wh / "ingest_report.json"]


def per_entity(settings: Settings, *names: str) -> list[Path]:
    """The warehouse files ``name.format(entity=…)`` of every entity kind, for each name."""
    return [settings.warehouse_dir / name.format(entity=entity) for name in names for entity in ENTITIES]


def feature_tables(settings: Settings) -> list[Path]:
    return per_entity(settings, "features_{entity}.parquet")


def run_step(step: str, settings: Settings, inputs: str, outputs: Callable[[], str], job: Callable[[], JobResult],
             force: bool = False) -> StepOutcome:
    """Run ``job`` unless the ledger says this step already succeeded with these inputs and
    its outputs are as it left them; record the success."""
    logger = get_run_logger()
    ledger = Ledger(settings.data_root / LEDGER_FILE)
    started = time.perf_counter()
    done = None if force else ledger.done(step, inputs, outputs())
    if done is not None:
        lines = [f"skipped: inputs unchanged since {done.finished_at}", *done.lines]
        logger.info("%s skipped: inputs and outputs unchanged since %s", step, done.finished_at)
        return StepOutcome(step, False, time.perf_counter() - started, lines)
    logger.info("%s started", step)
    result = job()
    for line in result.lines:
        logger.info("%s", line)
    ledger.record(step, inputs, outputs(), result.lines)
    return StepOutcome(step, True, result.seconds, result.lines)


@task(name="simulate", cache_policy=NO_CACHE)
def simulate_task(settings: Settings, config: SimulationConfig, dirty: bool = False, force: bool = False,
                  progress: Progress | None = None) -> StepOutcome:
    inputs = fingerprint(world=dataclasses.asdict(config), dirty=dirty, code=git_commit())
    return run_step("simulate", settings, inputs, lambda: fingerprint([settings.raw_dir]),
                    lambda: simulate_job(config, settings.raw_dir, dirty=dirty, progress=progress), force)


@task(name="ingest", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=_retry_on_transient)
def ingest_task(settings: Settings, source: str, mapping: Path | None = None, create_key: bool = False,
                allow_shrink: bool = False, force: bool = False, progress: Progress | None = None) -> StepOutcome:
    files = [Path(source)] if Path(source).exists() else []
    # a database cannot be fingerprinted without reading it all, so its ingest always runs
    force = force or not files
    inputs = fingerprint([*files, *([mapping] if mapping else [])], source=source, allow_shrink=allow_shrink,
                         settings=_settings_print(settings))
    return run_step("ingest", settings, inputs, lambda: fingerprint(ingest_outputs(settings)),
                    lambda: ingest_job(settings, source, mapping=mapping, create_key=create_key,
                                       allow_shrink=allow_shrink, progress=progress or quiet), force)


@task(name="build_features", cache_policy=NO_CACHE)
def features_task(settings: Settings, force: bool = False, distributed: bool = False) -> StepOutcome:
    """With ``distributed`` (the flow runs on a Dask cluster) the places are built by county on it."""
    city = [settings.city_config] if settings.city_config else []
    inputs = fingerprint([*warehouse_tables(settings), *city], settings=_settings_print(settings))

    return run_step("build_features", settings, inputs, lambda: fingerprint(feature_tables(settings)),
                    lambda: features_job(settings, cluster_mapper(distributed)), force)


@task(name="train", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=_retry_on_transient)
def train_task(settings: Settings, entities: Sequence[str] = ENTITIES, model: str | None = None,
               force: bool = False, progress: Progress | None = None, distributed: bool = False) -> StepOutcome:
    """With ``distributed`` (the flow runs on a Dask cluster) LightGBM grows the final trees on it."""
    inputs = fingerprint(feature_tables(settings), entities=list(entities), model=model,
                         settings=_settings_print(settings))

    def train() -> JobResult:
        with cluster_client(distributed):
            return train_job(settings, entities, model, progress=progress, distributed=distributed)

    return run_step("train", settings, inputs, lambda: check_store(settings), train, force)


def _scoring_inputs(settings: Settings, registry: str) -> str:
    """What scores and drift checks depend on: the feature tables, the registry's state
    (``check_store``, read once per flow run) and the settings."""
    return fingerprint(feature_tables(settings), registry=registry, settings=_settings_print(settings))


@task(name="drift", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=_retry_on_transient)
def drift_task(settings: Settings, registry: str, force: bool = False) -> StepOutcome:
    outputs = per_entity(settings, "drift_{entity}.json")
    return run_step("drift", settings, _scoring_inputs(settings, registry), lambda: fingerprint(outputs),
                    lambda: drift_job(settings), force)


@task(name="score", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=_retry_on_transient)
def score_task(settings: Settings, registry: str, force: bool = False) -> StepOutcome:
    outputs = per_entity(settings, "scores_{entity}.parquet", "score_history_{entity}.parquet")
    return run_step("score", settings, _scoring_inputs(settings, registry), lambda: fingerprint(outputs),
                    lambda: score_job(settings), force)


@task(name="live_record", cache_policy=NO_CACHE)
def live_record_task(settings: Settings, force: bool = False) -> StepOutcome:
    histories = per_entity(settings, "score_history_{entity}.parquet")
    inputs = fingerprint([*feature_tables(settings), *histories], settings=_settings_print(settings))
    outputs = per_entity(settings, "live_record_{entity}.parquet")
    return run_step("live_record", settings, inputs, lambda: fingerprint(outputs), lambda: live_record_job(settings),
                    force)


def _summary_markdown(title: str, outcomes: Sequence[StepOutcome]) -> str:
    rows = [f"# {title}", "", "| step | done | seconds | summary |", "|---|---|---|---|"]
    for o in outcomes:
        text = "<br>".join(line.strip().replace("|", "\\|") for line in o.lines[:12] if line.strip())
        rows.append(f"| {o.step} | {'ran' if o.ran else 'skipped (unchanged)'} | {o.seconds:.1f} | {text} |")
    return "\n".join(rows)


def _publish_summary(key: str, title: str, outcomes: Sequence[StepOutcome]) -> str:
    markdown = _summary_markdown(title, outcomes)
    create_markdown_artifact(markdown=markdown, key=key, description=title)
    return markdown


@flow(name="simulate", log_prints=True)
def simulate_flow(settings: Settings, config: SimulationConfig, dirty: bool = False,
                  force: bool = False) -> list[StepOutcome]:
    """Simulate a world and write it as a platform export under the data root's ``raw/``."""
    outcomes = [simulate_task(settings, config, dirty, force)]
    _publish_summary("simulate-summary", "simulate", outcomes)
    return outcomes


@flow(name="ingest")
def ingest_flow(settings: Settings, source: str, mapping: Path | None = None, create_key: bool = False,
                allow_shrink: bool = False, force: bool = False) -> list[StepOutcome]:
    """Validate and pseudonymise a platform export (or database) into the warehouse."""
    outcomes = [ingest_task(settings, source, mapping, create_key, allow_shrink, force)]
    _publish_summary("ingest-summary", "ingest", outcomes)
    return outcomes


@flow(name="build_features")
def build_features_flow(settings: Settings, force: bool = False) -> list[StepOutcome]:
    """Build the point-in-time feature tables from the warehouse."""
    outcomes = [features_task(settings, force, on_cluster())]
    _publish_summary("build-features-summary", "build_features", outcomes)
    return outcomes


@flow(name="train")
def train_flow(settings: Settings | None = None, entities: Sequence[str] = ENTITIES, model: str | None = None,
               force: bool = False) -> list[StepOutcome]:
    """Backtest, log and register the model, then run the promotion gate (settings from the
    environment when a deployment runs it)."""
    settings = settings or Settings()
    outcomes = [train_task(settings, list(entities), model, force, distributed=on_cluster())]
    _publish_summary("train-summary", "train", outcomes)
    return outcomes


@flow(name="refresh")
def refresh_flow(settings: Settings | None = None, source: str | None = None, mapping: Path | None = None,
                 allow_shrink: bool = False) -> list[StepOutcome]:
    """The weekly run: ingest the platform's new export, rebuild the features, score them with
    the champions, check them for drift against the champions' training data, and judge the
    scored snapshots whose labels have matured (the live record). The MLflow
    store is checked first, so that an unreachable store stops the run before the warehouse
    changes. Settings come from the environment and the source defaults to ``<data_root>/raw``
    when a deployment runs it."""
    settings = settings or Settings()
    source = source or str(settings.raw_dir)
    registry = check_store(settings)
    outcomes = [ingest_task(settings, source, mapping, False, allow_shrink)]
    outcomes.append(features_task(settings, distributed=on_cluster()))
    if has_champion(settings):
        outcomes += [score_task(settings, registry), drift_task(settings, registry), live_record_task(settings)]
    else:
        outcomes.append(StepOutcome("score", False, 0.0, ["no champion model yet: nothing scored — run "
                                                          "`fengqiao train` (or the train flow) first"]))
    _publish_summary("refresh-summary", "refresh", outcomes)
    return outcomes


@flow(name="demo")
def demo_flow(settings: Settings, config: SimulationConfig, progress: Progress | None = None) -> list[StepOutcome]:
    """The main job on the embedded defaults; a second run reuses every step whose inputs are unchanged."""
    outcomes = [simulate_task(settings, config, progress=progress)]
    outcomes.append(ingest_task(settings, str(settings.raw_dir), create_key=True, progress=progress))
    outcomes.append(features_task(settings, distributed=on_cluster()))
    outcomes.append(train_task(settings, progress=progress, distributed=on_cluster()))
    outcomes.append(score_task(settings, check_store(settings)))
    _publish_summary("demo-summary", "demo", outcomes)
    return outcomes


__all__ = ["StepOutcome", "build_features_flow", "demo_flow", "ingest_flow", "refresh_flow", "run_step",
           "simulate_flow", "train_flow"]
