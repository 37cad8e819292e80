"""The synthetic world: contracts, documented rates, mechanism and the oracle's honesty."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.calendar import pre_festival_ramp, spring_festival_days
from features.contracts import CONTRACTS
from pipelines.simulate.dynamics import Mechanism
from pipelines.simulate.geography import COUNTIES
from pipelines.simulate.world import SimulationConfig, simulate_world

DOC = Path(__file__).resolve().parents[1] / "docs" / "simulator.md"


def documented_ranges() -> dict[str, tuple[float, float]]:
    """The (low, high) of every rate in docs/simulator.md's table."""
    rows = re.findall(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \|", DOC.read_text(), flags=re.M)
    return {name: (float(lo), float(hi)) for name, lo, hi in rows}


def test_documented_rates_hold_in_the_default_world(default_world):
    ranges = documented_ranges()
    assert len(ranges) >= 12
    out_of_range = {
        name: (default_world.rates[name], lo, hi)
        for name, (lo, hi) in ranges.items()
        if not lo <= default_world.rates[name] <= hi
    }
    assert not out_of_range


def test_default_world_is_a_realistic_learning_problem(default_world):
    rates = default_world.rates
    assert 0.03 <= rates["share_villages_incident_30d"] <= 0.10
    assert 0.80 <= rates["oracle_auc_30d"] <= 0.95


def test_oracle_is_calibrated_on_average(default_world):
    rates = default_world.rates
    assert rates["oracle_mean_p_30d"] == pytest.approx(rates["share_villages_incident_30d"], rel=0.15)


def test_tables_follow_the_contracts(small_world):
    for name, frame in small_world.tables.items():
        contract = CONTRACTS[name]
        assert list(frame.columns) == [c for c in contract.column_names if c in frame.columns], name
        assert set(contract.required_columns) <= set(frame.columns), name
        assert frame[contract.key].is_unique, name
        for col in (c for c in contract.columns if c.name in frame.columns):
            values = frame[col.name]
            if not col.nullable:
                assert values.notna().all(), (name, col.name)
            if col.kind == "category":
                assert set(values.dropna()) <= set(col.codes), (name, col.name)
            if col.kind == "timestamp":
                assert str(values.dt.tz) == "Asia/Shanghai", (name, col.name)
        if "village_id" in frame and name != "regions":
            assert frame["village_id"].isin(small_world.tables["regions"]["village_id"]).all(), name
        for earlier, later in contract.time_order:
            both = frame[earlier].notna() & frame[later].notna()
            assert (frame.loc[both, later] >= frame.loc[both, earlier]).all(), (name, later)


def test_places_have_real_county_codes_and_twelve_digit_village_codes(default_world):
    regions = default_world.tables["regions"]
    assert set(regions["county_id"]) == {c.code for c in COUNTIES}
    assert regions["village_id"].str.fullmatch(r"\d{12}").all()
    assert (regions["village_id"].str[:6] == regions["county_id"]).all()
    assert (regions["village_id"].str[:9] == regions["town_id"]).all()
    assert regions["lat"].between(32.1, 33.9).all() and regions["lon"].between(105.5, 108.3).all()
    assert regions.loc[regions["county_id"] == "610702", "kind"].eq("community").mean() > 0.3


def test_nothing_happens_after_the_export_moment(small_world):
    end = small_world.config.end_ts
    for name, frame in small_world.tables.items():
        for col in CONTRACTS[name].timestamp_columns:
            if name != "projects" or col == "announced_at":
                assert (frame[col].dropna() < end).all(), (name, col)


def test_same_seed_same_world_other_seed_other_world():
    config = SimulationConfig(seed=11, scale=0.05, years=1.0, oracle_paths=4)
    a, b = simulate_world(config), simulate_world(config)
    c = simulate_world(SimulationConfig(seed=12, scale=0.05, years=1.0, oracle_paths=4))
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    pd.testing.assert_frame_equal(a.oracle_villages, b.oracle_villages)
    assert not a.tables["disputes"].equals(c.tables["disputes"])


def test_oracle_equals_closed_form_when_nothing_excites():
    """With every feedback switched off, λ on the days ahead is fixed at t, so the oracle
    must be exactly 1 - exp(-Σλ) over the recorded intensities of the window."""
    quiet = Mechanism(dispute_self=0.0, dispute_spill=0.0, petition_grievance=0.0, petition_repeat=0.0,
                      project_petitions=0.0, incident_grievance=0.0, incident_escalation=0.0)
    world = simulate_world(SimulationConfig(seed=3, scale=0.05, years=0.5, oracle_paths=2, mechanism=quiet))
    lam = world.daily_intensity.astype(np.float64)
    start = world.config.start_ts
    n_villages = len(world.tables["regions"])
    oracle = world.oracle_villages
    days = ((oracle["snapshot"] - start).dt.days).to_numpy().reshape(-1, n_villages)[:, 0]
    p = oracle["p_incident_30d"].to_numpy().reshape(-1, n_villages)
    for s, t in enumerate(days):
        if t + 30 <= lam.shape[0]:
            expected = 1.0 - np.exp(-lam[t : t + 30].sum(axis=0))
            np.testing.assert_allclose(p[s], expected, rtol=1e-5)


def test_projects_raise_disputes_in_their_villages_during_acquisition(default_world):
    t = default_world.tables
    disputes, projects = t["disputes"], t["projects"]
    linked = disputes.dropna(subset=["project_id"]).merge(
        projects[["project_id", "village_ids", "acquisition_start", "construction_start", "announced_at"]], on="project_id"
    )
    assert all(v in ids.split("|") for v, ids in zip(linked["village_id"], linked["village_ids"]))
    assert (linked["reported_at"] >= linked["announced_at"].dt.normalize()).all()
    in_acquisition = linked["reported_at"].between(linked["acquisition_start"], linked["construction_start"])
    acq_days = (projects["construction_start"] - projects["acquisition_start"]).dt.days.sum()
    total_days = (default_world.config.end_ts - projects["announced_at"]).dt.days.clip(lower=0).sum()
    assert in_acquisition.mean() > acq_days / total_days


def test_low_compensation_projects_see_more_disputes_per_household(default_world):
    t = default_world.tables
    projects = t["projects"].set_index("project_id")
    per_project = t["disputes"]["project_id"].value_counts().reindex(projects.index, fill_value=0)
    per_household = per_project / np.sqrt(projects["affected_households"])
    low = projects["compensation_ratio"] < 0.8
    assert per_household[low].mean() > 1.3 * per_household[~low].mean()


def test_wage_disputes_peak_before_spring_festival(default_world):
    disputes = default_world.tables["disputes"]
    start = default_world.config.start_ts
    day = (disputes["reported_at"] - start).dt.days.to_numpy()
    before_festival = pre_festival_ramp(day, spring_festival_days(start)) > 0
    wages = (disputes["category"] == "labour_wages").to_numpy()
    assert wages[before_festival].mean() > 1.5 * wages[~before_festival].mean()


def test_petitions_follow_unresolved_disputes_of_their_village(default_world):
    t = default_world.tables
    linked = t["petitions"].dropna(subset=["dispute_id"]).merge(
        t["disputes"], on="dispute_id", suffixes=("", "_dispute")
    )
    assert len(linked) > 0.3 * len(t["petitions"])
    assert (linked["village_id"] == linked["village_id_dispute"]).all()
    assert (linked["reported_at"] < linked["filed_at"]).all()
    assert (linked["outcome"] != "resolved").all()
    assert (linked["topic"] == linked["category"]).all()


def test_collective_and_leapfrog_petitions_escalate_to_incidents(default_world):
    """Villages with more collective/leapfrog petitions in a quarter have more incidents in
    the next month: the escalation the service warns of."""
    t = default_world.tables
    p = t["petitions"]
    escalating = p[(p["participants"] >= 5) | p["level"].isin(["city", "province", "national"])]
    cut = default_world.config.start_ts + pd.Timedelta(days=540)
    before = escalating[escalating["filed_at"].between(cut - pd.Timedelta(days=90), cut)]["village_id"].unique()
    inc = t["incidents"]
    after = inc[inc["occurred_at"].between(cut, cut + pd.Timedelta(days=30))]["village_id"]
    share_hit = after.isin(before).sum() / max(len(after), 1)
    share_villages = len(before) / len(t["regions"])
    assert share_hit > 2 * share_villages


def test_personal_columns_look_like_a_real_export(small_world):
    petitions = small_world.tables["petitions"]
    assert petitions["petitioner_key"].str.fullmatch(r"\d{17}[\dX]").all()
    assert petitions["petitioner_name"].str.len().between(2, 3).all()
    assert petitions["petitioner_key"].duplicated().any()  # repeat petitioners exist
