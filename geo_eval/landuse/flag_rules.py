"""The land-flag rules as a registry: one declared record and one small function per ``rule_id``.

A rule's record (:class:`FlagRule`) says what it is: its ``rule_id``, flag kind, Chinese name, legal or
policy basis, severity and the key of the scheme's ``[flags]`` section that switches it on. Its
function takes the per-parcel measures of one evaluation (:class:`ParcelFacts`) and returns the
parcels it hits with their value, threshold, reason and evidence (:class:`Hits`), working on whole
arrays. :data:`RULES` holds the records in the order their rows are made; :func:`geo_eval.landuse.flags.flag_parcels`
loops over it, then adds the 退二优二 candidates (:data:`RENEWAL_RULE`, made from the other rows).

Adding a city's rule: a function ``f(facts) -> Hits | None`` (new measures as :class:`ParcelFacts`
properties), a switch in :class:`geo_eval.rating.scheme.FlagRules`, one :class:`FlagRule` in :data:`RULES`, and
a case in ``tests/test_flag_rules.py``; ``docs/_gen_contract.py`` writes its row into ``docs/schemes.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from geo_eval.inputs.problems import FATAL, Problems
from geo_eval.landuse.controls import industry_name, min_plot_ratio
from geo_eval.rating.evaluate import Evaluation
from geo_eval.rating.scheme import FlagRules, IdleRules

BASIS_IDLE = "《闲置土地处置办法》（国土资源部令第53号）第二条、第十四条"
BASIS_IDLE_EXEMPT = "《闲置土地处置办法》（国土资源部令第53号）第八条"
BASIS_SUSPECTED = "《闲置土地处置办法》第二条（疑似线索，须现场核查，不是认定结论）"
BASIS_LOW_EFF = "《关于深入推进城镇低效用地再开发的指导意见（试行）》（国土资发〔2016〕147号）；本地低效用地认定标准"
BASIS_CONTROL = "《工业项目建设用地控制指标》（国土资发〔2008〕24号）"
BASIS_RENEWAL = "连云港市制造业行动方案：推动低效工业用地“退二优二”，鼓励集中连片改造"

DELAY_CAUSES = {
    "land_not_delivered": "未按约定交付土地",
    "plan_change": "规划调整",
    "policy_change": "国家政策调整",
    "petition": "信访",
    "military_heritage": "军事管制或文物保护",
    "other_government": "其他政府原因",
    "force_majeure": "不可抗力",
}
"""Government causes of delay (《闲置土地处置办法》第八条): code → Chinese name."""

Severity = Literal["高", "中", "低"]


@dataclass(frozen=True, kw_only=True)
class RuleInfo:
    """What a flag rule is: the fields of its ``flags.csv`` rows that do not depend on the parcel."""

    rule_id: str
    flag: str
    """Flag kind (a key of :data:`geo_eval.landuse.flags.FLAG_LABELS`)."""
    label: str
    """Chinese name shown to people instead of ``rule_id``."""
    basis: str
    """Legal or policy basis; a run may append to it (:attr:`Hits.basis_note`)."""
    severity: Severity
    switch: str | None
    """``section.key`` in the scheme's ``[flags]``: the rule runs when the section is enabled and the
    key is neither ``false`` nor absent; ``None``: made from the other rules' rows."""
    fires_when: str
    """When it fires (English, for ``docs/schemes.md``)."""
    measures: str
    """What ``value`` / ``threshold`` hold (English, for ``docs/schemes.md``)."""


@dataclass(frozen=True)
class Hits:
    """The parcels a rule hits and what it says about each.

    ``mask`` marks the hit parcels by position. ``value``, ``threshold``, ``reason`` and ``evidence`` are
    a scalar, or a Series labelled by parcel position: all parcels, or only the hit ones (text is built
    for those only, with :func:`on_hits`).
    """

    mask: pd.Series
    value: pd.Series | float
    threshold: pd.Series | float
    reason: pd.Series | str
    evidence: pd.Series | str
    basis_note: str = ""
    """Appended to the rule's ``basis`` (the scheme's title, the years counted)."""


@dataclass(frozen=True, kw_only=True)
class FlagRule(RuleInfo):
    """A rule run on the parcels, with the function that finds them (``None``: it hits none in this run)."""

    switch: str
    hits: Callable[[ParcelFacts], Hits | None]


