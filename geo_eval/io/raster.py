"""Reading raster layers (e.g. the built-up layer) fully into memory as a :class:`~geo_eval.landuse.evidence.Raster`."""

from __future__ import annotations

import warnings
from pathlib import Path

import rasterio
from pyproj import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from geo_eval.errors import DatasetError, InputFileError
from geo_eval.landuse.evidence import Raster

__all__ = ["read_raster"]


def read_raster(path: Path | str, *, band: int = 1, display: str | None = None) -> Raster:
    """Read band ``band`` of the raster at ``path`` into memory, with its transform, CRS and nodata.

    ``display`` is the name used in messages (default: the path). Raises
    :class:`~geo_eval.errors.InputFileError` when the file is missing or unreadable, has no such band,
    no georeferencing or no CRS.
    """
    path = Path(path)
    file = display or str(path)
    if not path.exists():
        raise InputFileError(f"找不到栅格文件 {file}")
    if not path.is_file():
        raise InputFileError(f"栅格文件 {file} 不是一个文件")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                if not 1 <= band <= ds.count:
                    raise InputFileError(f"栅格文件 {file} 只有 {ds.count} 个波段，没有第 {band} 波段")
                values = ds.read(band)
                transform = ds.transform
                rio_crs = ds.crs
                nodata = ds.nodatavals[band - 1]
    except RasterioError as exc:
        raise InputFileError(f"无法读取栅格文件 {file}：{exc}") from exc
    if any(issubclass(w.category, NotGeoreferencedWarning) for w in caught):
        raise InputFileError(f"栅格文件 {file} 没有地理参照（像元与坐标的对应关系），无法与宗地叠加")
    for w in caught:  # pass on whatever else rasterio had to say
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if rio_crs is None:
        raise InputFileError(
            f"栅格文件 {file} 没有坐标参考系（CRS）；请在 GIS 中为其指定坐标系（如 EPSG:4528）后再使用"
        )
    try:
        return Raster(values=values, transform=transform, crs=CRS.from_wkt(rio_crs.to_wkt()), nodata=nodata)
    except DatasetError as exc:
        raise InputFileError(f"栅格文件 {file}：{exc}") from exc
