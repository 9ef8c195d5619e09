"""Benchmarks and scores (domain.md §3).

For each indicator ``i`` of a group: ``item_i = weight_i × value_i / benchmark_i`` (floored and capped
as the scheme says), or the min–max form ``weight × (20 + 80 × (x − min)/(max − min)) / 100``.
``score = Σ item_i + bonus − penalty``. An enterprise at every benchmark scores exactly 100.

Benchmarks are computed per ranking unit (county or park) and group over the rated enterprises.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geo_eval.rating.indicators import INDICATORS, indicator
from geo_eval.rating.scheme import IndicatorRule, Scheme

BENCHMARK_COLUMNS = ["unit", "group", "indicator", "method", "benchmark", "minimum", "basis", "n"]


@dataclass
class ScoreResult:
    """Scores of the rated enterprises and the benchmarks used."""

    items: pd.DataFrame
    """Item score per indicator (columns ``score_<key>``), on the rated enterprises' index."""
    score: pd.Series
    """Total score, rounded to the scheme's ``score_decimals``."""
    benchmarks: pd.DataFrame
    """One row per unit, group and indicator (:data:`BENCHMARK_COLUMNS`)."""
    fallbacks: list[str] = field(default_factory=list)
    """Human-readable notes where last year's figures were missing and this year's were used."""


def unit_mean(data: pd.DataFrame, key: str, by: list[str], how: str) -> pd.Series:
    """Mean of indicator ``key`` per ``by`` groups of ``data``.

    ``aggregate``: Σ numerator / Σ denominator over rows where the indicator is defined
    (e.g. total tax / total land); ``average``: the plain mean of the rows' values.
    """
    ind = INDICATORS[key]
    values = indicator(data, key)
    ok = values.notna()
    if how == "average":
        return values[ok].groupby([data.loc[ok, b] for b in by]).mean()
    num = pd.to_numeric(data[ind.numerator], errors="coerce")[ok]
    den = pd.to_numeric(data[ind.denominator], errors="coerce")[ok]
    keys = [data.loc[ok, b] for b in by]
    sums = pd.DataFrame({"num": num, "den": den}).groupby(keys).sum()
    return sums["num"] / sums["den"] * ind.factor


def _benchmark_table(
    rated: pd.DataFrame,
    previous: pd.DataFrame | None,
    scheme: Scheme,
    unit_col: str,
) -> tuple[pd.DataFrame, list[str]]:
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    for g in scheme.groups:
        cur = rated.loc[rated["group"] == g.key]
        units = sorted(cur[unit_col].dropna().unique().tolist())
        prev_g = None
        if previous is not None:
            prev_g = previous.loc[previous["group"] == g.key]
        for rule in g.indicators:
            values = indicator(cur, rule.key)
            by_unit = values.groupby(cur[unit_col])
            counts = by_unit.count()
            cur_mean = unit_mean(cur, rule.key, [unit_col], rule.mean) if len(cur) else pd.Series(dtype=float)
            prev_mean = None
            if rule.benchmark == "previous_mean" and prev_g is not None and len(prev_g):
                ind = INDICATORS[rule.key]
                if ind.numerator in prev_g and ind.denominator in prev_g:
                    prev_mean = unit_mean(prev_g, rule.key, [unit_col], rule.mean)
            for u in units:
                n = int(counts.get(u, 0))
                bench, low, basis = np.nan, np.nan, ""
                if rule.benchmark == "fixed":
                    bench, basis = float(rule.value or np.nan), "公布基准值"
                elif rule.benchmark == "best":
                    bench, basis = float(by_unit.max().get(u, np.nan)), "本年最优值"
                elif rule.benchmark == "minmax":
                    bench, low, basis = (
                        float(by_unit.max().get(u, np.nan)),
                        float(by_unit.min().get(u, np.nan)),
                        "本年最大值/最小值",
                    )
                elif rule.benchmark == "current_mean":
                    bench, basis = rule.k * float(cur_mean.get(u, np.nan)), f"{rule.k:g}×本年均值"
                else:  # previous_mean
                    pm = np.nan if prev_mean is None else float(prev_mean.get(u, np.nan))
                    if np.isfinite(pm) and pm > 0:
                        bench, basis = rule.k * pm, f"{rule.k:g}×上年均值"
                    else:
                        bench, basis = rule.k * float(cur_mean.get(u, np.nan)), f"{rule.k:g}×本年均值（缺上年数据）"
                        why = "未提供上年评价结果" if previous is None else "上年结果中无此单元/分组/指标的数据"
                        notes.append(
                            f"{u}·{g.label}·{INDICATORS[rule.key].label}：{why}，基准值改用{rule.k:g}×本年均值"
                        )
                rows.append(
                    {
                        "unit": u,
                        "group": g.key,
                        "indicator": rule.key,
                        "method": rule.benchmark,
                        "benchmark": bench,
                        "minimum": low,
                        "basis": basis,
                        "n": n,
                    }
                )
    return pd.DataFrame(rows, columns=BENCHMARK_COLUMNS), notes


