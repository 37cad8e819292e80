"""The planner: what-if rows exactly as the catalogue says, plans within budgets and scope, the
same plan for the same inputs, clear errors, a solver at least as good as greedy and equal
to brute force, and plans in force applied before planning (neither counted again nor sent twice)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planning_world import COUNTIES, SNAPSHOT, VILLAGE_FEATURES, planning_inputs, train

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import HOURS_PER_PATROL_ROUND, Catalogue, Plan
from models.prevention import check_budgets, expected_incidents, make_plan, parse_budgets
from models.prevention.in_force import running, with_plans_in_force
from models.prevention.options import Option, entity_options, option_costs, option_rows
from models.prevention.solver import MIP_REL_GAP, choose, most_chosen, undominated, within_reach
from models.prevention.whatif import apply_changes

CATALOGUE = Catalogue()
ALL = {"mediation_team": 6, "legal_adviser": 3, "patrol_hours": 200, "hearing": 2, "compensation": 1}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("planning-bundles")
    return {e: train(root / e, e) for e in ("village", "project")}


@pytest.fixture(scope="module")
def inputs():
    return planning_inputs()


def _without_timing(plan: dict) -> dict:
    return {**plan, "solver": {k: v for k, v in plan["solver"].items() if k != "seconds"}}


# -- what-if rows ---------------------------------------------------------------------------

def test_what_if_rows_change_the_features_exactly_as_the_catalogue_says():
    row = np.array([[2.0, 4.0, 10.0, 0.0, 1.0, 5.0, 12.0, 9.0]])
    option = Option((("mediation_team", 2.0), ("legal_adviser", 1.0), ("patrol_hours", 80.0)))
    changed = option_rows(row, VILLAGE_FEATURES, CATALOGUE, [option], np.array([2000.0]))[0]
    per_week = 80.0 / 4 / HOURS_PER_PATROL_ROUND
    expected = {"incidents_90d": 2.0, "mediators": 4.0 + 3 * 2, "mediators_per_10k_people": 10.0 + 3 * 2 * 10_000 / 2000,
                "legal_adviser": 1.0, "patrols_7d": 1.0 + per_week, "patrols_30d": 5.0 + per_week * 30 / 7,
                "patrols_90d": 12.0 + per_week * 90 / 7, "days_since_last_patrol": 3.5}
    assert dict(zip(VILLAGE_FEATURES, changed.tolist())) == pytest.approx(expected, rel=1e-12)


def test_what_if_keeps_unknown_counts_unknown_and_establishes_set_and_clipped_values():
    kind = CATALOGUE.kind("patrol_hours")
    row = np.full((1, len(VILLAGE_FEATURES)), np.nan)
    changed = apply_changes(row, VILLAGE_FEATURES, kind.features, np.array([40.0]), 4, np.array([np.nan]))[0]
    assert np.isnan(changed[VILLAGE_FEATURES.index("patrols_7d")])
    assert changed[VILLAGE_FEATURES.index("days_since_last_patrol")] == 3.5
    mediation = CATALOGUE.kind("mediation_team")
    no_people = apply_changes(np.zeros((1, len(VILLAGE_FEATURES))), VILLAGE_FEATURES, mediation.features,
                              np.array([1.0]), 8, np.array([0.0]))[0]
    assert no_people[VILLAGE_FEATURES.index("mediators")] == 3.0
    assert np.isnan(no_people[VILLAGE_FEATURES.index("mediators_per_10k_people")])


def test_patrol_hours_raise_the_rounds_per_grid_cell_by_less_where_there_are_more_cells():
    names = ["grid_cells", "patrols_per_grid_cell_week_30d", "patrols_per_grid_cell_week_90d"]
    rows = np.array([[2.0, 1.0, 1.2], [8.0, 1.0, 1.2], [0.0, 1.0, 1.2], [np.nan, 1.0, 1.2]])
    kind = CATALOGUE.kind("patrol_hours")
    changed = apply_changes(rows, names, kind.features, np.full(4, 40.0), 4, np.full(4, np.nan))
    per_week = 40.0 / 4 / HOURS_PER_PATROL_ROUND
    assert changed[:2, 1:] == pytest.approx(np.array([[1.0 + per_week / 2, 1.2 + per_week / 2],
                                                       [1.0 + per_week / 8, 1.2 + per_week / 8]]), rel=1e-12)
    assert np.isnan(changed[2:, 1:]).all()  # no cells known: the coverage after is unknown
    assert np.isnan(apply_changes(rows[:1, 1:], names[1:], kind.features, np.ones(1), 4, np.ones(1))).all()


def test_changes_to_features_the_model_lacks_are_left_out():
    row = np.array([[1.0, 2.0]])
    kind = CATALOGUE.kind("hearing")
    assert apply_changes(row, ["linked_incidents_90d", "other"], kind.features, np.ones(1), 4, np.ones(1)).tolist() == [[1.0, 2.0]]


def test_options_combine_kinds_once_each_with_amount_steps_for_additive_kinds():
    options = entity_options(CATALOGUE, "village", ALL, amount_steps=3)
    assert len(options) == 4 * 2 * 4 - 1
    assert all(len({k for k, _ in o.actions}) == len(o.actions) for o in options)
    patrols = sorted({a for o in options for k, a in o.actions if k == "patrol_hours"})
    assert patrols == [40.0, 80.0, 120.0]
    assert entity_options(CATALOGUE, "village", {"legal_adviser": 1}, 3) == [Option((("legal_adviser", 1.0),))]
    costs = option_costs(CATALOGUE, [Option((("mediation_team", 2.0), ("patrol_hours", 40.0)))], CATALOGUE.budgets())
    assert dict(zip(CATALOGUE.budgets(), costs[0].tolist()))["patrol_hours"] == 40.0


def test_expected_incidents_read_the_probability_as_a_poisson_count():
    assert expected_incidents(np.array([0.0, 1 - np.exp(-1.0), 1 - np.exp(-0.25)])) == pytest.approx([0.0, 1.0, 0.25])


# -- plans ----------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(budgets=st.fixed_dictionaries({b: st.integers(0, 12).map(float) | st.floats(0, 300) for b in ALL}),
       scope=st.sampled_from(["city", *(f"county:{c}" for c in COUNTIES)]))
def test_a_plan_never_exceeds_a_budget_or_leaves_its_scope(bundles, inputs, budgets, scope):
    plan = make_plan(inputs, bundles, CATALOGUE, budgets, scope)
    for name, amount in budgets.items():
        assert plan["budget_used"][name] <= amount + 1e-9
        assert sum(a["cost"] for a in plan["actions"] if a["budget"] == name) == pytest.approx(plan["budget_used"][name])
    county = None if scope == "city" else scope.removeprefix("county:")
    for action in plan["actions"]:
        rows = inputs.rows[action["entity"]]
        i = list(rows.ids).index(action["id"])
        assert county is None or county in rows.counties[i]
    pairs = [(a["entity"], a["id"], a["kind"]) for a in plan["actions"]]
    assert len(pairs) == len(set(pairs))
    Plan.model_validate(plan)
    assert plan["expected_incidents_averted"] == pytest.approx(
        sum({(a["entity"], a["id"]): a["expected_incidents_averted"] for a in plan["actions"]}.values()))


def test_the_same_inputs_give_the_same_plan(bundles, inputs):
    first = make_plan(inputs, bundles, CATALOGUE, ALL, "city")
    second = make_plan(planning_inputs(), bundles, CATALOGUE, dict(reversed(list(ALL.items()))), "city")
    assert first["actions"]
    assert json.dumps(_without_timing(first)) == json.dumps(_without_timing(second))


def test_a_combination_is_valued_by_its_joint_what_if_not_a_sum(bundles, inputs):
    plan = make_plan(inputs, bundles, CATALOGUE, ALL, "city")
    rows = inputs.rows["village"]
    for action in (a for a in plan["actions"] if a["entity"] == "village"):
        i = list(rows.ids).index(action["id"])
        together = [a for a in plan["actions"] if a["id"] == action["id"]]
        option = Option(tuple(sorted(((a["kind"], a["amount"]) for a in together),
                                     key=lambda ka: list(CATALOGUE.kinds).index(ka[0]))))
        changed = option_rows(rows.X[i:i + 1], bundles["village"].feature_names, CATALOGUE, [option],
                              rows.population[i:i + 1])
        assert action["probability_what_if"] == pytest.approx(float(bundles["village"].probability(changed)[0]),
                                                              abs=1e-12)
        assert action["probability_before"] == pytest.approx(float(bundles["village"].probability(rows.X[i:i + 1])[0]))


def test_the_entity_reading_takes_each_entitys_own_what_if(bundles, inputs):
    plan = make_plan(inputs, bundles, CATALOGUE, ALL, "city", effect="entity")
    assert plan["actions"] and plan["effect"] == "entity"
    for action in plan["actions"]:
        assert action["probability_after"] == action["probability_what_if"]


def _candidates(before, what_if, moved, effect, dose=None):
    from models.prevention.planner import Candidates

    what_if = np.array(what_if)
    dose = np.zeros((*what_if.shape, 1)) if dose is None else np.array(dose, dtype=float)
    return Candidates(None, np.arange(len(before)), [], np.zeros((2, 1)), np.array(before), what_if,
                      np.array(moved), dose, effect)


def test_the_pooled_reading_applies_the_options_citywide_effect_to_each_entitys_risk():
    before = [0.5, 0.1, 0.3, 0.2]
    what_if = [[0.5, 0.4], [0.02, 0.1], [0.3, 0.3], [0.2, 0.2]]  # option 0 moves entities 0, 1 and 3; option 1: 0
    moved = [[True, True], [True, False], [False, False], [True, False]]
    pooled = _candidates(before, what_if, moved, "pooled")
    lam_before, lam_after = expected_incidents(np.array(before)), expected_incidents(np.array(what_if))
    ratio = lam_after[[0, 1, 3], 0].sum() / lam_before[[0, 1, 3]].sum()
    assert pooled.averted[:, 0] == pytest.approx(lam_before * (1 - ratio) * np.array([1, 1, 0, 1]))
    assert pooled.averted[:, 1] == pytest.approx([lam_before[0] - lam_after[0, 1], 0, 0, 0])
    assert np.all(pooled.averted[2] == 0)  # moved by no option: nothing averted, whatever its risk
    entity = _candidates(before, what_if, moved, "entity")
    assert entity.averted == pytest.approx(lam_before[:, None] - lam_after)
    assert entity.after == pytest.approx(np.array(what_if))


def test_the_dose_reading_is_the_pooled_one_where_every_entity_gets_the_same_dose():
    before = [0.5, 0.1, 0.3, 0.2]
    what_if = [[0.45, 0.4], [0.02, 0.1], [0.3, 0.3], [0.1, 0.2]]
    moved = [[True, True], [True, False], [False, False], [True, False]]
    same = np.tile([[[2.0, -1.0]]], (4, 2, 1))
    dose = _candidates(before, what_if, moved, "dose", same)
    assert dose.averted == pytest.approx(_candidates(before, what_if, moved, "pooled").averted, rel=1e-12)


def test_the_dose_reading_gives_a_larger_dose_a_larger_share_of_the_pooled_effect():
    """Villages with fewer grid cells get more rounds per cell from the same hours; the what-ifs
    say the ratio falls with the dose, with noise. The reading follows the dose, keeps the
    city's pooled total, and never reads a lever as raising risk."""
    rng = np.random.default_rng(3)
    n = 200
    before = rng.uniform(0.05, 0.5, n)
    cells_dose = rng.uniform(0.1, 2.0, n)
    lam = expected_incidents(before)
    lam_after = lam * np.exp(-0.3 * cells_dose + rng.normal(0, 0.05, n))
    what_if = -np.expm1(-lam_after)[:, None]
    moved = np.ones((n, 1), dtype=bool)
    read = _candidates(before, what_if, moved, "dose", np.column_stack([np.full(n, 6.7), cells_dose])[:, None, :])
    ratio = 1 - read.averted[:, 0] / lam
    assert np.corrcoef(np.log(ratio), cells_dose)[0, 1] < -0.99
    assert np.log(ratio) == pytest.approx(-0.3 * cells_dose + np.log(ratio).mean() + 0.3 * cells_dose.mean(), abs=0.02)
    assert read.averted[:, 0].sum() == pytest.approx(lam.sum() - lam_after.sum(), rel=1e-9)
    pooled = _candidates(before, what_if, moved, "pooled")
    assert pooled.averted[:, 0].sum() == pytest.approx(read.averted[:, 0].sum(), rel=1e-9)
    harmful = _candidates(before, -np.expm1(-lam * np.exp(0.2 * cells_dose))[:, None], moved, "dose",
                          cells_dose[:, None, None])
    assert np.all(harmful.averted == 0)


