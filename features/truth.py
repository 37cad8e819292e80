"""The synthetic world's truth files (the oracle) and the one rule that reads them: the
oracle's horizon must be the horizon of the labels it is compared with.

A simulated export carries ``oracle.parquet`` (villages) and ``oracle_projects.parquet``
(projects), one probability column named from the horizon (``p_incident_30d`` at 30 days).
A real export has none of this.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from fengqiao.errors import ConfigurationError

ORACLE_FILES = {"village": "oracle.parquet", "project": "oracle_projects.parquet"}
_COLUMN = re.compile(r"p_incident_(\d+)d")


def oracle_column(horizon_days: int) -> str:
    """The name of the oracle's probability column for a horizon in days."""
    return f"p_incident_{horizon_days}d"


def oracle_horizon(columns: list[str] | pd.Index) -> int:
    """The horizon (days) that an oracle table's columns declare."""
    found = [int(m.group(1)) for c in columns if (m := _COLUMN.fullmatch(str(c)))]
    if len(found) != 1:
        raise ConfigurationError(f"an oracle table needs exactly one p_incident_<days>d column, found {len(found)}")
    return found[0]


def check_horizon(oracle_days: int, label_days: int, where: str) -> None:
    """Fail clearly when the oracle and the labels look at different horizons."""
    if oracle_days != label_days:
        raise ConfigurationError(
            f"{where} holds the oracle for a {oracle_days}-day horizon but the labels use {label_days} days: "
            f"simulate again with --horizon-days {label_days}, or build features with --horizon-days {oracle_days}"
        )


def read_oracle(warehouse_dir: Path, entity: str, horizon_days: int) -> pd.DataFrame | None:
    """The oracle of ``entity`` in the warehouse (None for a real city's warehouse), after
    checking that it is for ``horizon_days``."""
    path = Path(warehouse_dir) / ORACLE_FILES[entity]
    if not path.exists():
        return None
    frame = pd.read_parquet(path)
    check_horizon(oracle_horizon(frame.columns), horizon_days, str(path))
    return frame


def stored_oracle_horizon(warehouse_dir: Path) -> int | None:
    """The horizon of the village oracle stored in the warehouse, or None when there is none."""
    path = Path(warehouse_dir) / ORACLE_FILES["village"]
    if not path.exists():
        return None
    return oracle_horizon(pq.read_schema(path).names)
