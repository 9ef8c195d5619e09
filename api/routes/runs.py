"""Evaluation runs: the registry, and new runs started by an administrator.

A park committee sees each run's counts for its own parks only (enterprises, classes, parcels, flags,
blocks), computed from the run's data (:func:`park_counts`), never the city-wide figures.

``POST /api/runs`` evaluates only datasets inside ``GEO_EVAL_DATASETS_DIR``, and a scheme given as a
file only from there too (:func:`inside_datasets_dir`: no ``..``, no symbolic link leading out); the
presets are always available. Without that setting it refuses, except in demo mode.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from api.deps import AdminUser, CurrentUser, RunCacheDep, SettingsDep, StoreDep
from api.errors import Busy, Forbidden
from api.evallock import EvaluationLock
from api.rundata import RunCache, RunData
from api.schemas import RunCreate, RunPublic, RunRegister, RunStatusChange
from api.settings import Settings
from geo_eval.errors import GeoEvalError, InputFileError
from geo_eval.inputs.corrections import CORRECTIONS_FILE
from geo_eval.io import csvout
from geo_eval.io.memory import release_memory
from geo_eval.io.run import run
from geo_eval.io.runtiles import register_tiles
from geo_eval.publication.exports import corrections_table
from geo_eval.rating.scheme import Scheme, load_scheme, parse_scheme, preset_names, preset_text
from geo_eval.storage import InvalidValueError, RunFilesError, RunRecord, Store, User, run_record_from_out_dir

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/runs", tags=["评价批次"])


GRADE_ORDER = ("A", "B", "C", "D", "T")
PARK_COUNTS_SIZE = 256


def park_counts(data: RunData, parks: Iterable[str]) -> dict[str, Any]:
    """A run's headline counts (as :func:`geo_eval.storage.runs.counts_of`) for some parks only.

    ``leases`` and ``exceptions`` are city-wide figures of the inputs and are None here; ``parks`` names
    the parks counted.
    """
    chosen = sorted(set(parks))
    e, p, fl = data.enterprises, data.parcel_table, data.flags
    grades = e.loc[e["park"].isin(chosen), "grade"].value_counts()
    counts: dict[str, Any] = {
        "parks": chosen,
        "enterprises": int(e["park"].isin(chosen).sum()),
        "parcels": int(p["park"].isin(chosen).sum()),
        "leases": None,
        "exceptions": None,
        "grades": {g: int(grades[g]) for g in GRADE_ORDER if g in grades.index},
        "flags_enabled": bool(data.record.counts.get("flags_enabled", len(fl) > 0)),
    }
    if counts["flags_enabled"]:
        mine = fl.loc[fl["park"].isin(chosen)]
        counts["flags"] = len(mine)
        by_flag = mine.groupby("flag")["parcel_id"].nunique()
        counts["flagged_parcels_by_flag"] = {str(k): int(v) for k, v in sorted(by_flag.items())}
        counts["blocks"] = _park_blocks(data, chosen)
    return counts


def _park_blocks(data: RunData, parks: list[str]) -> dict[str, int]:
    """Renewal blocks by kind that hold a parcel of ``parks``."""
    if data.blocks is None or "block_id" not in data.parcel_table.columns:
        return {}
    p = data.parcel_table
    ids = set(p.loc[p["park"].isin(parks), "block_id"].dropna().astype(str))
    b = data.blocks
    kinds = b.loc[b["block_id"].astype(str).isin(ids), "kind"].value_counts()
    return {str(k): int(v) for k, v in sorted(kinds.items())}


class ParkCounts:
    """:func:`park_counts` remembered per run (as registered) and set of parks, so that listing the runs
    does not read every run's files again."""

    def __init__(self, size: int = PARK_COUNTS_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str, str, frozenset[str]], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, record: RunRecord, parks: frozenset[str], cache: RunCache) -> dict[str, Any]:
        key = (record.run_id, record.registered_at, record.stored_at, parks)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        try:
            counts = park_counts(cache.get(record), parks)
        except (GeoEvalError, OSError) as exc:  # files gone: say so rather than show city-wide figures
            log.warning("counts of run %s for %s unavailable: %s", record.run_id, sorted(parks), exc)
            return {"parks": sorted(parks), "unavailable": "该批次的数据无法读取，不能按园区统计"}
        with self._lock:
            self._items[key] = counts
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return counts


