"""The Chinese header of every output column, in one table.

Files keep the canonical (English) column names; people see these labels: the workbook sheets
(``rankings.xlsx`` and the service's downloads), the 现场核查清单 and the map popups all take their
headers from here. A :class:`Label` is the Chinese name and, where the column has one, its unit; the
header people see is ``名称（单位）``. Each label has a number kind (:data:`NUMBER_FORMATS`: counts as
integers, amounts with two decimals, shares as percentages), given or taken from its unit
(:data:`UNIT_KINDS`); the workbooks format each column by it (:data:`HEADER_FORMATS`).

:data:`COLUMNS` gives each column name one label. Columns that are input fields of the data
contract take theirs from :mod:`geo_eval.inputs.fields`; the indicators and their item scores from
:data:`geo_eval.rating.indicators.INDICATORS`. A few column names mean something else in one table (the
``area_mu`` of a flag row is its parcel's, of a block the block's): :data:`IN_TABLE` lists those
exceptions, by table. :data:`TABLES` names the tables.

>>> header("land_mu"), header("tax"), header("score_tax_per_mu")
('评价用地（亩）', '税收（万元）', '亩均税收得分（分）')
>>> header("area_mu"), header("area_mu", "flags")
('面积（亩）', '宗地面积（亩）')
>>> label("rnd_intensity").number_format, label("tax").number_format, label("rank").number_format
('0.00%', '#,##0.00', '0')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from geo_eval.inputs.fields import ENTERPRISE_FIELDS, PARCEL_FIELDS, Field
from geo_eval.rating.indicators import INDICATORS
from geo_eval.rating.scheme import GRADE_LABELS

NUMBER_FORMATS: dict[str, str] = {
    "integer": "0",
    "decimal": "#,##0.00",
    "percent": "0.00%",
}
"""The Excel number format of each number kind: counts and ranks as integers; amounts, areas, figures,
indicators and scores with two decimals; shares, stored as ratios (0.021276), as percentages (2.13%)."""

UNIT_KINDS: dict[str, str] = {
    "人": "integer",
    "比值": "percent",
    **dict.fromkeys(
        (
            "万元",
            "亩",
            "平方米",
            "吨标准煤",
            "万千瓦时",
            "吨",
            "分",
            "万元/亩",
            "万元/吨标准煤",
            "元/千瓦时",
            "万元/吨",
            "万元/人",
        ),
        "decimal",
    ),
}
"""The number kind of a label by its unit, where the label does not give one (other units: none)."""


@dataclass(frozen=True)
class Label:
    """A column's Chinese name, its unit (``""``: none) and its number kind (a key of
    :data:`NUMBER_FORMATS`; by default the unit's, :data:`UNIT_KINDS`; ``""``: shown as written)."""

    text: str
    unit: str = ""
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", UNIT_KINDS.get(self.unit, ""))
        if self.kind and self.kind not in NUMBER_FORMATS:
            raise ValueError(f"unknown number kind {self.kind!r} of {self.text}")

    @property
    def number_format(self) -> str:
        """The Excel number format of the column's numbers (``""``: General).

        >>> Label("税收", "万元").number_format, Label("排名", kind="integer").number_format, Label("分类").number_format
        ('#,##0.00', '0', '')
        """
        return NUMBER_FORMATS.get(self.kind, "")

    @property
    def header(self) -> str:
        """``名称（单位）``, or the name alone for a column without a unit.

        >>> Label("税收", "万元").header, Label("分类").header
        ('税收（万元）', '分类')
        """
        return f"{self.text}（{self.unit}）" if self.unit else self.text


def _contract(fields: Iterable[Field]) -> dict[str, Label]:
    return {f.name: Label(f.label, f.unit) for f in fields}


_CONTRACT = _contract(PARCEL_FIELDS) | _contract(ENTERPRISE_FIELDS)
"""The input fields of parcels and enterprises (``county``, ``park``: the same label in both)."""

