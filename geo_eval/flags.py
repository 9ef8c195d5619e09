"""Land flags for the natural resources bureau: idle land, low-efficiency land, 退二优二 candidates.

Every flag answers which parcel, why (a Chinese sentence naming the values and thresholds) and on
what basis (the legal or policy text). One row per parcel and flag; rules are switched and tuned in
the scheme's ``[flags]`` section and reported individually by ``rule_id``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geo_eval.controls import industry_name, min_plot_ratio
from geo_eval.evaluate import Evaluation
from geo_eval.grouping import join_groups
from geo_eval.problems import FATAL, Problems
from geo_eval.scheme import FlagRules

FLAG_COLUMNS = [
    "flag_id",
    "parcel_id",
    "flag",
    "flag_label",
    "rule_id",
    "basis",
    "reason",
    "value",
    "threshold",
    "evidence",
    "severity",
    "enterprises",
    "enterprise_names",
    "county",
    "park",
    "area_mu",
]

FLAG_LABELS = {
    "idle_legal": "闲置土地",
    "idle_exempt": "闲置（政府原因，不予处罚）",
    "idle_suspected": "疑似闲置",
    "low_efficiency": "低效用地",
    "renewal_candidate": "退二优二候选",
}

RULE_LABELS: dict[str, str] = {
    "idle_legal.reclaim": "闲置土地·满两年可收回",
    "idle_legal.fee": "闲置土地·满一年征收闲置费",
    "idle_exempt": "闲置土地·政府原因（不予处罚）",
    "idle_suspected.no_enterprise": "疑似闲置·无使用企业",
    "idle_suspected.zero_output": "疑似闲置·无税收无销售",
    "idle_suspected.low_builtup": "疑似闲置·建成区比例过低",
    "low_efficiency.grade_d": "低效用地·D类企业",
    "low_efficiency.tax_per_mu_fixed": "低效用地·亩均税收（低于限值）",
    "low_efficiency.tax_per_mu_mean": "低效用地·亩均税收（低于均值比例）",
    "low_efficiency.plot_ratio": "低效用地·容积率",
    "low_efficiency.building_coefficient": "低效用地·建筑系数",
    "low_efficiency.zero_tax": "低效用地·零税收",
    "low_efficiency.leased_out": "低效用地·出租比例过高",
    "renewal_candidate": "退二优二候选",
}
"""The Chinese name of every ``rule_id`` :func:`flag_parcels` writes: what people see instead of the id."""


def rule_label(rule_id: str) -> str:
    """The Chinese name of a flag rule; an unknown id is returned as it is.

    >>> rule_label("low_efficiency.building_coefficient"), rule_label("city.own_rule")
    ('低效用地·建筑系数', 'city.own_rule')
    """
    return RULE_LABELS.get(rule_id, rule_id)


def rule_labels(rule_ids: pd.Series) -> pd.Series:
    """:func:`rule_label` of every value (one look-up per distinct id).

    >>> rule_labels(pd.Series(["renewal_candidate", "x"])).tolist()
    ['退二优二候选', 'x']
    """
    codes, uniques = pd.factorize(rule_ids.astype(object))
    labels = np.array([rule_label(str(u)) for u in uniques] + [""], dtype=object)
    return pd.Series(labels[codes], index=rule_ids.index, dtype=object)


def evidence_labels(evidence: pd.Series) -> pd.Series:
    """Evidence text for people: the rule ids a 退二优二 candidate cites (``规则=a、b``) by their Chinese names.

    >>> evidence_labels(pd.Series(["规则=low_efficiency.plot_ratio、idle_legal.fee", "容积率=0.5"])).tolist()
    ['规则=低效用地·容积率、闲置土地·满一年征收闲置费', '容积率=0.5']
    """

    def named(t: str) -> str:
        if not t.startswith("规则="):
            return t
        return "规则=" + "、".join(rule_label(r.strip()) for r in t.removeprefix("规则=").split("、") if r.strip())

    text = evidence.astype(object).where(evidence.notna(), "").astype(str)
    return pd.Series([named(t) for t in text], index=evidence.index, dtype=object)


def short_reasons(flags: pd.DataFrame) -> pd.Series:
    """Each flag row's short Chinese reason: its ``reason``, except for a 退二优二 candidate, whose reason
    repeats every rule's: ``符合 N 项规则`` with N counted from its evidence ``规则=a、b``.

    >>> f = pd.DataFrame({"flag": ["low_efficiency", "renewal_candidate"], "reason": ["建筑系数 17.2%，低于 30%", "…"],
    ...                   "evidence": ["", "规则=low_efficiency.grade_d、low_efficiency.plot_ratio"]})
    >>> short_reasons(f).tolist()
    ['建筑系数 17.2%，低于 30%', '符合 2 项规则']
    """
    reason = flags["reason"].astype(object).where(flags["reason"].notna(), "")
    candidate = (flags["flag"] == "renewal_candidate").to_numpy(dtype=bool)
    if not candidate.any():
        return pd.Series(reason.to_numpy(dtype=object), index=flags.index, dtype=object)
    evidence = flags.loc[candidate, "evidence"].fillna("").astype(str)
    rules = evidence.str.extract(r"规则=([^；]*)", expand=False).fillna("")
    count = rules.map(lambda text: sum(1 for r in text.split("、") if r.strip()))
    out = reason.to_numpy(dtype=object).copy()
    out[candidate] = ("符合 " + count.astype(str) + " 项规则").to_numpy(dtype=object)
    return pd.Series(out, index=flags.index, dtype=object)


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


@dataclass
class FlagResult:
    """Flags of one evaluation, and per-parcel evidence columns."""

    flags: pd.DataFrame  # FLAG_COLUMNS
    evidence: pd.DataFrame  # per parcel: months_idle, plot_ratio, building_coefficient, builtup_fraction …
    notes: list[str] = field(default_factory=list)


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


def _fmt(x: pd.Series, digits: int = 2) -> pd.Series:
    return x.round(digits).astype("string").fillna("无")


def _date(x: pd.Series) -> pd.Series:
    return pd.to_datetime(x).dt.strftime("%Y-%m-%d").astype("string").fillna("无")


def _subset(mask: pd.Series):
    """``(m, q)``: the mask as booleans and ``q(x)``, ``x`` restricted to its rows.

    Reason and evidence strings are built for flagged rows only.
    """
    m = mask.fillna(False).astype(bool)
    pos = np.flatnonzero(m.to_numpy())

    def q(x: pd.Series) -> pd.Series:
        return x.iloc[pos]

    return m, q


class _Builder:
    """Collects flag rows; parcels are addressed by position (the frame has a RangeIndex)."""

    def __init__(self, parcels: pd.DataFrame, parcel_ids: np.ndarray) -> None:
        self.n = len(parcels)
        self.ids = parcel_ids
        self.users = parcels["users"].to_numpy(dtype=object)
        self.county = parcels["county"].to_numpy(dtype=object)
        self.park = parcels["park"].to_numpy(dtype=object)
        self.area_mu = parcels["area_mu"].round(4).to_numpy(dtype=float)
        self.parts: list[dict[str, np.ndarray]] = []

    def add(
        self,
        mask: pd.Series,
        *,
        flag: str,
        rule_id: str,
        basis: str,
        reason: pd.Series | str,
        value: pd.Series | float,
        threshold: pd.Series | float,
        evidence: pd.Series | str,
        severity: str,
    ) -> None:
        pos = np.flatnonzero(mask.fillna(False).astype(bool).to_numpy())
        if len(pos) == 0:
            return

        def pick(v: pd.Series | str | float) -> object:
            if not isinstance(v, pd.Series):
                return v
            # Series are labelled by parcel position (full length, or a subset from ``_subset``).
            if len(v) == len(pos) and (v.index.to_numpy() == pos).all():
                return v.to_numpy()
            return v.reindex(pos).to_numpy()

        k = len(pos)

        def col(v: object) -> np.ndarray:
            picked = pick(v)  # type: ignore[arg-type]
            if isinstance(picked, np.ndarray):
                return picked
            return np.full(k, picked, dtype=object if isinstance(picked, str) else float)

        ids = self.ids[pos]
        part = {
            "_pos": pos,
            "flag_id": ids.astype(str).astype(object) + (":" + rule_id),
            "parcel_id": ids,
            "flag": col(flag),
            "flag_label": col(FLAG_LABELS[flag]),
            "rule_id": col(rule_id),
            "basis": col(basis),
            "reason": col(reason),
            "value": col(value),
            "threshold": col(threshold),
            "evidence": col(evidence),
            "severity": col(severity),
            "enterprises": self.users[pos],
            "enterprise_names": col(""),
            "county": self.county[pos],
            "park": self.park[pos],
            "area_mu": self.area_mu[pos],
        }
        self.parts.append(part)

    def frame(self) -> pd.DataFrame:
        """All rows added, one column at a time (text kept as NumPy object arrays)."""
        names = ["_pos", *FLAG_COLUMNS]
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in names})
        out: dict[str, pd.Series] = {}
        for c in names:
            arr = np.concatenate([np.asarray(part[c]) for part in self.parts])
            if c in ("value", "threshold", "area_mu"):
                out[c] = pd.Series(pd.to_numeric(arr, errors="coerce"), dtype=float)
            elif c == "_pos":
                out[c] = pd.Series(arr.astype(np.int64))
            else:
                out[c] = pd.Series(arr.astype(object), dtype=object)
        return pd.DataFrame(out)


def _user_names(users: np.ndarray, main_name: np.ndarray, enterprises: pd.DataFrame) -> np.ndarray:
    """Names of the ";"-joined users of the given parcels, joined with "；"; a single user is the main user."""
    out = np.where(pd.isna(main_name), "", main_name).astype(object)
    multi = np.flatnonzero(pd.Series(users, dtype=object).str.contains(";", regex=False).fillna(False).to_numpy())
    if len(multi):
        codes = pd.Series(users[multi], index=multi).str.split(";").explode()
        names = pd.Series(codes.map(enterprises["name"]).to_numpy(dtype=object), index=codes.index).fillna("")
        joined = join_groups(pd.Series(codes.index.to_numpy()), pd.Series(names.to_numpy()), "；")
        out[joined.index.to_numpy(dtype=np.int64)] = joined.to_numpy()
    return out


def _col(p: pd.DataFrame, name: str) -> pd.Series:
    return p[name] if name in p else pd.Series(np.nan, index=p.index)


def _idle(
    b: _Builder, p: pd.DataFrame, rules: FlagRules, eval_date: pd.Timestamp, problems: Problems, file: str
) -> pd.DataFrame:
    r = rules.idle
    contract = pd.to_datetime(_col(p, "contract_start_date"))
    actual = pd.to_datetime(_col(p, "actual_start_date"))
    suspended = pd.to_datetime(_col(p, "suspended_since"))
    developed = pd.to_numeric(_col(p, "developed_ratio"), errors="coerce")
    invested = pd.to_numeric(_col(p, "invested_ratio"), errors="coerce")
    price = pd.to_numeric(_col(p, "land_price"), errors="coerce")
    if r.enabled:
        cause = check_delay_causes(p, problems, file)
    else:
        cause = normalize_delay_cause(_col(p, "delay_cause").astype("string"))[0]
    not_started = contract.notna() & (actual.isna() | (actual > eval_date)) & (contract <= eval_date)
    slow = (developed < r.developed_ratio_min) | (invested < r.invested_ratio_min)
    stalled = actual.notna() & (actual <= eval_date) & slow.fillna(False) & suspended.notna()
    since = contract.where(not_started, suspended.where(stalled))
    months = full_months(since, eval_date)
    fee = full_years_reached(since, eval_date, r.fee_years) & since.notna()
    reclaim = full_years_reached(since, eval_date, r.reclaim_years) & since.notna()
    basis_text = (
        "超过约定动工日期未动工",
        f"已动工但开发面积不足{r.developed_ratio_min:.0%}或投资不足{r.invested_ratio_min:.0%}且中止开发",
    )
    fee_amount = (price * r.fee_rate).round(2)
    exempt = cause.notna() & fee
    if r.enabled:
        _, q = _subset(since.notna())
        evidence = (
            "约定动工日期="
            + _date(q(contract))
            + "；实际动工日期="
            + _date(q(actual))
            + "；已开发比例="
            + _fmt(q(developed), 3)
            + "；已投资比例="
            + _fmt(q(invested), 3)
            + "；停工日期="
            + _date(q(suspended))
            + "；评价基准日="
            + str(eval_date.date())
            + "；土地出让价款（万元）="
            + _fmt(q(price))
        )
        ns = q(not_started)
        start_word = pd.Series(np.where(ns, "约定动工日期", "中止开发日期"), index=ns.index, dtype="string")
        basis_s = pd.Series(np.where(ns, basis_text[0], basis_text[1]), index=ns.index, dtype="string")
        head = start_word + " " + _date(q(since))
        held = q(months).astype("Int64").astype("string")
        b.add(
            reclaim & ~exempt,
            flag="idle_legal",
            rule_id="idle_legal.reclaim",
            basis=BASIS_IDLE,
            reason=head
            + " 至评价基准日 "
            + str(eval_date.date())
            + " 已满"
            + held
            + "个月（"
            + basis_s
            + f"），满{r.reclaim_years}年，依法可无偿收回",
            value=months,
            threshold=12.0 * r.reclaim_years,
            evidence=evidence,
            severity="高",
        )
        b.add(
            fee & ~reclaim & ~exempt,
            flag="idle_legal",
            rule_id="idle_legal.fee",
            basis=BASIS_IDLE,
            reason=head
            + " 至评价基准日 "
            + str(eval_date.date())
            + " 已满"
            + held
            + "个月（"
            + basis_s
            + f"），满{r.fee_years}年，应征收土地闲置费 "
            + _fmt(q(fee_amount))
            + " 万元（土地价款的"
            + f"{r.fee_rate:.0%}）",
            value=months,
            threshold=12.0 * r.fee_years,
            evidence=evidence,
            severity="中",
        )
        b.add(
            exempt,
            flag="idle_exempt",
            rule_id="idle_exempt",
            basis=BASIS_IDLE_EXEMPT,
            reason=head
            + " 起已满"
            + held
            + "个月，但延迟系政府原因（"
            + q(cause).map(DELAY_CAUSES).astype("string")
            + "），不按闲置处罚",
            value=months,
            threshold=12.0 * r.fee_years,
            evidence=evidence + "；延迟原因=" + q(cause).astype("string"),
            severity="低",
        )
    return pd.DataFrame(
        {
            "idle_months": months,
            "idle_since": since,
            "idle_fee_wan": fee_amount.where(fee & ~exempt & r.enabled),
            "idle_exempt": exempt & r.enabled,
            "idle_legal": fee & ~exempt & r.enabled,
        }
    )


def flag_parcels(
    ev: Evaluation,
    rules: FlagRules,
    *,
    evaluation_date: dt.date | None = None,
    previous: pd.DataFrame | None = None,
    builtup: pd.DataFrame | None = None,
) -> FlagResult:
    """All flags of an evaluation's parcels.

    ``evaluation_date`` anchors the idle-land clock (default: the end of the evaluation year);
    ``previous`` is last year's ``enterprises.csv`` (for D and zero tax in consecutive years);
    ``builtup`` has ``builtup_fraction`` per parcel (raster evidence; see :mod:`geo_eval.evidence`).
    """
    notes: list[str] = []
    eval_date = pd.Timestamp(evaluation_date or dt.date(ev.year, 12, 31))
    e = ev.enterprises
    # Work on positions: a RangeIndex aligns for free, string parcel ids are looked up once.
    parcel_index = ev.parcels.index
    p = pd.DataFrame(ev.parcels.drop(columns=ev.parcels.geometry.name)).reset_index(drop=True)
    p["users"] = p["users"].fillna("").astype(object)
    b = _Builder(p, parcel_index.to_numpy(dtype=object))
    file = ev.files.get("parcels", "parcels")
    out = _idle(b, p, rules, eval_date, ev.problems, file)
    main_code = ev.main_user_pos
    if main_code is None or len(main_code) != len(p):
        main_code = e.index.get_indexer(pd.Index(p["main_user"]))

    def of_main(col: str) -> pd.Series:
        """Column ``col`` of each parcel's main user (NaN where none)."""
        values = e[col].to_numpy(dtype=object)
        taken = values[np.maximum(main_code, 0)] if len(values) else np.full(len(p), np.nan, dtype=object)
        return pd.Series(np.where(main_code >= 0, taken, np.nan), dtype=object)

    # --- suspected idle: evidence for a site visit ---------------------------------------------
    si = rules.suspected_idle
    users = p["users"].fillna("")
    has_user = users != ""
    alloc = ev.allocation.loc[ev.allocation["land_m2"] > 0]
    if "parcel_pos" in alloc and "ent_pos" in alloc:
        apos = alloc["parcel_pos"].to_numpy(dtype=np.int64)
        acode = alloc["ent_pos"].to_numpy(dtype=np.int64)
    else:
        apos = parcel_index.get_indexer(pd.Index(alloc["parcel_id"]))
        acode = e.index.get_indexer(pd.Index(alloc["uscc"]))
    n = len(p)

    def per_parcel(values: np.ndarray) -> pd.Series:
        return pd.Series(np.bincount(apos, weights=values, minlength=n))

    def of_user(col: str) -> np.ndarray:
        v = e[col].to_numpy(dtype=float)
        return np.where(acode >= 0, v[np.maximum(acode, 0)] if len(v) else 0.0, np.nan)

    has_enterprise = per_parcel((acode >= 0).astype(float)) > 0
    parcel_tax = per_parcel(np.nan_to_num(of_user("tax")))
    parcel_sales = per_parcel(np.nan_to_num(of_user("sales")))
    zero_output = has_enterprise & (parcel_tax <= 0) & (parcel_sales <= 0)
    if si.enabled and si.no_enterprise:
        m, q = _subset(~has_enterprise)
        holder = q(p["holder_uscc"]).astype("string")
        reason = ("宗地权利人 " + holder + " 不在本年度企业数据中，也无其他企业使用").fillna(
            "宗地无权利人，也无企业使用"
        )
        b.add(
            m,
            flag="idle_suspected",
            rule_id="idle_suspected.no_enterprise",
            basis=BASIS_SUSPECTED,
            reason=reason,
            value=0.0,
            threshold=np.nan,
            evidence="使用企业数=0；权利人=" + holder.fillna("无"),
            severity="低",
        )
    if si.enabled and si.zero_output:
        m, q = _subset(zero_output)
        b.add(
            m,
            flag="idle_suspected",
            rule_id="idle_suspected.zero_output",
            basis=BASIS_SUSPECTED,
            reason="使用企业（" + q(users) + "）本年度税收和销售收入均为0",
            value=0.0,
            threshold=0.0,
            evidence="税收合计=0；销售收入合计=0",
            severity="低",
        )
    if builtup is not None:
        frac = pd.Series(builtup["builtup_fraction"].reindex(parcel_index).to_numpy(dtype=float))
        out["builtup_fraction"] = frac
        if si.enabled and si.builtup_below is not None:
            m, q = _subset(frac < si.builtup_below)
            b.add(
                m,
                flag="idle_suspected",
                rule_id="idle_suspected.low_builtup",
                basis=BASIS_SUSPECTED,
                reason="宗地内建成区比例 "
                + (q(frac) * 100).round(1).astype("string")
                + "%，低于 "
                + f"{si.builtup_below:.0%}（建成区栅格，按像元覆盖面积加权）",
                value=frac.round(4),
                threshold=si.builtup_below,
                evidence="建成区比例="
                + _fmt(q(frac), 4)
                + "；有效像元覆盖="
                + _fmt(q(pd.Series(builtup["valid_fraction"].reindex(parcel_index).to_numpy(dtype=float))), 4),
                severity="低",
            )
    elif si.enabled and si.builtup_below is not None:
        notes.append("未提供建成区栅格（dataset.toml 的 [layers] builtup），跳过“建成区比例过低”疑似闲置规则")

    # --- low efficiency ---------------------------------------------------------------------------
    le = rules.low_efficiency
    area = p["eval_area_m2"].where(p["eval_area_m2"] > 0)
    main = p["main_user"]
    if le.enabled and le.grade_d:
        d_now = p["grade"] == "D"
        label = "本年度"
        if le.grade_d_years == 2:
            if previous is None:
                notes.append("低效规则“连续2年D类”需要上年结果（--previous），未提供，本年按“本年D类”判定")
            else:
                prev_grade = previous["grade"].reindex(pd.Index(main)).to_numpy(dtype=object)
                d_now &= pd.Series(prev_grade == "D")
                label = "连续2年"
        m, q = _subset(d_now)
        score = q(of_main("score")).astype(float)
        b.add(
            m,
            flag="low_efficiency",
            rule_id="low_efficiency.grade_d",
            basis=BASIS_LOW_EFF + "；" + ev.scheme.title,
            reason="主要使用企业 "
            + q(main).astype("string")
            + "（"
            + q(of_main("name")).astype("string")
            + "）"
            + label
            + "综合评价为D类（落后整治类）",
            value=score,
            threshold=np.nan,
            evidence="综合得分=" + _fmt(score) + "；分类=D",
            severity="中",
        )
    tpm = p["tax_per_mu"]
    if le.enabled and le.tax_per_mu_below is not None:
        m, q = _subset(has_user & (tpm < le.tax_per_mu_below))
        b.add(
            m,
            flag="low_efficiency",
            rule_id="low_efficiency.tax_per_mu_fixed",
            basis=BASIS_LOW_EFF,
            reason="宗地亩均税收 " + _fmt(q(tpm)) + " 万元/亩，低于 " + f"{le.tax_per_mu_below:g} 万元/亩",
            value=tpm.round(4),
            threshold=le.tax_per_mu_below,
            evidence="亩均税收=" + _fmt(q(tpm), 4),
            severity="中",
        )
    if le.enabled and le.tax_per_mu_below_mean_share is not None:
        rated = e.loc[e["grade"].isin(["A", "B", "C", "D"])]
        sums = rated.groupby("county")[["tax", "land_mu"]].sum()
        county_mean = sums["tax"] / sums["land_mu"].where(sums["land_mu"] > 0)
        ccodes, cuniques = pd.factorize(p["county"])
        mean = pd.Series(np.append(county_mean.reindex(cuniques).to_numpy(dtype=float), np.nan)[ccodes])
        limit = mean * le.tax_per_mu_below_mean_share
        m, q = _subset(has_user & (tpm < limit))
        b.add(
            m,
            flag="low_efficiency",
            rule_id="low_efficiency.tax_per_mu_mean",
            basis=BASIS_LOW_EFF,
            reason="宗地亩均税收 "
            + _fmt(q(tpm))
            + " 万元/亩，低于所在县区参评企业平均亩均税收 "
            + _fmt(q(mean))
            + " 万元/亩的 "
            + f"{le.tax_per_mu_below_mean_share:.0%}（"
            + _fmt(q(limit))
            + " 万元/亩）",
            value=tpm.round(4),
            threshold=limit.round(4),
            evidence="亩均税收=" + _fmt(q(tpm), 4) + "；县区平均=" + _fmt(q(mean), 4),
            severity="中",
        )
    floor_area = pd.to_numeric(p["floor_area_m2"], errors="coerce")
    plot_ratio = floor_area / area
    out["plot_ratio"] = plot_ratio
    industry = of_main("industry_code").astype("string")
    control = min_plot_ratio(industry)
    if le.plot_ratio_floor is not None:
        control = control.where(control.isna() | (control >= le.plot_ratio_floor), le.plot_ratio_floor)
    out["plot_ratio_min"] = control
    if le.enabled and le.plot_ratio:
        m, q = _subset(has_user & (plot_ratio < control))
        b.add(
            m,
            flag="low_efficiency",
            rule_id="low_efficiency.plot_ratio",
            basis=BASIS_CONTROL + "容积率控制值",
            reason="容积率 "
            + _fmt(q(plot_ratio))
            + "，低于"
            + industry_name(q(industry)).astype("string")
            + "（行业代码 "
            + q(industry).fillna("")
            + "）的控制值 "
            + _fmt(q(control), 1),
            value=plot_ratio.round(4),
            threshold=control,
            evidence="总建筑面积=" + _fmt(q(floor_area)) + "平方米；宗地面积=" + _fmt(q(area)) + "平方米",
            severity="中",
        )
    footprint = pd.to_numeric(p["footprint_area_m2"], errors="coerce")
    coverage = footprint / area
    out["building_coefficient"] = coverage
    if le.enabled and le.building_coefficient_below is not None:
        lim = le.building_coefficient_below
        m, q = _subset(has_user & (coverage < lim))
        b.add(
            m,
            flag="low_efficiency",
            rule_id="low_efficiency.building_coefficient",
            basis=BASIS_CONTROL + "建筑系数≥30%",
            reason="建筑系数 " + (q(coverage) * 100).round(1).astype("string") + "%，低于 " + f"{lim:.0%}",
            value=coverage.round(4),
            threshold=lim,
            evidence="建筑基底面积=" + _fmt(q(footprint)) + "平方米；宗地面积=" + _fmt(q(area)) + "平方米",
            severity="中",
        )
    if le.enabled and le.zero_tax_years is not None:
        zero_now = has_enterprise & (parcel_tax <= 0)
        label = "本年度"
        if le.zero_tax_years == 2:
            if previous is None:
                zero_now &= False
                notes.append("低效规则“连续2年零税收”需要上年结果（--previous），未提供，本年不判定")
            else:
                t_prev = previous["tax"].reindex(pd.Index(alloc["uscc"])).to_numpy(dtype=float)
                not_zero = ~(t_prev <= 0)  # NaN (no figure last year) counts as not zero
                zero_now &= per_parcel(not_zero.astype(float)) == 0
                label = "连续2年"
        m, q = _subset(zero_now)
        b.add(
            m,
            flag="low_efficiency",
            rule_id="low_efficiency.zero_tax",
            basis=BASIS_LOW_EFF + ("（连续两年无税收）" if label == "连续2年" else "（无税收）"),
            reason="使用企业（" + q(users) + "）" + label + "税收为0",
            value=0.0,
            threshold=0.0,
            evidence="税收合计=0",
            severity="中",
        )
    leased_share = p["leased_out_m2"] / area
    out["leased_out_share"] = leased_share
    if le.enabled and le.leased_out_share_above is not None:
        lim = le.leased_out_share_above
        m, q = _subset(leased_share > lim)
        b.add(
            m,
            flag="low_efficiency",
            rule_id="low_efficiency.leased_out",
            basis=BASIS_LOW_EFF + "（建成用地主要用于出租）",
            reason="出租面积占宗地 " + (q(leased_share) * 100).round(1).astype("string") + "%，超过 " + f"{lim:.0%}",
            value=leased_share.round(4),
            threshold=lim,
            evidence="出租土地面积=" + _fmt(q(p["leased_out_m2"])) + "平方米",
            severity="中",
        )

    flags = b.frame()
    # --- 退二优二 candidates: any idle or low-efficiency flag, not exempt -------------------------
    kind = flags["flag"].to_numpy(dtype=object)
    fpos = flags["_pos"].to_numpy(dtype=np.int64)
    exempt_pos = np.unique(fpos[kind == "idle_exempt"])
    counted = np.isin(kind, ["idle_legal", "idle_suspected", "low_efficiency"]) & ~np.isin(fpos, exempt_pos)
    base = flags.loc[counted]
    if len(base):
        keys = base["_pos"]
        reasons = join_groups(keys, base["reason"], "；")
        rule_ids = join_groups(keys, base["rule_id"], "、")
        count = np.bincount(keys.to_numpy(dtype=np.int64), minlength=n)
        cand = pd.Series(count > 0)
        at = reasons.index.to_numpy(dtype=np.int64)
        b2 = _Builder(p, b.ids)
        b2.add(
            cand,
            flag="renewal_candidate",
            rule_id="renewal_candidate",
            basis=BASIS_RENEWAL,
            reason=(
                "符合"
                + pd.Series(count[at], index=at).astype(str)
                + "项闲置/低效规则："
                + pd.Series(reasons.to_numpy(), index=at)
            ),
            value=pd.Series(count.astype(float)),
            threshold=1.0,
            evidence="规则=" + pd.Series(rule_ids.to_numpy(), index=at),
            severity="中",
        )
        flags = pd.concat([flags, b2.frame()], ignore_index=True)
    fpos = flags["_pos"].to_numpy(dtype=np.int64)
    cand_pos = np.unique(fpos[(flags["flag"] == "renewal_candidate").to_numpy()])
    flagged = np.unique(fpos)
    names = _user_names(b.users[flagged], p["main_user_name"].to_numpy(dtype=object)[flagged], e)
    flags["enterprise_names"] = names[np.searchsorted(flagged, fpos)]
    flag_order = flags["flag"].map({k: i for i, k in enumerate(FLAG_LABELS)}).to_numpy()
    rule_codes = pd.factorize(flags["rule_id"], sort=True)[0]
    order = np.lexsort((rule_codes, flag_order, fpos))
    flags = flags.iloc[order].drop(columns="_pos").reset_index(drop=True)
    is_candidate = np.zeros(n, dtype=bool)
    is_candidate[cand_pos] = True
    out["renewal_candidate"] = is_candidate
    out.index = parcel_index
    return FlagResult(flags=flags, evidence=out, notes=notes)
