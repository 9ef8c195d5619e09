"""Mapbox vector tiles (MVT) of parcels, made per request for the maps of large parks.

:func:`mvt_tile` cuts one web-mercator tile ``z/x/y`` out of a GeoDataFrame in EPSG:4326 (or
CGCS2000 EPSG:4490, or GCJ-02-shifted 4326 for a 高德 basemap; see :func:`geo_eval.maps.tile_source`)
or EPSG:3857: the features whose boxes meet the tile (spatial index), projected to tile units
(``extent`` per side, y down), clipped to the tile plus ``buffer`` units, simplified by about one unit
(the detail no zoom can show), rounded to whole units with exterior rings oriented as MVT wants,
and encoded with ``mapbox-vector-tile``. Polygons that vanish at that zoom (no area left in whole
units) are dropped.

Tile units for a point at longitude λ and latitude φ (degrees), zoom z:

    X = extent · (2^z (λ + 180) / 360 − x)
    Y = extent · (2^z (1 − ln(tan φ + sec φ) / π) / 2 − y)

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import box
>>> gdf = gpd.GeoDataFrame({"parcel_id": ["P1"], "grade": ["A"]}, geometry=[box(119.2, 34.6, 119.21, 34.61)], crs=4326)
>>> z, x, y = 12, *lonlat_to_tile(119.205, 34.605, 12)
>>> data = mvt_tile(gdf, z, x, y)
>>> import mapbox_vector_tile
>>> layer = mapbox_vector_tile.decode(data)["parcels"]
>>> layer["features"][0]["properties"]
{'parcel_id': 'P1', 'grade': 'A'}
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["TILE_EXTENT", "lonlat_to_tile", "mvt_tile", "tile_bounds"]

TILE_EXTENT = 4096
"""Units per tile side (the MVT default)."""
MAX_ZOOM = 24
WEB_MERCATOR_HALF = 20037508.342789244
"""Half the width of the EPSG:3857 world, metres."""
MAX_LAT = 85.0511287798066


def _check_tile(z: int, x: int, y: int) -> None:
    if not (0 <= z <= MAX_ZOOM):
        raise ValueError(f"瓦片级别 z={z} 须在 0–{MAX_ZOOM} 之间")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise ValueError(f"瓦片 {z}/{x}/{y} 超出范围（第 {z} 级的 x、y 须在 0–{n - 1} 之间）")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of tile ``z/x/y`` in degrees.

    >>> tile_bounds(1, 1, 0)
    (0.0, 0.0, 180.0, 85.0511287798066)
    """
    _check_tile(z, x, y)
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(x, y) of the zoom-``z`` tile containing ``(lon, lat)``.

    >>> lonlat_to_tile(119.2, 34.6, 12)
    (3404, 1627)
    """
    n = 1 << z
    lat = max(min(lat, MAX_LAT), -MAX_LAT)
    x = int((lon + 180.0) / 360.0 * n)
    phi = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(phi)) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def _lonlat_to_units(coords: np.ndarray, z: int, x: int, y: int, extent: int) -> np.ndarray:
    n = float(1 << z)
    lon = coords[:, 0]
    lat = np.clip(coords[:, 1], -MAX_LAT, MAX_LAT)
    phi = np.radians(lat)
    tx = (lon + 180.0) / 360.0 * n - x
    ty = (1.0 - np.arcsinh(np.tan(phi)) / np.pi) / 2.0 * n - y
    return np.column_stack([tx * extent, ty * extent])


def _mercator_to_units(coords: np.ndarray, z: int, x: int, y: int, extent: int) -> np.ndarray:
    n = float(1 << z)
    tx = (coords[:, 0] + WEB_MERCATOR_HALF) / (2 * WEB_MERCATOR_HALF) * n - x
    ty = (WEB_MERCATOR_HALF - coords[:, 1]) / (2 * WEB_MERCATOR_HALF) * n - y
    return np.column_stack([tx * extent, ty * extent])


def _crs_kind(gdf: gpd.GeoDataFrame) -> str:
    if gdf.crs is None:
        raise ValueError("图层没有坐标系（CRS），无法切瓦片")
    epsg = gdf.crs.to_epsg()
    if epsg in (4326, 4490):
        return "lonlat"
    if epsg == 3857:
        return "mercator"
    raise ValueError(f"切瓦片需要 EPSG:4326、4490 或 3857 坐标，图层为 {gdf.crs}；请先 to_crs(4326) 并缓存结果")


def _column_values(col: pd.Series) -> list[object | None]:
    """A column as values MVT can carry (str, int, float, bool); None where missing (left out)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        mask = col.isna().to_numpy()
        return [None if m else bool(v) for v, m in zip(col.to_numpy(dtype=object), mask, strict=True)]
    if pd.api.types.is_integer_dtype(col.dtype):
        mask = col.isna().to_numpy()
        return [None if m else int(v) for v, m in zip(col.to_numpy(dtype=object), mask, strict=True)]
    if pd.api.types.is_float_dtype(col.dtype):
        a = col.to_numpy(dtype=float, na_value=np.nan)
        ok = np.isfinite(a)
        return [float(v) if k else None for v, k in zip(a.tolist(), ok.tolist(), strict=True)]
    out: list[object | None] = []
    for v in col.to_numpy(dtype=object):
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and not math.isfinite(v)):
            out.append(None)
        elif isinstance(v, bool | np.bool_):
            out.append(bool(v))
        elif isinstance(v, int | np.integer):
            out.append(int(v))
        elif isinstance(v, float | np.floating):
            out.append(float(v))
        else:
            text = str(v)
            out.append(text if text else None)
    return out


