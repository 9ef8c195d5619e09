"""现场核查清单: one row per flagged parcel for the site team, as csv or as a print-ready workbook.

:func:`checklist_rows` turns the chosen flags of a run into the checklist (the parcel's holder and
users, its area, its flags in short Chinese with their review states, a point inside the parcel in
CGCS2000 and GCJ-02 longitude and latitude, a link to the parcel on the map); :func:`checklist_csv`
and :func:`checklist_xlsx` write it. The workbook is laid out through xlsxwriter's public API: every
text cell is written with ``write_string`` (nothing is ever read as a formula; the map link is a
hyperlink whose text is the URL), numbers with their number formats, and a print set-up (A4
landscape, one page wide, the header row on every page, the title in the page header).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import shapely
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from api.downloads import csv_bytes
from api.rundata import RunData
from geo_eval.landuse.flags import rule_labels, short_reasons
from geo_eval.maps.gcj02 import wgs84_to_gcj02
from geo_eval.report.labels import header
from geo_eval.storage import STATUS_LABELS, Review

SEVERITY_RANK = {"高": 0, "中": 1, "低": 2}
"""Severities, most urgent first (unknown ones after 低)."""
COORD_DECIMALS = 6
AREA_DECIMALS = 2
CSV_SEPARATOR = "；"
XLSX_SEPARATOR = "\n"
MAX_LINKS = 65_000
"""Excel keeps at most 65 530 hyperlinks a sheet; beyond this many rows the links are plain text."""
MAX_URL = 2_000
"""Excel refuses hyperlinks longer than 2 079 characters; a longer link is plain text."""


@dataclass(frozen=True)
class Column:
    """One column of the checklist: its name, how its cells are written, its width in characters."""

    name: str
    kind: str  # number, text, wrap, area, coord, link, blank
    width: int

    @property
    def header(self) -> str:
        """Its Chinese header (:mod:`geo_eval.report.labels`)."""
        return header(self.name, "checklist")


COLUMNS: tuple[Column, ...] = (
    Column("seq", "number", 6),
    Column("parcel_id", "text", 22),
    Column("park", "text", 18),
    Column("county", "text", 10),
    Column("holder", "wrap", 30),
    Column("users", "wrap", 34),
    Column("area_mu", "area", 10),
    Column("flags", "wrap", 48),
    Column("review_states", "wrap", 10),
    Column("lon_cgcs2000", "coord", 13),
    Column("lat_cgcs2000", "coord", 13),
    Column("lon_gcj02", "coord", 13),
    Column("lat_gcj02", "coord", 13),
    Column("map_link", "link", 40),
    Column("site_result", "blank", 24),
    Column("site_checker", "blank", 10),
)
HEADERS = [c.header for c in COLUMNS]
_H = {c.name: c.header for c in COLUMNS}
LIST_COLUMNS = (_H["users"], _H["flags"], _H["review_states"])
"""Columns holding several values: one a line in the workbook, ``；``-separated in csv."""


def parcel_link(base_url: str, park: object, run_id: str, parcel_id: str) -> str:
    """The parcel on its park's map: ``{base}/maps/{park}?run={run_id}#parcel={parcel_id}``, each part
    percent-encoded (a park name may hold "/"); "" for a parcel without a park.

    >>> parcel_link("http://h:8000/", "海滨/园", "2025-x", "P 1")
    'http://h:8000/maps/%E6%B5%B7%E6%BB%A8%2F%E5%9B%AD?run=2025-x#parcel=P%201'
    """
    if not isinstance(park, str) or not park:
        return ""
    return f"{base_url.rstrip('/')}/maps/{quote(park, safe='')}?run={quote(run_id, safe='')}#parcel={quote(parcel_id, safe='')}"


def _party(name: object, uscc: object) -> str:
    """``名称（统一社会信用代码）``, or whichever of the two is known.

    >>> _party("甲公司", "9132"), _party(None, "9132"), _party("甲公司", None), _party(None, None)
    ('甲公司（9132）', '9132', '甲公司', '')
    """
    n = name if isinstance(name, str) and name.strip() else ""
    u = uscc if isinstance(uscc, str) and uscc.strip() else ""
    return f"{n}（{u}）" if n and u else n or u


def representative_points(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of a point inside each geometry (``point_on_surface``); NaN where none.

    >>> x, y = representative_points(np.array([shapely.box(0, 0, 2, 2), None, shapely.Polygon()], dtype=object))
    >>> x.tolist(), y.tolist()
    ([1.0, nan, nan], [1.0, nan, nan])
    """
    arr = np.asarray(geoms, dtype=object)
    usable = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    x = np.full(len(arr), np.nan)
    y = np.full(len(arr), np.nan)
    points = shapely.point_on_surface(arr[usable])
    x[usable], y[usable] = shapely.get_x(points), shapely.get_y(points)
    return x, y


