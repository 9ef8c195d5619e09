"""Raster evidence for the suspected-idle-land flag (domain.md §5): built-up fraction inside parcels.

A built-up layer (e.g. a 10 m raster, 1 = built-up, 0 = not, nodata elsewhere) is summarised per
parcel with exact pixel coverage fractions (exactextract), so that parcels of a few pixels or less,
and parcels that cut pixels, are measured by area rather than by which pixel centres they contain.

The raster is held in memory (:class:`Raster`, read by :func:`geo_eval.io.raster.read_raster`); this
module does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from exactextract import Operation, exact_extract
from exactextract.feature import Feature, FeatureSource
from exactextract.raster import NumPyRasterSource
from exactextract.writer import Writer
from pyproj import CRS

from geo_eval.errors import DatasetError

__all__ = ["EVIDENCE_COLUMNS", "Raster", "builtup_fraction"]

EVIDENCE_COLUMNS = ("builtup_fraction", "valid_fraction", "builtup_m2")
"""Columns of :func:`builtup_fraction`, in order."""

_NODATA = 255  # nodata of the 0/1 grid handed to exactextract
_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon


@dataclass(frozen=True, eq=False)
class Raster:
    """A single-band raster held in memory.

    ``values`` is the 2-D array of pixel values (row 0 at the top when ``transform.e < 0``),
    ``transform`` maps (column, row) to the CRS, ``nodata`` marks pixels without data (``None``: every
    pixel is valid; NaN is understood for float rasters).
    """

    values: np.ndarray
    transform: Affine
    crs: CRS
    nodata: float | None = None

    def __post_init__(self) -> None:
        if np.ndim(self.values) != 2:
            raise DatasetError(f"栅格数据应为二维数组（单波段），实际为 {np.ndim(self.values)} 维")
        if not isinstance(self.transform, Affine):
            raise DatasetError("栅格的 transform 应为 affine.Affine 仿射变换")
        if self.transform.b != 0 or self.transform.d != 0:
            raise DatasetError("不支持旋转或倾斜的栅格（仿射变换含旋转项）；请先重采样为正北朝上的栅格")
        if self.transform.a == 0 or self.transform.e == 0:
            raise DatasetError("栅格像元大小为 0，仿射变换无效")

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        rows, cols = self.values.shape
        return int(rows), int(cols)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the pixel edges."""
        rows, cols = self.shape
        t = self.transform
        xs = (t.c, t.c + t.a * cols)
        ys = (t.f, t.f + t.e * rows)
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def cell_area(self) -> float:
        """Area of one pixel in CRS units squared (``|a × e|``)."""
        return abs(self.transform.a * self.transform.e)

    def valid_mask(self) -> np.ndarray:
        """``True`` where a pixel holds data (not ``nodata``, not NaN)."""
        v = self.values
        valid = ~np.isnan(v) if np.issubdtype(v.dtype, np.floating) else np.ones(v.shape, dtype=bool)
        if self.nodata is not None and not np.isnan(self.nodata):
            valid &= v != self.nodata
        return valid


