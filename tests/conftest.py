"""Shared fixtures: the hand-made catalogue (tests/catalogue.py) as frames and as a dataset directory; the
PostgreSQL test database (see the comment above ``pg_url``); an empty store of each backend (``store``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# rich lays the CLI's tables out for a terminal this wide, with or without one (xdist's workers have none)
os.environ.setdefault("COLUMNS", "200")

import catalogue

if TYPE_CHECKING:
    from geo_eval.storage import Store


@pytest.fixture
def catalogue_dir(tmp_path: Path) -> Path:
    """The catalogue written as a dataset directory (GeoPackage + csv)."""
    return catalogue.write_dataset(tmp_path / "dataset")


SAMPLE = Path(__file__).resolve().parents[1] / "sample_parcels"


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """OUT_DIRs of ``geo-eval evaluate`` on the sample (default scheme): 2024, then 2025 with ``--previous``."""
    from typer.testing import CliRunner

    from geo_eval.cli import app

    base = tmp_path_factory.mktemp("sample")
    runner = CliRunner()
    r = runner.invoke(app, ["evaluate", str(SAMPLE / "2024"), "--out", str(base / "2024")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["evaluate", str(SAMPLE / "2025"), "--out", str(base / "2025"), "--previous", str(base / "2024")]
    )
    assert r.exit_code == 0, r.output
    return {2024: base / "2024", 2025: base / "2025"}


# PostgreSQL/PostGIS ----------------------------------------------------------------------------------
# The database tests run against the database named by GEO_EVAL_TEST_DATABASE_URL. Its schema geo_eval is
# WIPED (dropped and created anew) before every test that uses `pg_db`: give a throwaway database, never
# one with data you want (`.ci/run` creates one per run). Without that variable (or with the database
# unreachable) those tests are skipped, unless GEO_EVAL_REQUIRE_DB=1 (CI), where they fail instead.
TEST_DATABASE_ENV = "GEO_EVAL_TEST_DATABASE_URL"
REQUIRE_DATABASE_ENV = "GEO_EVAL_REQUIRE_DB"


def database_unavailable(reason: str) -> NoReturn:
    """Skip a database test, or fail it when the database tests are required (GEO_EVAL_REQUIRE_DB=1)."""
    if os.environ.get(REQUIRE_DATABASE_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_DATABASE_ENV}=1 requires the PostgreSQL tests to run", pytrace=False)
    pytest.skip(
        f"{reason}; to run the PostgreSQL/PostGIS tests set {TEST_DATABASE_ENV}="
        "postgresql://postgres@127.0.0.1:5432/<throwaway database> (its schema geo_eval is wiped by the tests)"
    )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The URL of the test database (reachable), from GEO_EVAL_TEST_DATABASE_URL.

    Under pytest-xdist (``make test`` runs two workers) each worker gets a database of its own beside the
    given one, named after it and the worker (``<name>_gw0``), dropped when the worker ends.
    """
    from geo_eval.db import DatabaseUnavailableError, connect

    url = os.environ.get(TEST_DATABASE_ENV, "").strip()
    if not url:
        database_unavailable(f"{TEST_DATABASE_ENV} is not set")
    try:
        connect(url, autocommit=True).close()
    except DatabaseUnavailableError as exc:
        database_unavailable(f"the test database is unreachable: {exc}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        yield url
        return
    own = worker_database(url, worker)
    try:
        yield own
    finally:
        drop_database(url, own)


def worker_database(url: str, worker: str) -> str:
    """A fresh, empty database beside ``url``'s for one xdist worker (as ``.ci/run`` makes one); its URL."""
    from psycopg import sql

    from geo_eval.db import connect

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_{worker}"
    with connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def drop_database(url: str, own: str) -> None:
    """Drop a worker's database (``own``) through the given one (``url``)."""
    from psycopg import sql

    from geo_eval.db import connect

    with connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(urlsplit(own).path.lstrip("/")))
        )


def shown_url(url: str) -> str:
    """``url`` as geo-eval must show it in messages and status: a password in the user part replaced by
    ``***`` (written here with urllib, not with geo_eval's redact_url, so that the tests can catch it)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def wipe_database(url: str) -> None:
    """Drop the schema geo_eval (every table, row and function of geo-eval) of the test database."""
    from geo_eval.db import connect

    with connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS geo_eval CASCADE")


@pytest.fixture
def pg_db(pg_url: str) -> str:
    """The test database with a fresh geo_eval schema at the current version (the previous one is wiped)."""
    from geo_eval.db import init_schema

    wipe_database(pg_url)
    init_schema(pg_url)
    return pg_url


@pytest.fixture(params=["sqlite", "postgis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new, empty store of each backend (``test_safe_outputs.py`` has its own ``store``)."""
    from geo_eval.db import PostgresStore
    from geo_eval.storage import SQLiteStore

    s: SQLiteStore | PostgresStore
    if request.param == "sqlite":
        s = SQLiteStore.in_dir(tmp_path / "data")
    else:
        s = PostgresStore(request.getfixturevalue("pg_db"))
    yield s
    s.close()
