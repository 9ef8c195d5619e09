"""What a map page loads besides itself: tiles, search index, review list, review states, one parcel.

=========================================================  ============================================
``GET /api/tiles/{park}/{z}/{x}/{y}.pbf``                   Mapbox vector tile of a park's parcels
``GET /api/tiles/{z}/{x}/{y}.pbf``                          the same for the overview (the user's parks)
``GET /api/maps/{park}/search.json``                        search index (parcel codes, names, USCCs)
``GET /api/maps/{park}/flags.json``                         the review list: one row per flag
``GET /api/maps/{park}/reviews.json``                       review states (flag id → state), polled
``GET /api/maps/{park}/queue.json``                         the review list a page at a time, with counts
``GET /api/maps/{park}/blocks.json?bbox=``                  the renewal blocks in a box (a province's view)
``GET /api/maps/{park}/parcel.json?id=`` / ``?lon=&lat=``   one parcel's popup (by code or by a point)
=========================================================  ============================================

(and the same under ``/api/maps/`` for the overview). Everything but the review states depends only on
the run, so it is answered with ``Cache-Control: private, max-age=…, immutable`` and an ETag of the
run (a repeated request with ``If-None-Match`` gets 304): tiles never carry a review state, the page
applies the states it polls. The review states answer with an ETag of the run's latest review, so a
poll that finds nothing new costs a 304 and no body. A committee user gets only its own park.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import CurrentUser, RunCacheDep, RunDep, SelectedRun, StoreDep, ensure_park
from api.errors import InvalidQuery, NotFound
from api.geojson import BBOX_HELP, parse_bbox
from api.mapdata import (
    LARGE_TILE_MIN_ZOOM,
    MapScope,
    blocks_in_box,
    box_source,
    display_kind,
    enterprise_names,
    etag_matches,
    flag_rows,
    is_large,
    map_caches,
    parcel_at,
    parcel_by_id,
    parcel_changes,
    parcel_near,
    parcel_popup,
    review_states,
    review_version,
    run_etag,
    scope_parcels,
    stamp_etag,
    tile_source,
)
from api.mapsearch import SEARCH_LIMIT_MAX, find_rows, matching
from api.reviewqueue import QUEUE_PAGE_MAX, QueueQuery, queue_answer, queue_order, scope_states
from api.routes.maps import MVT_TYPE, BasemapQ, check_park
from api.rundata import RunCache, RunData
from api.tilearchive import TileArchive, archive_of
from geo_eval import maps
from geo_eval.maps import tiles
from geo_eval.storage import RunRecord, Store

router = APIRouter(tags=["地图"])

IMMUTABLE = "private, max-age=86400, immutable"
"""Run data never changes under its ETag; ``private``: it is scoped to the user's parks."""
JSON_TYPE = "application/json"


GZIP_MIN_BYTES = 256 * 1024
"""A JSON answer at least this long goes gzip-compressed to a browser that accepts it (a province's 分类变化
keys, 29 MB at 1M parcels, travel as about a tenth of that; a large park's review list and search index too)."""


def _accepts_gzip(request: Request) -> bool:
    """Whether ``Accept-Encoding`` names gzip with a quality above 0 (``gzip;q=0.5`` yes, ``gzip;q=0`` no)."""
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, *params = (p.strip().lower() for p in part.split(";"))
        if coding != "gzip":
            continue
        quality = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            return float(quality) > 0
        except ValueError:
            return False
    return False


def cached_answer(request: Request, etag: str, build: Any, media_type: str, cache_control: str = IMMUTABLE) -> Response:
    """304 when the browser holds ``etag``, else the body ``build()`` makes, with the ETag. A large JSON body
    is sent gzip-compressed when the browser accepts it, under its own ETag (the same bytes never travel under
    two tags)."""
    gz = media_type == JSON_TYPE and _accepts_gzip(request)
    zipped = etag[:-1] + '-gz"'
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if gz:
        headers["Vary"] = "Accept-Encoding"
    for tag in (etag, zipped) if gz else (etag,):
        if etag_matches(request, tag):
            return Response(status_code=304, headers={**headers, "ETag": tag})
    body = build()
    if gz and len(body) >= GZIP_MIN_BYTES:
        body = gzip.compress(body, compresslevel=5, mtime=0)
        headers.update({"ETag": zipped, "Content-Encoding": "gzip"})
    return Response(body, media_type=media_type, headers=headers)


