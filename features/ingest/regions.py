"""Placing events that carry coordinates instead of a region code.

When the accepted regions carry boundaries, an event belongs to the polygon that holds it
(an R-tree, shapely's STRtree, finds the candidates; a point on a shared border goes to the
first region in source order). Otherwise, or for regions without a boundary, it belongs to the
nearest region centre (a BallTree on the haversine distance) if that centre is within the
allowed distance. An event that neither rule places is rejected as ``unplaced``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from sklearn.neighbors import BallTree

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), to turn haversine angles into kilometres."""


class RegionLocator:
    """The accepted regions as a spatial index: ids, centres and (where given) boundaries."""

    def __init__(self, ids: np.ndarray, lat: np.ndarray, lon: np.ndarray, boundaries: np.ndarray | None) -> None:
        self.ids = np.asarray(ids, dtype=object)
        self.centres = BallTree(np.radians(np.column_stack([lat, lon])), metric="haversine") if len(self.ids) else None
        self.polygons = None if boundaries is None else np.asarray(boundaries, dtype=object)
        has = np.zeros(len(self.ids), dtype=bool) if self.polygons is None else shapely.get_type_id(self.polygons) >= 0
        self.bounded = np.flatnonzero(has)
        self.tree = shapely.STRtree(self.polygons[self.bounded]) if len(self.bounded) else None
        self.all_bounded = len(self.ids) > 0 and len(self.bounded) == len(self.ids)

    @classmethod
    def from_regions(cls, regions: pd.DataFrame) -> RegionLocator:
        """The locator of a warehouse ``regions`` table (``boundary`` as WKT, when present)."""
        boundaries = None
        if "boundary" in regions.columns and regions["boundary"].notna().any():
            boundaries = shapely.from_wkt(regions["boundary"].to_numpy(dtype=object, na_value=None))
        return cls(regions["village_id"].to_numpy(dtype=object), regions["lat"].to_numpy(float),
                   regions["lon"].to_numpy(float), boundaries)

    def assign(self, lat: np.ndarray, lon: np.ndarray, max_distance_km: float) -> np.ndarray:
        """The region id of each point (None where no region is found); NaN coordinates are
        never placed."""
        lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
        out = np.full(len(lat), None, dtype=object)
        valid = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        todo = np.flatnonzero(valid)
        if self.tree is not None and len(todo):
            points = shapely.points(lon[todo], lat[todo])
            point, region = self.tree.query(points, predicate="intersects")
            if len(point):
                first = pd.Series(self.bounded[region]).groupby(point).min()
                out[todo[first.index.to_numpy()]] = self.ids[first.to_numpy()]
            todo = todo[out[todo] == None]  # noqa: E711 (element-wise on an object array)
        if not self.all_bounded and len(todo) and self.centres is not None:
            angle, nearest = self.centres.query(np.radians(np.column_stack([lat[todo], lon[todo]])), k=1)
            near = angle[:, 0] * EARTH_RADIUS_KM <= max_distance_km
            out[todo[near]] = self.ids[nearest[near, 0]]
        return out
