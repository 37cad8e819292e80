"""MLflow: a run per training, registered models and the promotion gate.

The embedded default is a SQLite store and an artifact folder under the data root
(``<data_root>/mlflow/mlflow.db``, ``<data_root>/mlflow/artifacts``); any tracking URI works.
Registered models are ``village-risk`` and ``project-risk``, each version a scoring bundle
logged as a pyfunc model (``models.bundle``); the alias ``champion`` is moved
only by ``promote``, which scores the challenger and the champion on the same backtest folds
and writes in the challenger's run why it promoted or refused.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from fengqiao.errors import ConfigurationError
from fengqiao.progress import Progress
from models.backtest import rolling_folds, run_backtest
from models.bundle.export import BundleFacts, export_model
from models.bundle.pyfunc import BUNDLE_ARTIFACT, log_bundle
from models.catalogue import build_model
from models.data import TrainingTable
from models.drift import DriftReport
from models.evaluation import summary_with_intervals
from models.featuremeta import feature_group
from models.metrics import METRICS
from models.report import write_report
from models.timesplit import as_datetime64
from models.training import TrainingOptions, TrainingResult

REGISTERED_MODELS = {"village": "village-risk", "project": "project-risk"}
CHAMPION = "champion"


def artifact_location(mlflow_dir: Path) -> str:
    """The artifact folder of the embedded store (``<mlflow_dir>/artifacts``) as a URI."""
    return (Path(mlflow_dir) / "artifacts").resolve().as_uri()


def use_store(tracking_uri: str) -> MlflowClient:
    """Point MLflow (tracking and registry) at ``tracking_uri``; a SQLite file's folder is
    created if missing."""
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_id(client: MlflowClient, entity: str, artifacts: str | None) -> str:
    """The experiment of an entity kind (``fengqiao-village``, ``fengqiao-project``)."""
    name = f"fengqiao-{entity}"
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found else client.create_experiment(name, artifact_location=artifacts)


def git_commit() -> str:
    """The commit of the code that trained (``unknown`` outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class ModelSpec:
    """What it takes to fit a model again on other folds: recorded with every run."""

    model: str
    params: dict
    features: list[str]
    horizon_days: int
    calibration: str
    calibration_weeks: int

    def build(self, entity: str, hawkes=None):
        return build_model(self.model, entity, self.features, self.horizon_days, lightgbm_params=self.params,
                           calibration=self.calibration, calibration_weeks=self.calibration_weeks, hawkes=hawkes)


@dataclass
class RunRecord:
    run_id: str
    experiment_id: str
    model_name: str
    version: str | None
    report: str


def log_training(result: TrainingResult, table: TrainingTable, options: TrainingOptions, client: MlflowClient,
                 artifacts: str | None, register: bool = True) -> RunRecord:
    """One MLflow run: parameters, per-fold and overall metrics, data fingerprint, git commit,
    feature list and source tables, the report, and (with ``register``) the model as a new
    version of ``village-risk`` / ``project-risk``."""
    exp = experiment_id(client, table.entity, artifacts)
    spec = ModelSpec(options.model, result.params, table.features, options.horizon_days, options.calibration,
                     options.calibration_weeks)
    with mlflow.start_run(experiment_id=exp, run_name=f"{table.entity}-{options.model}") as run:
        mlflow.set_tags({"entity": table.entity, "git_commit": git_commit(), "data_fingerprint": table.fingerprint,
                         "sources": ",".join(table.sources), "model": options.model})
        mlflow.log_params({"model": options.model, "horizon_days": options.horizon_days,
                           "backtest_months": options.backtest_months, "alert_budget": options.alert_budget,
                           "tuning_trials": options.tuning_trials, "calibration": options.calibration,
                           "calibration_method": getattr(result.model, "method_", "none"),
                           "calibration_weeks": options.calibration_weeks, "features": len(table.features),
                           "training_rows": len(table.frame), "snapshots": table.frame["snapshot"].nunique(),
                           "last_labelled_snapshot": str(pd.Timestamp(table.frame["snapshot"].max()).date()),
                           "sources": ",".join(table.sources), "data_fingerprint": table.fingerprint})
        mlflow.log_params({f"tuned.{k}": v for k, v in result.params.items()})
        for _, row in result.per_fold.iterrows():
            if row["fold"] == "all":
                continue
            prefix = "" if row["model"] == options.model else f"{row['model']}."
            for metric in METRICS:
                if pd.notna(row[metric]):
                    mlflow.log_metric(f"{prefix}fold_{metric}", float(row[metric]), step=int(row["fold"]))
        for _, row in result.summary.iterrows():
            prefix = "" if row["model"] == options.model else f"{row['model']}."
            mlflow.log_metrics({f"{prefix}{k}": float(v) for k, v in row.items()
                                if k not in ("model", "base_rate") and pd.notna(v)})
        for key, value in result.assessment.items():
            mlflow.log_metric(f"assessment.{key}", float(value))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "spec.json").write_text(json.dumps(asdict(spec), indent=1))
            (folder / "features.json").write_text(json.dumps(
                {"features": [{"name": f, "group": feature_group(table.entity, f)} for f in table.features],
                 "sources": table.sources, "data_fingerprint": table.fingerprint}, ensure_ascii=False, indent=1))
            result.per_fold.to_csv(folder / "backtest_per_fold.csv", index=False)
            result.summary.to_csv(folder / "backtest_summary.csv", index=False)
            result.coverage.to_csv(folder / "coverage_by_county.csv", index=False)
            result.importance.to_csv(folder / "feature_importance.csv", index=False)
            if not result.tuning_trials.empty:
                result.tuning_trials.to_csv(folder / "tuning_trials.csv", index=False)
            facts = {"entity": table.entity, "model": options.model, "data fingerprint": table.fingerprint,
                     "source tables": ", ".join(table.sources), "features": str(len(table.features)),
                     "git commit": git_commit(), "horizon (days)": str(options.horizon_days),
                     "alert budget": f"{options.alert_budget:.0%} of entities per snapshot",
                     "calibration": str(getattr(result.model, "method_", "none")),
                     "backtest": f"{len(result.folds)} monthly folds from {str(result.folds[0].test_start)[:10]}",
                     "tuned parameters": json.dumps(result.params)}
            write_report(result, table.X, folder / "report", f"Fengqiao {table.entity} risk model — {options.model}", facts)
            mlflow.log_artifacts(tmp)
        version = None
        if register:
            version = _register_bundle(result, table, options, run.info.run_id)
        report = f"{run.info.artifact_uri}/report/report.html"
    return RunRecord(run.info.run_id, exp, options.model, version, report)


