"""Flags (idle and low-efficiency land, 退二优二 candidates) as GeoJSON with their review state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.checklist import checklist_csv, checklist_rows, checklist_xlsx
from api.deps import CurrentUser, ParkScope, ParkScopeDep, RunDep, SettingsDep, StoreDep, ensure_park
from api.downloads import (
    CSV_TYPE,
    XLSX_TYPE,
    csv_bytes,
    edition_note,
    edition_suffix,
    file_download,
    flag_sheet,
    with_reviews,
    xlsx_bytes,
)
from api.geojson import feature, geojson_response, not_found
from api.routes.parcels import (
    GEOJSON_RESPONSE,
    BBox,
    Limit,
    Offset,
    bbox_positions,
    enterprise_rows,
    enterprise_usccs,
    hide_figures,
    page_bounds,
    page_response,
)
from api.rundata import RunData, records
from geo_eval.landuse.flags import FLAG_LABELS, rule_label, rule_labels, short_reasons
from geo_eval.report.timefmt import beijing_now
from geo_eval.storage import STATUS_LABELS, Review, Store

router = APIRouter(prefix="/api/flags", tags=["宗地与标记"])

FlagKind = Annotated[
    str | None,
    Query(description="标记：idle_legal、idle_exempt、idle_suspected、low_efficiency、renewal_candidate"),
]
SeverityFilter = Annotated[
    Literal["高", "中", "低"] | None,
    Query(description="严重程度：高、中、低"),
]
StatusFilter = Annotated[
    Literal["pending", "confirmed", "dismissed", "site_visit"] | None,
    Query(description="复核状态：pending 待复核、confirmed 确认、dismissed 排除、site_visit 待核查"),
]


def lookup_flag(data: RunData, flag_id: str) -> pd.Series:
    """A flag's row (404 when the run has no such flag)."""
    if flag_id not in data.flags.index:
        raise not_found("标记", flag_id)
    return data.flags.loc[[flag_id]].iloc[0]


def select_flags(
    data: RunData,
    store: Store,
    scope_mask: np.ndarray,
    *,
    flag: str | None,
    status: str | None,
    bbox: str | None,
    severity: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Review] | None]:
    """The flags matching the filters, and (with a status filter) the run's reviews already read."""
    fl = data.flags
    mask = scope_mask.copy()
    if flag:
        mask &= (fl["flag"] == flag).to_numpy(dtype=bool)
    if severity:
        mask &= (fl["severity"] == severity).to_numpy(dtype=bool)
    in_box = bbox_positions(data, bbox)
    if in_box is not None:
        mask &= fl["parcel_pos"].isin(in_box).to_numpy(dtype=bool)
    reviews = None
    if status:
        reviews = store.reviews(data.run_id)
        current = np.array([(reviews[f].status if f in reviews else "pending") for f in fl["flag_id"]], dtype=object)
        mask &= current == status
    return fl.loc[mask], reviews


def with_labels(flags: pd.DataFrame) -> pd.DataFrame:
    """Flag rows with ``rule_label`` (the rule's Chinese name) and ``short_reason`` (符合 N 项规则 for a candidate)."""
    return flags.assign(rule_label=rule_labels(flags["rule_id"]), short_reason=short_reasons(flags))


def _properties(row: dict[str, object], review: Review) -> dict[str, object]:
    props = {k: v for k, v in row.items() if k != "parcel_pos"}
    props["review"] = review.public()
    return props