def test_what_the_model_leaves_of_a_budget_goes_to_the_highest_risk_entities_it_applies_to():
    from types import SimpleNamespace

    from models.prevention.planner import Candidates, _by_risk

    adviser, teams = Option((("legal_adviser", 1.0),)), Option((("mediation_team", 1.0),))
    before = np.array([0.1, 0.5, 0.3, 0.4, 0.2])
    candidates = Candidates(SimpleNamespace(ids=np.array(list("abcde"), dtype=object)), np.arange(5),
                            [adviser, teams], option_costs(CATALOGUE, [adviser, teams], CATALOGUE.budgets()),
                            before, np.tile(before[:, None], 2),
                            np.array([[1, 1], [1, 1], [0, 1], [1, 1], [1, 1]], dtype=bool), np.zeros((5, 2, 1)))
    left = {"legal_adviser": 2.5, "mediation_team": 1.0}
    entities, options = _by_risk(candidates, CATALOGUE, left, taken=np.array([3]))
    # catalogue order: the team to the riskiest free entity (b); then advisers to the two riskiest
    # left that it applies to (c has one already, d is in the plan)
    assert list(zip(entities.tolist(), options.tolist())) == [(1, 1), (4, 0), (0, 0)]
    assert left == {"legal_adviser": 0.5, "mediation_team": 0.0}


