"""Writing an evaluation's outputs into OUT_DIR, all or nothing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from geo_eval import __version__, report
from geo_eval.errors import OutputExistsError
from geo_eval.evaluate import FIGURES, Evaluation, grade_counts
from geo_eval.flags import FlagResult
from geo_eval.io.xlsx import write_workbook
from geo_eval.renewal import BLOCK_LABELS, RenewalBlocks

WORKBOOK_ROW_LIMIT = 50_000
"""Above this many enterprises the full table stays in csv/GeoPackage and workbooks go per park."""

ENTERPRISE_CSV_BASE = [
    "uscc",
    "name",
    "county",
    "park",
    "group",
    "group_label",
    "industry_code",
    "above_scale",
    "production_start",
    "owned_m2",
    "leased_out_m2",
    "leased_in_m2",
    "land_m2",
    "land_mu",
    "parcel_count",
    "lease_count",
]
ENTERPRISE_CSV_TAIL = [
    "bonus",
    "penalty",
    "score",
    "grade",
    "grade_label",
    "rank",
    "rank_of",
    "veto",
    "exempt_reason",
    "prev_grade",
    "prev_score",
    "score_change",
    "grade_change",
]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_directory(out_dir: Path, *, overwrite: bool) -> Iterator[Path]:
    """A temporary directory that replaces ``out_dir`` only when the block succeeds."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"输出目录 {out_dir} 已存在；如要覆盖，请加 --overwrite")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def enterprise_frame(ev: Evaluation) -> pd.DataFrame:
    """The ``enterprises.csv`` table: fixed column order, rounded figures."""
    e = ev.enterprises.reset_index()
    keys = list(ev.scheme.indicator_keys)
    cols = ENTERPRISE_CSV_BASE + list(FIGURES) + keys + [f"score_{k}" for k in keys] + ENTERPRISE_CSV_TAIL
    out = pd.DataFrame({c: e.get(c, pd.NA) for c in cols})
    for c in ("owned_m2", "leased_out_m2", "leased_in_m2", "land_m2"):
        out[c] = out[c].astype(float).round(2)
    out["land_mu"] = out["land_mu"].astype(float).round(4)
    for c in keys:
        out[c] = out[c].astype(float).round(6)
    for c in [f"score_{k}" for k in keys]:
        out[c] = out[c].astype(float).round(4)
    out["production_start"] = pd.to_datetime(out["production_start"], errors="coerce").dt.strftime("%Y-%m-%d")
    out["above_scale"] = out["above_scale"].map({True: "是", False: "否"})
    return out


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """UTF-8 with BOM (opens in Excel and WPS), ``\\n`` line ends, empty for missing."""
    df.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")


def write_parcels(
    ev: Evaluation, path: Path, flags: FlagResult | None = None, blocks: RenewalBlocks | None = None
) -> None:
    """``parcels.gpkg``: layer ``parcels`` (input fields plus areas, grade and tax per 亩 of the users,
    and the flag evidence) and, with flags, layer ``flags`` (one feature per parcel and flag)."""
    p = ev.parcels.copy()
    if flags is not None:
        ev_cols = flags.evidence.drop(columns=[c for c in flags.evidence.columns if c in p.columns])
        p = p.join(ev_cols)
        for c in ("plot_ratio", "plot_ratio_min", "building_coefficient", "builtup_fraction", "leased_out_share"):
            if c in p:
                p[c] = p[c].astype(float).round(4)
    if blocks is not None:
        p["block_id"] = blocks.membership.reindex(p.index)
    p = p.reset_index()
    for c in ("area_m2", "eval_area_m2", "leased_out_m2"):
        p[c] = p[c].round(2)
    p["area_mu"] = p["area_mu"].round(4)
    p["area_diff_pct"] = p["area_diff_pct"].round(3)
    p["tax_per_mu"] = p["tax_per_mu"].round(4)
    for c in p.columns:
        if pd.api.types.is_datetime64_any_dtype(p[c]):
            p[c] = p[c].dt.strftime("%Y-%m-%d")
    pyogrio.write_dataframe(p, path, layer="parcels", driver="GPKG", use_arrow=True)
    if flags is not None:
        geoms = ev.parcels.geometry
        f = flags.flags
        layer = gpd.GeoDataFrame(f, geometry=geoms.reindex(f["parcel_id"]).to_numpy(), crs=ev.parcels.crs)
        pyogrio.write_dataframe(layer, path, layer="flags", driver="GPKG", use_arrow=True)


