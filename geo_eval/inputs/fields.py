"""The data contract: canonical field names, their Chinese headers, kinds and units.

Every input table is renamed to these canonical (English) names on load; every output table is
labelled back in Chinese for people. ``docs/data-contract.md`` is the prose version of this module.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["text", "code", "number", "money", "date", "bool"]


@dataclass(frozen=True)
class Field:
    """One column of an input table."""

    name: str
    label: str  # Chinese header used in outputs
    kind: Kind
    required: bool = False  # the column must exist
    unit: str = ""  # canonical unit, shown in output headers
    aliases: tuple[str, ...] = field(default_factory=tuple)  # other accepted headers


PARCEL_FIELDS: tuple[Field, ...] = (
    Field("parcel_id", "宗地代码", "code", True, aliases=("宗地编码", "宗地号", "ZDDM", "地块编号", "不动产单元代码")),
    Field(
        "holder_uscc",
        "权利人统一社会信用代码",
        "code",
        True,
        aliases=("权利人代码", "权利人信用代码", "土地使用权人统一社会信用代码", "QLRDM", "统一社会信用代码"),
    ),
    Field("holder_name", "权利人", "text", aliases=("权利人名称", "土地使用权人", "QLR", "QLRMC")),
    Field("county", "县区", "text", True, aliases=("县（区）", "县(区)", "区县", "所属县区", "行政区")),
    Field("park", "园区", "text", True, aliases=("所属园区", "开发区", "园区名称")),
    Field("land_use", "土地用途", "text", aliases=("用途", "TDYT", "地类")),
    Field(
        "registered_area_m2",
        "登记面积",
        "number",
        unit="平方米",
        aliases=("登记面积（平方米）", "宗地面积", "宗地面积（平方米）", "ZDMJ", "证载面积"),
    ),
    Field("floor_area_m2", "总建筑面积", "number", unit="平方米", aliases=("建筑面积", "JZMJ")),
    Field("footprint_area_m2", "建筑基底面积", "number", unit="平方米", aliases=("建筑占地面积", "基底面积", "JZZDMJ")),
    Field("contract_start_date", "约定动工日期", "date", aliases=("合同约定动工日期",)),
    Field("actual_start_date", "实际动工日期", "date", aliases=("动工日期",)),
    Field("developed_ratio", "已开发面积比例", "number", aliases=("已开发比例", "开发面积比例")),
    Field("invested_ratio", "已投资比例", "number", aliases=("投资比例", "已投资额占比")),
    Field("suspended_since", "停工日期", "date", aliases=("中止开发日期", "停建日期")),
    Field("delay_cause", "政府原因延迟", "text", aliases=("延迟动工原因", "闲置原因")),
    Field("land_price", "土地出让价款", "money", unit="万元", aliases=("出让价款", "土地价款", "成交价")),
)

ENTERPRISE_FIELDS: tuple[Field, ...] = (
    Field("uscc", "统一社会信用代码", "code", True, aliases=("信用代码", "社会信用代码", "纳税人识别号")),
    Field("name", "企业名称", "text", True, aliases=("单位名称", "纳税人名称", "企业")),
    Field("county", "县区", "text", True, aliases=("县（区）", "县(区)", "区县", "所属县区", "行政区")),
    Field("park", "园区", "text", aliases=("所属园区", "开发区", "园区名称")),
    Field("industry_code", "行业代码", "code", aliases=("国民经济行业代码", "行业分类代码", "所属行业代码")),
    Field("above_scale", "是否规上", "bool", aliases=("规上企业", "规模以上", "规上/规下", "企业规模")),
    Field("production_start", "投产日期", "date", aliases=("投产时间", "开业日期", "成立日期")),
    Field("exempt_reason", "不参评原因", "text", aliases=("不参与评价原因", "免评原因", "T类原因")),
    Field(
        "tax",
        "税收",
        "money",
        True,
        unit="万元",
        aliases=("实缴税金", "入库税收", "税收实际入库", "评价税收", "实缴税收"),
    ),
    Field("sales", "销售收入", "money", unit="万元", aliases=("应税销售收入", "开票销售收入", "营业收入", "销售额")),
    Field("value_added", "工业增加值", "money", unit="万元", aliases=("增加值",)),
    Field("main_revenue", "主营业务收入", "money", unit="万元", aliases=("主营收入",)),
    Field("rnd", "研发经费支出", "money", unit="万元", aliases=("研发经费", "R&D经费支出", "R&D经费", "研发投入")),
    Field(
        "energy_tce",
        "综合能耗",
        "number",
        unit="吨标准煤",
        aliases=("综合能耗（吨标煤）", "能耗", "综合能源消费量", "能源消费量"),
    ),
    Field("electricity_10k_kwh", "用电量", "number", unit="万千瓦时", aliases=("用电", "总用电量", "电耗")),
    Field(
        "emission_t", "主要污染物排放量", "number", unit="吨", aliases=("污染物排放量", "排放量", "主要污染物排放当量")
    ),
    Field(
        "employees",
        "年平均职工人数",
        "number",
        unit="人",
        aliases=("职工人数", "从业人员", "年均职工人数", "从业人员平均人数"),
    ),
    Field("safety_veto", "安全生产否决", "bool", aliases=("安全生产一票否决", "重大安全事故")),
    Field("environment_veto", "环保否决", "bool", aliases=("环保一票否决", "重大环境事件", "生态环境否决")),
    Field("bonus", "加分", "number", unit="分", aliases=("加分项",)),
    Field("penalty", "减分", "number", unit="分", aliases=("减分项", "扣分")),
)

LEASE_FIELDS: tuple[Field, ...] = (
    Field(
        "lessee_uscc",
        "承租方统一社会信用代码",
        "code",
        True,
        aliases=("承租企业统一社会信用代码", "承租方代码", "承租人统一社会信用代码"),
    ),
    Field("lessee_name", "承租方名称", "text", aliases=("承租企业", "承租方", "承租人")),
    Field("parcel_id", "宗地代码", "code", True, aliases=("宗地编码", "宗地号", "地块编号")),
    Field("leased_land_m2", "租赁土地面积", "number", unit="平方米", aliases=("租用土地面积", "出租土地面积")),
    Field(
        "leased_floor_m2",
        "租赁厂房面积",
        "number",
        unit="平方米",
        aliases=("租用厂房面积", "租赁建筑面积", "出租厂房面积"),
    ),
)

FIGURES: tuple[str, ...] = (
    "tax",
    "sales",
    "value_added",
    "main_revenue",
    "rnd",
    "energy_tce",
    "electricity_10k_kwh",
    "emission_t",
    "employees",
)
"""Raw enterprise figures carried into the results (and read back as last year's figures)."""

TABLE_FIELDS: dict[str, tuple[Field, ...]] = {
    "parcels": PARCEL_FIELDS,
    "enterprises": ENTERPRISE_FIELDS,
    "leases": LEASE_FIELDS,
}

# Unit words that may appear in a header and the factor to the canonical unit.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "万元": {"万元": 1.0, "元": 1e-4, "千元": 0.1, "亿元": 1e4},
    "平方米": {"平方米": 1.0, "m2": 1.0, "㎡": 1.0, "亩": 2000 / 3, "公顷": 1e4, "hm2": 1e4},
    "万千瓦时": {"万千瓦时": 1.0, "千瓦时": 1e-4, "kwh": 1e-4, "万kwh": 1.0, "度": 1e-4, "万度": 1.0},
    "吨标准煤": {"吨标准煤": 1.0, "吨标煤": 1.0, "tce": 1.0, "万吨标准煤": 1e4, "千克标准煤": 1e-3},
    "吨": {"吨": 1.0, "t": 1.0, "千克": 1e-3, "kg": 1e-3},
    "人": {"人": 1.0},
    "分": {"分": 1.0},
}