def test_a_plan_spends_what_the_model_sees_no_effect_of_by_risk_and_says_so(bundles, inputs):
    """Each village's own what-if often predicts nothing for patrols: with hours for every
    village, those go by risk rank, after the model's choices, and say so."""
    plan = make_plan(inputs, bundles, CATALOGUE, {"patrol_hours": 1200}, "city", effect="entity")
    by_risk = [a for a in plan["actions"] if a["basis"] == "risk"]
    model = [a for a in plan["actions"] if a["basis"] == "model"]
    assert model and by_risk and plan["actions"] == model + by_risk
    assert plan["budget_used"]["patrol_hours"] <= 1200
    rows = inputs.rows["village"]
    planned = {a["id"] for a in plan["actions"]}
    p = dict(zip(rows.ids, bundles["village"].probability(rows.X)))
    left_out = [p[i] for i in rows.ids if i not in planned]
    for action in by_risk:
        assert action["amount"] == CATALOGUE.kind("patrol_hours").default_amount
        assert action["reasons_en"][-1].endswith("placed by risk rank") and action["reasons_zh"][-1].endswith("按风险高低安排")
        assert all(action["probability_before"] >= q for q in left_out)


def test_an_unknown_effect_reading_is_an_error():
    with pytest.raises(ValueError, match="unknown effect reading 'causal'"):
        _candidates([0.1], [[0.1]], [[False]], "causal")


