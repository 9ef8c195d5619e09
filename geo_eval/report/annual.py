"""The figures of the annual report (年度评价报告), computed from one run's tables.

Pure: :class:`RunTables` holds the frames of an OUT_DIR's files (read by :func:`geo_eval.io.report.read_run`,
or handed over by the service from the run it has in memory); every function here aggregates them into
small frames the report shows (:mod:`geo_eval.report.html`) and charts (:mod:`geo_eval.report.charts`).
Aggregate figures are Σ numerator / Σ denominator over the rated enterprises (A–D) where the indicator
is defined, as the scheme's ``aggregate`` mean (shared/domain.md §12); shares of a class are of the rated
enterprises. Rows are sorted with explicit tie-breakers, so the same run gives the same figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geo_eval.landuse.controls import industry_division, industry_name
from geo_eval.rating.indicators import INDICATORS, indicator
from geo_eval.rating.scheme import Scheme

RATED = ("A", "B", "C", "D")
GRADES = (*RATED, "T")
TOTAL = "合计"
NO_PARK = "（未注明园区）"
NO_COUNTY = "（未注明县区）"
OVERVIEW_INDICATORS = ("tax_per_mu", "revenue_per_mu", "tax_per_energy")
"""The aggregate figures of 概况 (亩均税收, 亩均销售收入, 单位能耗税收)."""
NEW, GONE = "新参评", "不再参评"
"""Rows and columns of the transition matrix beyond the classes: not in last year's table / not in this year's."""
CHANGE_ORDER = ("升级", "持平", "降级", "新参评", "转为不参评", "不参评", "无参评企业")
"""Classes of change of an enterprise (and, on the map, of a parcel by its main user)."""
TOP_DIVISIONS = 15
TOP_RANKED = 10
LISTED = 30


@dataclass(frozen=True)
class RunTables:
    """One run as the report reads it: frames with the columns of the output files."""

    manifest: Mapping[str, Any]
    enterprises: pd.DataFrame
    """``enterprises.csv``: texts as text, figures as numbers."""
    problems: pd.DataFrame
    """``exceptions.csv``."""
    benchmarks: pd.DataFrame
    """``benchmarks.csv``."""
    flags: pd.DataFrame | None = None
    """``flags.csv`` (None: the run was made without flags)."""
    blocks: pd.DataFrame | None = None
    """``renewal_blocks.gpkg`` without geometry."""
    previous: pd.DataFrame | None = None
    """Last year's ``enterprises.csv`` (None: no year-over-year section)."""
    previous_note: str = ""
    """Why there is no previous year although the run names one (shown in 年度变化)."""
    parcels: Any = None
    """The parcels of the parks mapped (a GeoDataFrame: ``parcel_id``, ``park``, ``main_user``, geometry)."""
    scheme: Scheme | None = None
    """The scheme as applied (None: not recorded in the manifest and no preset of the same digest)."""
    reviews: Mapping[str, str] | None = None
    """Review state per flag id, when the service makes the report."""
    parks: tuple[str, ...] = ()
    """The parks the report is restricted to (empty: the whole run)."""

    @property
    def year(self) -> int:
        return int(self.manifest.get("year") or 0)

    @property
    def ranking_unit(self) -> str:
        return self.scheme.ranking_unit if self.scheme is not None else "county"


# --- restriction to parks -----------------------------------------------------------------------------
def restrict(run: RunTables, parks: Sequence[str]) -> RunTables:
    """The run as seen by a park committee: only the enterprises, flags, blocks and problems of ``parks``."""
    if not parks:
        return run
    keep = set(parks)
    e = run.enterprises.loc[run.enterprises["park"].isin(keep)]
    prev = None if run.previous is None else run.previous.loc[run.previous["park"].isin(keep)]
    flags = None if run.flags is None else run.flags.loc[run.flags["park"].isin(keep)]
    parcel_ids = set() if flags is None else set(flags["parcel_id"])
    if run.parcels is not None:
        parcel_ids |= set(run.parcels.loc[run.parcels["park"].isin(keep), "parcel_id"])
    blocks = None if run.blocks is None else run.blocks.loc[_blocks_touching(run.blocks, parcel_ids)]
    units = set(e["county"].dropna()) | keep
    keys = set(e["uscc"]) | parcel_ids
    problems = run.problems.loc[run.problems["key"].isin(keys) | (run.problems["key"].fillna("") == "")]
    benchmarks = run.benchmarks.loc[run.benchmarks["unit"].isin(units)]
    return dataclasses.replace(
        run,
        enterprises=e,
        previous=prev,
        flags=flags,
        blocks=blocks,
        problems=problems,
        benchmarks=benchmarks,
        parks=tuple(sorted(keep)),
    )