def backtest_figures(result: TrainingResult) -> dict[str, float]:
    """The trained model's backtest metrics over all folds (what the bundle records)."""
    row = result.summary[result.summary["model"] == result.model_name].iloc[0]
    return {k: float(row[k]) for k in METRICS if k in row and pd.notna(row[k])}


def _register_bundle(result: TrainingResult, table: TrainingTable, options: TrainingOptions, run_id: str) -> str:
    """Export the final model to a scoring bundle, log it as the run's pyfunc model and
    register it as a new version of the entity's model; returns the version."""
    facts = BundleFacts(table.entity, options.horizon_days, options.level_thresholds,
                        training_data_fingerprint=table.fingerprint, backtest_metrics=backtest_figures(result),
                        mlflow_run_id=run_id)
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_model(result.model, Path(tmp) / BUNDLE_ARTIFACT, facts)
        info = log_bundle(folder, table.X.head(3), REGISTERED_MODELS[table.entity])
    return str(info.registered_model_version)


def read_spec(client: MlflowClient, run_id: str) -> ModelSpec:
    """The ``ModelSpec`` a run recorded."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="spec.json", dst_path=tmp)
        return ModelSpec(**json.loads(Path(path).read_text()))


@dataclass
class GateDecision:
    promoted: bool
    reason: str
    challenger_version: str
    champion_version: str | None
    figures: dict


def gate_rule(challenger: dict[str, float], champion: dict[str, float], max_roc_auc_loss: float = 0.005,
              max_ece_gain: float = 0.005) -> tuple[bool, str]:
    """Promote when, on the same folds, the challenger's PR-AUC is at least the champion's,
    its ROC-AUC is no more than ``max_roc_auc_loss`` lower and its ECE no more than
    ``max_ece_gain`` higher. The reason names every figure and every failed condition."""
    failures = []
    if challenger["pr_auc"] < champion["pr_auc"]:
        failures.append(f"PR-AUC {challenger['pr_auc']:.4f} is below the champion's {champion['pr_auc']:.4f}")
    if challenger["roc_auc"] < champion["roc_auc"] - max_roc_auc_loss:
        failures.append(f"ROC-AUC {challenger['roc_auc']:.4f} is more than {max_roc_auc_loss} below the champion's "
                        f"{champion['roc_auc']:.4f}")
    if challenger["ece"] > champion["ece"] + max_ece_gain:
        failures.append(f"ECE {challenger['ece']:.4f} exceeds the champion's {champion['ece']:.4f} by more than {max_ece_gain}")
    figures = (f"challenger PR-AUC {challenger['pr_auc']:.4f}, ROC-AUC {challenger['roc_auc']:.4f}, ECE {challenger['ece']:.4f}; "
               f"champion PR-AUC {champion['pr_auc']:.4f}, ROC-AUC {champion['roc_auc']:.4f}, ECE {champion['ece']:.4f}")
    if failures:
        return False, "refused: " + "; ".join(failures) + f" ({figures})"
    return True, f"promoted: not worse on PR-AUC, ROC-AUC and ECE on the same folds ({figures})"


def promote(client: MlflowClient, table: TrainingTable, options: TrainingOptions, version: str | None = None,
            progress: Progress | None = None, challenger_backtest: pd.DataFrame | None = None) -> GateDecision:
    """Run the promotion gate for a version (default: the latest) of the entity's registered
    model: with no champion it is promoted; else both are refitted and scored on the same
    backtest folds of ``table`` and ``gate_rule`` decides. The decision and its reason are
    written in the challenger's run (tags ``promotion.*``, metrics ``gate.*``, ``gate.json``).

    ``challenger_backtest``: the predictions of the training that made the challenger, on this
    table with these options (``TrainingResult.predictions``). Refitting the challenger on the
    same folds would give exactly them, so only the champion is refitted — half the gate."""
    name = REGISTERED_MODELS[table.entity]
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as err:
        raise ConfigurationError(f"no registered model {name!r}: run `fengqiao train` first") from err
    if not versions:
        raise ConfigurationError(f"no registered model {name!r}: run `fengqiao train` first")
    chosen = version or str(max(int(v.version) for v in versions))
    challenger = client.get_model_version(name, chosen)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if champion is None:
        promoted, reason, figures = True, "promoted: there was no champion yet", {}
    elif champion.version == challenger.version:
        promoted, reason, figures = False, f"refused: version {chosen} is already the champion", {}
    else:
        specs = {"challenger": read_spec(client, challenger.run_id), "champion": read_spec(client, champion.run_id)}
        missing = {k: sorted(set(s.features) - set(table.features)) for k, s in specs.items()}
        if any(missing.values()):
            raise ConfigurationError(f"the warehouse lacks features the models were trained on: {missing}")
        snaps = as_datetime64(table.snapshots)
        folds = rolling_folds(snaps, months=options.backtest_months)
        known = _backtest_column(challenger_backtest, specs["challenger"].model, folds, snaps)
        models = {k: s.build(table.entity, table.hawkes) for k, s in specs.items()
                  if not (k == "challenger" and known is not None)}
        preds = run_backtest(table.X, table.y, snaps, models, folds, options.horizon_days, progress=progress,
                             n_jobs=options.n_jobs)
        if known is not None:
            preds["challenger"] = known.loc[preds["row"]].to_numpy()
        summary = summary_with_intervals(preds, list(specs), options.alert_budget, draws=0).set_index("model")
        figures = {k: {m: float(summary.loc[k, m]) for m in ("pr_auc", "roc_auc", "ece", "brier", "precision_at_k")}
                   for k in specs}
        promoted, reason = gate_rule(figures["challenger"], figures["champion"])
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
    decision = GateDecision(promoted, reason, str(challenger.version), str(champion.version) if champion else None,
                            figures)
    client.set_tag(challenger.run_id, "promotion.decision", "promoted" if promoted else "refused")
    client.set_tag(challenger.run_id, "promotion.reason", reason[:5000])
    client.set_tag(challenger.run_id, "promotion.champion_version", str(decision.champion_version))
    for who, figs in figures.items():
        for metric, value in figs.items():
            client.log_metric(challenger.run_id, f"gate.{who}.{metric}", value)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gate.json"
        path.write_text(json.dumps(asdict(decision), indent=1, default=str))
        client.log_artifact(challenger.run_id, str(path))
    client.set_model_version_tag(name, challenger.version, "promotion", reason[:5000])
    return decision


def _backtest_column(predictions: pd.DataFrame | None, model: str, folds: list, snaps: np.ndarray) -> pd.Series | None:
    """``model``'s backtest predictions by row, if ``predictions`` scored exactly the test rows
    of ``folds`` (else None: the challenger is refitted)."""
    if predictions is None or model not in predictions.columns:
        return None
    rows = np.sort(np.concatenate([np.flatnonzero(f.test_rows(snaps)) for f in folds]))
    if not np.array_equal(np.sort(predictions["row"].to_numpy()), rows):
        return None
    return predictions.set_index("row")[model]


def log_drift(client: MlflowClient, entity: str, report: DriftReport, version: str, artifacts: str | None,
              record: Path) -> str:
    """The drift check as its own run in the entity's experiment (tagged with the champion's
    version): each group's largest PSI as a metric, the full check as an artifact."""
    exp = experiment_id(client, entity, artifacts)
    run = client.create_run(exp, run_name=f"{entity}-drift-{report.snapshot}",
                            tags={"entity": entity, "kind": "drift", "champion_version": str(version),
                                  "snapshot": report.snapshot, "warnings": str(len(report.warnings))})
    for row in report.groups.itertuples():
        client.log_metric(run.info.run_id, f"psi_max.{row.group}", float(row.psi_max))
    if report.label_rate_matured is not None:
        client.log_metric(run.info.run_id, "label_rate_matured", report.label_rate_matured)
    client.log_metric(run.info.run_id, "label_rate_training", report.label_rate_training)
    client.log_artifact(run.info.run_id, str(record))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def champion_uri(entity: str) -> str:
    """The registry URI of an entity kind's champion (``models:/village-risk@champion``)."""
    return f"models:/{REGISTERED_MODELS[entity]}@{CHAMPION}"


__all__ = ["CHAMPION", "REGISTERED_MODELS", "GateDecision", "ModelSpec", "RunRecord", "artifact_location",
           "backtest_figures", "champion_uri", "gate_rule", "git_commit", "log_drift", "log_training", "promote", "use_store"]
