"""Vector tiles of a stored run, made by PostGIS (``ST_AsMVT``) from ``geo_eval.parcel_results``.

The same tiles as :func:`geo_eval.maps.tiles.mvt_tile` makes from files (layer ``parcels``, the properties
of :func:`geo_eval.maps.tile_properties`), cut by the database: the parcels whose boxes meet the tile
(GIST index on the run's Gauss-Krüger geometry, or on the GCJ-02 geometry for a 高德 basemap), clipped and
quantised by ``ST_AsMVTGeom`` (extent 4096, buffer 64), with each parcel's flag lines joined in. Tiles carry
no review state: a run's tiles never change (the map page applies the review states it polls), so they can
be cached. Role checks stay with the caller, which passes the parks a user may see.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from geo_eval.db.errors import DatabaseError, first_line
from geo_eval.maps import NO_GRADE
from geo_eval.maps.archive import PARKS_KEY, SCHEMA
from geo_eval.maps.tiles import TILE_EXTENT, _check_tile

__all__ = [
    "TileSet",
    "export_tile_set",
    "mvt_tile",
    "read_tile",
    "store_tile_archive",
    "tile_set",
    "tile_set_key",
    "tile_sql",
]

BUFFER = 64


_PROPERTIES: dict[str, str] = {
    "parcel_id": "p.parcel_id",
    "park": "nullif(trim(p.park), '')",
    "area_mu": "p.area_mu",
    "holder": "CASE WHEN coalesce(trim(p.holder_name), '') <> '' AND coalesce(trim(p.holder_uscc), '') <> '' "
    "THEN trim(p.holder_name) || '（' || trim(p.holder_uscc) || '）' "
    "ELSE nullif(coalesce(nullif(trim(p.holder_name), ''), trim(p.holder_uscc)), '') END",
    "users": "u.users",
    "main_name": "nullif(coalesce(({name_of_main}), nullif(trim(p.main_user_name), ''), "
    "CASE WHEN m.main = trim(p.holder_uscc) THEN nullif(trim(p.holder_name), '') END, m.main), '')",
    "grade": "coalesce(nullif(trim(p.grade), ''), {no_grade})",
    "tax_per_mu": "CASE WHEN p.tax_per_mu = 'NaN' THEN NULL ELSE p.tax_per_mu END",
    "block_id": "nullif(trim(p.block_id), '')",
    "flags": "fl.flags",
    "n_flags": "p.n_flags",
}
"""SQL of each tile property, as :func:`geo_eval.maps.parcel_attributes` makes it (``p``: the parcel row,
``m.main``: its main user, ``u``: its users labelled ``名称（代码）``, ``fl``: its flag lines ``标记：原因``).
``n_flags`` is stored with the parcel. Names come from the run's enterprises, else from the parcel's own main-user and holder names."""


_NAME_OF = (
    "SELECT nullif(trim(e.name), '') FROM geo_eval.enterprise_results e "
    "WHERE e.run_id = p.run_id AND e.uscc = {code} LIMIT 1"
)


def _users_join() -> sql.Composable:
    """Per parcel: its main user (``m.main``) and its users, main user first, one ``名称（代码）`` per line."""
    return sql.SQL(
        """CROSS JOIN LATERAL (SELECT coalesce(trim(p.main_user), '') AS main) m
    LEFT JOIN LATERAL (
        SELECT string_agg(CASE WHEN n.nm <> '' THEN n.nm || '（' || c.code || '）' ELSE c.code END, E'\n'
                          ORDER BY c.code = m.main DESC, c.ord) AS users
        FROM (SELECT trim(x) AS code, ord FROM unnest(
                  CASE WHEN coalesce(trim(p.users), '') <> '' THEN string_to_array(p.users, ';')
                       WHEN m.main <> '' THEN ARRAY[m.main] ELSE ARRAY[]::text[] END) WITH ORDINALITY AS t(x, ord)
              WHERE trim(x) <> '') c
        CROSS JOIN LATERAL (SELECT coalesce(({name_of}),
            CASE WHEN c.code = m.main THEN nullif(trim(p.main_user_name), '') END,
            CASE WHEN c.code = trim(p.holder_uscc) THEN nullif(trim(p.holder_name), '') END, '') AS nm) n
    ) u ON true"""
    ).format(name_of=sql.SQL(_NAME_OF.format(code="c.code")))  # type: ignore[arg-type]


def _flags_join() -> sql.Composable:
    """Per parcel with flags: its flag lines (``标记：原因``), in the flags' order."""
    return sql.SQL(
        """LEFT JOIN LATERAL (
        SELECT string_agg(g.popup, E'\n' ORDER BY g.row_no) AS flags
        FROM geo_eval.flags g
        WHERE p.n_flags > 0 AND g.run_id = p.run_id AND g.parcel_id = p.parcel_id
    ) fl ON true"""
    )


