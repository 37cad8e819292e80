"""Neighbouring villages by great-circle distance (a BallTree with the haversine metric)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import BallTree

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class NeighbourParams:
    """Up to ``k`` nearest other villages within ``radius_km``, weighted exp(-distance / scale_km)."""

    k: int = 8
    radius_km: float = 15.0
    scale_km: float = 5.0


@dataclass(frozen=True)
class Neighbours:
    """Each village's neighbours as a CSR list: ``indices[indptr[v]:indptr[v + 1]]``, nearest first."""

    indptr: np.ndarray
    indices: np.ndarray
    distances_km: np.ndarray
    weights: np.ndarray

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)


def find_neighbours(lat: np.ndarray, lon: np.ndarray, params: NeighbourParams = NeighbourParams()) -> Neighbours:
    """The ``params.k`` nearest villages (never the village itself) within ``params.radius_km``."""
    n = len(lat)
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return Neighbours(np.zeros(1, dtype=np.int64), empty, empty.astype(float), empty.astype(float))
    points = np.radians(np.column_stack([np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)]))
    k = min(params.k + 1, n)
    dist, idx = BallTree(points, metric="haversine").query(points, k=k)
    dist_km = dist * EARTH_RADIUS_KM
    keep = idx != np.arange(n)[:, None]
    # Where duplicates at distance 0 pushed a village out of its own list, drop the farthest instead.
    lacks_self = keep.all(axis=1)
    keep[lacks_self, -1] = False
    keep &= dist_km <= params.radius_km
    counts = keep.sum(axis=1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    distances = dist_km[keep]
    return Neighbours(
        indptr=indptr,
        indices=idx[keep].astype(np.int64),
        distances_km=distances,
        weights=np.exp(-distances / params.scale_km),
    )
