"""Finding and reading the source tables: a directory of files, an Excel workbook, or a
database (SQLAlchemy URL).

Readers keep what the source says: text stays text, typed Parquet or SQL columns keep
their types. Turning cells into contract types is ``parsing.py``'s job; the source is
never modified.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from pyarrow import ArrowException
from pyarrow import csv as pa_csv

from features.ingest.mapping import SourceMapping
from fengqiao.errors import ConfigurationError, InputDataError

FILE_SUFFIXES = (".parquet", ".csv", ".xlsx")
"""Per-table files looked for in a directory source, preferred in this order."""
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
_READ_ERRORS = (OSError, ValueError, ArrowException, pd.errors.ParserError, UnicodeDecodeError)
"""What a broken file raises. Their messages may quote the file's content (pyarrow's CSV
errors quote the line), so messages here name the file and the kind of problem only."""
_CSV_BLOCK_BYTES = 16 * 2**20
"""Bytes of a CSV file parsed at a time; a batch joins blocks until it holds enough rows."""


@dataclass(frozen=True)
class MalformedLines:
    """Lines of a text file that are not rows of its table (a wrong number of cells)."""

    records: np.ndarray
    """Their 1-based numbers among the file's data records (the header is record 0)."""
    cells: np.ndarray
    """How many cells each has."""
    expected: int
    """How many cells the header has."""


@dataclass(frozen=True)
class RawBatch:
    """Consecutive rows of a source table as read.

    ``frame`` holds the well-formed rows in source order; ``source_rows`` the 1-based source
    row of each (its position among the source's data records, malformed lines included, so
    that row n of a CSV file is line n + 1); ``malformed`` the lines of this stretch that could
    not be read as rows, which become rejects.
    """

    frame: pd.DataFrame
    source_rows: np.ndarray
    malformed: MalformedLines | None = None
    share_read: float = 1.0
    """Share of the table's source read once this batch is (bytes of a CSV file, rows of a
    Parquet file; 1 for a table read whole), from which progress estimates the table's rows."""


class TableSource(Protocol):
    """A place that holds the platform's tables."""

    description: str

    def locate(self, table: str) -> str | None:
        """Where ``table`` is in the source, in words; None when the source does not have it."""

    def read(self, table: str, batch_rows: int) -> Iterator[RawBatch]:
        """The table's rows in source order, in batches of at most ``batch_rows`` rows where the
        source can be read in parts (CSV, Parquet; a sheet or a query result is one batch). At
        least one batch, possibly empty; call only for tables that ``locate`` found."""


def open_source(source: str | Path, mapping: SourceMapping) -> TableSource:
    """The source named by ``source``: a SQLAlchemy URL, an Excel workbook, or a directory."""
    text = str(source)
    if "://" in text:
        return DatabaseSource(text, mapping)
    path = Path(source)
    if path.is_dir():
        return DirectorySource(path, mapping)
    if path.suffix.lower() in WORKBOOK_SUFFIXES and path.is_file():
        return WorkbookSource(path, mapping)
    raise InputDataError(
        f"Cannot ingest {text}: it is neither a directory of table files, an Excel workbook "
        f"({', '.join(WORKBOOK_SUFFIXES)}) nor a SQLAlchemy URL such as sqlite:///platform.db."
    )


def _whole(frame: pd.DataFrame) -> Iterator[RawBatch]:
    """A table read at once (Excel, SQL) as its one batch."""
    yield RawBatch(frame.reset_index(drop=True), np.arange(1, len(frame) + 1, dtype=np.int64))


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    """A Parquet file in batches of ``batch_rows`` rows, with the types it stores."""
    file = pq.ParquetFile(path)
    start = 1
    for batch in file.iter_batches(batch_size=batch_rows):
        frame = pa.Table.from_batches([batch]).to_pandas()
        start += len(frame)
        yield RawBatch(frame, np.arange(start - len(frame), start, dtype=np.int64),
                       share_read=(start - 1) / file.metadata.num_rows)
    if start == 1:
        yield RawBatch(file.schema_arrow.empty_table().to_pandas(), np.empty(0, dtype=np.int64))