def switched_on(rules: FlagRules, switch: str) -> bool:
    """Whether the ``[flags]`` key ``switch`` (``section.key``) runs its rule.

    >>> switched_on(FlagRules(), "low_efficiency.plot_ratio"), switched_on(FlagRules(), "low_efficiency.tax_per_mu_below")
    (True, False)
    """
    section, key = switch.split(".")
    group = getattr(rules, section)
    value = getattr(group, key)
    return bool(group.enabled) and value is not None and value is not False


# --- idle-land clock (《闲置土地处置办法》) --------------------------------------------------------------


def full_months(start: pd.Series, end: pd.Timestamp) -> pd.Series:
    """Whole months from ``start`` to ``end``: a month is full on the same calendar day, or on the
    last day of a shorter month (29 Feb → 28 Feb, 31 Jan → 28/29 Feb), as :func:`full_years_reached`.

    >>> s = pd.Series(pd.to_datetime(["2025-03-31", "2025-04-01", "2024-03-31", "2024-02-29"]))
    >>> full_months(s, pd.Timestamp("2026-03-31")).tolist(), full_months(s[3:], pd.Timestamp("2025-02-28")).tolist()
    ([12.0, 11.0, 24.0, 25.0], [12.0])
    """
    s = pd.to_datetime(start)
    due_day = np.minimum(s.dt.day, end.days_in_month)
    months = (end.year - s.dt.year) * 12 + (end.month - s.dt.month) - (end.day < due_day).astype(float)
    return months.where(s.notna()).astype(float)


def full_years_reached(start: pd.Series, end: pd.Timestamp, years: int) -> pd.Series:
    """True where ``end`` is on or after the same calendar date ``years`` later (29 Feb → 28 Feb)."""
    s = pd.to_datetime(start)
    return (s + pd.DateOffset(years=years)) <= end


def normalize_delay_cause(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Canonical cause codes (codes or Chinese names accepted) and a mask of unrecognised values."""
    code = pd.Series(pd.NA, index=values.index, dtype="string")
    bad = pd.Series(False, index=values.index)
    given = values.notna().to_numpy()
    if given.any():  # most parcels have no cause: look at the given ones only
        s = values[given].astype("string").str.strip()
        by_name = {v: k for k, v in DELAY_CAUSES.items()}
        c = s.str.lower().where(s.str.lower().isin(list(DELAY_CAUSES)), s.map(by_name))
        code[given] = c
        bad[given] = ((s != "") & c.isna()).fillna(False).astype(bool)
    return code, bad


def check_delay_causes(parcels: pd.DataFrame, problems: Problems, file: str) -> pd.Series:
    """The parcels' canonical delay causes; a value that is neither a cause of Art. 8 (code or Chinese
    name) is fatal (``bad_delay_cause``): the idle-land finding depends on it."""
    values = _col(parcels, "delay_cause")
    cause, bad = normalize_delay_cause(values.astype("string"))
    if bad.any():
        problems.add(
            file=file,
            rows=parcels.loc[bad, "source_row"],
            field="政府原因延迟",
            values=values[bad],
            severity=FATAL,
            code="bad_delay_cause",
            problem="政府原因延迟不是规定的原因（《闲置土地处置办法》第八条）",
            action="请改为以下之一（代码或中文）后重新运行：" + "、".join(f"{k} {v}" for k, v in DELAY_CAUSES.items()),
        )
    return cause


# --- helpers for reasons and evidence ---------------------------------------------------------------


def _col(p: pd.DataFrame, name: str) -> pd.Series:
    return p[name] if name in p else pd.Series(np.nan, index=p.index)


def _fmt(x: pd.Series, digits: int = 2) -> pd.Series:
    return x.round(digits).astype("string").fillna("无")


def _pct(x: pd.Series) -> pd.Series:
    return (x * 100).round(1).astype("string")


def _date(x: pd.Series) -> pd.Series:
    return pd.to_datetime(x).dt.strftime("%Y-%m-%d").astype("string").fillna("无")


def on_hits(mask: pd.Series) -> tuple[pd.Series, Callable[[pd.Series], pd.Series]]:
    """``(m, q)``: the mask as booleans and ``q(x)``, ``x`` restricted to its rows.

    Reason and evidence strings are built for the hit rows only.
    """
    m = mask.fillna(False).astype(bool)
    pos = np.flatnonzero(m.to_numpy())

    def q(x: pd.Series) -> pd.Series:
        return x.iloc[pos]

    return m, q


# --- what the rules look at ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IdleClock:
    """Where each parcel's idle clock starts and how far it has run (《闲置土地处置办法》第二条、第十四条)."""

    since: pd.Series
    months: pd.Series
    not_started: pd.Series
    fee: pd.Series
    """``fee_years`` full years reached."""
    reclaim: pd.Series
    """``reclaim_years`` full years reached."""
    exempt: pd.Series
    """``fee_years`` reached with a government cause (第八条)."""
    cause: pd.Series
    fee_amount: pd.Series
    """土地闲置费 in 万元 (``fee_rate × land_price``)."""
    dates: pd.DataFrame
    """The input columns the evidence names (dates, ratios, land price)."""


