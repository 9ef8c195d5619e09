"""Who is rated: T class (不适合评价) and the scheme's groups.

An enterprise is T, with the reason kept, when (in this order) the input names an exempt reason,
its industry is a utility, it has produced for less than the scheme's minimum years, it has no
evaluated land, or no group of the scheme takes it. Everyone else belongs to exactly one group:
the first whose filter matches.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from geo_eval.rating.scheme import Group, Scheme

INDUSTRY_CODE_PATTERN = r"[A-T]?\d{2,4}"
"""GB/T 4754-2017 code: optional section letter, then 2–4 digits (division, group, class)."""


def industry_digits(codes: pd.Series) -> pd.Series:
    """The digits of well-formed GB/T 4754-2017 codes (``C3360`` → ``3360``); ``<NA>`` otherwise."""
    s = codes.astype("string").str.strip().str.upper()
    ok = s.str.fullmatch(INDUSTRY_CODE_PATTERN).fillna(False).astype(bool)
    return s.str.replace(r"^[A-T]", "", regex=True).where(ok)


def industry_division(codes: pd.Series) -> pd.Series:
    """Two-digit GB/T 4754-2017 division from codes such as ``C3360``, ``3360`` or ``44``."""
    return industry_digits(codes).str.slice(0, 2)


def group_mask(data: pd.DataFrame, group: Group) -> pd.Series:
    """Rows of ``data`` that ``group``'s filter takes (ignoring T rules)."""
    mask = np.ones(len(data), dtype=bool)
    if group.above_scale is not None:
        above = data["above_scale"].to_numpy(dtype=bool, na_value=False)
        mask &= above if group.above_scale else ~above
    if group.min_land_mu > 0:
        mask &= np.nan_to_num(data["land_mu"].to_numpy(dtype=float)) >= group.min_land_mu - 1e-9
    if group.lessee_only is not None:
        owned = np.nan_to_num(data["owned_m2"].to_numpy(dtype=float))
        leased_in = np.nan_to_num(data["leased_in_m2"].to_numpy(dtype=float))
        lessee = (owned <= 0) & (leased_in > 0)
        mask &= lessee if group.lessee_only else ~lessee
    return pd.Series(mask, index=data.index)


def _describe(group: Group) -> str:
    parts = []
    if group.above_scale is not None:
        parts.append("规上" if group.above_scale else "规下")
    if group.lessee_only is not None:
        parts.append("无自有用地" if group.lessee_only else "有自有用地")
    if group.min_land_mu > 0:
        parts.append(f"用地不少于{group.min_land_mu:g}亩")
    return "且".join(parts) or "全部"


def rating_status(data: pd.DataFrame, scheme: Scheme, *, year: int) -> pd.DataFrame:
    """Group key (or ``""`` for T) and T reason for each enterprise.

    ``data`` holds ``industry_code, production_start, exempt_reason, above_scale, land_mu,
    owned_m2, leased_in_m2``. Returns ``group``, ``group_label`` and ``t_reason`` on its index.
    """
    rules = scheme.rating
    n = len(data)
    reason = np.full(n, "", dtype=object)
    marked = np.zeros(n, dtype=bool)

    def mark(mask: np.ndarray, text: str | Callable[[np.ndarray], np.ndarray]) -> None:
        """The reason ``text`` (or ``text(positions)``) where ``mask`` holds and no reason is set yet."""
        free = np.flatnonzero(mask & ~marked)
        if len(free):
            reason[free] = text if isinstance(text, str) else text(free)
            marked[free] = True

    if rules.honour_exempt_reason:
        er = data["exempt_reason"].astype("string").str.strip().fillna("")
        er_text = er.to_numpy(dtype=object)
        mark((er != "").to_numpy(dtype=bool), lambda at: "不参评：" + er_text[at])
    if rules.exempt_industry_prefixes:
        digits = industry_digits(data["industry_code"]).fillna("")
        utility = (digits.str.startswith(tuple(rules.exempt_industry_prefixes)) & (digits != "")).to_numpy(dtype=bool)
        codes = data["industry_code"].astype("string").fillna("")
        mark(utility, lambda at: "公用事业（行业代码 " + codes.iloc[at].to_numpy(dtype=object) + "）不参评")
    if rules.min_production_years > 0:
        year_end = pd.Timestamp(dt.date(year, 12, 31))
        months = round(rules.min_production_years * 12)
        cutoff = year_end - pd.DateOffset(months=months)
        start = pd.to_datetime(data["production_start"], errors="coerce")
        mark(
            (start > cutoff).to_numpy(dtype=bool),
            f"投产不满{rules.min_production_years:g}年（投产日期晚于{cutoff.date()}）",
        )
    land = np.nan_to_num(data["land_mu"].to_numpy(dtype=float))
    mark(land <= 0, "无评价用地（无自有宗地且无租赁），无法计算亩均指标")

    group = np.full(n, "", dtype=object)
    label = np.full(n, "", dtype=object)
    open_ = ~marked
    for g in scheme.groups:
        take = open_ & (group == "") & group_mask(data, g).to_numpy()
        group[take] = g.key
        label[take] = g.label
    scope = " 或 ".join(_describe(g) for g in scheme.groups)
    mark(open_ & (group == ""), f"不在评价范围（本方案评价：{scope}）")
    return pd.DataFrame({"group": group, "group_label": label, "t_reason": reason}, index=data.index)


def is_rated(status: pd.DataFrame) -> np.ndarray:
    """Boolean array: the enterprise is rated (not T)."""
    return (status["group"] != "").to_numpy()
