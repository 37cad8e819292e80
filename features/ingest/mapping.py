"""The column-mapping file: how one platform's export maps onto the contracts.

A new data source is configuration, not code (DESIGN.md). The YAML file names, per table,
which source column is which contract column, how the platform's codes translate into the
contract's codes, extra date formats, and where the table is (file, sheet or SQL query).
``docs/ingest.md`` shows an example.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.contracts import CONTRACTS, LIST_SEPARATOR, TableContract
from fengqiao.errors import ConfigurationError, InputDataError

DEFAULT_DATE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
"""Tried after ISO 8601. Day-first or month-first forms (``05/03/2024``) are deliberately
absent: a platform that writes them must say which in its mapping file."""


def _code_text(value: object) -> str:
    """YAML reads ``是: true`` as a boolean and ``1: 2`` as numbers; codes are compared as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


class TableMapping(BaseModel):
    """Where one table is and how its columns and codes map onto the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = Field(None, description="File under a directory source (csv, parquet, xlsx).")
    sheet: str | None = Field(None, description="Sheet of an Excel file (default: the table name, or the first sheet).")
    query: str | None = Field(None, description="SQL query of a database source (default: the whole table).")
    columns: dict[str, str] = Field(default_factory=dict, description="Source column → contract column.")
    codes: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Contract column → {source code: contract code}."
    )
    date_formats: tuple[str, ...] = Field((), description="strptime formats tried for this table's timestamps.")

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_text(cls, codes: object) -> object:
        if not isinstance(codes, dict):
            return codes
        return {
            column: {_code_text(k): _code_text(v) for k, v in table.items()} if isinstance(table, dict) else table
            for column, table in codes.items()
        }

    def source_name(self, contract_column: str) -> str:
        """The source column that holds ``contract_column`` (itself when not renamed)."""
        for source, target in self.columns.items():
            if target == contract_column:
                return source
        return contract_column


class SourceMapping(BaseModel):
    """A whole platform export: per-table mappings and settings shared by all tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date_formats: tuple[str, ...] = Field((), description="strptime formats tried for every table.")
    null_values: tuple[str, ...] = Field((), description="Extra cell values that mean 'empty' (e.g. 无, -).")
    encoding: str = Field("utf-8", description="Text encoding of CSV files (utf-8, gbk, gb18030 …).")
    tables: dict[str, TableMapping] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_exist_in_contracts(self) -> SourceMapping:
        for table, mapping in self.tables.items():
            if table not in CONTRACTS:
                raise ValueError(f"unknown table {table!r}; the tables are {', '.join(CONTRACTS)}")
            contract = CONTRACTS[table]
            targets = list(mapping.columns.values()) + list(mapping.codes)
            for column in targets:
                if column not in contract.column_names:
                    raise ValueError(
                        f"tables.{table}: {column!r} is not a column of {table}; "
                        f"its columns are {', '.join(contract.column_names)}"
                    )
            repeated = {c for c in mapping.columns.values() if list(mapping.columns.values()).count(c) > 1}
            if repeated:
                raise ValueError(f"tables.{table}.columns: several source columns map to {sorted(repeated)}")
        return self

    def table(self, name: str) -> TableMapping:
        return self.tables.get(name, TableMapping())

    def date_formats_for(self, name: str) -> tuple[str, ...]:
        """The table's own formats, then the file's, then the defaults (ISO 8601 comes first of all)."""
        return tuple(dict.fromkeys(self.table(name).date_formats + self.date_formats + DEFAULT_DATE_FORMATS))


def load_mapping(path: Path | None) -> SourceMapping:
    """The mapping in ``path``; without one, source columns already carry the contract names."""
    if path is None:
        return SourceMapping()
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"Cannot read the mapping file {path}: {exc}") from exc
    try:
        return SourceMapping.model_validate(content)
    except ValidationError as exc:
        raise ConfigurationError(f"The mapping file {path} is not valid:\n{exc}") from exc


class MappedColumns(BaseModel):
    """What mapping did to one table's columns, for the report."""

    model_config = ConfigDict(frozen=True)

    source_names: dict[str, str]
    """Contract column → source column, for every contract column found in the source."""
    extra_columns: tuple[str, ...]
    """Source columns that map to nothing and were ignored."""
    missing_optional_columns: tuple[str, ...]
    """Nullable contract columns the source lacks (filled with nulls)."""


def map_columns(
    frame: pd.DataFrame, contract: TableContract, mapping: TableMapping, origin: str
) -> tuple[pd.DataFrame, MappedColumns]:
    """The source frame with contract column names, in contract order, without name columns.

    Raises InputDataError when a required (non-nullable) contract column is missing: the
    table cannot be ingested at all, and the message says where to map it.
    """
    source_names = {}
    for column in contract.columns:
        source = mapping.source_name(column.name)
        if source in frame.columns:
            source_names[column.name] = source
    used = set(source_names.values())
    extra = tuple(str(c) for c in frame.columns if c not in used)
    missing = [c for c in contract.columns if c.name not in source_names]
    required = [c.name for c in missing if not c.nullable]
    if required:
        raise InputDataError(
            f"Table {contract.name!r} ({origin}) has no column for {', '.join(map(repr, required))}. "
            f"Add it to the export, or map the platform's column to it under "
            f"tables.{contract.name}.columns in the mapping file."
        )
    kept = [c.name for c in contract.columns if c.in_warehouse]
    mapped = pd.DataFrame(
        {name: frame[source_names[name]] if name in source_names else pd.Series(pd.NA, index=frame.index, dtype="str")
         for name in kept},
        index=frame.index,
    )
    report = MappedColumns(
        source_names={k: str(v) for k, v in source_names.items() if k in kept},
        extra_columns=extra,
        missing_optional_columns=tuple(c.name for c in missing if c.in_warehouse),
    )
    return mapped, report


def translate_codes(texts: pd.Series, codes: Mapping[str, str], is_list: bool) -> pd.Series:
    """Source codes replaced by contract codes (each item of a ``|``-joined list when
    ``is_list``); values without a translation are kept, so validation can reject them."""
    if not codes:
        return texts
    positions, uniques = pd.factorize(texts)
    if is_list:
        translated = [
            LIST_SEPARATOR.join(codes.get(item.strip(), item.strip()) for item in u.split(LIST_SEPARATOR))
            for u in uniques
        ]
    else:
        translated = [codes.get(u, u) for u in uniques]
    values = pd.array(translated + [None], dtype="str")
    return pd.Series(values.take(positions), index=texts.index, name=texts.name)