@dataclass(frozen=True)
class IdleText:
    """Texts of the parcels with an idle clock, on their positions (``on(x)``: ``x`` on those rows)."""

    on: Callable[[pd.Series], pd.Series]
    evidence: pd.Series
    head: pd.Series
    """``约定动工日期 2024-02-29`` or ``中止开发日期 …``."""
    held: pd.Series
    """Whole months idle."""
    why: pd.Series
    """Not started, or started too little and suspended."""


class ParcelFacts:
    """The per-parcel measures of one evaluation that the rules look at, by parcel position.

    Measures are computed once, when a rule (or the evidence columns) first asks for them.
    """

    def __init__(
        self,
        ev: Evaluation,
        rules: FlagRules,
        *,
        eval_date: pd.Timestamp,
        previous: pd.DataFrame | None = None,
        builtup: pd.DataFrame | None = None,
    ) -> None:
        self.ev = ev
        self.rules = rules
        self.eval_date = eval_date
        self.previous = previous
        """Last year's ``enterprises.csv`` indexed by USCC, or ``None``."""
        self.builtup = builtup
        """``builtup_fraction`` and ``valid_fraction`` by parcel id (raster evidence), or ``None``."""
        self.notes: list[str] = []
        """Rules skipped or reduced for lack of data (``manifest.json`` ``flags.notes``)."""
        self.parcel_index = ev.parcels.index
        # Work on positions: a RangeIndex aligns for free, string parcel ids are looked up once.
        self.p = pd.DataFrame(ev.parcels.drop(columns=ev.parcels.geometry.name)).reset_index(drop=True)
        self.p["users"] = self.p["users"].fillna("").astype(object)
        self.n = len(self.p)

    # --- enterprises on the parcels ---

    @cached_property
    def main_code(self) -> np.ndarray:
        """Position of each parcel's main user in the enterprises (-1: none)."""
        code = self.ev.main_user_pos
        if code is None or len(code) != self.n:
            code = self.ev.enterprises.index.get_indexer(pd.Index(self.p["main_user"]))
        return code

    def of_main(self, col: str) -> pd.Series:
        """Column ``col`` of each parcel's main user (NaN where none)."""
        values = self.ev.enterprises[col].to_numpy(dtype=object)
        code = self.main_code
        taken = values[np.maximum(code, 0)] if len(values) else np.full(self.n, np.nan, dtype=object)
        return pd.Series(np.where(code >= 0, taken, np.nan), dtype=object)

    @cached_property
    def alloc(self) -> pd.DataFrame:
        """The land allocation rows with land (parcel, enterprise, m²)."""
        return self.ev.allocation.loc[self.ev.allocation["land_m2"] > 0]

    @cached_property
    def alloc_pos(self) -> tuple[np.ndarray, np.ndarray]:
        """Parcel and enterprise positions of :attr:`alloc` (-1: enterprise not in the table)."""
        a, e = self.alloc, self.ev.enterprises
        if "parcel_pos" in a and "ent_pos" in a:
            return a["parcel_pos"].to_numpy(dtype=np.int64), a["ent_pos"].to_numpy(dtype=np.int64)
        return self.parcel_index.get_indexer(pd.Index(a["parcel_id"])), e.index.get_indexer(pd.Index(a["uscc"]))

    def per_parcel(self, values: np.ndarray) -> pd.Series:
        """Sum of ``values`` (one per :attr:`alloc` row) per parcel."""
        return pd.Series(np.bincount(self.alloc_pos[0], weights=values, minlength=self.n))

    def of_user(self, col: str) -> np.ndarray:
        """Column ``col`` of the enterprise of each :attr:`alloc` row (NaN where not in the table)."""
        code = self.alloc_pos[1]
        v = self.ev.enterprises[col].to_numpy(dtype=float)
        return np.where(code >= 0, v[np.maximum(code, 0)] if len(v) else 0.0, np.nan)

    @property
    def users(self) -> pd.Series:
        """The ";"-joined users of each parcel ("" for none)."""
        return self.p["users"]

    @cached_property
    def has_user(self) -> pd.Series:
        return self.users != ""

    @cached_property
    def has_enterprise(self) -> pd.Series:
        """At least one enterprise of the table has land on the parcel."""
        return self.per_parcel((self.alloc_pos[1] >= 0).astype(float)) > 0

    @cached_property
    def parcel_tax(self) -> pd.Series:
        return self.per_parcel(np.nan_to_num(self.of_user("tax")))

    @cached_property
    def parcel_sales(self) -> pd.Series:
        return self.per_parcel(np.nan_to_num(self.of_user("sales")))

    # --- land ---

    @cached_property
    def area(self) -> pd.Series:
        """Evaluated area in m² (NaN where not positive)."""
        return self.p["eval_area_m2"].where(self.p["eval_area_m2"] > 0)

    @cached_property
    def floor_area(self) -> pd.Series:
        return pd.to_numeric(self.p["floor_area_m2"], errors="coerce")

    @cached_property
    def plot_ratio(self) -> pd.Series:
        return self.floor_area / self.area

    @cached_property
    def industry(self) -> pd.Series:
        """The main user's industry code."""
        return self.of_main("industry_code").astype("string")

    @cached_property
    def plot_ratio_min(self) -> pd.Series:
        """The control value of the main user's industry (2008), raised to ``plot_ratio_floor``."""
        control = min_plot_ratio(self.industry)
        floor = self.rules.low_efficiency.plot_ratio_floor
        if floor is not None:
            control = control.where(control.isna() | (control >= floor), floor)
        return control

    @cached_property
    def footprint(self) -> pd.Series:
        return pd.to_numeric(self.p["footprint_area_m2"], errors="coerce")

    @cached_property
    def building_coefficient(self) -> pd.Series:
        return self.footprint / self.area

    @cached_property
    def leased_out_share(self) -> pd.Series:
        return self.p["leased_out_m2"] / self.area

    def builtup_column(self, name: str) -> pd.Series:
        """A column of the raster evidence by parcel position (requires :attr:`builtup`)."""
        assert self.builtup is not None
        return pd.Series(self.builtup[name].reindex(self.parcel_index).to_numpy(dtype=float))

    @cached_property
    def idle(self) -> IdleClock:
        """The idle clock; with ``[flags.idle]`` enabled a bad delay cause is reported (fatal)."""
        return _idle_clock(self)

    @cached_property
    def idle_text(self) -> IdleText:
        """Texts of the idle rules (built when one of them runs)."""
        return _idle_text(self.idle, self.rules.idle, self.eval_date)

    def evidence(self) -> dict[str, pd.Series]:
        """The per-parcel evidence columns of ``parcels.gpkg``, computed whatever the switches."""
        i, on = self.idle, self.rules.idle.enabled
        out = {
            "idle_months": i.months,
            "idle_since": i.since,
            "idle_fee_wan": i.fee_amount.where(i.fee & ~i.exempt & on),
            "idle_exempt": i.exempt & on,
            "idle_legal": i.fee & ~i.exempt & on,
        }
        if self.builtup is not None:
            out["builtup_fraction"] = self.builtup_column("builtup_fraction")
        out["plot_ratio"] = self.plot_ratio
        out["plot_ratio_min"] = self.plot_ratio_min
        out["building_coefficient"] = self.building_coefficient
        out["leased_out_share"] = self.leased_out_share
        return out