def _csv_batches(path: Path, encoding: str, batch_rows: int) -> Iterator[RawBatch]:
    """A CSV file as text, ``batch_rows`` rows at a time (the last batch fewer), every cell a string (empty and
    NULL-like cells null; large_string, which pandas keeps without a copy). Lines with the
    wrong number of cells are left out instead of stopping the read, and handed on with the
    batch whose stretch of the file holds them (trailing ones with the last batch)."""
    bad: list[tuple[int, int]] = []
    expected = [0]

    def skip(row: pa_csv.InvalidRow) -> str:
        bad.append((row.number - 1, row.actual_columns))
        expected[0] = row.expected_columns
        return "skip"

    with path.open(encoding=encoding, newline="") as fh:
        names = next(csv.reader(fh), [])
    with pa.OSFile(str(path)) as file:
        size = max(file.size(), 1)
        reader = pa_csv.open_csv(
            file,
            read_options=pa_csv.ReadOptions(encoding=encoding, use_threads=False, block_size=_CSV_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=skip),
            convert_options=pa_csv.ConvertOptions(column_types={n: pa.large_string() for n in names},
                                                  strings_can_be_null=True),
        )
        schema = reader.schema
        next_row, handed = 1, 0

        def batch(rows: pa.Table, last: bool) -> RawBatch:
            nonlocal next_row, handed
            frame = rows.to_pandas()
            records = np.array([r for r, _ in bad[handed:]], dtype=np.int64)
            cells = np.array([n for _, n in bad[handed:]], dtype=np.int64)
            numbers = np.arange(next_row, next_row + len(frame) + len(records), dtype=np.int64)
            numbers = np.delete(numbers, records[records < next_row + len(numbers)] - next_row)[:len(frame)]
            end = len(records) if last else int(np.searchsorted(records, numbers[-1], "right"))
            if len(numbers):
                next_row = int(numbers[-1]) + 1
            handed += end
            return RawBatch(frame, numbers, MalformedLines(records[:end], cells[:end], expected[0] or len(schema)),
                            share_read=1.0 if last else file.tell() / size)

        pending = schema.empty_table()
        for record_batch in reader:
            pending = pa.concat_tables([pending, pa.Table.from_batches([record_batch], schema=schema)])
            while pending.num_rows >= batch_rows:
                yield batch(pending.slice(0, batch_rows), last=False)
                pending = pending.slice(batch_rows)
        if pending.num_rows or handed < len(bad) or next_row == 1:
            yield batch(pending, last=True)


def _read_file(path: Path, sheet: str | None, mapping: SourceMapping, batch_rows: int) -> Iterator[RawBatch]:
    """One table file in batches: CSV as text, Parquet as typed, Excel (one batch) with the
    types its cells have."""
    try:
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            yield from _parquet_batches(path, batch_rows)
        elif suffix in WORKBOOK_SUFFIXES:
            yield from _whole(pd.read_excel(path, sheet_name=sheet or 0))
        else:
            yield from _csv_batches(path, mapping.encoding, batch_rows)
    except UnicodeDecodeError as exc:
        raise InputDataError(
            f"Cannot read {path}: byte {exc.start} is not {mapping.encoding} text. Set `encoding:` in the "
            f"mapping file (gbk and gb18030 are common for Chinese platforms)."
        ) from None
    except _READ_ERRORS as exc:
        raise InputDataError(
            f"Cannot read {path}: it is not a readable {suffix.lstrip('.') or 'CSV'} file ({type(exc).__name__}; "
            f"for CSV: an unclosed quote, or text that is not {mapping.encoding} — set `encoding:` in the mapping file)."
        ) from None


