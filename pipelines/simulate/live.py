"""A world continued week by week with plans applied, for the closed loop: score → plan →
simulate → ingest.

``LiveWorld`` starts from a Monday of a simulated world's history (the true state at its
start, the events before it) and ``advance`` runs the mechanism forward with the actions of
every plan given so far acting for their weeks (the levers of ``evaluate``), recording the new
days' disputes, petitions and incidents. ``export`` writes the history so far as the platform
export `fengqiao simulate` writes (no oracle), so that the normal ingest reads it.

The mechanism's calendar and projects run to the end of the world's config (plus its horizon):
make the world long enough for the weeks to be continued, and start the loop that many weeks
before its end. The continued days draw from per-village streams keyed by ``seed``, so two
live worlds with the same seed — one with plans, one without — share their random numbers
wherever the plans change nothing (common random numbers, as in ``evaluate_plan``).

What the export shows of a plan: the patrol rounds that bought hours add (the `patrols` table
records them); the registers (`regions`: mediators, legal adviser; `projects`: hearing,
compensation) stay as the world exported them — a temporary team or adviser is not a change
of the register. The tables are drawn again at each export from the logs so far with the
world's own table stream: the events' days and places never change, while their details
(times within the day, categories, people) are not kept from one export to the next.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import Catalogue, Plan
from pipelines.simulate import dynamics
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.evaluate import PlanTargets, lever_inputs, plan_levers, plan_targets
from pipelines.simulate.export import write_export
from pipelines.simulate.world import World, event_tables, make_truth


class LiveWorld:
    """A simulated world held in memory from a Monday of its history on: ``advance`` it with
    plans, ``export`` what the platform would have recorded so far."""

    def __init__(self, config: SimulationConfig, start: dt.date, seed: int = 0) -> None:
        """The world ``config`` makes, cut at the Monday ``start`` (the present): its state at the
        start of that day and its events before it. Continued days draw from streams keyed ``seed``."""
        self.truth, rng = make_truth(config)
        self._tables_state = rng.bit_generator.state
        mech, history = self.truth.mech, self.truth.history
        day = (pd.Timestamp(start) - pd.Timestamp(config.start)).days
        found = np.flatnonzero(mech.snapshot_days == day)
        if len(found) == 0:
            raise ConfigurationError(f"start: {start} is not a Monday of the world")
        self.day = day
        n = len(mech.regions)
        self._buffers = dynamics.HistoryBuffers(
            state=history.snap_states[found[0]].copy(), snapshot_days=mech.snapshot_days,
            snap_states=history.snap_states.copy(), lam=history.lam.copy(), lam_proj=np.zeros_like(history.lam),
            backlog=history.backlog.copy(), counts=np.zeros(3, dtype=np.int64),
        )
        logs = []
        for k, log in enumerate((history.disputes, history.petitions, history.incidents)):
            before = log[log[:, 0] < day]
            self._buffers.counts[k] = len(before)
            logs.append(np.concatenate([before, np.empty((1024, log.shape[1]), dtype=np.int64)]))
        self._logs = tuple(logs)
        self._extra_rounds = np.zeros_like(history.backlog)
        self._targets = PlanTargets([], [], [], [])
        self._sent: list[int] = []
        self._rng = np.zeros(n + 2, dtype=np.uint64)
        self._rng[0] = dynamics.stream_key(seed, 0)

    @property
    def today(self) -> dt.date:
        """The present: the first day not yet simulated."""
        return (pd.Timestamp(self.truth.config.start) + pd.Timedelta(days=self.day)).date()

    def advance(self, days: int, plan: Plan | None = None, catalogue: Catalogue | None = None) -> None:
        """Run the world ``days`` days on, after sending ``plan``'s actions today (its snapshot
        must be today); the actions of earlier plans keep acting for what is left of their weeks."""
        config, mech = self.truth.config, self.truth.mech
        if days < 1 or self.day + days > self._buffers.lam.shape[0]:
            raise ConfigurationError(f"advance: days must be 1 to {self._buffers.lam.shape[0] - self.day} "
                                     "(the world's history ends there)")
        if plan is not None:
            if plan.snapshot != self.today:
                raise ConfigurationError(f"plan: field snapshot: must be today, {self.today}")
            new = plan_targets(self.truth, plan, catalogue or Catalogue(), self.day)
            for mine, theirs in ((self._targets.lever, new.lever), (self._targets.index, new.index),
                                 (self._targets.physical, new.physical), (self._targets.weeks, new.weeks)):
                mine.extend(theirs)
            self._sent.extend([self.day] * len(new.index))
        inputs = lever_inputs(self.truth, self._targets, days, self.day - np.asarray(self._sent, dtype=np.int64))
        levers = plan_levers(self.truth, inputs)
        cells = mech.regions["grid_cells"].to_numpy()
        self._extra_rounds[self.day : self.day + days] = inputs.extra_rate * cells / 7.0
        self._logs = dynamics.run_history(-1, self.day, self.day + days, self._buffers, *self._logs,
                                          config.mechanism, mech.arrays, levers, self._rng)
        self.day += days

    @property
    def daily_intensity(self) -> np.ndarray:
        """λ[d, v], the expected incidents of village v on day d, for every day before today
        (float32, as ``daily_intensity.npy``)."""
        return self._buffers.lam[: self.day]

    def incident_log(self) -> np.ndarray:
        """The incidents recorded so far, one row each: (day from the world's start, village
        index, project index or -1), in the order they happened (a copy)."""
        return self._logs[2][: self._buffers.counts[2]].copy()

    def world(self) -> World:
        """The world as the platform has recorded it up to today (tables drawn from the logs)."""
        config, mech = self.truth.config, self.truth.mech
        end = config.start_ts + pd.Timedelta(days=self.day)
        rng = np.random.default_rng()
        rng.bit_generator.state = self._tables_state
        logs = (log[:k] for log, k in zip(self._logs, self._buffers.counts))
        tables = event_tables(rng, config, mech, *logs, self._buffers.backlog[: self.day],
                              self._extra_rounds[: self.day])
        tables["projects"] = _projects_known_at(tables["projects"], end)
        return World(config, tables, None, None, self._buffers.lam[: self.day], {}, mech.traits,
                     self._buffers.backlog[: self.day], end=end)

    def export(self, out_dir: Path) -> dict[str, Path]:
        """Write the export of the history so far to ``out_dir`` (as `fengqiao simulate` does,
        without an oracle); returns the paths written."""
        return write_export(self.world(), out_dir)


def _projects_known_at(projects: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """The projects announced before ``end``, their completion empty when still running then."""
    known = projects.loc[projects["announced_at"] < end].copy()
    known["completed_at"] = known["completed_at"].where(known["completed_at"] < end)
    return known.reset_index(drop=True)
