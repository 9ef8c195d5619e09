"""Publishing an evaluation run into PostGIS (``geo-eval evaluate … --db URL``).

One transaction holds everything: the run record (registered as the latest run, with an audit entry),
the enterprise results, the parcel results with their geometry (in the run's Gauss-Krüger plane, and
GCJ-02-shifted for 高德 basemaps), the flags, the renewal blocks and the output files (``enterprises.csv``,
``exceptions.csv``, ``benchmarks.csv``, ``flags.csv``, ``manifest.json``). The rows go in with ``COPY …
FROM STDIN (FORMAT csv)``, the csv made by pyarrow in slices of :data:`COPY_ROWS` rows, never row by
row in Python. Publishing the same run again (same run id: same inputs, scheme and version) replaces
its results and keeps its reviews. If anything fails the transaction rolls back and, because the
publisher runs before OUT_DIR is swapped into place, no output directory is left either.

Every table keeps a few typed columns for SQL users (``uscc``, ``grade``, ``tax_per_mu`` …) and the
whole row as ``attributes`` (jsonb; numbers to 10 decimal places). ``runs.columns`` keeps each
table's column order, which jsonb does not.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql
from psycopg.types.json import Jsonb

from geo_eval.db.store import PostgresStore, register_run
from geo_eval.evaluate import Evaluation
from geo_eval.flags import FlagResult
from geo_eval.gcj02 import shift_to_gcj02
from geo_eval.io.writers import enterprise_frame, parcel_layer_columns
from geo_eval.renewal import RenewalBlocks
from geo_eval.storage.base import RunRecord
from geo_eval.storage.common import now
from geo_eval.storage.runs import counts_of, run_id_of

log = logging.getLogger(__name__)

COPY_ROWS = 50_000
"""Rows per csv slice sent to COPY."""
RUN_FILES = ("enterprises.csv", "exceptions.csv", "benchmarks.csv", "flags.csv", "manifest.json")
"""Output files kept in ``geo_eval.run_files`` (the service reads ``enterprises.csv`` from there)."""
RESULT_TABLES = ("enterprise_results", "parcel_results", "flags", "renewal_blocks", "run_files")

Cursor = Any  # psycopg.Cursor[DictRow]


def run_record(manifest: dict[str, Any], out_dir: Path) -> RunRecord:
    """The registry record of a run from its manifest (``out_dir``: where its files will be)."""
    scheme = manifest.get("scheme") or {}
    return RunRecord(
        run_id=run_id_of(manifest),
        year=int(manifest["year"]),
        scheme=str(scheme.get("name", "")),
        scheme_title=str(scheme.get("title", "")),
        out_dir=str(Path(out_dir).resolve()),
        counts=counts_of(manifest),
    )


def srid_of(crs: str) -> int:
    """The EPSG code of a CRS string (the run's measuring plane, e.g. ``EPSG:4528``)."""
    from pyproj import CRS

    code = CRS.from_user_input(crs).to_epsg()
    if code is None:
        raise ValueError(f"坐标系 {crs} 没有 EPSG 代码，无法写入 PostGIS")
    return int(code)


def publish_run(
    store: PostgresStore,
    ev: Evaluation,
    *,
    manifest: dict[str, Any],
    files_dir: Path,
    out_dir: Path,
    flags: FlagResult | None = None,
    blocks: RenewalBlocks | None = None,
    actor: str = "cli",
) -> tuple[RunRecord, dict[str, float]]:
    """Store a run and its results in one transaction; returns the stored record and timings (s).

    ``files_dir`` holds the written output files (the temporary directory of
    :func:`geo_eval.io.writers.write_outputs`), ``out_dir`` is where they will be.
    """
    timings: dict[str, float] = {}
    record = run_record(manifest, out_dir)
    srid = srid_of(ev.area_crs)
    stored_at = now()
    with store.transaction() as cur:
        t = time.perf_counter()
        rec = register_run(cur, record, actor=actor)
        for table in RESULT_TABLES:
            cur.execute(
                sql.SQL("DELETE FROM geo_eval.{} WHERE run_id = %s").format(sql.Identifier(table)), (rec.run_id,)
            )
        timings["db_register"] = time.perf_counter() - t
        columns: dict[str, list[str]] = {}
        t = time.perf_counter()
        columns["enterprises"] = _copy_enterprises(cur, rec.run_id, ev)
        timings["db_enterprises"] = time.perf_counter() - t
        t = time.perf_counter()
        columns["parcels"] = _copy_parcels(cur, rec.run_id, ev, srid, flags, blocks)
        timings["db_parcels"] = time.perf_counter() - t
        t = time.perf_counter()
        if flags is not None:
            columns["flags"] = _copy_flags(cur, rec.run_id, flags)
        if blocks is not None:
            columns["blocks"] = _copy_blocks(cur, rec.run_id, blocks, srid)
        _copy_files(cur, rec.run_id, files_dir)
        timings["db_flags_blocks_files"] = time.perf_counter() - t
        cur.execute(
            "UPDATE geo_eval.runs SET stored_at = %s, srid = %s, manifest = %s, columns = %s WHERE run_id = %s",
            (stored_at, srid, Jsonb(manifest), Jsonb(columns), rec.run_id),
        )
    log.info("run %s published to %s", rec.run_id, store.database)
    return replace(rec, stored_at=stored_at, srid=srid), timings


# --- COPY -------------------------------------------------------------------------------------------


def _copy(cur: Cursor, table: str, columns: dict[str, pa.Array | pa.ChunkedArray]) -> int:
    """``COPY geo_eval.<table> (columns) FROM STDIN`` from Arrow columns of equal length; returns rows."""
    t = pa.table(columns)
    stmt = sql.SQL("COPY geo_eval.{} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with cur.copy(stmt) as copy:
        for start in range(0, t.num_rows, COPY_ROWS):
            buf = io.BytesIO()
            pacsv.write_csv(t.slice(start, COPY_ROWS), buf, options)
            copy.write(buf.getbuffer())
    return int(t.num_rows)


def _arrow(values: pd.Series | pd.Index | np.ndarray, kind: str = "text") -> pa.Array:
    """A column for :func:`_copy`: missing values (NaN, None, NA) as null."""
    if isinstance(values, (pd.Series, pd.Index)):
        arr = values.array if isinstance(values.dtype, pd.api.extensions.ExtensionDtype) else values.to_numpy()
    else:
        arr = values
    out = pa.array(arr, from_pandas=True)
    if kind == "text" and not (pa.types.is_string(out.type) or pa.types.is_large_string(out.type)):
        out = out.cast(pa.large_string()) if not pa.types.is_null(out.type) else pa.nulls(len(out), pa.large_string())
    elif kind == "float":
        out = out.cast(pa.float64()) if not pa.types.is_null(out.type) else pa.nulls(len(out), pa.float64())
    elif kind == "int":
        out = out.cast(pa.int64()) if not pa.types.is_null(out.type) else pa.nulls(len(out), pa.int64())
    return out


def _json_rows(frame: pd.DataFrame) -> pa.Array:
    """Each row of ``frame`` as one JSON object (missing as null, dates as ``YYYY-MM-DD``), for ``attributes``."""
    if frame.empty:
        return pa.array([], type=pa.large_string())
    dates = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c].dtype)]
    if dates:  # as parcels.gpkg writes them: the day as text
        frame = frame.assign(**{str(c): frame[c].dt.strftime("%Y-%m-%d") for c in dates})
    text = frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=10, date_format="iso")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return pa.array(lines, type=pa.large_string())


