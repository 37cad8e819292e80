"""The ingest stage: a platform export → validated, pseudonymised warehouse tables.

Tables are read one at a time in dependency order (``features.contracts.CONTRACTS``), so
that references are checked against what was accepted before and memory holds one table
at a time. Files are first written to a staging folder and moved into the warehouse only
when every table has been read: a failed ingest leaves the previous warehouse as it was.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from features.contracts import CONTRACTS, TIMEZONE, TableContract
from features.ingest.mapping import load_mapping
from features.ingest.readers import open_source
from features.ingest.report import IngestReport
from features.ingest.table import ingest_table
from features.warehouse import table_path, write_table
from fengqiao.errors import ConfigurationError, InputDataError

REJECTS_DIR = "rejects"
REPORT_FILE = "ingest_report.json"

log = logging.getLogger(__name__)


def run_ingest(source: str | Path, warehouse_dir: Path, hmac_key: bytes, mapping: Path | None = None,
               as_of: pd.Timestamp | None = None, timezone: str = "Asia/Shanghai",
               contracts: Mapping[str, TableContract] = CONTRACTS) -> IngestReport:
    """Validate every table of ``source`` and write the warehouse.

    Args:
        source: a directory of ``<table>.parquet|csv|xlsx`` files, an Excel workbook with a
            sheet per table, or a SQLAlchemy URL.
        warehouse_dir: where ``<table>.parquet``, ``rejects/<table>.parquet`` and
            ``ingest_report.json`` go.
        hmac_key: the key of the identifiers' pseudonyms.
        mapping: the platform's column-mapping YAML (see docs/ingest.md); None when the
            source already uses the contract's names and codes.
        as_of: timestamps after this are rejected as ``future_date`` (default: now).
        timezone: the zone of timestamps written without an offset.
        contracts: the tables to ingest, in dependency order (DESIGN.md's, and a city's extra
            tables from its configuration file).

    Returns the report; it is also written to ``ingest_report.json``. Re-ingesting the
    same source gives byte-identical Parquet files.
    """
    if not hmac_key:
        raise ConfigurationError("The pseudonymisation key is empty: set FENGQIAO_PSEUDONYM_KEY or a key file.")
    started = time.perf_counter()
    started_at = pd.Timestamp.now(tz=TIMEZONE)
    as_of = _as_of(as_of, timezone, started_at)
    source_mapping = load_mapping(mapping)
    tables = open_source(source, source_mapping)
    located = {name: tables.locate(name) for name in contracts}
    _require_tables(located, tables.description, contracts)

    warehouse_dir = Path(warehouse_dir)
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ingest-", dir=warehouse_dir))
    reports, known = {}, {}
    referenced = {c.references for t in contracts.values() for c in t.columns if c.references}
    try:
        for name, contract in contracts.items():
            if located[name] is None:
                continue
            result = ingest_table(tables, contract, source_mapping, known, as_of, hmac_key, timezone)
            write_table(result.accepted, staging, name)
            write_table(result.rejects, staging / REJECTS_DIR, name)
            reports[name] = result.report
            log.info("%s: read %d, accepted %d, rejected %d", name, result.report.read,
                     result.report.accepted, result.report.rejected)
            if f"{name}.{contract.key}" in referenced:
                known[f"{name}.{contract.key}"] = pd.Index(result.accepted[contract.key])
        _publish(staging, warehouse_dir, contracts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    report = IngestReport(
        source=tables.description,
        warehouse_dir=str(warehouse_dir),
        as_of=as_of.isoformat(),
        started_at=started_at.isoformat(),
        seconds=round(time.perf_counter() - started, 3),
        tables=reports,
        missing_tables=tuple(n for n in contracts if located[n] is None),
        unchecked_references=tuple(
            f"{name}.{c.name}" for name in reports for c in contracts[name].columns
            if c.references and c.references.split(".")[0] not in reports
        ),
    )
    report.write(warehouse_dir / REPORT_FILE)
    return report


def _as_of(as_of: pd.Timestamp | None, timezone: str, now: pd.Timestamp) -> pd.Timestamp:
    """The as-of moment in the warehouse zone (a naive one is in ``timezone``)."""
    if as_of is None:
        return now
    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        as_of = as_of.tz_localize(timezone)
    return as_of.tz_convert(TIMEZONE)


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


def _publish(staging: Path, warehouse_dir: Path, contracts: Mapping[str, TableContract]) -> None:
    """Move the staged tables into the warehouse; remove the tables (and rejects) of
    optional tables this source does not have, so no stale data stays behind."""
    for directory in (Path("."), Path(REJECTS_DIR)):
        (warehouse_dir / directory).mkdir(exist_ok=True)
        for name in contracts:
            staged = table_path(staging / directory, name)
            target = table_path(warehouse_dir / directory, name)
            if staged.exists():
                staged.replace(target)
            else:
                target.unlink(missing_ok=True)
