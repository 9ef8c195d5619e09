"""Cadastral parcels in PostGIS: read a bureau's table or query as a parcel layer, or import a file into one.

:func:`read_parcel_table` is the PostGIS counterpart of :func:`geo_eval.io.vector.read_parcel_layer`:
the same :class:`~geo_eval.inputs.table.Table` (headers matched to the data contract, Chinese or English) and
geometry series come back, so the same validation follows. The rows travel in one ``COPY (SELECT …)
TO STDOUT (FORMAT csv)`` (geometry as hex WKB) and are parsed by pyarrow, not fetched row by row.
``source_row`` is the row's position in the query's order: a table is read in its physical order
(``ctid``), a query in the order it gives (add ``ORDER BY`` for stable row numbers).

:func:`import_parcels` loads a parcel file (GeoPackage, GeoJSON, Shapefile) into a new table with a GIST
index, through ``COPY … FROM STDIN`` (``geo-eval db import-parcels``).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyogrio
import shapely
from psycopg import sql

from geo_eval.db.connection import connect, redact_url
from geo_eval.db.errors import DatabaseError, first_line
from geo_eval.errors import DatasetError, InputFileError
from geo_eval.inputs.table import Table
from geo_eval.io.vector import parcel_table

__all__ = ["ParcelQuery", "import_parcels", "read_parcel_table"]

_WKB = "__geo_eval_wkb"

# PostgreSQL type → pyarrow type for the csv columns (anything else is read as text).
_ARROW_TYPES: dict[str, pa.DataType] = {
    "int2": pa.int64(),
    "int4": pa.int64(),
    "int8": pa.int64(),
    "float4": pa.float64(),
    "float8": pa.float64(),
    "numeric": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


@dataclass(frozen=True)
class ParcelQuery:
    """Where the parcels are: a table (``schema.table`` or ``table``) or an SQL query, and its label."""

    url: str
    table: str | None = None
    query: str | None = None
    geometry: str | None = None
    """The geometry column (when the source has several)."""

    @property
    def label(self) -> str:
        """How problems and the manifest name the source: ``postgresql://…/库 表 schema.table`` or ``… 查询``."""
        where = f"表 {self.table}" if self.table else "SQL 查询"
        return f"{redact_url(self.url)} {where}"

    def source(self) -> sql.Composable:
        if self.table:
            parts = [p.strip().strip('"') for p in self.table.split(".")]
            return sql.SQL("SELECT * FROM {}").format(sql.Identifier(*parts))
        assert self.query is not None
        return sql.SQL(self.query.strip().rstrip(";"))  # type: ignore[arg-type]  # the bureau's own query


def _fail(q: ParcelQuery, exc: psycopg.Error) -> DatabaseError:
    first = first_line(exc)
    return DatabaseError(
        f"无法从 {q.label} 读取宗地：{first}（请检查 dataset.toml 的 [parcels] table 或 sql）",
        database=redact_url(q.url),
    )


