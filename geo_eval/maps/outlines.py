"""Park outlines drawn from their parcels, for maps that have no park boundary layer.

A park's parcels are united (GEOS' coverage union when they tile, as a cadastre does), closed over the
roads between them (a buffer out and back in by half of :data:`OUTLINE_CLOSING_M`), their courtyards
filled and the outline simplified. The outline is drawn, never measured.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

OUTLINE_CLOSING_M = 40.0
"""A park outline made from its parcels is closed over roads narrower than this (metres)."""
OUTLINE_TOLERANCE_M = 2.0
"""The outline is simplified by this much (metres)."""
WGS84 = "EPSG:4326"


def parcels_union(geoms: np.ndarray) -> Any:
    """The union of parcels: GEOS' coverage union when they tile without overlapping, as a cadastre does
    (20,000 parcels in 0.035 s instead of 0.9 s), checked afterwards (valid, and as large as the parcels
    together); the general union otherwise.

    >>> a, b, c = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(0.5, 0, 1.5, 1)
    >>> parcels_union(np.array([a, b])).area, parcels_union(np.array([a, b, c])).area
    (2.0, 2.0)
    """
    polygonal = geoms[np.isin(shapely.get_type_id(geoms), (3, 6))]
    if len(polygonal) == len(geoms):
        union = shapely.coverage_union_all(polygonal)
        total = float(shapely.area(polygonal).sum())
        if shapely.is_valid(union) and abs(union.area - total) <= 1e-9 * max(total, 1.0):
            return union
    return shapely.union_all(geoms)


def without_holes(geom: Any) -> Any:
    """The outer rings of a (multi)polygon: a park's outline, not the courtyards inside it.

    >>> ring = shapely.box(0, 0, 10, 10).difference(shapely.box(4, 4, 6, 6))
    >>> without_holes(ring).area
    100.0
    """
    parts = np.asarray(shapely.get_parts(geom), dtype=object)
    shells = shapely.polygons(shapely.get_exterior_ring(parts))
    return shapely.union_all(shells)


def park_outline(geoms: np.ndarray) -> Any:
    """The outline of one park's parcels (plane coordinates, metres), or None without any."""
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(geoms):
        return None
    union = parcels_union(shapely.make_valid(geoms))
    half = OUTLINE_CLOSING_M / 2
    closed = shapely.buffer(shapely.buffer(union, half, quad_segs=4), -half, quad_segs=4)
    outline = without_holes(shapely.union(closed, union))
    return shapely.simplify(outline, OUTLINE_TOLERANCE_M, preserve_topology=True)


def park_outlines(parcels: gpd.GeoDataFrame, plane_crs: Any) -> gpd.GeoDataFrame:
    """The outline of each park (column ``park``) of ``parcels``, in EPSG:4326, by park name; measured in
    ``plane_crs`` (the run's Gauss-Krüger zone; the parcels' UTM zone when None)."""
    drawn = parcels.loc[parcels.geometry.notna() & ~parcels.geometry.is_empty & parcels["park"].notna()]
    crs = plane_crs if plane_crs else (drawn.estimate_utm_crs() if len(drawn) else WGS84)
    plane = drawn.to_crs(crs)
    geoms = np.asarray(plane.geometry.array, dtype=object)
    codes, names = pd.factorize(plane["park"].astype(str), sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    rows = [(str(p), park_outline(geoms[order[bounds[i] : bounds[i + 1]]])) for i, p in enumerate(names)]
    rows = [(p, g) for p, g in rows if g is not None and not shapely.is_empty(g)]
    out = gpd.GeoDataFrame({"park": [p for p, _ in rows]}, geometry=[g for _, g in rows], crs=plane.crs)
    return out.to_crs(WGS84)
