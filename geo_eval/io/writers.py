"""Writing an evaluation's outputs into OUT_DIR, all or nothing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely

from geo_eval import __version__
from geo_eval.errors import OutputExistsError
from geo_eval.inputs.fields import FIGURES
from geo_eval.inputs.keys import arrow_values, positions, reindex
from geo_eval.io import csvout
from geo_eval.io.xlsx import Layout, write_workbook
from geo_eval.landuse.flags import FlagResult
from geo_eval.landuse.renewal import RenewalBlocks
from geo_eval.rating.evaluate import Evaluation, grade_counts
from geo_eval.rating.policies import policy_counts, policy_rows
from geo_eval.report import tables as report
from geo_eval.report.labels import HEADER_FORMATS, header
from geo_eval.report.policies import policy_sheets

WORKBOOK_ROW_LIMIT = 50_000
"""Above this many enterprises the full table stays in csv/GeoPackage and workbooks go per park."""
WORKBOOK_THREADS = min(4, os.cpu_count() or 1)
"""Workbooks written at once (see :func:`write_planned`): one per core, up to four (the writer's CPU time,
mostly deflating the sheet XML, is what the workbooks of a large run wait for)."""

PlannedWorkbook = tuple[str, dict[str, pd.DataFrame], dict[str, list[str]], Layout]
"""A workbook of :func:`workbook_plan`: its file name under OUT_DIR, sheets, notes (说明) and layout."""

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
    "corrected_fields",
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
    out = pd.DataFrame({c: e.get(c, pd.NA) for c in cols}, copy=False)  # no consolidation into 2-D blocks
    for c, digits in report.ENTERPRISE_DECIMALS.items():
        if c in out.columns:
            out[c] = out[c].astype(float).round(digits)
    out["production_start"] = pd.to_datetime(out["production_start"], errors="coerce").dt.strftime("%Y-%m-%d")
    out["above_scale"] = out["above_scale"].map({True: "是", False: "否"})
    return out


def policy_frame(ev: Evaluation) -> pd.DataFrame | None:
    """The ``policies.csv`` table (:func:`geo_eval.rating.policies.policy_rows`); None when the scheme
    has no ``[[policies]]`` (then no ``policies.csv`` is written and the workbooks have no policy sheets)."""
    return policy_rows(ev.enterprises, ev.scheme.policies) if ev.scheme.policies else None


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """UTF-8 with BOM (opens in Excel and WPS), ``\\n`` line ends, empty for missing, a ``'`` before a
    text that a spreadsheet would read as a formula.

    The text pandas ``to_csv(index=False)`` gives, built with pyarrow, with that formula guard: see
    :mod:`geo_eval.io.csvout`.
    """
    csvout.write_csv(df, path)


_PARCEL_ROUNDING = {
    "area_m2": 2,
    "eval_area_m2": 2,
    "leased_out_m2": 2,
    "area_mu": 4,
    "area_diff_pct": 3,
    "tax_per_mu": 4,
}
_EVIDENCE_ROUNDING = ("plot_ratio", "plot_ratio_min", "building_coefficient", "builtup_fraction", "leased_out_share")


def parcel_layer_columns(
    ev: Evaluation, flags: FlagResult | None = None, blocks: RenewalBlocks | None = None
) -> dict[str, pd.Series]:
    """The attribute columns of layer ``parcels`` (``parcels.gpkg`` and the database's parcel results),
    in order: the parcel code, the parcel frame's columns, the flag evidence and ``block_id``, rounded."""
    parcels = ev.parcels
    cols: dict[str, pd.Series] = {str(parcels.index.name or "index"): parcels.index.to_series(index=parcels.index)}
    for c in parcels.columns:
        if c != parcels.geometry.name:
            cols[c] = parcels[c]
    if flags is not None:
        evidence = flags.evidence.drop(columns=[c for c in flags.evidence.columns if c in parcels.columns])
        if not evidence.index.equals(parcels.index):
            evidence = evidence.reindex(parcels.index)
        for c in evidence.columns:
            cols[c] = evidence[c]
        for c in _EVIDENCE_ROUNDING:
            if c in cols:
                cols[c] = cols[c].astype(float).round(4)
    if blocks is not None:
        cols["block_id"] = reindex(blocks.membership, parcels.index)
    for c, digits in _PARCEL_ROUNDING.items():
        cols[c] = cols[c].round(digits)
    return cols


def write_parcels(
    ev: Evaluation, path: Path, flags: FlagResult | None = None, blocks: RenewalBlocks | None = None
) -> None:
    """``parcels.gpkg``: layer ``parcels`` (input fields plus areas, grade and tax per 亩 of the users,
    and the flag evidence) and, with flags, layer ``flags`` (one feature per parcel and flag).

    Both layers go to GDAL as Arrow tables built column by column (no copy of the parcel frame); the
    geometries are encoded to WKB once and the flags layer takes its parcels' WKB by position.
    """
    parcels = ev.parcels
    geoms = _LayerGeometry(parcels.geometry)
    cols = parcel_layer_columns(ev, flags, blocks)
    with _gdal_config(OGR_SQLITE_SYNCHRONOUS="OFF"):
        wkb, geometry_type = geoms.layer(None)
        _write_layer(path, "parcels", cols, geoms.name, wkb, geometry_type, geoms.crs, dates_as_text=True)
        if flags is not None:
            f = flags.flags
            wkb, geometry_type = geoms.layer(positions(parcels.index, f["parcel_id"]))
            _write_layer(path, "flags", {c: f[c] for c in f.columns}, geoms.name, wkb, geometry_type, geoms.crs)


@contextlib.contextmanager
def _gdal_config(**options: str) -> Iterator[None]:
    """GDAL config options for the block, restored afterwards. ``OGR_SQLITE_SYNCHRONOUS=OFF``: SQLite
    skips its fsyncs while writing the GeoPackage (it sits in the run's temporary directory, which
    replaces OUT_DIR only once complete, like every other output, none of which is fsynced)."""
    before = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(dict(options))
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(before)


_GEOMETRY_TYPES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon")
"""Layer geometry type by shapely type id."""
_MULTI_OF = {0: 4, 1: 5, 3: 6}
"""Shapely type id of a single-part type → that of its multi-part type."""


class _LayerGeometry:
    """The parcels' geometries for GDAL, as ``pyogrio.write_dataframe`` prepares them for a GPKG
    (layer type from the geometry types present, single parts promoted to multi where both occur,
    " Z" when any geometry has z), computed once for the parcels and taken by position for a layer
    of some of them (the flags)."""

    def __init__(self, geometry: gpd.GeoSeries) -> None:
        self.name = str(geometry.name)
        self.values = geometry.to_numpy()
        self.type_ids = shapely.get_type_id(self.values)
        self.has_z = shapely.has_z(self.values) & ~shapely.is_empty(self.values)
        self._wkb: dict[int, pa.Array] = {}
        crs = geometry.crs
        epsg = crs.to_epsg() if crs is not None else None
        self.crs = None if crs is None else (f"EPSG:{epsg}" if epsg else crs.to_wkt("WKT1_GDAL"))

    def _wkb_promoting(self, single: int) -> pa.Array:
        """WKB of every geometry, with those of type ``single`` (-1: none) made multi."""
        if single not in self._wkb:
            values = self.values
            if single >= 0:
                mask = self.type_ids == single
                values = values.copy()
                make = {0: shapely.multipoints, 1: shapely.multilinestrings, 3: shapely.multipolygons}[single]
                values[mask] = make(np.atleast_2d(values[mask]), axis=0)
            self._wkb[single] = pa.array(shapely.to_wkb(values), type=pa.binary())  # as geopandas.array.to_wkb
        return self._wkb[single]

    def layer(self, positions: np.ndarray | None) -> tuple[pa.Array, str]:
        """WKB and layer geometry type for the geometries at ``positions`` (-1: none; None: all)."""
        if positions is None:
            type_ids, has_z = self.type_ids, self.has_z
        else:
            absent = positions < 0
            type_ids = np.where(absent, -1, self.type_ids[positions])
            has_z = np.where(absent, False, self.has_z[positions])
        present = sorted(set(np.unique(type_ids).tolist()) - {-1})
        geometry_type, promote = "Unknown", -1
        if len(present) == 1 and present[0] < len(_GEOMETRY_TYPES):
            geometry_type = _GEOMETRY_TYPES[present[0]]
        elif len(present) == 2 and _MULTI_OF.get(present[0]) == present[1]:
            geometry_type, promote = _GEOMETRY_TYPES[present[1]], present[0]
        if len(type_ids) and bool(has_z.any()) and geometry_type != "Unknown":
            geometry_type = f"{geometry_type} Z"
        wkb = self._wkb_promoting(promote)
        if positions is not None:
            wkb = wkb.take(pa.array(positions, mask=positions < 0))
        return wkb, geometry_type


def _write_layer(
    path: Path,
    layer: str,
    cols: dict[str, pd.Series],
    geometry_name: str,
    wkb: pa.Array,
    geometry_type: str,
    crs: str | None,
    *,
    dates_as_text: bool = False,
) -> None:
    """One GPKG layer through ``pyogrio.write_arrow``, fields typed as ``pyogrio.write_dataframe``
    types them; with ``dates_as_text`` datetime columns are written as ``YYYY-MM-DD`` text."""
    names, arrays, fields = [], [], []
    for name, s in cols.items():
        field_meta = None
        if dates_as_text and pd.api.types.is_datetime64_any_dtype(s.dtype):
            arr = arrow_values(s.dt.strftime("%Y-%m-%d"))
        elif isinstance(s.dtype, pd.DatetimeTZDtype) and str(s.dtype.tz) != "UTC":  # as pyogrio does
            arr, field_meta = arrow_values(s.astype("string")), {"GDAL:OGR:type": "DateTime"}
        elif pd.api.types.is_object_dtype(s.dtype):
            kind = pd.api.types.infer_dtype(s, skipna=True)
            if kind == "datetime":  # pyogrio: text, marked as DateTime for GDAL
                arr, field_meta = arrow_values(s.astype("string")), {"GDAL:OGR:type": "DateTime"}
            else:
                try:
                    arr = arrow_values(s)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    arr = arrow_values(s.astype("string"))
        else:
            arr = arrow_values(s)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_null(arr.type):  # GDAL has no null type: pyogrio writes such a column as text
            arr = arr.cast(pa.string())
        elif pa.types.is_dictionary(arr.type) and pa.types.is_null(arr.type.value_type):
            arr = arr.cast(pa.dictionary(arr.type.index_type, pa.string()))
        names.append(str(name))
        arrays.append(arr)
        fields.append(pa.field(str(name), arr.type, metadata=field_meta))
    names.append(geometry_name)
    arrays.append(wkb)
    fields.append(pa.field(geometry_name, wkb.type))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    pyogrio.write_arrow(
        table, path, layer=layer, driver="GPKG", geometry_name=geometry_name, geometry_type=geometry_type, crs=crs
    )


def write_blocks(blocks: RenewalBlocks, path: Path) -> None:
    """``renewal_blocks.gpkg``, layer ``renewal_blocks``: every block and scattered plot."""
    pyogrio.write_dataframe(blocks.blocks.reset_index(drop=True), path, layer="renewal_blocks", driver="GPKG")


def flag_sheet(flags: FlagResult) -> pd.DataFrame:
    """疑似闲置／低效地块: one row per parcel and flag, Chinese headers (:func:`geo_eval.report.tables.flag_sheet`)."""
    return report.flag_sheet(flags.flags)


def block_sheet(blocks: RenewalBlocks) -> pd.DataFrame:
    """连片改造区块: the blocks without geometry, Chinese headers (:func:`geo_eval.report.tables.block_sheet`)."""
    return report.block_sheet(blocks.blocks)


def workbook_sheets(
    ev: Evaluation,
    rows: pd.DataFrame | None = None,
    flags: FlagResult | None = None,
    blocks: RenewalBlocks | None = None,
) -> dict[str, pd.DataFrame]:
    """The sheets of a rankings workbook (all enterprises, or ``rows`` of one park)."""
    shared = _SharedSheets(ev, flags)
    return shared.sheets(rows, None if blocks is None else block_sheet(blocks))


class _SharedSheets:
    """What every park's workbook repeats, computed once: the 基准值 sheet, the flag sheet split by
    park, and the land allocation split by the park of its enterprise (``_restrict`` per park)."""

    def __init__(self, ev: Evaluation, flags: FlagResult | None) -> None:
        self.ev = ev
        self.benchmarks = report.benchmark_sheet(ev)
        self.flag_sheet = None if flags is None else flag_sheet(flags)
        self._flags_by_park: dict[object, pd.DataFrame] | None = None
        self._allocation_by_park: dict[object, pd.DataFrame] | None = None
        self._whole_by_park: dict[str, tuple[dict[object, pd.DataFrame], pd.DataFrame]] | None = None
        self._cuttable: bool | None = None

    def sheets(
        self, rows: pd.DataFrame | None, blocks_sheet: pd.DataFrame | None = None, *, whole_park: bool = False
    ) -> dict[str, pd.DataFrame]:
        """``workbook_sheets``; ``whole_park``: ``rows`` are all the enterprises of one park (its ranking
        sheets give the rank within the park too)."""
        ev = self.ev
        cut = self._cut_from_whole(rows) if rows is not None and whole_park else None
        if cut is None:
            sub = ev if rows is None else (self._park(rows) if whole_park else _restrict(ev, rows))
            sheets = report.group_sheets(sub, park_rank=whole_park)
            sheets["用地面积公示"] = report.land_disclosure(sub)
            sheets["园区汇总"] = report.park_summary(sub)
        else:
            land, summary = cut.pop("用地面积公示"), cut.pop("园区汇总")
            sheets = cut
            sheets["用地面积公示"] = report.sort_land_disclosure(land)
            sheets["园区汇总"] = summary
        sheets["基准值"] = self.benchmarks
        if self.flag_sheet is not None:
            fs = self.flag_sheet
            if rows is not None:
                fs = self._flags_of(set(rows["park"].dropna().unique()))
            sheets["疑似闲置／低效地块"] = fs
        if blocks_sheet is not None:
            sheets["连片改造区块"] = blocks_sheet
        return sheets

    def _cut_from_whole(self, rows: pd.DataFrame) -> dict[str, pd.DataFrame] | None:
        """The group sheets, 园区汇总 and the rows of 用地面积公示 (unsorted) of one whole park, cut by their
        园区 column from the whole run's, computed once for all parks: the rows and their order are those
        of the sheets of the park alone, which keep the run's order (the summary sorts by county and
        park; 用地面积公示 is sorted per park by the caller, cheaper than sorting the whole run's). None
        where that does not hold: ``rows`` of several parks, repeated USCCs, or a park named like the
        summary's label of enterprises without a park."""
        e = self.ev.enterprises
        parks = rows["park"].fillna(_NO_PARK).unique()
        if self._cuttable is None:
            self._cuttable = e.index.is_unique and not (e["park"] == _SUMMARY_NO_PARK).any()
        if len(parks) != 1 or not self._cuttable:
            return None
        if self._whole_by_park is None:
            whole = report.group_sheets(self.ev, park_rank=True)
            whole["用地面积公示"] = report.land_disclosure_rows(self.ev)
            whole["园区汇总"] = report.park_summary(self.ev)
            self._whole_by_park = {name: (_by_park(frame), frame.iloc[:0]) for name, frame in whole.items()}
        return {name: by.get(parks[0], empty) for name, (by, empty) in self._whole_by_park.items()}

    def _flags_of(self, parks: set[object]) -> pd.DataFrame:
        """``flag_sheet.loc[flag_sheet["园区"].isin(parks)]``, from the sheet grouped once."""
        fs = self.flag_sheet
        assert fs is not None
        column = header("park", "flags")
        if len(parks) != 1:
            return fs.loc[fs[column].isin(parks)]
        if self._flags_by_park is None:  # dict(iter(…)): a GroupBy has a .keys that dict() would call
            self._flags_by_park = dict(iter(fs.groupby(column, sort=False, dropna=True)))
        (park,) = parks
        return self._flags_by_park.get(park, fs.iloc[:0])

    def _park(self, rows: pd.DataFrame) -> Evaluation:
        """``_restrict(ev, rows)`` for all the enterprises of one park: the allocation rows of their
        USCCs are those whose enterprise is in that park, grouped once for all parks."""
        ev = self.ev
        e = ev.enterprises
        parks = rows["park"].fillna(_NO_PARK).unique()
        if len(parks) != 1 or not e.index.is_unique:
            return _restrict(ev, rows)
        if self._allocation_by_park is None:
            alloc = ev.allocation
            park_of = alloc["uscc"].map(e["park"].fillna(_NO_PARK))
            self._allocation_by_park = dict(iter(alloc.groupby(park_of, sort=False, dropna=True)))
        alloc = self._allocation_by_park.get(parks[0], ev.allocation.iloc[:0])
        return replace(ev, enterprises=rows, allocation=alloc)


_NO_PARK = "未注明园区"
_SUMMARY_NO_PARK = "（未注明园区）"
"""What :func:`geo_eval.report.tables.park_summary` calls the park of enterprises without one."""


def _by_park(frame: pd.DataFrame) -> dict[object, pd.DataFrame]:
    """A sheet's rows by the workbook of their park (its 园区 column), in order."""
    key = frame[header("park", "enterprises")].replace(_SUMMARY_NO_PARK, None).fillna(_NO_PARK)
    return dict(iter(frame.groupby(key, sort=False)))


def _restrict(ev: Evaluation, rows: pd.DataFrame) -> Evaluation:
    return replace(ev, enterprises=rows, allocation=ev.allocation.loc[ev.allocation["uscc"].isin(rows.index)])


def _notes(ev: Evaluation, *, park: bool = False) -> list[str]:
    s = ev.scheme
    unit = "县区" if s.ranking_unit == "county" else "园区"
    lines = [
        f"评价方案：{s.title}（{s.name}）",
        f"方案来源：{s.source}",
        f"评价年度：{ev.year}",
        f"排名范围：按{unit}、分组排名（“排名范围”列写明每个名次所在的{unit}、分组及其参评企业数）；分类：A 优先发展类、B 鼓励提升类、C 监管调控类、D 落后整治类、T 不适合评价",
    ]
    if park and s.ranking_unit == "county":
        lines.append(PARK_RANK_NOTE)
    lines += [
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
    inputs: Mapping[str, object] | None = None,
    extra_manifest: dict[str, object] | None = None,
    flags: FlagResult | None = None,
    blocks: RenewalBlocks | None = None,
    before_commit: Callable[[Path, dict[str, object]], None] | None = None,
    report: bool = True,
) -> dict[str, object]:
    """Write every output of ``ev`` into ``out_dir`` atomically; returns the manifest.

    ``report``: also the annual report ``report.html``, read back from the files written
    (:func:`geo_eval.io.report.write_report`).

    ``before_commit(tmp_dir, manifest)`` runs once every file is written into the temporary directory
    and before it replaces ``out_dir`` (the database publisher): if it raises, nothing is left behind.
    """
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
        policies = policy_frame(ev)
        if policies is not None:
            write_csv(policies, tmp / "policies.csv")
            timings["write_policies_csv"] = time.perf_counter() - t
        t = time.perf_counter()
        workbooks = write_workbooks(ev, tmp, flags, blocks, policies=policies)
        timings["write_workbooks"] = time.perf_counter() - t
        manifest: dict[str, object] = {
            "tool": "geo-eval",
            "version": __version__,
            "year": ev.year,
            "scheme": {
                "name": ev.scheme.name,
                "title": ev.scheme.title,
                "sha256": ev.scheme.digest,
                "rules": ev.scheme.model_dump(mode="json", exclude={"digest"}),  # as applied, for the report
                "ranking_unit": ev.scheme.ranking_unit,
            },
            "area_crs": ev.area_crs,
            "inputs": {k: _input_entry(p) for k, p in sorted((inputs or {}).items())},
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
        manifest["policies"] = {"enabled": False} if policies is None else policy_counts(policies, ev.scheme.policies)
        manifest.update(extra_manifest or {})
        _write_manifest(tmp, manifest)  # the report reads it
        if report:
            from geo_eval.io.report import write_report

            t = time.perf_counter()
            write_report(tmp)
            manifest["timings_s"]["write_report"] = round(time.perf_counter() - t, 3)  # type: ignore[index]
            _write_manifest(tmp, manifest)
        if before_commit is not None:
            before_commit(tmp, manifest)
    return manifest


def _write_manifest(tmp: Path, manifest: dict[str, object]) -> None:
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _input_entry(source: object) -> dict[str, str]:
    """Manifest entry of an input: a file's path and sha256, or a database source's label and digest."""
    if isinstance(source, Path):
        return {"path": str(source), "sha256": sha256_file(source)}
    return {"path": str(getattr(source, "label", source)), "sha256": str(getattr(source, "sha256", ""))}


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


def ranking_layout(title: str, scheme: str) -> Layout:
    """How a ranking workbook is shown and printed: number formats by header (:mod:`geo_eval.report.labels`),
    panes frozen at the name column, ``title`` and the scheme atop every printed page."""
    return Layout(
        title=title,
        subtitle=f"评价方案：{scheme}",
        number_formats=HEADER_FORMATS,
        frozen_through=report.FROZEN_THROUGH,
    )


PARK_RANK_NOTE = "园区内排名：本园区同一县区、同一分组参评企业中的名次（按县区排名先后，并列同名次）"
"""The 说明 line of a workbook whose ranking sheets give the rank within the park."""


def workbook_plan(
    ev: Evaluation,
    flags: FlagResult | None = None,
    blocks: RenewalBlocks | None = None,
    *,
    policies: pd.DataFrame | None = None,
) -> Iterator[PlannedWorkbook]:
    """The ranking workbooks of a run, one at a time: (file name under OUT_DIR, sheets, notes, layout).

    ``rankings.xlsx``, or for large runs one workbook per park under ``rankings/`` (whose ranking sheets
    give the rank within the park as well, when ranks are county-wide). ``policies``: the rows of
    ``policies.csv`` when already computed (:func:`policy_frame`).
    """
    scheme = f"{ev.scheme.title}（{ev.scheme.name}）"
    agency_sheets = _PolicySheets(ev, policies)
    if len(ev.enterprises) <= WORKBOOK_ROW_LIMIT:
        layout = ranking_layout(report.ranking_title(ev.year), scheme)
        sheets = agency_sheets.add(workbook_sheets(ev, None, flags, blocks))
        yield "rankings.xlsx", sheets, {"说明": _notes(ev)}, layout
        return
    e = ev.enterprises
    shared = _SharedSheets(ev, flags)
    notes = {"说明": _notes(ev, park=True)}
    for park, rows in e.groupby(e["park"].fillna(_NO_PARK), sort=True):
        layout = ranking_layout(report.ranking_title(ev.year, str(park)), scheme)
        sheets = agency_sheets.add(shared.sheets(rows, whole_park=True), park)
        yield f"rankings/{_safe(str(park))}.xlsx", sheets, notes, layout


class _PolicySheets:
    """The differentiated-policy sheets (one per agency) added after a workbook's other sheets: all the
    rows, or those of one park (grouped once)."""

    def __init__(self, ev: Evaluation, policies: pd.DataFrame | None) -> None:
        self.agencies = ev.scheme.agencies
        self.rows = policy_frame(ev) if policies is None and self.agencies else policies
        self._by_park: dict[object, pd.DataFrame] | None = None

    def add(self, sheets: dict[str, pd.DataFrame], park: object = None) -> dict[str, pd.DataFrame]:
        """``sheets`` with the agency sheets after them (of ``park``'s enterprises when given)."""
        if self.rows is None:
            return sheets
        rows = self.rows
        if park is not None:
            if self._by_park is None:
                self._by_park = dict(iter(rows.groupby(rows["park"].fillna(_NO_PARK), sort=False)))
            rows = self._by_park.get(park, rows.iloc[:0])
        return sheets | policy_sheets(rows, self.agencies)


def write_workbooks(
    ev: Evaluation,
    out_dir: Path,
    flags: FlagResult | None = None,
    blocks: RenewalBlocks | None = None,
    *,
    policies: pd.DataFrame | None = None,
) -> list[str]:
    """Write the workbooks of :func:`workbook_plan` into ``out_dir``; returns their names."""
    return write_planned(workbook_plan(ev, flags, blocks, policies=policies), out_dir)


def write_planned(plan: Iterable[PlannedWorkbook], out_dir: Path) -> list[str]:
    """Write planned workbooks into ``out_dir``, up to :data:`WORKBOOK_THREADS` at once (the writer
    releases the GIL while it lays out and compresses a workbook, so the next ones' sheets are built
    meanwhile); returns their names in plan order. The files do not depend on the thread count."""
    names: list[str] = []
    with ThreadPoolExecutor(max_workers=WORKBOOK_THREADS) as pool:
        pending: deque[Future[None]] = deque()
        for name, sheets, notes, layout in plan:
            path = out_dir / name
            path.parent.mkdir(exist_ok=True)
            pending.append(pool.submit(write_workbook, path, sheets, notes=notes, layout=layout))
            names.append(name)
            while len(pending) > WORKBOOK_THREADS:
                pending.popleft().result()
        while pending:
            pending.popleft().result()
    return names


def _safe(name: str) -> str:
    return "".join("_" if c in '<>:"/\\|?*' else c for c in name).strip() or "未注明园区"
