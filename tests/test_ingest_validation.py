"""Row-level validation: each rule of the contracts, the reason a rejected row gets, and
references checked against what was accepted before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pytest
from fixtures.clean_export import AS_OF, clean_export, write_export

from features.contracts import DISPUTES
from features.ingest import REJECT_REASONS, run_ingest
from features.ingest.mapping import DEFAULT_DATE_FORMATS
from features.ingest.parsing import ParseOptions, parse_bools, parse_timestamps
from features.ingest.schemas import contract_schema
from features.ingest.table import KeptKeys
from pipelines.simulate.dirty import export_as_strings

KEY = b"test-pseudonym-key"


def _ingest(tables: dict[str, pd.DataFrame], tmp_path: Path, **options) -> tuple[dict, pd.DataFrame]:
    """Ingest text tables from CSV; the warehouse tables (by name) and all rejects."""
    run_ingest(write_export(tables, tmp_path / "export", "csv"), tmp_path / "warehouse", KEY,
               **{"as_of": AS_OF, **options})
    warehouse = {p.stem: pd.read_parquet(p) for p in (tmp_path / "warehouse").glob("*.parquet")}
    rejects = pd.concat([pd.read_parquet(p) for p in (tmp_path / "warehouse" / "rejects").glob("*.parquet")])
    return warehouse, rejects.reset_index(drop=True)


@pytest.fixture()
def text() -> dict[str, pd.DataFrame]:
    return export_as_strings(clean_export())


def _set(frame: pd.DataFrame, row: int, **values: str | None) -> None:
    for column, value in values.items():
        frame.loc[row, column] = value


def test_reject_reasons_are_the_documented_codes():
    assert REJECT_REASONS == ("malformed_line", "bad_date", "bad_value", "bad_code", "unplaced", "missing_value",
                              "future_date", "time_order", "unknown_village", "unknown_project", "unknown_dispute",
                              "duplicate")


def test_the_pandera_schema_is_built_from_the_contract():
    schema = contract_schema(DISPUTES, AS_OF, {"regions.village_id": pyarrow.array(["610722104201"])})
    assert list(schema.columns) == DISPUTES.warehouse_columns
    assert not schema.columns["dispute_id"].nullable
    assert not schema.columns["dispute_id"].unique, "duplicates are judged among the rows that pass the schema"
    assert schema.columns["mediated_at"].nullable
    assert {c.error for c in schema.columns["category"].checks} == {"bad_code"}
    assert {c.error for c in schema.columns["village_id"].checks} == {"unknown_village"}
    assert not schema.columns["project_id"].checks, "projects absent from `known`: not checked"
    assert len(schema.checks) == len(DISPUTES.time_order)


def test_a_row_failing_several_checks_is_rejected_once_for_its_most_important_reason(text, tmp_path):
    _set(text["disputes"], 0, category="土地", village_id="610722104999", parties="-1")
    _, rejects = _ingest(text, tmp_path)
    assert rejects[["table", "source_row", "column", "reason"]].values.tolist() == [
        ["disputes", 1, "parties", "bad_value"]
    ]


def test_duplicate_keys_keep_the_first_row_and_reject_the_later_ones(text, tmp_path):
    disputes = text["disputes"]
    second = disputes.iloc[[0]].assign(category="family")
    text["disputes"] = pd.concat([disputes.iloc[:3], second, disputes.iloc[3:]], ignore_index=True)
    warehouse, rejects = _ingest(text, tmp_path)
    assert rejects[["source_row", "reason"]].values.tolist() == [[4, "duplicate"]]
    kept = warehouse["disputes"].set_index("dispute_id").loc[disputes["dispute_id"].iloc[0], "category"]
    assert kept == disputes["category"].iloc[0]


def test_rows_referring_to_a_rejected_village_are_rejected_as_unknown_village(text, tmp_path):
    village = text["regions"]["village_id"].iloc[0]
    _set(text["regions"], 0, kind="town")
    warehouse, rejects = _ingest(text, tmp_path)
    assert village not in set(warehouse["regions"]["village_id"])
    for name in ("disputes", "petitions", "patrols", "incidents"):
        assert village not in set(warehouse[name]["village_id"]), name
        cascaded = rejects[(rejects["table"] == name) & (rejects["reason"] == "unknown_village")]
        assert len(cascaded) == (text[name]["village_id"] == village).sum(), name
    assert not warehouse["projects"]["village_ids"].str.contains(village).any()


def test_a_petition_linked_to_a_rejected_dispute_is_rejected_as_unknown_dispute(text, tmp_path):
    petitions = text["petitions"]
    linked = petitions["dispute_id"].notna().idxmax()
    dispute = petitions.loc[linked, "dispute_id"]
    row = text["disputes"].index[text["disputes"]["dispute_id"] == dispute][0]
    _set(text["disputes"], row, outcome="settled")
    _, rejects = _ingest(text, tmp_path)
    petition = rejects[(rejects["table"] == "petitions") & (rejects["source_row"] == linked + 1)]
    assert petition[["column", "reason"]].values.tolist() == [["dispute_id", "unknown_dispute"]]


def test_planned_project_stages_may_lie_after_as_of_but_recorded_times_may_not(text, tmp_path):
    projects = text["projects"]
    assert pd.Timestamp(projects.loc[2, "construction_start"]) > AS_OF
    _set(projects, 1, completed_at="2025-06-30 00:00:00+08:00")
    warehouse, rejects = _ingest(text, tmp_path)
    assert "PRJ00003" in set(warehouse["projects"]["project_id"])
    assert rejects[rejects["table"] == "projects"][["source_row", "column", "reason"]].values.tolist() == [
        [2, "completed_at", "future_date"]
    ]


def test_a_later_project_stage_before_the_earlier_one_is_a_time_order_reject(text, tmp_path):
    _set(text["projects"], 0, acquisition_start="2023-01-01 00:00:00+08:00")
    _, rejects = _ingest(text, tmp_path)
    project = rejects[rejects["table"] == "projects"]
    assert project[["column", "reason"]].values.tolist() == [["acquisition_start", "time_order"]]
    assert "is before announced_at" in project["detail"].iloc[0]


@pytest.mark.parametrize(
    ("table", "column", "value", "reason"),
    [
        ("incidents", "participants", "many", "bad_value"),
        ("incidents", "severity", "7", "bad_value"),
        ("disputes", "parties", "2.5", "bad_value"),
        ("regions", "lat", "91.5", "bad_value"),
        ("petitions", "within_limit", "perhaps", "bad_value"),
        ("incidents", "kind", "", "missing_value"),
        ("petitions", "petitioner_key", None, "missing_value"),
        ("patrols", "issue_kinds", "safety_hazard|fire", "bad_code"),
        ("disputes", "reported_at", "05/03/2024", "bad_date"),
        ("disputes", "reported_at", "2024-13-45 10:00", "bad_date"),
        ("incidents", "occurred_at", "2025-03-01 10:00:00+08:00", "future_date"),
    ],
)
def test_each_rule_rejects_with_its_reason(text, tmp_path, table, column, value, reason):
    row = 0 if table != "regions" else 5  # a village without a project: no cascade to other tables
    _set(text[table], row, **{column: value})
    _, rejects = _ingest(text, tmp_path)
    own = rejects[rejects["table"] == table]
    assert own[["source_row", "column", "reason"]].values.tolist()[:1] == [[row + 1, column, reason]]
    assert len(own) == 1 or table == "regions"


def test_a_declared_day_first_format_is_accepted(text, tmp_path):
    _set(text["disputes"], 0, reported_at="05/01/2024 09:30")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('date_formats: ["%d/%m/%Y %H:%M"]\n')
    warehouse, rejects = _ingest(text, tmp_path, mapping=mapping)
    assert rejects.empty
    assert warehouse["disputes"]["reported_at"].iloc[0] == pd.Timestamp("2024-01-05 09:30", tz="Asia/Shanghai")


OPTIONS = ParseOptions(DEFAULT_DATE_FORMATS, "Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05 14:23:00+08:00", "2024-03-05 14:23:00"),
        ("2024-03-05T06:23:00Z", "2024-03-05 14:23:00"),
        ("2024-03-05T14:23:00+0800", "2024-03-05 14:23:00"),
        ("2024-03-05 14:23:00", "2024-03-05 14:23:00"),
        ("2024-03-05", "2024-03-05 00:00:00"),
        ("2024/03/05 14:23:07", "2024-03-05 14:23:07"),
        ("2024/03/05 14:23", "2024-03-05 14:23:00"),
        ("2024/03/05", "2024-03-05 00:00:00"),
        ("05/03/2024", None),
        ("03/05/2024 14:23", None),
        ("2024-13-45", None),
        ("2024-02-30 10:00", None),
        ("last Tuesday", None),
    ],
)
def test_timestamp_text_is_read_in_shanghai_time_or_refused(text, expected):
    parsed, bad = parse_timestamps(pd.Series([text], dtype="str"), OPTIONS)
    if expected is None:
        assert bad.iloc[0] and pd.isna(parsed.iloc[0])
    else:
        assert not bad.iloc[0]
        assert parsed.iloc[0] == pd.Timestamp(expected, tz="Asia/Shanghai")
    assert str(parsed.dtype) == "datetime64[us, Asia/Shanghai]"


def test_naive_times_are_read_in_the_given_timezone():
    options = ParseOptions(DEFAULT_DATE_FORMATS, "UTC")
    text, _ = parse_timestamps(pd.Series(["2024-03-05 06:23:00"], dtype="str"), options)
    typed, _ = parse_timestamps(pd.Series(pd.to_datetime(["2024-03-05 06:23:00"])), options)
    assert text.iloc[0] == typed.iloc[0] == pd.Timestamp("2024-03-05 14:23", tz="Asia/Shanghai")


def test_booleans_accept_common_spellings_and_refuse_others():
    parsed, bad = parse_bools(pd.Series(["true", "否", "YES", "0", None, "maybe"], dtype="str"), OPTIONS)
    assert parsed.tolist()[:4] == [True, False, True, False]
    assert bad.tolist() == [False, False, False, False, False, True]


def test_identifiers_in_rejects_are_never_redacted_but_free_text_is(text, tmp_path):
    patrols = text["patrols"]
    patrols.loc[0, "patrol_id"] = "WG13912345678"  # an id that looks like a mobile number
    _set(patrols, 0, escalated="perhaps", notes="联系电话13912345678")
    _, rejects = _ingest(text, tmp_path)
    raw = json.loads(rejects[rejects["table"] == "patrols"]["raw"].iloc[0])
    assert raw["patrol_id"] == "WG13912345678"
    assert raw["village_id"] == patrols.loc[0, "village_id"]
    assert raw["notes"] == "联系电话[电话]"


def test_a_copy_of_a_rejected_row_is_not_called_a_duplicate_of_a_kept_row(text, tmp_path):
    disputes = text["disputes"]
    first = disputes.iloc[[0]].assign(category="土地")  # rejected: bad code
    text["disputes"] = pd.concat([first, disputes], ignore_index=True)  # the good copy comes second
    warehouse, rejects = _ingest(text, tmp_path)
    own = rejects[rejects["table"] == "disputes"]
    assert own[["source_row", "reason"]].values.tolist() == [[1, "bad_code"]]
    assert disputes["dispute_id"].iloc[0] in set(warehouse["disputes"]["dispute_id"]), "the valid copy is kept"


def test_a_duplicate_names_the_row_that_was_kept(text, tmp_path):
    disputes = text["disputes"]
    text["disputes"] = pd.concat([disputes, disputes.iloc[[2]]], ignore_index=True)
    _, rejects = _ingest(text, tmp_path)
    duplicate = rejects[rejects["table"] == "disputes"]
    assert duplicate[["source_row", "reason"]].values.tolist() == [[41, "duplicate"]]
    assert "row 3" in duplicate["detail"].iloc[0]


def test_reject_details_never_echo_the_cell(text, tmp_path):
    _set(text["disputes"], 0, parties="王建国等三人")
    _, rejects = _ingest(text, tmp_path)
    assert rejects["detail"].iloc[0].startswith("parties")
    assert not rejects["detail"].str.contains("王建国").any()


def test_kept_keys_give_the_source_row_that_kept_a_key_in_an_earlier_batch():
    kept = KeptKeys()
    assert kept.kept_rows(pd.Series(["WG1"], dtype="str")).tolist() == [-1]
    kept.add(pd.Series(["WG1", "WG2"], dtype="str"), np.array([1, 3]))
    kept.add(pd.Series([], dtype="str"), np.array([], dtype=np.int64))
    kept.add(pd.Series(["WG9"], dtype="str"), np.array([12]))
    assert kept.kept_rows(pd.Series(["WG9", "WG3", None, "WG1"], dtype="str")).tolist() == [12, -1, -1, 1]