def tile_sql(properties: Sequence[str], *, gcj02: bool) -> sql.Composed:
    """The query of one tile (parameters ``run``, ``srid``, ``z``, ``x``, ``y``, ``margin``, ``parks``)."""
    unknown = [p for p in properties if p not in _PROPERTIES]
    if unknown:
        raise ValueError(f"数据库瓦片不支持的属性：{'、'.join(unknown)}")
    cols = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(
            sql.SQL(_PROPERTIES[p]).format(  # type: ignore[arg-type]
                no_grade=sql.Literal(NO_GRADE),
                name_of_main=sql.SQL(_NAME_OF.format(code="m.main")),  # type: ignore[arg-type]
            ),
            sql.Identifier(p),
        )
        for p in properties
    )
    joins = [_users_join()] if {"users", "main_name"} & set(properties) else []
    if "flags" in properties:
        joins.append(_flags_join())
    flags_join = sql.SQL("\n    ").join(joins)
    geom = sql.Identifier("geom_gcj02" if gcj02 else "geom")
    query_srid = sql.SQL("4326") if gcj02 else sql.SQL("%(srid)s")
    return sql.SQL(
        """WITH env AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile,
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), {query_srid}) AS query
), rows AS (
    SELECT ST_AsMVTGeom(ST_Transform(p.{geom}, 3857), env.tile, {extent}, {buffer}, true) AS mvtgeom, {cols}
    FROM geo_eval.parcel_results p CROSS JOIN env {flags_join}
    WHERE p.run_id = %(run)s AND p.{geom} && env.query
      AND (%(parks)s::text[] IS NULL OR p.park = ANY(%(parks)s::text[]))
    ORDER BY p.row_no
)
SELECT ST_AsMVT(rows.*, 'parcels', {extent}, 'mvtgeom') FROM rows"""
    ).format(
        query_srid=query_srid,
        geom=geom,
        extent=sql.Literal(TILE_EXTENT),
        buffer=sql.Literal(BUFFER),
        cols=cols,
        flags_join=flags_join,
    )


def mvt_tile(
    conn: Any,
    *,
    run_id: str,
    srid: int,
    z: int,
    x: int,
    y: int,
    properties: Sequence[str],
    parks: Sequence[str] | None = None,
    gcj02: bool = False,
) -> bytes:
    """Tile ``z/x/y`` of a stored run as Mapbox vector tile bytes (``b""`` when no parcel shows).

    ``parks``: only parcels of these parks (None: all). Raises ``ValueError`` for a tile outside the grid.
    """
    _check_tile(z, x, y)
    params = {
        "run": run_id,
        "srid": int(srid),
        "z": z,
        "x": x,
        "y": y,
        "margin": BUFFER / TILE_EXTENT,
        "parks": list(parks) if parks is not None else None,
    }
    try:
        row = conn.execute(tile_sql(properties, gcj02=gcj02), params).fetchone()
    except psycopg.Error as exc:
        raise DatabaseError(f"数据库生成瓦片 {z}/{x}/{y} 失败：{first_line(exc)}") from exc
    data = row[0] if row is not None else None
    return bytes(data) if data else b""


# --- pre-built tiles ------------------------------------------------------------------------------------


