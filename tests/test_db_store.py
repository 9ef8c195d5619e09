"""The PostgreSQL/PostGIS backend: schema versions, connection errors, concurrency, the CLI and /health.

Runs against the test database of ``GEO_EVAL_TEST_DATABASE_URL`` (a throwaway database: its schema
``geo_eval`` is wiped before each test, see tests/conftest.py); skipped without it unless
``GEO_EVAL_REQUIRE_DB=1``. The Store behaviour shared with SQLite is tested on both backends in
tests/test_api_storage.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import catalogue
import httpx
import psycopg
import pytest
from conftest import database_unavailable, shown_url, wipe_database
from fastapi.testclient import TestClient
from psycopg import sql
from pydantic import ValidationError
from serving import serving
from typer.testing import CliRunner

from api.app import create_app
from api.main import create_app_from_env
from api.settings import Settings
from geo_eval import __version__
from geo_eval.cli import app as cli
from geo_eval.db import (
    DatabaseError,
    DatabaseUnavailableError,
    PostGISMissingError,
    PostgresStore,
    SchemaVersionError,
    check_schema,
    connect,
    init_schema,
    schema_status,
    upgrade_schema,
)
from geo_eval.db import schema as db_schema
from geo_eval.storage import ConflictError, RunRecord, StorageError, open_store

CURRENT = db_schema.SCHEMA_VERSION
"""The schema version of this tool (the fixtures below pretend to a later one)."""
ALL_VERSIONS = list(range(1, CURRENT + 1))

SECRET = "p" * 48
RUN = "2025-x-1"
FLAG = "P1:idle"
runner = CliRunner()

TABLES = {
    "schema_version",
    "users",
    "objections",
    "objection_files",
    "runs",
    "enterprise_results",
    "parcel_results",
    "flags",
    "renewal_blocks",
    "run_files",
    "run_flags",
    "run_tile_sets",
    "run_tiles",
    "reviews",
    "audit",
}


def url_with(url: str, *, user: str | None = None, password: str | None = None, dbname: str | None = None) -> str:
    """``url`` with another user, password or database name."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    old_user, _, old_password = userinfo.partition(":")
    user = user if user is not None else old_user
    password = password if password is not None else old_password
    netloc = f"{user}{':' + password if password else ''}@{hosts}"
    path = f"/{dbname}" if dbname is not None else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def raw(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def add_run(store, run_id: str = RUN) -> None:
    store.add_run(RunRecord(run_id=run_id, year=2025, scheme="x", scheme_title="测试", out_dir="/nowhere"), actor="t")


def one_line(message: str) -> bool:
    return "\n" not in message and "\r" not in message and message.strip() == message


@pytest.fixture
def password_url(pg_db) -> Iterator[tuple[str, str, str]]:
    """The test database (schema initialised) through a login role of its own that has a password: the URL with
    that password, the password, and the URL as geo-eval must show it (``name:***@``, written out here)."""
    name = f"geo_eval_pw_{os.getpid()}"
    password = "pw-" + secrets.token_hex(12)
    with raw(pg_db) as admin:
        me = admin.execute("SELECT current_user").fetchone()[0]
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
        admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(me), sql.Identifier(name)))  # geo_eval's owner
    url = url_with(pg_db, user=name, password=password)
    parts = urlsplit(url)
    shown = f"postgresql://{name}:***@{parts.netloc.rpartition('@')[2]}{parts.path}"
    assert parts.scheme == "postgresql" and not parts.query and password in url
    try:
        yield url, password, shown
    finally:
        with raw(pg_db) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def evaluated_out_dir(root: Path) -> Path:
    """A real OUT_DIR: ``geo-eval evaluate`` of the catalogue (tests/catalogue.py)."""
    dataset = catalogue.write_dataset(root / "dataset")
    r = runner.invoke(cli, ["evaluate", str(dataset), "--scheme", "huaian-2024", "--out", str(root / "out")])
    assert r.exit_code == 0, r.output
    return root / "out"


