"""Park maps (Folium pages), the vector tiles of large parks and their search index.

=====================================================  =====================================================
``GET /maps/``                                          overview: every park the user may see
``GET /maps/{park}``                                    one park (committee: only its own, else 403)
``GET /api/tiles/{park}/{z}/{x}/{y}.pbf``               Mapbox vector tile of a park's parcels
``GET /api/tiles/{z}/{x}/{y}.pbf``                      the same for the overview (the user's parks)
``GET /api/maps/{park}/search.json``                    search index of a park (parcel codes, names, USCCs)
``GET /api/maps/search.json``                           the same for the overview
=====================================================  =====================================================

Pages are :func:`geo_eval.maps.park_map_html` over the run's parcels (EPSG:4326), its flags joined to
their review state (``status``, ``comment``), its renewal blocks, the park outlines (``parks.gpkg``
beside the run's dataset or ``GEO_EVAL_PARKS_LAYER``, else the union of the park's parcels) and the
enterprises' names (renewal blocks only where all their parcels are on the map, so a block that joins
two parks tells no committee about the other). A signed-out browser is sent to the login page. Above
``GEO_EVAL_MAP_TILE_THRESHOLD`` parcels (or with ``?tiles=1``) the page draws the parcels from the
tile routes, whose URLs name the run and the review version, so a review changes the URLs and no
stale tile is shown. Everything derived from a run (pages, tile sources, outlines, search indexes) is
built once and kept per loaded run (:class:`MapCache`); a page also by its options and review version.

Map pages carry a Content-Security-Policy that lets them load scripts and styles only from this
service and images only from it and the two optional basemaps.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote, urlencode

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import CurrentUser, PageUser, RunCacheDep, RunDep, SettingsDep, StoreDep, ensure_park
from api.errors import InvalidQuery, NotFound
from api.rundata import WGS84, RunData
from api.settings import Settings
from geo_eval import maps, tiles
from geo_eval.storage import RunRecord, Store, User

log = logging.getLogger(__name__)
router = APIRouter(tags=["地图"])

MAP_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https://*.tianditu.gov.cn https://*.is.autonavi.com; connect-src 'self'"
)
"""Content-Security-Policy of the map pages: nothing is loaded from another host but basemap images."""
MVT_TYPE = "application/vnd.mapbox-vector-tile"
ASSET_BASE = "/static/vendor"
TILE_CACHE_BYTES = 64 * 1024 * 1024
"""Encoded vector tiles kept in memory (per app), keyed by run, scope, basemap, review version and z/x/y."""
OUTLINE_TOLERANCE = 1e-5
"""Simplification of an outline made from the parcels (degrees, about 1 m): a 20k-parcel park's union
has some 8 000 vertices, simplified about 1 000, with no visible change."""
PARK_NAME_COLUMNS = ("park", "园区", "name", "名称")

ColorBy = Annotated[
    Literal["grade", "tax_per_mu"], Query(description="着色：grade 按分类（默认），tax_per_mu 按亩均税收分级")
]
BasemapQ = Annotated[
    Literal["none", "tianditu", "gaode"],
    Query(
        description="底图：none 无（默认），tianditu 天地图（须配置 GEO_EVAL_TIANDITU_KEY），gaode 高德（图层按 GCJ-02 偏移）"
    ),
]
TilesQ = Annotated[bool, Query(description="强制以矢量瓦片显示地块（默认只在地块数超过阈值时）")]
YearQ = Annotated[int | None, Query(description="评价年度；默认最新登记的批次", ge=1900, le=2200)]
RunQ = Annotated[str | None, Query(description="评价批次编号；优先于 year")]
VersionQ = Annotated[str | None, Query(description="复核版本（地图页面自动添加，用于刷新缓存）")]

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Caches of what is derived from a loaded run
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
            return value  # type: ignore[no-any-return]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


@dataclass
class MapCaches:
    """The caches of one app: pages (by options and review version), tile sources, encoded tiles, the rest."""

    pages: MapCache
    tile_sources: MapCache
    tiles: MapCache
    other: MapCache


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
                    other=MapCache(32),
                )
                state.map_caches = caches
    return caches


# ---------------------------------------------------------------------------------------------
# What a map shows
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
        if self.parks is None:
            return np.arange(len(data.parcels))
        return np.flatnonzero(data.parcels["park"].isin(self.parks).to_numpy(dtype=bool))

    def park_names(self, data: RunData) -> list[str]:
        return list(self.parks) if self.parks is not None else data.parks


def review_version(store: Store, run_id: str) -> int:
    """A number that changes whenever a review (or the registration) of the run changes: its latest audit id."""
    entries = store.audit(run_id=run_id, limit=1)
    return entries[0].id if entries else 0


def flags_with_reviews(data: RunData, store: Store, positions: np.ndarray) -> pd.DataFrame:
    """The flags of some parcel rows with their review state as ``status`` and ``comment``."""
    fl = data.flags.loc[data.flags["parcel_pos"].isin(positions)].reset_index(drop=True)
    reviews = store.reviews(data.run_id, fl["flag_id"].astype(str))
    ids = fl["flag_id"].astype(str)
    fl["status"] = [reviews[f].status if f in reviews else "pending" for f in ids]
    fl["comment"] = [reviews[f].comment if f in reviews else "" for f in ids]
    return fl.drop(columns=["parcel_pos"])


def parks_layer_path(settings: Settings, data: RunData) -> Path | None:
    """The park outlines of a run: ``GEO_EVAL_PARKS_LAYER``, else a ``parks.gpkg`` beside its dataset or layers."""
    if settings.parks_layer is not None:
        if settings.parks_layer.is_file():
            return settings.parks_layer
        log.warning("GEO_EVAL_PARKS_LAYER %s does not exist; outlines from the parcels", settings.parks_layer)
        return None
    candidates: list[Path] = []
    dataset = data.manifest.get("dataset")
    if isinstance(dataset, str) and dataset:
        candidates += [Path(dataset) / "parks.gpkg", Path(dataset) / "layers" / "parks.gpkg"]
    for entry in (data.manifest.get("inputs") or {}).values():
        path = (entry or {}).get("path") if isinstance(entry, dict) else None
        if isinstance(path, str) and path:
            candidates.append(Path(path).parent / "parks.gpkg")
    for c in candidates:
        if c.is_file():
            return c
    return None


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


def park_outlines(data: RunData, settings: Settings, caches: MapCaches, scope: MapScope) -> gpd.GeoDataFrame | None:
    """Outlines of the scope's parks: from the parks layer, else the union of each park's parcels."""

    def build_all() -> gpd.GeoDataFrame | None:
        path = parks_layer_path(settings, data)
        return None if path is None else _read_parks(path)

    layer = caches.other.get(data, ("parks-layer",), build_all)

    def build_union(park: str) -> Any:
        rows = data.parcels.loc[(data.parcels["park"] == park).to_numpy(dtype=bool)]
        geoms = np.asarray(rows.geometry.array, dtype=object)
        geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
        if not len(geoms):
            return None
        union = shapely.union_all(shapely.make_valid(geoms))
        return shapely.simplify(union, OUTLINE_TOLERANCE, preserve_topology=True)

    names, geoms = [], []
    for park in scope.park_names(data):
        geom = None
        if layer is not None:
            hit = layer.loc[layer["park"] == park]
            if len(hit):
                geom = shapely.union_all(np.asarray(hit.geometry.array, dtype=object))
        if geom is None:
            geom = caches.other.get(data, ("park-union", park), functools.partial(build_union, park))
        if geom is not None and not shapely.is_empty(geom):
            names.append(park)
            geoms.append(geom)
    if not geoms:
        return None
    return gpd.GeoDataFrame({"park": names}, geometry=geoms, crs=WGS84)


def _scope_parcels(data: RunData, scope: MapScope) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    pos = scope.positions(data)
    return pos, data.parcels.iloc[pos]


def scope_blocks(blocks: gpd.GeoDataFrame | None, parcels: pd.DataFrame, scope: MapScope) -> gpd.GeoDataFrame | None:
    """The renewal blocks a map may show: on a map of some parks only the blocks whose parcels all lie in them.

    A block can join parcels of two neighbouring parks; its popup (enterprises, 亩均税收) would tell a
    committee about the other park, so such a block is shown only on the overview of every park.

    >>> import shapely
    >>> b = gpd.GeoDataFrame({"parcel_ids": ["P1;P2", "P2;P9"]}, geometry=[shapely.Point(0, 0)] * 2)
    >>> list(scope_blocks(b, pd.DataFrame({"parcel_id": ["P1", "P2"]}), MapScope.of_park("甲"))["parcel_ids"])
    ['P1;P2']
    """
    if blocks is None or scope.parks is None:
        return blocks
    if "parcel_ids" not in blocks.columns:
        return None
    shown = set(parcels["parcel_id"].astype(str))
    ids = [[p.strip() for p in str(v).split(";") if p.strip()] for v in blocks["parcel_ids"].fillna("")]
    inside = [bool(parts) and all(p in shown for p in parts) for parts in ids]
    return blocks.loc[np.asarray(inside, dtype=bool)]


def _enterprise_names(data: RunData) -> pd.DataFrame:
    return pd.DataFrame(data.enterprises[["uscc", "name"]])


def _tile_basemap(basemap: str) -> Literal["none", "gaode"]:
    """天地图 tiles are drawn unshifted like no basemap; only 高德 needs GCJ-02 tiles."""
    return "gaode" if basemap == "gaode" else "none"


def tile_source(
    data: RunData, store: Store, caches: MapCaches, scope: MapScope, basemap: str, version: int
) -> gpd.GeoDataFrame:
    """The :func:`geo_eval.maps.tile_source` of a scope, built once per run, scope, basemap and review version."""
    kind = _tile_basemap(basemap)

    def build() -> gpd.GeoDataFrame:
        pos, parcels = _scope_parcels(data, scope)
        src = maps.tile_source(
            parcels, flags=flags_with_reviews(data, store, pos), enterprises=_enterprise_names(data), basemap=kind
        )
        src.sindex  # noqa: B018  (built now, once, not by the first tile requests)
        return src

    return caches.tile_sources.get(data, ("tiles", scope.key, kind, version), build)


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


def _load_run(store: Store, cache: Any, run: str | None, year: int | None) -> RunData:
    record: RunRecord = store.get_run(run) if run else store.latest_run(year)
    return cache.get(record)  # type: ignore[no-any-return]


def _query(**params: object) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return urlencode(clean) if clean else ""


def _url(path: str, **params: object) -> str:
    q = _query(**params)
    return f"{path}?{q}" if q else path


def _nav_html(
    data: RunData,
    scope: MapScope,
    links: list[tuple[str, str]],
    *,
    color_by: str,
    basemap: str,
    tianditu: bool,
    tiles_forced: bool,
) -> str:
    """A small bar with the way back, the other parks and the colour and basemap choices (all escaped)."""
    e = html.escape
    here = "/maps/" if scope.park is None else f"/maps/{quote(scope.park, safe='')}"
    base = {"run": data.run_id, "tiles": 1 if tiles_forced else None}
    opts = []
    for value, label in (("grade", "按分类"), ("tax_per_mu", "按亩均税收")):
        url = _url(here, color_by=value, basemap=None if basemap == "none" else basemap, **base)
        opts.append(f"<b>{e(label)}</b>" if value == color_by else f'<a href="{e(url)}">{e(label)}</a>')
    bases = [("none", "无底图")] + ([("tianditu", "天地图")] if tianditu else []) + [("gaode", "高德")]
    for value, label in bases:
        url = _url(
            here, color_by=None if color_by == "grade" else color_by, basemap=None if value == "none" else value, **base
        )
        opts.append(f"<b>{e(label)}</b>" if value == basemap else f'<a href="{e(url)}">{e(label)}</a>')
    park_links = " · ".join(f'<a href="{e(url)}">{e(name)}</a>' for name, url in links)
    year = f"{data.record.year} 年度"
    return (
        '<nav class="ge-nav" aria-label="地图导航">'
        "<style>.ge-nav{position:fixed;left:10px;bottom:24px;z-index:1000;background:rgba(255,255,255,.92);"
        "padding:6px 10px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);font:12px/1.7 system-ui,"
        '"PingFang SC","Microsoft YaHei",sans-serif;max-width:48vw}.ge-nav a{color:#1f6feb;text-decoration:none}'
        ".ge-nav b{color:#222}</style>"
        f'<div><a href="/">首页</a> · <a href="{e(_url("/maps/", run=data.run_id))}">园区总览</a> · {e(year)}</div>'
        f"<div>{' · '.join(opts)}</div>" + (f"<div>{park_links}</div>" if park_links else "") + "</nav>"
    )


def _inject(page: str, snippet: str) -> str:
    i = page.rfind("</body>")
    return page[:i] + snippet + page[i:] if i >= 0 else page + snippet


def render_map(
    request: Request,
    data: RunData,
    store: Store,
    settings: Settings,
    scope: MapScope,
    *,
    color_by: str,
    basemap: str,
    tiles_forced: bool,
) -> Response:
    """The HTML page of a scope (cached by run, scope, options and review version)."""
    if basemap == "tianditu" and not settings.tianditu_key:
        raise InvalidQuery("服务未配置天地图密钥（GEO_EVAL_TIANDITU_KEY），不能使用天地图底图")
    caches = map_caches(request)
    version = review_version(store, data.run_id)
    threshold = 0 if tiles_forced else settings.map_tile_threshold
    if threshold is None:
        threshold = maps.TILE_THRESHOLD

    def build() -> str:
        pos, parcels = _scope_parcels(data, scope)
        common = {"run": data.run_id, "basemap": None if basemap == "none" else basemap}
        if scope.park is None:
            tiles_url = "/api/tiles/{z}/{x}/{y}.pbf?" + _query(**common, v=version)
            search_url = _url("/api/maps/search.json", **common)
            title = "园区总览"
        else:
            park = quote(scope.park, safe="")
            tiles_url = f"/api/tiles/{park}/{{z}}/{{x}}/{{y}}.pbf?" + _query(**common, v=version)
            search_url = _url(f"/api/maps/{park}/search.json", **common)
            title = scope.park
        page = maps.park_map_html(
            parcels,
            flags=flags_with_reviews(data, store, pos),
            blocks=scope_blocks(data.blocks, parcels, scope),
            parks=park_outlines(data, settings, caches, scope),
            enterprises=_enterprise_names(data),
            color_by=color_by,
            basemap=basemap,
            tianditu_key=settings.tianditu_key,
            asset_base=ASSET_BASE,
            tiles_url=tiles_url,
            tile_threshold=threshold,
            search_url=search_url,
            title=f"{title} · {data.record.year} 年度亩均效益评价",
        )
        links = [
            (name, _url(f"/maps/{quote(name, safe='')}", run=data.run_id))
            for name in scope.park_names(data)
            if name != scope.park
        ]
        nav = _nav_html(
            data,
            scope,
            links,
            color_by=color_by,
            basemap=basemap,
            tianditu=bool(settings.tianditu_key),
            tiles_forced=tiles_forced,
        )
        return _inject(page, nav)

    key = ("page", scope.key, color_by, basemap, threshold, version)
    try:
        page = caches.pages.get(data, key, build)
    except ValueError as exc:  # options the map library refuses (e.g. a malformed 天地图 key)
        raise InvalidQuery(str(exc)) from exc
    return HTMLResponse(page, headers={"Content-Security-Policy": MAP_CSP, "Cache-Control": "private, no-cache"})


def _check_park(request: Request, data: RunData, park: str) -> None:
    """404 unless the run names ``park`` (after the committee check, so nothing leaks to a committee)."""
    names = map_caches(request).other.get(data, ("park-names",), lambda: frozenset(data.parks))
    if park not in names:
        raise NotFound(f"评价批次 {data.run_id} 中没有园区“{park}”")


@router.get(
    "/maps/",
    summary="园区总览地图",
    description="当前用户可查看的全部园区：宗地按分类或亩均税收着色，疑似闲置／低效地块、连片改造区块、园区边界各为一层，"
    "可搜索企业名称、统一社会信用代码或宗地代码。未登录的浏览器转到登录页。",
    response_class=HTMLResponse,
)
def overview_map(
    user: PageUser,
    request: Request,
    store: StoreDep,
    cache: RunCacheDep,
    settings: SettingsDep,
    color_by: ColorBy = "grade",
    basemap: BasemapQ = "none",
    tiles: TilesQ = False,
    year: YearQ = None,
    run: RunQ = None,
) -> Response:
    data = _load_run(store, cache, run, year)
    scope = MapScope.overview(user)
    return render_map(request, data, store, settings, scope, color_by=color_by, basemap=basemap, tiles_forced=tiles)


@router.get(
    "/maps/{park}",
    summary="园区地图",
    description="一个园区的宗地、标记（按复核状态描边）、连片改造区块和园区边界；弹窗列出宗地的数据和标记。"
    "园区管委会只能查看本园区（其他园区 403）。地块数超过阈值时以矢量瓦片显示。",
    response_class=HTMLResponse,
    responses={403: {"description": "无权查看该园区"}, 404: {"description": "没有该园区"}},
)
def park_map(
    park: str,
    user: PageUser,
    request: Request,
    store: StoreDep,
    cache: RunCacheDep,
    settings: SettingsDep,
    color_by: ColorBy = "grade",
    basemap: BasemapQ = "none",
    tiles: TilesQ = False,
    year: YearQ = None,
    run: RunQ = None,
) -> Response:
    ensure_park(user, park)
    data = _load_run(store, cache, run, year)
    _check_park(request, data, park)
    scope = MapScope.of_park(park)
    return render_map(request, data, store, settings, scope, color_by=color_by, basemap=basemap, tiles_forced=tiles)


# ---------------------------------------------------------------------------------------------
# Vector tiles and search
# ---------------------------------------------------------------------------------------------

TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {MVT_TYPE: {}}, "description": "Mapbox 矢量瓦片（图层 parcels；无要素时为空）"},
    403: {"description": "无权查看该园区"},
    404: {"description": "瓦片超出范围或没有该园区"},
}


def _tile_response(
    request: Request, data: RunData, store: Store, scope: MapScope, basemap: str, z: int, x: int, y: int
) -> Response:
    caches = map_caches(request)
    version = review_version(store, data.run_id)

    def build() -> bytes:
        if data.source == "postgis" and data.record.srid:
            return _database_tile(store, data, scope, basemap, z, x, y)
        src = tile_source(data, store, caches, scope, basemap, version)
        return tiles.mvt_tile(src, z, x, y, properties=maps.tile_properties(z))

    try:
        body = caches.tiles.get(data, ("tile", scope.key, _tile_basemap(basemap), version, z, x, y), build)
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    return Response(body, media_type=MVT_TYPE, headers={"Cache-Control": "private, max-age=600"})


def _database_tile(store: Store, data: RunData, scope: MapScope, basemap: str, z: int, x: int, y: int) -> bytes:
    """The tile cut by PostGIS (``ST_AsMVT``) from a run stored in the database, for the scope's parks."""
    from geo_eval.db import tiles as db_tiles

    assert data.record.srid is not None
    with store.connection() as conn:  # type: ignore[attr-defined]  # a PostgresStore (data.source == "postgis")
        return db_tiles.mvt_tile(
            conn,
            run_id=data.run_id,
            srid=data.record.srid,
            z=z,
            x=x,
            y=y,
            properties=maps.tile_properties(z),
            parks=scope.parks,
            gcj02=_tile_basemap(basemap) == "gaode",
        )


