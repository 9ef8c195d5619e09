"""The evaluation: from validated inputs to land, indicators, scores, grades and ranks.

Pure: takes :class:`~geo_eval.validate.Inputs` and a :class:`~geo_eval.scheme.Scheme`, returns an
:class:`Evaluation`; files are read and written elsewhere (``geo_eval.io``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_eval import grading, land
from geo_eval.errors import DatasetError
from geo_eval.fields import ENTERPRISE_FIELDS
from geo_eval.grouping import join_groups
from geo_eval.indicators import INDICATORS, compute_indicators
from geo_eval.problems import FATAL, WARNING, Problems
from geo_eval.rating import rating_status
from geo_eval.scheme import GRADE_LABELS, Scheme
from geo_eval.scoring import score
from geo_eval.validate import Inputs

GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3, "T": 4}
UNKNOWN_PARK = "未注明园区"


@dataclass
class Evaluation:
    """Everything one evaluation produces, before it is written anywhere."""

    enterprises: pd.DataFrame  # index uscc, ordered by unit, group, rank
    parcels: gpd.GeoDataFrame  # index parcel_id
    leases: pd.DataFrame
    allocation: pd.DataFrame  # parcel_id, uscc, role, land_m2
    benchmarks: pd.DataFrame
    problems: Problems
    scheme: Scheme
    year: int
    area_crs: str
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """Input file labels (parcels, enterprises, leases) for problem reports."""
    plane: gpd.GeoSeries | None = None
    """The parcels in the Gauss-Krüger plane of ``area_crs`` (for distances and blocks)."""
    main_user_pos: np.ndarray | None = None
    """Per parcel, the position of its main user in ``enterprises`` (-1: none), for the flags."""


def _keys(s: pd.Series) -> pd.Series:
    """Identifiers as a NumPy object column (missing as NaN) for fast hashing in joins."""
    return pd.Series(s.to_numpy(dtype=object, na_value=np.nan), index=s.index, dtype=object, name=s.name)


def _object_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Every text column as a NumPy object column (see :func:`_keys`)."""
    for c in frame.columns:
        if pd.api.types.is_string_dtype(frame[c].dtype) and frame[c].dtype != object:
            frame[c] = _keys(frame[c])
    return frame


def _keys_index(idx: pd.Index) -> pd.Index:
    """An identifier index backed by a NumPy object array."""
    return pd.Index(idx.to_numpy(dtype=object, na_value=np.nan), dtype=object, name=idx.name)


def _lease_problems(inputs: Inputs, leases: pd.DataFrame, parcels: pd.DataFrame, problems: Problems) -> None:
    file = inputs.files.get("leases", "leases")
    rows = leases["source_row"]
    unknown_parcel = ~leases["parcel_id"].isin(parcels.index)
    if unknown_parcel.any():
        problems.add(
            file=file,
            rows=rows[unknown_parcel],
            field="宗地代码",
            values=leases.loc[unknown_parcel, "parcel_id"],
            severity=WARNING,
            code="lease_unknown_parcel",
            problem="租赁的宗地不在宗地图层中",
            action="该租赁不计入任何企业用地",
        )
    unknown_lessee = ~leases["lessee_uscc"].isin(inputs.enterprises.index)
    if unknown_lessee.any():
        problems.add(
            file=file,
            rows=rows[unknown_lessee],
            field="承租方统一社会信用代码",
            values=leases.loc[unknown_lessee, "lessee_uscc"],
            severity=WARNING,
            code="lease_unknown_lessee",
            problem="承租方不在企业数据中",
            action="仍从出租方用地中扣除该租赁面积",
        )
    no_ratio = (leases["lease_basis"] == "厂房") & leases["lease_land_m2"].isna() & ~unknown_parcel
    if no_ratio.any():
        problems.add(
            file=file,
            rows=rows[no_ratio],
            field="租赁厂房面积",
            values=leases.loc[no_ratio, "leased_floor_m2"],
            severity=WARNING,
            code="lease_no_plot_ratio",
            problem="宗地没有总建筑面积，无法按容积率把厂房面积折算为土地面积",
            action="该租赁不计入；请补充宗地总建筑面积",
        )
    own = leases["lessee_uscc"] == leases["parcel_id"].map(parcels["holder_uscc"])
    if own.any():
        problems.add(
            file=file,
            rows=rows[own],
            field="承租方统一社会信用代码",
            values=leases.loc[own, "lessee_uscc"],
            severity=WARNING,
            code="lease_own_parcel",
            problem="承租方就是宗地权利人",
            action="该租赁不计入（自有用地已计入）",
        )
        leases.loc[own, "lease_land_m2"] = np.nan
    counted = leases.loc[leases["lease_land_m2"].notna()]
    total = counted.groupby("parcel_id")["lease_land_m2"].sum()
    over = total[total > parcels["area_m2"].reindex(total.index) * 1.0001]
    if len(over):
        hit = leases["parcel_id"].isin(over.index) & leases["lease_land_m2"].notna()
        pct = leases.loc[hit, "parcel_id"].map(over) / leases.loc[hit, "parcel_id"].map(parcels["area_m2"]) * 100
        problems.add(
            file=file,
            rows=rows[hit],
            field="租赁土地面积",
            values=leases.loc[hit, "lease_land_m2"].round(2),
            severity=WARNING,
            code="lease_exceeds_parcel",
            problem="该宗地的租赁面积合计为宗地面积的 " + pct.round(1).astype(str) + "%，超过宗地面积",
            action="按比例缩减到宗地面积",
        )


