"""The objections page (``GET /objections``): record, list and decide the objections (异议) of a year.

The page is a shell (the year's status line as a banner, the year switch) and a JSON block of what the
page's script (``/static/js/objections.js``) needs: who is looking and what they may do, the parks, the
fields an objection may name and the URLs of :mod:`api.routes.objections`. The script lists, shows,
records and decides objections through those routes; every text it shows is set as text. A park
committee records objections for its own parks while the run is 公示中 (and within its dates), an
administrator for any park; reviewers and administrators decide. Times are Beijing time (the routes'
``*_label`` fields). The page allows scripts only from this service.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import PageUser, RunCacheDep, StoreDep
from geo_eval.inputs.corrections import CORRECTABLE_FIELDS
from geo_eval.maps.page import script_json
from geo_eval.publication.objections import OBJECTION_STATUS_LABELS
from geo_eval.publication.status import RUN_STATUS_LABELS, objection_window
from geo_eval.storage import ROLE_LABELS, RunFilesError, RunRecord, User

log = logging.getLogger(__name__)
router = APIRouter(tags=["公示与异议"])

e = html.escape
OBJECTIONS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
"""The page's Content-Security-Policy: its script and styles from this service only."""

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · 亩均效益评价</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="/static/css/pages.css">
<link rel="stylesheet" href="/static/css/objections.css">
<script type="module" src="/static/js/objections.js"></script>
</head><body><main class="wide objections">{body}</main>
<script type="application/json" id="ob-config">{config}</script>
</body></html>
"""


def _latest_by_year(records: list[RunRecord]) -> dict[int, RunRecord]:
    latest: dict[int, RunRecord] = {}
    for r in records:  # latest first
        latest.setdefault(r.year, r)
    return latest


def _banner(record: RunRecord, why: str) -> str:
    kind = "open" if not why else record.status
    lead = "公示期内可登记异议：园区管委会代本园区企业登记，复核人员处理。" if not why else why + "。"
    if why and record.status == "final":
        lead += "已登记的异议及其处理结果仍可查看和下载。"
    return (
        f'<div class="ob-banner ob-banner-{e(kind)}" role="status"><b>{e(record.status_line())}</b>'
        f"<span>{e(lead)}</span></div>"
    )


def _year_links(latest: dict[int, RunRecord], year: int) -> str:
    links = []
    for y in sorted(latest, reverse=True):
        label = f"{y} 年度（{RUN_STATUS_LABELS.get(latest[y].status, latest[y].status)}）"
        if y == year:
            links.append(f'<b aria-current="page">{e(label)}</b>')
        else:
            links.append(f'<a href="/objections?{e(urlencode({"year": y}))}">{e(label)}</a>')
    return '<nav class="ob-years" aria-label="年度">' + " · ".join(links) + "</nav>"


def page_config(user: User, record: RunRecord, parks: list[str], why: str) -> dict[str, Any]:
    """What the page's script needs (who, what they may do, the parks, the fields, the URLs)."""
    visible = [p for p in parks if user.may_see_park(p)]
    if user.role == "admin":
        record_parks = visible
    elif user.role == "committee":
        record_parks = [p for p in visible if p in user.parks]
    else:
        record_parks = []
    year = record.year
    return {
        "year": year,
        "run": {
            "id": record.run_id,
            "status": record.status,
            "statusLabel": RUN_STATUS_LABELS.get(record.status, record.status),
            "statusLine": record.status_line(),
            "start": record.publicity_start,
            "end": record.publicity_end,
        },
        "accepting": not why,
        "closedReason": why,
        "user": {
            "name": user.name,
            "role": user.role,
            "roleLabel": ROLE_LABELS[user.role],
            "canRecord": bool(record_parks) and not why,
            "canDecide": user.role in ("reviewer", "admin") and record.status != "final",
            "mayCorrections": user.role in ("reviewer", "admin"),
        },
        "parks": visible,
        "recordParks": record_parks,
        "fields": [
            {"name": f.name, "label": f.label, "table": f.table, "kind": f.kind, "unit": f.unit}
            for f in CORRECTABLE_FIELDS.values()
        ],
        "statuses": [{"key": k, "label": v} for k, v in OBJECTION_STATUS_LABELS.items()],
        "urls": {
            "list": "/api/objections",
            "item": "/api/objections/{id}",
            "history": "/api/objections/{id}/history",
            "evidence": "/api/objections/{id}/evidence",
            "subjects": "/api/objections/subjects",
            "register": "/api/objections/register",
            "corrections": "/api/objections/corrections.csv",
            "home": "/",
        },
    }


@router.get(
    "/objections",
    summary="公示与异议页面（浏览器）：登记、查看和处理异议",
    description="该年度（默认最新登记批次的年度）的公示状态、异议列表和详情；园区管委会在公示期内为本园区企业登记异议，"
    "管理员可为任何园区登记；复核人员和管理员处理异议。可下载异议处理登记表（Excel）和更正表。",
    response_class=HTMLResponse,
)
def objections_page(
    user: PageUser,
    store: StoreDep,
    cache: RunCacheDep,
    year: Annotated[int | None, Query(description="评价年度；默认最新登记的年度", ge=1900, le=2200)] = None,
) -> HTMLResponse:
    latest = _latest_by_year(store.list_runs())
    head = '<header class="top"><h1>公示与异议</h1><a href="/">返回首页</a></header>'
    headers = {"Content-Security-Policy": OBJECTIONS_CSP, "Cache-Control": "no-store"}
    if not latest:
        body = head + "<p>还没有登记评价批次，暂无可公示的评价结果。</p>"
        return HTMLResponse(PAGE.format(title="公示与异议", body=body, config="null"), headers=headers)
    if year is None or year not in latest:
        missing = year
        year = max(latest)
        note = f'<p class="error">没有 {e(str(missing))} 年度的评价批次，已显示 {year} 年度。</p>' if missing else ""
    else:
        note = ""
    record = latest[year]
    try:
        parks = list(cache.get(record).parks)
    except RunFilesError as exc:
        body = head + _year_links(latest, year) + f'<p class="error">{e(str(exc))}</p>'
        return HTMLResponse(PAGE.format(title="公示与异议", body=body, config="null"), headers=headers)
    why = objection_window(record.status, record.publicity_start, record.publicity_end)
    config = page_config(user, record, parks, why)
    scope = "全部园区" if user.sees_all_parks() else "、".join(user.parks)
    who = f"{e(user.name)}（{e(ROLE_LABELS[user.role])}，可查看：{e(scope)}）"
    body = (
        head
        + f'<p class="ob-who">{who}</p>'
        + _year_links(latest, year)
        + note
        + _banner(record, why)
        + '<div id="ob-app"><p class="ob-loading">正在载入异议……</p></div>'
        + '<noscript><p class="error">本页面需要启用 JavaScript。</p></noscript>'
    )
    page = PAGE.format(title=f"{year} 年度公示与异议", body=body, config=script_json(config))
    return HTMLResponse(page, headers=headers)
