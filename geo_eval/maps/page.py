"""The park map page: Folium renders the map and basemaps, and hands the page one JSON configuration.

The page's behaviour (parcel, flag, block and park layers, popups with review buttons, the review
panel, search, legend, URL state, printing, phone layout) is the ES module ``api/static/js/map.js``;
it reads ``<script type="application/json" id="ge-config">`` written here by :func:`map_config`.
Python never builds JavaScript by string concatenation: the configuration is JSON whose text cannot
close its ``<script>`` (``<``, ``>``, ``&`` and the line separators are escaped).

Geometry and figures go in the page (inline GeoJSON for small parks) or come from vector tiles
(``tiles_url``); review states never do: the service publishes them as a small JSON document that the
page polls and applies, so a page and its tiles stay valid for the whole life of a run.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_eval.maps.assets import PAGE_SCRIPT, PAGE_STYLE, VECTORGRID_JS, localize_assets, to_html
from geo_eval.maps.attributes import (
    BASEMAPS,
    BLOCK_FIELDS,
    FLAG_INDEX_COLUMNS,
    POPUP_FIELDS,
    TILE_DETAIL_ZOOM,
    Basemap,
    block_records,
    fields_config,
    flag_index,
    fmt,
    legend_attributes,
    parcel_attributes,
    parcel_ids,
    popup_cells,
    round_geoms,
    search_index,
    text,
    to_display,
    tooltip_text,
)
from geo_eval.maps.gcj02 import wgs84_to_gcj02
from geo_eval.maps.styles import (
    BACKGROUND,
    BLOCK_STYLE,
    CHANGE_COLOURS,
    CHANGE_LABELS,
    FLAG_KIND_LABELS,
    FLAG_STATUS_LABELS,
    FLAG_STYLES,
    GRADE_COLOURS,
    GRADE_LEGEND,
    HIGHLIGHT_STYLE,
    NO_DATA_COLOUR,
    OTHER_GRADE_COLOUR,
    PARK_STYLE,
    SEVERITIES,
    STATUS_ORDER,
    TAX_BINS,
    tax_class,
    tax_colours,
    tax_labels,
)

if TYPE_CHECKING:
    import folium

ColorBy = Literal["grade", "tax_per_mu", "change"]
TILE_THRESHOLD = 5000
"""Above this many parcels a map draws them from vector tiles instead of inline GeoJSON."""
MAX_ZOOM = 19
TILES_MIN_ZOOM = 11
"""Tiles cut per request start at this zoom (a pre-built archive goes down to the city's zooms)."""
"""Deepest zoom (about 0.3 m a pixel at 34° N): parcels stay recognisable, no zooming into emptiness."""
DEFAULT_ATTRIBUTION = "宗地数据：自然资源局 · 评价：工业和信息化局"
"""What the map's attribution says by default (the service passes the city's own wording)."""
_TILE_PLACEHOLDERS = {"z", "x", "y", "s", "-y"}
_TIANDITU_KEY = re.compile(r"^[0-9A-Za-z]{16,64}$")
_TIANDITU_URL = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"
)
_GAODE_URL = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
_FOLIUM_VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>', re.S)
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
"""The page's viewport: pinch zoom allowed (folium's default forbids it with ``user-scalable=no``)."""
_FEATURES = "__GE_PARCEL_FEATURES__"


def script_json(obj: object) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>``, ``&`` or line separators left raw.

    >>> script_json({"a": "</script><b>&"})
    '{"a":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    out = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        out = out.replace(raw, escaped)
    return out


def feature_collection(geoms: np.ndarray, props: list[dict[str, Any]]) -> str:
    """A GeoJSON FeatureCollection as script-safe JSON text (6-decimal coordinates)."""
    texts = shapely.to_geojson(round_geoms(geoms))
    feats = [
        '{"type":"Feature","geometry":' + g + ',"properties":' + script_json(p) + "}"
        for g, p in zip(texts, props, strict=True)
    ]
    return '{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}"


