"""The PostgreSQL/PostGIS backend: connections, the versioned ``geo_eval`` schema and :class:`PostgresStore`.

=====================  ===================================================================================
``connection``         :func:`connect` (errors in Chinese), :func:`is_database_url`, :func:`redact_url`
``schema``             :data:`MIGRATIONS`, :data:`SCHEMA_VERSION`, :func:`init_schema`, :func:`upgrade_schema`,
                       :func:`check_schema`, :func:`schema_status` (``geo-eval db init/upgrade/status``)
``store``              :class:`PostgresStore`, the :class:`~geo_eval.storage.base.Store` on that schema
``errors``             :class:`DatabaseError` and its leaves
=====================  ===================================================================================

:func:`geo_eval.storage.open_store` returns a :class:`PostgresStore` when given a database URL.
"""

from __future__ import annotations

from geo_eval.db.connection import connect, is_database_url, redact_url
from geo_eval.db.errors import DatabaseError, DatabaseUnavailableError, PostGISMissingError, SchemaVersionError
from geo_eval.db.schema import (
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    check_schema,
    init_schema,
    schema_status,
    upgrade_schema,
)
from geo_eval.db.store import PostgresStore

__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "DatabaseError",
    "DatabaseUnavailableError",
    "PostGISMissingError",
    "PostgresStore",
    "SchemaVersionError",
    "check_schema",
    "connect",
    "init_schema",
    "is_database_url",
    "redact_url",
    "schema_status",
    "upgrade_schema",
]
