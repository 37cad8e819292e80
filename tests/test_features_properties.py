"""Property tests: the numba engine equals the slow reference, and never looks ahead.

Random small worlds (a few villages and projects, a few dozen events over ~15 months) with
times drawn so that ties are common: events on the same timestamp, exactly at a snapshot,
exactly on a window's edge, outcomes recorded at the instant of the report.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from feature_reference import assert_same_table, reference_features, table, ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contracts import (
    ASSESSMENT_LEVELS,
    DISPUTE_OUTCOMES,
    DISPUTE_SOURCES,
    INCIDENT_KINDS,
    PATROL_ISSUE_KINDS,
    PETITION_CHANNELS,
    PETITION_LEVELS,
    PROJECT_KINDS,
)
from features.engine import build_features

_PROFILES = {
    "ci": dict(max_examples=30, derandomize=True),
    "thorough": dict(max_examples=400),
}
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    **_PROFILES[os.environ.get("FENGQIAO_HYPOTHESIS", "ci")],
)
"""Thirty fixed examples per property in CI (about a minute in all on two cores);
``FENGQIAO_HYPOTHESIS=thorough`` explores 400 new ones."""

T0 = ts("2023-01-02 00:00")  # a Monday
DAY = 86_400
SPAN_DAYS = 365 + 56
VILLAGES = ("610702001001", "610702001002", "610702002001", "610703001001")
PROJECTS = ("P1", "P2", "P3")
CATEGORIES = ("land", "labour_wages", "demolition_compensation", "other")


def _at(seconds: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


# Times: on a day boundary (often a Monday, i.e. a snapshot), anywhere, or exactly on a Monday.
offsets = st.one_of(
    st.integers(0, SPAN_DAYS).map(lambda d: d * DAY),
    st.integers(0, SPAN_DAYS * DAY),
    st.integers(52, SPAN_DAYS // 7).map(lambda w: w * 7 * DAY),
)
delays = st.one_of(st.none(), st.just(0), st.integers(0, 60).map(lambda d: d * DAY), st.integers(1, 60 * DAY))


@st.composite
def times_with_ties(draw, n: int) -> list[int]:
    """n event offsets, some repeating earlier ones exactly."""
    out: list[int] = []
    for _ in range(n):
        if out and draw(st.booleans()) and draw(st.booleans()):
            out.append(draw(st.sampled_from(out)))
        else:
            out.append(draw(offsets))
    return out


def _later(start: int, delay: int | None) -> pd.Timestamp | None:
    return None if delay is None else _at(start + delay)


@st.composite
def worlds(draw, need_projects: bool = False) -> dict[str, pd.DataFrame]:
    """A world with an incident in its first week and one after its first snapshot, so that every
    drawn world has snapshots."""
    villages = draw(st.lists(st.sampled_from(VILLAGES), min_size=1, max_size=4, unique=True))
    regions = table("regions", [
        dict(village_id=v, lat=33.0 + draw(st.floats(0, 0.25)), lon=107.0 + draw(st.floats(0, 0.25)),
             population=draw(st.integers(0, 5000)), households=draw(st.integers(0, 1500)),
             mediators=draw(st.integers(0, 9)), legal_adviser=draw(st.booleans()),
             grid_cells=draw(st.integers(0, 6)), kind=draw(st.sampled_from(["village", "community"])))
        for v in villages
    ])  # fmt: skip
    village = st.sampled_from(villages)
    has_projects = need_projects or draw(st.booleans())
    projects = []
    if has_projects:
        for pid in PROJECTS[: draw(st.integers(1, 3))]:
            announced = draw(st.integers(-100, SPAN_DAYS)) * DAY
            acq = announced + draw(st.integers(0, 120)) * DAY
            cons = acq + draw(st.integers(0, 120)) * DAY
            done = draw(st.one_of(st.none(), st.integers(0, 200).map(lambda d: d * DAY)))
            projects.append(dict(
                project_id=pid, village_ids="|".join(draw(st.lists(village, min_size=1, max_size=3, unique=True))),
                kind=draw(st.sampled_from(PROJECT_KINDS)), announced_at=_at(announced), acquisition_start=_at(acq),
                construction_start=_at(cons), completed_at=_later(cons, done),
                affected_households=draw(st.integers(0, 500)), compensation_ratio=draw(st.floats(0.4, 1.4)),
                hearing_held=draw(st.booleans()), assessment_level=draw(st.sampled_from(ASSESSMENT_LEVELS)),
            ))  # fmt: skip
    project = st.one_of(st.none(), st.sampled_from([p["project_id"] for p in projects])) if projects else st.none()

    def events(n_max: int) -> list[int]:
        return draw(times_with_ties(draw(st.integers(0, n_max))))

    tables = {"regions": regions}
    if has_projects:
        tables["projects"] = table("projects", projects)
    first = dict(village_id=draw(village), occurred_at=_at(draw(st.integers(0, 6 * DAY))))
    late = dict(village_id=draw(village), occurred_at=_at(draw(st.integers(372 * DAY, SPAN_DAYS * DAY))))
    tables["incidents"] = table("incidents", [first, late, *[
        dict(village_id=draw(village), occurred_at=_at(t), kind=draw(st.sampled_from(INCIDENT_KINDS)),
             severity=draw(st.integers(1, 4)), project_id=draw(project))
        for t in events(10)
    ]])  # fmt: skip
    if draw(st.booleans()):
        tables["disputes"] = table("disputes", [
            dict(village_id=draw(village), reported_at=_at(t), category=draw(st.sampled_from(CATEGORIES)),
                 source=draw(st.sampled_from(DISPUTE_SOURCES)), outcome=draw(st.sampled_from(DISPUTE_OUTCOMES)),
                 mediated_at=_later(t, draw(delays)), project_id=draw(project))
            for t in events(25)
        ])  # fmt: skip
    if draw(st.booleans()):
        tables["petitions"] = table("petitions", [
            dict(village_id=draw(village), filed_at=_at(t), channel=draw(st.sampled_from(PETITION_CHANNELS)),
                 level=draw(st.sampled_from(PETITION_LEVELS)), participants=draw(st.integers(1, 7)),
                 petitioner_key=draw(st.sampled_from(["k1", "k2", "k3"])), topic=draw(st.sampled_from(CATEGORIES)),
                 project_id=draw(project), closed_at=_later(t, draw(delays)), within_limit=draw(st.booleans()),
                 satisfied=draw(st.sampled_from([None, True, False])))
            for t in events(20)
        ])  # fmt: skip
    if draw(st.booleans()):
        tables["patrols"] = table("patrols", [
            dict(village_id=draw(village), patrolled_at=_at(t), issues_found=(n := draw(st.integers(0, 2))),
                 issue_kinds="|".join(draw(st.lists(st.sampled_from(PATROL_ISSUE_KINDS), max_size=3, unique=True)))
                 or None if n else None,
                 escalated=draw(st.booleans()), resolved_at=_later(t, draw(delays)) if n else None)
            for t in events(20)
        ])  # fmt: skip
    return tables


horizons = st.sampled_from([30, 7, 1])
every = st.sampled_from([7, 14])


@SETTINGS
@given(world=worlds(), horizon=horizons, every_days=every, cut=st.one_of(st.none(), st.integers(372, SPAN_DAYS)))
def test_engine_equals_reference_on_random_villages(world, horizon, every_days, cut) -> None:
    as_of = None if cut is None else T0 + pd.Timedelta(days=cut, hours=12)
    build = build_features(world, "village", every_days, horizon, as_of)
    assert len(build.frame) > 0
    assert_same_table(build.frame, reference_features(world, "village", every_days, horizon, as_of))


@SETTINGS
@given(world=worlds(need_projects=True), horizon=horizons)
def test_engine_equals_reference_on_random_projects(world, horizon) -> None:
    build = build_features(world, "project", horizon_days=horizon)
    assert build.summary.snapshots > 0
    assert_same_table(build.frame, reference_features(world, "project", horizon_days=horizon))


def _shift_after(frame: pd.DataFrame, columns: list[str], cut: pd.Timestamp, data, extra_days: int) -> pd.DataFrame:
    """Move every time in ``columns`` that is at or after ``cut`` to another time at or after it."""
    frame = frame.copy()
    for col in columns:
        late = frame[col].notna() & (frame[col] >= cut)
        moved = [cut + pd.Timedelta(seconds=data.draw(st.integers(0, extra_days * DAY))) for _ in range(late.sum())]
        frame.loc[late, col] = pd.Series(moved, index=frame.index[late], dtype=frame[col].dtype)
    return frame


EVENT_TIMES = {
    "disputes": ["reported_at", "mediated_at"],
    "petitions": ["filed_at", "closed_at"],
    "patrols": ["patrolled_at", "resolved_at"],
    "incidents": ["occurred_at"],
    "projects": ["announced_at", "acquisition_start", "construction_start", "completed_at"],
}


@SETTINGS
@given(world=worlds(need_projects=True), data=st.data())
def test_features_at_t_ignore_everything_after_t(world, data) -> None:
    """Moving, re-coding or adding events (or outcomes) at or after t leaves every feature at t alone."""
    as_of = T0 + pd.Timedelta(days=SPAN_DAYS + 60)
    before = {e: build_features(world, e, as_of=as_of).frame for e in ("village", "project")}
    snaps = before["village"]["snapshot"].unique()
    assert len(snaps) > 0
    cut = data.draw(st.sampled_from(list(snaps)))
    changed = dict(world)
    for name, columns in EVENT_TIMES.items():
        if name not in changed or not len(changed[name]):
            continue
        frame = _shift_after(changed[name], columns, cut, data, 60)
        first = columns[0]
        late = frame[first] >= cut
        if name == "disputes":  # a different outcome, recorded after t
            frame.loc[frame["mediated_at"] >= cut, "outcome"] = data.draw(st.sampled_from(DISPUTE_OUTCOMES))
            frame.loc[late, "category"] = "land"
        if name == "petitions":
            frame.loc[late, "participants"] = 9
            frame.loc[frame["closed_at"] >= cut, "satisfied"] = False
        if name == "projects":
            frame.loc[late, "compensation_ratio"] = 0.3
            frame.loc[late, "hearing_held"] = False
        if name == "incidents":  # and one more incident exactly at t
            frame = pd.concat([frame, table("incidents", [dict(incident_id="X", village_id=frame["village_id"].iloc[0]
                                                                if len(frame) else world["regions"]["village_id"].iloc[0],
                                                                occurred_at=cut)])], ignore_index=True)  # fmt: skip
        changed[name] = frame
    for entity in ("village", "project"):
        after = build_features(changed, entity, as_of=as_of).frame
        old, new = before[entity], after
        old, new = old[old["snapshot"] <= cut], new[new["snapshot"] <= cut]
        assert old.drop(columns="label").reset_index(drop=True).equals(new.drop(columns="label").reset_index(drop=True))


@SETTINGS
@given(world=worlds(), data=st.data(), horizon=horizons)
def test_labels_change_only_with_incidents_from_t_to_before_t_plus_horizon(world, data, horizon) -> None:
    as_of = T0 + pd.Timedelta(days=SPAN_DAYS + 60)
    before = build_features(world, "village", horizon_days=horizon, as_of=as_of).frame
    assert not before.empty
    earliest = min(world[n][c].min() for n, c in (("incidents", "occurred_at"), ("disputes", "reported_at"),
                                                  ("petitions", "filed_at"), ("patrols", "patrolled_at"))
                   if n in world and len(world[n]))  # fmt: skip
    village = data.draw(st.sampled_from(list(world["regions"]["village_id"])))
    when = max(earliest, _at(data.draw(offsets)))
    extra = table("incidents", [dict(incident_id="new", village_id=village, occurred_at=when)])
    changed = {**world, "incidents": pd.concat([world["incidents"], extra], ignore_index=True)}
    after = build_features(changed, "village", horizon_days=horizon, as_of=as_of).frame
    assert len(after) == len(before)
    in_window = (
        (after["village_id"] == village)
        & (after["snapshot"] <= when)
        & (when < after["snapshot"] + pd.Timedelta(days=horizon))
        & after["label"].notna()
    )
    assert (after.loc[in_window, "label"] == 1).all()
    same = ~in_window
    assert after.loc[same, "label"].astype(float).equals(before.loc[same, "label"].astype(float))


def test_engine_equals_reference_on_a_seeded_busy_world() -> None:
    """Every family at once on a busier world than hypothesis draws (all tables, ~400 events)."""
    world = _busy_world(seed=0)
    for entity in ("village", "project"):
        assert_same_table(build_features(world, entity).frame, reference_features(world, entity))


def _busy_world(seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def when(n: int) -> list[pd.Timestamp]:
        seconds = rng.integers(0, SPAN_DAYS * DAY, n)
        on_midnight = rng.random(n) < 0.4
        seconds[on_midnight] = seconds[on_midnight] // DAY * DAY
        return [_at(int(s)) for s in seconds]

    def pick(options, n: int) -> list:
        return [options[i] for i in rng.integers(0, len(options), n)]

    def maybe_later(times: list[pd.Timestamp], p_none: float) -> list:
        return [None if rng.random() < p_none else t + pd.Timedelta(days=float(rng.exponential(10))) for t in times]

    regions = table("regions", [dict(village_id=v, lat=33.0 + 0.05 * i, lon=107.0 + 0.03 * (i % 2),
                                     population=1000 * (i + 1), grid_cells=i) for i, v in enumerate(VILLAGES)])  # fmt: skip
    projects = table("projects", [
        dict(project_id=p, village_ids="|".join(pick(VILLAGES, 2)), announced_at=_at(int(rng.integers(-50, 300)) * DAY),
             acquisition_start=_at(int(rng.integers(310, 340)) * DAY), construction_start=_at(360 * DAY),
             completed_at=None if p == "P3" else _at(400 * DAY), compensation_ratio=float(rng.uniform(0.5, 1.2)),
             hearing_held=bool(rng.random() < 0.5), assessment_level=pick(ASSESSMENT_LEVELS, 1)[0])
        for p in PROJECTS
    ])  # fmt: skip
    n = 150
    t = when(n)
    disputes = table("disputes", [
        dict(village_id=v, reported_at=r, category=c, outcome=o, mediated_at=m, project_id=p)
        for v, r, c, o, m, p in zip(pick(VILLAGES, n), t, pick(CATEGORIES, n), pick(DISPUTE_OUTCOMES, n),
                                    maybe_later(t, 0.3), pick([None, None, "P1", "P2"], n))
    ])  # fmt: skip
    t = when(100)
    petitions = table("petitions", [
        dict(village_id=v, filed_at=f, level=lv, channel=ch, participants=int(k), petitioner_key=key,
             closed_at=c, satisfied=s, project_id=p)
        for v, f, lv, ch, k, key, c, s, p in zip(
            pick(VILLAGES, 100), t, pick(PETITION_LEVELS, 100), pick(PETITION_CHANNELS, 100),
            rng.integers(1, 8, 100), pick(["a", "b", "c", "d"], 100), maybe_later(t, 0.2),
            pick([None, True, False], 100), pick([None, "P1", "P3"], 100))
    ])  # fmt: skip
    t = when(100)
    issues = rng.integers(0, 3, 100)
    patrols = table("patrols", [
        dict(village_id=v, patrolled_at=p, issues_found=int(k), issue_kinds="|".join(pick(PATROL_ISSUE_KINDS, 2))
             if k else None, escalated=bool(k and rng.random() < 0.3), resolved_at=r if k else None)
        for v, p, k, r in zip(pick(VILLAGES, 100), t, issues, maybe_later(t, 0.3))
    ])  # fmt: skip
    t = when(40)
    incidents = table("incidents", [
        dict(village_id=v, occurred_at=o, kind=k, severity=int(s), project_id=p)
        for v, o, k, s, p in zip(pick(VILLAGES, 40), t, pick(INCIDENT_KINDS, 40), rng.integers(1, 5, 40),
                                 pick([None, "P1", "P2", "P3"], 40))
    ])  # fmt: skip
    return dict(regions=regions, projects=projects, disputes=disputes, petitions=petitions, patrols=patrols,
                incidents=incidents)  # fmt: skip
