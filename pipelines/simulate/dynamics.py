"""The mechanism of the synthetic world, as numba kernels over per-village state.

Each village carries seven decaying state variables (dispute excitation, general and
project grievance backlog, petition excitation, escalation pressure). One day of the world
is one call of ``_advance_day``: intensities from the state at the start of the day, Poisson
draws of disputes and petitions, their outcomes, and the state update. The same function
drives the recorded history (``run_history``), and one forward loop (``_forward_window``)
drives both the oracle's forward simulations (``oracle_probabilities``) and the evaluation of
plans (``incident_sums``), so neither can drift from the mechanism that made the data.

What a plan can move — each village's κ and P(resolve), each project's severity — is not part
of the fixed ``WorldArrays`` but of ``Levers``, one row per day of a window (the history uses
one row for every day).

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
    season_dispute: np.ndarray
    """Multiplier of the day ``d`` at index ``d - first_day`` (as ``season_incident``)."""
    season_incident: np.ndarray
    first_day: int
    nb_ptr: np.ndarray
    nb_idx: np.ndarray
    nb_w: np.ndarray
    proj_days: np.ndarray
    """(announced, acquisition, construction, completed) day of each project, shape (n, 4)."""
    vp_ptr: np.ndarray
    vp_proj: np.ndarray
    vp_share: np.ndarray
    pv_ptr: np.ndarray
    pv_village: np.ndarray


class Levers(NamedTuple):
    """The parts of the mechanism that interventions move, per day: row ``i`` holds the values
    of the ``i``-th day of a forward window (or, with one row, of every day of the history).

    ``kappa`` (days, villages): the incident-intensity multiplier κ; ``p_resolve`` (days,
    villages): P(a general dispute is resolved); ``severity`` (days, projects): each known
    project's pressure at full (acquisition-stage) weight.
    """

    kappa: np.ndarray
    p_resolve: np.ndarray
    severity: np.ndarray


def constant_levers(levers: Levers, days: int) -> Levers:
    """The first row of ``levers`` repeated for ``days`` days (a window nothing changes)."""
    return Levers(*(np.repeat(a[:1], days, axis=0) for a in levers))


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
def _mix(x: np.uint64) -> np.uint64:
    """SplitMix64's finaliser: a bijection of 64-bit words that scrambles every bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def stream_key(seed: int, replication: int) -> np.uint64:
    """The key of replication ``replication``'s village streams under ``seed``."""
    return _mix(_mix(np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15)) + np.uint64(replication))


@njit(cache=True)
def _start_day(rng: np.ndarray, d: int) -> None:
    """Point per-village streams at day ``d``: draw ``c`` of village ``v`` on day ``d`` is a
    hash of (key, d, v, c), whatever happened in other villages or on other days."""
    if rng.shape[0] > 0:
        rng[1] = np.uint64(d + (1 << 40))
        rng[2:] = 0