@router.get(
    "/api/tiles/{park}/{z}/{x}/{y}.pbf",
    summary="园区宗地矢量瓦片（MVT）",
    description="大园区地图按需请求的瓦片：宗地的分类、亩均税收、标记与复核状态；14 级及以上含弹窗的全部字段。"
    "`v` 为地图页面附带的复核版本（只用于刷新浏览器缓存）。园区管委会只能请求本园区。",
    response_class=Response,
    responses=TILE_RESPONSES,
)
def park_tile(
    park: str,
    z: int,
    x: int,
    y: int,
    user: CurrentUser,
    request: Request,
    data: RunDep,
    store: StoreDep,
    basemap: BasemapQ = "none",
    v: VersionQ = None,
) -> Response:
    ensure_park(user, park)
    _check_park(request, data, park)
    return _tile_response(request, data, store, MapScope.of_park(park), basemap, z, x, y)


@router.get(
    "/api/tiles/{z}/{x}/{y}.pbf",
    summary="总览地图宗地矢量瓦片（MVT）",
    description="总览地图的瓦片：当前用户可查看的全部园区。",
    response_class=Response,
    responses=TILE_RESPONSES,
)
def overview_tile(
    z: int,
    x: int,
    y: int,
    user: CurrentUser,
    request: Request,
    data: RunDep,
    store: StoreDep,
    basemap: BasemapQ = "none",
    v: VersionQ = None,
) -> Response:
    return _tile_response(request, data, store, MapScope.overview(user), basemap, z, x, y)


