"""The PostgreSQL/PostGIS store: :class:`~geo_eval.storage.base.Store` on the ``geo_eval`` schema of a database.

The rules are :class:`~geo_eval.storage.sql.SQLStore`'s, the same code as SQLite's; this module gives
them PostgreSQL's SQL (:class:`PostGISDialect`) and a connection pool. What that SQL adds to the same
guarantees:

- every write is one transaction (``conn.transaction()``), committed when the method returns;
- :meth:`PostgresStore.set_review` is a compare-and-set on ``version`` that cannot lose an update: the
  review row is locked (``SELECT … FOR UPDATE``) before its version is compared, and a first review
  is an ``INSERT … ON CONFLICT DO NOTHING`` whose row count tells whether this transaction won;
- registering runs and saving users lock their table against other writers (readers never wait), so
  ``seq`` numbers and "already exists" answers are the same as with one SQLite writer at a time;
- the audit trail is append-only (a trigger refuses UPDATE, DELETE and TRUNCATE).

The store does not create its schema (``geo-eval db init`` does): it refuses a database whose schema is
not at :data:`~geo_eval.db.schema.SCHEMA_VERSION` (:class:`~geo_eval.db.errors.SchemaVersionError`).
Connections come from a small :class:`psycopg_pool.ConnectionPool` (autocommit, checked when lent),
so the store is safe to share between threads."""

from __future__ import annotations

import contextlib
import hashlib
import io
import select
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from geo_eval.db.connection import APPLICATION_NAME, CONNECT_TIMEOUT_S, connect, redact_url, unavailable
from geo_eval.db.errors import DatabaseError, DatabaseUnavailableError, first_line
from geo_eval.db.schema import check_schema, postgis_version
from geo_eval.storage.base import RunRecord
from geo_eval.storage.runs import flag_prints
from geo_eval.storage.sql import Dialect, Row, SQLStore, Tx

POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 8
POOL_TIMEOUT_S = 10.0
RECHECK_IDLE_S = 2.0
"""A pooled connection given back less than this long ago is lent without the pool's check (an empty query:
one more round trip for each use, about a fifth of a map tile's time under load in PostGIS mode) when nothing
came from the server since (a closed connection is readable at once: :func:`_has_input`); one idle longer,
or with input, is checked first, so that a connection the server dropped meanwhile is replaced before it is
lent."""


