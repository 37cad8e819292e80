"""The realised history: the mechanism run from the burn-in to the moment of the export."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fengqiao.progress import Progress, quiet
from pipelines.simulate import dynamics
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.mechanics import BURN_IN_DAYS, Mechanics


@dataclass
class History:
    """A realised history: its logs, the recorded intensities and backlog, and the state at
    the start of every snapshot day."""

    disputes: np.ndarray
    petitions: np.ndarray
    incidents: np.ndarray
    lam: np.ndarray
    backlog: np.ndarray
    snap_states: np.ndarray


HISTORY_CHUNK_DAYS = 91


def run_history(seed: int, config: SimulationConfig, mech: Mechanics, progress: Progress = quiet,
                reseed: dict[int, int] | None = None) -> History:
    """Run the mechanism from the burn-in to the export moment, in chunks of a quarter.

    ``reseed`` maps a day to a new seed for the random stream from that day on: the same
    past with another future (the tests use it to show the oracle cannot see the future).
    """
    n, n_days = len(mech.regions), config.n_days
    buf = dynamics.HistoryBuffers(
        state=np.zeros((dynamics.N_STATE, n)), snapshot_days=mech.snapshot_days,
        snap_states=np.zeros((len(mech.snapshot_days), dynamics.N_STATE, n)),
        lam=np.zeros((n_days, n), dtype=np.float32), lam_proj=np.zeros((n_days, n), dtype=np.float32),
        backlog=np.zeros((n_days, n), dtype=np.float32), counts=np.zeros(3, dtype=np.int64),
    )
    logs = (np.empty((1024, 4), dtype=np.int64), np.empty((1024, 6), dtype=np.int64), np.empty((1024, 3), dtype=np.int64))
    seeds = {-BURN_IN_DAYS: seed, **(reseed or {})}
    cuts = sorted({-BURN_IN_DAYS, n_days, *range(0, n_days, HISTORY_CHUNK_DAYS), *seeds})
    for d_from, d_to in zip(cuts[:-1], cuts[1:]):
        logs = dynamics.run_history(seeds.get(d_from, -1), d_from, d_to, buf, *logs, config.mechanism, mech.arrays,
                                     mech.levers, np.empty(0, dtype=np.uint64))
        progress("history", max(d_to, 0), n_days)
    disputes, petitions, incidents = (log[:k].copy() for log, k in zip(logs, buf.counts))
    return History(disputes, petitions, incidents, buf.lam, buf.backlog, buf.snap_states)
