"""Land-use control indices (工业项目建设用地控制指标, 国土资发〔2008〕24号; domain.md §7).

The 2008 table lists minimum plot ratios by GB/T 4754-2002 division. Enterprises carry
GB/T 4754-2017 codes, whose divisions were renumbered: the table below maps each 2017 manufacturing
division to the 2008 value of the same industry by name. Where 2017 merged two 2002 divisions
(29 rubber 0.8 + plastics 1.0 → 2017 division 29), the 2017 group decides (291 rubber, 292 plastics).
"""

from __future__ import annotations

import pandas as pd

from geo_eval.rating.rating import industry_division

BUILDING_COEFFICIENT_MIN = 0.30
"""建筑系数 ≥ 30 % (2008 edition)."""

# 2017 division → (2008 minimum plot ratio, industry name)
PLOT_RATIO_2008: dict[str, tuple[float, str]] = {
    "13": (1.0, "农副食品加工业"),
    "14": (1.0, "食品制造业"),
    "15": (1.0, "酒、饮料和精制茶制造业"),
    "16": (1.0, "烟草制品业"),
    "17": (0.8, "纺织业"),
    "18": (1.0, "纺织服装、服饰业"),
    "19": (1.0, "皮革、毛皮、羽毛及其制品和制鞋业"),
    "20": (0.8, "木材加工和木、竹、藤、棕、草制品业"),
    "21": (0.8, "家具制造业"),
    "22": (0.8, "造纸和纸制品业"),
    "23": (0.8, "印刷和记录媒介复制业"),
    "24": (1.0, "文教、工美、体育和娱乐用品制造业"),
    "25": (0.5, "石油、煤炭及其他燃料加工业"),
    "26": (0.6, "化学原料和化学制品制造业"),
    "27": (0.7, "医药制造业"),
    "28": (0.8, "化学纤维制造业"),
    "29": (0.8, "橡胶和塑料制品业"),  # 291 rubber 0.8; 292 plastics 1.0 (below)
    "30": (0.7, "非金属矿物制品业"),
    "31": (0.6, "黑色金属冶炼和压延加工业"),
    "32": (0.6, "有色金属冶炼和压延加工业"),
    "33": (0.7, "金属制品业"),
    "34": (0.7, "通用设备制造业"),
    "35": (0.7, "专用设备制造业"),
    "36": (0.7, "汽车制造业"),
    "37": (0.7, "铁路、船舶、航空航天和其他运输设备制造业"),
    "38": (0.7, "电气机械和器材制造业"),
    "39": (1.0, "计算机、通信和其他电子设备制造业"),
    "40": (1.0, "仪器仪表制造业"),
    "41": (1.0, "其他制造业"),
    "42": (0.7, "废弃资源综合利用业"),
    "43": (0.7, "金属制品、机械和设备修理业"),
}
PLASTICS_GROUP = "292"
PLASTICS_PLOT_RATIO = 1.0


def min_plot_ratio(industry_codes: pd.Series) -> pd.Series:
    """Minimum plot ratio for each GB/T 4754-2017 industry code (NaN outside manufacturing).

    >>> min_plot_ratio(pd.Series(["C2614", "C2927", "C2911", "3360", "D4411", None])).tolist()
    [0.6, 1.0, 0.8, 0.7, nan, nan]
    """
    div = industry_division(industry_codes)
    values = div.map({k: v[0] for k, v in PLOT_RATIO_2008.items()}).astype(float)
    group = (
        industry_codes.astype("string").str.strip().str.upper().str.replace(r"^[A-T]", "", regex=True).str.slice(0, 3)
    )
    return values.mask((group == PLASTICS_GROUP).fillna(False).astype(bool), PLASTICS_PLOT_RATIO)


def industry_name(industry_codes: pd.Series) -> pd.Series:
    """Name of the 2017 division for each code ("" outside the table)."""
    div = industry_division(industry_codes)
    return div.map({k: v[1] for k, v in PLOT_RATIO_2008.items()}).fillna("")
