"""`fengqiao train`, `backtest` and `promote` on one data root."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from pipelines.cli import app


@pytest.mark.slow
def test_cli_trains_registers_promotes_and_refuses_the_same_champion(model_warehouse, tmp_path, monkeypatch):
    root = tmp_path / "var"
    shutil.copytree(model_warehouse, root / "warehouse")
    for name, value in {"DATA_ROOT": str(root), "BACKTEST_MONTHS": "2", "TUNING_TRIALS": "0",
                        "BOOTSTRAP_DRAWS": "10"}.items():
        monkeypatch.setenv(f"FENGQIAO_{name}", value)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--entity", "village"])
    assert trained.exit_code == 0, trained.output
    assert "registered version 1" in trained.output and "promoted: there was no champion yet" in trained.output
    assert "levels at" in trained.output and (root / "mlflow" / "mlflow.db").exists()
    scored = runner.invoke(app, ["score", "--entity", "village"])
    assert scored.exit_code == 0, scored.output
    assert "by model version 1" in scored.output and (root / "warehouse" / "scores_village.parquet").exists()
    again = runner.invoke(app, ["promote", "--entity", "village", "--version", "1"])
    assert again.exit_code == 0 and "already the champion" in again.output
    backtest = runner.invoke(app, ["backtest", "--entity", "village", "--model", "recent_incidents"])
    assert backtest.exit_code == 0 and "registered version" not in backtest.output


def test_cli_promote_without_a_trained_model_says_what_to_do(tmp_path, monkeypatch, model_warehouse):
    root = tmp_path / "var"
    shutil.copytree(model_warehouse, root / "warehouse")
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(root))
    result = CliRunner().invoke(app, ["promote", "--entity", "village"])
    assert result.exit_code == 2 and "fengqiao train" in result.output


def test_cli_rejects_an_unknown_model_with_the_names_it_knows(tmp_path, monkeypatch, model_warehouse):
    root = tmp_path / "var"
    shutil.copytree(model_warehouse, root / "warehouse")
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(root))
    result = CliRunner().invoke(app, ["backtest", "--entity", "village", "--model", "xgboost"])
    assert result.exit_code == 2 and "lightgbm" in result.output
