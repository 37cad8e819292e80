"""A city's configuration file: an extra event table and an entity kind, by configuration only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.city import load_city
from fengqiao.errors import ConfigurationError
from pipelines.cli import app

HOTLINE_CONFIG = """
tables:
  hotline_calls:
    key: call_id
    event_time: called_at
    columns:
      - {name: call_id, kind: id}
      - {name: village_id, kind: id, references: regions.village_id}
      - {name: called_at, kind: timestamp}
      - {name: topic, kind: category, codes: [wages, noise]}
      - {name: urgency, kind: int, min_value: 1, max_value: 5}
sources:
  - name: hotline_calls
    table: hotline_calls
    time: called_at
    group: petitions
    counters:
      - {stem: hotline_calls, zh: 热线来电, en: hotline calls, windows: [7, 30], decays: [30],
         recency: [hotline_call, 热线来电, hotline call]}
      - {stem: "{code}_hotline_calls", zh: "{code}热线来电", en: "{code} hotline calls", by: topic,
         codes: [{code: wages, zh: 欠薪, en: wage}, {code: noise, zh: 噪音, en: noise}], windows: [30]}
      - {stem: urgent_hotline_calls, zh: 紧急热线来电, en: urgent hotline calls,
         where: {column: urgency, op: ">=", value: 3}, windows: [30]}
    spill: [hotline_calls_30d]
entities:
  - {name: town, table: regions, id: town_id, via: village_id}
"""

VILLAGES = ("610702001001", "610702001002", "610702002001")


def _export(root: Path) -> Path:
    """regions, incidents and hotline_calls as CSV files, two years of history."""
    root.mkdir(parents=True)
    pd.DataFrame({
        "village_id": VILLAGES, "village_name": ["甲村", "乙村", "丙村"], "town_id": ["610702001", "610702001", "610702002"],
        "town_name": ["一镇", "一镇", "二镇"], "county_id": "610702", "county_name": "汉台区", "kind": "village",
        "lat": [33.07, 33.08, 33.2], "lon": [107.03, 107.04, 107.2], "population": 2000, "households": 600,
        "mediators": 4, "legal_adviser": "true", "grid_cells": 3,
    }).to_csv(root / "regions.csv", index=False)  # fmt: skip
    pd.DataFrame({
        "incident_id": ["I1", "I2", "I3"], "village_id": [VILLAGES[0], VILLAGES[1], VILLAGES[2]],
        "occurred_at": ["2023-01-02 10:00", "2024-03-06 09:00", "2024-05-20 15:00"],
        "kind": "mass_gathering", "participants": 30, "project_id": None, "severity": 2,
    }).to_csv(root / "incidents.csv", index=False)  # fmt: skip
    pd.DataFrame({
        "call_id": ["c1", "c2", "c3", "c4"], "village_id": [VILLAGES[0], VILLAGES[0], VILLAGES[1], VILLAGES[2]],
        "called_at": ["2024-03-03 10:00", "2024-02-13 08:00", "2024-03-04 00:00", "2024-03-01 12:00"],
        "topic": ["wages", "noise", "wages", "wages"], "urgency": [3, 1, 5, 2],
    }).to_csv(root / "hotline_calls.csv", index=False)  # fmt: skip
    return root


def test_a_hotline_table_is_added_by_configuration_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "city.yaml"
    config.write_text(HOTLINE_CONFIG, encoding="utf-8")
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(tmp_path / "var"))
    monkeypatch.setenv("FENGQIAO_CITY_CONFIG", str(config))
    monkeypatch.setenv("FENGQIAO_PSEUDONYM_KEY", "test-key")
    runner = CliRunner()
    for argv in (["ingest", str(_export(tmp_path / "raw")), "--as-of", "2024-06-30"], ["features"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, (argv, result.output)
    warehouse = tmp_path / "var" / "warehouse"
    assert len(pd.read_parquet(warehouse / "hotline_calls.parquet")) == 4  # ingest validated it from its contract
    villages = pd.read_parquet(warehouse / "features_village.parquet").set_index(["village_id", "snapshot"])
    t = pd.Timestamp("2024-03-04", tz="Asia/Shanghai")
    row = villages.loc[(VILLAGES[0], t)]
    assert row["hotline_calls_30d"] == 2
    assert row["wages_hotline_calls_30d"] == 1
    assert row["urgent_hotline_calls_30d"] == 1
    assert row["days_since_last_hotline_call"] == pytest.approx(14 / 24)
    assert villages.loc[(VILLAGES[1], t), "hotline_calls_30d"] == 0  # a call at t counts from the next snapshot
    assert villages.loc[(VILLAGES[1], t), "nearby_hotline_calls_30d"] > 0
    towns = pd.read_parquet(warehouse / "features_town.parquet").set_index(["town_id", "snapshot"])
    assert towns.loc[("610702001", t), "hotline_calls_30d"] == 2  # the town's villages' calls
    assert towns.loc[("610702001", t), "label"] == 1  # I2 in its second village, two days after t
    assert towns.loc[("610702002", t), "label"] == 0
    catalogue = json.loads((warehouse / "features_catalogue.json").read_text(encoding="utf-8"))
    assert "hotline_calls" in [s["name"] for s in catalogue["sources"]]
    assert [k["name"] for k in catalogue["entities"]] == ["village", "project", "town"]


def test_a_source_reading_an_undeclared_column_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "city.yaml"
    config.write_text(HOTLINE_CONFIG.replace("by: topic", "by: subject"), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="subject"):
        load_city(config)


def test_without_a_city_file_the_catalogue_is_designs(tmp_path: Path) -> None:
    city = load_city(None)
    assert [k.name for k in city.catalogue.entities] == ["village", "project"]
    assert "hotline_calls" not in city.contracts


def test_a_mapping_file_may_map_a_table_the_city_declares(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The city's extra table can come from a platform export with its own column names: the
    mapping file is checked against the city's contracts, not only the built-in ones."""
    config = tmp_path / "city.yaml"
    config.write_text(HOTLINE_CONFIG, encoding="utf-8")
    raw = _export(tmp_path / "raw")
    calls = pd.read_csv(raw / "hotline_calls.csv").rename(columns={"call_id": "来电编号", "called_at": "来电时间"})
    calls.to_csv(raw / "hotline_calls.csv", index=False)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("tables:\n  hotline_calls:\n    columns: {来电编号: call_id, 来电时间: called_at}\n",
                       encoding="utf-8")
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(tmp_path / "var"))
    monkeypatch.setenv("FENGQIAO_PSEUDONYM_KEY", "test-key")
    runner = CliRunner()
    refused = runner.invoke(app, ["ingest", str(raw), "--mapping", str(mapping), "--as-of", "2024-06-30"])
    assert refused.exit_code == 2 and "unknown table 'hotline_calls'" in refused.output  # no city file: not a table
    monkeypatch.setenv("FENGQIAO_CITY_CONFIG", str(config))
    result = runner.invoke(app, ["ingest", str(raw), "--mapping", str(mapping), "--as-of", "2024-06-30"])
    assert result.exit_code == 0, result.output
    stored = pd.read_parquet(tmp_path / "var" / "warehouse" / "hotline_calls.parquet")
    assert len(stored) == 4 and {"call_id", "called_at"} <= set(stored.columns)
