"""The operator's path through the CLI: simulate → ingest → features, on one data root."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contracts import CONTRACTS
from pipelines.cli import app
from pipelines.simulate.export import write_export
from features.ingest import run_ingest


def test_a_clean_world_ingests_without_a_single_reject(small_world, tmp_path):
    write_export(small_world, tmp_path / "raw")
    report = run_ingest(tmp_path / "raw", tmp_path / "warehouse", b"k" * 32,
                        as_of=small_world.config.end_ts)
    for name, frame in small_world.tables.items():
        table = report.tables[name]
        assert (table.read, table.accepted, table.rejected) == (len(frame), len(frame), 0), name


@pytest.mark.slow
def test_cli_runs_the_main_job_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(tmp_path / "var"))
    runner = CliRunner()
    raw = tmp_path / "var" / "raw"
    steps = [
        ["simulate", "--seed", "9", "--scale", "0.1", "--years", "1.6", "--dirty", "--out", str(raw)],
        ["ingest", str(raw), "--create-key"],
        ["features"],
    ]
    for argv in steps:
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, (argv, result.output)
    warehouse = tmp_path / "var" / "warehouse"
    report = json.loads((warehouse / "ingest_report.json").read_text())
    assert {t for t in report["tables"]} == set(CONTRACTS)
    rejects = pd.read_parquet(warehouse / "rejects" / "disputes.parquet")
    assert len(rejects) > 0  # --dirty injected bad rows and they were kept with reasons
    assert (warehouse / "oracle.parquet").exists()
    villages = pd.read_parquet(warehouse / "features_village.parquet")
    assert villages["label"].notna().any() and villages["snapshot"].dt.day_of_week.eq(0).all()
    assert (warehouse / "features_project.parquet").exists()
