"""Input checks: every problem of every table at once, with file, row, field and a Chinese message.

The functions here turn loaded tables (canonical column names, text or typed cells) into typed
frames indexed by their keys, and record each problem in a :class:`~geo_eval.problems.Problems`.
Fatal problems (missing keys, duplicates, unreadable numbers, unusable geometry, no CRS) stop an
evaluation; warnings keep the row and say what was done.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo_eval.crs import fix_prefix_mismatch, gk_epsg, prefixed_zone_from_easting
from geo_eval.fields import PARCEL_FIELDS, TABLE_FIELDS, Field
from geo_eval.problems import FATAL, INFO, WARNING, Problems
from geo_eval.rating import INDUSTRY_CODE_PATTERN
from geo_eval.table import Table
from geo_eval.uscc import normalize_uscc, uscc_problems

ABOVE_SCALE_REVENUE = 2000.0
"""规上: main-business revenue ≥ 20 million yuan = 2000 万元 (domain.md §1)."""

_TRUE = {"是", "y", "yes", "true", "t", "1", "√", "✓", "规上", "规模以上", "有", "否决"}
_FALSE = {"否", "n", "no", "false", "f", "0", "×", "✗", "规下", "规模以下", "无", ""}


@dataclass
class Inputs:
    """Validated, typed inputs of one evaluation year."""

    parcels: gpd.GeoDataFrame  # index parcel_id
    enterprises: pd.DataFrame  # index uscc
    leases: pd.DataFrame  # one row per lease
    year: int
    evaluation_date: dt.date | None = None
    files: dict[str, str] = field(default_factory=dict)  # parcels/enterprises/leases → file label
    problems: Problems = field(default_factory=Problems)
    notes: list[str] = field(default_factory=list)


def _text(s: pd.Series) -> pd.Series:
    out = s.astype("string").str.normalize("NFKC").str.strip()
    return out.mask(out == "", pd.NA)


def _rows(t: Table, mask: pd.Series | np.ndarray) -> np.ndarray:
    return t.frame["source_row"].to_numpy()[np.asarray(mask, dtype=bool)]


def parse_numbers(t: Table, f: Field, problems: Problems) -> pd.Series:
    """A numeric column in canonical units; non-numbers and negatives are fatal."""
    raw = t.frame[f.name]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.astype(float)
        bad = pd.Series(False, index=raw.index)
    else:
        s = raw.astype("string").str.normalize("NFKC").str.replace(r"[,\s]", "", regex=True)
        s = s.mask(s.isin(["", "-", "—", "/", "无", "nan", "NaN", "None"]), pd.NA)
        values = pd.to_numeric(s, errors="coerce").astype(float)
        bad = (s.notna() & values.isna()).fillna(False).astype(bool)
    header = t.headers.get(f.name, f.label)
    if bad.any():
        problems.add(
            file=t.file,
            rows=_rows(t, bad),
            field=header,
            values=raw[bad],
            severity=FATAL,
            code="not_a_number",
            problem=f"{f.label}不是数字",
            action="请改为数字（单位：" + (f.unit or "无") + "）后重新运行",
        )
    neg = (values < 0).fillna(False).astype(bool)
    if neg.any():
        what = "金额" if f.kind == "money" else "数值"
        problems.add(
            file=t.file,
            rows=_rows(t, neg),
            field=header,
            values=raw[neg],
            severity=FATAL,
            code="negative",
            problem=f"{f.label}为负数，{what}不能小于0",
            action="请核对后改正再运行",
        )
    factor = t.factors.get(f.name, 1.0)
    return values * factor if factor != 1.0 else values


def parse_dates(t: Table, f: Field, problems: Problems) -> pd.Series:
    """A date column; unreadable dates are warnings and treated as empty."""
    raw = t.frame[f.name]
    if pd.api.types.is_datetime64_any_dtype(raw):
        return pd.to_datetime(raw).dt.tz_localize(None) if getattr(raw.dt, "tz", None) else pd.to_datetime(raw)
    obj = raw.astype(object)
    is_num = obj.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v == v)
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    if is_num.any():  # Excel serial dates
        out[is_num] = pd.to_datetime(obj[is_num].astype(float), unit="D", origin="1899-12-30")
    is_dt = obj.map(lambda v: isinstance(v, (dt.date, pd.Timestamp)))
    if is_dt.any():
        out[is_dt] = pd.to_datetime(obj[is_dt].astype(str).str.slice(0, 19))
    rest = ~is_num & ~is_dt
    s = _text(obj[rest].astype(object).where(obj[rest].notna(), None))
    s = (
        s.str.replace("年", "-")
        .str.replace("月", "-")
        .str.replace("日", "")
        .str.replace(".", "-")
        .str.replace("/", "-")
    )
    parsed = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
    need = parsed.isna() & s.notna()
    if need.any():
        parsed[need] = pd.to_datetime(s[need], format="mixed", errors="coerce")
    out[rest] = parsed
    bad = (rest & s.reindex(raw.index).notna() & out.isna()).fillna(False).astype(bool)
    if bad.any():
        problems.add(
            file=t.file,
            rows=_rows(t, bad),
            field=t.headers.get(f.name, f.label),
            values=raw[bad],
            severity=WARNING,
            code="bad_date",
            problem=f"{f.label}无法识别为日期",
            action="按空值处理；请使用 2024-05-01 格式",
        )
    return out


def parse_bools(t: Table, f: Field, problems: Problems) -> pd.Series:
    """A yes/no column (是/否, Y/N, 1/0 …); anything else is a warning and treated as empty."""
    raw = t.frame[f.name]
    s = raw.astype("string").str.normalize("NFKC").str.strip().str.lower().fillna("")
    out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    out[s.isin(_TRUE)] = True
    out[s.isin(_FALSE - {""})] = False
    bad = ~s.isin(_TRUE | _FALSE)
    if bad.any():
        problems.add(
            file=t.file,
            rows=_rows(t, bad),
            field=t.headers.get(f.name, f.label),
            values=raw[bad],
            severity=WARNING,
            code="bad_flag",
            problem=f"{f.label}应填“是”或“否”",
            action="按空值处理",
        )
    return out


def typed_frame(t: Table, problems: Problems) -> pd.DataFrame:
    """Every contract column of ``t`` converted to its kind; ``source_row`` kept."""
    out = pd.DataFrame(index=t.frame.index)
    for f in TABLE_FIELDS[t.name]:
        if f.name not in t.frame:
            continue
        if f.kind in ("number", "money"):
            out[f.name] = parse_numbers(t, f, problems)
        elif f.kind == "date":
            out[f.name] = parse_dates(t, f, problems)
        elif f.kind == "bool":
            out[f.name] = parse_bools(t, f, problems)
        elif f.kind == "code":
            out[f.name] = (
                normalize_uscc(t.frame[f.name]) if f.name.endswith("uscc") else _text(t.frame[f.name]).str.upper()
            )
        else:
            out[f.name] = _text(t.frame[f.name])
    out["source_row"] = t.frame["source_row"].to_numpy()
    return out


def _report_units(t: Table, problems: Problems) -> None:
    for name, note in t.unit_notes.items():
        problems.add(
            file=t.file,
            rows=[""],
            field=t.headers.get(name, name),
            severity=INFO,
            code="unit_converted",
            problem=f"表头单位与标准单位不同（{note}）",
            action="已自动换算",
        )
    for h in t.unknown:
        problems.add(
            file=t.file,
            rows=[""],
            field=h,
            severity=INFO,
            code="unknown_column",
            problem="未识别的列（不在数据规范中）",
            action="已忽略该列",
        )


def _required(t: Table, df: pd.DataFrame, name: str, problems: Problems, severity: str, action: str) -> None:
    f = next(f for f in TABLE_FIELDS[t.name] if f.name == name)
    miss = df[name].isna() & ~t.frame["_empty"].to_numpy()
    if miss.any():
        problems.add(
            file=t.file,
            rows=_rows(t, miss),
            field=t.headers.get(name, f.label),
            severity=severity,
            code="missing_value",
            problem=f"缺少{f.label}",
            action=action,
        )


def _duplicates(t: Table, df: pd.DataFrame, name: str, problems: Problems, what: str) -> None:
    key = df[name]
    dup = key.notna() & key.duplicated(keep=False)
    if dup.any():
        first = df.loc[dup].groupby(name)["source_row"].transform(lambda r: "、".join(str(x) for x in r))
        problems.add(
            file=t.file,
            rows=_rows(t, dup),
            field=t.headers.get(name, name),
            values=key[dup],
            severity=FATAL,
            code="duplicate_key",
            problem="重复的" + what + "（出现在第 " + first.astype(str) + " 行）",
            action="请删除或合并重复行后重新运行",
        )


def _uscc_check(t: Table, df: pd.DataFrame, name: str, problems: Problems) -> None:
    codes = df[name]
    present = codes.notna()
    reasons = uscc_problems(codes[present])
    bad = reasons != ""
    if bad.any():
        idx = reasons.index[bad]
        problems.add(
            file=t.file,
            rows=df.loc[idx, "source_row"].to_numpy(),
            field=t.headers.get(name, name),
            values=codes[idx],
            severity=WARNING,
            code="uscc_invalid",
            problem="统一社会信用代码校验不通过：" + reasons[bad],
            action="保留该行并照常评价；请向登记机关核实代码",
        )


def validate_enterprises(t: Table, problems: Problems) -> pd.DataFrame:
    """Typed enterprise table indexed by USCC (duplicates and blank codes are fatal)."""
    _report_units(t, problems)
    df = typed_frame(t, problems)
    blank = t.frame["_empty"].to_numpy()
    if blank.any():
        problems.add(
            file=t.file,
            rows=_rows(t, blank),
            field="",
            severity=INFO,
            code="empty_row",
            problem="空行",
            action="已跳过",
        )
    _required(t, df, "uscc", problems, FATAL, "请补全统一社会信用代码后重新运行")
    _required(t, df, "county", problems, FATAL, "请补全县区（评价按县区排名）后重新运行")
    _required(t, df, "tax", problems, FATAL, "请填写税收（无税收填 0）后重新运行")
    _required(t, df, "name", problems, WARNING, "保留该行并照常评价")
    _duplicates(t, df, "uscc", problems, "统一社会信用代码")
    _uscc_check(t, df, "uscc", problems)
    for col in (
        "park",
        "industry_code",
        "above_scale",
        "production_start",
        "exempt_reason",
        "safety_veto",
        "environment_veto",
    ):
        if col not in df:
            df[col] = pd.NA
    for col in (
        "sales",
        "value_added",
        "main_revenue",
        "rnd",
        "energy_tce",
        "electricity_10k_kwh",
        "emission_t",
        "employees",
        "bonus",
        "penalty",
    ):
        if col not in df:
            df[col] = np.nan
    derive = df["above_scale"].isna() & df["main_revenue"].notna()
    if derive.any():
        df.loc[derive, "above_scale"] = df.loc[derive, "main_revenue"] >= ABOVE_SCALE_REVENUE
        problems.add(
            file=t.file,
            rows=_rows(t, derive),
            field="是否规上",
            values=df.loc[derive, "main_revenue"],
            severity=INFO,
            code="above_scale_derived",
            problem="未填是否规上",
            action="按主营业务收入≥2000万元判定",
        )
    unknown = df["above_scale"].isna() & ~blank
    if unknown.any():
        problems.add(
            file=t.file,
            rows=_rows(t, unknown),
            field="是否规上",
            severity=WARNING,
            code="above_scale_unknown",
            problem="未填是否规上，也没有主营业务收入",
            action="按规下企业处理",
        )
    code = df["industry_code"]
    bad_code = code.notna() & ~code.str.fullmatch(INDUSTRY_CODE_PATTERN).fillna(False)
    if bad_code.any():
        problems.add(
            file=t.file,
            rows=_rows(t, bad_code),
            field=t.headers.get("industry_code", "行业代码"),
            values=code[bad_code],
            severity=WARNING,
            code="bad_industry_code",
            problem="行业代码不符合 GB/T 4754-2017（如 C3360）",
            action="保留该行；不参与按行业判定的规则",
        )
    keep = df["uscc"].notna() & ~blank
    df = df.loc[keep & ~df["uscc"].duplicated(keep="first")]
    return df.set_index("uscc", drop=True)


def _repair_geometries(t: Table, geoms: gpd.GeoSeries, problems: Problems) -> tuple[gpd.GeoSeries, np.ndarray]:
    arr = geoms.to_numpy()
    missing = shapely.is_missing(arr) | shapely.is_empty(arr)
    if missing.any():
        problems.add(
            file=t.file,
            rows=_rows(t, missing),
            field="geometry",
            severity=FATAL,
            code="empty_geometry",
            problem="宗地没有几何图形（空图形）",
            action="请补绘宗地界线后重新运行",
        )
    types = shapely.get_type_id(arr)
    polygonal = np.isin(types, [3, 6])
    wrong = ~missing & ~polygonal
    if wrong.any():
        problems.add(
            file=t.file,
            rows=_rows(t, wrong),
            field="geometry",
            values=shapely.get_type_id(arr[wrong]),
            severity=FATAL,
            code="not_polygon",
            problem="宗地图形不是面（多边形）",
            action="请提供面状宗地后重新运行",
        )
    invalid = ~missing & polygonal & ~shapely.is_valid(arr)
    ok = ~missing & polygonal
    if invalid.any():
        bad = arr[invalid]
        reasons = shapely.is_valid_reason(bad)
        fixed = shapely.make_valid(bad)
        polys = np.array([_polygonal_part(g) for g in fixed], dtype=object)
        usable = ~(shapely.is_missing(polys) | shapely.is_empty(polys))
        usable &= shapely.area(polys) > 0
        idx = np.flatnonzero(invalid)
        arr = arr.copy()
        arr[idx[usable]] = polys[usable]
        if usable.any():
            problems.add(
                file=t.file,
                rows=_rows(t, _mask(len(arr), idx[usable])),
                field="geometry",
                values=reasons[usable],
                severity=WARNING,
                code="geometry_repaired",
                problem="宗地图形无效（" + pd.Series(reasons[usable]).str.replace(r"\[.*", "", regex=True) + "）",
                action="已用 make_valid 修复并按修复后的面积计算；请在地籍库中核实",
            )
        if (~usable).any():
            problems.add(
                file=t.file,
                rows=_rows(t, _mask(len(arr), idx[~usable])),
                field="geometry",
                values=reasons[~usable],
                severity=FATAL,
                code="geometry_unrepairable",
                problem="宗地图形无效且无法自动修复",
                action="请在 GIS 中修正该宗地后重新运行",
            )
            ok[idx[~usable]] = False
    return gpd.GeoSeries(arr, crs=geoms.crs), ok


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[idx] = True
    return m


def _polygonal_part(g: shapely.Geometry) -> shapely.Geometry | None:
    if g is None:
        return None
    if shapely.get_type_id(g) in (3, 6):
        return g
    parts = [p for p in shapely.get_parts(g) if shapely.get_type_id(p) in (3, 6)]
    if not parts:
        return None
    return shapely.union_all(parts)


def _resolve_crs(t: Table, geoms: gpd.GeoSeries, override: str | None, problems: Problems) -> CRS | None:
    b = geoms.total_bounds if len(geoms) else np.array([np.nan] * 4)
    x = float(b[0]) if np.isfinite(b[0]) else np.nan
    if geoms.crs is not None and override and not CRS.from_user_input(geoms.crs).equals(CRS.from_user_input(override)):
        problems.add(
            file=t.file,
            rows=[""],
            field="crs",
            values=[CRS.from_user_input(geoms.crs).to_string()],
            severity=WARNING,
            code="crs_overridden",
            problem="图层坐标系与 dataset.toml 指定的不同",
            action=f"按 dataset.toml 指定的 {override} 处理",
        )
        crs = CRS.from_user_input(override)
    elif geoms.crs is None:
        if override:
            problems.add(
                file=t.file,
                rows=[""],
                field="crs",
                values=[override],
                severity=INFO,
                code="crs_from_dataset",
                problem="图层没有坐标系",
                action=f"按 dataset.toml 指定的 {override} 处理",
            )
            crs = CRS.from_user_input(override)
        else:
            zone = prefixed_zone_from_easting(x) if np.isfinite(x) else None
            hint = (
                (
                    f"坐标像是 CGCS2000 3度带第{zone}带（带号前缀），可在 dataset.toml 的 [parcels] 中写 "
                    f'crs = "EPSG:{gk_epsg(zone, prefixed=True)}"'
                )
                if zone and 25 <= zone <= 45
                else '请在 dataset.toml 的 [parcels] 中写明 crs（如 "EPSG:4528"），或为图层补上 .prj'
            )
            problems.add(
                file=t.file,
                rows=[""],
                field="crs",
                severity=FATAL,
                code="no_crs",
                problem="宗地图层没有坐标系，无法计算面积",
                action=hint,
            )
            return None
    else:
        crs = CRS.from_user_input(geoms.crs)
    if np.isfinite(x) and not crs.is_geographic:
        fixed = fix_prefix_mismatch(crs, x)
        if fixed is not None:
            problems.add(
                file=t.file,
                rows=[""],
                field="crs",
                values=[crs.to_string()],
                severity=WARNING,
                code="crs_prefix_mismatch",
                problem=f"坐标系与横坐标形式不符（横坐标 {x:,.0f}）",
                action=f"按 {fixed.to_string()} 处理",
            )
            crs = fixed
    return crs


def validate_parcels(
    t: Table, geoms: gpd.GeoSeries, problems: Problems, *, crs_override: str | None = None
) -> gpd.GeoDataFrame:
    """Typed parcel layer indexed by ``parcel_id``, geometries repaired where safe."""
    _report_units(t, problems)
    df = typed_frame(t, problems)
    crs = _resolve_crs(t, geoms, crs_override, problems)
    geoms, geom_ok = _repair_geometries(t, geoms, problems)
    _required(t, df, "parcel_id", problems, FATAL, "请补全宗地代码后重新运行")
    _duplicates(t, df, "parcel_id", problems, "宗地代码")
    _required(t, df, "county", problems, WARNING, "保留该宗地")
    _required(t, df, "park", problems, WARNING, "保留该宗地；园区汇总中计入“未注明园区”")
    _uscc_check(t, df, "holder_uscc", problems)
    no_holder = df["holder_uscc"].isna() & df["parcel_id"].notna()
    if no_holder.any():
        problems.add(
            file=t.file,
            rows=_rows(t, no_holder),
            field=t.headers.get("holder_uscc", "权利人统一社会信用代码"),
            severity=INFO,
            code="parcel_no_holder",
            problem="宗地没有权利人（国有储备或未供应土地）",
            action="宗地保留在宗地结果中，不计入任何企业用地；疑似闲置规则会列出",
        )
    for col in ("holder_name", "land_use", "registered_area_m2", "floor_area_m2", "footprint_area_m2"):
        if col not in df:
            df[col] = np.nan if col.endswith("m2") else pd.NA
    for col in ("developed_ratio", "invested_ratio"):
        if col not in df:
            continue
        pct = (df[col] > 1) & (df[col] <= 100)
        if pct.any():
            f = next(f for f in PARCEL_FIELDS if f.name == col)
            problems.add(
                file=t.file,
                rows=_rows(t, pct),
                field=t.headers.get(col, f.label),
                values=df.loc[pct, col],
                severity=WARNING,
                code="ratio_as_percent",
                problem=f"{f.label}应为0–1之间的比例，填写的像是百分数",
                action="按百分数处理（除以100）；请改为比例（如 0.25）",
            )
            df.loc[pct, col] = df.loc[pct, col] / 100
        over = df[col] > 100
        if over.any():
            problems.add(
                file=t.file,
                rows=_rows(t, over),
                field=t.headers.get(col, col),
                values=df.loc[over, col],
                severity=FATAL,
                code="ratio_out_of_range",
                problem="比例超出0–1范围",
                action="请改为0–1之间的比例后重新运行",
            )
    keep = df["parcel_id"].notna() & ~df["parcel_id"].duplicated(keep="first") & geom_ok
    gdf = gpd.GeoDataFrame(df, geometry=geoms.to_numpy(), crs=crs)
    gdf = gdf.loc[keep.to_numpy()]
    return gdf.set_index("parcel_id", drop=True)


def validate_leases(t: Table, problems: Problems) -> pd.DataFrame:
    """Typed lease table (one row per lease)."""
    _report_units(t, problems)
    df = typed_frame(t, problems)
    _required(t, df, "lessee_uscc", problems, FATAL, "请补全承租方统一社会信用代码后重新运行")
    _required(t, df, "parcel_id", problems, FATAL, "请补全宗地代码后重新运行")
    _uscc_check(t, df, "lessee_uscc", problems)
    for col in ("leased_land_m2", "leased_floor_m2"):
        if col not in df:
            df[col] = np.nan
    land, floor = df["leased_land_m2"], df["leased_floor_m2"]
    neither = ~((land > 0) | (floor > 0)) & ~t.frame["_empty"].to_numpy()
    if neither.any():
        problems.add(
            file=t.file,
            rows=_rows(t, neither),
            field="租赁土地面积/租赁厂房面积",
            severity=WARNING,
            code="lease_no_area",
            problem="租赁记录没有面积",
            action="该租赁不计入任何企业用地",
        )
    both = (land > 0) & (floor > 0)
    if both.any():
        problems.add(
            file=t.file,
            rows=_rows(t, both),
            field="租赁厂房面积",
            values=floor[both],
            severity=INFO,
            code="lease_both_areas",
            problem="同时填写了租赁土地面积和厂房面积",
            action="按租赁土地面积计算",
        )
    keep = df["lessee_uscc"].notna() & df["parcel_id"].notna() & ~t.frame["_empty"].to_numpy()
    return df.loc[keep].reset_index(drop=True)
