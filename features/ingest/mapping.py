"""The column-mapping file: how one platform's export maps onto the contracts.

A new data source is configuration, not code (DESIGN.md). The YAML file names, per table,
which source column is which contract column, how the platform's codes translate into the
contract's codes, extra date formats, and where the table is (file, sheet or SQL query).
``docs/ingest.md`` shows an example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from features.contracts import CONTRACTS, LIST_SEPARATOR, TableContract
from features.ingest.privacy import MAINLAND_CHINA, RedactionRule, Redactor
from fengqiao.errors import ConfigurationError
from fengqiao.settings import known_timezone

DEFAULT_DATE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
"""Tried after ISO 8601. Day-first or month-first forms (``05/03/2024``) are deliberately
absent: a platform that writes them must say which in its mapping file."""


def _code_text(value: object) -> str:
    """YAML reads ``是: true`` as a boolean and ``1: 2`` as numbers; codes are compared as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


Scalar = str | int | float | bool


class LookupTable(BaseModel):
    """A code list kept in a file: ``column``'s values are looked up in ``file`` (CSV, or
    Excel/Parquet) under ``key`` and replaced by the ``value`` of that row. Values not found
    are kept, so validation rejects them with a reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(description="Source column whose values are looked up.")
    file: Path = Field(description="The lookup file; a relative path is relative to the mapping file.")
    key: str = Field(description="Column of the lookup file holding the source values.")
    value: str = Field(description="Column of the lookup file holding what to put instead.")

    @field_validator("file")
    @classmethod
    def _relative_to_the_mapping(cls, file: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir")
        return file if file.is_absolute() or base is None else Path(base) / file


class DerivedColumn(BaseModel):
    """A contract column made from source columns: their cells joined by ``separator``
    (``[日期, 时间]`` with ``" "`` gives a timestamp from a date and a time column), or a value
    looked up in a code file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concat: tuple[str, ...] = Field((), description="Source columns whose cells are joined, in order.")
    separator: str = Field("", description="Put between the joined cells.")
    lookup: LookupTable | None = None

    @model_validator(mode="after")
    def _one_recipe(self) -> DerivedColumn:
        if bool(self.concat) == (self.lookup is not None):
            raise ValueError("a derived column has either `concat:` (source columns) or `lookup:`, not both or none")
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        return self.concat or (self.lookup.column,)


class Coordinates(BaseModel):
    """Events located by coordinates instead of a region code: ingest assigns each to a region
    (the polygon that holds it when the regions carry boundaries, else the nearest region
    centre within ``max_distance_km``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: str = Field(description="Source column of the latitude (degrees, WGS 84).")
    lon: str = Field(description="Source column of the longitude.")
    max_distance_km: float | None = Field(None, gt=0, description="Farthest region centre (default: the setting).")


class TableMapping(BaseModel):
    """Where one table is and how its columns and codes map onto the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = Field(None, description="File under a directory source (csv, parquet, xlsx).")
    sheet: str | None = Field(None, description="Sheet of an Excel file (default: the table name, or the first sheet).")
    query: str | None = Field(None, description="SQL query of a database source (default: the whole table).")
    columns: dict[str, str | tuple[str, ...]] = Field(
        default_factory=dict, description="Source column → contract column, or a list of contract columns it feeds."
    )
    constants: dict[str, Scalar] = Field(default_factory=dict, description="Contract column → value of every row.")
    defaults: dict[str, Scalar] = Field(default_factory=dict, description="Contract column → value where a cell is empty.")
    derived: dict[str, DerivedColumn] = Field(default_factory=dict, description="Contract column → how it is made.")
    coordinates: Coordinates | None = Field(None, description="Assign village_id from event coordinates.")
    timezone: str | None = Field(None, description="Zone of this table's timestamps written without an offset.")
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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        return zone if zone is None else known_timezone(zone)

    @property
    def targets(self) -> dict[str, tuple[str, ...]]:
        """Source column → the contract columns it feeds."""
        return {source: (target,) if isinstance(target, str) else tuple(target) for source, target in self.columns.items()}

    def source_name(self, contract_column: str) -> str:
        """The source column that holds ``contract_column`` (itself when not renamed)."""
        for source, targets in self.targets.items():
            if contract_column in targets:
                return source
        return contract_column

    def provided(self) -> set[str]:
        """Contract columns made by the mapping itself (constants, derived, coordinates)."""
        made = set(self.constants) | set(self.derived)
        return made | ({"village_id"} if self.coordinates else set())


