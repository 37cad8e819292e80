"""Source cells → typed columns, with the cells that could not be read.

Sources differ: a CSV dump is all text, Parquet and SQL carry types, Excel mixes both.
Each column is brought to its warehouse type (``features/warehouse.py``) once, vectorised;
a cell that cannot be read becomes null and is reported (``bad_date``, ``bad_value``) so
that schema validation (``schemas.py``) works on clean types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from features.contracts import LIST_SEPARATOR, TIMEZONE, Column, TableContract
from features.ingest.arrow import arrow_text
from features.ingest.mapping import translate_codes
from features.ingest.reasons import BAD_DATE, BAD_VALUE

TIME_UNIT = "us"
"""Resolution of warehouse timestamps."""


def warehouse_dtype(timezone: str) -> pd.DatetimeTZDtype:
    """The dtype of warehouse timestamps: aware, in the city's zone, microseconds."""
    return pd.DatetimeTZDtype(unit=TIME_UNIT, tz=timezone)


TRUE_TOKENS = ("true", "t", "yes", "y", "1", "是")
FALSE_TOKENS = ("false", "f", "no", "n", "0", "否")
_OFFSET = r".*[0-9]:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]+)?)? ?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)"
"""Ends in a time of day and a UTC offset (``14:23:00+08:00``, ``14:23Z``): an aware timestamp.
(Patterns here avoid backslash classes and ``$`` so that pyarrow, not Python, runs them.)"""
_EXPORT_TIME = "^[12][0-9]{3}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]$"
"""The export's own timestamps (``2024-03-05 14:23:00+08:00``), read by ``export_timestamps``."""
_WALL_FORMAT = "%Y-%m-%d %H:%M:%S"
_SPACES = " \t\r\n\u3000\xa0"
"""Spaces, tabs, line breaks, ideographic and no-break spaces: a cell that starts or ends with
one is stripped (of every kind of white space)."""
_NUMBER = r"[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?"