# --- the schema ---------------------------------------------------------------------------------------
def test_init_creates_every_table_and_a_gist_index_on_every_geometry_column(pg_db):
    with raw(pg_db) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'geo_eval'")}
        assert tables == TABLES
        geometry = set(
            conn.execute(
                "SELECT f_table_name, f_geometry_column, srid, type FROM geometry_columns "
                "WHERE f_table_schema = 'geo_eval'"
            ).fetchall()
        )
        assert geometry == {
            ("parcel_results", "geom", 0, "GEOMETRY"),
            ("parcel_results", "geom_gcj02", 4326, "GEOMETRY"),
            ("renewal_blocks", "geom", 0, "GEOMETRY"),
        }
        gist = set(
            conn.execute(
                "SELECT t.relname, a.attname FROM pg_index i "
                "JOIN pg_class ix ON ix.oid = i.indexrelid JOIN pg_am am ON am.oid = ix.relam "
                "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey) "
                "WHERE n.nspname = 'geo_eval' AND am.amname = 'gist'"
            ).fetchall()
        )
        assert gist == {(t, c) for t, c, _, _ in geometry}
        indexes = {
            (t, d.split(" USING ")[1])
            for t, d in conn.execute("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'geo_eval'")
        }
        for expected in [
            ("enterprise_results", "btree (run_id, uscc)"),
            ("enterprise_results", "btree (run_id, park)"),
            ("parcel_results", "btree (run_id, parcel_id)"),
            ("parcel_results", "btree (run_id, park)"),
            ("flags", "btree (run_id, parcel_id)"),
            ("audit", "btree (run_id, entity, id)"),
            ("users", "btree (token_id)"),
        ]:
            assert expected in indexes
        columns = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'geo_eval' AND table_name = 'runs'"
            ).fetchall()
        )
        assert {k: columns[k] for k in ("counts", "stored_at", "srid", "manifest", "columns", "seq")} == {
            "counts": "jsonb",
            "stored_at": "text",
            "srid": "integer",
            "manifest": "jsonb",
            "columns": "jsonb",
            "seq": "bigint",
        }
        versions = conn.execute("SELECT version, tool_version FROM geo_eval.schema_version").fetchall()
        assert versions == [(v, __version__) for v in ALL_VERSIONS]


def test_geometry_columns_take_any_gauss_krueger_srid_but_gcj02_only_4326(pg_db):
    with raw(pg_db) as conn:
        conn.execute(
            "INSERT INTO geo_eval.runs (run_id, year, scheme, scheme_title, out_dir, counts, registered_at, "
            "registered_by, seq) VALUES ('r', 2025, 'x', 'x', '/', '{}', '', '', 1)"
        )
        # result tables hold one partition per run (geo_eval.db.publish makes them)
        conn.execute("CREATE TABLE geo_eval.parcel_results_r PARTITION OF geo_eval.parcel_results FOR VALUES IN ('r')")
        insert = (
            "INSERT INTO geo_eval.parcel_results (run_id, row_no, parcel_id, row_csv, geom, geom_gcj02) "
            "VALUES ('r', %s, 'P', '', ST_GeomFromText('POINT(40500000 3800000)', %s), ST_GeomFromText(%s, %s))"
        )
        conn.execute(insert, (1, 4527, "POINT(119.2 34.6)", 4326))
        conn.execute(insert, (2, 4528, "POINT(119.2 34.6)", 4326))  # another zone in the same table
        with pytest.raises(psycopg.errors.InvalidParameterValue):  # SRID typmod of geom_gcj02
            conn.execute(insert, (3, 4527, "POINT(119.2 34.6)", 4490))
        conn.execute("DELETE FROM geo_eval.runs WHERE run_id = 'r'")  # the run's results go with it
        assert conn.execute("SELECT count(*) FROM geo_eval.parcel_results").fetchone() == (0,)


def test_init_again_is_harmless_and_keeps_the_data(pg_db):
    store = PostgresStore(pg_db)
    _, token = store.add_user("张三", "reviewer", actor="admin")
    again = init_schema(pg_db)
    assert again["action"] == "up_to_date" and not again["postgis_created"]
    assert again["schema_version"] == CURRENT and again["database"] == shown_url(pg_db)
    with raw(pg_db) as conn:
        assert conn.execute("SELECT version FROM geo_eval.schema_version").fetchall() == [(v,) for v in ALL_VERSIONS]
    assert store.authenticate(token).name == "张三"
    assert [e.action for e in store.audit()] == ["user.add"]
    store.close()