def store_tile_archive(cur: Any, run_id: str, stored_at: str, archive: Path, built_at: str) -> int:
    """Copy the tiles of an MBTiles archive (:func:`geo_eval.maps.archive.build_archive`) into
    ``geo_eval.run_tiles`` as the tile set of the run stored at ``stored_at``, replacing an older set, in the
    caller's transaction. Returns the number of tiles."""
    cur.execute("DELETE FROM geo_eval.run_tile_sets WHERE run_id = %s", (run_id,))
    with sqlite3.connect(f"file:{archive}?mode=ro", uri=True) as src:
        meta = dict(src.execute("SELECT name, value FROM metadata").fetchall())
        n, size = src.execute("SELECT count(*), coalesce(sum(length(tile_data)), 0) FROM tiles").fetchone()
        cur.execute(
            "INSERT INTO geo_eval.run_tile_sets (run_id, stored_at, min_zoom, max_zoom, tiles, bytes, parks, built_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (run_id, stored_at, int(meta["minzoom"]), int(meta["maxzoom"]), n, size, meta[PARKS_KEY], built_at),
        )
        rows = src.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles ORDER BY 1, 2, 3")
        with cur.copy("COPY geo_eval.run_tiles (run_id, z, x, y, data) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int2", "int4", "int4", "bytea"])
            for z, x, row_tms, data in rows:
                copy.write_row((run_id, z, x, (1 << z) - 1 - row_tms, bytes(data)))
    return int(n)


class TileSet(NamedTuple):
    """A run's pre-built tiles as stored: their zooms, the run's parks, and when they were cut."""

    min_zoom: int
    max_zoom: int
    parks: list[str]
    built_at: str


def tile_set(conn: psycopg.Connection[Any], run_id: str, stored_at: str) -> TileSet | None:
    """The run's pre-built tiles when they were cut from the run as stored at ``stored_at``; None when it has
    none (tiles are then cut per request by :func:`mvt_tile`)."""
    row = conn.execute(
        "SELECT min_zoom, max_zoom, parks, built_at FROM geo_eval.run_tile_sets WHERE run_id = %s AND stored_at = %s",
        (run_id, stored_at),
    ).fetchone()
    return None if row is None else TileSet(int(row[0]), int(row[1]), [str(p) for p in row[2]], str(row[3]))


def read_tile(conn: psycopg.Connection[Any], run_id: str, z: int, x: int, y: int) -> bytes:
    """A pre-built tile of the run (XYZ numbering), ``b""`` where the set has none."""
    row = conn.execute(
        "SELECT data FROM geo_eval.run_tiles WHERE run_id = %s AND z = %s AND x = %s AND y = %s", (run_id, z, x, y)
    ).fetchone()
    return b"" if row is None else bytes(row[0])


def export_tile_set(conn: psycopg.Connection[Any], run_id: str, stored_at: str, target: Path) -> int:
    """Write the run's stored tiles as an MBTiles file at ``target`` (a server's own copy of them: each tile
    then a read of its disk instead of a query), streamed from the database by ``COPY``, written beside
    ``target`` and renamed into place. Its metadata names the run, ``stored_at`` and when the tiles were cut
    (``geo_eval_tile_set``: :func:`tile_set_key`). Returns the number of tiles."""
    found = tile_set(conn, run_id, stored_at)
    if found is None:
        raise DatabaseError(f"评价批次 {run_id} 在数据库中没有预切的地图瓦片")
    meta = {
        "name": f"geo-eval {run_id}",
        "format": "pbf",
        "type": "overlay",
        "minzoom": str(found.min_zoom),
        "maxzoom": str(found.max_zoom),
        "geo_eval_run_id": run_id,
        "geo_eval_tile_set": tile_set_key(stored_at, found.built_at),
        PARKS_KEY: json.dumps(found.parks, ensure_ascii=False),
    }
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)  # an empty file: SQLite makes it a database
    tmp = Path(name)
    query = "COPY (SELECT z, x, y, data FROM geo_eval.run_tiles WHERE run_id = {}) TO STDOUT (FORMAT BINARY)"
    try:
        db = sqlite3.connect(tmp)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.executescript(SCHEMA)
            with conn.cursor() as cur, cur.copy(sql.SQL(query).format(sql.Literal(run_id))) as copy:
                copy.set_types(["int2", "int4", "int4", "bytea"])
                rows = ((z, x, (1 << z) - 1 - y, bytes(data)) for z, x, y, data in copy.rows())
                db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(meta.items()))
            n = int(db.execute("SELECT count(*) FROM tiles").fetchone()[0])
            db.commit()
        finally:
            db.close()
        os.replace(tmp, target)
    except psycopg.Error as exc:
        raise DatabaseError(f"从数据库读取评价批次 {run_id} 的地图瓦片失败：{first_line(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return n


def tile_set_key(stored_at: str, built_at: str) -> str:
    """What tells a stored tile set from another of the same run: the run's storing and the tiles' cutting."""
    return f"{stored_at}|{built_at}"