def write_blocks(blocks: RenewalBlocks, path: Path) -> None:
    """``renewal_blocks.gpkg``, layer ``renewal_blocks``: every block and scattered plot."""
    pyogrio.write_dataframe(blocks.blocks.reset_index(drop=True), path, layer="renewal_blocks", driver="GPKG")


def flag_sheet(flags: FlagResult) -> pd.DataFrame:
    """疑似闲置/低效地块: one row per parcel and flag, Chinese headers."""
    f = flags.flags
    return pd.DataFrame(
        {
            "宗地代码": f["parcel_id"],
            "县区": f["county"],
            "园区": f["park"],
            "宗地面积（亩）": f["area_mu"],
            "标记": f["flag_label"],
            "规则": f["rule_id"],
            "原因": f["reason"],
            "数值": f["value"],
            "阈值": f["threshold"],
            "证据": f["evidence"],
            "依据": f["basis"],
            "严重程度": f["severity"],
            "使用企业": f["enterprises"],
            "企业名称": f["enterprise_names"],
        }
    )


def block_sheet(blocks: RenewalBlocks) -> pd.DataFrame:
    """连片改造区块: the blocks without geometry, Chinese headers."""
    b = pd.DataFrame(blocks.blocks.drop(columns=blocks.blocks.geometry.name)).reset_index(drop=True)
    return b.rename(columns=BLOCK_LABELS)


def workbook_sheets(
    ev: Evaluation,
    rows: pd.DataFrame | None = None,
    flags: FlagResult | None = None,
    blocks: RenewalBlocks | None = None,
) -> dict[str, pd.DataFrame]:
    """The sheets of a rankings workbook (all enterprises, or ``rows`` of one park)."""
    sub = ev if rows is None else _restrict(ev, rows)
    sheets = report.group_sheets(sub)
    sheets["用地面积公示"] = report.land_disclosure(sub)
    sheets["园区汇总"] = report.park_summary(sub)
    sheets["基准值"] = report.benchmark_sheet(ev)
    if flags is not None:
        fs = flag_sheet(flags)
        if rows is not None:
            parks = set(rows["park"].dropna())
            fs = fs.loc[fs["园区"].isin(parks)]
        sheets["疑似闲置／低效地块"] = fs
    if blocks is not None:
        bs = block_sheet(blocks)
        sheets["连片改造区块"] = bs
    return sheets


def _restrict(ev: Evaluation, rows: pd.DataFrame) -> Evaluation:
    from dataclasses import replace

    return replace(ev, enterprises=rows, allocation=ev.allocation.loc[ev.allocation["uscc"].isin(rows.index)])


def _notes(ev: Evaluation) -> list[str]:
    s = ev.scheme
    lines = [
        f"评价方案：{s.title}（{s.name}）",
        f"方案来源：{s.source}",
        f"评价年度：{ev.year}",
        f"排名范围：按{'县区' if s.ranking_unit == 'county' else '园区'}、分组排名；分类：A 优先发展类、B 鼓励提升类、C 监管调控类、D 落后整治类、T 不适合评价",
        f"面积计算坐标系：{ev.area_crs}（CGCS2000 3度带高斯-克吕格投影）；1亩 = 2000/3 平方米",
        "评价用地 = 自有土地 − 出租土地 + 承租土地；"
        + (
            "厂房租赁按宗地容积率折算为土地面积（厂房面积 ÷ 容积率）"
            if s.land.floor_lease_conversion == "plot_ratio"
            else "厂房租赁按租赁厂房面积直接计入"
        ),
    ]
    lines += [f"说明：{n}" for n in ev.notes]
    return lines