def _blocks_touching(blocks: pd.DataFrame, parcel_ids: set[str]) -> np.ndarray:
    ids = blocks["parcel_ids"].fillna("").astype(str).str.split(r"[;；,，\s]+", regex=True)
    return np.array([bool(parcel_ids.intersection(x)) for x in ids], dtype=bool)


# --- helpers ------------------------------------------------------------------------------------------
def is_rated(e: pd.DataFrame) -> pd.Series:
    return e["grade"].isin(RATED)


def _units(e: pd.DataFrame) -> pd.DataFrame:
    """County and park of each enterprise, with a name for missing ones."""
    return pd.DataFrame(
        {
            "county": e["county"].fillna(NO_COUNTY).replace("", NO_COUNTY),
            "park": e["park"].fillna(NO_PARK).replace("", NO_PARK),
        },
        index=e.index,
    )


def by_unit(e: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """Sums of ``values`` (one row per enterprise of ``e``) for all of ``e`` (合计), each county and each
    park within its county, as rows with ``level`` (total, county, park), ``county`` and ``park``, in that
    nesting order (counties and parks by name)."""
    units = _units(e)
    total = values.sum().to_frame().T.assign(level="total", county=TOTAL, park="")
    county = values.groupby(units["county"], sort=True).sum().reset_index().assign(level="county", park="")
    park = values.groupby([units["county"], units["park"]], sort=True).sum().reset_index().assign(level="park")
    nested = pd.concat([county, park], ignore_index=True)
    nested = nested.sort_values(["county", "level", "park"], kind="mergesort")  # "county" < "park"
    out = pd.concat([total, nested], ignore_index=True)
    return out[["level", "county", "park", *values.columns]]


def _defined(e: pd.DataFrame, key: str) -> tuple[pd.Series, pd.Series]:
    """Numerator and denominator of indicator ``key`` on the rated rows where it is defined (0 elsewhere)."""
    ind = INDICATORS[key]
    if ind.numerator not in e or ind.denominator not in e:
        zero = pd.Series(0.0, index=e.index)
        return zero, zero
    ok = (is_rated(e) & indicator(e, key).notna()).to_numpy()
    num = pd.to_numeric(e[ind.numerator], errors="coerce").fillna(0.0).where(ok, 0.0)
    den = pd.to_numeric(e[ind.denominator], errors="coerce").fillna(0.0).where(ok, 0.0)
    return num, den


def _ratio(num: pd.Series | np.ndarray, den: pd.Series | np.ndarray, factor: float = 1.0) -> np.ndarray:
    n, d = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, n / d * factor, np.nan)


def aggregate(e: pd.DataFrame, key: str) -> float:
    """Σ numerator / Σ denominator of indicator ``key`` over the rated rows of ``e`` where it is defined."""
    num, den = _defined(e, key)
    return float(_ratio(np.array([num.sum()]), np.array([den.sum()]), INDICATORS[key].factor)[0])


def _sum(e: pd.DataFrame, column: str) -> float:
    return float(pd.to_numeric(e[column], errors="coerce").sum()) if column in e else float("nan")


def _numbers(e: pd.DataFrame, column: str) -> pd.Series:
    """A column as numbers (NaN where missing, or all NaN without the column)."""
    if column not in e:
        return pd.Series(np.nan, index=e.index, dtype=float)
    return pd.to_numeric(e[column], errors="coerce").astype(float)


