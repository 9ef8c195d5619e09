"""Park maps: parcels coloured by grade or 亩均税收, flags, renewal blocks and park outlines.

Pure functions over GeoDataFrames (the layers of ``parcels.gpkg`` and ``renewal_blocks.gpkg``);
folium is imported only inside the functions that build a map. A map works without internet:

- every JavaScript and CSS file is loaded from ``asset_base`` (the service serves
  ``api/static/vendor/`` there; :data:`VENDOR_ASSETS` maps folium's CDN links to those files and
  :func:`to_html` refuses to write a page that still names another host);
- the default basemap is none (parcels on a plain background, park outlines drawn); 天地图 with the
  user's key (CGCS2000 tiles, drawn as WGS-84) and 高德 (GCJ-02: our layers are shifted with
  :mod:`geo_eval.gcj02`) are options;
- every value that reaches a popup, a tooltip or the search list is escaped (popups built here with
  :func:`html.escape`, those of vector tiles in the browser by an equivalent function, search hits
  set as text), and JSON embedded in the page cannot close its ``<script>``.

Large parks (more parcels than ``tile_threshold``) are not inlined: parcels are drawn from vector
tiles (``tiles_url``, served with :func:`geo_eval.tiles.mvt_tile` over :func:`tile_source`) by the
vendored Leaflet.VectorGrid, with a click handler that opens the same popup.

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import box
>>> parcels = gpd.GeoDataFrame(
...     {"parcel_id": ["P1"], "grade": ["A"], "tax_per_mu": [30.0], "area_mu": [15.0],
...      "main_user": ["91320700MA1XXXXX00"], "main_user_name": ["<b>甲</b>公司"]},
...     geometry=[box(119.20, 34.60, 119.201, 34.601)], crs=4326)
>>> page = park_map_html(parcels, title="示例园区")
>>> "&lt;b&gt;甲&lt;/b&gt;公司" in page and "<b>甲</b>" not in page
True
>>> "https://" in page
False
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_eval.gcj02 import shift_to_gcj02

if TYPE_CHECKING:
    import folium

__all__ = [
    "BASEMAPS",
    "FLAG_STATUS_LABELS",
    "GRADE_COLOURS",
    "GRADE_LEGEND",
    "POPUP_FIELDS",
    "TAX_BINS",
    "TILE_DETAIL_ZOOM",
    "TILE_PROPERTIES",
    "TILE_THRESHOLD",
    "VENDOR_ASSETS",
    "VENDOR_FILES",
    "localize_assets",
    "parcel_attributes",
    "park_map",
    "park_map_html",
    "search_index",
    "tile_properties",
    "tile_source",
    "to_html",
]

ColorBy = Literal["grade", "tax_per_mu"]
Basemap = Literal["none", "tianditu", "gaode"]
BASEMAPS: tuple[str, ...] = ("none", "tianditu", "gaode")

TILE_THRESHOLD = 5000
"""Above this many parcels a map draws them from vector tiles instead of inline GeoJSON."""
TILE_DETAIL_ZOOM = 14
"""From this zoom on, vector tiles carry every popup figure; below it only what styles a parcel."""
TILE_STYLE_PROPERTIES: tuple[str, ...] = ("parcel_id", "grade", "tax_per_mu", "n_flags", "review")
TILE_PROPERTIES: tuple[str, ...] = (
    "parcel_id",
    "park",
    "area_mu",
    "holder",
    "users",
    "main_name",
    "grade",
    "tax_per_mu",
    "block_id",
    "flags",
    "n_flags",
    "review",
)
"""Columns of :func:`tile_source`: the popup figures and what styles a parcel."""

NO_GRADE = "无"
GRADE_COLOURS: dict[str, str] = {
    "A": "#2e7d32",
    "B": "#1f78b4",
    "C": "#f4b400",
    "D": "#d32f2f",
    "T": "#8e8e8e",
    NO_GRADE: "#d9d9d9",
}
"""Fill colour of a parcel by the grade of its main user (``无``: no graded user)."""
OTHER_GRADE_COLOUR = "#b39ddb"
GRADE_LEGEND: dict[str, str] = {
    "A": "A 优先发展类",
    "B": "B 鼓励提升类",
    "C": "C 监管调控类",
    "D": "D 落后整治类",
    "T": "T 不适合评价",
    NO_GRADE: "无 无参评使用企业",
}
TAX_BINS: tuple[float, ...] = (5.0, 10.0, 20.0, 30.0, 50.0)
"""Default 亩均税收 class limits (万元/亩): ``< 5``, ``5–10``, …, ``≥ 50``."""
_RDYLGN9 = ("#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a", "#66bd63", "#1a9850")
NO_DATA_COLOUR = "#d9d9d9"

FLAG_STATUS_LABELS: dict[str, str] = {
    "pending": "待审核",
    "confirmed": "确认",
    "site_visit": "待核查",
    "dismissed": "排除",
}
"""Review states of a flag (column ``status`` of the flags layer; missing means ``pending``)."""
_STATUS_ORDER = ("confirmed", "site_visit", "pending", "dismissed")
"""A parcel shows the first state any of its flags has, in this order."""
FLAG_STYLES: dict[str, dict[str, Any]] = {
    "pending": {"color": "#e6007e", "weight": 2.5, "dashArray": "6 4"},
    "confirmed": {"color": "#e6007e", "weight": 3.5, "dashArray": None},
    "site_visit": {"color": "#ff6f00", "weight": 3, "dashArray": "6 4"},
    "dismissed": {"color": "#616161", "weight": 1.5, "dashArray": "2 4"},
}
BLOCK_STYLE: dict[str, Any] = {"color": "#6a1b9a", "weight": 3, "dashArray": "10 6", "fill": False}
PARK_STYLE: dict[str, Any] = {"color": "#212121", "weight": 2.5, "fill": False, "interactive": False}
BACKGROUND = "#f3f2ee"

PopupField = tuple[str, str, str, bool]
POPUP_FIELDS: tuple[PopupField, ...] = (
    ("parcel_id", "宗地代码", "text", False),
    ("park", "园区", "text", False),
    ("area_mu", "面积（亩）", "num2", False),
    ("holder", "权利人", "text", True),
    ("users", "使用企业", "lines", False),
    ("grade", "分类", "grade", False),
    ("tax_per_mu", "亩均税收（万元/亩）", "num2", False),
    ("block_id", "连片改造区块", "text", True),
    ("flags", "标记", "lines", True),
)
"""Rows of a parcel's popup: (column of :func:`parcel_attributes`, Chinese label, format, omitted
when empty). Formats: ``text``; ``num2`` (two decimals); ``grade`` (with its class name);
``lines`` (one line per user or flag)."""
BLOCK_FIELDS: tuple[PopupField, ...] = (
    ("block_id", "区块编号", "text", False),
    ("n_parcels", "宗地数", "text", False),
    ("area_mu", "面积（亩）", "num2", False),
    ("n_enterprises", "企业数", "text", False),
    ("enterprise_names", "企业", "lines", True),
    ("tax_per_mu", "亩均税收（万元/亩）", "num2", True),
    ("grades", "分类构成", "text", True),
)
"""Rows of a renewal block's popup (columns of ``renewal_blocks.gpkg``)."""