_ENTERPRISE_RESULTS = {
    "group": Label("评价分组代码"),
    "group_label": Label("评价分组"),
    "owned_m2": Label("自有土地面积", "平方米"),
    "leased_out_m2": Label("出租土地面积", "平方米"),
    "leased_in_m2": Label("承租土地面积", "平方米"),
    "land_m2": Label("评价用地", "平方米"),
    "land_mu": Label("评价用地", "亩"),
    "parcel_count": Label("自有宗地数", kind="integer"),
    "lease_count": Label("承租条数", kind="integer"),
    **{k: Label(i.label, i.unit) for k, i in INDICATORS.items()},
    **{f"score_{k}": Label(f"{i.label}得分", "分") for k, i in INDICATORS.items()},
    "score": Label("综合得分", "分"),
    "grade": Label("分类"),
    "grade_label": Label("分类名称"),
    "rank": Label("排名", kind="integer"),
    "rank_of": Label("参评企业数", kind="integer"),
    "veto": Label("否决事项"),
    "prev_grade": Label("上年分类"),
    "prev_score": Label("上年得分", "分"),
    "score_change": Label("得分变化", "分"),
    "grade_change": Label("分类变化"),
    "corrected_fields": Label("更正事项"),
}
"""``enterprises.csv`` beyond the input fields (and the ranking sheets, a selection of it)."""

_SHEETS = {
    "owned_parcels": Label("自有宗地"),
    "leased_parcels": Label("承租宗地"),
    "n_enterprises": Label("企业数", kind="integer"),
    **{f"n_grade_{g}": Label(f"{g}类（{name}）", kind="integer") for g, name in GRADE_LABELS.items()},
    "rank_scope": Label("排名范围"),
    "park_rank": Label("园区内排名", kind="integer"),
}
"""Columns of the ranking, 用地面积公示 and 园区汇总 sheets that no file has (``n_enterprises`` is a block's too):
``rank_scope`` says where ``rank`` counts (``共 340 家（东海县 规上企业）``), ``park_rank`` is the rank within
the park (:func:`geo_eval.report.tables.park_ranks`)."""

_BENCHMARKS = {
    "unit": Label("评价单元"),
    "indicator": Label("指标"),
    "method": Label("基准值方法"),
    "benchmark": Label("基准值"),
    "minimum": Label("最小值（最大最小法）"),
    "n": Label("参评企业数（有该指标）", kind="integer"),
}
"""``benchmarks.csv`` (its ``group`` is the enterprises' group key; ``basis``: :data:`IN_TABLE`)."""

_PROBLEMS = {
    "file": Label("文件"),
    "row": Label("行号"),
    "field": Label("字段"),
    "problem": Label("问题"),
    "action": Label("处理办法"),
    "code": Label("问题代码"),
    "key": Label("记录"),
}
"""``exceptions.csv`` (its ``value`` and ``severity``: :data:`IN_TABLE`)."""

_PARCELS = {
    "source_row": Label("输入行号"),
    "area_m2": Label("面积", "平方米"),
    "area_mu": Label("面积", "亩"),
    "area_diff_pct": Label("与登记面积之差", "%"),
    "eval_area_m2": Label("评价面积", "平方米"),
    "users": Label("使用企业"),
    "main_user": Label("主要使用企业"),
    "main_user_name": Label("主要使用企业名称"),
    "holder_in_enterprises": Label("权利人在企业表中"),
    "idle_months": Label("闲置整月数"),
    "idle_since": Label("闲置起算日"),
    "idle_fee_wan": Label("土地闲置费", "万元"),
    "idle_exempt": Label("闲置·政府原因（不予处罚）"),
    "idle_legal": Label("闲置土地"),
    "builtup_fraction": Label("建成区比例"),
    "plot_ratio": Label("容积率"),
    "plot_ratio_min": Label("容积率控制值"),
    "building_coefficient": Label("建筑系数"),
    "leased_out_share": Label("出租比例"),
    "renewal_candidate": Label("退二优二候选"),
    "block_id": Label("区块编号"),
}
"""Layer ``parcels`` of ``parcels.gpkg`` beyond the input fields (with the flag evidence)."""

