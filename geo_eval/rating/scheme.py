"""Evaluation schemes: one frozen, validated config object per jurisdiction and year.

A scheme is a TOML file (``docs/schemes.md`` documents every key). Presets ship in
``geo_eval/rating/schemes/``; :func:`load_scheme` takes a preset name or a path.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from geo_eval.errors import SchemeError
from geo_eval.rating.indicators import INDICATORS

GRADES = ("A", "B", "C", "D")
GRADE_LABELS = {"A": "优先发展类", "B": "鼓励提升类", "C": "监管调控类", "D": "落后整治类", "T": "不适合评价"}
DEFAULT_SCHEME = "lianyungang"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _false_is_none(v: object) -> object:
    """TOML has no null: ``false`` switches an optional threshold off."""
    return None if v is False else v


class LandOptions(_Frozen):
    """How evaluated land is measured."""

    area_source: Literal["computed", "registered"] = "computed"
    """Parcel area from the polygon in the GK plane (computed) or the registered area."""
    area_tolerance_pct: Annotated[float, Field(gt=0)] = 5.0
    """Differences between computed and registered area beyond this are reported."""
    floor_lease_conversion: Literal["plot_ratio", "floor_area"] = "plot_ratio"
    """Floor-area leases count as land by floor ÷ plot ratio, or by the floor area itself."""


class RatingRules(_Frozen):
    """Who is not rated (T class, 不适合评价)."""

    exempt_industry_prefixes: tuple[str, ...] = ("44", "45", "46")
    """GB/T 4754-2017 industry code prefixes (division digits) that are T: power, gas, water."""
    min_production_years: Annotated[float, Field(ge=0)] = 2.0
    """Enterprises producing for less than this many years at the end of the year are T."""
    honour_exempt_reason: bool = True
    """A non-empty ``exempt_reason`` in the input makes the enterprise T."""


class Group(_Frozen):
    """A group of enterprises scored and graded together; the first group whose filter matches wins."""

    key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: str
    above_scale: bool | None = None
    """True: only 规上; False: only 规下; absent: both."""
    min_land_mu: Annotated[float, Field(ge=0)] = 0.0
    lessee_only: bool | None = None
    """True: only enterprises without land of their own; False: only landholders."""
    indicators: tuple[IndicatorRule, ...]

    @model_validator(mode="after")
    def _weights(self) -> Group:
        keys = [i.key for i in self.indicators]
        if len(set(keys)) != len(keys):
            raise ValueError(f"分组 {self.key} 的指标重复：{keys}")
        total = sum(i.weight for i in self.indicators)
        if abs(total - 100.0) > 1e-9:
            raise ValueError(f"分组 {self.key} 的指标权重合计为 {total:g}，应为 100")
        return self


class IndicatorRule(_Frozen):
    """One indicator in a group: weight, benchmark, cap, floor and missing-data rule.

    Item score (ratio form) = ``weight × value / benchmark``, then floored and capped;
    ``benchmark = "minmax"`` gives ``weight × (20 + 80 × (x − min) / (max − min)) / 100``.
    """

    key: str
    weight: Annotated[float, Field(gt=0)]
    benchmark: Literal["fixed", "current_mean", "previous_mean", "best", "minmax"]
    value: Annotated[float, Field(gt=0)] | None = None
    """The published benchmark for ``fixed``."""
    k: Annotated[float, Field(gt=0)] = 1.0
    """Multiplier for ``current_mean`` and ``previous_mean``."""
    mean: Literal["aggregate", "average"] = "aggregate"
    """aggregate: Σ numerator / Σ denominator over the rated enterprises of the ranking unit and
    group; average: the plain average of the enterprises' values."""
    cap: Annotated[float, Field(gt=0)] | None = None
    """Item score at most ``cap × weight``; absent: no cap."""
    floor: float | None = 0.0
    """Item score at least this (0 keeps negative values from scoring below zero); ``false``: none."""
    missing: Literal["zero", "group_mean_score"] = "zero"
    """Missing value: item scores 0, or the group's average item score (黄岩 rule)."""

    @field_validator("floor", mode="before")
    @classmethod
    def _floor_off(cls, v: object) -> object:
        # TOML has no null: ``floor = false`` switches the floor off.
        return None if v is False else v

    @model_validator(mode="after")
    def _check(self) -> IndicatorRule:
        if self.key not in INDICATORS:
            raise ValueError(f"未知指标 {self.key!r}，可用：{', '.join(INDICATORS)}")
        if self.benchmark == "fixed" and self.value is None:
            raise ValueError(f"指标 {self.key} 的基准值方法为 fixed，但没有给出 value")
        return self


