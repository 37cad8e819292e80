"""A world continued week by week with plans applied (the closed loop's simulator): plans act
on the mechanism for their weeks, the same seed gives the same future, and what it exports
is read by the normal ingest."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import Plan
from fengqiao.settings import Settings
from pipelines.jobs import ingest_job
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.live import LiveWorld

CONFIG = SimulationConfig(seed=21, scale=0.05, years=0.6, oracle_paths=2)
START = pd.Timestamp("2024-05-06").date()
"""A Monday about two months before the end of CONFIG's world."""


def top_villages(live: LiveWorld, n: int) -> list[int]:
    lam = live.daily_intensity[-90:].sum(axis=0)
    return list(np.argsort(-lam)[:n])


def patrol_plan(live: LiveWorld, villages: list[int], weeks: int) -> Plan:
    ids = live.truth.mech.regions["village_id"].to_numpy()
    return Plan(snapshot=live.today, horizon_days=30, actions=[
        {"kind": "patrol_hours", "entity": "village", "id": ids[v], "amount": 200, "weeks": weeks} for v in villages])


def test_same_seed_same_future_and_the_empty_plan_changes_nothing():
    a, b = LiveWorld(CONFIG, START, seed=5), LiveWorld(CONFIG, START, seed=5)
    assert a.today == START
    a.advance(7)
    b.advance(7, Plan(snapshot=START, horizon_days=30))
    np.testing.assert_array_equal(a.daily_intensity, b.daily_intensity)
    other = LiveWorld(CONFIG, START, seed=6)
    other.advance(7)
    assert not np.array_equal(other.daily_intensity[-7:], a.daily_intensity[-7:])
    np.testing.assert_array_equal(other.daily_intensity[:-7], a.daily_intensity[:-7])


def test_patrol_hours_lower_the_intensity_of_their_villages_for_their_weeks_only():
    """Patrols move κ only, and κ moves no draw: under the same seed every other village's
    intensity is unchanged to the bit, the patrolled villages' is lower for the plan's two
    weeks (across two advances), and equal again after."""
    plain, planned = LiveWorld(CONFIG, START, seed=5), LiveWorld(CONFIG, START, seed=5)
    villages = top_villages(planned, 3)
    planned.advance(7, patrol_plan(planned, villages, weeks=2))
    plain.advance(7)
    for live in (plain, planned):
        live.advance(7)
        live.advance(7)
    others = np.setdiff1d(np.arange(plain.daily_intensity.shape[1]), villages)
    new = slice(-21, None)
    np.testing.assert_array_equal(plain.daily_intensity[new][:, others], planned.daily_intensity[new][:, others])
    assert (planned.daily_intensity[-21:-7][:, villages] < plain.daily_intensity[-21:-7][:, villages]).all()
    np.testing.assert_array_equal(plain.daily_intensity[-7:], planned.daily_intensity[-7:])
    rounds = [len(live.world().tables["patrols"].query("village_id in @ids and patrolled_at >= @since"))
              for live in (plain, planned)
              for ids, since in [(live.truth.mech.regions["village_id"].to_numpy()[villages],
                                  CONFIG.start_ts + pd.Timedelta(days=live.day - 21))]]
    assert rounds[1] > rounds[0] + 50  # 600 hours bought: about 400 rounds of 1.5 h


def test_a_plan_must_start_today_and_the_world_cannot_run_past_its_history():
    live = LiveWorld(CONFIG, START)
    with pytest.raises(ConfigurationError, match="plan: field snapshot: must be today"):
        live.advance(7, Plan(snapshot=START + pd.Timedelta(days=7), horizon_days=30))
    with pytest.raises(ConfigurationError, match="advance: days must be 1 to"):
        live.advance(400)
    with pytest.raises(ConfigurationError, match="not a Monday of the world"):
        LiveWorld(CONFIG, START + pd.Timedelta(days=1))


def test_the_export_of_a_continued_world_is_read_by_the_normal_ingest(tmp_path, monkeypatch):
    monkeypatch.setenv("FENGQIAO_PSEUDONYM_KEY", "k" * 32)
    live = LiveWorld(CONFIG, START, seed=5)
    live.advance(7, patrol_plan(live, top_villages(live, 2), weeks=1))
    live.advance(7)
    raw = tmp_path / "raw"
    live.export(raw)
    record = json.loads((raw / "world.json").read_text())
    end = pd.Timestamp(record["end"])
    assert end == CONFIG.start_ts + pd.Timedelta(days=live.day)
    assert not (raw / "oracle.parquet").exists()
    tables = live.world().tables
    assert tables["incidents"]["occurred_at"].max() < end
    assert (tables["projects"]["announced_at"] < end).all()
    result = ingest_job(Settings(data_root=tmp_path / "var"), str(raw))
    assert any(f"as of {end.isoformat()}" in line for line in result.lines), result.lines
    report = json.loads((tmp_path / "var" / "warehouse" / "ingest_report.json").read_text())
    assert sum(t["rejected"] for t in report["tables"].values()) == 0
    incidents = pd.read_parquet(tmp_path / "var" / "warehouse" / "incidents.parquet")
    assert len(incidents) == len(tables["incidents"])
