"""The annual report's charts: small static SVG drawn by matplotlib, with every text kept as text.

matplotlib's SVG backend draws without a browser and, with ``svg.fonttype = none``, writes each title,
axis label, tick label and legend entry as a ``<text>`` element that the reader's browser sets in its own
Chinese font (so the text can be searched, copied and read by a screen reader, and prints sharply).
Its output is deterministic once ``svg.hashsalt`` is fixed (the ids of clip paths) and the metadata
date is left out. The layout is measured with a Chinese font when one is installed (Noto Sans CJK on
Debian: ``fonts-noto-cjk``); without one the texts are still written, only measured approximately.

Every chart is a :class:`Chart`: its SVG (ids prefixed with the chart's key, so several charts live in
one page) with its title and axis labels, which the SVG carries as text. matplotlib's global settings
are touched only inside :func:`_rendered`, under a lock, so the service can draw in several threads.
Values are aggregated before they come here: a chart draws a few dozen marks, never one per enterprise
(a map draws the parcels of one park).
"""

from __future__ import annotations

import io
import re
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

__all__ = ["Chart", "bar_chart", "box_chart", "map_chart"]

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
    "Arial Unicode MS",
)
"""Chinese fonts matplotlib may measure the texts with, the first one installed is used."""
WIDTH_IN = 6.7
"""Chart width in inches (about 170 mm: an A4 page's width inside its margins)."""
MAX_MAP_PATHS = 4000
"""Above this many parcels a map's polygons are drawn as one embedded image (inside the SVG)."""

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Chart:
    """One chart: its SVG text and the title and axis labels it shows (as ``<text>`` in the SVG)."""

    key: str
    title: str
    xlabel: str
    ylabel: str
    svg: str


@cache
def _font_families() -> tuple[str, ...]:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return (*[f for f in CJK_FONTS if f in installed][:1], "DejaVu Sans")


def _settings(key: str) -> dict[str, Any]:
    return {
        "svg.fonttype": "none",
        "svg.hashsalt": f"geo-eval-report-{key}",
        "font.family": list(_font_families()),
        "font.size": 8.5,
        "axes.titlesize": 10.5,
        "axes.unicode_minus": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "image.interpolation": "nearest",
    }


def _rendered(key: str, height_in: float, draw: Callable[[Any], None]) -> str:
    """SVG text of a figure drawn by ``draw(axes)``, made fit to sit inside an HTML page."""
    import matplotlib
    from matplotlib.figure import Figure

    settings: Any = _settings(key)
    with _LOCK, matplotlib.rc_context(settings), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
        draw(fig.subplots())
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _inline(buf.getvalue(), key)


