"""The ingest stage: a platform export → validated, pseudonymised warehouse tables.

Tables are read one at a time in dependency order (``features.contracts.CONTRACTS``), so
that references are checked against what was accepted before and memory holds one table
at a time. Every output — tables, rejects, the report — is staged and published as one set
(``fengqiao.publish``) only when every table has been read and the guards pass: a failed or
refused ingest leaves the previous warehouse exactly as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contracts import CONTRACTS, TableContract
from features.ingest.mapping import load_mapping
from features.ingest.privacy import Pseudonymiser
from features.ingest.readers import open_source
from features.ingest.regions import RegionLocator
from features.ingest.report import IngestReport, TableReport
from features.ingest.table import TableOptions, ingest_table
from features.warehouse import table_path
from fengqiao.errors import ConfigurationError, InputDataError
from fengqiao.progress import Progress, quiet
from fengqiao.publish import Publication, publishing

REJECTS_DIR = "rejects"
REPORT_FILE = "ingest_report.json"

KeySource = bytes | Callable[[], bytes] | None
"""The pseudonymisation key, a function that gives it (asked only when a table holds personal
identifiers), or None when the run must not need one."""

log = logging.getLogger(__name__)


def run_ingest(source: str | Path, warehouse_dir: Path, hmac_key: KeySource = None, mapping: Path | None = None,
               as_of: pd.Timestamp | None = None, timezone: str = "Asia/Shanghai", *,
               allow_shrink: bool = False, max_shrink_share: float = 0.5, max_column_reject_share: float = 0.5,
               min_rows_for_share: int = 1000, max_distance_km: float = 5.0,
               companions: Mapping[str, Path | None] | None = None,
               contracts: Mapping[str, TableContract] = CONTRACTS, batch_rows: int = 1_000_000,
               progress: Progress = quiet) -> IngestReport:
    """Validate every table of ``source`` and publish the warehouse.

    Args:
        source: a directory of ``<table>.parquet|csv|xlsx`` files, an Excel workbook with a
            sheet per table, or a SQLAlchemy URL.
        warehouse_dir: where ``<table>.parquet``, ``rejects/<table>.parquet`` and
            ``ingest_report.json`` go.
        hmac_key: the key of the identifiers' pseudonyms, or a function giving it; needed only
            when a table being ingested holds personal identifiers.
        mapping: the platform's column-mapping YAML (see docs/ingest.md); None when the
            source already uses the contract's names and codes.
        as_of: timestamps after this are rejected as ``future_date`` (default: now).
        timezone: the city's zone: naive timestamps are read in it (unless a table's mapping
            names another) and the warehouse stores every timestamp in it.
        allow_shrink: publish even when a table falls by more than ``max_shrink_share`` of
            the warehouse's current rows, a required table accepts no row, or an optional table
            the warehouse has is absent from the source (it is then removed).
        max_shrink_share: the largest allowed fall of a table's accepted rows (0.5: half).
        max_column_reject_share: a column rejecting more than this share of a table's rows
            read so far (once at least ``min_rows_for_share`` rows are read) stops the run.
        max_distance_km: farthest region centre for events located by coordinates.
        companions: extra files published in the same set, by name in the warehouse: a path
            is copied there, None removes the name (e.g. a simulated world's oracle).
        contracts: the tables to ingest, in dependency order: DESIGN.md's, and the extra
            tables a city declares in its configuration file (``features.city``).
        batch_rows: rows of a table read and validated at a time; memory holds one batch (and
            the kept keys), so a table larger than memory can be ingested.
        progress: hears ``(table, rows read, rows expected)`` after each batch of each table.

    Returns the report; it is also written to ``ingest_report.json``. Re-ingesting the
    same source gives byte-identical Parquet files. Raises InputDataError when the source
    cannot be read or a guard refuses it; nothing is written then.
    """
    started = time.perf_counter()
    started_at = pd.Timestamp.now(tz=timezone)
    as_of = _as_of(as_of, timezone, started_at)
    source_mapping = load_mapping(mapping, contracts)
    tables = open_source(source, source_mapping)
    located = {name: tables.locate(name) for name in contracts}
    _require_tables(located, tables.description, contracts)
    options = TableOptions(as_of, timezone, Pseudonymiser(_key_source(hmac_key)), source_mapping.redactor,
                           max_column_reject_share, min_rows_for_share, max_distance_km, batch_rows)

    warehouse_dir = Path(warehouse_dir)
    reports: dict[str, TableReport] = {}
    with publishing(warehouse_dir) as publication:
        known: dict[str, pa.Array] = {}
        referenced = {c.references for t in contracts.values() for c in t.columns if c.references}
        regions = None
        for name, contract in contracts.items():
            if located[name] is None:
                continue
            log.info("%s: reading %s", name, located[name])
            staged = {"accepted": publication.stage(f"{name}.parquet"),
                      "rejects": publication.stage(f"{REJECTS_DIR}/{name}.parquet")}
            with ParquetAppender(staged["accepted"]) as accepted, ParquetAppender(staged["rejects"]) as rejects:
                appenders = {"accepted": accepted, "rejects": rejects}
                report = ingest_table(tables, contract, source_mapping, known, options,
                                      lambda kind, rows: appenders[kind].append(rows), regions, progress)
            reports[name] = report
            log.info("%s: read %d, accepted %d, rejected %d", name, report.read, report.accepted, report.rejected)
            if f"{name}.{contract.key}" in referenced:
                keys = pq.read_table(staged["accepted"], columns=[contract.key]).column(contract.key)
                known[f"{name}.{contract.key}"] = keys.combine_chunks()
            if name == "regions":
                regions = RegionLocator.from_regions(pd.read_parquet(staged["accepted"]))
        absent = [n for n in contracts if located[n] is None]
        _guard(warehouse_dir, {n: r.accepted for n, r in reports.items()}, absent, allow_shrink,
               max_shrink_share, tables.description, contracts)
        for name in absent:
            publication.remove(f"{name}.parquet")
            publication.remove(f"{REJECTS_DIR}/{name}.parquet")
        _stage_companions(publication, companions or {})
        summary = IngestReport(
            source=tables.description,
            warehouse_dir=str(warehouse_dir),
            as_of=as_of.isoformat(),
            started_at=started_at.isoformat(),
            seconds=round(time.perf_counter() - started, 3),
            tables=reports,
            missing_tables=tuple(absent),
            unchecked_references=tuple(
                f"{name}.{c.name}" for name in reports for c in contracts[name].columns
                if c.references and c.references.split(".")[0] not in reports
            ),
        )
        summary.write(publication.stage(REPORT_FILE))
    return summary


class ParquetAppender:
    """One Parquet file written a frame at a time (a row group each), with the first frame's
    schema and pandas metadata, so that it reads back as the frames concatenated. The same
    frames give the same bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None

    def append(self, rows: pd.DataFrame) -> None:
        """Add ``rows`` (same columns and dtypes as the first frame) at the end of the file."""
        table = pa.Table.from_pandas(rows, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table.cast(self._writer.schema))

    def __enter__(self) -> ParquetAppender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._writer is not None:
            self._writer.close()


def _key_source(hmac_key: KeySource) -> Callable[[], bytes]:
    """The key on demand: asked once, and only by a table that holds personal identifiers."""
    cache: list[bytes] = []

    def key() -> bytes:
        if not cache:
            value = hmac_key() if callable(hmac_key) else hmac_key
            if not value:
                raise ConfigurationError(
                    "This source holds personal identifiers (petitioner_key, worker_key), which are pseudonymised "
                    "with a key: set FENGQIAO_PSEUDONYM_KEY or a key file (`fengqiao ingest --create-key`)."
                )
            cache.append(value)
        return cache[0]

    return key


def _as_of(as_of: pd.Timestamp | None, timezone: str, now: pd.Timestamp) -> pd.Timestamp:
    """The as-of moment in the city's zone (a naive one is read in it)."""
    if as_of is None:
        return now
    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        as_of = as_of.tz_localize(timezone)
    return as_of.tz_convert(timezone)


def _require_tables(located: dict[str, str | None], description: str, contracts: Mapping[str, TableContract]) -> None:
    required = [name for name, contract in contracts.items() if contract.required]
    missing = [name for name in required if located[name] is None]
    if missing:
        names = " and ".join(repr(m) for m in missing)
        raise InputDataError(
            f"The {description} has no {names} table, and {' and '.join(required)} "
            f"are required. Export each as <table>.parquet, .csv or .xlsx (directory), a sheet named after the "
            f"table (workbook) or a database table of that name — or say where it is under tables.<table> "
            f"in the mapping file."
        )


def _guard(warehouse_dir: Path, accepted: dict[str, int], absent: list[str], allow_shrink: bool,
           max_shrink_share: float, description: str, contracts: Mapping[str, TableContract]) -> None:
    """Refuse an ingest that would lose good data: a required table with no accepted row, a
    table whose accepted rows fall by more than ``max_shrink_share`` against the warehouse's
    current version, or an optional table the warehouse has and the source lacks — unless
    the run allows shrinking."""
    if allow_shrink:
        return
    problems = [f"{name!r} has no row accepted" for name, n in accepted.items()
                if contracts[name].required and n == 0]
    for name in contracts:
        path = table_path(warehouse_dir, name)
        if not path.exists():
            continue
        before = pq.ParquetFile(path).metadata.num_rows
        now = accepted.get(name)
        if name in absent:
            problems.append(f"{name!r} ({before:,} rows in the warehouse) is absent from the source")
        elif now < (1 - max_shrink_share) * before and not (now == 0 and contracts[name].required):
            problems.append(f"{name!r} would fall from {before:,} to {now:,} accepted rows "
                            f"(more than {max_shrink_share:.0%})")
    if problems:
        raise InputDataError(
            f"Refused to ingest the {description}: {'; '.join(problems)}. The warehouse is untouched. "
            f"If this is really the city's data now, run again with --allow-shrink."
        )


def _stage_companions(publication: Publication, companions: Mapping[str, Path | None]) -> None:
    """Copy each companion file into the publication, or mark it for removal when None."""
    for name, path in companions.items():
        if path is None:
            publication.remove(name)
        else:
            publication.stage(name).write_bytes(Path(path).read_bytes())