def _public(records: list[RunRecord], *, show_dir: bool) -> list[RunPublic]:
    latest_of_year: dict[int, str] = {}
    for r in records:  # latest first
        latest_of_year.setdefault(r.year, r.run_id)
    return [RunPublic.of(r, latest=latest_of_year[r.year] == r.run_id, show_dir=show_dir) for r in records]


@router.get(
    "",
    summary="评价批次列表",
    description="最新登记的在前；各接口默认使用最新批次，`?year=` 选该年度最新批次，`?run=` 选指定批次。"
    "园区管委会看到的 `counts` 只统计本园区（`parks`）：企业数、分类、宗地数、标记、连片区块；全市的租赁与数据问题数不显示。",
    response_model=list[RunPublic],
)
def list_runs(user: CurrentUser, store: StoreDep, cache: RunCacheDep, request: Request) -> list[RunPublic]:
    records = store.list_runs()
    if not user.sees_all_parks():
        records = _for_parks(records, user, cache, request.app.state.park_counts)
    return _public(records, show_dir=user.role == "admin")


def _for_parks(records: list[RunRecord], user: User, cache: RunCache, counts: ParkCounts) -> list[RunRecord]:
    parks = frozenset(user.parks)
    return [replace(r, counts=counts.get(r, parks, cache)) for r in records]


def inside_datasets_dir(text: str, root: Path, what: str) -> Path:
    """``text`` (relative to ``root``, or absolute) resolved, when it lies inside ``root``; else 403.

    ``..`` is refused outright; symbolic links are followed, so one leading out of ``root`` is refused.
    """
    raw = Path(text)
    if ".." in raw.parts:
        raise Forbidden(f"{what} {text} 含有“..”：只能使用 GEO_EVAL_DATASETS_DIR（{root}）之内的路径")
    base = root.resolve()
    path = (base / raw).resolve()
    if not path.is_relative_to(base):
        raise Forbidden(f"{what} {text} 不在 GEO_EVAL_DATASETS_DIR（{root}）之内（或是指向其外的符号链接）")
    return path


NOT_CONFIGURED = (
    "未配置 GEO_EVAL_DATASETS_DIR：服务只评价该目录下的数据集，不评价服务器上的任意目录。"
    "请管理员设置后重启服务（或在服务器上用 geo-eval evaluate 评价后登记）"
)


def _dataset_path(text: str, settings: Settings) -> Path:
    if settings.datasets_dir is not None:
        path = inside_datasets_dir(text, settings.datasets_dir, "数据集")
    elif settings.demo:
        path = Path(text)
    else:
        raise Forbidden(NOT_CONFIGURED)
    if not path.is_dir():
        raise InputFileError(f"数据集目录 {text} 不存在")
    return path


def _scheme(text: str, settings: Settings) -> Scheme:
    """A preset by name, or a scheme file of the datasets directory (any file in demo mode without one)."""
    if text in preset_names():
        return parse_scheme(preset_text(text), origin=f"预置方案 {text}")
    if not (text.endswith(".toml") or "/" in text or "\\" in text):
        preset_text(text)  # no such preset: SchemeError naming the presets
    if settings.datasets_dir is not None:
        return load_scheme(inside_datasets_dir(text, settings.datasets_dir, "方案文件"))
    if settings.demo:
        return load_scheme(text)
    raise Forbidden(NOT_CONFIGURED)


