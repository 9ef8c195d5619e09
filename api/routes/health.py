"""``GET /health``: is the service up, can it reach its storage."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response

from api.deps import SettingsDep, StoreDep
from api.schemas import Health
from geo_eval import __version__
from geo_eval.db.errors import DatabaseError
from geo_eval.storage import StorageError

log = logging.getLogger(__name__)
router = APIRouter(tags=["健康检查"])

STORAGE_KEYS = ("backend", "ok", "database", "postgis_version", "journal_mode", "schema_version")
"""What /health tells of the store's status (SQLite: journal mode; PostGIS: the redacted database URL)."""


@router.get(
    "/health",
    summary="服务与存储状态",
    description="无需登录。存储不可用（例如数据库无法连接）时返回 503。",
    response_model=Health,
    responses={503: {"model": Health, "description": "存储不可用"}},
)
def health(store: StoreDep, settings: SettingsDep, response: Response) -> Health:
    try:
        st = store.status()
    except StorageError as exc:
        log.error("storage unavailable: %s", exc)
        response.status_code = 503
        failed: dict[str, Any] = {"ok": False, "error": "存储不可用"}
        if isinstance(exc, DatabaseError):  # its message names the database by its redacted URL only
            failed = {"backend": "postgis", "ok": False, "database": exc.database, "error": str(exc)}
        return Health(status="error", version=__version__, storage=failed, demo=settings.demo)
    storage: dict[str, Any] = {k: st[k] for k in STORAGE_KEYS if k in st}
    return Health(status="ok", version=__version__, storage=storage, runs=st.get("runs"), demo=settings.demo)
