"""Differentiated-policy lists (差别化政策清单): one download per agency, and the home page's links to them.

A run whose scheme has ``[[policies]]`` wrote ``policies.csv`` (one row per enterprise and measure of
its class); an agency (供电公司, 税务 …) downloads its rows as the sheet ``差别化政策·<agency>`` of
``rankings.xlsx`` (xlsx) or the same table as csv. Administrators and reviewers get every park, a park
committee its own park only (another park: 403).
"""

from __future__ import annotations

import html
from typing import Annotated, Literal
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import CurrentUser, ParkScope, ParkScopeDep, PublishedRunDep, StoreDep
from api.downloads import CSV_TYPE, XLSX_TYPE, csv_bytes, download, edition_note, edition_suffix, file_name, xlsx_bytes
from api.errors import NotFound
from api.rundata import RunData
from geo_eval.rating.scheme import TEMPLATE_BASIS, is_template_basis
from geo_eval.report.policies import policy_sheet, policy_sheet_name
from geo_eval.report.timefmt import beijing_now

router = APIRouter(prefix="/api/policies", tags=["差别化政策"])

e = html.escape
Agency = Annotated[
    str, Query(min_length=1, max_length=100, description="实施部门，如 供电公司（方案 [[policies]] 的 agency）")
]


def agencies(data: RunData) -> list[str]:
    """The agencies of a run's policy lists, in the scheme's order (none: the scheme has no ``[[policies]]``)."""
    if data.policies is None:
        return []
    listed = (data.manifest.get("policies") or {}).get("agencies")
    if isinstance(listed, list):
        return [str(a) for a in listed]
    return [str(a) for a in pd.unique(data.policies["agency"].dropna())]


def agency_rows(data: RunData, agency: str, scope: ParkScope) -> pd.DataFrame:
    """The rows of ``policies.csv`` for ``agency`` inside ``scope`` (404 for a run without lists or an
    agency it has no list for)."""
    if data.policies is None:
        raise NotFound(f"评价批次 {data.run_id} 的评价方案没有差别化政策清单（方案中没有 [[policies]]）")
    known = agencies(data)
    if agency not in known:
        raise NotFound(f"评价批次 {data.run_id} 没有实施部门“{agency}”的差别化政策清单；可选：{'、'.join(known)}")
    p = data.policies
    return p.loc[(p["agency"] == agency).to_numpy(dtype=bool) & scope.mask(p["park"])]


@router.get(
    "/download",
    summary="下载差别化政策清单（每个实施部门一份，xlsx 或 csv）",
    description="一个实施部门（如 供电公司、水务、税务、自然资源）的清单：每家企业每项措施一行（该企业分类在方案中有取值的措施），"
    "列为统一社会信用代码、企业名称、县区、园区、分类、措施、执行标准、计量单位、实施部门、依据。xlsx 与 rankings.xlsx 中"
    "“差别化政策·实施部门”表相同；csv 为同样的中文表头，UTF-8（带 BOM）。管理员、复核人员可下载全部园区，"
    "园区管委会只能下载本园区（指定其他园区返回 403）。方案没有 [[policies]] 或没有该实施部门时返回 404。",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}, CSV_TYPE: {}}, "description": "差别化政策清单文件"}},
)
def download_policies(
    user: CurrentUser,
    data: PublishedRunDep,
    store: StoreDep,
    scope: ParkScopeDep,
    agency: Agency,
    format: Annotated[Literal["xlsx", "csv"], Query(description="文件格式")] = "xlsx",
) -> Response:
    rows = agency_rows(data, agency, scope)
    sheet = policy_sheet(rows)
    year = data.record.year
    record = store.get_run(data.run_id)
    name = file_name(f"{year}年度差别化政策清单_{agency}_{scope.label()}{edition_suffix(record)}")
    fallback = f"geo-eval-policies-{year}"
    if format == "csv":
        return download(csv_bytes(sheet), filename=f"{name}.csv", fallback=f"{fallback}.csv", media_type=CSV_TYPE)
    notes = [
        f"评价年度：{year}",
        f"评价方案：{data.record.scheme_title}（{data.record.scheme}）",
        f"评价批次：{data.run_id}",
        edition_note(record),
        f"实施部门：{agency}",
        f"范围：{scope.label()}",
        f"导出时间：{beijing_now()}（北京时间），导出人：{user.name}",
        "每家企业每项措施一行：该企业的分类在方案中有取值的措施；分类没有取值的企业（及未列出 T 类的措施中的 T 类企业）不列入",
    ]
    if rows["basis"].map(is_template_basis).any():
        notes.append(f"依据为“{TEMPLATE_BASIS}”的执行标准是方案的模板值，执行前须由本市按正式文件核定")
    return download(
        xlsx_bytes({policy_sheet_name(agency): sheet}, {"说明": notes}),
        filename=f"{name}.xlsx",
        fallback=f"{fallback}.xlsx",
        media_type=XLSX_TYPE,
    )


def policy_links(data: RunData, park: str | None = None) -> list[str]:
    """Links (escaped markup) to each agency's list of the run as Excel, of ``park`` when given."""
    links = []
    for agency in agencies(data):
        query = {"run": data.run_id, **({"park": park} if park else {}), "agency": agency, "format": "xlsx"}
        links.append(f'<a href="/api/policies/download?{e(urlencode(query))}">差别化政策清单·{e(agency)}（Excel）</a>')
    return links


def policy_section(data: RunData) -> str:
    """The home page's section of agency lists for every park (empty when the run has none)."""
    links = policy_links(data)
    if not links:
        return ""
    return f'<h2>差别化政策清单</h2><p class="links">{" · ".join(links)}</p>'
