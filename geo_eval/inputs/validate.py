"""Input checks: every problem of every table at once, with file, row, field and a Chinese message.

The functions here turn loaded tables (canonical column names, text or typed cells) into typed
frames indexed by their keys, and record each problem in a :class:`~geo_eval.inputs.problems.Problems`.
Fatal problems (missing keys, duplicates, unreadable numbers, unusable geometry, no CRS) stop an
evaluation; warnings keep the row and say what was done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import CRS

from geo_eval.inputs.fields import FIGURES, PARCEL_FIELDS, TABLE_FIELDS, Field
from geo_eval.inputs.keys import positions, take, to_objects
from geo_eval.inputs.problems import FATAL, INFO, WARNING, Problems
from geo_eval.inputs.table import Table, arrow_mask, arrow_strings, ascii_matrix
from geo_eval.inputs.uscc import USCC_REASONS, normalize_uscc, uscc_problem_kinds
from geo_eval.landuse.crs import (
    bounds_in_china,
    fix_prefix_mismatch,
    gk_epsg,
    gk_zone,
    in_china,
    lonlat,
    prefixed_zone_from_easting,
)
from geo_eval.rating.rating import INDUSTRY_CODE_PATTERN

ABOVE_SCALE_REVENUE = 2000.0
"""规上: main-business revenue ≥ 20 million yuan = 2000 万元 (domain.md §1)."""

MAX_NUMBER = 1e15
"""Numbers above this (in the column's standard unit: 万元, 平方米, 吨 …) are fatal: no enterprise or parcel
comes near it, and products of such numbers overflow (a county benchmark of ``inf``)."""
DATE_YEARS = (1900, 2199)
"""Dates outside these years are warnings (``date_out_of_range``) and read as blank."""
PLACEHOLDER_YEAR = 9999
"""``9999-12-31`` (any day of 9999) is how registers write "no date": read as blank, with a note."""

_TRUE = {"是", "y", "yes", "true", "t", "1", "√", "✓", "规上", "规模以上", "有", "否决"}
_FALSE = {"否", "n", "no", "false", "f", "0", "×", "✗", "规下", "规模以下", "无", ""}


_UNIT_ACTION = "请改为实际数值（单位：{unit}）后重新运行"
# fmt: off
CHECKS: dict[str, tuple[str, str, str]] = {
    # code: severity, problem, action; ``{name}`` is filled in by the check (:func:`report`)
    "not_a_number": (FATAL, "{label}不是数字", "请改为数字（单位：{unit}）后重新运行"),
    "not_finite": (FATAL, "{label}不是有限的数（无穷大或超出数值范围）", _UNIT_ACTION),
    "number_too_large": (FATAL, f"{{label}}大于 {MAX_NUMBER:.0e}，不是实际数值（计算会溢出）", _UNIT_ACTION),
    "negative": (FATAL, "{label}为负数，{what}不能小于0", "请核对后改正再运行"),
    "date_placeholder": (INFO, "{label}为 9999 年，是“无日期”的占位值", "按空值（无此日期）处理"),
    "date_out_of_range": (WARNING, f"{{label}}不在 {DATE_YEARS[0]}–{DATE_YEARS[1]} 年之间", "按空值处理；请核对日期"),
    "bad_date": (WARNING, "{label}无法识别为日期", "按空值处理；请使用 2024-05-01 格式"),
    "bad_flag": (WARNING, "{label}应填“是”或“否”", "按空值处理"),
    "unit_converted": (INFO, "表头单位与标准单位不同（{note}）", "已自动换算"),
    "unknown_column": (INFO, "未识别的列（不在数据规范中）", "已忽略该列"),
    "duplicate_key": (FATAL, "重复的{what}（出现在第 {rows} 行）", "请删除或合并重复行后重新运行"),
    "uscc_invalid": (WARNING, "统一社会信用代码校验不通过：{reason}", "保留该行并照常评价；请向登记机关核实代码"),
    "empty_row": (INFO, "空行", "已跳过"),
    "above_scale_derived": (INFO, "未填是否规上", "按主营业务收入≥2000万元判定"),
    "above_scale_unknown": (WARNING, "未填是否规上，也没有主营业务收入", "按规下企业处理"),
    "bad_industry_code": (WARNING, "行业代码不符合 GB/T 4754-2017（如 C3360）", "保留该行；不参与按行业判定的规则"),
    "empty_geometry": (FATAL, "宗地没有几何图形（空图形）", "请补绘宗地界线后重新运行"),
    "not_polygon": (FATAL, "宗地图形不是面（多边形）", "请提供面状宗地后重新运行"),
    "bad_coordinates": (FATAL, "宗地图形含有无穷大或非数值的坐标", "请在 GIS 中修正该宗地的坐标后重新运行"),
    "geometry_repaired": (WARNING, "宗地图形无效（{reason}）", "已用 make_valid 修复并按修复后的面积计算；请在地籍库中核实"),
    "geometry_unrepairable": (FATAL, "宗地图形无效且无法自动修复", "请在 GIS 中修正该宗地后重新运行"),
    "crs_mismatch": (FATAL, "{found}：坐标系与坐标不符，无法计算面积", "{hint}"),
    "outside_china": (WARNING, "宗地位置不在我国范围内（值为按坐标系 {crs} 换算的经度, 纬度）", "保留该宗地并照常计算；请核对该宗地的坐标"),
    "crs_overridden": (WARNING, "图层坐标系与 dataset.toml 指定的不同", "按 dataset.toml 指定的 {crs} 处理"),
    "crs_from_dataset": (INFO, "图层没有坐标系", "按 dataset.toml 指定的 {crs} 处理"),
    "no_crs": (FATAL, "宗地图层没有坐标系，无法计算面积", "{hint}"),
    "crs_prefix_mismatch": (WARNING, "坐标系与横坐标形式不符（横坐标 {x:,.0f}）", "按 {crs} 处理"),
    "parcel_no_holder": (INFO, "宗地没有权利人（国有储备或未供应土地）", "宗地保留在宗地结果中，不计入任何企业用地；疑似闲置规则会列出"),
    "ratio_as_percent": (WARNING, "{label}应为0–1之间的比例，填写的像是百分数", "按百分数处理（除以100）；请改为比例（如 0.25）"),
    "ratio_out_of_range": (FATAL, "比例超出0–1范围", "请改为0–1之间的比例后重新运行"),
    "lease_no_area": (WARNING, "租赁记录没有面积", "该租赁不计入任何企业用地"),
    "lease_both_areas": (INFO, "同时填写了租赁土地面积和厂房面积", "按租赁土地面积计算"),
}
# fmt: on
"""The problems the checks of one table report (the checks across tables: :data:`CROSS_CHECKS`)."""


def _fill(template: str, fill: dict[str, object]) -> str | pd.Series:
    """``template.format(**fill)``; a Series in ``fill`` that the template names gives one text per row.

    >>> _fill("缺少{label}", {"label": "税收"}), _fill("第 {rows} 行", {"rows": pd.Series(["3", "7"])}).tolist()
    ('缺少税收', ['第 3 行', '第 7 行'])
    """
    for name, per_row in fill.items():
        if isinstance(per_row, pd.Series) and "{" + name + "}" in template:
            head, tail = template.split("{" + name + "}")
            return head.format(**fill) + per_row.astype(str) + tail.format(**fill)
    return template.format(**fill)


def report(
    t: Table,
    problems: Problems,
    code: str,
    where: pd.Series | np.ndarray | None = None,
    *,
    field: str,
    values: Iterable[object] | pd.Series | np.ndarray | None = None,
    **fill: object,
) -> None:
    """Record the problem ``code`` of :data:`CHECKS` (its texts filled with ``fill``) for each row of ``t``
    that ``where`` marks (nothing when it marks none), or once for the whole file (``where=None``).
    ``values``: the cells shown, one per marked row."""
    if where is not None and not where.any():
        return
    severity, problem, action = CHECKS[code]
    problems.add(
        file=t.file,
        rows=[""] if where is None else _rows(t, where),
        field=field,
        values=values,
        severity=severity,
        code=code,
        problem=_fill(problem, fill),
        action=action.format(**fill),
    )


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
    corrections: pd.DataFrame | None = None
    """The corrections applied (:func:`geo_eval.inputs.corrections.apply_corrections`), ``None`` without."""


# Characters that NFKC leaves alone in any context: no compatibility or canonical mapping, not a
# combining mark and never the second half of a canonical composition. Checked against
# ``unicodedata`` (ASCII, CJK punctuation, the CJK Unified Ideograph blocks); anything else, such as
# full-width forms (（，：０Ａ) or compatibility ideographs, sends the cell through Python's NFKC.
_NFKC_STABLE = (
    r"\x{0}-\x{7F}\x{B7}\x{2014}\x{2018}\x{2019}\x{201C}\x{201D}\x{3001}\x{3002}\x{3008}-\x{3011}"
    r"\x{3014}-\x{301B}\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2EBEF}"
    r"\x{30000}-\x{323AF}"
)
_NFKC_SUSPECT = "[^" + _NFKC_STABLE + "]"
_SAMPLE = 10_000  # rows looked at to guess whether a column has few distinct values


def _nfkc_suspects(arr: pa.Array) -> np.ndarray:
    """Cells holding a character outside :data:`_NFKC_STABLE` (which NFKC may change)."""
    if pc.all(pc.string_is_ascii(arr)).as_py() is not False:
        return np.zeros(len(arr), dtype=bool)
    if len(arr) > 4 * _SAMPLE and pc.count_distinct(arr.slice(0, _SAMPLE)).as_py() < _SAMPLE // 10:
        # Few distinct values (县区, 园区, 是/否 …): look at each value once.
        enc = pc.dictionary_encode(arr)
        per_value = arrow_mask(pc.match_substring_regex(enc.dictionary, _NFKC_SUSPECT))
        if not per_value.any():
            return np.zeros(len(arr), dtype=bool)
        return arrow_mask(pc.take(pa.array(per_value), enc.indices))
    return arrow_mask(pc.match_substring_regex(arr, _NFKC_SUSPECT))


def _nfkc(s: pd.Series) -> pd.Series:
    """``s.astype("string").str.normalize("NFKC")``, calling Python only on cells it may change."""
    out = s.astype("string")
    suspect = _nfkc_suspects(arrow_strings(out))
    if suspect.any():
        out = out.copy()
        out.iloc[suspect] = out.iloc[suspect].str.normalize("NFKC")
    return out


def _text(s: pd.Series) -> pd.Series:
    out = _nfkc(s).str.strip()
    return out.mask(out == "", pd.NA)


def _rows(t: Table, mask: pd.Series | np.ndarray) -> np.ndarray:
    return t.frame["source_row"].to_numpy()[np.asarray(mask, dtype=bool)]


_NUMBER_TOKENS_NA = ["", "-", "—", "/", "无", "nan", "NaN", "None"]
# Plain non-negative decimals short enough (≤ 15 characters, so ≤ 15 digits) that every parser
# rounds them the same way: Arrow's cast gives exactly what ``pd.to_numeric`` gives.
_PLAIN_NUMBER_OR_EMPTY = r"^([0-9]+(\.[0-9]+)?)?$"
_PLAIN_MAX_CHARS = 15
# Integers whose value ``pd.to_numeric`` may take from the int or the float parse depending on the
# rest of the column ("-0", ≥ 16 digits): such a column is converted as a whole.
_MODE_DEPENDENT_INT = r"^(-[0-9]+|\+?[0-9]{16,})$"


def _text_numbers_slow(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Values, bad-cell mask and cleaned text: full-width digits folded, separators and blanks removed."""
    s = raw.astype("string").str.normalize("NFKC").str.replace(r"[,\s]", "", regex=True)
    s = s.mask(s.isin(_NUMBER_TOKENS_NA), pd.NA)
    values = pd.to_numeric(s, errors="coerce").astype(float)
    bad = (s.notna() & values.isna()).fillna(False).astype(bool)
    return values, bad, s


def _text_numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """:func:`_text_numbers_slow` for a text column, with plain numbers and blanks cast by Arrow."""
    arr = arrow_strings(raw)
    length = np.asarray(pc.fill_null(pc.binary_length(arr), -1).to_numpy(zero_copy_only=False))
    plain_or_empty = arrow_mask(pc.match_substring_regex(arr, _PLAIN_NUMBER_OR_EMPTY)) & (length <= _PLAIN_MAX_CHARS)
    plain = plain_or_empty & (length > 0)
    cast = pc.cast(pc.if_else(pa.array(plain), arr, pa.scalar(None, arr.type)), pa.float64())
    numbers = np.asarray(cast.to_numpy(zero_copy_only=False), dtype=float)
    rest = ~plain_or_empty & (length >= 0)  # neither a plain number, nor empty, nor missing
    if not rest.any():
        return pd.Series(numbers, index=raw.index), pd.Series(False, index=raw.index)
    sub_values, sub_bad, cleaned = _text_numbers_slow(raw.iloc[rest])
    if cleaned.str.fullmatch(_MODE_DEPENDENT_INT).fillna(False).any():
        values, bad, _ = _text_numbers_slow(raw)
        return values, bad
    numbers[rest] = sub_values.to_numpy()
    bad_cells = np.zeros(len(raw), dtype=bool)
    bad_cells[rest] = sub_bad.to_numpy()
    return pd.Series(numbers, index=raw.index), pd.Series(bad_cells, index=raw.index)


def parse_numbers(t: Table, f: Field, problems: Problems) -> pd.Series:
    """A numeric column in canonical units; non-numbers and negatives are fatal."""
    raw = t.frame[f.name]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.astype(float)
        bad = pd.Series(False, index=raw.index)
    elif isinstance(raw.dtype, pd.StringDtype):
        values, bad = _text_numbers(raw)
    else:
        values, bad, _ = _text_numbers_slow(raw)
    header, unit = t.headers.get(f.name, f.label), f.unit or "无"
    report(t, problems, "not_a_number", bad, field=header, values=raw[bad], label=f.label, unit=unit)
    factor = t.factors.get(f.name, 1.0)
    if factor != 1.0:
        values = values * factor
    inf = pd.Series(np.isinf(values.to_numpy()), index=raw.index)
    # "inf", "1e400", or a huge number times its header unit
    report(t, problems, "not_finite", inf, field=header, values=raw[inf], label=f.label, unit=unit)
    huge = pd.Series(values.to_numpy() > MAX_NUMBER, index=raw.index) & ~inf
    report(t, problems, "number_too_large", huge, field=header, values=raw[huge], label=f.label, unit=unit)
    neg = ((values < 0) & ~inf).fillna(False).astype(bool)
    what = "金额" if f.kind == "money" else "数值"
    report(t, problems, "negative", neg, field=header, values=raw[neg], label=f.label, what=what)
    return values


_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_EXCEL_ORIGIN = "1899-12-30"
_EXCEL_MAX_SERIAL = 3_000_000.0  # beyond 9999-12-31 (2 958 465)


def _iso_dates(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``datetime64[D]`` values, years and the mask of dated cells when every present cell is a real
    ``YYYY-MM-DD`` date (any year).

    ``None`` when any cell is written otherwise (or names a day that does not exist): those go
    through pandas' parsers as before.
    """
    arr = arrow_strings(s)
    present = arrow_mask(pc.is_valid(arr))
    if not present.any() or not np.array_equal(arrow_mask(pc.match_substring_regex(arr, _ISO_DATE)), present):
        return None
    d = ascii_matrix(arr.filter(pa.array(present)), 10).astype(np.int64) - ord("0")
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 5] * 10 + d[:, 6]
    day = d[:, 8] * 10 + d[:, 9]
    if ((month < 1) | (month > 12) | (day < 1)).any():
        return None
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    first = months.astype("datetime64[D]")
    length = ((months + 1).astype("datetime64[D]") - first).astype(np.int64)
    if (day > length).any():
        return None
    out = np.full(len(arr), np.datetime64("NaT"), dtype="datetime64[D]")
    out[present] = first + (day - 1).astype("timedelta64[D]")
    years = np.zeros(len(arr), dtype=np.int64)
    years[present] = year
    return out, years, present


def _in_years(years: np.ndarray) -> np.ndarray:
    return (years >= DATE_YEARS[0]) & (years <= DATE_YEARS[1])


def _date_range(
    t: Table, f: Field, problems: Problems, dated: np.ndarray, years: np.ndarray, raw: pd.Series
) -> np.ndarray:
    """Report dates of year 9999 ("no date", info) and dates outside :data:`DATE_YEARS` (warning)
    among the ``dated`` cells; return the mask of the cells to read as blank."""
    outside = dated & ~_in_years(years)
    if not outside.any():
        return outside
    placeholder = outside & (years == PLACEHOLDER_YEAR)
    header = t.headers.get(f.name, f.label)
    report(t, problems, "date_placeholder", placeholder, field=header, values=raw[placeholder], label=f.label)
    wrong = outside & ~placeholder
    report(t, problems, "date_out_of_range", wrong, field=header, values=raw[wrong], label=f.label)
    return outside


def _excel_serials(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Excel serial day numbers (1900 date system): ``datetime64[ns]`` (NaT outside 1900–2199) and
    years (-1 for numbers too large to be a date)."""
    ok = np.isfinite(v) & (np.abs(v) < _EXCEL_MAX_SERIAL)
    days = np.datetime64(_EXCEL_ORIGIN, "D") + np.floor(np.where(ok, v, 0)).astype("timedelta64[D]")
    years = np.where(ok, days.astype("datetime64[Y]").astype(np.int64) + 1970, -1)
    out = np.full(len(v), np.datetime64("NaT"), dtype="datetime64[ns]")
    keep = _in_years(years)
    if keep.any():
        out[keep] = pd.to_datetime(v[keep], unit="D", origin=_EXCEL_ORIGIN).to_numpy().astype("datetime64[ns]")
    return out, years


def _date_objects(cells: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Date and datetime cells (from a workbook) as ``datetime64[ns]`` (NaT outside 1900–2199) and years."""
    years = np.array([v.year for v in cells], dtype=np.int64)
    out = np.full(len(cells), np.datetime64("NaT"), dtype="datetime64[ns]")
    keep = _in_years(years)
    if keep.any():
        texts = cells[keep].astype(str).str.slice(0, 19)
        out[keep] = pd.to_datetime(texts).to_numpy().astype("datetime64[ns]")
    return out, years


def _date_texts(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dates written as text (2024-05-01, 2024年5月1日, 2024/5/1 …): ``datetime64[ns]`` (NaT outside
    1900–2199), years and the mask of the cells read as a date."""
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
    dated = parsed.notna().to_numpy()
    years = parsed.dt.year.fillna(0).to_numpy(dtype=np.int64)
    out = np.full(len(s), np.datetime64("NaT"), dtype="datetime64[ns]")
    keep = dated & _in_years(years)
    out[keep] = parsed[keep].to_numpy().astype("datetime64[ns]")
    return out, years, dated


def parse_dates(t: Table, f: Field, problems: Problems) -> pd.Series:
    """A date column; unreadable dates are warnings and treated as empty, so are dates outside
    1900–2199 (:data:`DATE_YEARS`); year 9999 (``9999-12-31``: "no date") is empty with a note."""
    raw = t.frame[f.name]
    n = len(raw)
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = pd.to_datetime(raw).dt.tz_localize(None) if getattr(raw.dt, "tz", None) else pd.to_datetime(raw)
        years = dates.dt.year.fillna(0).to_numpy(dtype=np.int64)
        blank = _date_range(t, f, problems, dates.notna().to_numpy(), years, raw)
        return dates.mask(pd.Series(blank, index=dates.index)) if blank.any() else dates
    if isinstance(raw.dtype, pd.StringDtype):  # text cells only (csv, text attributes)
        s = _text(raw)
        iso = _iso_dates(s)
        if iso is not None:  # every date written 2024-05-01
            days, years, dated = iso
            if _date_range(t, f, problems, dated, years, raw).any():
                days = np.where(dated & _in_years(years), days, np.datetime64("NaT"))
            return pd.Series(days.astype("datetime64[ns]"), index=raw.index)
        text_rows = np.ones(n, dtype=bool)
        is_num = is_dt = np.zeros(n, dtype=bool)
    else:
        obj = raw.astype(object)
        is_num = obj.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v == v).to_numpy()
        is_dt = obj.map(lambda v: isinstance(v, (dt.date, pd.Timestamp))).to_numpy()
        text_rows = ~is_num & ~is_dt
        s = _text(obj[text_rows].astype(object).where(obj[text_rows].notna(), None))
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    years = np.zeros(n, dtype=np.int64)
    dated = np.zeros(n, dtype=bool)
    if is_num.any():  # Excel serial dates
        out[is_num], years[is_num] = _excel_serials(raw[is_num].astype(float).to_numpy())
        dated[is_num] = True
    if is_dt.any():
        out[is_dt], years[is_dt] = _date_objects(raw[is_dt].astype(object))
        dated[is_dt] = True
    out[text_rows], years[text_rows], dated[text_rows] = _date_texts(s)
    _date_range(t, f, problems, dated, years, raw)
    bad = np.zeros(n, dtype=bool)
    bad[text_rows] = s.notna().to_numpy() & ~dated[text_rows]
    report(t, problems, "bad_date", bad, field=t.headers.get(f.name, f.label), values=raw[bad], label=f.label)
    return pd.Series(out, index=raw.index)


def parse_bools(t: Table, f: Field, problems: Problems) -> pd.Series:
    """A yes/no column (是/否, Y/N, 1/0 …); anything else is a warning and treated as empty."""
    raw = t.frame[f.name]
    s = _nfkc(raw).str.strip().str.lower().fillna("")
    out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    out[s.isin(_TRUE)] = True
    out[s.isin(_FALSE - {""})] = False
    bad = ~s.isin(_TRUE | _FALSE)
    report(t, problems, "bad_flag", bad, field=t.headers.get(f.name, f.label), values=raw[bad], label=f.label)
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


def _add_missing(df: pd.DataFrame, texts: tuple[str, ...], numbers: tuple[str, ...]) -> None:
    """Add the optional columns the table does not have: ``texts`` empty (``pd.NA``), ``numbers`` NaN."""
    for col in (*texts, *numbers):
        if col not in df:
            df[col] = pd.NA if col in texts else np.nan


def _empty_table(t: Table, problems: Problems, problem: str, action: str) -> None:
    problems.add(file=t.file, rows=[""], field="", severity=FATAL, code="empty_table", problem=problem, action=action)


def _report_units(t: Table, problems: Problems) -> None:
    for name, note in t.unit_notes.items():
        report(t, problems, "unit_converted", field=t.headers.get(name, name), note=note)
    for n in t.header_notes:
        problems.add(
            file=t.file, rows=[""], field=n.header, severity=n.severity, code=n.code, problem=n.problem, action=n.action
        )
    for h in t.unknown:
        report(t, problems, "unknown_column", field=h)


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


def _codes(key: pd.Series) -> np.ndarray:
    """Keys numbered in order of first appearance (as :func:`pandas.factorize`); missing → -1."""
    if isinstance(key.dtype, pd.StringDtype):
        enc = pc.dictionary_encode(arrow_strings(key))
        codes = np.asarray(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        seen = np.maximum.accumulate(codes) if len(codes) else codes
        new = codes > np.concatenate(([-1], seen[:-1]))
        if np.array_equal(codes[new], np.arange(int(new.sum()))):
            return codes
    return np.asarray(pd.factorize(key)[0], dtype=np.int64)


def _repeats(key: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """For each row: its key is present and appears more than once; it is the key's first row."""
    codes = _codes(key)
    present = codes >= 0
    counts = np.bincount(codes[present])
    dup = present & (counts[np.where(present, codes, 0)] > 1) if len(counts) else present
    seen = np.maximum.accumulate(codes) if len(codes) else codes
    first = present & (codes > np.concatenate(([-1], seen[:-1])))
    return dup, first


def _duplicates(
    t: Table,
    df: pd.DataFrame,
    name: str,
    problems: Problems,
    what: str,
    repeats: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Report every row of a repeated key; return which rows hold a key's first occurrence."""
    key = df[name]
    repeated, first_row = repeats if repeats is not None else _repeats(key)
    dup = pd.Series(repeated, index=key.index)
    if dup.any():
        # Per duplicated key, its rows in file order ("3、17").
        keys = key[dup].to_numpy(dtype=object)
        rows: dict[object, list[str]] = {}
        for k, r in zip(keys, df.loc[dup, "source_row"].to_numpy(), strict=True):
            rows.setdefault(k, []).append(str(r))
        joined = {k: "、".join(v) for k, v in rows.items()}
        first = pd.Series([joined[k] for k in keys], index=key.index[dup.to_numpy()], dtype=object)
        field = t.headers.get(name, name)
        report(t, problems, "duplicate_key", dup, field=field, values=key[dup], what=what, rows=first)
    return first_row


def _uscc_kinds(df: pd.DataFrame, name: str) -> tuple[pd.Series, np.ndarray]:
    """The present codes of column ``name`` and their check results (:func:`uscc_problem_kinds`)."""
    codes = df[name]
    present = codes[codes.notna()]
    return present, uscc_problem_kinds(present)


def _uscc_check(
    t: Table, df: pd.DataFrame, name: str, problems: Problems, checked: tuple[pd.Series, np.ndarray] | None = None
) -> None:
    codes = df[name]
    present, kinds = checked if checked is not None else _uscc_kinds(df, name)
    bad = kinds != 0
    if bad.any():
        idx = present.index[bad]
        reasons = pd.Series(np.array(USCC_REASONS, dtype=object)[kinds[bad]], index=idx, dtype=object)
        where = _mask(len(codes), np.flatnonzero(codes.notna().to_numpy())[bad])  # the rows of ``present``
        report(t, problems, "uscc_invalid", where, field=t.headers.get(name, name), values=codes[idx], reason=reasons)


def validate_enterprises(t: Table, problems: Problems) -> pd.DataFrame:
    """Typed enterprise table indexed by USCC (duplicates and blank codes are fatal)."""
    _report_units(t, problems)
    df = typed_frame(t, problems)
    problems.set_keys(t.file, df["source_row"].to_numpy(), df["uscc"])
    blank = t.frame["_empty"].to_numpy()
    if blank.all():
        _empty_table(t, problems, "企业表没有数据行（只有表头）", "请填入参评企业后重新运行")
    report(t, problems, "empty_row", blank, field="")
    _required(t, df, "uscc", problems, FATAL, "请补全统一社会信用代码后重新运行")
    _required(t, df, "county", problems, FATAL, "请补全县区（评价按县区排名）后重新运行")
    _required(t, df, "tax", problems, FATAL, "请填写税收（无税收填 0）后重新运行")
    _required(t, df, "name", problems, WARNING, "保留该行并照常评价")
    first_row = _duplicates(t, df, "uscc", problems, "统一社会信用代码")
    _uscc_check(t, df, "uscc", problems)
    _add_missing(
        df,
        (
            "park",
            "industry_code",
            "above_scale",
            "production_start",
            "exempt_reason",
            "safety_veto",
            "environment_veto",
        ),
        (*FIGURES, "bonus", "penalty"),
    )
    derive = df["above_scale"].isna() & df["main_revenue"].notna()
    if derive.any():
        df.loc[derive, "above_scale"] = df.loc[derive, "main_revenue"] >= ABOVE_SCALE_REVENUE
        report(t, problems, "above_scale_derived", derive, field="是否规上", values=df.loc[derive, "main_revenue"])
    report(t, problems, "above_scale_unknown", df["above_scale"].isna() & ~blank, field="是否规上")
    code = df["industry_code"]
    bad_code = code.notna() & ~code.str.fullmatch(INDUSTRY_CODE_PATTERN).fillna(False)
    field = t.headers.get("industry_code", "行业代码")
    report(t, problems, "bad_industry_code", bad_code, field=field, values=code[bad_code])
    keep = first_row & ~blank
    df = df.loc[keep]
    return df.set_index("uscc", drop=True)


def _repair_geometries(
    t: Table, geoms: gpd.GeoSeries, problems: Problems, valid: np.ndarray
) -> tuple[gpd.GeoSeries, np.ndarray]:
    arr = geoms.to_numpy()
    missing = shapely.is_missing(arr) | shapely.is_empty(arr)
    report(t, problems, "empty_geometry", missing, field="geometry")
    types = shapely.get_type_id(arr)
    polygonal = np.isin(types, [3, 6])
    wrong = ~missing & ~polygonal
    report(t, problems, "not_polygon", wrong, field="geometry", values=types[wrong])
    invalid = ~missing & polygonal & ~valid
    ok = ~missing & polygonal
    reasons = shapely.is_valid_reason(arr[invalid]) if invalid.any() else np.array([], dtype=object)
    # GEOS cannot repair (and raises on) coordinates that are infinite or not a number
    bad_xy = np.char.startswith(reasons.astype(str), "Invalid Coordinate")
    if bad_xy.any():
        where = _mask(len(arr), np.flatnonzero(invalid)[bad_xy])
        report(t, problems, "bad_coordinates", where, field="geometry", values=reasons[bad_xy])
        ok &= ~where
        invalid &= ~where
        reasons = reasons[~bad_xy]
    if invalid.any():
        bad = arr[invalid]
        fixed = shapely.make_valid(bad)
        polys = np.array([_polygonal_part(g) for g in fixed], dtype=object)
        usable = ~(shapely.is_missing(polys) | shapely.is_empty(polys))
        usable &= shapely.area(polys) > 0
        idx = np.flatnonzero(invalid)
        arr = arr.copy()
        arr[idx[usable]] = polys[usable]
        short = pd.Series(reasons[usable]).str.replace(r"\[.*", "", regex=True)  # the reason without its point
        repaired, unrepairable = _mask(len(arr), idx[usable]), _mask(len(arr), idx[~usable])
        report(t, problems, "geometry_repaired", repaired, field="geometry", values=reasons[usable], reason=short)
        report(t, problems, "geometry_unrepairable", unrepairable, field="geometry", values=reasons[~usable])
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


def _crs_hint(x: float, y: float) -> str:
    """What a layer's coordinates look like, as advice for ``dataset.toml``."""
    zone = prefixed_zone_from_easting(x)
    if zone and 25 <= zone <= 45 and 0 < y < 10_000_000:
        return (
            f"坐标像是 CGCS2000 3度带第{zone}带（带号前缀）的平面坐标，可在 dataset.toml 的 [parcels] 中写 "
            f'crs = "EPSG:{gk_epsg(zone, prefixed=True)}"'
        )
    if 0 < x < 1_000_000 and 0 < y < 10_000_000:
        return (
            "坐标像是 CGCS2000 3度带（不带带号）的平面坐标，请在 dataset.toml 的 [parcels] 中写明所在带的 crs"
            '（如中央经线 120° 为 "EPSG:4549"），或为图层配上正确的 .prj'
        )
    if abs(x) <= 180 and abs(y) <= 90:
        return '坐标像是经纬度，可在 dataset.toml 的 [parcels] 中写 crs = "EPSG:4490"（CGCS2000 经纬度）'
    return "请核对图层的坐标系（.prj），或在 dataset.toml 的 [parcels] 中写明 crs"


def _check_location(
    t: Table, geoms: gpd.GeoSeries, ok: np.ndarray, crs: CRS, problems: Problems, bounds: np.ndarray
) -> None:
    """The layer must lie in China in its CRS (else the CRS does not match the coordinates: fatal);
    single parcels outside China are warnings. ``bounds``: the layer's total bounds."""
    arr = geoms.to_numpy()
    idx = np.flatnonzero(ok)
    if not len(idx):
        return
    step = max(1, len(idx) // 1000)  # the sample land.measurement_crs chooses the zone from
    b = shapely.bounds(arr[idx[::step]])
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    lon, lat = lonlat(cx, cy, crs)
    mlon, mlat = float(np.median(lon)), float(np.median(lat))
    if not (in_china(mlon, mlat) and 25 <= int(gk_zone(mlon)) <= 45):
        x, y = float(np.median(cx)), float(np.median(cy))
        name = crs.to_string()
        if crs.is_geographic:
            found = f"图层的坐标系 {name} 是经纬度，但坐标不是经纬度（横坐标 {x:,.0f}，纵坐标 {y:,.0f}）"
        elif np.isfinite(mlon) and np.isfinite(mlat):
            found = f"按图层的坐标系 {name}，宗地位于经度 {mlon:.2f}°、纬度 {mlat:.2f}°，不在我国范围内"
        else:
            found = f"按图层的坐标系 {name}，宗地坐标（横坐标 {x:,.0f}，纵坐标 {y:,.0f}）无法换算为经纬度"
        report(t, problems, "crs_mismatch", field="crs", values=[name], found=found, hint=_crs_hint(x, y))
        return
    total = bounds if ok.all() else shapely.total_bounds(arr[idx])
    if bounds_in_china(total, crs):
        return
    b = shapely.bounds(arr[idx])
    lon, lat = lonlat((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, crs)
    out = ~in_china(lon, lat)
    if out.any():
        where = _mask(len(arr), idx[out])
        shown = np.where(
            np.isfinite(lon[out]) & np.isfinite(lat[out]),
            pd.Series(lon[out]).round(4).astype(str) + ", " + pd.Series(lat[out]).round(4).astype(str),
            "无法换算为经纬度",
        )
        report(t, problems, "outside_china", where, field="geometry", values=shown, crs=crs.to_string())


def _resolve_crs(
    t: Table, geoms: gpd.GeoSeries, override: str | None, problems: Problems, bounds: np.ndarray
) -> CRS | None:
    """The CRS to measure in; ``bounds`` are the layer's total bounds (NaN when empty)."""
    x = float(bounds[0]) if np.isfinite(bounds[0]) else np.nan
    if geoms.crs is not None and override and not CRS.from_user_input(geoms.crs).equals(CRS.from_user_input(override)):
        declared = CRS.from_user_input(geoms.crs).to_string()
        report(t, problems, "crs_overridden", field="crs", values=[declared], crs=override)
        crs = CRS.from_user_input(override)
    elif geoms.crs is None:
        if override:
            report(t, problems, "crs_from_dataset", field="crs", values=[override], crs=override)
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
            report(t, problems, "no_crs", field="crs", hint=hint)
            return None
    else:
        crs = CRS.from_user_input(geoms.crs)
    if np.isfinite(x) and not crs.is_geographic:
        fixed = fix_prefix_mismatch(crs, x)
        if fixed is not None:
            report(
                t, problems, "crs_prefix_mismatch", field="crs", values=[crs.to_string()], x=x, crs=fixed.to_string()
            )
            crs = fixed
    return crs


def validate_parcels(
    t: Table, geoms: gpd.GeoSeries, problems: Problems, *, crs_override: str | None = None
) -> gpd.GeoDataFrame:
    """Typed parcel layer indexed by ``parcel_id``, geometries repaired where safe.

    The first row of each code is kept, also when its geometry is unusable (a fatal problem, so the
    layer is never evaluated; the cross-checks of the failed run still know the parcel).
    """
    bounds = geoms.total_bounds if len(geoms) else np.array([np.nan] * 4)
    # GEOS checks validity without the GIL: let it run beside the attribute checks (which do not
    # touch the geometries).
    with ThreadPoolExecutor(max_workers=1) as pool:
        validity = pool.submit(shapely.is_valid, geoms.to_numpy())
        _report_units(t, problems)
        df = typed_frame(t, problems)
        crs = _resolve_crs(t, geoms, crs_override, problems, bounds)
        repeats = _repeats(df["parcel_id"])
        holders = _uscc_kinds(df, "holder_uscc")
        valid = validity.result()
    geoms, geom_ok = _repair_geometries(t, geoms, problems, valid)
    problems.set_keys(t.file, df["source_row"].to_numpy(), df["parcel_id"])
    if not len(df):
        _empty_table(t, problems, "宗地图层没有宗地（要素数为 0）", "请检查 dataset.toml 中的 path 和 layer 后重新运行")
    if crs is not None:
        _check_location(t, geoms, geom_ok, crs, problems, bounds)
    _required(t, df, "parcel_id", problems, FATAL, "请补全宗地代码后重新运行")
    first_row = _duplicates(t, df, "parcel_id", problems, "宗地代码", repeats)
    _required(t, df, "county", problems, WARNING, "保留该宗地")
    _required(t, df, "park", problems, WARNING, "保留该宗地；园区汇总中计入“未注明园区”")
    _uscc_check(t, df, "holder_uscc", problems, holders)
    no_holder = df["holder_uscc"].isna() & df["parcel_id"].notna()
    report(t, problems, "parcel_no_holder", no_holder, field=t.headers.get("holder_uscc", "权利人统一社会信用代码"))
    _add_missing(df, ("holder_name", "land_use"), ("registered_area_m2", "floor_area_m2", "footprint_area_m2"))
    for col in ("developed_ratio", "invested_ratio"):
        if col not in df:
            continue
        pct = (df[col] > 1) & (df[col] <= 100)
        label = next(f.label for f in PARCEL_FIELDS if f.name == col)
        report(
            t, problems, "ratio_as_percent", pct, field=t.headers.get(col, label), values=df.loc[pct, col], label=label
        )
        if pct.any():
            df.loc[pct, col] = df.loc[pct, col] / 100
        over = df[col] > 100
        report(t, problems, "ratio_out_of_range", over, field=t.headers.get(col, col), values=df.loc[over, col])
    # Parcels with unusable geometries stay (their problems are fatal, so they are never evaluated):
    # the cross-checks of a failed run still know their codes and holders.
    gdf = gpd.GeoDataFrame(df, geometry=geoms.to_numpy(), crs=crs)
    gdf = gdf.loc[first_row]
    return gdf.set_index("parcel_id", drop=True)


def validate_leases(t: Table, problems: Problems) -> pd.DataFrame:
    """Typed lease table (one row per lease)."""
    _report_units(t, problems)
    df = typed_frame(t, problems)
    problems.set_keys(t.file, df["source_row"].to_numpy(), df["lessee_uscc"], df["parcel_id"])
    _required(t, df, "lessee_uscc", problems, FATAL, "请补全承租方统一社会信用代码后重新运行")
    _required(t, df, "parcel_id", problems, FATAL, "请补全宗地代码后重新运行")
    _uscc_check(t, df, "lessee_uscc", problems)
    _add_missing(df, (), ("leased_land_m2", "leased_floor_m2"))
    land, floor = df["leased_land_m2"], df["leased_floor_m2"]
    neither = ~((land > 0) | (floor > 0)) & ~t.frame["_empty"].to_numpy()
    report(t, problems, "lease_no_area", neither, field="租赁土地面积/租赁厂房面积")
    both = (land > 0) & (floor > 0)
    report(t, problems, "lease_both_areas", both, field="租赁厂房面积", values=floor[both])
    keep = df["lessee_uscc"].notna() & df["parcel_id"].notna() & ~t.frame["_empty"].to_numpy()
    return df.loc[keep].reset_index(drop=True)


# --- cross-table checks ------------------------------------------------------------------------------
CROSS_CHECKS: dict[str, tuple[str, str, str, str]] = {
    # code: field, severity, problem, action
    "lease_unknown_parcel": ("宗地代码", WARNING, "租赁的宗地不在宗地图层中", "该租赁不计入任何企业用地"),
    "lease_unknown_lessee": (
        "承租方统一社会信用代码",
        WARNING,
        "承租方不在企业数据中",
        "仍从出租方用地中扣除该租赁面积",
    ),
    "lease_own_parcel": ("承租方统一社会信用代码", WARNING, "承租方就是宗地权利人", "该租赁不计入（自有用地已计入）"),
    "enterprise_no_land": (
        "统一社会信用代码",
        WARNING,
        "企业在宗地图层和租赁表中都没有用地",
        "列为T类（不参评），照常列入结果表",
    ),
    "holder_not_in_enterprises": (
        "权利人统一社会信用代码",
        WARNING,
        "宗地权利人不在企业数据中",
        "宗地保留在宗地结果中；其用地不计入任何参评企业",
    ),
}


def report_cross(
    problems: Problems, code: str, file: str, rows: pd.Series | np.ndarray, values: pd.Series | pd.Index | np.ndarray
) -> None:
    """Record the cross-table problem ``code`` (one of :data:`CROSS_CHECKS`) for ``rows`` of ``file``."""
    field_, severity, problem, action = CROSS_CHECKS[code]
    problems.add(
        file=file,
        rows=rows,
        field=field_,
        values=values,
        severity=severity,
        code=code,
        problem=problem,
        action=action,
    )


def cross_check_keys(inputs: Inputs) -> None:
    """The cross-table checks that need only the keys, for a run that stops on fatal problems.

    An evaluation makes them itself (``evaluate``, with the land areas). When the inputs have fatal
    problems it does not run; these are then computed on the rows that are there (a parcel with a
    fatal problem still counts as known), so that one report lists everything: parcel holders that
    are not enterprises, leases of unknown parcels, by unknown lessees or of the lessee's own parcel,
    and enterprises that neither hold a parcel nor lease one (those whose only leases do not count
    are reported by the evaluation).
    """
    problems, files = inputs.problems, inputs.files
    parcels, enterprises, leases = inputs.parcels, inputs.enterprises, inputs.leases
    known_ent = enterprises.index
    holders = parcels["holder_uscc"]
    orphan = (holders.notna() & ~holders.isin(known_ent)).to_numpy()
    if orphan.any():
        pfile, prows = files.get("parcels", "parcels"), parcels["source_row"].to_numpy()
        report_cross(problems, "holder_not_in_enterprises", pfile, prows[orphan], holders[orphan])
    lfile = files.get("leases", "leases")
    pos = positions(parcels.index, leases["parcel_id"])
    rows = leases["source_row"].to_numpy()
    lessee = leases["lessee_uscc"]
    unknown_parcel = pos < 0
    if unknown_parcel.any():
        report_cross(problems, "lease_unknown_parcel", lfile, rows[unknown_parcel], leases["parcel_id"][unknown_parcel])
    unknown_lessee = ~lessee.isin(known_ent).to_numpy()
    if unknown_lessee.any():
        report_cross(problems, "lease_unknown_lessee", lfile, rows[unknown_lessee], lessee[unknown_lessee])
    lessee_of = to_objects(lessee, None)
    own = np.asarray(lessee_of == take(to_objects(holders, None), pos, None), dtype=bool) & pd.notna(lessee_of)
    if np.any(own):
        report_cross(problems, "lease_own_parcel", lfile, rows[own], lessee[own])
    no_land = ~known_ent.isin(holders) & ~known_ent.isin(lessee)
    if no_land.any():
        efile, erows = files.get("enterprises", "enterprises"), enterprises["source_row"].to_numpy()
        report_cross(problems, "enterprise_no_land", efile, erows[no_land], known_ent[no_land])