def _park_scope(request: Request, user: Any, data: RunData, park: str) -> MapScope:
    ensure_park(user, park)
    check_park(request, data, park)
    return MapScope.of_park(park)


# ---------------------------------------------------------------------------------------------
# Vector tiles
# ---------------------------------------------------------------------------------------------

TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {MVT_TYPE: {}}, "description": "Mapbox 矢量瓦片（图层 parcels；无要素时为空）"},
    304: {"description": "浏览器缓存的瓦片仍然有效"},
    403: {"description": "无权查看该园区"},
    404: {"description": "瓦片超出范围或没有该园区"},
}


def _tile_response(
    request: Request,
    record: RunRecord,
    cache: RunCache,
    store: Store,
    scope_of: Callable[[RunData | None, TileArchive | None], MapScope],
    basemap: str,
    z: int,
    x: int,
    y: int,
) -> Response:
    """The tile from the run's pre-built archive (without reading the run itself: a cold service answers
    at once), else cut from the run in memory or by PostGIS."""
    kind = display_kind(basemap)
    try:
        tiles._check_tile(z, x, y)
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    archive, stamp = archive_of(request, record, cache, kind)
    if archive is not None:
        scope = scope_of(None, archive)
        etag = stamp_etag(record.run_id, stamp, "tile", scope.key, kind, z, x, y, "archive")
        return cached_answer(request, etag, lambda: archive.tile(z, x, y, scope.parks), MVT_TYPE)
    data = cache.get(record)
    scope = scope_of(data, None)
    caches = map_caches(request)

    def build() -> bytes:
        large = is_large(data, scope, caches)
        if large and z < LARGE_TILE_MIN_ZOOM:  # a province without pre-built tiles draws from zoom 13 on
            return b""
        if data.source == "postgis" and data.record.srid:
            return _database_tile(store, data, scope, kind, z, x, y)
        if large:  # only the tile's own parcels
            src = box_source(data, scope, basemap, z, x, y)
        else:
            src = tile_source(data, caches, scope, basemap)
        return tiles.mvt_tile(src, z, x, y, properties=maps.tile_properties(z), id_column="gid")

    etag = run_etag(data, "tile", scope.key, kind, z, x, y, "cut")
    return cached_answer(
        request, etag, lambda: caches.tiles.get(data, ("tile", scope.key, kind, z, x, y), build), MVT_TYPE
    )


def _park_tile_scope(
    request: Request, record: RunRecord, park: str
) -> Callable[[RunData | None, TileArchive | None], MapScope]:
    """A park page's scope: 404 unless the run names the park (from its archive, else from the run)."""

    def scope(data: RunData | None, archive: TileArchive | None) -> MapScope:
        if archive is not None:
            if park not in archive.parks:
                raise NotFound(f"评价批次 {record.year} 年度（{record.run_id}）中没有园区“{park}”")
        elif data is not None:
            check_park(request, data, park)
        return MapScope.of_park(park)

    return scope


def _database_tile(store: Store, data: RunData, scope: MapScope, kind: str, z: int, x: int, y: int) -> bytes:
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
            gcj02=kind == "gaode",
        )


@router.get(
    "/api/tiles/{park:path}/{z}/{x}/{y}.pbf",
    summary="园区宗地矢量瓦片（MVT）",
    description="大园区地图按需请求的瓦片：宗地的分类、亩均税收和标记数；14 级及以上含弹窗的全部字段。瓦片不含复核状态"
    "（页面另行获取并着色），在一个评价批次内不变：带 ETag，可长期缓存。园区管委会只能请求本园区。",
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
    record: SelectedRun,
    cache: RunCacheDep,
    store: StoreDep,
    basemap: BasemapQ = "none",
) -> Response:
    ensure_park(user, park)
    return _tile_response(request, record, cache, store, _park_tile_scope(request, record, park), basemap, z, x, y)


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
    record: SelectedRun,
    cache: RunCacheDep,
    store: StoreDep,
    basemap: BasemapQ = "none",
) -> Response:
    scope = MapScope.overview(user)
    return _tile_response(request, record, cache, store, lambda *_: scope, basemap, z, x, y)


