"""Errors of the PostgreSQL/PostGIS backend: leaves of :class:`~geo_eval.storage.errors.StorageError`.

Every message is one line in Chinese that names the database by its redacted URL (never its password)
and says what to do.
"""

from __future__ import annotations

from geo_eval.storage.errors import StorageError


class DatabaseError(StorageError):
    """Root of the database errors; ``database`` is the redacted URL of the database concerned."""

    def __init__(self, message: str, *, database: str = "") -> None:
        super().__init__(" ".join(message.split()))
        self.database = database


class DatabaseUnavailableError(DatabaseError, ConnectionError):
    """The database cannot be reached: refused, unknown host, authentication failed, no such database."""


class PostGISMissingError(DatabaseError):
    """The postgis extension is neither installed in the database nor installable by this user."""


class SchemaVersionError(DatabaseError):
    """The ``geo_eval`` schema is missing, older than this tool (upgrade it) or newer (upgrade geo-eval)."""


def first_line(exc: BaseException) -> str:
    """The server's primary message of a database error on one line (no SQL, no context lines)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return " ".join(str(primary or exc).split())
