"""Reading and writing warehouse tables (Parquet under ``<data_root>/warehouse``).

Warehouse tables hold the contract columns that may reach the warehouse and that the source
had (a missing optional column is left out, never invented), typed: ids and category codes as
strings, timestamps timezone-aware in the city's zone (``Settings.timezone``), integers as
``int64`` (``Int64`` where nullable), booleans as ``bool`` (``boolean`` where nullable), lists
``|``-joined strings, boundaries as WKT.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.contracts import CONTRACTS
from fengqiao.publish import write_atomic


def table_path(warehouse_dir: Path, name: str) -> Path:
    return Path(warehouse_dir) / f"{name}.parquet"


def read_table(warehouse_dir: Path, name: str) -> pd.DataFrame | None:
    """A warehouse table, or None when the city does not have it (optional tables)."""
    path = table_path(warehouse_dir, name)
    if not path.exists():
        return None
    return pd.read_parquet(path)


def read_tables(warehouse_dir: Path) -> dict[str, pd.DataFrame]:
    """Every contract table present in the warehouse, by name."""
    tables = {}
    for name in CONTRACTS:
        df = read_table(warehouse_dir, name)
        if df is not None:
            tables[name] = df
    return tables


def write_table(df: pd.DataFrame, warehouse_dir: Path, name: str) -> Path:
    """Write atomically so a reader never sees half a table."""
    return write_atomic(table_path(warehouse_dir, name), lambda path: df.to_parquet(path, index=False))
