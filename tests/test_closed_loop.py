"""The closed-loop experiment (experiments/closed_loop.py) runs end to end on a tiny world:
two weeks of export → ingest → features → fit → plan → advance, against the same world run
on without plans, and what it records is sane."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.live import LiveWorld

ROOT = Path(__file__).resolve().parents[1]
TINY = {"--world-seed": "3", "--scale": "0.06", "--years": "1.6"}
"""About 120 villages; 1.6 years leave enough labelled weeks after the features' warm-up year for
the calibration's held-out slice."""


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> dict:
    """Two weeks of the loop on the tiny world (refitted each week, budgets held while in the
    field), the no-planning arm scored in week 2."""
    tmp = tmp_path_factory.mktemp("closed-loop")
    argv = [sys.executable, str(ROOT / "experiments" / "closed_loop.py"), "--weeks", "2", "--retrain-every", "1",
            "--budget-rule", "in-field",
            "--plain-checkpoints", "2", "--out", str(tmp / "var"), "--results", str(tmp / "results"),
            *[x for kv in TINY.items() for x in kv]]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp / "results" / "closed_loop_in_field.md").read_text().startswith("# The closed loop")
    return json.loads((tmp / "results" / "closed_loop_in_field.json").read_text())


def test_it_runs_every_week_and_refits_when_asked(record):
    assert record["complete"] and [w["week"] for w in record["weeks"]] == [1, 2]
    assert record["in_force"] and record["weeks"][0]["same_kind_running_share"] in (0, None)
    assert [w["model_version"] for w in record["weeks"]] == ["week1", "week2"]
    assert len(record["fit_seconds"]) == 2


def test_plans_stay_within_what_the_budgets_have_left_in_the_field(record):
    """With the in-field rule an action holds its cost for its weeks (all kinds last longer
    than one week by default)."""
    first, second = record["weeks"]
    assert first["budget_available"] == record["budgets"]
    for week in record["weeks"]:
        for budget, used in week["budget_used"].items():
            assert used <= week["budget_available"][budget] + 1e-9
    # what week 1 sent for longer than a week is still in the field in week 2
    for budget, amount in record["budgets"].items():
        assert second["budget_available"][budget] == pytest.approx(amount - first["budget_used"][budget])


def test_incidents_are_counted_in_both_arms_and_the_no_plan_arm_is_the_world_run_on(record):
    config = SimulationConfig(seed=int(TINY["--world-seed"]), scale=float(TINY["--scale"]),
                              years=float(TINY["--years"]))
    plain = LiveWorld(config, date.fromisoformat(record["start"]), seed=record["loop_seed"])
    for week in record["weeks"]:
        before = len(plain.incident_log())
        plain.advance(7)
        assert week["incidents_plain"] == len(plain.incident_log()) - before
        assert week["expected_plain"] == pytest.approx(float(plain.daily_intensity[-7:].sum()))
        assert sum(week["incidents_by_county_plain"].values()) == week["incidents_plain"]
        assert sum(week["incidents_by_county_planned"].values()) == week["incidents_planned"]
    totals = record["totals"]
    assert totals["incidents_plain"] == sum(w["incidents_plain"] for w in record["weeks"])
    assert totals["expected_averted"] == pytest.approx(totals["expected_plain"] - totals["expected_planned"])


def test_county_shares_sum_to_one(record):
    assert sum(record["population_share"].values()) == pytest.approx(1, abs=1e-3)
    for week in record["weeks"]:
        for name in ("alert_share", "true_share", "resource_share"):
            assert set(week[name]) == set(record["counties"])
            assert sum(week[name].values()) == pytest.approx(1, abs=1e-3), name
        assert 0 <= week["alerts_as_week1"] <= 1
    assert record["weeks"][0]["alerts_as_week1"] == 1
    assert record["weeks"][0]["plain_alert_share"] is None
    assert sum(record["weeks"][1]["plain_alert_share"].values()) == pytest.approx(1, abs=1e-3)