class Veto(_Frozen):
    """A veto rule (一票否决): a true flag sets the grade, or caps it at the given grade."""

    field: Literal["safety_veto", "environment_veto"]
    mode: Literal["set", "cap"] = "set"
    grade: Literal["A", "B", "C", "D"] = "D"
    label: str = ""


class Adjustments(_Frozen):
    """Bonus and penalty points added to the score."""

    use_bonus: bool = True
    use_penalty: bool = True
    bonus_max: Annotated[float, Field(ge=0)] | None = None
    penalty_max: Annotated[float, Field(ge=0)] | None = None


class Grading(_Frozen):
    """Grades from ranked scores within each ranking unit and group.

    ``percentile``: cumulative shares for A, B, C; the count for a cumulative share ``s`` of ``n``
    rated enterprises is ``rounding(n × s)``; D takes the rest. Ties at a cut: ``up`` gives the whole
    tie the better grade, ``down`` the worse, ``order`` splits it by USCC; ``ties_at_d`` overrides
    this at the C/D cut (default: the whole tie is D).
    ``thresholds``: minimum scores for A, B, C; the rest is D.
    """

    method: Literal["percentile", "thresholds"] = "percentile"
    shares: dict[Literal["A", "B", "C"], Annotated[float, Field(gt=0, le=1)]] = {"A": 0.20, "B": 0.60, "C": 0.95}
    rounding: Literal["floor", "ceil", "half_up"] = "floor"
    ties: Literal["up", "down", "order"] = "up"
    ties_at_d: Literal["same", "down"] = "down"
    """A tie across the C/D cut: ``down`` puts the whole tie in D (D is the bottom share, counted
    from the bottom: equal to a bottom enterprise is bottom too); ``same`` applies ``ties``."""
    thresholds: dict[Literal["A", "B", "C"], float] = {}
    score_decimals: Annotated[int, Field(ge=0, le=6)] = 2

    @model_validator(mode="after")
    def _check(self) -> Grading:
        if self.method == "percentile":
            s = [self.shares.get(g) for g in ("A", "B", "C")]
            if any(v is None for v in s) or not (s[0] < s[1] < s[2]):  # type: ignore[operator]
                raise ValueError(f"百分位分档需要 A < B < C 的累计比例，实际为 {self.shares}")
        else:
            t = [self.thresholds.get(g) for g in ("A", "B", "C")]
            if any(v is None for v in t) or not (t[0] > t[1] > t[2]):  # type: ignore[operator]
                raise ValueError(f"分数线分档需要 A > B > C 的分数线，实际为 {self.thresholds}")
        return self


class IdleRules(_Frozen):
    """Legal idle land (《闲置土地处置办法》, 国土资源部令第53号, domain.md §5)."""

    enabled: bool = True
    fee_years: Annotated[int, Field(ge=1)] = 1
    """Idle this many full years: 土地闲置费."""
    reclaim_years: Annotated[int, Field(ge=1)] = 2
    """Idle this many full years: 无偿收回."""
    fee_rate: Annotated[float, Field(ge=0, le=1)] = 0.20
    """土地闲置费 as a share of the land price."""
    developed_ratio_min: Annotated[float, Field(ge=0, le=1)] = 1 / 3
    """Started but developed area below this share of the due area …"""
    invested_ratio_min: Annotated[float, Field(ge=0, le=1)] = 0.25
    """… or investment below this share of the total, and suspended a full year: idle."""

    @model_validator(mode="after")
    def _years(self) -> IdleRules:
        if self.reclaim_years < self.fee_years:
            raise ValueError(
                f"无偿收回年限 reclaim_years={self.reclaim_years} 不能小于征收闲置费年限 fee_years={self.fee_years}"
            )
        return self


