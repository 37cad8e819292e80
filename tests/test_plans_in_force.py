"""Plans in force: running actions the data does not record are applied before planning, so the
planner neither counts their effect again nor sends them twice; the rest is counted, not lost."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

import numpy as np
import pytest
from planning_world import SNAPSHOT, VILLAGE_FEATURES, planning_inputs, train

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import Catalogue, Plan
from models.prevention import make_plan
from models.prevention.in_force import running, with_plans_in_force

CATALOGUE = Catalogue()
ADVISER = VILLAGE_FEATURES.index("legal_adviser")
MEDIATORS = VILLAGE_FEATURES.index("mediators")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("in-force-bundles")
    return {e: train(root / e, e) for e in ("village", "project")}


@pytest.fixture(scope="module")
def inputs():
    return planning_inputs()


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