def test_two_inits_at_once_queue_on_the_advisory_lock(pg_url):
    wipe_database(pg_url)
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def init() -> None:
        barrier.wait()
        try:
            results.append(init_schema(pg_url)["action"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=init) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == ["created", "up_to_date"]
    with raw(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM geo_eval.schema_version").fetchone() == (CURRENT,)


@pytest.fixture
def next_version(monkeypatch) -> None:
    """This tool as if it had one more migration (the database made by the real migrations is then 'older')."""
    migration = (
        "CREATE TABLE geo_eval.upgrade_probe (id int PRIMARY KEY, note text NOT NULL)",
        f"INSERT INTO geo_eval.upgrade_probe VALUES (1, 'migration {CURRENT + 1}')",
    )
    monkeypatch.setattr(db_schema, "MIGRATIONS", (*db_schema.MIGRATIONS, migration))
    monkeypatch.setattr(db_schema, "SCHEMA_VERSION", CURRENT + 1)


def test_an_older_schema_is_refused_until_upgraded(pg_db, next_version):
    database = shown_url(pg_db)
    with raw(pg_db) as conn:
        conn.execute(
            "INSERT INTO geo_eval.users (name, role, token_id, token_hash, created) VALUES ('kept', 'admin', 't', 'h', '')"
        )
    with pytest.raises(SchemaVersionError) as info:
        PostgresStore(pg_db)
    message = str(info.value)
    assert one_line(message) and f"geo-eval db upgrade --db {database}" in message and f"版本为 {CURRENT}" in message
    with raw(pg_db) as conn, pytest.raises(SchemaVersionError, match="geo-eval db upgrade"):
        check_schema(conn)
    with pytest.raises(SchemaVersionError, match="geo-eval db upgrade"):
        init_schema(pg_db)  # init does not upgrade behind the operator's back

    result = upgrade_schema(pg_db)
    assert result == {
        "action": "upgraded",
        "database": database,
        "from_version": CURRENT,
        "schema_version": CURRENT + 1,
        "applied": [CURRENT + 1],
    }
    with raw(pg_db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM geo_eval.schema_version ORDER BY version")]
        assert versions == [*ALL_VERSIONS, CURRENT + 1]
        assert conn.execute("SELECT note FROM geo_eval.upgrade_probe").fetchall() == [(f"migration {CURRENT + 1}",)]
        assert check_schema(conn) == CURRENT + 1 and schema_status(conn)["up_to_date"]
    store = PostgresStore(pg_db)
    assert [u.name for u in store.list_users()] == ["kept"] and store.status()["schema_version"] == CURRENT + 1
    store.close()
    assert upgrade_schema(pg_db)["action"] == "up_to_date"


def test_a_failing_upgrade_changes_nothing(pg_db, monkeypatch):
    broken = ("CREATE TABLE geo_eval.half_done (id int)", "SELECT * FROM geo_eval.no_such_table")
    monkeypatch.setattr(db_schema, "MIGRATIONS", (*db_schema.MIGRATIONS, broken))
    monkeypatch.setattr(db_schema, "SCHEMA_VERSION", CURRENT + 1)
    with pytest.raises(DatabaseError, match="未做任何改动") as info:
        upgrade_schema(pg_db)
    assert one_line(str(info.value))
    with raw(pg_db) as conn:
        assert conn.execute("SELECT to_regclass('geo_eval.half_done')").fetchone() == (None,)
        assert conn.execute("SELECT max(version) FROM geo_eval.schema_version").fetchone() == (CURRENT,)


def test_a_newer_or_missing_schema_is_refused(pg_db):
    database = shown_url(pg_db)
    with raw(pg_db) as conn:  # as a newer geo-eval's upgrade would leave it
        conn.execute("INSERT INTO geo_eval.schema_version (version, tool_version) VALUES (99, '9.9.9')")
    for attempt in (lambda: PostgresStore(pg_db), lambda: init_schema(pg_db), lambda: upgrade_schema(pg_db)):
        with pytest.raises(SchemaVersionError) as info:
            attempt()
        message = str(info.value)
        assert one_line(message) and "请升级 geo-eval" in message and database in message and "99" in message
    with raw(pg_db) as conn, pytest.raises(SchemaVersionError, match="请升级 geo-eval"):
        check_schema(conn)

    wipe_database(pg_db)
    with pytest.raises(SchemaVersionError) as info:
        PostgresStore(pg_db)
    assert one_line(str(info.value)) and f"geo-eval db init --db {database}" in str(info.value)
    with pytest.raises(SchemaVersionError, match="geo-eval db init"):
        upgrade_schema(pg_db)
    with raw(pg_db) as conn:
        assert schema_status(conn, database=database)["schema_version"] == 0


# --- connection errors --------------------------------------------------------------------------------
def test_an_unreachable_database_is_named_without_its_password(tmp_path):
    url = "postgresql://geo:s3cret-pw@127.0.0.1:1/geo"
    attempts = [
        lambda: connect(url),
        lambda: PostgresStore(url),
        lambda: init_schema(url),
        lambda: upgrade_schema(url),
        lambda: open_store(tmp_path, database_url=url),
    ]
    for attempt in attempts:
        with pytest.raises(DatabaseUnavailableError) as info:
            attempt()
        message = str(info.value)
        assert isinstance(info.value, StorageError) and isinstance(info.value, ConnectionError)
        assert one_line(message) and "s3cret-pw" not in message
        assert message.startswith("无法连接数据库 postgresql://geo:***@127.0.0.1:1/geo：连接被拒绝")
        assert info.value.database == "postgresql://geo:***@127.0.0.1:1/geo"


def test_a_missing_database_and_a_non_url_are_explained(pg_url, tmp_path):
    missing = url_with(pg_url, dbname="geo_eval_no_such_database")
    with pytest.raises(DatabaseUnavailableError, match="数据库不存在") as info:
        PostgresStore(missing)
    assert shown_url(missing) in str(info.value)
    with pytest.raises(StorageError, match="postgresql://") as info2:
        open_store(tmp_path, database_url="host=db password=hunter2")
    assert "hunter2" not in str(info2.value)


@pytest.fixture
def unprivileged(pg_url) -> Iterator[str]:
    """A new database without PostGIS and a role that may connect and create schemas there, but not extensions."""
    name = f"geo_eval_noext_{os.getpid()}"
    password = "noext-pw-7391"
    with raw(pg_url) as admin:
        if not admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            database_unavailable(
                "the PostGIS-missing test creates a role and a database: the test user must be a superuser"
            )
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER PASSWORD {}").format(sql.Identifier(name), sql.Literal(password))
        )
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        admin.execute(sql.SQL("GRANT CONNECT, CREATE ON DATABASE {0} TO {0}").format(sql.Identifier(name)))
    try:
        yield url_with(pg_url, user=name, password=password, dbname=name)
    finally:
        with raw(pg_url) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_without_postgis_init_says_what_to_do_and_changes_nothing(unprivileged):
    # PostGIS is installed on the test server (it cannot be uninstalled here), but it is not a trusted
    # extension: a role that is not a superuser cannot create it, which is the same refusal as a database
    # where the DBA has not run CREATE EXTENSION postgis.
    with pytest.raises(PostGISMissingError) as info:
        init_schema(unprivileged)
    message = str(info.value)
    assert one_line(message) and shown_url(unprivileged) in message and "noext-pw-7391" not in message
    assert "CREATE EXTENSION postgis" in message and "postgresql-15-postgis-3" in message
    with raw(unprivileged) as conn:
        assert conn.execute("SELECT to_regnamespace('geo_eval')").fetchone() == (None,)
        assert schema_status(conn)["postgis_version"] is None
    with pytest.raises(SchemaVersionError, match="geo-eval db init"):
        PostgresStore(unprivileged)
    r = runner.invoke(cli, ["db", "init", "--db", unprivileged])
    assert r.exit_code == 2 and "CREATE EXTENSION postgis" in r.output and "noext-pw-7391" not in r.output


# --- the store on PostgreSQL ----------------------------------------------------------------------------
@pytest.fixture
def pg_store(pg_db) -> Iterator[PostgresStore]:
    s = PostgresStore(pg_db)
    yield s
    s.close()


def test_the_audit_trail_is_append_only_in_postgres(pg_store):
    add_run(pg_store)
    pg_store.set_review(RUN, FLAG, status="confirmed", comment="", version=0, actor="张三")
    with raw(pg_store.url) as conn:
        for statement in (
            "UPDATE geo_eval.audit SET actor = 'x'",
            "DELETE FROM geo_eval.audit",
            "DELETE FROM geo_eval.audit WHERE false",  # refused even when no row matches
            "TRUNCATE geo_eval.audit",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*), min(actor), max(actor) FROM geo_eval.audit").fetchone() == (
            2,
            "t",
            "张三",
        )


class Abort(Exception):
    pass


def write_then_fail(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("INSERT INTO geo_eval.run_files VALUES (%s, 'a.csv', %s, 'x')", (RUN, b"1"))
        raise Abort


def test_the_store_lends_pooled_connections_and_keeps_the_url(pg_store, pg_url):
    assert pg_store.url == pg_url and pg_store.backend == "postgis" and pg_store.database == shown_url(pg_url)
    add_run(pg_store)
    with pg_store.connection() as conn:
        assert conn.autocommit  # writes go in conn.transaction(): all or nothing
        with pytest.raises(Abort):
            write_then_fail(conn)
        with conn.transaction():
            conn.execute("INSERT INTO geo_eval.run_files VALUES (%s, 'b.csv', %s, 'x')", (RUN, b"2"))
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("geo-eval",)
    with raw(pg_store.url) as conn:
        assert conn.execute("SELECT name, content FROM geo_eval.run_files").fetchall() == [("b.csv", b"2")]
    pg_store.close()
    assert pg_store.status()["ok"] and pg_store.status()["runs"] == 1  # usable again after close: a new pool


def test_a_pooled_connection_is_checked_unless_given_back_moments_ago(pg_db, monkeypatch):
    """The pool checks a connection before lending it (an empty query), except one given back within
    RECHECK_IDLE_S from which nothing came: a map's tiles then cost one round trip each instead of two. One
    the server dropped meanwhile is replaced before it is lent, however recently it was given back."""
    from psycopg_pool import ConnectionPool

    from geo_eval.db import store as db_store

    checked: list[int] = []
    real = ConnectionPool.check_connection

    def check(conn: psycopg.Connection) -> None:
        checked.append(conn.info.backend_pid)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", check)
    monkeypatch.setattr(db_store, "RECHECK_IDLE_S", 60.0)
    pg = PostgresStore(pg_db, min_size=1, max_size=1)
    try:
        with pg.connection() as conn:
            pid = conn.info.backend_pid
        first = len(checked)
        for _ in range(3):  # given back moments ago: lent as it is
            with pg.connection() as conn:
                assert conn.info.backend_pid == pid
        assert len(checked) == first
        with raw(pg_db) as admin:  # the server drops the connection between two uses
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)
        with pg.connection() as conn:  # checked (it had input), found gone: a new one is lent
            new = conn.info.backend_pid
            assert new != pid and conn.execute("SELECT 1").fetchone() == (1,)
        assert pid in checked[first:]
        monkeypatch.setattr(db_store, "RECHECK_IDLE_S", 0.0)  # idle "longer": checked
        before = len(checked)
        with pg.connection() as conn:
            assert conn.info.backend_pid == new
        assert checked[before:] == [new]
    finally:
        pg.close()


def test_first_reviews_racing_an_uncommitted_one_conflict(pg_store):
    """The INSERT … ON CONFLICT DO NOTHING path: our first review waits for theirs, then loses to it."""
    add_run(pg_store)
    with raw(pg_store.url) as theirs:
        theirs.execute("BEGIN")
        theirs.execute(
            "INSERT INTO geo_eval.reviews VALUES (%s, %s, 'confirmed', '属实', 1, '李四', '2025-01-01T00:00:00.000Z')",
            (RUN, FLAG),
        )
        outcome = ours_waiting_for(pg_store, theirs, version=0, actor="张三")
    assert isinstance(outcome, ConflictError)
    assert outcome.current.updated_by == "李四" and outcome.current.version == 1
    assert pg_store.get_review(RUN, FLAG).status == "confirmed"
    assert pg_store.history(RUN, FLAG) == []  # our attempt left no trace; theirs was written past the store


def test_an_update_racing_a_locked_review_waits_and_conflicts(pg_store):
    """The SELECT … FOR UPDATE path: our update from version 1 waits for theirs (to 2), then conflicts."""
    add_run(pg_store)
    pg_store.set_review(RUN, FLAG, status="confirmed", comment="", version=0, actor="张三")
    with raw(pg_store.url) as theirs:
        theirs.execute("BEGIN")
        theirs.execute("SELECT * FROM geo_eval.reviews WHERE run_id = %s AND flag_id = %s FOR UPDATE", (RUN, FLAG))
        theirs.execute(
            "UPDATE geo_eval.reviews SET version = 2, status = 'site_visit', updated_by = '李四' "
            "WHERE run_id = %s AND flag_id = %s",
            (RUN, FLAG),
        )
        outcome = ours_waiting_for(pg_store, theirs, version=1, actor="王五")
    assert isinstance(outcome, ConflictError)
    assert (outcome.current.version, outcome.current.updated_by) == (2, "李四")
    assert pg_store.get_review(RUN, FLAG).status == "site_visit"
    assert len(pg_store.history(RUN, FLAG)) == 1


def ours_waiting_for(pg_store, theirs, *, version: int, actor: str) -> object:
    """Our review (dismissed from ``version``) set in a thread while ``theirs`` holds the row's lock in an open
    transaction: it must wait for them; once they commit, what it returned or raised."""
    outcome: list[object] = []

    def ours() -> None:
        try:
            outcome.append(
                pg_store.set_review(RUN, FLAG, status="dismissed", comment="误报", version=version, actor=actor)
            )
        except ConflictError as exc:
            outcome.append(exc)

    t = threading.Thread(target=ours)
    t.start()
    wait_for_lock_wait(pg_store.url, theirs.info.backend_pid)
    assert outcome == []  # still waiting for their transaction
    theirs.execute("COMMIT")
    t.join(10)
    assert len(outcome) == 1
    return outcome[0]


def wait_for_lock_wait(url: str, pid: int, timeout_s: float = 10.0) -> None:
    """Until another backend waits for a lock held by the backend ``pid``."""
    deadline = time.monotonic() + timeout_s
    query = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
    with raw(url) as probe:
        while probe.execute(query, (pid,)).fetchone() == (0,):
            assert time.monotonic() < deadline, "the store's transaction never waited for the lock"
            time.sleep(0.02)


def race(stores: list[PostgresStore], version: int) -> list[tuple[str, str]]:
    """Each store saves the review from ``version`` at the same moment: ("ok", who) or ("conflict", who won)."""
    barrier = threading.Barrier(len(stores))
    results: list[tuple[str, str]] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            stores[i].set_review(RUN, FLAG, status="site_visit", comment=f"{i}", version=version, actor=f"r{i}")
            results.append(("ok", f"r{i}"))
        except ConflictError as exc:
            results.append(("conflict", exc.current.updated_by))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_reviewers_on_two_connections_one_wins_each_round(pg_store):
    add_run(pg_store)
    stores = [PostgresStore(pg_store.url), PostgresStore(pg_store.url)]  # like two service processes
    try:
        for version in (0, 1):  # the first review (INSERT) and a later one (UPDATE)
            results = race(stores, version)
            assert sorted(r[0] for r in results) == ["conflict", "ok"]
            winner = next(who for what, who in results if what == "ok")
            assert next(who for what, who in results if what == "conflict") == winner  # the loser is shown who won
            review = pg_store.get_review(RUN, FLAG)
            assert review.version == version + 1 and review.updated_by == winner
        history = pg_store.history(RUN, FLAG)
        assert [e.after["version"] for e in history] == [1, 2]
        assert [e.before["version"] for e in history] == [0, 1]
    finally:
        for s in stores:
            s.close()


def test_no_lost_update_under_a_stress_of_retried_increments(pg_store):
    add_run(pg_store)
    per_thread = 50
    stores = [PostgresStore(pg_store.url), PostgresStore(pg_store.url)]
    conflicts = [0, 0]

    def increment(i: int) -> None:
        done = 0
        while done < per_thread:
            v = stores[i].get_review(RUN, FLAG).version
            try:
                stores[i].set_review(RUN, FLAG, status="confirmed", comment=f"{i}:{done}", version=v, actor=f"r{i}")
                done += 1
            except ConflictError:
                conflicts[i] += 1

    try:
        threads = [threading.Thread(target=increment, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
    finally:
        for s in stores:
            s.close()
    assert pg_store.get_review(RUN, FLAG).version == 2 * per_thread
    history = pg_store.history(RUN, FLAG)
    assert len(history) == 2 * per_thread
    assert [e.after["version"] for e in history] == list(range(1, 2 * per_thread + 1))  # one step each, in order
    assert sorted(e.after["comment"] for e in history) == sorted(
        f"{i}:{d}" for i in range(2) for d in range(per_thread)
    )


# --- the database going away ----------------------------------------------------------------------------
class Relay:
    """A TCP relay from 127.0.0.1:<port> to the test database server, to take the database 'down' and back."""

    def __init__(self, target: tuple[str, int], port: int = 0) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.05)
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pipe, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a stopped server does."""
        self.stopping.set()
        self.threads[0].join(5)
        self.listener.close()
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in self.threads[1:]:
            t.join(5)
        for s in sockets:
            s.close()


@pytest.fixture
def relayed(pg_db) -> Iterator[tuple[str, Relay]]:
    """The test database through a relay: its URL and the relay (stopped at the end if still running)."""
    parts = urlsplit(pg_db)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    userinfo, at, _ = parts.netloc.rpartition("@")
    url = urlunsplit((parts.scheme, f"{userinfo}{at}127.0.0.1:{relay.port}", parts.path, parts.query, ""))
    yield url, relay
    relay.stop()


def test_the_store_reports_a_database_that_went_away_and_recovers(relayed):
    url, relay = relayed
    store = PostgresStore(url, timeout=1.0)
    try:
        assert store.status()["ok"]
        relay.stop()
        with pytest.raises(DatabaseUnavailableError) as info:
            store.status()
        assert one_line(str(info.value)) and shown_url(url) in str(info.value) and "连接被拒绝" in str(info.value)
        with pytest.raises(DatabaseUnavailableError):
            store.set_review(RUN, FLAG, status="confirmed", comment="", version=0, actor="a")
        back = Relay(relay.target, port=relay.port)  # the database is back on the same address
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert store.status()["ok"]
                    break
                except DatabaseUnavailableError:
                    assert time.monotonic() < deadline, "the store did not reconnect"
                    time.sleep(0.2)
        finally:
            back.stop()
    finally:
        store.close()


# --- the service ---------------------------------------------------------------------------------------
def test_health_reports_the_database_from_the_environment(password_url, tmp_path, monkeypatch):
    url, password, shown = password_url
    store = PostgresStore(url)
    _, token = store.add_user("rev", "reviewer", actor="test")
    store.close()
    monkeypatch.setenv("GEO_EVAL_DATABASE_URL", url)
    monkeypatch.setenv("GEO_EVAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GEO_EVAL_SECRET_KEY", SECRET)
    with TestClient(create_app_from_env()) as client:
        r = client.get("/health")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok" and body["runs"] == 0
        storage = body["storage"]
        assert storage["backend"] == "postgis" and storage["ok"] is True
        assert storage["database"] == shown and storage["schema_version"] == CURRENT
        assert storage["postgis_version"].startswith("3.") and password not in r.text
        me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["user"]["name"] == "rev"
    assert not (tmp_path / "geo-eval.sqlite3").exists()  # nothing went to SQLite


def test_health_is_503_naming_the_database_when_it_is_down(relayed, tmp_path):
    url, relay = relayed
    store = PostgresStore(url, timeout=1.0)
    app = create_app(Settings(data_dir=tmp_path, secret_key=SECRET, database_url=url), store=store)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        relay.stop()
        r = client.get("/health")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "error" and body["storage"]["ok"] is False
    assert body["storage"]["backend"] == "postgis" and body["storage"]["database"] == shown_url(url)
    assert body["storage"]["error"].startswith(f"无法连接数据库 {shown_url(url)}")


def test_settings_refuse_a_database_address_that_is_not_a_url(tmp_path):
    with pytest.raises(ValidationError) as info:
        Settings(data_dir=tmp_path, secret_key=SECRET, database_url="host=db password=hunter2")
    assert "GEO_EVAL_DATABASE_URL" in str(info.value) and "hunter2" not in str(info.value)
    assert Settings(data_dir=tmp_path, secret_key=SECRET, database_url="").database() is None


# --- the command line ----------------------------------------------------------------------------------
def test_db_init_upgrade_and_status(pg_url):
    wipe_database(pg_url)
    database = shown_url(pg_url)
    r = runner.invoke(cli, ["db", "status", "--db", pg_url])
    assert r.exit_code == 2 and "未创建" in r.output and "geo-eval db init" in r.output
    r = runner.invoke(cli, ["db", "init", "--db", pg_url])
    assert r.exit_code == 0, r.output
    assert f"已创建数据库结构 geo_eval（版本 {CURRENT}）：{database}" in r.output
    r = runner.invoke(cli, ["db", "init"], env={"GEO_EVAL_DATABASE_URL": pg_url})
    assert r.exit_code == 0 and "已是最新版本" in r.output and "未做改动" in r.output
    r = runner.invoke(cli, ["db", "upgrade", "--db", pg_url])
    assert r.exit_code == 0 and f"已是最新版本（版本 {CURRENT}）" in r.output
    r = runner.invoke(cli, ["db", "status", "--db", pg_url])
    assert r.exit_code == 0, r.output
    assert (
        database in r.output and "PostGIS：3." in r.output and f"版本 {CURRENT}（本程序需要版本 {CURRENT}）" in r.output
    )
    assert "状态：正常" in r.output


def test_db_commands_refuse_a_bad_database_in_one_chinese_line():
    for command in ("init", "upgrade", "status"):
        r = runner.invoke(cli, ["db", command, "--db", "postgresql://geo:s3cret-pw@127.0.0.1:1/geo"])
        assert r.exit_code == 2
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("错误：无法连接数据库 postgresql://geo:***@127.0.0.1:1/geo")
        assert "s3cret-pw" not in r.output
    r = runner.invoke(cli, ["db", "init"], env={"GEO_EVAL_DATABASE_URL": ""})
    assert r.exit_code == 2 and "--db" in r.output and len(r.output.strip().splitlines()) == 1


def test_runs_and_users_commands_use_the_database(password_url, tmp_path):
    pg_db, password, shown = password_url
    data = tmp_path / "data"
    out = evaluated_out_dir(tmp_path / "run")
    r = runner.invoke(cli, ["runs", "add", str(out), "--db", pg_db, "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    run_id = r.output.strip().splitlines()[-1]
    r = runner.invoke(
        cli, ["users", "add", "管委会", "--role", "committee", "--park", "甲园"], env={"GEO_EVAL_DATABASE_URL": pg_db}
    )
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    store = PostgresStore(pg_db)
    try:
        assert store.latest_run().run_id == run_id and store.authenticate(token).parks == ("甲园",)
        assert store.latest_run().counts["enterprises"] == len(catalogue.enterprises())
        r = runner.invoke(cli, ["runs", "list", "--db", pg_db], env={"COLUMNS": "300"})
        assert r.exit_code == 0 and run_id in r.output and shown in r.output and password not in r.output
        r = runner.invoke(cli, ["users", "token", "管委会", "--db", pg_db])
        assert r.exit_code == 0 and store.authenticate(token) is None
        assert store.authenticate(r.output.strip().splitlines()[-1]).name == "管委会"
        r = runner.invoke(cli, ["users", "list", "--db", pg_db], env={"COLUMNS": "300"})
        assert r.exit_code == 0 and "管委会" in r.output and shown in r.output and password not in r.output
        assert runner.invoke(cli, ["users", "remove", "管委会", "--db", pg_db]).exit_code == 0
        assert store.list_users() == []
    finally:
        store.close()
    assert not data.exists()  # the SQLite data directory was never touched
    r = runner.invoke(cli, ["users", "list", "--db", "postgresql://geo:s3cret-pw@127.0.0.1:1/geo"])
    assert r.exit_code == 2 and "无法连接数据库" in r.output and "s3cret-pw" not in r.output


def test_serve_with_db_uses_the_database_and_never_shows_its_password(password_url, tmp_path):
    pg_db, password, shown = password_url
    env = {k: v for k, v in os.environ.items() if k != "GEO_EVAL_DATABASE_URL"}
    env |= {"GEO_EVAL_SECRET_KEY": SECRET, "GEO_EVAL_DEMO": "0"}
    log = tmp_path / "serve.log"
    with serving(env, log, args=["--db", pg_db, "--data-dir", str(tmp_path)]) as url:
        r = httpx.get(f"{url}/health", timeout=1)
        assert r.status_code == 200
        assert r.json()["storage"]["backend"] == "postgis" and r.json()["storage"]["database"] == shown
        assert password not in r.text
    output = log.read_text()
    assert f"数据库：{shown}" in output
    assert password not in output


def test_serve_refuses_a_database_without_the_schema(pg_url, tmp_path):
    wipe_database(pg_url)
    before = os.environ.get("GEO_EVAL_DATABASE_URL")
    # serve hands --db and --data-dir to the app factory through os.environ: listed here, the runner restores them
    env = {
        "GEO_EVAL_SECRET_KEY": SECRET,
        "GEO_EVAL_DEMO": "0",
        "GEO_EVAL_DATABASE_URL": None,
        "GEO_EVAL_DATA_DIR": None,
    }
    r = runner.invoke(cli, ["serve", "--port", "1", "--db", pg_url, "--data-dir", str(tmp_path)], env=env)
    assert r.exit_code == 2 and "geo-eval db init" in r.output
    assert os.environ.get("GEO_EVAL_DATABASE_URL") == before  # nothing leaks into the next tests