class SuspectedIdleRules(_Frozen):
    """Evidence of idleness for a site visit (not a legal finding)."""

    enabled: bool = True
    no_enterprise: bool = True
    """No enterprise of the evaluation uses the parcel."""
    zero_output: bool = True
    """Every user of the parcel reports zero tax and zero sales."""
    builtup_below: Annotated[float, Field(ge=0, le=1)] | None = 0.10
    """Built-up fraction inside the parcel (raster evidence) below this; ``false``: rule off."""

    _off = field_validator("builtup_below", mode="before")(_false_is_none)


class LowEfficiencyRules(_Frozen):
    """Low-efficiency land (低效用地): each rule on its own, all configurable (domain.md §6)."""

    enabled: bool = True
    grade_d: bool = True
    """The parcel's main user is graded D …"""
    grade_d_years: Annotated[int, Field(ge=1, le=2)] = 1
    """… this year (1) or this year and last year (2, needs --previous)."""
    tax_per_mu_below: Annotated[float, Field(gt=0)] | None = None
    """Tax per 亩 of the parcel below this fixed value (万元/亩); ``false``: rule off."""
    tax_per_mu_below_mean_share: Annotated[float, Field(gt=0)] | None = 0.2
    """Tax per 亩 below this share of the county's aggregate tax per 亩; ``false``: rule off."""
    plot_ratio: bool = True
    """Plot ratio below the control value for the occupant's industry (国土资发〔2008〕24号)."""
    plot_ratio_floor: Annotated[float, Field(gt=0)] | None = None
    """A regional floor used instead where it is higher (Jiangsu 苏北 new projects: 1.0); ``false``: off."""
    building_coefficient_below: Annotated[float, Field(gt=0, le=1)] | None = 0.30
    """建筑系数 (footprint / land) below this; ``false``: rule off."""
    zero_tax_years: Annotated[int, Field(ge=1, le=2)] | None = 2
    """Zero tax for this many years (2 needs --previous); ``false``: rule off."""
    leased_out_share_above: Annotated[float, Field(gt=0, le=1)] | None = 0.5
    """Land mainly leased out: leased-out share of the parcel above this; ``false``: rule off."""

    _off = field_validator(
        "tax_per_mu_below",
        "tax_per_mu_below_mean_share",
        "plot_ratio_floor",
        "building_coefficient_below",
        "zero_tax_years",
        "leased_out_share_above",
        mode="before",
    )(_false_is_none)


class BlockRules(_Frozen):
    """Contiguous renewal blocks (集中连片改造)."""

    tolerance_m: Annotated[float, Field(ge=0)] = 15.0
    """Candidates closer than this (metres) join one block, so a narrow road does not split it."""
    min_area_mu: Annotated[float, Field(ge=0)] = 50.0
    """Blocks at least this large are 连片改造区块; smaller groups are 零星地块."""


class FlagRules(_Frozen):
    """Land flags for the natural resources bureau."""

    idle: IdleRules = IdleRules()
    suspected_idle: SuspectedIdleRules = SuspectedIdleRules()
    low_efficiency: LowEfficiencyRules = LowEfficiencyRules()
    blocks: BlockRules = BlockRules()


class Checks(_Frozen):
    """Plausibility checks on the inputs: values beyond these are warnings that name the row."""

    tax_per_mu_above: Annotated[float, Field(gt=0)] | None = 10_000.0
    """An enterprise's tax per 亩 of evaluated land above this (万元/亩, default 1 亿元 per 亩) is reported
    (``implausible_tax_per_mu``): usually tax entered in 元 instead of 万元; ``false``: off."""

    _off = field_validator("tax_per_mu_above", mode="before")(_false_is_none)


