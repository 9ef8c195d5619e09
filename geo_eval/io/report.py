"""The annual report at the edge: one run read back from its OUT_DIR (:func:`read_run`) and the report
written as one HTML file (:func:`write_report`).

Reads ``manifest.json``, ``enterprises.csv``, ``exceptions.csv``, ``benchmarks.csv`` and, when the run has
them, ``flags.csv`` and the attributes of ``renewal_blocks.gpkg``; last year's ``enterprises.csv`` when the
run was evaluated with ``--previous`` (the manifest names it) or one is given; and, for the maps of class
change, the parcels of the parks mapped (``parcels.gpkg``, read with a filter on the park). Only the
columns the report uses are read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyogrio

from geo_eval.errors import GeoEvalError, InputFileError
from geo_eval.io import csvout
from geo_eval.rating.scheme import Scheme, load_scheme, preset_names
from geo_eval.report.annual import RunTables, map_parks, restrict
from geo_eval.report.html import render
from geo_eval.report.timefmt import beijing_now

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
TEXT_COLUMNS = (
    "uscc",
    "name",
    "county",
    "park",
    "group",
    "group_label",
    "industry_code",
    "above_scale",
    "grade",
    "grade_label",
    "veto",
    "exempt_reason",
    "prev_grade",
    "grade_change",
    "production_start",
    "corrected_fields",
)
FLAG_COLUMNS = ("flag_id", "parcel_id", "flag", "flag_label", "rule_id", "severity", "county", "park", "area_mu")
PROBLEM_COLUMNS = ("file", "problem", "severity", "code", "key")
BENCHMARK_TEXT = ("unit", "group", "indicator", "method", "basis")


class ReportError(GeoEvalError, ValueError):
    """An OUT_DIR that cannot be reported on (no run there, an unknown park)."""


def read_csv(source: Path | bytes, *, text: Sequence[str] = (), usecols: Sequence[str] | None = None) -> pd.DataFrame:
    """One of geo-eval's csv files (a path, or its bytes), read by pyarrow: ``text`` columns (all of
    ``usecols`` when given) as Arrow-backed strings (missing: NaN, formula guard removed), the others as numbers;
    ``usecols``: only these columns (one missing from the file comes back empty)."""
    strings = set(text) | set(usecols or ())
    try:
        handle = pa.py_buffer(source) if isinstance(source, bytes) else str(source)
        table = pacsv.read_csv(
            handle,
            convert_options=pacsv.ConvertOptions(
                include_columns=list(usecols) if usecols is not None else None,
                include_missing_columns=usecols is not None,
                column_types={c: pa.string() for c in strings},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except (OSError, pa.ArrowInvalid) as exc:
        where = source if isinstance(source, Path) else "csv"
        raise InputFileError(f"无法读取 {where}：{exc}") from exc
    for c in strings & set(table.column_names):
        i = table.column_names.index(c)
        table = table.set_column(i, c, csvout.unguard_arrow(table.column(i)))
    # texts stay Arrow-backed, as the service's copy of a run holds them (600k enterprises' were 0.9 GB as objects)
    return table.to_pandas(types_mapper=csvout.text_types)


def read_manifest(out_dir: Path) -> dict[str, Any]:
    path = Path(out_dir) / "manifest.json"
    if not path.is_file():
        raise ReportError(f"{out_dir} 不是 geo-eval 的输出目录（没有 manifest.json）；请先运行 geo-eval evaluate")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"无法读取 {path}：{exc}") from exc
    if not isinstance(data, dict):
        raise ReportError(f"{path} 不是 geo-eval 的 manifest")
    return data


def read_enterprises(path: Path) -> pd.DataFrame:
    """``enterprises.csv`` with its texts as text and its figures as numbers."""
    return read_csv(path, text=TEXT_COLUMNS)


def scheme_of(manifest: dict[str, Any]) -> Scheme | None:
    """The scheme as applied: the rules the manifest records, else the preset of the same name and digest."""
    entry = manifest.get("scheme") or {}
    if not isinstance(entry, dict):
        return None
    rules, digest = entry.get("rules"), str(entry.get("sha256", ""))
    if isinstance(rules, dict):
        try:
            return Scheme.model_validate({**rules, "digest": digest})
        except ValueError:
            log.warning("the scheme rules recorded in the manifest do not validate")
    name = str(entry.get("name", ""))
    if name in preset_names():
        preset = load_scheme(name)
        return preset if preset.digest == digest else None
    return None


def previous_path(manifest: dict[str, Any], out_dir: Path, previous_dir: Path | None) -> tuple[Path | None, str]:
    """Last year's ``enterprises.csv``: given, or as the manifest names it (as written, or beside OUT_DIR);
    with a note when the manifest names one that is not there."""
    if previous_dir is not None:
        return Path(previous_dir) / "enterprises.csv", ""
    entry = (manifest.get("inputs") or {}).get("previous")
    if not isinstance(entry, dict) or not entry.get("path"):
        return None, ""
    named = Path(str(entry["path"]))
    for candidate in (named, Path(out_dir).parent / named.parent.name / named.name):
        if candidate.is_file():
            return candidate, ""
    return (
        None,
        f"本批次评价时使用的上年结果 {named} 已不在原处，无法列出年度变化；可用 --previous 指定上年的输出目录。",
    )


def read_run(
    out_dir: Path, *, previous_dir: Path | None = None, parks: Sequence[str] = (), maps: bool = True
) -> RunTables:
    """One run from its OUT_DIR, restricted to ``parks`` when given (:func:`geo_eval.report.annual.restrict`)."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    e = read_enterprises(out / "enterprises.csv")
    _check_parks(e, parks)
    prev_path, note = previous_path(manifest, out, previous_dir)
    prev = read_enterprises(prev_path) if prev_path is not None else None
    flags = read_csv(out / "flags.csv", usecols=FLAG_COLUMNS) if (out / "flags.csv").is_file() else None
    if flags is not None:
        flags["area_mu"] = pd.to_numeric(flags["area_mu"], errors="coerce")
    run = RunTables(
        manifest=manifest,
        enterprises=e,
        problems=read_csv(out / "exceptions.csv", usecols=PROBLEM_COLUMNS),
        benchmarks=read_csv(out / "benchmarks.csv", text=BENCHMARK_TEXT),
        flags=flags,
        blocks=_blocks(out / "renewal_blocks.gpkg"),
        previous=prev,
        previous_note=note,
        scheme=scheme_of(manifest),
    )
    if maps and prev is not None:
        chosen = list(parks) or map_parks(e, prev)
        run = dataclasses.replace(run, parcels=read_parcels(out / "parcels.gpkg", chosen))
    return restrict(run, parks)