# ---------------------------------------------------------------------------------------------
# Search index and review list
# ---------------------------------------------------------------------------------------------

SEARCH_DESCRIPTION = (
    "每行 `[宗地代码, 企业名称, 统一社会信用代码, 西, 南, 东, 北]`（地图坐标：EPSG:4326，高德底图时为 GCJ-02），"
    "供大园区地图的搜索框按需加载；给出 `q` 时只返回宗地代码、企业名称或信用代码含该文字的前 `limit` 行"
    "（省级总览的搜索框如此查询）。"
)
FLAGS_DESCRIPTION = (
    "复核面板的标记清单：`columns` 为列名（flag_id、parcel_id、flag 标记类型、rule 规则中文名、reason 简短原因、"
    "severity 严重程度、area_mu 面积（亩）、holder 权利人或主要使用企业、park、lon/lat 宗地内一点、west…north 范围），"
    "`rows` 每条标记一行。不含复核状态（见 reviews.json）。"
)
STATES_DESCRIPTION = (
    "复核状态：`states` 为 标记编号 → `[状态, 版本, 意见, 复核人, 复核时间（北京时间）]`，只列复核过的标记"
    "（其余为待复核、版本 0）。带 ETag：地图页面每隔数秒以 If-None-Match 询问，无变化时返回 304。"
)
PARCEL_DESCRIPTION = (
    "一宗地的弹窗内容：按宗地代码（`id`）或按地图坐标（`lon`、`lat`，高德底图时为 GCJ-02）查找；"
    "`cells` 为已转义的弹窗各行，`geometry` 为宗地轮廓（地图坐标）。该点没有宗地时返回 404。"
)