def _item_scores(values: pd.Series, rule: IndicatorRule, bench: pd.Series, low: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        if rule.benchmark == "minmax":
            span = bench - low
            frac = ((values - low) / span.where(span > 0)).fillna(1.0).where(values.notna())
            item = rule.weight * (20 + 80 * frac) / 100
        else:
            item = rule.weight * values / bench.where(bench > 0)
    if rule.floor is not None:
        item = item.where(item.isna() | (item >= rule.floor), rule.floor)
    if rule.cap is not None:
        item = item.where(item.isna() | (item <= rule.cap * rule.weight), rule.cap * rule.weight)
    return item


def _per_row(by_unit: pd.Series, uniques: pd.Index, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """A per-unit value for each row from the row's unit code (code -1, no unit, gives NaN)."""
    arr = np.append(by_unit.reindex(uniques).to_numpy(dtype=float), np.nan)
    return pd.Series(arr[codes], index=index)


def score(
    rated: pd.DataFrame,
    scheme: Scheme,
    *,
    previous: pd.DataFrame | None = None,
) -> ScoreResult:
    """Scores of ``rated`` enterprises (each with its ``group`` and the scheme's ranking unit column).

    ``previous`` is last year's enterprise results (``group``, ``grade``, the unit column and the
    raw figures); only its rated rows (grades A–D) enter the previous-year means.
    """
    unit_col = scheme.ranking_unit
    prev_rated = None
    if previous is not None:
        prev_rated = previous.loc[previous["grade"].isin(["A", "B", "C", "D"])]
    bench, notes = _benchmark_table(rated, prev_rated, scheme, unit_col)
    items = pd.DataFrame(index=rated.index)
    for key in scheme.indicator_keys:
        items[f"score_{key}"] = np.nan
    group_pos = pd.Series(np.arange(len(rated)), index=rated.index)
    for g in scheme.groups:
        sel = (rated["group"] == g.key).to_numpy()
        cur = rated.loc[sel]
        if cur.empty:
            continue
        # Units by position: a few distinct counties, so take from small arrays instead of mapping.
        codes, uniques = pd.factorize(cur[unit_col])
        pos = group_pos.to_numpy()[sel]
        for rule in g.indicators:
            b = bench.loc[(bench["group"] == g.key) & (bench["indicator"] == rule.key)].set_index("unit")
            values = indicator(cur, rule.key)
            bench_row = _per_row(b["benchmark"], uniques, codes, cur.index)
            item = _item_scores(values, rule, bench_row, _per_row(b["minimum"], uniques, codes, cur.index))
            if rule.missing == "group_mean_score":
                fill = item.groupby(codes).transform("mean")
                item = item.fillna(fill)
            col = items.columns.get_loc(f"score_{rule.key}")
            items.iloc[pos, col] = item.fillna(0.0).to_numpy()  # type: ignore[index]
    total = np.nansum(items.to_numpy(dtype=float), axis=1) if len(items.columns) else np.zeros(len(rated))
    adj = scheme.adjustments

    def adjustment(col: str, cap: float | None) -> np.ndarray:
        x = np.clip(np.nan_to_num(pd.to_numeric(rated[col], errors="coerce").to_numpy(dtype=float)), 0.0, None)
        return np.minimum(x, cap) if cap is not None else x

    if adj.use_bonus and "bonus" in rated:
        total = total + adjustment("bonus", adj.bonus_max)
    if adj.use_penalty and "penalty" in rated:
        total = total - adjustment("penalty", adj.penalty_max)
    total = pd.Series(total, index=rated.index).round(scheme.grading.score_decimals)
    return ScoreResult(items=items, score=total.rename("score"), benchmarks=bench, fallbacks=notes)
