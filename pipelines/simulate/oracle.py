"""The oracle: the probability of an incident in [t, t + horizon) given everything true at t
and nothing after it, estimated by forward simulation (ADR 002)."""

from __future__ import annotations

import numpy as np

from features.engine.projects import RECENTLY_COMPLETED_DAYS
from fengqiao.progress import Progress, quiet
from pipelines.simulate import dynamics
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.mechanics import Mechanics
from pipelines.simulate.projects import announcements_per_day, draw_projects


def drawn_projects(seed: int, snapshot_index: np.ndarray, snapshot_days: np.ndarray, horizon_days: int,
                   n_paths: int, mech: Mechanics) -> dynamics.DrawnProjects:
    """For each snapshot and forward path, the projects announced in [t, t + horizon) drawn
    from the generating process (its own stream per snapshot, nothing from the history)."""
    rate = announcements_per_day(mech.regions)
    counts, days, sev, links, shares = [], [], [], [], []
    for s, t in zip(snapshot_index, snapshot_days):
        rng = np.random.default_rng([seed, int(s)])
        per_path = rng.poisson(rate * horizon_days, n_paths)
        draws = draw_projects(rng, mech.sites, int(per_path.sum()))
        announced = t + rng.integers(0, horizon_days, int(per_path.sum()))
        counts.append(per_path)
        days.append(np.column_stack([announced, announced[:, None] + draws.stages]))
        sev.append(draws.severity)
        links.extend(draws.villages)
        shares.extend(np.full(len(v), 1.0 / len(v)) for v in draws.villages)
    sizes = np.array([len(v) for v in links], dtype=np.int64)
    return dynamics.DrawnProjects(
        path_ptr=np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64),
        days=np.concatenate(days).astype(np.int64).reshape(-1, 4),
        severity=np.concatenate(sev).astype(np.float64),
        link_ptr=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        link_village=np.concatenate([np.empty(0, dtype=np.int64), *links]).astype(np.int64),
        link_share=np.concatenate([np.empty(0), *shares]),
    )


ORACLE_BATCH = 8
"""Snapshots per oracle call: a progress step, and the drawn projects of one batch in memory."""


def oracle(seed: int, config: SimulationConfig, mech: Mechanics, snap_states: np.ndarray,
           snapshot_index: np.ndarray | None = None, progress: Progress = quiet) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's P(incident in [t, t + horizon)) for the snapshots ``snapshot_index``
    (default all): arrays (snapshots, villages) and (snapshots, projects). Deterministic
    per snapshot whatever the batch it is computed in."""
    index = np.arange(len(mech.snapshot_days)) if snapshot_index is None else np.asarray(snapshot_index)
    p_v, p_p = [], []
    levers = dynamics.constant_levers(mech.levers, config.horizon_days)
    for b in range(0, len(index), ORACLE_BATCH):
        batch = index[b : b + ORACLE_BATCH]
        days = mech.snapshot_days[batch]
        drawn = drawn_projects(seed, batch, days, config.horizon_days, config.oracle_paths, mech)
        pv, pp = dynamics.oracle_probabilities(seed, batch, days, snap_states[batch], config.horizon_days,
                                               config.oracle_paths, config.mechanism, mech.arrays, levers, drawn)
        p_v.append(pv)
        p_p.append(pp)
        progress("oracle", b + len(batch), len(index))
    n, n_proj = len(mech.regions), len(mech.projects)
    return (np.concatenate(p_v) if p_v else np.empty((0, n)), np.concatenate(p_p) if p_p else np.empty((0, n_proj)))


def project_rows(proj_days: np.ndarray, snapshot_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(snapshot index, project index) of every project-week the platform follows: announced
    before t and t at most ``RECENTLY_COMPLETED_DAYS`` after completion (ADR 001)."""
    t = snapshot_days[:, None]
    live = (proj_days[None, :, 0] < t) & (t <= proj_days[None, :, 3] + RECENTLY_COMPLETED_DAYS)
    return np.nonzero(live)
