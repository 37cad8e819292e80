"""The mechanism of the synthetic world, as numba kernels over per-village state.

Each village carries seven decaying state variables (dispute excitation, general and
project grievance backlog, petition excitation, escalation pressure). One day of the world
is one call of ``_advance_day``: intensities from the state at the start of the day, Poisson
draws of disputes and petitions, their outcomes, and the state update. The same function
drives the recorded history (``simulate_history``) and the oracle's forward simulations
(``oracle_probabilities``), so the oracle is exactly the probability under the mechanism
that produced the data, not an approximation of it.

Incidents never feed back into the state: given a path of the daily incident intensity λ,
P(no incident in the window) = exp(-Σλ), and the oracle averages that over forward paths
(Rao-Blackwellised Monte Carlo: low variance with few paths).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange


class Mechanism(NamedTuple):
    """Coefficients of the world (rates per village per day unless said otherwise)."""

    dispute_self: float = 0.016  # disputes per day per unit of own dispute excitation
    dispute_spill: float = 0.008  # … per unit of neighbours' (weighted) excitation
    project_disputes: float = 0.10  # project-linked disputes per day per unit of pressure
    petition_grievance: float = 0.010  # petitions per day per unit of grievance backlog
    petition_repeat: float = 0.006  # petitions per day per unit of petition excitation
    project_petitions: float = 0.015  # project petitions per day per unit of pressure
    incident_grievance: float = 0.0004  # incidents per day per unit of grievance
    incident_escalation: float = 0.0016  # incidents per day per unit of escalation pressure
    incident_project: float = 0.006  # project incidents per day per unit of pressure
    decay_excitation: float = float(np.exp(-1.0 / 14.0))
    decay_grievance: float = float(np.exp(-1.0 / 120.0))
    decay_petitions: float = float(np.exp(-1.0 / 45.0))
    decay_escalation: float = float(np.exp(-1.0 / 30.0))
    collective_general: float = 0.05  # P(collective) of a general petition
    collective_project: float = 0.25  # … of a project-linked petition
    leapfrog_first: float = 0.04  # P(leapfrog) of a first petition
    leapfrog_repeat: float = 0.22  # … of a repeat petition


# Dispute outcomes, in features.contracts.DISPUTE_OUTCOMES order, and the grievance each
# leaves behind (a resolved dispute none; a failed one a full unit).
OUTCOME_GRIEVANCE = np.array([0.0, 0.5, 1.0, 0.2, 0.8])
OUTCOME_UNRESOLVED_SPLIT = np.array([0.0, 0.35, 0.35, 0.15, 0.15])
N_STATE = 7
H, G, GP, R, RP, E, EP = range(N_STATE)
"""State rows: dispute excitation, grievance (general/project), petition excitation
(general/project), escalation pressure (general/project)."""


STAGE_WEIGHTS = (0.35, 1.0, 0.45, 0.2)
"""Pressure while announced, in acquisition, in construction, and just after completion."""
AFTER_COMPLETION_DECAY_DAYS = 90.0


@njit(cache=True)
def _stage_weight(days: np.ndarray, j: int, d: int) -> float:
    """Pressure of project ``j`` on day ``d`` relative to its acquisition stage."""
    if d < days[j, 0]:
        return 0.0
    if d < days[j, 1]:
        return STAGE_WEIGHTS[0]
    if d < days[j, 2]:
        return STAGE_WEIGHTS[1]
    if d < days[j, 3]:
        return STAGE_WEIGHTS[2]
    return STAGE_WEIGHTS[3] * np.exp(-(d - days[j, 3]) / AFTER_COMPLETION_DECAY_DAYS)


@njit(cache=True)
def _link_weight(d: int, k: int, proj_days: np.ndarray, severity: np.ndarray, vp_proj: np.ndarray,
                 vp_share: np.ndarray) -> float:
    """Pressure of the k-th (village, project) link on day ``d``."""
    return vp_share[k] * severity[vp_proj[k]] * _stage_weight(proj_days, vp_proj[k], d)


@njit(cache=True)
def _project_pressure(
    d: int, proj_days: np.ndarray, severity: np.ndarray, vp_ptr: np.ndarray, vp_proj: np.ndarray,
    vp_share: np.ndarray, out: np.ndarray,
) -> None:
    """Pressure on every village on day ``d``: Σ over its projects of share × severity × stage."""
    for v in range(out.shape[0]):
        total = 0.0
        for k in range(vp_ptr[v], vp_ptr[v + 1]):
            total += _link_weight(d, k, proj_days, severity, vp_proj, vp_share)
        out[v] = total


@njit(cache=True)
def _pick_project(d: int, v: int, proj_days: np.ndarray, severity: np.ndarray, vp_ptr: np.ndarray,
                  vp_proj: np.ndarray, vp_share: np.ndarray) -> int:
    """A project of village ``v`` drawn in proportion to its pressure on day ``d``."""
    total = 0.0
    for k in range(vp_ptr[v], vp_ptr[v + 1]):
        total += _link_weight(d, k, proj_days, severity, vp_proj, vp_share)
    if total <= 0.0:
        return vp_proj[vp_ptr[v + 1] - 1] if vp_ptr[v + 1] > vp_ptr[v] else -1
    u = np.random.random() * total
    for k in range(vp_ptr[v], vp_ptr[v + 1]):
        u -= _link_weight(d, k, proj_days, severity, vp_proj, vp_share)
        if u <= 0.0:
            return vp_proj[k]
    return vp_proj[vp_ptr[v + 1] - 1]


@njit(cache=True)
def _draw_outcome(p_resolve: float) -> int:
    if np.random.random() < p_resolve:
        return 0
    u = np.random.random()
    acc = 0.0
    for k in range(1, 5):
        acc += OUTCOME_UNRESOLVED_SPLIT[k]
        if u < acc:
            return k
    return 4


@njit(cache=True)
def _advance_day(
    d: int, state: np.ndarray, pressure: np.ndarray, spill: np.ndarray, lam: np.ndarray,
    lam_proj: np.ndarray, m: Mechanism, base_dispute: np.ndarray, base_petition: np.ndarray,
    base_incident: np.ndarray, kappa: np.ndarray, p_resolve: np.ndarray, season_dispute: float,
    season_incident: float, nb_ptr: np.ndarray, nb_idx: np.ndarray, nb_w: np.ndarray,
    proj_days: np.ndarray, severity: np.ndarray, vp_ptr: np.ndarray, vp_proj: np.ndarray,
    vp_share: np.ndarray, record: bool, dispute_log: np.ndarray, n_disp: int,
    petition_log: np.ndarray, n_pet: int,
) -> tuple[int, int]:
    """One day of the world for every village; returns the new log lengths.

    Fills ``lam``/``lam_proj`` with the day's incident intensities (general + project part
    in ``lam``, project part alone in ``lam_proj``). With ``record`` the day's disputes and
    petitions are appended to the logs (capacity must suffice: the caller grows them).
    """
    n = state.shape[1]
    _project_pressure(d, proj_days, severity, vp_ptr, vp_proj, vp_share, pressure)
    for v in range(n):
        s = 0.0
        for k in range(nb_ptr[v], nb_ptr[v + 1]):
            s += nb_w[k] * state[H, nb_idx[k]]
        spill[v] = s
    for v in range(n):
        P = pressure[v]
        k_day = kappa[v] * season_incident
        lam_p = k_day * (m.incident_project * P + m.incident_grievance * state[GP, v]
                         + m.incident_escalation * state[EP, v])
        lam[v] = k_day * (base_incident[v] + m.incident_grievance * state[G, v]
                          + m.incident_escalation * state[E, v]) + lam_p
        lam_proj[v] = lam_p
        mu_gen = base_dispute[v] * season_dispute + m.dispute_self * state[H, v] + m.dispute_spill * spill[v]
        mu_proj = m.project_disputes * P
        pi_gen = base_petition[v] + m.petition_grievance * state[G, v] + m.petition_repeat * state[R, v]
        pi_proj = m.petition_grievance * state[GP, v] + m.petition_repeat * state[RP, v] + m.project_petitions * P
        # One Poisson draw for all four kinds, then a uniform to tell each event's kind:
        # the same distribution as four independent draws, at a quarter of the cost.
        total = mu_gen + mu_proj + pi_gen + pi_proj
        n_events = np.random.poisson(total)
        n_disputes = 0
        n_pg = 0
        n_pp = 0
        g_new = 0.0
        gp_new = 0.0
        e_new = 0.0
        ep_new = 0.0
        for _ in range(n_events):
            u = np.random.random() * total
            if u < mu_gen + mu_proj:
                linked = u >= mu_gen
                n_disputes += 1
                outcome = _draw_outcome(p_resolve[v] * (0.75 if linked else 1.0))
                if linked:
                    gp_new += OUTCOME_GRIEVANCE[outcome]
                else:
                    g_new += OUTCOME_GRIEVANCE[outcome]
                if record:
                    dispute_log[n_disp, 0] = d
                    dispute_log[n_disp, 1] = v
                    dispute_log[n_disp, 2] = _pick_project(d, v, proj_days, severity, vp_ptr, vp_proj, vp_share) if linked else -1
                    dispute_log[n_disp, 3] = outcome
                    n_disp += 1
                continue
            linked = u >= mu_gen + mu_proj + pi_gen
            if linked:
                n_pp += 1
            else:
                n_pg += 1
            r_state = state[RP, v] if linked else state[R, v]
            repeat = np.random.random() < 0.6 * r_state / (r_state + 2.0)
            p_coll = m.collective_project if linked else m.collective_general
            collective = np.random.random() < p_coll * (1.5 if repeat else 1.0)
            leapfrog = np.random.random() < (m.leapfrog_repeat if repeat else m.leapfrog_first)
            pressure_added = 1.0 + 3.0 * collective + 4.0 * leapfrog
            if linked:
                ep_new += pressure_added
            else:
                e_new += pressure_added
            if record:
                petition_log[n_pet, 0] = d
                petition_log[n_pet, 1] = v
                petition_log[n_pet, 2] = _pick_project(d, v, proj_days, severity, vp_ptr, vp_proj, vp_share) if linked else -1
                petition_log[n_pet, 3] = repeat
                petition_log[n_pet, 4] = collective
                petition_log[n_pet, 5] = leapfrog
                n_pet += 1
        state[H, v] = state[H, v] * m.decay_excitation + n_disputes
        state[G, v] = state[G, v] * m.decay_grievance + g_new
        state[GP, v] = state[GP, v] * m.decay_grievance + gp_new
        state[R, v] = state[R, v] * m.decay_petitions + n_pg
        state[RP, v] = state[RP, v] * m.decay_petitions + n_pp
        state[E, v] = state[E, v] * m.decay_escalation + e_new
        state[EP, v] = state[EP, v] * m.decay_escalation + ep_new
    return n_disp, n_pet


@njit(cache=True)
def _grow(log: np.ndarray, used: int, headroom: int) -> np.ndarray:
    if used + headroom <= log.shape[0]:
        return log
    bigger = np.empty((max(2 * log.shape[0], used + headroom), log.shape[1]), dtype=log.dtype)
    bigger[:used] = log[:used]
    return bigger


@njit(cache=True)
def simulate_history(
    seed: int, first_day: int, n_days: int, snapshot_days: np.ndarray, m: Mechanism,
    base_dispute: np.ndarray, base_petition: np.ndarray, base_incident: np.ndarray,
    kappa: np.ndarray, p_resolve: np.ndarray, season_dispute: np.ndarray, season_incident: np.ndarray,
    nb_ptr: np.ndarray, nb_idx: np.ndarray, nb_w: np.ndarray, proj_days: np.ndarray,
    severity: np.ndarray, vp_ptr: np.ndarray, vp_proj: np.ndarray, vp_share: np.ndarray,
):
    """Run the world from ``first_day`` (negative: burn-in, not recorded) to ``n_days``.

    Returns the recorded daily incident intensity λ[d, v] (and its project part), the
    dispute log (day, village, project, outcome), the petition log (day, village, project,
    repeat, collective, leapfrog), the incident log (day, village, project) and the state
    at the start of each snapshot day (Mondays), for the oracle.
    Season arrays are indexed by ``d - first_day``.
    """
    np.random.seed(seed)
    n = base_dispute.shape[0]
    state = np.zeros((N_STATE, n))
    pressure = np.zeros(n)
    spill = np.zeros(n)
    lam = np.zeros(n)
    lam_p = np.zeros(n)
    lam_hist = np.zeros((n_days, n), dtype=np.float32)
    lam_proj_hist = np.zeros((n_days, n), dtype=np.float32)
    dispute_log = np.empty((1024, 4), dtype=np.int64)
    petition_log = np.empty((1024, 6), dtype=np.int64)
    incident_log = np.empty((1024, 3), dtype=np.int64)
    snap_states = np.zeros((snapshot_days.shape[0], N_STATE, n))
    n_disp = 0
    n_pet = 0
    n_inc = 0
    snap = 0
    for d in range(first_day, n_days):
        while snap < snapshot_days.shape[0] and snapshot_days[snap] == d:
            snap_states[snap] = state
            snap += 1
        record = d >= 0
        if record:
            dispute_log = _grow(dispute_log, n_disp, 4 * n + 64)
            petition_log = _grow(petition_log, n_pet, 4 * n + 64)
            incident_log = _grow(incident_log, n_inc, 2 * n + 64)
        i = d - first_day
        n_disp, n_pet = _advance_day(
            d, state, pressure, spill, lam, lam_p, m, base_dispute, base_petition, base_incident,
            kappa, p_resolve, season_dispute[i], season_incident[i], nb_ptr, nb_idx, nb_w,
            proj_days, severity, vp_ptr, vp_proj, vp_share, record, dispute_log, n_disp,
            petition_log, n_pet,
        )
        if record:
            for v in range(n):
                lam_hist[d, v] = lam[v]
                lam_proj_hist[d, v] = lam_p[v]
                k = np.random.poisson(lam[v])
                for _ in range(k):
                    linked = np.random.random() * lam[v] < lam_p[v]
                    proj = _pick_project(d, v, proj_days, severity, vp_ptr, vp_proj, vp_share) if linked else -1
                    incident_log[n_inc, 0] = d
                    incident_log[n_inc, 1] = v
                    incident_log[n_inc, 2] = proj
                    n_inc += 1
    return (lam_hist, lam_proj_hist, dispute_log[:n_disp].copy(), petition_log[:n_pet].copy(),
            incident_log[:n_inc].copy(), snap_states)


@njit(cache=True, parallel=True)
def oracle_probabilities(
    seed: int, snapshot_days: np.ndarray, snap_states: np.ndarray, horizon: int, n_paths: int,
    first_day: int, m: Mechanism, base_dispute: np.ndarray, base_petition: np.ndarray,
    base_incident: np.ndarray, kappa: np.ndarray, p_resolve: np.ndarray, season_dispute: np.ndarray,
    season_incident: np.ndarray, nb_ptr: np.ndarray, nb_idx: np.ndarray, nb_w: np.ndarray,
    proj_days: np.ndarray, severity: np.ndarray, vp_ptr: np.ndarray, vp_proj: np.ndarray,
    vp_share: np.ndarray, pv_ptr: np.ndarray, pv_village: np.ndarray,
):
    """P(at least one incident in days [t, t + horizon)) for every snapshot and village, and
    for every project (incidents linked to it), by forward simulation from the true state
    at t. Each snapshot seeds its own stream, so results do not depend on thread count.
    """
    n_snap = snapshot_days.shape[0]
    n = base_dispute.shape[0]
    n_proj = proj_days.shape[0]
    p_village = np.zeros((n_snap, n))
    p_project = np.zeros((n_snap, n_proj))
    dummy_d = np.empty((1, 4), dtype=np.int64)
    dummy_p = np.empty((1, 6), dtype=np.int64)
    for s in prange(n_snap):
        np.random.seed(seed + 7919 * s)
        state = np.empty((N_STATE, n))
        pressure = np.zeros(n)
        spill = np.zeros(n)
        lam = np.zeros(n)
        lam_p = np.zeros(n)
        big_lam = np.zeros(n)
        big_lam_proj = np.zeros(n_proj)
        for _ in range(n_paths):
            state[:] = snap_states[s]
            big_lam[:] = 0.0
            big_lam_proj[:] = 0.0
            for d in range(snapshot_days[s], snapshot_days[s] + horizon):
                i = d - first_day
                _advance_day(
                    d, state, pressure, spill, lam, lam_p, m, base_dispute, base_petition,
                    base_incident, kappa, p_resolve, season_dispute[i], season_incident[i], nb_ptr,
                    nb_idx, nb_w, proj_days, severity, vp_ptr, vp_proj, vp_share, False, dummy_d, 0,
                    dummy_p, 0,
                )
                for v in range(n):
                    big_lam[v] += lam[v]
                for j in range(n_proj):
                    for k in range(pv_ptr[j], pv_ptr[j + 1]):
                        v = pv_village[k]
                        if lam_p[v] > 0.0:
                            big_lam_proj[j] += lam_p[v] * _project_share(d, v, j, proj_days, severity,
                                                                         vp_ptr, vp_proj, vp_share)
            for v in range(n):
                p_village[s, v] += 1.0 - np.exp(-big_lam[v])
            for j in range(n_proj):
                p_project[s, j] += 1.0 - np.exp(-big_lam_proj[j])
        for v in range(n):
            p_village[s, v] /= n_paths
        for j in range(n_proj):
            p_project[s, j] /= n_paths
    return p_village, p_project


@njit(cache=True)
def _project_share(d: int, v: int, j: int, proj_days: np.ndarray, severity: np.ndarray,
                   vp_ptr: np.ndarray, vp_proj: np.ndarray, vp_share: np.ndarray) -> float:
    """The share of village ``v``'s project incidents on day ``d`` that link to project ``j``
    (the probabilities ``_pick_project`` draws with)."""
    total = 0.0
    mine = 0.0
    for k in range(vp_ptr[v], vp_ptr[v + 1]):
        w = _link_weight(d, k, proj_days, severity, vp_proj, vp_share)
        total += w
        if vp_proj[k] == j:
            mine += w
    if total <= 0.0:
        return 1.0 if vp_ptr[v + 1] > vp_ptr[v] and vp_proj[vp_ptr[v + 1] - 1] == j else 0.0
    return mine / total