def test_actions_carry_reasons_in_both_languages_and_the_action_in_words(bundles, inputs):
    plan = make_plan(inputs, bundles, CATALOGUE, {"legal_adviser": 2}, "county:C1")
    assert plan["actions"] and {a["kind"] for a in plan["actions"]} == {"legal_adviser"}
    for action in plan["actions"]:
        assert action["reasons_en"][-1].startswith("assign a legal adviser for 26 weeks")
        assert action["reasons_zh"][-1].startswith("配备法律顾问")
        assert len(action["reasons_zh"]) == len(action["reasons_en"]) >= 1
        assert action["county"] == "C1" and action["probability_drop"] > 0


def test_a_budget_below_every_cost_gives_an_empty_plan_that_says_why(bundles, inputs):
    plan = make_plan(inputs, bundles, CATALOGUE, {"patrol_hours": 10}, "city")
    assert plan["actions"] == [] and plan["expected_incidents_averted"] == 0
    assert "budget" in plan["note"]


@pytest.mark.parametrize(("text", "named"), [("mediation_team=", "mediation_team="), ("=5", "=5"),
                                              ("patrol_hours=many", "patrol_hours"), ("mediation_team", "mediation_team")])
def test_malformed_budget_text_is_an_error_naming_the_entry(text, named):
    with pytest.raises(ConfigurationError, match=named):
        parse_budgets(text)


