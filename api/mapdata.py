"""What the map routes derive from a loaded run, built once and kept per run (:class:`MapCache`).

- :class:`MapScope`: the parks of one map (a park page, or the overview of a user's parks);
- park outlines (the parks layer of the run's dataset, ``GEO_EVAL_PARKS_LAYER``, else the parks'
  parcels united and closed over the roads between them), renewal blocks a scope may show (their
  outlines closed over the gaps between members, so a click anywhere inside opens them);
- the tile source of a scope, the review list's flag rows, one parcel's popup (by code or by a point);
- the review states of a scope: the only thing on a map that changes while a run is registered.

Nothing here holds a review state in a cached value: reviews are read from the store per request
(``review_states``), everything else never changes for a loaded run, so it is safe to cache and its
HTTP answers carry an ETag derived from the run (:func:`run_etag`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from fastapi import Request

from api.rundata import WGS84, RunData, map_enterprises
from api.settings import Settings
from geo_eval import maps
from geo_eval.errors import GeoEvalError
from geo_eval.io.dataset import read_dataset_spec
from geo_eval.io.runtiles import with_gids
from geo_eval.landuse.renewal import closed_outlines
from geo_eval.maps import outlines, tiles
from geo_eval.report.timefmt import beijing_time
from geo_eval.storage import NotFoundError, Store, User

log = logging.getLogger(__name__)

T = TypeVar("T")
TILE_CACHE_BYTES = 64 * 1024 * 1024
"""Encoded vector tiles kept in memory (per app), keyed by run, scope, basemap and z/x/y."""
BLOCK_TOLERANCE_M = 2.0
"""Drawn block outlines are simplified by this much (metres): a tenth of a pixel at zoom 14."""
BLOCK_MARGIN_M = 6.0
"""A renewal block is drawn this far outside its members, so its outline shows beside theirs."""
PARK_NAME_COLUMNS = ("park", "园区", "name", "名称")
BLOCKS_IN_BOX_MAX = 2000
"""The most renewal blocks one ``blocks.json`` answer draws (a view at zoom 13 holds a few hundred)."""
ETAG_VERSION = "4"
"""Bumped when what the map routes answer changes shape, so browsers drop their copies (4: a parcel's popup
carries its flags' rows; its URL names the version, as it is cached without an ETag)."""
WHOLE_SOURCE_MAX = 100_000
"""A map of more parcels than this (a province's overview) never makes the tile source of them all (its
geometries and popup texts: gigabytes at 1M parcels): its review list, its 分类变化 keys and a clicked
parcel's popup are made from the few parcels each needs (:func:`partial_source`); its tiles come from the
run's archive."""
TILE_BUFFER = 64
"""Units drawn beyond a tile's edges (of :data:`geo_eval.maps.tiles.TILE_EXTENT`), as ``mvt_tile`` draws them."""
GCJ02_SLACK_DEG = 0.01
"""How far (degrees, about 1 km) beyond a point on a 高德 map to look for the parcel under it: the parcels
are found by their unshifted boxes, and GCJ-02 moves a point by up to about 700 m."""


# ---------------------------------------------------------------------------------------------
# Caches
# ---------------------------------------------------------------------------------------------


class MapCache:
    """A small LRU of values derived from a loaded run, built at most once each under concurrent requests.

    Entries are keyed by the :class:`~api.rundata.RunData` object (held weakly, so a run dropped by the
    run cache or reloaded after ``evaluate --overwrite`` is not served from here) and a key.
    """

    def __init__(self, size: int, *, max_bytes: int | None = None) -> None:
        self.size = size
        self.max_bytes = max_bytes
        """With ``max_bytes``, values are ``bytes`` and their total length is kept under it too."""
        self._bytes = 0
        self._items: OrderedDict[tuple[Any, ...], tuple[weakref.ref[RunData], Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[Any, ...], threading.Lock] = {}

    def _weight(self, value: Any) -> int:
        return len(value) if self.max_bytes is not None else 0

    def _hit(self, full: tuple[Any, ...], data: RunData) -> tuple[bool, Any]:
        with self._lock:
            item = self._items.get(full)
            if item is not None and item[0]() is data:
                self._items.move_to_end(full)
                return True, item[1]
            return False, None

    def _store(self, full: tuple[Any, ...], data: RunData, value: Any) -> None:
        with self._lock:
            old = self._items.pop(full, None)
            if old is not None:
                self._bytes -= self._weight(old[1])
            self._items[full] = (weakref.ref(data), value)
            self._bytes += self._weight(value)
            while len(self._items) > self.size or (
                self.max_bytes is not None and self._bytes > self.max_bytes and len(self._items) > 1
            ):
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= self._weight(dropped)
            self._building.pop(full, None)

    def get(self, data: RunData, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        full = (data.run_id, id(data), *key)
        found, value = self._hit(full, data)
        if found:
            return value  # type: ignore[no-any-return]
        with self._lock:
            building = self._building.setdefault(full, threading.Lock())
        with building:
            found, value = self._hit(full, data)
            if found:
                return value  # type: ignore[no-any-return]
            try:
                value = build()
            except BaseException:
                with self._lock:
                    self._building.pop(full, None)
                raise
            self._store(full, data, value)
            return value  # type: ignore[no-any-return]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


@dataclass
class MapCaches:
    """The caches of one app: pages, tile sources, encoded tiles, the rest."""

    pages: MapCache
    tile_sources: MapCache
    tiles: MapCache
    other: MapCache
    whole_max: int | None = None
    """:data:`WHOLE_SOURCE_MAX` as the service's settings set it (``GEO_EVAL_MAP_PROVINCE_PARCELS``)."""


_caches_lock = threading.Lock()


def map_caches(request: Request) -> MapCaches:
    """The app's map caches (made on first use)."""
    state = request.app.state
    caches: MapCaches | None = getattr(state, "map_caches", None)
    if caches is None:
        with _caches_lock:
            caches = getattr(state, "map_caches", None)
            if caches is None:
                caches = MapCaches(
                    pages=MapCache(24),
                    tile_sources=MapCache(6),
                    tiles=MapCache(100_000, max_bytes=TILE_CACHE_BYTES),
                    other=MapCache(64),
                    whole_max=getattr(getattr(state, "settings", None), "map_province_parcels", None),
                )
                state.map_caches = caches
    return caches


def run_etag(data: RunData, *parts: object) -> str:
    """A strong ETag for an answer that depends only on the loaded run and ``parts``."""
    return stamp_etag(data.run_id, data.stamp, *parts)


def stamp_etag(run_id: str, stamp: str, *parts: object) -> str:
    """A strong ETag for an answer that depends only on the run read from ``stamp`` and ``parts``."""
    text = "|".join(str(p) for p in (ETAG_VERSION, run_id, stamp, *parts))
    return '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'


def etag_matches(request: Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or ``*``)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


# ---------------------------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapScope:
    """The parks of one map: ``park`` for a park page; ``parks`` None means every parcel of the run."""

    park: str | None
    parks: tuple[str, ...] | None

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.park, self.parks)

    @classmethod
    def of_park(cls, park: str) -> MapScope:
        return cls(park, (park,))

    @classmethod
    def overview(cls, user: User) -> MapScope:
        return cls(None, None if user.sees_all_parks() else tuple(sorted(user.parks)))

    def positions(self, data: RunData) -> np.ndarray:
        """Row positions of the run's parcels on this map."""
        return data.parcel_rows(None if self.parks is None else frozenset(self.parks))

    def flag_mask(self, data: RunData) -> np.ndarray:
        """The flags of the run whose parcel is on this map."""
        if self.parks is None:
            return np.ones(len(data.flags), dtype=bool)
        return np.asarray(data.flags["park"].isin(self.parks).to_numpy(dtype=bool))

    def park_names(self, data: RunData) -> list[str]:
        return list(self.parks) if self.parks is not None else data.parks


def scope_parcels(data: RunData, scope: MapScope) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    pos = scope.positions(data)
    return pos, data.parcel_frame(pos)


def scope_extent(data: RunData, positions: np.ndarray) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of some parcel rows (lon/lat), from their stored bounds: no geometry made."""
    cols = data.parcel_geometries.columns
    part = cols if len(positions) == cols.shape[1] else cols[:, positions]  # every row: min and max need no order
    if not part.shape[1] or np.isnan(part[0]).all():
        return (np.nan, np.nan, np.nan, np.nan)
    return (
        float(np.nanmin(part[0])),
        float(np.nanmin(part[1])),
        float(np.nanmax(part[2])),
        float(np.nanmax(part[3])),
    )


def scope_flags(data: RunData, scope: MapScope) -> pd.DataFrame:
    return data.flags.loc[scope.flag_mask(data)].drop(columns=["parcel_pos"])


def enterprise_names(data: RunData) -> pd.DataFrame:
    """The enterprises as the maps need them: names, and classes with last year's for the 分类变化 colouring."""
    return map_enterprises(data.enterprises)


def display_kind(basemap: str) -> Literal["none", "gaode"]:
    """天地图 tiles are drawn unshifted like no basemap; only 高德 needs GCJ-02 coordinates."""
    return "gaode" if basemap == "gaode" else "none"


# ---------------------------------------------------------------------------------------------
# Park outlines and renewal blocks
# ---------------------------------------------------------------------------------------------


def _metric_crs(data: RunData) -> str | None:
    crs = data.manifest.get("area_crs")
    return str(crs) if crs else None


def _dataset_parks_layer(data: RunData) -> Path | None:
    """``[layers] parks`` of the run's ``dataset.toml``, when the dataset is on this server."""
    dataset = data.manifest.get("dataset")
    if not isinstance(dataset, str) or not dataset or not (Path(dataset) / "dataset.toml").is_file():
        return None
    try:
        spec = read_dataset_spec(Path(dataset))
    except GeoEvalError as exc:
        log.warning("dataset of run %s unreadable for the park outlines: %s", data.run_id, exc)
        return None
    layer = getattr(spec.layers, "parks", None) if spec.layers is not None else None
    return Path(dataset) / layer if layer else None


def parks_layer_path(settings: Settings, data: RunData) -> Path | None:
    """The park outlines of a run: ``GEO_EVAL_PARKS_LAYER``, else ``[layers] parks`` of its dataset, else a
    ``parks.gpkg`` beside its dataset or its inputs."""
    if settings.parks_layer is not None:
        if settings.parks_layer.is_file():
            return settings.parks_layer
        log.warning("GEO_EVAL_PARKS_LAYER %s does not exist; outlines from the parcels", settings.parks_layer)
        return None
    candidates: list[Path] = [p for p in (_dataset_parks_layer(data),) if p is not None]
    dataset = data.manifest.get("dataset")
    if isinstance(dataset, str) and dataset:
        candidates += [Path(dataset) / "parks.gpkg", Path(dataset) / "layers" / "parks.gpkg"]
    for entry in (data.manifest.get("inputs") or {}).values():
        path = (entry or {}).get("path") if isinstance(entry, dict) else None
        if isinstance(path, str) and path:
            candidates.append(Path(path).parent / "parks.gpkg")
    return next((c for c in candidates if c.is_file()), None)


def _read_parks(path: Path) -> gpd.GeoDataFrame | None:
    try:
        gdf = pyogrio.read_dataframe(path)
    except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        log.warning("park outlines %s unreadable: %s", path, exc)
        return None
    name = next((c for c in PARK_NAME_COLUMNS if c in gdf.columns), None)
    if name is None or gdf.crs is None:
        log.warning("park outlines %s have no park name column or no CRS", path)
        return None
    gdf = gdf.to_crs(WGS84)
    return gpd.GeoDataFrame({"park": gdf[name].astype(str)}, geometry=gdf.geometry.to_numpy(), crs=WGS84)


def _union_outline(data: RunData, park: str) -> Any:
    """A park's outline from its parcels (:mod:`geo_eval.maps.outlines`), or None."""
    rows = data.parcel_frame(data.parcel_rows(frozenset([park])))
    found = outlines.park_outlines(rows, _metric_crs(data))
    return found.geometry.iloc[0] if len(found) else None


def park_outlines(data: RunData, settings: Settings, caches: MapCaches, scope: MapScope) -> gpd.GeoDataFrame | None:
    """Outlines of the scope's parks: from the parks layer, else their parcels united and closed."""

    def build_all() -> gpd.GeoDataFrame | None:
        path = parks_layer_path(settings, data)
        return None if path is None else _read_parks(path)

    layer = caches.other.get(data, ("parks-layer",), build_all)
    stored = data.stored_park_outlines
    names, geoms = [], []
    for park in scope.park_names(data):
        geom = None
        if layer is not None:
            hit = layer.loc[layer["park"] == park]
            if len(hit):
                geom = shapely.union_all(np.asarray(hit.geometry.array, dtype=object))
        if geom is None and stored is not None:  # made when the run's columnar copy was written
            hit = stored.loc[stored["park"] == park]
            geom = hit.geometry.iloc[0] if len(hit) else None
        elif geom is None:
            geom = caches.other.get(data, ("park-union", park), functools.partial(_union_outline, data, park))
        if geom is not None and not shapely.is_empty(geom):
            names.append(park)
            geoms.append(geom)
    if not geoms:
        return None
    return gpd.GeoDataFrame({"park": names}, geometry=geoms, crs=WGS84)


def scope_blocks(blocks: gpd.GeoDataFrame | None, parcels: pd.DataFrame, scope: MapScope) -> gpd.GeoDataFrame | None:
    """The renewal blocks a map may show: on a map of some parks only the blocks whose parcels all lie in them.

    A block can join parcels of two neighbouring parks; its popup (enterprises, 亩均税收) would tell a
    committee about the other park, so such a block is shown only on the overview of every park.

    >>> b = gpd.GeoDataFrame({"parcel_ids": ["P1;P2", "P2;P9"]}, geometry=[shapely.Point(0, 0)] * 2)
    >>> list(scope_blocks(b, pd.DataFrame({"parcel_id": ["P1", "P2"]}), MapScope.of_park("甲"))["parcel_ids"])
    ['P1;P2']
    """
    if blocks is None or scope.parks is None:
        return blocks
    if "parcel_ids" not in blocks.columns:
        return None
    shown = set(parcels["parcel_id"].astype(str))
    ids = [[p.strip() for p in str(v).split(";") if p.strip()] for v in blocks["parcel_ids"].fillna("").tolist()]
    inside = [bool(parts) and all(p in shown for p in parts) for parts in ids]
    return blocks.loc[np.asarray(inside, dtype=bool)]


def closed_blocks(
    data: RunData, caches: MapCaches, scope: MapScope | None = None, parcels: pd.DataFrame | None = None
) -> gpd.GeoDataFrame | None:
    """The run's renewal blocks with their outlines closed over the gaps between members and drawn
    :data:`BLOCK_MARGIN_M` outside them (for drawing and for finding the block under a click). With a
    ``scope`` and its ``parcels``: only the blocks that map may show (:func:`scope_blocks`), so a park's
    page closes its own few blocks, not the province's."""
    shown = (scope, parcels) if scope is not None and parcels is not None and scope.parks is not None else None

    def build() -> gpd.GeoDataFrame | None:
        if shown is None or data.blocks is None:
            blocks = data.blocks
        elif data.block_parks is not None and shown[0].parks is not None:  # the run's blocks by park, made once
            blocks = data.blocks.loc[data.blocks_within(frozenset(shown[0].parks))]
        else:
            blocks = scope_blocks(data.blocks, shown[1], shown[0])
        return _closed(data, blocks)

    return caches.other.get(data, ("closed-blocks", None if shown is None else shown[0].key), build)


def _closed(data: RunData, blocks: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """Blocks (EPSG:4326) with outlines closed and drawn outside their members, as :func:`closed_blocks` says."""
    metric = _metric_crs(data)
    if blocks is None or not len(blocks) or not metric:
        return blocks
    plane = blocks.to_crs(metric)
    outline = shapely.buffer(np.asarray(closed_outlines(plane).array, dtype=object), BLOCK_MARGIN_M, join_style="mitre")
    outline = shapely.simplify(outline, BLOCK_TOLERANCE_M, preserve_topology=True)
    return plane.set_geometry(gpd.GeoSeries(outline, index=plane.index, crs=plane.crs)).to_crs(WGS84)


def blocks_in_box(
    data: RunData, caches: MapCaches, scope: MapScope, box: tuple[float, float, float, float], basemap: str
) -> bytes:
    """The renewal blocks a map may show (:func:`scope_blocks`) whose box meets ``box`` (map coordinates), as
    the GeoJSON the page draws (outlines closed, popup cells), at most :data:`BLOCKS_IN_BOX_MAX` of them
    (``truncated`` then says so): a province's overview loads the blocks of its view, not all of them."""
    gcj = display_kind(basemap) == "gaode"
    empty = {"type": "FeatureCollection", "features": [], "truncated": False}
    blocks = data.blocks
    if blocks is None or not len(blocks):
        return _json_bytes(empty)
    geoms = blocks.geometry.array
    bounds: np.ndarray = caches.other.get(data, ("block-bounds",), lambda: shapely.bounds(np.asarray(geoms)))
    slack = GCJ02_SLACK_DEG if gcj else 0.0  # blocks are kept unshifted; a 高德 view is shifted by up to ~700 m
    west, south, east, north = box
    hit = (bounds[:, 0] <= east + slack) & (bounds[:, 2] >= west - slack)
    hit &= (bounds[:, 1] <= north + slack) & (bounds[:, 3] >= south - slack)
    if scope.parks is not None:
        if data.block_parks is None:  # blocks that do not name their parcels: only on the overview of all
            return _json_bytes(empty)
        parks = frozenset(scope.parks)
        hit &= caches.other.get(data, ("blocks-within", scope.key), lambda: data.blocks_within(parks))
    if "kind" in blocks.columns:
        hit &= (blocks["kind"] == "连片改造区块").to_numpy(dtype=bool)
    picked = np.flatnonzero(hit)
    doc = maps.blocks_geojson(_closed(data, blocks.iloc[picked[:BLOCKS_IN_BOX_MAX]]), None, gcj=gcj)
    return _json_bytes({**(doc or empty), "truncated": bool(len(picked) > BLOCKS_IN_BOX_MAX)})


# ---------------------------------------------------------------------------------------------
# Tiles, flag rows, parcels
# ---------------------------------------------------------------------------------------------


def tile_source(data: RunData, caches: MapCaches, scope: MapScope, basemap: str) -> gpd.GeoDataFrame:
    """:func:`geo_eval.maps.tile_source` of a scope, built once per run, scope and basemap."""
    kind = display_kind(basemap)

    def build() -> gpd.GeoDataFrame:
        pos, parcels = scope_parcels(data, scope)
        src = maps.tile_source(
            parcels, flags=scope_flags(data, scope), enterprises=enterprise_names(data), basemap=kind
        )
        src = with_gids(src, pos)
        src.sindex  # noqa: B018  (built now, once, not by the first tile requests)
        return src

    return caches.tile_sources.get(data, ("tiles", scope.key, kind), build)


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def is_large(data: RunData, scope: MapScope, caches: MapCaches) -> bool:
    """Whether a map has more parcels than :data:`WHOLE_SOURCE_MAX` (or the service's setting of it)."""
    limit = WHOLE_SOURCE_MAX if caches.whole_max is None else caches.whole_max
    return len(scope.positions(data)) > limit


def partial_source(data: RunData, positions: np.ndarray, basemap: str) -> gpd.GeoDataFrame:
    """:func:`geo_eval.maps.tile_source` of some parcel rows (with ``gid``), made from those parcels, their
    flags and the enterprises they name: the same rows as the tile source of a whole map would hold for them
    (names given only in another parcel's row excepted)."""
    pos = np.unique(np.asarray(positions, dtype=np.int64))
    parcels = data.parcel_frame(pos)
    drawn = (parcels.geometry.notna() & ~parcels.geometry.is_empty).to_numpy(dtype=bool)
    pos, parcels = pos[drawn], parcels.loc[drawn]
    flags = data.flags.iloc[data.flag_rows(pos)].drop(columns=["parcel_pos"])
    names = enterprise_names(data)
    named = _named_codes(parcels, flags)
    src = maps.tile_source(
        parcels, flags=flags, enterprises=names.loc[names["uscc"].isin(named)], basemap=display_kind(basemap)
    )
    return with_gids(src, pos)


LARGE_TILE_MIN_ZOOM = 13
"""A province's map whose tiles are cut per request (no archive, e.g. on the 高德 basemap) draws its parcels
from this zoom on: a tile then holds a few thousand parcels, cut from those alone (:func:`box_source`)."""


def box_source(data: RunData, scope: MapScope, basemap: str, z: int, x: int, y: int) -> gpd.GeoDataFrame:
    """:func:`partial_source` of the map's parcels under tile ``z/x/y`` (with the tile's drawn margin): what a
    province's map without a tile archive cuts a tile from, instead of a tile source of every parcel."""
    west, south, east, north = tiles.tile_bounds(z, x, y)
    pad = max(east - west, north - south) * TILE_BUFFER / tiles.TILE_EXTENT
    pad += GCJ02_SLACK_DEG if display_kind(basemap) == "gaode" else 0.0  # boxes are stored unshifted
    pos = data.parcels_in_bbox((west - pad, south - pad, east + pad, north + pad))
    return partial_source(data, pos[_in_scope(data, scope, pos)], basemap)


def _named_codes(parcels: pd.DataFrame, flags: pd.DataFrame) -> list[str]:
    """Every USCC the parcels and flags name (holders, users, the flags' enterprises)."""
    codes: set[str] = set()
    for frame, columns in ((parcels, ("holder_uscc", "main_user", "users")), (flags, ("enterprises",))):
        for c in columns:
            if c in frame.columns:
                for value in frame[c].dropna().astype(str).tolist():
                    codes.update(v.strip() for v in value.split(";") if v.strip())
    return sorted(codes)


def flag_rows(data: RunData, caches: MapCaches, scope: MapScope, basemap: str) -> bytes:
    """The review list of a scope as JSON: ``{"columns": [...], "rows": [[...], ...]}``."""
    kind = display_kind(basemap)

    def build() -> bytes:
        if is_large(data, scope, caches):  # the flagged parcels only
            flagged = data.flags["parcel_pos"].to_numpy(dtype=np.int64)[scope.flag_mask(data)]
            src = partial_source(data, flagged[flagged >= 0], basemap)
        else:
            src = tile_source(data, caches, scope, basemap)
        rows = maps.flag_index(scope_flags(data, scope), src, src)
        return _json_bytes({"run_id": data.run_id, "columns": list(maps.FLAG_INDEX_COLUMNS), "rows": rows})

    return caches.other.get(data, ("flag-rows", scope.key, kind), build)


def parcel_popup(src: gpd.GeoDataFrame, pos: int) -> dict[str, Any]:
    """One parcel of a tile source as the page's popup needs it (cells escaped, geometry for the outline)."""
    row = src.iloc[pos]
    geom = row.geometry
    rec = {k: row[k] for k in src.columns if k != src.geometry.name}
    west, south, east, north = (round(float(v), 6) for v in shapely.bounds(geom))
    point = shapely.point_on_surface(geom)
    return {
        "parcel_id": str(rec["parcel_id"]),
        "park": str(rec["park"] or ""),
        "cells": maps.popup_cells(rec),
        "n_flags": int(rec["n_flags"] or 0),
        "point": [round(point.x, 6), round(point.y, 6)],
        "bounds": [[south, west], [north, east]],
        "geometry": json.loads(shapely.to_geojson(maps.attributes.round_geoms(np.asarray([geom], dtype=object))[0])),
    }


def parcel_changes(data: RunData, caches: MapCaches, scope: MapScope, basemap: str) -> bytes:
    """The 分类变化 key of every parcel of a scope as JSON ``{parcel_id: key}`` (for the tile-mode colouring)."""

    def build() -> bytes:
        if is_large(data, scope, caches):  # from the parcels' attributes: no geometry is needed
            pos = scope.positions(data)
            table = data.parcel_table.iloc[pos]
            attrs = maps.legend_attributes(table, enterprises=enterprise_names(data))
            keys = attrs["change"].astype(str)
            return _json_bytes(
                {"run_id": data.run_id, "changes": dict(zip(attrs.index.astype(str), keys, strict=True))}
            )
        src = tile_source(data, caches, scope, basemap)
        keys = src["change"].astype(str)
        return _json_bytes({"run_id": data.run_id, "changes": dict(zip(src.index.astype(str), keys, strict=True))})

    return caches.other.get(data, ("changes", scope.key), build)


def parcel_near(data: RunData, scope: MapScope, basemap: str, lon: float, lat: float) -> gpd.GeoDataFrame:
    """:func:`partial_source` of the map's parcels around a point (map coordinates): the candidates for
    :func:`parcel_at` on a map too large for a whole tile source."""
    slack = GCJ02_SLACK_DEG if display_kind(basemap) == "gaode" else 0.0
    pos = data.parcels_in_bbox((lon - slack, lat - slack, lon + slack, lat + slack))
    return partial_source(data, pos[_in_scope(data, scope, pos)], basemap)


def parcel_by_id(data: RunData, scope: MapScope, basemap: str, parcel_id: str) -> gpd.GeoDataFrame:
    """:func:`partial_source` of one parcel of the map (empty when the map has no such parcel)."""
    pos = data.parcel_position(parcel_id)
    rows = np.array([pos] if pos >= 0 else [], dtype=np.int64)
    return partial_source(data, rows[_in_scope(data, scope, rows)], basemap)


def _in_scope(data: RunData, scope: MapScope, positions: np.ndarray) -> np.ndarray:
    if scope.parks is None:
        return np.ones(len(positions), dtype=bool)
    return np.asarray(data.parcel_table["park"].take(positions).isin(scope.parks).to_numpy(dtype=bool))


def parcel_at(src: gpd.GeoDataFrame, lon: float, lat: float) -> int | None:
    """Row position of the parcel under a point (map coordinates), the smallest if several overlap."""
    hits = src.sindex.query(shapely.Point(lon, lat), predicate="intersects")
    if not len(hits):
        return None
    if len(hits) == 1:
        return int(hits[0])
    areas = shapely.area(np.asarray(src.geometry.array, dtype=object)[hits])
    return int(hits[int(np.argmin(areas))])


# ---------------------------------------------------------------------------------------------
# Review states
# ---------------------------------------------------------------------------------------------


def review_version(store: Store, run_id: str) -> int:
    """A number that changes whenever a review (or the registration) of the run changes: its latest audit id."""
    entries = store.audit(run_id=run_id, limit=1)
    return entries[0].id if entries else 0


def scope_flag_ids(data: RunData, caches: MapCaches, scope: MapScope) -> pa.Array:
    """The ids of the map's flags as one Arrow array (a province's 500k ids: no Python set of them per worker)."""
    return caches.other.get(
        data,
        ("flag-ids", scope.key),
        lambda: pa.array(data.flags.index[scope.flag_mask(data)].astype(str), pa.string()),
    )


def review_states(data: RunData, store: Store, caches: MapCaches, scope: MapScope) -> dict[str, list[object]]:
    """Flag id → ``[status, version, comment, reviewer, Beijing time, carried]`` of every reviewed flag on the
    map; ``carried`` says which earlier version of the year the review was carried over from ("" if none).

    A flag never reviewed is absent (the page takes it as 待复核, version 0).
    """
    reviews = store.reviews(data.run_id)
    reviewed = sorted(reviews)
    on_map = pc.is_in(pa.array(reviewed, pa.string()), value_set=scope_flag_ids(data, caches, scope))
    ids = {fid for fid, here in zip(reviewed, on_map.to_pylist(), strict=True) if here}
    sources = carried_sources(store, {r.carried_from for r in reviews.values() if r.carried_from})
    carried = {k: f"沿用{v}的复核（标记未变化）" for k, v in sources.items()}
    return {
        fid: [r.status, r.version, r.comment, r.updated_by, beijing_time(r.updated_at), carried.get(r.carried_from, "")]
        for fid, r in sorted(reviews.items())
        if fid in ids
    }


def carried_sources(store: Store, run_ids: set[str]) -> dict[str, str]:
    """How people name the runs reviews were carried over from (``第 1 版``; ``批次 …`` if no longer registered)."""
    names = {}
    for run_id in run_ids:
        try:
            names[run_id] = f"第 {store.get_run(run_id).version} 版"
        except NotFoundError:
            names[run_id] = f"批次 {run_id} "
    return names
