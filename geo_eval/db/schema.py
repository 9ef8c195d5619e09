"""The versioned database structure of geo-eval in the PostgreSQL schema (namespace) ``geo_eval``.

``geo-eval db init`` creates it (and the postgis extension when missing), ``geo-eval db upgrade``
brings an older one up to :data:`SCHEMA_VERSION`; the store only checks it (:func:`check_schema`) and
refuses to work on any other version. Each applied migration is a row of ``geo_eval.schema_version``.

Both run in one transaction behind a transaction-level advisory lock, so concurrent runs queue and the
second one finds the work done; a failure changes nothing.

The result tables (``enterprise_results``, ``parcel_results``, ``flags``, ``renewal_blocks``) are
partitioned by ``run_id``: each stored run is one partition per table, loaded with COPY before its
indexes are built and attached (:mod:`geo_eval.db.publish`), and dropped as a whole when the run is
published again. Geometry columns are plain ``geometry`` (no SRID type modifier) because runs may use different
Gauss-Krüger zones; ``parcel_results.geom_gcj02`` is ``geometry(Geometry, 4326)``. Every geometry column
has a GIST index. Timestamps are ISO 8601 texts (:func:`geo_eval.storage.common.now`), as in SQLite.

Version 2 adds ``users.session_gen`` (server-side sign-out). Version 3 adds ``runs.manifest_sha256`` (the ``manifest.json`` a run's OUT_DIR must hold) and each
flag's content digest, to carry reviews over only to identical flags: ``flags.digest`` for runs
published with ``evaluate --db`` (written by the same COPY as the flags), ``run_flags`` for runs
registered from their files (as the SQLite store's migration 3). The upgrade fills both in for the runs
registered before, where it can (:func:`_fill_in_contents`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from geo_eval import __version__
from geo_eval.db.connection import connect, redact_url
from geo_eval.db.errors import DatabaseError, PostGISMissingError, SchemaVersionError, first_line
from geo_eval.storage.publication_sql import NUMBER_VERSIONS, RUN_STATUS_TEXT_COLUMNS

SCHEMA = "geo_eval"
LOCK_KEY = int.from_bytes(b"geo_eval", "big")
"""The key of the advisory lock taken by :func:`init_schema` and :func:`upgrade_schema`."""

BOOTSTRAP: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS geo_eval",
    """CREATE TABLE IF NOT EXISTS geo_eval.schema_version (
        version int PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now(),
        tool_version text NOT NULL
    )""",
)

# Each entry moves the schema one version up; never edit a released entry, append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE geo_eval.users (
            name text PRIMARY KEY,
            role text NOT NULL CHECK (role IN ('reviewer', 'committee', 'admin')),
            parks text[] NOT NULL DEFAULT '{}',
            token_id text NOT NULL UNIQUE,
            token_hash text NOT NULL,
            created text NOT NULL
        )""",
        """CREATE TABLE geo_eval.runs (
            run_id text PRIMARY KEY,
            year int NOT NULL,
            scheme text NOT NULL,
            scheme_title text NOT NULL,
            out_dir text NOT NULL,
            counts jsonb NOT NULL,
            registered_at text NOT NULL,
            registered_by text NOT NULL,
            seq bigint NOT NULL UNIQUE,
            stored_at text,
            srid int,
            manifest jsonb,
            columns jsonb
        )""",
        """CREATE TABLE geo_eval.enterprise_results (
            run_id text NOT NULL REFERENCES geo_eval.runs ON DELETE CASCADE,
            row_no int NOT NULL,
            uscc text NOT NULL,
            name text,
            county text,
            park text,
            group_key text,
            land_mu double precision,
            tax double precision,
            score double precision,
            grade text,
            rank int,
            row_csv text NOT NULL,
            PRIMARY KEY (run_id, row_no)
        ) PARTITION BY LIST (run_id)""",
        "CREATE INDEX enterprise_results_run_uscc ON geo_eval.enterprise_results (run_id, uscc)",
        "CREATE INDEX enterprise_results_run_park ON geo_eval.enterprise_results (run_id, park)",
        """CREATE TABLE geo_eval.parcel_results (
            run_id text NOT NULL REFERENCES geo_eval.runs ON DELETE CASCADE,
            row_no int NOT NULL,
            parcel_id text NOT NULL,
            county text,
            park text,
            holder_uscc text,
            holder_name text,
            users text,
            main_user text,
            main_user_name text,
            grade text,
            tax_per_mu double precision,
            area_m2 double precision,
            area_mu double precision,
            block_id text,
            n_flags int NOT NULL DEFAULT 0,
            row_csv text NOT NULL,
            geom geometry NOT NULL,
            geom_gcj02 geometry(Geometry, 4326),
            PRIMARY KEY (run_id, row_no)
        ) PARTITION BY LIST (run_id)""",
        "CREATE INDEX parcel_results_run_parcel ON geo_eval.parcel_results (run_id, parcel_id)",
        "CREATE INDEX parcel_results_run_park ON geo_eval.parcel_results (run_id, park)",
        "CREATE INDEX parcel_results_geom ON geo_eval.parcel_results USING gist (geom)",
        "CREATE INDEX parcel_results_geom_gcj02 ON geo_eval.parcel_results USING gist (geom_gcj02)",
        """CREATE TABLE geo_eval.flags (
            run_id text NOT NULL REFERENCES geo_eval.runs ON DELETE CASCADE,
            flag_id text NOT NULL,
            parcel_id text NOT NULL,
            county text,
            park text,
            flag text NOT NULL,
            rule_id text,
            severity text,
            reason text,
            value double precision,
            threshold double precision,
            row_no int NOT NULL,
            popup text NOT NULL DEFAULT '',
            row_csv text NOT NULL,
            PRIMARY KEY (run_id, flag_id)
        ) PARTITION BY LIST (run_id)""",
        "CREATE INDEX flags_run_parcel ON geo_eval.flags (run_id, parcel_id)",
        """CREATE TABLE geo_eval.renewal_blocks (
            run_id text NOT NULL REFERENCES geo_eval.runs ON DELETE CASCADE,
            block_id text NOT NULL,
            row_no int NOT NULL,
            kind text,
            area_mu double precision,
            row_csv text NOT NULL,
            geom geometry NOT NULL,
            PRIMARY KEY (run_id, block_id)
        ) PARTITION BY LIST (run_id)""",
        "CREATE INDEX renewal_blocks_geom ON geo_eval.renewal_blocks USING gist (geom)",
        """CREATE TABLE geo_eval.run_files (
            run_id text NOT NULL REFERENCES geo_eval.runs ON DELETE CASCADE,
            name text NOT NULL,
            content bytea NOT NULL,
            sha256 text NOT NULL,
            PRIMARY KEY (run_id, name)
        )""",
        """CREATE TABLE geo_eval.reviews (
            run_id text NOT NULL REFERENCES geo_eval.runs,
            flag_id text NOT NULL,
            status text NOT NULL CHECK (status IN ('pending', 'confirmed', 'dismissed', 'site_visit')),
            comment text NOT NULL DEFAULT '',
            version int NOT NULL CHECK (version >= 1),
            updated_by text NOT NULL,
            updated_at text NOT NULL,
            PRIMARY KEY (run_id, flag_id)
        )""",
        """CREATE TABLE geo_eval.audit (
            id bigserial PRIMARY KEY,
            at text NOT NULL,
            actor text NOT NULL,
            action text NOT NULL,
            entity text NOT NULL,
            run_id text,
            before jsonb,
            after jsonb
        )""",
        "CREATE INDEX audit_by_entity ON geo_eval.audit (run_id, entity, id)",
        """CREATE FUNCTION geo_eval.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$""",
        """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON geo_eval.audit
           FOR EACH STATEMENT EXECUTE FUNCTION geo_eval.audit_append_only()""",
    ),
    # 2: server-side sign-out (the generation of a user's browser sessions)
    ("ALTER TABLE geo_eval.users ADD COLUMN session_gen int NOT NULL DEFAULT 0",),
    (  # 3: a run's identity follows its content; reviews carry over only to identical flags
        "ALTER TABLE geo_eval.runs ADD COLUMN manifest_sha256 text NOT NULL DEFAULT ''",
        "ALTER TABLE geo_eval.flags ADD COLUMN digest text",
        """CREATE TABLE geo_eval.run_flags (
            run_id text NOT NULL REFERENCES geo_eval.runs ON DELETE CASCADE,
            flag_id text NOT NULL,
            digest text NOT NULL,
            PRIMARY KEY (run_id, flag_id)
        )""",
    ),
    (  # 4: publication (草稿 → 公示中 → 已发布, versions of a year) and objections
        "ALTER TABLE geo_eval.runs ADD COLUMN status text NOT NULL DEFAULT 'draft' "
        "CHECK (status IN ('draft', 'publicity', 'final'))",
        "ALTER TABLE geo_eval.runs ADD COLUMN version int NOT NULL DEFAULT 1",
        *(f"ALTER TABLE geo_eval.runs ADD COLUMN {c} text NOT NULL DEFAULT ''" for c in RUN_STATUS_TEXT_COLUMNS),
        NUMBER_VERSIONS.format(t="geo_eval."),
        "ALTER TABLE geo_eval.reviews ADD COLUMN carried_from text NOT NULL DEFAULT ''",
        """CREATE TABLE geo_eval.objections (
            id bigserial PRIMARY KEY,
            year int NOT NULL,
            run_id text NOT NULL REFERENCES geo_eval.runs,
            park text NOT NULL,
            uscc text NOT NULL,
            parcel_id text NOT NULL,
            enterprise text NOT NULL,
            field text NOT NULL,
            run_value text NOT NULL,
            claimed_value text NOT NULL,
            reason text NOT NULL,
            status text NOT NULL CHECK (status IN ('open', 'accepted', 'rejected')),
            corrected_value text NOT NULL DEFAULT '',
            decision_reason text NOT NULL DEFAULT '',
            version int NOT NULL CHECK (version >= 1),
            created_by text NOT NULL,
            created_at text NOT NULL,
            decided_by text NOT NULL DEFAULT '',
            decided_at text NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX objections_by_year ON geo_eval.objections (year, id)",
        """CREATE TABLE geo_eval.objection_files (
            objection_id bigint NOT NULL REFERENCES geo_eval.objections,
            file_no int NOT NULL,
            name text NOT NULL,
            content_type text NOT NULL,
            size int NOT NULL,
            sha256 text NOT NULL,
            content bytea NOT NULL,
            uploaded_by text NOT NULL,
            uploaded_at text NOT NULL,
            PRIMARY KEY (objection_id, file_no)
        )""",
    ),
    (  # 5: a stored run's pre-built map tiles (cut once by tippecanoe, geo_eval/maps/archive.py)
        """CREATE TABLE geo_eval.run_tile_sets (
            run_id text PRIMARY KEY REFERENCES geo_eval.runs,
            stored_at text NOT NULL,
            min_zoom int NOT NULL,
            max_zoom int NOT NULL,
            tiles int NOT NULL,
            bytes bigint NOT NULL,
            parks jsonb NOT NULL,
            built_at text NOT NULL
        )""",
        """CREATE TABLE geo_eval.run_tiles (
            run_id text NOT NULL REFERENCES geo_eval.run_tile_sets ON DELETE CASCADE,
            z smallint NOT NULL,
            x int NOT NULL,
            y int NOT NULL,
            data bytea NOT NULL,
            PRIMARY KEY (run_id, z, x, y)
        )""",
        "ALTER TABLE geo_eval.run_tiles ALTER COLUMN data SET STORAGE EXTERNAL",  # tiles read whole, uncompressed
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def database_of(conn: psycopg.Connection[Any]) -> str:
    """The URL of the database ``conn`` is connected to, without password.

    Used in messages when only a connection is at hand; a socket directory becomes an escaped host.
    """
    info = conn.info
    host = info.host or "localhost"
    if host.startswith("/"):
        host = quote(host, safe="")
    elif ":" in host:
        host = f"[{host}]"
    return f"postgresql://{quote(info.user, safe='')}@{host}:{info.port}/{quote(info.dbname, safe='')}"


def _hint(exc: BaseException) -> str:
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return "（请以数据库所有者身份运行，或请数据库管理员授予该用户在此数据库中的 CREATE 权限）"
    return ""


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version recorded in the database (0 when there is no ``geo_eval.schema_version``)."""
    row = conn.execute("SELECT to_regclass('geo_eval.schema_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM geo_eval.schema_version").fetchone()
    return int(row[0]) if row is not None else 0


def postgis_version(conn: psycopg.Connection[Any]) -> str | None:
    """The version of the postgis extension installed in the database, or None."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'").fetchone()
    return None if row is None else str(row[0])


def version_problem(version: int, *, database: str) -> str | None:
    """Why a database at schema ``version`` cannot be used by this tool (one line), or None."""
    if version == SCHEMA_VERSION:
        return None
    if version == 0:
        return f"数据库 {database} 还没有 geo-eval 的数据库结构 {SCHEMA}：请先运行 geo-eval db init --db {database}"
    if version < SCHEMA_VERSION:
        return (
            f"数据库 {database} 的结构版本为 {version}，本程序需要版本 {SCHEMA_VERSION}："
            f"请运行 geo-eval db upgrade --db {database}"
        )
    return (
        f"数据库 {database} 的结构版本为 {version}，比本程序（geo-eval {__version__}，结构版本 {SCHEMA_VERSION}）新："
        "请升级 geo-eval"
    )


def check_schema(conn: psycopg.Connection[Any], *, database: str | None = None) -> int:
    """The schema version, after making sure it is :data:`SCHEMA_VERSION` (else :class:`SchemaVersionError`).

    ``database`` names the database in messages (default: built from the connection, without password).
    """
    database = database or database_of(conn)
    try:
        version = current_version(conn)
    except psycopg.Error as exc:
        raise DatabaseError(f"无法读取数据库 {database} 的结构版本：{first_line(exc)}", database=database) from exc
    problem = version_problem(version, database=database)
    if problem is not None:
        raise SchemaVersionError(problem, database=database)
    return version


def schema_status(conn: psycopg.Connection[Any], *, database: str | None = None) -> dict[str, Any]:
    """What ``geo-eval db status`` shows: the database, PostgreSQL and PostGIS versions, the schema version."""
    database = database or database_of(conn)
    try:
        version = current_version(conn)
        postgis = postgis_version(conn)
        row = conn.execute("SELECT current_setting('server_version')").fetchone()
    except psycopg.Error as exc:
        raise DatabaseError(f"无法读取数据库 {database} 的状态：{first_line(exc)}", database=database) from exc
    return {
        "database": database,
        "postgresql_version": None if row is None else str(row[0]),
        "postgis_version": postgis,
        "schema_version": version,
        "expected_schema_version": SCHEMA_VERSION,
        "up_to_date": version == SCHEMA_VERSION,
        "problem": version_problem(version, database=database),
    }


def _ensure_postgis(conn: psycopg.Connection[Any], database: str) -> tuple[str, bool]:
    """The postgis version, creating the extension when missing; whether it was created now."""
    version = postgis_version(conn)
    if version is not None:
        return version, False
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone()
    if row is None:
        raise PostGISMissingError(
            f"数据库 {database} 没有 PostGIS 扩展，数据库服务器上也没有安装 PostGIS："
            "请在数据库服务器上安装 Debian 软件包 postgresql-15-postgis-3（或对应 PostgreSQL 版本的 PostGIS 3），"
            f"或请数据库管理员处理并在该数据库中执行 CREATE EXTENSION postgis，再运行 geo-eval db init --db {database}",
            database=database,
        )
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        raise PostGISMissingError(
            f"数据库 {database} 没有 PostGIS 扩展，当前用户无法创建（{first_line(exc)}）："
            "请数据库管理员在该数据库中执行 CREATE EXTENSION postgis（服务器上须已安装 PostGIS，"
            f"Debian 软件包 postgresql-15-postgis-3），再运行 geo-eval db init --db {database}",
            database=database,
        ) from exc
    created = postgis_version(conn)
    return created or "", True


def _set_search_path(conn: psycopg.Connection[Any]) -> None:
    """Make ``geometry`` resolve in the migrations wherever the DBA put the extension (this transaction only)."""
    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'"
    ).fetchone()
    names = [SCHEMA] + ([str(row[0])] if row is not None else [])
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.SQL(", ").join(sql.Identifier(n) for n in names)))


def _apply(conn: psycopg.Connection[Any], start: int) -> list[int]:
    """Apply the migrations after version ``start``, each recorded in ``schema_version``; the versions applied."""
    _set_search_path(conn)
    applied = []
    for number, statements in enumerate(MIGRATIONS[start:], start=start + 1):
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO geo_eval.schema_version (version, tool_version) VALUES (%s, %s)", (number, __version__)
        )
        applied.append(number)
    return applied


def _fill_in_contents(conn: psycopg.Connection[Any]) -> None:
    """Migration 3's data: the manifest sha256 and flag digests of the runs registered before, from their
    stored results (``evaluate --db``: ``run_files`` and the ``flags`` rows) or else from their OUT_DIR
    where it still holds them (:func:`geo_eval.storage.sql.fill_in_contents`, as SQLite's migration 3)."""
    from psycopg.rows import dict_row

    from geo_eval.db.store import POSTGIS
    from geo_eval.storage.sql import Tx, fill_in_contents

    with conn.cursor(row_factory=dict_row) as cur:
        fill_in_contents(Tx(cur, POSTGIS))


def init_schema(url: str) -> dict[str, Any]:
    """Create the postgis extension (if missing), the schema and every table; harmless when up to date.

    Returns ``{"action": "created" | "up_to_date", "database", "schema_version", "postgis_version",
    "postgis_created"}``. A database at an older version is refused (:class:`SchemaVersionError`: run
    ``geo-eval db upgrade``), as is a newer one; without PostGIS: :class:`PostGISMissingError`.
    """
    database = redact_url(url)
    with connect(url) as conn:
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            postgis, postgis_created = _ensure_postgis(conn, database)
            version = current_version(conn)
            if version == 0:
                for statement in BOOTSTRAP:
                    conn.execute(statement)
                _apply(conn, 0)
                action = "created"
            elif version == SCHEMA_VERSION:
                action = "up_to_date"
            else:
                problem = version_problem(version, database=database)
                raise SchemaVersionError(problem or "", database=database)
            conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            raise DatabaseError(
                f"初始化数据库 {database} 失败（未做任何改动）：{first_line(exc)}{_hint(exc)}", database=database
            ) from exc
    return {
        "action": action,
        "database": database,
        "schema_version": SCHEMA_VERSION,
        "postgis_version": postgis,
        "postgis_created": postgis_created,
    }


def upgrade_schema(url: str) -> dict[str, Any]:
    """Apply the missing migrations in one transaction, each recorded; harmless when up to date.

    Returns ``{"action": "upgraded" | "up_to_date", "database", "from_version", "schema_version",
    "applied"}``. A database without the schema is refused (run ``geo-eval db init``), as is a newer one.
    """
    database = redact_url(url)
    with connect(url) as conn:
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            version = current_version(conn)
            if version == 0 or version > SCHEMA_VERSION:
                raise SchemaVersionError(version_problem(version, database=database) or "", database=database)
            _ensure_postgis(conn, database)
            applied = _apply(conn, version) if version < SCHEMA_VERSION else []
            if 3 in applied:
                _fill_in_contents(conn)
            conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            raise DatabaseError(
                f"升级数据库 {database} 失败（未做任何改动）：{first_line(exc)}{_hint(exc)}", database=database
            ) from exc
    return {
        "action": "upgraded" if applied else "up_to_date",
        "database": database,
        "from_version": version,
        "schema_version": SCHEMA_VERSION,
        "applied": applied,
    }
