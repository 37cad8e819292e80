"""Training, MLflow runs, the registry and the promotion gate on a small simulated world."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from models.bundle import load_bundle
from models.data import load_training_table
from models.featuremeta import incident_lag_columns
from models.tracking import CHAMPION, REGISTERED_MODELS, artifact_location, gate_rule, log_training, promote, use_store
from models.training import TrainingOptions, train_and_backtest

FAST = dict(backtest_months=2, tuning_trials=0, bootstrap_draws=10, calibration_weeks=6)


@pytest.fixture(scope="module")
def village_run(model_warehouse):
    table = load_training_table(model_warehouse, "village", 30)
    options = TrainingOptions(compare_with=("recent_incidents", "incident_lags"), **FAST)
    return table, options, train_and_backtest(table, options)


def test_training_reports_every_model_the_oracle_and_each_fold(village_run):
    table, options, result = village_run
    assert list(result.summary["model"]) == ["blend", "recent_incidents", "incident_lags", "oracle"]
    assert set(result.per_fold["fold"]) == {"1", "2", "all"}
    blend = result.summary.set_index("model").loc["blend"]
    assert 0.5 < blend["roc_auc"] <= 1 and blend["pr_auc_low"] <= blend["pr_auc"] <= blend["pr_auc_high"]
    assert result.figure("share_of_oracle_lift", "oracle") == pytest.approx(1.0)
    assert result.coverage["incidents"].sum() == result.predictions["label"].sum()
    assert set(result.importance["group"]) <= {"disputes", "land_and_projects", "petitions", "unresolved_backlog",
                                                "patrol_coverage", "incident_history", "neighbourhood", "capacity",
                                                "trend", "calendar"}


def test_a_runs_artifacts_exist_in_a_real_mlflow_store_and_load_back(village_run, tmp_path):
    table, options, result = village_run
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    client = use_store(uri)
    record = log_training(result, table, options, client, artifact_location(tmp_path / "mlflow"))
    assert (tmp_path / "mlflow" / "mlflow.db").exists()
    run = client.get_run(record.run_id)
    assert run.data.tags["data_fingerprint"] == table.fingerprint and run.data.tags["git_commit"]
    assert run.data.params["sources"] == ",".join(table.sources) and "pr_auc" in run.data.metrics
    assert len(client.get_metric_history(record.run_id, "fold_pr_auc")) == 2
    folder = Path(mlflow.artifacts.download_artifacts(run_id=record.run_id, dst_path=str(tmp_path / "dl")))
    for name in ("spec.json", "features.json", "backtest_per_fold.csv", "backtest_summary.csv", "coverage_by_county.csv",
                 "report/report.html", "report/pr_curves.png", "report/calibration.png", "report/lift.png",
                 "report/importance_groups.png", "report/shap_groups.png", "report/coverage.png"):
        assert (folder / name).stat().st_size > 0, name
    assert "Backtest summary" in (folder / "report" / "report.html").read_text()
    bundle = load_bundle(f"models:/{REGISTERED_MODELS['village']}/{record.version}")
    X = table.X.tail(50)
    assert bundle.version == record.version and bundle.meta["mlflow_run_id"] == record.run_id
    assert bundle.meta["training_data_fingerprint"] == table.fingerprint
    assert np.abs(bundle.probability(X[bundle.feature_names].to_numpy()) - result.model.predict(X)).max() < 1e-12
    served = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODELS['village']}/{record.version}").predict(X)
    assert np.abs(np.asarray(served) - result.model.predict(X)).max() < 1e-12


def test_the_promotion_gate_refuses_a_worse_challenger_and_says_why(village_run, tmp_path):
    table, options, result = village_run
    client = use_store(f"sqlite:///{tmp_path / 'gate.db'}")
    artifacts = artifact_location(tmp_path)
    first = log_training(result, table, options, client, artifacts)
    assert promote(client, table, options).promoted  # no champion yet
    worse_options = TrainingOptions(model="incident_lags", compare_with=(), **FAST)
    worse = train_and_backtest(table, worse_options)
    second = log_training(worse, table, worse_options, client, artifacts)
    decision = promote(client, table, options, version=second.version)
    assert not decision.promoted
    assert decision.reason.startswith("refused:") and "PR-AUC" in decision.reason
    assert decision.figures["challenger"]["pr_auc"] < decision.figures["champion"]["pr_auc"]
    assert str(client.get_model_version_by_alias(REGISTERED_MODELS["village"], CHAMPION).version) == first.version
    tags = client.get_run(second.run_id).data.tags
    assert tags["promotion.decision"] == "refused" and tags["promotion.reason"] == decision.reason[:5000]
    # the training's own backtest of the challenger stands in for its refit, figure for figure
    reused = promote(client, table, options, version=second.version, challenger_backtest=worse.predictions)
    assert reused.figures == decision.figures


def test_gate_rule_promotes_a_challenger_that_is_not_worse():
    champion = {"pr_auc": 0.20, "roc_auc": 0.80, "ece": 0.010}
    assert gate_rule({"pr_auc": 0.22, "roc_auc": 0.798, "ece": 0.012}, champion)[0]
    promoted, reason = gate_rule({"pr_auc": 0.22, "roc_auc": 0.78, "ece": 0.03}, champion)
    assert not promoted and "ROC-AUC" in reason and "ECE" in reason


def test_training_works_on_a_warehouse_with_only_regions_and_incidents(incidents_only_warehouse):
    assert not (incidents_only_warehouse / "features_project.parquet").exists()
    table = load_training_table(incidents_only_warehouse, "village", 30)
    assert table.sources == ["regions", "incidents"]
    assert not any(c.startswith(("disputes", "petitions", "unresolved")) for c in table.features)
    assert {*incident_lag_columns("village"), "incidents_all_history", "incidents_per_year_shrunk"} <= set(table.features)
    result = train_and_backtest(table, TrainingOptions(compare_with=("incident_lags",), **FAST,
                                                       untuned_learning_rates={"village": 0.1, "project": 0.2}))
    p = result.predictions["blend"]
    assert p.between(0, 1).all() and result.figure("roc_auc") > 0.5
    # the untuned main model takes its entity's learning rate, and the run records it
    assert result.params == {"learning_rate": 0.1}
    assert result.model.model_.trees_.booster_.params["learning_rate"] == 0.1


def test_projects_are_compared_with_the_prior_assessment(model_warehouse):
    table = load_training_table(model_warehouse, "project", 30)
    assert table.assessment is not None and not np.isnan(table.assessment).all()
    result = train_and_backtest(table, TrainingOptions(compare_with=("recent_incidents",), **FAST,
                                                       untuned_learning_rates={"village": 0.1}))
    assert {"assessment_roc_auc", "model_roc_auc", "rows"} <= set(result.assessment)
    assert result.params == {}  # no learning rate set for projects: the default parameters


def test_the_engines_lags_and_long_memory_reach_the_training_table_and_behave(model_warehouse):
    table = load_training_table(model_warehouse, "village", 30)
    assert np.array_equal(table.frame["incidents_lag_1w"].to_numpy(), table.frame["incidents_7d"].to_numpy())
    per_village = table.frame.groupby("village_id")
    assert (per_village["incidents_all_history"].diff().dropna() >= 0).all()
    assert (table.frame["incidents_per_year_shrunk"] >= 0).all()
    # within a county at one snapshot, the shrunk rate orders villages as their history does,
    # (the same exposure and the same county prior for all of them)
    last = table.frame[table.frame["snapshot"] == table.frame["snapshot"].max()]
    last = last.assign(county=pd.Series(table.county, index=table.frame.index)[last.index])
    for _, part in last.groupby("county"):
        ordered = part.sort_values("incidents_all_history")
        assert (ordered["incidents_per_year_shrunk"].diff().dropna() >= -1e-6).all()


def test_the_hawkes_model_backtests_alone_and_as_a_feature_of_lightgbm(model_warehouse):
    table = load_training_table(model_warehouse, "village", 30)
    options = TrainingOptions(model="lightgbm_hawkes", compare_with=("hawkes",), **FAST)
    result = train_and_backtest(table, options)
    hawkes = result.model.model_.hawkes_
    assert 0 < hawkes.params_["alpha"] and 0 < hawkes.params_["beta"]
    assert "hawkes_p_incident" in set(result.importance["feature"])
    assert result.figure("roc_auc", "hawkes") > 0.55 and result.figure("roc_auc") > 0.55
