"""The annual report of a registered run, made by the service from the run it holds in memory.

:func:`report_tables` builds the report's :class:`~geo_eval.report.annual.RunTables` from a
:class:`~api.rundata.RunData` (files or PostGIS alike): its enterprises, flags, blocks, manifest and
parcels are already loaded; ``exceptions.csv`` and ``benchmarks.csv`` are read from the run's OUT_DIR, or
from the database for a run stored there; last year is the run registered for the year before (when the
run was evaluated with ``--previous``); the review states come from the store.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from api.rundata import RunCache, RunData
from geo_eval.io.report import BENCHMARK_TEXT, FLAG_COLUMNS, PROBLEM_COLUMNS, read_csv, scheme_of
from geo_eval.report.annual import RunTables, map_parks, restrict
from geo_eval.storage import NotFoundError, RunFilesError, Store

MAP_COLUMNS = ["parcel_id", "park", "main_user"]


def run_file(data: RunData, store: Store, name: str) -> Path | bytes:
    """An output file of the run: its path in OUT_DIR, or its bytes stored in PostGIS."""
    if data.source == "postgis":
        from geo_eval.db.publish import read_run_file

        with store.connection() as conn:  # type: ignore[attr-defined]
            content = read_run_file(conn, data.run_id, name)
        if content is None:
            raise RunFilesError(f"数据库中评价批次 {data.run_id} 没有 {name}，请重新评价（--db）")
        return content
    return Path(data.record.out_dir) / name


def names_previous(manifest: dict[str, Any]) -> bool:
    """Whether the run was evaluated with ``--previous``."""
    entry = (manifest.get("inputs") or {}).get("previous")
    return bool(manifest.get("previous")) or (isinstance(entry, dict) and bool(entry.get("path")))


def previous_enterprises(data: RunData, store: Store, cache: RunCache) -> tuple[pd.DataFrame | None, str]:
    """Last year's enterprises: those of the run registered for the year before, if this run used one."""
    if not names_previous(data.manifest):
        return None, ""
    year = data.record.year - 1
    try:
        return cache.get(store.latest_run(year)).enterprises, ""
    except (NotFoundError, RunFilesError):
        return None, f"本批次评价时使用了上年结果，但服务中没有可用的 {year} 年度评价批次，无法列出年度变化。"


def report_tables(data: RunData, store: Store, cache: RunCache, parks: tuple[str, ...]) -> RunTables:
    """The report's tables of ``data``, restricted to ``parks`` (empty: the whole run)."""
    flags_on = bool((data.manifest.get("flags") or {}).get("enabled"))
    flags = data.flags[list(FLAG_COLUMNS)].reset_index(drop=True) if flags_on else None
    blocks = None if data.blocks is None else pd.DataFrame(data.blocks.drop(columns=data.blocks.geometry.name))
    previous, note = previous_enterprises(data, store, cache)
    reviews = {fid: r.status for fid, r in store.reviews(data.run_id).items()} if flags_on else None
    run = RunTables(
        manifest=data.manifest,
        enterprises=data.enterprises,
        problems=read_csv(run_file(data, store, "exceptions.csv"), usecols=PROBLEM_COLUMNS),
        benchmarks=read_csv(run_file(data, store, "benchmarks.csv"), text=BENCHMARK_TEXT),
        flags=flags,
        blocks=blocks,
        previous=previous,
        previous_note=note,
        scheme=scheme_of(data.manifest),
        reviews=reviews,
    )
    if previous is not None:
        mapped = list(parks) or map_parks(data.enterprises, previous)
        p = data.parcel_frame(data.parcel_rows(frozenset(mapped)))
        p = p[[*MAP_COLUMNS, p.geometry.name]]
        if data.manifest.get("area_crs") and len(p):  # drawn in metres, as geo-eval report draws OUT_DIR's
            p = p.to_crs(str(data.manifest["area_crs"]))
        run = dataclasses.replace(run, parcels=p)
    return restrict(run, parks)