def _search(
    request: Request, data: RunData, scope: MapScope, basemap: str, q: str | None = None, limit: int = 12
) -> Response:
    caches = map_caches(request)
    kind = display_kind(basemap)

    def build() -> bytes:
        _, parcels = scope_parcels(data, scope)
        rows = maps.search_index(parcels, enterprises=enterprise_names(data), basemap=kind)
        return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def body() -> bytes:
        cut = data.search_index(scope.positions(data), kind) if data.search_rows else None
        return cut if cut is not None else caches.other.get(data, ("search", scope.key, kind), build)

    def found() -> bytes:
        text = (q or "").strip()
        if not text:
            return b"[]"
        rows = data.search_rows.get(kind)
        if rows is not None:
            positions = None if scope.parks is None else scope.positions(data)
            return b"[" + b",".join(find_rows(rows, text, limit, positions)) + b"]"
        index = json.loads(caches.other.get(data, ("search", scope.key, kind), build))
        return json.dumps(matching(index, text, limit), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    if q is not None:
        return cached_answer(request, run_etag(data, "search", scope.key, kind, q, limit), found, JSON_TYPE)
    return cached_answer(request, run_etag(data, "search", scope.key, kind), body, JSON_TYPE)


SearchQ = Annotated[
    str | None,
    Query(
        description="要找的文字（宗地代码、企业名称或统一社会信用代码的一部分，不分大小写）：只返回找到的行",
        max_length=100,
    ),
]
SearchLimitQ = Annotated[int, Query(description="q 时最多返回几行", ge=1, le=SEARCH_LIMIT_MAX)]


def _flags(request: Request, data: RunData, scope: MapScope, basemap: str) -> Response:
    caches = map_caches(request)
    etag = run_etag(data, "flags", scope.key, display_kind(basemap))
    return cached_answer(request, etag, lambda: flag_rows(data, caches, scope, basemap), JSON_TYPE)


def _changes(request: Request, data: RunData, scope: MapScope, basemap: str) -> Response:
    caches = map_caches(request)
    etag = run_etag(data, "changes", scope.key, display_kind(basemap))
    return cached_answer(request, etag, lambda: parcel_changes(data, caches, scope, basemap), JSON_TYPE)


def _states(request: Request, data: RunData, store: Store, scope: MapScope) -> Response:
    etag = run_etag(data, "states", scope.key, review_version(store, data.run_id))

    def build() -> bytes:
        states = review_states(data, store, map_caches(request), scope)
        doc = {"run_id": data.run_id, "states": states}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    return cached_answer(request, etag, build, JSON_TYPE, cache_control="private, no-cache")


KindQ = Annotated[str, Query(description="标记类型（如 idle_land）；空为全部", max_length=64)]
StateQ = Annotated[
    str, Query(description="复核状态（pending、site_visit、confirmed、dismissed）；空为全部", max_length=32)
]
SevQ = Annotated[str, Query(description="严重程度（高、中、低）；空为全部", max_length=16)]
OffsetQ = Annotated[int, Query(description="从第几条开始（0 起）", ge=0, le=100_000_000)]
LimitQ = Annotated[
    int, Query(description=f"最多返回几条（0 只返回计数；至多 {QUEUE_PAGE_MAX}）", ge=0, le=QUEUE_PAGE_MAX)
]
AfterQ = Annotated[
    str | None,
    Query(description="标记编号：返回清单中排在它之后的标记（到末尾后从头接续），用于“下一条待复核”", max_length=300),
]


def queue_query(
    kind: KindQ = "",
    state: StateQ = "",
    sev: SevQ = "",
    offset: OffsetQ = 0,
    limit: LimitQ = 200,
    after: AfterQ = None,
) -> QueueQuery:
    """What a ``queue.json`` request asks for (its query parameters)."""
    return QueueQuery(kind, state, sev, offset, limit, after)


QueueDep = Annotated[QueueQuery, Depends(queue_query)]


def _queue(request: Request, data: RunData, store: Store, scope: MapScope, basemap: str, q: QueueQuery) -> Response:
    caches = map_caches(request)
    version = review_version(store, data.run_id)
    etag = run_etag(data, "queue", scope.key, display_kind(basemap), version, q)

    def build() -> bytes:
        order = queue_order(data, caches, scope)
        states = scope_states(data, store, caches, scope, version)
        doc = queue_answer(data, order, states, q, basemap, scope_parks=scope.park is None)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")

    return cached_answer(request, etag, build, JSON_TYPE, cache_control="private, no-cache")


BoxQ = Annotated[str, Query(description=BBOX_HELP + "（地图坐标：高德底图时为 GCJ-02）", max_length=200)]


def _blocks(request: Request, data: RunData, scope: MapScope, basemap: str, bbox: str) -> Response:
    try:
        box = parse_bbox(bbox)
    except ValueError as exc:
        raise InvalidQuery(str(exc)) from None
    if box is None:
        raise InvalidQuery("请给出范围 bbox：minx,miny,maxx,maxy（经度在前）")
    kind = display_kind(basemap)
    etag = run_etag(data, "blocks", scope.key, kind, box)
    return cached_answer(
        request, etag, lambda: blocks_in_box(data, map_caches(request), scope, box, basemap), JSON_TYPE
    )


LonQ = Annotated[float | None, Query(description="经度（地图坐标）", ge=-180, le=180)]
LatQ = Annotated[float | None, Query(description="纬度（地图坐标）", ge=-90, le=90)]
IdQ = Annotated[str | None, Query(description="宗地代码", max_length=200)]


def _parcel(
    request: Request,
    data: RunData,
    scope: MapScope,
    basemap: str,
    pid: str | None,
    lon: float | None,
    lat: float | None,
) -> Response:
    if is_large(
        data, scope, map_caches(request)
    ):  # a province's overview: only the parcels around the point, or the one named
        if pid is not None:
            src = parcel_by_id(data, scope, basemap, pid)
        elif lon is not None and lat is not None:
            src = parcel_near(data, scope, basemap, lon, lat)
        else:
            raise InvalidQuery("请给出宗地代码 id，或地图坐标 lon 和 lat")
    else:
        src = tile_source(data, map_caches(request), scope, basemap)
    if pid is not None:
        pos = src.index.get_indexer([pid])[0]
        if pos < 0:
            raise NotFound(f"地图上没有宗地“{pid}”")
    elif lon is not None and lat is not None:
        found = parcel_at(src, lon, lat)
        if found is None:
            raise NotFound("该位置没有宗地")
        pos = found
    else:
        raise InvalidQuery("请给出宗地代码 id，或地图坐标 lon 和 lat")
    popup = parcel_popup(src, int(pos))
    row = int(src["gid"].iloc[int(pos)]) - 1
    flags = data.flags.iloc[data.flag_rows(np.array([row]))].drop(columns=["parcel_pos"])
    one = src.iloc[[int(pos)]]
    popup["flags"] = {"columns": list(maps.FLAG_INDEX_COLUMNS), "rows": maps.flag_index(flags, one, one)}
    return JSONResponse(popup, headers={"Cache-Control": IMMUTABLE})


STATIC_JSON: dict[int | str, dict[str, Any]] = {
    200: {"content": {JSON_TYPE: {}}},
    304: {"description": "浏览器缓存仍然有效"},
}
PARK_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "无权查看该园区"},
    404: {"description": "没有该园区"},
}