def builtup_fraction(
    geoms: gpd.GeoSeries,
    raster: Raster,
    *,
    builtup_values: Sequence[float] = (1,),
) -> pd.DataFrame:
    """Share of each parcel that is built up on a raster layer, by exact pixel coverage.

    For parcel *p* and pixel *i*, let ``c_i`` be the fraction of pixel *i* covered by *p* (exact
    polygon–square intersection, 0–1), ``A`` the pixel area, ``V`` the valid pixels (not nodata) and
    ``B ⊆ V`` the built-up ones (value in ``builtup_values``). Then

    - ``builtup_fraction = Σ_{i∈B} c_i / Σ_{i∈V} c_i`` (built-up share of the parcel's observed area);
    - ``valid_fraction = A · Σ_{i∈V} c_i / area(p)`` (share of the parcel observed by the raster);
    - ``builtup_m2 = A · Σ_{i∈B} c_i`` in m².

    A parcel smaller than a pixel thus takes the value of the pixel(s) it lies in, and a parcel
    cutting pixels counts each pixel by the area it covers. ``builtup_fraction`` and ``builtup_m2``
    are NaN where the parcel covers no valid pixel (outside the raster, over nodata only, missing or
    empty geometry); ``valid_fraction`` is then 0 (NaN for a missing, empty or non-polygonal
    geometry). Parcels are reprojected to the raster's CRS when it differs. For a raster in a
    geographic CRS the ratios are taken in degrees (the cell area is constant across a parcel) and
    ``builtup_m2`` uses exactextract's spherical cell areas.

    Parameters
    ----------
    geoms
        Parcel polygons with a CRS, indexed by parcel code. Invalid geometries should have been
        repaired (:mod:`geo_eval.inputs.validate` does it).
    raster
        The built-up layer.
    builtup_values
        Pixel values that mean built-up.

    Returns
    -------
    pandas.DataFrame
        On ``geoms``' index, columns ``builtup_fraction``, ``valid_fraction``, ``builtup_m2``.

    Examples
    --------
    With ``layer = read_raster("layers/builtup_10m.tif")`` and the parcels of a dataset,
    ``builtup_fraction(parcels.geometry, layer)["builtup_fraction"] < 0.1`` marks parcels that are
    less than 10 % built up; a 10 m × 10 m parcel exactly on one built-up pixel gives
    ``builtup_fraction = 1.0``, ``valid_fraction = 1.0``, ``builtup_m2 = 100.0``.
    """
    if geoms.crs is None:
        raise DatasetError("宗地几何没有坐标参考系（CRS），无法与栅格图层叠加")
    raster_crs = CRS.from_user_input(raster.crs)
    if not CRS.from_user_input(geoms.crs).equals(raster_crs, ignore_axis_order=True):
        geoms = geoms.to_crs(raster_crs)
    arr = np.asarray(geoms.array, dtype=object)
    n = len(arr)
    polygonal = np.isin(shapely.get_type_id(arr), _POLYGONAL) & ~shapely.is_empty(arr)
    area = np.full(n, np.nan)
    area[polygonal] = shapely.area(arr[polygonal])

    geographic = raster_crs.is_geographic
    covered, builtup, builtup_sph = _coverage_sums(arr[polygonal], raster, builtup_values, spherical=geographic)
    valid_cov = np.full(n, np.nan)
    builtup_cov = np.full(n, np.nan)
    valid_cov[polygonal] = covered
    builtup_cov[polygonal] = builtup

    cell = raster.cell_area
    has_data = valid_cov > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(has_data, builtup_cov / valid_cov, np.nan)
        valid_fraction = np.where(area > 0, np.minimum(valid_cov * cell / area, 1.0), np.nan)
    valid_fraction[polygonal & ~(area > 0)] = 0.0  # degenerate polygons: nothing observed
    if geographic:
        m2 = np.full(n, np.nan)
        m2[polygonal] = builtup_sph
    else:
        unit = raster_crs.axis_info[0].unit_conversion_factor if raster_crs.axis_info else 1.0
        m2 = builtup_cov * cell * unit * unit
    m2 = np.where(has_data, m2, np.nan)
    return pd.DataFrame(
        {"builtup_fraction": fraction, "valid_fraction": valid_fraction, "builtup_m2": m2},
        index=geoms.index,
    )


def _builtup_grid(raster: Raster, builtup_values: Sequence[float]) -> np.ndarray:
    """A uint8 grid north-up: 1 built-up, 0 not, :data:`_NODATA` where the raster has no data."""
    v = raster.values
    targets = np.asarray(list(builtup_values))
    if len(targets) <= 8:
        hit = np.zeros(v.shape, dtype=bool)
        for value in targets:
            hit |= v == value
    else:
        hit = np.isin(v, targets)
    grid = hit.astype(np.uint8)
    grid[~raster.valid_mask()] = _NODATA
    if raster.transform.e > 0:  # south-up: exactextract reads row 0 as the top
        grid = grid[::-1]
    if raster.transform.a < 0:
        grid = grid[:, ::-1]
    return np.ascontiguousarray(grid)