def write_outputs(
    ev: Evaluation,
    out_dir: Path,
    *,
    overwrite: bool = False,
    inputs: dict[str, Path] | None = None,
    extra_manifest: dict[str, object] | None = None,
    flags: FlagResult | None = None,
    blocks: RenewalBlocks | None = None,
) -> dict[str, object]:
    """Write every output of ``ev`` into ``out_dir`` atomically; returns the manifest."""
    timings = dict(ev.timings)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        t = time.perf_counter()
        write_csv(enterprise_frame(ev), tmp / "enterprises.csv")
        timings["write_enterprises_csv"] = time.perf_counter() - t
        t = time.perf_counter()
        write_parcels(ev, tmp / "parcels.gpkg", flags, blocks)
        timings["write_parcels_gpkg"] = time.perf_counter() - t
        if flags is not None:
            write_csv(flags.flags, tmp / "flags.csv")
        if blocks is not None:
            write_blocks(blocks, tmp / "renewal_blocks.gpkg")
        t = time.perf_counter()
        problems = ev.problems.frame()
        write_csv(problems, tmp / "exceptions.csv")
        write_csv(ev.benchmarks, tmp / "benchmarks.csv")
        timings["write_reports_csv"] = time.perf_counter() - t
        t = time.perf_counter()
        workbooks = write_workbooks(ev, tmp, flags, blocks)
        timings["write_workbooks"] = time.perf_counter() - t
        manifest: dict[str, object] = {
            "tool": "geo-eval",
            "version": __version__,
            "year": ev.year,
            "scheme": {"name": ev.scheme.name, "title": ev.scheme.title, "sha256": ev.scheme.digest},
            "area_crs": ev.area_crs,
            "inputs": {k: {"path": str(p), "sha256": sha256_file(p)} for k, p in sorted((inputs or {}).items())},
            "counts": {
                "enterprises": len(ev.enterprises),
                "parcels": len(ev.parcels),
                "leases": len(ev.leases),
                "exceptions": {sev: int((problems["severity"] == sev).sum()) for sev in ("致命", "警告", "提示")},
            },
            "grades": grade_counts(ev),
            "fallbacks": ev.notes,
            "flags": flag_counts(flags, blocks),
            "workbooks": workbooks,
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
        manifest.update(extra_manifest or {})
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


def flag_counts(flags: FlagResult | None, blocks: RenewalBlocks | None) -> dict[str, object]:
    """Counts per flag and rule, parcels per flag, and blocks, for the manifest."""
    if flags is None:
        return {"enabled": False}
    f = flags.flags
    out: dict[str, object] = {
        "enabled": True,
        "by_flag": {k: int(v) for k, v in f["flag"].value_counts().sort_index().items()},
        "by_rule": {k: int(v) for k, v in f["rule_id"].value_counts().sort_index().items()},
        "parcels_by_flag": {k: int(v) for k, v in f.groupby("flag")["parcel_id"].nunique().sort_index().items()},
        "notes": flags.notes,
    }
    if blocks is not None:
        kinds = blocks.blocks["kind"].value_counts()
        out["blocks"] = {k: int(v) for k, v in kinds.sort_index().items()}
        big = blocks.blocks.loc[blocks.blocks["kind"] == "连片改造区块"]
        out["block_area_mu"] = round(float(big["area_mu"].sum()), 4)
    return out


def write_workbooks(
    ev: Evaluation, out_dir: Path, flags: FlagResult | None = None, blocks: RenewalBlocks | None = None
) -> list[str]:
    """``rankings.xlsx``, or for large runs one workbook per park under ``rankings/``."""
    if len(ev.enterprises) <= WORKBOOK_ROW_LIMIT:
        write_workbook(out_dir / "rankings.xlsx", workbook_sheets(ev, None, flags, blocks), notes={"说明": _notes(ev)})
        return ["rankings.xlsx"]
    folder = out_dir / "rankings"
    folder.mkdir()
    names = []
    e = ev.enterprises
    for park, rows in e.groupby(e["park"].fillna("未注明园区"), sort=True):
        name = f"rankings/{_safe(str(park))}.xlsx"
        write_workbook(out_dir / name, workbook_sheets(ev, rows, flags, None), notes={"说明": _notes(ev)})
        names.append(name)
    return names


def _safe(name: str) -> str:
    return "".join("_" if c in '<>:"/\\|?*' else c for c in name).strip() or "未注明园区"
