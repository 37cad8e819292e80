"""The map layer: every village a token may see, with its coordinates and latest level, in one
answer — what the dashboard's map draws (20k points for a province fit one response).

Coordinates come from the warehouse's ``regions`` table (the contract's ``lat``/``lon``, WGS84
degrees), aligned once with each live state's village ids and kept until a reload replaces that
state. A village missing from ``regions`` has null coordinates (the page leaves it off the map).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
from pydantic import Field

from features.warehouse import read_table
from serving.errors import NOT_VISIBLE
from serving.schemas import Level, Model, Place, Probability
from serving.scored import ScoredEntities
from serving.tokens import Principal
from serving.views import _change, _number, visible


class MapVillage(Place):
    lat: float | None = Field(description="Latitude (degrees north); null when regions has none.")
    lon: float | None = Field(description="Longitude (degrees east); null when regions has none.")
    probability: Probability
    level: Level
    change: float | None = Field(description="Probability change since the previous snapshot (null: not scored then).")


class VillageMap(Model):
    snapshot: date = Field(description="The snapshot the levels are from.")
    model_version: str
    total: int
    items: list[MapVillage] = Field(description="Every visible village scored at the snapshot, by id.")


def _aligned_coordinates(warehouse: Path, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of villages ``ids`` from ``regions`` (NaN where unknown)."""
    regions = read_table(warehouse, "regions")
    lat, lon = np.full(len(ids), np.nan), np.full(len(ids), np.nan)
    if regions is None or not {"lat", "lon"} <= set(regions.columns):
        return lat, lon
    table = regions.set_index(regions["village_id"].astype("str"))
    table = table[~table.index.duplicated()]
    position = table.index.get_indexer(ids)
    known = position >= 0
    lat[known] = table["lat"].to_numpy(dtype=float)[position[known]]
    lon[known] = table["lon"].to_numpy(dtype=float)[position[known]]
    return lat, lon


class VillageCoordinates:
    """The coordinates of the live villages, read again when the live state changes (a reload).
    Used from the event loop only (async routes), so one request at a time touches it."""

    def __init__(self, warehouse: Path) -> None:
        self.warehouse = Path(warehouse)
        self._for: ScoredEntities | None = None
        self._lat_lon: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))

    def of(self, scored: ScoredEntities) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude aligned with ``scored.places.ids``."""
        if self._for is not scored:
            self._lat_lon = _aligned_coordinates(self.warehouse, scored.places.ids)
            self._for = scored
        return self._lat_lon


def village_map(scored: ScoredEntities, principal: Principal, coordinates: VillageCoordinates,
                county: str | None) -> VillageMap:
    """The visible villages (of ``county`` only, if given) scored at the latest snapshot."""
    if county is not None and principal.county not in (None, county):
        raise NOT_VISIBLE
    s = scored.latest
    mask = visible(scored, principal) & scored.present[s]
    if county is not None:
        mask &= scored.places.in_county(county)
    lat, lon = coordinates.of(scored)
    items = [{**scored.places.fields(i), "lat": _number(lat[i]), "lon": _number(lon[i]),
              "probability": float(scored.probability[s, i]), "level": scored.level[s, i],
              "change": _change(scored, s, i)} for i in np.flatnonzero(mask)]
    # Plain dicts validated once: pydantic-core builds the 20k item models far faster than Python.
    return VillageMap.model_validate({"snapshot": scored.snapshots[s], "model_version": scored.version,
                                      "total": len(items), "items": items})