@router.post(
    "",
    summary="运行一次评价并登记（管理员）",
    description="在服务器上评价一个数据集目录（与 geo-eval evaluate 相同），输出写入数据目录下的 runs/，"
    "成功后登记为最新批次。数据集（及方案文件）须位于 GEO_EVAL_DATASETS_DIR 之内（相对该目录或绝对路径；"
    "“..”、指向其外的符号链接、未配置该目录时一律 403，演示模式除外）；方案也可用预置方案名。"
    "致命数据问题返回 422 及问题清单；已有评价在运行时返回 409。`corrections_year` 按该年度采纳的异议更正后评价"
    "（更正表写在输出目录旁），登记为该年度的下一版本；该年度已正式发布时须 `supersede` 并说明理由。",
    response_model=RunPublic,
    status_code=201,
)
def start_run(body: RunCreate, admin: AdminUser, store: StoreDep, settings: SettingsDep, request: Request) -> RunPublic:
    lock: EvaluationLock = request.app.state.evaluation_lock
    dataset = _dataset_path(body.dataset_dir, settings)
    scheme = _scheme(body.scheme, settings)
    previous = Path(store.get_run(body.previous_run).out_dir) if body.previous_run else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = re.sub(r"[^\w.-]+", "_", dataset.name) or "dataset"
    out_dir = Path(settings.data_dir) / "runs" / f"{stamp}-{name}"
    # On PostGIS the run is stored in the database as well (and registered there by the same transaction).
    db = settings.database() if getattr(store, "backend", "") == "postgis" else None
    with lock.hold() as free:  # one evaluation at a time in every worker and server (api.evallock)
        if not free:
            raise Busy("已有一次评价在运行，请稍后再试")
        log.info("evaluation of %s started by %s", dataset, admin.name)
        corrections = _corrections_file(store, body.corrections_year, out_dir)
        result = run(
            dataset,
            scheme,
            out_dir,
            previous_dir=previous,
            flags=body.flags,
            db=db,
            actor=admin.name,
            corrections=corrections,
            supersede=body.supersede_reason.strip() if body.supersede else "",
            tiles=True,
        )
        stored, job = result.stored, result.tile_job
        del result  # the evaluation is let go before the tiles are cut (they are read back from the files)
        release_memory()
        if job is not None:
            log.info("run %s: %s", job.record.run_id, job())
    if stored is not None:
        record = store.get_run(stored.run_id)
    else:
        found = replace(
            run_record_from_out_dir(out_dir), supersede=body.supersede, supersede_reason=body.supersede_reason
        )
        record = store.add_run(found, actor=admin.name)
        log.info("run %s: %s", record.run_id, register_tiles(out_dir, record.run_id)[1])
    return RunPublic.of(record, latest=True, show_dir=True)


def _corrections_file(store: Store, year: int | None, out_dir: Path) -> Path | None:
    """The accepted objections of ``year`` as ``corrections.csv`` beside ``out_dir`` (None without a year)."""
    if year is None:
        return None
    path = out_dir.parent / f"{out_dir.name}-{CORRECTIONS_FILE}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csvout.csv_bytes(corrections_table(store.list_objections(year=year, status="accepted"))))
    return path


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
    found = replace(found, supersede=body.supersede, supersede_reason=body.supersede_reason)
    record = store.add_run(found, actor=admin.name)
    log.info("run %s: %s", record.run_id, register_tiles(Path(body.out_dir), record.run_id)[1])
    return RunPublic.of(record, latest=True, show_dir=True)


@router.post(
    "/{year}/status",
    summary="改变年度评价结果的发布状态（管理员）",
    description="把该年度当前批次（最新登记的）改为公示中（publicity，须给公示开始和结束日期）或已发布（final）。"
    "草稿须先公示；公示后按异议更正重新评价的新版本可直接发布。已发布的批次已锁定（409）。"
    "与 geo-eval runs status YEAR --to … 相同。",
    response_model=RunPublic,
)
def change_status(year: int, body: RunStatusChange, admin: AdminUser, store: StoreDep) -> RunPublic:
    record = store.set_run_status(year, body.to, start=body.start, end=body.end, actor=admin.name)
    return RunPublic.of(record, latest=True, show_dir=True)
