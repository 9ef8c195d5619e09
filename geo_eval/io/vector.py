"""Reading parcel layers: GeoPackage, GeoJSON, Shapefile (UTF-8 or GBK, with or without ``.cpg``)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio

from geo_eval.errors import InputFileError
from geo_eval.io.tables import Table, _unit_factor, check_columns, map_headers, match_cut_headers

# dBASE language driver ids that mean a Chinese code page.
_LDID_CHINESE = {0x4D: "GB18030", 0x7A: "GB18030"}


def shapefile_encoding(path: Path) -> str | None:
    """Encoding of a Shapefile's attributes when it has no usable ``.cpg``.

    Uses the ``.cpg`` when present (GDAL honours it), else the dBASE language id, else tries to
    decode the records as UTF-8 and falls back to GB18030 (a superset of GBK).
    """
    cpg = path.with_suffix(".cpg")
    if cpg.exists():
        return None
    dbf = path.with_suffix(".dbf")
    if not dbf.exists():
        return None
    data = dbf.read_bytes()
    if len(data) > 32 and data[29] in _LDID_CHINESE:
        return _LDID_CHINESE[data[29]]
    header_len = int.from_bytes(data[8:10], "little") if len(data) > 10 else 0
    try:
        data[header_len:].decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        return "GB18030"


def read_parcel_layer(
    path: Path, *, layer: str | None = None, encoding: str | None = None, display: str | None = None
) -> tuple[Table, gpd.GeoSeries]:
    """Read a parcel layer: its attributes as a :class:`Table` and its geometries.

    ``source_row`` is the feature's 1-based position in the layer (what a GIS shows as FID for
    GeoPackage). The geometry series carries the file's CRS (possibly ``None``).
    """
    file = display or path.name
    if not path.exists():
        raise InputFileError(f"找不到宗地图层 {path}")
    kwargs: dict[str, object] = {}
    if layer:
        kwargs["layer"] = layer
    if path.suffix.lower() == ".shp":
        enc = encoding or shapefile_encoding(path)
        if enc:
            kwargs["encoding"] = enc
    elif encoding:
        kwargs["encoding"] = encoding
    dbf = path.suffix.lower() in (".shp", ".dbf")
    try:
        gdf = pyogrio.read_dataframe(path, use_arrow=True, **kwargs)
    except UnicodeDecodeError as exc:
        hint = (
            "Shapefile 的字段名最长 10 字节，UTF-8 的汉字占 3 字节，字段名常被截断在汉字中间；"
            "请改用 GeoPackage（.gpkg），或以 GBK 编码保存 Shapefile，或改用英文字段名（见 docs/data-contract.md）"
            if dbf
            else '请在 dataset.toml 的 [parcels] 中写明 encoding（如 "GBK"）'
        )
        raise InputFileError(
            f"无法读取宗地图层 {file}：字段名或属性值不是有效的 {exc.encoding} 编码（{hint}）"
        ) from exc
    except Exception as exc:  # pyogrio raises several DataSourceError flavours
        raise InputFileError(f"无法读取宗地图层 {file}：{exc}") from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
        raise InputFileError(f"{file} 没有几何图形列，不是宗地图层")
    geom_name = gdf.geometry.name
    attrs = pd.DataFrame({c: gdf[c] for c in gdf.columns if c != geom_name})
    return parcel_table(attrs, file, dbf=dbf), gpd.GeoSeries(gdf.geometry.to_numpy(), crs=gdf.crs)


def parcel_table(attrs: pd.DataFrame, file: str, *, dbf: bool = False) -> Table:
    """A parcel layer's attribute columns (in layer order, any headers) as the parcels :class:`Table`:
    headers matched to the data contract, units converted, ``source_row`` = 1-based feature position.
    Used for files (:func:`read_parcel_layer`) and PostGIS tables (:mod:`geo_eval.db.parcels`).

    ``dbf``: the names come from a Shapefile's dBASE table, which cuts them to 10 bytes; cut names of
    the contract's headers are recognised (:func:`~geo_eval.io.tables.match_cut_headers`)."""
    names = [str(c) for c in attrs.columns]
    found, units, unknown = map_headers("parcels", list(attrs.columns))
    cut_notes = match_cut_headers("parcels", list(attrs.columns), found, units, unknown) if dbf else []
    cols = {}
    headers = {}
    for i, f in found.items():
        cols[f.name] = _one_chunk(attrs.iloc[:, i].reset_index(drop=True))
        headers[f.name] = names[i]
    frame = pd.DataFrame(cols)
    frame["source_row"] = np.arange(1, len(attrs) + 1, dtype=np.int64)
    frame["_empty"] = False
    factors: dict[str, float] = {}
    notes: dict[str, str] = {}
    for i, f in found.items():
        factors[f.name], note = _unit_factor(f, units[i], file, names[i])
        if note:
            notes[f.name] = note
    t = Table("parcels", file, frame, headers, factors, unknown, notes, cut_notes)
    check_columns(t)
    return t


def _one_chunk(s: pd.Series) -> pd.Series:
    """An Arrow-backed text column in one piece (later checks run column-wide Arrow kernels)."""
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        arr = pa.array(s.array)
        if isinstance(arr, pa.ChunkedArray) and arr.num_chunks > 1:
            return pd.Series(pd.array(arr.combine_chunks(), dtype=s.dtype), index=s.index, name=s.name)
    return s