def _check_tiles_url(url: str) -> None:
    names = set(re.findall(r"\{([^}]*)\}", url))
    missing = {"z", "x", "y"} - names
    unknown = names - _TILE_PLACEHOLDERS
    if missing or unknown:
        raise ValueError(
            f"矢量瓦片地址模板 {url!r} 须含 {{z}}、{{x}}、{{y}}，其余占位符（如 {{park}}）须先替换：缺 {sorted(missing)}，多 {sorted(unknown)}"
        )


def _check_options(color_by: str, basemap: str, tianditu_key: str | None, search_url: str | None) -> None:
    if color_by not in ("grade", "tax_per_mu", "change"):
        raise ValueError(f"color_by 须为 'grade'、'tax_per_mu' 或 'change'：{color_by!r}")
    if basemap not in BASEMAPS:
        raise ValueError(f"basemap 须为 {', '.join(BASEMAPS)} 之一：{basemap!r}")
    if basemap == "tianditu" and not (tianditu_key and _TIANDITU_KEY.match(tianditu_key)):
        raise ValueError("天地图底图需要有效的密钥 tianditu_key（16–64 位字母数字）")
    if search_url is not None and re.match(r"^(https?:)?//", search_url):
        raise ValueError("search_url 须为本服务的路径（如 /api/maps/…/search.json），不能指向外部主机")


# ---------------------------------------------------------------------------------------------
# Legends
# ---------------------------------------------------------------------------------------------


def grade_legend(grades: pd.Series) -> list[list[object]]:
    """``[key, colour, label, parcels]`` per grade (A–D, T, 无, then any other value)."""
    counts = grades.value_counts()
    rows: list[list[object]] = [[g, GRADE_COLOURS[g], GRADE_LEGEND[g], int(counts.get(g, 0))] for g in GRADE_COLOURS]
    rows += [[g, OTHER_GRADE_COLOUR, g, int(counts[g])] for g in sorted(set(counts.index) - set(GRADE_COLOURS))]
    return rows


def change_legend(changes: pd.Series) -> list[list[object]] | None:
    """``[key, colour, label, parcels]`` per 分类变化, or None when the run has no comparison with last year."""
    counts = changes.value_counts()
    if not (set(counts.index) - {"none"}):
        return None
    return [[k, CHANGE_COLOURS[k], CHANGE_LABELS[k], int(counts.get(k, 0))] for k in CHANGE_COLOURS]


def tax_legend(values: np.ndarray, bins: Sequence[float]) -> dict[str, Any]:
    """Class limits, colours, labels and parcel counts of the 亩均税收 colouring."""
    cls = tax_class(values, bins)
    n = np.bincount(cls + 1, minlength=len(bins) + 2)
    return {
        "bins": [float(b) for b in bins],
        "colours": tax_colours(bins),
        "labels": tax_labels(bins),
        "counts": [int(c) for c in n[1:]],
        "noData": NO_DATA_COLOUR,
        "noDataCount": int(n[0]),
    }


# ---------------------------------------------------------------------------------------------
# Layers as data
# ---------------------------------------------------------------------------------------------


def _parcel_features(shown: gpd.GeoDataFrame, attrs: pd.DataFrame) -> str:
    a = attrs.reindex(parcel_ids(shown))
    tax = a["tax_per_mu"].to_numpy(dtype=float)
    props = [
        {
            "id": r["parcel_id"],
            "g": r["grade"],
            "x": None if np.isnan(t) else round(float(t), 4),
            "f": int(r["n_flags"]),
            "c": r["change"],
            "v": popup_cells(r),
            "t": tooltip_text(r),
        }
        for r, t in zip(a.to_dict("records"), tax, strict=True)
    ]
    return feature_collection(np.asarray(shown.geometry.array, dtype=object), props)