def _check_parks(e: pd.DataFrame, parks: Sequence[str]) -> None:
    known = set(e["park"].dropna())
    unknown = [p for p in parks if p not in known]
    if unknown:
        listed = "、".join(sorted(known)[:20])
        raise ReportError(f"本批次没有园区 {'、'.join(unknown)}；可用的园区：{listed}")


def _blocks(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    frame = pyogrio.read_dataframe(path, read_geometry=False)
    return pd.DataFrame(frame)


def read_parcels(path: Path, parks: Sequence[str]) -> Any:
    """The parcels of ``parks`` (``parcel_id``, ``park``, ``main_user`` and geometry) from ``parcels.gpkg``."""
    if not parks or not path.is_file():
        return None
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in parks)
    return pyogrio.read_dataframe(
        path, layer="parcels", columns=["parcel_id", "park", "main_user"], where=f"park IN ({quoted})"
    )


def report_name(parks: Sequence[str]) -> str:
    """``report.html``, or ``report-园区.html`` for a report of some parks."""
    if not parks:
        return REPORT_FILE
    safe = "".join("_" if c in '<>:"/\\|?*' else c for c in "、".join(parks))
    return f"report-{safe}.html"


def write_report(
    out_dir: Path,
    *,
    out: Path | None = None,
    previous_dir: Path | None = None,
    parks: Sequence[str] = (),
    generated_at: str | None = None,
) -> Path:
    """Write the annual report of the run in ``out_dir`` (default ``out_dir/report.html``); returns its path."""
    t0 = time.perf_counter()
    run = read_run(out_dir, previous_dir=previous_dir, parks=parks)
    t1 = time.perf_counter()
    text = render(run, generated_at=generated_at or beijing_now())
    target = Path(out) if out is not None else Path(out_dir) / report_name(parks)
    target.write_text(text, encoding="utf-8")
    log.info("report %s: read %.2f s, rendered %.2f s", target, t1 - t0, time.perf_counter() - t1)
    return target
