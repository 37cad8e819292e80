"""The mechanism of the synthetic world, as numba kernels over per-village state.

Each village carries seven decaying state variables (dispute excitation, general and
project grievance backlog, petition excitation, escalation pressure). One day of the world
is one call of ``_advance_day``: intensities from the state at the start of the day, Poisson
draws of disputes and petitions, their outcomes, and the state update. The same function
drives the recorded history (``run_history``) and the oracle's forward simulations
(``oracle_probabilities``), so the oracle cannot drift from the mechanism that made the data.

The oracle is a Monte-Carlo estimate, not an exact value: it averages over a finite number
of forward paths. It is F_t-measurable: a path starts from the true state at t and knows
the projects announced before t (with their planned timelines, fixed at announcement); what
is undecided at t — disputes, petitions, projects not yet announced — is drawn afresh from
its generating process, never taken from the realised history.

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
    project_disputes: float = 0.022  # project-linked disputes per day per unit of pressure
    petition_grievance: float = 0.010  # petitions per day per unit of grievance backlog
    petition_repeat: float = 0.006  # petitions per day per unit of petition excitation
    project_petitions: float = 0.001  # project petitions per day per unit of pressure
    incident_grievance: float = 0.0003  # incidents per day per unit of grievance
    incident_escalation: float = 0.0016  # incidents per day per unit of escalation pressure
    incident_project: float = 0.00015  # project incidents per day per unit of pressure
    decay_excitation: float = float(np.exp(-1.0 / 14.0))
    decay_grievance: float = float(np.exp(-1.0 / 120.0))
    decay_petitions: float = float(np.exp(-1.0 / 45.0))
    decay_escalation: float = float(np.exp(-1.0 / 30.0))
    collective_general: float = 0.05  # P(collective) of a general petition
    collective_project: float = 0.3  # … of a project-linked petition
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


STAGE_WEIGHTS = (0.2, 1.0, 0.4, 0.1)
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



class WorldArrays(NamedTuple):
    """What the mechanism reads and never changes: village traits, the calendar, the
    neighbour graph and the projects of the realised history (all as arrays)."""

    base_dispute: np.ndarray
    base_petition: np.ndarray
    base_incident: np.ndarray
    kappa: np.ndarray
    p_resolve: np.ndarray
    season_dispute: np.ndarray
    """Multiplier of the day ``d`` at index ``d - first_day`` (as ``season_incident``)."""
    season_incident: np.ndarray
    first_day: int
    nb_ptr: np.ndarray
    nb_idx: np.ndarray
    nb_w: np.ndarray
    proj_days: np.ndarray
    """(announced, acquisition, construction, completed) day of each project, shape (n, 4)."""
    severity: np.ndarray
    vp_ptr: np.ndarray
    vp_proj: np.ndarray
    vp_share: np.ndarray
    pv_ptr: np.ndarray
    pv_village: np.ndarray


class DrawnProjects(NamedTuple):
    """Projects not yet announced at a snapshot, drawn afresh for each forward path.

    Path ``i`` owns drawn projects ``path_ptr[i]:path_ptr[i + 1]``; project ``q`` has stage
    days ``days[q]``, severity ``severity[q]`` and weighs on villages
    ``link_village[link_ptr[q]:link_ptr[q + 1]]`` with shares ``link_share``.
    """

    path_ptr: np.ndarray
    days: np.ndarray
    severity: np.ndarray
    link_ptr: np.ndarray
    link_village: np.ndarray
    link_share: np.ndarray


NEVER = 1 << 40
"""A day after every history: 'announced before NEVER' means every project counts."""


@njit(cache=True)
def _known_pressure(d: int, w: WorldArrays, announced_before: int, out: np.ndarray) -> None:
    """Pressure on every village on day ``d`` from the projects announced before day
    ``announced_before``: Σ share × severity × stage weight."""
    for v in range(out.shape[0]):
        total = 0.0
        for k in range(w.vp_ptr[v], w.vp_ptr[v + 1]):
            j = w.vp_proj[k]
            if w.proj_days[j, 0] < announced_before:
                total += w.vp_share[k] * w.severity[j] * _stage_weight(w.proj_days, j, d)
        out[v] = total


@njit(cache=True)
def _add_drawn_pressure(d: int, drawn: DrawnProjects, path: int, out: np.ndarray) -> None:
    """Add the pressure of the projects drawn for forward path ``path`` on day ``d``."""
    for q in range(drawn.path_ptr[path], drawn.path_ptr[path + 1]):
        weight = drawn.severity[q] * _stage_weight(drawn.days, q, d)
        if weight > 0.0:
            for k in range(drawn.link_ptr[q], drawn.link_ptr[q + 1]):
                out[drawn.link_village[k]] += drawn.link_share[k] * weight


@njit(cache=True)
def _pick_project(d: int, v: int, w: WorldArrays) -> int:
    """A project of village ``v`` drawn in proportion to its pressure on day ``d``."""
    total = 0.0
    for k in range(w.vp_ptr[v], w.vp_ptr[v + 1]):
        total += w.vp_share[k] * w.severity[w.vp_proj[k]] * _stage_weight(w.proj_days, w.vp_proj[k], d)
    if total <= 0.0:
        return w.vp_proj[w.vp_ptr[v + 1] - 1] if w.vp_ptr[v + 1] > w.vp_ptr[v] else -1
    u = np.random.random() * total
    for k in range(w.vp_ptr[v], w.vp_ptr[v + 1]):
        u -= w.vp_share[k] * w.severity[w.vp_proj[k]] * _stage_weight(w.proj_days, w.vp_proj[k], d)
        if u <= 0.0:
            return w.vp_proj[k]
    return w.vp_proj[w.vp_ptr[v + 1] - 1]


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
    lam_proj: np.ndarray, m: Mechanism, w: WorldArrays, record: bool, dispute_log: np.ndarray,
    n_disp: int, petition_log: np.ndarray, n_pet: int,
) -> tuple[int, int]:
    """One day of the world for every village, under the project ``pressure`` of the day;
    returns the new log lengths.

    Fills ``lam``/``lam_proj`` with the day's incident intensities (general + project part
    in ``lam``, project part alone in ``lam_proj``). With ``record`` the day's disputes and
    petitions are appended to the logs (capacity must suffice: the caller grows them).
    """
    n = state.shape[1]
    i = d - w.first_day
    season_dispute = w.season_dispute[i]
    season_incident = w.season_incident[i]
    for v in range(n):
        s = 0.0
        for k in range(w.nb_ptr[v], w.nb_ptr[v + 1]):
            s += w.nb_w[k] * state[H, w.nb_idx[k]]
        spill[v] = s
    for v in range(n):
        P = pressure[v]
        k_day = w.kappa[v] * season_incident
        lam_p = k_day * (m.incident_project * P + m.incident_grievance * state[GP, v]
                         + m.incident_escalation * state[EP, v])
        lam[v] = k_day * (w.base_incident[v] + m.incident_grievance * state[G, v]
                          + m.incident_escalation * state[E, v]) + lam_p
        lam_proj[v] = lam_p
        mu_gen = w.base_dispute[v] * season_dispute + m.dispute_self * state[H, v] + m.dispute_spill * spill[v]
        mu_proj = m.project_disputes * P
        pi_gen = w.base_petition[v] + m.petition_grievance * state[G, v] + m.petition_repeat * state[R, v]
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
                outcome = _draw_outcome(w.p_resolve[v] * (0.75 if linked else 1.0))
                if linked:
                    gp_new += OUTCOME_GRIEVANCE[outcome]
                else:
                    g_new += OUTCOME_GRIEVANCE[outcome]
                if record:
                    dispute_log[n_disp, 0] = d
                    dispute_log[n_disp, 1] = v
                    dispute_log[n_disp, 2] = _pick_project(d, v, w) if linked else -1
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
                petition_log[n_pet, 2] = _pick_project(d, v, w) if linked else -1
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


class HistoryBuffers(NamedTuple):
    """The growing record of a history run in chunks: state, logs and their fill counts.

    ``counts`` holds the used lengths of the dispute, petition and incident logs; the
    recorded arrays are indexed by day (0 = first recorded day).
    """

    state: np.ndarray
    snapshot_days: np.ndarray
    snap_states: np.ndarray
    lam: np.ndarray
    lam_proj: np.ndarray
    backlog: np.ndarray
    """Grievance backlog G + Gp at the start of each recorded day: the event-built state
    that patrols can find."""
    counts: np.ndarray


@njit(cache=True)
def run_history(
    seed: int, d_from: int, d_to: int, buf: HistoryBuffers, dispute_log: np.ndarray,
    petition_log: np.ndarray, incident_log: np.ndarray, m: Mechanism, w: WorldArrays,
):
    """Advance the world over days [d_from, d_to) (negative days: burn-in, not recorded).

    Reseeds the random stream when ``seed`` ≥ 0 (the first chunk), else continues it, so a
    history run in chunks equals one run in one go. Records λ[d, v] (and its project part),
    the backlog, the state at the start of each snapshot day, and appends to the dispute
    log (day, village, project, outcome), the petition log (day, village, project, repeat,
    collective, leapfrog) and the incident log (day, village, project); returns the logs,
    grown as needed.
    """
    if seed >= 0:
        np.random.seed(seed)
    state = buf.state
    n = state.shape[1]
    pressure = np.zeros(n)
    spill = np.zeros(n)
    lam = np.zeros(n)
    lam_p = np.zeros(n)
    n_disp, n_pet, n_inc = buf.counts[0], buf.counts[1], buf.counts[2]
    for d in range(d_from, d_to):
        for s in range(buf.snapshot_days.shape[0]):
            if buf.snapshot_days[s] == d:
                buf.snap_states[s] = state
        record = d >= 0
        if record:
            dispute_log = _grow(dispute_log, n_disp, 4 * n + 64)
            petition_log = _grow(petition_log, n_pet, 4 * n + 64)
            incident_log = _grow(incident_log, n_inc, 2 * n + 64)
            for v in range(n):
                buf.backlog[d, v] = state[G, v] + state[GP, v]
        _known_pressure(d, w, NEVER, pressure)
        n_disp, n_pet = _advance_day(d, state, pressure, spill, lam, lam_p, m, w, record, dispute_log,
                                     n_disp, petition_log, n_pet)
        if record:
            for v in range(n):
                buf.lam[d, v] = lam[v]
                buf.lam_proj[d, v] = lam_p[v]
                k = np.random.poisson(lam[v])
                for _ in range(k):
                    linked = np.random.random() * lam[v] < lam_p[v]
                    incident_log[n_inc, 0] = d
                    incident_log[n_inc, 1] = v
                    incident_log[n_inc, 2] = _pick_project(d, v, w) if linked else -1
                    n_inc += 1
    buf.counts[0], buf.counts[1], buf.counts[2] = n_disp, n_pet, n_inc
    return dispute_log, petition_log, incident_log


@njit(cache=True, parallel=True)
def oracle_probabilities(
    seed: int, snapshot_index: np.ndarray, snapshot_days: np.ndarray, snap_states: np.ndarray,
    horizon: int, n_paths: int, m: Mechanism, w: WorldArrays, drawn: DrawnProjects,
):
    """P(at least one incident in days [t, t + horizon)) for each snapshot given (its index in
    the world's snapshots, its day, the state at its start) and every village, and for every
    project announced before t (incidents linked to it), by forward simulation.

    Forward path ``p`` of the ``i``-th snapshot given uses the drawn projects of path
    ``i * n_paths + p`` in place of those the history announced on or after t. Each snapshot
    seeds its own stream from its world index, so results depend neither on the thread count
    nor on which other snapshots are computed in the same call.
    """
    n_snap = snapshot_days.shape[0]
    n = w.base_dispute.shape[0]
    n_proj = w.proj_days.shape[0]
    p_village = np.zeros((n_snap, n))
    p_project = np.zeros((n_snap, n_proj))
    dummy_d = np.empty((1, 4), dtype=np.int64)
    dummy_p = np.empty((1, 6), dtype=np.int64)
    for s in prange(n_snap):
        np.random.seed(seed + 7919 * snapshot_index[s])
        t = snapshot_days[s]
        state = np.empty((N_STATE, n))
        pressure = np.zeros(n)
        spill = np.zeros(n)
        lam = np.zeros(n)
        lam_p = np.zeros(n)
        big_lam = np.zeros(n)
        big_lam_proj = np.zeros(n_proj)
        for path in range(n_paths):
            state[:] = snap_states[s]
            big_lam[:] = 0.0
            big_lam_proj[:] = 0.0
            for d in range(t, t + horizon):
                _known_pressure(d, w, t, pressure)
                _add_drawn_pressure(d, drawn, s * n_paths + path, pressure)
                _advance_day(d, state, pressure, spill, lam, lam_p, m, w, False, dummy_d, 0, dummy_p, 0)
                for v in range(n):
                    big_lam[v] += lam[v]
                for j in range(n_proj):
                    if w.proj_days[j, 0] >= t:
                        continue
                    weight = w.severity[j] * _stage_weight(w.proj_days, j, d) / (w.pv_ptr[j + 1] - w.pv_ptr[j])
                    for k in range(w.pv_ptr[j], w.pv_ptr[j + 1]):
                        v = w.pv_village[k]
                        if lam_p[v] > 0.0 and pressure[v] > 0.0:
                            big_lam_proj[j] += lam_p[v] * weight / pressure[v]
            for v in range(n):
                p_village[s, v] += 1.0 - np.exp(-big_lam[v])
            for j in range(n_proj):
                p_project[s, j] += 1.0 - np.exp(-big_lam_proj[j])
        for v in range(n):
            p_village[s, v] /= n_paths
        for j in range(n_proj):
            p_project[s, j] /= n_paths
    return p_village, p_project
