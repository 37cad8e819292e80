"""Onboarding a city unlike Hanzhong: square grid cells, Europe/Berlin time, its own holidays.

The city's files are written here: a regular grid of 1 km cells as regions (no town level, no
capacity columns), an incident register over two years that crosses both daylight-saving
changes each year, and a holiday file. Features are built through ``fengqiao features`` with a
7-day horizon and weekly snapshots; the labels are checked against a direct count and no
feature may be constant by construction.
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
    """Two years of incidents at cell centres (± 100 m), local wall times, some in DST's odd hours."""
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
        "breite": cells["lat"].to_numpy()[where] + rng.normal(0, 0.0009, len(local)),
        "laenge": cells["lon"].to_numpy()[where] + rng.normal(0, 0.0009, len(local)),
        "_cell": cells["cell"].to_numpy()[where],
    })  # fmt: skip


HOLIDAYS = "date\n2022-12-24\n2023-12-24\n2024-12-24\n2025-12-24\n"
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


def test_a_grid_city_in_berlin_from_its_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine half: the warehouse as ingest leaves it (cells named, times in the city's zone)."""
    from features.warehouse import write_table

    cells, register = write_city(tmp_path / "city")
    warehouse = tmp_path / "var" / "warehouse"
    write_table(pd.DataFrame({"village_id": cells["cell"], "village_name": cells["label"],
                              "county_id": cells["bezirk"], "lat": cells["lat"], "lon": cells["lon"]}),
                warehouse, "regions")  # fmt: skip
    times = pd.to_datetime(register["zeit"]).dt.tz_localize(ZONE, ambiguous=True, nonexistent="shift_forward")
    write_table(pd.DataFrame({"incident_id": register["vorfall"], "village_id": register["_cell"],
                              "occurred_at": times}), warehouse, "incidents")  # fmt: skip
    for name, value in {"DATA_ROOT": str(tmp_path / "var"), "TIMEZONE": ZONE, "HORIZON_DAYS": "7",
                        "SNAPSHOT_EVERY_DAYS": "7", "CITY_CONFIG": str(tmp_path / "city" / "city.yaml"),
                        "NEIGHBOUR_RADIUS_KM": "1.5"}.items():  # fmt: skip
        monkeypatch.setenv(f"FENGQIAO_{name}", value)
    result = CliRunner().invoke(app, ["features"])
    assert result.exit_code == 0, result.output
    assert "`regions` table has no `population` column" in result.output
    check_features(warehouse, register)