def _at(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``values[pos]`` as objects; None where ``pos`` is -1 (a flag whose parcel is not in the layer).

    >>> _at(np.array(["a", "b"], dtype=object), np.array([1, -1])).tolist()
    ['b', None]
    """
    out = np.full(len(pos), None, dtype=object)
    has = pos >= 0
    out[has] = values[pos[has]]
    return out


def checklist_rows(data: RunData, flags: pd.DataFrame, reviews: dict[str, Review], *, base_url: str) -> pd.DataFrame:
    """The checklist of ``flags`` (rows of ``data.flags``): one row per parcel, columns :data:`HEADERS`.

    Multi-valued cells (:data:`LIST_COLUMNS`) are lists. Rows are sorted by park, then the parcel's most
    severe flag (高, 中, 低), then area (largest first), then parcel code.
    """
    if flags.empty:
        return pd.DataFrame({h: pd.Series(dtype=object) for h in HEADERS})
    fl = flags.reset_index(drop=True)
    states = [STATUS_LABELS[(reviews.get(str(f)) or Review("", str(f))).status] for f in fl["flag_id"]]
    per_flag = pd.DataFrame(
        {
            "parcel_id": fl["parcel_id"].astype(str),
            "mark": (rule_labels(fl["rule_id"]) + "：" + short_reasons(fl).astype(str)).to_numpy(dtype=object),
            "state": states,
            "rank": fl["severity"].map(SEVERITY_RANK).fillna(len(SEVERITY_RANK)).to_numpy(dtype=int),
        }
    )
    grouped = per_flag.groupby("parcel_id", sort=False)
    marks = grouped["mark"].agg(list)
    first = fl.groupby(fl["parcel_id"].astype(str), sort=False).head(1).set_index("parcel_id", drop=False)
    first = first.loc[marks.index]
    pos = first["parcel_pos"].to_numpy(dtype=np.int64)
    parcels = data.parcel_table

    def parcel_col(name: str) -> np.ndarray:
        values = parcels[name] if name in parcels.columns else pd.Series(None, index=parcels.index, dtype=object)
        return _at(values.to_numpy(dtype=object), pos)

    geoms = np.full(len(pos), None, dtype=object)
    geoms[pos >= 0] = data.parcel_geometries.take(pos[pos >= 0])
    lon, lat = representative_points(geoms)
    glon, glat = wgs84_to_gcj02(lon, lat)
    names = pd.Series(data.enterprises["name"].to_numpy(dtype=object), index=data.enterprises["uscc"].astype(str))
    names = names[~names.index.duplicated()]
    users = [
        [_party(names.get(u), u) for u in (text if isinstance(text, str) else "").split(";") if u.strip()]
        for text in first["enterprises"].to_numpy(dtype=object)
    ]
    park = first["park"].to_numpy(dtype=object)
    values = {
        "seq": 0,
        "parcel_id": marks.index.to_numpy(dtype=object),
        "park": park,
        "county": first["county"].to_numpy(dtype=object),
        "holder": [
            _party(n if isinstance(n, str) and n.strip() else names.get(u), u)
            for n, u in zip(parcel_col("holder_name"), parcel_col("holder_uscc"), strict=True)
        ],
        "users": users,
        "area_mu": pd.to_numeric(first["area_mu"], errors="coerce").to_numpy(dtype=float),
        "flags": marks.to_numpy(dtype=object),
        "review_states": grouped["state"].agg(list).to_numpy(dtype=object),
        "lon_cgcs2000": np.round(lon, COORD_DECIMALS),
        "lat_cgcs2000": np.round(lat, COORD_DECIMALS),
        "lon_gcj02": np.round(glon, COORD_DECIMALS),
        "lat_gcj02": np.round(glat, COORD_DECIMALS),
        "map_link": [parcel_link(base_url, p, data.run_id, str(pid)) for p, pid in zip(park, marks.index, strict=True)],
        "site_result": "",
        "site_checker": "",
    }
    out = pd.DataFrame({_H[c]: v for c, v in values.items()})
    order = pd.DataFrame(
        {
            "park": [p if isinstance(p, str) else "" for p in park],
            "rank": grouped["rank"].min().to_numpy(dtype=int),
            "area": -out[_H["area_mu"]].fillna(0.0).to_numpy(dtype=float),
            "parcel": out[_H["parcel_id"]].astype(str).to_numpy(),
        }
    ).sort_values(["park", "rank", "area", "parcel"], kind="mergesort")
    out = out.iloc[order.index.to_numpy()].reset_index(drop=True)
    out[_H["seq"]] = np.arange(1, len(out) + 1)
    return out


def _joined(rows: pd.DataFrame, separator: str) -> pd.DataFrame:
    out = rows.copy()
    for c in LIST_COLUMNS:
        out[c] = [separator.join(v) for v in rows[c]]
    return out


def checklist_csv(rows: pd.DataFrame) -> bytes:
    """The checklist as csv (UTF-8 with BOM): the workbook's columns, several values ``；``-separated."""
    out = _joined(rows, CSV_SEPARATOR)
    out[_H["area_mu"]] = out[_H["area_mu"]].round(AREA_DECIMALS)
    return csv_bytes(out)


def _header_text(text: str) -> str:
    """Text for a page header: ``&`` starts a code there, so it is doubled."""
    return text.replace("&", "&&")


def checklist_xlsx(rows: pd.DataFrame, *, title: str, notes: Sequence[str]) -> bytes:
    """The checklist as a print-ready workbook: sheet 现场核查清单 and sheet 说明 (``notes``, a line each)."""
    with tempfile.TemporaryDirectory(prefix="geo-eval-") as tmp:
        path = Path(tmp) / "checklist.xlsx"
        _write_checklist(path, rows, title=title, notes=notes)
        return path.read_bytes()


def _write_checklist(path: Path, rows: pd.DataFrame, *, title: str, notes: Sequence[str]) -> None:
    # constant_memory: each row goes to disk once written (rows are written in order)
    options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    wb = xlsxwriter.Workbook(str(path), options)
    wb.set_properties({"title": title, "author": "geo-eval"})
    base = {"border": 1, "valign": "top", "font_size": 10}
    fmt = {
        "head": wb.add_format(base | {"bold": True, "bg_color": "#DDEBF7", "text_wrap": True, "valign": "vcenter"}),
        "text": wb.add_format(base),
        "wrap": wb.add_format(base | {"text_wrap": True}),
        "number": wb.add_format(base | {"num_format": "0"}),
        "area": wb.add_format(base | {"num_format": "0.00"}),
        "coord": wb.add_format(base | {"num_format": "0.000000"}),
        "link": wb.add_format(base | {"font_color": "#0563C1", "underline": 1}),
        "blank": wb.add_format(base),
    }
    ws = wb.add_worksheet("现场核查清单")
    for j, col in enumerate(COLUMNS):
        ws.write_string(0, j, col.header, fmt["head"])
        ws.set_column(j, j, col.width)
    table = _joined(rows, XLSX_SEPARATOR)
    links = len(table) <= MAX_LINKS
    for i, values in enumerate(table[HEADERS].itertuples(index=False, name=None), start=1):
        for j, (col, v) in enumerate(zip(COLUMNS, values, strict=True)):
            _write_cell(ws, i, j, col.kind, v, fmt, links=links)
    n = len(table)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(n, 1), len(COLUMNS) - 1)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)  # one page wide, as many pages tall as needed
    ws.repeat_rows(0)
    ws.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.6)
    ws.set_header(f"&C&12&B{_header_text(title)}")
    ws.set_footer("&C第 &P 页，共 &N 页")
    notes_ws = wb.add_worksheet("说明")
    notes_ws.set_column(0, 0, 110)
    for i, line in enumerate(notes):
        notes_ws.write_string(i, 0, line)
    wb.close()


def _write_cell(
    ws: Worksheet, i: int, j: int, kind: str, value: object, fmt: dict[str, Format], *, links: bool
) -> None:
    """One data cell: numbers with their format, a hyperlink for the map link, everything else as a string."""
    if kind == "blank":
        ws.write_blank(i, j, None, fmt["blank"])
    elif kind in ("number", "area", "coord"):
        if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
            ws.write_number(i, j, float(value), fmt[kind])
        else:
            ws.write_blank(i, j, None, fmt[kind])
    elif kind == "link" and links and value and len(str(value)) <= MAX_URL:
        ws.write_url(i, j, str(value), fmt["link"], string=str(value))
    else:
        ws.write_string(i, j, "" if value is None else str(value), fmt["wrap" if kind == "wrap" else "text"])
