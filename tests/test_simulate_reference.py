"""The simulator's numba day-step against a slow, obviously-correct Python reference on a
tiny hand-made world: project pressure, intensities, and the state update that the day's
recorded events imply."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from pipelines.simulate import dynamics
from pipelines.simulate.dynamics import (
    AFTER_COMPLETION_DECAY_DAYS,
    NEVER,
    OUTCOME_GRIEVANCE,
    STAGE_WEIGHTS,
    E,
    EP,
    G,
    GP,
    H,
    R,
    RP,
    Mechanism,
)

N = 5
GLOBAL = np.empty(0, dtype=np.uint64)
"""The kernels' ``rng`` for numba's global stream."""
PROJECT_VILLAGES = {0: [0, 1], 1: [1, 2, 3]}
PROJECT_DAYS = np.array([[0, 10, 40, 90], [20, 30, 60, 1 << 30]], dtype=np.int64)
NEIGHBOURS = {0: [(1, 0.7), (2, 0.3)], 1: [(0, 0.5), (2, 0.5)], 2: [(1, 1.0)], 3: [(4, 1.0)], 4: [(3, 1.0)]}


def tiny_world() -> tuple[dynamics.WorldArrays, dynamics.Levers]:
    """The fixed arrays of a five-village, two-project world and its levers (one row)."""
    rng = np.random.default_rng(0)
    pairs = sorted((v, j) for j, vs in PROJECT_VILLAGES.items() for v in vs)
    vp_ptr = np.searchsorted([v for v, _ in pairs], np.arange(N + 1)).astype(np.int64)
    by_project = sorted((j, v) for v, j in pairs)
    nb = [(v, u, w) for v, lst in NEIGHBOURS.items() for u, w in lst]
    base_dispute, base_petition, base_incident = (rng.uniform(0.05, 0.3, N), rng.uniform(0.01, 0.1, N),
                                                  rng.uniform(1e-4, 1e-3, N))
    levers = dynamics.Levers(kappa=rng.uniform(0.5, 2.0, (1, N)), p_resolve=rng.uniform(0.4, 0.9, (1, N)),
                             severity=np.array([[1.5, 4.0]]))
    return dynamics.WorldArrays(
        base_dispute=base_dispute, base_petition=base_petition, base_incident=base_incident,
        season_dispute=np.linspace(0.9, 1.3, 400), season_incident=np.linspace(1.0, 1.5, 400), first_day=-100,
        nb_ptr=np.searchsorted([v for v, _, _ in nb], np.arange(N + 1)).astype(np.int64),
        nb_idx=np.array([u for _, u, _ in nb], dtype=np.int64), nb_w=np.array([w for _, _, w in nb]),
        proj_days=PROJECT_DAYS,
        vp_ptr=vp_ptr, vp_proj=np.array([j for _, j in pairs], dtype=np.int64),
        vp_share=np.array([1.0 / len(PROJECT_VILLAGES[j]) for _, j in pairs]),
        pv_ptr=np.searchsorted([j for j, _ in by_project], np.arange(3)).astype(np.int64),
        pv_village=np.array([v for _, v in by_project], dtype=np.int64),
    ), levers


def stage_weight(days: np.ndarray, d: int) -> float:
    announced, acquisition, construction, completed = days
    if d < announced:
        return 0.0
    if d < acquisition:
        return STAGE_WEIGHTS[0]
    if d < construction:
        return STAGE_WEIGHTS[1]
    if d < completed:
        return STAGE_WEIGHTS[2]
    return STAGE_WEIGHTS[3] * math.exp(-(d - completed) / AFTER_COMPLETION_DECAY_DAYS)


def reference_pressure(w: dynamics.WorldArrays, severity: np.ndarray, d: int, announced_before: int) -> list[float]:
    pressure = [0.0] * N
    for j, villages in PROJECT_VILLAGES.items():
        if w.proj_days[j, 0] < announced_before:
            for v in villages:
                pressure[v] += severity[j] / len(villages) * stage_weight(w.proj_days[j], d)
    return pressure


def reference_intensity(w, kappa: np.ndarray, m: Mechanism, state: np.ndarray, pressure: list[float],
                        d: int) -> tuple[list, list]:
    season = w.season_incident[d - w.first_day]
    lam, lam_p = [], []
    for v in range(N):
        k = kappa[v] * season
        project = k * (m.incident_project * pressure[v] + m.incident_grievance * state[GP, v]
                       + m.incident_escalation * state[EP, v])
        lam_p.append(project)
        lam.append(k * (w.base_incident[v] + m.incident_grievance * state[G, v] + m.incident_escalation * state[E, v])
                   + project)
    return lam, lam_p


def reference_next_state(m: Mechanism, state: np.ndarray, disputes: np.ndarray, petitions: np.ndarray) -> np.ndarray:
    """The state after a day, from the state before it and the day's recorded events."""
    new = state.copy()
    new[H] *= m.decay_excitation
    new[[G, GP]] *= m.decay_grievance
    new[[R, RP]] *= m.decay_petitions
    new[[E, EP]] *= m.decay_escalation
    for _, v, project, outcome in disputes:
        new[H, v] += 1
        new[GP if project >= 0 else G, v] += OUTCOME_GRIEVANCE[outcome]
    for _, v, project, _, collective, leapfrog in petitions:
        new[RP if project >= 0 else R, v] += 1
        new[EP if project >= 0 else E, v] += 1 + 3 * collective + 4 * leapfrog
    return new