class RedactionConfig(BaseModel):
    """A country's redaction rules (the default: mainland ID-card and phone numbers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[RedactionRule, ...]
    candidate: str | None = Field(None, description="RE2 pattern every match contains (a fast pre-filter).")

    @field_validator("rules")
    @classmethod
    def _compiles(cls, rules: tuple[RedactionRule, ...]) -> tuple[RedactionRule, ...]:
        for rule in rules:
            try:
                re.compile(rule.pattern)
            except re.error as exc:
                raise ValueError(f"redaction pattern {rule.pattern!r} is not a regular expression: {exc}") from exc
        return rules


class SourceMapping(BaseModel):
    """A whole platform export: per-table mappings and settings shared by all tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date_formats: tuple[str, ...] = Field((), description="strptime formats tried for every table.")
    null_values: tuple[str, ...] = Field((), description="Extra cell values that mean 'empty' (e.g. 无, -).")
    encoding: str = Field("utf-8", description="Text encoding of CSV files (utf-8, gbk, gb18030 …).")
    redaction: RedactionConfig | None = Field(None, description="Redaction rules replacing the mainland defaults.")
    tables: dict[str, TableMapping] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_exist_in_contracts(self, info: ValidationInfo) -> SourceMapping:
        contracts: Mapping[str, TableContract] = (info.context or {}).get("contracts", CONTRACTS)
        for table, mapping in self.tables.items():
            if table not in contracts:
                raise ValueError(f"unknown table {table!r}; the tables are {', '.join(contracts)}")
            contract = contracts[table]
            fed = [t for targets in mapping.targets.values() for t in targets]
            named = fed + list(mapping.codes) + list(mapping.constants) + list(mapping.defaults) + list(mapping.derived)
            for column in named:
                if column not in contract.column_names:
                    raise ValueError(
                        f"tables.{table}: {column!r} is not a column of {table}; "
                        f"its columns are {', '.join(contract.column_names)}"
                    )
            made = fed + list(mapping.constants) + list(mapping.derived)
            if mapping.coordinates:
                if table == "regions" or "village_id" not in contract.column_names:
                    raise ValueError(f"tables.{table}.coordinates: only event tables with a village_id are placed "
                                     f"by coordinates")
                made.append("village_id")
            repeated = sorted({c for c in made if made.count(c) > 1})
            if repeated:
                raise ValueError(f"tables.{table}: {repeated} are given more than once (columns, constants, "
                                 f"derived, coordinates)")
        return self

    def table(self, name: str) -> TableMapping:
        return self.tables.get(name, TableMapping())

    def date_formats_for(self, name: str) -> tuple[str, ...]:
        """The table's own formats, then the file's, then the defaults (ISO 8601 comes first of all)."""
        return tuple(dict.fromkeys(self.table(name).date_formats + self.date_formats + DEFAULT_DATE_FORMATS))

    @property
    def redactor(self) -> Redactor:
        if self.redaction is None:
            return MAINLAND_CHINA
        return Redactor(self.redaction.rules, self.redaction.candidate)


def load_mapping(path: Path | None, contracts: Mapping[str, TableContract] = CONTRACTS) -> SourceMapping:
    """The mapping in ``path``, checked against ``contracts`` (the built-in tables and any the
    city's configuration adds); without one, source columns already carry the contract names."""
    if path is None:
        return SourceMapping()
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"Cannot read the mapping file {path}: {exc}") from exc
    try:
        return SourceMapping.model_validate(content, context={"base_dir": path.parent, "contracts": contracts})
    except ValidationError as exc:
        raise ConfigurationError(f"The mapping file {path} is not valid:\n{exc}") from exc


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
