"""Per-mu and per-resource indicators (domain.md §2).

Every indicator is a ratio ``numerator / denominator`` of two enterprise figures, higher is better.
Each function returns a Series on the enterprises' index (USCC); the value is NaN where the
numerator is missing, or positive over a denominator that is missing or not positive. A zero
numerator gives 0 whatever the denominator (no tax is zero tax per anything).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Indicator:
    """An indicator: ``numerator / denominator × factor``."""

    key: str
    label: str  # Chinese name
    unit: str
    numerator: str
    denominator: str
    factor: float = 1.0


INDICATORS: dict[str, Indicator] = {
    i.key: i
    for i in (
        Indicator("tax_per_mu", "亩均税收", "万元/亩", "tax", "land_mu"),
        Indicator("revenue_per_mu", "亩均销售收入", "万元/亩", "sales", "land_mu"),
        Indicator("value_added_per_mu", "亩均增加值", "万元/亩", "value_added", "land_mu"),
        Indicator("value_added_per_energy", "单位能耗增加值", "万元/吨标准煤", "value_added", "energy_tce"),
        Indicator("tax_per_energy", "单位能耗税收", "万元/吨标准煤", "tax", "energy_tce"),
        # 万元 / 万千瓦时 = 元/千瓦时
        Indicator("tax_per_electricity", "单位电耗税收", "元/千瓦时", "tax", "electricity_10k_kwh"),
        Indicator("value_added_per_emission", "单位排放增加值", "万元/吨", "value_added", "emission_t"),
        Indicator("tax_per_emission", "单位排放税收", "万元/吨", "tax", "emission_t"),
        Indicator("labour_productivity", "全员劳动生产率", "万元/人", "value_added", "employees"),
        Indicator("rnd_intensity", "研发经费支出占比", "比值", "rnd", "main_revenue"),
    )
}
"""The indicators a scheme may use, by key."""


def ratio(numerator: pd.Series, denominator: pd.Series, factor: float = 1.0) -> pd.Series:
    """``numerator / denominator × factor``; 0 where the numerator is 0; NaN where it cannot be computed."""
    num = pd.to_numeric(numerator, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    den = pd.to_numeric(denominator, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = num / np.where(den > 0, den, np.nan) * factor
    values = np.where(num == 0, 0.0, values)
    return pd.Series(values, index=numerator.index)


def indicator(data: pd.DataFrame, key: str) -> pd.Series:
    """The indicator ``key`` for every row of ``data`` (which holds its numerator and denominator).

    >>> df = pd.DataFrame({"tax": [30.0, 0.0, 5.0], "land_mu": [10.0, 0.0, 0.0]}, index=["A", "B", "C"])
    >>> indicator(df, "tax_per_mu").tolist()
    [3.0, 0.0, nan]
    """
    ind = INDICATORS[key]
    return ratio(data[ind.numerator], data[ind.denominator], ind.factor).rename(key)


def tax_per_mu(data: pd.DataFrame) -> pd.Series:
    """亩均税收 = tax (万元) / land_mu (亩)."""
    return indicator(data, "tax_per_mu")


def compute_indicators(data: pd.DataFrame, keys: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """A frame with one column per indicator key, on ``data``'s index."""
    return pd.DataFrame({k: indicator(data, k) for k in keys}, index=data.index)