def _ewkb(geoms: np.ndarray, srid: int) -> pa.Array:
    """Hex EWKB with the SRID (what PostGIS reads from text), null for a missing geometry."""
    values = shapely.to_wkb(shapely.set_srid(geoms, srid), hex=True, include_srid=True)
    return pa.array(values, type=pa.large_string(), from_pandas=True)


def _copy_enterprises(cur: Cursor, run_id: str, ev: Evaluation) -> list[str]:
    e = enterprise_frame(ev)
    n = len(e)
    _copy(
        cur,
        "enterprise_results",
        {
            "run_id": pa.array([run_id] * n, type=pa.large_string()),
            "row_no": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "uscc": _arrow(e["uscc"]),
            "name": _arrow(e["name"]),
            "county": _arrow(e["county"]),
            "park": _arrow(e["park"]),
            "group_key": _arrow(e["group"]),
            "land_mu": _arrow(e["land_mu"], "float"),
            "score": _arrow(e["score"], "float"),
            "grade": _arrow(e["grade"]),
            "rank": _arrow(pd.to_numeric(e["rank"], errors="coerce"), "int"),
            "attributes": _json_rows(e),
        },
    )
    return [str(c) for c in e.columns]


def _parcel_popups(ev: Evaluation, attrs: pd.DataFrame) -> dict[str, np.ndarray]:
    """The popup texts the map tiles carry that do not depend on reviews (holder, users, main user)."""
    from geo_eval.maps import parcel_attributes

    pop = parcel_attributes(attrs, enterprises=ev.enterprises.reset_index())
    ids = attrs["parcel_id"].to_numpy(dtype=object)
    pop = pop.reindex(ids)
    return {c: pop[c].to_numpy(dtype=object) for c in ("holder", "users", "main_name")}


def _slices(n: int) -> Iterator[slice]:
    for start in range(0, n, COPY_ROWS * 4):
        yield slice(start, min(n, start + COPY_ROWS * 4))


