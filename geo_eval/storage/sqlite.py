"""The embedded store: one SQLite database under the data directory (``GEO_EVAL_DATA_DIR``).

Durability: the database runs in WAL mode with ``synchronous=FULL``, every write is a single
``BEGIN IMMEDIATE … COMMIT`` transaction, so a crash (killed process, power loss) mid-write rolls back
that write only and loses nothing committed before it. Writers queue on SQLite's lock
(``busy_timeout``); readers never block. Each thread has its own connection, so the store is safe to share
between threads (the service's worker threads).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from geo_eval.storage.base import AuditEntry, Carryover, Review, ReviewStatus, Role, RunRecord, User
from geo_eval.storage.common import (
    MAX_COMMENT,
    MAX_NAME,
    REVIEW_ACTIONS,
    CarryPlan,
    PastReviews,
    TokenCache,
    carryover_audit,
    clean_name,
    clean_parks,
    clean_review,
    conflict,
    issue_token,
    now,
    plan_carryover,
    review_state,
    user_public,
)
from geo_eval.storage.errors import AlreadyExistsError, InvalidValueError, NotFoundError, StorageError
from geo_eval.storage.runs import legacy_contents
from geo_eval.storage.tokens import parse_token

log = logging.getLogger(__name__)

DB_NAME = "geo-eval.sqlite3"
BUSY_TIMEOUT_S = 15.0
# now, MAX_NAME and MAX_COMMENT live in geo_eval.storage.common (shared with the PostGIS store); re-exported
__all__ = ["DB_NAME", "MAX_COMMENT", "MAX_NAME", "MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore", "now"]

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
)
SCHEMA_VERSION = len(MIGRATIONS)


class SQLiteStore:
    """:class:`~geo_eval.storage.base.Store` on one SQLite file."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"无法创建数据目录 {self.path.parent}：{exc}") from exc
        self._tokens = TokenCache()
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
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StorageError(f"读取数据库失败：{exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"写入数据库失败（未保存任何改动）：{exc}") from exc
            raise

    def _migrate(self) -> None:
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
                self._fill_in_contents(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StorageError(f"无法初始化数据库 {self.path}：{exc}") from exc
        finally:
            conn.close()

    @staticmethod
    def _fill_in_contents(conn: sqlite3.Connection) -> None:
        """Migration 2's data: the manifest sha256 and flag digests of the runs registered before, from
        their OUT_DIR where it still holds them (:func:`~geo_eval.storage.runs.legacy_contents`)."""
        for run_id, out_dir in conn.execute("SELECT run_id, out_dir FROM runs WHERE manifest_sha256 = ''").fetchall():
            contents = legacy_contents(run_id, out_dir)
            if contents is None:
                log.warning("run %s: its OUT_DIR %s no longer holds it; its flags cannot be compared", run_id, out_dir)
                continue
            sha, prints = contents
            conn.execute("UPDATE runs SET manifest_sha256 = ? WHERE run_id = ?", (sha, run_id))
            conn.executemany(
                "INSERT INTO run_flags (run_id, flag_id, digest) VALUES (?, ?, ?)",
                ((run_id, k, v) for k, v in prints.items()),
            )

    @staticmethod
    def _append_audit(
        conn: sqlite3.Connection,
        *,
        actor: str,
        action: str,
        entity: str,
        run_id: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        at: str,
    ) -> None:
        conn.execute(
            "INSERT INTO audit (at, actor, action, entity, run_id, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                actor,
                action,
                entity,
                run_id,
                None if before is None else json.dumps(before, ensure_ascii=False),
                None if after is None else json.dumps(after, ensure_ascii=False),
            ),
        )

    # health ----------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._read() as conn:
            return {
                "backend": self.backend,
                "ok": True,
                "journal_mode": str(conn.execute("PRAGMA journal_mode").fetchone()[0]),
                "schema_version": int(conn.execute("PRAGMA user_version").fetchone()[0]),
                "runs": int(conn.execute("SELECT count(*) FROM runs").fetchone()[0]),
                "users": int(conn.execute("SELECT count(*) FROM users").fetchone()[0]),
            }

    # users -----------------------------------------------------------------------------------------
    @staticmethod
    def _user(row: sqlite3.Row) -> User:
        return User(
            name=row["name"],
            role=cast(Role, row["role"]),
            parks=tuple(json.loads(row["parks"])),
            created=row["created"],
            token_id=row["token_id"],
            session_gen=int(row["session_gen"]),
        )

    def add_user(
        self, name: str, role: str, parks: Sequence[str] = (), *, actor: str = "", replace: bool = False
    ) -> tuple[User, str]:
        name = clean_name(name)
        clean = clean_parks(role, parks)
        token, token_id, token_hash = issue_token()
        at = now()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is not None and not replace:
                raise AlreadyExistsError(f"用户 {name} 已存在（换发令牌：geo-eval users token {name}）")
            before = None if row is None else user_public(self._user(row))
            created = at if row is None else row["created"]
            conn.execute(
                "INSERT INTO users (name, role, parks, token_id, token_hash, created) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET role = excluded.role, parks = excluded.parks, "
                "token_id = excluded.token_id, token_hash = excluded.token_hash",
                (name, role, json.dumps(list(clean), ensure_ascii=False), token_id, token_hash, created),
            )
            gen = 0 if row is None else int(row["session_gen"])
            user = User(name, cast(Role, role), clean, created=created, token_id=token_id, session_gen=gen)
            self._append_audit(
                conn,
                actor=actor,
                action="user.add" if row is None else "user.replace",
                entity=name,
                run_id=None,
                before=before,
                after=user_public(user),
                at=at,
            )
        log.info("user %s (%s) saved by %s", name, role, actor or "-")
        return user, token

    def get_user(self, name: str) -> User:
        with self._read() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"没有用户 {name}")
        return self._user(row)

    def list_users(self) -> list[User]:
        with self._read() as conn:
            return [self._user(r) for r in conn.execute("SELECT * FROM users ORDER BY name")]

    def authenticate(self, token: str) -> User | None:
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        with self._read() as conn:
            row = conn.execute("SELECT * FROM users WHERE token_id = ?", (token_id,)).fetchone()
        stored = None if row is None else str(row["token_hash"])
        if not self._tokens.verify(token, secret, token_id, stored) or row is None:
            return None
        return self._user(row)

    def rotate_token(self, name: str, *, actor: str = "") -> str:
        token, token_id, token_hash = issue_token()
        at = now()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"没有用户 {name}")
            conn.execute("UPDATE users SET token_id = ?, token_hash = ? WHERE name = ?", (token_id, token_hash, name))
            u = user_public(self._user(row))
            self._append_audit(
                conn, actor=actor, action="user.token", entity=name, run_id=None, before=u, after=u, at=at
            )
        log.info("token of user %s rotated by %s", name, actor or "-")
        return token

    def delete_user(self, name: str, *, actor: str = "") -> None:
        with self._write() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"没有用户 {name}")
            conn.execute("DELETE FROM users WHERE name = ?", (name,))
            self._append_audit(
                conn,
                actor=actor,
                action="user.delete",
                entity=name,
                run_id=None,
                before=user_public(self._user(row)),
                after=None,
                at=now(),
            )
        log.info("user %s deleted by %s", name, actor or "-")

    def end_sessions(self, name: str, *, actor: str = "") -> User:
        with self._write() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"没有用户 {name}")
            conn.execute("UPDATE users SET session_gen = session_gen + 1 WHERE name = ?", (name,))
            user = replace(self._user(row), session_gen=int(row["session_gen"]) + 1)
            u = user_public(user)
            self._append_audit(
                conn, actor=actor, action="user.sign_out", entity=name, run_id=None, before=u, after=u, at=now()
            )
        log.info("browser sessions of user %s ended by %s", name, actor or "-")
        return user

    # runs ------------------------------------------------------------------------------------------
    @staticmethod
    def _run(row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            run_id=row["run_id"],
            year=int(row["year"]),
            scheme=row["scheme"],
            scheme_title=row["scheme_title"],
            out_dir=row["out_dir"],
            counts=json.loads(row["counts"]),
            registered_at=row["registered_at"],
            registered_by=row["registered_by"],
            manifest_sha256=row["manifest_sha256"],
        )

    def add_run(self, record: RunRecord, *, actor: str = "") -> RunRecord:
        if not record.run_id:
            raise InvalidValueError("评价批次编号不能为空")
        rec = replace(record, registered_at=now(), registered_by=actor)
        with self._write() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (rec.run_id,)).fetchone()
            here = conn.execute("SELECT * FROM runs WHERE out_dir = ? ORDER BY seq DESC LIMIT 1", (rec.out_dir,))
            plan = self._plan(conn, rec, row, here.fetchone())
            seq = int(conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM runs").fetchone()[0])
            conn.execute(
                "INSERT INTO runs (run_id, year, scheme, scheme_title, out_dir, counts, registered_at, registered_by, "
                "seq, manifest_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                "out_dir = excluded.out_dir, counts = excluded.counts, registered_at = excluded.registered_at, "
                "registered_by = excluded.registered_by, seq = excluded.seq, manifest_sha256 = excluded.manifest_sha256",
                (
                    rec.run_id,
                    rec.year,
                    rec.scheme,
                    rec.scheme_title,
                    rec.out_dir,
                    json.dumps(rec.counts, ensure_ascii=False),
                    rec.registered_at,
                    rec.registered_by,
                    seq,
                    rec.manifest_sha256,
                ),
            )
            if rec.flag_prints is not None:
                conn.execute("DELETE FROM run_flags WHERE run_id = ?", (rec.run_id,))
                conn.executemany(
                    "INSERT INTO run_flags (run_id, flag_id, digest) VALUES (?, ?, ?)",
                    ((rec.run_id, k, v) for k, v in rec.flag_prints.items()),
                )
            self._append_audit(
                conn,
                actor=actor,
                action="run.add" if row is None else "run.update",
                entity=rec.run_id,
                run_id=rec.run_id,
                before=None if row is None else {"out_dir": row["out_dir"], "registered_at": row["registered_at"]},
                after={"out_dir": rec.out_dir, "year": rec.year, "scheme": rec.scheme}
                | {"carryover": carryover_audit(plan.carryover)},
                at=rec.registered_at,
            )
            self._apply_plan(conn, rec.run_id, plan, actor=actor, at=rec.registered_at)
        message = plan.carryover.message(rec.run_id)
        log.info("run %s registered by %s%s", rec.run_id, actor or "-", f": {message}" if message else "")
        return replace(rec, carryover=plan.carryover)

    def _past(self, conn: sqlite3.Connection, run: sqlite3.Row, *, legacy_id: str = "") -> PastReviews:
        """The reviews of a registered run with the digests its flags had."""
        rows = conn.execute(
            "SELECT r.*, f.digest FROM reviews r LEFT JOIN run_flags f ON f.run_id = r.run_id "
            "AND f.flag_id = r.flag_id WHERE r.run_id = ?",
            (run["run_id"],),
        ).fetchall()
        known = bool(run["manifest_sha256"])
        return PastReviews(
            run["run_id"],
            {r["flag_id"]: (self._review(r), r["digest"]) for r in rows},
            prints_known=known,
            same_content=not known and legacy_id == run["run_id"],
        )

    def _plan(
        self, conn: sqlite3.Connection, rec: RunRecord, row: sqlite3.Row | None, here: sqlite3.Row | None
    ) -> CarryPlan:
        """What registering ``rec`` does with the reviews of the same run and of the run last in its OUT_DIR."""
        own = None if row is None else self._past(conn, row)
        if rec.flag_prints is None:  # a record without flag contents (made by hand): reviews stay as they are
            return CarryPlan(Carryover(again=own is not None, kept=0 if own is None else len(own.reviews)))
        previous = None
        if here is not None and here["run_id"] != rec.run_id:
            previous = self._past(conn, here, legacy_id=rec.legacy_id)
        return plan_carryover(rec.run_id, rec.flag_prints, own=own, previous=previous)

    def _apply_plan(self, conn: sqlite3.Connection, run_id: str, plan: CarryPlan, *, actor: str, at: str) -> None:
        for old in plan.reset:
            conn.execute("DELETE FROM reviews WHERE run_id = ? AND flag_id = ?", (run_id, old.flag_id))
            after = review_state(Review(run_id, old.flag_id)) | {"reason": "标记内容已变化"}
            self._append_audit(
                conn,
                actor=actor,
                action="review.reset",
                entity=old.flag_id,
                run_id=run_id,
                before=review_state(old),
                after=after,
                at=at,
            )
        for new, replaced in plan.carry:
            conn.execute(
                "INSERT INTO reviews (run_id, flag_id, status, comment, version, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, flag_id) DO UPDATE SET status = excluded.status, "
                "comment = excluded.comment, version = excluded.version, updated_by = excluded.updated_by, "
                "updated_at = excluded.updated_at",
                (run_id, new.flag_id, new.status, new.comment, new.version, new.updated_by, new.updated_at),
            )
            self._append_audit(
                conn,
                actor=actor,
                action="review.carry",
                entity=new.flag_id,
                run_id=run_id,
                before=review_state(replaced or Review(run_id, new.flag_id)),
                after=review_state(new) | {"from_run": plan.carryover.previous},
                at=at,
            )

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"没有评价批次 {run_id}")
        return self._run(row)

    def list_runs(self) -> list[RunRecord]:
        with self._read() as conn:
            return [self._run(r) for r in conn.execute("SELECT * FROM runs ORDER BY seq DESC")]

    def latest_run(self, year: int | None = None) -> RunRecord:
        with self._read() as conn:
            if year is None:
                row = conn.execute("SELECT * FROM runs ORDER BY seq DESC LIMIT 1").fetchone()
            else:
                row = conn.execute("SELECT * FROM runs WHERE year = ? ORDER BY seq DESC LIMIT 1", (year,)).fetchone()
        if row is None:
            raise NotFoundError(
                "还没有登记任何评价批次（geo-eval runs add OUT_DIR）" if year is None else f"没有 {year} 年度的评价批次"
            )
        return self._run(row)

    # reviews ---------------------------------------------------------------------------------------
    @staticmethod
    def _review(row: sqlite3.Row) -> Review:
        return Review(
            run_id=row["run_id"],
            flag_id=row["flag_id"],
            status=cast(ReviewStatus, row["status"]),
            comment=row["comment"],
            version=int(row["version"]),
            updated_by=row["updated_by"],
            updated_at=row["updated_at"],
        )

    def get_review(self, run_id: str, flag_id: str) -> Review:
        with self._read() as conn:
            row = conn.execute("SELECT * FROM reviews WHERE run_id = ? AND flag_id = ?", (run_id, flag_id)).fetchone()
        return Review(run_id, flag_id) if row is None else self._review(row)

    def reviews(self, run_id: str, flag_ids: Iterable[str] | None = None) -> dict[str, Review]:
        with self._read() as conn:
            if flag_ids is None:
                rows = conn.execute("SELECT * FROM reviews WHERE run_id = ?", (run_id,)).fetchall()
            else:
                ids = list(dict.fromkeys(flag_ids))
                rows = []
                for i in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                    chunk = ids[i : i + 500]
                    marks = ", ".join("?" * len(chunk))
                    rows += conn.execute(
                        f"SELECT * FROM reviews WHERE run_id = ? AND flag_id IN ({marks})", (run_id, *chunk)
                    ).fetchall()
        return {r["flag_id"]: self._review(r) for r in rows}

    def set_review(self, run_id: str, flag_id: str, *, status: str, comment: str, version: int, actor: str) -> Review:
        comment = clean_review(status, comment, actor)
        at = now()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                raise NotFoundError(f"没有评价批次 {run_id}")
            row = conn.execute("SELECT * FROM reviews WHERE run_id = ? AND flag_id = ?", (run_id, flag_id)).fetchone()
            current = Review(run_id, flag_id) if row is None else self._review(row)
            if current.version != version:
                raise conflict(current, version)
            new = Review(
                run_id,
                flag_id,
                status=cast(ReviewStatus, status),
                comment=comment,
                version=current.version + 1,
                updated_by=actor,
                updated_at=at,
            )
            conn.execute(
                "INSERT INTO reviews (run_id, flag_id, status, comment, version, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, flag_id) DO UPDATE SET status = excluded.status, "
                "comment = excluded.comment, version = excluded.version, updated_by = excluded.updated_by, "
                "updated_at = excluded.updated_at",
                (run_id, flag_id, new.status, new.comment, new.version, actor, at),
            )
            self._append_audit(
                conn,
                actor=actor,
                action="review",
                entity=flag_id,
                run_id=run_id,
                before=current.state(),
                after=new.state(),
                at=at,
            )
        log.info("flag %s of run %s set to %s by %s", flag_id, run_id, status, actor)
        return new

    # audit -----------------------------------------------------------------------------------------
    @staticmethod
    def _entry(row: sqlite3.Row) -> AuditEntry:
        return AuditEntry(
            id=int(row["id"]),
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            entity=row["entity"],
            run_id=row["run_id"],
            before=None if row["before"] is None else json.loads(row["before"]),
            after=None if row["after"] is None else json.loads(row["after"]),
        )

    def history(self, run_id: str, flag_id: str) -> list[AuditEntry]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT * FROM audit WHERE run_id = ? AND entity = ? AND action IN ({', '.join('?' * len(REVIEW_ACTIONS))}) "
                "ORDER BY id",
                (run_id, flag_id, *REVIEW_ACTIONS),
            ).fetchall()
        return [self._entry(r) for r in rows]

    def audit(self, *, run_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        with self._read() as conn:
            if run_id is None:
                rows = conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM audit WHERE run_id = ? ORDER BY id DESC LIMIT ?", (run_id, limit)
                ).fetchall()
        return [self._entry(r) for r in rows]
