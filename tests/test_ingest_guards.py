"""Ingest never loses good data: an export that would empty or shrink the warehouse is refused,
malformed lines go to the rejects instead of aborting the run, and a column that is mostly bad
stops the run as a mapping mistake. Error messages name file, row and column, never a cell."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fixtures.clean_export import AS_OF, PETITIONER_ID_CARDS, clean_export, write_export

from features.ingest import run_ingest
from fengqiao.errors import InputDataError
from pipelines.simulate.dirty import export_as_strings

KEY = b"test-pseudonym-key"


def _snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture()
def warehouse(tmp_path) -> Path:
    """A warehouse holding a good, complete ingest."""
    run_ingest(write_export(clean_export(), tmp_path / "good", "csv"), tmp_path / "warehouse", KEY, as_of=AS_OF)
    return tmp_path / "warehouse"


def test_a_header_only_export_is_refused_and_leaves_the_warehouse_untouched(warehouse, tmp_path):
    empty = {name: frame.iloc[:0] for name, frame in clean_export().items() if name in ("regions", "incidents")}
    before = _snapshot(warehouse)
    with pytest.raises(InputDataError, match="'regions'.*no row accepted|--allow-shrink"):
        run_ingest(write_export(empty, tmp_path / "empty", "csv"), warehouse, KEY, as_of=AS_OF)
    assert _snapshot(warehouse) == before


def test_a_table_shrinking_by_more_than_the_allowed_share_is_refused_unless_allowed(warehouse, tmp_path):
    tables = clean_export()
    tables["disputes"] = tables["disputes"].head(10)  # 40 → 10 rows: a 75% fall
    source = write_export(tables, tmp_path / "short", "csv")
    before = _snapshot(warehouse)
    with pytest.raises(InputDataError, match=r"'disputes'.*40.*10.*--allow-shrink"):
        run_ingest(source, warehouse, KEY, as_of=AS_OF, max_shrink_share=0.5)
    assert _snapshot(warehouse) == before
    report = run_ingest(source, warehouse, KEY, as_of=AS_OF, max_shrink_share=0.5, allow_shrink=True)
    assert report.tables["disputes"].accepted == 10
    assert len(pd.read_parquet(warehouse / "disputes.parquet")) == 10


def test_an_optional_table_missing_from_the_source_is_kept_out_only_when_the_run_allows_shrinking(warehouse, tmp_path):
    tables = clean_export()
    partial = write_export({n: tables[n] for n in tables if n != "patrols"}, tmp_path / "partial", "csv")
    with pytest.raises(InputDataError, match="'patrols'.*--allow-shrink"):
        run_ingest(partial, warehouse, KEY, as_of=AS_OF)
    assert (warehouse / "patrols.parquet").exists()
    run_ingest(partial, warehouse, KEY, as_of=AS_OF, allow_shrink=True)
    assert not (warehouse / "patrols.parquet").exists()
    assert not (warehouse / "rejects" / "patrols.parquet").exists()


def test_a_malformed_csv_line_goes_to_the_rejects_with_its_line_and_the_rest_is_ingested(tmp_path):
    source = write_export(export_as_strings(clean_export()), tmp_path / "export", "csv")
    path = source / "petitions.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(3, f"XF999999,{PETITIONER_ID_CARDS[0]},only three cells")  # becomes line 4
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run_ingest(source, tmp_path / "warehouse", KEY, as_of=AS_OF)
    petitions = report.tables["petitions"]
    assert (petitions.read, petitions.accepted) == (31, 30)
    assert petitions.rejected_by_reason == {"malformed_line": 1}
    rejects = pd.read_parquet(tmp_path / "warehouse" / "rejects" / "petitions.parquet")
    assert rejects[["source_row", "reason"]].values.tolist() == [[3, "malformed_line"]]
    assert "line 4" in rejects["detail"].iloc[0] and "petitions.csv" in rejects["detail"].iloc[0]
    assert PETITIONER_ID_CARDS[0] not in rejects.to_json(force_ascii=False)
    accepted = pd.read_parquet(tmp_path / "warehouse" / "petitions.parquet")
    assert accepted["petition_id"].iloc[3] == "XF000004", "rows after the bad line keep their place"


def test_a_file_that_cannot_be_parsed_is_named_without_echoing_its_cells(tmp_path):
    source = write_export(export_as_strings(clean_export()), tmp_path / "export", "csv")
    path = source / "petitions.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(PETITIONER_ID_CARDS[1], f'"{PETITIONER_ID_CARDS[1]}', 1), encoding="utf-8")
    try:
        run_ingest(source, tmp_path / "warehouse", KEY, as_of=AS_OF)
    except InputDataError as error:
        assert "petitions.csv" in str(error)
        assert PETITIONER_ID_CARDS[1] not in str(error)
    else:
        rejects = pd.read_parquet(tmp_path / "warehouse" / "rejects" / "petitions.parquet")
        assert "malformed_line" in set(rejects["reason"])
        assert PETITIONER_ID_CARDS[1] not in rejects.to_json(force_ascii=False)


def test_a_column_rejecting_more_than_the_allowed_share_stops_the_run_as_a_mapping_mistake(warehouse, tmp_path):
    tables = export_as_strings(clean_export())
    tables["disputes"].loc[:29, "reported_at"] = "05/03/2024"  # 30 of 40 rows: an undeclared day-first format
    before = _snapshot(warehouse)
    with pytest.raises(InputDataError, match=r"'disputes'.*'reported_at'.*75%.*mapping") as error:
        run_ingest(write_export(tables, tmp_path / "export", "csv"), warehouse, KEY, as_of=AS_OF,
                   max_column_reject_share=0.5, min_rows_for_share=10)
    assert "05/03/2024" not in str(error.value)
    assert _snapshot(warehouse) == before


def test_a_mostly_bad_column_stops_the_run_after_the_first_batch_that_shows_it(warehouse, tmp_path):
    tables = export_as_strings(clean_export())
    tables["disputes"].loc[:9, "reported_at"] = "05/03/2024"  # the first 10 of 40 rows
    before = _snapshot(warehouse)
    with pytest.raises(InputDataError, match=r"'disputes'.*'reported_at'.*100% of the 10 rows read"):
        run_ingest(write_export(tables, tmp_path / "export", "csv"), warehouse, KEY, as_of=AS_OF,
                   max_column_reject_share=0.5, min_rows_for_share=10, batch_rows=10)
    assert _snapshot(warehouse) == before