def test_negative_unknown_or_infinite_budgets_and_unknown_scopes_are_errors(bundles, inputs):
    assert parse_budgets("mediation_team=20, patrol_hours=500") == {"mediation_team": 20.0, "patrol_hours": 500.0}
    with pytest.raises(ConfigurationError, match="'mediation_team' must be a finite amount of at least 0"):
        check_budgets({"mediation_team": -1}, CATALOGUE)
    with pytest.raises(ConfigurationError, match="unknown budget 'drones'"):
        make_plan(inputs, bundles, CATALOGUE, {"drones": 3}, "city")
    with pytest.raises(ConfigurationError, match="finite"):
        check_budgets({"patrol_hours": float("inf")}, CATALOGUE)
    with pytest.raises(ConfigurationError, match="no such county"):
        make_plan(inputs, bundles, CATALOGUE, ALL, "county:C9")
    with pytest.raises(ConfigurationError, match="not city or county"):
        make_plan(inputs, bundles, CATALOGUE, ALL, "town:T1")


# -- the solver -----------------------------------------------------------------------------

def _instance(data, n_groups: int, per_group: int, n_budgets: int):
    """Random benefits (some not positive), integer costs and budgets (some zero)."""
    k = n_groups * per_group
    benefit = np.array(data.draw(st.lists(st.floats(-0.2, 2.0), min_size=k, max_size=k)))
    cost = np.array(data.draw(st.lists(st.integers(0, 6), min_size=k * n_budgets, max_size=k * n_budgets)),
                    dtype=float).reshape(k, n_budgets)
    budgets = np.array(data.draw(st.lists(st.integers(0, 12), min_size=n_budgets, max_size=n_budgets)), dtype=float)
    return benefit, cost, np.repeat(np.arange(n_groups), per_group), budgets


def _greedy(benefit, cost, group, budgets) -> float:
    """Best benefit per unit of cost first, skipping what no longer fits or whose entity is taken."""
    left, taken, total = budgets.copy(), set(), 0.0
    for c in sorted(np.flatnonzero(benefit > 0), key=lambda c: -benefit[c] / max(cost[c].sum(), 1e-9)):
        if group[c] not in taken and np.all(cost[c] <= left):
            left -= cost[c]
            taken.add(group[c])
            total += benefit[c]
    return total


def _brute_force(benefit, cost, group, budgets) -> float:
    """Every choice of at most one candidate per group."""
    per_group = [[None, *np.flatnonzero(group == g)] for g in np.unique(group)]
    best = 0.0
    for pick in itertools.product(*per_group):
        chosen = [c for c in pick if c is not None]
        if np.all(cost[chosen].sum(axis=0) <= budgets):
            best = max(best, float(benefit[chosen].sum()))
    return best


def _solved(data, n_groups: int, per_group: int):
    """A random instance and the solver's selection, checked feasible: within every budget, at
    most one candidate per group."""
    benefit, cost, group, budgets = _instance(data, n_groups, per_group, n_budgets=2)
    selection = choose(benefit, cost, group, budgets)
    chosen = selection.chosen
    assert np.all(cost[chosen].sum(axis=0) <= budgets + 1e-9) and len(set(group[chosen])) == len(chosen)
    return selection, (benefit, cost, group, budgets)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_integer_programme_is_at_least_as_good_as_greedy(data):
    selection, instance = _solved(data, n_groups=8, per_group=3)
    greedy = _greedy(*instance)
    assert selection.total >= greedy * (1 - MIP_REL_GAP) - 1e-12
    assert selection.gap <= MIP_REL_GAP and selection.bound >= selection.total - 1e-9


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_integer_programme_equals_brute_force_on_tiny_instances(data):
    selection, instance = _solved(data, n_groups=4, per_group=2)
    assert selection.total == pytest.approx(_brute_force(*instance), rel=MIP_REL_GAP, abs=1e-9)


def test_a_tiny_benefit_is_still_chosen():
    """HiGHS's absolute tolerances would stop at the empty plan (found by hypothesis)."""
    selection = choose(np.array([1.2e-7, 8.6e-111]), np.ones((2, 1)), np.arange(2), np.array([1.0]))
    assert selection.chosen.tolist() == [0] and selection.total == 1.2e-7


