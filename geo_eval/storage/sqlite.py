"""The embedded store: one SQLite database under the data directory (``GEO_EVAL_DATA_DIR``).

Durability: the database runs in WAL mode with ``synchronous=FULL``, every write is a single
``BEGIN IMMEDIATE … COMMIT`` transaction, so a crash (killed process, power loss) mid-write rolls back
that write only and loses nothing committed before it. Writers queue on SQLite's lock
(``busy_timeout``); readers never block. Each thread has its own connection, so the store is safe to share
between threads (the service's worker threads).

The rules (users, runs, reviews, audit) are :class:`~geo_eval.storage.sql.SQLStore`'s, the same code as
PostgreSQL's; this module gives them SQLite's SQL (:class:`SQLiteDialect`), its connections and its
migrations (:data:`MIGRATIONS`, applied when the store opens; the version is ``PRAGMA user_version``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from geo_eval.storage.common import MAX_COMMENT, MAX_NAME, now
from geo_eval.storage.errors import StorageError
from geo_eval.storage.publication_sql import NUMBER_VERSIONS, RUN_STATUS_TEXT_COLUMNS
from geo_eval.storage.sql import Dialect, SQLStore, Tx, fill_in_contents

log = logging.getLogger(__name__)

DB_NAME = "geo-eval.sqlite3"
BUSY_TIMEOUT_S = 15.0
# now, MAX_NAME and MAX_COMMENT live in geo_eval.storage.common (shared with the PostGIS store); re-exported
__all__ = [
    "DB_NAME",
    "MAX_COMMENT",
    "MAX_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SQLITE",
    "SQLiteDialect",
    "SQLiteStore",
    "now",
]

# Each entry moves the schema one version up; never edit a released entry, append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('reviewer', 'committee', 'admin')),
            parks TEXT NOT NULL DEFAULT '[]',
            token_id TEXT NOT NULL UNIQUE,
            token_hash TEXT NOT NULL,
            created TEXT NOT NULL
        )""",
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            year INTEGER NOT NULL,
            scheme TEXT NOT NULL,
            scheme_title TEXT NOT NULL,
            out_dir TEXT NOT NULL,
            counts TEXT NOT NULL,
            registered_at TEXT NOT NULL,
            registered_by TEXT NOT NULL,
            seq INTEGER NOT NULL UNIQUE
        )""",
        """CREATE TABLE reviews (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            flag_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'dismissed', 'site_visit')),
            comment TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL CHECK (version >= 1),
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (run_id, flag_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            entity TEXT NOT NULL,
            run_id TEXT,
            before TEXT,
            after TEXT
        )""",
        "CREATE INDEX audit_by_entity ON audit (run_id, entity, id)",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    ),
    # 2: server-side sign-out (the generation of a user's browser sessions)
    ("ALTER TABLE users ADD COLUMN session_gen INTEGER NOT NULL DEFAULT 0",),
    (  # 3: a run's identity follows its content; reviews carry over only to identical flags
        "ALTER TABLE runs ADD COLUMN manifest_sha256 TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE run_flags (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            flag_id TEXT NOT NULL,
            digest TEXT NOT NULL,
            PRIMARY KEY (run_id, flag_id)
        ) WITHOUT ROWID""",
    ),
    (  # 4: publication (草稿 → 公示中 → 已发布, versions of a year) and objections
        "ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'draft' "
        "CHECK (status IN ('draft', 'publicity', 'final'))",
        "ALTER TABLE runs ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
        *(f"ALTER TABLE runs ADD COLUMN {c} TEXT NOT NULL DEFAULT ''" for c in RUN_STATUS_TEXT_COLUMNS),
        NUMBER_VERSIONS.format(t=""),
        "ALTER TABLE reviews ADD COLUMN carried_from TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE objections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            year INTEGER NOT NULL,
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            park TEXT NOT NULL,
            uscc TEXT NOT NULL,
            parcel_id TEXT NOT NULL,
            enterprise TEXT NOT NULL,
            field TEXT NOT NULL,
            run_value TEXT NOT NULL,
            claimed_value TEXT NOT NULL,
            reason TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('open', 'accepted', 'rejected')),
            corrected_value TEXT NOT NULL DEFAULT '',
            decision_reason TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL CHECK (version >= 1),
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            decided_by TEXT NOT NULL DEFAULT '',
            decided_at TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX objections_by_year ON objections (year, id)",
        """CREATE TABLE objection_files (
            objection_id INTEGER NOT NULL REFERENCES objections (id),
            file_no INTEGER NOT NULL,
            name TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            content BLOB NOT NULL,
            uploaded_by TEXT NOT NULL,
            uploaded_at TEXT NOT NULL,
            PRIMARY KEY (objection_id, file_no)
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class SQLiteDialect(Dialect):
    """SQLite's SQL for :class:`~geo_eval.storage.sql.SQLStore`: lists and JSON as JSON text, no row locks
    (a write transaction, ``BEGIN IMMEDIATE``, holds the whole database), ``IN`` lists of at most 500 keys
    (the bound-parameter limit), ``executemany`` for bulk inserts.

    >>> SQLITE.sql("SELECT * FROM {t}users WHERE role = ? ORDER BY name{binary}")
    'SELECT * FROM users WHERE role = ? ORDER BY name'
    """

    name = "sqlite"

    def json_param(self, value: Mapping[str, Any] | None) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def json_value(self, raw: Any) -> Any:
        return None if raw is None else json.loads(raw)

    def list_param(self, values: Sequence[str]) -> str:
        return json.dumps(list(values), ensure_ascii=False)

    def list_value(self, raw: Any) -> tuple[str, ...]:
        return tuple(json.loads(raw))


SQLITE = SQLiteDialect()


class SQLiteStore(SQLStore):
    """:class:`~geo_eval.storage.base.Store` on one SQLite file (the rules: :class:`~geo_eval.storage.sql.SQLStore`)."""

    backend = "sqlite"
    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"无法创建数据目录 {self.path.parent}：{exc}") from exc
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._migrate()

    @classmethod
    def in_dir(cls, data_dir: Path) -> SQLiteStore:
        """The store of a data directory (created if missing)."""
        return cls(Path(data_dir) / DB_NAME)

    # connections -----------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (opened once per thread, autocommit; transactions are explicit)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise StorageError(f"无法打开数据库 {self.path}：{exc}") from exc
        self._local.conn = conn
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def close(self) -> None:
        """Close the connections of every thread (the store reopens them when used again)."""
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Tx]:
        conn = self._connect()
        try:
            yield Tx(conn.cursor(), SQLITE)
        except sqlite3.Error as exc:
            raise StorageError(f"读取数据库失败：{exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[Tx]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield Tx(conn.cursor(), SQLITE)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"写入数据库失败（未保存任何改动）：{exc}") from exc
            raise

    def _describe(self, tx: Tx) -> dict[str, Any]:
        return {
            "journal_mode": str(tx.all("PRAGMA journal_mode")[0][0]),
            "schema_version": int(tx.all("PRAGMA user_version")[0][0]),
        }

    # the schema ------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        """Bring the database to :data:`SCHEMA_VERSION` (``PRAGMA user_version``) in one transaction."""
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"无法打开数据库 {self.path}：{exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("SQLite journal mode is %s, not WAL", mode)
            conn.execute("BEGIN IMMEDIATE")
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current > SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                raise StorageError(
                    f"数据库 {self.path} 的版本（{current}）比本程序新（{SCHEMA_VERSION}），请升级 geo-eval"
                )
            for statements in MIGRATIONS[current:]:
                for sql in statements:
                    conn.execute(sql)
            if current < 3 <= SCHEMA_VERSION:
                conn.row_factory = sqlite3.Row
                fill_in_contents(Tx(conn.cursor(), SQLITE))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StorageError(f"无法初始化数据库 {self.path}：{exc}") from exc
        finally:
            conn.close()
