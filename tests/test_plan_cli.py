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