def _idle_clock(f: ParcelFacts) -> IdleClock:
    """Not started a full year after the contract date, or started too little and suspended (第二条)."""
    p, r, d = f.p, f.rules.idle, f.eval_date
    dates = pd.DataFrame(
        {c: pd.to_datetime(_col(p, c)) for c in ("contract_start_date", "actual_start_date", "suspended_since")}
        | {c: pd.to_numeric(_col(p, c), errors="coerce") for c in ("developed_ratio", "invested_ratio", "land_price")}
    )
    contract, actual, suspended = dates["contract_start_date"], dates["actual_start_date"], dates["suspended_since"]
    if r.enabled:
        cause = check_delay_causes(p, f.ev.problems, f.ev.files.get("parcels", "parcels"))
    else:
        cause = normalize_delay_cause(_col(p, "delay_cause").astype("string"))[0]
    not_started = contract.notna() & (actual.isna() | (actual > d)) & (contract <= d)
    slow = (dates["developed_ratio"] < r.developed_ratio_min) | (dates["invested_ratio"] < r.invested_ratio_min)
    stalled = actual.notna() & (actual <= d) & slow.fillna(False) & suspended.notna()
    since = contract.where(not_started, suspended.where(stalled))
    fee = full_years_reached(since, d, r.fee_years) & since.notna()
    return IdleClock(
        since=since,
        months=full_months(since, d),
        not_started=not_started,
        fee=fee,
        reclaim=full_years_reached(since, d, r.reclaim_years) & since.notna(),
        exempt=cause.notna() & fee,
        cause=cause,
        fee_amount=(dates["land_price"] * r.fee_rate).round(2),
        dates=dates,
    )


