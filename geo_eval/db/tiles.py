"""Vector tiles of a stored run, made by PostGIS (``ST_AsMVT``) from ``geo_eval.parcel_results``.

The same tiles as :func:`geo_eval.tiles.mvt_tile` makes from files (layer ``parcels``, the properties
of :func:`geo_eval.maps.tile_properties`), cut by the database: the parcels whose boxes meet the tile
(GIST index on the run's Gauss-Krüger geometry, or on the GCJ-02 geometry for a 高德 basemap), clipped and
quantised by ``ST_AsMVTGeom`` (extent 4096, buffer 64), with each parcel's flags and their current review
state joined in (so a review shows in the next tile without republishing anything). Role checks stay
with the caller, which passes the parks a user may see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from geo_eval.db.errors import DatabaseError, first_line
from geo_eval.maps import FLAG_STATUS_LABELS, NO_GRADE
from geo_eval.tiles import TILE_EXTENT, _check_tile

__all__ = ["mvt_tile", "tile_sql"]

BUFFER = 64
STATUS_ORDER = ("confirmed", "site_visit", "pending", "dismissed")
"""A parcel shows the first state any of its flags has (as :func:`geo_eval.maps.parcel_attributes`)."""


def _status_label() -> sql.Composable:
    cases = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(k), sql.Literal(v)) for k, v in FLAG_STATUS_LABELS.items()
    )
    return sql.SQL("CASE coalesce(r.status, 'pending') {} ELSE {} END").format(
        cases, sql.Literal(FLAG_STATUS_LABELS["pending"])
    )


_PROPERTIES: dict[str, str] = {
    "parcel_id": "p.parcel_id",
    "park": "nullif(p.park, '')",
    "area_mu": "p.area_mu",
    "holder": "nullif(p.holder, '')",
    "users": "nullif(p.users, '')",
    "main_name": "nullif(p.main_name, '')",
    "grade": "coalesce(nullif(p.grade, ''), {no_grade})",
    "tax_per_mu": "CASE WHEN p.tax_per_mu = 'NaN' THEN NULL ELSE p.tax_per_mu END",
    "block_id": "nullif(p.block_id, '')",
    "flags": "fl.flags",
    "n_flags": "coalesce(fl.n_flags, 0)",
    "review": "fl.review",
}
"""SQL of each tile property (``p``: the parcel row, ``fl``: its flags with their review state)."""
_FLAG_PROPERTIES = {"flags", "n_flags", "review"}


def _flags_join() -> sql.Composable:
    """Per parcel: its flag lines (``标记：原因（审核状态：意见）``), their number and the parcel's review state."""
    order = sql.SQL("ARRAY[{}]").format(sql.SQL(", ").join(sql.Literal(s) for s in STATUS_ORDER))
    return sql.SQL(
        """LEFT JOIN LATERAL (
        SELECT string_agg(g.popup || '（' || {label} || CASE WHEN coalesce(r.comment, '') <> ''
                          THEN '：' || r.comment ELSE '' END || '）', E'\n' ORDER BY g.row_no) AS flags,
               count(*)::int AS n_flags,
               ({order})[min(array_position({order}, coalesce(r.status, 'pending')))] AS review
        FROM geo_eval.flags g LEFT JOIN geo_eval.reviews r ON r.run_id = g.run_id AND r.flag_id = g.flag_id
        WHERE g.run_id = p.run_id AND g.parcel_id = p.parcel_id
    ) fl ON true"""
    ).format(label=_status_label(), order=order)


def tile_sql(properties: Sequence[str], *, gcj02: bool) -> sql.Composed:
    """The query of one tile (parameters ``run``, ``srid``, ``z``, ``x``, ``y``, ``margin``, ``parks``)."""
    unknown = [p for p in properties if p not in _PROPERTIES]
    if unknown:
        raise ValueError(f"数据库瓦片不支持的属性：{'、'.join(unknown)}")
    cols = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(
            sql.SQL(_PROPERTIES[p]).format(no_grade=sql.Literal(NO_GRADE)),  # type: ignore[arg-type]
            sql.Identifier(p),
        )
        for p in properties
    )
    flags_join = _flags_join() if _FLAG_PROPERTIES & set(properties) else sql.SQL("")
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
SELECT ST_AsMVT(rows.*, 'parcels', {extent}, 'mvtgeom') FROM rows WHERE mvtgeom IS NOT NULL"""
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