_UNIT_RE = re.compile(r"[（(\[【]\s*([^）)\]】]*)\s*[）)\]】]\s*$")


def normalize_header(text: object) -> tuple[str, str]:
    """Split a header into its normalised name and the unit in trailing brackets.

    Full-width characters are folded (NFKC), blanks and line breaks removed.

    >>> normalize_header("税收（万元）")
    ('税收', '万元')
    >>> normalize_header(" 用电量\\n(万千瓦时) ")
    ('用电量', '万千瓦时')
    """
    s = unicodedata.normalize("NFKC", str(text)).strip()
    s = re.sub(r"\s+", "", s)
    unit = ""
    m = _UNIT_RE.search(s)
    if m:
        unit = m.group(1)
        s = s[: m.start()]
    return s.lower() if s.isascii() else s, unit.lower()


def header_lookup(fields: tuple[Field, ...]) -> dict[str, Field]:
    """Map every accepted normalised header (English name, Chinese label, aliases) to its field."""
    out: dict[str, Field] = {}
    for f in fields:
        for h in (f.name, f.label, *f.aliases):
            out[normalize_header(h)[0]] = f
    return out


def field_by_name(table: str, name: str) -> Field:
    """The field called ``name`` in ``table`` (parcels, enterprises or leases)."""
    for f in TABLE_FIELDS[table]:
        if f.name == name:
            return f
    raise KeyError(f"{table}.{name}")


DBF_NAME_BYTES = 10
"""A Shapefile's attribute names (dBASE fields) are cut to this many bytes of their encoding."""
_OPEN_BRACKET = re.compile(r"[(\[【][^)\]】]*$")


@dataclass(frozen=True)
class CutHeader:
    """A Shapefile header that reads like a contract header cut to :data:`DBF_NAME_BYTES` bytes."""

    header: str
    candidates: tuple[Field, ...]
    """The fields it may stand for (one: recognised; several: ambiguous)."""
    unit_lost: bool = False
    """The cut fell inside the unit in brackets (``登记面积（`` of ``登记面积（亩）``): the unit is unknown."""


def cut_header(header: object, fields: tuple[Field, ...], taken: set[str]) -> CutHeader | None:
    """What a header that matches no contract header may be, if it is a Shapefile name cut to 10 bytes.

    Only headers of 9 or 10 bytes (GBK or UTF-8) can be cut names. The candidates are the fields
    (other than ``taken``, those matched in full) with an accepted header that starts with it; when
    the cut fell inside brackets, the fields whose header is the part before them.

    >>> from geo_eval.inputs.fields import PARCEL_FIELDS
    >>> [f.name for f in cut_header("holder_usc", PARCEL_FIELDS, set()).candidates]
    ['holder_uscc']
    >>> [f.name for f in cut_header("土地使用权", PARCEL_FIELDS, set()).candidates]
    ['holder_uscc', 'holder_name']
    >>> cut_header("county", PARCEL_FIELDS, set()) is None
    True
    """
    text = str(header).strip()
    if not any(len(text.encode(enc, errors="replace")) in (9, 10) for enc in ("gb18030", "utf-8")):
        return None
    name = normalize_header(text)[0]
    bracket = _OPEN_BRACKET.search(name)
    if bracket:
        name = name[: bracket.start()]
    if not name:
        return None
    found: dict[str, Field] = {}
    for f in fields:
        if f.name in taken:
            continue
        for h in (f.name, f.label, *f.aliases):
            full = normalize_header(h)[0]
            if (full == name) if bracket else (full.startswith(name) and len(full) > len(name)):
                found[f.name] = f
    if not found:
        return None
    return CutHeader(text, tuple(found.values()), unit_lost=bool(bracket))