def test_the_solver_never_chooses_what_averts_nothing_or_cannot_be_paid():
    selection = choose(np.array([1.0, 0.0, -1.0, 5.0]), np.array([[1.0], [1.0], [1.0], [9.0]]),
                       np.arange(4), np.array([3.0]))
    assert selection.chosen.tolist() == [0] and selection.total == 1.0


def test_scoring_in_small_batches_gives_the_same_candidates(bundles, inputs, monkeypatch):
    from models.prevention import planner

    whole = planner.score_candidates(inputs.rows["village"], bundles["village"], CATALOGUE, ALL, None)
    monkeypatch.setattr(planner, "BATCH_ROWS", 40)
    batched = planner.score_candidates(inputs.rows["village"], bundles["village"], CATALOGUE, ALL, None)
    assert len(whole.options) > 1 and np.array_equal(whole.after, batched.after)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_leaving_out_dominated_options_keeps_the_optimum(data):
    n, m = 5, 4
    benefit = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0]), min_size=n * m,
                                          max_size=n * m))).reshape(n, m)
    cost = np.array(data.draw(st.lists(st.integers(0, 3), min_size=m * 2, max_size=m * 2)), dtype=float).reshape(m, 2)
    budgets = np.array(data.draw(st.lists(st.integers(0, 8), min_size=2, max_size=2)), dtype=float)
    group = np.repeat(np.arange(n), m)
    offered = undominated(benefit, cost)
    every = choose(benefit.ravel(), np.tile(cost, (n, 1)), group, budgets)
    pruned = choose(np.where(offered, benefit, 0.0).ravel(), np.tile(cost, (n, 1)), group, budgets)
    assert pruned.total == pytest.approx(every.total, rel=2 * MIP_REL_GAP, abs=1e-9)
    assert offered.any(axis=1).all(), "an entity's best option is never dominated"


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_offering_each_option_only_to_the_entities_within_reach_keeps_the_optimum(data):
    n, m = 9, 3
    benefit = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]), min_size=n * m,
                                          max_size=n * m))).reshape(n, m)
    cost = np.array(data.draw(st.lists(st.integers(0, 3), min_size=m * 2, max_size=m * 2)), dtype=float).reshape(m, 2)
    budgets = np.array(data.draw(st.lists(st.integers(0, 6), min_size=2, max_size=2)), dtype=float)
    group = np.repeat(np.arange(n), m)
    reach = most_chosen(cost, budgets)
    offered = within_reach(benefit, reach)
    every = choose(benefit.ravel(), np.tile(cost, (n, 1)), group, budgets)
    pruned = choose(np.where(offered, benefit, 0.0).ravel(), np.tile(cost, (n, 1)), group, budgets)
    assert pruned.total == pytest.approx(every.total, rel=2 * MIP_REL_GAP, abs=1e-9)
    assert len(every.chosen) <= reach


def test_the_reach_bound_counts_the_cheapest_draw_on_each_budget():
    cost = np.array([[2.0, 0.0], [0.0, 40.0], [2.0, 40.0]])
    assert most_chosen(cost, np.array([5.0, 120.0])) == 2 + 3
    assert most_chosen(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([5.0, 5.0])) == np.inf
    ranked = within_reach(np.array([[3.0, 0.0], [1.0, 2.0], [3.0, 1.0]]), 1)
    assert ranked.tolist() == [[True, False], [False, True], [False, False]]  # a tie goes to the earlier


def test_a_probability_near_one_is_read_as_a_bounded_count():
    assert expected_incidents(np.array([1.0, 0.999999]))[0] == pytest.approx(-np.log(0.01))
    assert np.isfinite(expected_incidents(np.array([1.0]))).all()


# -- plans in force ------------------------------------------------------------------------

ADVISER = VILLAGE_FEATURES.index("legal_adviser")
MEDIATORS = VILLAGE_FEATURES.index("mediators")


def _plan(start: dt.date, actions: list[dict]) -> Plan:
    return Plan.model_validate({"snapshot": start.isoformat(), "horizon_days": 30, "actions": actions})


