"""Regenerate the tables of ``docs/data-contract.md`` and ``docs/schemes.md`` that mirror the code.

The field and unit tables come from ``geo_eval/inputs/fields.py``, the delay causes from
``geo_eval.landuse.flags.DELAY_CAUSES``, and in ``schemes.md`` the land-flag rules and their basis texts from
the registry ``geo_eval.landuse.flag_rules.RULE_INFO`` and the plot-ratio control values from
``geo_eval.landuse.controls.PLOT_RATIO_2008``.

Usage (from the repository root)::

    .venv/bin/python docs/_gen_contract.py          # rewrite the generated blocks in place
    .venv/bin/python docs/_gen_contract.py --check  # exit 1 when a document is out of date

Generated blocks sit between ``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->``.
Blank handling is not part of ``fields.py``; it is kept in :data:`BLANKS` below (read from
``geo_eval/inputs/validate.py``, ``land.py``, ``rating.py``, ``scoring.py`` and ``flags.py``), and the script refuses to run
when a field has no entry or an entry names a field that no longer exists.

``--check`` also compares the problem codes raised anywhere in ``geo_eval/`` (every ``code="…"``
passed to ``Problems.add`` or ``HeaderNote`` or named by ``geo_eval.inputs.validate.report``, the cross-checks of ``CROSS_CHECKS`` and
the corrections' ``CORRECTION_CHECKS``) with the
codes listed in the hand-written checks table (between ``<!-- BEGIN CHECKS -->`` and
``<!-- END CHECKS -->``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from geo_eval.inputs.corrections import CORRECTION_CHECKS
from geo_eval.inputs.fields import TABLE_FIELDS, UNIT_FACTORS
from geo_eval.inputs.validate import _FALSE, _TRUE, CROSS_CHECKS
from geo_eval.landuse.controls import PLASTICS_GROUP, PLASTICS_PLOT_RATIO, PLOT_RATIO_2008
from geo_eval.landuse.flag_rules import RULE_INFO
from geo_eval.landuse.flags import DELAY_CAUSES, FLAG_LABELS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "data-contract.md"
SCHEMES_DOC = ROOT / "docs" / "schemes.md"

KIND_LABELS = {
    "text": "文本 text",
    "code": "代码 code",
    "number": "数值 number",
    "money": "金额 money",
    "date": "日期 date",
    "bool": "是/否 bool",
}

_MISSING_RULE = (
    "允许；用到它的指标无值，按方案的 `missing` 规则计分（0 分或组内平均分）",
    "allowed; indicators that use it have no value and score by the scheme's `missing` rule (0 or the group mean)",
)

BLANKS: dict[tuple[str, str], tuple[str, str]] = {
    # --- parcels -------------------------------------------------------------------------------
    ("parcels", "parcel_id"): ("致命（`missing_value`）", "fatal (`missing_value`)"),
    ("parcels", "holder_uscc"): (
        "提示（`parcel_no_holder`，国有储备或未供应土地）；该宗地的用地不计入任何企业（宗地仍写入 parcels.gpkg），"
        "无其他企业使用时标记疑似闲置 `idle_suspected.no_enterprise`",
        "info (`parcel_no_holder`, state reserve or unassigned land); the parcel's land counts for no enterprise "
        "(the parcel stays in parcels.gpkg); with no other user it is flagged `idle_suspected.no_enterprise`",
    ),
    ("parcels", "holder_name"): (
        "允许；只写入 parcels.gpkg（结果表中的企业名称取自企业表）",
        "allowed; only carried into parcels.gpkg (names in the results come from the enterprise table)",
    ),
    ("parcels", "county"): ("警告（`missing_value`）；保留该宗地", "warning (`missing_value`); parcel kept"),
    ("parcels", "park"): (
        "警告（`missing_value`）；保留该宗地，园区汇总中计入“（未注明园区）”",
        "warning (`missing_value`); parcel kept, counted under “（未注明园区）” in the park summary",
    ),
    ("parcels", "land_use"): ("允许；只写入 parcels.gpkg", "allowed; only carried into parcels.gpkg"),
    ("parcels", "registered_area_m2"): (
        '允许；不做面积比对；`area_source = "registered"` 时该宗地改用图形面积',
        'allowed; no area comparison; with `area_source = "registered"` the computed area is used',
    ),
    ("parcels", "floor_area_m2"): (
        "允许；但该宗地上按厂房面积的租赁无法用容积率折算（警告 `lease_no_plot_ratio`，该租赁不计），"
        "也不计算容积率、不做容积率低效判定",
        "allowed; but floor leases on the parcel cannot be converted by plot ratio "
        "(warning `lease_no_plot_ratio`, lease not counted), and no plot ratio is computed or checked",
    ),
    ("parcels", "footprint_area_m2"): (
        "允许；不计算建筑系数，不做建筑系数低效判定",
        "allowed; no building coefficient is computed or checked",
    ),
    ("parcels", "contract_start_date"): (
        "允许；未动工宗地无法计算闲置时间，不做“超过约定动工日期未动工”的闲置判定。"
        "`9999-12-31`（“无约定动工日期”的占位值）同样按空值处理，记提示 `date_placeholder`",
        "allowed; the idle clock of a parcel not started cannot run: no “not started by the contracted date” idle flag. "
        "`9999-12-31` (the placeholder for “no agreed date”) is blank too, with info `date_placeholder`",
    ),
    ("parcels", "actual_start_date"): (
        "允许；视为未动工（有约定动工日期时从约定动工日期起计闲置时间）",
        "allowed; the parcel counts as not started (idle time runs from the contracted start date, if any)",
    ),
    ("parcels", "developed_ratio"): (
        "允许；不按开发面积比例判定（仍可按已投资比例判定“已动工但不足”）",
        "allowed; the developed-area test is skipped (the investment test can still find the parcel stalled)",
    ),
    ("parcels", "invested_ratio"): (
        "允许；不按已投资比例判定（仍可按开发面积比例判定“已动工但不足”）",
        "allowed; the investment test is skipped (the developed-area test can still find the parcel stalled)",
    ),
    ("parcels", "suspended_since"): (
        "允许；已动工的宗地不做闲置判定（中止开发满 1 年需要停工日期）",
        "allowed; a started parcel is never found idle (a full year of suspension needs this date)",
    ),
    ("parcels", "delay_cause"): (
        "允许；表示没有政府原因。非空时必须是第八条规定的原因（代码或中文名，见下文），否则致命 `bad_delay_cause`",
        "allowed; means no government cause. A filled value must be an Art. 8 cause (code or Chinese name, below), "
        "else fatal `bad_delay_cause`",
    ),
    ("parcels", "land_price"): (
        "允许；闲置土地照常标记，但土地闲置费金额为空（原因中写“无”）",
        "allowed; idle land is still flagged, but the 土地闲置费 amount is blank (“无” in the reason)",
    ),
    # --- enterprises ---------------------------------------------------------------------------
    ("enterprises", "uscc"): ("致命（`missing_value`）", "fatal (`missing_value`)"),
    ("enterprises", "name"): ("警告（`missing_value`）；照常评价", "warning (`missing_value`); evaluated as usual"),
    ("enterprises", "county"): ("致命（`missing_value`）：按县区排名", "fatal (`missing_value`): ranking is by county"),
    ("enterprises", "park"): (
        "取该企业用地最多的宗地的园区；仍无则为空（园区汇总计入“（未注明园区）”）",
        "taken from the parcel where the enterprise has most land; else empty (“（未注明园区）” in the park summary)",
    ),
    ("enterprises", "industry_code"): (
        "允许；不做公用事业判定",
        "allowed; the utility (T) rule does not apply",
    ),
    ("enterprises", "above_scale"): (
        "按主营业务收入 ≥ 2000 万元判定（提示 `above_scale_derived`）；主营业务收入也为空时按规下（警告 `above_scale_unknown`）",
        "derived from main_revenue ≥ 2000 万元 (info `above_scale_derived`); when that is blank too, "
        "treated as 规下 (warning `above_scale_unknown`)",
    ),
    ("enterprises", "production_start"): (
        "允许；不做投产年限判定",
        "allowed; the production-years (T) rule does not apply",
    ),
    ("enterprises", "exempt_reason"): ("允许；表示无免评原因", "allowed; means no exemption"),
    ("enterprises", "tax"): (
        "致命（`missing_value`）：无税收请填 0",
        "fatal (`missing_value`): enter 0 when there is no tax",
    ),
    ("enterprises", "sales"): _MISSING_RULE,
    ("enterprises", "value_added"): _MISSING_RULE,
    ("enterprises", "main_revenue"): (
        _MISSING_RULE[0] + "；也不能用来判定是否规上",
        _MISSING_RULE[1] + "; nor can it decide 规上/规下",
    ),
    ("enterprises", "rnd"): _MISSING_RULE,
    ("enterprises", "energy_tce"): _MISSING_RULE,
    ("enterprises", "electricity_10k_kwh"): _MISSING_RULE,
    ("enterprises", "emission_t"): _MISSING_RULE,
    ("enterprises", "employees"): _MISSING_RULE,
    ("enterprises", "safety_veto"): ("按“否”处理", "treated as no"),
    ("enterprises", "environment_veto"): ("按“否”处理", "treated as no"),
    ("enterprises", "bonus"): ("按 0 分", "counts as 0"),
    ("enterprises", "penalty"): ("按 0 分", "counts as 0"),
    # --- leases --------------------------------------------------------------------------------
    ("leases", "lessee_uscc"): ("致命（`missing_value`）", "fatal (`missing_value`)"),
    ("leases", "lessee_name"): ("允许；当前不使用", "allowed; not used"),
    ("leases", "parcel_id"): ("致命（`missing_value`）", "fatal (`missing_value`)"),
    ("leases", "leased_land_m2"): (
        "允许；为空或 0 时改用租赁厂房面积；两者都没有大于 0 的值时警告 `lease_no_area`，该租赁不计",
        "allowed; when blank or 0 the floor area is used; when neither is above 0: warning `lease_no_area`, "
        "lease not counted",
    ),
    ("leases", "leased_floor_m2"): (
        "允许；只在租赁土地面积为空或 0 时使用（按容积率折算，见“评价用地”）",
        "allowed; used only when the leased land area is blank or 0 (converted by plot ratio, see Evaluated land)",
    ),
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def field_table(table: str) -> str:
    """A markdown table of one input's fields, in ``fields.py`` order."""
    lines = [
        "| 字段 field | 中文表头 header | 其他可接受表头 aliases | 类型 kind | 单位 unit | 必需列 required | 空值 blank |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in TABLE_FIELDS[table]:
        zh, en = BLANKS[(table, f.name)]
        aliases = "、".join(_cell(a) for a in f.aliases) or "—"
        lines.append(
            f"| `{f.name}` | {_cell(f.label)} | {aliases} | {KIND_LABELS[f.kind]} | {f.unit or '—'} "
            f"| {'是 yes' if f.required else '否 no'} | {_cell(zh)}<br>{_cell(en)} |"
        )
    return "\n".join(lines)


def unit_table() -> str:
    """A markdown table of the unit words a header may carry and their factors."""
    lines = ["| 标准单位 canonical | 表头中可写的单位 → 乘数 header unit → factor |", "|---|---|"]
    for canonical, factors in UNIT_FACTORS.items():
        parts = "；".join(f"{u} → {v:g}" if v != 2000 / 3 else f"{u} → 2000/3" for u, v in factors.items())
        lines.append(f"| {canonical} | {_cell(parts)} |")
    return "\n".join(lines)


def bool_tokens() -> str:
    """The accepted yes/no spellings."""
    yes = "、".join(sorted(_TRUE))
    no = "、".join(sorted(t for t in _FALSE if t))
    return f"- 是 / true：{yes}\n- 否 / false：{no}\n- 空 / blank：空单元格 (empty cell)"


def delay_cause_table() -> str:
    """The accepted ``delay_cause`` values (《闲置土地处置办法》第八条)."""
    lines = ["| 代码 code | 中文名 Chinese name |", "|---|---|"]
    lines += [f"| `{code}` | {_cell(name)} |" for code, name in DELAY_CAUSES.items()]
    return "\n".join(lines)


def plot_ratio_table() -> str:
    """Minimum plot ratio per GB/T 4754-2017 manufacturing division (国土资发〔2008〕24号)."""
    lines = ["| 2017 大类 division | 行业 industry | 容积率控制值 minimum plot ratio |", "|---|---|---|"]
    for div, (value, name) in PLOT_RATIO_2008.items():
        lines.append(f"| {div} | {_cell(name)} | {value:.1f} |")
    lines.append(f"| {PLASTICS_GROUP}（中类 group） | 塑料制品业 | {PLASTICS_PLOT_RATIO:.1f} |")
    return "\n".join(lines)


def _switch(switch: str | None) -> str:
    if switch is None:
        return "— (made from the other rows)"
    section, key = switch.split(".")
    return f"`[flags.{section}] {key}`"


def flag_rule_table() -> str:
    """The land-flag rules of ``geo_eval.landuse.flag_rules.RULE_INFO``, in the order their rows are made."""
    lines = [
        "| `rule_id` | 中文名称 name shown | `flag` | 开关 switch | fires when | `value` / `threshold` | `severity` |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule_id, r in RULE_INFO.items():
        lines.append(
            f"| `{rule_id}` | {_cell(r.label)} | `{r.flag}` {_cell(FLAG_LABELS[r.flag])} | {_switch(r.switch)} "
            f"| {_cell(r.fires_when)} | {_cell(r.measures)} | {r.severity} |"
        )
    return "\n".join(lines)


def flag_basis_table() -> str:
    """The ``basis`` text of every land-flag rule."""
    lines = ["| `rule_id` | `basis` |", "|---|---|"]
    lines += [f"| `{rule_id}` | {_cell(r.basis)} |" for rule_id, r in RULE_INFO.items()]
    return "\n".join(lines)


def blocks() -> dict[str, str]:
    """Name of each generated block of data-contract.md → its markdown."""
    out = {f"fields:{t}": field_table(t) for t in TABLE_FIELDS}
    out["units"] = unit_table()
    out["bools"] = bool_tokens()
    out["delay_causes"] = delay_cause_table()
    return out


def scheme_blocks() -> dict[str, str]:
    """Name of each generated block of schemes.md → its markdown."""
    return {"flag_rules": flag_rule_table(), "flag_basis": flag_basis_table(), "plot_ratios": plot_ratio_table()}


def _check_blanks() -> list[str]:
    known = {(t, f.name) for t, fields in TABLE_FIELDS.items() for f in fields}
    errors = [f"no blank rule for {t}.{n}" for t, n in sorted(known - BLANKS.keys())]
    errors += [f"blank rule for unknown field {t}.{n}" for t, n in sorted(BLANKS.keys() - known)]
    return errors


def render(text: str, generated: dict[str, str] | None = None, doc: Path = DOC) -> str:
    """``text`` with every generated block replaced."""
    for name, body in (blocks() if generated is None else generated).items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {re.escape(name)} -->\n).*?(<!-- END GENERATED: {re.escape(name)} -->)",
            re.S,
        )
        if not pattern.search(text):
            raise SystemExit(f"{doc}: missing block markers for {name!r}")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def source_codes() -> set[str]:
    """Problem codes raised anywhere in ``geo_eval/`` (validate.py, evaluate.py, flags.py, …)."""
    codes: set[str] = set()
    for path in sorted((ROOT / "geo_eval").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'code="([a-z_]+)"', text))
        codes |= set(re.findall(r'\breport\(\s*t,\s*problems,\s*"([a-z_]+)"', text))  # validate.report(t, problems, code …)
    codes |= set(CROSS_CHECKS)  # raised through geo_eval.inputs.validate.report_cross
    codes |= set(CORRECTION_CHECKS)  # the rows of a corrections table (geo_eval.inputs.corrections)
    return codes


