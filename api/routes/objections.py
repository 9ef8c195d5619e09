"""Objections (异议) to a run in publicity, their decisions, evidence files and the tables made of them.

A park committee records objections for its own parks' enterprises and parcels (on their behalf), an
administrator for any; an administrator or reviewer decides them. Objections of another park are 403
everywhere for a committee. The run objected to is the year's current run, which must be 公示中 and
within its dates (:func:`geo_eval.publication.status.objection_window`); once the year is 已发布 nothing
changes any more.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import CurrentUser, ReviewerUser, RunCacheDep, StoreDep
from api.downloads import CSV_TYPE, content_disposition, csv_bytes, download, file_download, file_name, xlsx_bytes
from api.errors import Forbidden
from api.schemas import ObjectionCreate, ObjectionDecision
from geo_eval.inputs.corrections import CORRECTABLE_FIELDS
from geo_eval.io.xlsx import Layout
from geo_eval.publication.exports import corrections_table, register_table
from geo_eval.publication.objections import Objection, find_subject, format_value
from geo_eval.report.timefmt import beijing_time
from geo_eval.storage import User

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/objections", tags=["公示与异议"])

YearQuery = Annotated[int, Query(description="评价年度", ge=1900, le=2200)]


def _may_see(user: User, objection: Objection) -> None:
    if not user.may_see_park(objection.park):
        raise Forbidden(f"无权查看园区“{objection.park}”的异议")


def _may_record(user: User, park: str) -> None:
    if user.role == "reviewer":
        raise Forbidden("异议由园区管委会（代企业）或管理员登记；复核人员负责处理异议")
    if user.role == "committee" and park not in user.parks:
        raise Forbidden(
            f"只能为本园区（{'、'.join(user.parks)}）的企业和宗地登记异议，“{park or '未注明园区'}”不在其中"
        )


@router.post(
    "",
    summary="登记异议（园区管委会代企业登记，或管理员）",
    description="对该年度当前批次（须为公示中且在公示期内）的一项数据提出异议。企业数据（税收、销售收入、能耗…）"
    "给 uscc；宗地数据（用地面积 registered_area_m2、宗地权利人 holder_uscc）给 parcel_id（企业只持有一宗地时"
    "也可只给 uscc）。回复含异议编号 id、状态 open（待处理）、公示值 run_value 和版本 version。",
    status_code=201,
)
def add_objection(body: ObjectionCreate, user: CurrentUser, store: StoreDep, cache: RunCacheDep) -> dict[str, Any]:
    record = store.latest_run(body.year)
    data = cache.get(record)
    subject = find_subject(
        data.enterprises, data.parcel_table, uscc=body.uscc, parcel_id=body.parcel_id, field=body.field
    )
    _may_record(user, subject.park)
    draft = Objection(
        id=0,
        year=body.year,
        run_id=record.run_id,
        park=subject.park,
        uscc=subject.uscc,
        parcel_id=subject.parcel_id,
        enterprise=subject.enterprise,
        field=body.field,
        run_value=subject.run_value,
        claimed_value=body.claimed_value,
        reason=body.reason,
    )
    return store.add_objection(draft, run_id=record.run_id, actor=user.name).public()


@router.get("", summary="异议列表", description="园区管委会只看到本园区的异议；`park=` 另一园区为 403。")
def list_objections(
    user: CurrentUser,
    store: StoreDep,
    year: Annotated[int | None, Query(description="评价年度", ge=1900, le=2200)] = None,
    park: Annotated[str | None, Query(description="园区")] = None,
    status: Annotated[str | None, Query(description="open（待处理）、accepted（采纳）、rejected（不采纳）")] = None,
) -> list[dict[str, Any]]:
    return [o.public() for o in _objections(user, store, year, park, status)]


def _objections(user: User, store: Any, year: int | None, park: str | None, status: str | None) -> list[Objection]:
    if park and not user.may_see_park(park):
        raise Forbidden(f"无权查看园区“{park}”的异议")
    parks = [park] if park else (None if user.sees_all_parks() else list(user.parks))
    return list(store.list_objections(year=year, parks=parks, status=status or None))


@router.get(
    "/subjects",
    summary="可提出异议的企业和宗地（登记页面用）",
    description="该年度当前批次中某园区的企业（各项可异议数据的公示值）和宗地（用地面积、权利人）。",
)
def subjects(
    year: YearQuery,
    park: Annotated[str, Query(description="园区")],
    user: CurrentUser,
    store: StoreDep,
    cache: RunCacheDep,
) -> dict[str, Any]:
    if not user.may_see_park(park):
        raise Forbidden(f"无权查看园区“{park}”的数据")
    record = store.latest_run(year)
    data = cache.get(record)
    e = data.enterprises.loc[data.enterprises["park"] == park]
    p = data.parcel_table.loc[data.parcel_table["park"] == park]
    efields = [f.name for f in CORRECTABLE_FIELDS.values() if f.table == "enterprises"]
    enterprises = [
        {"uscc": r["uscc"], "name": r["name"], "values": {f: format_value(r.get(f)) for f in efields}}
        for _, r in e.sort_values("name").iterrows()
    ]
    parcels = [
        {
            "parcel_id": r["parcel_id"],
            "holder_uscc": format_value(r.get("holder_uscc")),
            "users": str(r.get("users") or ""),
            "values": {
                "registered_area_m2": format_value(r.get("registered_area_m2")),
                "holder_uscc": format_value(r.get("holder_uscc")),
            },
        }
        for _, r in p.drop(columns="geometry", errors="ignore").sort_values("parcel_id").iterrows()
    ]
    fields = [
        {"name": f.name, "label": f.label, "table": f.table, "kind": f.kind, "unit": f.unit}
        for f in CORRECTABLE_FIELDS.values()
    ]
    return {
        "run": record.run_id,
        "status_line": record.status_line(),
        "enterprises": enterprises,
        "parcels": parcels,
        "fields": fields,
    }


@router.get("/register", summary="下载异议处理登记表（xlsx 或 csv）")
def register_download(
    year: YearQuery,
    user: CurrentUser,
    store: StoreDep,
    park: Annotated[str | None, Query(description="园区")] = None,
    format: Annotated[str, Query(pattern="^(xlsx|csv)$", description="xlsx 或 csv")] = "xlsx",
) -> Response:
    table = register_table(_objections(user, store, year, park, None))
    scope = park or ("全部园区" if user.sees_all_parks() else "、".join(user.parks))
    run = store.latest_run(year)
    title = f"{year}年度异议处理登记表_{scope}"
    layout = Layout(
        title=f"{year} 年度 异议处理登记表（{scope}）", subtitle=run.status_line(), frozen_through=("企业名称",)
    )
    return file_download(
        format,
        title,
        f"geo-eval-objections-{year}",
        csv=lambda: csv_bytes(table),
        xlsx=lambda: xlsx_bytes({"异议处理登记表": table}, layout=layout),
    )


@router.get(
    "/corrections.csv",
    summary="下载更正表 corrections.csv（复核人员、管理员）",
    description="该年度采纳的异议，列为 correction_id, uscc, parcel_id, field, run_value, corrected_value, reason, "
    "objection_id, decided_by, decided_at（UTF-8 带 BOM）；与 geo-eval objections export 相同，"
    "供 geo-eval evaluate --corrections 使用。",
)
def corrections_download(year: YearQuery, user: ReviewerUser, store: StoreDep) -> Response:
    table = corrections_table(store.list_objections(year=year, status="accepted"))
    return download(csv_bytes(table), filename="corrections.csv", fallback="corrections.csv", media_type=CSV_TYPE)


@router.get("/{objection_id}", summary="一条异议")
def get_objection(objection_id: int, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    objection = store.get_objection(objection_id)
    _may_see(user, objection)
    return objection.public()


@router.patch(
    "/{objection_id}",
    summary="处理异议：采纳或不采纳（复核人员、管理员）",
    description="采纳（accepted）须有更正值（空则取主张值），不采纳（rejected）须填理由；version 须为读取时的版本，"
    "不符返回 409 及当前处理结果。该年度已正式发布后返回 409。",
)
def decide(objection_id: int, body: ObjectionDecision, user: ReviewerUser, store: StoreDep) -> dict[str, Any]:
    done = store.decide_objection(
        objection_id,
        decision=body.decision,
        corrected_value=body.corrected_value,
        reason=body.reason,
        version=body.version,
        actor=user.name,
    )
    return done.public()


@router.get("/{objection_id}/history", summary="异议的处理记录（审计）")
def history(objection_id: int, user: CurrentUser, store: StoreDep) -> list[dict[str, Any]]:
    _may_see(user, store.get_objection(objection_id))
    return [
        {
            "id": a.id,
            "at": a.at,
            "at_label": beijing_time(a.at),
            "actor": a.actor,
            "action": a.action,
            "action_label": HISTORY_LABELS.get(a.action, a.action),
            "before": a.before,
            "after": a.after,
        }
        for a in store.objection_history(objection_id)
    ]


HISTORY_LABELS = {"objection.add": "登记异议", "objection.evidence": "上传证明材料", "objection.decide": "处理异议"}


@router.post(
    "/{objection_id}/evidence",
    summary="上传证明材料（PDF、PNG 或 JPEG，每个不超过 10 MB，每条异议最多 5 个）",
    description="请求内容即文件本身（Content-Type 为文件类型），`?name=` 为文件名。只能在异议处理前上传。",
    status_code=201,
)
async def upload_evidence(
    objection_id: int,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    name: Annotated[str, Query(description="文件名", max_length=200)] = "证明材料",
) -> dict[str, Any]:
    objection = store.get_objection(objection_id)
    _may_see(user, objection)
    _may_record(user, objection.park)
    data = await request.body()
    return store.add_evidence(objection_id, name=name, data=data, actor=user.name).public()


@router.get("/{objection_id}/evidence/{file_no}", summary="下载证明材料")
def get_evidence(objection_id: int, file_no: int, user: CurrentUser, store: StoreDep) -> Response:
    _may_see(user, store.get_objection(objection_id))
    item, data = store.get_evidence(objection_id, file_no)
    return Response(
        data,
        media_type=item.content_type,
        headers={
            "Content-Disposition": content_disposition(file_name(item.name), f"evidence-{objection_id}-{file_no}"),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
