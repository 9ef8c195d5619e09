"""Park map pages (Folium), where reviewers work through the flags of a park.

=====================================================  =====================================================
``GET /maps/``                                          overview: every park the user may see
``GET /maps/{park}``                                    one park (committee: only its own, else 403)
=====================================================  =====================================================

A page is :func:`geo_eval.maps.park_map_html` over the run's parcels (inline GeoJSON, or vector tiles
above ``GEO_EVAL_MAP_TILE_THRESHOLD`` parcels or with ``?tiles=1``), its renewal blocks and the park
outlines, plus the URLs of what changes or is large (:mod:`api.routes.map_data`): the review list,
the review states (polled by the page), one parcel's popup, the review and download routes. A page
depends only on its run and options, so it is built once and kept; who is looking (their name, role,
whether they may review) and the navigation (parks, years) are added per request as a second small
JSON block. Pages carry a Content-Security-Policy that allows scripts only from this service and the
page's own inline scripts by their hashes, images only from it and the two optional basemaps.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections import Counter
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import PageUser, RunCacheDep, SettingsDep, StoreDep, ensure_park
from api.errors import InvalidQuery, NotFound
from api.mapdata import (
    ETAG_VERSION,
    LARGE_TILE_MIN_ZOOM,
    MapScope,
    carried_sources,
    closed_blocks,
    display_kind,
    enterprise_names,
    is_large,
    map_caches,
    park_outlines,
    scope_extent,
    scope_parcels,
)
from api.rundata import RunData
from api.settings import Settings
from api.tilearchive import archive_of
from geo_eval import maps
from geo_eval.maps.archive import ARCHIVE_MIN_ZOOM
from geo_eval.maps.page import TILES_MIN_ZOOM, script_json
from geo_eval.publication.status import RUN_STATUS_LABELS
from geo_eval.storage import ROLE_LABELS, RunRecord, Store, User

log = logging.getLogger(__name__)
router = APIRouter(tags=["地图"])

IMG_SOURCES = "'self' data: https://*.tianditu.gov.cn https://*.is.autonavi.com"
MVT_TYPE = "application/vnd.mapbox-vector-tile"
ASSET_BASE = "/static/vendor"
APP_BASE = "/static"

ColorBy = Annotated[
    Literal["grade", "tax_per_mu", "change"],
    Query(description="着色：grade 按分类（默认），tax_per_mu 按亩均税收分级，change 按分类变化（与上年比较）"),
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
BASEMAP_LABELS = {"none": "无底图", "tianditu": "天地图", "gaode": "高德"}
NO_TIANDITU_KEY = "服务未配置天地图密钥（GEO_EVAL_TIANDITU_KEY），已改用无底图显示。请管理员申请天地图密钥后设置。"
_INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*\btype=\"(?:application/json|module)\")[^>]*>(.*?)</script>", re.S
)


def map_csp(page: str) -> str:
    """The page's Content-Security-Policy: scripts from this service and its own inline scripts (by hash)."""
    hashes = sorted(
        {
            "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
            for s in _INLINE_SCRIPT.findall(page)
        }
    )
    return (
        f"default-src 'self'; script-src 'self' {' '.join(hashes)}; style-src 'self' 'unsafe-inline'; "
        f"img-src {IMG_SOURCES}; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    )


def _url(path: str, **params: object) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return f"{path}?{urlencode(clean)}" if clean else path


def map_path(park: str | None) -> str:
    """The page of a park (``/`` in a name is kept by percent-encoding it), or the overview."""
    return "/maps/" if park is None else f"/maps/{quote(park, safe='')}"


def _api_base(scope: MapScope) -> str:
    return "/api/maps" if scope.park is None else f"/api/maps/{quote(scope.park, safe='')}"


def service_urls(data: RunData, scope: MapScope, basemap: str) -> dict[str, str]:
    """The URLs the page calls, pinned to its run (``{id}`` stands for a flag id)."""
    run = {"run": data.run_id}
    shown = {**run, "basemap": None if basemap == "none" else basemap}
    base = _api_base(scope)
    park = {"park": scope.park}
    return {
        "flags": _url(f"{base}/flags.json", **shown),
        "queue": _url(f"{base}/queue.json", **shown),
        "blocks": _url(f"{base}/blocks.json", **shown),
        "changes": _url(f"{base}/changes.json", **shown),
        "states": _url(f"{base}/reviews.json", **run),
        "parcel": _url(f"{base}/parcel.json", **shown, v=ETAG_VERSION),  # immutable, no ETag: a new shape, a new URL
        "review": "/api/flags/{id}?" + urlencode(run),
        "batch": _url("/api/reviews/batch", **run),
        "checklist": _url("/api/flags/checklist", **run, **park),
        "flagsDownload": _url("/api/flags/download", **run, **park),
        "rankings": _url("/api/rankings/download", **run, **park),
        "page": map_path(scope.park),
        "overview": _url("/maps/", **run),
        "home": "/",
        "logout": "/logout",
    }


def _tiles_url(data: RunData, scope: MapScope, basemap: str) -> str:
    params = urlencode({k: v for k, v in {"run": data.run_id, "basemap": basemap}.items() if v != "none"})
    base = "/api/tiles" if scope.park is None else f"/api/tiles/{quote(scope.park, safe='')}"
    return f"{base}/{{z}}/{{x}}/{{y}}.pbf?{params}"


def _archived(request: Request, data: RunData, basemap: str) -> bool:
    """Whether the run's tiles come from its pre-built archive (generalised down to the city's zooms)."""
    return archive_of(request, data.record, request.app.state.run_cache, display_kind(basemap))[0] is not None


def _build_page(
    request: Request, data: RunData, settings: Settings, scope: MapScope, *, color_by: str, basemap: str, threshold: int
) -> tuple[str, str]:
    caches = map_caches(request)
    prebuilt = _archived(request, data, basemap)
    title = "园区总览" if scope.park is None else scope.park
    search = _url(f"{_api_base(scope)}/search.json", run=data.run_id, basemap=None if basemap == "none" else basemap)
    urls = service_urls(data, scope, basemap)
    large = is_large(data, scope, caches)
    if large:  # a province: attributes only; the list, blocks and popups come from the service
        pos = scope.positions(data)
        parcels: pd.DataFrame = data.parcel_table.iloc[pos]
        flags, blocks, extent = None, None, scope_extent(data, pos)
        threshold = 0  # drawn from tiles whatever the tile threshold says
    else:
        parcels = scope_parcels(data, scope)[1]
        flags = data.flags.loc[scope.flag_mask(data)].drop(columns=["parcel_pos"])
        blocks, extent = closed_blocks(data, caches, scope, parcels), None
        urls.pop("queue")
        urls.pop("blocks")
    page = maps.park_map_html(
        parcels,
        flags=flags,
        blocks=blocks,
        extent=extent,
        parks=park_outlines(data, settings, caches, scope),
        enterprises=enterprise_names(data),
        color_by=color_by,
        basemap=basemap,
        tianditu_key=settings.tianditu_key,
        asset_base=ASSET_BASE,
        app_base=APP_BASE,
        tiles_url=_tiles_url(data, scope, basemap),
        tile_threshold=threshold,
        tiles_min_zoom=ARCHIVE_MIN_ZOOM if prebuilt else LARGE_TILE_MIN_ZOOM if large else TILES_MIN_ZOOM,
        tiles_prebuilt=prebuilt,
        search_url=search,
        title=f"{title} · {data.record.year} 年度亩均效益评价",
        attribution=settings.map_attribution,
        service={
            "run": {"id": data.run_id, "year": data.record.year, "scheme": data.record.scheme_title},
            "park": scope.park,
            "poll": settings.review_poll_s,
            "urls": urls,
            "reviewList": "paged" if large else "whole",
            "search": "remote" if large else "index",
        },
    )
    return page, map_csp(page)


def _years(store: Store, scope: MapScope, color_by: str, basemap: str) -> list[dict[str, Any]]:
    latest: dict[int, RunRecord] = {}
    for r in store.list_runs():  # latest first
        latest.setdefault(r.year, r)
    return [
        {"year": y, "run": r.run_id, "url": _url(map_path(scope.park), year=y, **_options(color_by, basemap))}
        for y, r in sorted(latest.items())
    ]


def _options(color_by: str, basemap: str) -> dict[str, str | None]:
    return {"color_by": None if color_by == "grade" else color_by, "basemap": None if basemap == "none" else basemap}


def session_config(
    user: User,
    store: Store,
    data: RunData,
    scope: MapScope,
    settings: Settings,
    *,
    color_by: str,
    basemap: str,
    notice: str | None,
) -> dict[str, Any]:
    """Who is looking and where they can go: added to a cached page per request."""
    opts = _options(color_by, basemap)
    parks = [p for p in data.parks if user.may_see_park(p)]
    bases = ["none", *(["tianditu"] if settings.tianditu_key else []), "gaode"]
    return {
        "user": {
            "name": user.name,
            "role": user.role,
            "roleLabel": ROLE_LABELS[user.role],
            "canReview": user.role in ("reviewer", "admin"),
        },
        "parks": [
            {"name": p, "url": _url(map_path(p), run=data.run_id, **opts), "current": p == scope.park} for p in parks
        ],
        "years": _years(store, scope, color_by, basemap),
        "basemaps": [
            {
                "key": b,
                "label": BASEMAP_LABELS[b],
                "url": _url(map_path(scope.park), run=data.run_id, **{**opts, "basemap": None if b == "none" else b}),
                "current": b == basemap,
            }
            for b in bases
        ],
        "notice": notice,
        "runStatus": run_status(store.get_run(data.run_id), user) | {"carried": carried_note(store, data.run_id)},
    }


def run_status(record: RunRecord, user: User) -> dict[str, Any]:
    """The run's publication status as the map shows it (read per request: it changes, the page is cached)."""
    may_object = record.status == "publicity" and not record.superseded_by and user.role in ("committee", "admin")
    return {
        "status": record.status,
        "label": RUN_STATUS_LABELS.get(record.status, record.status),
        "line": record.status_line(),
        "objections": f"/objections?year={record.year}",
        "mayObject": may_object,
    }


def carried_note(store: Store, run_id: str) -> str:
    """How many reviews this version of the year carried over from an earlier one ("" if none)."""
    carried = Counter(r.carried_from for r in store.reviews(run_id).values() if r.carried_from)
    if not carried:
        return ""
    names = carried_sources(store, set(carried))
    parts = [f"沿用{names[k]}的复核 {n} 条" for k, n in sorted(carried.items())]
    return "本版本" + "、".join(parts) + "（标记未变化的宗地；其余标记须重新复核）"


def render_map(
    request: Request,
    user: User,
    data: RunData,
    store: Store,
    settings: Settings,
    scope: MapScope,
    *,
    color_by: str,
    basemap: str,
    tiles_forced: bool,
) -> Response:
    """The HTML page of a scope: the cached page of the run and options, plus the session block."""
    notice = None
    if basemap == "tianditu" and not settings.tianditu_key:
        basemap, notice = "none", NO_TIANDITU_KEY
    threshold = 0 if tiles_forced else settings.map_tile_threshold
    if threshold is None:
        threshold = maps.TILE_THRESHOLD
    key = ("page", scope.key, color_by, basemap, threshold)
    try:
        page, csp = map_caches(request).pages.get(
            data,
            key,
            lambda: _build_page(
                request, data, settings, scope, color_by=color_by, basemap=basemap, threshold=threshold
            ),
        )
    except ValueError as exc:  # options the map library refuses (e.g. a malformed 天地图 key)
        raise InvalidQuery(str(exc)) from exc
    session = session_config(user, store, data, scope, settings, color_by=color_by, basemap=basemap, notice=notice)
    block = f'<script type="application/json" id="ge-session">{script_json(session)}</script>'
    i = page.rfind("</body>")
    body = page[:i] + block + page[i:] if i >= 0 else page + block
    return HTMLResponse(body, headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"})


def load_run(store: Store, cache: Any, run: str | None, year: int | None) -> RunData:
    record: RunRecord = store.get_run(run) if run else store.latest_run(year)
    return cache.get(record)  # type: ignore[no-any-return]


def check_park(request: Request, data: RunData, park: str) -> None:
    """404 unless the run names ``park`` (after the committee check, so nothing leaks to a committee)."""
    names = map_caches(request).other.get(data, ("park-names",), lambda: frozenset(data.parks))
    if park not in names:
        raise NotFound(f"评价批次 {data.record.year} 年度（{data.run_id}）中没有园区“{park}”")


@router.get(
    "/maps/",
    summary="园区总览地图",
    description="当前用户可查看的全部园区：宗地按分类或亩均税收着色，标记按复核状态显示，复核面板按园区统计进度，"
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
    data = load_run(store, cache, run, year)
    scope = MapScope.overview(user)
    return render_map(
        request, user, data, store, settings, scope, color_by=color_by, basemap=basemap, tiles_forced=tiles
    )


@router.get(
    "/maps/{park:path}",
    summary="园区地图（复核工作台）",
    description="一个园区的宗地、标记（按复核状态填充斜线）、连片改造区块和园区边界；复核人员在弹窗或复核面板中确认、排除、"
    "待核查或撤回标记。园区管委会只能查看本园区（其他园区 403），复核状态只读。地块数超过阈值时以矢量瓦片显示。",
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
    data = load_run(store, cache, run, year)
    check_park(request, data, park)
    scope = MapScope.of_park(park)
    return render_map(
        request, user, data, store, settings, scope, color_by=color_by, basemap=basemap, tiles_forced=tiles
    )