POLICY_CLASSES = ("A", "B", "C", "D", "T")
"""The classes a differentiated-policy measure may give a value to (T: only where a measure names it)."""
TEMPLATE_BASIS = "模板值，须由本市核定"
"""The ``basis`` of a measure whose values are a template the city sets (docs/schemes.md, [[policies]])."""
POLICY_SHEET_PREFIX = "差别化政策·"
"""An agency's sheet in rankings.xlsx (and its download) is this prefix and the agency's name."""
AGENCY_MAX = 31 - len(POLICY_SHEET_PREFIX)
"""Longest agency name: its sheet name must fit Excel's 31 characters."""
_TEMPLATE_MARK = "模板值"
_POLICY_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_SHEET_FORBIDDEN = "/\\?*[]:"


def is_template_basis(basis: object) -> bool:
    """Whether a measure's ``basis`` marks its values as a template (it begins with 模板值).

    >>> is_template_basis("模板值，须由本市核定"), is_template_basis("青发改规〔2020〕2号")
    (True, False)
    """
    return isinstance(basis, str) and basis.startswith(_TEMPLATE_MARK)


def _reads_as_number(text: str) -> bool:
    """A text a reader of ``policies.csv`` would take for a number (``"0.1"``, ``"1e3"``, ``"inf"``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _value_problem(value: object) -> str | None:
    """Why ``value`` cannot be a measure's value for a class (None: it can)."""
    if isinstance(value, bool):
        return f"是布尔值 {str(value).lower()}，应为数值或文字"
    if isinstance(value, int | float):
        return None if math.isfinite(value) else f"是 {value}，应为有限的数值"
    if isinstance(value, str):
        if not value.strip():
            return "是空文字"
        if _reads_as_number(value):
            return f"是加了引号的数字 {value!r}，数值请不加引号"
        return None
    return f"是{type(value).__name__}（{value!r}），应为数值或文字"