# --- 1 概况 -------------------------------------------------------------------------------------------
def overview_values(e: pd.DataFrame) -> pd.DataFrame:
    """Per enterprise, what 概况 adds up: counts, land, tax, sales and the indicators' defined parts."""
    cols: dict[str, pd.Series] = {
        "n_enterprises": pd.Series(1, index=e.index),
        "n_rated": is_rated(e).astype(int),
        "n_t": (e["grade"] == "T").astype(int),
        **{c: _numbers(e, c).fillna(0.0) for c in ("land_mu", "tax", "sales")},
    }
    for k in OVERVIEW_INDICATORS:
        cols[f"{k}__num"], cols[f"{k}__den"] = _defined(e, k)
    return pd.DataFrame(cols, index=e.index)


def overview_table(e: pd.DataFrame) -> pd.DataFrame:
    """概况 per unit: counts, land, tax, sales and the aggregate figures."""
    table = by_unit(e, overview_values(e))
    for k in OVERVIEW_INDICATORS:
        table[k] = _ratio(table.pop(f"{k}__num"), table.pop(f"{k}__den"), INDICATORS[k].factor)
    return table


def overview(run: RunTables) -> pd.DataFrame:
    """概况 per unit (:func:`by_unit`), with last year's aggregate figures (``<key>_prev``) and the change
    in per cent (``<key>_change``) where last year's table is at hand."""
    table = overview_table(run.enterprises)
    if run.previous is None:
        return table
    prev = overview_table(run.previous).set_index(["level", "county", "park"])
    keys = pd.MultiIndex.from_frame(table[["level", "county", "park"]])
    for k in OVERVIEW_INDICATORS:
        last = prev[k].reindex(keys).to_numpy(dtype=float)
        table[f"{k}_prev"] = last
        with np.errstate(divide="ignore", invalid="ignore"):
            table[f"{k}_change"] = np.where(last > 0, (table[k].to_numpy(dtype=float) / last - 1) * 100, np.nan)
    return table


# --- 2 分类结果 -----------------------------------------------------------------------------------------
def classes(run: RunTables) -> pd.DataFrame:
    """分类结果 per unit: counts of A B C D T, the rated (A–D) and the shares of A–D among them."""
    e = run.enterprises
    values = pd.DataFrame({g: (e["grade"] == g).astype(int) for g in GRADES}, index=e.index)
    table = by_unit(e, values)
    table["n_rated"] = table[list(RATED)].sum(axis=1)
    for g in RATED:
        table[f"{g}_share"] = _ratio(table[g], table["n_rated"])
    return table


def cutoffs(run: RunTables) -> pd.DataFrame:
    """The lowest and highest score of each class in each ranking unit and group (the cut-offs as they fell)."""
    e = run.enterprises.loc[is_rated(run.enterprises)]
    unit = "park" if run.ranking_unit == "park" else "county"
    if e.empty:
        return pd.DataFrame(columns=["unit", "group_label", "grade", "n", "min", "max"])
    score = pd.to_numeric(e["score"], errors="coerce")
    frame = pd.DataFrame(
        {"unit": e[unit].fillna(""), "group_label": e["group_label"].fillna(""), "grade": e["grade"], "score": score}
    )
    g = frame.groupby(["unit", "group_label", "grade"], sort=True)["score"]
    out = pd.DataFrame({"n": g.size(), "min": g.min(), "max": g.max()}).reset_index()
    return out


# --- 3 指标分布 -----------------------------------------------------------------------------------------
QUANTILES = {"p5": 0.05, "q1": 0.25, "median": 0.5, "q3": 0.75, "p95": 0.95}


def indicator_distributions(run: RunTables, *, top: int = 15) -> list[dict[str, Any]]:
    """For each group of the scheme and each of its indicators: per park (the ``top`` parks with most
    rated enterprises of the group), the quantiles of the rated enterprises' values and the benchmark of
    the park's ranking unit (the unit most of its enterprises are in)."""
    if run.scheme is None:
        return []
    e = run.enterprises.loc[is_rated(run.enterprises)]
    unit_col = "park" if run.ranking_unit == "park" else "county"
    out = []
    for g in run.scheme.groups:
        rows = e.loc[e["group"] == g.key]
        parks = _top_parks(rows, top)
        sub = rows.loc[rows["park"].isin(parks)]
        units = {p: str(u.value_counts().index[0]) for p, u in sub.groupby("park")[unit_col] if u.notna().any()}
        for rule in g.indicators:
            stats = _quantiles_by_park(_numbers(sub, rule.key), sub["park"])
            keep = [p for p in parks if p in stats]
            marks = [_benchmark(run, units.get(p), g.key, rule.key) for p in keep]
            out.append({"group": g.label, "key": rule.key, "parks": keep, "stats": [stats[p] for p in keep],
                        "benchmarks": marks})  # fmt: skip
    return out


