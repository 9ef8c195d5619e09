"""Rankings: the rows of ``enterprises.csv`` as JSON with filters, and as xlsx / csv downloads."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import CurrentUser, ParkScope, ParkScopeDep, RunDep, StoreDep
from api.downloads import (
    CSV_TYPE,
    XLSX_TYPE,
    csv_bytes,
    file_download,
    flag_sheet,
    ranking_sheets,
    with_reviews,
    xlsx_bytes,
)
from api.rundata import RunData, records
from api.schemas import RankingsPage
from geo_eval.report.timefmt import beijing_now

router = APIRouter(prefix="/api/rankings", tags=["排名"])

County = Annotated[str | None, Query(description="县区")]
Group = Annotated[str | None, Query(description="评价分组：代码（above_scale）或名称（规上企业）")]
Grade = Annotated[str | None, Query(description="分类 A、B、C、D 或 T", pattern="^[ABCDT]$")]


def _mask(data: RunData, scope: ParkScope, county: str | None, group: str | None, grade: str | None) -> np.ndarray:
    e = data.enterprises
    m = scope.mask(e["park"])
    if county:
        m &= (e["county"] == county).to_numpy(dtype=bool)
    if group:
        m &= ((e["group"] == group) | (e["group_label"] == group)).to_numpy(dtype=bool)
    if grade:
        m &= (e["grade"] == grade).to_numpy(dtype=bool)
    return m


@router.get(
    "",
    summary="企业排名（JSON）",
    description="每行为 enterprises.csv 的全部字段。园区管委会只能看到本园区的企业；指定其他园区返回 403。",
    response_model=RankingsPage,
)
def rankings(
    user: CurrentUser,
    data: RunDep,
    scope: ParkScopeDep,
    county: County = None,
    group: Group = None,
    grade: Grade = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="最多返回的行数（默认全部）")] = None,
    offset: Annotated[int, Query(ge=0, description="跳过的行数")] = 0,
) -> RankingsPage:
    rows = data.enterprises.loc[_mask(data, scope, county, group, grade)]
    page = rows.iloc[offset : None if limit is None else offset + limit]
    return RankingsPage(
        run_id=data.run_id,
        year=data.record.year,
        total=len(rows),
        offset=offset,
        limit=limit,
        columns=list(data.enterprises.columns),
        rows=records(page),
    )


@router.get(
    "/download",
    summary="下载排名表（xlsx 或 csv）",
    description="csv 为 UTF-8（带 BOM），与 enterprises.csv 相同；xlsx 每个评价分组一张表，并附闲置／低效地块清单及复核状态。"
    "文件名为中文（RFC 5987 filename*），附 ASCII 备用名。园区管委会只能下载本园区。",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}, CSV_TYPE: {}}, "description": "排名表文件"}},
)
def download_rankings(
    user: CurrentUser,
    data: RunDep,
    scope: ParkScopeDep,
    store: StoreDep,
    format: Annotated[Literal["xlsx", "csv"], Query(description="文件格式")] = "xlsx",
    county: County = None,
    group: Group = None,
    grade: Grade = None,
) -> Response:
    mask = _mask(data, scope, county, group, grade)
    year = data.record.year

    def workbook() -> bytes:
        sheets = ranking_sheets(data.enterprises.loc[mask])
        if (data.manifest.get("flags") or {}).get("enabled"):
            flags = data.flags.loc[scope.mask(data.flags["park"])]
            reviewed = with_reviews(flags, store.reviews(data.run_id, flags["flag_id"].astype(str)))
            sheets["疑似闲置／低效地块"] = flag_sheet(reviewed)
        notes = [
            f"评价年度：{year}",
            f"评价方案：{data.record.scheme_title}（{data.record.scheme}）",
            f"评价批次：{data.run_id}",
            f"范围：{scope.label()}",
            f"导出时间：{beijing_now()}（北京时间），导出人：{user.name}",
            "复核状态：待复核、确认、排除（附理由）、待核查；以导出时为准",
        ]
        return xlsx_bytes(sheets, {"说明": notes})

    title, fallback = f"{year}年度亩均效益评价排名_{scope.label()}", f"geo-eval-rankings-{year}"
    return file_download(format, title, fallback, csv=lambda: csv_bytes(data.enterprises_text.loc[mask]), xlsx=workbook)
