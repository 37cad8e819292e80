"""The operator's command line: global options, one-line errors with exit code 2, a start
line per step, and an ingest summary that names the file read for each table."""

from __future__ import annotations

import pandas as pd
import pytest
from fixtures.clean_export import clean_export, write_export
from typer.testing import CliRunner

from pipelines.cli import app

AS_OF = "2025-01-01T00:00+08:00"


@pytest.fixture()
def runner(monkeypatch, tmp_path) -> CliRunner:
    monkeypatch.delenv("FENGQIAO_DATA_ROOT", raising=False)
    monkeypatch.setenv("FENGQIAO_PSEUDONYM_KEY", "test-key")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_version_prints_the_package_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("fengqiao 0.")


@pytest.mark.parametrize("argv", [
    [],
    ["ingest", "--bogus"],
    ["simulate", "--scale", "-1"],
    ["simulate", "--start", "someday"],
    ["simulate", "--seed", "many"],
    ["ingest", "--mapping", "no-such-mapping.yaml"],
    ["ingest", "--as-of", "yesterday"],
    ["ingest", "no-such-folder"],
])
def test_every_bad_option_ends_in_one_line_and_exit_code_2(runner, argv):
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert "╭" not in result.output, "no usage box"


def test_a_bad_setting_is_one_line_naming_the_variable(runner, monkeypatch):
    monkeypatch.setenv("FENGQIAO_TIMEZONE", "Mars/Base")
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 2
    assert "FENGQIAO_TIMEZONE" in result.output and "Mars/Base" in result.output


def test_data_root_option_puts_the_warehouse_there_and_the_summary_names_each_file(runner, tmp_path):
    source = write_export(clean_export(), tmp_path / "export", "csv")
    result = runner.invoke(app, ["--data-root", str(tmp_path / "city"), "ingest", str(source), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert "== ingest started" in result.output
    assert (tmp_path / "city" / "warehouse" / "regions.parquet").exists()
    for name in ("regions", "incidents", "patrols"):
        assert f"{name} read from {source / f'{name}.csv'}" in result.output


def test_a_refused_ingest_exits_2_and_says_how_to_override(runner, tmp_path):
    tables = clean_export()
    root = ["--data-root", str(tmp_path / "city")]
    assert runner.invoke(app, [*root, "ingest", str(write_export(tables, tmp_path / "a", "csv")),
                               "--as-of", AS_OF]).exit_code == 0
    empty = write_export({n: tables[n].iloc[:0] for n in ("regions", "incidents")}, tmp_path / "b", "csv")
    result = runner.invoke(app, [*root, "ingest", str(empty), "--as-of", AS_OF])
    assert result.exit_code == 2
    assert "--allow-shrink" in result.output
    warehouse = tmp_path / "city" / "warehouse"
    assert len(pd.read_parquet(warehouse / "regions.parquet")) == len(tables["regions"])
    assert (warehouse / "patrols.parquet").exists()


@pytest.mark.parametrize("form", ["parquet", "csv"])
def test_ingest_shows_each_batch_of_a_long_table_on_a_progress_bar(runner, tmp_path, monkeypatch, form):
    """patrols (40 rows) read 15 rows at a time: the bar shows 15, 30, then 40 of 40 rows —
    of a Parquet file's exact count, or of a CSV file's count as estimated from its bytes."""
    monkeypatch.setenv("FENGQIAO_INGEST_BATCH_ROWS", "15")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    source = write_export(clean_export(), tmp_path / "export", form)
    result = runner.invoke(app, ["--data-root", str(tmp_path / "city"), "ingest", str(source), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert "-- patrols" in result.output
    shown = result.output.split("-- patrols", 1)[1].split("-- ", 1)[0]
    for done in (15, 30):
        assert f"{done}/40" in shown if form == "parquet" else f"{done}/" in shown
    assert "40/40" in shown
    assert shown.index("15/") < shown.index("30/") < shown.index("40/40")
