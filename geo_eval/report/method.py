"""Section 9 of the annual report, 评价方法: the scheme as applied (groups, indicators, weights, benchmarks
with their values, class rules, T rules, land rules, vetoes, flag thresholds), the inputs with their
sha256 and the tool's version, from the run's manifest and ``benchmarks.csv``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
from pydantic import BaseModel

from geo_eval.rating.indicators import INDICATORS
from geo_eval.rating.scheme import Scheme
from geo_eval.report import annual as a
from geo_eval.report.html import e, num, table
from geo_eval.report.labels import header

METHODS = {
    "fixed": "公布的固定值",
    "current_mean": "本年均值 × k",
    "previous_mean": "上年均值 × k",
    "best": "本年最优值",
    "minmax": "最大最小值法",
}
MEANS = {"aggregate": "合计值之比", "average": "算术平均"}
MISSING = {"zero": "记 0 分", "group_mean_score": "取本组平均得分"}
INPUTS = {
    "dataset": "数据集说明 dataset.toml",
    "parcels": "宗地图层",
    "enterprises": "企业数据表",
    "leases": "租赁表",
    "builtup": "建成区栅格",
    "previous": "上年评价结果",
}


def method_section(run: a.RunTables) -> str:
    m = run.manifest
    scheme = m.get("scheme") or {}
    parts = [_meta(run, scheme if isinstance(scheme, dict) else {})]
    s = run.scheme
    if s is None:
        parts.append(
            "<p>本批次的 manifest.json 没有记录方案规则，也没有摘要相同的内置方案；方案全文见评价时使用的方案文件。</p>"
        )
    else:
        parts += [_groups(s), _indicators(s), _benchmarks(run), _rules(s)]
    parts.append(_inputs(m))
    return "".join(parts)


def _meta(run: a.RunTables, scheme: dict[str, Any]) -> str:
    s = run.scheme
    rows = [
        ["评价方案", e(f"{scheme.get('title', '')}（{scheme.get('name', '')}）")],
        ["方案来源", e(s.source if s is not None else "")],
        ["方案文本 SHA-256", f"<code>{e(str(scheme.get('sha256', '')))}</code>"],
        ["评价年度", e(str(run.year))],
        ["排名范围", e("县区" if run.ranking_unit == "county" else "园区") + "、评价分组"],
        ["面积计算坐标系", e(str(run.manifest.get("area_crs", "")))],
        ["geo-eval 版本", e(str(run.manifest.get("version", "")))],
    ]
    return table("method", [header("setting"), header("value_set")], rows, numeric_from=9)


def _groups(s: Scheme) -> str:
    rows = []
    for g in s.groups:
        scale = {True: "规上", False: "规下", None: "规上和规下"}[g.above_scale]
        lessee = {True: "仅无自有土地的租赁企业", False: "仅有自有土地的企业", None: "不限"}[g.lessee_only]
        rows.append([e(g.label), e(g.key), e(scale), num(g.min_land_mu), e(lessee)])
    head = ["评价分组", "代码", "规模", "最小用地（亩）", "用地方式"]
    return "<h3>评价分组</h3><p>企业按顺序归入第一个符合条件的分组。</p>" + table("groups", head, rows, numeric_from=3)


def _indicators(s: Scheme) -> str:
    w = a.weights(s)
    rows = [
        [
            e(str(r["group_label"])),
            e(f"{INDICATORS[r['indicator']].label}（{INDICATORS[r['indicator']].unit}）"),
            num(r["weight"], 0),
            e(METHODS.get(str(r["method"]), str(r["method"]))),
            _k_or_value(r),
            e(MEANS.get(str(r["mean"]), "")),
            e("无" if pd.isna(r["cap"]) else f"{r['cap']:g} × 权重"),
            e("无" if pd.isna(r["floor"]) else f"{r['floor']:g}"),
            e(MISSING.get(str(r["missing"]), "")),
        ]
        for _, r in w.iterrows()
    ]
    head = ["分组", "指标", header("weight"), "基准值方法", "k／固定值", "均值口径", "单项上限", "单项下限", "缺失数据"]
    formula = (
        "单项得分 = 权重 × 指标值 ÷ 基准值（在上下限之间）；综合得分 = 各单项得分之和 + 加分 − 减分"
        f"（加分上限 {_off(s.adjustments.bonus_max)}，减分上限 {_off(s.adjustments.penalty_max)}）。"
    )
    return "<h3>指标、权重与计分</h3>" + f"<p>{e(formula)}</p>" + table("indicators", head, rows, numeric_from=2)


def _k_or_value(r: pd.Series) -> str:
    if r["method"] == "fixed":
        return num(r["value"], 4)
    return num(r["k"], 2) if r["method"] in ("current_mean", "previous_mean") else "—"


def _off(v: float | None) -> str:
    return "无" if v is None else f"{v:g} 分"


def _benchmarks(run: a.RunTables) -> str:
    b = run.benchmarks
    if b.empty:
        return "<h3>基准值</h3><p>无。</p>"
    labels = {g.key: g.label for g in run.scheme.groups} if run.scheme else {}
    rows = [
        [
            e(str(r["unit"])),
            e(labels.get(str(r["group"]), str(r["group"]))),
            e(INDICATORS[str(r["indicator"])].label if str(r["indicator"]) in INDICATORS else str(r["indicator"])),
            e(str(r.get("basis") or METHODS.get(str(r["method"]), ""))),
            num(r["benchmark"], 4),
            num(r["n"], 0),
        ]
        for _, r in b.iterrows()
    ]
    head = [
        header("unit"),
        "评价分组",
        header("indicator"),
        header("basis", "benchmarks"),
        header("benchmark"),
        header("n"),
    ]
    return "<h3>基准值（本批次实际取值）</h3>" + table("benchmarks", head, rows, numeric_from=4)


def _rules(s: Scheme) -> str:
    parts = [
        "<h3>不参评（T类）规则</h3>",
        _settings("rating", s.rating),
        "<h3>一票否决</h3>",
        _vetoes(s),
        "<h3>分类规则</h3>",
        _settings("grading", s.grading),
        "<h3>用地计算规则</h3>",
        _settings("land", s.land),
        "<h3>地块标记阈值</h3>",
        _settings("flags", s.flags),
        _settings("checks", s.checks),
    ]
    return "".join(parts)


def _vetoes(s: Scheme) -> str:
    if not s.vetoes:
        return "<p>无。</p>"
    rows = [
        [e(v.label or v.field), e("直接评为" if v.mode == "set" else "最高评为") + e(f" {v.grade} 类")]
        for v in s.vetoes
    ]
    return table("vetoes", ["否决事项", "处理"], rows, numeric_from=9)


def _settings(key: str, model: BaseModel) -> str:
    """Every setting of a section of the scheme as ``名称 = 取值`` rows (the TOML keys of docs/schemes.md)."""
    rows = [[f"<code>{e(name)}</code>", e(value)] for name, value in _flatten(model.model_dump(mode="json"), key)]
    return table(f"settings-{key}", [header("setting"), header("value_set")], rows, numeric_from=9)


def _flatten(data: Any, prefix: str) -> Iterable[tuple[str, str]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _flatten(v, f"{prefix}.{k}")
    else:
        yield prefix, _value_text(data)


def _value_text(v: Any) -> str:
    if v is None:
        return "关闭"
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, list):
        return "、".join(str(x) for x in v) or "（空）"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _inputs(m: Any) -> str:
    inputs = m.get("inputs") or {}
    rows = [
        [
            e(INPUTS.get(k, k)),
            f"<code>{e(str(v.get('path', '')))}</code>",
            f"<code>{e(str(v.get('sha256', '')))}</code>",
        ]
        for k, v in sorted(inputs.items())
        if isinstance(v, dict)
    ]
    head = ["输入", header("path"), header("sha256")]
    body = table("inputs", head, rows, numeric_from=9) if rows else "<p>（以数据框输入，没有文件。）</p>"
    return "<h3>输入文件</h3>" + body + f"<p>geo-eval 版本 {e(str(m.get('version', '')))}。</p>"
