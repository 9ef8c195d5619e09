"""Persistent state of the service: users, the run registry, reviews of flags and their audit trail.

Pure Python (no web framework): the service (``api/``) and the CLI (``geo-eval runs``, ``geo-eval users``)
both use :func:`open_store`. :class:`Store` is the interface; :class:`SQLiteStore` the embedded default
under ``GEO_EVAL_DATA_DIR``; :class:`geo_eval.db.PostgresStore` the same on a PostgreSQL/PostGIS database
(``GEO_EVAL_DATABASE_URL``, ``--db``). Both are :class:`~geo_eval.storage.sql.SQLStore`, whose code holds
the rules once, with the SQL of their database (a :class:`~geo_eval.storage.sql.Dialect`).
"""

from __future__ import annotations

from pathlib import Path

from geo_eval.storage.base import (
    DEFAULT_DATA_DIR,
    REVIEW_STATUSES,
    ROLE_LABELS,
    ROLES,
    STATUS_LABELS,
    AuditEntry,
    Carryover,
    Review,
    ReviewStatus,
    Role,
    RunRecord,
    Store,
    User,
)
from geo_eval.storage.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidValueError,
    NotFoundError,
    RunFilesError,
    StorageError,
)
from geo_eval.storage.runs import out_dir_state, read_manifest, run_id_of, run_record_from_out_dir
from geo_eval.storage.sqlite import SQLiteStore


def open_store(data_dir: Path, database_url: str | None = None) -> Store:
    """The store on the PostgreSQL database ``database_url`` when given, else the SQLite store of ``data_dir``.

    The database must have been prepared with ``geo-eval db init`` (else
    :class:`~geo_eval.db.errors.SchemaVersionError`).
    """
    if database_url:
        from geo_eval.db.connection import INVALID_URL, is_database_url

        if not is_database_url(database_url):
            raise InvalidValueError(INVALID_URL)
        from geo_eval.db.store import PostgresStore

        return PostgresStore(database_url)
    return SQLiteStore.in_dir(Path(data_dir))


__all__ = [
    "DEFAULT_DATA_DIR",
    "REVIEW_STATUSES",
    "ROLES",
    "ROLE_LABELS",
    "STATUS_LABELS",
    "AlreadyExistsError",
    "AuditEntry",
    "Carryover",
    "ConflictError",
    "InvalidValueError",
    "NotFoundError",
    "Review",
    "ReviewStatus",
    "Role",
    "RunFilesError",
    "RunRecord",
    "SQLiteStore",
    "StorageError",
    "Store",
    "User",
    "open_store",
    "out_dir_state",
    "read_manifest",
    "run_id_of",
    "run_record_from_out_dir",
]