def _top_parks(rows: pd.DataFrame, top: int) -> list[str]:
    counts = rows["park"].dropna().value_counts()
    order = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [str(p) for p, _ in order[:top]]


def _quantiles_by_park(values: pd.Series, parks: pd.Series) -> dict[str, dict[str, float]]:
    """The :data:`QUANTILES` of ``values`` per park (parks without a value left out)."""
    ok = values.notna()
    if not ok.any():
        return {}
    grouped = values[ok].groupby(parks[ok], sort=True)
    q = grouped.quantile(np.array(list(QUANTILES.values()))).unstack()
    n = grouped.size().to_dict()
    return {str(p): {**dict(zip(QUANTILES, row.tolist(), strict=True)), "n": float(n[p])} for p, row in q.iterrows()}


def _benchmark(run: RunTables, unit: str | None, group: str, key: str) -> float | None:
    if unit is None:
        return None
    b = run.benchmarks
    hit = b.loc[(b["unit"] == unit) & (b["group"] == group) & (b["indicator"] == key), "benchmark"]
    value = pd.to_numeric(hit, errors="coerce").dropna()
    return float(value.iloc[0]) if len(value) else None


def weights(scheme: Scheme | None) -> pd.DataFrame:
    """The scheme's indicators per group: weight, benchmark method, k, cap, floor, missing-data rule."""
    rows = [
        {
            "group_label": g.label,
            "indicator": i.key,
            "weight": i.weight,
            "method": i.benchmark,
            "value": i.value,
            "k": i.k,
            "mean": i.mean,
            "cap": i.cap,
            "floor": i.floor,
            "missing": i.missing,
        }
        for g in (scheme.groups if scheme is not None else ())
        for i in g.indicators
    ]
    return pd.DataFrame(rows)


# --- 4 行业 --------------------------------------------------------------------------------------------
def industries(run: RunTables, *, top: int = TOP_DIVISIONS) -> pd.DataFrame:
    """By GB/T 4754 division (the two digits after the section letter): enterprises, land, the median
    亩均税收 of the rated and the class mix; the ``top`` divisions by enterprises, then the rest as one row."""
    e = run.enterprises
    codes = e["industry_code"].astype("string")
    division = industry_division(codes).fillna("").astype(str)
    names = industry_name(codes).astype(str)
    frame = pd.DataFrame(
        {
            "division": division,
            "name": names,
            "grade": e["grade"],
            "land_mu": pd.to_numeric(e["land_mu"], errors="coerce"),
            "tax_per_mu": _numbers(e, "tax_per_mu"),
        },
        index=e.index,
    )
    rows = [_division_row(str(d), part) for d, part in frame.groupby("division", sort=True)]
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.sort_values(["n_enterprises", "division"], ascending=[False, True], kind="mergesort")
    return table.head(top).reset_index(drop=True)


def _division_row(division: str, part: pd.DataFrame) -> dict[str, Any]:
    names = part["name"].loc[part["name"] != ""]
    rated = part.loc[part["grade"].isin(RATED), "tax_per_mu"].dropna()
    counts = part["grade"].value_counts()
    return {
        "division": division or "—",
        "name": names.iloc[0] if len(names) else ("" if division else "（无行业代码）"),
        "n_enterprises": len(part),
        "land_mu": float(part["land_mu"].sum()),
        "tax_per_mu_median": float(rated.median()) if len(rated) else float("nan"),
        **{g: int(counts.get(g, 0)) for g in GRADES},
    }