def _inline(svg: str, key: str) -> str:
    """matplotlib's SVG document as an element of a page: no XML prolog or style element (the page's
    stylesheet carries its one rule), ids prefixed with ``key``."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'<style type="text/css">.*?</style>\s*', "", svg, flags=re.S)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{key}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{key}-\1)", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{key}-\1"', svg)
    return svg.replace("<svg ", f'<svg class="chart-svg" role="img" aria-label="{key}" ', 1).strip()


def _labels(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _height(n_rows: int, *, per_row: float = 0.28, base: float = 1.2, least: float = 2.2) -> float:
    return max(least, base + per_row * n_rows)


def bar_chart(
    key: str,
    title: str,
    xlabel: str,
    ylabel: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    colors: Mapping[str, str] | None = None,
    stacked: bool = False,
    horizontal: bool = True,
    percent: bool = False,
) -> Chart:
    """Bars per category, one colour per series (side by side, or stacked); horizontal by default (long
    Chinese names read best on the left). ``percent``: values are shares, the value axis in %."""
    cats = [str(c) for c in categories]
    n, k = len(cats), max(len(series), 1)

    def draw(ax: Any) -> None:
        pos = np.arange(n, dtype=float)
        base = np.zeros(n)
        width = 0.75 if stacked else 0.8 / k
        for i, (name, values) in enumerate(series.items()):
            vals = np.nan_to_num(np.asarray(values, dtype=float) * (100.0 if percent else 1.0))
            offset = pos if stacked else pos - 0.4 + width * (i + 0.5)
            color = (colors or {}).get(name)
            if horizontal:
                ax.barh(offset, vals, height=width, left=base if stacked else None, label=name, color=color)
            else:
                ax.bar(offset, vals, width=width, bottom=base if stacked else None, label=name, color=color)
            base = base + vals
        (ax.set_yticks if horizontal else ax.set_xticks)(pos, cats)
        if horizontal:
            ax.invert_yaxis()
        if len(series) > 1:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        _labels(ax, title, xlabel, ylabel)

    height = _height(n * (1 if stacked else k)) if horizontal else 3.0
    return Chart(key, title, xlabel, ylabel, _rendered(key, height, draw))


def box_chart(
    key: str,
    title: str,
    xlabel: str,
    ylabel: str,
    labels: Sequence[str],
    stats: Sequence[Mapping[str, float]],
    marks: Sequence[float | None],
    *,
    mark_label: str,
) -> Chart:
    """Horizontal box plots from precomputed figures (``p5 q1 median q3 p95`` per box: whiskers at the
    5th and 95th percentiles, no single points) with one marked value per box (the benchmark)."""
    boxes = [
        {"label": str(lab), "whislo": s["p5"], "q1": s["q1"], "med": s["median"], "q3": s["q3"], "whishi": s["p95"]}
        for lab, s in zip(labels, stats, strict=True)
    ]

    def draw(ax: Any) -> None:
        pos = np.arange(1, len(boxes) + 1)
        ax.bxp(
            boxes,
            positions=pos,
            orientation="horizontal",
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": "#cfe1f2", "edgecolor": "#3b6ea5"},
            medianprops={"color": "#1b3b5f"},
        )
        ys = [p for p, m in zip(pos, marks, strict=True) if m is not None and np.isfinite(m)]
        xs = [m for m in marks if m is not None and np.isfinite(m)]
        if xs:
            ax.scatter(xs, ys, marker="D", s=28, color="#d32f2f", zorder=3, label=mark_label)
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        ax.invert_yaxis()
        _labels(ax, title, xlabel, ylabel)

    return Chart(key, title, xlabel, ylabel, _rendered(key, _height(len(boxes), per_row=0.34), draw))


def map_chart(
    key: str,
    title: str,
    geometries: Sequence[Any],
    categories: Sequence[str],
    colors: Mapping[str, str],
    *,
    geographic: bool,
) -> Chart:
    """Parcels coloured by category (legend in the order of ``colors``), in metres from the south-west
    corner (a geographic CRS is scaled to about metres at the parcels' latitude)."""
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Patch
    from matplotlib.path import Path as MplPath

    xlabel, ylabel = "自西向东（米）", "自南向北（米）"
    paths, cats = _paths(geometries, categories, geographic=geographic, path_type=MplPath)

    def draw(ax: Any) -> None:
        face = [colors.get(c, "#ffffff") for c in cats]
        coll = PathCollection(paths, facecolors=face, edgecolors="#555555", linewidths=0.25)
        coll.set_rasterized(len(paths) > MAX_MAP_PATHS)
        ax.add_collection(coll)
        ax.autoscale_view()
        ax.set_aspect("equal")
        present = [c for c in colors if c in set(cats)]
        handles = [Patch(facecolor=colors[c], edgecolor="#555555", label=c) for c in present]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        _labels(ax, title, xlabel, ylabel)

    return Chart(key, title, xlabel, ylabel, _rendered(key, 3.6, draw))


def _paths(
    geometries: Sequence[Any], categories: Sequence[str], *, geographic: bool, path_type: Any
) -> tuple[list[Any], list[str]]:
    """matplotlib paths of the polygons (holes kept), shifted to the south-west corner and in metres."""
    import shapely

    geoms = np.asarray(geometries, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    geoms, cats = geoms[ok], [c for c, k in zip(categories, ok, strict=True) if k]
    if not len(geoms):
        return [], []
    x0, y0, _, y1 = shapely.total_bounds(geoms)
    sx, sy = (111_320.0 * np.cos(np.radians((y0 + y1) / 2)), 110_570.0) if geographic else (1.0, 1.0)
    shifted = shapely.transform(geoms, lambda c: np.round((c - [x0, y0]) * [sx, sy], 1))
    paths = [_polygon_path(g, path_type) for g in shifted]
    return paths, cats


def _polygon_path(geom: Any, path_type: Any) -> Any:
    """One matplotlib path of a (multi)polygon's rings."""
    import shapely

    rings = []
    for poly in getattr(geom, "geoms", [geom]):
        if isinstance(poly, shapely.Polygon):
            rings += [np.asarray(poly.exterior.coords), *(np.asarray(r.coords) for r in poly.interiors)]
    if not rings:
        return path_type(np.zeros((1, 2)))
    return path_type.make_compound_path(*(path_type(r, closed=True) for r in rings))