def documented_codes(text: str) -> set[str]:
    """Codes in the first column of the checks table."""
    m = re.search(r"<!-- BEGIN CHECKS -->(.*?)<!-- END CHECKS -->", text, re.S)
    if not m:
        return set()
    return set(re.findall(r"^\| `([a-z_]+)` \|", m.group(1), re.M))


def main(argv: list[str]) -> int:
    """Rewrite or check ``docs/data-contract.md`` and ``docs/schemes.md``."""
    errors = _check_blanks()
    if errors:
        sys.stderr.write("\n".join(errors) + "\n")
        return 1
    texts = {doc: doc.read_text(encoding="utf-8") for doc in (DOC, SCHEMES_DOC)}
    news = {
        DOC: render(texts[DOC], blocks(), DOC),
        SCHEMES_DOC: render(texts[SCHEMES_DOC], scheme_blocks(), SCHEMES_DOC),
    }
    if "--check" in argv:
        problems = [f"{doc} is out of date: run docs/_gen_contract.py" for doc in news if news[doc] != texts[doc]]
        src, doc_codes = source_codes(), documented_codes(texts[DOC])
        problems += [f"check code {c!r} is raised in the code but not documented" for c in sorted(src - doc_codes)]
        problems += [f"check code {c!r} is documented but no longer raised" for c in sorted(doc_codes - src)]
        if problems:
            sys.stderr.write("\n".join(problems) + "\n")
            return 1
        return 0
    for doc, new in news.items():
        if new != texts[doc]:
            doc.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
