"""The intervention catalogue and the plan file contract."""

import json

import pytest

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import DEFAULT_KINDS, load_catalogue, read_plan, resolved


def _plan(tmp_path, **overrides):
    body = {"snapshot": "2026-10-26", "horizon_days": 30,
            "actions": [{"kind": "mediation_team", "entity": "village", "id": "610702200001", "weeks": 8}]}
    body.update(overrides)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(body))
    return path


def test_a_plan_in_the_documented_format_reads_with_defaults_filled_in(tmp_path):
    plan = read_plan(_plan(tmp_path))
    kind, amount, weeks = resolved(plan.actions[0], load_catalogue(None))
    assert (kind.lever, amount, weeks) == ("mediation_team", 1.0, 8)


def test_extra_keys_written_by_a_planner_are_kept(tmp_path):
    actions = [{"kind": "hearing", "entity": "project", "id": "P1", "predicted_drop": 0.1}]
    plan = read_plan(_plan(tmp_path, actions=actions, expected_averted=0.4))
    assert plan.actions[0].model_extra == {"predicted_drop": 0.1}


@pytest.mark.parametrize(("overrides", "field"), [
    ({"snapshot": "2026-10-27"}, "snapshot"),
    ({"horizon_days": 0}, "horizon_days"),
    ({"actions": [{"kind": "hearing", "entity": "town", "id": "x"}]}, "actions.0.entity"),
    ({"actions": [{"kind": "hearing", "entity": "project", "id": "x", "weeks": 0}]}, "actions.0.weeks"),
])
def test_a_malformed_plan_is_refused_naming_the_file_and_field(tmp_path, overrides, field):
    with pytest.raises(ConfigurationError, match=rf"plan.json: not a valid plan: {field}"):
        read_plan(_plan(tmp_path, **overrides))


def test_an_unknown_kind_or_a_kind_sent_to_the_wrong_entity_is_an_error(tmp_path):
    catalogue = load_catalogue(None)
    plan = read_plan(_plan(tmp_path, actions=[{"kind": "drone", "entity": "village", "id": "v"},
                                              {"kind": "hearing", "entity": "village", "id": "v"}]))
    with pytest.raises(ConfigurationError, match="unknown intervention kind 'drone'; known: compensation"):
        resolved(plan.actions[0], catalogue)
    with pytest.raises(ConfigurationError, match="a hearing action goes to a project, not a village"):
        resolved(plan.actions[1], catalogue)


def test_a_catalogue_file_replaces_the_defaults(tmp_path):
    path = tmp_path / "interventions.yaml"
    path.write_text("kinds:\n  mediation_team:\n    lever: mediation_team\n    entity: village\n"
                    "    budget: teams\n    unit: team\n    unit_cost: 2\n    mechanism: 4\n"
                    "    zh: 调解组\n    en: team\n")
    catalogue = load_catalogue(path)
    assert list(catalogue.kinds) == ["mediation_team"]
    assert catalogue.budgets() == ["teams"]
    assert catalogue.kind("mediation_team").unit_cost == 2
    assert set(load_catalogue(None).kinds) == set(DEFAULT_KINDS)


def test_a_broken_catalogue_file_is_a_configuration_error(tmp_path):
    path = tmp_path / "interventions.yaml"
    path.write_text("kinds:\n  x:\n    lever: drones\n")
    with pytest.raises(ConfigurationError, match="interventions.yaml: not a valid interventions catalogue"):
        load_catalogue(path)


def test_a_change_per_feature_must_be_an_addition(tmp_path):
    path = tmp_path / "interventions.yaml"
    path.write_text("kinds:\n  patrol_hours:\n    lever: patrol_hours\n    entity: village\n    budget: hours\n"
                    "    unit: hour\n    mechanism: 1\n    zh: 巡查\n    en: patrol\n    features:\n"
                    "      - {feature: patrols_per_grid_cell_week_30d, how: set, value: 2, per_feature: grid_cells}\n")
    with pytest.raises(ConfigurationError, match="per_feature divides an add or add_per_week change, not set"):
        load_catalogue(path)
