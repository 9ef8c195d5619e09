"""Evaluation runs: the registry, and new runs started by an administrator."""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, Request

from api.deps import AdminUser, CurrentUser, SettingsDep, StoreDep
from api.errors import Busy, Forbidden
from api.schemas import RunCreate, RunPublic, RunRegister
from geo_eval.errors import InputFileError
from geo_eval.io.run import run
from geo_eval.scheme import load_scheme
from geo_eval.storage import InvalidValueError, RunFilesError, RunRecord, run_record_from_out_dir

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/runs", tags=["评价批次"])


def _public(records: list[RunRecord], *, show_dir: bool) -> list[RunPublic]:
    latest_of_year: dict[int, str] = {}
    for r in records:  # latest first
        latest_of_year.setdefault(r.year, r.run_id)
    return [RunPublic.of(r, latest=latest_of_year[r.year] == r.run_id, show_dir=show_dir) for r in records]


@router.get(
    "",
    summary="评价批次列表",
    description="最新登记的在前；各接口默认使用最新批次，`?year=` 选该年度最新批次，`?run=` 选指定批次。",
    response_model=list[RunPublic],
)
def list_runs(user: CurrentUser, store: StoreDep) -> list[RunPublic]:
    return _public(store.list_runs(), show_dir=user.role == "admin")


def _dataset_path(text: str, root: Path | None) -> Path:
    path = Path(text).expanduser()
    if root is not None:
        root = root.resolve()
        path = (root / path).resolve()
        if not path.is_relative_to(root):
            raise Forbidden(f"数据集须位于 GEO_EVAL_DATASETS_DIR（{root}）之内")
    if not path.is_dir():
        raise InputFileError(f"数据集目录 {text} 不存在")
    return path


@router.post(
    "",
    summary="运行一次评价并登记（管理员）",
    description="在服务器上评价一个数据集目录（与 geo-eval evaluate 相同），输出写入数据目录下的 runs/，"
    "成功后登记为最新批次。致命数据问题返回 422 及问题清单；已有评价在运行时返回 409。",
    response_model=RunPublic,
    status_code=201,
)
def start_run(body: RunCreate, admin: AdminUser, store: StoreDep, settings: SettingsDep, request: Request) -> RunPublic:
    lock: threading.Lock = request.app.state.evaluation_lock
    dataset = _dataset_path(body.dataset_dir, settings.datasets_dir)
    previous = Path(store.get_run(body.previous_run).out_dir) if body.previous_run else None
    scheme = load_scheme(body.scheme)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = re.sub(r"[^\w.-]+", "_", dataset.name) or "dataset"
    out_dir = Path(settings.data_dir) / "runs" / f"{stamp}-{name}"
    if not lock.acquire(blocking=False):
        raise Busy("已有一次评价在运行，请稍后再试")
    # On PostGIS the run is stored in the database as well (and registered there by the same transaction).
    db = settings.database() if getattr(store, "backend", "") == "postgis" else None
    try:
        log.info("evaluation of %s started by %s", dataset, admin.name)
        result = run(dataset, scheme, out_dir, previous_dir=previous, flags=body.flags, db=db, actor=admin.name)
    finally:
        lock.release()
    if result.stored is not None:
        record = store.get_run(result.stored.run_id)
    else:
        record = store.add_run(run_record_from_out_dir(out_dir), actor=admin.name)
    return RunPublic.of(record, latest=True, show_dir=True)


@router.post(
    "/register",
    summary="登记已有的评价输出目录（管理员）",
    description="与 geo-eval runs add OUT_DIR 相同。",
    response_model=RunPublic,
    status_code=201,
)
def register_run(body: RunRegister, admin: AdminUser, store: StoreDep) -> RunPublic:
    try:
        found = run_record_from_out_dir(Path(body.out_dir))
    except RunFilesError as exc:
        raise InvalidValueError(str(exc)) from exc
    record = store.add_run(found, actor=admin.name)
    return RunPublic.of(record, latest=True, show_dir=True)