@router.get(
    "/api/maps/search.json",
    summary="总览地图搜索索引",
    description=SEARCH_DESCRIPTION + "范围为当前用户可查看的全部园区。",
    response_class=Response,
    responses=STATIC_JSON,
)
def overview_search(
    user: CurrentUser,
    request: Request,
    data: RunDep,
    basemap: BasemapQ = "none",
    q: SearchQ = None,
    limit: SearchLimitQ = 12,
) -> Response:
    return _search(request, data, MapScope.overview(user), basemap, q, limit)


@router.get(
    "/api/maps/flags.json",
    summary="总览地图的标记清单（复核面板）",
    description=FLAGS_DESCRIPTION,
    response_class=Response,
    responses=STATIC_JSON,
)
def overview_flags(user: CurrentUser, request: Request, data: RunDep, basemap: BasemapQ = "none") -> Response:
    return _flags(request, data, MapScope.overview(user), basemap)


CHANGES_DESCRIPTION = (
    "分类变化着色（大园区矢量瓦片模式用）：`changes` 为 宗地代码 → 主要使用企业与上年相比的分类变化"
    "（up 升级、same 持平、down 降级、new 新参评、gone 不再参评、none 无上年比较）。"
)


@router.get(
    "/api/maps/changes.json",
    summary="总览地图的分类变化",
    description=CHANGES_DESCRIPTION,
    response_class=Response,
    responses=STATIC_JSON,
)
def overview_changes(user: CurrentUser, request: Request, data: RunDep, basemap: BasemapQ = "none") -> Response:
    return _changes(request, data, MapScope.overview(user), basemap)


@router.get(
    "/api/maps/reviews.json",
    summary="总览地图的复核状态",
    description=STATES_DESCRIPTION,
    response_class=Response,
    responses=STATIC_JSON,
)
def overview_states(user: CurrentUser, request: Request, data: RunDep, store: StoreDep) -> Response:
    return _states(request, data, store, MapScope.overview(user))


QUEUE_DESCRIPTION = (
    "复核面板的标记清单，由服务分页和计数（省级总览等大地图用）：按 kind（标记类型）、state（复核状态）、sev（严重程度）"
    "筛选，按严重程度、面积（大者在前）、标记编号排序；`total` 为符合筛选的条数，`counts` 为本图全部标记按复核状态的计数，"
    "`parks` 为每个园区按复核状态的计数（总览），`rows` 为 offset 起至多 limit 条（列同 flags.json）。"
    "带 ETag（随复核变化）。"
)


@router.get(
    "/api/maps/queue.json",
    summary="总览地图的复核清单（分页）",
    description=QUEUE_DESCRIPTION,
    response_class=Response,
    responses=STATIC_JSON,
)
def overview_queue(
    user: CurrentUser, request: Request, data: RunDep, store: StoreDep, q: QueueDep, basemap: BasemapQ = "none"
) -> Response:
    return _queue(request, data, store, MapScope.overview(user), basemap, q)


BLOCKS_DESCRIPTION = (
    "范围 bbox 内的连片改造区块（GeoJSON，地图坐标；轮廓已闭合成片，`properties.v` 为已转义的弹窗各行），"
    "供省级总览等大地图在放大后按视野加载；至多 2000 个（`truncated` 为 true 时表示还有更多，请放大）。"
    "园区管委会只得到全部宗地都在本园区的区块。"
)


@router.get(
    "/api/maps/blocks.json",
    summary="总览地图视野内的连片改造区块",
    description=BLOCKS_DESCRIPTION,
    response_class=Response,
    responses=STATIC_JSON,
)
def overview_blocks(
    user: CurrentUser, request: Request, data: RunDep, bbox: BoxQ, basemap: BasemapQ = "none"
) -> Response:
    return _blocks(request, data, MapScope.overview(user), basemap, bbox)