def blocks_geojson(blocks: gpd.GeoDataFrame | None, ids: pd.Index | None, *, gcj: bool) -> Any:
    """The 连片改造区块 (that contain a parcel of ``ids``, when given) as GeoJSON with popup cells."""
    if blocks is None or not len(blocks):
        return None
    b = blocks.loc[blocks["kind"] == "连片改造区块"] if "kind" in blocks.columns else blocks
    if ids is not None and "parcel_ids" in b.columns:
        shown_ids = set(ids)
        b = b.loc[[bool(shown_ids.intersection(p.strip() for p in text(v).split(";"))) for v in b["parcel_ids"]]]
    if not len(b):
        return None
    bd = to_display(b, gcj02=gcj)
    props = [
        {
            "id": text(r.get("block_id")),
            "v": popup_cells(r, BLOCK_FIELDS),
            "t": f"连片改造区块 {text(r.get('block_id'))} · {fmt(r.get('area_mu'), 'num2')} 亩",
        }
        for r in block_records(bd)
    ]
    return json.loads(feature_collection(np.asarray(bd.geometry.array, dtype=object), props))


def _parks_data(parks: gpd.GeoDataFrame | None, gcj: bool) -> Any:
    if parks is None or not len(parks):
        return None
    shown = to_display(parks, gcj02=gcj)
    name = next((c for c in ("park", "园区", "name", "名称") if c in shown.columns), None)
    props = [{"t": text(v) if name else ""} for v in (shown[name] if name else [""] * len(shown))]
    return json.loads(feature_collection(np.asarray(shown.geometry.array, dtype=object), props))


def _extent_bounds(extent: Sequence[float], gcj: bool) -> list[list[float]] | None:
    """``[[south, west], [north, east]]`` of a lon/lat box (shifted to GCJ-02 on a 高德 map)."""
    west, south, east, north = (float(v) for v in extent)
    if not np.all(np.isfinite([west, south, east, north])):
        return None
    if gcj:
        (west, east), (south, north) = wgs84_to_gcj02(np.array([west, east]), np.array([south, north]))
    return [[round(float(south), 6), round(float(west), 6)], [round(float(north), 6), round(float(east), 6)]]


def _bounds(shown: pd.DataFrame, parks: Any) -> list[list[float]] | None:
    geoms = list(np.asarray(shown.geometry.array, dtype=object)) if isinstance(shown, gpd.GeoDataFrame) else []
    if parks:
        geoms += [shapely.from_geojson(json.dumps(f["geometry"])) for f in parks["features"]]
    if not geoms:
        return None
    west, south, east, north = shapely.total_bounds(np.asarray(geoms, dtype=object))
    if not np.all(np.isfinite([west, south, east, north])):
        return None
    return [[round(float(south), 6), round(float(west), 6)], [round(float(north), 6), round(float(east), 6)]]


# ---------------------------------------------------------------------------------------------
# Basemaps
# ---------------------------------------------------------------------------------------------


def _basemaps(m: folium.Map, basemap: str, tianditu_key: str | None) -> list[dict[str, Any]]:
    """Add the basemap tile layers; returns how the page names them (JS variable, label, overlay)."""
    import folium

    def layer(url: str, attr: str, name: str, subdomains: str, *, overlay: bool, show: bool = True) -> dict[str, Any]:
        t = folium.TileLayer(
            tiles=url,
            attr=attr,
            name=name,
            subdomains=subdomains,
            max_zoom=MAX_ZOOM,
            max_native_zoom=18,
            overlay=overlay,
            show=show,
            control=False,
        )
        t.add_to(m)
        return {"var": t.get_name(), "label": name, "overlay": overlay, "show": show}

    out = []
    if basemap == "tianditu":
        for code, name in (("vec", "天地图 矢量"), ("img", "天地图 影像")):
            url = _TIANDITU_URL.format(layer=code, key=tianditu_key, s="{s}", x="{x}", y="{y}", z="{z}")
            out.append(layer(url, "© 天地图", name, "01234567", overlay=False, show=code == "vec"))
        url = _TIANDITU_URL.format(layer="cva", key=tianditu_key, s="{s}", x="{x}", y="{y}", z="{z}")
        out.append(layer(url, "© 天地图", "天地图 注记", "01234567", overlay=True))
    elif basemap == "gaode":
        out.append(layer(_GAODE_URL, "© 高德地图（本图各图层已按 GCJ-02 偏移）", "高德地图", "1234", overlay=False))
    return out


