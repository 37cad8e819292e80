"""Rejected rows: one per source row, with its most important reason, a sentence that says
what is wrong and what to do, and the row itself as JSON after privacy treatment.

Everything here is built column-wise (pandas and Arrow compute), never row by row in Python:
a source with millions of bad rows costs seconds. A ``detail`` names the column and, for a
duplicate, the row that was kept — never a cell's content; the cells are in ``raw``, where
identifiers are pseudonymised and every other text except ids is redacted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contracts import TableContract
from features.ingest.arrow import arrow_text
from features.ingest.columns import Treatment
from features.ingest.privacy import Pseudonymiser, Redactor, redact_free_text
from features.ingest.readers import MalformedLines
from features.ingest.reasons import (
    BAD_CODE,
    BAD_DATE,
    BAD_VALUE,
    DUPLICATE,
    FUTURE_DATE,
    MALFORMED_LINE,
    MISSING_VALUE,
    REJECT_REASONS,
    TIME_ORDER,
    UNPLACED,
)

REJECT_COLUMNS = ("table", "source_row", "column", "reason", "detail", "raw")
_NOUNS = {"int": "whole number", "float": "number", "bool": "boolean (true/false, 是/否)", "geometry": "polygon (WKT or GeoJSON)"}
_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def first_problems(problems: pd.DataFrame, contract: TableContract) -> pd.DataFrame:
    """The one problem that names each failing row: first by ``REJECT_REASONS``, then by
    column order. Sorted by row."""
    reason_rank = _rank(problems["reason"], REJECT_REASONS)
    column_rank = _rank(problems["column"], contract.column_names)
    if (reason_rank < 0).any():
        raise ValueError(f"unknown reject reasons {sorted(set(problems['reason'][reason_rank < 0]))}")
    ranked = problems.assign(_r=reason_rank, _c=column_rank).sort_values(["row", "_r", "_c"], kind="stable")
    return ranked.drop_duplicates("row")[["row", "column", "reason"]].reset_index(drop=True)


def _rank(values: pd.Series, order: Sequence[str]) -> np.ndarray:
    """Each value's position in ``order`` (-1 when absent), by Arrow's hash lookup."""
    positions = pc.index_in(arrow_text(values.astype("str")), value_set=pa.array(order, type=pa.large_string()))
    return pc.fill_null(positions, -1).to_numpy()


def duplicate_problems(keys: pd.Series, rejected: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows whose key a kept row already has, judged among the rows not ``rejected`` for
    another reason (so the first *valid* copy is kept, whatever came before it), and for
    each the position of the row that was kept."""
    valid = np.ones(len(keys), dtype=bool)
    valid[rejected] = False
    positions = np.flatnonzero(valid)
    candidates = keys.iloc[positions].reset_index(drop=True)
    later = candidates.duplicated(keep="first").to_numpy()
    firsts = pd.Index(candidates[~later])
    kept = positions[~later][firsts.get_indexer(candidates[later])]
    rows = positions[later]
    problems = pd.DataFrame({"row": rows, "column": keys.name, "reason": DUPLICATE})
    return problems, kept


def describe(reason: str, name: str, contract: TableContract, as_of: pd.Timestamp) -> str:
    """What is wrong with column ``name`` for ``reason`` and, where it helps, what to do — the
    same sentence for every row with this reason and column, and no cell content."""
    column = contract.column(name)
    if reason == BAD_DATE:
        return (f"{name} is not a date and time: write ISO 8601 (2024-03-05 14:23:00+08:00) "
                f"or add its format to date_formats in the mapping file")
    if reason == BAD_VALUE:
        bounds = [f"≥ {column.min_value:g}"] if column.min_value is not None else []
        bounds += [f"≤ {column.max_value:g}"] if column.max_value is not None else []
        return f"{name} is not a {_NOUNS.get(column.kind, 'value')}{' ' if bounds else ''}{' and '.join(bounds)}"
    if reason == BAD_CODE:
        return (f"{name} is not one of its codes ({', '.join(column.codes)}); translate the platform's codes "
                f"under tables.{contract.name}.codes.{name} in the mapping file")
    if reason == UNPLACED:
        return (f"{name}: the row's coordinates are missing, unreadable, or in no region (outside every "
                f"boundary, or farther than the allowed distance from every region centre)")
    if reason == MISSING_VALUE:
        return f"{name} is empty but required"
    if reason == FUTURE_DATE:
        return f"{name} is after the as-of date {as_of.isoformat()}"
    if reason == TIME_ORDER:
        earlier = next(a for a, b in contract.time_order if b == name)
        return f"{name} is before {earlier}"
    if reason == DUPLICATE:
        return f"{name} already appeared in source row "
    return f"{name} is not among the accepted keys of {column.references} (absent, or rejected itself)"