class Policy(_Frozen):
    """One differentiated-policy measure (差别化政策): the value an agency applies to each class.

    ``values`` maps a class (A–D, or T) to a number (in ``unit``) or a text; classes without a value
    get no row in ``policies.csv``. ``basis`` names the notice, or is :data:`TEMPLATE_BASIS`.
    """

    key: str
    label: str
    agency: str
    unit: str = ""
    values: dict[str, int | float | str]
    basis: str

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _POLICY_KEY.match(v):
            raise ValueError(
                f"措施键 {v!r} 应为小写英文字母开头，只含小写字母、数字和下划线（如 electricity_surcharge）"
            )
        return v

    @field_validator("label", "basis")
    @classmethod
    def _text(cls, v: str, info: ValidationInfo) -> str:
        if not v.strip():
            hint = f"写明通知文号，或写“{TEMPLATE_BASIS}”" if info.field_name == "basis" else "写明措施的中文名称"
            raise ValueError(f"{info.field_name} 不能为空：{hint}")
        return v

    @field_validator("agency")
    @classmethod
    def _agency(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("实施部门 agency 不能为空")
        bad = sorted({c for c in v if c in _SHEET_FORBIDDEN})
        if bad or v.startswith("'") or len(v) > AGENCY_MAX:
            raise ValueError(
                f"实施部门 {v!r} 不能用作工作表名：最多 {AGENCY_MAX} 个字，不含 / \\ ? * [ ] :，不以 ' 开头"
                + (f"（含 {' '.join(bad)}）" if bad else "")
            )
        return v

    @field_validator("values", mode="before")
    @classmethod
    def _values(cls, v: object, info: ValidationInfo) -> object:
        if not isinstance(v, dict):
            return v  # pydantic reports the type
        measure = f"措施 {info.data['key']}" if "key" in info.data else "措施"
        if not v:
            raise ValueError(f"{measure} 没有为任何分类给出取值（values 至少要有一个分类）")
        problems = [f"未知分类 {k!r}（可用：{'、'.join(POLICY_CLASSES)}）" for k in v if k not in POLICY_CLASSES]
        problems += [f"{k} 类的取值{why}" for k, x in v.items() if (why := _value_problem(x)) is not None]
        kinds = {isinstance(x, str) for x in v.values()}
        if not problems and len(kinds) > 1:
            problems.append("取值应全部为数值或全部为文字，不能混用")
        if problems:
            raise ValueError(f"{measure}：" + "；".join(problems))
        return {k: v[k] for k in POLICY_CLASSES if k in v}

    @property
    def is_template(self) -> bool:
        """The values are a template the city must set (``basis`` says so)."""
        return is_template_basis(self.basis)


class Scheme(_Frozen):
    """One evaluation scheme (评价办法) for one jurisdiction and year."""

    name: str
    title: str
    source: str = ""
    ranking_unit: Literal["county", "park"] = "county"
    land: LandOptions = LandOptions()
    rating: RatingRules = RatingRules()
    groups: tuple[Group, ...]
    vetoes: tuple[Veto, ...] = ()
    adjustments: Adjustments = Adjustments()
    grading: Grading = Grading()
    flags: FlagRules = FlagRules()
    checks: Checks = Checks()
    policies: tuple[Policy, ...] = ()
    """Differentiated-policy measures (差别化政策清单), in the scheme's order."""
    digest: str = ""
    """sha256 of the TOML text the scheme was loaded from."""

    @model_validator(mode="after")
    def _groups(self) -> Scheme:
        keys = [g.key for g in self.groups]
        if not keys:
            raise ValueError("方案至少需要一个分组")
        if len(set(keys)) != len(keys):
            raise ValueError(f"分组键重复：{keys}")
        return self

    @field_validator("policies")
    @classmethod
    def _policies(cls, v: tuple[Policy, ...]) -> tuple[Policy, ...]:
        keys = [p.key for p in v]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"差别化政策措施键重复：{'、'.join(twice)}")
        agencies = {p.agency for p in v}
        clash = sorted(a for a in agencies if any(b != a and b.casefold() == a.casefold() for b in agencies))
        if clash:
            raise ValueError(f"实施部门名称只差大小写，工作表名会重复：{'、'.join(clash)}")
        return v

    @property
    def agencies(self) -> tuple[str, ...]:
        """The agencies of the policy measures, in first-use order."""
        return tuple(dict.fromkeys(p.agency for p in self.policies))

    @property
    def indicator_keys(self) -> tuple[str, ...]:
        """Every indicator key used by any group, in first-use order."""
        seen: dict[str, None] = {}
        for g in self.groups:
            for i in g.indicators:
                seen.setdefault(i.key, None)
        return tuple(seen)

    @property
    def needs_previous(self) -> bool:
        """True when a benchmark uses last year's results."""
        return any(i.benchmark == "previous_mean" for g in self.groups for i in g.indicators)


Group.model_rebuild()


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.name[:-5] for p in resources.files("geo_eval.rating.schemes").iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    """The TOML text of a shipped preset."""
    path = resources.files("geo_eval.rating.schemes").joinpath(f"{name}.toml")
    if not path.is_file():
        raise SchemeError(f"没有名为 {name!r} 的预置方案；可用：{', '.join(preset_names())}")
    return path.read_text(encoding="utf-8")


def parse_scheme(text: str, *, origin: str = "<方案>") -> Scheme:
    """Parse and validate scheme TOML; every problem is reported in one :class:`SchemeError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchemeError(f"方案文件 {origin} 不是合法的 TOML：{exc}") from exc
    data["digest"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        return Scheme.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  - {loc or '(顶层)'}：{msg}")
        raise SchemeError(f"方案文件 {origin} 有 {len(lines)} 处问题：\n" + "\n".join(lines)) from None


def load_scheme(name_or_path: str | Path) -> Scheme:
    """A preset by name (``huaian-2024``) or a scheme TOML file by path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise SchemeError(f"找不到方案文件 {p}")
        return parse_scheme(p.read_text(encoding="utf-8"), origin=str(p))
    return parse_scheme(preset_text(str(name_or_path)), origin=f"预置方案 {name_or_path}")
