"""The PostgreSQL/PostGIS store: :class:`~geo_eval.storage.base.Store` on the ``geo_eval`` schema of a database.

Same behaviour and guarantees as :class:`~geo_eval.storage.sqlite.SQLiteStore` (validation, messages,
audit entries, token hashing and the cache of verified tokens come from :mod:`geo_eval.storage.common`):

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
so the store is safe to share between threads.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, cast

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from geo_eval.db.connection import APPLICATION_NAME, CONNECT_TIMEOUT_S, connect, redact_url, unavailable
from geo_eval.db.errors import DatabaseError, DatabaseUnavailableError, first_line
from geo_eval.db.schema import check_schema, postgis_version
from geo_eval.storage.base import AuditEntry, Carryover, Review, ReviewStatus, Role, RunRecord, User
from geo_eval.storage.common import (
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
from geo_eval.storage.errors import AlreadyExistsError, InvalidValueError, NotFoundError
from geo_eval.storage.tokens import parse_token

log = logging.getLogger(__name__)

POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 8
POOL_TIMEOUT_S = 10.0


def _jsonb(value: dict[str, Any] | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def register_run(
    cur: psycopg.Cursor[DictRow], record: RunRecord, *, actor: str, digests_in_flags: bool = False
) -> RunRecord:
    """Register (or re-register) a run inside the caller's transaction; it becomes the latest.

    Used by :meth:`PostgresStore.add_run` and by the publisher (:mod:`geo_eval.db.publish`), which
    stores a run's results in the same transaction. Records the flags' digests (in ``run_flags``, or,
    with ``digests_in_flags``, the publisher puts them in the run's ``flags`` rows) and carries reviews
    over to identical flags as :class:`~geo_eval.storage.base.Carryover` says (the same rules as the
    SQLite store); appends the audit entries. Results columns (``stored_at``, ``srid``, ``manifest``,
    ``columns``) are left as they are.
    """
    rec = replace(record, registered_at=now(), registered_by=actor)
    cur.execute("LOCK TABLE geo_eval.runs IN SHARE ROW EXCLUSIVE MODE")  # seq: one registration at a time
    row = cur.execute("SELECT * FROM geo_eval.runs WHERE run_id = %s", (rec.run_id,)).fetchone()
    here = cur.execute(
        "SELECT * FROM geo_eval.runs WHERE out_dir = %s ORDER BY seq DESC LIMIT 1", (rec.out_dir,)
    ).fetchone()
    plan = _plan(cur, rec, row, here)
    seq_row = cur.execute("SELECT coalesce(max(seq), 0) + 1 AS seq FROM geo_eval.runs").fetchone()
    assert seq_row is not None
    cur.execute(
        "INSERT INTO geo_eval.runs "
        "(run_id, year, scheme, scheme_title, out_dir, counts, registered_at, registered_by, seq, manifest_sha256) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO UPDATE SET "
        "out_dir = excluded.out_dir, counts = excluded.counts, registered_at = excluded.registered_at, "
        "registered_by = excluded.registered_by, seq = excluded.seq, manifest_sha256 = excluded.manifest_sha256",
        (
            rec.run_id,
            rec.year,
            rec.scheme,
            rec.scheme_title,
            rec.out_dir,
            Jsonb(rec.counts),
            rec.registered_at,
            rec.registered_by,
            int(seq_row["seq"]),
            rec.manifest_sha256,
        ),
    )
    if rec.flag_prints is not None:
        cur.execute("DELETE FROM geo_eval.run_flags WHERE run_id = %s", (rec.run_id,))
    if rec.flag_prints is not None and not digests_in_flags:
        with cur.copy("COPY geo_eval.run_flags (run_id, flag_id, digest) FROM STDIN") as copy:
            for flag_id, digest in rec.flag_prints.items():
                copy.write_row((rec.run_id, flag_id, digest))
    PostgresStore._append_audit(
        cur,
        actor=actor,
        action="run.add" if row is None else "run.update",
        entity=rec.run_id,
        run_id=rec.run_id,
        before=None if row is None else {"out_dir": row["out_dir"], "registered_at": row["registered_at"]},
        after={"out_dir": rec.out_dir, "year": rec.year, "scheme": rec.scheme}
        | {"carryover": carryover_audit(plan.carryover)},
        at=rec.registered_at,
    )
    _apply_plan(cur, rec.run_id, plan, actor=actor, at=rec.registered_at)
    if row is not None:
        stored_at = row["stored_at"] or ""
        if stored_at and not digests_in_flags and rec.manifest_sha256 != row["manifest_sha256"]:
            # registered from files that are not the ones published: serve the files, not the stale rows
            cur.execute("UPDATE geo_eval.runs SET stored_at = NULL WHERE run_id = %s", (rec.run_id,))
            stored_at = ""
        rec = replace(rec, stored_at=stored_at, srid=row["srid"])
    return replace(rec, carryover=plan.carryover)


def _past(cur: psycopg.Cursor[DictRow], run: DictRow, *, legacy_id: str = "", lock: bool = False) -> PastReviews:
    """The reviews of a registered run with the digests its flags had (``lock``: rows locked for update):
    from ``run_flags``, or for a published run from its ``flags`` rows."""
    rows = cur.execute(
        "SELECT r.*, coalesce(f.digest, g.digest) AS digest FROM geo_eval.reviews r "
        "LEFT JOIN geo_eval.run_flags f ON f.run_id = r.run_id AND f.flag_id = r.flag_id "
        "LEFT JOIN geo_eval.flags g ON g.run_id = r.run_id AND g.flag_id = r.flag_id "
        "WHERE r.run_id = %s" + (" FOR UPDATE OF r" if lock else ""),
        (run["run_id"],),
    ).fetchall()
    known = bool(run["manifest_sha256"])
    return PastReviews(
        run["run_id"],
        {r["flag_id"]: (PostgresStore._review(r), r["digest"]) for r in rows},
        prints_known=known,
        same_content=not known and legacy_id == run["run_id"],
    )


def _plan(cur: psycopg.Cursor[DictRow], rec: RunRecord, row: DictRow | None, here: DictRow | None) -> CarryPlan:
    """What registering ``rec`` does with the reviews of the same run and of the run last in its OUT_DIR."""
    own = None if row is None else _past(cur, row, lock=True)
    if rec.flag_prints is None:  # a record without flag contents (made by hand): reviews stay as they are
        return CarryPlan(Carryover(again=own is not None, kept=0 if own is None else len(own.reviews)))
    previous = None
    if here is not None and here["run_id"] != rec.run_id:
        previous = _past(cur, here, legacy_id=rec.legacy_id)
    return plan_carryover(rec.run_id, rec.flag_prints, own=own, previous=previous)


def _apply_plan(cur: psycopg.Cursor[DictRow], run_id: str, plan: CarryPlan, *, actor: str, at: str) -> None:
    for old in plan.reset:
        cur.execute("DELETE FROM geo_eval.reviews WHERE run_id = %s AND flag_id = %s", (run_id, old.flag_id))
        PostgresStore._append_audit(
            cur,
            actor=actor,
            action="review.reset",
            entity=old.flag_id,
            run_id=run_id,
            before=review_state(old),
            after=review_state(Review(run_id, old.flag_id)) | {"reason": "标记内容已变化"},
            at=at,
        )
    for new, replaced in plan.carry:
        cur.execute(
            "INSERT INTO geo_eval.reviews (run_id, flag_id, status, comment, version, updated_by, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, flag_id) DO UPDATE SET "
            "status = excluded.status, comment = excluded.comment, version = excluded.version, "
            "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (run_id, new.flag_id, new.status, new.comment, new.version, new.updated_by, new.updated_at),
        )
        PostgresStore._append_audit(
            cur,
            actor=actor,
            action="review.carry",
            entity=new.flag_id,
            run_id=run_id,
            before=review_state(replaced or Review(run_id, new.flag_id)),
            after=review_state(new) | {"from_run": plan.carryover.previous},
            at=at,
        )


class PostgresStore:
    """:class:`~geo_eval.storage.base.Store` on a PostgreSQL database with the ``geo_eval`` schema.

    ``url`` is a libpq URL (``postgresql://user[:password]@host:port/dbname``); :attr:`url` keeps it for
    code that opens its own connections, :attr:`database` is its redacted form for messages.
    """

    backend = "postgis"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = POOL_MIN_SIZE,
        max_size: int = POOL_MAX_SIZE,
        timeout: float = POOL_TIMEOUT_S,
    ) -> None:
        self.url = str(url).strip()
        self.database = redact_url(self.url)
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._tokens = TokenCache()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._pool_lock = threading.Lock()
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
                    check=ConnectionPool.check_connection,
                    name="geo-eval",
                    open=False,
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

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
            pool.putconn(conn)

    def close(self) -> None:
        """Close the pool (the store opens a new one when used again)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[psycopg.Cursor[DictRow]]:
        try:
            with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except psycopg.OperationalError as exc:
            raise unavailable(self.url, exc) from exc
        except psycopg.Error as exc:
            raise DatabaseError(f"读取数据库 {self.database} 失败：{first_line(exc)}", database=self.database) from exc

    def transaction(self) -> contextlib.AbstractContextManager[psycopg.Cursor[DictRow]]:
        """One write transaction (a cursor with dict rows): committed when the block ends, rolled back on
        any exception, database errors turned into :class:`~geo_eval.db.errors.DatabaseError`."""
        return self._write()

    @contextlib.contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        try:
            with self.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except psycopg.OperationalError as exc:
            raise unavailable(self.url, exc) from exc
        except psycopg.Error as exc:
            raise DatabaseError(
                f"写入数据库 {self.database} 失败（未保存任何改动）：{first_line(exc)}", database=self.database
            ) from exc

    @staticmethod
    def _append_audit(
        cur: psycopg.Cursor[DictRow],
        *,
        actor: str,
        action: str,
        entity: str,
        run_id: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        at: str,
    ) -> None:
        cur.execute(
            "INSERT INTO geo_eval.audit (at, actor, action, entity, run_id, before, after) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (at, actor, action, entity, run_id, _jsonb(before), _jsonb(after)),
        )

    # health ----------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._read() as cur:
            version = check_schema(cur.connection, database=self.database)
            postgis = postgis_version(cur.connection)
            counts = cur.execute(
                "SELECT (SELECT count(*) FROM geo_eval.runs) AS runs, (SELECT count(*) FROM geo_eval.users) AS users"
            ).fetchone()
        assert counts is not None
        return {
            "backend": self.backend,
            "ok": True,
            "database": self.database,
            "postgis_version": postgis,
            "schema_version": version,
            "runs": int(counts["runs"]),
            "users": int(counts["users"]),
        }

    # users -----------------------------------------------------------------------------------------
    @staticmethod
    def _user(row: DictRow) -> User:
        return User(
            name=row["name"],
            role=cast(Role, row["role"]),
            parks=tuple(row["parks"]),
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
        with self._write() as cur:
            cur.execute("LOCK TABLE geo_eval.users IN SHARE ROW EXCLUSIVE MODE")  # one user writer at a time
            row = cur.execute("SELECT * FROM geo_eval.users WHERE name = %s", (name,)).fetchone()
            if row is not None and not replace:
                raise AlreadyExistsError(f"用户 {name} 已存在（换发令牌：geo-eval users token {name}）")
            before = None if row is None else user_public(self._user(row))
            created = at if row is None else row["created"]
            cur.execute(
                "INSERT INTO geo_eval.users (name, role, parks, token_id, token_hash, created) "
                "VALUES (%s, %s, %s::text[], %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET role = excluded.role, parks = excluded.parks, "
                "token_id = excluded.token_id, token_hash = excluded.token_hash",
                (name, role, list(clean), token_id, token_hash, created),
            )
            gen = 0 if row is None else int(row["session_gen"])
            user = User(name, cast(Role, role), clean, created=created, token_id=token_id, session_gen=gen)
            self._append_audit(
                cur,
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
        with self._read() as cur:
            row = cur.execute("SELECT * FROM geo_eval.users WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"没有用户 {name}")
        return self._user(row)

    def list_users(self) -> list[User]:
        with self._read() as cur:
            return [self._user(r) for r in cur.execute('SELECT * FROM geo_eval.users ORDER BY name COLLATE "C"')]

    def authenticate(self, token: str) -> User | None:
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        with self._read() as cur:
            row = cur.execute("SELECT * FROM geo_eval.users WHERE token_id = %s", (token_id,)).fetchone()
        stored = None if row is None else str(row["token_hash"])
        if not self._tokens.verify(token, secret, token_id, stored) or row is None:
            return None
        return self._user(row)

    def rotate_token(self, name: str, *, actor: str = "") -> str:
        token, token_id, token_hash = issue_token()
        at = now()
        with self._write() as cur:
            row = cur.execute("SELECT * FROM geo_eval.users WHERE name = %s FOR UPDATE", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"没有用户 {name}")
            cur.execute(
                "UPDATE geo_eval.users SET token_id = %s, token_hash = %s WHERE name = %s", (token_id, token_hash, name)
            )
            u = user_public(self._user(row))
            self._append_audit(
                cur, actor=actor, action="user.token", entity=name, run_id=None, before=u, after=u, at=at
            )
        log.info("token of user %s rotated by %s", name, actor or "-")
        return token

    def delete_user(self, name: str, *, actor: str = "") -> None:
        with self._write() as cur:
            row = cur.execute("SELECT * FROM geo_eval.users WHERE name = %s FOR UPDATE", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"没有用户 {name}")
            cur.execute("DELETE FROM geo_eval.users WHERE name = %s", (name,))
            self._append_audit(
                cur,
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
        with self._write() as cur:
            row = cur.execute(
                "UPDATE geo_eval.users SET session_gen = session_gen + 1 WHERE name = %s RETURNING *", (name,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"没有用户 {name}")
            user = self._user(row)
            u = user_public(user)
            self._append_audit(
                cur, actor=actor, action="user.sign_out", entity=name, run_id=None, before=u, after=u, at=now()
            )
        log.info("browser sessions of user %s ended by %s", name, actor or "-")
        return user

    # runs ------------------------------------------------------------------------------------------
    @staticmethod
    def _run(row: DictRow) -> RunRecord:
        return RunRecord(
            run_id=row["run_id"],
            year=int(row["year"]),
            scheme=row["scheme"],
            scheme_title=row["scheme_title"],
            out_dir=row["out_dir"],
            counts=dict(row["counts"]),
            registered_at=row["registered_at"],
            registered_by=row["registered_by"],
            stored_at=row["stored_at"] or "",
            srid=row["srid"],
            manifest_sha256=row["manifest_sha256"],
        )

    def add_run(self, record: RunRecord, *, actor: str = "") -> RunRecord:
        if not record.run_id:
            raise InvalidValueError("评价批次编号不能为空")
        with self._write() as cur:
            rec = register_run(cur, record, actor=actor)
        message = rec.carryover.message(rec.run_id) if rec.carryover else ""
        log.info("run %s registered by %s%s", rec.run_id, actor or "-", f": {message}" if message else "")
        return rec

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as cur:
            row = cur.execute("SELECT * FROM geo_eval.runs WHERE run_id = %s", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"没有评价批次 {run_id}")
        return self._run(row)

    def list_runs(self) -> list[RunRecord]:
        with self._read() as cur:
            return [self._run(r) for r in cur.execute("SELECT * FROM geo_eval.runs ORDER BY seq DESC")]

    def latest_run(self, year: int | None = None) -> RunRecord:
        with self._read() as cur:
            if year is None:
                row = cur.execute("SELECT * FROM geo_eval.runs ORDER BY seq DESC LIMIT 1").fetchone()
            else:
                row = cur.execute(
                    "SELECT * FROM geo_eval.runs WHERE year = %s ORDER BY seq DESC LIMIT 1", (year,)
                ).fetchone()
        if row is None:
            raise NotFoundError(
                "还没有登记任何评价批次（geo-eval runs add OUT_DIR）" if year is None else f"没有 {year} 年度的评价批次"
            )
        return self._run(row)

    # reviews ---------------------------------------------------------------------------------------
    @staticmethod
    def _review(row: DictRow) -> Review:
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
        with self._read() as cur:
            row = cur.execute(
                "SELECT * FROM geo_eval.reviews WHERE run_id = %s AND flag_id = %s", (run_id, flag_id)
            ).fetchone()
        return Review(run_id, flag_id) if row is None else self._review(row)

    def reviews(self, run_id: str, flag_ids: Iterable[str] | None = None) -> dict[str, Review]:
        with self._read() as cur:
            if flag_ids is None:
                rows = cur.execute("SELECT * FROM geo_eval.reviews WHERE run_id = %s", (run_id,)).fetchall()
            else:
                ids = list(dict.fromkeys(flag_ids))
                rows = cur.execute(
                    "SELECT * FROM geo_eval.reviews WHERE run_id = %s AND flag_id = ANY(%s::text[])", (run_id, ids)
                ).fetchall()
        return {r["flag_id"]: self._review(r) for r in rows}

    def set_review(self, run_id: str, flag_id: str, *, status: str, comment: str, version: int, actor: str) -> Review:
        comment = clean_review(status, comment, actor)
        at = now()
        with self._write() as cur:
            if cur.execute("SELECT 1 FROM geo_eval.runs WHERE run_id = %s", (run_id,)).fetchone() is None:
                raise NotFoundError(f"没有评价批次 {run_id}")
            # the row stays locked until this transaction ends: a concurrent writer waits, then sees our version
            row = cur.execute(
                "SELECT * FROM geo_eval.reviews WHERE run_id = %s AND flag_id = %s FOR UPDATE", (run_id, flag_id)
            ).fetchone()
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
            if row is None:
                cur.execute(
                    "INSERT INTO geo_eval.reviews (run_id, flag_id, status, comment, version, updated_by, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, flag_id) DO NOTHING",
                    (run_id, flag_id, new.status, new.comment, new.version, actor, at),
                )
                if cur.rowcount != 1:  # another first review committed since our read: it won
                    won = cur.execute(
                        "SELECT * FROM geo_eval.reviews WHERE run_id = %s AND flag_id = %s", (run_id, flag_id)
                    ).fetchone()
                    raise conflict(current if won is None else self._review(won), version)
            else:
                cur.execute(
                    "UPDATE geo_eval.reviews SET status = %s, comment = %s, version = %s, updated_by = %s, "
                    "updated_at = %s WHERE run_id = %s AND flag_id = %s AND version = %s",
                    (new.status, new.comment, new.version, actor, at, run_id, flag_id, current.version),
                )
                if cur.rowcount != 1:  # cannot happen while the row is locked; never write blindly
                    raise conflict(current, version)
            self._append_audit(
                cur,
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
    def _entry(row: DictRow) -> AuditEntry:
        return AuditEntry(
            id=int(row["id"]),
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            entity=row["entity"],
            run_id=row["run_id"],
            before=row["before"],
            after=row["after"],
        )

    def history(self, run_id: str, flag_id: str) -> list[AuditEntry]:
        with self._read() as cur:
            rows = cur.execute(
                "SELECT * FROM geo_eval.audit WHERE run_id = %s AND entity = %s AND action = ANY(%s::text[]) "
                "ORDER BY id",
                (run_id, flag_id, list(REVIEW_ACTIONS)),
            ).fetchall()
        return [self._entry(r) for r in rows]

    def audit(self, *, run_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        with self._read() as cur:
            if run_id is None:
                rows = cur.execute("SELECT * FROM geo_eval.audit ORDER BY id DESC LIMIT %s", (limit,)).fetchall()
            else:
                rows = cur.execute(
                    "SELECT * FROM geo_eval.audit WHERE run_id = %s ORDER BY id DESC LIMIT %s", (run_id, limit)
                ).fetchall()
        return [self._entry(r) for r in rows]
