"""Coordinate reference systems: choosing the CGCS2000 3° Gauss-Krüger zone for area work.

EPSG:4513–4533 are CGCS2000 3° GK zones 25–45 with the zone number in front of the easting
(``x_0 = zone × 1e6 + 500000``); EPSG:4534–4554 are the same zones by central meridian 75°E–135°E
without the prefix. Areas are computed in the zone the data lies in, never in degrees or Web Mercator.
"""

from __future__ import annotations

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError

CGCS2000_GEOGRAPHIC = 4490
_PREFIXED_FIRST, _PREFIXED_LAST = 4513, 4533  # zones 25..45
_PLAIN_FIRST, _PLAIN_LAST = 4534, 4554  # central meridians 75..135


def gk_zone(lon: float | np.ndarray) -> np.ndarray:
    """3° zone number for longitudes: central meridian = 3 × zone (zone 40 ↔ 120°E)."""
    return np.rint(np.asarray(lon, dtype=float) / 3.0).astype(int)


def gk_epsg(zone: int, *, prefixed: bool = False) -> int:
    """EPSG code of the CGCS2000 3° GK zone ``zone`` (25–45).

    >>> gk_epsg(40), gk_epsg(40, prefixed=True), gk_epsg(39)
    (4549, 4528, 4548)
    """
    if not 25 <= zone <= 45:
        raise ValueError(f"3° 带号 {zone} 超出我国范围（25–45）")
    return _PREFIXED_FIRST + zone - 25 if prefixed else _PLAIN_FIRST + zone - 25


def gk_zone_of_epsg(epsg: int | None) -> tuple[int, bool] | None:
    """``(zone, prefixed)`` when ``epsg`` is a CGCS2000 3° GK code, else ``None``."""
    if epsg is None:
        return None
    if _PREFIXED_FIRST <= epsg <= _PREFIXED_LAST:
        return epsg - _PREFIXED_FIRST + 25, True
    if _PLAIN_FIRST <= epsg <= _PLAIN_LAST:
        return epsg - _PLAIN_FIRST + 25, False
    return None


def prefixed_zone_from_easting(x: float) -> int | None:
    """Zone number when ``x`` is an 8-digit GK easting carrying its zone prefix (e.g. 40 512 345)."""
    if 25_000_000 <= x < 46_000_000:
        return int(x // 1_000_000)
    return None


def fix_prefix_mismatch(crs: CRS, sample_x: float) -> CRS | None:
    """A corrected CRS when a GK CRS disagrees with the easting form actually in the data.

    A layer declared as EPSG:4549 (no prefix) whose eastings read 40 5xx xxx is really EPSG:4528,
    and the other way round. Returns ``None`` when there is nothing to fix.
    """
    info = gk_zone_of_epsg(crs.to_epsg())
    if info is None:
        return None
    zone, prefixed = info
    data_zone = prefixed_zone_from_easting(sample_x)
    if data_zone is not None and not prefixed:
        return CRS.from_epsg(gk_epsg(data_zone, prefixed=True))
    if data_zone is None and prefixed and 0 < sample_x < 1_000_000:
        return CRS.from_epsg(gk_epsg(zone, prefixed=False))
    return None


CHINA_LONLAT = (73.0, 3.0, 136.0, 54.0)
"""A box around China's land and seas (west, south, east, north; degrees): coordinates outside it are
reported, and a layer whose centre lies outside has a CRS that does not match its coordinates."""


def lonlat(x: np.ndarray, y: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes (degrees, CGCS2000) of points given in ``crs``; ``inf`` where the
    points lie outside the projection's domain."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if crs.is_geographic:
        return x, y
    t = Transformer.from_crs(crs, CRS.from_epsg(CGCS2000_GEOGRAPHIC), always_xy=True)
    lon, lat = t.transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def in_china(lon: np.ndarray | float, lat: np.ndarray | float) -> np.ndarray:
    """Whether each point lies in :data:`CHINA_LONLAT` (false for non-finite coordinates)."""
    w, s, e, n = CHINA_LONLAT
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)


def bounds_in_china(bounds: np.ndarray, crs: CRS) -> bool:
    """Whether the whole box ``bounds`` (minx, miny, maxx, maxy in ``crs``) lies in :data:`CHINA_LONLAT`."""
    if not np.isfinite(bounds).all():
        return False
    if crs.is_geographic:
        box = tuple(float(b) for b in bounds)
    else:
        t = Transformer.from_crs(crs, CRS.from_epsg(CGCS2000_GEOGRAPHIC), always_xy=True)
        left, bottom, right, top = (float(b) for b in bounds)
        try:
            box = t.transform_bounds(left, bottom, right, top, densify_pts=21)
        except ProjError:  # a box the transformation cannot handle
            return False
    w, s, e, n = box
    return bool(in_china(np.array([w, e]), np.array([s, n])).all())


def longitudes(x: np.ndarray, y: np.ndarray, crs: CRS) -> np.ndarray:
    """Longitudes (degrees) of points given in ``crs``."""
    if crs.is_geographic:
        return np.asarray(x, dtype=float)
    t = Transformer.from_crs(crs, CRS.from_epsg(CGCS2000_GEOGRAPHIC), always_xy=True)
    lon, _ = t.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(lon)


def area_crs(crs: CRS, lon: np.ndarray) -> CRS:
    """The CRS in which areas are measured for data in ``crs`` around longitudes ``lon``.

    The zone is chosen from the data's median longitude. Data already in that CGCS2000 3° GK zone
    keeps its CRS (cadastral areas are registered in that plane, with or without the zone prefix);
    anything else goes to the zone's CRS without prefix.
    """
    zone = int(gk_zone(float(np.median(lon))))
    info = gk_zone_of_epsg(crs.to_epsg())
    if info is not None and info[0] == zone:
        return crs
    return CRS.from_epsg(gk_epsg(zone))
