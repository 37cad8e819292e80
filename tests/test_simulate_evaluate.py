"""The simulator's truth test of a plan (`fengqiao evaluate-plan`): what each lever does to the
mechanism, common random numbers, clear errors, and the CLI as a user meets it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import DEFAULT_KINDS, HOURS_PER_PATROL_ROUND, Catalogue, Plan
from pipelines.cli import app
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.dynamics import Mechanism
from pipelines.simulate.evaluate import TrueWorld, evaluate_plan, lever_inputs, load_world, plan_levers, plan_targets
from pipelines.simulate.export import INTENSITY_FILE, write_export
from pipelines.simulate.world import Truth, make_truth, simulate_world

TINY = SimulationConfig(seed=21, scale=0.05, years=0.6, oracle_paths=2)
"""About 100 villages and 7 months: enough to run plans on, fast to make."""
REPS = 40
CATALOGUE = Catalogue()


@pytest.fixture(scope="module")
def world() -> TrueWorld:
    return TrueWorld(make_truth(TINY)[0])


def snapshot(world: TrueWorld, k: int = -1) -> dt.date:
    """The world's ``k``-th Monday."""
    return (world.truth.config.start_ts + pd.Timedelta(days=int(world.truth.mech.snapshot_days[k]))).date()


def plan(world: TrueWorld, actions: list[dict], k: int = -1, horizon_days: int = 30) -> Plan:
    return Plan.model_validate({"snapshot": snapshot(world, k), "horizon_days": horizon_days, "actions": actions})


def riskiest_villages(world: TrueWorld, n: int) -> list[str]:
    """The villages with the highest recorded incident intensity over the last 90 days."""
    lam = world.truth.history.lam[-90:].sum(axis=0)
    return list(world.truth.mech.regions["village_id"].to_numpy()[np.argsort(-lam)[:n]])


def live_projects(world: TrueWorld, held: bool) -> list[str]:
    """Projects announced before the last snapshot, not completed, with or without a hearing."""
    mech = world.truth.mech
    t = int(mech.snapshot_days[-1])
    days = mech.arrays.proj_days
    rows = (days[:, 0] < t) & (days[:, 3] > t) & (mech.projects["hearing_held"].to_numpy() == held)
    return list(mech.projects["project_id"].to_numpy()[rows])


