"""Onboarding a city unlike Hanzhong: square grid cells, Europe/Berlin time, its own holidays.

The city's files are written here: a regular grid of 1 km cells as regions (no town level, no
capacity columns), an incident register with coordinates but no region code over two years that
crosses both daylight-saving changes each year, a mapping file and a holiday file. They go through
``fengqiao ingest --mapping`` and ``fengqiao features`` with a 7-day horizon and weekly snapshots;
the labels are checked against a direct count and no feature may be constant by construction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

ZONE = "Europe/Berlin"
SIDE = 5
STEP_KM = 1.0
LAT0, LON0 = 52.45, 13.30


def grid_cells() -> pd.DataFrame:
    """A SIDE × SIDE grid of square cells STEP_KM apart: id, name, county and centre only."""
    rows, cols = np.divmod(np.arange(SIDE * SIDE), SIDE)
    return pd.DataFrame({
        "cell": [f"Z{r}{c}" for r, c in zip(rows, cols)],
        "label": [f"Zelle {r}-{c}" for r, c in zip(rows, cols)],
        "bezirk": "Bezirk 1",
        "lat": LAT0 + rows * STEP_KM / 111.195,
        "lon": LON0 + cols * STEP_KM / (111.195 * np.cos(np.radians(LAT0))),
    })  # fmt: skip


def incident_register(cells: pd.DataFrame, seed: int = 4) -> pd.DataFrame:
    """Two years of incidents near cell centres (σ ≈ 50 m), local wall times, some in DST's odd hours."""
    rng = np.random.default_rng(seed)
    n = 700
    start = pd.Timestamp("2023-01-02 08:00")
    local = start + pd.to_timedelta(rng.integers(0, 730 * 24 * 60, n), unit="min")
    odd = pd.to_datetime(["2023-10-29 02:30", "2024-10-27 02:30", "2024-03-31 03:15", "2023-03-26 03:30"])
    local = local.append(odd)
    where = rng.integers(0, len(cells), len(local))
    return pd.DataFrame({
        "vorfall": [f"V{i:04d}" for i in range(len(local))],
        "zeit": local.strftime("%Y-%m-%d %H:%M"),
        "breite": cells["lat"].to_numpy()[where] + rng.normal(0, 0.0005, len(local)),
        "laenge": cells["lon"].to_numpy()[where] + rng.normal(0, 0.0005, len(local)),
        "_cell": cells["cell"].to_numpy()[where],
    })  # fmt: skip


HOLIDAYS = "date\n2022-12-24\n2023-12-24\n2024-12-24\n2025-12-24\n"
MAPPING = """
tables:
  regions:
    file: zellen.csv
    columns: {cell: village_id, label: village_name, bezirk: county_id, lat: lat, lon: lon}
  incidents:
    file: vorfaelle.csv
    timezone: Europe/Berlin
    coordinates: {lat: breite, lon: laenge}
    columns: {vorfall: incident_id, zeit: occurred_at}
"""
CITY_CONFIG = """
calendar:
  file: feiertage.csv
  name: christmas
  zh: 圣诞节
  en: Christmas
  season_days: 21
"""


def direct_labels(incidents: pd.DataFrame, snapshots: pd.Series, cells: list[str], horizon: pd.Timedelta) -> pd.Series:
    """1 where the cell has an incident in [t, t + horizon), counted directly."""
    out = {}
    for t in snapshots:
        during = incidents[(incidents["time"] >= t) & (incidents["time"] < t + horizon)]
        hit = set(during["cell"])
        for c in cells:
            out[(c, t)] = int(c in hit)
    return pd.Series(out)


def write_city(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    root.mkdir(parents=True, exist_ok=True)
    cells = grid_cells()
    register = incident_register(cells)
    (root / "feiertage.csv").write_text(HOLIDAYS, encoding="utf-8")
    (root / "city.yaml").write_text(CITY_CONFIG, encoding="utf-8")
    return cells, register


def check_features(warehouse: Path, register: pd.DataFrame) -> None:
    """Labels equal a direct count; snapshots local Monday midnights; no constant feature."""
    frame = pd.read_parquet(warehouse / "features_village.parquet")
    snaps = frame["snapshot"].drop_duplicates()
    assert str(snaps.dt.tz) == ZONE
    assert (snaps.dt.day_of_week == 0).all() and (snaps.dt.hour == 0).all()
    assert len(set(snaps.diff().dropna())) == 3  # 168 h, and 167 h / 169 h across the changes
    times = pd.to_datetime(register["zeit"]).dt.tz_localize(ZONE, ambiguous=True, nonexistent="shift_forward")
    incidents = pd.DataFrame({"cell": register["_cell"], "time": times})
    labelled = frame[frame["label"].notna()]
    expected = direct_labels(incidents, labelled["snapshot"].drop_duplicates(), sorted(register["_cell"].unique()),
                             pd.Timedelta(days=7))  # fmt: skip
    got = labelled.set_index(["village_id", "snapshot"])["label"].astype(int)
    assert (got == expected.reindex(got.index)).all()
    features = frame.columns[2:-1]
    constant = [c for c in features if frame[c].nunique(dropna=False) <= 1]
    assert not constant, constant
    assert {"incidents_30d", "nearby_incidents_365d", "days_to_christmas", "nearby_villages"} <= set(features)
    assert not {"population", "mediators", "is_community", "days_to_spring_festival"} & set(features)


def _settings(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """The city's settings: its zone, a 7-day horizon, weekly snapshots, its configuration file."""
    for name, value in {"DATA_ROOT": str(root / "var"), "TIMEZONE": ZONE, "HORIZON_DAYS": "7",
                        "SNAPSHOT_EVERY_DAYS": "7", "CITY_CONFIG": str(root / "city" / "city.yaml"),
                        "NEIGHBOUR_RADIUS_KM": "1.5"}.items():  # fmt: skip
        monkeypatch.setenv(f"FENGQIAO_{name}", value)


def test_a_grid_city_in_berlin_onboards_by_mapping_and_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cells, register = write_city(tmp_path / "city")
    export = tmp_path / "export"
    export.mkdir()
    cells.to_csv(export / "zellen.csv", index=False)
    register.drop(columns="_cell").to_csv(export / "vorfaelle.csv", index=False)  # coordinates, no region code
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    _settings(monkeypatch, tmp_path)
    runner = CliRunner()
    ingest = runner.invoke(app, ["ingest", str(export), "--mapping", str(tmp_path / "mapping.yaml"),
                                 "--as-of", "2025-06-01"])  # fmt: skip
    assert ingest.exit_code == 0, ingest.output
    warehouse = tmp_path / "var" / "warehouse"
    placed = pd.read_parquet(warehouse / "incidents.parquet").set_index("incident_id")["village_id"]
    assert (placed == register.set_index("vorfall")["_cell"].reindex(placed.index)).all()
    assert len(placed) == len(register)
    features = runner.invoke(app, ["features"])
    assert features.exit_code == 0, features.output
    assert "`regions` table has no `population` column" in features.output
    check_features(warehouse, register)
