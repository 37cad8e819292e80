"""Finding and reading the source tables: a directory of files, an Excel workbook, or a
database (SQLAlchemy URL).

Readers keep what the source says: text stays text, typed Parquet or SQL columns keep
their types. Turning cells into contract types is ``parsing.py``'s job; the source is
never modified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd
import sqlalchemy as sa
from pyarrow import ArrowException

from features.ingest.mapping import SourceMapping
from fengqiao.errors import ConfigurationError, InputDataError

FILE_SUFFIXES = (".parquet", ".csv", ".xlsx")
"""Per-table files looked for in a directory source, preferred in this order."""
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
_READ_ERRORS = (OSError, ValueError, ArrowException, pd.errors.ParserError, UnicodeDecodeError)


@dataclass(frozen=True)
class RawTable:
    """A source table as read, with where it came from (for messages and the report)."""

    frame: pd.DataFrame
    origin: str


class TableSource(Protocol):
    """A place that holds the platform's tables."""

    description: str

    def locate(self, table: str) -> str | None:
        """Where ``table`` is in the source, in words; None when the source does not have it."""

    def read(self, table: str) -> RawTable:
        """The table's rows, in source order (call only for tables that ``locate`` found)."""


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


def _read_file(path: Path, sheet: str | None, mapping: SourceMapping) -> pd.DataFrame:
    """One table file: CSV as text, Parquet as typed, Excel with the types its cells have."""
    try:
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in WORKBOOK_SUFFIXES:
            return pd.read_excel(path, sheet_name=sheet or 0)
        return pd.read_csv(path, dtype="str", engine="pyarrow", encoding=mapping.encoding)
    except _READ_ERRORS as exc:
        raise InputDataError(
            f"Cannot read {path}: {exc}. Check that it is a complete {path.suffix or 'CSV'} file "
            f"(for CSV, set `encoding:` in the mapping file if it is not {mapping.encoding})."
        ) from exc


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

    def read(self, table: str) -> RawTable:
        path = self._path(table)
        sheet = self.mapping.table(table).sheet
        origin = f"{path}" + (f", sheet {sheet!r}" if sheet else "")
        return RawTable(_read_file(path, sheet, self.mapping), origin)


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

    def read(self, table: str) -> RawTable:
        return RawTable(_read_file(self.path, self._sheet(table), self.mapping), self.locate(table))


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

    def read(self, table: str) -> RawTable:
        query = self._query(table)
        try:
            with self.engine.connect() as connection:
                frame = pd.read_sql_query(query, connection)
        except sa.exc.SQLAlchemyError as exc:
            raise InputDataError(
                f"The query for {table!r} failed on {self.description}: {exc}. "
                f"Fix tables.{table}.query in the mapping file."
            ) from exc
        return RawTable(frame, self.locate(table))


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