@router.get(
    "/api/maps/parcel.json",
    summary="总览地图上一宗地的弹窗内容",
    description=PARCEL_DESCRIPTION,
    response_class=JSONResponse,
    responses={404: {"description": "没有该宗地"}},
)
def overview_parcel(
    user: CurrentUser,
    request: Request,
    data: RunDep,
    basemap: BasemapQ = "none",
    id: IdQ = None,
    lon: LonQ = None,
    lat: LatQ = None,
) -> Response:
    return _parcel(request, data, MapScope.overview(user), basemap, id, lon, lat)


@router.get(
    "/api/maps/{park:path}/search.json",
    summary="园区地图搜索索引",
    description=SEARCH_DESCRIPTION + "园区管委会只能请求本园区。",
    response_class=Response,
    responses={**STATIC_JSON, **PARK_REFUSALS},
)
def park_search(
    park: str,
    user: CurrentUser,
    request: Request,
    data: RunDep,
    basemap: BasemapQ = "none",
    q: SearchQ = None,
    limit: SearchLimitQ = 12,
) -> Response:
    return _search(request, data, _park_scope(request, user, data, park), basemap, q, limit)


@router.get(
    "/api/maps/{park:path}/flags.json",
    summary="园区的标记清单（复核面板）",
    description=FLAGS_DESCRIPTION,
    response_class=Response,
    responses={**STATIC_JSON, **PARK_REFUSALS},
)
def park_flags(park: str, user: CurrentUser, request: Request, data: RunDep, basemap: BasemapQ = "none") -> Response:
    return _flags(request, data, _park_scope(request, user, data, park), basemap)


@router.get(
    "/api/maps/{park:path}/changes.json",
    summary="园区的分类变化",
    description=CHANGES_DESCRIPTION,
    response_class=Response,
    responses={**STATIC_JSON, **PARK_REFUSALS},
)
def park_changes(park: str, user: CurrentUser, request: Request, data: RunDep, basemap: BasemapQ = "none") -> Response:
    return _changes(request, data, _park_scope(request, user, data, park), basemap)


@router.get(
    "/api/maps/{park:path}/reviews.json",
    summary="园区的复核状态",
    description=STATES_DESCRIPTION,
    response_class=Response,
    responses={**STATIC_JSON, **PARK_REFUSALS},
)
def park_states(park: str, user: CurrentUser, request: Request, data: RunDep, store: StoreDep) -> Response:
    return _states(request, data, store, _park_scope(request, user, data, park))


@router.get(
    "/api/maps/{park:path}/queue.json",
    summary="园区的复核清单（分页）",
    description=QUEUE_DESCRIPTION,
    response_class=Response,
    responses={**STATIC_JSON, **PARK_REFUSALS},
)
def park_queue(
    park: str,
    user: CurrentUser,
    request: Request,
    data: RunDep,
    store: StoreDep,
    q: QueueDep,
    basemap: BasemapQ = "none",
) -> Response:
    return _queue(request, data, store, _park_scope(request, user, data, park), basemap, q)


@router.get(
    "/api/maps/{park:path}/blocks.json",
    summary="园区地图视野内的连片改造区块",
    description=BLOCKS_DESCRIPTION,
    response_class=Response,
    responses={**STATIC_JSON, **PARK_REFUSALS},
)
def park_blocks(
    park: str, user: CurrentUser, request: Request, data: RunDep, bbox: BoxQ, basemap: BasemapQ = "none"
) -> Response:
    return _blocks(request, data, _park_scope(request, user, data, park), basemap, bbox)


@router.get(
    "/api/maps/{park:path}/parcel.json",
    summary="园区地图上一宗地的弹窗内容",
    description=PARCEL_DESCRIPTION,
    response_class=JSONResponse,
    responses={404: {"description": "没有该宗地或园区"}, 403: {"description": "无权查看该园区"}},
)
def park_parcel(
    park: str,
    user: CurrentUser,
    request: Request,
    data: RunDep,
    basemap: BasemapQ = "none",
    id: IdQ = None,
    lon: LonQ = None,
    lat: LatQ = None,
) -> Response:
    return _parcel(request, data, _park_scope(request, user, data, park), basemap, id, lon, lat)
