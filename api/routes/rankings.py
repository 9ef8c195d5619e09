"""Rankings: the rows of ``enterprises.csv`` as JSON with filters, and as xlsx / csv downloads."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import CurrentUser, ParkScope, ParkScopeDep, RunDep, StoreDep
from api.downloads import (
    CSV_TYPE,
    XLSX_TYPE,
    download,
    edition_note,
    edition_suffix,
    file_name,
    flag_sheet,
    ranking_csv,
    ranking_sheets,
    ranking_unit,
    ranking_workbook_layout,
    with_reviews,
    xlsx_bytes,
)
from api.rundata import RunData, records
from api.schemas import RankingsPage
from geo_eval.io.writers import PARK_RANK_NOTE
from geo_eval.report.tables import ranking_table, without_unused_corrections
from geo_eval.report.timefmt import beijing_now

router = APIRouter(prefix="/api/rankings", tags=["排名"])

County = Annotated[str | None, Query(description="县区")]
Group = Annotated[str | None, Query(description="评价分组：代码（above_scale）或名称（规上企业）")]
Grade = Annotated[str | None, Query(description="分类 A、B、C、D 或 T", pattern="^[ABCDT]$")]


def _mask(data: RunData, scope: ParkScope, county: str | None, group: str | None, grade: str | None) -> np.ndarray:
    e = data.enterprises
    return scope.mask(e["park"]) & _filters(e, county, group, grade)


def _filters(e: pd.DataFrame, county: str | None, group: str | None, grade: str | None) -> np.ndarray:
    """Rows of ``e`` (rows of ``enterprises.csv``) chosen by the query's filters."""
    m = np.ones(len(e), dtype=bool)
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
    description="与 rankings.xlsx 的排名表相同的列和中文表头，每个名次旁写明排名范围（如“共 340 家（东海县 规上企业）”），"
    "按园区下载（园区管委会，或指定 park）时另有园区内排名。xlsx 每个评价分组一张表（数字格式、冻结到企业名称列、"
    "A4 横向打印设置），并附闲置／低效地块清单及复核状态；csv 为 UTF-8（带 BOM），计数和名次为整数。"
    "机器读取请用 OUT_DIR 中的 enterprises.csv 或 JSON 接口（英文字段名）。"
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
    e = without_unused_corrections(data.enterprises)  # 更正事项 as in rankings.xlsx: only with corrections
    rows = e.loc[scope.mask(e["park"])]  # whole parks: the rank within the park counts them all
    unit = ranking_unit(data.manifest)
    park_rank = scope.parks is not None and unit == "county"
    table = ranking_table(rows, unit=unit, park_rank=park_rank)
    keep = _filters(rows, county, group, grade)
    table, rows = table.loc[keep], rows.loc[keep]
    year = data.record.year
    record = store.get_run(data.run_id)  # its status now (the cached files keep the one read with them)
    name = file_name(f"{year}年度亩均效益评价排名_{scope.label()}{edition_suffix(record)}")
    fallback = f"geo-eval-rankings-{year}"
    if format == "csv":
        return download(ranking_csv(table), filename=f"{name}.csv", fallback=f"{fallback}.csv", media_type=CSV_TYPE)
    sheets = ranking_sheets(table, rows)
    if (data.manifest.get("flags") or {}).get("enabled"):
        flags = data.flags.loc[scope.mask(data.flags["park"])]
        reviewed = with_reviews(flags, store.reviews(data.run_id, flags["flag_id"].astype(str)))
        sheets["疑似闲置／低效地块"] = flag_sheet(reviewed)
    scheme = f"{data.record.scheme_title}（{data.record.scheme}）"
    notes = [
        f"评价年度：{year}",
        f"评价方案：{scheme}",
        f"评价批次：{data.run_id}",
        edition_note(record),
        f"范围：{scope.label()}",
        f"排名范围：按{'县区' if unit == 'county' else '园区'}、分组排名（“排名范围”列写明每个名次所在的范围及其参评企业数）",
        *([PARK_RANK_NOTE] if park_rank else []),
        f"导出时间：{beijing_now()}（北京时间），导出人：{user.name}",
        "复核状态：待复核、确认、排除（附理由）、待核查；以导出时为准",
    ]
    return download(
        xlsx_bytes(sheets, {"说明": notes}, ranking_workbook_layout(year, scope.label(), scheme)),
        filename=f"{name}.xlsx",
        fallback=f"{fallback}.xlsx",
        media_type=XLSX_TYPE,
    )