def read_parcel_table(q: ParcelQuery) -> tuple[Table, gpd.GeoSeries, str]:
    """The parcels of a PostGIS table or query: their :class:`Table`, geometries (CRS from the SRID)
    and the sha256 of the rows read (for the manifest and the run id)."""
    with connect(q.url) as conn:
        try:
            base = q.source()
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(base))
                desc = cur.description or []
                geometry_oid = conn.execute("SELECT to_regtype('geometry')::oid").fetchone()
                oid = geometry_oid[0] if geometry_oid else None
                types = _type_names(conn, {d.name: d.type_code for d in desc})
            names = [d.name for d in desc]
            geoms = [d.name for d in desc if oid is not None and d.type_code == oid]
            if q.geometry:
                if q.geometry not in names:
                    raise DatasetError(f"{q.label} 没有几何列 {q.geometry}（现有列：{'、'.join(names)}）")
                geom = q.geometry
            elif len(geoms) == 1:
                geom = geoms[0]
            elif not geoms:
                raise DatasetError(f"{q.label} 没有 geometry 类型的列，不是宗地图层")
            else:
                raise DatasetError(
                    f"{q.label} 有多个几何列（{'、'.join(geoms)}），请在 dataset.toml 的 [parcels] 中用 geometry 指定"
                )
            attrs = [n for n in names if n != geom]
            g = sql.Identifier(geom)
            srids = conn.execute(
                sql.SQL("SELECT DISTINCT ST_SRID({}) FROM ({}) AS q WHERE {} IS NOT NULL LIMIT 2").format(g, base, g)
            ).fetchall()
            if len(srids) > 1:
                raise DatasetError(f"{q.label} 的几何列 {geom} 混有多个坐标系（SRID），请统一后再评价")
            srid = int(srids[0][0]) if srids else 0
            order = sql.SQL(" ORDER BY q.ctid") if q.table else sql.SQL("")
            select = sql.SQL("SELECT {}, encode(ST_AsBinary(q.{}), 'hex') AS {} FROM ({}) AS q{}").format(
                sql.SQL(", ").join(sql.SQL("q.{}").format(sql.Identifier(n)) for n in attrs) if attrs else sql.SQL("1"),
                g,
                sql.Identifier(_WKB),
                base if not q.table else sql.SQL("SELECT ctid, * FROM {}").format(_table_identifier(q.table)),
                order,
            )
            buf = io.BytesIO()
            with (
                conn.cursor() as cur,
                cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(select)) as copy,
            ):
                for chunk in copy:
                    buf.write(chunk)
        except psycopg.Error as exc:
            raise _fail(q, exc) from exc
    data = buf.getvalue()
    column_types = {n: _ARROW_TYPES.get(types.get(n, ""), pa.large_string()) for n in attrs}
    column_types[_WKB] = pa.large_string()
    table = pacsv.read_csv(
        io.BytesIO(data),
        convert_options=pacsv.ConvertOptions(
            column_types=column_types,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
        read_options=pacsv.ReadOptions(block_size=1 << 26),
    )
    wkb = table.column(_WKB).to_numpy(zero_copy_only=False)
    frame = table.drop_columns([_WKB]).to_pandas(types_mapper=_pandas_type)
    if not attrs:
        frame = pd.DataFrame(index=range(len(wkb)))
    geometries = shapely.from_wkb(np.where(pd.isna(wkb), None, wkb))
    crs = f"EPSG:{srid}" if srid > 0 else None
    return parcel_table(frame, q.label), gpd.GeoSeries(geometries, crs=crs), hashlib.sha256(data).hexdigest()


def _table_identifier(table: str) -> sql.Identifier:
    return sql.Identifier(*[p.strip().strip('"') for p in table.split(".")])


def _pandas_type(t: pa.DataType) -> Any:
    if pa.types.is_large_string(t) or pa.types.is_string(t):
        return pd.StringDtype("pyarrow", na_value=np.nan)
    return None


def _type_names(conn: psycopg.Connection[Any], oids: dict[str, int]) -> dict[str, str]:
    """Column name → PostgreSQL type name."""
    rows = conn.execute("SELECT oid, typname FROM pg_type WHERE oid = ANY(%s)", (list(set(oids.values())),)).fetchall()
    by_oid = {int(r[0]): str(r[1]) for r in rows}
    return {name: by_oid.get(o, "") for name, o in oids.items()}


# --- import ----------------------------------------------------------------------------------------

_PG_TYPES = {"i": "bigint", "u": "bigint", "f": "double precision", "b": "boolean", "M": "timestamp"}


def import_parcels(
    url: str,
    path: Path,
    table: str,
    *,
    layer: str | None = None,
    replace: bool = False,
    srid: int | None = None,
) -> int:
    """Load a parcel file into a new PostGIS table ``table`` (with a GIST index); returns the row count.

    Columns keep their names and get text, bigint, double precision, boolean or timestamp types; the
    geometry column is ``geom`` in the file's SRID (or ``srid``). The schema of ``schema.table`` is
    created when missing; an existing table is an error unless ``replace``. One transaction.
    """
    if not Path(path).exists():
        raise InputFileError(f"找不到宗地图层 {path}")
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer, use_arrow=True)
    except Exception as exc:  # pyogrio raises several DataSourceError flavours
        raise InputFileError(f"无法读取宗地图层 {path}：{exc}") from exc
    code = srid or (gdf.crs.to_epsg() if gdf.crs is not None else None) or 0
    attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    ident = _table_identifier(table)
    defs = [sql.SQL("{} {}").format(sql.Identifier(str(c)), sql.SQL(_pg_type(attrs[c]))) for c in attrs.columns]
    defs.append(sql.SQL("geom geometry(Geometry, {})").format(sql.Literal(int(code))))
    columns: dict[str, pa.Array] = {}
    for c in attrs.columns:
        columns[str(c)] = pa.array(attrs[c].array if hasattr(attrs[c], "array") else attrs[c], from_pandas=True)
    geoms = shapely.set_srid(np.asarray(gdf.geometry.array, dtype=object), int(code))
    columns["geom"] = pa.array(shapely.to_wkb(geoms, hex=True, include_srid=True), type=pa.large_string())
    t = pa.table(columns)
    with connect(url) as conn:
        try:
            with conn.transaction():
                parts = [p.strip().strip('"') for p in table.split(".")]
                if len(parts) == 2:
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(parts[0])))
                if replace:
                    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(", ").join(defs)))
                stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                    ident, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
                )
                options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
                with conn.cursor() as cur, cur.copy(stmt) as copy:
                    for start in range(0, t.num_rows, 100_000):
                        buf = io.BytesIO()
                        pacsv.write_csv(t.slice(start, 100_000), buf, options)
                        copy.write(buf.getbuffer())
                base = table.split(".")[-1].strip('"')
                conn.execute(
                    sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(sql.Identifier(f"{base}_geom"), ident)
                )
                conn.execute(sql.SQL("ANALYZE {}").format(ident))
        except psycopg.errors.DuplicateTable:
            raise DatabaseError(
                f"数据库 {redact_url(url)} 中已有表 {table}；如要替换，请加 --replace", database=redact_url(url)
            ) from None
        except psycopg.Error as exc:
            first = first_line(exc)
            raise DatabaseError(
                f"导入宗地到 {redact_url(url)} 表 {table} 失败：{first}", database=redact_url(url)
            ) from exc
    return int(t.num_rows)


def _pg_type(s: pd.Series) -> str:
    if isinstance(s.dtype, pd.BooleanDtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "timestamp"
    kind = getattr(s.dtype, "kind", "O")
    return _PG_TYPES.get(kind, "text")
