"""The evaluation: from validated inputs to land, indicators, scores, grades and ranks.

Pure: takes :class:`~geo_eval.inputs.validate.Inputs` and a :class:`~geo_eval.rating.scheme.Scheme`, returns an
:class:`Evaluation`; files are read and written elsewhere (``geo_eval.io``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_eval.errors import FatalInputError
from geo_eval.inputs.corrections import corrected_fields, corrected_keys
from geo_eval.inputs.fields import ENTERPRISE_FIELDS
from geo_eval.inputs.keys import positions, string_rank, take, to_objects
from geo_eval.inputs.problems import WARNING, Problems
from geo_eval.inputs.validate import Inputs, report_cross
from geo_eval.landuse import land
from geo_eval.rating import grading
from geo_eval.rating.grouping import join_groups
from geo_eval.rating.indicators import INDICATORS, compute_indicators
from geo_eval.rating.rating import rating_status
from geo_eval.rating.scheme import GRADE_LABELS, Scheme
from geo_eval.rating.scoring import score

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


def _lease_problems(
    inputs: Inputs,
    leases: pd.DataFrame,
    holder: np.ndarray,
    area_m2: np.ndarray,
    lessee_known: np.ndarray,
    problems: Problems,
) -> None:
    """Warnings on the leases; ``holder`` and ``area_m2`` per parcel position, ``lessee_known`` per lease.

    A lease of the holder's own parcel stops counting (its ``lease_land_m2`` becomes NaN)."""
    file = inputs.files.get("leases", "leases")
    rows = leases["source_row"]
    pos = leases["parcel_pos"].to_numpy(dtype=np.int64)
    unknown_parcel = pos < 0
    if unknown_parcel.any():
        report_cross(
            problems, "lease_unknown_parcel", file, rows[unknown_parcel], leases.loc[unknown_parcel, "parcel_id"]
        )
    unknown_lessee = ~lessee_known
    if unknown_lessee.any():
        report_cross(
            problems, "lease_unknown_lessee", file, rows[unknown_lessee], leases.loc[unknown_lessee, "lessee_uscc"]
        )
    no_ratio = ((leases["lease_basis"] == "厂房") & leases["lease_land_m2"].isna()).to_numpy() & ~unknown_parcel
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
    lessee = to_objects(leases["lessee_uscc"], None)
    parcel_holder = take(holder, pos, None)
    own = np.asarray(lessee == parcel_holder, dtype=bool) & pd.notna(lessee)
    if own.any():
        report_cross(problems, "lease_own_parcel", file, rows[own], leases.loc[own, "lessee_uscc"])
        leases.loc[own, "lease_land_m2"] = np.nan
    land = leases["lease_land_m2"].to_numpy(dtype=float)
    counted = ~np.isnan(land) & (pos >= 0)
    total = np.bincount(pos[counted], weights=land[counted], minlength=len(area_m2))
    over_parcel = total > area_m2 * 1.0001
    hit = counted & over_parcel[np.maximum(pos, 0)]
    if hit.any():
        pct = pd.Series(total[pos[hit]] / area_m2[pos[hit]] * 100, index=leases.index[hit])
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
    Pure: ``inputs`` are left as they are; the problems of the inputs and those the evaluation finds
    are in ``Evaluation.problems`` (a copy), so evaluating the same inputs with two schemes gives two
    separate reports. Raises :class:`~geo_eval.errors.FatalInputError` (with the inputs' report)
    when the inputs have fatal problems: such inputs are never evaluated.
    """
    timings: dict[str, float] = {}
    if inputs.problems.has_fatal:
        raise FatalInputError(inputs.problems.frame())
    problems = inputs.problems.copy()
    notes = list(inputs.notes)
    t0 = time.perf_counter()

    # --- land -------------------------------------------------------------------------------
    # Keys are hashed once each (geo_eval.inputs.keys.positions); from there on rows meet by position.
    parcels = inputs.parcels
    crs = land.measurement_crs(parcels)
    plane = land.to_plane(parcels, crs)
    plane.index = parcels.index
    areas = land.parcel_areas(parcels, plane=plane, tolerance_pct=scheme.land.area_tolerance_pct)
    pfile = inputs.files.get("parcels", "parcels")
    corrected_area = parcels.index.isin(corrected_keys(inputs, "registered_area_m2"))
    mism = areas["area_mismatch"].to_numpy()
    source = "图形" if scheme.land.area_source == "computed" else "登记"
    _area_mismatch(problems, pfile, parcels, areas, mism & ~corrected_area, f"按{source}面积评价；请核实")
    _area_mismatch(problems, pfile, parcels, areas, mism & corrected_area, "按更正后的登记面积评价；请核实图形")
    pdata = pd.DataFrame({c: parcels[c] for c in parcels.columns if c != parcels.geometry.name}, index=parcels.index)
    for c in areas.columns:
        pdata[c] = areas[c].to_numpy()
    if scheme.land.area_source == "registered":
        use = pdata["registered_area_m2"].where(pdata["registered_area_m2"] > 0, pdata["area_m2"])
        pdata["eval_area_m2"] = use
    else:
        pdata["eval_area_m2"] = pdata["area_m2"]
    if corrected_area.any():  # a decided 用地面积 is what the parcel counts for, whatever area_source says
        pdata.loc[corrected_area, "eval_area_m2"] = pdata.loc[corrected_area, "registered_area_m2"]
    eval_area = pdata["eval_area_m2"].to_numpy(dtype=float)
    basis = pd.DataFrame({"area_m2": eval_area, "floor_area_m2": pdata["floor_area_m2"].to_numpy()}, index=pdata.index)
    leases = land.lease_land(inputs.leases, basis, floor_conversion=scheme.land.floor_lease_conversion)
    ent = inputs.enterprises.copy()
    holder = to_objects(pdata["holder_uscc"], None)
    lessee_known = positions(ent.index, leases["lessee_uscc"]) >= 0
    _lease_problems(inputs, leases, holder, eval_area, lessee_known, problems)
    allocation = land.land_allocation(
        pd.DataFrame({"holder_uscc": pdata["holder_uscc"], "area_m2": basis["area_m2"]}), leases
    )
    allocation["ent_pos"] = positions(ent.index, allocation["uscc"])
    ent_land = land.evaluated_land(allocation, ent.index)
    timings["land"] = time.perf_counter() - t0

    # --- enterprises: land, groups, indicators ------------------------------------------------
    t1 = time.perf_counter()
    efile = inputs.files.get("enterprises", "enterprises")
    for c in ("owned_m2", "leased_out_m2", "leased_in_m2", "land_m2", "land_mu", "parcel_count", "lease_count"):
        ent[c] = ent_land[c].to_numpy()
    fields = None if inputs.corrections is None else corrected_fields(ent.index, allocation, inputs.corrections)
    if fields is not None and (fields != "").any():  # else enterprises.csv's column stays empty, no sheet shows it
        ent["corrected_fields"] = fields
    no_park = ent["park"].isna().to_numpy()
    if no_park.any():
        ent.loc[no_park, "park"] = _park_from_land(allocation, pdata["park"], no_park)
    ent["park"] = ent["park"].fillna(UNKNOWN_PARK)
    no_land = ent["land_m2"] <= 0
    if no_land.any():
        report_cross(problems, "enterprise_no_land", efile, ent.loc[no_land, "source_row"], ent.index[no_land])
    owner_rows = (allocation["role"] == "owner").to_numpy()
    orphan_pos = allocation["parcel_pos"].to_numpy()[owner_rows & (allocation["ent_pos"].to_numpy() < 0)]
    if len(orphan_pos):
        orphans = pdata.iloc[orphan_pos]
        report_cross(problems, "holder_not_in_enterprises", pfile, orphans["source_row"], orphans["holder_uscc"])

    status = rating_status(ent, scheme, year=inputs.year)
    for c in status.columns:
        ent[c] = status[c].to_numpy()
    ind = compute_indicators(ent, scheme.indicator_keys)
    for c in ind.columns:
        ent[c] = ind[c].to_numpy()
    _missing_indicator_problems(ent, scheme, problems, efile)
    _implausible_tax_per_mu(ent, scheme, problems, efile)
    timings["indicators"] = time.perf_counter() - t1

    # --- scores, grades, ranks ----------------------------------------------------------------
    t2 = time.perf_counter()
    unit_col = scheme.ranking_unit
    rated_pos = np.flatnonzero((ent["group"] != "").to_numpy())
    rated = ent[_scoring_columns(scheme, ent)].iloc[rated_pos]
    prev = None
    if previous is not None:
        prev = previous
    elif scheme.needs_previous:
        notes.append("方案需要上年评价结果（--previous），未提供：基准值改用本年均值")
    result = score(rated, scheme, previous=prev)
    notes.extend(result.fallbacks)
    n_ent = len(ent)

    def of_rated(values: pd.Series | pd.api.extensions.ExtensionArray | np.ndarray, fill: object) -> np.ndarray:
        out = np.full(n_ent, fill, dtype=float if isinstance(fill, float) else object)
        out[rated_pos] = np.asarray(values, dtype=out.dtype)
        return out

    for c in result.items.columns:
        ent[c] = of_rated(result.items[c], np.nan)
    ent["score"] = of_rated(result.score, np.nan)
    keys = rated[[unit_col, "group"]]
    base_grade = grading.grade(result.score, keys, scheme)
    final_grade, veto = grading.apply_vetoes(base_grade, rated, scheme)
    ent["grade"] = of_rated(final_grade, "T")
    ent["veto"] = of_rated(veto, "")
    rank_values = grading.ranks(result.score, keys).to_numpy(dtype=float, na_value=np.nan)
    ent["rank"] = pd.array(of_rated(rank_values, np.nan), dtype="Int64")
    unit_codes, _ = pd.factorize(keys[unit_col])
    group_codes, _ = pd.factorize(keys["group"])
    cell = unit_codes.astype(np.int64) * (group_codes.max(initial=0) + 2) + group_codes
    cell_codes, cell_n = np.unique(cell, return_inverse=True, return_counts=True)[1:]
    size = np.where(unit_codes >= 0, cell_n[cell_codes], np.nan) if len(cell) else np.zeros(0)
    ent["rank_of"] = pd.array(of_rated(size, np.nan), dtype="Int64")
    ent["grade_label"] = ent["grade"].map(GRADE_LABELS)
    ent["exempt_reason"] = ent["t_reason"].where(ent["grade"] == "T", "")
    if previous is not None:
        ppos = positions(previous.index, ent.index)
        ent["prev_grade"] = take(previous["grade"].to_numpy(dtype=object), ppos)
        ent["prev_score"] = take(pd.to_numeric(previous["score"], errors="coerce").to_numpy(dtype=float), ppos)
        ent["score_change"] = (ent["score"] - ent["prev_score"]).round(scheme.grading.score_decimals)
        ent["grade_change"] = _grade_change(ent["prev_grade"], ent["grade"])
    order = _result_order(ent, scheme)
    ent = ent.take(order).drop(columns=["t_reason"])
    ent.index.name = "uscc"
    new_pos = np.empty(len(order), dtype=np.int64)
    new_pos[order] = np.arange(len(order), dtype=np.int64)
    epos = allocation["ent_pos"].to_numpy(dtype=np.int64)
    allocation["ent_pos"] = np.where(epos >= 0, new_pos[np.maximum(epos, 0)], -1)
    timings["scoring"] = time.perf_counter() - t2

    # --- parcels: figures of their users -----------------------------------------------------
    t3 = time.perf_counter()
    out_parcels, main_pos = _parcel_results(parcels, pdata, allocation, ent)
    plane.index = out_parcels.index  # the same codes, the same index object (frames built on both align for free)
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


def _park_from_land(allocation: pd.DataFrame, park: pd.Series, wanted: np.ndarray) -> np.ndarray:
    """For the enterprises at ``wanted`` (a mask on their positions), the park of the parcel they use
    most land on (then the smallest parcel code); missing where they use none."""
    epos = allocation["ent_pos"].to_numpy(dtype=np.int64)
    rows = allocation.loc[(epos >= 0) & wanted[np.maximum(epos, 0)], ["ent_pos", "land_m2", "parcel_id", "parcel_pos"]]
    by_use = rows.sort_values(["ent_pos", "land_m2", "parcel_id"], ascending=[True, False, True], kind="mergesort")
    main = by_use.drop_duplicates("ent_pos")
    out = np.full(len(wanted), None, dtype=object)
    out[main["ent_pos"].to_numpy()] = to_objects(park.iloc[main["parcel_pos"].to_numpy()], None)
    return out[wanted]


def _scoring_columns(scheme: Scheme, ent: pd.DataFrame) -> list[str]:
    """The enterprise columns scoring, grading and vetoes read (a narrow copy of the rated rows)."""
    cols = [scheme.ranking_unit, "group"]
    for key in scheme.indicator_keys:
        cols += [INDICATORS[key].numerator, INDICATORS[key].denominator]
    cols += ["bonus", "penalty"] + [v.field for v in scheme.vetoes]
    return [c for c in dict.fromkeys(cols) if c in ent.columns]


def _result_order(ent: pd.DataFrame, scheme: Scheme) -> np.ndarray:
    """Positions in the order of ``enterprises.csv``: ranking unit, group (scheme order), rank, score
    (high first), then the input order; missing units first, missing ranks and scores last."""
    unit_codes, _ = pd.factorize(ent[scheme.ranking_unit], sort=True)  # -1 (missing) sorts first
    groups = {g.key: i for i, g in enumerate(scheme.groups)}
    codes, uniques = pd.factorize(ent["group"])
    group_order = np.append([groups.get(u, len(groups)) for u in uniques], len(groups))[codes]
    rank = ent["rank"].to_numpy(dtype=float, na_value=np.inf)
    neg_score = -ent["score"].to_numpy(dtype=float)
    neg_score[np.isnan(neg_score)] = np.inf
    return np.lexsort((np.arange(len(ent)), neg_score, rank, group_order, unit_codes))


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


def _implausible_tax_per_mu(ent: pd.DataFrame, scheme: Scheme, problems: Problems, file: str) -> None:
    """A warning for each enterprise whose tax per 亩 of evaluated land is above the scheme's bound."""
    bound = scheme.checks.tax_per_mu_above
    if bound is None:
        return
    land_mu = ent["land_mu"].to_numpy(dtype=float)
    tax = ent["tax"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_mu = np.where(land_mu > 0, tax / np.where(land_mu > 0, land_mu, 1.0), np.nan)
    hit = per_mu > bound
    if hit.any():
        problems.add(
            file=file,
            rows=ent.loc[hit, "source_row"],
            field="亩均税收",
            values=np.round(per_mu[hit], 2),
            severity=WARNING,
            code="implausible_tax_per_mu",
            problem=f"亩均税收（税收 ÷ 评价用地）超过 {bound:g} 万元/亩，数值不合理",
            action="照常评价；请核对税收是否按万元填写、用地是否完整（方案 [checks] tax_per_mu_above）",
        )


def _area_mismatch(
    problems: Problems, file: str, parcels: pd.DataFrame, areas: pd.DataFrame, mism: np.ndarray, action: str
) -> None:
    """Warn where the computed and the registered area differ beyond the tolerance (``mism``)."""
    if not mism.any():
        return
    problems.add(
        file=file,
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
    on this parcel) / parcel area in 亩; ``grade`` is the grade of the user with most land on it (then
    the smaller USCC); ``users`` lists the users in USCC order. Computed on the allocation's
    positions (``parcel_pos``, ``ent_pos``): identifiers are compared only on parcels with several users.
    """
    n = len(parcels)
    a = allocation.loc[allocation["land_m2"] > 0]
    pcode = a["parcel_pos"].to_numpy(dtype=np.int64)
    ecode = a["ent_pos"].to_numpy(dtype=np.int64)
    land_m2 = a["land_m2"].to_numpy(dtype=float)
    uscc = a["uscc"].to_numpy(dtype=object)
    user_land = take(ent["land_m2"].to_numpy(dtype=float), ecode)
    user_tax = take(ent["tax"].to_numpy(dtype=float), ecode)
    with np.errstate(divide="ignore", invalid="ignore"):
        attributed = user_tax * land_m2 / np.where(user_land > 0, user_land, np.nan)
    ok = ~np.isnan(attributed)
    tax = np.bincount(pcode[ok], weights=attributed[ok], minlength=n)
    tax = np.where(np.bincount(pcode[ok], minlength=n) > 0, tax, np.nan)
    # One user: that user. Several: most land, then the smaller USCC; users joined in USCC order.
    main_code = np.full(n, -1, dtype=np.int64)
    main_uscc = np.full(n, np.nan, dtype=object)
    users_arr = np.full(n, "", dtype=object)
    multi = np.bincount(pcode, minlength=n)[pcode] > 1
    single = ~multi
    main_code[pcode[single]] = ecode[single]
    main_uscc[pcode[single]] = uscc[single]
    users_arr[pcode[single]] = uscc[single]
    if multi.any():
        mp, me, mu = pcode[multi], ecode[multi], uscc[multi]
        rank = string_rank(pd.Index(mu))
        order = np.lexsort((rank, -land_m2[multi], mp))
        first = order[np.r_[True, mp[order][1:] != mp[order][:-1]]]
        main_code[mp[first]] = me[first]
        main_uscc[mp[first]] = mu[first]
        by_code = np.lexsort((rank, mp))
        users = join_groups(pd.Series(mp[by_code]), pd.Series(mu[by_code]), ";")
        users_arr[users.index.to_numpy(dtype=np.int64)] = users.to_numpy()
    owners = (allocation["role"] == "owner").to_numpy()
    opos = allocation["parcel_pos"].to_numpy(dtype=np.int64)[owners]
    leased_out = np.bincount(opos, weights=allocation["leased_out_m2"].to_numpy(dtype=float)[owners], minlength=n)
    holder_known = np.zeros(n, dtype=bool)
    holder_known[opos[allocation["ent_pos"].to_numpy()[owners] >= 0]] = True

    def of_main(col: str) -> np.ndarray:
        return take(ent[col].to_numpy(dtype=object), main_code)

    # Text as NumPy object columns (the flags and blocks work on object arrays); explicit dtype=object,
    # or pandas would infer Arrow strings again.
    index = pd.Index(to_objects(parcels.index), name=parcels.index.name, dtype=object)
    out = parcels.copy(deep=False)
    out.index = index

    def put(name: str, values: object) -> None:
        if isinstance(values, pd.Series):
            values = to_objects(values) if pd.api.types.is_string_dtype(values.dtype) else values.to_numpy()
        arr = np.asarray(values)
        out[name] = pd.Series(arr, index=index, dtype=object) if arr.dtype == object else arr

    for c in parcels.columns:
        if c != parcels.geometry.name:
            put(c, parcels[c])
    for c in ("area_m2", "area_mu", "area_diff_pct", "eval_area_m2"):
        put(c, pdata[c])
    put("leased_out_m2", leased_out)
    put("users", users_arr)
    put("main_user", main_uscc)
    put("main_user_name", of_main("name"))
    put("grade", of_main("grade"))
    put("tax_per_mu", tax / (pdata["eval_area_m2"].to_numpy(dtype=float) / land.M2_PER_MU))
    put("holder_in_enterprises", holder_known)
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
