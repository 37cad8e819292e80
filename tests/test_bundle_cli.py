"""`fengqiao bundle export`, `bundle explain` and `score` on a small simulated warehouse, and the
bundle's round trip through a real MLflow registry."""

from __future__ import annotations

import shutil

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.bundle import load_bundle
from models.bundle.export import BundleFacts, export_booster
from models.bundle.pyfunc import log_bundle
from models.data import load_training_table
from models.tracking import CHAMPION, REGISTERED_MODELS, use_store
from pipelines.cli import app


@pytest.fixture(scope="module")
def village_model(model_warehouse, tmp_path_factory):
    """A LightGBM model trained elsewhere (plain lgb.train) on the warehouse's village table,
    saved as a model text file."""
    table = load_training_table(model_warehouse, "village", 30)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 15, "num_threads": 1},
                        lgb.Dataset(table.X, table.y), num_boost_round=30)
    path = tmp_path_factory.mktemp("model") / "model.txt"
    booster.save_model(str(path))
    return booster, path


@pytest.fixture
def root(model_warehouse, tmp_path, monkeypatch):
    root = tmp_path / "var"
    shutil.copytree(model_warehouse, root / "warehouse")
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(root))
    return root


def test_bundle_export_and_explain_reproduce_lightgbm(village_model, root, tmp_path):
    booster, model_file = village_model
    runner = CliRunner()
    exported = runner.invoke(app, ["bundle", "export", str(model_file), str(tmp_path / "bundle")])
    assert exported.exit_code == 0, exported.output
    assert "30 trees" in exported.output
    latest = load_training_table(root / "warehouse", "village", 30, labelled_only=False).frame.tail(200)
    latest.to_parquet(tmp_path / "features.parquet")
    explained = runner.invoke(app, ["bundle", "explain", str(tmp_path / "bundle"), str(tmp_path / "features.parquet"),
                                    str(tmp_path / "explained.parquet")])
    assert explained.exit_code == 0, explained.output
    out = pd.read_parquet(tmp_path / "explained.parquet")
    X = latest[booster.feature_name()].to_numpy(dtype=float)
    contrib = booster.predict(X, pred_contrib=True)
    names = [f"contrib_{f}" for f in booster.feature_name()] + ["contrib_bias"]
    assert list(out.columns) == ["village_id", "snapshot", "raw_score", "probability", *names]
    assert np.abs(out[names].to_numpy() - contrib).max() <= 1e-9
    assert np.abs(out["raw_score"].to_numpy() - booster.predict(X, raw_score=True)).max() <= 1e-9
    assert np.abs(out["probability"].to_numpy() - booster.predict(X)).max() <= 1e-12


def test_bundle_export_refuses_a_file_that_is_not_a_model(root, tmp_path):
    (tmp_path / "model.txt").write_text("not a model")
    result = CliRunner().invoke(app, ["bundle", "export", str(tmp_path / "model.txt"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "is not a LightGBM model file" in result.output


def test_bundle_explain_names_missing_feature_columns(village_model, root, tmp_path):
    _, model_file = village_model
    runner = CliRunner()
    runner.invoke(app, ["bundle", "export", str(model_file), str(tmp_path / "bundle")])
    pd.DataFrame({"village_id": ["a"], "mediators": [1.0]}).to_parquet(tmp_path / "few.parquet")
    result = runner.invoke(app, ["bundle", "explain", str(tmp_path / "bundle"), str(tmp_path / "few.parquet"),
                                 str(tmp_path / "out.parquet")])
    assert result.exit_code == 2 and "few.parquet lacks" in result.output and "disputes_7d" in result.output


def test_score_ranks_the_latest_snapshot_and_keeps_a_history_without_duplicates(village_model, root, tmp_path):
    booster, model_file = village_model
    runner = CliRunner()
    runner.invoke(app, ["bundle", "export", str(model_file), str(tmp_path / "bundle")])
    first = runner.invoke(app, ["score", "--entity", "village", "--bundle", str(tmp_path / "bundle")])
    assert first.exit_code == 0, first.output
    scores = pd.read_parquet(root / "warehouse" / "scores_village.parquet")
    frame = load_training_table(root / "warehouse", "village", 30, labelled_only=False).frame
    latest = frame[frame["snapshot"] == frame["snapshot"].max()]
    assert len(scores) == len(latest) == scores["village_id"].nunique()
    assert (scores["snapshot"] == latest["snapshot"].max()).all()
    assert scores["rank"].tolist() == list(range(1, len(scores) + 1))
    assert scores["probability"].is_monotonic_decreasing
    expected = pd.Series(booster.predict(latest[booster.feature_name()].to_numpy(dtype=float)),
                         index=latest["village_id"].astype("str"))
    assert np.abs(scores["probability"].to_numpy() - expected[scores["village_id"]].to_numpy()).max() <= 1e-12
    assert set(scores["level"]) <= {"red", "orange", "yellow", "blue"} and (scores["model_version"] == "file").all()
    assert str(scores["scored_at"].dt.tz) == "UTC"
    assert scores["reason_1"].isin(booster.feature_name()).all()
    again = runner.invoke(app, ["score", "--entity", "village", "--bundle", str(tmp_path / "bundle")])
    assert again.exit_code == 0, again.output
    history = pd.read_parquet(root / "warehouse" / "score_history_village.parquet")
    assert len(history) == len(scores)
    assert list(history.columns) == ["village_id", "snapshot", "probability", "level", "model_version", "scored_at"]


def test_a_bundle_logged_to_mlflow_loads_by_its_champion_alias(village_model, tmp_path):
    booster, _ = village_model
    folder = export_booster(booster, tmp_path / "bundle", BundleFacts("village", 30, (0.3, 0.15, 0.05)))
    client = use_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("bundle-test", artifact_location=(tmp_path / "artifacts").as_uri())
    X = pd.DataFrame(np.random.default_rng(0).poisson(1.0, size=(20, booster.num_feature())).astype(float),
                     columns=booster.feature_name())
    with mlflow.start_run(experiment_id=experiment):
        info = log_bundle(folder, X.head(3), REGISTERED_MODELS["village"])
    client.set_registered_model_alias(REGISTERED_MODELS["village"], CHAMPION, info.registered_model_version)
    bundle = load_bundle(f"models:/{REGISTERED_MODELS['village']}@{CHAMPION}")
    assert bundle.version == "1" and bundle.feature_names == booster.feature_name()
    assert np.abs(bundle.probability(X.to_numpy()) - booster.predict(X.to_numpy())).max() <= 1e-12
    served = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODELS['village']}@{CHAMPION}")
    assert np.abs(np.asarray(served.predict(X)) - booster.predict(X.to_numpy())).max() <= 1e-12
    assert served.metadata.get_input_schema().input_names() == booster.feature_name()


def test_loading_a_missing_registered_model_is_a_bundle_error(tmp_path):
    from models.bundle import BundleError

    use_store(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(BundleError, match="cannot load the model models:/village-risk@champion"):
        load_bundle("models:/village-risk@champion")
