"""The start page (``GET /``): what each user does next.

- a reviewer (and an administrator) sees every park with its flags by review state and a link that
  opens the park's map with the review panel on the 待复核 flags;
- a park committee sees its park's enterprises by class, its downloads (with the differentiated-policy
  list of each agency) and its map; reviewers and administrators get every agency's list for all parks;
- an administrator also sees the registered runs.

Every value is escaped; times are Beijing time; the page's style is ``/static/css/pages.css``.
"""

from __future__ import annotations

import html
import logging
from collections import Counter
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.deps import PageUser, RunCacheDep, StoreDep
from api.routes.policies import policy_links, policy_section
from api.rundata import RunData
from geo_eval.maps import FLAG_STATUS_LABELS, GRADE_LEGEND, STATUS_ORDER
from geo_eval.report.timefmt import beijing_time
from geo_eval.storage import ROLE_LABELS, NotFoundError, RunFilesError, RunRecord, Store, User

log = logging.getLogger(__name__)
router = APIRouter(tags=["登录"])

e = html.escape
GRADES = ("A", "B", "C", "D", "T")
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · 亩均效益评价</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="/static/css/pages.css">
</head><body><main class="wide">{body}</main></body></html>
"""


def _map_url(park: str | None, run: RunRecord, fragment: str = "") -> str:
    path = "/maps/" if park is None else f"/maps/{quote(park, safe='')}"
    return f"{path}?{urlencode({'run': run.run_id})}" + (f"#{fragment}" if fragment else "")


def html_table(head: list[str], rows: list[list[str]], *, numeric_from: int = 1) -> str:
    """An HTML table; cells are already escaped markup."""
    th = "".join(f"<th{' class=num' if i >= numeric_from else ''}>{h}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i >= numeric_from else ''}>{c}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def review_progress(data: RunData, store: Store, user: User) -> str:
    """Each park the user may see: its flags by review state and a link to start reviewing."""
    reviews = store.reviews(data.run_id)
    fl = data.flags
    states = [reviews[f].status if f in reviews else "pending" for f in fl["flag_id"].astype(str)]
    per_park: dict[str, Counter[str]] = {}
    for park, state in zip(fl["park"], states, strict=True):
        if isinstance(park, str) and user.may_see_park(park):
            per_park.setdefault(park, Counter())[state] += 1
    if not per_park:
        return "<p>本批次没有闲置／低效地块标记。</p>"
    rows = []
    for park in sorted(per_park):
        c = per_park[park]
        start = _map_url(park, data.record, "panel=1&state=pending")
        action = f'<a class="button" href="{e(start)}">开始复核</a>' if c["pending"] else "已全部复核"
        rows.append(
            [f'<a href="{e(_map_url(park, data.record))}">{e(park)}</a>', *(str(c[s]) for s in STATUS_ORDER), action]
        )
    head = ["园区", *(FLAG_STATUS_LABELS[s] for s in STATUS_ORDER), ""]
    total = sum((c for c in per_park.values()), Counter())
    lead = f"全部园区待复核 <b>{total['pending']}</b> 条，共 {sum(total.values())} 条标记。"
    return f"<p>{lead}</p>" + html_table(head, rows)


def committee_summary(data: RunData, user: User) -> str:
    """The committee's park(s): enterprises by class, the map and the downloads."""
    parts = []
    ent = data.enterprises
    for park in sorted(user.parks):
        grades = Counter(str(g) for g in ent.loc[ent["park"] == park, "grade"].dropna())
        rows = [[e(GRADE_LEGEND.get(g, g)), str(grades.get(g, 0))] for g in GRADES]
        q = urlencode({"run": data.run_id, "park": park})
        links = [
            f'<a class="button" href="{e(_map_url(park, data.record))}">园区地图</a>',
            f'<a href="/api/rankings/download?{e(q)}&amp;format=xlsx">排名表（Excel）</a>',
            f'<a href="/api/rankings/download?{e(q)}&amp;format=csv">排名表（CSV）</a>',
            f'<a href="/api/flags/download?{e(q)}&amp;format=xlsx">闲置／低效地块清单及复核状态（Excel）</a>',
            f'<a href="/api/flags/checklist?{e(q)}&amp;format=xlsx">现场核查清单（Excel）</a>',
            *policy_links(data, park),
        ]
        parts.append(
            f"<h2>{e(park)}</h2><p>参评企业 {sum(grades.values())} 家，按分类：</p>"
            + html_table(["分类", "企业数"], rows)
            + f'<p class="links">{" · ".join(links)}</p>'
        )
    return "".join(parts)


