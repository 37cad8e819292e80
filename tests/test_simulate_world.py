"""The synthetic world: contracts, documented rates, mechanism and the oracle's honesty."""

from __future__ import annotations

import re
from pathlib import Path

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from features.calendar import pre_festival_ramp, spring_festival_days
from features.contracts import CONTRACTS
from pipelines.simulate.dynamics import Mechanism
from pipelines.simulate.geography import COUNTIES
from features.truth import read_oracle
from fengqiao.errors import ConfigurationError
from fengqiao.settings import Settings
from pipelines.jobs import features_job, ingest_job
from pipelines.simulate.export import write_export
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.history import run_history
from pipelines.simulate.oracle import oracle
from pipelines.simulate.world import incident_labels, simulate_world

DOC = Path(__file__).resolve().parents[1] / "docs" / "simulator.md"


def documented_ranges() -> dict[str, tuple[float, float]]:
    """The (low, high) of every rate in docs/simulator.md's table of realised rates."""
    section = DOC.read_text().split("## Realised rates of the default world")[1].split("\n## ")[0]
    rows = re.findall(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \|", section, flags=re.M)
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


def test_projects_are_a_realistic_ranking_problem(default_world):
    """5-15% of project-weeks see a linked incident within 30 days; 10-20% of incidents are
    project-linked (the documented ranges say the same)."""
    rates, ranges = default_world.rates, documented_ranges()
    assert ranges["share_project_weeks_incident_30d"] == (0.05, 0.15)
    assert ranges["share_incidents_project_linked"] == (0.10, 0.20)
    assert 0.05 <= rates["share_project_weeks_incident_30d"] <= 0.15
    assert 0.10 <= rates["share_incidents_project_linked"] <= 0.20


def _village_labels(world, snapshot_days: np.ndarray) -> np.ndarray:
    regions, incidents = world.tables["regions"], world.tables["incidents"]
    log = np.column_stack([
        (incidents["occurred_at"] - world.config.start_ts).dt.days.to_numpy(),
        pd.Index(regions["village_id"]).get_indexer(incidents["village_id"]),
        np.zeros(len(incidents), dtype=np.int64),
    ])
    return incident_labels(log, len(regions), snapshot_days, world.config.horizon_days)


def _within_99(realised: float, n: int, p: float) -> bool:
    low, high = binom.ppf([0.005, 0.995], n, p) / n
    return low <= realised <= high


def test_oracle_is_calibrated_by_decile(default_world):
    """Each decile of the oracle's p has a realised incident rate within the 99% binomial
    interval around its mean p. Windows of one village overlap from week to week, so only
    every fifth Monday is used (35 days apart: disjoint 30-day windows)."""
    n = len(default_world.tables["regions"])
    oracle = default_world.oracle_villages
    days = (oracle["snapshot"].iloc[::n] - default_world.config.start_ts).dt.days.to_numpy()
    chosen = np.flatnonzero(days + 30 <= default_world.config.n_days)[::5]
    p = oracle["p_incident_30d"].to_numpy().reshape(-1, n)[chosen].ravel()
    labels = _village_labels(default_world, days[chosen]).ravel()
    decile = pd.qcut(p, 10, labels=False)
    for d in range(10):
        rows = decile == d
        assert _within_99(labels[rows].mean(), int(rows.sum()), p[rows].mean()), d


def test_project_oracle_is_calibrated(default_world):
    """The project oracle (incidents linked to the project) has its mean p within the 99%
    interval of the realised rate, over project-weeks five weeks apart."""
    config, projects = default_world.config, default_world.tables["projects"]
    oracle = default_world.oracle_projects
    days = (oracle["snapshot"] - config.start_ts).dt.days.to_numpy()
    first = days.min()
    rows = ((days - first) % 35 == 0) & (days + 30 <= config.n_days)
    incidents = default_world.tables["incidents"].dropna(subset=["project_id"])
    hit = oracle[rows].merge(incidents[["project_id", "occurred_at"]], on="project_id", how="left")
    hit = hit[(hit["occurred_at"] >= hit["snapshot"]) & (hit["occurred_at"] < hit["snapshot"] + pd.Timedelta(days=30))]
    positives = oracle[rows].set_index(["project_id", "snapshot"]).index.isin(
        hit.set_index(["project_id", "snapshot"]).index)
    assert rows.sum() > 500 and set(oracle["project_id"]) <= set(projects["project_id"])
    assert _within_99(positives.mean(), int(rows.sum()), oracle.loc[rows, "p_incident_30d"].mean())


def test_project_oracle_rows_follow_the_platform_rule(default_world):
    """A project has oracle rows from the first Monday after its announcement until 180 days
    after completion (ADR 001), as the project feature table does."""
    oracle = default_world.oracle_projects.merge(default_world.tables["projects"], on="project_id")
    assert (oracle["announced_at"] < oracle["snapshot"]).all()
    done = oracle["completed_at"].notna()
    assert (oracle.loc[done, "snapshot"] <= oracle.loc[done, "completed_at"] + pd.Timedelta(days=180)).all()
    finished_long_ago = default_world.tables["projects"]["completed_at"] < (
        default_world.config.end_ts - pd.Timedelta(days=400))
    assert finished_long_ago.any()


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
    """With every feedback switched off (and projects not driving incidents directly), λ on
    the days ahead is fixed at t, so the oracle must be exactly 1 - exp(-Σλ) over the
    recorded intensities of the window."""
    quiet = Mechanism(dispute_self=0.0, dispute_spill=0.0, petition_grievance=0.0, petition_repeat=0.0,
                      project_petitions=0.0, incident_grievance=0.0, incident_escalation=0.0,
                      incident_project=0.0)
    world = simulate_world(SimulationConfig(seed=3, scale=0.05, years=0.5, oracle_paths=2, mechanism=quiet))
    lam = world.daily_intensity.astype(np.float64)
    start = world.config.start_ts
    n_villages = len(world.tables["regions"])
    oracle = world.oracle_villages
    days = ((oracle["snapshot"] - start).dt.days).to_numpy().reshape(-1, n_villages)[:, 0]
    p = oracle["p_incident_30d"].to_numpy().reshape(-1, n_villages)
    checked = 0
    for s, t in enumerate(days):
        if t + 30 <= lam.shape[0]:
            expected = 1.0 - np.exp(-lam[t : t + 30].sum(axis=0))
            np.testing.assert_allclose(p[s], expected, rtol=1e-5)
            checked += 1
    assert checked >= 15


def test_oracle_at_a_snapshot_ignores_projects_announced_after_it(small_mechanics):
    """Every project the history announces on or after t is rescheduled to start at once,
    in acquisition, at ten times its severity: the oracle at t must not move. Changing a
    project already announced does move it (the test can fail)."""
    config, mech, oracle_seed, history = (small_mechanics.config, small_mechanics.mech,
                                          small_mechanics.oracle_seed, small_mechanics.history)
    s = len(mech.snapshot_days) // 2
    t = int(mech.snapshot_days[s])
    arrays = mech.arrays
    later = arrays.proj_days[:, 0] >= t
    assert later.any() and (~later).any()
    days = arrays.proj_days.copy()
    days[later] = [t, t, t + 400, t + 800]
    severity = mech.levers.severity
    future_changed = replace(mech, arrays=arrays._replace(proj_days=days),
                             levers=mech.levers._replace(severity=np.where(later, 10.0, 1.0) * severity))
    base = oracle(oracle_seed, config, mech, history.snap_states, np.array([s]))
    moved = oracle(oracle_seed, config, future_changed, history.snap_states, np.array([s]))
    np.testing.assert_array_equal(base[0], moved[0])
    np.testing.assert_array_equal(base[1][:, ~later], moved[1][:, ~later])
    past_changed = replace(mech, levers=mech.levers._replace(severity=np.where(later, 1.0, 10.0) * severity))
    assert not np.array_equal(base[0], oracle(oracle_seed, config, past_changed, history.snap_states, np.array([s]))[0])


def test_oracle_at_a_snapshot_ignores_the_random_draws_after_it(small_mechanics):
    """A history that draws another future from day t on (same past) gives the same state
    and the same oracle at t, while what happens after t differs."""
    config, mech, oracle_seed, history = (small_mechanics.config, small_mechanics.mech,
                                          small_mechanics.oracle_seed, small_mechanics.history)
    history_seed = small_mechanics.history_seed
    s = len(mech.snapshot_days) // 2
    t = int(mech.snapshot_days[s])
    other = run_history(history_seed, config, mech, reseed={t: 12345})
    np.testing.assert_array_equal(history.snap_states[: s + 1], other.snap_states[: s + 1])
    assert not np.array_equal(history.lam[t + 1 :], other.lam[t + 1 :])
    base = oracle(oracle_seed, config, mech, history.snap_states, np.array([s]))
    again = oracle(oracle_seed, config, mech, other.snap_states, np.array([s]))
    np.testing.assert_array_equal(base[0], again[0])
    # The oracle of one snapshot does not depend on which others are computed with it.
    together = oracle(oracle_seed, config, mech, history.snap_states, np.arange(s - 2, s + 3))
    np.testing.assert_array_equal(together[0][2], base[0][0])


def test_label_and_oracle_horizons_agree_and_a_mismatch_fails(tmp_path):
    world = simulate_world(SimulationConfig(seed=5, scale=0.05, years=1.2, horizon_days=14, oracle_paths=2))
    assert "p_incident_14d" in world.oracle_villages and "p_incident_14d" in world.oracle_projects
    assert "share_villages_incident_14d" in world.rates
    settings = Settings(data_root=tmp_path / "var", pseudonym_key="k" * 32, horizon_days=14)
    write_export(world, settings.raw_dir)
    ingest_job(settings, str(settings.raw_dir))
    assert read_oracle(settings.warehouse_dir, "village", 14) is not None
    features_job(settings)
    with pytest.raises(ConfigurationError, match="14-day horizon but the labels use 30 days"):
        features_job(settings.model_copy(update={"horizon_days": 30}))
    with pytest.raises(ConfigurationError, match="--horizon-days 30"):
        read_oracle(settings.warehouse_dir, "project", 30)


def _partial_correlation(y: np.ndarray, latent: np.ndarray, control: np.ndarray) -> float:
    """Correlation of y and latent after removing from each its linear fit on ``control``."""
    X = np.column_stack([np.ones_like(control), control])
    resid = lambda v: v - X @ np.linalg.lstsq(X, v, rcond=None)[0]  # noqa: E731
    return float(np.corrcoef(resid(y), resid(latent))[0, 1])


def test_patrol_findings_do_not_depend_on_latents_given_the_event_built_state(default_world):
    """Per village, issues found per patrol against the latents, controlling for what there
    was to find (the grievance backlog per cell on the patrol days): no partial correlation
    beyond noise. The same statistic on the incident intensity λ is large, so the test
    would catch a patrol channel that reads λ."""
    regions, patrols = default_world.tables["regions"], default_world.tables["patrols"]
    start = default_world.config.start_ts
    v = pd.Index(regions["village_id"]).get_indexer(patrols["village_id"])
    d = (patrols["patrolled_at"] - start).dt.days.to_numpy()
    n = len(regions)
    per_patrol = lambda values: np.bincount(v, weights=values, minlength=n) / np.maximum(np.bincount(v, minlength=n), 1)  # noqa: E731
    found = per_patrol(patrols["issues_found"].to_numpy(dtype=float))
    to_find = per_patrol(default_world.backlog[d, v] / regions["grid_cells"].to_numpy()[v])
    lam = per_patrol(default_world.daily_intensity[d, v])
    bound = 4.0 / np.sqrt(n)
    traits = default_world.traits
    for latent in (traits.latent_escalation, traits.latent_dispute):
        assert abs(_partial_correlation(found, latent, to_find)) < bound
    assert _partial_correlation(lam, traits.latent_escalation, to_find) > 3 * bound
    assert np.corrcoef(found, to_find)[0, 1] > 0.3


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