def _copy_parcels(
    cur: Cursor,
    run_id: str,
    ev: Evaluation,
    srid: int,
    flags: FlagResult | None,
    blocks: RenewalBlocks | None,
) -> list[str]:
    cols = parcel_layer_columns(ev, flags, blocks)
    attrs = pd.DataFrame({c: s.to_numpy() for c, s in cols.items()})
    if "parcel_id" not in attrs:
        attrs = attrs.rename(columns={next(iter(cols)): "parcel_id"})
    plane = ev.plane if ev.plane is not None else ev.parcels.geometry.to_crs(ev.area_crs)
    plane_geoms = np.asarray(plane.array, dtype=object)
    display = ev.parcels.geometry
    epsg = display.crs.to_epsg() if display.crs is not None else None
    if epsg == 4490:
        display = display.set_crs(4326, allow_override=True)
    elif epsg != 4326:
        display = display.to_crs(4326)
    gcj = np.asarray(shift_to_gcj02(display).array, dtype=object)
    popups = _parcel_popups(ev, attrs)
    for part in _slices(len(attrs)):
        a = attrs.iloc[part]
        n = len(a)

        def col(name: str, kind: str = "text", a: pd.DataFrame = a) -> pa.Array:
            if name in a:
                return _arrow(a[name], kind)
            return pa.nulls(len(a), pa.large_string() if kind == "text" else pa.float64())

        _copy(
            cur,
            "parcel_results",
            {
                "run_id": pa.array([run_id] * n, type=pa.large_string()),
                "row_no": pa.array(np.arange(part.start + 1, part.start + n + 1, dtype=np.int64)),
                "parcel_id": col("parcel_id"),
                "county": col("county"),
                "park": col("park"),
                "holder_uscc": col("holder_uscc"),
                "main_user": col("main_user"),
                "main_user_name": col("main_user_name"),
                "grade": col("grade"),
                "tax_per_mu": col("tax_per_mu", "float"),
                "area_m2": col("area_m2", "float"),
                "area_mu": col("area_mu", "float"),
                "block_id": col("block_id"),
                "holder": _arrow(popups["holder"][part]),
                "users": _arrow(popups["users"][part]),
                "main_name": _arrow(popups["main_name"][part]),
                "attributes": _json_rows(a),
                "geom": _ewkb(plane_geoms[part], srid),
                "geom_gcj02": _ewkb(gcj[part], 4326),
            },
        )
    return [str(c) for c in attrs.columns]


def _copy_flags(cur: Cursor, run_id: str, flags: FlagResult) -> list[str]:
    f = flags.flags
    n = len(f)
    label = f["flag_label"].astype(object).where(f["flag_label"].notna(), "").astype(str)
    reason = f["reason"].astype(object).where(f["reason"].notna(), "").astype(str)
    popup = np.where(reason != "", label + "：" + reason, label)
    _copy(
        cur,
        "flags",
        {
            "run_id": pa.array([run_id] * n, type=pa.large_string()),
            "flag_id": _arrow(f["flag_id"]),
            "parcel_id": _arrow(f["parcel_id"]),
            "county": _arrow(f["county"]),
            "park": _arrow(f["park"]),
            "flag": _arrow(f["flag"]),
            "rule_id": _arrow(f["rule_id"]),
            "severity": _arrow(f["severity"]),
            "row_no": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "popup": pa.array(popup.astype(object), type=pa.large_string()),
            "attributes": _json_rows(f.reset_index(drop=True)),
        },
    )
    return [str(c) for c in f.columns]


def _copy_blocks(cur: Cursor, run_id: str, blocks: RenewalBlocks, srid: int) -> list[str]:
    b = blocks.blocks.reset_index(drop=True)
    attrs = pd.DataFrame(b.drop(columns=b.geometry.name))
    n = len(b)
    _copy(
        cur,
        "renewal_blocks",
        {
            "run_id": pa.array([run_id] * n, type=pa.large_string()),
            "block_id": _arrow(attrs["block_id"]),
            "row_no": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "attributes": _json_rows(attrs),
            "geom": _ewkb(np.asarray(b.geometry.array, dtype=object), srid),
        },
    )
    return [str(c) for c in attrs.columns]


def _copy_files(cur: Cursor, run_id: str, files_dir: Path) -> None:
    for name in RUN_FILES:
        path = Path(files_dir) / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        cur.execute(
            "INSERT INTO geo_eval.run_files (run_id, name, content, sha256) VALUES (%s, %s, %s, %s)",
            (run_id, name, data, hashlib.sha256(data).hexdigest()),
        )


def read_run_file(cur: Cursor, run_id: str, name: str) -> bytes | None:
    """An output file of a stored run (None if it was not stored)."""
    row = cur.execute(
        "SELECT content FROM geo_eval.run_files WHERE run_id = %s AND name = %s", (run_id, name)
    ).fetchone()
    if row is None:
        return None
    content = row["content"] if isinstance(row, dict) else row[0]
    return bytes(content)
