"""WGS-84 ↔ GCJ-02 (火星坐标, the coordinates of 高德 and 腾讯 basemaps).

PROJ has no GCJ-02: it is an obfuscation, published only as code. This module implements the
widely published public algorithm (the one in eviltransform, coordtransform and most map SDK
samples): with ``x = lon − 105`` and ``y = lat − 35`` (degrees),

    Δlat' = −100 + 2x + 3y + 0.2y² + 0.1xy + 0.2√|x|
            + ⅔(20 sin 6πx + 20 sin 2πx) + ⅔(20 sin πy + 40 sin πy/3) + ⅔(160 sin πy/12 + 320 sin πy/30)
    Δlon' = 300 + x + 2y + 0.1x² + 0.1xy + 0.1√|x|
            + ⅔(20 sin 6πx + 20 sin 2πx) + ⅔(20 sin πx + 40 sin πx/3) + ⅔(150 sin πx/12 + 300 sin πx/30)

converted from metres to degrees on the Krasovsky ellipsoid (a = 6 378 245 m, e² = 0.006693421622966):

    Δlat = Δlat' · 180 / (π a (1 − e²) / (1 − e² sin² φ)^1.5)
    Δlon = Δlon' · 180 / (π a cos φ / (1 − e² sin² φ)^0.5)

Points outside a rectangle around China (lon 72.004–137.8347, lat 0.8293–55.8271) are not shifted.
The inverse has no closed form: it is solved by fixed-point iteration to better than 1e-9°.

All functions take and return ``(lon, lat)`` in that order (x, y, like ``always_xy=True``).

Examples
--------
Beijing railway station; the published GCJ-02 figures (39.90245, 116.42703) come from a map API,
the public algorithm agrees to within 1e-5°:

>>> lon, lat = wgs84_to_gcj02(116.42079, 39.90105)
>>> round(float(lat), 5), abs(float(lon) - 116.42703) < 1e-5
(39.90245, True)
>>> back = gcj02_to_wgs84(lon, lat)
>>> round(float(back[0]), 9), round(float(back[1]), 9)
(116.42079, 39.90105)
"""

from __future__ import annotations

from typing import TypeVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS

__all__ = [
    "GEOGRAPHIC_EPSG",
    "gcj02_offset",
    "gcj02_to_wgs84",
    "in_china",
    "shift_to_gcj02",
    "shift_to_wgs84",
    "wgs84_to_gcj02",
]

KRASOVSKY_A = 6378245.0
"""Semi-major axis (m) of the Krasovsky 1940 ellipsoid used by the algorithm."""
KRASOVSKY_E2 = 0.00669342162296594323
"""First eccentricity squared of the Krasovsky 1940 ellipsoid."""
CHINA_BOUNDS = (72.004, 0.8293, 137.8347, 55.8271)
"""(min lon, min lat, max lon, max lat): the rectangle inside which GCJ-02 differs from WGS-84."""
GEOGRAPHIC_EPSG = (4326, 4490)
"""Geographic CRSs accepted as WGS-84: WGS 84 and CGCS2000 (centimetre-close, domain.md §9)."""

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
Geo = TypeVar("Geo", gpd.GeoSeries, gpd.GeoDataFrame)


def in_china(lon: ArrayLike, lat: ArrayLike) -> npt.NDArray[np.bool_]:
    """True where ``(lon, lat)`` lies inside :data:`CHINA_BOUNDS`, the area GCJ-02 shifts.

    >>> in_china([116.4, 2.35], [39.9, 48.85]).tolist()
    [True, False]
    """
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    x0, y0, x1, y1 = CHINA_BOUNDS
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def _delta_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    r += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return r


def _delta_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    r += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return r


