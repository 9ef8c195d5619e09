"""The nine sections of the annual report: each turns figures of :mod:`geo_eval.report.annual` into
escaped HTML (:mod:`geo_eval.report.html`) with its charts (:mod:`geo_eval.report.charts`)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from geo_eval.maps.styles import GRADE_COLOURS
from geo_eval.rating.indicators import INDICATORS
from geo_eval.rating.scheme import GRADE_LABELS
from geo_eval.report import annual as a
from geo_eval.report import charts
from geo_eval.report.html import count, e, figure, num, share, table
from geo_eval.report.labels import header
from geo_eval.report.method import method_section
from geo_eval.storage.base import STATUS_LABELS

GRADE_COLOR = {g: GRADE_COLOURS[g] for g in a.GRADES}
CHANGE_COLORS = {
    "升级": "#1a9850",
    "持平": "#bdbdbd",
    "降级": "#d73027",
    "新参评": "#4575b4",
    "转为不参评": "#fdae61",
    "不参评": "#f0e6c8",
    a.GONE: "#7b3294",
    "无参评企业": "#ffffff",
}
MAX_CHART_UNITS = 24
"""A chart per unit shows the counties and parks when there are this many or fewer, else the counties."""


def ind(key: str) -> str:
    """The Chinese name of an indicator with its unit."""
    i = INDICATORS[key]
    return f"{i.label}（{i.unit}）"


def unit_name(row: pd.Series) -> str:
    return str(row["park"]) if row["level"] == "park" else str(row["county"])


def _row_classes(t: pd.DataFrame) -> list[str]:
    return [str(x) for x in t["level"]]


def _first_cell(row: pd.Series) -> str:
    cls = "park" if row["level"] == "park" else ""
    return f'<td class="{cls}">{e(unit_name(row))}</td>' if cls else f"<td>{e(unit_name(row))}</td>"


def _chart_rows(t: pd.DataFrame) -> pd.DataFrame:
    rows = t.loc[t["level"] != "total"]
    return rows if len(rows) <= MAX_CHART_UNITS else rows.loc[rows["level"] == "county"]


def _numeric_row(row: pd.Series, cells: list[str]) -> str:
    return _first_cell(row) + "".join(f'<td class="num">{c}</td>' for c in cells)


# --- 1 概况 -------------------------------------------------------------------------------------------
def overview_section(run: a.RunTables) -> str:
    t = a.overview(run)
    total = t.iloc[0]
    lead = (
        f"<p>本年度共评价企业 <b>{count(total['n_enterprises'])}</b> 家，其中参评（A–D类）{count(total['n_rated'])} 家、"
        f"不参评（T类）{count(total['n_t'])} 家；评价用地 {num(total['land_mu'])} 亩，税收 {num(total['tax'])} 万元，"
        f"销售收入 {num(total['sales'])} 万元。参评企业"
        + "，".join(_headline(total, k) for k in a.OVERVIEW_INDICATORS)
        + "。</p>"
    )
    head = [
        header("unit_name"),
        header("n_enterprises"),
        header("n_rated"),
        header("n_t"),
        header("land_mu"),
        header("tax"),
        header("sales"),
    ]
    rows = [
        _numeric_row(
            r,
            [
                count(r["n_enterprises"]),
                count(r["n_rated"]),
                count(r["n_t"]),
                num(r["land_mu"]),
                num(r["tax"]),
                num(r["sales"]),
            ],
        )
        for _, r in t.iterrows()
    ]
    parts = [lead, table("overview", head, rows, row_classes=_row_classes(t)), _aggregate_table(t, run)]
    parts += [figure(_overview_chart(t, k, run), "") for k in ("tax_per_mu",)]
    parts.append(
        '<p class="note">亩均税收等为参评企业（A–D类）的合计值之比（Σ分子 ÷ Σ分母，只计该指标可计算的企业）。</p>'
    )
    return "".join(parts)


def _headline(total: pd.Series, key: str) -> str:
    text = f"{INDICATORS[key].label} {num(total[key])} {INDICATORS[key].unit}"
    if f"{key}_prev" in total:
        text += f"（上年 {num(total[f'{key}_prev'])}，变化 {_change(total[f'{key}_change'])}）"
    return text


def _change(v: object) -> str:
    from geo_eval.report.html import change

    return change(v)


def _aggregate_table(t: pd.DataFrame, run: a.RunTables) -> str:
    keys = a.OVERVIEW_INDICATORS
    prev = run.previous is not None
    span = 3 if prev else 1
    head = (
        f'<tr><th rowspan="{2 if prev else 1}">{e(header("unit_name"))}</th>'
        + "".join(f'<th colspan="{span}">{e(ind(k))}</th>' for k in keys)
        + "</tr>"
    )
    if prev:
        head += (
            "<tr>"
            + "".join(
                f"<th>本年</th><th>{e(header('prev_value'))}</th><th>{e(header('change_pct'))}</th>" for _ in keys
            )
            + "</tr>"
        )
    rows = []
    for _, r in t.iterrows():
        cells = []
        for k in keys:
            cells.append(num(r[k]))
            if prev:
                cells += [num(r[f"{k}_prev"]), _change(r[f"{k}_change"])]
        rows.append(_numeric_row(r, cells))
    return table("aggregates", head, rows, row_classes=_row_classes(t))


def _overview_chart(t: pd.DataFrame, key: str, run: a.RunTables) -> charts.Chart:
    rows = _chart_rows(t)
    series = {"本年": rows[key].tolist()}
    if run.previous is not None:
        series["上年"] = rows[f"{key}_prev"].tolist()
    names = [unit_name(r) for _, r in rows.iterrows()]
    return charts.bar_chart(
        "c-overview",
        f"各县区、园区{INDICATORS[key].label}",
        ind(key),
        "县区／园区",
        names,
        series,
        colors={"本年": "#1f4e79", "上年": "#9dc0e4"},
    )


# --- 2 分类结果 -----------------------------------------------------------------------------------------
def classes_section(run: a.RunTables) -> str:
    t = a.classes(run)
    total = t.iloc[0]
    lead = (
        "<p>参评企业分类："
        + "，".join(f"{g}类（{GRADE_LABELS[g]}）{count(total[g])} 家（{share(total[f'{g}_share'])}）" for g in a.RATED)
        + f"；不参评（T类）{count(total['T'])} 家。</p>"
    )
    head = [header("unit_name"), *(f"{g}类" for g in a.GRADES), header("n_rated"), *(f"{g}类占比" for g in a.RATED)]
    rows = [
        _numeric_row(
            r, [count(r[g]) for g in a.GRADES] + [count(r["n_rated"])] + [share(r[f"{g}_share"]) for g in a.RATED]
        )
        for _, r in t.iterrows()
    ]
    rows_c = _chart_rows(t)
    chart = charts.bar_chart(
        "c-classes",
        "各县区、园区参评企业分类构成",
        "占参评企业（%）",
        "县区／园区",
        [unit_name(r) for _, r in rows_c.iterrows()],
        {f"{g}类": rows_c[f"{g}_share"].tolist() for g in a.RATED},
        colors={f"{g}类": GRADE_COLOR[g] for g in a.RATED},
        stacked=True,
        percent=True,
    )
    return lead + table("classes", head, rows, row_classes=_row_classes(t)) + figure(chart) + _cutoffs(run)


def _cutoffs(run: a.RunTables) -> str:
    rule = _grading_rule(run)
    c = a.cutoffs(run)
    unit = "县区" if run.ranking_unit == "county" else "园区"
    rows = [
        [e(str(r["unit"])), e(str(r["group_label"])), e(f"{r['grade']}类"), count(r["n"]), num(r["min"]), num(r["max"])]
        for _, r in c.iterrows()
    ]
    head = [
        f"排名范围（{unit}）",
        header("group_label"),
        header("grade"),
        "企业数（家）",
        header("lowest_score"),
        header("highest_score"),
    ]
    return f"<h3>分类线</h3><p>{e(rule)}</p>" + table("cutoffs", head, rows, numeric_from=3)


def _grading_rule(run: a.RunTables) -> str:
    s = run.scheme
    if s is None:
        return "评价方案未随本批次记录，分类规则见方案文件；下表为各类实际得分范围。"
    g = s.grading
    unit = "县区" if s.ranking_unit == "county" else "园区"
    if g.method == "percentile":
        sh = g.shares
        return (
            f"在各{unit}、各评价分组内按综合得分排序：前 {sh['A']:.0%} 为A类，{sh['A']:.0%}–{sh['B']:.0%} 为B类，"
            f"{sh['B']:.0%}–{sh['C']:.0%} 为C类，其余（后 {1 - sh['C']:.0%}）为D类；取整方式 {g.rounding}，"
            f"同分处理 {g.ties}（C/D 分界 {g.ties_at_d}）。下表为各类实际得分范围。"
        )
    th = g.thresholds
    return f"按分数线分类：A类 ≥ {th['A']:g} 分，B类 ≥ {th['B']:g} 分，C类 ≥ {th['C']:g} 分，其余为D类。下表为各类实际得分范围。"


# --- 3 指标分布 -----------------------------------------------------------------------------------------
def indicators_section(run: a.RunTables) -> str:
    if run.scheme is None:
        return "<p>评价方案未随本批次记录，无法列出计分指标。</p>"
    parts = ["<h3>指标权重</h3>", _weights_table(run)]
    dists = a.indicator_distributions(run)
    for i, d in enumerate(dists):
        if not d["parks"]:
            continue
        chart = charts.box_chart(
            f"c-ind-{i}",
            f"{d['group']}：{INDICATORS[d['key']].label}分布",
            ind(d["key"]),
            "园区",
            d["parks"],
            d["stats"],
            d["benchmarks"],
            mark_label="基准值",
        )
        parts.append(figure(chart))
    parts.append(
        '<p class="note">箱体为四分位数（25%–75%），中线为中位数，须为 5% 与 95% 分位数；红色菱形为园区所在'
        "排名范围、该分组的基准值（benchmarks.csv）。园区较多时只画参评企业最多的 15 个。</p>"
    )
    return "".join(parts)


def _weights_table(run: a.RunTables) -> str:
    w = a.weights(run.scheme)
    groups = list(dict.fromkeys(w["group_label"]))
    keys = list(dict.fromkeys(w["indicator"]))
    head = ["指标", *groups]
    rows = []
    for k in keys:
        cells = [e(ind(k))]
        for g in groups:
            hit = w.loc[(w["group_label"] == g) & (w["indicator"] == k), "weight"]
            cells.append(num(hit.iloc[0], 0) if len(hit) else "—")
        rows.append(cells)
    return table("weights", head, rows)


# --- 4 行业 --------------------------------------------------------------------------------------------
def industries_section(run: a.RunTables) -> str:
    t = a.industries(run)
    if t.empty:
        return "<p>没有企业。</p>"
    head = [
        header("division"),
        header("division_name"),
        header("n_enterprises"),
        header("land_mu"),
        header("tax_per_mu_median"),
        *(f"{g}类" for g in a.GRADES),
    ]
    rows = [
        [
            e(str(r["division"])),
            e(str(r["name"])),
            count(r["n_enterprises"]),
            num(r["land_mu"]),
            num(r["tax_per_mu_median"]),
            *(count(r[g]) for g in a.GRADES),
        ]
        for _, r in t.iterrows()
    ]
    names = [f"{r['division']} {r['name']}".strip() for _, r in t.iterrows()]
    chart = charts.bar_chart(
        "c-industries",
        "主要行业大类的企业分类构成",
        "企业数（家）",
        "行业大类",
        names,
        {f"{g}类": t[g].tolist() for g in a.GRADES},
        colors={f"{g}类": GRADE_COLOR[g] for g in a.GRADES},
        stacked=True,
    )
    note = f'<p class="note">按国民经济行业分类（GB/T 4754）大类，企业数最多的 {a.TOP_DIVISIONS} 个大类。</p>'
    return table("industries", head, rows, numeric_from=2) + figure(chart) + note


# --- 5 年度变化 -----------------------------------------------------------------------------------------
def changes_section(run: a.RunTables) -> str:
    if run.previous is None:
        why = run.previous_note or "本批次评价时未指定上年结果（--previous），没有年度变化。"
        return f"<p>{e(why)}</p>"
    m = a.transition_matrix(run)
    by_park = a.changes_by_park(run)
    parts = [_transition_table(m), _changes_table(by_park), figure(_changes_chart(by_park))]
    parts += [_d_two_years(run), _new_and_gone(run), _maps(run)]
    return "".join(parts)


def _transition_table(m: pd.DataFrame) -> str:
    top = max(int(m.to_numpy().max()), 1)
    cols = [f"{c}类" if c in a.GRADES else c for c in m.columns]
    head = [header("prev_grade_row"), *cols, "合计"]
    rows = []
    for idx, r in m.iterrows():
        name = f"{idx}类" if idx in a.GRADES else str(idx)
        cells = "".join(f'<td class="num h{min(5, -(-int(v) * 5 // top))}">{count(v)}</td>' for v in r)
        rows.append(f'<td>{e(name)}</td>{cells}<td class="num">{count(r.sum())}</td>')
    lead = "<h3>分类转移矩阵</h3><p>行为上年分类（新参评：上年评价表中没有的企业），列为本年分类（不再参评：本年评价表中没有的企业）。</p>"
    return lead + table("transitions", head, rows)


def _changes_table(t: pd.DataFrame) -> str:
    head = ["园区", *t.columns]
    rows = [[e(str(p)), *(count(v) for v in r)] for p, r in t.iterrows()]
    return "<h3>各园区分类升降</h3>" + table("changes", head, rows)


def _changes_chart(t: pd.DataFrame) -> charts.Chart:
    cols = ["升级", "降级", "新参评", "转为不参评", a.GONE]
    top = t.assign(_n=t[cols].sum(axis=1)).sort_values(["_n"], ascending=False, kind="mergesort").head(MAX_CHART_UNITS)
    return charts.bar_chart(
        "c-changes",
        "各园区企业分类升降",
        "企业数（家）",
        "园区",
        [str(p) for p in top.index],
        {c: top[c].tolist() for c in cols},
        colors=CHANGE_COLORS,
        stacked=True,
    )


def _listing(key: str, rows: pd.DataFrame) -> str:
    shown = rows.head(a.LISTED)
    head = [header("uscc"), header("name"), header("county"), header("park"), header("grade"), header("score")]
    body = [
        [
            e(str(r["uscc"])),
            e(str(r["name"])),
            e(str(r.get("county") or "")),
            e(str(r.get("park") or "")),
            e(str(r.get("grade") or "")),
            num(r.get("score")),
        ]
        for _, r in shown.iterrows()
    ]
    more = (
        f'<p class="note">共 {count(len(rows))} 家，列出前 {a.LISTED} 家（完整名单见 enterprises.csv）。</p>'
        if len(rows) > a.LISTED
        else ""
    )
    return table(key, head, body, numeric_from=5) + more if len(rows) else "<p>无。</p>"


def _d_two_years(run: a.RunTables) -> str:
    rows = a.d_two_years(run)
    return f"<h3>连续两年D类企业（{count(len(rows))} 家）</h3>" + _listing("d-two-years", rows)


def _new_and_gone(run: a.RunTables) -> str:
    new, gone = a.new_and_gone(run)
    return (
        f"<h3>新进入评价的企业（{count(len(new))} 家）</h3>"
        + _listing("new", new)
        + f"<h3>不再参加评价的企业（{count(len(gone))} 家，上年分类与得分）</h3>"
        + _listing("gone", gone)
    )


def _maps(run: a.RunTables) -> str:
    p = run.parcels
    if p is None or len(p) == 0:
        return ""
    cats = a.parcel_changes(run)
    geographic = bool(p.crs is not None and p.crs.is_geographic)
    parts = ["<h3>各园区分类变化图</h3><p>宗地按主要使用企业的分类变化着色。</p>"]
    for i, (park, idx) in enumerate(p.groupby("park", sort=True).groups.items()):
        chart = charts.map_chart(
            f"c-map-{i}",
            f"{park}：企业分类变化",
            p.geometry.loc[idx].to_numpy(),
            cats.loc[idx].tolist(),
            CHANGE_COLORS,
            geographic=geographic,
        )
        parts.append(figure(chart))
    return "".join(parts)


# --- 6 土地 --------------------------------------------------------------------------------------------
def land_section(run: a.RunTables) -> str:
    if run.flags is None:
        return "<p>本批次评价时关闭了地块标记（--no-flags），没有闲置、低效用地和连片改造区块。</p>"
    t = a.land_flags(run)
    head = ["标记", header("n_flag_parcels"), header("area_mu"), header("n_flags")]
    rows = [
        [e(str(r["flag_label"])), count(r["parcels"]), num(r["area_mu"]), count(r["flags"])] for _, r in t.iterrows()
    ]
    parts = [_candidates_line(t), table("land-flags", head, rows)]
    if not t.empty:
        parts.append(
            figure(
                charts.bar_chart(
                    "c-land",
                    "各类地块标记的宗地面积",
                    "面积（亩）",
                    "标记",
                    t["flag_label"].tolist(),
                    {"面积": t["area_mu"].tolist()},
                    colors={"面积": "#8c510a"},
                )
            )
        )
    parts += [_rules_table(run), _park_flags(run), _blocks(run), _reviews(run)]
    return "".join(parts)


def _candidates_line(t: pd.DataFrame) -> str:
    hit = t.loc[t["flag"] == "renewal_candidate"]
    if hit.empty:
        return "<p>本年度没有退二优二候选地块。</p>"
    r = hit.iloc[0]
    return f"<p>退二优二候选地块 <b>{count(r['parcels'])}</b> 宗，面积 {num(r['area_mu'])} 亩。</p>"


def _rules_table(run: a.RunTables) -> str:
    from geo_eval.landuse.flags import rule_label

    t = a.flags_by_rule(run)
    rows = [
        [e(str(r["flag_label"])), e(rule_label(str(r["rule_id"]))), count(r["flags"]), num(r["area_mu"])]
        for _, r in t.iterrows()
    ]
    return "<h3>按规则</h3>" + table(
        "flag-rules", ["标记", "规则", header("n_flags"), header("area_mu", "flags")], rows, numeric_from=2
    )


def _park_flags(run: a.RunTables) -> str:
    t = a.flags_by_park(run)
    if t.empty:
        return ""
    rows = [[e(str(p)), *(count(v) for v in r)] for p, r in t.iterrows()]
    return "<h3>各园区标记宗地数（宗）</h3>" + table("park-flags", ["园区", *map(str, t.columns)], rows)


def _blocks(run: a.RunTables) -> str:
    s, top = a.block_summary(run), a.top_blocks(run)
    if top.empty:
        return "<h3>连片改造区块</h3><p>没有退二优二候选地块，也就没有连片改造区块。</p>"
    lead = "；".join(f"{e(str(r['kind']))} {count(r['n'])} 个，{num(r['area_mu'])} 亩" for _, r in s.iterrows())
    head = [
        header("block_id"),
        header("kind"),
        header("n_parcels"),
        header("area_mu"),
        header("n_enterprises"),
        header("tax_wan"),
        header("tax_per_mu"),
    ]
    rows = [
        [
            e(str(r["block_id"])),
            e(str(r["kind"])),
            count(r["n_parcels"]),
            num(r["area_mu"]),
            count(r["n_enterprises"]),
            num(r["tax_wan"]),
            num(r["tax_per_mu"]),
        ]
        for _, r in top.iterrows()
    ]
    return f"<h3>连片改造区块</h3><p>{lead}。面积最大的 {len(top)} 个：</p>" + table(
        "blocks", head, rows, numeric_from=2
    )


def _reviews(run: a.RunTables) -> str:
    t = a.review_progress(run)
    if t.empty:
        return ""
    head = ["标记", *(STATUS_LABELS[s] for s in t.columns), "合计"]
    rows = [[e(str(k)), *(count(v) for v in r), count(r.sum())] for k, r in t.iterrows()]
    done = int(t.drop(columns="pending").to_numpy().sum())
    return (
        f"<h3>复核进度</h3><p>已复核 {count(done)} 条，共 {count(int(t.to_numpy().sum()))} 条（以报告生成时为准）。</p>"
        + table("reviews", head, rows)
    )


# --- 7 排名 --------------------------------------------------------------------------------------------
def ranking_section(run: a.RunTables) -> str:
    labels, series = a.score_histogram(run)
    parts = []
    if labels:
        parts.append(
            figure(
                charts.bar_chart(
                    "c-scores",
                    "参评企业综合得分分布",
                    "综合得分（分）",
                    "企业数（家）",
                    labels,
                    {f"{g}类": v for g, v in series.items()},
                    colors={f"{g}类": GRADE_COLOR[g] for g in a.RATED},
                    stacked=True,
                    horizontal=False,
                )
            )
        )
    for lst in a.rank_lists(run):
        parts.append(f"<h3>{e(lst.unit)} · {e(lst.group_label)}（参评 {count(lst.rated)} 家）</h3>")
        parts.append(f"<p>前 {len(lst.top)} 名：</p>" + _ranked("top", lst.top))
        more = f"，列出得分最低的 {len(lst.bottom)} 家" if lst.n_d > len(lst.bottom) else ""
        parts.append(
            f"<p>D类（{GRADE_LABELS['D']}）{count(lst.n_d)} 家{more}：</p>"
            + (_ranked("bottom", lst.bottom) if len(lst.bottom) else "<p>无。</p>")
        )
    return "".join(parts) or "<p>没有参评企业。</p>"


def _ranked(key: str, rows: pd.DataFrame) -> str:
    head = [header("rank"), header("name"), header("park"), header("score"), header("grade")]
    body = [
        [count(r["rank"]), e(str(r["name"])), e(str(r["park"] or "")), num(r["score"]), e(str(r["grade"]))]
        for _, r in rows.iterrows()
    ]
    return table(key, head, body, numeric_from=3)


# --- 8 数据质量 ------------------------------------------------------------------------------------------
def quality_section(run: a.RunTables) -> str:
    t = a.problem_kinds(run)
    parts = []
    if t.empty:
        parts.append("<p>输入数据没有发现问题。</p>")
    else:
        total = {s: int(t[s].sum()) for s in a.SEVERITIES}
        parts.append("<p>exceptions.csv 共 " + "，".join(f"{s} {count(n)} 条" for s, n in total.items()) + "。</p>")
        head = [header("code"), "问题（示例）", *a.SEVERITIES, "合计"]
        rows = [
            [e(str(r["code"])), e(str(r["problem"])), *(count(r[s]) for s in a.SEVERITIES), count(r["total"])]
            for _, r in t.iterrows()
        ]
        parts.append(table("problems", head, rows, numeric_from=2))
        top = t.head(12)
        parts.append(
            figure(
                charts.bar_chart(
                    "c-problems",
                    "数据问题（按问题代码）",
                    "条数",
                    "问题代码",
                    top["code"].tolist(),
                    {s: top[s].tolist() for s in a.SEVERITIES},
                    colors={"致命": "#cf222e", "警告": "#f4b400", "提示": "#8e8e8e"},
                    stacked=True,
                )
            )
        )
    notes = a.fallbacks(run)
    parts.append(
        "<h3>替代处理</h3>"
        + (
            '<ul class="compact">' + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>"
            if notes
            else "<p>无（manifest.json 的 fallbacks 和 flags.notes 为空）。</p>"
        )
    )
    return "".join(parts)


SECTIONS: tuple[tuple[str, Callable[[a.RunTables], str]], ...] = (
    ("概况", overview_section),
    ("分类结果", classes_section),
    ("指标分布", indicators_section),
    ("行业", industries_section),
    ("年度变化", changes_section),
    ("土地", land_section),
    ("排名", ranking_section),
    ("数据质量", quality_section),
    ("评价方法", method_section),
)
"""The sections in order: title and the function that writes its body."""
