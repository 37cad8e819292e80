"""The model jobs — train, backtest, promote — each a plain function over Settings, so that
the CLI (and later the Prefect flows) only wire them together."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import requests
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from fengqiao.errors import ServiceUnavailable
from fengqiao.progress import Progress
from fengqiao.publish import write_atomic
from fengqiao.settings import Settings
from models.batch_scoring import feature_matrix, history_path, score_snapshot, write_scores
from models.bundle import load_bundle
from models.bundle.export import BundleFacts, export_model_file
from models.bundle.scoring import is_registry_uri
from models.catalogue import BUNDLED_MODELS, UnknownModelError
from models.data import load_training_table
from models.drift import drift_report, group_psi_table
from models.featuremeta import ENTITIES, feature_group, id_column
from models.hawkes import for_rows
from models.levels import LEVEL_NAMES, LEVELS, levels_by_budget, levels_by_threshold
from models.live import live_record
from models.tracking import (CHAMPION, REGISTERED_MODELS, artifact_location, champion_uri, log_drift, log_training,
                             promote, read_spec, use_store)
from models.training import TrainingOptions, TrainingResult, train_and_backtest
from pipelines.result import JobResult
from pipelines.ledger import fingerprint


def training_options(settings: Settings, model: str | None = None, distributed: bool = False) -> TrainingOptions:
    """The training options the settings ask for (``distributed``: on the current Dask client)."""
    return TrainingOptions(model=model or settings.model, distributed=distributed, compare_with=settings.compare_with,
                           horizon_days=settings.horizon_days,
                           backtest_months=settings.backtest_months, alert_budget=settings.alert_budget,
                           tuning_trials=settings.tuning_trials, untuned_learning_rates=settings.untuned_learning_rates,
                           bootstrap_draws=settings.bootstrap_draws,
                           calibration=settings.calibration, n_jobs=settings.n_jobs,
                           level_thresholds=settings.level_thresholds)


def _artifacts(settings: Settings) -> str | None:
    """The embedded store keeps its artifacts beside its database; a server keeps its own."""
    return artifact_location(settings.mlflow_dir) if settings.mlflow_tracking_uri is None else None


def latest_levels(settings: Settings, entity: str, result: TrainingResult) -> tuple[str, dict[str, int]]:
    """Risk levels of every entity at the latest snapshot (labelled or not) by the final model."""
    table = load_training_table(settings.warehouse_dir, entity, settings.horizon_days, latest_only=True)
    h = table.hawkes
    model = for_rows(result.model, h.history, h.row_entity, h.row_day)
    p = model.predict_proba(table.X)[:, 1]
    snaps = table.frame["snapshot"].to_numpy()
    if settings.level_budgets is not None:
        levels = levels_by_budget(p, snaps, settings.level_budgets)
    else:
        levels = levels_by_threshold(p, settings.level_thresholds)
    counts = pd.Series(levels).value_counts()
    return str(pd.Timestamp(snaps[0]).date()), {lv: int(counts.get(lv, 0)) for lv in LEVELS}


def _result_lines(result: TrainingResult) -> list[str]:
    cols = [c for c in ("roc_auc", "pr_auc", "precision_at_k", "pai", "ece", "share_of_oracle_lift") if c in result.summary]
    table = result.summary[["model", *cols]].copy()
    lines = [f"  backtest: {len(result.folds)} monthly folds from {str(result.folds[0].test_start)[:10]}, "
             f"{len(result.predictions):,} scored rows"]
    lines += ["  " + line for line in table.to_string(index=False, float_format=lambda v: f"{v:.3f}").splitlines()]
    if result.assessment:
        lines.append(f"  prior assessment level as a ranking: ROC-AUC {result.assessment['assessment_roc_auc']:.3f} "
                     f"vs model {result.assessment['model_roc_auc']:.3f} on the same project rows")
    return lines


def train_job(settings: Settings, entities: Sequence[str] = ENTITIES, model: str | None = None,
              register: bool = True, gate: bool = True, progress: Progress | None = None,
              distributed: bool = False) -> JobResult:
    """Tune, backtest against the baselines (and the oracle), fit, log a run to MLflow and,
    with ``register``, register the model; with ``gate`` run the promotion gate on it. With
    ``distributed`` the final model's trees grow on the current Dask client's workers."""
    started = time.perf_counter()
    options = training_options(settings, model, distributed)
    if register and options.model not in BUNDLED_MODELS:
        raise UnknownModelError(f"model {options.model!r} cannot be registered: only {', '.join(BUNDLED_MODELS)} "
                                f"export to a scoring bundle; evaluate it with `fengqiao backtest --model {options.model}`")
    client = use_store(settings.tracking_uri)
    lines = [f"MLflow store: {settings.tracking_uri}"]
    for entity in entities:
        path = Path(settings.warehouse_dir) / f"features_{entity}.parquet"
        if entity == "project" and not path.exists():
            lines.append("project: no feature table (the warehouse has no projects) — skipped")
            continue
        table = load_training_table(settings.warehouse_dir, entity, settings.horizon_days)
        result = train_and_backtest(table, options, progress=progress)
        record = log_training(result, table, options, client, _artifacts(settings), register=register)
        lines += [f"{entity}: run {record.run_id}" + (f", registered version {record.version}" if record.version else ""),
                  *_result_lines(result), f"  report: {record.report}"]
        snapshot, levels = latest_levels(settings, entity, result)
        lines.append(f"  levels at {snapshot}: " + ", ".join(f"{lv} {n}" for lv, n in levels.items()))
        if register and gate:
            decision = promote(client, table, options, version=record.version, progress=progress,
                               challenger_backtest=result.predictions)
            lines.append(f"  promotion gate: {decision.reason}")
    return JobResult("train", time.perf_counter() - started, lines)


def backtest_job(settings: Settings, entities: Sequence[str] = ENTITIES, model: str | None = None,
                 progress: Progress | None = None) -> JobResult:
    """The backtest and its report as an MLflow run, without registering a model."""
    return _renamed(train_job(settings, entities, model, register=False, gate=False, progress=progress), "backtest")


def promote_job(settings: Settings, entity: str, version: str | None = None, progress: Progress | None = None) -> JobResult:
    """Run the promotion gate on a registered version (default: the latest)."""
    started = time.perf_counter()
    client = use_store(settings.tracking_uri)
    table = load_training_table(settings.warehouse_dir, entity, settings.horizon_days)
    decision = promote(client, table, training_options(settings), version=version, progress=progress)
    return JobResult("promote", time.perf_counter() - started, [f"{entity} version {decision.challenger_version}: {decision.reason}"])


def check_store(settings: Settings) -> str:
    """A fingerprint of the registry's state — every version and the champion of each
    registered model — read from the MLflow store; ``ServiceUnavailable`` naming the store
    when it does not answer (checked before a flow changes anything)."""
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        try:
            requests.get(uri.rstrip("/") + "/health", timeout=settings.service_timeout_s).raise_for_status()
        except requests.RequestException as err:
            raise ServiceUnavailable(f"the MLflow tracking server {uri} did not answer ({type(err).__name__}); "
                                     f"start it or set FENGQIAO_MLFLOW_TRACKING_URI") from err
    client = use_store(uri)
    state = {}
    try:
        for name in REGISTERED_MODELS.values():
            versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            try:
                champion = client.get_registered_model(name).aliases.get(CHAMPION) if versions else None
            except MlflowException:
                champion = None
            state[name] = {"versions": versions, "champion": champion}
    except (MlflowException, OperationalError, requests.RequestException) as err:
        raise ServiceUnavailable(f"the MLflow store {uri} cannot be read ({type(err).__name__}); "
                                 f"check FENGQIAO_MLFLOW_TRACKING_URI") from err
    return fingerprint(registry=state)


def drift_job(settings: Settings, entities: Sequence[str] = ENTITIES) -> JobResult:
    """Compare the latest snapshot's features with the champion's training rows (PSI per
    feature and group, missing shares, matured label rate); write ``drift_<entity>.json`` to
    the warehouse, log it as an MLflow run beside the champion's, and warn above the settings'
    thresholds."""
    started = time.perf_counter()
    client = use_store(settings.tracking_uri)
    lines = []
    for entity in entities:
        name = REGISTERED_MODELS[entity]
        try:
            champion = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            lines.append(f"{entity}: no champion of {name} yet — no drift check")
            continue
        run = client.get_run(champion.run_id)
        cut = pd.Timestamp(run.data.params["last_labelled_snapshot"])
        table = load_training_table(settings.warehouse_dir, entity, settings.horizon_days, labelled_only=False)
        frame = table.frame
        snaps = pd.to_datetime(frame["snapshot"]).dt.tz_localize(None).dt.normalize()
        labelled = frame["label"].notna().to_numpy()
        training = (snaps <= cut).to_numpy() & labelled
        latest = (snaps == snaps.max()).to_numpy()
        matured = (snaps > cut).to_numpy() & labelled
        spec = read_spec(client, champion.run_id)
        groups = {f: feature_group(entity, f) for f in spec.features if f in frame.columns}
        report = drift_report(frame[training], frame[latest], groups, frame.loc[training, "label"].to_numpy(),
                              frame.loc[matured, "label"].to_numpy() if matured.any() else None,
                              str(snaps.max().date()), psi_warn=settings.drift_psi_warn,
                              missing_warn=settings.drift_missing_warn)
        record = {"entity": entity, "model_version": str(champion.version), "checked_at":
                  pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"), **report.as_dict()}
        path = Path(settings.warehouse_dir) / f"drift_{entity}.json"
        text = json.dumps(record, ensure_ascii=False, indent=1, default=float)
        write_atomic(path, lambda out: out.write_text(text, encoding="utf-8"))
        log_drift(client, entity, report, champion.version, _artifacts(settings), path)
        lines += [f"{entity}: drift of snapshot {report.snapshot} against champion version {champion.version}'s "
                  f"training rows (to {cut.date()}), {len(report.warnings)} warning(s)", *group_psi_table(report)]
    return JobResult("drift", time.perf_counter() - started, lines)


def has_champion(settings: Settings, entity: str = "village") -> bool:
    """Whether the registry holds a champion of the entity kind (the village model by default)."""
    try:
        use_store(settings.tracking_uri).get_model_version_by_alias(REGISTERED_MODELS[entity], CHAMPION)
    except MlflowException:
        return False
    return True


def score_job(settings: Settings, entities: Sequence[str] = ENTITIES, source: str | None = None) -> JobResult:
    """Score the latest snapshot of each entity kind with its champion (or the bundle at
    ``source``: a folder or an MLflow model URI) and publish the scores and the history."""
    started = time.perf_counter()
    if source is None or is_registry_uri(source):
        use_store(settings.tracking_uri)
    lines = []
    for entity in entities:
        if entity == "project" and not (Path(settings.warehouse_dir) / "features_project.parquet").exists():
            lines.append("project: no feature table (the warehouse has no projects) — skipped")
            continue
        if source is None and not has_champion(settings, entity):
            lines.append(f"{entity}: no champion of {REGISTERED_MODELS[entity]} yet — not scored (train one first)")
            continue
        bundle = load_bundle(source or champion_uri(entity))
        latest = load_training_table(settings.warehouse_dir, entity, bundle.meta["horizon_days"], latest_only=True)
        scores = score_snapshot(bundle, latest.frame, entity)
        written, history = write_scores(settings.warehouse_dir, entity, scores)
        counts = scores["level"].value_counts()
        lines += [f"{entity}: {len(scores):,} scored at snapshot {str(scores['snapshot'].iloc[0])[:10]} by model "
                  f"version {bundle.version}: " + ", ".join(f"{lv} {int(counts.get(lv, 0))}" for lv in LEVEL_NAMES),
                  f"  {written}", f"  {history}"]
    return JobResult("score", time.perf_counter() - started, lines)


def bundle_export_job(settings: Settings, model_file: Path, out_dir: Path, entity: str) -> JobResult:
    """Turn a LightGBM model text file into a bundle (identity calibration, the settings'
    level thresholds and horizon)."""
    started = time.perf_counter()
    facts = BundleFacts(entity, settings.horizon_days, settings.level_thresholds)
    export_model_file(model_file, out_dir, facts)
    bundle = load_bundle(out_dir)
    return JobResult("bundle export", time.perf_counter() - started,
                     [f"{out_dir}: {bundle.meta['trees']['count']} trees, {len(bundle.feature_names)} features"])


def bundle_explain_job(source: str, features: Path, out: Path) -> JobResult:
    """Per row of a features parquet: raw score, probability, one ``contrib_<feature>``
    column per feature and ``contrib_bias`` (rows in the input's order, id columns kept)."""
    started = time.perf_counter()
    bundle = load_bundle(source)
    frame = pd.read_parquet(features)
    contributions = bundle.contributions(feature_matrix(bundle, frame, str(features)))
    raw = contributions.sum(axis=1)
    kept = [c for c in ("village_id", "project_id", "snapshot") if c in frame.columns]
    table = pd.concat([frame[kept].reset_index(drop=True), pd.DataFrame(
        {"raw_score": raw, "probability": bundle.probability_from_raw(raw),
         **{f"contrib_{f}": contributions[:, j] for j, f in enumerate(bundle.feature_names)},
         "contrib_bias": contributions[:, -1]})], axis=1)
    write_atomic(out, lambda path: table.to_parquet(path, index=False))
    return JobResult("bundle explain", time.perf_counter() - started, [f"{out}: {len(table):,} rows explained"])


def live_record_job(settings: Settings, entities: Sequence[str] = ENTITIES) -> JobResult:
    """The live model's record: every scored snapshot whose labels have matured, judged with the
    backtest's figures, written to ``live_record_<entity>.parquet``."""
    started = time.perf_counter()
    lines = []
    for entity in entities:
        scored, features = history_path(settings.warehouse_dir, entity), Path(settings.warehouse_dir) / f"features_{entity}.parquet"
        if not scored.exists() or not features.exists():
            lines.append(f"{entity}: no score history yet — no live record")
            continue
        key = id_column(entity)
        labels = pd.read_parquet(features, columns=[key, "snapshot", "label"])
        record = live_record(pd.read_parquet(scored), labels, key, settings.alert_budget)
        path = Path(settings.warehouse_dir) / f"live_record_{entity}.parquet"
        write_atomic(path, lambda out, table=record: table.to_parquet(out, index=False))
        if record.empty:
            lines.append(f"{entity}: no scored snapshot has matured labels yet ({path})")
            continue
        lines.append(f"{entity}: live record of {len(record)} scored snapshot(s) with matured labels ({path}); latest:")
        for row in record.tail(4).itertuples():
            lines.append(f"  {str(row.snapshot)[:10]} v{row.model_version}: {row.incidents} incidents in {row.entities} "
                         f"entities, ROC-AUC {row.roc_auc:.3f}, PR-AUC {row.pr_auc:.3f}, "
                         f"precision@{settings.alert_budget:.0%} {row.precision_at_k:.3f}")
    return JobResult("live record", time.perf_counter() - started, lines)


def _renamed(result: JobResult, name: str) -> JobResult:
    return JobResult(name, result.seconds, result.lines)


__all__ = ["backtest_job", "bundle_explain_job", "bundle_export_job", "check_store", "drift_job", "has_champion", "latest_levels",
           "live_record_job", "promote_job", "score_job", "train_job", "training_options"]