def test_the_empty_plan_averts_exactly_nothing(world):
    result = evaluate_plan(world, plan(world, []), CATALOGUE, replications=REPS)
    assert (result.averted, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.expected_with == result.expected_without > 0
    assert (result.by_county[["averted", "low", "high"]].to_numpy() == 0.0).all()


def test_a_lever_with_no_physical_effect_averts_exactly_nothing(world):
    """Kinds that change the planner's features but nothing physical (mechanism 0), an adviser
    where one already works, and a hearing already held: exactly 0, under common random numbers."""
    features_only = Catalogue(kinds={
        "patrol_reminder": DEFAULT_KINDS["patrol_hours"].model_copy(update={"mechanism": 0.0}),
        "mediation_visit": DEFAULT_KINDS["mediation_team"].model_copy(update={"mechanism": 0.0}),
        **DEFAULT_KINDS,
    })
    regions = world.truth.mech.regions
    with_adviser = regions.loc[regions["legal_adviser"].astype(bool), "village_id"].iloc[0]
    held = live_projects(world, held=True)
    assert held
    village = riskiest_villages(world, 1)[0]
    actions = [{"kind": "patrol_reminder", "entity": "village", "id": village, "amount": 400},
               {"kind": "mediation_visit", "entity": "village", "id": village, "amount": 5},
               {"kind": "legal_adviser", "entity": "village", "id": with_adviser},
               {"kind": "hearing", "entity": "project", "id": held[0]}]
    result = evaluate_plan(world, plan(world, actions), features_only, replications=REPS)
    assert (result.averted, result.low, result.high) == (0.0, 0.0, 0.0)
    assert (result.by_action[["averted", "low", "high"]].to_numpy() == 0.0).all()
    real = evaluate_plan(world, plan(world, [{**actions[0], "kind": "patrol_hours"}]), features_only,
                         replications=REPS)
    assert real.averted > 0  # the same action with its real mechanism does avert (the test can fail)


def test_more_mediators_never_raise_expected_incidents_on_average(world):
    """Sign test over the riskiest villages, one plan each: no more estimates below 0 than
    chance allows (P(≥ 16 of 20 | p = 1/2) < 0.01), and all together avert more than 0."""
    villages = riskiest_villages(world, 20)
    signs = [evaluate_plan(world, plan(world, [{"kind": "mediation_team", "entity": "village", "id": v, "amount": 3}]),
                           CATALOGUE, replications=REPS).averted for v in villages]
    assert sum(a < 0 for a in signs) < 16
    together = evaluate_plan(world, plan(world, [{"kind": "mediation_team", "entity": "village", "id": v,
                                                  "amount": 3} for v in villages]), CATALOGUE, replications=REPS)
    assert together.low > 0


def test_a_hearing_where_none_was_held_averts_incidents_linked_to_the_project(world):
    projects = live_projects(world, held=False)
    assert projects
    result = evaluate_plan(world, plan(world, [{"kind": "hearing", "entity": "project", "id": j} for j in projects]),
                           CATALOGUE, replications=REPS)
    assert result.averted > 0 and (result.by_action["averted"] > 0).all()


def test_same_seed_same_result_bit_for_bit_whatever_the_threads_other_seed_other_draws(world):
    actions = [{"kind": "legal_adviser", "entity": "village", "id": v} for v in riskiest_villages(world, 5)]
    a = evaluate_plan(world, plan(world, actions), CATALOGUE, replications=REPS, seed=3)
    fresh = evaluate_plan(TrueWorld(world.truth), plan(world, actions), CATALOGUE, replications=REPS, seed=3)
    assert (a.averted, a.low, a.high, a.expected_without) == (fresh.averted, fresh.low, fresh.high,
                                                                fresh.expected_without)
    pd.testing.assert_frame_equal(a.by_county, fresh.by_county, check_exact=True)
    other = evaluate_plan(world, plan(world, actions), CATALOGUE, replications=REPS, seed=4)
    assert other.expected_without != a.expected_without
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = evaluate_plan(TrueWorld(world.truth), plan(world, actions), CATALOGUE, replications=REPS, seed=3)
    finally:
        numba.set_num_threads(threads)
    assert (one_thread.averted, one_thread.expected_without) == (a.averted, a.expected_without)


def test_levers_move_the_mechanism_as_documented_for_the_actions_weeks_only(world):
    """The levers of each day of the window against the formulas written out here."""
    truth = world.truth
    regions, traits, base = truth.mech.regions, truth.mech.traits, truth.mech.levers
    v, u = (regions.index[regions["village_id"] == x][0] for x in riskiest_villages(world, 2))
    j = truth.mech.projects.index[truth.mech.projects["project_id"] == live_projects(world, held=False)[0]][0]
    actions = [{"kind": "mediation_team", "entity": "village", "id": regions["village_id"][v], "amount": 2, "weeks": 1},
               {"kind": "patrol_hours", "entity": "village", "id": regions["village_id"][u], "amount": 60, "weeks": 2},
               {"kind": "compensation", "entity": "project", "id": truth.mech.projects["project_id"][j], "weeks": 10}]
    p = plan(world, actions)
    t = int(truth.mech.snapshot_days[-1])
    levers = plan_levers(truth, lever_inputs(truth, plan_targets(truth, p, CATALOGUE, t), p.horizon_days))
    pop_k = regions["population"][v] / 1000.0
    capacity = (regions["mediators"][v] + 2 * 3.0) / pop_k
    legal = float(regions["legal_adviser"][v])
    expected_p = min(0.97, max(0.2, 1 / (1 + np.exp(-(0.9 + 0.9 * np.log(capacity / 2) + 0.3 * legal)))))
    np.testing.assert_allclose(levers.p_resolve[:7, v], expected_p, rtol=1e-12)
    rate = traits.patrol_rate[u] + 60 / 2 / HOURS_PER_PATROL_ROUND / regions["grid_cells"][u]
    expected_k = (np.exp(traits.latent_escalation[u] - 0.2) * np.exp(-0.35 * (rate - 1))
                  * (0.85 if regions["legal_adviser"][u] else 1.15))
    np.testing.assert_allclose(levers.kappa[:14, u], expected_k, rtol=1e-12)
    ratio = truth.mech.projects["compensation_ratio"][j]
    assert ratio < 1.0
    np.testing.assert_allclose(levers.severity[:, j], base.severity[0, j] / (1 + 8 * (1 - ratio)), rtol=1e-12)
    untouched = np.ones(len(regions), dtype=bool)
    untouched[[v, u]] = False
    assert (levers.p_resolve[7:] == base.p_resolve[0]).all() and (levers.kappa[14:] == base.kappa[0]).all()
    assert (levers.p_resolve[:, untouched] == base.p_resolve[0, untouched]).all()
    assert (levers.kappa[:, untouched] == base.kappa[0, untouched]).all()
    assert (np.delete(levers.severity, j, axis=1) == np.delete(base.severity, j, axis=1)).all()


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"kind": "mediation_team", "entity": "village", "id": "Q-NOT-AN-ID"}, "plan action 1: field id: no village"),
        ({"kind": "hearing", "entity": "project", "id": "Q-NOT-AN-ID"}, "plan action 1: field id: no project"),
        ({"kind": "airlift", "entity": "village", "id": "Q-NOT-AN-ID"},
         "plan action 1: field kind: unknown intervention kind"),
        ({"kind": "hearing", "entity": "village", "id": "Q-NOT-AN-ID"},
         "plan action 1: field kind: a hearing action goes to a project"),
    ],
)
def test_an_unknown_action_is_a_clear_error_naming_the_action_and_field_not_the_content(world, action, message):
    first = {"kind": "legal_adviser", "entity": "village", "id": riskiest_villages(world, 1)[0]}
    with pytest.raises(ConfigurationError, match=message) as err:
        evaluate_plan(world, plan(world, [first, action]), CATALOGUE, replications=REPS)
    assert action["id"] not in str(err.value)


