"""Onboarding a city by configuration: a platform unlike Hanzhong's — square grid cells with
boundaries, events with coordinates instead of a region code, separate date and time columns,
its own codes in a file, a time zone with daylight saving — ingests through a mapping file
alone. Also: the key is needed only for personal identifiers, and redaction is per country."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.clean_export import AS_OF, clean_export, write_export

from features.ingest import run_ingest
from features.ingest.mapping import DEFAULT_DATE_FORMATS
from features.ingest.parsing import ParseOptions, parse_timestamps
from fengqiao.errors import ConfigurationError, InputDataError

BERLIN = "Europe/Berlin"
CELL_KM = 1.0
ORIGIN_LAT, ORIGIN_LON = 52.40, 13.30
DLAT = CELL_KM / 111.195  # degrees of latitude per km
DLON = CELL_KM / (111.195 * np.cos(np.radians(ORIGIN_LAT + DLAT)))


def _grid(n: int = 3) -> pd.DataFrame:
    """``n`` × ``n`` square cells of 1 km, ids ``Z<row><col>``, each with its WKT square."""
    rows = []
    for i in range(n):
        for j in range(n):
            lat0, lon0 = ORIGIN_LAT + i * DLAT, ORIGIN_LON + j * DLON
            square = (f"POLYGON (({lon0} {lat0}, {lon0 + DLON} {lat0}, {lon0 + DLON} {lat0 + DLAT}, "
                      f"{lon0} {lat0 + DLAT}, {lon0} {lat0}))")
            rows.append({"zelle": f"Z{i}{j}", "bezeichnung": f"Zelle {i}-{j}", "breite": lat0 + DLAT / 2,
                         "laenge": lon0 + DLON / 2, "grenze": square})
    return pd.DataFrame(rows)


def _inside(cell: str, fx: float = 0.3, fy: float = 0.6) -> tuple[float, float]:
    i, j = int(cell[1]), int(cell[2])
    return ORIGIN_LAT + (i + fy) * DLAT, ORIGIN_LON + (j + fx) * DLON


EVENTS = [  # (cell, date, time, platform kind)
    ("Z00", "31.03.2024", "01:30", "DEMO"),
    ("Z11", "31.03.2024", "02:30", "BLOCK"),  # does not exist in Berlin: the spring gap
    ("Z22", "27.10.2024", "02:30", "DEMO"),  # happens twice in Berlin: the autumn repeat
    ("Z12", "28.10.2024", "09:15", "FIGHT"),
    (None, "29.10.2024", "10:00", "DEMO"),  # far outside the grid: cannot be placed
]
MAPPING = """
date_formats: ["%d.%m.%Y %H:%M"]
tables:
  regions:
    file: zellen.csv
    columns:
      zelle: village_id
      bezeichnung: [village_name, town_name]
      breite: lat
      laenge: lon
      grenze: boundary
    constants:
      county_id: BER
      kind: community
  incidents:
    file: vorfaelle.csv
    timezone: Europe/Berlin
    coordinates: {lat: y, lon: x}
    derived:
      incident_id: {concat: [jahr, nummer], separator: "-"}
      occurred_at: {concat: [datum, uhrzeit], separator: " "}
      kind: {lookup: {column: art, file: arten.csv, key: code, value: contract}}
    defaults:
      participants: 1
"""


@pytest.fixture()
def city(tmp_path) -> Path:
    """The export and its mapping, written as a new city's platform would have them."""
    export = tmp_path / "export"
    export.mkdir()
    _grid().to_csv(export / "zellen.csv", index=False)
    far = (ORIGIN_LAT + 1.0, ORIGIN_LON + 1.0)
    coords = [_inside(cell) if cell else far for cell, *_ in EVENTS]
    pd.DataFrame({
        "jahr": ["2024"] * len(EVENTS),
        "nummer": [f"{i:04d}" for i in range(1, len(EVENTS) + 1)],
        "datum": [d for _, d, _, _ in EVENTS],
        "uhrzeit": [t for _, _, t, _ in EVENTS],
        "art": [k for *_, k in EVENTS],
        "y": [c[0] for c in coords],
        "x": [c[1] for c in coords],
        "teilnehmer": ["", "12", "", "4", "3"],
    }).rename(columns={"teilnehmer": "participants"}).to_csv(export / "vorfaelle.csv", index=False)
    pd.DataFrame({"code": ["DEMO", "BLOCK", "FIGHT"],
                  "contract": ["mass_gathering", "blockade", "violent_conflict"]}).to_csv(tmp_path / "arten.csv",
                                                                                             index=False)
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    return tmp_path


def _ingest_city(city: Path):
    return run_ingest(city / "export", city / "warehouse", None, mapping=city / "mapping.yaml",
                      as_of=pd.Timestamp("2025-01-01", tz=BERLIN), timezone=BERLIN)


def test_a_grid_city_with_coordinates_and_its_own_codes_ingests_by_mapping_alone(city):
    report = _ingest_city(city)
    regions = pd.read_parquet(city / "warehouse" / "regions.parquet")
    incidents = pd.read_parquet(city / "warehouse" / "incidents.parquet").set_index("incident_id")
    assert regions["county_id"].eq("BER").all() and regions["kind"].eq("community").all()
    assert (regions["village_name"] == regions["town_name"]).all(), "one source column feeds two"
    assert regions["boundary"].str.startswith("POLYGON").all()
    assert incidents.index.tolist() == ["2024-0001", "2024-0002", "2024-0003", "2024-0004"]
    assert incidents["village_id"].tolist() == [cell for cell, *_ in EVENTS[:4]]
    assert incidents["kind"].tolist() == ["mass_gathering", "blockade", "mass_gathering", "violent_conflict"]
    assert incidents["participants"].tolist() == [1, 12, 1, 4], "the default fills empty cells only"
    assert str(incidents["occurred_at"].dtype) == "datetime64[us, Europe/Berlin]"
    assert set(report.tables["regions"].missing_optional_columns) >= {"population", "households", "mediators",
                                                                      "legal_adviser", "grid_cells", "town_id"}
    assert "severity" in report.tables["incidents"].missing_optional_columns
    rejects = pd.read_parquet(city / "warehouse" / "rejects" / "incidents.parquet")
    assert rejects[["source_row", "column", "reason"]].values.tolist() == [[5, "village_id", "unplaced"]]


