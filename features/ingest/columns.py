"""A source table's columns → the contract's columns, as the mapping file says.

Each contract column comes from one source column (renamed, or under its own name), from a
constant, or is derived (joined cells, a looked-up code); empty cells take the mapping's
default. A required column that nothing provides stops the table; an optional one is left out
and reported, never filled with an invented value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from features.contracts import TableContract
from features.ingest.mapping import DerivedColumn, LookupTable, TableMapping, translate_codes
from features.ingest.parsing import as_text
from fengqiao.errors import ConfigurationError, InputDataError

Treatment = Literal["identifier", "id", "text", "name"]
"""How a source cell may be shown in the rejects: pseudonymised, as is, redacted, or never."""


@dataclass(frozen=True)
class MappedColumns:
    """What mapping did to one table's columns, for the rejects and the report."""

    shown: dict[str, Treatment]
    """Source column → how its cells are shown in the rejects (every source column used)."""
    extra_columns: tuple[str, ...]
    """Source columns that map to nothing and were ignored."""
    missing_optional_columns: tuple[str, ...]
    """Optional contract columns the source lacks: absent from the warehouse table."""


def map_columns(frame: pd.DataFrame, contract: TableContract, mapping: TableMapping, origin: str,
                null_values: tuple[str, ...] = ()) -> tuple[pd.DataFrame, MappedColumns]:
    """The source cells under contract names, in contract order, without name columns and
    without the optional columns the source lacks (``village_id`` located by coordinates is
    added later, by ``regions.py``).

    Raises InputDataError when a required contract column has no source: the table cannot be
    ingested at all, and the message says where to map it.
    """
    direct = {c.name: mapping.source_name(c.name) for c in contract.columns}
    direct = {name: source for name, source in direct.items() if source in frame.columns}
    for derived in mapping.derived.values():
        _require_sources(frame, derived.sources, contract, origin)
    if mapping.coordinates:
        _require_sources(frame, (mapping.coordinates.lat, mapping.coordinates.lon), contract, origin)
    provided = set(direct) | mapping.provided()
    required = [c for c in contract.required_columns if c not in provided]
    if required:
        raise InputDataError(
            f"Table {contract.name!r} ({origin}) has no column for {', '.join(map(repr, required))}, which "
            f"it cannot do without. Add it to the export, or map the platform's column to it under "
            f"tables.{contract.name}.columns in the mapping file."
        )
    cells = {}
    for column in contract.columns:
        name = column.name
        if not column.in_warehouse or name == "village_id" and mapping.coordinates:
            continue
        if name in mapping.constants:
            values = pd.Series(_text(mapping.constants[name]), index=frame.index, dtype="str")
        elif name in mapping.derived:
            values = _derive(frame, mapping.derived[name], null_values)
        elif name in direct:
            values = frame[direct[name]]
        else:
            continue
        if name in mapping.defaults:
            values = as_text(values, null_values).fillna(_text(mapping.defaults[name]))
        cells[name] = values
    shown = _treatments(direct, contract, mapping)
    report = MappedColumns(
        shown=shown,
        extra_columns=tuple(str(c) for c in frame.columns if c not in shown),
        missing_optional_columns=tuple(
            c.name for c in contract.columns
            if c.in_warehouse and c.name not in cells and not (c.name == "village_id" and mapping.coordinates)
        ),
    )
    return pd.DataFrame(cells, index=frame.index), report


def _text(value: str | int | float | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _require_sources(frame: pd.DataFrame, sources: tuple[str, ...], contract: TableContract, origin: str) -> None:
    missing = [s for s in sources if s not in frame.columns]
    if missing:
        raise InputDataError(
            f"Table {contract.name!r} ({origin}) has no column {', '.join(map(repr, missing))}, which the "
            f"mapping file uses under tables.{contract.name}. Fix the name there or add the column to the export."
        )


def _derive(frame: pd.DataFrame, derived: DerivedColumn, null_values: tuple[str, ...]) -> pd.Series:
    """A derived column as text: joined cells (empty when any part is empty), or looked-up codes."""
    if derived.lookup is not None:
        return translate_codes(as_text(frame[derived.lookup.column], null_values), read_lookup(derived.lookup), False)
    parts = [as_text(frame[c], null_values) for c in derived.concat]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + derived.separator + part
    return joined


def read_lookup(lookup: LookupTable) -> dict[str, str]:
    """The code table of a lookup file: key → value, both as text."""
    path = Path(lookup.file)
    try:
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
        elif path.suffix.lower() in (".xlsx", ".xlsm"):
            table = pd.read_excel(path, dtype="str")
        else:
            table = pd.read_csv(path, dtype="str", encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"Cannot read the lookup file {path}: {type(exc).__name__}") from None
    missing = [c for c in (lookup.key, lookup.value) if c not in table.columns]
    if missing:
        raise ConfigurationError(f"The lookup file {path} has no column {', '.join(map(repr, missing))}.")
    keys, values = as_text(table[lookup.key]), as_text(table[lookup.value])
    return dict(zip(keys[keys.notna()].tolist(), values[keys.notna()].tolist()))


def _treatments(direct: dict[str, str], contract: TableContract, mapping: TableMapping) -> dict[str, Treatment]:
    """How each used source column is shown: a name never; a column feeding an identifier as a
    pseudonym; one feeding only id columns as is (ids must stay findable in the source);
    anything else redacted."""
    feeds: dict[str, list[str]] = {}
    for name, source in direct.items():
        if name not in mapping.constants and name not in mapping.derived:
            feeds.setdefault(str(source), []).append(name)
    for name, derived in mapping.derived.items():
        for source in derived.sources:
            feeds.setdefault(source, []).append(name)
    if mapping.coordinates:
        for source in (mapping.coordinates.lat, mapping.coordinates.lon):
            feeds.setdefault(source, []).append("lat")
    shown: dict[str, Treatment] = {}
    for source, names in feeds.items():
        columns = [contract.column(n) if n in contract.column_names else None for n in names]
        roles = {c.role for c in columns if c is not None}
        if "name" in roles:
            shown[source] = "name"
        elif "identifier" in roles:
            shown[source] = "identifier"
        elif all(c is not None and c.kind in ("id", "id_list") for c in columns):
            shown[source] = "id"
        else:
            shown[source] = "text"
    return shown
