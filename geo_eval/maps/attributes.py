"""What a map shows of each parcel, flag and block, as plain data (shared by pages, tiles and the service).

- :func:`parcel_attributes`: the popup figures of each parcel (plain text, NOT escaped);
- :func:`popup_cells`: those figures escaped for HTML, one string per popup row;
- :func:`flag_index`: one row per flag for the review list (kind, Chinese rule name, short reason,
  severity, area, holder, where to zoom);
- :func:`search_index` (:func:`search_table`, :func:`search_columns`), :func:`tile_source`, :func:`tile_properties`: the search box and vector tiles;
- :func:`to_display`: any layer in the map's coordinates (EPSG:4326, or GCJ-02 for a 高德 basemap).

None of these carries a review state: geometry and figures of a run never change, review states travel
separately (``GET /api/maps/{park}/reviews.json``) and are applied in the browser.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo_eval.landuse.flags import rule_label, short_reasons
from geo_eval.maps.gcj02 import shift_to_gcj02
from geo_eval.maps.styles import (
    FLAG_STATUS_LABELS,
    GRADE_LEGEND,
    NO_GRADE,
    STATUS_ORDER,
    change_key,
    grade_mix_words,
)
from geo_eval.report.labels import header

Basemap = Literal["none", "tianditu", "gaode"]
BASEMAPS: tuple[str, ...] = ("none", "tianditu", "gaode")

PopupField = tuple[str, str, str, bool]


def _popups(table: str, *rows: tuple[str, str, bool]) -> tuple[PopupField, ...]:
    """Popup rows of columns of ``table``: (column, its Chinese label (:mod:`geo_eval.report.labels`), format,
    omitted when empty) for each (column, format, omitted when empty) of ``rows``."""
    return tuple((column, header(column, table), fmt, optional) for column, fmt, optional in rows)


POPUP_FIELDS: tuple[PopupField, ...] = _popups(
    "parcels",
    ("parcel_id", "text", False),
    ("park", "text", False),
    ("area_mu", "num2", False),
    ("holder", "text", True),
    ("users", "lines", False),
    ("grade", "grade", False),
    ("prev_grade", "grade", True),
    ("tax_per_mu", "num2", False),
    ("block_id", "text", True),
)
"""Rows of a parcel's popup: (column of :func:`parcel_attributes`, Chinese label, format, omitted
when empty). Formats: ``text``; ``num2`` (two decimals); ``grade`` (with its class name);
``lines`` (one line per user). The flags are listed below the table by the page, with their review state."""
BLOCK_FIELDS: tuple[PopupField, ...] = _popups(
    "blocks",
    ("block_id", "text", False),
    ("n_parcels", "text", False),
    ("area_mu", "num2", False),
    ("n_enterprises", "text", False),
    ("enterprise_names", "lines", True),
    ("tax_per_mu", "num2", True),
    ("grade_mix", "text", True),
)
"""Rows of a renewal block's popup (columns of ``renewal_blocks.gpkg``; ``grade_mix`` in words)."""

TILE_DETAIL_ZOOM = 14
"""From this zoom on, vector tiles carry every popup figure; below it only what styles a parcel."""
TILE_STYLE_PROPERTIES: tuple[str, ...] = ("parcel_id", "park", "grade", "tax_per_mu", "n_flags")
"""What styles a parcel, and its park (a tile of several parks is cut down to a map's parks by it)."""
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
)
"""Columns of :func:`tile_source`: the popup figures and what styles a parcel (no review state)."""


# ---------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------


def text(v: object) -> str:
    """A cell as display text; missing → ``""``.

    >>> text(None), text(float("nan")), text(" a ")
    ('', '', 'a')
    """
    if v is None or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, float) and math.isnan(v):
        return ""
    return str(v).strip()


