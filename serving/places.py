"""Where each scored entity is — name, town, county — and which county tokens may see it.

A village belongs to its county. A project belongs to **every county of its affected villages**
(a reservoir flooding villages of two counties concerns both county offices); its *home* county
and town, shown in lists and used for county medians, are those of its first affected village
(the training data's rule, ``models.data``). A project without known affected villages, or a
village missing from ``regions``, belongs to no county: only city and admin tokens see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.contracts import LIST_SEPARATOR


@dataclass(frozen=True)
class Places:
    """Per entity (aligned with ``ids``): display fields, the counties it belongs to and, for
    projects, its affected villages and their counties. Arrays of objects; ``None`` where the
    city has no value."""

    ids: np.ndarray
    name: np.ndarray
    kind: np.ndarray
    town_id: np.ndarray
    town_name: np.ndarray
    county_id: np.ndarray
    county_name: np.ndarray
    counties: tuple[tuple[str, ...], ...]
    villages: tuple[tuple[str, ...], ...]
    village_county: dict[str, str | None] = field(default_factory=dict)
    _masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for county in sorted({c for cs in self.counties for c in cs}):
            self._masks[county] = np.fromiter((county in cs for cs in self.counties), bool, len(self.ids))

    @property
    def county_ids(self) -> list[str]:
        """Every county some entity belongs to."""
        return list(self._masks)

    def in_county(self, county: str) -> np.ndarray:
        """Boolean mask of the entities that belong to ``county`` (all False for an unknown one)."""
        mask = self._masks.get(county)
        return mask if mask is not None else np.zeros(len(self.ids), dtype=bool)

    def fields(self, i: int) -> dict[str, str | None]:
        """Entity ``i``'s id, name, and home county and town (``schemas.Place``)."""
        return {"id": self.ids[i], "name": self.name[i], "county_id": self.county_id[i],
                "county_name": self.county_name[i], "town_id": self.town_id[i], "town_name": self.town_name[i]}

    def town_mask(self, town: str) -> np.ndarray:
        return self.town_id == town


def _column(table: pd.DataFrame, name: str, index: pd.Index) -> np.ndarray:
    """A table column reindexed to ``index`` as objects, None where missing (or no such column)."""
    if name not in table.columns:
        return np.full(len(index), None, dtype=object)
    values = table[name].astype("str").where(table[name].notna(), None).reindex(index)
    return np.array([None if pd.isna(v) else v for v in values], dtype=object)


def village_places(ids: np.ndarray, regions: pd.DataFrame) -> Places:
    """The places of villages ``ids`` from the ``regions`` table."""
    table = regions.set_index(regions["village_id"].astype("str"))
    index = pd.Index(ids)
    county = _column(table, "county_id", index)
    return Places(ids=np.asarray(ids, dtype=object), name=_column(table, "village_name", index),
                  kind=_column(table, "kind", index), town_id=_column(table, "town_id", index),
                  town_name=_column(table, "town_name", index), county_id=county,
                  county_name=_column(table, "county_name", index),
                  counties=tuple(() if c is None else (c,) for c in county),
                  villages=tuple(() for _ in ids))


def project_places(ids: np.ndarray, projects: pd.DataFrame | None, regions: pd.DataFrame) -> Places:
    """The places of projects ``ids``: every county of their affected villages, the first
    village's town and county as home (see the module docstring)."""
    index = pd.Index(ids)
    if projects is None:
        projects = pd.DataFrame({"project_id": pd.Series([], dtype="str")})
    table = projects.set_index(projects["project_id"].astype("str"))
    listed = _column(table, "village_ids", index)
    villages = tuple(tuple(v for v in text.split(LIST_SEPARATOR) if v) if text else () for text in listed)
    region = village_places(np.array(sorted({v for vs in villages for v in vs}), dtype=object), regions)
    where = {v: i for i, v in enumerate(region.ids)}
    first = [where.get(vs[0]) if vs else None for vs in villages]

    def home(values: np.ndarray) -> np.ndarray:
        return np.array([None if i is None else values[i] for i in first], dtype=object)

    counties = tuple(tuple(dict.fromkeys(region.county_id[where[v]] for v in vs
                                         if v in where and region.county_id[where[v]] is not None))
                     for vs in villages)
    return Places(ids=np.asarray(ids, dtype=object), name=_column(table, "name", index),
                  kind=_column(table, "kind", index), town_id=home(region.town_id), town_name=home(region.town_name),
                  county_id=home(region.county_id), county_name=home(region.county_name), counties=counties,
                  villages=villages, village_county=dict(zip(region.ids, region.county_id)))
