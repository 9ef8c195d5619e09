"""One store for both SQL databases: the rules of :class:`~geo_eval.storage.base.Store`, written once.

:class:`SQLStore` is the business logic both backends share: users and their tokens (with the cache of
verified tokens), the generation of their browser sessions, the run registry (a run's identity follows
its content; registering carries reviews over only to identical flags), compare-and-set reviews (a stale
version raises :class:`~geo_eval.storage.errors.ConflictError`, the service's 409) and the append-only
audit trail, one entry per change in the same transaction. Its statements are written once, in a neutral
SQL: ``?`` for each parameter and ``{t}`` before each table name (the schema).

What differs between the databases is a :class:`Dialect` (stateless): the placeholder and schema, how
lists and JSON are stored (SQLite: JSON text; PostgreSQL: ``text[]`` and ``jsonb``), locks (SQLite's
``BEGIN IMMEDIATE`` holds the whole database; PostgreSQL locks rows ``FOR UPDATE`` and a table for
``seq``), bulk inserts (``executemany`` or ``COPY``), lists of keys (``IN`` lists under SQLite's
parameter limit, or ``= ANY(array)``), byte-order collation, and what PostGIS keeps of published runs
(the digests in their ``flags`` rows, ``stored_at`` and ``srid``). The two backends subclass
:class:`SQLStore` with their connections and their migration mechanism:

- :class:`~geo_eval.storage.sqlite.SQLiteStore`: one file, a connection per thread, the schema migrated
  when opened (``PRAGMA user_version``);
- :class:`~geo_eval.db.store.PostgresStore`: a connection pool; the schema made and upgraded by
  ``geo-eval db init`` / ``db upgrade`` under an advisory lock (:mod:`geo_eval.db.schema`), only checked here.

A library (SQLAlchemy Core) could translate the statements, but the store's SQL is two dozen plain
statements that already read the same in both databases (``ON CONFLICT … DO UPDATE`` included), while
what really differs (COPY, row and advisory locks, partitions, arrays, jsonb) would still be written
for PostgreSQL by hand, and psycopg's pool and COPY, which the publisher and the tile server use
directly, would sit behind a second connection layer.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, ClassVar, cast

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
from geo_eval.storage.publication_sql import RUN_STATUS_TEXT_COLUMNS, PublicationSQL
from geo_eval.storage.runs import legacy_contents
from geo_eval.storage.tokens import parse_token

log = logging.getLogger(__name__)

Row = Any
"""A row read by a :class:`Tx`: its columns by name (``sqlite3.Row`` or psycopg's dict row)."""


class Dialect(ABC):
    """What differs between the SQL databases, for the statements of :class:`SQLStore` (no state).

    ``tokens`` fill the format fields of the neutral SQL: ``t`` (the schema prefix of table names),
    ``binary`` (a collation that orders text by its bytes), ``flag_digest`` and ``published_flags``
    (where a reviewed flag's digest is found: ``run_flags`` ``f``, and on PostGIS also the ``flags``
    rows ``g`` of a published run).
    """

    name: ClassVar[str]
    placeholder: ClassVar[str] = "?"
    tokens: ClassVar[Mapping[str, str]] = {"t": "", "binary": "", "flag_digest": "f.digest", "published_flags": ""}
    key_batch: ClassVar[int] = 500
    """Keys per ``IN`` list (:meth:`key_lists`)."""

    def sql(self, text: str) -> str:
        """A neutral statement in this database's SQL (translated once, then cached)."""
        return _translate(self, text)

    @abstractmethod
    def json_param(self, value: Mapping[str, Any] | None) -> Any:
        """A dict (or None) as a parameter of a JSON column."""

    @abstractmethod
    def json_value(self, raw: Any) -> Any:
        """The value read from a JSON column."""

    @abstractmethod
    def list_param(self, values: Sequence[str]) -> Any:
        """A list of texts (a user's parks) as a parameter."""

    @abstractmethod
    def list_value(self, raw: Any) -> tuple[str, ...]:
        """The list of texts read back."""

    def lock_table(self, tx: Tx, table: str) -> None:
        """Hold ``table`` against other writers until the transaction ends (default: nothing, the write
        transaction itself holds the whole database)."""
        return None

    def for_update(self, alias: str = "") -> str:
        """The clause that locks the rows a SELECT reads until the transaction ends (default: none)."""
        return ""

    def insert_rows(self, tx: Tx, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Insert many rows at once."""
        marks = ", ".join("?" * len(columns))
        tx.many(f"INSERT INTO {{t}}{table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def key_lists(self, column: str, keys: Sequence[str]) -> Iterator[tuple[str, Sequence[Any]]]:
        """``(condition, parameters)`` that together select the rows whose ``column`` is one of ``keys``
        (default: ``IN`` lists of :attr:`key_batch` keys)."""
        for i in range(0, len(keys), self.key_batch):
            chunk = keys[i : i + self.key_batch]
            yield f"{column} IN ({', '.join('?' * len(chunk))})", chunk

    def run_results(self, row: Row) -> dict[str, Any]:
        """The fields of :class:`RunRecord` about results stored in the database (default: none)."""
        return {}

    def after_register(self, tx: Tx, rec: RunRecord, row: Row | None, *, digests_in_flags: bool) -> RunRecord:
        """What registering ``rec`` (before: ``row``) does to results stored in the database (default: none)."""
        return rec

    def stored_contents(self, tx: Tx, run: Row) -> tuple[str, dict[str, str]] | None:
        """The manifest sha256 and flag digests of a run whose results are in the database (default: None)."""
        return None


@functools.lru_cache(maxsize=1024)
def _translate(dialect: Dialect, text: str) -> str:
    return text.format_map(dialect.tokens).replace("?", dialect.placeholder)


class Tx:
    """A cursor in one transaction (or one read), speaking the neutral SQL of :class:`SQLStore`."""

    __slots__ = ("cursor", "dialect")

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect

    def one(self, text: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a query, or None."""
        return self.cursor.execute(self.dialect.sql(text), params).fetchone()

    def all(self, text: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""
        return list(self.cursor.execute(self.dialect.sql(text), params).fetchall())

    def run(self, text: str, params: Sequence[Any] = ()) -> int:
        """Execute a statement; the number of rows it changed."""
        self.cursor.execute(self.dialect.sql(text), params)
        return int(self.cursor.rowcount)

    def many(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        """Execute a statement once per row of parameters."""
        self.cursor.executemany(self.dialect.sql(text), rows)


def fill_in_contents(tx: Tx) -> None:
    """Migration 3's data: the manifest sha256 and flag digests of the runs registered before, from their
    results in the database (PostGIS, ``evaluate --db``) or else from their OUT_DIR where it still holds
    them (:func:`~geo_eval.storage.runs.legacy_contents`)."""
    for run in tx.all("SELECT * FROM {t}runs WHERE manifest_sha256 = ''"):
        contents = tx.dialect.stored_contents(tx, run)
        if contents is None:
            contents = legacy_contents(run["run_id"], run["out_dir"])
        if contents is None:
            log.warning(
                "run %s: its OUT_DIR %s no longer holds it; its flags cannot be compared", run["run_id"], run["out_dir"]
            )
            continue
        sha, prints = contents
        tx.run("UPDATE {t}runs SET manifest_sha256 = ? WHERE run_id = ?", (sha, run["run_id"]))
        tx.dialect.insert_rows(
            tx, "run_flags", ("run_id", "flag_id", "digest"), ((run["run_id"], k, v) for k, v in prints.items())
        )


_UPSERT_USER = (
    "INSERT INTO {t}users (name, role, parks, token_id, token_hash, created) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET role = excluded.role, parks = excluded.parks, "
    "token_id = excluded.token_id, token_hash = excluded.token_hash"
)
_UPSERT_RUN = (
    "INSERT INTO {t}runs (run_id, year, scheme, scheme_title, out_dir, counts, registered_at, registered_by, "
    "seq, manifest_sha256, version, supersede_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id) DO UPDATE SET "
    "out_dir = excluded.out_dir, counts = excluded.counts, registered_at = excluded.registered_at, "
    "registered_by = excluded.registered_by, seq = excluded.seq, manifest_sha256 = excluded.manifest_sha256"
)
_REVIEW_COLUMNS = "run_id, flag_id, status, comment, version, updated_by, updated_at, carried_from"
_UPSERT_REVIEW = (
    f"INSERT INTO {{t}}reviews ({_REVIEW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, flag_id) "
    "DO UPDATE SET status = excluded.status, comment = excluded.comment, version = excluded.version, "
    "updated_by = excluded.updated_by, updated_at = excluded.updated_at, carried_from = excluded.carried_from"
)
_PAST_REVIEWS = (
    "SELECT r.*, {flag_digest} AS digest FROM {t}reviews r "
    "LEFT JOIN {t}run_flags f ON f.run_id = r.run_id AND f.flag_id = r.flag_id{published_flags} WHERE r.run_id = ?"
)


def _review_values(review: Review) -> tuple[Any, ...]:
    """A review as the parameters of :data:`_REVIEW_COLUMNS`."""
    r = review
    return (r.run_id, r.flag_id, r.status, r.comment, r.version, r.updated_by, r.updated_at, r.carried_from)


class SQLStore(PublicationSQL, ABC):
    """:class:`~geo_eval.storage.base.Store` on a SQL database: every rule, once (see the module docstring).

    A backend gives its :attr:`dialect` and its connections: :meth:`_read` and :meth:`_write` (one
    transaction: committed when the block ends, rolled back on any exception), :meth:`close` and
    :meth:`_describe`.
    """

    backend: ClassVar[str]
    dialect: ClassVar[Dialect]

    def __init__(self) -> None:
        self._tokens = TokenCache()

    # connections (the backend's) -------------------------------------------------------------------
    @abstractmethod
    def _read(self) -> AbstractContextManager[Tx]:
        """A cursor to read with."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Tx]:
        """A cursor in one write transaction."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (the store may be used again afterwards)."""

    @abstractmethod
    def _describe(self, tx: Tx) -> dict[str, Any]:
        """The backend's own fields of :meth:`status` (its schema version among them)."""

    def _find(self, text: str, params: Sequence[Any], missing: str) -> Row:
        """The first row of a query; :class:`NotFoundError` with the message ``missing`` when there is none."""
        with self._read() as tx:
            row = tx.one(text, params)
        if row is None:
            raise NotFoundError(missing)
        return row

    # health ----------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Health of the storage: the backend's fields, and how many runs and users it holds."""
        with self._read() as tx:
            described = self._describe(tx)
            counts = tx.one("SELECT (SELECT count(*) FROM {t}runs) AS runs, (SELECT count(*) FROM {t}users) AS users")
        assert counts is not None
        return {
            "backend": self.backend,
            "ok": True,
            **described,
            "runs": int(counts["runs"]),
            "users": int(counts["users"]),
        }

    # users -----------------------------------------------------------------------------------------
    @classmethod
    def _user(cls, row: Row) -> User:
        return User(
            name=row["name"],
            role=cast(Role, row["role"]),
            parks=cls.dialect.list_value(row["parks"]),
            created=row["created"],
            token_id=row["token_id"],
            session_gen=int(row["session_gen"]),
        )

    @classmethod
    def _locked_user(cls, tx: Tx, name: str) -> Row:
        """The row of user ``name``, locked until the transaction ends (:class:`NotFoundError` if none)."""
        row = tx.one("SELECT * FROM {t}users WHERE name = ?" + cls.dialect.for_update(), (name,))
        if row is None:
            raise NotFoundError(f"没有用户 {name}")
        return row

    def add_user(
        self, name: str, role: str, parks: Sequence[str] = (), *, actor: str = "", replace: bool = False
    ) -> tuple[User, str]:
        """Create a user (or with ``replace`` update one and issue a new token); returns it and its token."""
        name = clean_name(name)
        clean = clean_parks(role, parks)
        token, token_id, token_hash = issue_token()
        at = now()
        with self._write() as tx:
            self.dialect.lock_table(tx, "users")  # one user writer at a time: "already exists" is certain
            row = tx.one("SELECT * FROM {t}users WHERE name = ?", (name,))
            if row is not None and not replace:
                raise AlreadyExistsError(f"用户 {name} 已存在（换发令牌：geo-eval users token {name}）")
            created = at if row is None else row["created"]
            tx.run(_UPSERT_USER, (name, role, self.dialect.list_param(clean), token_id, token_hash, created))
            gen = 0 if row is None else int(row["session_gen"])
            user = User(name, cast(Role, role), clean, created=created, token_id=token_id, session_gen=gen)
            self._append_audit(
                tx,
                actor=actor,
                action="user.add" if row is None else "user.replace",
                entity=name,
                run_id=None,
                before=None if row is None else user_public(self._user(row)),
                after=user_public(user),
                at=at,
            )
        log.info("user %s (%s) saved by %s", name, role, actor or "-")
        return user, token

    def get_user(self, name: str) -> User:
        """The user called ``name`` (:class:`NotFoundError` if none)."""
        return self._user(self._find("SELECT * FROM {t}users WHERE name = ?", (name,), f"没有用户 {name}"))

    def list_users(self) -> list[User]:
        """Every user, by name (in the order of their bytes)."""
        with self._read() as tx:
            return [self._user(r) for r in tx.all("SELECT * FROM {t}users ORDER BY name{binary}")]

    def authenticate(self, token: str) -> User | None:
        """The user holding ``token``, or None (one scrypt per unknown token, see :class:`TokenCache`)."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        with self._read() as tx:
            row = tx.one("SELECT * FROM {t}users WHERE token_id = ?", (token_id,))
        stored = None if row is None else str(row["token_hash"])
        if not self._tokens.verify(token, secret, token_id, stored) or row is None:
            return None
        return self._user(row)

    def rotate_token(self, name: str, *, actor: str = "") -> str:
        """Issue a new token for ``name``; the old one stops working."""
        token, token_id, token_hash = issue_token()
        at = now()
        with self._write() as tx:
            u = user_public(self._user(self._locked_user(tx, name)))
            tx.run("UPDATE {t}users SET token_id = ?, token_hash = ? WHERE name = ?", (token_id, token_hash, name))
            self._append_audit(tx, actor=actor, action="user.token", entity=name, run_id=None, before=u, after=u, at=at)
        log.info("token of user %s rotated by %s", name, actor or "-")
        return token

    def delete_user(self, name: str, *, actor: str = "") -> None:
        """Remove a user (their reviews and audit entries stay)."""
        with self._write() as tx:
            before = user_public(self._user(self._locked_user(tx, name)))
            tx.run("DELETE FROM {t}users WHERE name = ?", (name,))
            self._append_audit(
                tx, actor=actor, action="user.delete", entity=name, run_id=None, before=before, after=None, at=now()
            )
        log.info("user %s deleted by %s", name, actor or "-")

    def end_sessions(self, name: str, *, actor: str = "") -> User:
        """End every browser session of ``name`` (signing out): moves ``session_gen`` on; returns the user."""
        with self._write() as tx:
            row = self._locked_user(tx, name)
            tx.run("UPDATE {t}users SET session_gen = session_gen + 1 WHERE name = ?", (name,))
            user = replace(self._user(row), session_gen=int(row["session_gen"]) + 1)
            u = user_public(user)
            self._append_audit(
                tx, actor=actor, action="user.sign_out", entity=name, run_id=None, before=u, after=u, at=now()
            )
        log.info("browser sessions of user %s ended by %s", name, actor or "-")
        return user

    # runs ------------------------------------------------------------------------------------------
    @classmethod
    def _run(cls, row: Row) -> RunRecord:
        return RunRecord(
            run_id=row["run_id"],
            year=int(row["year"]),
            scheme=row["scheme"],
            scheme_title=row["scheme_title"],
            out_dir=row["out_dir"],
            counts=dict(cls.dialect.json_value(row["counts"])),
            registered_at=row["registered_at"],
            registered_by=row["registered_by"],
            manifest_sha256=row["manifest_sha256"],
            status=row["status"],
            version=int(row["version"]),
            **{c: row[c] for c in RUN_STATUS_TEXT_COLUMNS},
            **cls.dialect.run_results(row),
        )

    def add_run(self, record: RunRecord, *, actor: str = "") -> RunRecord:
        """Register a run (again: updates it and makes it the latest); returns it with its carry-over."""
        if not record.run_id:
            raise InvalidValueError("评价批次编号不能为空")
        with self._write() as tx:
            rec = self._register(tx, record, actor=actor)
        message = rec.carryover.message(rec.run_id) if rec.carryover else ""
        log.info("run %s registered by %s%s", rec.run_id, actor or "-", f": {message}" if message else "")
        return rec

    @classmethod
    def _register(cls, tx: Tx, record: RunRecord, *, actor: str, digests_in_flags: bool = False) -> RunRecord:
        """Register (or re-register) a run inside the transaction ``tx``; it becomes the latest.

        Records the flags' digests (in ``run_flags``; with ``digests_in_flags`` the caller, the PostGIS
        publisher, puts them in the run's ``flags`` rows), carries reviews over to identical flags as
        :class:`~geo_eval.storage.base.Carryover` says and appends the audit entries.
        """
        rec = replace(record, registered_at=now(), registered_by=actor)
        cls.dialect.lock_table(tx, "runs")  # seq: one registration at a time
        row = tx.one("SELECT * FROM {t}runs WHERE run_id = ?", (rec.run_id,))
        here = tx.one("SELECT * FROM {t}runs WHERE out_dir = ? ORDER BY seq DESC LIMIT 1", (rec.out_dir,))
        if here is None:  # a new version of the year in another OUT_DIR: it follows the year's current run
            here = tx.one(
                "SELECT * FROM {t}runs WHERE year = ? AND run_id <> ? ORDER BY seq DESC LIMIT 1", (rec.year, rec.run_id)
            )
        version = cls._register_version(tx, rec)  # refuses to replace a final run without supersede
        if row is not None:
            version = int(row["version"])
        plan = cls._plan(tx, rec, row, here)
        seq = tx.one("SELECT coalesce(max(seq), 0) + 1 AS seq FROM {t}runs")
        assert seq is not None
        counts = cls.dialect.json_param(rec.counts)
        values = (rec.run_id, rec.year, rec.scheme, rec.scheme_title, rec.out_dir, counts, rec.registered_at)
        reason = rec.supersede_reason.strip() if rec.supersede else ""
        tx.run(_UPSERT_RUN, (*values, rec.registered_by, int(seq["seq"]), rec.manifest_sha256, version, reason))
        cls._supersede(tx, rec, actor=actor, at=rec.registered_at)
        if rec.flag_prints is not None:
            tx.run("DELETE FROM {t}run_flags WHERE run_id = ?", (rec.run_id,))
        if rec.flag_prints is not None and not digests_in_flags:
            prints = ((rec.run_id, k, v) for k, v in rec.flag_prints.items())
            cls.dialect.insert_rows(tx, "run_flags", ("run_id", "flag_id", "digest"), prints)
        cls._append_audit(
            tx,
            actor=actor,
            action="run.add" if row is None else "run.update",
            entity=rec.run_id,
            run_id=rec.run_id,
            before=None if row is None else {"out_dir": row["out_dir"], "registered_at": row["registered_at"]},
            after={"out_dir": rec.out_dir, "year": rec.year, "scheme": rec.scheme}
            | {"carryover": carryover_audit(plan.carryover)},
            at=rec.registered_at,
        )
        cls._apply_plan(tx, rec.run_id, plan, actor=actor, at=rec.registered_at)
        rec = cls.dialect.after_register(tx, rec, row, digests_in_flags=digests_in_flags)
        stored = tx.one("SELECT * FROM {t}runs WHERE run_id = ?", (rec.run_id,))
        assert stored is not None
        status = {k: stored[k] for k in ("status", *RUN_STATUS_TEXT_COLUMNS)}
        return replace(rec, carryover=plan.carryover, version=version, **status)

    @classmethod
    def _past(cls, tx: Tx, run: Row, *, legacy_id: str = "", lock: bool = False) -> PastReviews:
        """The reviews of a registered run with the digests its flags had (``lock``: rows locked)."""
        rows = tx.all(_PAST_REVIEWS + (cls.dialect.for_update("r") if lock else ""), (run["run_id"],))
        known = bool(run["manifest_sha256"])
        return PastReviews(
            run["run_id"],
            {r["flag_id"]: (cls._review(r), r["digest"]) for r in rows},
            prints_known=known,
            same_content=not known and legacy_id == run["run_id"],
        )

    @classmethod
    def _plan(cls, tx: Tx, rec: RunRecord, row: Row | None, here: Row | None) -> CarryPlan:
        """What registering ``rec`` does with the reviews of the same run and of the run last in its OUT_DIR."""
        own = None if row is None else cls._past(tx, row, lock=True)
        if rec.flag_prints is None:  # a record without flag contents (made by hand): reviews stay as they are
            return CarryPlan(Carryover(again=own is not None, kept=0 if own is None else len(own.reviews)))
        previous = None
        if here is not None and here["run_id"] != rec.run_id:
            previous = cls._past(tx, here, legacy_id=rec.legacy_id)
        return plan_carryover(rec.run_id, rec.flag_prints, own=own, previous=previous)

    @classmethod
    def _apply_plan(cls, tx: Tx, run_id: str, plan: CarryPlan, *, actor: str, at: str) -> None:
        """Set back the reviews of changed flags and copy in those carried over, each with its audit entry."""
        for old in plan.reset:
            tx.run("DELETE FROM {t}reviews WHERE run_id = ? AND flag_id = ?", (run_id, old.flag_id))
            after = review_state(Review(run_id, old.flag_id)) | {"reason": "标记内容已变化"}
            cls._audit_review(tx, "review.reset", old, after, actor=actor, at=at)
        for new, replaced in plan.carry:
            if plan.carryover.previous:
                new = replace(new, carried_from=plan.carryover.previous)
            tx.run(_UPSERT_REVIEW, _review_values(new))  # new.run_id is run_id
            after = review_state(new) | {"from_run": plan.carryover.previous}
            cls._audit_review(tx, "review.carry", replaced or Review(run_id, new.flag_id), after, actor=actor, at=at)

    @classmethod
    def _audit_review(cls, tx: Tx, action: str, before: Review, after: dict[str, Any], *, actor: str, at: str) -> None:
        """The audit entry of a change of one flag's review (``before``: the review it replaces)."""
        entity, run_id = before.flag_id, before.run_id
        cls._append_audit(
            tx,
            actor=actor,
            action=action,
            entity=entity,
            run_id=run_id,
            before=review_state(before),
            after=after,
            at=at,
        )

    def get_run(self, run_id: str) -> RunRecord:
        """A registered run (:class:`NotFoundError` if none)."""
        return self._run(self._find("SELECT * FROM {t}runs WHERE run_id = ?", (run_id,), f"没有评价批次 {run_id}"))

    def list_runs(self) -> list[RunRecord]:
        """Every registered run, latest first."""
        with self._read() as tx:
            return [self._run(r) for r in tx.all("SELECT * FROM {t}runs ORDER BY seq DESC")]

    def latest_run(self, year: int | None = None) -> RunRecord:
        """The latest registered run (of ``year``)."""
        with self._read() as tx:
            if year is None:
                row = tx.one("SELECT * FROM {t}runs ORDER BY seq DESC LIMIT 1")
            else:
                row = tx.one("SELECT * FROM {t}runs WHERE year = ? ORDER BY seq DESC LIMIT 1", (year,))
        if row is None:
            raise NotFoundError(
                "还没有登记任何评价批次（geo-eval runs add OUT_DIR）" if year is None else f"没有 {year} 年度的评价批次"
            )
        return self._run(row)

    # reviews ---------------------------------------------------------------------------------------
    @staticmethod
    def _review(row: Row) -> Review:
        return Review(
            run_id=row["run_id"],
            flag_id=row["flag_id"],
            status=cast(ReviewStatus, row["status"]),
            comment=row["comment"],
            version=int(row["version"]),
            updated_by=row["updated_by"],
            updated_at=row["updated_at"],
            carried_from=row["carried_from"],
        )

    def get_review(self, run_id: str, flag_id: str) -> Review:
        """The review of a flag (a pending version-0 review if never reviewed)."""
        with self._read() as tx:
            row = tx.one("SELECT * FROM {t}reviews WHERE run_id = ? AND flag_id = ?", (run_id, flag_id))
        return Review(run_id, flag_id) if row is None else self._review(row)

    def reviews(self, run_id: str, flag_ids: Iterable[str] | None = None) -> dict[str, Review]:
        """Stored reviews of a run by flag id (only flags reviewed at least once)."""
        with self._read() as tx:
            if flag_ids is None:
                rows = tx.all("SELECT * FROM {t}reviews WHERE run_id = ?", (run_id,))
            else:
                rows = []
                for where, keys in self.dialect.key_lists("flag_id", list(dict.fromkeys(flag_ids))):
                    rows += tx.all(f"SELECT * FROM {{t}}reviews WHERE run_id = ? AND {where}", (run_id, *keys))
        return {r["flag_id"]: self._review(r) for r in rows}

    def set_review(self, run_id: str, flag_id: str, *, status: str, comment: str, version: int, actor: str) -> Review:
        """Compare-and-set: write the review if its version is still ``version`` (else :class:`ConflictError`,
        nothing written); returns the new review, with its audit entry in the same transaction."""
        comment = clean_review(status, comment, actor)
        at = now()
        with self._write() as tx:
            if tx.one("SELECT 1 AS found FROM {t}runs WHERE run_id = ?", (run_id,)) is None:
                raise NotFoundError(f"没有评价批次 {run_id}")
            # locked until the transaction ends: a concurrent writer waits, then sees our version
            key = (run_id, flag_id)
            row = tx.one("SELECT * FROM {t}reviews WHERE run_id = ? AND flag_id = ?" + self.dialect.for_update(), key)
            current = Review(run_id, flag_id) if row is None else self._review(row)
            if current.version != version:
                raise conflict(current, version)
            new = Review(run_id, flag_id, cast(ReviewStatus, status), comment, version + 1, actor, at)
            self._write_review(tx, current, new, first=row is None)
            self._audit_review(tx, "review", current, new.state(), actor=actor, at=at)
        log.info("flag %s of run %s set to %s by %s", flag_id, run_id, status, actor)
        return new

    def _write_review(self, tx: Tx, current: Review, new: Review, *, first: bool) -> None:
        """Write ``new`` over ``current`` unless another transaction did first (then :class:`ConflictError`).

        A first review is an ``INSERT … ON CONFLICT DO NOTHING`` whose row count tells whether this
        transaction won; a change updates only the version it read (never blindly).
        """
        key = (current.run_id, current.flag_id)
        if first:
            inserted = tx.run(
                f"INSERT INTO {{t}}reviews ({_REVIEW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, flag_id) DO NOTHING",
                _review_values(new),
            )
            if inserted != 1:  # another first review committed since our read: it won
                won = tx.one("SELECT * FROM {t}reviews WHERE run_id = ? AND flag_id = ?", key)
                raise conflict(current if won is None else self._review(won), current.version)
            return
        changed = tx.run(
            "UPDATE {t}reviews SET status = ?, comment = ?, version = ?, updated_by = ?, updated_at = ?, "
            "carried_from = '' WHERE run_id = ? AND flag_id = ? AND version = ?",
            (new.status, new.comment, new.version, new.updated_by, new.updated_at, *key, current.version),
        )
        if changed != 1:  # cannot happen while the row is locked (or the database is); never write blindly
            raise conflict(current, current.version)

    # audit -----------------------------------------------------------------------------------------
    @classmethod
    def _entry(cls, row: Row) -> AuditEntry:
        return AuditEntry(
            id=int(row["id"]),
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            entity=row["entity"],
            run_id=row["run_id"],
            before=cls.dialect.json_value(row["before"]),
            after=cls.dialect.json_value(row["after"]),
        )

    def history(self, run_id: str, flag_id: str) -> list[AuditEntry]:
        """The audit entries of one flag's review, oldest first (changes, carried over, set back)."""
        actions = ", ".join("?" * len(REVIEW_ACTIONS))
        with self._read() as tx:
            rows = tx.all(
                f"SELECT * FROM {{t}}audit WHERE run_id = ? AND entity = ? AND action IN ({actions}) ORDER BY id",
                (run_id, flag_id, *REVIEW_ACTIONS),
            )
        return [self._entry(r) for r in rows]

    def audit(self, *, run_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """The latest audit entries (of a run), newest first."""
        with self._read() as tx:
            if run_id is None:
                rows = tx.all("SELECT * FROM {t}audit ORDER BY id DESC LIMIT ?", (limit,))
            else:
                rows = tx.all("SELECT * FROM {t}audit WHERE run_id = ? ORDER BY id DESC LIMIT ?", (run_id, limit))
        return [self._entry(r) for r in rows]