def test_a_plan_outside_the_world_is_refused(world, small_mechanics):
    small = TrueWorld(Truth(small_mechanics.config, small_mechanics.mech, small_mechanics.history,
                            small_mechanics.oracle_seed))
    announced = small.truth.mech.arrays.proj_days[:, 0]
    later = int(np.argmax(announced))
    k = int(np.searchsorted(small.truth.mech.snapshot_days, announced[later]))  # the first Monday on or after it
    assert k > 0
    with pytest.raises(ConfigurationError, match="plan action 0: field id: the project is not announced"):
        evaluate_plan(small, plan(small, [{"kind": "hearing", "entity": "project",
                                           "id": small.truth.mech.projects["project_id"][later]}], k=k - 1),
                      CATALOGUE, replications=REPS)
    with pytest.raises(ConfigurationError, match="plan: field horizon_days: at most the world's horizon"):
        evaluate_plan(world, plan(world, [], horizon_days=31), CATALOGUE, replications=REPS)
    monday_before = snapshot(world, 0) - pd.Timedelta(days=7)
    with pytest.raises(ConfigurationError, match="plan: field snapshot: not a Monday of the world"):
        evaluate_plan(world, Plan(snapshot=monday_before, horizon_days=30), CATALOGUE, replications=REPS)
    with pytest.raises(ConfigurationError, match="replications must be at least 2"):
        evaluate_plan(world, plan(world, []), CATALOGUE, replications=1)


def test_the_no_plan_arm_is_the_oracles_forward_machinery():
    """With every feedback off, λ ahead is fixed at t: each replication's Σλ per village is
    then exactly what the oracle's 1 − e^{−Σλ} was computed from."""
    quiet = Mechanism(dispute_self=0.0, dispute_spill=0.0, petition_grievance=0.0, petition_repeat=0.0,
                      project_petitions=0.0, incident_grievance=0.0, incident_escalation=0.0, incident_project=0.0)
    config = SimulationConfig(seed=3, scale=0.05, years=0.5, oracle_paths=2, mechanism=quiet)
    simulated = simulate_world(config)
    world = TrueWorld(make_truth(config)[0])
    n = len(simulated.tables["regions"])
    p = simulated.oracle_villages["p_incident_30d"].to_numpy().reshape(-1, n)
    for k in (3, 10):
        result = evaluate_plan(world, plan(world, [], k=k), CATALOGUE, replications=3)
        np.testing.assert_allclose(result.expected_without, -np.log1p(-p[k]).sum(), rtol=1e-9)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_export(simulate_world(TINY), out)
    return out


def test_evaluate_plan_cli_prints_the_interval_and_json_prints_exactly_three_keys(exported, world, tmp_path):
    plan_path = tmp_path / "plan.json"
    actions = [{"kind": "legal_adviser", "entity": "village", "id": v, "predicted_drop": 0.01}
               for v in riskiest_villages(world, 3)]
    plan_path.write_text(plan(world, actions).model_dump_json())
    args = ["evaluate-plan", str(plan_path), "--world", str(exported), "--replications", "20"]
    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "incidents averted:" in shown.stdout and "95% interval" in shown.stdout
    assert all(name in shown.stdout for name in world.truth.mech.regions["county_name"].unique())
    printed = CliRunner().invoke(app, [*args, "--json"])
    assert printed.exit_code == 0, printed.output
    summary = json.loads(printed.stdout)
    assert list(summary) == ["averted", "low", "high"]
    assert summary == evaluate_plan(world, plan(world, actions), CATALOGUE, replications=20).summary()


def test_evaluate_plan_cli_refuses_a_bad_plan_or_a_world_from_another_simulator(exported, tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"snapshot": "2024-01-02", "horizon_days": 30, "actions": []}))
    result = CliRunner().invoke(app, ["evaluate-plan", str(bad), "--world", str(exported), "--json"])
    assert result.exit_code == 2 and "snapshot: Value error, must be a Monday" in result.output
    changed = tmp_path / "changed"
    changed.mkdir()
    for name in ("world.json", INTENSITY_FILE):
        (changed / name).write_bytes((exported / name).read_bytes())
    np.save(changed / INTENSITY_FILE, np.load(exported / INTENSITY_FILE) * 1.01)
    with pytest.raises(ConfigurationError, match="made by another version of the simulator"):
        load_world(changed)