@router.get(
    "",
    summary="地块标记（GeoJSON，可按范围筛选、分页）",
    description="每个要素是一宗地的一条标记（几何为宗地），属性含 flags.csv 的字段、`rule_label`（规则中文名称）、"
    "`short_reason`（简要原因；退二优二候选为“符合 N 项规则”）和 `review`（复核状态、意见、版本）。"
    "园区管委会只能看到本园区；指定其他园区返回 403。",
    response_class=Response,
    responses=GEOJSON_RESPONSE,
)
def list_flags(
    user: CurrentUser,
    data: RunDep,
    scope: ParkScopeDep,
    store: StoreDep,
    settings: SettingsDep,
    flag: FlagKind = None,
    status: StatusFilter = None,
    severity: SeverityFilter = None,
    bbox: BBox = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> Response:
    size = page_bounds(settings, limit)
    chosen, reviews = select_flags(
        data, store, scope.mask(data.flags["park"]), flag=flag, status=status, bbox=bbox, severity=severity
    )
    page = chosen.iloc[offset : offset + size]
    if reviews is None:
        reviews = store.reviews(data.run_id, page["flag_id"].astype(str))
    features = []
    for row in records(with_labels(page)):
        fid = str(row["flag_id"])
        pos = int(row["parcel_pos"])  # type: ignore[call-overload]
        geom = data.parcel_geojson[pos] if pos >= 0 else None
        features.append(feature(fid, geom, _properties(row, reviews.get(fid) or Review(data.run_id, fid))))
    return page_response(data, features, matched=len(chosen), offset=offset, limit=size)


DOWNLOAD_FORMAT = Annotated[Literal["xlsx", "csv"], Query(description="文件格式")]


def filter_text(flag: str | None, status: str | None, severity: str | None) -> str:
    """The filters of a download in Chinese (for its 说明 sheet).

    >>> filter_text("low_efficiency", "site_visit", "高"), filter_text(None, None, None)
    ('标记：低效用地；复核状态：待核查；严重程度：高', '无（全部标记）')
    """
    parts = []
    if flag:
        parts.append(f"标记：{FLAG_LABELS.get(flag, flag)}")
    if status:
        parts.append(f"复核状态：{STATUS_LABELS.get(status, status)}")
    if severity:
        parts.append(f"严重程度：{severity}")
    return "；".join(parts) or "无（全部标记）"


@dataclass(frozen=True)
class FlagDownload:
    """A download of flags: the run's flags in the user's park scope that match the filters, their reviews,
    the filters in Chinese (:func:`filter_text`) and the file format."""

    data: RunData
    scope: ParkScope
    flags: pd.DataFrame
    reviews: dict[str, Review]
    filters: str
    format: str


def flag_download(
    data: RunDep,
    scope: ParkScopeDep,
    store: StoreDep,
    format: DOWNLOAD_FORMAT = "xlsx",
    flag: FlagKind = None,
    status: StatusFilter = None,
    severity: SeverityFilter = None,
) -> FlagDownload:
    """The flags of a download (the filters of ``GET /api/flags`` but the bounding box) and their reviews."""
    mask = scope.mask(data.flags["park"])
    chosen, reviews = select_flags(data, store, mask, flag=flag, status=status, bbox=None, severity=severity)
    if reviews is None:
        reviews = store.reviews(data.run_id, chosen["flag_id"].astype(str))
    return FlagDownload(data, scope, chosen, reviews, filter_text(flag, status, severity), format)


FlagDownloadDep = Annotated[FlagDownload, Depends(flag_download)]


@router.get(
    "/download",
    summary="下载地块标记清单及复核状态（xlsx 或 csv）",
    description="疑似闲置／低效地块清单，含复核状态、意见、复核人和时间（北京时间）。筛选条件同 GET /api/flags。"
    "xlsx 为中文表头、规则中文名；csv 保留原字段名（rule_id、reviewed_at 为 UTC），另有 rule_label（规则中文名）和 "
    "reviewed_at_label（北京时间）。园区管委会只能下载本园区。",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}, CSV_TYPE: {}}, "description": "标记清单文件"}},
)
def download_flags(user: CurrentUser, asked: FlagDownloadDep, store: StoreDep) -> Response:
    data, scope = asked.data, asked.scope
    table = with_reviews(asked.flags, asked.reviews)
    year = data.record.year
    record = store.get_run(data.run_id)

    def workbook() -> bytes:
        notes = [
            f"评价年度：{year}；评价批次：{data.run_id}；范围：{scope.label()}；筛选：{asked.filters}",
            f"导出时间：{beijing_now()}（北京时间），导出人：{user.name}",
            "疑似闲置为线索，须现场核查，不是认定结论",
            edition_note(record),
        ]
        return xlsx_bytes({"疑似闲置／低效地块": flag_sheet(table)}, {"说明": notes})

    title = f"{year}年度闲置低效地块复核清单_{scope.label()}{edition_suffix(record)}"
    return file_download(asked.format, title, f"geo-eval-flags-{year}", csv=lambda: csv_bytes(table), xlsx=workbook)