# folium 0.20's default links (folium.folium._default_js/_default_css) → files under asset_base.
# None: dropped, because no geo-eval map uses it (icon fonts for marker icons only).
VENDOR_ASSETS: dict[str, str | None] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": "bootstrap/bootstrap.bundle.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": (
        "leaflet.awesome-markers/leaflet.awesome-markers.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": (
        "leaflet.awesome-markers/leaflet.awesome-markers.css"
    ),
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": None,
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": None,
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css": None,
}
VECTORGRID_JS = "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"
VENDOR_FILES: tuple[str, ...] = (*sorted({v for v in VENDOR_ASSETS.values() if v}), VECTORGRID_JS)
"""Every file under ``asset_base`` a map may load (relative paths; ``api/static/vendor/`` holds them)."""

_TILE_PLACEHOLDERS = {"z", "x", "y", "s", "-y"}
_TIANDITU_KEY = re.compile(r"^[0-9A-Za-z]{16,64}$")
_TIANDITU_URL = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"
)
_GAODE_URL = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"


# ---------------------------------------------------------------------------------------------
# Attributes shown for a parcel (shared by inline popups, vector tiles and the search box)
# ---------------------------------------------------------------------------------------------


def _text(v: object) -> str:
    """A cell as display text; missing → ``""``."""
    if v is None or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, float) and math.isnan(v):
        return ""
    return str(v).strip()


def _split(v: object) -> list[str]:
    return [s.strip() for s in _text(v).split(";") if s.strip()]


def _parcel_ids(frame: pd.DataFrame) -> pd.Index:
    if "parcel_id" in frame.columns:
        return pd.Index(frame["parcel_id"].map(_text), name="parcel_id")
    return pd.Index(frame.index.map(_text), name="parcel_id")


def _name_lookup(parcels: pd.DataFrame, flags: pd.DataFrame | None, enterprises: pd.DataFrame | None) -> dict[str, str]:
    """USCC → enterprise name, from the enterprises table, else the names the layers carry."""
    names: dict[str, str] = {}

    def add(codes: Iterable[object], labels: Iterable[object]) -> None:
        for c, n in zip(codes, labels, strict=False):
            c, n = _text(c), _text(n)
            if c and n and c not in names:
                names[c] = n

    if enterprises is not None:
        codes = enterprises["uscc"] if "uscc" in enterprises.columns else enterprises.index
        if "name" in enterprises.columns:
            add(codes, enterprises["name"])
    for code_col, name_col in (("main_user", "main_user_name"), ("holder_uscc", "holder_name")):
        if code_col in parcels.columns and name_col in parcels.columns:
            add(parcels[code_col], parcels[name_col])
    if flags is not None and {"enterprises", "enterprise_names"} <= set(flags.columns):
        pairs = flags[["enterprises", "enterprise_names"]].drop_duplicates()
        for codes, labels in zip(pairs["enterprises"], pairs["enterprise_names"], strict=True):
            a, b = _split(codes), _split(labels)
            if len(a) == len(b):
                add(a, b)
    return names


def _status_key(v: object) -> str:
    s = _text(v).lower()
    return s if s in FLAG_STATUS_LABELS else "pending"