def mvt_tile(
    features: gpd.GeoDataFrame,
    z: int,
    x: int,
    y: int,
    *,
    layer: str = "parcels",
    properties: Sequence[str] | None = None,
    extent: int = TILE_EXTENT,
    buffer: int = 64,
    simplify: float = 1.0,
    id_column: str | None = None,
) -> bytes:
    """Tile ``z/x/y`` of ``features`` as Mapbox vector tile bytes (``b""`` when no feature shows).

    Parameters
    ----------
    features
        Polygons (or any geometries) in EPSG:4326/4490 or 3857. Keep the frame between requests:
        its spatial index is built once and reused by every tile.
    layer
        Name of the MVT layer (the map styles ``parcels``).
    properties
        Columns to carry (default: every column but the geometry); missing values are left out,
        text stays text, numbers numbers.
    extent, buffer, simplify
        Units per tile side; units drawn beyond each edge (so outlines do not break at tile seams);
        simplification tolerance in units.
    id_column
        A column of positive integers to use as feature ids (default: the row in ``features``).

    Raises
    ------
    ValueError
        For a tile outside zoom 0–24 or outside the grid, or a frame in another CRS.
    """
    import mapbox_vector_tile

    _check_tile(z, x, y)
    kind = _crs_kind(features)
    west, south, east, north = tile_bounds(z, x, y)
    pad = buffer / extent
    if kind == "lonlat":
        dx = (east - west) * pad
        dy = (north - south) * pad
        query = shapely.box(west - dx, south - dy, east + dx, north + dy)
        project = _lonlat_to_units
    else:
        size = 2 * WEB_MERCATOR_HALF / (1 << z)
        mx0 = -WEB_MERCATOR_HALF + x * size
        my1 = WEB_MERCATOR_HALF - y * size
        query = shapely.box(mx0 - size * pad, my1 - size * (1 + pad), mx0 + size * (1 + pad), my1 + size * pad)
        project = _mercator_to_units
    hits = features.sindex.query(query, predicate="intersects")
    if not len(hits):
        return b""
    hits.sort()
    sub = features.iloc[hits]
    geoms = shapely.transform(
        np.asarray(sub.geometry.array, dtype=object), lambda c: project(c, z, x, y, extent), include_z=False
    )
    geoms = shapely.clip_by_rect(geoms, -buffer, -buffer, extent + buffer, extent + buffer)
    if simplify > 0:
        geoms = shapely.simplify(geoms, simplify, preserve_topology=True)
    # integer tile units; exterior rings of positive area in y-down units, as MVT 2.1 (§4.3.4.3) wants
    geoms = shapely.orient_polygons(shapely.transform(geoms, np.rint), exterior_cw=False)
    keep = ~(shapely.is_empty(geoms) | shapely.is_missing(geoms))
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    keep &= ~polygonal | (shapely.area(geoms) > 0)
    if not keep.any():
        return b""
    skip = (sub.geometry.name, id_column)
    cols = [c for c in (properties if properties is not None else sub.columns) if c not in skip]
    rows = np.flatnonzero(keep)
    props: list[dict[str, object]] = [{} for _ in rows]
    for c in cols:
        for d, v in zip(props, _column_values(sub[c].iloc[rows]), strict=True):
            if v is not None:
                d[c] = v
    ids = sub[id_column].to_numpy(dtype=np.int64) if id_column is not None else hits
    feats = [
        {"geometry": g, "properties": d, "id": int(i)} for g, d, i in zip(geoms[keep], props, ids[keep], strict=True)
    ]
    return bytes(
        mapbox_vector_tile.encode(
            {"name": layer, "features": feats},
            default_options={
                "extents": extent,
                "y_coord_down": True,
                "quantize_bounds": None,
                "check_winding_order": False,
            },
        )
    )