@router.get(
    "/checklist",
    summary="下载现场核查清单（xlsx 或 csv）",
    description="每宗有符合筛选条件的标记的宗地一行：宗地代码、园区、县区、权利人、使用企业、面积（亩）、标记（简要原因）、"
    "复核状态、宗地内一点的经纬度（CGCS2000 与 GCJ-02，供手机导航）、地图链接，以及供现场填写的核查结果、核查人。"
    "按园区、严重程度（高、中、低）、面积从大到小排序。筛选条件同标记下载；xlsx 已设好打印（A4 横向、一页宽、每页重复表头）。"
    "园区管委会只能下载本园区。",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}, CSV_TYPE: {}}, "description": "现场核查清单文件"}},
)
def download_checklist(request: Request, user: CurrentUser, asked: FlagDownloadDep) -> Response:
    data, scope = asked.data, asked.scope
    rows = checklist_rows(data, asked.flags, asked.reviews, base_url=str(request.base_url))
    year = data.record.year

    def workbook() -> bytes:
        notes = [
            f"{year}年度现场核查清单",
            f"评价批次：{data.run_id}（{data.record.scheme_title}）",
            f"范围：{scope.label()}",
            f"筛选：{asked.filters}",
            f"宗地数：{len(rows)}；标记数：{len(asked.flags)}",
            f"导出时间：{beijing_now()}（北京时间），导出人：{user.name}",
            "中心点为宗地内的一点（不一定是几何中心，但一定在宗地内）。CGCS2000 经纬度与 WGS-84 相差厘米级，可用于奥维、"
            "两步路等；GCJ-02 经纬度用于高德、腾讯等手机地图导航。",
            "标记、复核状态按行一一对应；疑似闲置为线索，须现场核查，不是认定结论。",
            "“核查结果”“核查人”两列供现场填写。",
        ]
        return checklist_xlsx(rows, title=f"{year}年度现场核查清单 · {scope.label()}", notes=notes)

    title = f"{year}年度现场核查清单_{scope.label()}"
    fallback = f"geo-eval-checklist-{year}"
    return file_download(asked.format, title, fallback, csv=lambda: checklist_csv(rows), xlsx=workbook)


@router.get(
    "/{flag_id}",
    summary="单条标记的完整证据与复核状态（GeoJSON Feature）",
    description="属性含标记的规则、依据、原因、数值与阈值、证据，`parcel`（宗地全部字段）、`enterprise_rows`（使用企业的排名行）、"
    "`other_flags`（同一宗地的其他标记）和 `review`（复核状态；修改时提交其中的 version）。"
    "园区管委会对登记在其他园区的企业只能看到名称和统一社会信用代码（`restricted: true`）。",
    response_class=Response,
    responses=GEOJSON_RESPONSE,
)
def get_flag(flag_id: str, user: CurrentUser, data: RunDep, store: StoreDep) -> Response:
    row = lookup_flag(data, flag_id)
    ensure_park(user, row["park"])
    rec = records(with_labels(data.flags.loc[[flag_id]]))[0]
    props = _properties(rec, store.get_review(data.run_id, flag_id))
    pos = int(row["parcel_pos"])
    geom = None
    if pos >= 0:
        geom = data.parcel_geojson[pos]
        parcel = records(data.parcel_table.iloc[[pos]])
        props["parcel"] = hide_figures(user, data, parcel)[0]
    same = data.flags.loc[(data.flags["parcel_id"] == row["parcel_id"]) & (data.flags["flag_id"] != flag_id)]
    others = store.reviews(data.run_id, same["flag_id"].astype(str))
    props["other_flags"] = [
        {
            "flag_id": f,
            "flag_label": lab,
            "rule_label": rule_label(str(rule)),
            "review_status": (others[f].status if f in others else "pending"),
        }
        for f, lab, rule in zip(same["flag_id"], same["flag_label"], same["rule_id"], strict=True)
    ]
    props["enterprise_rows"] = enterprise_rows(user, data, enterprise_usccs(row["enterprises"]))
    return geojson_response(feature(flag_id, geom, props))