def test_an_action_runs_from_its_plans_snapshot_for_its_weeks():
    start = dt.date(2026, 1, 5)
    assert running(start, 8, start) and running(start, 8, start + dt.timedelta(days=55))
    assert not running(start, 8, start + dt.timedelta(weeks=8)) and not running(start, 8, start - dt.timedelta(days=7))


def test_running_unrecorded_actions_change_their_entities_rows_and_nothing_else(bundles, inputs):
    rows = inputs.rows["village"]
    without = [i for i in range(len(rows.ids)) if rows.X[i, ADVISER] == 0][:2]
    earlier = SNAPSHOT - dt.timedelta(weeks=2)
    plans = [_plan(earlier, [{"kind": "legal_adviser", "entity": "village", "id": rows.ids[without[0]]},
                             {"kind": "mediation_team", "entity": "village", "id": rows.ids[without[1]], "amount": 2},
                             {"kind": "patrol_hours", "entity": "village", "id": rows.ids[without[1]]},
                             {"kind": "mediation_team", "entity": "village", "id": "V-GONE"}]),
             _plan(SNAPSHOT - dt.timedelta(weeks=10), [{"kind": "mediation_team", "entity": "village",
                                                        "id": rows.ids[without[0]]}]),
             _plan(SNAPSHOT + dt.timedelta(weeks=1), [{"kind": "hearing", "entity": "project", "id": "P0"}])]
    before = rows.X.copy()
    changed, counts = with_plans_in_force(inputs, bundles, plans, CATALOGUE)
    assert asdict(counts) == {"plans": 3, "applied": 2, "recorded": 1, "not_running": 2, "unknown_entity": 1}
    X = changed.rows["village"].X
    assert X[without[0], ADVISER] == 1 and X[without[1], MEDIATORS] == before[without[1], MEDIATORS] + 6
    untouched = np.setdiff1d(np.arange(len(X)), without)
    np.testing.assert_array_equal(X[untouched], before[untouched])
    np.testing.assert_array_equal(rows.X, before)  # the inputs are not changed in place
    np.testing.assert_array_equal(changed.rows["project"].X, inputs.rows["project"].X)


def test_a_village_with_an_adviser_in_force_is_not_sent_a_second_one(bundles, inputs):
    first = make_plan(inputs, bundles, CATALOGUE, {"legal_adviser": 3}, "city")
    sent = [a for a in first["actions"] if a["kind"] == "legal_adviser"]
    assert sent and first["in_force"]["plans"] == 0
    second = make_plan(inputs, bundles, CATALOGUE, {"legal_adviser": 3}, "city",
                       in_force=[Plan.model_validate(first)])
    assert second["in_force"] == {"plans": 1, "applied": len(sent), "recorded": 0, "not_running": 0,
                                  "unknown_entity": 0}
    again = {a["id"] for a in second["actions"]} & {a["id"] for a in sent}
    assert not again and len(second["actions"]) == len(sent)


def test_the_probability_before_includes_what_is_in_force(bundles, inputs):
    rows = inputs.rows["village"]
    target = str(rows.ids[int(np.argmax(bundles["village"].probability(rows.X)))])
    in_force = [_plan(SNAPSHOT, [{"kind": "mediation_team", "entity": "village", "id": target, "amount": 3}])]
    plan = make_plan(inputs, bundles, CATALOGUE, {"patrol_hours": 400}, "city", in_force=in_force)
    changed, _ = with_plans_in_force(inputs, bundles, in_force, CATALOGUE)
    k = list(rows.ids).index(target)
    with_teams = float(bundles["village"].probability(changed.rows["village"].X[k:k + 1])[0])
    for action in (a for a in plan["actions"] if a["id"] == target):
        assert action["probability_before"] == pytest.approx(with_teams)


def test_an_action_in_force_of_an_unknown_kind_or_on_the_wrong_entity_is_an_error_naming_it(bundles, inputs):
    for action, says in (({"kind": "airlift", "entity": "village", "id": "V00"}, "unknown intervention kind"),
                         ({"kind": "hearing", "entity": "village", "id": "V00"}, "goes to a project")):
        with pytest.raises(ConfigurationError, match=f"plan in force 2, action 1: .*{says}"):
            make_plan(inputs, bundles, CATALOGUE, {"legal_adviser": 1}, "city",
                      in_force=[_plan(SNAPSHOT, []), _plan(SNAPSHOT, [action])])