def shown_cells(texts: pd.DataFrame, shown: Mapping[str, Treatment], pseudonymise: Pseudonymiser,
                redactor: Redactor) -> dict[str, pd.Series]:
    """Source cells as they may be shown, by source column: identifiers pseudonymised, ids as
    they are (so a rejected row can be found in the source), any other text redacted."""
    out = {}
    for source, treatment in shown.items():
        if treatment == "name" or source not in texts.columns:
            continue
        cells = texts[source]
        if treatment == "identifier":
            cells = pseudonymise(cells)
        elif treatment == "text":
            cells = redact_free_text(cells, redactor)[0]
        out[source] = cells
    return out


def json_objects(columns: Mapping[str, pd.Series], length: int) -> pa.Array:
    """One JSON object per row (``{"column": "text" or null, …}``), built with Arrow compute."""
    parts: list[object] = []
    for i, (name, cells) in enumerate(columns.items()):
        text = pa.array(cells, type=pa.large_string(), from_pandas=True)
        if pc.any(pc.match_substring_regex(text, '[\\\\"\\x00-\\x1f]')).as_py():
            for old, new in _JSON_ESCAPES:
                text = pc.replace_substring(text, old, new)
            text = pc.replace_substring_regex(text, "[\\x00-\\x1f]", " ")
        quoted = pc.fill_null(pc.binary_join_element_wise(_large('"'), text, _large('"'), _large("")), _large("null"))
        parts += [_large(("{" if i == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": "), quoted]
    if not parts:
        return pa.array(["{}"] * length, type=pa.large_string())
    return pc.binary_join_element_wise(*parts, _large("}"), _large(""))


def _large(text: str) -> pa.Scalar:
    """A text constant of the type Arrow gives pandas' string columns (large_string)."""
    return pa.scalar(text, type=pa.large_string())


def reject_rows(first: pd.DataFrame, kept: pd.Series, source_rows: np.ndarray, shown: Mapping[str, pd.Series],
                contract: TableContract, as_of: pd.Timestamp) -> pd.DataFrame:
    """The rejects of one table's well-formed rows.

    ``first`` names each rejected row's problem (``row`` is its position in the frame read);
    ``kept`` maps a duplicate's position to the source row that was kept (in this batch or an
    earlier one); ``source_rows`` gives each position's source row; ``shown`` holds the rejected
    rows' cells (``shown_cells``), in the order of ``first``.
    """
    pairs = pc.dictionary_encode(pc.binary_join_element_wise(arrow_text(first["reason"].astype("str")),
                                                             arrow_text(first["column"].astype("str")), _large(" ")))
    sentences = [describe(*pair.split(" "), contract, as_of) for pair in pairs.dictionary.to_pylist()]
    detail = pa.array(sentences, type=pa.large_string()).take(pairs.indices).to_pandas().set_axis(first.index)
    duplicate = (first["reason"] == DUPLICATE).to_numpy()
    if duplicate.any():
        kept_rows = kept.loc[first["row"][duplicate]].to_numpy()
        detail[duplicate] = detail[duplicate] + pd.Series(kept_rows, index=detail.index[duplicate]).astype("str") \
            + ", which was kept"
    raw = json_objects({k: v.reset_index(drop=True) for k, v in shown.items()}, len(first))
    return pd.DataFrame({
        "table": pd.Series(contract.name, index=first.index, dtype="str"),
        "source_row": source_rows[first["row"].to_numpy()].astype("int64"),
        "column": first["column"].astype("str"),
        "reason": first["reason"].astype("str"),
        "detail": detail,
        "raw": raw.to_pandas().set_axis(first.index),
    }, columns=list(REJECT_COLUMNS))


def malformed_rejects(malformed: MalformedLines, contract: TableContract, origin: str) -> pd.DataFrame:
    """The rejects of a text file's malformed lines: where they are and how many cells they
    have; ``raw`` is empty, since their cells cannot be told apart (nor safely shown)."""
    line = pd.Series(malformed.records + 1).astype("str")
    cells = pd.Series(malformed.cells).astype("str")
    detail = ("line " + line + f" of {origin} has " + cells + f" cells; the header has {malformed.expected}")
    return pd.DataFrame({
        "table": pd.Series(contract.name, index=line.index, dtype="str"),
        "source_row": malformed.records.astype("int64"),
        "column": pd.Series(None, index=line.index, dtype="str"),
        "reason": pd.Series(MALFORMED_LINE, index=line.index, dtype="str"),
        "detail": detail.astype("str"),
        "raw": pd.Series(None, index=line.index, dtype="str"),
    }, columns=list(REJECT_COLUMNS))