def runs_table(store: Store) -> str:
    """The registered runs, latest first (administrators)."""
    rows = []
    for r in store.list_runs():
        grades = (r.counts or {}).get("grades") or {}
        mix = "、".join(f"{g} {grades.get(g, 0)}" for g in GRADES)
        rows.append(
            [
                f"{r.year}",
                e(r.scheme_title or r.scheme),
                str((r.counts or {}).get("enterprises", "")),
                e(mix),
                str((r.counts or {}).get("flags", "")),
                e(beijing_time(r.registered_at)),
                e(r.registered_by),
                f'<a href="{e(_map_url(None, r))}">地图</a>',
            ]
        )
    if not rows:
        return "<p>还没有登记评价批次（geo-eval runs add 输出目录）。</p>"
    head = ["年度", "评价方案", "企业数", "分类", "标记数", "登记时间", "登记人", ""]
    return html_table(head, rows, numeric_from=99)


def _objections_link(user: User, run: RunRecord | None) -> str:
    """The objections page of the current year (公示与异议; a committee records and follows its park's)."""
    label = "公示与异议（登记与查看本园区异议）" if user.role == "committee" else "公示与异议"
    href = "/objections" if run is None else f"/objections?{urlencode({'year': run.year})}"
    return f'<a href="{e(href)}">{e(label)}</a>'


def _general_links(user: User, run: RunRecord | None) -> str:
    links = []
    if run is not None:
        links.append(f'<a href="{e(_map_url(None, run))}">园区总览地图</a>')
        links.append(f'<a href="/reports/{run.year}">年度评价报告</a>')
        if user.sees_all_parks():
            q = urlencode({"run": run.run_id})
            links += [
                f'<a href="/api/rankings/download?{e(q)}&amp;format=xlsx">全部排名表（Excel）</a>',
                f'<a href="/api/flags/download?{e(q)}&amp;format=xlsx">全部标记清单（Excel）</a>',
                f'<a href="/api/flags/checklist?{e(q)}&amp;status=site_visit&amp;format=xlsx">待核查的现场核查清单（Excel）</a>',
            ]
    links.append('<a href="/runs">评价批次</a>')
    links.append(_objections_link(user, run))
    links.append('<a href="/docs">接口文档</a>')
    return f'<p class="links">{" · ".join(links)}</p>'


@router.get("/", summary="首页（浏览器）：按角色列出下一步要做的事", response_class=HTMLResponse)
def home(user: PageUser, store: StoreDep, cache: RunCacheDep) -> HTMLResponse:
    parks = "全部园区" if user.sees_all_parks() else "、".join(user.parks)
    who = f"{e(user.name)}（{e(ROLE_LABELS[user.role])}，可查看：{e(parks)}）"
    sections = []
    run: RunRecord | None = None
    try:
        run = store.latest_run()
        data = cache.get(run)
    except NotFoundError:
        data = None
        sections.append("<p>还没有登记评价批次。</p>")
    except RunFilesError as exc:
        data = None
        sections.append(f'<p class="error">{e(str(exc))}</p>')
    if run is not None:
        sections.append(
            f"<p>当前评价批次：{e(str(run.year))} 年度（{e(run.scheme_title)}），登记于 {e(beijing_time(run.registered_at))}。</p>"
        )
    if data is not None:
        if user.role in ("reviewer", "admin"):
            sections.append("<h2>地块标记复核进度</h2>" + review_progress(data, store, user))
            sections.append(policy_section(data))
        if user.role == "committee":
            sections.append(committee_summary(data, user))
    sections.append(_general_links(user, run))
    if user.role == "admin":
        sections.append('<h2>评价批次</h2><p><a href="/runs">全部评价批次及下载</a></p>' + runs_table(store))
    body = (
        f'<header class="top"><h1>工业用地亩均效益评价</h1><form method="post" action="/logout">'
        f'<button type="submit">退出登录</button></form></header><p>{who}</p>' + "".join(sections)
    )
    return HTMLResponse(PAGE.format(title="首页", body=body), headers={"Content-Security-Policy": PAGE_CSP})
