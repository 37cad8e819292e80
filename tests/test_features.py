"""The feature engine on hand-made worlds: exact numbers, tie semantics, missing tables, I/O.

Every world starts with an incident on Monday 2023-01-02 in a far-away village, so the first
snapshot is Monday 2024-01-08 (the first Monday a year after the earliest event) and the
snapshots run weekly from there.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from feature_reference import assert_same_table, brute_force_neighbours, reference_features, table, ts

from features.calendar import read_holiday_file, spring_festival_calendar
from features.contracts import TIMEZONE
from features.engine import (
    GROUPS,
    Code,
    Condition,
    EngineOptions,
    EventCounter,
    EventSource,
    NeighbourParams,
    build_and_write,
    build_features,
    default_catalogue,
    feature_registry,
    read_feature_inputs,
)
from features.engine import kernels
from features.engine.families.longmemory import shrunk_rates
from features.engine.neighbours import find_neighbours
from features.engine.timeline import NEVER, epoch_seconds, local_days, snapshot_times
from features.warehouse import write_table
from fengqiao.errors import InputDataError

V1, V2, FAR = "610702001001", "610702001002", "610728101001"
FIRST_EVENT = "2023-01-02 00:00"
T = ts("2024-03-04 00:00")  # a Monday snapshot
WEEK = pd.Timedelta(days=7)
AS_OF = ts("2024-06-30 12:00")


def regions() -> pd.DataFrame:
    return table("regions", [
        dict(village_id=V1, lat=33.070, lon=107.030, population=2500, households=800, mediators=5, grid_cells=4),
        dict(village_id=V2, lat=33.080, lon=107.040, population=0, households=300, mediators=2, grid_cells=0,
             kind="community", legal_adviser=False),
        dict(village_id=FAR, lat=32.600, lon=107.900),
    ])  # fmt: skip


def world(**tables: list[dict]) -> dict[str, pd.DataFrame]:
    """Regions, the anchoring incident, and the given tables (name → records)."""
    incidents = [dict(village_id=FAR, occurred_at=FIRST_EVENT), *tables.pop("incidents", [])]
    out = {"regions": regions(), "incidents": table("incidents", incidents)}
    out.update({name: table(name, records) for name, records in tables.items()})
    return out


def at(build, entity_id: str, t: pd.Timestamp, feature: str) -> float:
    frame = build.frame
    row = frame[(frame.iloc[:, 0] == entity_id) & (frame["snapshot"] == t)]
    assert len(row) == 1, f"no row for {entity_id} at {t}"
    value = row[feature].iloc[0]
    return float("nan") if pd.isna(value) else float(value)


def villages(w: dict, **kwargs):
    return build_features(w, "village", as_of=kwargs.pop("as_of", AS_OF), **kwargs)


# --- snapshots and tie semantics -------------------------------------------------------


def test_snapshots_are_mondays_from_the_first_a_year_after_the_earliest_event() -> None:
    build = villages(world())
    snaps = build.frame["snapshot"].drop_duplicates()
    assert snaps.iloc[0] == ts("2024-01-08 00:00")
    assert snaps.iloc[-1] == ts("2024-06-24 00:00")  # the last Monday at or before as_of
    assert (snaps.dt.day_of_week == 0).all() and (snaps.dt.hour == 0).all()
    assert str(snaps.dt.tz) == "Asia/Shanghai"
    assert (snaps.diff().dropna() == WEEK).all()
    assert len(build.frame) == 3 * len(snaps)


def test_snapshot_schedule_starts_on_a_monday_even_when_the_year_ends_on_one() -> None:
    monday = int(ts("2024-01-08 00:00").timestamp())
    year_before = monday - 365 * 86_400
    assert snapshot_times(year_before, monday + 1, 7, TIMEZONE)[0] == monday
    assert snapshot_times(year_before + 1, monday + 8 * 86_400, 7, TIMEZONE)[0] == monday + 7 * 86_400
    assert len(snapshot_times(year_before, monday - 1, 7, TIMEZONE)) == 0
    every_two = snapshot_times(year_before, monday + 30 * 86_400, 14, TIMEZONE)
    assert list(np.diff(every_two)) == [14 * 86_400] * (len(every_two) - 1)


def test_an_event_exactly_at_t_counts_from_the_next_snapshot() -> None:
    build = villages(world(disputes=[dict(village_id=V1, reported_at=T)]))
    assert at(build, V1, T, "disputes_7d") == 0
    assert at(build, V1, T + WEEK, "disputes_7d") == 1  # t - 7 days <= time: the window's edge counts
    assert at(build, V1, T + 2 * WEEK, "disputes_7d") == 0
    assert at(build, V1, T + 2 * WEEK, "disputes_30d") == 1


def test_a_window_includes_its_left_edge_and_excludes_t() -> None:
    edge = T - pd.Timedelta(days=30)
    build = villages(world(disputes=[
        dict(village_id=V1, reported_at=edge),
        dict(village_id=V1, reported_at=edge - pd.Timedelta(seconds=1)),
        dict(village_id=V1, reported_at=T - pd.Timedelta(seconds=1)),
        dict(village_id=V1, reported_at=T),
    ]))  # fmt: skip
    assert at(build, V1, T, "disputes_30d") == 2
    assert at(build, V1, T, "disputes_90d") == 3


def test_events_at_the_same_timestamp_all_count_or_none_do() -> None:
    same = T - pd.Timedelta(days=3)
    build = villages(world(disputes=[dict(village_id=V1, reported_at=same, category="land")] * 3))
    assert at(build, V1, T, "disputes_7d") == 3
    assert at(build, V1, T, "land_disputes_7d") == 3
    assert at(build, V1, T - WEEK, "disputes_7d") == 0
    assert at(build, V1, T, "disputes_decay_7d") == pytest.approx(3 * math.exp(-3 / 7), rel=1e-6)


def test_label_looks_from_t_to_just_before_t_plus_horizon() -> None:
    build = villages(world(incidents=[
        dict(village_id=V1, occurred_at=T),
        dict(village_id=V2, occurred_at=T + pd.Timedelta(days=30)),
    ]))  # fmt: skip
    assert at(build, V1, T, "label") == 1  # an incident at t is the future of t
    assert at(build, V1, T - WEEK, "label") == 1
    assert at(build, V1, T + WEEK, "label") == 0
    assert at(build, V2, T, "label") == 0  # t + 30 days is the next window's
    assert at(build, V2, T + WEEK, "label") == 1
    assert at(build, V1, T + WEEK, "incidents_7d") == 1  # and history from the next snapshot on
    assert at(build, V1, T, "incidents_7d") == 0


def test_label_is_missing_where_the_horizon_passes_the_end_of_the_data() -> None:
    build = villages(world(), horizon_days=30)
    frame = build.frame
    unknown = frame["snapshot"] + pd.Timedelta(days=30) > AS_OF
    assert frame.loc[unknown, "label"].isna().all()
    assert frame.loc[~unknown, "label"].notna().all()
    assert str(frame["label"].dtype) == "Int8"
    assert build.summary.labelled_rows == int((~unknown).sum())


def test_default_end_of_data_is_the_latest_event() -> None:
    build = build_features(world(disputes=[dict(village_id=V1, reported_at="2024-05-01 10:00")]), "village")
    assert build.summary.as_of == ts("2024-05-01 10:00")
    assert build.frame["snapshot"].max() == ts("2024-04-29 00:00")


# --- knowledge time --------------------------------------------------------------------


def test_an_outcome_counts_from_the_day_it_was_recorded() -> None:
    reported = T - pd.Timedelta(days=60)
    build = villages(world(disputes=[
        dict(village_id=V1, reported_at=reported, category="land", outcome="resolved", mediated_at=T + pd.Timedelta(days=3)),
        dict(village_id=V2, reported_at=reported, category="land", outcome="resolved", mediated_at=T),
        dict(village_id=FAR, reported_at=reported, category="land", outcome="failed", mediated_at=T - WEEK),
    ]))  # fmt: skip
    for village in (V1, V2, FAR):
        assert at(build, village, T, "unresolved_land_disputes_365d") == 1
        assert at(build, village, T, "unresolved_disputes_90d") == 1
        assert at(build, village, T, "unresolved_disputes_30d") == 0  # reported 60 days ago
    assert at(build, V1, T + WEEK, "unresolved_disputes_90d") == 0
    assert at(build, V2, T + WEEK, "unresolved_disputes_90d") == 0
    assert at(build, FAR, T + WEEK, "unresolved_disputes_90d") == 1  # failed mediation: still unresolved


def test_mediation_failure_rate_is_failed_over_concluded_by_recorded_time() -> None:
    build = villages(world(disputes=[
        dict(village_id=V1, reported_at="2023-06-01", outcome="failed", mediated_at=T - pd.Timedelta(days=10)),
        dict(village_id=V1, reported_at="2023-06-01", outcome="to_court", mediated_at=T - pd.Timedelta(days=20)),
        dict(village_id=V1, reported_at="2023-06-01", outcome="resolved", mediated_at=T - pd.Timedelta(days=40)),
        dict(village_id=V1, reported_at="2023-06-01", outcome="partial", mediated_at=T + pd.Timedelta(days=1)),
        dict(village_id=V1, reported_at="2023-06-01", outcome="pending"),
    ]))  # fmt: skip
    assert at(build, V1, T, "mediations_90d") == 3
    assert at(build, V1, T, "failed_mediations_90d") == 2
    assert at(build, V1, T, "mediation_failure_rate_90d") == pytest.approx(2 / 3)
    assert at(build, V1, T + WEEK, "mediation_failure_rate_90d") == pytest.approx(2 / 4)
    assert math.isnan(at(build, V2, T, "mediation_failure_rate_90d"))


# --- petitions ------------------------------------------------------------------------


def test_repeat_petitioners_are_distinct_keys_with_two_petitions_in_the_window() -> None:
    recent = T - pd.Timedelta(days=5)
    build = villages(world(petitions=[
        *[dict(village_id=V1, filed_at=recent, petitioner_key="k1")] * 2,
        dict(village_id=V1, filed_at=recent, petitioner_key="k2"),
        *[dict(village_id=V1, filed_at=recent - pd.Timedelta(days=d), petitioner_key="k3") for d in (0, 10, 50)],
        dict(village_id=V2, filed_at=recent, petitioner_key="k2"),  # k2 twice, but in two villages
    ]))  # fmt: skip
    assert at(build, V1, T, "repeat_petitioners_30d") == 2  # k1 and k3
    assert at(build, V1, T, "repeat_petitioners_90d") == 2
    assert at(build, V2, T, "repeat_petitioners_30d") == 0
    assert at(build, V1, T, "petitions_30d") == 5


def test_collective_and_leapfrog_petitions() -> None:
    recent = T - pd.Timedelta(days=1)
    build = villages(world(petitions=[
        dict(village_id=V1, filed_at=recent, participants=5, level="county"),
        dict(village_id=V1, filed_at=recent, participants=4, level="city"),
        dict(village_id=V1, filed_at=recent, participants=12, level="province"),
        dict(village_id=V1, filed_at=recent, participants=1, level="town"),
    ]))  # fmt: skip
    assert at(build, V1, T, "collective_petitions_7d") == 2
    assert at(build, V1, T, "leapfrog_petitions_7d") == 2
    assert at(build, V1, T, "petitions_to_county_7d") == 1


def test_unclosed_petitions_and_closure_quality() -> None:
    filed = T - pd.Timedelta(days=20)
    build = villages(world(petitions=[
        dict(village_id=V1, filed_at=filed, closed_at=T - pd.Timedelta(days=2), satisfied=False, within_limit=False),
        dict(village_id=V1, filed_at=filed, closed_at=T, satisfied=True),
        dict(village_id=V1, filed_at=filed),
    ]))  # fmt: skip
    assert at(build, V1, T, "unclosed_petitions_30d") == 2
    assert at(build, V1, T + WEEK, "unclosed_petitions_30d") == 1
    assert at(build, V1, T, "petition_dissatisfaction_rate_365d") == 1.0
    assert at(build, V1, T + WEEK, "petition_dissatisfaction_rate_365d") == 0.5
    assert at(build, V1, T + WEEK, "petition_late_closure_rate_365d") == 0.5


# --- patrols ------------------------------------------------------------------------


def test_days_since_last_patrol_and_open_hazards() -> None:
    build = villages(world(patrols=[
        dict(village_id=V1, patrolled_at=T - pd.Timedelta(days=40)),
        dict(village_id=V1, patrolled_at=T - pd.Timedelta(days=2, hours=12), issues_found=2,
             issue_kinds="safety_hazard|public_order", resolved_at=T + pd.Timedelta(days=1)),
    ]))  # fmt: skip
    assert at(build, V1, T, "days_since_last_patrol") == pytest.approx(2.5)
    assert math.isnan(at(build, V2, T, "days_since_last_patrol"))
    assert at(build, V1, T, "open_safety_hazard_reports_90d") == 1
    assert at(build, V1, T + WEEK, "open_safety_hazard_reports_90d") == 0
    assert at(build, V1, T, "public_order_reports_30d") == 1
    assert at(build, V1, T, "patrol_issues_found_30d") == 2
    assert at(build, V1, T, "open_patrols_with_issues_30d") == 1


# --- decayed intensities, trends, spill-over ----------------------------------------------


def test_decayed_intensity_is_the_exponential_sum_over_past_events() -> None:
    build = villages(world(disputes=[
        dict(village_id=V1, reported_at=T - pd.Timedelta(days=1)),
        dict(village_id=V1, reported_at=T - pd.Timedelta(days=10)),
        dict(village_id=V1, reported_at=T),
    ]))  # fmt: skip
    for tau in (7, 30, 90):
        expected = math.exp(-1 / tau) + math.exp(-10 / tau)
        assert at(build, V1, T, f"disputes_decay_{tau}d") == pytest.approx(expected, rel=1e-6)
    assert at(build, V1, T, "disputes_trend") == pytest.approx((2 / 30) / (2 / 365), rel=1e-6)
    assert math.isnan(at(build, V2, T, "disputes_trend"))


# --- weekly lags and long memory --------------------------------------------------------


def test_weekly_lags_count_each_of_the_last_five_weeks_with_the_windows_edges() -> None:
    second, day = pd.Timedelta(seconds=1), pd.Timedelta(days=1)
    # one second before t and exactly 7 days before (week 1: a window includes its left edge), one second
    # earlier (week 2), exactly 35 days before (week 5), one second earlier (out), and at t (the future)
    build = villages(world(incidents=[dict(village_id=V1, occurred_at=when) for when in
                                      (T - second, T - 7 * day, T - 7 * day - second, T - 35 * day,
                                       T - 35 * day - second, T)]))  # fmt: skip
    assert [at(build, V1, T, f"incidents_lag_{k}w") for k in range(1, 6)] == [2, 1, 0, 0, 1]
    frame = build.frame
    assert frame["incidents_lag_1w"].equals(frame["incidents_7d"])


def test_long_memory_rate_is_the_gamma_poisson_mean_shrunk_toward_the_county() -> None:
    # V1 and V2 share a county, FAR (with only the anchoring incident) is alone in its own; every
    # village has been observed since the first incident: E = 427 days before T.
    build = villages(world(incidents=[dict(village_id=V1, occurred_at=f"2023-0{m}-10 12:00") for m in range(3, 9)]))
    e = 427 / 365.25
    assert [at(build, v, T, "incidents_all_history") for v in (V1, V2, FAR)] == [6, 0, 1]
    # raw rates k/E with k = 6, 0, 1: mean m = 7/(3E), variance 62/(9E²), Poisson part m/E = 21/(9E²),
    # so the prior strength b = m / (62/9 − 21/9)·E² = 21E/41 years; county means 3/E and 1/E
    expected = {V1: (6 + 3 / e * 21 * e / 41) / (e + 21 * e / 41), V2: 63 / (62 * e), FAR: 1 / e}
    assert expected[V1] == pytest.approx(309 / (62 * e))
    for village, rate in expected.items():
        assert at(build, village, T, "incidents_per_year_shrunk") == pytest.approx(rate, rel=1e-6)


def test_shrunk_rates_pull_a_short_record_toward_its_group_and_keep_the_order() -> None:
    counts = np.array([[0], [1], [2], [10], [0], [0], [1], [3]], dtype=float)
    exposure = np.full((8, 1), 2.0)
    county = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    rate = shrunk_rates(counts, exposure, np.ones((8, 1), dtype=bool), county)[:, 0]
    raw = counts[:, 0] / exposure[:, 0]
    pooled = [counts[:4].sum() / 8] * 4 + [counts[4:].sum() / 8] * 4
    assert np.all(np.diff(rate[:4]) > 0) and np.all(np.diff(rate[4:]) >= 0)
    for r, x, p in zip(rate, raw, pooled):  # between its raw rate and its county's pooled rate
        assert min(x, p) - 1e-12 <= r <= max(x, p) + 1e-12
    not_rows = np.zeros((8, 1), dtype=bool)
    assert np.isnan(shrunk_rates(counts, exposure, not_rows, county)).all()


def test_neighbour_spill_is_a_distance_weighted_sum_over_neighbours_not_self() -> None:
    build = villages(world(disputes=[dict(village_id=V2, reported_at=T - pd.Timedelta(days=1))] * 2))
    nb = find_neighbours(regions()["lat"].to_numpy(), regions()["lon"].to_numpy())
    v1 = 0  # regions() lists V1 first; the engine sorts ids, and V1 < V2 < FAR
    weight = nb.weights[nb.indptr[v1] : nb.indptr[v1 + 1]][0]
    assert 0 < weight < 1
    assert at(build, V1, T, "nearby_disputes_30d") == pytest.approx(2 * weight, rel=1e-6)
    assert at(build, V2, T, "nearby_disputes_30d") == 0  # its own disputes are not spill-over
    assert at(build, FAR, T, "nearby_disputes_30d") == 0  # beyond 15 km
    assert at(build, V1, T, "nearby_villages") == 1


def test_neighbours_from_the_ball_tree_match_brute_force_haversine() -> None:
    rng = np.random.default_rng(3)
    n = 60
    frame = pd.DataFrame({"village_id": [f"v{i:02d}" for i in range(n)],
                          "lat": 33 + rng.random(n) * 0.4, "lon": 107 + rng.random(n) * 0.4})  # fmt: skip
    params = NeighbourParams(k=5, radius_km=12.0, scale_km=5.0)
    nb = find_neighbours(frame["lat"].to_numpy(), frame["lon"].to_numpy(), params)
    expected = brute_force_neighbours(frame, params)
    for i, vid in enumerate(frame["village_id"]):
        got = [(frame["village_id"][j], w) for j, w in zip(nb.indices[nb.indptr[i] : nb.indptr[i + 1]],
                                                           nb.weights[nb.indptr[i] : nb.indptr[i + 1]])]  # fmt: skip
        assert [g[0] for g in got] == [e[0] for e in expected[vid]]
        np.testing.assert_allclose([g[1] for g in got], [e[1] for e in expected[vid]], rtol=1e-9)


# --- projects ----------------------------------------------------------------------


def _project(**kw) -> dict:
    base = dict(project_id="P1", village_ids=f"{V1}|{V2}", announced_at=T - pd.Timedelta(days=100),
                acquisition_start=T - pd.Timedelta(days=10), construction_start=T + pd.Timedelta(days=20),
                completed_at=None, affected_households=300, compensation_ratio=0.62, hearing_held=False,
                assessment_level="low")  # fmt: skip
    return {**base, **kw}


def test_village_project_exposure_by_stage_as_known_at_t() -> None:
    build = villages(world(projects=[_project(), _project(project_id="P2", village_ids=V1, announced_at=T,
                                                          acquisition_start=T + WEEK, construction_start=T + 3 * WEEK,
                                                          compensation_ratio=1.1, hearing_held=True)]))  # fmt: skip
    assert at(build, V1, T, "projects_in_acquisition") == 1
    assert at(build, V1, T, "projects_announced") == 0  # P2 is announced at t: not known before t
    assert at(build, V1, T + WEEK, "projects_announced") == 1
    assert at(build, V1, T, "active_project_households") == 300
    assert at(build, V1, T, "active_projects_without_hearing") == 1
    assert at(build, V1, T, "active_projects_assessed_low") == 1
    assert at(build, V1, T, "compensation_gap") == pytest.approx(0.38)
    assert at(build, V1, T + 4 * WEEK, "projects_in_construction") == 2
    assert at(build, FAR, T, "active_projects") == 0
    assert at(build, FAR, T, "compensation_gap") == 0


def test_project_rows_run_from_announcement_to_180_days_after_completion() -> None:
    done = T + pd.Timedelta(days=10)
    w = world(
        projects=[_project(completed_at=done)],
        disputes=[dict(village_id=V1, reported_at=T - pd.Timedelta(days=3), project_id="P1", category="land")],
        incidents=[dict(village_id=V2, occurred_at=T + pd.Timedelta(days=2), project_id="P1")],
    )
    build = build_features(w, "project", as_of=ts("2025-03-01"))
    snaps = build.frame["snapshot"]
    assert snaps.min() == ts("2024-01-08")  # announced long before the first snapshot
    assert snaps.max() <= done + pd.Timedelta(days=180)
    assert snaps.max() > done + pd.Timedelta(days=173)
    assert at(build, "P1", T, "label") == 1
    assert at(build, "P1", T, "linked_disputes_30d") == 1
    assert at(build, "P1", T, "compensation_ratio") == pytest.approx(0.62)
    assert at(build, "P1", T, "stage_acquisition") == 1
    assert at(build, "P1", T, "days_since_acquisition") == pytest.approx(10)
    assert math.isnan(at(build, "P1", T, "days_since_construction"))
    assert at(build, "P1", T, "villages_disputes_30d") == 1
    assert at(build, "P1", T, "villages_population") == 2500
    assert at(build, "P1", T, "affected_villages") == 2
    assert build.summary.entities == 1


# --- calendar and static covariates ----------------------------------------------------


def test_calendar_counts_days_to_the_spring_festival() -> None:
    build = villages(world())
    assert at(build, V1, ts("2024-01-08"), "days_to_spring_festival") == 33  # 2024-02-10
    assert at(build, V1, ts("2024-01-08"), "pre_festival_wage_season") == 1
    assert at(build, V1, ts("2024-02-12"), "days_to_spring_festival") == 352  # 2025-01-29, across 29 February
    assert at(build, V1, ts("2024-02-12"), "pre_festival_wage_season") == 0
    assert at(build, V1, ts("2024-02-12"), "month") == 2
    seconds = epoch_seconds(pd.Series([ts("2024-02-10 00:00"), ts("2013-06-01"), ts("2014-03-10"), ts("2035-03-01")]),
                            TIMEZONE)  # fmt: skip
    days = spring_festival_calendar().days_to_next(local_days(seconds, TIMEZONE))
    np.testing.assert_array_equal(days, [0, np.nan, 346, np.nan])


def test_static_covariates_of_the_village() -> None:
    build = villages(world())
    assert at(build, V1, T, "mediators_per_10k_people") == pytest.approx(20)
    assert math.isnan(at(build, V2, T, "mediators_per_10k_people"))  # no population recorded
    assert math.isnan(at(build, V2, T, "households_per_grid_cell"))
    assert at(build, V2, T, "is_community") == 1
    assert at(build, V2, T, "legal_adviser") == 0


# --- the tables a city has ----------------------------------------------------------------


def test_regions_incidents_and_one_event_table_are_enough() -> None:
    w = world(
        disputes=[dict(village_id=V1, reported_at=T - pd.Timedelta(days=2), category="land")],
        incidents=[dict(village_id=V1, occurred_at=T + pd.Timedelta(days=1))],
    )
    build = villages(w)
    assert at(build, V1, T, "land_disputes_7d") == 1
    assert at(build, V1, T, "label") == 1
    names = set(build.frame.columns)
    assert {"incidents_365d", "nearby_disputes_30d", "population", "days_to_spring_festival"} <= names
    assert not any(n.startswith(("petitions", "patrols", "projects_", "repeat_")) for n in names)
    warnings = "\n".join(build.summary.warnings)
    for missing in ("petitions", "patrols", "projects"):
        assert f"`{missing}`" in warnings
    assert "warning:" in str(build.summary)
    assert_same_table(build.frame, reference_features(w, "village", as_of=AS_OF))


@pytest.mark.parametrize("missing", ["regions", "incidents"])
def test_a_missing_required_table_is_a_clear_error(missing: str) -> None:
    w = world()
    del w[missing]
    with pytest.raises(InputDataError, match=f"`{missing}` table is required"):
        build_features(w, "village")


def test_project_features_need_a_projects_table() -> None:
    with pytest.raises(InputDataError, match="projects"):
        build_features(world(), "project")


def test_empty_event_tables_give_zero_counts_and_no_events_give_no_snapshots() -> None:
    build = villages(world(disputes=[], petitions=[], patrols=[]))
    assert (build.frame["disputes_365d"] == 0).all()
    assert (build.frame["repeat_petitioners_365d"] == 0).all()
    assert build.frame["days_since_last_patrol"].isna().all()
    bare = {"regions": regions(), "incidents": table("incidents", [])}
    empty = build_features(bare, "village")
    assert len(empty.frame) == 0
    assert list(empty.frame.columns[:2]) == ["village_id", "snapshot"]
    assert "no snapshots" in str(empty.summary)


def test_unknown_villages_in_events_are_reported_not_counted() -> None:
    build = villages(world(disputes=[dict(village_id="610799999999", reported_at=T - WEEK)]))
    assert (build.frame["disputes_365d"] == 0).all()
    assert any("1 rows name a village_id" in w for w in build.summary.warnings)


# --- a new source is a declaration ---------------------------------------------------------

HOTLINE = EventSource(
    name="hotline_calls",
    table="hotline_calls",
    time="called_at",
    group="petitions",
    counters=(
        EventCounter("hotline_calls", "热线来电", "hotline calls", windows=(7, 30), decays=(30,),
                recency=("hotline_call", "热线来电", "hotline call")),
        EventCounter("{code}_hotline_calls", "{code}热线来电", "{code} hotline calls", by="topic",
                codes=(Code("wages", "欠薪", "wage"), Code("noise", "噪音", "noise")), windows=(30,)),
        EventCounter("urgent_hotline_calls", "紧急热线来电", "urgent hotline calls",
                where=Condition("urgency", ">=", 3), windows=(30,)),
    ),
    spill=("hotline_calls_30d",),
)  # fmt: skip


def test_a_new_event_source_is_added_by_declaring_it() -> None:
    calls = pd.DataFrame({
        "call_id": ["c1", "c2", "c3", "c4"],
        "village_id": pd.array([V1, V1, V2, "610799999999"], dtype="str"),
        "called_at": [T - pd.Timedelta(days=1), T - pd.Timedelta(days=20), T, T - pd.Timedelta(days=2)],
        "topic": pd.array(["wages", "noise", "wages", "wages"], dtype="str"),
        "urgency": [3, 1, 5, 5],
    })  # fmt: skip
    w = {**world(), "hotline_calls": calls}
    catalogue = default_catalogue()
    sources = (*catalogue.sources_of(catalogue.entity("village")), HOTLINE)
    build = build_features(w, "village", as_of=AS_OF, sources=sources)
    assert at(build, V1, T, "hotline_calls_30d") == 2
    assert at(build, V1, T, "wages_hotline_calls_30d") == 1
    assert at(build, V1, T, "urgent_hotline_calls_30d") == 1
    assert at(build, V1, T, "days_since_last_hotline_call") == 1
    assert at(build, V2, T, "nearby_hotline_calls_30d") > 0
    assert build.registry["wages_hotline_calls_30d"].zh == "近30天欠薪热线来电 {value} 件"
    assert_same_table(build.frame, reference_features(w, "village", as_of=AS_OF, sources=sources))


# --- registry ------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ["village", "project"])
def test_the_registry_declares_each_feature_once_with_group_unit_and_reasons(entity: str) -> None:
    registry = feature_registry(entity)
    assert len(registry) == len(set(registry.names)) > 50
    assert {s.group for s in registry} <= set(GROUPS)
    for spec in registry:
        assert re.fullmatch(r"[a-z0-9_]+", spec.name), spec.name
        assert spec.zh.count("{value}") == spec.en.count("{value}") == 1
        assert spec.reason(3.0, "zh") and spec.reason(3.0, "en")
    full = build_features(_all_tables_world(), entity, as_of=AS_OF)
    assert full.frame.columns[2:-1].tolist() == registry.names


def _all_tables_world() -> dict[str, pd.DataFrame]:
    return world(
        projects=[_project()],
        disputes=[dict(village_id=V1, reported_at=T)],
        petitions=[dict(village_id=V1, filed_at=T)],
        patrols=[dict(village_id=V1, patrolled_at=T)],
    )


def test_reason_texts_read_like_the_domain() -> None:
    spec = feature_registry("village")["unresolved_land_disputes_30d"]
    assert spec.group == "unresolved_backlog"
    assert spec.reason(7, "zh") == "近30天未化解土地纠纷 7 件"
    assert spec.reason(7, "en") == "7 unresolved land disputes in the last 30 days"
    gap = feature_registry("project")["compensation_ratio"]
    assert gap.reason(0.62, "en") == "compensation offer at 62% of the regional standard"


def test_docs_describe_every_feature() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "features.md").read_text()
    for entity in ("village", "project"):
        missing = [n for n in feature_registry(entity).names if f"`{n}`" not in docs]
        assert not missing, f"docs/features.md lacks {missing[:5]}"


# --- kernels ------------------------------------------------------------------------


def test_interval_kernel_handles_uneven_snapshots_like_even_ones() -> None:
    rng = np.random.default_rng(0)
    snaps = np.sort(rng.choice(np.arange(0, 400) * 10, 25, replace=False)).astype(np.int64)
    times = np.sort(rng.integers(0, 4000, 200)).astype(np.int64)
    times[::7] = snaps[rng.integers(0, 25, len(times[::7]))]  # ties with snapshots
    times.sort()
    ptr = np.array([0, 200], dtype=np.int64)
    codes = np.zeros(200, dtype=np.int32)
    out = np.zeros((2, 25), dtype=np.float32)
    spans = np.array([50, 300], dtype=np.int64)
    empty = np.empty(0)
    kernels.count_in_intervals(ptr, times, np.empty(0, np.int64), spans, codes, 1, empty, snaps, 0, out)
    for k, span in enumerate(spans):
        expected = [((times >= t - span) & (times < t)).sum() for t in snaps]
        np.testing.assert_array_equal(out[k], expected)


# --- the warehouse edge ------------------------------------------------------------------


def test_build_and_write_reads_the_warehouse_and_writes_feature_tables(tmp_path: Path) -> None:
    w = _all_tables_world()
    w["disputes"]["summary"] = "free text that must never be read"
    for name, frame in w.items():
        write_table(frame, tmp_path, name)
    read = read_feature_inputs(tmp_path, default_catalogue())
    assert "summary" not in read["disputes"] and "disputes" in read  # free text is never read
    builds = build_and_write(tmp_path, horizon_days=14)
    assert [b.entity for b in builds] == ["village", "project"]
    village = pd.read_parquet(tmp_path / "features_village.parquet")
    assert village["village_id"].dtype == "str"
    assert str(village["snapshot"].dt.tz) == "Asia/Shanghai"
    assert not village.astype(str).apply(lambda c: c.str.contains("free text")).any().any()
    assert village["disputes_30d"].dtype == np.float32
    assert str(village["label"].dtype) == "Int8"
    assert village.columns[2:-1].tolist() == builds[0].registry.names
    meta = pq.read_schema(tmp_path / "features_village.parquet").metadata
    specs = json.loads(meta[b"fengqiao.features"])
    assert specs[0]["name"] == "disputes_7d" and "zh" in specs[0]
    assert json.loads(meta[b"fengqiao.summary"])["horizon_days"] == 14
    assert (tmp_path / "features_project.parquet").exists()
    w["disputes"]["summary"] = "other free text, same events"
    write_table(w["disputes"], tmp_path / "other", "disputes")
    for name in set(w) - {"disputes"}:
        write_table(w[name], tmp_path / "other", name)
    build_and_write(tmp_path / "other", horizon_days=14)
    for entity in ("village", "project"):
        path = f"features_{entity}.parquet"
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "other" / path), pd.read_parquet(tmp_path / path))
        assert b"free text" not in b"".join(pq.read_schema(tmp_path / path).metadata.values())


def test_build_and_write_skips_projects_when_the_city_has_none(tmp_path: Path) -> None:
    for name, frame in world(disputes=[dict(village_id=V1, reported_at=T)]).items():
        write_table(frame, tmp_path, name)
    village, project = build_and_write(tmp_path)
    assert (tmp_path / "features_village.parquet").exists()
    assert not (tmp_path / "features_project.parquet").exists()
    assert "no `projects` table" in str(project.summary)


def test_never_is_later_than_any_snapshot_and_safe_to_add_to() -> None:
    assert NEVER + np.int64(10 * 365 * 86_400) > 0
    assert epoch_seconds(pd.Series([pd.NaT], dtype="datetime64[us, Asia/Shanghai]"), TIMEZONE)[0] == NEVER


# --- what a city does not record ------------------------------------------------------------


def test_a_city_with_only_regions_and_an_incident_register_gets_no_invented_features() -> None:
    regions_min = regions()[["village_id", "village_name", "county_id", "lat", "lon"]]
    incidents = table("incidents", [dict(village_id=FAR, occurred_at=FIRST_EVENT),
                                    *[dict(village_id=v, occurred_at=T - pd.Timedelta(days=d))
                                      for v, d in ((V1, 3), (V1, 40), (V2, 100), (FAR, 200), (V2, -20))]])  # fmt: skip
    w = {"regions": regions_min, "incidents": incidents[["incident_id", "village_id", "occurred_at"]]}
    build = villages(w)
    names = build.registry.names
    assert {"incidents_30d", "incidents_decay_90d", "days_since_last_incident", "nearby_incidents_365d",
            "nearby_villages", "days_to_spring_festival", "month"} <= set(names)  # fmt: skip
    for absent in ("population", "mediators_per_10k_people", "is_community", "legal_adviser", "grid_cells",
                   "severe_incidents_90d", "mass_gathering_incidents_90d", "project_linked_incidents_365d"):
        assert absent not in names, absent
    warnings = "\n".join(build.summary.warnings)
    assert "the `regions` table has no `population` column" in warnings
    assert "the `incidents` table has no `severity` column" in warnings
    constant = [n for n in names if build.frame[n].nunique(dropna=False) <= 1]
    assert not constant, f"constant features: {constant}"
    assert_same_table(build.frame, reference_features(w, "village", as_of=AS_OF))


def test_incidents_without_a_project_link_give_no_project_labels(tmp_path: Path) -> None:
    w = world(projects=[_project()])
    w["incidents"] = w["incidents"].drop(columns="project_id")
    with pytest.raises(InputDataError, match="incidents.project_id"):
        build_features(w, "project")
    for name, frame in w.items():
        write_table(frame, tmp_path, name)
    village, project = build_and_write(tmp_path, as_of=AS_OF)
    assert not project.summary.built and "project_id" in str(project.summary)
    assert not (tmp_path / "features_project.parquet").exists()


# --- guards: no empty runs, no mixed runs ------------------------------------------------------


def _feature_files(warehouse: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(warehouse.glob("features_*"))}


def test_a_run_without_snapshots_is_refused_and_leaves_the_last_run_whole(tmp_path: Path) -> None:
    for name, frame in _all_tables_world().items():
        write_table(frame, tmp_path, name)
    build_and_write(tmp_path, as_of=AS_OF)
    before = _feature_files(tmp_path)
    assert set(before) == {"features_village.parquet", "features_project.parquet", "features_catalogue.json"}
    write_table(table("incidents", [dict(village_id=V1, occurred_at="2024-05-01")]), tmp_path, "incidents")
    for name in ("disputes", "petitions", "patrols"):
        (tmp_path / f"{name}.parquet").unlink()
    with pytest.raises(InputDataError, match="no snapshots"):
        build_and_write(tmp_path)
    assert _feature_files(tmp_path) == before


def test_the_features_command_exits_2_when_it_would_build_no_snapshots(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    warehouse = tmp_path / "var" / "warehouse"
    write_table(regions(), warehouse, "regions")
    write_table(table("incidents", [dict(village_id=V1, occurred_at="2024-05-01")]), warehouse, "incidents")
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(tmp_path / "var"))
    result = CliRunner().invoke(app, ["features"])
    assert result.exit_code == 2
    assert "no snapshots" in result.output
    assert not list(warehouse.glob("features_*"))


def test_a_run_replaces_every_feature_file_of_the_last_one(tmp_path: Path) -> None:
    for name, frame in _all_tables_world().items():
        write_table(frame, tmp_path, name)
    build_and_write(tmp_path, as_of=AS_OF)
    (tmp_path / "projects.parquet").unlink()  # the city's next export has no projects
    build_and_write(tmp_path, as_of=AS_OF)
    assert not (tmp_path / "features_project.parquet").exists()
    runs = {pq.read_schema(p).metadata[b"fengqiao.run"] for p in tmp_path.glob("features_*.parquet")}
    assert len(runs) == 1
    assert not list(tmp_path.glob(".staging-*"))  # no staging folder left behind


# --- neighbours under ties ------------------------------------------------------------------------


def _grid(n: int, step_km: float) -> tuple[np.ndarray, np.ndarray]:
    """An n × n grid of points ``step_km`` apart east-west and north-south, near Berlin."""
    lat0, lon0 = 52.5, 13.4
    rows, cols = np.divmod(np.arange(n * n), n)
    lat = lat0 + rows * step_km / 111.195
    lon = lon0 + cols * step_km / (111.195 * np.cos(np.radians(lat0)))
    return lat, lon


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_neighbours_on_a_regular_grid_do_not_depend_on_the_last_bit_of_a_coordinate(k: int) -> None:
    lat, lon = _grid(6, 1.0)
    params = NeighbourParams(k=k, radius_km=1.5, scale_km=1.0)
    base = find_neighbours(lat, lon, params)
    rng = np.random.default_rng(k)
    for _ in range(5):
        up = rng.random(len(lat)) < 0.5
        lat2 = np.where(up, np.nextafter(lat, np.inf), np.nextafter(lat, -np.inf))
        lon2 = np.where(rng.random(len(lon)) < 0.5, np.nextafter(lon, np.inf), lon)
        moved = find_neighbours(lat2, lon2, params)
        np.testing.assert_array_equal(moved.indptr, base.indptr)
        np.testing.assert_array_equal(moved.indices, base.indices)
        np.testing.assert_array_equal(moved.weights, base.weights)
    assert (base.counts() <= k).all() and base.counts().max() == k


def test_contiguity_neighbours_share_a_boundary_vertex() -> None:
    def square(x: int, y: int) -> str:
        return f"POLYGON (({x} {y}, {x + 1} {y}, {x + 1} {y + 1}, {x} {y + 1}, {x} {y}))"

    cells = [(x, y) for y in range(3) for x in range(3)]
    lat = np.array([52.5 + y * 0.009 for _, y in cells])
    lon = np.array([13.4 + x * 0.015 for x, _ in cells])
    nb = find_neighbours(lat, lon, NeighbourParams(rule="contiguity"), np.array([square(x, y) for x, y in cells]))
    assert list(nb.counts()) == [3, 5, 3, 5, 8, 5, 3, 5, 3]  # queen contiguity
    with pytest.raises(InputDataError, match="boundary"):
        find_neighbours(lat, lon, NeighbourParams(rule="contiguity"))


# --- time zones and calendars ---------------------------------------------------------------------


def test_snapshots_are_local_monday_midnights_across_both_daylight_saving_changes() -> None:
    zone = "Europe/Berlin"

    def berlin(text: str) -> pd.Timestamp:
        return pd.Timestamp(text).tz_convert(zone) if "+" in text else pd.Timestamp(text, tz=zone)

    w = world(disputes=[dict(village_id=V1, reported_at=berlin(t)) for t in
                        ("2024-03-30 23:30+01:00", "2024-03-31 03:30+02:00", "2024-04-01 00:00+02:00",
                         "2024-10-21 00:30+02:00", "2024-10-27 02:30+02:00", "2024-10-27 02:30+01:00",
                         "2024-10-28 00:00+01:00")])  # fmt: skip
    options = EngineOptions(timezone=zone)
    build = build_features(w, "village", as_of=berlin("2024-12-01"), options=options)
    snaps = build.frame["snapshot"].drop_duplicates()
    assert str(snaps.dt.tz) == zone
    assert (snaps.dt.day_of_week == 0).all() and (snaps.dt.hour == 0).all() and (snaps.dt.minute == 0).all()
    gaps = snaps.diff().dropna().value_counts()
    assert set(gaps.index) == {WEEK, WEEK - pd.Timedelta(hours=1), WEEK + pd.Timedelta(hours=1)}
    assert at(build, V1, berlin("2024-04-01"), "disputes_7d") == 2  # an event at local midnight counts from next week
    # a window is a duration, 7 × 24 hours: the week that ends 2024-10-28 had 169 hours
    assert at(build, V1, berlin("2024-10-28"), "disputes_7d") == 2
    assert at(build, V1, berlin("2024-04-01"), "month") == 4
    assert_same_table(build.frame, reference_features(w, "village", as_of=berlin("2024-12-01"), options=options))


def test_a_city_holiday_file_drives_the_calendar_features_where_it_reaches(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.csv"
    holidays.write_text("date,name\n2023-12-24,Heiligabend\n2024-12-24,Heiligabend\n", encoding="utf-8")
    calendar = read_holiday_file(holidays, "christmas", "圣诞节", "Christmas", 28)
    build = villages(world(), options=EngineOptions(calendar=calendar))
    assert at(build, V1, T, "days_to_christmas") == (pd.Timestamp("2024-12-24") - pd.Timestamp("2024-03-04")).days
    assert at(build, V1, T, "pre_christmas_season") == 0
    assert "days_to_spring_festival" not in build.frame
    assert build.registry["days_to_christmas"].reason(30, "en") == "30 days to Christmas"
    late = tmp_path / "late.csv"
    late.write_text("date\n2030-12-24\n2031-12-24\n", encoding="utf-8")
    far = villages(world(), options=EngineOptions(calendar=read_holiday_file(late, "christmas", "圣诞节", "Christmas", 28)))
    assert "days_to_christmas" not in far.frame and "month" in far.frame
    assert any("calendar does not reach the snapshots" in w for w in far.summary.warnings)
