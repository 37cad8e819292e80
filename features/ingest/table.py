"""One source table → its accepted warehouse rows and its rejects.

map columns (and place events by coordinates) → parse cells → validate (pandera) → pick each
failing row's reason, then duplicates among the rows left → treat personal data → type for the
warehouse. Every row read, malformed lines included, ends up in exactly one of the two outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contracts import TableContract
from features.ingest.arrow import arrow_text
from features.ingest.columns import MappedColumns, map_columns
from features.ingest.mapping import Coordinates, SourceMapping
from features.ingest.parsing import ParseOptions, as_text, parse_table, problems_frame
from features.ingest.privacy import Pseudonymiser, Redactor, redact_free_text
from features.ingest.readers import RawBatch, TableSource
from features.ingest.reasons import DUPLICATE, REJECT_REASONS, UNPLACED
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
from fengqiao.progress import Progress, quiet


@dataclass(frozen=True)
class TableOptions:
    """What every table of one run is judged by."""

    as_of: pd.Timestamp
    """Recorded times after this are future dates; its zone is the warehouse's (the city's)."""
    timezone: str
    """Zone of naive timestamps unless the table's mapping names another."""
    pseudonymise: Pseudonymiser
    """Identifiers → pseudonyms for the whole run (its key is asked for only by a table that
    holds personal identifiers)."""
    redactor: Redactor
    max_column_reject_share: float = 0.5
    """A column rejecting more than this share of a table's rows stops the run (a mapping mistake)."""
    min_rows_for_share: int = 1000
    """Tables with fewer rows are never stopped by the share (a few bad rows are just bad rows)."""
    max_distance_km: float = 5.0
    """Farthest region centre an event located by coordinates may be assigned to."""
    batch_rows: int = 1_000_000
    """Rows read and validated at a time: memory holds one batch of a large table, not all of it."""


TableWriter = Callable[[str, pd.DataFrame], None]
"""Takes ``("accepted", rows)`` and ``("rejects", rows)`` of each batch of a table, in order,
to append them to the table's outputs (e.g. staged Parquet files)."""


class KeptKeys:
    """The keys of the rows kept so far in a table, with their source rows, so that a later
    batch's copy of a key is a duplicate of the row that was kept.

    Keys are held as one Arrow string array (about 20 bytes a key, not a Python set's hundred)
    and looked up with Arrow's hash join (``index_in``), without Python per key.
    """

    def __init__(self) -> None:
        self._keys: list[pa.Array] = []
        self._rows: list[np.ndarray] = []

    def add(self, keys: pd.Series, source_rows: np.ndarray) -> None:
        """Remember ``keys`` (all distinct, none seen before) as kept at ``source_rows``."""
        self._keys.append(arrow_text(keys))
        self._rows.append(source_rows.astype(np.int64))

    def kept_rows(self, keys: pd.Series) -> np.ndarray:
        """For each key, the source row that kept it, or -1 when no row kept it yet."""
        if len(self._keys) > 1:
            self._keys, self._rows = [pa.concat_arrays(self._keys)], [np.concatenate(self._rows)]
        if not self._keys or not len(self._rows[0]):
            return np.full(len(keys), -1, dtype=np.int64)
        index = pc.fill_null(pc.index_in(arrow_text(keys), value_set=self._keys[0]), -1).to_numpy()
        return np.where(index >= 0, self._rows[0][np.maximum(index, 0)], -1)


@dataclass
class _TableTally:
    """What one table's batches add up to: counts for the report, failing rows per column and
    reason for the reject-share stop."""

    read: int = 0
    accepted: int = 0
    redactions: int = 0
    rejected: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    failures: pd.Series = field(default_factory=lambda: _failures(problems_frame([])))


def _failures(problems: pd.DataFrame) -> pd.Series:
    """Failing rows per (column, reason), each row counted once per column (under the first
    reason found for it)."""
    return problems.drop_duplicates(["row", "column"]).groupby(["column", "reason"])["row"].count()


def ingest_table(source: TableSource, contract: TableContract, mapping: SourceMapping,
                 known: Mapping[str, pa.Array], options: TableOptions, write: TableWriter,
                 regions: RegionLocator | None = None, progress: Progress = quiet) -> TableReport:
    """Read and validate one table of ``source`` against its contract, ``options.batch_rows``
    rows at a time; hand each batch's accepted rows (the contract's warehouse columns that the
    source has, typed as features/warehouse.py says) and then its rejects to ``write``, and
    return the table's report.

    ``known`` holds the accepted keys of the tables read before (``regions.village_id`` …),
    so a row that refers to a missing or rejected key is rejected too; ``regions`` places
    events that the mapping locates by coordinates. Only the kept keys (for duplicates) and
    the counts travel from batch to batch, so memory holds one batch of a large table.
    ``progress`` hears ``(table, rows read, rows expected)`` after each batch; the rows
    expected are estimated from the share of the source read until the last batch.
    Raises InputDataError as soon as a column rejects more than
    ``options.max_column_reject_share`` of the rows read so far.
    """
    origin = source.locate(contract.name)
    table_mapping = mapping.table(contract.name)
    parse_options = ParseOptions(mapping.date_formats_for(contract.name),
                                 table_mapping.timezone or options.timezone, mapping.null_values,
                                 table_mapping.codes, warehouse_timezone=str(options.as_of.tz))
    tally = _TableTally()
    kept_keys = KeptKeys()
    columns: MappedColumns | None = None
    for batch in source.read(contract.name, options.batch_rows):
        columns = _ingest_batch(batch, contract, mapping, parse_options, known, options, write, regions,
                                origin, tally, kept_keys)
        progress(contract.name, tally.read, max(round(tally.read / max(batch.share_read, 1e-9)), tally.read + 1))
    progress(contract.name, tally.read, tally.read)
    return TableReport(
        table=contract.name,
        origin=origin,
        read=tally.read,
        accepted=tally.accepted,
        rejected_by_reason=_count_by_reason(tally.rejected),
        redactions=tally.redactions,
        extra_columns=columns.extra_columns,
        missing_optional_columns=columns.missing_optional_columns,
    )