_FLAGS = {
    "flag_id": Label("标记编号"),
    "flag": Label("标记代码"),
    "flag_label": Label("标记"),
    "rule_id": Label("规则代码"),
    "rule_label": Label("规则"),
    "basis": Label("依据"),
    "reason": Label("原因"),
    "value": Label("数值"),
    "threshold": Label("阈值"),
    "evidence": Label("证据"),
    "severity": Label("严重程度"),
    "enterprises": Label("使用企业"),
    "enterprise_names": Label("企业名称"),
    "review_status": Label("复核状态代码"),
    "review_status_label": Label("复核状态"),
    "review_comment": Label("复核意见"),
    "reviewed_by": Label("复核人"),
    "reviewed_at": Label("复核时间（UTC）"),
    "reviewed_at_label": Label("复核时间"),
    "review_version": Label("复核版本", kind="integer"),
}
"""``flags.csv`` (layer ``flags``) and the review columns of the flag downloads."""

_BLOCKS = {
    "kind": Label("区块类型"),
    "rank_by_area": Label("面积排名", kind="integer"),
    "n_parcels": Label("宗地数", kind="integer"),
    "parcel_ids": Label("宗地代码"),
    "grades": Label("宗地评价类别分布", "宗"),
    "tax_wan": Label("现状税收", "万元"),
    "tax_area_mu": Label("有税收数据的面积", "亩"),
}
"""``renewal_blocks.gpkg`` beyond the columns it shares with parcels and flags."""

_MAPS_AND_CHECKLIST = {
    "holder": Label("权利人"),
    "grade_mix": Label("分类构成"),
    "seq": Label("序号"),
    "flags": Label("标记"),
    "review_states": Label("复核状态"),
    "lon_cgcs2000": Label("中心点经度（CGCS2000）"),
    "lat_cgcs2000": Label("中心点纬度（CGCS2000）"),
    "lon_gcj02": Label("中心点经度（GCJ-02）"),
    "lat_gcj02": Label("中心点纬度（GCJ-02）"),
    "map_link": Label("地图链接"),
    "site_result": Label("核查结果"),
    "site_checker": Label("核查人"),
}
"""The map popups' columns (:func:`geo_eval.maps.attributes.parcel_attributes`, a block's ``grade_mix``)
and the 现场核查清单's."""


_CHANGES: dict[str, Label] = {
    "previous_grade": Label("上年分类"),
}
"""The changed enterprises of a year-over-year comparison (:mod:`geo_eval.rating.compare`)."""
_POLICIES = {
    "measure": Label("措施代码"),
    "label": Label("措施"),
    "agency": Label("实施部门"),
}
"""``policies.csv`` beyond the enterprise columns (its ``value``, ``unit``: :data:`IN_TABLE`; ``basis`` 依据)."""
_REPORT = {
    "unit_name": Label("县区／园区"),
    "n_rated": Label("参评企业（A–D类）", "家"),
    "n_t": Label("不参评（T类）", "家"),
    "share": Label("占参评企业", "%"),
    "prev_value": Label("上年"),
    "change_pct": Label("变化", "%"),
    "weight": Label("权重"),
    "lowest_score": Label("最低分", "分"),
    "highest_score": Label("最高分", "分"),
    "division": Label("行业大类代码"),
    "division_name": Label("行业大类（GB/T 4754）"),
    "tax_per_mu_median": Label("参评企业亩均税收中位数", "万元/亩"),
    "prev_grade_row": Label("上年分类＼本年分类"),
    "change": Label("分类变化"),
    "n_flag_parcels": Label("宗地", "宗"),
    "n_flags": Label("标记", "条"),
    "n_blocks": Label("个数"),
    "severity_count": Label("条数"),
    "setting": Label("设置"),
    "value_set": Label("取值"),
    "sha256": Label("SHA-256"),
    "path": Label("路径"),
}
"""The annual report's own table columns (``geo_eval.report.html``)."""