def evaluate(inputs: Inputs, scheme: Scheme, *, previous: pd.DataFrame | None = None) -> Evaluation:
    """Evaluate one year: land, indicators, scores, grades, ranks and parcel figures.

    ``previous`` is last year's ``enterprises.csv`` as a frame (see :func:`geo_eval.io.read_previous`).
    """
    timings: dict[str, float] = {}
    problems = inputs.problems
    if problems.has_fatal:
        raise DatasetError(f"输入数据有 {problems.count(FATAL)} 个致命问题，不能评价（见问题清单）", [problems])
    notes = list(inputs.notes)
    t0 = time.perf_counter()

    # --- land -------------------------------------------------------------------------------
    # Keys as plain object arrays: lookups on Arrow-backed string indexes convert the whole index
    # to Python objects at every reindex/map/isin, which dominates the run time at 1M parcels.
    parcels = _object_strings(inputs.parcels.copy())
    parcels.index = _keys_index(parcels.index)
    crs = land.measurement_crs(parcels)
    plane = land.to_plane(parcels, crs)
    plane.index = parcels.index
    areas = land.parcel_areas(parcels, plane=plane, tolerance_pct=scheme.land.area_tolerance_pct)
    pfile = inputs.files.get("parcels", "parcels")
    mism = areas["area_mismatch"]
    if mism.any():
        problems.add(
            file=pfile,
            rows=parcels.loc[mism, "source_row"],
            field="登记面积",
            values=parcels.loc[mism, "registered_area_m2"].round(2),
            severity=WARNING,
            code="area_mismatch",
            problem="图形面积 "
            + areas.loc[mism, "area_m2"].round(2).astype(str)
            + " 平方米与登记面积相差 "
            + areas.loc[mism, "area_diff_pct"].round(2).astype(str)
            + "%"
            + _mu_hint(parcels.loc[mism], areas.loc[mism]),
            action=f"按{'图形' if scheme.land.area_source == 'computed' else '登记'}面积评价；请核实",
        )
    pdata = pd.DataFrame(parcels.drop(columns=parcels.geometry.name))
    pdata = pdata.join(areas)
    if scheme.land.area_source == "registered":
        use = pdata["registered_area_m2"].where(pdata["registered_area_m2"] > 0, pdata["area_m2"])
        pdata["eval_area_m2"] = use
    else:
        pdata["eval_area_m2"] = pdata["area_m2"]
    lease_in = inputs.leases.copy()
    lease_in["parcel_id"] = _keys(lease_in["parcel_id"])
    lease_in["lessee_uscc"] = _keys(lease_in["lessee_uscc"])
    basis = pdata[["eval_area_m2", "floor_area_m2"]].rename(columns={"eval_area_m2": "area_m2"})
    leases = land.lease_land(lease_in, basis, floor_conversion=scheme.land.floor_lease_conversion)
    _lease_problems(inputs, leases, pdata.assign(area_m2=pdata["eval_area_m2"]), problems)
    alloc_parcels = pdata[["holder_uscc"]].assign(area_m2=pdata["eval_area_m2"])
    allocation = land.land_allocation(alloc_parcels, leases)
    ent_land = land.evaluated_land(allocation)
    timings["land"] = time.perf_counter() - t0

    # --- enterprises: land, groups, indicators ------------------------------------------------
    t1 = time.perf_counter()
    ent = _object_strings(inputs.enterprises.copy())
    ent.index = _keys_index(ent.index)
    efile = inputs.files.get("enterprises", "enterprises")
    land_cols = ["owned_m2", "leased_out_m2", "leased_in_m2", "land_m2", "land_mu", "parcel_count", "lease_count"]
    ent = ent.join(ent_land[land_cols], how="left")
    for c in land_cols:
        ent[c] = ent[c].fillna(0)
    # Park from the enterprise's largest parcel use when the table has none.
    by_use = allocation.sort_values(["uscc", "land_m2", "parcel_id"], ascending=[True, False, True], kind="mergesort")
    main_use = by_use.drop_duplicates("uscc").set_index("uscc")["parcel_id"]
    park_from_land = main_use.map(pdata["park"])
    no_park = ent["park"].isna()
    ent.loc[no_park, "park"] = park_from_land.reindex(ent.index[no_park]).to_numpy()
    ent["park"] = ent["park"].fillna(UNKNOWN_PARK)
    no_land = ent["land_m2"] <= 0
    if no_land.any():
        problems.add(
            file=efile,
            rows=ent.loc[no_land, "source_row"],
            field="统一社会信用代码",
            values=ent.index[no_land],
            severity=WARNING,
            code="enterprise_no_land",
            problem="企业在宗地图层和租赁表中都没有用地",
            action="列为T类（不参评），照常列入结果表",
        )
    orphan = pdata["holder_uscc"].notna() & ~pdata["holder_uscc"].isin(ent.index)
    if orphan.any():
        problems.add(
            file=pfile,
            rows=pdata.loc[orphan, "source_row"],
            field="权利人统一社会信用代码",
            values=pdata.loc[orphan, "holder_uscc"],
            severity=WARNING,
            code="holder_not_in_enterprises",
            problem="宗地权利人不在企业数据中",
            action="宗地保留在宗地结果中；其用地不计入任何参评企业",
        )

    status = rating_status(ent, scheme, year=inputs.year)
    ent = ent.join(status)
    ind = compute_indicators(ent, scheme.indicator_keys)
    ent = ent.join(ind)
    _missing_indicator_problems(ent, scheme, problems, efile)
    timings["indicators"] = time.perf_counter() - t1

    # --- scores, grades, ranks ----------------------------------------------------------------
    t2 = time.perf_counter()
    rated_mask = ent["group"] != ""
    rated = ent.loc[rated_mask]
    prev = None
    if previous is not None:
        prev = previous
    elif scheme.needs_previous:
        notes.append("方案需要上年评价结果（--previous），未提供：基准值改用本年均值")
    result = score(rated, scheme, previous=prev)
    notes.extend(result.fallbacks)
    ent = ent.join(result.items)
    ent["score"] = result.score.reindex(ent.index)
    unit_col = scheme.ranking_unit
    keys = rated[[unit_col, "group"]]
    base_grade = grading.grade(result.score, keys, scheme)
    final_grade, veto = grading.apply_vetoes(base_grade, rated, scheme)
    ent["grade"] = final_grade.reindex(ent.index).fillna("T")
    ent["veto"] = veto.reindex(ent.index).fillna("")
    ent["rank"] = grading.ranks(result.score, keys).reindex(ent.index)
    ent["rank_of"] = rated.groupby([unit_col, "group"])["group"].transform("size").reindex(ent.index).astype("Int64")
    ent["grade_label"] = ent["grade"].map(GRADE_LABELS)
    ent["exempt_reason"] = ent["t_reason"].where(ent["grade"] == "T", "")
    if previous is not None:
        ent["prev_grade"] = previous["grade"].reindex(ent.index)
        ent["prev_score"] = pd.to_numeric(previous["score"], errors="coerce").reindex(ent.index)
        ent["score_change"] = (ent["score"] - ent["prev_score"]).round(scheme.grading.score_decimals)
        ent["grade_change"] = _grade_change(ent["prev_grade"], ent["grade"])
    ent["_unit_order"] = ent[unit_col].fillna("")
    ent["_group_order"] = ent["group"].map({g.key: i for i, g in enumerate(scheme.groups)}).fillna(len(scheme.groups))
    ent = ent.sort_values(
        ["_unit_order", "_group_order", "rank", "score"],
        ascending=[True, True, True, False],
        na_position="last",
        kind="mergesort",
    ).drop(columns=["_unit_order", "_group_order", "t_reason"])
    ent.index.name = "uscc"
    timings["scoring"] = time.perf_counter() - t2

    # --- parcels: figures of their users -----------------------------------------------------
    t3 = time.perf_counter()
    out_parcels, main_pos = _parcel_results(parcels, pdata, allocation, ent)
    timings["parcel_join"] = time.perf_counter() - t3
    timings["evaluate_total"] = time.perf_counter() - t0
    return Evaluation(
        enterprises=ent,
        parcels=out_parcels,
        leases=leases,
        allocation=allocation,
        benchmarks=result.benchmarks,
        problems=problems,
        scheme=scheme,
        year=inputs.year,
        area_crs=crs.to_string(),
        notes=notes,
        timings=timings,
        files=dict(inputs.files),
        plane=plane,
        main_user_pos=main_pos,
    )