def _ingest_batch(batch: RawBatch, contract: TableContract, mapping: SourceMapping, parse_options: ParseOptions,
                  known: Mapping[str, pa.Array], options: TableOptions, write: TableWriter,
                  regions: RegionLocator | None, origin: str, tally: _TableTally, kept_keys: KeptKeys) -> MappedColumns:
    """Validate one batch, write its accepted rows and then its rejects, and add it to ``tally``
    and ``kept_keys``. Returns what mapping did to the columns (the same for every batch)."""
    frame, source_rows, malformed = batch.frame, batch.source_rows, batch.malformed
    table_mapping = mapping.table(contract.name)
    cells, columns = map_columns(frame, contract, table_mapping, origin, mapping.null_values)
    placement = problems_frame([])
    if table_mapping.coordinates is not None:
        cells, placement = _place(frame, cells, contract, table_mapping.coordinates, regions, options, origin)
    n_malformed = 0 if malformed is None else len(malformed.records)
    tally.read += len(cells) + n_malformed
    typed, unreadable = parse_table(cells, contract, parse_options,
                                    lambda problems: _check_share(problems, tally, contract, origin, options))
    del cells
    problems = pd.concat([unreadable, placement, schema_problems(typed, contract, options.as_of, known)],
                         ignore_index=True)
    _check_share(problems, tally, contract, origin, options)
    tally.failures = tally.failures.add(_failures(problems), fill_value=0).astype("int64")
    first = first_problems(problems, contract)
    keys = typed[contract.key]
    earlier = kept_keys.kept_rows(keys)
    earlier[first["row"].to_numpy()] = -1
    repeated = np.flatnonzero(earlier >= 0)
    duplicates, kept = duplicate_problems(keys, np.concatenate([first["row"].to_numpy(), repeated]))
    kept_source_rows = np.concatenate([earlier[repeated], source_rows[kept]])
    duplicates = pd.concat([pd.DataFrame({"row": repeated, "column": contract.key, "reason": DUPLICATE}), duplicates],
                           ignore_index=True)
    kept_by_row = pd.Series(kept_source_rows, index=duplicates["row"].to_numpy())
    first = pd.concat([first, duplicates], ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
    rejected = first["row"].to_numpy()
    texts = pd.DataFrame({c: as_text(frame[c].iloc[rejected], mapping.null_values)
                          for c in columns.shown if c in frame.columns}, index=frame.index[rejected])
    del frame

    keep = np.ones(len(typed), dtype=bool)
    keep[rejected] = False
    kept_keys.add(keys[keep], source_rows[keep])
    del keys
    accepted, redactions = _for_warehouse(typed, keep, contract, options)
    tally.accepted += len(accepted)
    tally.redactions += redactions
    write("accepted", accepted)
    del accepted, typed
    shown = shown_cells(texts, columns.shown, options.pseudonymise, options.redactor)
    del texts
    rejects = reject_rows(first, kept_by_row, source_rows, shown, contract, options.as_of)
    if n_malformed:
        rejects = pd.concat([rejects, malformed_rejects(malformed, contract, origin)], ignore_index=True)
        rejects = rejects.sort_values("source_row", kind="stable").reset_index(drop=True)
    tally.rejected = tally.rejected.add(rejects["reason"].value_counts(), fill_value=0).astype("int64")
    write("rejects", rejects)
    return columns


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


def _check_share(problems: pd.DataFrame, tally: _TableTally, contract: TableContract, origin: str,
                 options: TableOptions) -> None:
    """Stop when one column rejects more than the allowed share of the rows read so far (those
    of earlier batches in ``tally`` and ``problems`` of this one): that is a mapping mistake (a
    date format, a code list, the wrong column), and its rejects would be as large as the table.
    A large table is thus refused after its first batch. The message names table, column, share
    and reasons — no cell."""
    if tally.read < options.min_rows_for_share or problems.empty:
        return
    failures = tally.failures.add(_failures(problems), fill_value=0)
    per_column = failures.groupby(level="column").sum()
    worst = per_column.idxmax()
    share = per_column[worst] / tally.read
    if share <= options.max_column_reject_share:
        return
    reasons = failures.loc[worst].sort_values(ascending=False, kind="stable")
    raise InputDataError(
        f"Table {contract.name!r} ({origin}): column {worst!r} fails in {share:.0%} of the {tally.read:,} rows read "
        f"({', '.join(f'{r} {int(n):,}' for r, n in reasons.items())}), more than the {options.max_column_reject_share:.0%} "
        f"allowed. That looks like a mapping mistake (a date format, a code list, the wrong source column), not bad "
        f"data: check tables.{contract.name} in the mapping file, or raise max_column_reject_share "
        f"(FENGQIAO_MAX_COLUMN_REJECT_SHARE) if the data really is this bad. Nothing was written."
    )


def _count_by_reason(counts: pd.Series) -> dict[str, int]:
    """Rejects per reason (``counts``, indexed by reason), most important reason first."""
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
            values = options.pseudonymise(values)
        elif column.role == "free_text":
            values, n = redact_free_text(values, options.redactor)
            redactions += n
        if not column.nullable and column.kind in ("int", "bool"):
            values = values.astype("int64" if column.kind == "int" else "bool")
        out[name] = values
    return pd.DataFrame(out), redactions
