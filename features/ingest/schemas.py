"""Pandera schemas built from the table contracts, and their failures as per-row problems.

One builder serves every table: types, nullability, code lists, ranges, the unique key,
future dates, time order and references all come from ``features.contracts``. Validation
is lazy, so every failing cell is found in one pass; each failure case becomes a problem
row (``row``, ``column``, ``reason``) that ``rejects.py`` turns into a reject.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from features.contracts import LIST_SEPARATOR, Column, TableContract
from features.ingest.arrow import arrow_text
from features.ingest.parsing import problems_frame, warehouse_dtype
from features.ingest.reasons import (
    BAD_CODE,
    BAD_VALUE,
    FUTURE_DATE,
    MISSING_VALUE,
    TIME_ORDER,
    reference_reason,
)

_DTYPES = {
    "id": "str",
    "str": "str",
    "category": "str",
    "id_list": "str",
    "category_list": "str",
    "geometry": "str",
    "int": "Int64",
    "float": "float64",
    "bool": "boolean",
}
BUILTIN_REASONS = {"not_nullable": MISSING_VALUE}


def column_dtype(column: Column, timezone: str) -> object:
    """The pandas dtype ``column`` has after ``parsing.parse_table`` (timestamps in ``timezone``)."""
    return warehouse_dtype(timezone) if column.kind == "timestamp" else _DTYPES[column.kind]


def _all_items_in(allowed: Iterable[str]) -> Callable[[pd.Series], pd.Series]:
    """A check that every item of a ``|``-joined list is in ``allowed`` (judged once per
    distinct list: there are few)."""
    allowed = frozenset(allowed)

    def check(lists: pd.Series) -> pd.Series:
        good = [v for v in lists.dropna().unique() if set(v.split(LIST_SEPARATOR)) <= allowed]
        return lists.isin(good)

    return check


def _known(keys: pyarrow.Array) -> Callable[[pd.Series], pd.Series]:
    """A check that each value is one of ``keys``, looked up with Arrow's hash join (pandas'
    ``isin`` and ``get_indexer`` turn a million text cells into Python objects on every call)."""
    keys = keys.cast(pyarrow.large_string())

    def check(values: pd.Series) -> pd.Series:
        found = pc.is_in(arrow_text(values), value_set=keys)
        return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index)

    return check


def _column_checks(column: Column, as_of: pd.Timestamp, known: Mapping[str, pyarrow.Array]) -> list[pa.Check]:
    """The element-wise rules of one column; each check's ``error`` is its reject reason.

    """
    checks = []
    if column.codes:
        if column.kind == "category_list":
            checks.append(pa.Check(_all_items_in(column.codes), error=BAD_CODE))
        else:
            checks.append(pa.Check.isin(column.codes, error=BAD_CODE))
    if column.min_value is not None:
        checks.append(pa.Check.ge(column.min_value, error=BAD_VALUE))
    if column.max_value is not None:
        checks.append(pa.Check.le(column.max_value, error=BAD_VALUE))
    if column.kind == "timestamp" and not column.planned:
        checks.append(pa.Check.le(as_of, error=FUTURE_DATE))
    if column.references in known:
        keys = known[column.references]
        reason = reference_reason(column)
        if column.kind == "id_list":
            checks.append(pa.Check(_all_items_in(keys.to_pylist()), error=reason))
        else:
            checks.append(pa.Check(_known(keys), error=reason))
    return checks


def contract_schema(contract: TableContract, as_of: pd.Timestamp, known: Mapping[str, pyarrow.Array],
                    present: Sequence[str] | None = None) -> pa.DataFrameSchema:
    """The schema of ``contract``'s warehouse columns as of ``as_of``.

    ``known`` maps ``table.column`` to the keys already accepted there; references to a
    table that is not in ``known`` (absent from the source) are not checked. ``present``
    names the columns the source has (default: all); an optional column it lacks, and the
    time order involving it, are not part of the schema. Duplicate keys are not a schema
    rule: they are judged among the rows that pass it (``rejects.duplicate_problems``).
    """
    present = contract.warehouse_columns if present is None else list(present)
    timezone = str(as_of.tz)
    columns = {
        column.name: pa.Column(column_dtype(column, timezone), checks=_column_checks(column, as_of, known),
                               nullable=column.nullable)
        for column in contract.columns
        if column.in_warehouse and column.name in present
    }
    order_checks = [
        pa.Check(lambda frame, a=earlier, b=later: ~(frame[b] < frame[a]), error=TIME_ORDER)
        for earlier, later in contract.time_order
        if earlier in present and later in present
    ]
    return pa.DataFrameSchema(columns, checks=order_checks, strict=True, ordered=True, name=contract.name)


def schema_problems(frame: pd.DataFrame, contract: TableContract, as_of: pd.Timestamp,
                    known: Mapping[str, pyarrow.Array]) -> pd.DataFrame:
    """Every failing cell of ``frame`` (typed by ``parse_table``, indexed 0..n-1) as problem
    rows ``row``, ``column``, ``reason``.

    A time-order failure is reported on the later column of its pair. A failure that names
    no row (a wrong dtype, a missing column) is a bug in this package, never bad data: it
    raises.
    """
    schema = contract_schema(contract, as_of, known, list(frame.columns))
    try:
        schema.validate(frame, lazy=True, inplace=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return problems_frame([])
    if cases["index"].isna().any():
        summary = cases[cases["index"].isna()][["column", "check"]].drop_duplicates().to_string(index=False)
        raise RuntimeError(f"Schema of {contract.name!r} failed on whole columns, not rows:\n{summary}")
    by_column = cases[cases["schema_context"] == "Column"]
    reasons = by_column["check"].replace(BUILTIN_REASONS)
    parts = [pd.DataFrame({"row": by_column["index"].astype("int64"), "column": by_column["column"],
                           "reason": reasons})]
    by_frame = cases[cases["schema_context"] == "DataFrameSchema"].drop_duplicates(["check_number", "index"])
    orders = [(a, b) for a, b in contract.time_order if a in frame.columns and b in frame.columns]
    for number, failed in by_frame.groupby("check_number"):
        later = orders[int(number)][1]
        parts.append(pd.DataFrame({"row": failed["index"].astype("int64"), "column": later, "reason": TIME_ORDER}))
    return problems_frame(parts)
