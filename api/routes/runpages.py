"""The runs page (``GET /runs``): every registered run a user may see, with its figures and links.

Administrators see every run with the city-wide counts; reviewers too; a park committee sees the counts
of its own parks only (as ``GET /api/runs``). Each run links to its maps, its annual report, its
downloads and, when last year has a run, the comparison with it. Times are Beijing time.
"""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import PageUser, RunCacheDep, StoreDep
from api.errors import Forbidden
from api.routes.home import PAGE, PAGE_CSP, html_table
from api.routes.runs import ParkCounts
from geo_eval.errors import GeoEvalError
from geo_eval.publication.status import RUN_STATUS_LABELS, today
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
    links.append(f'<a href="/objections?year={record.year}">公示与异议</a>')
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
        current = latest[r.year] == r.run_id
        rows.append(
            [
                str(r.year),
                e(f"第 {r.version} 版"),
                _status_cell(
                    r, current=current, admin=user.role == "admin", had_publicity=_had_publicity(records, r.year)
                ),
                e(r.scheme_title or r.scheme),
                e(str(counts.get("enterprises", "—"))),
                e("、".join(f"{g} {grades.get(g, 0)}" for g in GRADES)),
                e(str(counts.get("flags", "—"))),
                e(beijing_time(r.registered_at)),
                e(r.registered_by),
                _links(r, user, years),
            ]
        )
    return rows


def _had_publicity(records: list[RunRecord], year: int) -> bool:
    return any(r.year == year and r.publicity_start for r in records)


def _status_cell(record: RunRecord, *, current: bool, admin: bool, had_publicity: bool) -> str:
    """The run's status in words; for the year's current run, an administrator's buttons to move it on."""
    label = RUN_STATUS_LABELS.get(record.status, record.status)
    text = f'<span class="status status-{e(record.status)}">{e(label)}</span>'
    if record.status == "publicity":
        text += f"<br>{e(record.publicity_start)} 至 {e(record.publicity_end)}"
    if record.superseded_by:
        text += f"<br>已被批次 {e(record.superseded_by)} 取代"
    elif not current:
        text += "<br>已被后登记的批次取代"
    if record.supersede_reason:
        text += f"<br>取代理由：{e(record.supersede_reason)}"
    if admin and current and record.status != "final":
        text += _status_forms(record, had_publicity)
    return text


def _status_forms(record: RunRecord, had_publicity: bool) -> str:
    action = f"/runs/{record.year}/status"
    day = today().isoformat()
    forms = ""
    if record.status == "draft":
        forms += (
            f'<form class="status-form" method="post" action="{action}"><input type="hidden" name="to" value="publicity">'
            f'<label>公示开始 <input type="date" name="start" value="{day}" required></label>'
            f'<label>公示结束 <input type="date" name="end" required></label>'
            '<button type="submit">开始公示</button></form>'
        )
    if record.status == "publicity" or had_publicity:
        forms += (
            f'<form class="status-form" method="post" action="{action}"><input type="hidden" name="to" value="final">'
            '<button type="submit">正式发布</button></form>'
        )
    return forms


@router.get("/runs", summary="评价批次页面（浏览器）", response_class=HTMLResponse)
def runs_page(
    user: PageUser,
    store: StoreDep,
    cache: RunCacheDep,
    request: Request,
    msg: Annotated[str, Query(max_length=300)] = "",
    kind: Annotated[str, Query(pattern="^(ok|error)$")] = "ok",
) -> HTMLResponse:
    records = store.list_runs()
    scope = "全部园区" if user.sees_all_parks() else "、".join(user.parks)
    head = ["年度", "版本", "发布状态", "评价方案", "企业数", "分类", "标记数", "登记时间", "登记人", "查看与下载"]
    rows = runs_rows(records, user, cache, request.app.state.park_counts)
    table = (
        html_table(head, rows, numeric_from=99) if rows else "<p>还没有登记评价批次（geo-eval runs add 输出目录）。</p>"
    )
    body = (
        '<header class="top"><h1>评价批次</h1><a href="/">返回首页</a></header>'
        f"{_message(msg, kind)}"
        f"<p>各年度登记的评价批次（统计范围：{e(scope)}）。每个年度以最新登记的批次为准；"
        "草稿经公示（公示期内受理异议）后正式发布，已发布的结果锁定。</p>"
        f"{table}"
    )
    return HTMLResponse(PAGE.format(title="评价批次", body=body), headers={"Content-Security-Policy": PAGE_CSP})


def _message(msg: str, kind: str) -> str:
    if not msg:
        return ""
    return f'<p class="{"error" if kind == "error" else "notice"}" role="status">{e(msg)}</p>'


@router.post("/runs/{year}/status", summary="改变发布状态（管理员，页面表单）", include_in_schema=False)
async def status_form(year: int, user: PageUser, store: StoreDep, request: Request) -> RedirectResponse:
    """The runs page's forms: the same as ``POST /api/runs/{year}/status``, then back to the page with a message."""
    if user.role != "admin":
        raise Forbidden("只有管理员可以改变发布状态")
    form = parse_qs((await request.body())[:4096].decode("utf-8", errors="replace"))
    field = {k: v[0] for k, v in form.items() if v}
    try:
        record = store.set_run_status(
            year, field.get("to", ""), start=field.get("start", ""), end=field.get("end", ""), actor=user.name
        )
    except GeoEvalError as exc:
        return RedirectResponse("/runs?" + urlencode({"msg": str(exc), "kind": "error"}), status_code=303)
    done = f"已将 {year} 年度评价结果改为：{record.status_line()}"
    return RedirectResponse("/runs?" + urlencode({"msg": done, "kind": "ok"}), status_code=303)
