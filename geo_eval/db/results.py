"""Reading a stored run back from PostGIS: what the service needs when a run's OUT_DIR is not at hand.

The frames have the columns (in order) and values of the run's files: ``enterprises.csv`` and the
manifest come back byte for byte (``geo_eval.run_files``); the parcel, flag and block layers come from
the result tables' ``attributes`` (geometry in EPSG:4326, transformed by PostGIS). Each table travels in
one ``COPY (SELECT …) TO STDOUT`` parsed by pyarrow and pandas' JSON reader, not row by row.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql

from geo_eval.db.errors import DatabaseError, first_line

__all__ = ["StoredRun", "read_stored_run"]


@dataclass
class StoredRun:
    """A run's outputs as stored in the database."""

    manifest: dict[str, Any]
    enterprises_csv: bytes
    parcels: gpd.GeoDataFrame
    flags: pd.DataFrame
    blocks: gpd.GeoDataFrame | None


def _copy_out(conn: Any, query: sql.Composable, params: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(query), params) as copy,
    ):
        for chunk in copy:
            buf.write(chunk)
    return buf.getvalue()


def _layer(
    conn: Any, table: str, run_id: str, columns: list[str], *, geometry: bool, order: str
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows of a result table as a frame (``columns`` order) and their 4326 geometries."""
    select = sql.SQL(
        "SELECT attributes::text AS a{geom} FROM geo_eval.{table} WHERE run_id = %(run)s ORDER BY {order}"
    ).format(
        geom=sql.SQL(", encode(ST_AsBinary(ST_Transform(geom, 4326)), 'hex') AS g") if geometry else sql.SQL(""),
        table=sql.Identifier(table),
        order=sql.Identifier(order),
    )
    data = _copy_out(conn, select, {"run": run_id})
    types = {"a": pa.large_string()} | ({"g": pa.large_string()} if geometry else {})
    t = pacsv.read_csv(
        io.BytesIO(data),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        read_options=pacsv.ReadOptions(block_size=1 << 26),
    )
    texts = t.column("a").to_pylist()
    if texts:
        frame = pd.read_json(io.StringIO("\n".join(texts)), lines=True, dtype=False, precise_float=True)
    else:
        frame = pd.DataFrame()
    for c in columns:
        if c not in frame.columns:
            frame[c] = pd.Series([None] * len(frame), dtype=object)
    frame = frame[columns]
    geoms = None
    if geometry:
        hexes = t.column("g").to_numpy(zero_copy_only=False)
        geoms = shapely.from_wkb(np.where(pd.isna(hexes), None, hexes))
    return frame, geoms


def read_stored_run(conn: Any, run_id: str) -> StoredRun:
    """Everything :func:`geo_eval.db.publish.publish_run` stored for ``run_id``."""
    try:
        return _read(conn, run_id)
    except psycopg.Error as exc:
        raise DatabaseError(f"从数据库读取评价批次 {run_id} 失败：{first_line(exc)}") from exc


def _read(conn: Any, run_id: str) -> StoredRun:
    row = conn.execute("SELECT stored_at, columns FROM geo_eval.runs WHERE run_id = %s", (run_id,)).fetchone()
    if row is None or not row[0]:
        raise DatabaseError(f"评价批次 {run_id} 的结果没有存入数据库（请用 geo-eval evaluate … --db 重新评价）")
    columns: dict[str, list[str]] = row[1] or {}
    files = {
        name: bytes(content)
        for name, content in conn.execute(
            "SELECT name, content FROM geo_eval.run_files WHERE run_id = %s", (run_id,)
        ).fetchall()
    }
    if "enterprises.csv" not in files or "manifest.json" not in files:
        raise DatabaseError(f"数据库中评价批次 {run_id} 的输出文件不完整（缺少 enterprises.csv 或 manifest.json）")
    attrs, geoms = _layer(conn, "parcel_results", run_id, columns.get("parcels", []), geometry=True, order="row_no")
    parcels = gpd.GeoDataFrame(attrs, geometry=geoms, crs="EPSG:4326")
    flags, _ = _layer(conn, "flags", run_id, columns.get("flags", []), geometry=False, order="row_no")
    blocks = None
    if "blocks" in columns:
        battrs, bgeoms = _layer(conn, "renewal_blocks", run_id, columns["blocks"], geometry=True, order="row_no")
        blocks = gpd.GeoDataFrame(battrs, geometry=bgeoms, crs="EPSG:4326")
    return StoredRun(
        manifest=json.loads(files["manifest.json"].decode("utf-8")),
        enterprises_csv=files["enterprises.csv"],
        parcels=parcels,
        flags=flags,
        blocks=blocks,
    )