_FIGURE_LABELS = {f.name: f.label for f in ENTERPRISE_FIELDS} | {"land_mu": "评价用地"}


def _missing_indicator_problems(ent: pd.DataFrame, scheme: Scheme, problems: Problems, file: str) -> None:
    """A warning for each rated enterprise whose indicator cannot be computed, with the rule applied."""
    for g in scheme.groups:
        in_group = ent["group"] == g.key
        for rule in g.indicators:
            ind = INDICATORS[rule.key]
            miss = in_group & ent[rule.key].isna()
            if not miss.any():
                continue
            num, den = ent.loc[miss, ind.numerator], ent.loc[miss, ind.denominator]
            why = np.where(
                num.isna(), _FIGURE_LABELS[ind.numerator] + "缺失", _FIGURE_LABELS[ind.denominator] + "为0或缺失"
            )
            unit = "县区" if scheme.ranking_unit == "county" else "园区"
            action = "该项按0分计" if rule.missing == "zero" else f"该项取本{unit}本组的平均得分（缺失数据规则）"
            problems.add(
                file=file,
                rows=ent.loc[miss, "source_row"],
                field=f"{ind.label}（{g.label}）",
                values=_FIGURE_LABELS[ind.numerator]
                + "="
                + num.astype("string").fillna("空")
                + "；"
                + _FIGURE_LABELS[ind.denominator]
                + "="
                + den.astype("string").fillna("空"),
                problem=("无法计算" + ind.label + "：") + pd.Series(why, index=num.index, dtype=object),
                severity=WARNING,
                code="indicator_missing",
                action=action,
            )


