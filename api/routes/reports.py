"""The annual report (年度评价报告) of a year: ``GET /reports/{year}``.

Shown in the browser, or downloaded as the HTML file (``?format=html``) or, where the server has a
Chromium, as a PDF (``?format=pdf``). A park committee gets its own park's report (its parks'), and 403
for another park (``?park=``); reviewers and administrators get the whole run or one park. The page is
the report file itself (self-contained, no script) with a row of download links that is not printed;
its Content-Security-Policy allows only its own style.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from api.deps import PageUser, RunCacheDep, StoreDep, ensure_park
from api.downloads import download, file_name
from api.errors import NotFound
from api.reportdata import report_tables
from geo_eval.io.pdf import find_chromium, pdf_bytes
from geo_eval.report.html import CSP, Link, render, scope_label
from geo_eval.report.timefmt import beijing_now
from geo_eval.storage import User

log = logging.getLogger(__name__)
router = APIRouter(tags=["报告"])

HTML_TYPE = "text/html; charset=utf-8"
PDF_TYPE = "application/pdf"


def report_parks(user: User, park: str | None) -> tuple[str, ...]:
    """The parks of the report: ``park`` if the user may see it (403 otherwise), else the committee's own."""
    if park:
        ensure_park(user, park)
        return (park,)
    return () if user.sees_all_parks() else tuple(sorted(user.parks))


def _links(year: int, park: str | None) -> list[Link]:
    query = {"park": park} if park else {}
    links = [Link("返回首页", "/"), Link("下载 HTML", f"/reports/{year}?{urlencode({**query, 'format': 'html'})}")]
    if find_chromium() is not None:
        links.append(Link("下载 PDF", f"/reports/{year}?{urlencode({**query, 'format': 'pdf'})}"))
    return links


@router.get(
    "/reports/{year}",
    summary="年度评价报告（HTML 页面；可下载 HTML 或 PDF）",
    description="一份自包含的中文报告（概况、分类结果、指标分布、行业、年度变化、土地、排名、数据质量、评价方法），"
    "可打印为 A4。`format=html` 下载 HTML 文件，`format=pdf` 下载 PDF（需服务器安装 Chromium，否则 503）。"
    "园区管委会只能查看本园区的报告，指定其他园区返回 403。",
    response_class=HTMLResponse,
    responses={200: {"content": {HTML_TYPE: {}, PDF_TYPE: {}}, "description": "报告"}},
)
def annual_report(
    year: Annotated[
        int, Path(ge=1900, le=2200, description="评价年度（该年度已正式发布的批次；尚未发布则为最新登记的批次）")
    ],
    user: PageUser,
    store: StoreDep,
    cache: RunCacheDep,
    park: Annotated[str | None, Query(description="园区；园区管委会默认为本园区")] = None,
    format: Annotated[Literal["html", "pdf"] | None, Query(description="下载格式；不指定则在浏览器中显示")] = None,
) -> Response:
    parks = report_parks(user, park)
    record = store.final_run(year) or store.latest_run(year)  # 已发布 first: the year's published result
    data = cache.get(record)
    if park and park not in set(data.enterprises["park"].dropna()):
        raise NotFound(f"{year} 年度评价批次中没有园区“{park}”")
    run = report_tables(data, store, cache, parks)
    text = render(
        run, generated_at=beijing_now(), links=() if format else _links(year, park), status=record.status_line()
    )
    name = file_name(f"{year}年度评价报告_{scope_label(run)}")
    if format == "html":
        return download(
            text.encode("utf-8"), filename=f"{name}.html", fallback=f"geo-eval-report-{year}.html", media_type=HTML_TYPE
        )
    if format == "pdf":
        return download(
            pdf_bytes(text), filename=f"{name}.pdf", fallback=f"geo-eval-report-{year}.pdf", media_type=PDF_TYPE
        )
    return HTMLResponse(text, headers={"Content-Security-Policy": CSP})
