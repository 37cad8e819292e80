"""The dirty-data injector, and ingest against it: every injected defect is caught with the
right reason, nothing is lost, no personal data reaches the warehouse, re-ingest is a no-op."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from fixtures.clean_export import AS_OF, PETITIONER_NAMES, WORKER_NAMES, clean_export, write_export

from features.contracts import CONTRACTS
from features.ingest import run_ingest
from pipelines.simulate.dirty import ACCEPTED, CASCADE, DEFECT_KINDS, REDACTED, export_as_strings, inject_dirty

KEY = b"test-pseudonym-key"
RATE = 0.25
ID_CARD = re.compile(r"(?<!\d)(?:\d{17}[\dXx]|\d{15})(?![\dXx])")
PHONE = re.compile(r"(?<!\d)(?:1[3-9]\d{9}|1[3-9]\d \d{4} \d{4}|0\d{2,3}-\d{7,8})(?!\d)")


def _inject(seed: int = 11):
    return inject_dirty(clean_export(), np.random.default_rng(seed), rate=RATE, as_of=AS_OF)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> SimpleNamespace:
    """The hand-made export with a quarter of its rows damaged, ingested from CSV."""
    tables, log = _inject()
    root = tmp_path_factory.mktemp("dirty")
    source = write_export(tables, root / "export", "csv")
    report = run_ingest(source, root / "warehouse", KEY, as_of=AS_OF)
    rejects = pd.concat(
        [pd.read_parquet(p) for p in sorted((root / "warehouse" / "rejects").glob("*.parquet"))], ignore_index=True
    )
    return SimpleNamespace(tables=tables, log=log, source=source, warehouse=root / "warehouse", report=report,
                           rejects=rejects)


def test_injection_is_deterministic_for_the_rng():
    tables_a, log_a = _inject(seed=3)
    tables_b, log_b = _inject(seed=3)
    pd.testing.assert_frame_equal(log_a, log_b)
    for name in tables_a:
        pd.testing.assert_frame_equal(tables_a[name], tables_b[name])
    assert not log_a.equals(_inject(seed=4)[1])


def test_dirty_tables_are_all_text_like_a_csv_dump(dirty):
    for name, frame in dirty.tables.items():
        assert all(pd.api.types.is_string_dtype(t) for t in frame.dtypes), name
    petitions = export_as_strings(clean_export())["petitions"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+08:00", petitions["filed_at"].iloc[0])
    assert set(petitions["within_limit"]) == {"true", "false"}
    assert petitions["closed_at"].isna().any()


def test_every_defect_kind_is_injected_somewhere(dirty):
    assert {k.name for k in DEFECT_KINDS} <= set(dirty.log["kind"])
    assert dirty.log.groupby(["table", "row"]).size().max() == 1, "a row carries one defect at most"


def test_every_injected_rejection_lands_in_rejects_with_its_expected_reason(dirty):
    expected = dirty.log[~dirty.log["expected_reason"].isin([ACCEPTED, REDACTED])]
    joined = expected.merge(dirty.rejects, left_on=["table", "row"], right_on=["table", "source_row"], how="left",
                            suffixes=("_injected", "_rejected"))
    wrong = joined[(joined["reason"] != joined["expected_reason"])
                   | (joined["column_rejected"] != joined["column_injected"])]
    assert wrong.empty, wrong[["table", "row", "kind", "expected_reason", "reason", "detail"]].to_string()


def test_every_reject_is_explained_by_the_injection_log(dirty):
    joined = dirty.rejects.merge(dirty.log, left_on=["table", "source_row"], right_on=["table", "row"], how="left")
    unexplained = joined[joined["kind"].isna()]
    assert unexplained.empty, unexplained[["table", "source_row", "reason", "detail"]].to_string()
    assert (joined["kind"] == CASCADE).any(), "rows referring to rejected rows are rejected too"


def test_alternative_date_formats_are_accepted_with_their_time(dirty):
    clean = clean_export()
    accepted = dirty.log[dirty.log["kind"] == "alternative_date_format"]
    assert len(accepted) > 0
    for row in accepted.itertuples():
        contract = CONTRACTS[row.table]
        stored = pd.read_parquet(dirty.warehouse / f"{row.table}.parquet").set_index(contract.key)
        original = clean[row.table].set_index(contract.key).loc[row.key, row.column]
        value = stored.loc[row.key, row.column]
        assert original - pd.Timedelta(days=1) < value <= original, (row, value)


def test_personal_data_in_free_text_is_redacted_not_rejected(dirty):
    redacted = dirty.log[dirty.log["expected_reason"] == REDACTED]
    assert len(redacted) > 0
    for row in redacted.itertuples():
        stored = pd.read_parquet(dirty.warehouse / f"{row.table}.parquet").set_index(CONTRACTS[row.table].key)
        text = stored.loc[row.key, row.column]
        assert "[电话]" in text or "[身份证号]" in text
    assert sum(t.redactions for t in dirty.report.tables.values()) >= len(redacted)


def test_nothing_is_lost_accepted_plus_rejected_equals_read(dirty):
    for name, table in dirty.report.tables.items():
        warehouse = pd.read_parquet(dirty.warehouse / f"{name}.parquet")
        rejects = pd.read_parquet(dirty.warehouse / "rejects" / f"{name}.parquet")
        assert table.read == len(dirty.tables[name])
        assert table.accepted == len(warehouse)
        assert table.rejected == len(rejects) == rejects["source_row"].nunique()
        assert table.accepted + table.rejected == table.read
        assert list(warehouse.columns) == [c for c in CONTRACTS[name].warehouse_columns if c in dirty.tables[name]]


def test_no_id_card_phone_number_name_or_raw_identifier_in_any_warehouse_file(dirty):
    clean = clean_export()
    secrets = set(PETITIONER_NAMES) | set(WORKER_NAMES)
    secrets |= set(clean["petitions"]["petitioner_key"]) | set(clean["patrols"]["worker_key"])
    files = sorted(dirty.warehouse.rglob("*.parquet"))
    assert len(files) == 2 * len(CONTRACTS)
    texts = [(dirty.warehouse / "ingest_report.json").read_text(encoding="utf-8")]
    for path in files:
        frame = pd.read_parquet(path)
        for column in frame.columns:
            if pd.api.types.is_string_dtype(frame[column].dtype):
                texts.extend(f"{path.name}:{column}:{v}" for v in frame[column].dropna())
    leaks = [t for t in texts if ID_CARD.search(t) or PHONE.search(t) or any(s in t for s in secrets)]
    assert not leaks, leaks[:5]
    assert any("[身份证号]" in t or "[电话]" in t for t in texts), "the scan saw the redacted cells"


def test_rejects_carry_the_source_row_as_json_under_source_column_names(dirty):
    petitions = dirty.rejects[dirty.rejects["table"] == "petitions"]
    raw = json.loads(petitions["raw"].iloc[0])
    assert raw["petitioner_key"].startswith("p_")
    assert "petitioner_name" not in raw
    assert set(raw) <= set(CONTRACTS["petitions"].column_names)


def test_reingesting_the_same_source_gives_byte_identical_files(dirty, tmp_path):
    before = {p.relative_to(dirty.warehouse): p.read_bytes() for p in dirty.warehouse.rglob("*.parquet")}
    run_ingest(dirty.source, dirty.warehouse, KEY, as_of=AS_OF)
    run_ingest(dirty.source, tmp_path, KEY, as_of=AS_OF)
    for relative, content in before.items():
        assert (dirty.warehouse / relative).read_bytes() == content, relative
        assert (tmp_path / relative).read_bytes() == content, relative
    assert not list(dirty.warehouse.glob(".ingest-*")), "no staging folder is left behind"


def test_the_share_of_damaged_rows_is_the_rate(dirty):
    clean = clean_export()
    damaged = dirty.log[dirty.log["kind"] != CASCADE]
    for name in ("disputes", "petitions", "patrols"):
        kinds = damaged.loc[damaged["table"] == name, "kind"].nunique()
        count = (damaged["table"] == name).sum()
        assert RATE * len(clean[name]) <= count < RATE * len(clean[name]) + kinds, name


@pytest.mark.slow
def test_a_simulated_world_made_dirty_has_every_reject_explained_by_its_injection(small_world, tmp_path):
    as_of = small_world.config.end_ts
    tables, log = inject_dirty(small_world.tables, np.random.default_rng(5), rate=0.01, as_of=as_of)
    source = write_export(tables, tmp_path / "export", "csv")
    report = run_ingest(source, tmp_path / "warehouse", KEY, as_of=as_of)
    rejects = pd.concat([pd.read_parquet(p) for p in (tmp_path / "warehouse" / "rejects").glob("*.parquet")])
    joined = rejects.merge(log, left_on=["table", "source_row"], right_on=["table", "row"], how="outer")
    expected_rejects = ~joined["expected_reason"].isin([ACCEPTED, REDACTED])
    assert (joined.loc[expected_rejects, "reason"] == joined.loc[expected_rejects, "expected_reason"]).all()
    assert joined.loc[~expected_rejects, "reason"].isna().all()
    assert all(t.accepted + t.rejected == t.read for t in report.tables.values())


@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_ingesting_in_small_batches_gives_the_same_files_and_report_as_in_one_batch(dirty, tmp_path, form):
    """Duplicates whose kept copy is in an earlier batch, malformed lines between and after
    batches, and the counts carried across batches come out as when the table is read whole."""
    source = write_export(dirty.tables, tmp_path / "export", form)
    if form == "csv":
        path = source / "patrols.csv"
        lines = path.read_text(encoding="utf-8").splitlines()
        lines.insert(9, "WG-MALFORMED,two cells")
        lines.append("WG-MALFORMED-AT-THE-END")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole = run_ingest(source, tmp_path / "whole", KEY, as_of=AS_OF)
    batched = run_ingest(source, tmp_path / "batched", KEY, as_of=AS_OF, batch_rows=7)
    assert any(t.rejected_by_reason.get("duplicate") for t in whole.tables.values())
    if form == "csv":
        assert whole.tables["patrols"].rejected_by_reason["malformed_line"] == 2
    assert {n: asdict(t) for n, t in batched.tables.items()} == {n: asdict(t) for n, t in whole.tables.items()}
    for path in sorted((tmp_path / "whole").rglob("*.parquet")):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "batched" / path.relative_to(tmp_path / "whole")),
                                      pd.read_parquet(path), obj=str(path.relative_to(tmp_path / "whole")))
