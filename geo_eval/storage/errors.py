"""Errors of the storage layer: leaves of :class:`~geo_eval.errors.GeoEvalError` mixed with built-ins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from geo_eval.errors import GeoEvalError

if TYPE_CHECKING:
    from geo_eval.storage.base import Review


class StorageError(GeoEvalError):
    """Root of the storage errors (the database cannot be opened, a write failed)."""


class NotFoundError(StorageError, LookupError):
    """No user, run or review with that key."""


class AlreadyExistsError(StorageError, FileExistsError):
    """A user with that name exists already."""


class InvalidValueError(StorageError, ValueError):
    """A value the storage refuses (unknown role, committee without a park, unknown review status)."""


class ConflictError(StorageError):
    """Optimistic concurrency: the review (or objection) changed since the version the caller read.

    ``current`` is the review or objection as it is now (anything with ``public()``), so the caller can
    show it and retry.
    """

    def __init__(self, message: str, current: Review | Any) -> None:
        super().__init__(message)
        self.current = current


class RunFilesError(StorageError, OSError):
    """A run's output directory is missing or incomplete (no ``manifest.json``, unreadable files)."""


class RunLockedError(StorageError):
    """The year's result is final (已发布): no objections, no status change, no new run without ``supersede``."""
