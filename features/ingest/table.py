"""One source table → its accepted warehouse rows and its rejects.

map columns (and place events by coordinates) → parse cells → validate (pandera) → pick each
failing row's reason, then duplicates among the rows left → treat personal data → type for the
warehouse. Every row read, malformed lines included, ends up in exactly one of the two outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contracts import TableContract
from features.ingest.columns import map_columns
from features.ingest.mapping import Coordinates, SourceMapping
from features.ingest.parsing import ParseOptions, as_text, parse_table, problems_frame
from features.ingest.privacy import Redactor, pseudonymise, redact_free_text
from features.ingest.readers import TableSource
from features.ingest.reasons import REJECT_REASONS, UNPLACED
from features.ingest.regions import RegionLocator
from features.ingest.rejects import (
    duplicate_problems,
    first_problems,
    malformed_rejects,
    reject_rows,
    shown_cells,
)
from features.ingest.report import TableReport
from features.ingest.schemas import schema_problems
from fengqiao.errors import InputDataError


@dataclass(frozen=True)
class TableOptions:
    """What every table of one run is judged by."""

    as_of: pd.Timestamp
    """Recorded times after this are future dates; its zone is the warehouse's (the city's)."""
    timezone: str
    """Zone of naive timestamps unless the table's mapping names another."""
    pseudonym_key: Callable[[], bytes]
    """Gives the HMAC key; called only for a table that holds personal identifiers."""
    redactor: Redactor
    max_column_reject_share: float = 0.5
    """A column rejecting more than this share of a table's rows stops the run (a mapping mistake)."""
    min_rows_for_share: int = 1000
    """Tables with fewer rows are never stopped by the share (a few bad rows are just bad rows)."""
    max_distance_km: float = 5.0
    """Farthest region centre an event located by coordinates may be assigned to."""


TableWriter = Callable[[str, pd.DataFrame], None]
"""Takes ``("accepted", rows)`` and then ``("rejects", rows)`` of a table, e.g. to stage them."""