def texts(values: pd.Series) -> pd.Series:
    """``values.map(text)`` (objects), at a fraction of the time when every value is a str already.

    >>> texts(pd.Series([" a", "b "])).tolist(), texts(pd.Series(["a", None, float("nan")])).tolist()
    (['a', 'b'], ['a', '', ''])
    """
    if isinstance(values.dtype, pd.StringDtype):  # Arrow-backed strings: stripped by Arrow, not one by one
        stripped = values.str.strip().fillna("").to_numpy(dtype=object)
        return pd.Series(stripped, index=values.index, name=values.name, dtype=object)
    plain = values.astype(object)
    missing = plain.isna()
    if pd.api.types.infer_dtype(plain[~missing], skipna=False) not in ("string", "empty"):
        return plain.map(text)
    out = plain.str.strip().astype(object)  # str.strip of each, as text() does
    return out.where(~missing, "") if missing.any() else out


def _split(v: object) -> list[str]:
    return [s.strip() for s in text(v).split(";") if s.strip()]


def fmt(v: object, kind: str) -> str:
    """A figure as shown in a popup: ``num2`` two decimals with thousands separators, ``grade`` with its name.

    >>> fmt(1234.5, "num2"), fmt("B", "grade"), fmt("a;b", "lines")
    ('1,234.50', 'B 鼓励提升类', 'a\\nb')
    """
    if kind == "num2":
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return ""
        return "" if math.isnan(x) else f"{x:,.2f}"
    if kind == "grade":
        g = text(v)
        return GRADE_LEGEND.get(g, g)
    if kind == "lines":
        return "\n".join(part.strip() for part in re.split(r"[;\n]", text(v)) if part.strip())
    return text(v)


def popup_cells(row: Mapping[Any, Any], fields: Sequence[PopupField] = POPUP_FIELDS) -> list[str]:
    """The popup of one feature as escaped text per field (``""`` when missing, lines split by ``\\n``).

    The browser puts these into the table markup without escaping them again.

    >>> popup_cells({"parcel_id": "P1", "users": "<i>甲</i>（9132…）\\n乙"}, POPUP_FIELDS[:1] + POPUP_FIELDS[4:5])
    ['P1', '&lt;i&gt;甲&lt;/i&gt;（9132…）\\n乙']
    """
    return [html.escape(fmt(row.get(key), kind)) for key, _, kind, _ in fields]


def fields_config(fields: Sequence[PopupField]) -> list[list[object]]:
    """The field list handed to the page: ``[key, label, format, optional]``."""
    return [[key, label, kind, optional] for key, label, kind, optional in fields]


def tooltip_text(row: Mapping[Any, Any]) -> str:
    """The hover text of a parcel (plain text: the page sets it as text).

    >>> tooltip_text({"parcel_id": "P1", "main_name": "甲", "grade": "A", "n_flags": 2})
    'P1 · 甲 · A 优先发展类 · 标记 2 项'
    """
    parts = [text(row.get("parcel_id")), text(row.get("main_name")), fmt(row.get("grade"), "grade")]
    if row.get("n_flags"):
        parts.append(f"标记 {row['n_flags']} 项")
    return " · ".join(p for p in parts if p)


# ---------------------------------------------------------------------------------------------
# Parcels
# ---------------------------------------------------------------------------------------------


def parcel_ids(frame: pd.DataFrame) -> pd.Index:
    """The parcel codes of a frame (its ``parcel_id`` column, else its index), as text."""
    if "parcel_id" in frame.columns:
        return pd.Index(texts(frame["parcel_id"]), name="parcel_id")
    return pd.Index(texts(frame.index.to_series()), name="parcel_id")


def _name_lookup(parcels: pd.DataFrame, flags: pd.DataFrame | None, enterprises: pd.DataFrame | None) -> dict[str, str]:
    """USCC → enterprise name, from the enterprises table, else the names the layers carry."""
    names: dict[str, str] = {}

    def add(codes: Iterable[object], labels: Iterable[object]) -> None:
        for c, n in zip(codes, labels, strict=False):
            c, n = text(c), text(n)
            if c and n and c not in names:
                names[c] = n

    def add_columns(codes: pd.Series, labels: pd.Series) -> None:  # add() of whole columns
        c, n = texts(codes).to_numpy(dtype=object), texts(labels).to_numpy(dtype=object)
        both = (c != "") & (n != "")
        names.update(
            reversed([(a, b) for a, b in zip(c[both].tolist(), n[both].tolist(), strict=True) if a not in names])
        )

    if enterprises is not None:
        codes = enterprises["uscc"] if "uscc" in enterprises.columns else enterprises.index.to_series()
        if "name" in enterprises.columns:
            add_columns(codes, enterprises["name"])
    for code_col, name_col in (("main_user", "main_user_name"), ("holder_uscc", "holder_name")):
        if code_col in parcels.columns and name_col in parcels.columns:
            add_columns(parcels[code_col], parcels[name_col])
    if flags is not None and {"enterprises", "enterprise_names"} <= set(flags.columns):
        pairs = flags[["enterprises", "enterprise_names"]].drop_duplicates()
        for codes, labels in zip(pairs["enterprises"], pairs["enterprise_names"], strict=True):
            a, b = _split(codes), _split(labels)
            if len(a) == len(b):
                add(a, b)
    return names


