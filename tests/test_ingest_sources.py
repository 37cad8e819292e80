"""Where ingest reads from: files, workbooks, databases, a differently-named platform, and
what happens when tables or columns are missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.clean_export import AS_OF, clean_export, write_export

from features.contracts import CONTRACTS
from features.ingest import run_ingest
from fengqiao.errors import ConfigurationError, InputDataError
from pipelines.simulate.dirty import export_as_strings, inject_dirty

KEY = b"test-pseudonym-key"
FIXTURES = Path(__file__).parent / "fixtures"


def _warehouse(directory: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(directory.glob("*.parquet"))}


def _rejects(directory: Path) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in sorted((directory / "rejects").glob("*.parquet"))]
    return pd.concat(frames, ignore_index=True)[["table", "source_row", "column", "reason"]]


@pytest.fixture(scope="module")
def dirty_tables() -> dict[str, pd.DataFrame]:
    return inject_dirty(clean_export(), np.random.default_rng(2), rate=0.05, as_of=AS_OF)[0]


@pytest.fixture(scope="module")
def from_csv(dirty_tables, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("csv")
    run_ingest(write_export(dirty_tables, root / "export", "csv"), root / "warehouse", KEY, as_of=AS_OF)
    return root / "warehouse"


@pytest.mark.parametrize("form", ["parquet", "xlsx", "workbook", "sqlite"])
def test_every_source_form_gives_the_same_warehouse_and_rejects_as_csv(form, dirty_tables, from_csv, tmp_path):
    source = write_export(dirty_tables, tmp_path / "export", form)
    run_ingest(source, tmp_path / "warehouse", KEY, as_of=AS_OF)
    expected = _warehouse(from_csv)
    for name, frame in _warehouse(tmp_path / "warehouse").items():
        pd.testing.assert_frame_equal(frame, expected[name], obj=f"{form} {name}")
    pd.testing.assert_frame_equal(_rejects(tmp_path / "warehouse"), _rejects(from_csv))


def test_a_typed_parquet_export_ingests_like_its_text_dump(tmp_path):
    clean = clean_export()
    run_ingest(write_export(clean, tmp_path / "typed", "parquet"), tmp_path / "a", KEY, as_of=AS_OF)
    run_ingest(write_export(export_as_strings(clean), tmp_path / "text", "csv"), tmp_path / "b", KEY, as_of=AS_OF)
    typed, text = _warehouse(tmp_path / "a"), _warehouse(tmp_path / "b")
    assert set(typed) == set(CONTRACTS)
    for name in CONTRACTS:
        pd.testing.assert_frame_equal(typed[name], text[name], obj=name)
        assert len(typed[name]) == len(clean[name]), "a clean export loses no row"


def test_excel_date_cells_are_read_as_local_times(tmp_path):
    tables = clean_export()
    naive = tables["incidents"]["occurred_at"].dt.tz_localize(None)
    tables["incidents"] = tables["incidents"].assign(occurred_at=naive)
    write_export({"regions": tables["regions"], "incidents": tables["incidents"]}, tmp_path, "xlsx")
    run_ingest(tmp_path, tmp_path / "warehouse", KEY, as_of=AS_OF)
    stored = pd.read_parquet(tmp_path / "warehouse" / "incidents.parquet")
    pd.testing.assert_series_equal(stored["occurred_at"], clean_export()["incidents"]["occurred_at"])


def test_warehouse_tables_are_typed_as_the_warehouse_module_says(tmp_path):
    run_ingest(write_export(clean_export(), tmp_path / "export", "csv"), tmp_path / "warehouse", KEY, as_of=AS_OF)
    tables = _warehouse(tmp_path / "warehouse")
    petitions, regions = tables["petitions"], tables["regions"]
    assert str(petitions["filed_at"].dtype) == "datetime64[us, Asia/Shanghai]"
    assert petitions["participants"].dtype == "int64"
    assert petitions["within_limit"].dtype == "bool"
    assert str(petitions["satisfied"].dtype) == "boolean"
    assert pd.api.types.is_string_dtype(petitions["petition_id"].dtype)
    assert regions["lat"].dtype == "float64"
    assert "|" in "".join(tables["projects"]["village_ids"])


def test_parquet_is_preferred_to_csv_and_csv_to_excel(tmp_path):
    tables = clean_export()
    write_export(tables, tmp_path, "csv")
    write_export({"incidents": tables["incidents"].head(5)}, tmp_path, "parquet")
    write_export({"disputes": export_as_strings(tables)["disputes"].head(3)}, tmp_path, "xlsx")
    report = run_ingest(tmp_path, tmp_path / "warehouse", KEY, as_of=AS_OF)
    assert report.tables["incidents"].read == 5
    assert report.tables["incidents"].origin.endswith("incidents.parquet")
    assert report.tables["disputes"].read == len(tables["disputes"])


def test_a_differently_named_platform_export_ingests_into_the_exact_contracts(tmp_path):
    report = run_ingest(FIXTURES / "other_platform", tmp_path, KEY, mapping=FIXTURES / "other_platform_mapping.yaml",
                        as_of=AS_OF)
    tables = _warehouse(tmp_path)
    assert set(tables) == {"regions", "disputes", "petitions", "incidents"}
    for name, frame in tables.items():
        assert list(frame.columns) == CONTRACTS[name].warehouse_columns[:len(frame.columns)]
        assert report.tables[name].rejected == 0, _rejects(tmp_path)
    assert report.tables["regions"].missing_optional_columns == ("boundary",)
    disputes = tables["disputes"].set_index("dispute_id")
    assert disputes.loc["JF2024-0001", "category"] == "land"
    assert disputes.loc["JF2024-0001", "reported_at"] == pd.Timestamp("2024-03-05 14:23", tz="Asia/Shanghai")
    assert disputes.loc["JF2024-0003", "outcome"] == "pending"
    assert pd.isna(disputes.loc["JF2024-0001", "project_id"]), "无 means empty on this platform"
    assert tables["incidents"]["severity"].tolist() == [3, 1, 2]
    assert tables["incidents"]["occurred_at"].iloc[0] == pd.Timestamp("2024-05-28 08:30", tz="Asia/Shanghai")
    assert tables["regions"]["kind"].tolist() == ["village", "community", "village", "village"]
    assert tables["petitions"]["petitioner_key"].str.match(r"^p_[a-z2-7]{16}$").all()
    assert report.tables["regions"].extra_columns == ("村支书",)
    assert report.tables["disputes"].extra_columns == ("联系电话",)
    assert report.missing_tables == ("projects", "patrols")
    assert "disputes.project_id" in report.unchecked_references


def test_missing_required_table_is_an_input_error_naming_the_source(tmp_path):
    write_export({"regions": clean_export()["regions"]}, tmp_path, "csv")
    with pytest.raises(InputDataError, match="'incidents'") as error:
        run_ingest(tmp_path, tmp_path / "warehouse", KEY, as_of=AS_OF)
    assert str(tmp_path) in str(error.value)
    assert not (tmp_path / "warehouse" / "regions.parquet").exists()


def test_missing_optional_tables_are_absent_from_the_warehouse_and_reported(tmp_path):
    tables = clean_export()
    full = write_export(tables, tmp_path / "full", "csv")
    run_ingest(full, tmp_path / "warehouse", KEY, as_of=AS_OF)
    assert (tmp_path / "warehouse" / "patrols.parquet").exists()

    partial = write_export({n: tables[n] for n in ("regions", "incidents")}, tmp_path / "partial", "csv")
    report = run_ingest(partial, tmp_path / "warehouse", KEY, as_of=AS_OF, allow_shrink=True)
    assert report.missing_tables == ("projects", "disputes", "petitions", "patrols")
    assert sorted(p.name for p in (tmp_path / "warehouse").glob("*.parquet")) == ["incidents.parquet",
                                                                                  "regions.parquet"]
    assert not (tmp_path / "warehouse" / "rejects" / "patrols.parquet").exists()
    assert "projects, disputes, petitions, patrols" in report.summary()
    assert "incidents.project_id" in report.unchecked_references


def test_missing_required_column_is_an_input_error_naming_table_and_column(tmp_path):
    tables = clean_export()
    tables["incidents"] = tables["incidents"].drop(columns="occurred_at")
    source = write_export(tables, tmp_path, "csv")
    with pytest.raises(InputDataError, match=r"'incidents'.*'occurred_at'.*tables\.incidents\.columns"):
        run_ingest(source, tmp_path / "warehouse", KEY, as_of=AS_OF)


@pytest.mark.parametrize(("table", "columns"), [
    ("disputes", ["summary", "category"]),
    ("incidents", ["kind", "participants", "severity", "project_id"]),
    ("regions", ["town_id", "town_name", "population", "households", "mediators", "legal_adviser", "grid_cells"]),
])
def test_a_missing_optional_column_is_left_out_and_reported_never_invented(tmp_path, table, columns):
    tables = clean_export()
    tables[table] = tables[table].drop(columns=columns)
    report = run_ingest(write_export(tables, tmp_path, "csv"), tmp_path / "warehouse", KEY, as_of=AS_OF)
    assert set(columns) <= set(report.tables[table].missing_optional_columns)
    stored = pd.read_parquet(tmp_path / "warehouse" / f"{table}.parquet")
    assert not set(columns) & set(stored.columns)
    assert len(stored) == len(tables[table])
    assert f"{table} has no {', '.join(c for c in CONTRACTS[table].warehouse_columns if c in columns)}" \
        in report.summary()


def test_a_mapping_naming_an_unknown_contract_column_is_a_configuration_error(tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("tables:\n  disputes:\n    columns:\n      纠纷类型: dispute_kind\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="dispute_kind"):
        run_ingest(tmp_path, tmp_path / "warehouse", KEY, mapping=mapping)


def test_a_source_that_is_not_a_directory_workbook_or_url_is_an_input_error(tmp_path):
    with pytest.raises(InputDataError, match="neither a directory"):
        run_ingest(tmp_path / "nothing-here", tmp_path / "warehouse", KEY)


def test_a_sql_query_in_the_mapping_reads_a_differently_named_table(tmp_path):
    tables = clean_export()
    url = write_export({"regions": tables["regions"], "incidents_2024": tables["incidents"]}, tmp_path, "sqlite")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("tables:\n  incidents:\n    query: SELECT * FROM incidents_2024 WHERE severity >= 2\n")
    report = run_ingest(url, tmp_path / "warehouse", KEY, mapping=mapping, as_of=AS_OF)
    assert report.tables["incidents"].read == int((tables["incidents"]["severity"] >= 2).sum())
    assert report.source.startswith("database sqlite:///")
