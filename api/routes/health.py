"""``GET /health``: is the service up, can it reach its storage."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response

from api.deps import SettingsDep, StoreDep
from api.schemas import Health
from geo_eval import __version__
from geo_eval.storage import StorageError

log = logging.getLogger(__name__)
router = APIRouter(tags=["健康检查"])


@router.get(
    "/health",
    summary="服务与存储状态",
    description="无需登录。存储不可用时返回 503。",
    response_model=Health,
    responses={503: {"model": Health, "description": "存储不可用"}},
)
def health(store: StoreDep, settings: SettingsDep, response: Response) -> Health:
    try:
        st = store.status()
    except StorageError as exc:
        log.error("storage unavailable: %s", exc)
        response.status_code = 503
        return Health(
            status="error", version=__version__, storage={"ok": False, "error": "存储不可用"}, demo=settings.demo
        )
    storage: dict[str, Any] = {k: st[k] for k in ("backend", "ok", "journal_mode", "schema_version") if k in st}
    return Health(status="ok", version=__version__, storage=storage, runs=st.get("runs"), demo=settings.demo)