def parcel_attributes(
    parcels: pd.DataFrame,
    *,
    flags: pd.DataFrame | None = None,
    enterprises: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The plain-text figures a map shows for each parcel, indexed by parcel code.

    Columns: ``parcel_id``, ``park``, ``area_mu``, ``holder`` (权利人), ``users`` (使用企业, one
    ``名称（USCC）`` per line), ``names`` and ``usccs`` (for search), ``main_name``, ``grade``
    (``无`` when the parcel has no graded user), ``tax_per_mu``, ``block_id``, ``flags`` (one
    ``标记：原因（审核状态）`` per line), ``n_flags`` and ``review`` (the parcel's review state, the
    first of confirmed, site_visit, pending, dismissed that any of its flags has; ``""`` if none).

    ``parcels`` is the ``parcels`` layer of ``parcels.gpkg`` (or the evaluation's parcel frame);
    ``flags`` its ``flags`` layer, optionally with the review columns ``status``
    (:data:`FLAG_STATUS_LABELS`) and ``comment``; ``enterprises`` names every user (else the names
    in the layers are used). Values are NOT escaped: escape them where they become HTML.
    """
    ids = _parcel_ids(parcels)
    if ids.has_duplicates:
        dup = sorted(set(ids[ids.duplicated()]))[:5]
        raise ValueError(f"宗地代码重复，无法制图：{'、'.join(dup)}")
    p = pd.DataFrame(parcels.drop(columns=getattr(parcels, "_geometry_column_name", None) or [], errors="ignore"))
    p.index = ids
    names = _name_lookup(p, flags, enterprises)

    def col(name: str) -> pd.Series:
        return p[name] if name in p.columns else pd.Series(pd.NA, index=p.index, dtype="object")

    out = pd.DataFrame(index=ids)
    out["parcel_id"] = ids.to_numpy()
    out["park"] = col("park").map(_text).to_numpy()
    area = pd.to_numeric(col("area_mu"), errors="coerce")
    out["area_mu"] = area.to_numpy(dtype=float)

    holder_rows = []
    for code, name in zip(col("holder_uscc").map(_text), col("holder_name").map(_text), strict=True):
        holder_rows.append(f"{name}（{code}）" if name and code else name or code)
    out["holder"] = holder_rows

    users_lines, users_names, users_codes, main_names = [], [], [], []
    mains = col("main_user").map(_text)
    for users, main in zip(col("users"), mains, strict=True):
        codes = _split(users) or ([main] if main else [])
        if main in codes:  # main user first
            codes = [main] + [c for c in codes if c != main]
        labelled = [f"{names[c]}（{c}）" if c in names else c for c in codes]
        users_lines.append("\n".join(labelled))
        users_names.append("；".join(names.get(c, "") for c in codes if names.get(c)))
        users_codes.append(" ".join(codes))
        main_names.append(names.get(main, main))
    out["users"] = users_lines
    out["names"] = users_names
    out["usccs"] = users_codes
    out["main_name"] = main_names

    grades = col("grade").map(_text)
    out["grade"] = grades.where(grades != "", NO_GRADE).to_numpy()
    out["tax_per_mu"] = pd.to_numeric(col("tax_per_mu"), errors="coerce").to_numpy(dtype=float)
    out["block_id"] = col("block_id").map(_text).to_numpy()

    out["flags"] = ""
    out["n_flags"] = 0
    out["review"] = ""
    if flags is not None and len(flags):
        f = pd.DataFrame(flags.drop(columns=getattr(flags, "_geometry_column_name", None) or [], errors="ignore"))
        f = f.assign(
            _pid=f["parcel_id"].map(_text),
            _status=(f["status"] if "status" in f.columns else pd.Series(pd.NA, index=f.index)).map(_status_key),
        )
        f = f.loc[f["_pid"].isin(out.index)]
        labels = f["flag_label"] if "flag_label" in f.columns else f.get("flag", pd.Series("", index=f.index))
        reasons = f["reason"] if "reason" in f.columns else pd.Series("", index=f.index)
        comments = f["comment"] if "comment" in f.columns else pd.Series("", index=f.index)
        lines: dict[str, list[str]] = {}
        states: dict[str, set[str]] = {}
        for pid, label, reason, status, comment in zip(
            f["_pid"], labels.map(_text), reasons.map(_text), f["_status"], comments.map(_text), strict=True
        ):
            text = f"{label}：{reason}" if reason else label
            if "status" in f.columns:
                text += f"（{FLAG_STATUS_LABELS[status]}{'：' + comment if comment else ''}）"
            lines.setdefault(pid, []).append(text)
            states.setdefault(pid, set()).add(status)
        idx = list(lines)
        out.loc[idx, "flags"] = ["\n".join(lines[i]) for i in idx]
        out.loc[idx, "n_flags"] = [len(lines[i]) for i in idx]
        out.loc[idx, "review"] = [next(s for s in _STATUS_ORDER if s in states[i]) for i in idx]
    return out


def _fmt(v: object, kind: str) -> str:
    if kind == "num2":
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return ""
        return "" if math.isnan(x) else f"{x:,.2f}"
    if kind == "grade":
        g = _text(v)
        return GRADE_LEGEND.get(g, g)
    if kind == "lines":
        return "\n".join(part.strip() for part in re.split(r"[;\n]", _text(v)) if part.strip())
    return _text(v)


def _popup_cells(row: Mapping[Any, Any], fields: Sequence[PopupField] = POPUP_FIELDS) -> list[str]:
    """The popup of one feature as escaped text per field (``""`` when missing, lines split by ``\\n``).

    The browser wraps these in the table markup (``geoEval.table``) without escaping them again.

    >>> _popup_cells({"parcel_id": "P1", "users": "<i>甲</i>（9132…）\\n乙"}, POPUP_FIELDS[:1] + POPUP_FIELDS[4:5])
    ['P1', '&lt;i&gt;甲&lt;/i&gt;（9132…）\\n乙']
    """
    return [html.escape(_fmt(row.get(key), kind)) for key, _, kind, _ in fields]


def _fields_js(fields: Sequence[PopupField]) -> list[list[object]]:
    return [[key, html.escape(label), kind, optional] for key, label, kind, optional in fields]


def _tooltip_html(row: Mapping[Any, Any]) -> str:
    parts = [_text(row.get("parcel_id")), _text(row.get("main_name")), _fmt(row.get("grade"), "grade")]
    if row.get("n_flags"):
        parts.append(f"标记 {row['n_flags']} 项")
    return html.escape(" · ".join(p for p in parts if p))


# ---------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------


def _to_display(gdf: gpd.GeoDataFrame, *, gcj02: bool) -> gpd.GeoDataFrame:
    """``gdf`` in EPSG:4326 (CGCS2000 taken as WGS-84), shifted to GCJ-02 when asked."""
    if gdf.crs is None:
        raise ValueError("图层没有坐标系（CRS），无法制图；请先 set_crs")
    epsg = gdf.crs.to_epsg()
    out = gdf if epsg in (4326, 4490) else gdf.to_crs(4326)
    if epsg == 4490:
        out = out.set_crs(4326, allow_override=True)
    out = out.loc[out.geometry.notna() & ~out.geometry.is_empty]
    return shift_to_gcj02(out) if gcj02 else out


def _round_geoms(geoms: np.ndarray, digits: int = 6) -> np.ndarray:
    return shapely.transform(geoms, lambda c: np.round(c, digits))


def _script_json(obj: object) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>`` or line separators left raw."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _feature_collection(geoms: np.ndarray, props: list[dict[str, Any]]) -> str:
    """A GeoJSON FeatureCollection as script-safe JSON text (6-decimal coordinates)."""
    texts = shapely.to_geojson(_round_geoms(geoms))
    feats = [
        '{"type":"Feature","geometry":' + g + ',"properties":' + _script_json(p) + "}"
        for g, p in zip(texts, props, strict=True)
    ]
    return '{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}"


def _tax_colours(bins: Sequence[float]) -> list[str]:
    k = len(bins) + 1
    if k > len(_RDYLGN9) or list(bins) != sorted(bins):
        raise ValueError(f"亩均税收分级界限须递增且不超过 {len(_RDYLGN9) - 1} 个：{list(bins)}")
    return [_RDYLGN9[round(i * (len(_RDYLGN9) - 1) / (k - 1))] for i in range(k)]


def _tax_labels(bins: Sequence[float]) -> list[str]:
    b = [f"{x:g}" for x in bins]
    return [f"< {b[0]}"] + [f"{lo}–{hi}" for lo, hi in pairwise(b)] + [f"≥ {b[-1]}"]


def _tax_class(values: np.ndarray, bins: Sequence[float]) -> np.ndarray:
    """Class index of each 亩均税收 (``-1``: no figure)."""
    cls = np.searchsorted(np.asarray(bins, dtype=float), values, side="right")
    return np.where(np.isnan(values), -1, cls)


# ---------------------------------------------------------------------------------------------
# Search index and tile source (also served by the API)
# ---------------------------------------------------------------------------------------------


def search_index(
    parcels: gpd.GeoDataFrame,
    *,
    flags: pd.DataFrame | None = None,
    enterprises: pd.DataFrame | None = None,
    basemap: Basemap = "none",
    attributes: pd.DataFrame | None = None,
) -> list[list[object]]:
    """Rows ``[parcel_id, names, usccs, west, south, east, north]`` for the map's search box.

    Coordinates are those of the map (EPSG:4326, or GCJ-02 for ``basemap="gaode"``), 6 decimals.
    Serve it as JSON for a large park's ``search_url``; small maps embed it.
    """
    attrs = attributes if attributes is not None else parcel_attributes(parcels, flags=flags, enterprises=enterprises)
    shown = _to_display(parcels, gcj02=basemap == "gaode")
    ids = _parcel_ids(shown)
    bounds = np.round(shapely.bounds(np.asarray(shown.geometry.array, dtype=object)), 6)
    a = attrs.reindex(ids)
    return [
        [pid, _text(n), _text(u), *map(float, b)]
        for pid, n, u, b in zip(ids, a["names"], a["usccs"], bounds, strict=True)
    ]


def tile_source(
    parcels: gpd.GeoDataFrame,
    *,
    flags: pd.DataFrame | None = None,
    enterprises: pd.DataFrame | None = None,
    basemap: Basemap = "none",
) -> gpd.GeoDataFrame:
    """The parcels as :func:`geo_eval.tiles.mvt_tile` should encode them for a large-park map.

    EPSG:4326 (GCJ-02-shifted for ``basemap="gaode"``), indexed by parcel code, with the popup
    columns of :func:`parcel_attributes` that the map's tile popups read. Build it once per run,
    park and basemap and keep it: every tile request then only queries its spatial index.
    """
    attrs = parcel_attributes(parcels, flags=flags, enterprises=enterprises)
    shown = _to_display(parcels, gcj02=basemap == "gaode")
    ids = _parcel_ids(shown)
    a = attrs.reindex(ids)[list(TILE_PROPERTIES)]
    out = gpd.GeoDataFrame(a, geometry=np.asarray(shown.geometry.array, dtype=object), crs=4326)
    out.index = ids
    return out


def tile_properties(z: int) -> tuple[str, ...]:
    """The :func:`tile_source` columns a zoom-``z`` tile should carry (``properties=`` of ``mvt_tile``).

    Below :data:`TILE_DETAIL_ZOOM` a tile may hold a whole park: it carries only what styles a
    parcel (a fifth of the bytes); the map's popup then says to zoom in for the details.

    >>> tile_properties(12)
    ('parcel_id', 'grade', 'tax_per_mu', 'n_flags', 'review')
    """
    return TILE_PROPERTIES if z >= TILE_DETAIL_ZOOM else TILE_STYLE_PROPERTIES


# ---------------------------------------------------------------------------------------------
# Assets
# ---------------------------------------------------------------------------------------------


def _walk(element: Any) -> Iterator[Any]:
    yield element
    for child in list(getattr(element, "_children", {}).values()):
        yield from _walk(child)


def _local_url(url: str, asset_base: str) -> str | None:
    base = asset_base.rstrip("/")
    if url.startswith(base + "/"):
        return url
    if url in VENDOR_ASSETS:
        rel = VENDOR_ASSETS[url]
        return None if rel is None else f"{base}/{rel}"
    if re.match(r"^(https?:)?//", url):
        raise ValueError(f"地图引用了未本地化的外部资源 {url}：请把它加入 api/static/vendor 和 VENDOR_ASSETS")
    return url


def localize_assets(m: folium.Map, asset_base: str = "/static/vendor") -> folium.Map:
    """Point every JS/CSS link of ``m`` and its children at ``asset_base`` (in place; returns ``m``).

    Known CDN links are replaced by their vendored copies (:data:`VENDOR_ASSETS`) or dropped when no
    geo-eval map needs them; an unknown external link raises ``ValueError``.
    """
    for el in _walk(m.get_root()):
        for attr in ("default_js", "default_css"):
            links = getattr(el, attr, None)
            if not links:
                continue
            local = [(name, _local_url(url, asset_base)) for name, url in links]
            setattr(el, attr, [(name, url) for name, url in local if url is not None])
    return m


_EXTERNAL_LINK = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.I)


def to_html(m: folium.Map, *, asset_base: str = "/static/vendor") -> str:
    """The map as a standalone HTML page whose scripts and styles all come from ``asset_base``.

    Raises ``ValueError`` if, after :func:`localize_assets`, a ``<script>`` or ``<link>`` still names
    another host.
    """
    localize_assets(m, asset_base)
    page: str = m.get_root().render()
    bad = sorted(set(_EXTERNAL_LINK.findall(page)))
    if bad:
        raise ValueError(f"地图页面仍引用外部资源：{', '.join(bad)}")
    return page


# ---------------------------------------------------------------------------------------------
# The map
# ---------------------------------------------------------------------------------------------

_CSS = f"""
.leaflet-container {{ background: {BACKGROUND}; font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC",
  "WenQuanYi Micro Hei", system-ui, sans-serif; font-size: 13px; }}
table.ge-pop {{ border-collapse: collapse; font-size: 12px; }}
table.ge-pop th {{ text-align: left; white-space: nowrap; padding: 2px 8px 2px 0; color: #555; vertical-align: top;
  font-weight: 600; }}
table.ge-pop td {{ padding: 2px 0; max-width: 300px; }}
table.ge-pop td div + div {{ border-top: 1px dotted #ccc; margin-top: 2px; padding-top: 2px; }}
.ge-legend {{ background: rgba(255,255,255,.92); padding: 8px 10px; border-radius: 4px; line-height: 18px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); max-width: 260px; }}
.ge-legend .ge-title {{ font-weight: 700; font-size: 14px; margin-bottom: 4px; }}
.ge-legend .ge-sub {{ font-weight: 600; margin-top: 6px; }}
.ge-legend i {{ display: inline-block; width: 14px; height: 12px; margin-right: 6px; vertical-align: -1px;
  border: 1px solid #777; }}
.ge-legend i.ge-line {{ height: 0; border-width: 2px 0 0 0; border-style: solid; background: none; }}
.ge-legend .ge-n {{ color: #777; margin-left: 4px; }}
.ge-legend .ge-note {{ color: #777; font-size: 12px; margin-top: 4px; }}
.ge-search {{ background: #fff; padding: 4px; width: 280px; }}
.ge-search input {{ width: 100%; box-sizing: border-box; padding: 4px 6px; border: 1px solid #aaa; border-radius: 3px;
  font-size: 13px; }}
.ge-search ul {{ list-style: none; margin: 4px 0 0; padding: 0; max-height: 260px; overflow-y: auto; }}
.ge-search li {{ padding: 3px 4px; cursor: pointer; border-top: 1px solid #eee; font-size: 12px; }}
.ge-search li:hover, .ge-search li.ge-active {{ background: #e8f0fe; }}
.ge-search li small {{ color: #777; display: block; }}
"""

# Popup building in the browser: geoEval.table wraps cells escaped in Python (inline layers);
# geoEval.popup first escapes raw vector-tile properties with the same formats as _fmt.
_JS_HELPERS = r"""
window.geoEval = window.geoEval || {layers: {}, byId: {}, cells: {}, drawn: 0};
geoEval.esc = function (v) {
  return String(v).replace(/[&<>"']/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
  });
};
geoEval.fmt = function (v, kind, grades) {
  if (v === undefined || v === null || v === "") return "";
  if (kind === "num2") {
    var x = Number(v);
    return isNaN(x) ? "" : x.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }
  if (kind === "grade") return grades[v] || String(v);
  if (kind === "lines") return String(v).split(/[;\n]/).map(function (l) { return l.trim(); }).filter(Boolean).join("\n");
  return String(v).trim();
};
geoEval.table = function (fields, cells) {
  // cells: escaped text per field, lines split by \n; "" when missing
  var rows = [];
  for (var i = 0; i < fields.length; i++) {
    var text = cells[i];
    if (!text) {
      if (fields[i][3]) continue;
      text = "\u2014";
    }
    var value = fields[i][2] === "lines"
      ? text.split("\n").map(function (l) { return "<div>" + l + "</div>"; }).join("")
      : text;
    rows.push("<tr><th>" + fields[i][1] + "</th><td>" + value + "</td></tr>");
  }
  return '<table class="ge-pop">' + rows.join("") + "</table>";
};
geoEval.popup = function (p, fields, grades, light) {
  // raw properties (from a vector tile) → escaped cells → table; a light tile lacks the details
  if (light) { fields = fields.filter(function (f) { return f[0] in p; }); }
  return geoEval.table(fields, fields.map(function (f) { return geoEval.esc(geoEval.fmt(p[f[0]], f[2], grades)); }));
};
"""

# Leaflet.VectorGrid 1.3.0 calls L.DomEvent.fakeStop, which Leaflet 1.8 removed, so a click on a
# canvas tile throws (Leaflet.VectorGrid issue #274). Leaflet 1.9's own canvas renderer marks its
# container so the map ignores the DOM event and fires the hit through _fireEvent; do the same.
_VECTORGRID_CLICK_FIX = """
if (L.Canvas && L.Canvas.Tile && !L.Canvas.Tile.prototype._geoEvalClickFix) {
  L.Canvas.Tile.include({
    _geoEvalClickFix: true,
    _onClick: function (e) {
      var point = this._map.mouseEventToLayerPoint(e).subtract(this.getOffset()), layer, clickedLayer;
      for (var id in this._layers) {
        layer = this._layers[id];
        if (layer.options.interactive && layer._containsPoint(point) && !this._map._draggableMoved(layer)) {
          clickedLayer = layer;
        }
      }
      this._fireEvent(clickedLayer ? [clickedLayer] : false, e);
    }
  });
}
"""


@functools.cache
def _element_classes() -> dict[str, type]:
    """folium element classes, defined on first use so that folium is imported lazily."""
    from branca.element import MacroElement
    from folium.elements import JSCSSMixin
    from folium.map import Layer
    from folium.template import Template

    class GeoJsonOverlay(Layer):
        """An ``L.geoJSON`` layer whose features carry a style key, popup and tooltip HTML."""

        _template = Template(
            """
{% macro script(this, kwargs) %}
var {{ this.get_name() }}_styles = {{ this.styles_json }};
var {{ this.get_name() }}_fields = {{ this.fields_json }};
var {{ this.get_name() }} = L.geoJSON(null, {
  interactive: {{ this.interactive_js }},
  style: function (f) { return {{ this.get_name() }}_styles[f.properties.s]; },
  onEachFeature: function (f, layer) {
    var p = f.properties, v = p.v, t = p.t;
    {% if this.register %}geoEval.cells[p.id] = p;
    if (!geoEval.byId[p.id]) { geoEval.byId[p.id] = layer; }{% endif %}
    {% if this.delegate %}var c = geoEval.cells[p.id] || {};
    v = c.v;
    t = c.t;{% endif %}
    if (v) {
      layer.bindPopup(function () { return geoEval.table({{ this.get_name() }}_fields, v); }, {maxWidth: 380});
    }
    if (t) { layer.bindTooltip(t, {sticky: true}); }
  }
});
{{ this.get_name() }}.addData({{ this.data_json }});
geoEval.layers[{{ this.key_json }}] = {{ this.get_name() }};
geoEval.drawn += {{ this.count }};
{% endmacro %}
"""
        )

        def __init__(
            self,
            name: str,
            key: str,
            data_json: str,
            styles: list[dict[str, Any]],
            count: int,
            *,
            fields: Sequence[PopupField] = (),
            interactive: bool = True,
            register: bool = False,
            delegate: bool = False,
            show: bool = True,
            control: bool = True,
        ) -> None:
            super().__init__(name=name, overlay=True, control=control, show=show)
            self._name = "GeoJsonOverlay"
            self.data_json = data_json
            self.styles_json = _script_json(styles)
            self.key_json = _script_json(key)
            self.count = int(count)
            self.interactive_js = "true" if interactive else "false"
            self.register = register
            self.delegate = delegate
            self.fields_json = _script_json(_fields_js(fields))

    class VectorTileParcels(JSCSSMixin, Layer):
        """Parcels drawn from vector tiles by Leaflet.VectorGrid (canvas), with escaped popups."""

        _template = Template(
            """
{% macro script(this, kwargs) %}
"""
            + _VECTORGRID_CLICK_FIX
            + """
var {{ this.get_name() }} = (function () {
  var cfg = {{ this.config_json }};
  function fill(p) {
    if (cfg.colorBy === "tax_per_mu") {
      var v = Number(p.tax_per_mu);
      if (p.tax_per_mu === undefined || p.tax_per_mu === null || isNaN(v)) return cfg.noData;
      var k = 0;
      while (k < cfg.bins.length && v >= cfg.bins[k]) k++;
      return cfg.taxColours[k];
    }
    return cfg.gradeColours[p.grade] || cfg.otherColour;
  }
  var style = function (p, z) {
    if (cfg.mode === "flags") {
      if (!p.n_flags) return [];
      var s = cfg.flagStyles[p.review] || cfg.flagStyles.pending;
      return {stroke: true, color: s.color, weight: s.weight, dashArray: s.dashArray, fill: true, fillOpacity: 0};
    }
    return {stroke: true, color: "#555", weight: z >= 15 ? 0.8 : 0.4, fill: true, fillColor: fill(p),
            fillOpacity: 0.75};
  };
  var layer = L.vectorGrid.protobuf(cfg.url, {
    rendererFactory: L.canvas.tile,
    interactive: true,
    minZoom: cfg.minZoom,
    maxZoom: 22,
    fetchOptions: {credentials: "same-origin"},
    vectorTileLayerStyles: {parcels: style},
    getFeatureId: function (f) { return f.properties.parcel_id; }
  });
  layer.on("click", function (e) {
    var p = (e.layer && e.layer.properties) || {};
    var light = {{ this._parent.get_name() }}.getZoom() < cfg.detailZoom;
    var content = geoEval.popup(p, cfg.fields, cfg.grades, light);
    if (light) { content += '<div class="ge-note">' + cfg.lightNote + "</div>"; }
    // closeOnClick: false — the map sees the same click and must not close the popup it opened
    L.popup({maxWidth: 380, closeOnClick: false}).setLatLng(e.latlng).setContent(content)
      .openOn({{ this._parent.get_name() }});
  });
  layer.on("tileload", function () {
    if (!geoEval.firstTileAt) { geoEval.firstTileAt = performance.now(); }
  });
  layer.on("load", function () { geoEval.tilesLoadedAt = performance.now(); });
  geoEval.layers[cfg.key] = layer;
  return layer;
})();
{% endmacro %}
"""
        )

        def __init__(self, name: str, config: dict[str, Any], asset_base: str, *, show: bool = True) -> None:
            super().__init__(name=name, overlay=True, control=True, show=show)
            self._name = "VectorTileParcels"
            self.config_json = _script_json(config)
            self.default_js = [("leaflet_vectorgrid", f"{asset_base.rstrip('/')}/{VECTORGRID_JS}")]

    class Legend(MacroElement):
        _template = Template(
            """
{% macro script(this, kwargs) %}
(function () {
  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "ge-legend");
    div.innerHTML = {{ this.html_json }};
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  };
  legend.addTo({{ this._parent.get_name() }});
})();
{% endmacro %}
"""
        )

        def __init__(self, html_text: str) -> None:
            super().__init__()
            self._name = "Legend"
            self.html_json = _script_json(html_text)

    class SearchBox(MacroElement):
        """A search box over parcel codes, enterprise names and USCCs; hits are set as text."""

        _template = Template(
            """
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }};
  var cfg = {{ this.config_json }};
  var index = cfg.index, loading = null, mark = null;
  function load() {
    if (index || loading || !cfg.url) return loading;
    loading = fetch(cfg.url, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (rows) { index = rows; return rows; });
    return loading;
  }
  var box = L.control({position: "topleft"});
  box.onAdd = function () {
    var div = L.DomUtil.create("div", "ge-search leaflet-bar");
    var input = L.DomUtil.create("input", "", div);
    input.type = "search";
    input.placeholder = cfg.placeholder;
    input.setAttribute("aria-label", cfg.placeholder);
    var list = L.DomUtil.create("ul", "", div);
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    var hits = [];
    function go(row) {
      var b = L.latLngBounds([row[4], row[3]], [row[6], row[5]]);
      map.fitBounds(b, {maxZoom: 18});
      if (mark) { map.removeLayer(mark); }
      mark = L.rectangle(b.pad(0.15), {color: "#00bcd4", weight: 3, fill: false, interactive: false}).addTo(map);
      var layer = geoEval.byId[row[0]];
      if (layer && layer._map) {
        layer.openPopup();
      } else {
        var el = document.createElement("div");
        var strong = document.createElement("strong");
        strong.textContent = row[0];
        el.appendChild(strong);
        if (row[1]) { var s = document.createElement("div"); s.textContent = row[1]; el.appendChild(s); }
        L.popup({maxWidth: 380}).setLatLng(b.getCenter()).setContent(el).openOn(map);
      }
      list.innerHTML = "";
    }
    function show(q) {
      list.innerHTML = "";
      hits = [];
      q = q.trim().toLowerCase();
      if (!q || !index) return;
      for (var i = 0; i < index.length && hits.length < cfg.limit; i++) {
        var r = index[i];
        if (String(r[0]).toLowerCase().indexOf(q) >= 0 || String(r[1]).toLowerCase().indexOf(q) >= 0 ||
            String(r[2]).toLowerCase().indexOf(q) >= 0) { hits.push(r); }
      }
      hits.forEach(function (r) {
        var li = L.DomUtil.create("li", "", list);
        li.textContent = r[0];
        if (r[1]) { var small = document.createElement("small"); small.textContent = r[1]; li.appendChild(small); }
        L.DomEvent.on(li, "click", function (e) {
          L.DomEvent.stop(e);  // the list is emptied: the map must not see this click (it would close the popup)
          go(r);
        });
      });
      if (!hits.length) { var none = L.DomUtil.create("li", "", list); none.textContent = cfg.empty; }
    }
    L.DomEvent.on(input, "focus", load);
    L.DomEvent.on(input, "input", function () {
      var p = load();
      if (p) { p.then(function () { show(input.value); }); } else { show(input.value); }
    });
    L.DomEvent.on(input, "keydown", function (e) {
      if (e.key === "Enter" && hits.length) {
        L.DomEvent.stop(e);
        go(hits[0]);
      }
      if (e.key === "Escape") { list.innerHTML = ""; }
    });
    return div;
  };
  box.addTo(map);
})();
{% endmacro %}
"""
        )

        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__()
            self._name = "SearchBox"
            self.config_json = _script_json(config)

    class Helpers(MacroElement):
        _template = Template("{% macro script(this, kwargs) %}" + _JS_HELPERS + "{% endmacro %}")

        def __init__(self) -> None:
            super().__init__()
            self._name = "GeoEvalHelpers"

    class MapHook(MacroElement):
        _template = Template(
            "{% macro script(this, kwargs) %}geoEval.map = {{ this._parent.get_name() }};"
            "geoEval.readyAt = performance.now();{% endmacro %}"
        )

        def __init__(self) -> None:
            super().__init__()
            self._name = "GeoEvalHook"

    return {
        "GeoJsonOverlay": GeoJsonOverlay,
        "VectorTileParcels": VectorTileParcels,
        "Legend": Legend,
        "SearchBox": SearchBox,
        "Helpers": Helpers,
        "MapHook": MapHook,
    }


def _check_tiles_url(url: str) -> None:
    names = set(re.findall(r"\{([^}]*)\}", url))
    missing = {"z", "x", "y"} - names
    unknown = names - _TILE_PLACEHOLDERS
    if missing or unknown:
        raise ValueError(
            f"矢量瓦片地址模板 {url!r} 须含 {{z}}、{{x}}、{{y}}，其余占位符（如 {{park}}）须先替换：缺 {sorted(missing)}，多 {sorted(unknown)}"
        )


def _legend_html(
    title: str,
    *,
    color_by: str,
    classes: Sequence[tuple[str, str, int | None]],
    flag_states: list[str] | None,
    blocks_shown: bool,
    parks_shown: bool,
    note: str | None,
) -> str:
    e = html.escape
    rows = [f'<div class="ge-title">{e(title)}</div>']
    rows.append(
        '<div class="ge-sub">'
        + ("分类（按宗地主要使用企业）" if color_by == "grade" else "亩均税收（万元/亩）")
        + "</div>"
    )
    for colour, label, n in classes:
        count = f'<span class="ge-n">{n}</span>' if n is not None else ""
        rows.append(f'<div><i style="background:{e(colour)}"></i>{e(label)}{count}</div>')
    lines = []
    if flag_states is not None:
        for key in flag_states or ["pending"]:
            s = FLAG_STYLES[key]
            style = "dotted" if key == "dismissed" else "dashed" if s["dashArray"] else "solid"
            label = f"疑似闲置/低效地块（{FLAG_STATUS_LABELS[key]}）" if flag_states else "疑似闲置/低效地块"
            lines.append((s["color"], style, label))
    if blocks_shown:
        lines.append((BLOCK_STYLE["color"], "dashed", "连片改造区块"))
    if parks_shown:
        lines.append((PARK_STYLE["color"], "solid", "园区边界"))
    if lines:
        rows.append('<div class="ge-sub">图层</div>')
        for colour, style, label in lines:
            rows.append(
                f'<div><i class="ge-line" style="border-color:{colour};border-top-style:{style}"></i>{e(label)}</div>'
            )
    if note:
        rows.append(f'<div class="ge-note">{e(note)}</div>')
    return "".join(rows)


def _name_column(frame: pd.DataFrame) -> str | None:
    for c in ("park", "园区", "name", "名称"):
        if c in frame.columns:
            return c
    return None


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
    tiles_url: str | None = None,
    tile_threshold: int | None = TILE_THRESHOLD,
    tiles_min_zoom: int = 11,
    search_url: str | None = None,
    title: str = "园区用地亩均效益评价图",
) -> folium.Map:
    """A Folium map of one park (or several) for the service or a standalone file.

    Parameters
    ----------
    parcels
        The ``parcels`` layer of ``parcels.gpkg`` (any CRS; drawn in EPSG:4326): ``parcel_id``,
        ``grade``, ``tax_per_mu``, ``area_mu``, ``users``, ``main_user``, ``main_user_name``,
        ``holder_uscc``, ``holder_name``, ``park``, ``block_id`` are read where present.
    flags
        The ``flags`` layer (one row per parcel and flag), optionally with the review columns
        ``status`` (``pending``, ``confirmed``, ``site_visit``, ``dismissed``) and ``comment``:
        flagged parcels form their own layer, outlined by review state, and popups list the flags.
    blocks
        ``renewal_blocks.gpkg``: its 连片改造区块 that contain a parcel of ``parcels`` (by
        ``parcel_ids``) are outlined in their own layer.
    parks
        Park outlines (a ``park``/``园区``/``name`` column names them), drawn on every basemap.
    enterprises
        ``enterprises.csv`` (``uscc``, ``name``) to name every user of a parcel.
    color_by
        ``"grade"`` (A/B/C/D/T/无) or ``"tax_per_mu"`` (classes of ``tax_bins``, 万元/亩).
    basemap
        ``"none"`` (default: plain background), ``"tianditu"`` (needs ``tianditu_key``; CGCS2000
        tiles, our layers drawn unshifted) or ``"gaode"`` (GCJ-02: every layer is shifted by
        :func:`geo_eval.gcj02.shift_to_gcj02`; a ``tiles_url`` must then serve
        ``tile_source(..., basemap="gaode")``).
    asset_base
        URL path where ``api/static/vendor/`` is served; every script and style is loaded from it.
    tiles_url, tile_threshold, tiles_min_zoom
        Above ``tile_threshold`` parcels (``None``: never) the parcels and flags are drawn from the
        vector tiles at ``tiles_url`` (a template with ``{z}``, ``{x}``, ``{y}``, e.g.
        ``/api/tiles/海滨高新技术产业园/{z}/{x}/{y}.pbf``), from zoom ``tiles_min_zoom`` on.
    search_url
        Large parks only: URL of :func:`search_index` as JSON, loaded when the search box is first
        used (otherwise the index is embedded in the page).
    title
        Page title and legend heading.
    """
    import folium

    if color_by not in ("grade", "tax_per_mu"):
        raise ValueError(f"color_by 须为 'grade' 或 'tax_per_mu'：{color_by!r}")
    if basemap not in BASEMAPS:
        raise ValueError(f"basemap 须为 {', '.join(BASEMAPS)} 之一：{basemap!r}")
    if basemap == "tianditu" and not (tianditu_key and _TIANDITU_KEY.match(tianditu_key)):
        raise ValueError("天地图底图需要有效的密钥 tianditu_key（16–64 位字母数字）")
    taxc = _tax_colours(tax_bins)
    use_tiles = tile_threshold is not None and len(parcels) > tile_threshold
    if use_tiles:
        if not tiles_url:
            raise ValueError(
                f"地块数 {len(parcels)} 超过 {tile_threshold}，须给出矢量瓦片地址 tiles_url（或设 tile_threshold=None 内嵌全部地块）"
            )
        _check_tiles_url(tiles_url)
    if search_url is not None and re.match(r"^(https?:)?//", search_url):
        raise ValueError("search_url 须为本服务的路径（如 /api/maps/…/search.json），不能指向外部主机")

    C = _element_classes()
    gcj = basemap == "gaode"
    shown = _to_display(parcels, gcj02=gcj)
    flag_frame = None if flags is None else pd.DataFrame(flags)
    attrs = parcel_attributes(parcels, flags=flag_frame, enterprises=enterprises)
    ids = _parcel_ids(shown)
    a = attrs.reindex(ids)

    # view: the parks and parcels together
    frames = [shown.geometry]
    parks_shown = None if parks is None or not len(parks) else _to_display(parks, gcj02=gcj)
    if parks_shown is not None:
        frames.append(parks_shown.geometry)
    bounds = pd.concat(frames).total_bounds if len(shown) or parks_shown is not None else None

    from branca.element import Element, Figure

    fig = Figure(title=html.escape(title))
    m = folium.Map(tiles=None, location=[34.6, 119.2], zoom_start=12, control_scale=True, prefer_canvas=False)
    fig.add_child(m)
    fig.header.add_child(Element(f"<style>{_CSS}</style>"), name="geo_eval_css")
    m.add_child(C["Helpers"]())

    # basemaps
    if basemap == "tianditu":
        for layer, name in (("vec", "天地图 矢量"), ("img", "天地图 影像")):
            folium.TileLayer(
                tiles=_TIANDITU_URL.format(layer=layer, key=tianditu_key, s="{s}", x="{x}", y="{y}", z="{z}"),
                attr="© 天地图（国家地理信息公共服务平台）",
                name=name,
                subdomains="01234567",
                max_zoom=18,
                overlay=False,
                show=layer == "vec",
            ).add_to(m)
        folium.TileLayer(
            tiles=_TIANDITU_URL.format(layer="cva", key=tianditu_key, s="{s}", x="{x}", y="{y}", z="{z}"),
            attr="© 天地图",
            name="天地图 注记",
            subdomains="01234567",
            max_zoom=18,
            overlay=True,
        ).add_to(m)
    elif basemap == "gaode":
        folium.TileLayer(
            tiles=_GAODE_URL,
            attr="© 高德地图（GCJ-02；本图各图层已按 GCJ-02 偏移）",
            name="高德地图",
            subdomains="1234",
            max_zoom=18,
            overlay=False,
        ).add_to(m)

    # parcels
    grade_keys = list(GRADE_COLOURS)
    note = None
    classes: list[tuple[str, str, int | None]]
    if color_by == "grade":
        counts = a["grade"].value_counts()
        extra = sorted(set(counts.index) - set(grade_keys))
        classes = [(GRADE_COLOURS[g], GRADE_LEGEND[g], int(counts.get(g, 0))) for g in grade_keys]
        classes += [(OTHER_GRADE_COLOUR, g, int(counts[g])) for g in extra]
    else:
        cls = _tax_class(a["tax_per_mu"].to_numpy(dtype=float), tax_bins)
        n = np.bincount(cls + 1, minlength=len(taxc) + 1)
        classes = [
            (c, label, int(n[i + 1])) for i, (c, label) in enumerate(zip(taxc, _tax_labels(tax_bins), strict=True))
        ]
        classes.append((NO_DATA_COLOUR, "无数据", int(n[0])))

    flagged = a["n_flags"].to_numpy() > 0
    layer_flags = flag_frame is not None
    present = set(a["review"])
    flag_states = (
        [k for k in FLAG_STATUS_LABELS if k in present]
        if flag_frame is not None and "status" in flag_frame.columns
        else []
    )
    if use_tiles:
        assert tiles_url is not None
        config = {
            "url": tiles_url,
            "minZoom": int(tiles_min_zoom),
            "detailZoom": TILE_DETAIL_ZOOM,
            "lightNote": f"放大到 {TILE_DETAIL_ZOOM} 级及以上，点击地块可查看完整信息。",
            "colorBy": color_by,
            "bins": [float(b) for b in tax_bins],
            "taxColours": taxc,
            "noData": NO_DATA_COLOUR,
            "gradeColours": GRADE_COLOURS,
            "otherColour": OTHER_GRADE_COLOUR,
            "grades": GRADE_LEGEND,
            "fields": _fields_js(POPUP_FIELDS),
            "flagStyles": FLAG_STYLES,
        }
        C["VectorTileParcels"]("地块", {**config, "key": "parcels", "mode": "parcels"}, asset_base).add_to(m)
        if layer_flags:
            C["VectorTileParcels"]("疑似闲置/低效地块", {**config, "key": "flags", "mode": "flags"}, asset_base).add_to(
                m
            )
        note = f"地块以矢量瓦片显示：放大到 {tiles_min_zoom} 级及以上可见。"
    else:
        geoms = np.asarray(shown.geometry.array, dtype=object)
        if color_by == "grade":
            keys = grade_keys + [g for g in sorted(set(a["grade"])) if g not in GRADE_COLOURS]
            fills = {g: GRADE_COLOURS.get(g, OTHER_GRADE_COLOUR) for g in keys}
            style_of = {g: i for i, g in enumerate(keys)}
            skey = [style_of[g] for g in a["grade"]]
            styles = [fills[g] for g in keys]
        else:
            cls = _tax_class(a["tax_per_mu"].to_numpy(dtype=float), tax_bins)
            skey = [int(c) + 1 for c in cls]
            styles = [NO_DATA_COLOUR, *taxc]
        style_list = [
            {"color": "#555", "weight": 0.6, "fillColor": c, "fillOpacity": 0.75, "opacity": 0.9} for c in styles
        ]
        records = a.to_dict("records")
        props = [
            {"id": r["parcel_id"], "s": s, "v": _popup_cells(r), "t": _tooltip_html(r)}
            for r, s in zip(records, skey, strict=True)
        ]
        C["GeoJsonOverlay"](
            "地块",
            "parcels",
            _feature_collection(geoms, props),
            style_list,
            len(props),
            fields=POPUP_FIELDS,
            register=True,
        ).add_to(m)
        if layer_flags:
            order = {s: i for i, s in enumerate(FLAG_STYLES)}
            fstyles = [{**FLAG_STYLES[s], "fill": True, "fillOpacity": 0} for s in FLAG_STYLES]
            fprops = [
                {"id": r["parcel_id"], "s": order[r["review"] or "pending"]}
                for r, f in zip(records, flagged, strict=True)
                if f
            ]
            C["GeoJsonOverlay"](
                "疑似闲置/低效地块",
                "flags",
                _feature_collection(geoms[flagged], fprops),
                fstyles,
                len(fprops),
                fields=POPUP_FIELDS,
                delegate=True,
            ).add_to(m)

    # renewal blocks
    blocks_shown = False
    if blocks is not None and len(blocks):
        b = blocks.loc[blocks["kind"] == "连片改造区块"] if "kind" in blocks.columns else blocks
        if "parcel_ids" in b.columns:  # only the blocks of the parcels on this map
            shown_ids = set(ids)
            b = b.loc[[bool(shown_ids.intersection(_split(v))) for v in b["parcel_ids"]]]
        if len(b):
            bd = _to_display(b, gcj02=gcj)
            brecords = pd.DataFrame(bd.drop(columns=bd.geometry.name)).to_dict("records")
            bprops = [
                {
                    "s": 0,
                    "v": _popup_cells(r, BLOCK_FIELDS),
                    "t": html.escape(f"连片改造区块 {_text(r.get('block_id'))} · {_fmt(r.get('area_mu'), 'num2')} 亩"),
                }
                for r in brecords
            ]
            C["GeoJsonOverlay"](
                "连片改造区块",
                "blocks",
                _feature_collection(np.asarray(bd.geometry.array, dtype=object), bprops),
                [BLOCK_STYLE],
                len(bprops),
                fields=BLOCK_FIELDS,
            ).add_to(m)
            blocks_shown = True

    # park outlines
    if parks_shown is not None:
        name_col = _name_column(parks_shown)
        pprops = [
            {"s": 0, "t": html.escape(_text(r)) if name_col else ""}
            for r in (parks_shown[name_col] if name_col else [""] * len(parks_shown))
        ]
        C["GeoJsonOverlay"](
            "园区边界",
            "parks",
            _feature_collection(np.asarray(parks_shown.geometry.array, dtype=object), pprops),
            [PARK_STYLE],
            len(pprops),
            interactive=False,
        ).add_to(m)

    # search, legend, layer control, view
    index = None if (use_tiles and search_url) else search_index(shown, attributes=a, basemap="none")
    C["SearchBox"](
        {
            "index": index,
            "url": search_url if use_tiles else None,
            "placeholder": "搜索企业名称、统一社会信用代码或宗地代码",
            "empty": "没有找到",
            "limit": 12,
        }
    ).add_to(m)
    C["Legend"](
        _legend_html(
            title,
            color_by=color_by,
            classes=classes,
            flag_states=None if not layer_flags else flag_states,
            blocks_shown=blocks_shown,
            parks_shown=parks_shown is not None,
            note=note,
        )
    ).add_to(m)
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    m.add_child(C["MapHook"]())
    if bounds is not None and np.all(np.isfinite(bounds)):
        west, south, east, north = (float(v) for v in bounds)
        m.fit_bounds([[south, west], [north, east]])
    return localize_assets(m, asset_base)


def park_map_html(parcels: gpd.GeoDataFrame, **options: Any) -> str:
    """:func:`park_map` rendered by :func:`to_html`: the page the service returns for ``/maps/{park}``."""
    m = park_map(parcels, **options)
    return to_html(m, asset_base=options.get("asset_base", "/static/vendor"))
