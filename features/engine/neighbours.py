"""Neighbouring places: the k nearest within a radius (great-circle distance), or shared borders.

``nearest`` ranks other places by distance rounded to a millimetre, ties broken by position
(the engine's sorted ids), so that equal distances on a regular grid give the same neighbours
whatever the last bit of a coordinate. ``contiguity`` makes places neighbours when their
boundaries (WKT polygons in a ``boundary`` column) share a vertex (queen contiguity).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fengqiao.errors import InputDataError

EARTH_RADIUS_KM = 6371.0088
DISTANCE_RESOLUTION_KM = 1e-6
"""Distances are compared after rounding to this (a millimetre): closer is a tie."""


@dataclass(frozen=True)
class NeighbourParams:
    """``nearest``: up to ``k`` nearest other places within ``radius_km``; ``contiguity``: the places
    sharing a boundary vertex. Either way weighted exp(-distance / scale_km) between centres."""

    k: int = 8
    radius_km: float = 15.0
    scale_km: float = 5.0
    rule: Literal["nearest", "contiguity"] = "nearest"

    @property
    def columns(self) -> tuple[str, ...]:
        """The region columns the rule reads."""
        return ("lat", "lon") if self.rule == "nearest" else ("lat", "lon", "boundary")

    def zh_words(self, value: str) -> str:
        if self.rule == "nearest":
            return f"{self.radius_km:g}公里内邻近村社 {value} 个"
        return f"接壤村社 {value} 个"

    def en_words(self, value: str) -> str:
        if self.rule == "nearest":
            return f"{value} neighbouring villages within {self.radius_km:g} km"
        return f"{value} bordering villages"


@dataclass(frozen=True)
class Neighbours:
    """Each place's neighbours as a CSR list: ``indices[indptr[v]:indptr[v + 1]]``, nearest first."""

    indptr: np.ndarray
    indices: np.ndarray
    distances_km: np.ndarray
    weights: np.ndarray

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)


def find_neighbours(
    lat: np.ndarray, lon: np.ndarray, params: NeighbourParams = NeighbourParams(), boundaries: np.ndarray | None = None
) -> Neighbours:
    """Each place's neighbours under ``params.rule`` (never the place itself)."""
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    if params.rule == "contiguity":
        if boundaries is None:
            raise InputDataError("the contiguity neighbour rule needs a `boundary` column (WKT polygons) in regions")
        pairs = _shared_vertex_pairs(boundaries)
    else:
        pairs = _nearest_pairs(lat, lon, params)
    source, target = pairs
    distance = _rounded_km(_haversine_km(lat[source], lon[source], lat[target], lon[target]))
    order = np.lexsort((target, distance, source))
    source, target, distance = source[order], target[order], distance[order]
    if params.rule == "nearest":
        keep = (_rank_within(source) < params.k) & (distance <= params.radius_km)
        source, target, distance = source[keep], target[keep], distance[keep]
    indptr = np.zeros(len(lat) + 1, dtype=np.int64)
    np.cumsum(np.bincount(source, minlength=len(lat)), out=indptr[1:])
    return Neighbours(indptr, target.astype(np.int64), distance, np.exp(-distance / params.scale_km))


def _nearest_pairs(lat: np.ndarray, lon: np.ndarray, params: NeighbourParams) -> tuple[np.ndarray, np.ndarray]:
    """(place, other place) candidate pairs that hold each place's k nearest within the radius.

    The ``k + 1 + _TIE_MARGIN`` nearest of each place are candidates; where the farthest of them
    could still tie with the k-th (or lie within the radius), every place within that distance
    is added, so that ties are decided by the rule, not by the tree.
    """
    n = len(lat)
    if n < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    from sklearn.neighbors import BallTree  # here: scikit-learn costs seconds to import, and only this needs it

    points = np.radians(np.column_stack([lat, lon]))
    tree = BallTree(points, metric="haversine")
    m = min(n, params.k + 1 + _TIE_MARGIN)
    _, idx = tree.query(points, k=m)
    source = np.repeat(np.arange(n), m)
    target = idx.ravel().astype(np.int64)
    distance = _rounded_km(_haversine_km(lat[source], lon[source], lat[target], lon[target])).reshape(n, m)
    distance[idx == np.arange(n)[:, None]] = np.inf  # the place itself is never its neighbour
    ranked = np.sort(distance, axis=1)
    kth = ranked[:, params.k - 1] if params.k <= m - 1 else np.full(n, np.inf)
    reach = np.minimum(kth, params.radius_km)
    unsure = np.flatnonzero((m < n) & (ranked[:, -1] <= reach)) if m < n else np.empty(0, dtype=np.int64)
    pairs_s, pairs_t = [source], [target]
    if len(unsure):
        found = tree.query_radius(points[unsure], r=(reach[unsure] + 2 * DISTANCE_RESOLUTION_KM) / EARTH_RADIUS_KM)
        pairs_s.append(np.repeat(unsure, [len(f) for f in found]))
        pairs_t.append(np.concatenate(found).astype(np.int64))
    source, target = np.concatenate(pairs_s), np.concatenate(pairs_t)
    unique = np.unique(source * n + target)
    source, target = np.divmod(unique, n)
    other = source != target
    return source[other], target[other]


_TIE_MARGIN = 8
"""Extra nearest places fetched beyond k, so that ties at the k-th are rarely looked up again."""


def _rank_within(source: np.ndarray) -> np.ndarray:
    """Position of each entry within its run of equal ``source`` values (sorted by source)."""
    starts = np.flatnonzero(np.r_[True, source[1:] != source[:-1]]) if len(source) else np.empty(0, dtype=np.int64)
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(source)]))
    return np.arange(len(source)) - run_start


def _rounded_km(distance_km: np.ndarray) -> np.ndarray:
    return np.round(distance_km / DISTANCE_RESOLUTION_KM) * DISTANCE_RESOLUTION_KM


def _haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


_NUMBER_PAIR = re.compile(r"(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s+(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)")


def _shared_vertex_pairs(boundaries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(place, other place) pairs whose WKT boundaries share a vertex (rounded to ~1 cm)."""
    places, keys = [], []
    for i, wkt in enumerate(boundaries):
        if not isinstance(wkt, str):
            continue
        for x, y in _NUMBER_PAIR.findall(wkt):
            places.append(i)
            keys.append((round(float(x), 7), round(float(y), 7)))
    if not places:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    _, vertex = np.unique(np.array(keys), axis=0, return_inverse=True)
    by_vertex = np.unique(np.column_stack([vertex.ravel(), places]), axis=0)
    starts = np.flatnonzero(np.r_[True, by_vertex[1:, 0] != by_vertex[:-1, 0]])
    source, target = [], []
    for members in np.split(by_vertex[:, 1], starts[1:]):
        for a in members:
            source.extend([a] * (len(members) - 1))
            target.extend(members[members != a])
    pairs = np.unique(np.column_stack([source, target]), axis=0) if source else np.empty((0, 2), dtype=np.int64)
    return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