def ingest_table(source: TableSource, contract: TableContract, mapping: SourceMapping,
                 known: Mapping[str, pd.Index], options: TableOptions, write: TableWriter,
                 regions: RegionLocator | None = None) -> TableReport:
    """Read and validate one table of ``source`` against its contract; hand its accepted
    rows (the contract's warehouse columns that the source has, typed as features/warehouse.py
    says) and then its rejects to ``write``, and return its report.

    ``known`` holds the accepted keys of the tables read before (``regions.village_id`` …),
    so a row that refers to a missing or rejected key is rejected too; ``regions`` places
    events that the mapping locates by coordinates. Raises InputDataError when a column
    rejects more than ``options.max_column_reject_share`` of the rows. The accepted rows are
    written and let go before the rejects are built, so that the two never fill memory together.
    """
    raw = source.read(contract.name)
    origin, malformed = raw.origin, raw.malformed
    source_rows = raw.source_rows
    frame = raw.frame.reset_index(drop=True)
    del raw
    table_mapping = mapping.table(contract.name)
    cells, columns = map_columns(frame, contract, table_mapping, origin, mapping.null_values)
    placement = problems_frame([])
    if table_mapping.coordinates is not None:
        cells, placement = _place(frame, cells, contract, table_mapping.coordinates, regions, options, origin)
    options_for_table = ParseOptions(mapping.date_formats_for(contract.name),
                                     table_mapping.timezone or options.timezone, mapping.null_values,
                                     table_mapping.codes, warehouse_timezone=str(options.as_of.tz))
    read = len(cells)
    typed, unreadable = parse_table(cells, contract, options_for_table,
                                    lambda problems: _check_share(problems, read, contract, origin, options))
    del cells
    problems = pd.concat([unreadable, placement, schema_problems(typed, contract, options.as_of, known)],
                         ignore_index=True)
    _check_share(problems, read, contract, origin, options)
    first = first_problems(problems, contract)
    duplicates, kept = duplicate_problems(typed[contract.key], first["row"].to_numpy())
    first = pd.concat([first, duplicates], ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
    rejected = first["row"].to_numpy()
    texts = pd.DataFrame({c: as_text(frame[c].iloc[rejected], mapping.null_values)
                          for c in columns.shown if c in frame.columns}, index=frame.index[rejected])
    del frame

    keep = np.ones(read, dtype=bool)
    keep[first["row"].to_numpy()] = False
    accepted, redactions = _for_warehouse(typed, keep, contract, options)
    n_accepted = len(accepted)
    write("accepted", accepted)
    del accepted, typed
    shown = shown_cells(texts, columns.shown, options.pseudonym_key, options.redactor)
    del texts
    rejects = reject_rows(first, pd.Series(kept, index=duplicates["row"].to_numpy()), source_rows, shown,
                          contract, options.as_of)
    if malformed is not None and len(malformed.records):
        rejects = pd.concat([rejects, malformed_rejects(malformed, contract, origin)], ignore_index=True)
        rejects = rejects.sort_values("source_row", kind="stable").reset_index(drop=True)
    write("rejects", rejects)
    return TableReport(
        table=contract.name,
        origin=origin,
        read=read + (0 if malformed is None else len(malformed.records)),
        accepted=n_accepted,
        rejected_by_reason=_count_by_reason(rejects["reason"]),
        redactions=redactions,
        extra_columns=columns.extra_columns,
        missing_optional_columns=columns.missing_optional_columns,
    )


def _place(frame: pd.DataFrame, cells: pd.DataFrame, contract: TableContract, coordinates: Coordinates,
           regions: RegionLocator | None, options: TableOptions, origin: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``cells`` with ``village_id`` assigned from the source's coordinates, and the rows that
    could not be placed as ``unplaced`` problems."""
    if regions is None:
        raise InputDataError(f"Table {contract.name!r} ({origin}) is located by coordinates, but no region was "
                             f"accepted to place its rows in.")
    lat = pd.to_numeric(as_text(frame[coordinates.lat]), errors="coerce").to_numpy(float)
    lon = pd.to_numeric(as_text(frame[coordinates.lon]), errors="coerce").to_numpy(float)
    ids = regions.assign(lat, lon, coordinates.max_distance_km or options.max_distance_km)
    order = contract.warehouse_columns
    placed = cells.assign(village_id=pd.Series(ids, index=cells.index, dtype="str"))
    placed = placed[[c for c in order if c in placed.columns]]
    rows = np.flatnonzero(pd.isna(ids))
    return placed, pd.DataFrame({"row": rows, "column": "village_id", "reason": UNPLACED})


def _check_share(problems: pd.DataFrame, read: int, contract: TableContract, origin: str,
                 options: TableOptions) -> None:
    """Stop when one column rejects more than the allowed share of the rows: that is a mapping
    mistake (a date format, a code list, the wrong column), and its rejects would be as large
    as the table. The message names table, column, share and reason — no cell."""
    if read < options.min_rows_for_share or problems.empty:
        return
    per_column = problems.drop_duplicates(["row", "column"]).groupby("column")["row"].count()
    worst = per_column.idxmax()
    share = per_column[worst] / read
    if share <= options.max_column_reject_share:
        return
    reasons = problems.loc[problems["column"] == worst, "reason"].value_counts()
    raise InputDataError(
        f"Table {contract.name!r} ({origin}): column {worst!r} fails in {share:.0%} of {read:,} rows "
        f"({', '.join(f'{r} {n:,}' for r, n in reasons.items())}), more than the {options.max_column_reject_share:.0%} "
        f"allowed. That looks like a mapping mistake (a date format, a code list, the wrong source column), not bad "
        f"data: check tables.{contract.name} in the mapping file, or raise max_column_reject_share "
        f"(FENGQIAO_MAX_COLUMN_REJECT_SHARE) if the data really is this bad. Nothing was written."
    )


def _count_by_reason(reasons: pd.Series) -> dict[str, int]:
    """Rejects per reason, most important reason first."""
    counts = reasons.value_counts()
    return {r: int(counts[r]) for r in REJECT_REASONS if r in counts.index}


def _for_warehouse(typed: pd.DataFrame, keep: np.ndarray, contract: TableContract,
                   options: TableOptions) -> tuple[pd.DataFrame, int]:
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
            values = pseudonymise(values, options.pseudonym_key())
        elif column.role == "free_text":
            values, n = redact_free_text(values, options.redactor)
            redactions += n
        if not column.nullable and column.kind in ("int", "bool"):
            values = values.astype("int64" if column.kind == "int" else "bool")
        out[name] = values
    return pd.DataFrame(out), redactions