class PostGISDialect(Dialect):
    """PostgreSQL's SQL for :class:`~geo_eval.storage.sql.SQLStore` on the ``geo_eval`` schema.

    ``%s`` placeholders, ``jsonb`` and ``text[]``, rows locked ``FOR UPDATE`` and tables locked against
    other writers (readers never wait), ``COPY`` for bulk inserts, ``= ANY(array)`` for lists of keys,
    byte-order names (``COLLATE "C"``, as SQLite orders them), and the results of runs published with
    ``evaluate --db``: their flags' digests in their ``flags`` rows, ``stored_at`` and ``srid``.

    >>> POSTGIS.sql("SELECT * FROM {t}users WHERE role = ? ORDER BY name{binary}")
    'SELECT * FROM geo_eval.users WHERE role = %s ORDER BY name COLLATE "C"'
    >>> list(POSTGIS.key_lists("flag_id", ["a", "b"]))
    [('flag_id = ANY(?)', [['a', 'b']])]
    """

    name = "postgis"
    placeholder = "%s"
    tokens: ClassVar[Mapping[str, str]] = {
        "t": "geo_eval.",
        "binary": ' COLLATE "C"',
        "flag_digest": "coalesce(f.digest, g.digest)",
        "published_flags": " LEFT JOIN geo_eval.flags g ON g.run_id = r.run_id AND g.flag_id = r.flag_id",
    }

    def json_param(self, value: Mapping[str, Any] | None) -> Jsonb | None:
        return None if value is None else Jsonb(value)

    def json_value(self, raw: Any) -> Any:
        return raw

    def list_param(self, values: Sequence[str]) -> list[str]:
        return list(values)

    def list_value(self, raw: Any) -> tuple[str, ...]:
        return tuple(raw)

    def lock_table(self, tx: Tx, table: str) -> None:
        tx.run(f"LOCK TABLE {{t}}{table} IN SHARE ROW EXCLUSIVE MODE")

    def for_update(self, alias: str = "") -> str:
        return f" FOR UPDATE OF {alias}" if alias else " FOR UPDATE"

    def insert_rows(self, tx: Tx, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        with tx.cursor.copy(f"COPY geo_eval.{table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def key_lists(self, column: str, keys: Sequence[str]) -> Iterator[tuple[str, Sequence[Any]]]:
        yield f"{column} = ANY(?)", [list(keys)]

    def run_results(self, row: Row) -> dict[str, Any]:
        return {"stored_at": row["stored_at"] or "", "srid": row["srid"]}

    def after_register(self, tx: Tx, rec: RunRecord, row: Row | None, *, digests_in_flags: bool) -> RunRecord:
        """Keep the results of a run registered again; but when registered from files that are not the ones
        published (another manifest), serve the files, not the stale rows (``stored_at`` cleared)."""
        if row is None:
            return rec
        stored_at = row["stored_at"] or ""
        if stored_at and not digests_in_flags and rec.manifest_sha256 != row["manifest_sha256"]:
            tx.run("UPDATE {t}runs SET stored_at = NULL WHERE run_id = ?", (rec.run_id,))
            stored_at = ""
        return replace(rec, stored_at=stored_at, srid=row["srid"])

    def stored_contents(self, tx: Tx, run: Row) -> tuple[str, dict[str, str]] | None:
        """From a published run's ``run_files`` (its manifest) and ``flags`` rows (None if not published)."""
        if not run["stored_at"]:
            return None
        found = tx.one("SELECT content FROM {t}run_files WHERE run_id = ? AND name = 'manifest.json'", (run["run_id"],))
        if found is None:
            return None
        sha = hashlib.sha256(bytes(found["content"])).hexdigest()
        names = ((run["columns"] or {}).get("flags") or {}).get("columns")
        if not names:  # a run without flags
            return sha, {}
        rows = tx.all("SELECT row_csv FROM {t}flags WHERE run_id = ? ORDER BY row_no", (run["run_id"],))
        data = "\n".join([",".join(names), *(r["row_csv"] for r in rows)]).encode("utf-8")
        return sha, flag_prints(io.BytesIO(data))


POSTGIS = PostGISDialect()


def _has_input(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server sent something to an idle connection: it closed it (a restart, a terminated
    backend, a proxy gone), or a notice came; a system call, no round trip."""
    try:
        poller = select.poll()  # not select.select: a worker's sockets may be numbered past its 1024 limit
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return True


def register_run(
    cur: psycopg.Cursor[DictRow], record: RunRecord, *, actor: str, digests_in_flags: bool = False
) -> RunRecord:
    """Register (or re-register) a run inside the caller's transaction (a cursor with dict rows); it
    becomes the latest.

    Used by the publisher (:mod:`geo_eval.db.publish`), which stores a run's results in the same
    transaction and puts the flags' digests in their ``flags`` rows (``digests_in_flags``). The rules
    are :meth:`PostgresStore.add_run`'s (:class:`~geo_eval.storage.sql.SQLStore`); results columns
    (``stored_at``, ``srid``, ``manifest``, ``columns``) are left as they are.
    """
    return PostgresStore._register(Tx(cur, POSTGIS), record, actor=actor, digests_in_flags=digests_in_flags)


class PostgresStore(SQLStore):
    """:class:`~geo_eval.storage.base.Store` on a PostgreSQL database with the ``geo_eval`` schema.

    ``url`` is a libpq URL (``postgresql://user[:password]@host:port/dbname``); :attr:`url` keeps it for
    code that opens its own connections, :attr:`database` is its redacted form for messages.
    """

    backend = "postgis"
    dialect = POSTGIS

    def __init__(
        self,
        url: str,
        *,
        min_size: int = POOL_MIN_SIZE,
        max_size: int = POOL_MAX_SIZE,
        timeout: float = POOL_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.url = str(url).strip()
        self.database = redact_url(self.url)
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._pool_lock = threading.Lock()
        self._given_back: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()
        self._given_back_lock = threading.Lock()
        with connect(self.url, autocommit=True) as conn:  # reachable, and the schema this tool knows
            check_schema(conn, database=self.database)

    def __repr__(self) -> str:
        return f"PostgresStore({self.database!r})"

    # connections -----------------------------------------------------------------------------------
    def _get_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        with self._pool_lock:
            if self._pool is None:
                pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                    self.url,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    timeout=self._timeout,
                    kwargs={
                        "autocommit": True,
                        "connect_timeout": CONNECT_TIMEOUT_S,
                        "application_name": APPLICATION_NAME,
                    },
                    check=self._check,
                    name="geo-eval",
                    open=False,
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check of a connection before lending it, unless it was given back moments ago."""
        with self._given_back_lock:
            at = self._given_back.get(conn)
        if at is None or time.monotonic() - at > RECHECK_IDLE_S or _has_input(conn):
            ConnectionPool.check_connection(conn)

    def _unreachable(self) -> DatabaseUnavailableError:
        """Why no pooled connection could be had: the database's own answer, else a busy pool."""
        try:
            conn = connect(self.url, autocommit=True)
        except DatabaseUnavailableError as exc:
            return exc
        conn.close()
        return DatabaseUnavailableError(
            f"数据库 {self.database} 繁忙：{self._timeout:g} 秒内未能从连接池（最多 {self._max_size} 个连接）"
            "取得连接，请稍后重试",
            database=self.database,
        )

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend a pooled connection for the block (autocommit: wrap writes in ``conn.transaction()``).

        Raises :class:`~geo_eval.db.errors.DatabaseUnavailableError` when none can be had in time.
        """
        pool = self._get_pool()
        try:
            conn = pool.getconn()
        except PoolTimeout as exc:
            raise self._unreachable() from exc
        try:
            with conn:  # a pooled connection is not closed here, only its transaction ended
                yield conn
        finally:
            with self._given_back_lock:
                self._given_back[conn] = time.monotonic()
            pool.putconn(conn)

    def close(self) -> None:
        """Close the pool (the store opens a new one when used again)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """A cursor with dict rows, outside any transaction (autocommit: one statement at a time)."""
        try:
            with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except psycopg.OperationalError as exc:
            raise unavailable(self.url, exc) from exc
        except psycopg.Error as exc:
            raise DatabaseError(f"读取数据库 {self.database} 失败：{first_line(exc)}", database=self.database) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """One write transaction (a cursor with dict rows): committed when the block ends, rolled back on
        any exception, database errors turned into :class:`~geo_eval.db.errors.DatabaseError`."""
        try:
            with self.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except psycopg.OperationalError as exc:
            raise unavailable(self.url, exc) from exc
        except psycopg.Error as exc:
            raise DatabaseError(
                f"写入数据库 {self.database} 失败（未保存任何改动）：{first_line(exc)}", database=self.database
            ) from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[Tx]:
        with self._cursor() as cur:
            yield Tx(cur, POSTGIS)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Tx]:
        with self.transaction() as cur:
            yield Tx(cur, POSTGIS)

    def _describe(self, tx: Tx) -> dict[str, Any]:
        conn = tx.cursor.connection
        version = check_schema(conn, database=self.database)
        return {"database": self.database, "postgis_version": postgis_version(conn), "schema_version": version}