def _mu_hint(parcels: pd.DataFrame, areas: pd.DataFrame) -> pd.Series:
    """A hint where the registered area reads like 亩 entered in a 平方米 column."""
    as_m2 = parcels["registered_area_m2"] * land.M2_PER_MU
    looks_mu = ((as_m2 - areas["area_m2"]).abs() / areas["area_m2"]) < 0.01
    return pd.Series(np.where(looks_mu, "（登记面积疑似按亩填写）", ""), index=parcels.index)


def _grade_change(prev: pd.Series, cur: pd.Series) -> pd.Series:
    p = prev.map(GRADE_ORDER)
    c = cur.map(GRADE_ORDER)
    rated = p.lt(4) & c.lt(4)
    out = pd.Series("", index=cur.index, dtype=object)
    out[prev.isna() & c.lt(4)] = "新参评"
    out[rated & (c < p)] = "上升"
    out[rated & (c > p)] = "下降"
    out[rated & (c == p)] = "持平"
    out[prev.notna() & ~rated] = prev[prev.notna() & ~rated].astype(str) + "→" + cur[prev.notna() & ~rated].astype(str)
    return out


def _parcel_results(
    parcels: gpd.GeoDataFrame, pdata: pd.DataFrame, allocation: pd.DataFrame, ent: pd.DataFrame
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Parcel layer with areas and the figures of the parcel's users.

    ``tax_per_mu`` of a parcel = Σ over its users of (user's tax × share of the user's evaluated land
    on this parcel) / parcel area in 亩; ``grade`` is the grade of the user with most land on it.
    Computed on positions (one hash lookup per key column), not by repeated index alignment.
    """
    n = len(parcels)
    # Positions of every allocation row's parcel and user, kept for the flags (one hash pass each).
    allocation["parcel_pos"] = parcels.index.get_indexer(pd.Index(allocation["parcel_id"]))
    allocation["ent_pos"] = ent.index.get_indexer(pd.Index(allocation["uscc"]))
    a = allocation.loc[allocation["land_m2"] > 0]
    pcode = a["parcel_pos"].to_numpy(dtype=np.int64)
    ecode = a["ent_pos"].to_numpy(dtype=np.int64)
    land_m2 = a["land_m2"].to_numpy(dtype=float)
    known = ecode >= 0
    user_land = np.where(known, ent["land_m2"].to_numpy(dtype=float)[ecode], np.nan)
    user_tax = np.where(known, ent["tax"].to_numpy(dtype=float)[ecode], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        attributed = user_tax * land_m2 / np.where(user_land > 0, user_land, np.nan)
    ok = ~np.isnan(attributed)
    tax = np.bincount(pcode[ok], weights=attributed[ok], minlength=n)
    tax = np.where(np.bincount(pcode[ok], minlength=n) > 0, tax, np.nan)
    # main user: most land on the parcel, then the smaller USCC
    uscc = a["uscc"].to_numpy(dtype=object)
    order = np.lexsort((uscc.astype(str), -land_m2, pcode))
    first = order[np.r_[True, pcode[order][1:] != pcode[order][:-1]]]
    main_code = np.full(n, -1, dtype=np.int64)
    main_code[pcode[first]] = ecode[first]
    main_uscc = np.full(n, np.nan, dtype=object)
    main_uscc[pcode[first]] = uscc[first]
    owners = allocation["role"].to_numpy() == "owner"
    opos = allocation.loc[owners, "parcel_pos"].to_numpy(dtype=np.int64)
    leased_out = np.bincount(opos, weights=allocation.loc[owners, "leased_out_m2"].to_numpy(dtype=float), minlength=n)
    by_code = np.lexsort((uscc.astype(str), pcode))  # users listed in USCC order
    users = join_groups(pd.Series(pcode[by_code]), pd.Series(uscc[by_code]), ";") if len(a) else pd.Series(dtype=object)
    users_arr = np.full(n, "", dtype=object)
    if len(users):
        users_arr[users.index.to_numpy(dtype=np.int64)] = users.to_numpy()

    def of_main(col: str) -> np.ndarray:
        values = ent[col].to_numpy(dtype=object)
        return np.where(main_code >= 0, values[np.maximum(main_code, 0)], np.nan) if len(values) else main_code * np.nan

    out = parcels.copy()
    for c in ("area_m2", "area_mu", "area_diff_pct", "eval_area_m2"):
        out[c] = pdata[c].to_numpy()
    out["leased_out_m2"] = leased_out
    out["users"] = users_arr
    out["main_user"] = main_uscc
    out["main_user_name"] = of_main("name")
    out["grade"] = of_main("grade")
    out["tax_per_mu"] = tax / (out["eval_area_m2"].to_numpy(dtype=float) / land.M2_PER_MU)
    out["holder_in_enterprises"] = ent.index.get_indexer(pd.Index(out["holder_uscc"])) >= 0
    return out, main_code


def indicator_labels(scheme: Scheme) -> dict[str, str]:
    """Chinese header with unit for each indicator column the scheme uses."""
    return {k: f"{INDICATORS[k].label}（{INDICATORS[k].unit}）" for k in scheme.indicator_keys}


def grade_counts(ev: Evaluation) -> dict[str, dict[str, int]]:
    """Counts per grade per ranking unit, and in total."""
    unit = ev.scheme.ranking_unit
    e = ev.enterprises
    out: dict[str, dict[str, int]] = {}
    for u, sub in e.groupby(e[unit].fillna("（未注明）"), sort=True):
        vc = sub["grade"].value_counts()
        out[str(u)] = {g: int(vc.get(g, 0)) for g in ("A", "B", "C", "D", "T")}
    vc = e["grade"].value_counts()
    out["合计"] = {g: int(vc.get(g, 0)) for g in ("A", "B", "C", "D", "T")}
    return out