def _idle_text(i: IdleClock, r: IdleRules, d: pd.Timestamp) -> IdleText:
    """The evidence and the parts of the reasons of the idle rules, for the parcels with a clock."""
    _, q = on_hits(i.since.notna())
    col = i.dates
    evidence = (
        "约定动工日期="
        + _date(q(col["contract_start_date"]))
        + "；实际动工日期="
        + _date(q(col["actual_start_date"]))
        + "；已开发比例="
        + _fmt(q(col["developed_ratio"]), 3)
        + "；已投资比例="
        + _fmt(q(col["invested_ratio"]), 3)
        + "；停工日期="
        + _date(q(col["suspended_since"]))
        + "；评价基准日="
        + str(d.date())
        + "；土地出让价款（万元）="
        + _fmt(q(col["land_price"]))
    )
    ns = q(i.not_started)
    stalled = f"已动工但开发面积不足{r.developed_ratio_min:.0%}或投资不足{r.invested_ratio_min:.0%}且中止开发"
    start_word = pd.Series(np.where(ns, "约定动工日期", "中止开发日期"), index=ns.index, dtype="string")
    return IdleText(
        on=q,
        evidence=evidence,
        head=start_word + " " + _date(q(i.since)),
        held=q(i.months).astype("Int64").astype("string"),
        why=pd.Series(np.where(ns, "超过约定动工日期未动工", stalled), index=ns.index, dtype="string"),
    )


# --- the rules ------------------------------------------------------------------------------------------


def _idle_reason(f: ParcelFacts, years: int) -> pd.Series:
    """``<start> 至评价基准日 <d> 已满N个月（why），满Y年``, on the parcels with a clock."""
    t = f.idle_text
    return (
        t.head + " 至评价基准日 " + str(f.eval_date.date()) + " 已满" + t.held + "个月（" + t.why + f"），满{years}年"
    )


def idle_reclaim(f: ParcelFacts) -> Hits:
    """Idle ``reclaim_years`` full years, no government cause."""
    i, years = f.idle, f.rules.idle.reclaim_years
    reason = _idle_reason(f, years) + "，依法可无偿收回"
    return Hits(i.reclaim & ~i.exempt, i.months, 12.0 * years, reason, f.idle_text.evidence)


def idle_fee(f: ParcelFacts) -> Hits:
    """Idle ``fee_years`` full years (not yet ``reclaim_years``), no government cause."""
    i, t, r = f.idle, f.idle_text, f.rules.idle
    fee = "，应征收土地闲置费 " + _fmt(t.on(i.fee_amount)) + " 万元（土地价款的" + f"{r.fee_rate:.0%}）"
    reason = _idle_reason(f, r.fee_years) + fee
    return Hits(i.fee & ~i.reclaim & ~i.exempt, i.months, 12.0 * r.fee_years, reason, t.evidence)


def idle_exempt(f: ParcelFacts) -> Hits:
    """Idle ``fee_years`` full years with a government cause (第八条): not penalised."""
    i, t = f.idle, f.idle_text
    cause = t.on(i.cause)
    named = cause.map(DELAY_CAUSES).astype("string")
    reason = t.head + " 起已满" + t.held + "个月，但延迟系政府原因（" + named + "），不按闲置处罚"
    evidence = t.evidence + "；延迟原因=" + cause.astype("string")
    return Hits(i.exempt, i.months, 12.0 * f.rules.idle.fee_years, reason, evidence)


def no_enterprise(f: ParcelFacts) -> Hits:
    """No enterprise of the evaluation has land on the parcel."""
    m, q = on_hits(~f.has_enterprise)
    holder = q(f.p["holder_uscc"]).astype("string")
    reason = ("宗地权利人 " + holder + " 不在本年度企业数据中，也无其他企业使用").fillna("宗地无权利人，也无企业使用")
    return Hits(m, 0.0, np.nan, reason, "使用企业数=0；权利人=" + holder.fillna("无"))


def zero_output(f: ParcelFacts) -> Hits:
    """The users' tax and sales add up to 0."""
    m, q = on_hits(f.has_enterprise & (f.parcel_tax <= 0) & (f.parcel_sales <= 0))
    reason = "使用企业（" + q(f.users) + "）本年度税收和销售收入均为0"
    return Hits(m, 0.0, 0.0, reason, "税收合计=0；销售收入合计=0")


