"""Tables for people: Chinese headers with units, one frame per sheet of ``rankings.xlsx``.

Pure: frames in, frames out. ``geo_eval.io.xlsx`` writes them.
"""

from __future__ import annotations

import pandas as pd

from geo_eval.evaluate import Evaluation, indicator_labels
from geo_eval.fields import ENTERPRISE_FIELDS, FIGURES
from geo_eval.grouping import join_groups
from geo_eval.indicators import INDICATORS
from geo_eval.scheme import GRADE_LABELS

_FIG_LABELS = {f.name: f"{f.label}（{f.unit}）" for f in ENTERPRISE_FIELDS if f.name in FIGURES}

ENTERPRISE_COLUMNS: dict[str, str] = {
    "rank": "排名",
    "uscc": "统一社会信用代码",
    "name": "企业名称",
    "county": "县区",
    "park": "园区",
    "group_label": "评价分组",
    "industry_code": "行业代码",
    "land_mu": "评价用地（亩）",
}
RESULT_COLUMNS: dict[str, str] = {
    "bonus": "加分（分）",
    "penalty": "减分（分）",
    "score": "综合得分（分）",
    "grade": "分类",
    "grade_label": "分类名称",
    "veto": "否决事项",
    "prev_grade": "上年分类",
    "prev_score": "上年得分（分）",
    "grade_change": "分类变化",
    "exempt_reason": "不参评原因",
}


def _scheme_figure_columns(ev: Evaluation) -> list[str]:
    used: dict[str, None] = {}
    for k in ev.scheme.indicator_keys:
        for c in (INDICATORS[k].numerator, INDICATORS[k].denominator):
            if c in FIGURES:
                used.setdefault(c, None)
    return list(used)


def enterprise_table(ev: Evaluation, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ranking table with Chinese headers (one row per enterprise)."""
    e = (ev.enterprises if rows is None else rows).reset_index()
    cols = dict(ENTERPRISE_COLUMNS)
    cols.update({c: _FIG_LABELS[c] for c in _scheme_figure_columns(ev)})
    cols.update(indicator_labels(ev.scheme))
    cols.update({f"score_{k}": f"{INDICATORS[k].label}得分（分）" for k in ev.scheme.indicator_keys})
    cols.update(RESULT_COLUMNS)
    present = [c for c in cols if c in e]
    return e[present].rename(columns=cols)


def group_sheets(ev: Evaluation) -> dict[str, pd.DataFrame]:
    """One ranking table per scheme group, plus the T class (不参评企业)."""
    e = ev.enterprises
    out: dict[str, pd.DataFrame] = {}
    for g in ev.scheme.groups:
        out[g.label] = enterprise_table(ev, e.loc[e["group"] == g.key])
    out["不参评企业（T类）"] = enterprise_table(ev, e.loc[e["grade"] == "T"])
    return out


def land_disclosure(ev: Evaluation) -> pd.DataFrame:
    """用地面积公示: each enterprise's parcels, leases and evaluated area, step by step."""
    return sort_land_disclosure(land_disclosure_rows(ev))


def sort_land_disclosure(rows: pd.DataFrame) -> pd.DataFrame:
    """The order of 用地面积公示: by county, park and USCC (stable; missing last)."""
    return rows.sort_values(["县区", "园区", "统一社会信用代码"], kind="mergesort", na_position="last")


def land_disclosure_rows(ev: Evaluation) -> pd.DataFrame:
    """The rows of :func:`land_disclosure` in the enterprises' order (any subset of them, sorted with
    :func:`sort_land_disclosure`, is the sheet of that subset)."""
    e = ev.enterprises
    a = ev.allocation
    owned = a.loc[a["role"] == "owner"].sort_values(["uscc", "parcel_id"])
    rented = a.loc[a["role"] == "lessee"].sort_values(["uscc", "parcel_id"])
    own_ids = join_groups(owned["uscc"], owned["parcel_id"], "、")
    lease_ids = join_groups(rented["uscc"], rented["parcel_id"], "、")
    out = pd.DataFrame(
        {
            "统一社会信用代码": e.index,
            "企业名称": e["name"].to_numpy(),
            "县区": e["county"].to_numpy(),
            "园区": e["park"].to_numpy(),
            "自有宗地": own_ids.reindex(e.index).fillna("").to_numpy(),
            "自有土地面积（平方米）": e["owned_m2"].round(2).to_numpy(),
            "出租土地面积（平方米）": e["leased_out_m2"].round(2).to_numpy(),
            "承租宗地": lease_ids.reindex(e.index).fillna("").to_numpy(),
            "承租土地面积（平方米）": e["leased_in_m2"].round(2).to_numpy(),
            "评价用地面积（平方米）": e["land_m2"].round(2).to_numpy(),
            "评价用地面积（亩）": e["land_mu"].round(4).to_numpy(),
            "分类": e["grade"].to_numpy(),
        }
    )
    return out


def park_summary(ev: Evaluation) -> pd.DataFrame:
    """园区汇总: per park, land, tax, sales, tax per 亩 and counts per grade."""
    e = ev.enterprises.copy()
    e["park"] = e["park"].fillna("（未注明园区）")
    e["county"] = e["county"].fillna("")
    g = e.groupby(["county", "park"], sort=True)
    out = pd.DataFrame(
        {
            "企业数": g.size(),
            "评价用地（亩）": g["land_mu"].sum().round(2),
            "税收（万元）": g["tax"].sum().round(2),
            "销售收入（万元）": g["sales"].sum().round(2),
        }
    )
    out["亩均税收（万元/亩）"] = (out["税收（万元）"] / out["评价用地（亩）"].where(out["评价用地（亩）"] > 0)).round(4)
    counts = e.groupby(["county", "park", "grade"]).size().unstack(fill_value=0)
    for grade in ("A", "B", "C", "D", "T"):
        out[f"{grade}类（{GRADE_LABELS[grade]}）"] = counts.get(grade, 0)
    out = out.reset_index().rename(columns={"county": "县区", "park": "园区"})
    return out


def benchmark_sheet(ev: Evaluation) -> pd.DataFrame:
    """基准值: the benchmark of every unit, group and indicator, with how it was obtained."""
    b = ev.benchmarks.copy()
    labels = {g.key: g.label for g in ev.scheme.groups}
    return pd.DataFrame(
        {
            "评价单元": b["unit"],
            "评价分组": b["group"].map(labels),
            "指标": b["indicator"].map(lambda k: f"{INDICATORS[k].label}（{INDICATORS[k].unit}）"),
            "基准值": b["benchmark"].round(6),
            "最小值（最大最小法）": b["minimum"].round(6),
            "基准值来源": b["basis"],
            "参评企业数（有该指标）": b["n"],
        }
    )
