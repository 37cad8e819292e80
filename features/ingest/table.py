"""One source table → its accepted warehouse rows and its rejects.

map columns → parse cells → validate (pandera) → pick each failing row's reason → treat
personal data → type for the warehouse. Every row read ends up in exactly one of the two
outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contracts import TableContract
from features.ingest.mapping import SourceMapping, map_columns
from features.ingest.parsing import ParseOptions, as_text, parse_table
from features.ingest.privacy import pseudonymise, redact_free_text
from features.ingest.readers import TableSource
from features.ingest.reasons import REJECT_REASONS
from features.ingest.rejects import first_problems, reject_rows
from features.ingest.report import TableReport
from features.ingest.schemas import schema_problems


@dataclass(frozen=True)
class TableResult:
    """What ingest made of one table."""

    accepted: pd.DataFrame
    """Warehouse rows: exactly ``contract.warehouse_columns``, typed as features/warehouse.py says."""
    rejects: pd.DataFrame
    report: TableReport


def ingest_table(source: TableSource, contract: TableContract, mapping: SourceMapping,
                 known: Mapping[str, pd.Index], as_of: pd.Timestamp, hmac_key: bytes, timezone: str) -> TableResult:
    """Read and validate one table of ``source`` against its contract.

    ``known`` holds the accepted keys of the tables read before (``regions.village_id`` …),
    so a row that refers to a missing or rejected key is rejected too. The source frame is
    let go as soon as the rejected rows' cells are taken from it, and the typed frame column
    by column as accepted rows are copied out: the peak is about twice the table.
    """
    raw = source.read(contract.name)
    origin = raw.origin
    table_mapping = mapping.table(contract.name)
    cells, columns = map_columns(raw.frame.reset_index(drop=True), contract, table_mapping, origin)
    del raw
    options = ParseOptions(mapping.date_formats_for(contract.name), timezone, mapping.null_values, table_mapping.codes)
    typed, unreadable = parse_table(cells, contract, options)
    problems = pd.concat([unreadable, schema_problems(typed, contract, as_of, known)], ignore_index=True)
    first = first_problems(problems, contract)
    texts = cells.iloc[first["row"].to_numpy()].apply(as_text, null_values=mapping.null_values)
    del cells

    read = len(typed)
    keep = np.ones(read, dtype=bool)
    keep[first["row"].to_numpy()] = False
    accepted, redactions = _for_warehouse(typed, keep, contract, hmac_key)
    rejects = reject_rows(texts.reset_index(drop=True), first, contract, columns.source_names, hmac_key, as_of)
    report = TableReport(
        table=contract.name,
        origin=origin,
        read=read,
        accepted=len(accepted),
        rejected_by_reason=_count_by_reason(first["reason"]),
        redactions=redactions,
        extra_columns=columns.extra_columns,
        missing_optional_columns=columns.missing_optional_columns,
    )
    return TableResult(accepted, rejects, report)


def _count_by_reason(reasons: pd.Series) -> dict[str, int]:
    """Rejects per reason, most important reason first."""
    counts = reasons.value_counts()
    return {r: int(counts[r]) for r in REJECT_REASONS if r in counts.index}


def _for_warehouse(typed: pd.DataFrame, keep: np.ndarray, contract: TableContract,
                   hmac_key: bytes) -> tuple[pd.DataFrame, int]:
    """The kept rows with identifiers pseudonymised and free text redacted, non-nullable
    integers and booleans as plain ``int64``/``bool``; and the number of redactions.

    Consumes ``typed``: each column is dropped from it once copied.
    """
    out = {}
    redactions = 0
    for name in list(typed.columns):
        column = contract.column(name)
        values = typed.pop(name)[keep].reset_index(drop=True)
        if column.role == "identifier":
            values = pseudonymise(values, hmac_key)
        elif column.role == "free_text":
            values, n = redact_free_text(values)
            redactions += n
        if not column.nullable and column.kind in ("int", "bool"):
            values = values.astype("int64" if column.kind == "int" else "bool")
        out[name] = values
    return pd.DataFrame(out), redactions