@pytest.mark.parametrize("d", [-5, 0, 15, 25, 45, 70, 120])
def test_known_pressure_equals_the_reference(d):
    w, levers = tiny_world()
    for announced_before in (NEVER, 10, 25):
        out = np.zeros(N)
        dynamics._known_pressure(d, w, levers.severity[0], announced_before, out)
        np.testing.assert_allclose(out, reference_pressure(w, levers.severity[0], d, announced_before), rtol=1e-12)


@njit
def seed_numba(seed: int) -> None:
    """Seed the random stream that numba's kernels draw from (not numpy's)."""
    np.random.seed(seed)


@pytest.mark.parametrize("seed", range(4))
def test_each_day_equals_the_reference(seed):
    """Day after day from a random state, the day's intensities equal the reference formula
    and the new state equals what the recorded disputes and petitions imply."""
    (w, levers), m = tiny_world(), Mechanism(project_disputes=0.3, project_petitions=0.2)
    rng = np.random.default_rng(seed)
    state = rng.gamma(2.0, 1.5, (dynamics.N_STATE, N))
    state[[GP, RP, EP], 4] = 0.0  # village 4 has no project, so no project grievance either
    seed_numba(seed)
    events = 0
    for d in range(int(rng.integers(0, 60)), 100, 3):
        before = state.copy()
        pressure = np.zeros(N)
        dynamics._known_pressure(d, w, levers.severity[0], NEVER, pressure)
        lam, lam_p = np.zeros(N), np.zeros(N)
        dispute_log, petition_log = np.zeros((500, 4), dtype=np.int64), np.zeros((500, 6), dtype=np.int64)
        n_disp, n_pet = dynamics._advance_day(d, state, pressure, np.zeros(N), lam, lam_p, m, w, levers, 0, GLOBAL,
                                              True, dispute_log, 0, petition_log, 0)
        ref_lam, ref_lam_p = reference_intensity(w, levers.kappa[0], m, before, list(pressure), d)
        np.testing.assert_allclose(lam, ref_lam, rtol=1e-12)
        np.testing.assert_allclose(lam_p, ref_lam_p, rtol=1e-12)
        assert (dispute_log[:n_disp, 0] == d).all() and (petition_log[:n_pet, 0] == d).all()
        for _, v, project, _ in dispute_log[:n_disp]:
            assert project == -1 or v in PROJECT_VILLAGES[int(project)]
        np.testing.assert_allclose(state, reference_next_state(m, before, dispute_log[:n_disp], petition_log[:n_pet]),
                                   rtol=1e-12)
        events += n_disp + n_pet
    assert events > 10