@dataclass(frozen=True)
class ParseOptions:
    """How to read one table's cells."""

    date_formats: tuple[str, ...]
    """strptime formats tried, in order, for timestamps that are not ISO 8601."""
    timezone: str
    """Zone of timestamps written without an offset."""
    null_values: tuple[str, ...] = ()
    """Cell texts that mean 'empty' besides the empty string."""
    codes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Per column, source code → contract code."""
    warehouse_timezone: str = TIMEZONE
    """Zone the warehouse stores timestamps in (the city's zone)."""


def as_text(values: pd.Series, null_values: tuple[str, ...] = ()) -> pd.Series:
    """Cells as stripped text (``str`` dtype), empty ones null.

    Whole floats print without ``.0`` (ids read from Excel or SQL as numbers), booleans as
    ``true``/``false``. Text that needs no change is not copied: a table of tens of millions
    of rows must fit in memory twice at most. Each test is one Arrow kernel over the column
    (surrounding spaces: one trim and compare, not a pass per kind of space).
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        text = values.map({True: "true", False: "false"}, na_action="ignore").astype("str")
    elif pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & (values % 1 == 0) & (values.abs() < 2**53)
        text = values.astype("str")
        text = text.mask(whole, values[whole].astype("int64").astype("str"))
    else:
        text = values.astype("str")
        cells = arrow_text(text)
        if pc.any(pc.not_equal(pc.utf8_trim(cells, _SPACES), cells)).as_py():
            text = text.str.strip()
    cells = arrow_text(text)
    empty = pc.equal(cells, "")
    if null_values:
        empty = pc.or_(empty, pc.is_in(cells, value_set=pa.array(null_values, type=cells.type)))
    if not pc.any(empty).as_py():
        return text
    return text.mask(pc.fill_null(empty, False).to_numpy(zero_copy_only=False))


def parse_timestamps(values: pd.Series, options: ParseOptions) -> tuple[pd.Series, pd.Series]:
    """Timestamps in the warehouse zone, and the mask of cells that are not timestamps.

    Accepted: typed timestamps (naive ones are in ``options.timezone``), ISO 8601 text with
    or without an offset, and text in one of ``options.date_formats``. Text in the export's
    own format (``2024-03-05 14:23:00+08:00``) is read by a fast path first; only the other
    cells go through the general parser, which gives the same instants for them.
    """
    zone = options.warehouse_timezone
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(zone).dt.as_unit(TIME_UNIT), pd.Series(False, index=values.index)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = _localise(values, options.timezone, zone)
        return parsed, parsed.isna() & values.notna()
    text = as_text(values, options.null_values)
    parsed = export_timestamps(arrow_text(text)).to_pandas().set_axis(text.index).dt.tz_convert(zone)
    rest = parsed.isna() & text.notna()
    if rest.any():
        parsed[rest] = general_timestamps(text[rest], options)
    return parsed, parsed.isna() & text.notna()


def export_timestamps(cells: pa.Array) -> pa.Array:
    """Instants (``timestamp[us, UTC]``) of the cells written as local time to the second with
    a UTC offset, ``YYYY-MM-DD HH:MM:SS±HH:MM``; null for every other cell, and for an
    impossible time of that shape (02-30, 24:00), which the general parser then refuses.

    The offsets (a table has few) are read once each.
    """
    shaped = pc.fill_null(pc.match_substring_regex(cells, _EXPORT_TIME), False)
    wall_text = pc.if_else(shaped, pc.utf8_slice_codeunits(cells, 0, 19), None)
    try:
        wall = pc.cast(wall_text, pa.timestamp("s"))
    except pa.ArrowInvalid:
        wall = _possible_wall_times(wall_text)
    offsets = pc.dictionary_encode(pc.if_else(pc.is_valid(wall), pc.utf8_slice_codeunits(cells, 19, 25), None))
    minutes = [(-1 if o[0] == "-" else 1) * (int(o[1:3]) * 60 + int(o[4:6])) for o in offsets.dictionary.to_pylist()]
    shift = pa.array(np.array(minutes, dtype=np.int64) * 60_000_000, type=pa.duration(TIME_UNIT))
    utc = pc.subtract(pc.cast(wall, pa.timestamp(TIME_UNIT)), shift.take(offsets.indices))
    return pc.cast(utc, pa.timestamp(TIME_UNIT, tz="UTC"))


def _possible_wall_times(wall_text: pa.Array) -> pa.Array:
    """``YYYY-MM-DD HH:MM:SS`` cells as wall-clock times, null where the time does not exist.

    Arrow's strict cast refuses a whole column for one impossible cell; ``strptime`` rolls it
    over instead (02-30 becomes 03-01, second 60 the next minute), so a cell counts only when
    every field of its time is the one written."""
    wall = pc.strptime(wall_text, format=_WALL_FORMAT, unit="s", error_is_null=True)
    rolled = pa.array(np.zeros(len(wall), dtype=bool))
    for part, start in ((pc.month, 5), (pc.day, 8), (pc.hour, 11), (pc.minute, 14), (pc.second, 17)):
        written = pc.cast(pc.utf8_slice_codeunits(wall_text, start, start + 2), pa.int64())
        rolled = pc.or_(rolled, pc.not_equal(part(wall), written))
    return pc.if_else(rolled, None, wall)


def general_timestamps(text: pd.Series, options: ParseOptions) -> pd.Series:
    """Non-empty text cells as timestamps in the warehouse zone by the general rules (NaT where
    none reads them): ISO 8601 with an offset, without one (in ``options.timezone``), then
    ``options.date_formats`` in order."""
    zone = options.warehouse_timezone
    aware = text.str.fullmatch(_OFFSET, na=False)
    naive = ~aware & text.notna()
    parsed = pd.Series(pd.NaT, index=text.index, dtype=warehouse_dtype(zone))
    parsed[aware] = _to_utc(text[aware], "ISO8601").dt.tz_convert(zone)
    parsed[naive] = _localise(_to_utc(text[naive], "ISO8601").dt.tz_localize(None), options.timezone, zone)
    for fmt in options.date_formats:
        todo = parsed.isna() & text.notna()
        if not todo.any():
            break
        if "%z" in fmt:
            parsed[todo] = _to_utc(text[todo], fmt).dt.tz_convert(zone)
        else:
            wall = pd.to_datetime(text[todo], format=fmt, errors="coerce")
            parsed[todo] = _localise(wall, options.timezone, zone)
    return parsed


def _to_utc(text: pd.Series, fmt: str) -> pd.Series:
    """Text parsed with ``fmt``; times without an offset are read as UTC wall clocks."""
    return pd.to_datetime(text, format=fmt, utc=True, errors="coerce").dt.as_unit(TIME_UNIT)


def _localise(wall: pd.Series, timezone: str, warehouse_timezone: str) -> pd.Series:
    """Wall-clock times in ``timezone``, as the zone's rules resolve daylight-saving changes.

    A time in the spring gap (02:30 on the night clocks jump from 02:00 to 03:00) does not exist:
    it becomes the first instant after the gap, 03:00 (pandas' ``shift_forward``). A time in the
    autumn repeat (02:30 happens twice) is read as its first occurrence, still in summer time:
    the same rule every run, so re-ingests are identical.
    """
    first_occurrence = np.ones(len(wall), dtype=bool)
    local = wall.dt.as_unit(TIME_UNIT).dt.tz_localize(timezone, ambiguous=first_occurrence, nonexistent="shift_forward")
    return local.dt.tz_convert(warehouse_timezone)


def parse_numbers(values: pd.Series, column: Column, options: ParseOptions) -> tuple[pd.Series, pd.Series]:
    """Numbers as ``float64`` (``Int64`` for int columns), and the mask of cells that are not
    finite numbers (or not whole, for int columns)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        present = values.notna()
        numbers = values.astype("float64")
    else:
        text = as_text(values, options.null_values)
        present = text.notna()
        numbers = text.where(text.str.fullmatch(_NUMBER, na=False)).astype("float64")
    bad = present & (numbers.isna() | ~np.isfinite(numbers.fillna(0.0).to_numpy()))
    if column.kind == "int":
        bad |= numbers.notna() & (numbers % 1 != 0)
        return numbers.mask(bad).round().astype("Int64"), bad
    return numbers.mask(bad), bad


def parse_bools(values: pd.Series, options: ParseOptions) -> tuple[pd.Series, pd.Series]:
    """Booleans (nullable ``boolean``) from true/false, yes/no, 1/0, 是/否 in any case."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean"), pd.Series(False, index=values.index)
    text = as_text(values, options.null_values).str.lower()
    parsed = pd.Series(pd.NA, index=text.index, dtype="boolean")
    parsed[text.isin(TRUE_TOKENS)] = True
    parsed[text.isin(FALSE_TOKENS)] = False
    return parsed, parsed.isna() & text.notna()


def parse_geometries(values: pd.Series, options: ParseOptions) -> tuple[pd.Series, pd.Series]:
    """Polygons written as WKT or GeoJSON, as WKT text; the mask of cells that are neither
    (or not a valid polygon)."""
    text = as_text(values, options.null_values)
    present = text.notna().to_numpy()
    cells = text.to_numpy(dtype=object, na_value=None)
    geojson = present & text.str.startswith("{", na=False).to_numpy()
    shapes = np.full(len(text), None, dtype=object)
    shapes[present & ~geojson] = shapely.from_wkt(cells[present & ~geojson], on_invalid="ignore")
    if geojson.any():
        shapes[geojson] = shapely.from_geojson(cells[geojson], on_invalid="ignore")
    polygon = shapely.get_type_id(shapes) >= 0
    polygon[polygon] &= np.isin(shapely.get_type_id(shapes[polygon]), (3, 6)) & shapely.is_valid(shapes[polygon])
    wkt = np.full(len(text), None, dtype=object)
    wkt[polygon] = shapely.to_wkt(shapes[polygon], rounding_precision=-1)
    return pd.Series(wkt, index=text.index, dtype="str"), pd.Series(present & ~polygon, index=text.index)


def parse_column(values: pd.Series, column: Column, options: ParseOptions) -> tuple[pd.Series, pd.Series, str]:
    """One column typed for validation, the mask of unreadable cells, and their reason."""
    codes = options.codes.get(column.name, {})
    if codes:
        values = translate_codes(as_text(values, options.null_values), codes, column.kind.endswith("_list"))
    if column.kind == "timestamp":
        return *parse_timestamps(values, options), BAD_DATE
    if column.kind in ("int", "float"):
        return *parse_numbers(values, column, options), BAD_VALUE
    if column.kind == "bool":
        return *parse_bools(values, options), BAD_VALUE
    if column.kind == "geometry":
        return *parse_geometries(values, options), BAD_VALUE
    text = as_text(values, options.null_values)
    if column.kind.endswith("_list"):
        text = text.str.replace(r" *[|] *", LIST_SEPARATOR, regex=True)
    return text, pd.Series(False, index=values.index), BAD_VALUE


def parse_table(frame: pd.DataFrame, contract: TableContract, options: ParseOptions,
                check: Callable[[pd.DataFrame], None] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The typed table (same columns and index as ``frame``) and its unreadable cells as
    rows (``row``: position, ``column``, ``reason``). ``check`` sees each column's unreadable
    cells as soon as the column is parsed, so that it can stop a hopeless table early."""
    typed = {}
    problems = []
    for name in frame.columns:
        column = contract.column(name)
        typed[name], bad, reason = parse_column(frame[name], column, options)
        rows = np.flatnonzero(bad.to_numpy())
        if len(rows):
            problems.append(pd.DataFrame({"row": rows, "column": name, "reason": reason}))
            if check is not None:
                check(problems[-1])
    return pd.DataFrame(typed, index=frame.index), problems_frame(problems)


def problems_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenated problem rows (``row``, ``column``, ``reason``), empty when there are none."""
    empty = pd.DataFrame({"row": pd.Series(dtype="int64"), "column": pd.Series(dtype="str"),
                          "reason": pd.Series(dtype="str")})
    return pd.concat([empty, *parts], ignore_index=True)