# --- 5 年度变化 -----------------------------------------------------------------------------------------
def _grades(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(frame["grade"].to_numpy(dtype=object), index=frame["uscc"].to_numpy(dtype=object))


def transition_matrix(run: RunTables) -> pd.DataFrame:
    """Enterprises by last year's class (rows: A–D, T, 新参评 = not in last year's table) and this year's
    (columns: A–D, T, 不再参评 = not in this year's table)."""
    assert run.previous is not None
    cur, prev = _grades(run.enterprises), _grades(run.previous)
    rows, cols = [*GRADES, NEW], [*GRADES, GONE]
    before = np.concatenate([prev.reindex(cur.index).fillna(NEW).to_numpy(), prev[~prev.index.isin(cur.index)]])
    after = np.concatenate([cur.to_numpy(), np.full(len(before) - len(cur), GONE, dtype=object)])
    r = pd.Categorical(before, categories=rows).codes.astype(np.int64)
    c = pd.Categorical(after, categories=cols).codes.astype(np.int64)
    ok = (r >= 0) & (c >= 0)
    counts = np.bincount(r[ok] * len(cols) + c[ok], minlength=len(rows) * len(cols)).reshape(len(rows), len(cols))
    return pd.DataFrame(counts, index=rows, columns=cols)


def change_class(prev: pd.Series, cur: pd.Series) -> pd.Series:
    """升级 / 持平 / 降级 between rated classes; 新参评 (rated now, not last year), 转为不参评 (rated last
    year, T now), 不参评 (T both years or new and T)."""
    order = {g: i for i, g in enumerate(RATED)}
    p, c = prev.map(order), cur.map(order)
    out = pd.Series("不参评", index=cur.index, dtype=object)
    out[c.notna() & p.isna()] = "新参评"
    out[c.isna() & p.notna()] = "转为不参评"
    out[c.notna() & p.notna() & (c < p)] = "升级"
    out[c.notna() & p.notna() & (c == p)] = "持平"
    out[c.notna() & p.notna() & (c > p)] = "降级"
    return out


def enterprise_changes(run: RunTables) -> pd.DataFrame:
    """This year's enterprises with last year's class and their class of change (``change``)."""
    assert run.previous is not None
    e = run.enterprises
    prev = _grades(run.previous).reindex(e["uscc"].to_numpy(dtype=object))
    prev.index = e.index
    out = pd.DataFrame(
        {
            "uscc": e["uscc"],
            "name": e["name"],
            "county": e["county"],
            "park": e["park"],
            "grade": e["grade"],
            "prev_grade": prev,
        }
    )
    out["change"] = change_class(out["prev_grade"], out["grade"])
    return out


def changes_by_park(run: RunTables) -> pd.DataFrame:
    """Per park: enterprises by class of change, and those no longer in the table (by last year's park)."""
    ch = enterprise_changes(run)
    ch["park"] = _units(ch)["park"]
    table = pd.crosstab(ch["park"], ch["change"]).reindex(columns=list(CHANGE_ORDER[:6]), fill_value=0)
    prev = run.previous
    assert prev is not None
    gone = prev.loc[~prev["uscc"].isin(run.enterprises["uscc"])]
    table[GONE] = _units(gone)["park"].value_counts().reindex(table.index, fill_value=0)
    extra = sorted(set(_units(gone)["park"]) - set(table.index))
    if extra:
        more = _units(gone)["park"].value_counts().reindex(extra).rename(GONE).to_frame()
        table = pd.concat([table, more]).fillna(0)
    return table.sort_index().astype(int)


def d_two_years(run: RunTables) -> pd.DataFrame:
    """Enterprises in class D this year and last year, lowest score first."""
    ch = enterprise_changes(run)
    rows = run.enterprises.loc[(ch["grade"] == "D") & (ch["prev_grade"] == "D")]
    return _listing(rows)


def new_and_gone(run: RunTables) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Enterprises new in this year's table, and those of last year's no longer in it."""
    assert run.previous is not None
    e, prev = run.enterprises, run.previous
    return _listing(e.loc[~e["uscc"].isin(prev["uscc"])]), _listing(prev.loc[~prev["uscc"].isin(e["uscc"])])


def _listing(rows: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in ("uscc", "name", "county", "park", "grade", "score") if c in rows]
    out = rows[cols].copy()
    out["score"] = _numbers(out, "score")
    return out.sort_values(["score", "uscc"], kind="mergesort", na_position="last").reset_index(drop=True)


def parcel_changes(run: RunTables) -> pd.Series:
    """The class of change of each mapped parcel's main user (无参评企业: no user), by row of ``run.parcels``."""
    p = run.parcels
    ch = enterprise_changes(run).set_index("uscc")["change"]
    users = p["main_user"].astype(object).where(p["main_user"].notna(), None)
    change = ch.reindex(users.to_numpy(dtype=object)).to_numpy(dtype=object)
    return pd.Series(np.where(pd.isna(change), "无参评企业", change), index=p.index)


def map_parks(enterprises: pd.DataFrame, previous: pd.DataFrame | None, *, most: int = 6) -> list[str]:
    """The parks to map (most changes of class first, then most enterprises), at most ``most``."""
    if previous is None or enterprises.empty:
        return []
    prev = _grades(previous)
    cur = enterprises["grade"].to_numpy(dtype=object)
    before = prev.reindex(enterprises["uscc"].to_numpy(dtype=object)).to_numpy(dtype=object)
    changed = pd.Series(change_class(pd.Series(before), pd.Series(cur)).isin(["升级", "降级"]).to_numpy())
    parks = enterprises["park"].to_numpy(dtype=object)
    frame = pd.DataFrame({"park": parks, "changed": changed.to_numpy()}).dropna(subset=["park"])
    stats = frame.groupby("park", sort=True)["changed"].agg(["sum", "size"]).reset_index()
    stats = stats.sort_values(["sum", "size", "park"], ascending=[False, False, True], kind="mergesort")
    return [str(p) for p in stats["park"].head(most)]


# --- 6 土地 --------------------------------------------------------------------------------------------
def land_flags(run: RunTables) -> pd.DataFrame:
    """Per kind of flag: parcels, their area (each parcel once) and the flags per rule."""
    f = run.flags
    if f is None or f.empty:
        return pd.DataFrame(columns=["flag", "flag_label", "parcels", "area_mu", "flags"])
    parcels = f.drop_duplicates(["flag", "parcel_id"])
    g = parcels.groupby(["flag", "flag_label"], sort=False)
    table = pd.DataFrame({"parcels": g.size(), "area_mu": g["area_mu"].sum()}).reset_index()
    table["flags"] = f.groupby("flag", sort=False).size().reindex(table["flag"]).to_numpy()
    return table.sort_values("flag", kind="mergesort").reset_index(drop=True)


def flags_by_rule(run: RunTables) -> pd.DataFrame:
    """Flags per rule (rule id, its kind), most first."""
    f = run.flags
    if f is None or f.empty:
        return pd.DataFrame(columns=["flag_label", "rule_id", "flags", "area_mu"])
    g = f.groupby(["flag_label", "rule_id"], sort=True)
    table = pd.DataFrame({"flags": g.size(), "area_mu": g["area_mu"].sum()}).reset_index()
    return table.sort_values(["flags", "rule_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)


def flags_by_park(run: RunTables) -> pd.DataFrame:
    """Parcels of each kind of flag per park."""
    f = run.flags
    if f is None or f.empty:
        return pd.DataFrame()
    parcels = f.drop_duplicates(["flag", "parcel_id"])
    return pd.crosstab(parcels["park"].fillna(NO_PARK), parcels["flag_label"]).sort_index()


def top_blocks(run: RunTables, *, top: int = 10) -> pd.DataFrame:
    """The largest 连片改造区块 (then 零星地块 if there are none) with their 亩均税收."""
    b = run.blocks
    if b is None or b.empty:
        return pd.DataFrame()
    cols = ["block_id", "kind", "n_parcels", "area_mu", "n_enterprises", "tax_wan", "tax_per_mu"]
    rows = b[[c for c in cols if c in b]].copy()
    rows = rows.sort_values(["area_mu", "block_id"], ascending=[False, True], kind="mergesort")
    return rows.head(top).reset_index(drop=True)


def block_summary(run: RunTables) -> pd.DataFrame:
    """Blocks per kind: number and area."""
    b = run.blocks
    if b is None or b.empty:
        return pd.DataFrame(columns=["kind", "n", "area_mu"])
    g = b.groupby("kind", sort=True)
    return pd.DataFrame({"n": g.size(), "area_mu": g["area_mu"].sum()}).reset_index()


def review_progress(run: RunTables) -> pd.DataFrame:
    """Flags per kind and review state (the service passes the states in; a flag without one is pending)."""
    f, reviews = run.flags, run.reviews
    if f is None or reviews is None or f.empty:
        return pd.DataFrame()
    states = f["flag_id"].astype(str).map(lambda i: reviews.get(i, "pending"))
    table = pd.crosstab(f["flag_label"], states)
    return table.reindex(columns=["pending", "site_visit", "confirmed", "dismissed"], fill_value=0)


# --- 7 排名 --------------------------------------------------------------------------------------------
@dataclass
class RankList:
    """The top of one ranking unit and group, and its D class (lowest first)."""

    unit: str
    group_label: str
    rated: int
    top: pd.DataFrame
    bottom: pd.DataFrame
    n_d: int = field(default=0)


def rank_lists(run: RunTables, *, top: int = TOP_RANKED, listed: int = LISTED) -> list[RankList]:
    """For each ranking unit (county) and group: the ``top`` best ranked and the D class (at most ``listed``)."""
    e = run.enterprises.loc[is_rated(run.enterprises)].copy()
    unit = "park" if run.ranking_unit == "park" else "county"
    e["_rank"] = pd.to_numeric(e["rank"], errors="coerce")
    out = []
    for (u, g), rows in e.groupby([e[unit].fillna(""), e["group_label"].fillna("")], sort=True):
        rows = rows.sort_values(["_rank", "uscc"], kind="mergesort")
        d = rows.loc[rows["grade"] == "D"].iloc[::-1]
        out.append(RankList(str(u), str(g), len(rows), rows.head(top), d.head(listed), n_d=len(d)))
    return out


def score_histogram(run: RunTables, *, bins: int = 20) -> tuple[list[str], dict[str, list[float]]]:
    """Rated enterprises per score interval and class (for a stacked histogram)."""
    e = run.enterprises.loc[is_rated(run.enterprises)]
    score = pd.to_numeric(e["score"], errors="coerce")
    if score.dropna().empty:
        return [], {}
    hi = float(np.nanquantile(score, 0.99))
    lo = min(0.0, float(score.min()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    clipped = score.clip(upper=edges[-1])
    labels = [f"{edges[i]:.0f}–{edges[i + 1]:.0f}" for i in range(bins)]
    labels[-1] = f"≥{edges[-2]:.0f}"
    series = {}
    for g in RATED:
        counts, _ = np.histogram(clipped.loc[e["grade"] == g].dropna(), bins=edges)
        series[g] = counts.astype(float).tolist()
    return labels, series


# --- 8 数据质量 ------------------------------------------------------------------------------------------
SEVERITIES = ("致命", "警告", "提示")


def problem_kinds(run: RunTables) -> pd.DataFrame:
    """Problems per code (with its first message as the kind's description) and severity."""
    p = run.problems
    if p.empty:
        return pd.DataFrame(columns=["code", "problem", *SEVERITIES, "total"])
    table = pd.crosstab(p["code"].fillna(""), p["severity"]).reindex(columns=list(SEVERITIES), fill_value=0)
    table["total"] = table.sum(axis=1)
    first = p.drop_duplicates("code").set_index("code")["problem"]
    table.insert(0, "problem", first.reindex(table.index).fillna(""))
    table = table.reset_index().rename(columns={"index": "code"})
    return table.sort_values(["total", "code"], ascending=[False, True], kind="mergesort").reset_index(drop=True)


def fallbacks(run: RunTables) -> list[str]:
    """The scoring's fallbacks and the flag rules' notes recorded in the manifest."""
    m = run.manifest
    notes = [str(n) for n in (m.get("fallbacks") or [])]
    flags = m.get("flags") or {}
    return notes + [str(n) for n in (flags.get("notes") or [] if isinstance(flags, dict) else [])]