class DirectorySource:
    """A directory with one file per table: ``<table>.parquet``, ``.csv`` or ``.xlsx``, or the
    file the mapping names (relative to the directory)."""

    def __init__(self, root: Path, mapping: SourceMapping) -> None:
        self.root = root
        self.mapping = mapping
        self.description = f"directory {root}"
        _check_locators(mapping, {"file", "sheet"}, self.description)

    def _path(self, table: str) -> Path | None:
        named = self.mapping.table(table).file
        candidates = [self.root / named] if named else [self.root / f"{table}{s}" for s in FILE_SUFFIXES]
        return next((p for p in candidates if p.is_file()), None)

    def locate(self, table: str) -> str | None:
        path = self._path(table)
        return None if path is None else str(path)

    def read(self, table: str, batch_rows: int) -> Iterator[RawBatch]:
        return _read_file(self._path(table), self.mapping.table(table).sheet, self.mapping, batch_rows)


class WorkbookSource:
    """An Excel workbook with one sheet per table (named as the table, or as the mapping says)."""

    def __init__(self, path: Path, mapping: SourceMapping) -> None:
        self.path = path
        self.mapping = mapping
        self.description = f"workbook {path}"
        _check_locators(mapping, {"sheet"}, self.description)
        try:
            self.sheets = pd.ExcelFile(path).sheet_names
        except _READ_ERRORS as exc:
            raise InputDataError(f"Cannot open the workbook {path}: {exc}") from exc

    def _sheet(self, table: str) -> str:
        return self.mapping.table(table).sheet or table

    def locate(self, table: str) -> str | None:
        sheet = self._sheet(table)
        return f"{self.path}, sheet {sheet!r}" if sheet in self.sheets else None

    def read(self, table: str, batch_rows: int) -> Iterator[RawBatch]:
        return _read_file(self.path, self._sheet(table), self.mapping, batch_rows)


class DatabaseSource:
    """A database: each table read by ``SELECT * FROM <table>`` or by the mapping's ``query``.

    Rows are numbered in the order the database returns them; on a server database give a
    ``query`` with ``ORDER BY`` when the numbers (and re-ingests) must be stable."""

    def __init__(self, url: str, mapping: SourceMapping) -> None:
        self.mapping = mapping
        self.description = f"database {_safe_url(url)}"
        _check_locators(mapping, {"query"}, self.description)
        try:
            self.engine = sa.create_engine(url)
            self.tables = set(sa.inspect(self.engine).get_table_names())
        except (sa.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            raise InputDataError(f"Cannot connect to the {self.description}: {exc}") from exc

    def _query(self, table: str) -> str | None:
        query = self.mapping.table(table).query
        if query or table not in self.tables:
            return query
        return f"SELECT * FROM {self.engine.dialect.identifier_preparer.quote(table)}"

    def locate(self, table: str) -> str | None:
        query = self._query(table)
        return None if query is None else f"{query!r} on {self.description}"

    def read(self, table: str, batch_rows: int) -> Iterator[RawBatch]:
        query = self._query(table)
        try:
            with self.engine.connect() as connection:
                frame = pd.read_sql_query(query, connection)
        except sa.exc.SQLAlchemyError as exc:
            raise InputDataError(
                f"The query for {table!r} failed on {self.description}: {exc}. "
                f"Fix tables.{table}.query in the mapping file."
            ) from exc
        return _whole(frame)


def _check_locators(mapping: SourceMapping, allowed: set[str], description: str) -> None:
    """Refuse a mapping that locates tables in a way this kind of source does not have
    (a ``query`` for a directory, a ``file`` inside a workbook)."""
    wrong = [f"tables.{t}.{key}" for t, m in mapping.tables.items() for key in ("file", "sheet", "query")
             if getattr(m, key) and key not in allowed]
    if wrong:
        raise ConfigurationError(
            f"The mapping sets {', '.join(wrong)}, which a {description} cannot use; "
            f"use {' / '.join(sorted(allowed))} to say where its tables are."
        )


def _safe_url(url: str) -> str:
    """The URL without its password, fit for messages and reports."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url.split("@")[-1]
