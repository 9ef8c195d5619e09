"""Tables for people: Chinese headers with units, one frame per sheet of ``rankings.xlsx``.

Pure: frames in, frames out. ``geo_eval.io.xlsx`` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import pandas as pd

from geo_eval.inputs.fields import FIGURES
from geo_eval.landuse.flags import evidence_labels, rule_labels
from geo_eval.rating.evaluate import Evaluation
from geo_eval.rating.grouping import join_groups
from geo_eval.rating.indicators import INDICATORS
from geo_eval.rating.scheme import GRADE_LABELS
from geo_eval.report.labels import header, headers

ENTERPRISE_COLUMNS: dict[str, str] = headers(
    ["rank", "uscc", "name", "county", "park", "group_label", "industry_code", "land_mu"], "enterprises"
)
"""The identity columns of a ranking sheet (its first columns), with their headers."""
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


def ranking_headers(columns: Sequence[str], indicator_keys: Sequence[str] | None = None) -> dict[str, str]:
    """The columns of a ranking sheet among ``columns`` (those of ``enterprises.csv``), in sheet order, with
    their headers: identity, the raw figures the indicators use, the indicators (``indicator_keys``, else
    those in ``columns``), their item scores, results."""
    keys = [k for k in columns if k in INDICATORS] if indicator_keys is None else list(indicator_keys)
    figures: dict[str, None] = {}
    for k in keys:
        for c in (INDICATORS[k].numerator, INDICATORS[k].denominator):
            if c in FIGURES:
                figures.setdefault(c, None)
    cols = [*ENTERPRISE_COLUMNS, *figures, *keys, *(f"score_{k}" for k in keys), *RESULT_COLUMNS]
    present = set(columns)
    return headers((c for c in cols if c in present), "enterprises")


def enterprise_table(ev: Evaluation, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ranking table with Chinese headers (one row per enterprise)."""
    e = (ev.enterprises if rows is None else rows).reset_index()
    cols = ranking_headers(list(e.columns), ev.scheme.indicator_keys)
    return e[list(cols)].rename(columns=cols)


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
