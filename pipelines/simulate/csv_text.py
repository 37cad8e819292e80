"""How the platform writes text: timestamps as local time with their UTC offset
(``2024-03-05 14:23:00+08:00``), booleans ``true``/``false``, nulls as empty cells.

Formatting goes through Arrow compute kernels: pandas' ``to_csv`` formats tz-aware timestamps
one Python object at a time (~40 µs a row), which made the 13M-row patrols of --scale 10 take
minutes to write.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamps_as_text(values: pd.Series) -> pa.Array:
    """Tz-aware timestamps as local wall-clock text to the second plus the UTC offset."""
    wall = values.dt.tz_localize(None)
    utc = values.dt.tz_convert("UTC").dt.tz_localize(None)
    text = pc.strftime(pa.array(wall).cast(pa.timestamp("s")), format=TIMESTAMP_FORMAT)
    minutes = ((wall - utc).dt.total_seconds() // 60).fillna(0).astype(np.int64).to_numpy()
    codes, uniques = pd.factorize(minutes)
    offsets = pa.array([f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in uniques], pa.string())
    return pc.binary_join_element_wise(text, offsets.take(pa.array(codes)), "")


def frame_as_text(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table of text columns, the way a platform's CSV dump reads."""
    columns = {}
    for name, values in frame.items():
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            columns[name] = timestamps_as_text(values)
        elif pd.api.types.is_bool_dtype(values.dtype):
            columns[name] = pc.if_else(pa.array(values), "true", "false")
        else:
            columns[name] = pc.cast(pa.array(values), pa.string())
    return pa.table(columns)


def text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame_as_text`` as a pandas frame of ``str`` columns (nulls stay null)."""
    table = frame_as_text(frame)
    return pd.DataFrame({name: pd.Series(table.column(name), dtype="str") for name in table.column_names})


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as UTF-8 CSV with a header, text formatted as above."""
    pa_csv.write_csv(frame_as_text(frame), str(path), pa_csv.WriteOptions(quoting_style="needed"))