def low_builtup(f: ParcelFacts) -> Hits | None:
    """Built-up fraction on the raster below ``builtup_below``; skipped (with a note) without the raster."""
    if f.builtup is None:
        f.notes.append("未提供建成区栅格（dataset.toml 的 [layers] builtup），跳过“建成区比例过低”疑似闲置规则")
        return None
    below = f.rules.suspected_idle.builtup_below
    assert below is not None  # switched on
    frac = f.builtup_column("builtup_fraction")
    m, q = on_hits(frac < below)
    reason = "宗地内建成区比例 " + _pct(q(frac)) + "%，低于 " + f"{below:.0%}（建成区栅格，按像元覆盖面积加权）"
    evidence = "建成区比例=" + _fmt(q(frac), 4) + "；有效像元覆盖=" + _fmt(q(f.builtup_column("valid_fraction")), 4)
    return Hits(m, frac.round(4), below, reason, evidence)


def grade_d(f: ParcelFacts) -> Hits:
    """The main user is class D this year (and last year with ``grade_d_years = 2`` and ``--previous``)."""
    main = f.p["main_user"]
    d_now, label = f.p["grade"] == "D", "本年度"
    if f.rules.low_efficiency.grade_d_years == 2:
        if f.previous is None:
            f.notes.append("低效规则“连续2年D类”需要上年结果（--previous），未提供，本年按“本年D类”判定")
        else:
            prev_grade = f.previous["grade"].reindex(pd.Index(main)).to_numpy(dtype=object)
            d_now, label = d_now & pd.Series(prev_grade == "D"), "连续2年"
    m, q = on_hits(d_now)
    score = q(f.of_main("score")).astype(float)
    name = q(f.of_main("name")).astype("string")
    reason = "主要使用企业 " + q(main).astype("string") + "（" + name + "）" + label + "综合评价为D类（落后整治类）"
    return Hits(m, score, np.nan, reason, "综合得分=" + _fmt(score) + "；分类=D", basis_note="；" + f.ev.scheme.title)


def tax_per_mu_fixed(f: ParcelFacts) -> Hits:
    """Has users and the parcel's 亩均税收 below ``tax_per_mu_below``."""
    line = f.rules.low_efficiency.tax_per_mu_below
    assert line is not None  # switched on
    tpm = f.p["tax_per_mu"]
    m, q = on_hits(f.has_user & (tpm < line))
    reason = "宗地亩均税收 " + _fmt(q(tpm)) + " 万元/亩，低于 " + f"{line:g} 万元/亩"
    return Hits(m, tpm.round(4), line, reason, "亩均税收=" + _fmt(q(tpm), 4))


def county_tax_per_mu(f: ParcelFacts) -> pd.Series:
    """Per parcel, Σ tax ÷ Σ land_mu over the rated (A–D) enterprises of its county."""
    e = f.ev.enterprises
    sums = e.loc[e["grade"].isin(["A", "B", "C", "D"])].groupby("county")[["tax", "land_mu"]].sum()
    county_mean = sums["tax"] / sums["land_mu"].where(sums["land_mu"] > 0)
    codes, uniques = pd.factorize(f.p["county"])
    return pd.Series(np.append(county_mean.reindex(uniques).to_numpy(dtype=float), np.nan)[codes])


def tax_per_mu_mean(f: ParcelFacts) -> Hits:
    """Has users and the parcel's 亩均税收 below ``tax_per_mu_below_mean_share`` × its county's mean."""
    share = f.rules.low_efficiency.tax_per_mu_below_mean_share
    assert share is not None  # switched on
    tpm, mean = f.p["tax_per_mu"], county_tax_per_mu(f)
    limit = mean * share
    m, q = on_hits(f.has_user & (tpm < limit))
    reason = (
        "宗地亩均税收 "
        + _fmt(q(tpm))
        + " 万元/亩，低于所在县区参评企业平均亩均税收 "
        + _fmt(q(mean))
        + " 万元/亩的 "
        + f"{share:.0%}（"
        + _fmt(q(limit))
        + " 万元/亩）"
    )
    evidence = "亩均税收=" + _fmt(q(tpm), 4) + "；县区平均=" + _fmt(q(mean), 4)
    return Hits(m, tpm.round(4), limit.round(4), reason, evidence)