@njit(cache=True)
def _uniform(rng: np.ndarray, v: int) -> float:
    """A uniform draw in [0, 1) for village ``v``. ``rng`` is empty for numba's one global
    stream (the history and the oracle), or [key, day, a draw counter per village] for
    per-village streams (the evaluation of plans): then it is the next draw of village ``v``'s own counter-based stream (common random
    numbers: a change in one village leaves every other village's draws as they were)."""
    if rng.shape[0] == 0:
        return np.random.random()
    c = rng[v + 2]
    rng[v + 2] = c + np.uint64(1)
    x = _mix(_mix(_mix(rng[0] + rng[1]) + np.uint64(v)) + c)
    return float(x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _poisson(rng: np.ndarray, v: int, mean: float) -> int:
    """A Poisson(``mean``) draw for village ``v``: numba's generator on the global stream, else
    inversion of one uniform of the village's stream (monotone in ``mean``: the closest coupling
    of two arms whose intensities differ)."""
    if rng.shape[0] == 0:
        return np.random.poisson(mean)
    u = _uniform(rng, v)
    k = 0
    p = np.exp(-mean)
    cdf = p
    while u > cdf and p > 0.0:
        k += 1
        p *= mean / k
        cdf += p
    return k


@njit(cache=True)
def _known_pressure(d: int, w: WorldArrays, severity: np.ndarray, announced_before: int, out: np.ndarray) -> None:
    """Pressure on every village on day ``d`` from the projects announced before day
    ``announced_before``: Σ share × severity × stage weight."""
    for v in range(out.shape[0]):
        total = 0.0
        for k in range(w.vp_ptr[v], w.vp_ptr[v + 1]):
            j = w.vp_proj[k]
            if w.proj_days[j, 0] < announced_before:
                total += w.vp_share[k] * severity[j] * _stage_weight(w.proj_days, j, d)
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
def _pick_project(d: int, v: int, w: WorldArrays, severity: np.ndarray, rng: np.ndarray) -> int:
    """A project of village ``v`` drawn in proportion to its pressure on day ``d``."""
    total = 0.0
    for k in range(w.vp_ptr[v], w.vp_ptr[v + 1]):
        total += w.vp_share[k] * severity[w.vp_proj[k]] * _stage_weight(w.proj_days, w.vp_proj[k], d)
    if total <= 0.0:
        return w.vp_proj[w.vp_ptr[v + 1] - 1] if w.vp_ptr[v + 1] > w.vp_ptr[v] else -1
    u = _uniform(rng, v) * total
    for k in range(w.vp_ptr[v], w.vp_ptr[v + 1]):
        u -= w.vp_share[k] * severity[w.vp_proj[k]] * _stage_weight(w.proj_days, w.vp_proj[k], d)
        if u <= 0.0:
            return w.vp_proj[k]
    return w.vp_proj[w.vp_ptr[v + 1] - 1]


@njit(cache=True)
def _draw_outcome(p_resolve: float, rng: np.ndarray, v: int) -> int:
    if _uniform(rng, v) < p_resolve:
        return 0
    u = _uniform(rng, v)
    acc = 0.0
    for k in range(1, 5):
        acc += OUTCOME_UNRESOLVED_SPLIT[k]
        if u < acc:
            return k
    return 4


@njit(cache=True)
def _advance_day(
    d: int, state: np.ndarray, pressure: np.ndarray, spill: np.ndarray, lam: np.ndarray,
    lam_proj: np.ndarray, m: Mechanism, w: WorldArrays, levers: Levers, row: int, rng: np.ndarray,
    record: bool, dispute_log: np.ndarray, n_disp: int, petition_log: np.ndarray, n_pet: int,
) -> tuple[int, int]:
    """One day of the world for every village, under the project ``pressure`` of the day and
    the levers' row ``row``, drawing from ``rng`` (``_uniform``); returns the new log lengths.

    Fills ``lam``/``lam_proj`` with the day's incident intensities (general + project part
    in ``lam``, project part alone in ``lam_proj``). With ``record`` the day's disputes and
    petitions are appended to the logs (capacity must suffice: the caller grows them).
    """
    n = state.shape[1]
    i = d - w.first_day
    season_dispute = w.season_dispute[i]
    season_incident = w.season_incident[i]
    kappa = levers.kappa[row]
    p_resolve = levers.p_resolve[row]
    severity = levers.severity[row]
    for v in range(n):
        s = 0.0
        for k in range(w.nb_ptr[v], w.nb_ptr[v + 1]):
            s += w.nb_w[k] * state[H, w.nb_idx[k]]
        spill[v] = s
    for v in range(n):
        P = pressure[v]
        k_day = kappa[v] * season_incident
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
        n_events = _poisson(rng, v, total)
        n_disputes = 0
        n_pg = 0
        n_pp = 0
        g_new = 0.0
        gp_new = 0.0
        e_new = 0.0
        ep_new = 0.0
        for _ in range(n_events):
            u = _uniform(rng, v) * total
            if u < mu_gen + mu_proj:
                linked = u >= mu_gen
                n_disputes += 1
                outcome = _draw_outcome(p_resolve[v] * (0.75 if linked else 1.0), rng, v)
                if linked:
                    gp_new += OUTCOME_GRIEVANCE[outcome]
                else:
                    g_new += OUTCOME_GRIEVANCE[outcome]
                if record:
                    dispute_log[n_disp, 0] = d
                    dispute_log[n_disp, 1] = v
                    dispute_log[n_disp, 2] = _pick_project(d, v, w, severity, rng) if linked else -1
                    dispute_log[n_disp, 3] = outcome
                    n_disp += 1
                continue
            linked = u >= mu_gen + mu_proj + pi_gen
            if linked:
                n_pp += 1
            else:
                n_pg += 1
            r_state = state[RP, v] if linked else state[R, v]
            repeat = _uniform(rng, v) < 0.6 * r_state / (r_state + 2.0)
            p_coll = m.collective_project if linked else m.collective_general
            collective = _uniform(rng, v) < p_coll * (1.5 if repeat else 1.0)
            leapfrog = _uniform(rng, v) < (m.leapfrog_repeat if repeat else m.leapfrog_first)
            pressure_added = 1.0 + 3.0 * collective + 4.0 * leapfrog
            if linked:
                ep_new += pressure_added
            else:
                e_new += pressure_added
            if record:
                petition_log[n_pet, 0] = d
                petition_log[n_pet, 1] = v
                petition_log[n_pet, 2] = _pick_project(d, v, w, severity, rng) if linked else -1
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
    petition_log: np.ndarray, incident_log: np.ndarray, m: Mechanism, w: WorldArrays, levers: Levers,
    rng: np.ndarray,
):
    """Advance the world over days [d_from, d_to) (negative days: burn-in, not recorded).

    Reseeds the random stream when ``seed`` ≥ 0 (the first chunk), else continues it, so a
    history run in chunks equals one run in one go. Records λ[d, v] (and its project part),
    the backlog, the state at the start of each snapshot day, and appends to the dispute
    log (day, village, project, outcome), the petition log (day, village, project, repeat,
    collective, leapfrog) and the incident log (day, village, project); returns the logs,
    grown as needed.

    ``levers`` has one row per day from ``d_from`` (its last row serves the days beyond: one
    row serves every day). Draws come from ``rng`` (``_uniform``): empty for numba's global
    stream, else per-village streams (a world continued under plans, ``LiveWorld``).
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
        row = min(d - d_from, levers.kappa.shape[0] - 1)
        _start_day(rng, d)
        _known_pressure(d, w, levers.severity[row], NEVER, pressure)
        n_disp, n_pet = _advance_day(d, state, pressure, spill, lam, lam_p, m, w, levers, row, rng,
                                     record, dispute_log, n_disp, petition_log, n_pet)
        if record:
            for v in range(n):
                buf.lam[d, v] = lam[v]
                buf.lam_proj[d, v] = lam_p[v]
                k = _poisson(rng, v, lam[v])
                for _ in range(k):
                    linked = _uniform(rng, v) * lam[v] < lam_p[v]
                    incident_log[n_inc, 0] = d
                    incident_log[n_inc, 1] = v
                    incident_log[n_inc, 2] = _pick_project(d, v, w, levers.severity[row], rng) if linked else -1
                    n_inc += 1
    buf.counts[0], buf.counts[1], buf.counts[2] = n_disp, n_pet, n_inc
    return dispute_log, petition_log, incident_log


@njit(cache=True)
def _forward_window(
    t: int, horizon: int, state: np.ndarray, m: Mechanism, w: WorldArrays, levers: Levers, drawn: DrawnProjects,
    path: int, rng: np.ndarray, big_lam: np.ndarray, big_lam_proj: np.ndarray,
) -> None:
    """Run the world from ``state`` (the state at the start of day t; changed in place) over
    days [t, t + horizon), with the levers of day ``d`` in row ``d - t``, the projects announced
    before t and those drawn for forward path ``path``, drawing from ``rng``.

    Adds each village's Σλ over the window to ``big_lam`` and, for each project announced
    before t, the Σλ of incidents linked to it to ``big_lam_proj``: the expected incident
    counts of the path (incidents do not feed back, so no incident is drawn).
    """
    n = state.shape[1]
    n_proj = w.proj_days.shape[0]
    pressure = np.zeros(n)
    spill = np.zeros(n)
    lam = np.zeros(n)
    lam_p = np.zeros(n)
    dummy_d = np.empty((1, 4), dtype=np.int64)
    dummy_p = np.empty((1, 6), dtype=np.int64)
    for d in range(t, t + horizon):
        row = d - t
        _start_day(rng, d)
        _known_pressure(d, w, levers.severity[row], t, pressure)
        _add_drawn_pressure(d, drawn, path, pressure)
        _advance_day(d, state, pressure, spill, lam, lam_p, m, w, levers, row, rng, False, dummy_d, 0, dummy_p, 0)
        for v in range(n):
            big_lam[v] += lam[v]
        for j in range(n_proj):
            if w.proj_days[j, 0] >= t:
                continue
            weight = levers.severity[row, j] * _stage_weight(w.proj_days, j, d) / (w.pv_ptr[j + 1] - w.pv_ptr[j])
            for k in range(w.pv_ptr[j], w.pv_ptr[j + 1]):
                v = w.pv_village[k]
                if lam_p[v] > 0.0 and pressure[v] > 0.0:
                    big_lam_proj[j] += lam_p[v] * weight / pressure[v]


@njit(cache=True, parallel=True)
def oracle_probabilities(
    seed: int, snapshot_index: np.ndarray, snapshot_days: np.ndarray, snap_states: np.ndarray,
    horizon: int, n_paths: int, m: Mechanism, w: WorldArrays, levers: Levers, drawn: DrawnProjects,
):
    """P(at least one incident in days [t, t + horizon)) for each snapshot given (its index in
    the world's snapshots, its day, the state at its start) and every village, and for every
    project announced before t (incidents linked to it), by forward simulation under
    ``levers`` (``horizon`` rows: the world's own traits, nothing changed).

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
    for s in prange(n_snap):
        np.random.seed(seed + 7919 * snapshot_index[s])
        state = np.empty((N_STATE, n))
        big_lam = np.zeros(n)
        big_lam_proj = np.zeros(n_proj)
        global_stream = np.empty(0, dtype=np.uint64)
        for path in range(n_paths):
            state[:] = snap_states[s]
            big_lam[:] = 0.0
            big_lam_proj[:] = 0.0
            _forward_window(snapshot_days[s], horizon, state, m, w, levers, drawn, s * n_paths + path, global_stream,
                            big_lam, big_lam_proj)
            for v in range(n):
                p_village[s, v] += 1.0 - np.exp(-big_lam[v])
            for j in range(n_proj):
                p_project[s, j] += 1.0 - np.exp(-big_lam_proj[j])
        for v in range(n):
            p_village[s, v] /= n_paths
        for j in range(n_proj):
            p_project[s, j] /= n_paths
    return p_village, p_project


@njit(cache=True, parallel=True)
def incident_sums(
    seed: int, t: int, state: np.ndarray, horizon: int, replications: int, m: Mechanism, w: WorldArrays,
    levers: Levers, drawn: DrawnProjects,
):
    """Expected incidents over days [t, t + horizon) from ``state`` (the state at the start of
    t) under ``levers`` (``horizon`` rows), per replication: arrays (replications, villages)
    of Σλ per village and (replications, projects) of Σλ linked to each project announced
    before t.

    Replication ``r`` uses drawn-projects path ``r`` and per-village streams keyed by
    (``seed``, r): two calls with the same seed and other levers are common-random-number
    arms, each village-day drawing the same uniforms in both (until the arms' events differ
    there). The results depend on neither the thread count nor the other replications.
    """
    n = w.base_dispute.shape[0]
    n_proj = w.proj_days.shape[0]
    by_village = np.zeros((replications, n))
    by_project = np.zeros((replications, n_proj))
    for r in prange(replications):
        rng = np.zeros(n + 2, dtype=np.uint64)
        rng[0] = stream_key(seed, r)
        path_state = state.copy()
        _forward_window(t, horizon, path_state, m, w, levers, drawn, r, rng, by_village[r], by_project[r])
    return by_village, by_project