def _search_response(request: Request, data: RunData, store: Store, scope: MapScope, basemap: str) -> Response:
    caches = map_caches(request)
    kind = _tile_basemap(basemap)

    def build() -> bytes:
        _, parcels = _scope_parcels(data, scope)
        rows = maps.search_index(parcels, enterprises=_enterprise_names(data), basemap=kind)
        return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    body = caches.other.get(data, ("search", scope.key, kind), build)
    return Response(body, media_type=JSONResponse.media_type, headers={"Cache-Control": "private, max-age=600"})


SEARCH_DESCRIPTION = (
    "每行 `[宗地代码, 企业名称, 统一社会信用代码, 西, 南, 东, 北]`（地图坐标：EPSG:4326，高德底图时为 GCJ-02），"
    "供大园区地图的搜索框按需加载。"
)


@router.get(
    "/api/maps/search.json",
    summary="总览地图搜索索引",
    description=SEARCH_DESCRIPTION + "范围为当前用户可查看的全部园区。",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "搜索索引"}},
)
def overview_search(
    user: CurrentUser, request: Request, data: RunDep, store: StoreDep, basemap: BasemapQ = "none"
) -> Response:
    return _search_response(request, data, store, MapScope.overview(user), basemap)


@router.get(
    "/api/maps/{park}/search.json",
    summary="园区地图搜索索引",
    description=SEARCH_DESCRIPTION + "园区管委会只能请求本园区。",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "搜索索引"},
        403: {"description": "无权查看该园区"},
        404: {"description": "没有该园区"},
    },
)
def park_search(
    park: str, user: CurrentUser, request: Request, data: RunDep, store: StoreDep, basemap: BasemapQ = "none"
) -> Response:
    ensure_park(user, park)
    _check_park(request, data, park)
    return _search_response(request, data, store, MapScope.of_park(park), basemap)
