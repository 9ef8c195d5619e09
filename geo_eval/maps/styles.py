"""What the park maps look like: colours, legends, review-state styles and their Chinese labels.

Everything here is data handed to the browser in the page's configuration (``geo_eval.maps.page``);
the page's script (``api/static/js/``) applies it, so a colour or a label is changed in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from geo_eval.landuse.flags import FLAG_LABELS

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
BACKGROUND = "#f3f2ee"

CHANGE_COLOURS: dict[str, str] = {
    "up": "#1a9850",
    "same": "#9ecae1",
    "down": "#d73027",
    "new": "#8e6bbf",
    "gone": "#fdae61",
    "none": NO_DATA_COLOUR,
}
"""Fill colour of a parcel by how its main user's class changed since last year (分类变化)."""
CHANGE_LABELS: dict[str, str] = {
    "up": "升级",
    "same": "持平",
    "down": "降级",
    "new": "新参评",
    "gone": "不再参评",
    "none": "无上年比较",
}


def change_key(grade_change: object, prev_grade: object, grade: object) -> str:
    """The 分类变化 of an enterprise from ``enterprises.csv``'s ``grade_change`` (上升/持平/下降/新参评/X→Y).

    >>> [change_key(c, p, g) for c, p, g in [("上升", "B", "A"), ("T→B", "T", "B"), ("B→T", "B", "T"),
    ...                                      ("T→T", "T", "T"), ("新参评", "", "C"), ("", "", "T")]]
    ['up', 'new', 'gone', 'same', 'new', 'none']
    """
    change = str(grade_change or "").strip()
    if change in ("上升", "升级"):
        return "up"
    if change in ("下降", "降级"):
        return "down"
    if change in ("持平", "T→T"):
        return "same"
    if change == "新参评":
        return "new"
    before, arrow, after = change.partition("→")
    if arrow:
        return "gone" if after == "T" else "new" if before == "T" else "same"
    return "none"


FLAG_STATUS_LABELS: dict[str, str] = {
    "pending": "待复核",
    "site_visit": "待核查",
    "confirmed": "确认",
    "dismissed": "排除",
}
"""Review states of a flag, most urgent first; a flag never reviewed is ``pending`` (待复核)."""
STATUS_ORDER: tuple[str, ...] = tuple(FLAG_STATUS_LABELS)
"""A parcel with flags in several states shows the first of them in this order (待复核 first)."""
FLAG_STYLES: dict[str, dict[str, Any]] = {
    "pending": {"color": "#e6007e", "weight": 3, "dashArray": None, "hatch": "diagonal"},
    "site_visit": {"color": "#ef6c00", "weight": 3, "dashArray": "7 4", "hatch": "dots"},
    "confirmed": {"color": "#8e0000", "weight": 3.5, "dashArray": None, "hatch": "cross"},
    "dismissed": {"color": "#546e7a", "weight": 1.5, "dashArray": "2 4", "hatch": None},
}
"""Outline and hatching of a flagged parcel by its review state (drawn above the renewal blocks)."""
BLOCK_STYLE: dict[str, Any] = {"color": "#1565c0", "weight": 4, "dashArray": "14 8", "opacity": 0.9, "fill": False}
"""Renewal blocks: long blue dashes under the flags, clearly unlike any flag outline."""
PARK_STYLE: dict[str, Any] = {"color": "#212121", "weight": 2.5, "fill": False, "interactive": False}
HIGHLIGHT_STYLE: dict[str, Any] = {"color": "#00e5ff", "weight": 5, "opacity": 1, "fill": False}
"""A search hit or the parcel opened from the review list: its own outline, drawn on top."""

FLAG_KIND_LABELS: dict[str, str] = {
    "idle_legal": "闲置土地",
    "idle_exempt": "闲置（政府原因）",
    "idle_suspected": "疑似闲置",
    "low_efficiency": "低效用地",
    "renewal_candidate": "退二优二",
}
"""Short names of the flag kinds for filters and counters (the long ones are ``geo_eval.landuse.flags.FLAG_LABELS``)."""
assert set(FLAG_KIND_LABELS) == set(FLAG_LABELS)
SEVERITIES: tuple[str, ...] = ("高", "中", "低")
"""Severity of a flag, most severe first (the review list sorts by it, then by area)."""


def tax_colours(bins: Sequence[float]) -> list[str]:
    """One colour per 亩均税收 class (red = low … green = high).

    >>> tax_colours([10.0])
    ['#d73027', '#1a9850']
    """
    k = len(bins) + 1
    if k > len(_RDYLGN9) or list(bins) != sorted(bins):
        raise ValueError(f"亩均税收分级界限须递增且不超过 {len(_RDYLGN9) - 1} 个：{list(bins)}")
    return [_RDYLGN9[round(i * (len(_RDYLGN9) - 1) / (k - 1))] for i in range(k)]


def tax_labels(bins: Sequence[float]) -> list[str]:
    """Legend text of each class.

    >>> tax_labels([5, 10])
    ['< 5', '5–10', '≥ 10']
    """
    b = [f"{x:g}" for x in bins]
    return [f"< {b[0]}"] + [f"{lo}–{hi}" for lo, hi in pairwise(b)] + [f"≥ {b[-1]}"]


def tax_class(values: np.ndarray, bins: Sequence[float]) -> np.ndarray:
    """Class index of each 亩均税收 (``-1``: no figure).

    >>> tax_class(np.array([1.0, 5.0, np.nan]), [5.0]).tolist()
    [0, 1, -1]
    """
    cls = np.searchsorted(np.asarray(bins, dtype=float), values, side="right")
    return np.where(np.isnan(values), -1, cls)


def grade_mix_words(text: object) -> str:
    """A block's ``grades`` (``A:0;B:1;…;无:2``) in words: ``A 类 0 宗、B 类 1 宗、…、无参评企业 2 宗``.

    >>> grade_mix_words("A:0;B:1;T:2;无:1")
    'A 类 0 宗、B 类 1 宗、T 类 2 宗、无参评企业 1 宗'
    >>> grade_mix_words(None)
    ''
    """
    parts = []
    for item in str(text or "").split(";"):
        key, sep, n = item.partition(":")
        key, n = key.strip(), n.strip()
        if not sep or not key:
            continue
        parts.append(f"无参评企业 {n} 宗" if key == NO_GRADE else f"{key} 类 {n} 宗")
    return "、".join(parts)