def _coverage_sums(
    polygons: np.ndarray, raster: Raster, builtup_values: Sequence[float], *, spherical: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Σ_V c_i, Σ_B c_i, Σ_B c_i·a_i[m²] or empty)`` per polygon, in the polygons' order."""
    n = len(polygons)
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    wkt = CRS.from_user_input(raster.crs).to_wkt()
    xmin, ymin, xmax, ymax = raster.bounds
    source = NumPyRasterSource(
        _builtup_grid(raster, builtup_values), xmin, ymin, xmax, ymax, nodata=_NODATA, srs_wkt=wkt
    )
    ops = [Operation("count", "valid", source), Operation("sum", "builtup", source)]
    if spherical:
        ops.append(Operation("sum", "builtup_m2", source, None, {"coverage_weight": "area_spherical_m2"}))
    writer = _ArrayWriter([op.name for op in ops])
    # feature-sequential (the default) writes one result per feature, in input order
    exact_extract(source, _WkbFeatureSource(shapely.to_wkb(polygons), wkt), ops, output=writer)
    out = writer.arrays()
    if any(len(a) != n for a in out.values()):
        raise RuntimeError(f"exactextract 返回 {len(out['valid'])} 条结果，应为 {n} 条")
    return out["valid"], out["builtup"], out.get("builtup_m2", np.zeros(0))


class _WkbFeature(Feature):
    """A feature exactextract parses from WKB; it carries no attributes."""

    def __init__(self, wkb: bytes) -> None:
        Feature.__init__(self)
        self._wkb = wkb

    def geometry(self) -> bytes:
        return self._wkb

    def fields(self) -> list[str]:
        return []

    def get(self, name: str) -> object:
        raise KeyError(name)

    def set(self, name: str, value: object) -> None:
        raise NotImplementedError


class _WkbFeatureSource(FeatureSource):
    """Polygons handed to exactextract as WKB (parsed by GEOS in C++, no GeoJSON round trip)."""

    def __init__(self, wkbs: np.ndarray, srs_wkt: str) -> None:
        super().__init__()
        self._wkbs = wkbs
        self._srs_wkt = srs_wkt

    def count(self) -> int:
        return len(self._wkbs)

    def __iter__(self) -> Iterator[_WkbFeature]:
        return map(_WkbFeature, self._wkbs)

    def srs_wkt(self) -> str:
        return self._srs_wkt


class _Sink(Feature):
    """Receives one result feature's fields (``copy_to``) and appends them to lists."""

    def __init__(self, columns: dict[str, list[float]]) -> None:
        Feature.__init__(self)
        self._columns = columns

    def set(self, name: str, value: float) -> None:
        self._columns[name].append(value)

    def set_geometry(self, geometry: object) -> None:
        pass

    def geometry(self) -> None:
        return None

    def fields(self) -> list[str]:
        return []

    def get(self, name: str) -> object:
        raise KeyError(name)


class _ArrayWriter(Writer):
    """An exactextract writer that keeps each operation's results in a list (no per-row dicts)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self._columns: dict[str, list[float]] = {name: [] for name in names}
        self._sink = _Sink(self._columns)

    def add_operation(self, op: object) -> None:
        pass

    def add_column(self, name: str) -> None:
        pass

    def add_geometry(self) -> None:
        pass

    def write(self, feature: Feature) -> None:
        feature.copy_to(self._sink)

    def finish(self) -> None:
        pass

    def features(self) -> None:
        return None

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values, dtype=float) for name, values in self._columns.items()}
