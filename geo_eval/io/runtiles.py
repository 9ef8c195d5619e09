"""A registered run's tile archive (``tiles.mbtiles`` in its OUT_DIR), built from its output files.

:func:`tile_source_of` reads ``parcels.gpkg`` (layers ``parcels`` and ``flags``) and ``enterprises.csv``
the way the service reads them (texts without the csv formula guard) and makes the tile source of every
parcel; :func:`build_run_tiles` cuts it (:func:`geo_eval.maps.archive.build_archive`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from geo_eval import maps
from geo_eval.errors import GeoEvalError
from geo_eval.io import csvout
from geo_eval.maps.archive import ArchiveInfo, build_archive
from geo_eval.storage.base import RunRecord
from geo_eval.storage.errors import RunFilesError

log = logging.getLogger(__name__)

ARCHIVE_FILE = "tiles.mbtiles"
MAP_ENTERPRISE_COLUMNS = ("uscc", "name", "grade", "prev_grade", "grade_change")


def manifest_sha256(out_dir: Path) -> str:
    """The sha256 of OUT_DIR's ``manifest.json`` (what a tile archive records it was cut from)."""
    return hashlib.sha256((Path(out_dir) / "manifest.json").read_bytes()).hexdigest()


def with_gids(src: gpd.GeoDataFrame, positions: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """``src`` with ``gid``: the parcel's row in the run's parcel layer plus one (the tiles' feature id)."""
    out = src.copy()
    out["gid"] = (np.arange(len(src)) if positions is None else np.asarray(positions, dtype=np.int64)) + 1
    return out


def map_enterprises(text: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``enterprises.csv`` (read as text) that maps use, unguarded, empty as None."""
    cols = [c for c in MAP_ENTERPRISE_COLUMNS if c in text.columns]
    out = text[cols].apply(csvout.unguard).astype(object)
    return out.where(out != "", None)


def tile_source_of(out_dir: Path) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The tile source of every parcel of the run in ``out_dir`` (EPSG:4326, run order, with ``gid``), and
    every park the run names (its enterprises' and its parcels', as the service lists them)."""
    out = Path(out_dir)
    try:
        # through Arrow: 1M parcels, 500k flags and 600k enterprises read in 4 s instead of 20 s
        parcels = pyogrio.read_dataframe(out / "parcels.gpkg", layer="parcels", use_arrow=True)
        layers = {str(name) for name, _ in pyogrio.list_layers(out / "parcels.gpkg")}
        flags = (
            pd.DataFrame(
                pyogrio.read_dataframe(out / "parcels.gpkg", layer="flags", read_geometry=False, use_arrow=True)
            )
            if "flags" in layers
            else None
        )
        text = pd.read_csv(
            out / "enterprises.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig", engine="pyarrow"
        )
    except (OSError, ValueError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise RunFilesError(f"评价输出目录 {out} 的文件无法读取，不能切割地图瓦片：{exc}") from exc
    parcels = parcels.to_crs(4326) if parcels.crs is not None and not parcels.empty else parcels.set_crs(4326)
    for c in ("parcel_id", "park", "county"):
        parcels[c] = parcels[c].astype(object).where(parcels[c].notna(), None)
    src = maps.tile_source(parcels, flags=flags, enterprises=map_enterprises(text))
    named = set(csvout.unguard(text["park"]).astype(object)) if "park" in text.columns else set()
    parks = sorted({str(p) for p in named | set(parcels["park"]) if isinstance(p, str) and p})
    return with_gids(src), parks


def build_run_tiles(out_dir: Path, run_id: str) -> ArchiveInfo:
    """Cut the tile archive of the run in ``out_dir`` into ``out_dir/tiles.mbtiles``."""
    out = Path(out_dir)
    started = time.perf_counter()
    src, parks = tile_source_of(out)
    read = time.perf_counter() - started
    info = build_archive(src, out / ARCHIVE_FILE, run_id=run_id, manifest_sha256=manifest_sha256(out), parks=parks)
    return replace(info, seconds=info.seconds + read, steps={"read": read, **info.steps})


def register_tiles(out_dir: Path, run_id: str) -> tuple[ArchiveInfo | None, str]:
    """Build the archive of a run being registered; a failure is reported, not fatal (the service then cuts
    the run's tiles per request). Returns the archive (None on failure) and a line for the user."""
    from geo_eval.maps.archive import TileArchiveError

    try:
        info = build_run_tiles(out_dir, run_id)
    except (TileArchiveError, RunFilesError, OSError) as exc:
        log.warning("tile archive of run %s not built: %s", run_id, exc)
        return None, f"地图瓦片未能预先切割（服务将按需切割，较慢）：{exc}"
    return info, (
        f"地图瓦片已切割：{info.tiles} 个瓦片，{info.bytes / 1e6:.1f} MB，最大 {info.max_tile_bytes / 1e3:.0f} KB，"
        f"用时 {info.seconds:.1f} 秒（{info.path.name}）"
    )


def store_run_tiles(store: Any, record: RunRecord, out_dir: Path) -> tuple[bool, str]:
    """Cut the tiles of a run just stored in PostGIS (``evaluate --db``) from its OUT_DIR and store them in
    the database beside it, so that every server serves them without the OUT_DIR. Returns whether it did, and a
    line for the user; a failure is reported, not fatal (the service then has PostGIS cut the run's tiles per request)."""
    from geo_eval.db.tiles import store_tile_archive
    from geo_eval.storage.common import now

    info, message = register_tiles(out_dir, record.run_id)
    if info is None:
        return False, message
    try:
        with store.transaction() as cur:
            store_tile_archive(cur, record.run_id, record.stored_at, info.path, now())
    except GeoEvalError as exc:
        log.warning("tiles of run %s not stored: %s", record.run_id, exc)
        return False, f"地图瓦片未能存入数据库（服务将按需切割，较慢）：{exc}"
    return True, message + "，已存入数据库"