# ---------------------------------------------------------------------------------------------
# The configuration and the map
# ---------------------------------------------------------------------------------------------


def _inline_flags(flags: pd.DataFrame | None, service: Mapping[str, Any] | None) -> bool:
    """Whether the page carries its review list (else the service serves it: ``flags.json``)."""
    return flags is not None and not (service and service.get("urls", {}).get("flags"))


def map_config(
    shown: gpd.GeoDataFrame,
    attrs: pd.DataFrame,
    *,
    flags: pd.DataFrame | None,
    blocks: gpd.GeoDataFrame | None,
    parks: gpd.GeoDataFrame | None,
    color_by: ColorBy,
    tax_bins: Sequence[float],
    basemap: Basemap,
    tiles: dict[str, Any] | None,
    search_url: str | None,
    title: str,
    service: Mapping[str, Any] | None,
    attribution: str,
    extent: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Everything the page's script needs, as JSON-ready data (parcel features as a placeholder)."""
    gcj = basemap == "gaode"
    a = attrs.reindex(parcel_ids(shown))
    parks_data = _parks_data(parks, gcj)
    inline_flags = _inline_flags(flags, service)
    bounds = _extent_bounds(extent, gcj) if extent is not None else _bounds(shown, parks_data)
    return {
        "title": title,
        "colorBy": color_by,
        "basemap": basemap,
        "attribution": attribution,
        "maxZoom": MAX_ZOOM,
        "background": BACKGROUND,
        "bounds": bounds,
        "grades": grade_legend(a["grade"]),
        "otherColour": OTHER_GRADE_COLOUR,
        "tax": tax_legend(a["tax_per_mu"].to_numpy(dtype=float), tax_bins),
        "changes": change_legend(a["change"]),
        "statusLabels": FLAG_STATUS_LABELS,
        "statusOrder": list(STATUS_ORDER),
        "flagStyles": FLAG_STYLES,
        "blockStyle": BLOCK_STYLE,
        "parkStyle": PARK_STYLE,
        "highlightStyle": HIGHLIGHT_STYLE,
        "kinds": FLAG_KIND_LABELS,
        "severities": list(SEVERITIES),
        "fields": fields_config(POPUP_FIELDS),
        "blockFields": fields_config(BLOCK_FIELDS),
        "parcels": tiles if tiles is not None else {"mode": "inline", "count": len(shown), "features": _FEATURES},
        "flagColumns": list(FLAG_INDEX_COLUMNS),
        "flagRows": flag_index(flags, shown, attrs) if inline_flags and flags is not None else None,
        "blocks": blocks_geojson(blocks, parcel_ids(shown), gcj=gcj),
        "parks": parks_data,
        "search": {
            "index": None if (tiles is not None and search_url) else search_index(shown, attributes=a, basemap="none"),
            "url": search_url if tiles is not None else None,
            "placeholder": "搜索企业、信用代码、宗地代码",
            "empty": "没有找到",
            "limit": 12,
        },
        "service": dict(service) if service else None,
    }


def _page_assets() -> type:
    """A map child whose stylesheet and scripts folium links after Leaflet's own (so they override it)."""
    from branca.element import MacroElement
    from folium.elements import JSCSSMixin

    class PageAssets(JSCSSMixin, MacroElement):  # type: ignore[misc]
        def __init__(self, *, css: list[tuple[str, str]], js: list[tuple[str, str]]) -> None:
            super().__init__()
            self._name = "GeoEvalAssets"
            self.default_css = css
            self.default_js = js

    return PageAssets


@functools.cache
def _raw_element() -> type:
    """A page element that writes its text as it is. branca's ``Element(text)`` compiles the text as a Jinja
    template: a name such as ``{{ 7*7 }}`` in the page's data would be evaluated on the server (and a
    3 MB page's data took 0.5 s to compile); here the text is a value the template writes."""
    from branca.element import Element
    from jinja2 import Template

    class RawText(Element):  # type: ignore[misc]
        _template = Template("{{ this.text }}")

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    return RawText


def park_map(
    parcels: gpd.GeoDataFrame,
    *,
    flags: gpd.GeoDataFrame | pd.DataFrame | None = None,
    blocks: gpd.GeoDataFrame | None = None,
    parks: gpd.GeoDataFrame | None = None,
    enterprises: pd.DataFrame | None = None,
    color_by: ColorBy = "grade",
    tax_bins: Sequence[float] = TAX_BINS,
    basemap: Basemap = "none",
    tianditu_key: str | None = None,
    asset_base: str = "/static/vendor",
    app_base: str = "/static",
    tiles_url: str | None = None,
    tile_threshold: int | None = TILE_THRESHOLD,
    tiles_min_zoom: int = TILES_MIN_ZOOM,
    tiles_prebuilt: bool = False,
    search_url: str | None = None,
    title: str = "园区用地亩均效益评价图",
    service: Mapping[str, Any] | None = None,
    attribution: str = DEFAULT_ATTRIBUTION,
    extent: Sequence[float] | None = None,
) -> folium.Map:
    """A Folium map of one park (or several) whose page script draws the layers from :func:`map_config`.

    Parameters
    ----------
    parcels
        The ``parcels`` layer of ``parcels.gpkg`` (any CRS; drawn in EPSG:4326): ``parcel_id``,
        ``grade``, ``tax_per_mu``, ``area_mu``, ``users``, ``main_user``, ``main_user_name``,
        ``holder_uscc``, ``holder_name``, ``park``, ``block_id`` are read where present.
    flags
        The ``flags`` layer (one row per parcel and flag rule): the flagged parcels form their own
        layer, hatched by review state, and the review list is made from them.
    blocks
        ``renewal_blocks.gpkg``: its 连片改造区块 that contain a parcel of ``parcels`` are outlined.
    parks
        Park outlines (a ``park``/``园区``/``name`` column names them), drawn on every basemap.
    enterprises
        ``enterprises.csv`` (``uscc``, ``name``) to name every user of a parcel.
    color_by
        ``"grade"`` (A/B/C/D/T/无), ``"tax_per_mu"`` (classes of ``tax_bins``, 万元/亩) or ``"change"`` (分类变化
        of the main user since last year: 升级/持平/降级/新参评/不再参评, when ``enterprises`` has
        ``grade_change``); the page can switch between them without reloading.
    basemap
        ``"none"`` (default: plain background), ``"tianditu"`` (needs ``tianditu_key``) or ``"gaode"``
        (GCJ-02: every layer is shifted; a ``tiles_url`` must then serve GCJ-02 tiles).
    asset_base, app_base
        URL paths where ``api/static/vendor/`` and ``api/static/`` are served.
    tiles_url, tile_threshold, tiles_min_zoom
        Above ``tile_threshold`` parcels (``None``: never) the parcels are drawn from the vector tiles
        at ``tiles_url`` (a template with ``{z}``, ``{x}``, ``{y}``) from zoom ``tiles_min_zoom`` on.
    tiles_prebuilt
        The tiles come from the run's archive (:mod:`geo_eval.maps.archive`): below park zooms the page draws
        each flag as a dot of the archive's ``flagged`` layer instead of hatching the parcels.
    search_url
        Large parks only: URL of :func:`~geo_eval.maps.attributes.search_index` as JSON.
    title
        Page title and legend heading.
    service
        What the service adds to the configuration: the user and whether they may review, the URLs
        of the review states, flags, reviews and downloads, navigation. Without it the page is a
        read-only map whose review list is made from ``flags``.
    attribution
        The attribution line (the bureau that publishes the data).
    extent
        ``(west, south, east, north)`` of the parcels in EPSG:4326: then ``parcels`` may be their attributes
        alone, without geometry (a province's overview, drawn from tiles: its legends are counted from the
        attributes, and no geometry of a million parcels is made for a page that draws none).
    """
    import folium
    from branca.element import Figure

    _check_options(color_by, basemap, tianditu_key, search_url)
    tax_colours(tax_bins)  # refuse bad bins before any work
    gcj = basemap == "gaode"
    if not isinstance(parcels, gpd.GeoDataFrame) and extent is None:
        raise ValueError("没有几何的地块表须给出其范围 extent（西、南、东、北，EPSG:4326）")
    shown = to_display(parcels, gcj02=gcj) if isinstance(parcels, gpd.GeoDataFrame) else parcels
    flag_frame = None if flags is None else pd.DataFrame(flags)
    tiles = None
    if tile_threshold is not None and len(parcels) > tile_threshold:
        if not tiles_url:
            raise ValueError(
                f"地块数 {len(parcels)} 超过 {tile_threshold}，须给出矢量瓦片地址 tiles_url（或设 tile_threshold=None 内嵌全部地块）"
            )
        _check_tiles_url(tiles_url)
        tiles = {
            "mode": "tiles",
            "url": tiles_url,
            "minZoom": int(tiles_min_zoom),
            "detailZoom": TILE_DETAIL_ZOOM,
            "prebuilt": bool(tiles_prebuilt),
        }
    if not isinstance(parcels, gpd.GeoDataFrame) and (tiles is None or not search_url):
        raise ValueError(
            "没有几何的地块表只能以矢量瓦片显示：须给出 tiles_url 与 search_url，且地块数超过 tile_threshold"
        )

    if tiles is not None and search_url and not _inline_flags(flag_frame, service):
        attrs = legend_attributes(parcels, enterprises=enterprises)  # popups and search come from the service
    else:
        attrs = parcel_attributes(parcels, flags=flag_frame, enterprises=enterprises)
    fig = Figure(title=html.escape(title))
    m = folium.Map(tiles=None, location=[34.6, 119.2], zoom_start=12, max_zoom=MAX_ZOOM, zoom_control=False)
    fig.add_child(m)
    config = map_config(
        shown,
        attrs,
        flags=flag_frame,
        blocks=blocks,
        parks=parks,
        color_by=color_by,
        tax_bins=tax_bins,
        basemap=basemap,
        tiles=tiles,
        search_url=search_url,
        title=title,
        service=service,
        attribution=attribution,
        extent=extent,
    )
    config["map"] = m.get_name()
    config["basemaps"] = _basemaps(m, basemap, tianditu_key)
    base = app_base.rstrip("/")
    vendor = asset_base.rstrip("/")
    text_json = script_json(config)
    if tiles is None:
        text_json = text_json.replace(f'"{_FEATURES}"', _parcel_features(shown, attrs))
    assets = _page_assets()(
        css=[("geo_eval_map_css", f"{base}/{PAGE_STYLE}")],
        js=[("leaflet_vectorgrid", f"{vendor}/{VECTORGRID_JS}")] if tiles is not None else [],
    )
    m.add_child(assets)
    raw = _raw_element()
    fig.header.add_child(raw(f'<script type="module" src="{html.escape(base)}/{PAGE_SCRIPT}"></script>'))
    fig.html.add_child(raw(f'<script type="application/json" id="ge-config">{text_json}</script>'))
    return localize_assets(m, asset_base)


def park_map_html(parcels: gpd.GeoDataFrame, **options: Any) -> str:
    """:func:`park_map` rendered as the page the service returns for ``/maps/{park}``."""
    m = park_map(parcels, **options)
    page = to_html(m, asset_base=options.get("asset_base", "/static/vendor"))
    return _FOLIUM_VIEWPORT.sub(VIEWPORT, page, count=1)