def plot_ratio(f: ParcelFacts) -> Hits:
    """Has users and the plot ratio below the control value of the main user's industry."""
    ratio, control, industry = f.plot_ratio, f.plot_ratio_min, f.industry
    m, q = on_hits(f.has_user & (ratio < control))
    reason = (
        "容积率 "
        + _fmt(q(ratio))
        + "，低于"
        + industry_name(q(industry)).astype("string")
        + "（行业代码 "
        + q(industry).fillna("")
        + "）的控制值 "
        + _fmt(q(control), 1)
    )
    evidence = "总建筑面积=" + _fmt(q(f.floor_area)) + "平方米；宗地面积=" + _fmt(q(f.area)) + "平方米"
    return Hits(m, ratio.round(4), control, reason, evidence)


def building_coefficient(f: ParcelFacts) -> Hits:
    """Has users and footprint ÷ area below ``building_coefficient_below``."""
    line = f.rules.low_efficiency.building_coefficient_below
    assert line is not None  # switched on
    coverage = f.building_coefficient
    m, q = on_hits(f.has_user & (coverage < line))
    reason = "建筑系数 " + _pct(q(coverage)) + "%，低于 " + f"{line:.0%}"
    evidence = "建筑基底面积=" + _fmt(q(f.footprint)) + "平方米；宗地面积=" + _fmt(q(f.area)) + "平方米"
    return Hits(m, coverage.round(4), line, reason, evidence)


def zero_tax(f: ParcelFacts) -> Hits | None:
    """The users paid no tax this year (and each of them none last year with ``zero_tax_years = 2``)."""
    zero_now, label = f.has_enterprise & (f.parcel_tax <= 0), "本年度"
    if f.rules.low_efficiency.zero_tax_years == 2:
        if f.previous is None:
            f.notes.append("低效规则“连续2年零税收”需要上年结果（--previous），未提供，本年不判定")
            return None
        t_prev = f.previous["tax"].reindex(pd.Index(f.alloc["uscc"])).to_numpy(dtype=float)
        not_zero = ~(t_prev <= 0)  # NaN (no figure last year) counts as not zero
        zero_now, label = zero_now & (f.per_parcel(not_zero.astype(float)) == 0), "连续2年"
    m, q = on_hits(zero_now)
    note = "（连续两年无税收）" if label == "连续2年" else "（无税收）"
    return Hits(m, 0.0, 0.0, "使用企业（" + q(f.users) + "）" + label + "税收为0", "税收合计=0", basis_note=note)


def leased_out(f: ParcelFacts) -> Hits:
    """The share of the parcel leased out above ``leased_out_share_above``."""
    line = f.rules.low_efficiency.leased_out_share_above
    assert line is not None  # switched on
    share = f.leased_out_share
    m, q = on_hits(share > line)
    reason = "出租面积占宗地 " + _pct(q(share)) + "%，超过 " + f"{line:.0%}"
    return Hits(m, share.round(4), line, reason, "出租土地面积=" + _fmt(q(f.p["leased_out_m2"])) + "平方米")


# --- the registry ---------------------------------------------------------------------------------------

_IDLE, _SUSPECTED, _LOW = "idle_legal", "idle_suspected", "low_efficiency"

