"""What the families read of the ``projects`` table: milestones, affected villages, compensation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contracts import LIST_SEPARATOR, SECONDS_PER_DAY
from features.engine.timeline import epoch_seconds

RECENTLY_COMPLETED_DAYS = 180
"""A project counts as 'recently completed' (and project rows continue) this long after completion."""

MILESTONES = ("announced_at", "acquisition_start", "construction_start", "completed_at")


@dataclass(frozen=True)
class ProjectTimes:
    """Per-project milestones in epoch seconds (``NEVER`` when not reached)."""

    announced: np.ndarray
    acquisition: np.ndarray
    construction: np.ndarray
    completed: np.ndarray

    @classmethod
    def of(cls, projects: pd.DataFrame, timezone: str) -> ProjectTimes:
        return cls(*(epoch_seconds(projects[c], timezone) for c in MILESTONES))

    def take(self, idx: np.ndarray) -> ProjectTimes:
        return ProjectTimes(self.announced[idx], self.acquisition[idx], self.construction[idx], self.completed[idx])

    def rows_at(self, snapshots: np.ndarray) -> np.ndarray:
        """Which (project, snapshot) cells are rows of the project table, shape (projects, snapshots):
        announced before t, completed (if ever) at most ``RECENTLY_COMPLETED_DAYS`` before t."""
        t = snapshots[None, :]
        end = self.completed + RECENTLY_COMPLETED_DAYS * SECONDS_PER_DAY
        return (self.announced[:, None] < t) & (t <= end[:, None])


def compensation_gap(projects: pd.DataFrame) -> np.ndarray:
    """How far each project's compensation offer falls short of the regional standard (0 if not)."""
    return np.clip(1.0 - projects["compensation_ratio"].to_numpy(dtype=np.float64, na_value=np.nan), 0.0, None)


def project_villages(projects: pd.DataFrame, villages: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(project row, village index) pairs from ``village_ids``, sorted by project row; unknown villages skipped."""
    lists = projects["village_ids"].fillna("").astype("str").str.split(LIST_SEPARATOR)
    counts = lists.str.len().to_numpy()
    project_rows = np.repeat(np.arange(len(projects)), counts)
    flat = pd.Index([v.strip() for ids in lists for v in ids], dtype="str")
    village_idx = villages.get_indexer(flat)
    known = village_idx >= 0
    return project_rows[known], village_idx[known]