def test_event_counts_follow_the_intensities_over_many_days():
    """Disputes and petitions per day average the reference's Σ intensities (here with the
    state held fixed by restoring it each day), within 4 standard errors."""
    (w, levers), m = tiny_world(), Mechanism()
    rng = np.random.default_rng(1)
    state0 = rng.gamma(2.0, 1.5, (dynamics.N_STATE, N))
    d = 50
    pressure = np.zeros(N)
    dynamics._known_pressure(d, w, levers.severity[0], NEVER, pressure)
    spill = [sum(wt * state0[H, u] for u, wt in NEIGHBOURS[v]) for v in range(N)]
    mu = sum(w.base_dispute[v] * w.season_dispute[d - w.first_day] + m.dispute_self * state0[H, v]
             + m.dispute_spill * spill[v] + m.project_disputes * pressure[v] for v in range(N))
    pi = sum(w.base_petition[v] + m.petition_grievance * (state0[G, v] + state0[GP, v])
             + m.petition_repeat * (state0[R, v] + state0[RP, v]) + m.project_petitions * pressure[v] for v in range(N))
    days = 4000
    seed_numba(3)
    counts = np.zeros((days, 2))
    logs = np.zeros((500, 4), dtype=np.int64), np.zeros((500, 6), dtype=np.int64)
    for i in range(days):
        state = state0.copy()
        counts[i] = dynamics._advance_day(d, state, pressure, np.zeros(N), np.zeros(N), np.zeros(N), m, w, levers, 0,
                                          GLOBAL, True, logs[0], 0, logs[1], 0)
    for observed, expected in zip(counts.mean(axis=0), (mu, pi)):
        assert abs(observed - expected) < 4 * math.sqrt(expected / days)


MASK = (1 << 64) - 1


def reference_mix(x: int) -> int:
    """SplitMix64's finaliser on Python integers."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def reference_uniform(key: int, d: int, v: int, c: int) -> float:
    """Draw ``c`` of village ``v`` on day ``d`` of the per-village streams keyed ``key``."""
    x = reference_mix((reference_mix((reference_mix((key + d + (1 << 40)) & MASK) + v) & MASK) + c) & MASK)
    return (x >> 11) / 2.0**53


@settings(max_examples=60, deadline=None)
@given(key=st.integers(0, MASK), d=st.integers(-300, 5000), v=st.integers(0, N - 1), draws=st.integers(1, 6))
def test_village_streams_equal_the_reference_hash_whatever_other_villages_draw(key, d, v, draws):
    """Draw c of village v on day d is a hash of (key, d, v, c): other villages' draws in
    between change nothing (the common random numbers of plan evaluation)."""
    rng = np.zeros(N + 2, dtype=np.uint64)
    rng[0] = key
    dynamics._start_day(rng, d)
    got = []
    for c in range(draws):
        dynamics._uniform(rng, (v + 1) % N)  # another village draws in between
        got.append(dynamics._uniform(rng, v))
    assert got == [reference_uniform(key, d, v, c) for c in range(draws)]
    assert all(0.0 <= u < 1.0 for u in got)


@pytest.mark.parametrize("mean", [0.05, 0.6, 3.0, 12.0])
def test_poisson_by_inversion_has_the_poisson_law_and_grows_with_the_mean(mean):
    """Counts of a village stream's Poisson draws match P(k) = e^-m m^k / k! (within 4 standard
    errors for each k of probability ≥ 1%), and on the same draw a larger mean never gives fewer."""
    n = 20_000
    rng = np.zeros(N + 2, dtype=np.uint64)
    rng[0] = dynamics.stream_key(9, 1)
    counts, larger = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    for i in range(n):
        dynamics._start_day(rng, i)
        counts[i] = dynamics._poisson(rng, 0, mean)
        dynamics._start_day(rng, i)
        larger[i] = dynamics._poisson(rng, 0, mean * 1.3)
    assert (larger >= counts).all() and (larger > counts).any()
    for k in range(int(mean * 3) + 3):
        p = math.exp(-mean) * mean**k / math.factorial(k)
        if p >= 0.01:
            assert abs((counts == k).mean() - p) < 4 * math.sqrt(p * (1 - p) / n)
