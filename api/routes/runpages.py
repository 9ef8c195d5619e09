"""The runs page (``GET /runs``): every registered run a user may see, with its figures and links.

Administrators see every run with the city-wide counts; reviewers too; a park committee sees the counts
of its own parks only (as ``GET /api/runs``). Each run links to its maps, its annual report, its
downloads and, when last year has a run, the comparison with it. Times are Beijing time.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import PageUser, RunCacheDep, StoreDep
from api.routes.home import PAGE, PAGE_CSP, html_table
from api.routes.runs import ParkCounts
from geo_eval.report.timefmt import beijing_time
from geo_eval.storage import RunRecord, User

router = APIRouter(tags=["评价批次"])

e = html.escape
GRADES = ("A", "B", "C", "D", "T")


def _counts(record: RunRecord, user: User, cache: Any, park_counts: ParkCounts) -> dict[str, Any]:
    if user.sees_all_parks():
        return record.counts or {}
    return park_counts.get(record, frozenset(user.parks), cache)


def _links(record: RunRecord, user: User, years: set[int]) -> str:
    q = urlencode({"run": record.run_id})
    links = [
        f'<a href="/maps/?{e(q)}">地图</a>',
        f'<a href="/reports/{record.year}">评价报告</a>',
        f'<a href="/api/rankings/download?{e(q)}&amp;format=xlsx">排名表</a>',
        f'<a href="/api/flags/download?{e(q)}&amp;format=xlsx">标记清单</a>',
    ]
    if record.year - 1 in years:
        compare = urlencode({"previous": record.year - 1, "format": "csv"})
        links.append(f'<a href="/api/runs/{record.year}/compare?{e(compare)}">与上年分类变化</a>')
    return " · ".join(links)


def runs_rows(records: list[RunRecord], user: User, cache: Any, park_counts: ParkCounts) -> list[list[str]]:
    """One row per run, latest first: the cells as escaped markup."""
    latest: dict[int, str] = {}
    for r in records:
        latest.setdefault(r.year, r.run_id)
    years = set(latest)
    rows = []
    for r in records:
        counts = _counts(r, user, cache, park_counts)
        grades = counts.get("grades") or {}
        status = "最新批次" if latest[r.year] == r.run_id else "已被后登记的批次取代"
        rows.append(
            [
                str(r.year),
                e(r.scheme_title or r.scheme),
                e(status),
                e(str(counts.get("enterprises", "—"))),
                e("、".join(f"{g} {grades.get(g, 0)}" for g in GRADES)),
                e(str(counts.get("flags", "—"))),
                e(beijing_time(r.registered_at)),
                e(r.registered_by),
                _links(r, user, years),
            ]
        )
    return rows


@router.get("/runs", summary="评价批次页面（浏览器）", response_class=HTMLResponse)
def runs_page(user: PageUser, store: StoreDep, cache: RunCacheDep, request: Request) -> HTMLResponse:
    records = store.list_runs()
    scope = "全部园区" if user.sees_all_parks() else "、".join(user.parks)
    head = ["年度", "评价方案", "状态", "企业数", "分类", "标记数", "登记时间", "登记人", "查看与下载"]
    rows = runs_rows(records, user, cache, request.app.state.park_counts)
    table = (
        html_table(head, rows, numeric_from=99) if rows else "<p>还没有登记评价批次（geo-eval runs add 输出目录）。</p>"
    )
    body = (
        '<header class="top"><h1>评价批次</h1><a href="/">返回首页</a></header>'
        f"<p>各年度登记的评价批次（统计范围：{e(scope)}）。每个年度以最新登记的批次为准。</p>{table}"
    )
    return HTMLResponse(PAGE.format(title="评价批次", body=body), headers={"Content-Security-Policy": PAGE_CSP})