def _status_key(v: object) -> str:
    s = text(v).lower()
    return s if s in FLAG_STATUS_LABELS else "pending"


def _mentioned(enterprises: pd.DataFrame, parcels: pd.DataFrame) -> pd.DataFrame:
    """The enterprises the parcels name (main user, users, holder): a park's map reads a few thousand rows
    of a province's enterprises instead of every one.

    >>> e = pd.DataFrame({"uscc": ["A", "B", "C"], "name": ["甲", "乙", "丙"]})
    >>> _mentioned(e, pd.DataFrame({"main_user": ["A"], "users": ["A;C"]}))["uscc"].tolist()
    ['A', 'C']
    """
    if "uscc" not in enterprises.columns:
        return enterprises
    codes: set[str] = set()
    for col in ("main_user", "holder_uscc"):
        if col in parcels.columns:
            codes.update(text(v) for v in pd.unique(parcels[col].dropna()))
    if "users" in parcels.columns:
        for users in pd.unique(parcels["users"].dropna()):
            codes.update(_split(users))
    usccs = pa.array(texts(enterprises["uscc"]).to_numpy(dtype=object), pa.string())
    named = pc.is_in(usccs, value_set=pa.array(sorted(codes), pa.string()))  # Arrow's hash set: 0.1 s at 600k
    return enterprises.loc[np.asarray(named.to_numpy(zero_copy_only=False), dtype=bool)]


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without its geometry, texts as Python objects (read one by one below, which is several
    times faster from an object column than from pandas' Arrow-backed string columns)."""
    plain = pd.DataFrame(frame.drop(columns=getattr(frame, "_geometry_column_name", None) or [], errors="ignore"))
    texts = {c: object for c, t in plain.dtypes.items() if isinstance(t, pd.StringDtype)}
    return plain.astype(texts) if texts else plain


def _users(p: pd.DataFrame, names: dict[str, str]) -> tuple[list[str], list[str], list[str], list[str]]:
    """Per parcel: users one ``名称（代码）`` per line (main user first), their names, codes, the main name."""
    lines, user_names, codes_out, main_names = [], [], [], []
    mains = texts(p["main_user"] if "main_user" in p.columns else pd.Series("", index=p.index))
    users = p["users"] if "users" in p.columns else pd.Series("", index=p.index)
    for u, main in zip(users, mains, strict=True):
        codes = _split(u) or ([main] if main else [])
        if main in codes:  # main user first
            codes = [main] + [c for c in codes if c != main]
        lines.append("\n".join(f"{names[c]}（{c}）" if c in names else c for c in codes))
        user_names.append("；".join(names.get(c, "") for c in codes if names.get(c)))
        codes_out.append(" ".join(codes))
        main_names.append(names.get(main, main))
    return lines, user_names, codes_out, main_names


def _flag_lines(out: pd.DataFrame, flags: pd.DataFrame) -> None:
    """Fill ``flags``, ``n_flags`` and ``review`` of ``out`` from the flags of its parcels."""
    f = pd.DataFrame(flags)
    reviewed = "status" in f.columns
    f = f.assign(
        _pid=texts(f["parcel_id"]),
        _status=f["status"].map(_status_key) if reviewed else "pending",
    )
    f = f.loc[f["_pid"].isin(out.index).to_numpy(dtype=bool)]
    labels = f["flag_label"] if "flag_label" in f.columns else f.get("flag", pd.Series("", index=f.index))
    reasons = f["reason"] if "reason" in f.columns else pd.Series("", index=f.index)
    comments = f["comment"] if "comment" in f.columns else pd.Series("", index=f.index)
    lines: dict[str, list[str]] = {}
    states: dict[str, set[str]] = {}
    for pid, label, reason, status, comment in zip(
        f["_pid"], texts(labels), texts(reasons), f["_status"], texts(comments), strict=True
    ):
        line = f"{label}：{reason}" if reason else label
        if reviewed:
            line += f"（{FLAG_STATUS_LABELS[status]}{'：' + comment if comment else ''}）"
        lines.setdefault(pid, []).append(line)
        states.setdefault(pid, set()).add(status)
    idx = list(lines)
    at = out.index.get_indexer(pd.Index(idx, dtype=object))  # by position: .loc with 400k labels took seconds
    for column, values in (
        ("flags", ["\n".join(lines[i]) for i in idx]),
        ("n_flags", [len(lines[i]) for i in idx]),
        ("review", [next(s for s in STATUS_ORDER if s in states[i]) for i in idx]),
    ):
        filled = out[column].to_numpy(dtype=object).copy()
        filled[at] = values
        out[column] = filled if column != "n_flags" else filled.astype(np.int64)


def _prepared(
    parcels: pd.DataFrame, enterprises: pd.DataFrame | None
) -> tuple[pd.Index, pd.DataFrame, pd.DataFrame | None]:
    """The parcel codes (refused when repeated), the parcels as plain rows indexed by them, and the
    enterprises they name."""
    ids = parcel_ids(parcels)
    if ids.has_duplicates:
        dup = sorted(set(ids[ids.duplicated()]))[:5]
        raise ValueError(f"宗地代码重复，无法制图：{'、'.join(dup)}")
    p = _plain(parcels)
    p.index = ids
    return ids, p, None if enterprises is None else _plain(_mentioned(enterprises, p))


LEGEND_COLUMNS = ("grade", "prev_grade", "change", "tax_per_mu")
"""The columns of :func:`parcel_attributes` a map's legends count (:func:`legend_attributes`)."""


def search_columns(
    parcels: pd.DataFrame, flags: pd.DataFrame | None = None, enterprises: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``names`` and ``usccs`` of :func:`parcel_attributes` (the same values), without its other columns."""
    ids, p, enterprises = _prepared(parcels, enterprises)
    _, names, codes, _ = _users(p, _name_lookup(p, flags, enterprises))
    return pd.DataFrame({"names": names, "usccs": codes}, index=ids)


def legend_attributes(parcels: pd.DataFrame, *, enterprises: pd.DataFrame | None = None) -> pd.DataFrame:
    """The columns of :func:`parcel_attributes` that a map's legends count (:data:`LEGEND_COLUMNS`), indexed
    by parcel code, the same values: all a tiled map's page needs (its popups come with the tiles), at a
    fraction of the time (the users' names and the flags' lines are not written), column by column (a
    province's million parcels in about a second instead of 13)."""
    ids = parcel_ids(parcels)
    if ids.has_duplicates:
        dup = sorted(set(ids[ids.duplicated()]))[:5]
        raise ValueError(f"宗地代码重复，无法制图：{'、'.join(dup)}")
    grades = _stripped(parcels, "grade")
    out = pd.DataFrame(index=ids)
    out["grade"] = grades.where(grades != "", NO_GRADE).to_numpy(dtype=object)
    out["prev_grade"], out["change"] = _changes_by_column(_stripped(parcels, "main_user"), enterprises)
    tax = parcels["tax_per_mu"] if "tax_per_mu" in parcels.columns else pd.Series(np.nan, index=parcels.index)
    out["tax_per_mu"] = pd.to_numeric(tax, errors="coerce").to_numpy(dtype=float)
    return out


def _stripped(frame: pd.DataFrame, column: str) -> pd.Series:
    """:func:`texts` of a column (missing column: every value ``""``) as pandas' Arrow strings, made at once."""
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype="str")
    values = frame[column]
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
        return texts(values).astype("str")
    if values.dtype == object and pd.api.types.infer_dtype(values.dropna(), skipna=False) not in ("string", "empty"):
        return texts(values).astype("str")
    return values.astype("str").str.strip().fillna("")


def _changes_by_column(mains: pd.Series, enterprises: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Per parcel (its main user's code in ``mains``): that enterprise's class last year and its 分类变化 key
    (:func:`~geo_eval.maps.styles.change_key`; ``none`` without a comparison), joined with Arrow's hash
    kernels instead of a Python loop per row."""
    n = len(mains)
    if enterprises is None or "grade_change" not in enterprises.columns or "uscc" not in enterprises.columns:
        return np.full(n, "", dtype=object), np.full(n, "none", dtype=object)
    main_codes = pa.array(mains.to_numpy(dtype=object), pa.string())
    codes = pa.array(_stripped(enterprises, "uscc").to_numpy(dtype=object), pa.string())
    named = enterprises.loc[pc.is_in(codes, value_set=pc.unique(main_codes)).to_numpy(zero_copy_only=False)]
    e = named.drop_duplicates("uscc")
    changes = _stripped(e, "grade_change")
    keys = changes.map({c: change_key(c, None, None) for c in pd.unique(changes)}).to_numpy(dtype=object)
    prev = _stripped(e, "prev_grade").to_numpy(dtype=object)
    at = pc.index_in(main_codes, value_set=pa.array(_stripped(e, "uscc").to_numpy(dtype=object), pa.string()))
    at = np.asarray(at.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    found = (at >= 0) & (mains.to_numpy(dtype=object) != "")
    prev_out = np.append(prev, "").astype(object)[at]
    key_out = np.where(found, np.append(keys, "none").astype(object)[at], "none").astype(object)
    return prev_out, key_out


def parcel_attributes(
    parcels: pd.DataFrame,
    *,
    flags: pd.DataFrame | None = None,
    enterprises: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The plain-text figures a map shows for each parcel, indexed by parcel code.

    Columns: ``parcel_id``, ``park``, ``area_mu``, ``holder`` (权利人), ``holder_name``, ``users`` (使用企业,
    one ``名称（USCC）`` per line), ``names`` and ``usccs`` (for search), ``main_name``, ``grade`` (``无``
    when the parcel has no graded user), ``tax_per_mu``, ``block_id``, ``flags`` (one ``标记：原因`` per
    line, with ``（复核状态：意见）`` when ``flags`` has a ``status`` column), ``n_flags`` and ``review``
    (the most urgent review state of its flags, :data:`~geo_eval.maps.styles.STATUS_ORDER`; ``""`` if none),
    ``prev_grade`` and ``change`` (its main user's class last year and the 分类变化 key of
    :func:`~geo_eval.maps.styles.change_key`, when ``enterprises`` has ``grade_change``).

    ``parcels`` is the ``parcels`` layer of ``parcels.gpkg`` (or the evaluation's parcel frame);
    ``flags`` its ``flags`` layer, optionally with review columns ``status`` and ``comment``;
    ``enterprises`` names every user (else the names in the layers are used). Values are NOT escaped.
    """
    ids, p, enterprises = _prepared(parcels, enterprises)
    names = _name_lookup(p, flags, enterprises)

    def col(name: str) -> pd.Series:
        return p[name] if name in p.columns else pd.Series(pd.NA, index=p.index, dtype="object")

    out = pd.DataFrame(index=ids)
    out["parcel_id"] = ids.to_numpy()
    out["park"] = col("park").map(text).to_numpy()
    out["area_mu"] = pd.to_numeric(col("area_mu"), errors="coerce").to_numpy(dtype=float)
    holder_codes, holder_names = col("holder_uscc").map(text), col("holder_name").map(text)
    out["holder"] = [
        f"{name}（{code}）" if name and code else name or code
        for code, name in zip(holder_codes, holder_names, strict=True)
    ]
    out["holder_name"] = [name or names.get(code, code) for code, name in zip(holder_codes, holder_names, strict=True)]
    for column, values in zip(("users", "names", "usccs", "main_name"), _users(p, names), strict=True):
        out[column] = pd.array(values, dtype=object)  # as objects: pandas' str would copy a million texts
    legend = legend_attributes(p.reset_index(drop=True).assign(parcel_id=ids), enterprises=enterprises)
    for c in LEGEND_COLUMNS:
        out[c] = legend[c].to_numpy()
    out["block_id"] = col("block_id").map(text).to_numpy()
    out["flags"] = ""
    out["n_flags"] = 0
    out["review"] = ""
    if flags is not None and len(flags):
        _flag_lines(out, flags)
    return out


# ---------------------------------------------------------------------------------------------
# Geometry in the map's coordinates
# ---------------------------------------------------------------------------------------------


def to_display(gdf: gpd.GeoDataFrame, *, gcj02: bool) -> gpd.GeoDataFrame:
    """``gdf`` in EPSG:4326 (CGCS2000 taken as WGS-84), without empty rows, shifted to GCJ-02 when asked."""
    if gdf.crs is None:
        raise ValueError("图层没有坐标系（CRS），无法制图；请先 set_crs")
    epsg = gdf.crs.to_epsg()
    out = gdf if epsg in (4326, 4490) else gdf.to_crs(4326)
    if epsg == 4490:
        out = out.set_crs(4326, allow_override=True)
    out = out.loc[out.geometry.notna() & ~out.geometry.is_empty]
    return shift_to_gcj02(out) if gcj02 else out


def round_geoms(geoms: np.ndarray, digits: int = 6) -> np.ndarray:
    """Coordinates rounded to ``digits`` decimals (6: about 0.1 m)."""
    return shapely.transform(geoms, lambda c: np.round(c, digits))


def _bounds(geoms: np.ndarray) -> np.ndarray:
    return np.round(shapely.bounds(geoms), 6)


# ---------------------------------------------------------------------------------------------
# Flags for the review list, search index, tile source
# ---------------------------------------------------------------------------------------------

FLAG_INDEX_COLUMNS: tuple[str, ...] = (
    "flag_id",
    "parcel_id",
    "flag",
    "rule",
    "reason",
    "severity",
    "area_mu",
    "holder",
    "park",
    "lon",
    "lat",
    "west",
    "south",
    "east",
    "north",
)
"""The columns of a :func:`flag_index` row (``rule``: the Chinese rule name; ``reason``: short)."""


def flag_index(flags: pd.DataFrame, shown: gpd.GeoDataFrame, attributes: pd.DataFrame) -> list[list[object]]:
    """One row per flag of the parcels in ``shown``: :data:`FLAG_INDEX_COLUMNS`, in the flags' order.

    ``shown`` is the parcel layer in the map's coordinates (:func:`to_display`); ``lon``/``lat`` is a
    point inside the parcel (where its popup opens), ``west`` … ``north`` its box (where to zoom);
    ``holder`` the name of the 权利人, else of the main user.
    """
    ids = parcel_ids(shown)
    geoms = np.asarray(shown.geometry.array, dtype=object)
    where = dict(zip(ids, range(len(ids)), strict=True))
    f = _plain(flags)
    pids = f["parcel_id"].map(text)
    f = f.loc[pids.isin(where).to_numpy(dtype=bool)]
    pids = pids.loc[f.index]
    pos = np.fromiter((where[p] for p in pids), dtype=np.int64, count=len(pids))
    inside = shapely.point_on_surface(geoms[pos]) if len(pos) else np.empty(0, dtype=object)
    xy = np.round(shapely.get_coordinates(inside), 6) if len(pos) else np.empty((0, 2))
    box = _bounds(geoms[pos]) if len(pos) else np.empty((0, 4))
    a = attributes.reindex(pids)
    holder = [h or m for h, m in zip(a["holder_name"].map(text), a["main_name"].map(text), strict=True)]
    rules = f["rule_id"].map(lambda r: rule_label(text(r))) if "rule_id" in f.columns else f["flag"].map(text)
    reasons = short_reasons(f) if len(f) else pd.Series([], dtype=object)
    area = a["area_mu"].to_numpy(dtype=float)
    rows = []
    for i, (fid, pid, kind, rule, reason, sev) in enumerate(
        zip(
            f["flag_id"].map(text),
            pids,
            f["flag"].map(text),
            rules,
            reasons.map(text),
            f["severity"].map(text),
            strict=True,
        )
    ):
        mu = None if math.isnan(area[i]) else round(float(area[i]), 2)
        rows.append(
            [
                fid,
                pid,
                kind,
                rule,
                reason,
                sev,
                mu,
                holder[i],
                text(a["park"].iloc[i]),
                *map(float, xy[i]),
                *map(float, box[i]),
            ]
        )
    return rows


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
    """
    t = search_table(parcels, flags=flags, enterprises=enterprises, basemap=basemap, attributes=attributes)
    return [list(row) for row in zip(*(t[c].tolist() for c in t.columns), strict=True)]


def search_table(
    parcels: gpd.GeoDataFrame,
    *,
    flags: pd.DataFrame | None = None,
    enterprises: pd.DataFrame | None = None,
    basemap: Basemap = "none",
    attributes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The rows of :func:`search_index` as columns (``parcel_id``, ``names``, ``usccs``, ``west``, ``south``,
    ``east``, ``north``), indexed by the labels of their ``parcels`` rows (a parcel without a geometry has
    none), so that an index of the whole run can be cut to any set of parks. ``attributes``: the frame of
    :func:`search_columns` (or :func:`parcel_attributes`) when already made."""
    attrs = attributes if attributes is not None else search_columns(parcels, flags, enterprises)
    shown = to_display(parcels, gcj02=basemap == "gaode")
    ids = parcel_ids(shown)
    bounds = _bounds(np.asarray(shown.geometry.array, dtype=object)).reshape(-1, 4)
    a = attrs.reindex(ids)
    columns = {"parcel_id": ids.to_numpy(), "names": texts(a["names"]), "usccs": texts(a["usccs"])}
    out = pd.DataFrame({k: np.asarray(v, dtype=object) for k, v in columns.items()}, index=shown.index)
    for i, side in enumerate(("west", "south", "east", "north")):
        out[side] = bounds[:, i]
    return out


def tile_source(
    parcels: gpd.GeoDataFrame,
    *,
    flags: pd.DataFrame | None = None,
    enterprises: pd.DataFrame | None = None,
    basemap: Basemap = "none",
) -> gpd.GeoDataFrame:
    """The parcels as :func:`geo_eval.maps.tiles.mvt_tile` should encode them for a large-park map.

    EPSG:4326 (GCJ-02-shifted for ``basemap="gaode"``), indexed by parcel code, with the popup
    columns of :func:`parcel_attributes` (:data:`TILE_PROPERTIES`, and ``holder_name``, ``prev_grade`` and
    ``change`` for the review list, the popup and the 分类变化 colouring). Build it once per run, park and
    basemap: every tile request then only queries its spatial index. Review states are not in it.
    """
    plain_flags = None if flags is None else _plain(flags).drop(columns=["status", "comment"], errors="ignore")
    attrs = parcel_attributes(parcels, flags=plain_flags, enterprises=enterprises)
    shown = to_display(parcels, gcj02=basemap == "gaode")
    ids = parcel_ids(shown)
    a = attrs.reindex(ids)[[*TILE_PROPERTIES, "holder_name", "prev_grade", "change"]]
    out = gpd.GeoDataFrame(a, geometry=np.asarray(shown.geometry.array, dtype=object), crs=4326)
    out.index = ids
    return out


def tile_properties(z: int) -> tuple[str, ...]:
    """The :func:`tile_source` columns a zoom-``z`` tile should carry (``properties=`` of ``mvt_tile``).

    Below :data:`TILE_DETAIL_ZOOM` a tile may hold a whole park: it carries only what styles a parcel.

    >>> tile_properties(12)
    ('parcel_id', 'park', 'grade', 'tax_per_mu', 'n_flags')
    """
    return TILE_PROPERTIES if z >= TILE_DETAIL_ZOOM else TILE_STYLE_PROPERTIES


def block_records(blocks: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a renewal-block layer as dicts, with ``grade_mix`` (the class mix in words)."""
    recs: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in _plain(blocks).to_dict("records")]
    for r in recs:
        r["grade_mix"] = grade_mix_words(r.get("grades"))
    return recs
