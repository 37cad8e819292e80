"""`fengqiao simulate` as a user meets it: options checked, steps announced, and an export
that `ingest` reads at the world's own moment."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from fengqiao.errors import ConfigurationError
from pipelines.cli import app
from pipelines.jobs import simulated_export_end
from pipelines.simulate.dirty import ACCEPTED, REDACTED
from pipelines.simulate.config import SimulationConfig

TINY = ["--seed", "4", "--scale", "0.05", "--years", "0.6"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--scale", "0"), ("--scale", "-1"), ("--scale", "100"), ("--years", "0"), ("--years", "31"),
        ("--start", "2023-13-01"), ("--start", "yesterday"), ("--dirty-rate", "1.5"), ("--dirty-rate", "-0.1"),
        ("--horizon-days", "0"), ("--horizon-days", "400"), ("--seed", "-1"),
    ],
)
def test_simulate_rejects_an_out_of_range_option_cleanly(tmp_path, option, value):
    result = CliRunner().invoke(app, ["simulate", option, value, "--out", str(tmp_path / "raw")])
    assert result.exit_code == 2
    assert option in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize(
    ("field", "value"), [("scale", 0.0), ("years", 0.0), ("horizon_days", 0), ("start", "not a date"), ("seed", -3)]
)
def test_a_simulation_config_out_of_range_is_a_configuration_error(field, value):
    with pytest.raises(ConfigurationError, match=f"--{field.replace('_', '-')}"):
        SimulationConfig(**{field: value})


def test_simulate_announces_each_step_and_ingest_reads_the_export_at_the_worlds_end(tmp_path, monkeypatch):
    """With --dirty, `ingest` without --as-of rejects exactly the rows that dirty_injected.csv
    lists as rejects: it takes the moment of the export from world.json, not today."""
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(tmp_path / "var"))
    monkeypatch.setenv("FENGQIAO_PSEUDONYM_KEY", "k" * 32)
    raw = tmp_path / "var" / "raw"
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", *TINY, "--dirty", "--dirty-rate", "0.02", "--out", str(raw)])
    assert result.exit_code == 0, result.output
    for step in ("places and projects", "history", "oracle", "tables", "export"):
        assert f"-- {step}" in result.output
    world = json.loads((raw / "world.json").read_text())
    end = pd.Timestamp(world["end"])
    assert end == SimulationConfig(seed=4, scale=0.05, years=0.6).end_ts
    assert world["horizon_days"] == 30

    result = runner.invoke(app, ["ingest", str(raw)])
    assert result.exit_code == 0, result.output
    assert f"as of {end.isoformat()}" in result.output
    injected = pd.read_csv(raw / "dirty_injected.csv")
    expected = (~injected["expected_reason"].isin([ACCEPTED, REDACTED])).sum()
    report = json.loads((tmp_path / "var" / "warehouse" / "ingest_report.json").read_text())
    rejected = sum(t["rejected"] for t in report["tables"].values())
    assert expected > 0 and rejected == expected


def test_a_world_record_without_its_end_falls_back_to_now_and_a_broken_one_is_named(tmp_path):
    """An export simulated before world.json recorded its end is read as of now; a world.json
    that is not JSON is a clear configuration error naming the file."""
    (tmp_path / "world.json").write_text(json.dumps({"config": {}, "rates": {}}))
    assert simulated_export_end(str(tmp_path)) is None
    (tmp_path / "world.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="world.json"):
        simulated_export_end(str(tmp_path))
