"""Reading a stored run back from PostGIS: what the service needs when a run's OUT_DIR is not at hand.

The frames have the columns (in order) and values of the run's files: ``enterprises.csv``, the manifest
and ``policies.csv`` come back byte for byte (``geo_eval.run_files``); the parcel, flag and block layers
come from the result tables' ``row_csv`` lines (geometry in EPSG:4326, transformed by PostGIS). Each table travels in
one ``COPY (SELECT …) TO STDOUT`` parsed by pyarrow, not row by row.
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
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from psycopg import sql

from geo_eval.db.errors import DatabaseError, first_line
from geo_eval.io.csvout import text_types

__all__ = ["StoredRun", "read_stored_run"]


@dataclass
class StoredRun:
    """A run's outputs as stored in the database."""

    manifest: dict[str, Any]
    enterprises_csv: bytes
    parcels: gpd.GeoDataFrame
    flags: pd.DataFrame
    blocks: gpd.GeoDataFrame | None
    policies_csv: bytes | None = None
    """``policies.csv`` byte for byte (None: the run wrote none)."""


def _copy_out(conn: Any, query: sql.Composable, params: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(query), params) as copy,
    ):
        for chunk in copy:
            buf.write(chunk)
    return buf.getvalue()


_ARROW = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "text": pa.large_string()}


def read_rows(lines: list[str] | pa.Array, layout: dict[str, list[str]]) -> pd.DataFrame:
    """The frame of ``row_csv`` lines (see :func:`geo_eval.db.publish.row_csv`): the columns in order, each
    of its kind, missing values missing and empty texts empty.

    >>> read_rows(['1.5,"x""y",true', ',"",false'], {"columns": ["a", "b", "c"], "kinds": ["float", "text", "bool"]})
         a    b      c
    0  1.5  x"y   True
    1  NaN       False
    """
    names, kinds = layout.get("columns", []), layout.get("kinds", [])
    texts = lines.cast(pa.large_string()) if isinstance(lines, pa.Array) else pa.array(list(lines), pa.large_string())
    if not names:
        return pd.DataFrame(index=range(len(texts)))
    if not len(texts):
        return pd.DataFrame({n: pd.Series(dtype=_dtype(k)) for n, k in zip(names, kinds, strict=True)})
    keys = [f"c{i}" for i in range(len(names))]  # positional names: headers may repeat or be anything
    t = pacsv.read_csv(
        pa.BufferReader(_lines_text(texts)),
        read_options=pacsv.ReadOptions(column_names=keys, block_size=1 << 26),
        convert_options=pacsv.ConvertOptions(
            column_types={k: _ARROW[kind] for k, kind in zip(keys, kinds, strict=True)},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["true"],
            false_values=["false"],
        ),
    )
    out = {}
    for key, name, kind in zip(keys, names, kinds, strict=True):
        col = t.column(key)
        if kind == "text":  # pandas' Arrow-backed strings, as a run read from its files has them
            out[name] = col.to_pandas(types_mapper=text_types)
        elif kind == "bool" and col.null_count:
            out[name] = pd.Series(pd.array(col.to_pylist(), dtype="boolean"))
        else:
            out[name] = pd.Series(col.to_numpy(zero_copy_only=False))
    return pd.DataFrame(out)


def _lines_text(lines: pa.Array) -> pa.Buffer:
    """The csv text of ``lines`` (each ending in a newline), made by Arrow: no Python string per line."""
    nl, empty = pa.scalar("\n", pa.large_string()), pa.scalar("", pa.large_string())
    ended = pc.binary_join_element_wise(pc.fill_null(lines, empty), nl, empty)
    _, offsets, data = ended.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[ended.offset : ended.offset + len(ended) + 1]
    return data.slice(int(off[0]), int(off[-1] - off[0]))


def _dtype(kind: str) -> str:
    return {"float": "float64", "int": "int64", "bool": "bool"}.get(kind, "object")


def _layer(
    conn: Any, table: str, run_id: str, layout: dict[str, list[str]], *, geometry: bool
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows of a result table as a frame (from ``row_csv``) and their 4326 geometries, in row order."""
    select = sql.SQL("SELECT row_csv{geom} FROM geo_eval.{table} WHERE run_id = %(run)s ORDER BY row_no").format(
        geom=sql.SQL(", encode(ST_AsBinary(ST_Transform(geom, 4326)), 'hex') AS g") if geometry else sql.SQL(""),
        table=sql.Identifier(table),
    )
    data = _copy_out(conn, select, {"run": run_id})
    types = {"row_csv": pa.large_string()} | ({"g": pa.large_string()} if geometry else {})
    t = pacsv.read_csv(
        io.BytesIO(data),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
        read_options=pacsv.ReadOptions(block_size=1 << 26),
    )
    del data
    frame = read_rows(t.column("row_csv").combine_chunks(), layout)
    geoms = None
    if geometry:
        hexes = t.column("g")
        geoms = np.empty(len(hexes), dtype=object)
        for start in range(0, len(hexes), WKB_ROWS):  # a slice of hex texts as Python strings at a time
            part = hexes.slice(start, WKB_ROWS).to_numpy(zero_copy_only=False)
            geoms[start : start + len(part)] = shapely.from_wkb(np.where(pd.isna(part), None, part))
    return frame, geoms


WKB_ROWS = 100_000
"""Geometries decoded from their hex WKB at a time (:func:`_layer`)."""


def enterprises_csv(conn: Any, run_id: str, layout: dict[str, Any]) -> bytes:
    """``enterprises.csv`` of a stored run, byte for byte: BOM, header and the stored lines."""
    data = _copy_out(
        conn,
        sql.SQL("SELECT row_csv FROM geo_eval.enterprise_results WHERE run_id = %(run)s ORDER BY row_no"),
        {"run": run_id},
    )
    t = pacsv.read_csv(
        io.BytesIO(data),
        convert_options=pacsv.ConvertOptions(column_types={"row_csv": pa.large_string()}, strings_can_be_null=False),
        read_options=pacsv.ReadOptions(block_size=1 << 26),
    )
    lines = t.column("row_csv").to_pylist()
    body = "".join(line + "\n" for line in lines)
    return b"\xef\xbb\xbf" + (str(layout.get("header", "")) + body).encode("utf-8")


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
    columns: dict[str, dict[str, list[str]]] = row[1] or {}
    files = {
        name: bytes(content)
        for name, content in conn.execute(
            "SELECT name, content FROM geo_eval.run_files WHERE run_id = %s", (run_id,)
        ).fetchall()
    }
    if "manifest.json" not in files or "enterprises" not in columns:
        raise DatabaseError(f"数据库中评价批次 {run_id} 的结果不完整（缺少 manifest.json 或企业结果），请重新评价")
    attrs, geoms = _layer(conn, "parcel_results", run_id, columns.get("parcels", {}), geometry=True)
    parcels = gpd.GeoDataFrame(attrs, geometry=geoms, crs="EPSG:4326")
    flags, _ = _layer(conn, "flags", run_id, columns.get("flags", {}), geometry=False)
    blocks = None
    if "blocks" in columns:
        battrs, bgeoms = _layer(conn, "renewal_blocks", run_id, columns["blocks"], geometry=True)
        blocks = gpd.GeoDataFrame(battrs, geometry=bgeoms, crs="EPSG:4326")
    return StoredRun(
        manifest=json.loads(files["manifest.json"].decode("utf-8")),
        enterprises_csv=enterprises_csv(conn, run_id, columns["enterprises"]),
        parcels=parcels,
        flags=flags,
        blocks=blocks,
        policies_csv=files.get("policies.csv"),
    )