RULES: dict[str, FlagRule] = {
    r.rule_id: r
    for r in (
        FlagRule(
            rule_id="idle_legal.reclaim",
            flag=_IDLE,
            label="闲置土地·满两年可收回",
            basis=BASIS_IDLE,
            severity="高",
            switch="idle.enabled",
            fires_when="idle `reclaim_years` full years, no government cause",
            measures="months idle / `12 × reclaim_years`",
            hits=idle_reclaim,
        ),
        FlagRule(
            rule_id="idle_legal.fee",
            flag=_IDLE,
            label="闲置土地·满一年征收闲置费",
            basis=BASIS_IDLE,
            severity="中",
            switch="idle.enabled",
            fires_when="idle `fee_years` full years (not yet `reclaim_years`), no government cause",
            measures="months idle / `12 × fee_years`",
            hits=idle_fee,
        ),
        FlagRule(
            rule_id="idle_exempt",
            flag="idle_exempt",
            label="闲置土地·政府原因（不予处罚）",
            basis=BASIS_IDLE_EXEMPT,
            severity="低",
            switch="idle.enabled",
            fires_when="idle `fee_years` full years with a government cause",
            measures="months idle / `12 × fee_years`",
            hits=idle_exempt,
        ),
        FlagRule(
            rule_id="idle_suspected.no_enterprise",
            flag=_SUSPECTED,
            label="疑似闲置·无使用企业",
            basis=BASIS_SUSPECTED,
            severity="低",
            switch="suspected_idle.no_enterprise",
            fires_when="no enterprise of the evaluation uses the parcel",
            measures="0 / —",
            hits=no_enterprise,
        ),
        FlagRule(
            rule_id="idle_suspected.zero_output",
            flag=_SUSPECTED,
            label="疑似闲置·无税收无销售",
            basis=BASIS_SUSPECTED,
            severity="低",
            switch="suspected_idle.zero_output",
            fires_when="the users' tax and sales add up to 0",
            measures="0 / 0",
            hits=zero_output,
        ),
        FlagRule(
            rule_id="idle_suspected.low_builtup",
            flag=_SUSPECTED,
            label="疑似闲置·建成区比例过低",
            basis=BASIS_SUSPECTED,
            severity="低",
            switch="suspected_idle.builtup_below",
            fires_when="`builtup_fraction < builtup_below`",
            measures="fraction / `builtup_below`",
            hits=low_builtup,
        ),
        FlagRule(
            rule_id="low_efficiency.grade_d",
            flag=_LOW,
            label="低效用地·D类企业",
            basis=BASIS_LOW_EFF,
            severity="中",
            switch="low_efficiency.grade_d",
            fires_when="main user graded D (this year, or two years)",
            measures="main user's score / —",
            hits=grade_d,
        ),
        FlagRule(
            rule_id="low_efficiency.tax_per_mu_fixed",
            flag=_LOW,
            label="低效用地·亩均税收（低于限值）",
            basis=BASIS_LOW_EFF,
            severity="中",
            switch="low_efficiency.tax_per_mu_below",
            fires_when="`tax_per_mu < tax_per_mu_below`",
            measures="亩均税收 / the line",
            hits=tax_per_mu_fixed,
        ),
        FlagRule(
            rule_id="low_efficiency.tax_per_mu_mean",
            flag=_LOW,
            label="低效用地·亩均税收（低于均值比例）",
            basis=BASIS_LOW_EFF,
            severity="中",
            switch="low_efficiency.tax_per_mu_below_mean_share",
            fires_when="`tax_per_mu < share × county mean`",
            measures="亩均税收 / `share × mean`",
            hits=tax_per_mu_mean,
        ),
        FlagRule(
            rule_id="low_efficiency.plot_ratio",
            flag=_LOW,
            label="低效用地·容积率",
            basis=BASIS_CONTROL + "容积率控制值",
            severity="中",
            switch="low_efficiency.plot_ratio",
            fires_when="plot ratio below the industry's control value",
            measures="plot ratio / control value",
            hits=plot_ratio,
        ),
        FlagRule(
            rule_id="low_efficiency.building_coefficient",
            flag=_LOW,
            label="低效用地·建筑系数",
            basis=BASIS_CONTROL + "建筑系数≥30%",
            severity="中",
            switch="low_efficiency.building_coefficient_below",
            fires_when="building coefficient below `building_coefficient_below`",
            measures="coefficient / the line",
            hits=building_coefficient,
        ),
        FlagRule(
            rule_id="low_efficiency.zero_tax",
            flag=_LOW,
            label="低效用地·零税收",
            basis=BASIS_LOW_EFF,
            severity="中",
            switch="low_efficiency.zero_tax_years",
            fires_when="the users paid no tax (this year, or two years)",
            measures="0 / 0",
            hits=zero_tax,
        ),
        FlagRule(
            rule_id="low_efficiency.leased_out",
            flag=_LOW,
            label="低效用地·出租比例过高",
            basis=BASIS_LOW_EFF + "（建成用地主要用于出租）",
            severity="中",
            switch="low_efficiency.leased_out_share_above",
            fires_when="leased-out share above `leased_out_share_above`",
            measures="share / the line",
            hits=leased_out,
        ),
    )
}
"""The rules run on the parcels, in the order their rows are made (a candidate's reasons follow it)."""

RENEWAL_RULE = RuleInfo(
    rule_id="renewal_candidate",
    flag="renewal_candidate",
    label="退二优二候选",
    basis=BASIS_RENEWAL,
    severity="中",
    switch=None,
    fires_when="any `idle_legal`, `idle_suspected` or `low_efficiency` row, and no `idle_exempt`",
    measures="number of such rows / 1",
)
"""The 退二优二 candidate: made after the rules, from their rows (:func:`geo_eval.landuse.flags.flag_parcels`)."""

RULE_INFO: dict[str, RuleInfo] = {**RULES, RENEWAL_RULE.rule_id: RENEWAL_RULE}
"""Every ``rule_id`` ``flags.csv`` can contain."""
