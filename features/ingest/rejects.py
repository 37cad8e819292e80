"""Rejected rows: one per source row, with its most important reason, a readable detail
and the row itself as JSON — after privacy treatment, so rejects never hold raw PII.
"""

from __future__ import annotations

import json

import pandas as pd

from features.contracts import Column, TableContract
from features.ingest.privacy import pseudonymise, redact_free_text
from features.ingest.reasons import (
    BAD_CODE,
    BAD_DATE,
    BAD_VALUE,
    DUPLICATE,
    FUTURE_DATE,
    MISSING_VALUE,
    REJECT_REASONS,
    TIME_ORDER,
)

REJECT_COLUMNS = ("table", "source_row", "column", "reason", "detail", "raw")
_NOUNS = {"int": "whole number", "float": "number", "bool": "boolean (true/false, 是/否)"}


def first_problems(problems: pd.DataFrame, contract: TableContract) -> pd.DataFrame:
    """The one problem that names each failing row: first by ``REJECT_REASONS``, then by
    column order. Sorted by row."""
    reason_rank = problems["reason"].map({r: i for i, r in enumerate(REJECT_REASONS)})
    column_rank = problems["column"].map({c: i for i, c in enumerate(contract.column_names)})
    if reason_rank.isna().any():
        raise ValueError(f"unknown reject reasons {sorted(set(problems['reason'][reason_rank.isna()]))}")
    ranked = problems.assign(_r=reason_rank, _c=column_rank).sort_values(["row", "_r", "_c"], kind="stable")
    return ranked.drop_duplicates("row")[["row", "column", "reason"]].reset_index(drop=True)


def private_cells(texts: pd.DataFrame, contract: TableContract, hmac_key: bytes) -> pd.DataFrame:
    """Source cells as they may be shown: identifiers pseudonymised, every other text with
    ID-card and phone numbers redacted (names never get this far)."""
    return texts.apply(lambda cells: pseudonymise(cells, hmac_key) if contract.column(cells.name).role == "identifier"
                       else redact_free_text(cells)[0])


def describe(reason: str, column: Column, row: dict[str, str | None], contract: TableContract,
             as_of: pd.Timestamp) -> str:
    """A sentence that says what is wrong with ``column`` of ``row`` and, where it helps,
    what to do about it."""
    value = row[column.name]
    if reason == BAD_DATE:
        return (f"{value!r} is not a date and time: write ISO 8601 (2024-03-05 14:23:00+08:00) "
                f"or add its format to date_formats in the mapping file")
    if reason == BAD_VALUE:
        bounds = [f"≥ {column.min_value:g}"] if column.min_value is not None else []
        bounds += [f"≤ {column.max_value:g}"] if column.max_value is not None else []
        return f"{value!r} is not a {_NOUNS.get(column.kind, 'value')}{' ' if bounds else ''}{' and '.join(bounds)}"
    if reason == BAD_CODE:
        return (f"{value!r} is not a code of {column.name} ({', '.join(column.codes)}); translate the "
                f"platform's codes under tables.{contract.name}.codes.{column.name} in the mapping file")
    if reason == MISSING_VALUE:
        return f"{column.name} is empty but required"
    if reason == DUPLICATE:
        return f"{contract.key} {value!r} already appeared in an earlier row, which was kept"
    if reason == FUTURE_DATE:
        return f"{value} is after the as-of date {as_of.isoformat()}"
    if reason == TIME_ORDER:
        earlier = next(a for a, b in contract.time_order if b == column.name)
        return f"{column.name} {value} is before {earlier} {row[earlier]}"
    return f"{value!r} is not among the accepted keys of {column.references} (absent, or rejected itself)"


def reject_rows(texts: pd.DataFrame, first: pd.DataFrame, contract: TableContract, source_names: dict[str, str],
                hmac_key: bytes, as_of: pd.Timestamp) -> pd.DataFrame:
    """The rejects table of one source table.

    ``texts`` holds the rejected rows' source cells as text under contract names, one row
    per row of ``first`` (the problem that names each rejected row). ``raw`` is the row as
    JSON under the source's own column names; ``source_row`` counts data rows from 1.
    """
    shown = private_cells(texts, contract, hmac_key).astype(object)
    columns = list(shown.columns)
    cells = zip(*(shown[c].where(shown[c].notna(), None).tolist() for c in columns))
    details, raws = [], []
    for values, column, reason in zip(cells, first["column"], first["reason"]):
        row = dict(zip(columns, values))
        details.append(describe(reason, contract.column(column), row, contract, as_of))
        raws.append(json.dumps({source_names[k]: v for k, v in row.items() if k in source_names}, ensure_ascii=False))
    return pd.DataFrame({
        "table": pd.Series(contract.name, index=first.index, dtype="str"),
        "source_row": (first["row"] + 1).astype("int64"),
        "column": first["column"].astype("str"),
        "reason": first["reason"].astype("str"),
        "detail": pd.Series(details, index=first.index, dtype="str"),
        "raw": pd.Series(raws, index=first.index, dtype="str"),
    }, columns=list(REJECT_COLUMNS))
