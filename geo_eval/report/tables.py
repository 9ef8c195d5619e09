"""Tables for people: Chinese headers with units, one frame per sheet of ``rankings.xlsx``.

Pure: frames in, frames out. ``geo_eval.io.xlsx`` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa

from geo_eval.inputs.corrections import CORRECTABLE_FIELDS
from geo_eval.inputs.fields import FIGURES
from geo_eval.landuse.flags import evidence_labels, rule_labels
from geo_eval.rating.evaluate import Evaluation
from geo_eval.rating.grouping import join_groups
from geo_eval.rating.indicators import INDICATORS
from geo_eval.rating.scheme import GRADE_LABELS
from geo_eval.report.labels import INTEGER_HEADERS, header, headers

ENTERPRISE_COLUMNS: dict[str, str] = headers(
    [
        "rank",
        "rank_scope",
        "park_rank",
        "name",
        "uscc",
        "county",
        "park",
        "group_label",
        "industry_code",
        "land_mu",
    ],
    "enterprises",
)
"""The identity columns of a ranking sheet (its first columns), with their headers: the rank, where it
counts (:func:`rank_scope`), the rank within the park (:func:`park_ranks`, in a park's sheets only), then
the name, kept in view while scrolling (:data:`FROZEN_THROUGH`)."""
ENTERPRISE_DECIMALS: dict[str, int] = {
    **dict.fromkeys(("owned_m2", "leased_out_m2", "leased_in_m2", "land_m2"), 2),
    "land_mu": 4,
    **dict.fromkeys(INDICATORS, 6),
    **dict.fromkeys((f"score_{k}" for k in INDICATORS), 4),
}
"""Decimals the computed figures of an enterprise are published with: ``enterprises.csv`` holds them so, and
the ranking sheets show the same numbers (their number formats show two of them)."""
RESULT_COLUMNS: dict[str, str] = headers(
    [
        "bonus",
        "penalty",
        "score",
        "grade",
        "grade_label",
        "veto",
        "prev_grade",
        "prev_score",
        "grade_change",
        "exempt_reason",
        "corrected_fields",
    ],
    "enterprises",
)
"""The result columns of a ranking sheet (its last columns), with their headers."""
LAND_DISCLOSURE_COLUMNS: tuple[str, ...] = (
    "uscc",
    "name",
    "county",
    "park",
    "owned_parcels",
    "owned_m2",
    "leased_out_m2",
    "leased_parcels",
    "leased_in_m2",
    "land_m2",
    "land_mu",
    "grade",
)
"""The columns of 用地面积公示."""
PARK_SUMMARY_COLUMNS: tuple[str, ...] = (
    "county",
    "park",
    "n_enterprises",
    "land_mu",
    "tax",
    "sales",
    "tax_per_mu",
    *(f"n_grade_{g}" for g in ("A", "B", "C", "D", "T")),
)
"""The columns of 园区汇总."""
BENCHMARK_COLUMNS: tuple[str, ...] = ("unit", "group_label", "indicator", "benchmark", "minimum", "basis", "n")
"""The columns of 基准值 (the group and the indicator by their Chinese names)."""
FLAG_SHEET_COLUMNS: tuple[str, ...] = (
    "parcel_id",
    "county",
    "park",
    "area_mu",
    "flag_label",
    "rule_label",
    "reason",
    "value",
    "threshold",
    "evidence",
    "basis",
    "severity",
    "enterprises",
    "enterprise_names",
)
"""The columns of 疑似闲置／低效地块 in ``rankings.xlsx``."""
FLAG_DOWNLOAD_COLUMNS: tuple[str, ...] = (
    "flag_id",
    *FLAG_SHEET_COLUMNS,
    "review_status_label",
    "review_comment",
    "reviewed_by",
    "reviewed_at_label",
    "review_version",
)
"""The columns of 疑似闲置／低效地块 in the service's downloads: the flag's id and its review too."""
FROZEN_THROUGH: tuple[str, ...] = (
    header("name", "enterprises"),
    header("parcel_id", "flags"),
    header("block_id", "blocks"),
    header("park", "enterprises"),
)
"""The name columns of the sheets: a sheet's panes are frozen right of the leftmost of these it has, so that
the enterprise (parcel, block, park) stays in view while scrolling across (and is repeated on every printed
page of a sheet too wide for one)."""
RANKING_TITLE = "亩均效益评价排名"
"""The title of the ranking tables (workbooks and downloads)."""


def ranking_title(year: int, scope: str = "") -> str:
    """The title of a ranking workbook: ``2025年度亩均效益评价排名（海滨高新技术产业园）``.

    >>> ranking_title(2025), ranking_title(2025, "全部园区")
    ('2025年度亩均效益评价排名', '2025年度亩均效益评价排名（全部园区）')
    """
    return f"{year}年度{RANKING_TITLE}" + (f"（{scope}）" if scope else "")


def ranking_headers(columns: Sequence[str], indicator_keys: Sequence[str] | None = None) -> dict[str, str]:
    """The columns of a ranking sheet among ``columns`` (those of ``enterprises.csv``, with ``rank_scope`` and
    ``park_rank`` where the sheet has them), in sheet order, with their headers: identity, the raw figures the
    indicators use, the indicators (``indicator_keys``, else those in ``columns``), their item scores, results."""
    keys = [k for k in columns if k in INDICATORS] if indicator_keys is None else list(indicator_keys)
    figures: dict[str, None] = {}
    for k in keys:
        for c in (INDICATORS[k].numerator, INDICATORS[k].denominator):
            if c in FIGURES:
                figures.setdefault(c, None)
    cols = [*ENTERPRISE_COLUMNS, *figures, *keys, *(f"score_{k}" for k in keys), *RESULT_COLUMNS]
    present = set(columns)
    return headers((c for c in cols if c in present), "enterprises")


def rank_scope(rows: pd.DataFrame, unit: str) -> pd.api.extensions.ExtensionArray:
    """排名范围: where each row's ``rank`` counts and how many it counts among, ``共 340 家（东海县 规上企业）``
    (the ranking ``unit``'s name — ``county`` or ``park``, the scheme's ``ranking_unit`` — and the group, with
    ``rank_of``); missing where the row has no ``rank_of`` (T class, no unit). Each distinct text is made once.

    >>> rows = pd.DataFrame({"county": ["东海县", "东海县", None], "group_label": ["规上企业"] * 3,
    ...                      "rank_of": pd.array([340, 340, None], dtype="Int64")})
    >>> rank_scope(rows, "county").tolist()
    ['共 340 家（东海县 规上企业）', '共 340 家（东海县 规上企业）', nan]
    """
    of = rows["rank_of"].astype("Int64")
    unit_codes, units = pd.factorize(rows[unit])
    group_codes, groups = pd.factorize(rows["group_label"].fillna(""))
    counts = of.to_numpy(dtype=np.int64, na_value=-1)
    has = (counts >= 0) & (unit_codes >= 0)
    key = (unit_codes.astype(np.int64) * (len(groups) + 1) + group_codes) * (int(counts.max(initial=0)) + 1) + counts
    codes, keys = pd.factorize(np.where(has, key, -1))
    first = _first(codes)
    texts = [
        "" if k < 0 else f"共 {n} 家（{f'{units[u]} {groups[g]}'.strip()}）"
        for k, u, g, n in zip(keys, unit_codes[first], group_codes[first], counts[first], strict=True)
    ]
    scopes = pa.array(texts, pa.large_string()).take(pa.array(codes, mask=~has))
    return pd.Series(scopes.to_pandas(), copy=False).array


def _first(codes: np.ndarray) -> np.ndarray:
    """The position of the first row of each code (codes of :func:`pandas.factorize`, in order of appearance)."""
    return np.unique(codes, return_index=True)[1]


def park_ranks(rows: pd.DataFrame) -> pd.Series:
    """园区内排名: the competition rank (1, 2, 2, 4) of each row's ``rank`` among the rows of its county, park
    and group — an enterprise's place in its park when ranks are county-wide (1, 2, 4, 5 … within one park).
    Missing where ``rank`` or the park is. ``rows`` must hold every enterprise of the parks it covers.

    >>> rows = pd.DataFrame({"county": ["甲县"] * 4, "park": ["一园", "二园", "一园", "一园"],
    ...                      "group": ["g"] * 4, "rank": pd.array([1, 2, 4, None], dtype="Int64")})
    >>> park_ranks(rows).tolist()
    [1, 1, 2, <NA>]
    """
    cell = np.zeros(len(rows), dtype=np.int64)
    for c in ("county", "group", "park"):
        codes, uniques = pd.factorize(rows[c].fillna("") if c != "park" else rows[c])
        cell = np.where((cell < 0) | (codes < 0), -1, cell * (len(uniques) + 1) + codes)
    rank = rows["rank"].astype("Int64").astype("float64").where(cell >= 0)
    return rank.groupby(cell).rank(method="min").astype("Int64")


def ranking_table(
    rows: pd.DataFrame, *, unit: str, indicator_keys: Sequence[str] | None = None, park_rank: bool = False
) -> pd.DataFrame:
    """The ranking table of ``rows`` (columns of ``enterprises.csv``; the USCC a column or the index) with
    Chinese headers: :func:`ranking_headers` with :func:`rank_scope` beside the rank and, with ``park_rank``
    when ranks are not per park already (``unit`` is the scheme's ``ranking_unit``), :func:`park_ranks`; the
    figures rounded as ``enterprises.csv`` holds them (:data:`ENTERPRISE_DECIMALS`)."""
    extra: dict[str, object] = {"rank_scope": rank_scope(rows, unit)}
    if park_rank and unit != "park":
        extra["park_rank"] = park_ranks(rows).array
    index_name = rows.index.name if rows.index.name not in rows.columns else None
    names = [str(c) for c in rows.columns] + ([str(index_name)] if index_name else [])
    cols = ranking_headers([*names, *extra], indicator_keys)
    values = {
        h: extra[c] if c in extra else rows.index.array if c == index_name else _published(rows, c)
        for c, h in cols.items()
    }
    return pd.DataFrame(values, index=pd.RangeIndex(len(rows)))


def _published(rows: pd.DataFrame, column: str) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """A column of ``rows`` as ``enterprises.csv`` publishes it (:data:`ENTERPRISE_DECIMALS`)."""
    if column == "corrected_fields":
        return corrected_labels(rows[column])
    digits = ENTERPRISE_DECIMALS.get(column)
    if digits is None:
        return rows[column].array
    return np.round(rows[column].to_numpy(dtype=np.float64, na_value=np.nan), digits)


def without_unused_corrections(enterprises: pd.DataFrame) -> pd.DataFrame:
    """``enterprises`` (the rows of ``enterprises.csv``) without ``corrected_fields`` when no enterprise has a
    correction: a run without corrections shows no 更正事项 column, as ``rankings.xlsx`` does.

    >>> list(without_unused_corrections(pd.DataFrame({"uscc": ["x"], "corrected_fields": [None]})).columns)
    ['uscc']
    """
    if "corrected_fields" not in enterprises or enterprises["corrected_fields"].fillna("").astype(str).ne("").any():
        return enterprises
    return enterprises.drop(columns="corrected_fields")


def corrected_labels(fields: pd.Series) -> np.ndarray:
    """``corrected_fields`` (canonical names joined by ``;``) as people read it: the fields' Chinese names.

    >>> corrected_labels(pd.Series(["registered_area_m2;tax", "", None])).tolist()
    ['用地面积、税收', '', '']
    """
    names = {k: f.label for k, f in CORRECTABLE_FIELDS.items()}
    texts = fields.astype("string").fillna("")
    return np.array(["、".join(names.get(n, n) for n in t.split(";") if n) for t in texts], dtype=object)


def plain_integers(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (Chinese headers) with its counts and ranks (:data:`geo_eval.report.labels.INTEGER_HEADERS`)
    as integers where every value is whole, for a csv people read: ``1192``, not ``1192.0``.

    >>> plain_integers(pd.DataFrame({"年平均职工人数（人）": [1192.0, None], "税收（万元）": [3.0, 1.5]})).to_csv(index=False)
    '年平均职工人数（人）,税收（万元）\\n1192,3.0\\n,1.5\\n'
    """
    out = table.copy(deep=False)
    for c in table.columns:
        s = table[c]
        if c in INTEGER_HEADERS and s.dtype.kind == "f":
            values = s.to_numpy(dtype=np.float64)
            finite = values[np.isfinite(values)]
            if np.array_equal(finite, np.round(finite)) and np.isfinite(values).sum() == s.notna().sum():
                out[c] = s.astype("Int64")
    return out


def enterprise_table(ev: Evaluation, rows: pd.DataFrame | None = None, *, park_rank: bool = False) -> pd.DataFrame:
    """The ranking table with Chinese headers (one row per enterprise): :func:`ranking_table` of ``rows`` (all
    enterprises by default)."""
    e = ev.enterprises if rows is None else rows
    return ranking_table(e, unit=ev.scheme.ranking_unit, indicator_keys=ev.scheme.indicator_keys, park_rank=park_rank)


def group_sheets(ev: Evaluation, *, park_rank: bool = False) -> dict[str, pd.DataFrame]:
    """One ranking table per scheme group, plus the T class (不参评企业); ``park_rank``: with 园区内排名 (the
    sheets of a park)."""
    e = ev.enterprises
    out: dict[str, pd.DataFrame] = {}
    for g in ev.scheme.groups:
        out[g.label] = enterprise_table(ev, e.loc[e["group"] == g.key], park_rank=park_rank)
    out["不参评企业（T类）"] = enterprise_table(ev, e.loc[e["grade"] == "T"], park_rank=park_rank)
    return out


def land_disclosure(ev: Evaluation) -> pd.DataFrame:
    """用地面积公示: each enterprise's parcels, leases and evaluated area, step by step."""
    return sort_land_disclosure(land_disclosure_rows(ev))


def sort_land_disclosure(rows: pd.DataFrame) -> pd.DataFrame:
    """The order of 用地面积公示: by county, park and USCC (stable; missing last)."""
    by = [header(c, "enterprises") for c in ("county", "park", "uscc")]
    return rows.sort_values(by, kind="mergesort", na_position="last")


def land_disclosure_rows(ev: Evaluation) -> pd.DataFrame:
    """The rows of :func:`land_disclosure` in the enterprises' order (any subset of them, sorted with
    :func:`sort_land_disclosure`, is the sheet of that subset)."""
    e = ev.enterprises
    a = ev.allocation
    owned = a.loc[a["role"] == "owner"].sort_values(["uscc", "parcel_id"])
    rented = a.loc[a["role"] == "lessee"].sort_values(["uscc", "parcel_id"])
    own_ids = join_groups(owned["uscc"], owned["parcel_id"], "、")
    lease_ids = join_groups(rented["uscc"], rented["parcel_id"], "、")
    values = {
        "uscc": e.index,
        "name": e["name"].to_numpy(),
        "county": e["county"].to_numpy(),
        "park": e["park"].to_numpy(),
        "owned_parcels": own_ids.reindex(e.index).fillna("").to_numpy(),
        "owned_m2": e["owned_m2"].round(2).to_numpy(),
        "leased_out_m2": e["leased_out_m2"].round(2).to_numpy(),
        "leased_parcels": lease_ids.reindex(e.index).fillna("").to_numpy(),
        "leased_in_m2": e["leased_in_m2"].round(2).to_numpy(),
        "land_m2": e["land_m2"].round(2).to_numpy(),
        "land_mu": e["land_mu"].round(4).to_numpy(),
        "grade": e["grade"].to_numpy(),
    }
    return pd.DataFrame({h: values[c] for c, h in headers(LAND_DISCLOSURE_COLUMNS, "enterprises").items()})


def park_summary(ev: Evaluation) -> pd.DataFrame:
    """园区汇总: per park, land, tax, sales, tax per 亩 and counts per grade."""
    e = ev.enterprises.copy()
    e["park"] = e["park"].fillna("（未注明园区）")
    e["county"] = e["county"].fillna("")
    g = e.groupby(["county", "park"], sort=True)
    out = pd.DataFrame(
        {
            "n_enterprises": g.size(),
            "land_mu": g["land_mu"].sum().round(2),
            "tax": g["tax"].sum().round(2),
            "sales": g["sales"].sum().round(2),
        }
    )
    out["tax_per_mu"] = (out["tax"] / out["land_mu"].where(out["land_mu"] > 0)).round(4)
    counts = e.groupby(["county", "park", "grade"]).size().unstack(fill_value=0)
    for grade in GRADE_LABELS:
        out[f"n_grade_{grade}"] = counts.get(grade, 0)
    out = out.reset_index()
    return out[list(PARK_SUMMARY_COLUMNS)].rename(columns=headers(PARK_SUMMARY_COLUMNS, "enterprises"))


def benchmark_sheet(ev: Evaluation) -> pd.DataFrame:
    """基准值: the benchmark of every unit, group and indicator, with how it was obtained."""
    b = ev.benchmarks.copy()
    labels = {g.key: g.label for g in ev.scheme.groups}
    out = pd.DataFrame(
        {
            "unit": b["unit"],
            "group_label": b["group"].map(labels),
            "indicator": b["indicator"].map(lambda k: header(k, "enterprises")),
            "benchmark": b["benchmark"].round(6),
            "minimum": b["minimum"].round(6),
            "basis": b["basis"],
            "n": b["n"],
        }
    )
    return out.rename(columns=headers(BENCHMARK_COLUMNS, "benchmarks"))


def flag_sheet(flags: pd.DataFrame, columns: Sequence[str] = FLAG_SHEET_COLUMNS) -> pd.DataFrame:
    """疑似闲置／低效地块: the ``columns`` present in ``flags`` (rows of ``flags.csv``; for a download with
    the review columns of :func:`api.downloads.with_reviews`) under their Chinese headers. Rules are shown
    by their Chinese names: the flag's (``rule_label``, from ``rule_id`` where ``flags`` has none) and
    those a 退二优二 candidate cites in ``evidence``."""
    present = set(flags.columns)
    values = {c: flags[c] for c in columns if c in present}
    if "rule_label" in columns and "rule_label" not in present and "rule_id" in present:
        values["rule_label"] = rule_labels(flags["rule_id"])
    if "evidence" in values:
        values["evidence"] = named_evidence(values["evidence"])
    names = headers([c for c in columns if c in values], "flags")
    return pd.DataFrame({h: values[c] for c, h in names.items()})


def named_evidence(evidence: pd.Series) -> pd.Series:
    """``evidence`` with the rules a 退二优二 candidate cites (``规则=a、b``) by their Chinese names
    (:func:`geo_eval.landuse.flags.evidence_labels`, once per distinct text); other texts as they are.

    >>> named_evidence(pd.Series(["规则=low_efficiency.zero_tax", "容积率=0.5"])).tolist()
    ['规则=低效用地·零税收', '容积率=0.5']
    """
    text = evidence.astype(object)
    cites = text.str.startswith("规则=", na=False).to_numpy(dtype=bool)
    out = text.to_numpy(dtype=object, copy=True)
    if cites.any():
        codes, uniques = pd.factorize(out[cites])
        out[cites] = evidence_labels(pd.Series(uniques, dtype=object)).to_numpy(dtype=object)[codes]
    return pd.Series(out, index=evidence.index, dtype=object)


def block_sheet(blocks: gpd.GeoDataFrame) -> pd.DataFrame:
    """连片改造区块: the blocks (:attr:`geo_eval.landuse.renewal.RenewalBlocks.blocks`) without geometry, Chinese headers."""
    b = pd.DataFrame(blocks.drop(columns=blocks.geometry.name)).reset_index(drop=True)
    return b.rename(columns=headers(b.columns, "blocks"))
