"""The export as files: same seed, same bytes; the CLI writes what the README promises."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.simulate.export import ORACLE_FILES, write_export
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.world import simulate_world
from features.contracts import CONTRACTS

TINY = SimulationConfig(seed=5, scale=0.04, years=1.0, oracle_paths=4)


def _file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_the_same_bytes(tmp_path):
    for run in ("a", "b"):
        write_export(simulate_world(TINY), tmp_path / run, dirty=True)
    a, b = _file_bytes(tmp_path / "a"), _file_bytes(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []


def test_export_holds_every_table_twice_and_the_truth(tmp_path):
    write_export(simulate_world(TINY), tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    for table in CONTRACTS:
        assert {f"{table}.csv", f"{table}.parquet"} <= names
    assert set(ORACLE_FILES.values()) <= names
    record = json.loads((tmp_path / "world.json").read_text())
    assert record["config"]["seed"] == TINY.seed
    assert "oracle_auc_30d" in record["rates"]


def test_cli_simulate_writes_the_export_and_prints_rates(tmp_path):
    result = CliRunner().invoke(
        app, ["simulate", "--seed", "5", "--scale", "0.04", "--years", "1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "disputes_per_1000_per_year" in result.output
    assert (tmp_path / "incidents.csv").exists()