def gcj02_offset(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 shift ``(Δlon, Δlat)`` in degrees at WGS-84 ``(lon, lat)``; zero outside China.

    >>> dlon, dlat = gcj02_offset(119.2, 34.6)  # Lianyungang: ≈ 510 m east, 110 m south
    >>> round(float(dlon), 5), round(float(dlat), 5)
    (0.00557, -0.001)
    """
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    dlat = _delta_lat(x - 105.0, y - 35.0)
    dlon = _delta_lon(x - 105.0, y - 35.0)
    rad = y / 180.0 * np.pi
    magic = 1.0 - KRASOVSKY_E2 * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((KRASOVSKY_A * (1.0 - KRASOVSKY_E2)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (KRASOVSKY_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = in_china(x, y)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS-84 (or CGCS2000) ``(lon, lat)`` → GCJ-02 ``(lon, lat)``, element-wise; unchanged outside China.

    >>> lon, lat = wgs84_to_gcj02([2.35], [48.85])  # Paris: no shift
    >>> lon.tolist(), lat.tolist()
    ([2.35], [48.85])
    """
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    dlon, dlat = gcj02_offset(x, y)
    return x + dlon, y + dlat


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol: float = 1e-10, max_iter: int = 30
) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 ``(lon, lat)`` → WGS-84, solving ``wgs84_to_gcj02(w) = g`` by fixed-point iteration.

    Starts from ``w = g − offset(g)`` and repeats ``w ← w − (wgs84_to_gcj02(w) − g)`` until every
    point moves less than ``tol`` degrees (the shift's derivative is ~1e-5, so each step gains about
    five digits: three steps reach 1e-10°). Points outside China are returned unchanged.

    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(119.25, 34.65))
    >>> abs(float(lon) - 119.25) < 1e-9 and abs(float(lat) - 34.65) < 1e-9
    True
    """
    gx = np.asarray(lon, dtype=float)
    gy = np.asarray(lat, dtype=float)
    dlon, dlat = gcj02_offset(gx, gy)
    wx, wy = gx - dlon, gy - dlat
    for _ in range(max_iter):
        fx, fy = wgs84_to_gcj02(wx, wy)
        ex, ey = fx - gx, fy - gy
        wx, wy = wx - ex, wy - ey
        with np.errstate(invalid="ignore"):
            err = np.nanmax(np.maximum(np.abs(ex), np.abs(ey)), initial=0.0)
        if err < tol:
            break
    # A point whose WGS-84 solution falls outside China would be shifted back and forth at the edge;
    # GCJ-02 leaves such points unshifted, so they stay as given.
    outside = ~in_china(gx, gy)
    return np.where(outside, gx, wx), np.where(outside, gy, wy)


def _check_geographic(crs: object) -> None:
    if crs is None:
        raise ValueError("图层没有坐标系；GCJ-02 偏移需要 EPSG:4326（WGS 84）或 EPSG:4490（CGCS2000）经纬度坐标")
    epsg = CRS.from_user_input(crs).to_epsg()
    if epsg not in GEOGRAPHIC_EPSG:
        raise ValueError(f"GCJ-02 偏移需要 EPSG:4326 或 EPSG:4490 经纬度坐标，图层为 {crs}；请先 to_crs(4326)")


def _shift_xy(coords: FloatArray, *, inverse: bool) -> FloatArray:
    fn = gcj02_to_wgs84 if inverse else wgs84_to_gcj02
    x, y = fn(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def shift_to_gcj02(data: Geo) -> Geo:
    """A copy of ``data`` (EPSG:4326 or 4490) with every vertex moved from WGS-84 to GCJ-02.

    The CRS label is kept (there is no EPSG code for GCJ-02): the result is only for drawing over a
    GCJ-02 basemap (高德, 腾讯), never for measuring or for writing back to files.

    >>> s = gpd.GeoSeries.from_xy([116.42079], [39.90105], crs=4326)
    >>> p = shift_to_gcj02(s).iloc[0]
    >>> round(p.y, 5)
    39.90245
    """
    return _shift(data, inverse=False)


def shift_to_wgs84(data: Geo) -> Geo:
    """The inverse of :func:`shift_to_gcj02`: GCJ-02 vertices back to WGS-84 (to < 1e-9°)."""
    return _shift(data, inverse=True)


def _shift(data: Geo, *, inverse: bool) -> Geo:
    _check_geographic(data.crs)
    geoms = shapely.transform(
        np.asarray(data.geometry.array, dtype=object), lambda c: _shift_xy(c, inverse=inverse), include_z=False
    )
    out = data.copy()
    if isinstance(out, gpd.GeoDataFrame):
        out[out.geometry.name] = gpd.GeoSeries(geoms, index=out.index, crs=data.crs)
        return out
    return gpd.GeoSeries(geoms, index=out.index, crs=data.crs, name=out.name)
