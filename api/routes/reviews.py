"""Reviews of flags: a reviewer's decision with optimistic concurrency, and the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminUser, CurrentUser, ReviewerUser, RunDep, StoreDep, ensure_park
from api.routes.flags import lookup_flag
from api.schemas import AuditPublic, FlagHistory, ReviewPublic, ReviewResult, ReviewUpdate

router = APIRouter(tags=["复核"])


@router.patch(
    "/api/flags/{flag_id}",
    summary="复核一条标记：确认、排除（须填理由）或待核查",
    description="仅复核人员和管理员。`version` 须为读取时的版本（未复核为 0）；其间已被他人修改则返回 409 及当前状态，"
    "不会覆盖。排除（dismissed）未填理由返回 422。每次修改都记入审计记录（谁、何时、修改前后）。",
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
