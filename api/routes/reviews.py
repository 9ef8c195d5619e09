"""Reviews of flags: a reviewer's decision with optimistic concurrency, and the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminUser, CurrentUser, ReviewerUser, RunDep, StoreDep, ensure_park
from api.errors import Forbidden
from api.geojson import not_found
from api.routes.flags import lookup_flag
from api.rundata import RunData
from api.schemas import (
    AuditPublic,
    BatchFailure,
    BatchItem,
    BatchResult,
    BatchSuccess,
    FlagHistory,
    ReviewBatch,
    ReviewPublic,
    ReviewResult,
    ReviewUpdate,
)
from geo_eval.storage import ConflictError, Store, User

BatchOutcome = BatchSuccess | BatchFailure

router = APIRouter(tags=["复核"])


@router.patch(
    "/api/flags/{flag_id}",
    summary="复核一条标记：确认、排除（须填理由）、待核查或撤回",
    description="仅复核人员和管理员。status：confirmed 确认、dismissed 排除、site_visit 待核查、pending 撤回（回到待复核）。"
    "`version` 须为读取时的版本（未复核为 0）；其间已被他人修改则返回 409，`detail` 用中文说明他人的决定、意见和时间"
    "（北京时间），`current` 为当前状态，不会覆盖。排除（dismissed）未填理由返回 422。"
    "每次修改都记入审计记录（谁、何时、修改前后）。",
    response_model=ReviewResult,
    responses={
        403: {"description": "无复核权限"},
        404: {"description": "本批次没有该标记"},
        409: {"description": "版本冲突：已被他人修改"},
        422: {"description": "请求无效（如排除未填理由）"},
    },
)
def review_flag(
    flag_id: str, body: ReviewUpdate, reviewer: ReviewerUser, data: RunDep, store: StoreDep
) -> ReviewResult:
    row = lookup_flag(data, flag_id)
    ensure_park(reviewer, row["park"])
    review = store.set_review(
        data.run_id, flag_id, status=body.status, comment=body.comment, version=body.version, actor=reviewer.name
    )
    return ReviewResult(run_id=data.run_id, flag_id=flag_id, review=ReviewPublic.of(review))


@router.post(
    "/api/reviews/batch",
    summary="批量复核：多条标记设为同一状态（如本宗地全部确认）",
    description="仅复核人员和管理员。每条标记各自按提交的 `version` 比较后修改、各记一条审计记录；"
    "某条已被他人修改（conflict）、本批次没有（not_found）或无权复核其园区（forbidden）时只跳过该条，其余照常修改。"
    "返回 200，`results` 与 `items` 顺序一致。排除（dismissed）须填理由，否则整批 422。",
    response_model=BatchResult,
    responses={403: {"description": "无复核权限"}, 422: {"description": "请求无效（如排除未填理由、条数不在 1–500）"}},
)
def review_batch(body: ReviewBatch, reviewer: ReviewerUser, data: RunDep, store: StoreDep) -> BatchResult:
    results = [_review_one(item, body, reviewer, data, store) for item in body.items]
    succeeded = sum(1 for r in results if r.ok)
    return BatchResult(
        run_id=data.run_id, status=body.status, succeeded=succeeded, failed=len(results) - succeeded, results=results
    )


def _review_one(item: BatchItem, body: ReviewBatch, reviewer: User, data: RunData, store: Store) -> BatchOutcome:
    """One flag of a batch: its own park check and compare-and-set (its own transaction and audit entry)."""
    fid = item.flag_id
    if fid not in data.flags.index:
        return BatchFailure(flag_id=fid, error="not_found", detail=str(not_found("标记", fid)), current=None)
    try:
        ensure_park(reviewer, data.flags.at[fid, "park"])
    except Forbidden as exc:
        return BatchFailure(flag_id=fid, error="forbidden", detail=str(exc), current=None)
    try:
        review = store.set_review(
            data.run_id, fid, status=body.status, comment=body.comment, version=item.version, actor=reviewer.name
        )
    except ConflictError as exc:
        return BatchFailure(flag_id=fid, error="conflict", detail=str(exc), current=ReviewPublic.of(exc.current))
    return BatchSuccess(flag_id=fid, review=ReviewPublic.of(review))


@router.get(
    "/api/flags/{flag_id}/history",
    summary="标记的复核记录（谁、何时、修改前后）",
    response_model=FlagHistory,
)
def flag_history(flag_id: str, user: CurrentUser, data: RunDep, store: StoreDep) -> FlagHistory:
    row = lookup_flag(data, flag_id)
    ensure_park(user, row["park"])
    return FlagHistory(
        run_id=data.run_id,
        flag_id=flag_id,
        review=ReviewPublic.of(store.get_review(data.run_id, flag_id)),
        entries=[AuditPublic.of(e) for e in store.history(data.run_id, flag_id)],
    )


@router.get(
    "/api/audit",
    summary="审计记录（管理员）",
    description="复核、用户和评价批次的全部改动，最新的在前。审计记录只增不改。",
    response_model=list[AuditPublic],
)
def audit(
    admin: AdminUser,
    store: StoreDep,
    run_id: Annotated[str | None, Query(alias="run", description="只看某评价批次")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="最多返回条数")] = 1000,
) -> list[AuditPublic]:
    return [AuditPublic.of(e) for e in store.audit(run_id=run_id, limit=limit)]
