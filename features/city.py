"""A city's configuration file: the tables, event sources, entity kinds and calendar it adds.

One YAML file (``FENGQIAO_CITY_CONFIG``) declares what a city records beyond DESIGN.md's
tables, once, for every stage: ``ingest`` validates an extra table from its contract here, and
``features`` counts it as the sources here say. ``docs/features.md`` shows a complete file::

    tables:                      # extra input tables: their contracts
      hotline_calls:
        key: call_id
        event_time: called_at
        columns:
          - {name: call_id, kind: id}
          - {name: village_id, kind: id, references: regions.village_id}
          - {name: called_at, kind: timestamp}
          - {name: topic, kind: category, codes: [wages, noise]}
    sources:                     # what to count (an EventSource each)
      - name: hotline_calls
        table: hotline_calls
        time: called_at
        group: petitions
        counters:
          - {stem: hotline_calls, zh: 热线来电, en: hotline calls, windows: [7, 30]}
    entities:                    # entity kinds beyond village and project
      - {name: town, table: regions, id: town_id, via: village_id}
    calendar:                    # the city's own holiday (default: Spring Festival)
      file: holidays.csv         # a `date` column; relative to this file
      name: christmas
      zh: 圣诞节
      en: Christmas
      season_days: 28
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.calendar import HolidayCalendar, read_holiday_file, spring_festival_calendar
from features.contracts import CONTRACTS, Column, TableContract
from features.engine.catalogue import DECAY_DAYS, WINDOWS_DAYS, Catalogue, EntityKind, default_catalogue
from features.engine.declarations import EventSource
from fengqiao.errors import ConfigurationError


class _Table(BaseModel):
    """An extra input table as the file declares it (``TableContract`` without its name)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    columns: list[Column]
    event_time: str | None = None
    entity: str = "village_id"
    time_order: list[tuple[str, str]] = Field(default_factory=list)

    def contract(self, name: str) -> TableContract:
        return TableContract(name=name, key=self.key, columns=tuple(self.columns), event_time=self.event_time,
                             entity=self.entity, time_order=tuple(self.time_order))  # fmt: skip


class _Calendar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: Path
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str
    en: str
    season_days: int = Field(14, ge=1)


class _CityFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tables: dict[str, _Table] = Field(default_factory=dict)
    sources: list[EventSource] = Field(default_factory=list)
    entities: list[EntityKind] = Field(default_factory=list)
    calendar: _Calendar | None = None


@dataclass(frozen=True)
class City:
    """Everything a city declares: the input contracts, the feature catalogue and the calendar."""

    contracts: dict[str, TableContract]
    catalogue: Catalogue
    calendar: HolidayCalendar | None = field(default_factory=spring_festival_calendar)
    source: str = "defaults"


def load_city(
    path: Path | None, windows_days: tuple[int, ...] = WINDOWS_DAYS, decay_days: tuple[int, ...] = DECAY_DAYS
) -> City:
    """DESIGN.md's tables and sources, plus what the city file at ``path`` adds (None: nothing).

    ``windows_days`` and ``decay_days`` are the main counts' windows and decay times.
    """
    defaults = default_catalogue(windows_days, decay_days)
    if path is None:
        return City(dict(CONTRACTS), defaults)
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        declared = _CityFile.model_validate(data)
    except OSError as err:
        raise ConfigurationError(f"city configuration {path}: cannot read it ({err.strerror})") from err
    except (yaml.YAMLError, ValidationError) as err:
        raise ConfigurationError(f"city configuration {path} is not valid: {err}") from err
    contracts = dict(CONTRACTS)
    for name, table in declared.tables.items():
        if name in contracts:
            raise ConfigurationError(f"city configuration {path}: table {name!r} is a standard table; name it otherwise")
        contracts[name] = table.contract(name)
    _check_sources(path, declared.sources, contracts)
    catalogue = Catalogue(entities=(*defaults.entities, *declared.entities),
                          sources=(*defaults.sources, *declared.sources))  # fmt: skip
    calendar = spring_festival_calendar()
    if declared.calendar is not None:
        c = declared.calendar
        calendar = read_holiday_file(path.parent / c.file, c.name, c.zh, c.en, c.season_days)
    return City(contracts, catalogue, calendar, str(path))


def _check_sources(path: Path, sources: list[EventSource], contracts: dict[str, TableContract]) -> None:
    """Every declared source reads a known table and only columns of its contract."""
    for source in sources:
        contract = contracts.get(source.table)
        if contract is None:
            raise ConfigurationError(
                f"city configuration {path}: source {source.name!r} reads table {source.table!r}, which is "
                f"neither a standard table nor declared under tables:"
            )
        unknown = sorted(source.columns() - set(contract.column_names))
        if unknown:
            raise ConfigurationError(
                f"city configuration {path}: source {source.name!r} reads {', '.join(unknown)}, "
                f"which table {source.table!r} does not declare"
            )


