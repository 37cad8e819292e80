"""`fengqiao plan` on a served data root: the plan file, and one-line errors naming the option."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fengqiao.interventions import read_plan
from pipelines.cli import app as cli


@pytest.fixture
def root(api_root, monkeypatch):
    monkeypatch.setenv("FENGQIAO_API_VILLAGE_MODEL", str(api_root / "bundles" / "1" / "village"))
    monkeypatch.setenv("FENGQIAO_API_PROJECT_MODEL", str(api_root / "bundles" / "1" / "project"))
    return api_root


def _plan(root, *options: str):
    return CliRunner().invoke(cli, ["--data-root", str(root), "plan", *options])


def test_plan_writes_a_plan_file_in_the_contract_format_with_the_default_budgets(root, tmp_path):
    out = tmp_path / "plan.json"
    result = _plan(root, "--out", str(out))
    assert result.exit_code == 0, result.output
    plan = read_plan(out)
    assert plan.actions and plan.horizon_days == 30
    extra = plan.model_extra
    assert extra["budgets"] == {"compensation": 3.0, "hearing": 5.0, "legal_adviser": 10.0, "mediation_team": 20.0,
                                "patrol_hours": 500.0}
    assert all(extra["budget_used"][b] <= extra["budgets"][b] for b in extra["budgets"])
    assert "incidents averted expected" in result.output and str(out) in result.output


@pytest.mark.parametrize(("options", "says"), [
    (["--budget", "mediation_team="], "--budget"),
    (["--budget", "mediation_team=-3"], "--budget"),
    (["--budget", "drones=3"], "--budget: unknown budget 'drones'"),
    (["--scope", "county:999999"], "--scope: scope 'county:999999': no such county"),
    (["--scope", "province"], "--scope"),
])
def test_malformed_budgets_and_scopes_are_one_line_errors_naming_the_option(root, tmp_path, options, says):
    result = _plan(root, *options, "--out", str(tmp_path / "plan.json"))
    assert result.exit_code == 2
    assert says in " ".join(result.stderr.split()) and "Traceback" not in result.output
    assert not (tmp_path / "plan.json").exists()


def test_a_budget_below_every_cost_writes_an_empty_plan_that_says_so(root, tmp_path):
    zero = ",".join(f"{b}=0" for b in ("mediation_team", "legal_adviser", "hearing", "compensation"))
    result = _plan(root, "--budget", f"{zero},patrol_hours=5", "--out", str(tmp_path / "plan.json"))
    assert result.exit_code == 0, result.output
    assert read_plan(tmp_path / "plan.json").actions == []
    assert "no action fits the budgets" in result.output


def test_plans_in_force_are_read_and_a_broken_one_is_a_one_line_error_naming_it(root, tmp_path):
    (tmp_path / "adopted").mkdir()
    first, second = tmp_path / "adopted" / "first.json", tmp_path / "second.json"
    assert _plan(root, "--budget", "legal_adviser=2", "--out", str(first)).exit_code == 0
    result = _plan(root, "--budget", "legal_adviser=2", "--in-force", str(first.parent), "--out", str(second))
    assert result.exit_code == 0, result.output
    sent = {a.id for a in read_plan(first).actions if a.kind == "legal_adviser"}
    plan = read_plan(second)
    assert plan.model_extra["in_force"]["plans"] == 1 and plan.model_extra["in_force"]["applied"] >= len(sent)
    assert not sent & {a.id for a in plan.actions if a.kind == "legal_adviser"}
    assert "plans in force: 1" in result.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"snapshot": "2026-01-06", "horizon_days": 30}')
    refused = _plan(root, "--in-force", str(broken), "--out", str(tmp_path / "third.json"))
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert f"--in-force: {broken}: not a valid plan: snapshot" in " ".join(refused.stderr.split())


def test_the_adopted_plans_setting_counts_in_every_plan_and_a_missing_path_is_an_error(root, tmp_path, monkeypatch):
    adopted = tmp_path / "adopted"
    adopted.mkdir()
    assert _plan(root, "--budget", "legal_adviser=2", "--out", str(adopted / "first.json")).exit_code == 0
    monkeypatch.setenv("FENGQIAO_PLANS_IN_FORCE", str(adopted))
    result = _plan(root, "--budget", "legal_adviser=2", "--out", str(tmp_path / "second.json"))
    assert result.exit_code == 0, result.output
    assert read_plan(tmp_path / "second.json").model_extra["in_force"]["plans"] == 1
    monkeypatch.setenv("FENGQIAO_PLANS_IN_FORCE", str(tmp_path / "nowhere"))
    missing = _plan(root, "--out", str(tmp_path / "third.json"))
    assert missing.exit_code == 2
    said = " ".join(missing.stderr.split())
    assert "FENGQIAO_PLANS_IN_FORCE: " in said and "no such plan file or folder" in said