def test_daylight_saving_gaps_move_forward_and_repeats_take_the_first_occurrence(city):
    _ingest_city(city)
    times = pd.read_parquet(city / "warehouse" / "incidents.parquet").set_index("incident_id")["occurred_at"]
    assert times["2024-0001"] == pd.Timestamp("2024-03-31 01:30", tz=BERLIN)
    assert times["2024-0002"] == pd.Timestamp("2024-03-31 03:00+02:00")
    assert times["2024-0003"] == pd.Timestamp("2024-10-27 02:30+02:00"), "first occurrence: summer time"


@pytest.mark.parametrize(("wall", "expected"), [
    ("2024-03-31 02:00", "2024-03-31 03:00+02:00"),
    ("2024-03-31 02:59:59", "2024-03-31 03:00+02:00"),
    ("2024-10-27 02:00", "2024-10-27 02:00+02:00"),
    ("2024-10-27 03:00", "2024-10-27 03:00+01:00"),
])
def test_wall_clock_times_around_the_changes_are_resolved_not_rejected(wall, expected):
    options = ParseOptions(DEFAULT_DATE_FORMATS, BERLIN, warehouse_timezone=BERLIN)
    parsed, bad = parse_timestamps(pd.Series([wall], dtype="str"), options)
    assert not bad.iloc[0]
    assert parsed.iloc[0] == pd.Timestamp(expected)


def test_without_boundaries_events_go_to_the_nearest_centre_within_the_allowed_distance(city):
    grid = _grid().drop(columns="grenze")
    grid.to_csv(city / "export" / "zellen.csv", index=False)
    mapping = city / "mapping.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("      grenze: boundary\n", ""), encoding="utf-8")
    report = run_ingest(city / "export", city / "warehouse", None, mapping=mapping,
                        as_of=pd.Timestamp("2025-01-01", tz=BERLIN), timezone=BERLIN, max_distance_km=2.0)
    incidents = pd.read_parquet(city / "warehouse" / "incidents.parquet")
    assert incidents["village_id"].tolist() == [cell for cell, *_ in EVENTS[:4]]
    assert report.tables["incidents"].rejected_by_reason == {"unplaced": 1}


def test_the_pseudonym_key_is_needed_only_for_tables_with_personal_identifiers(tmp_path):
    tables = clean_export()
    plain = write_export({n: tables[n] for n in ("regions", "incidents", "disputes")}, tmp_path / "plain", "csv")
    run_ingest(plain, tmp_path / "a", None, as_of=AS_OF)
    personal = write_export({n: tables[n] for n in ("regions", "incidents", "petitions")}, tmp_path / "personal",
                            "csv")
    with pytest.raises(ConfigurationError, match="personal identifiers.*FENGQIAO_PSEUDONYM_KEY"):
        run_ingest(personal, tmp_path / "b", None, as_of=AS_OF)
    asked = []
    run_ingest(plain, tmp_path / "c", lambda: asked.append(1) or b"key", as_of=AS_OF)
    assert not asked, "a source without identifiers never asks for the key"


def test_redaction_rules_are_configurable_per_country(tmp_path):
    tables = clean_export()
    tables["disputes"].loc[0, "summary"] = "Anruf von +49 30 1234567, Akte 13912345678"
    source = write_export({n: tables[n] for n in ("regions", "incidents", "disputes")}, tmp_path / "x", "csv")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('redaction:\n  rules:\n    - {pattern: "[+]49[ 0-9]{6,14}[0-9]", token: "[Telefon]"}\n',
                       encoding="utf-8")
    run_ingest(source, tmp_path / "warehouse", None, mapping=mapping, as_of=AS_OF)
    summary = pd.read_parquet(tmp_path / "warehouse" / "disputes.parquet")["summary"].iloc[0]
    assert summary == "Anruf von [Telefon], Akte 13912345678"


def test_a_mapping_with_a_derived_column_from_a_missing_source_column_names_it(city):
    (city / "export" / "vorfaelle.csv").write_text(
        (city / "export" / "vorfaelle.csv").read_text(encoding="utf-8").replace("uhrzeit", "zeit"), encoding="utf-8")
    with pytest.raises(InputDataError, match="'incidents'.*'uhrzeit'"):
        _ingest_city(city)


def test_a_mapping_giving_a_column_twice_an_unknown_zone_or_placing_regions_is_a_configuration_error(tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("tables:\n  incidents:\n    columns: {a: kind}\n    constants: {kind: blockade}\n")
    with pytest.raises(ConfigurationError, match="more than once"):
        run_ingest(tmp_path, tmp_path / "warehouse", None, mapping=mapping)
    mapping.write_text("tables:\n  incidents:\n    timezone: Mars/Base\n")
    with pytest.raises(ConfigurationError, match="Mars/Base"):
        run_ingest(tmp_path, tmp_path / "warehouse", None, mapping=mapping)
    mapping.write_text("tables:\n  regions:\n    coordinates: {lat: y, lon: x}\n")
    with pytest.raises(ConfigurationError, match="only event tables"):
        run_ingest(tmp_path, tmp_path / "warehouse", None, mapping=mapping)