def _merge(*parts: dict[str, Label]) -> dict[str, Label]:
    """The parts as one table; a column name in two parts must have the same label in both."""
    out: dict[str, Label] = {}
    for part in parts:
        for name, label in part.items():
            if out.setdefault(name, label) != label:
                raise ValueError(f"column {name!r} labelled twice: {out[name].header} / {label.header}")
    return out


COLUMNS: dict[str, Label] = _merge(
    _CONTRACT,
    _ENTERPRISE_RESULTS,
    _SHEETS,
    _BENCHMARKS,
    _PROBLEMS,
    _PARCELS,
    _FLAGS,
    _BLOCKS,
    _MAPS_AND_CHECKLIST,
    _CHANGES,
    _POLICIES,
    _REPORT,
)
"""One label per output column name (see :data:`IN_TABLE` for the exceptions by table)."""

TABLES: tuple[str, ...] = (
    "enterprises",
    "benchmarks",
    "problems",
    "parcels",
    "flags",
    "blocks",
    "checklist",
    "changes",
    "policies",
)
"""The tables: ``enterprises.csv`` (and the ranking, 用地面积公示 and 园区汇总 sheets), ``benchmarks.csv``
(基准值), ``exceptions.csv``, layer ``parcels`` (and the parcel popup), ``flags.csv`` (layer ``flags``,
疑似闲置／低效地块 and the flag downloads), ``renewal_blocks.gpkg`` (连片改造区块 and the block popup), the
现场核查清单, the changed enterprises of a comparison with last year, ``policies.csv`` (差别化政策清单: the agency
sheets and downloads)."""

IN_TABLE: dict[str, dict[str, Label]] = {
    "flags": {"area_mu": Label("宗地面积", "亩")},  # a flag row is not a parcel: its parcel's area
    "blocks": {"enterprises": Label("企业统一社会信用代码")},  # every user of the members, by USCC
    "problems": {"value": Label("值"), "severity": Label("级别")},  # the value as written; 致命/警告/提示
    "benchmarks": {"basis": Label("基准值来源")},  # how the benchmark was obtained
    "policies": {"value": Label("执行标准"), "unit": Label("计量单位")},  # a measure's value for the class
}
"""Labels that differ from :data:`COLUMNS` in one table, by table."""


def label(column: str, table: str | None = None) -> Label:
    """The label of ``column`` (in ``table``, one of :data:`TABLES`); KeyError for a column without one."""
    if table is not None:
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}")
        own = IN_TABLE.get(table, {})
        if column in own:
            return own[column]
    return COLUMNS[column]


def header(column: str, table: str | None = None) -> str:
    """The Chinese header of ``column``: ``名称（单位）``."""
    return label(column, table).header


def headers(columns: Iterable[str], table: str | None = None) -> dict[str, str]:
    """Column name → Chinese header, for ``DataFrame.rename(columns=…)``, in the order given."""
    return {c: header(c, table) for c in columns}


def _header_formats() -> dict[str, str]:
    """Header → number format of every label with a number kind; a header shown with two formats is refused."""
    out: dict[str, str] = {}
    for lab in [*COLUMNS.values(), *(x for own in IN_TABLE.values() for x in own.values())]:
        if lab.number_format and out.setdefault(lab.header, lab.number_format) != lab.number_format:
            raise ValueError(f"header {lab.header} with two number formats")
    return out


HEADER_FORMATS: dict[str, str] = _header_formats()
"""The number format of the columns shown under each header (workbooks carry headers, not column names):
what :func:`geo_eval.io.xlsx.write_workbook` formats a column by. Headers without one are shown as written.

>>> HEADER_FORMATS["评价用地（亩）"], HEADER_FORMATS["研发经费支出占比（比值）"], HEADER_FORMATS["排名"]
('#,##0.00', '0.00%', '0')
"""
INTEGER_HEADERS: frozenset[str] = frozenset(h for h, f in HEADER_FORMATS.items() if f == NUMBER_FORMATS["integer"])
"""Headers of counts and ranks: written as plain integers in csv downloads (``1192``, not ``1192.0``)."""
