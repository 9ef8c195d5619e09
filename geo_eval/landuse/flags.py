"""Land flags for the natural resources bureau: idle land, low-efficiency land, 退二优二 candidates.

Every flag answers which parcel, why (a Chinese sentence naming the values and thresholds) and on
what basis (the legal or policy text). One row per parcel and flag; rules are switched and tuned in
the scheme's ``[flags]`` section and reported individually by ``rule_id``.

The rules themselves are a registry (:data:`geo_eval.landuse.flag_rules.RULES`: a record and a small function
each); this module puts their rows together: :func:`flag_parcels` runs every rule switched on, then
adds the 退二优二 candidates (parcels with an idle or low-efficiency row and no government-cause
exemption), the enterprise names and the order of the rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geo_eval.landuse.flag_rules import (
    BASIS_CONTROL,
    BASIS_IDLE,
    BASIS_IDLE_EXEMPT,
    BASIS_LOW_EFF,
    BASIS_RENEWAL,
    BASIS_SUSPECTED,
    DELAY_CAUSES,
    RENEWAL_RULE,
    RULE_INFO,
    RULES,
    Hits,
    ParcelFacts,
    RuleInfo,
    check_delay_causes,
    full_months,
    full_years_reached,
    normalize_delay_cause,
    switched_on,
)
from geo_eval.rating.evaluate import Evaluation
from geo_eval.rating.grouping import join_groups
from geo_eval.rating.scheme import FlagRules

__all__ = [
    "BASIS_CONTROL",
    "BASIS_IDLE",
    "BASIS_IDLE_EXEMPT",
    "BASIS_LOW_EFF",
    "BASIS_RENEWAL",
    "BASIS_SUSPECTED",
    "DELAY_CAUSES",
    "FLAG_COLUMNS",
    "FLAG_LABELS",
    "RULE_LABELS",
    "FlagResult",
    "check_delay_causes",
    "evidence_labels",
    "flag_parcels",
    "full_months",
    "full_years_reached",
    "normalize_delay_cause",
    "rule_label",
    "rule_labels",
    "short_reasons",
]

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

RULE_LABELS: dict[str, str] = {rule_id: rule.label for rule_id, rule in RULE_INFO.items()}
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


@dataclass
class FlagResult:
    """Flags of one evaluation, and per-parcel evidence columns."""

    flags: pd.DataFrame  # FLAG_COLUMNS
    evidence: pd.DataFrame  # per parcel: months_idle, plot_ratio, building_coefficient, builtup_fraction …
    notes: list[str] = field(default_factory=list)


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

    def add(self, rule: RuleInfo, hits: Hits) -> None:
        """The rows of ``rule`` on the parcels ``hits`` marks."""
        pos = np.flatnonzero(hits.mask.fillna(False).astype(bool).to_numpy())
        if len(pos) == 0:
            return

        def pick(v: pd.Series | str | float) -> object:
            if not isinstance(v, pd.Series):
                return v
            # Series are labelled by parcel position (full length, or the hit rows only).
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
            "flag_id": ids.astype(str).astype(object) + (":" + rule.rule_id),
            "parcel_id": ids,
            "flag": col(rule.flag),
            "flag_label": col(FLAG_LABELS[rule.flag]),
            "rule_id": col(rule.rule_id),
            "basis": col(rule.basis + hits.basis_note),
            "reason": col(hits.reason),
            "value": col(hits.value),
            "threshold": col(hits.threshold),
            "evidence": col(hits.evidence),
            "severity": col(rule.severity),
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


def _renewal_hits(flags: pd.DataFrame, n: int) -> Hits | None:
    """退二优二 candidates: the parcels with an idle or low-efficiency row and no ``idle_exempt`` row.

    ``value`` is the number of those rows; the reason and evidence repeat their reasons and rule ids.
    """
    kind = flags["flag"].to_numpy(dtype=object)
    fpos = flags["_pos"].to_numpy(dtype=np.int64)
    exempt_pos = np.unique(fpos[kind == "idle_exempt"])
    counted = np.isin(kind, ["idle_legal", "idle_suspected", "low_efficiency"]) & ~np.isin(fpos, exempt_pos)
    base = flags.loc[counted]
    if not len(base):
        return None
    keys = base["_pos"]
    reasons = join_groups(keys, base["reason"], "；")
    rule_ids = join_groups(keys, base["rule_id"], "、")
    count = np.bincount(keys.to_numpy(dtype=np.int64), minlength=n)
    at = reasons.index.to_numpy(dtype=np.int64)
    reason = (
        "符合"
        + pd.Series(count[at], index=at).astype(str)
        + "项闲置/低效规则："
        + pd.Series(reasons.to_numpy(), index=at)
    )
    evidence = "规则=" + pd.Series(rule_ids.to_numpy(), index=at)
    return Hits(pd.Series(count > 0), pd.Series(count.astype(float)), 1.0, reason, evidence)


def _in_order(flags: pd.DataFrame) -> pd.DataFrame:
    """Rows by parcel position, flag kind (as :data:`FLAG_LABELS`) and ``rule_id``; ``_pos`` dropped."""
    fpos = flags["_pos"].to_numpy(dtype=np.int64)
    flag_order = flags["flag"].map({k: i for i, k in enumerate(FLAG_LABELS)}).to_numpy()
    rule_codes = pd.factorize(flags["rule_id"], sort=True)[0]
    order = np.lexsort((rule_codes, flag_order, fpos))
    return flags.iloc[order].drop(columns="_pos").reset_index(drop=True)


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
    ``builtup`` has ``builtup_fraction`` per parcel (raster evidence; see :mod:`geo_eval.landuse.evidence`).
    """
    eval_date = pd.Timestamp(evaluation_date or dt.date(ev.year, 12, 31))
    facts = ParcelFacts(ev, rules, eval_date=eval_date, previous=previous, builtup=builtup)
    p = facts.p
    b = _Builder(p, facts.parcel_index.to_numpy(dtype=object))
    # 1. every rule switched on, in the registry's order
    for rule in RULES.values():
        hits = rule.hits(facts) if switched_on(rules, rule.switch) else None
        if hits is not None:
            b.add(rule, hits)
    flags = b.frame()
    # 2. 退二优二 candidates: any idle or low-efficiency row, no government-cause exemption
    candidates = _renewal_hits(flags, facts.n)
    if candidates is not None:
        b2 = _Builder(p, b.ids)
        b2.add(RENEWAL_RULE, candidates)
        flags = pd.concat([flags, b2.frame()], ignore_index=True)
    # 3. the users' names, and the rows in order
    fpos = flags["_pos"].to_numpy(dtype=np.int64)
    cand_pos = np.unique(fpos[(flags["flag"] == "renewal_candidate").to_numpy()])
    flagged = np.unique(fpos)
    names = _user_names(b.users[flagged], p["main_user_name"].to_numpy(dtype=object)[flagged], ev.enterprises)
    flags["enterprise_names"] = names[np.searchsorted(flagged, fpos)]
    is_candidate = np.zeros(facts.n, dtype=bool)
    is_candidate[cand_pos] = True
    evidence = pd.DataFrame({**facts.evidence(), "renewal_candidate": is_candidate})
    evidence.index = facts.parcel_index
    return FlagResult(flags=_in_order(flags), evidence=evidence, notes=facts.notes)
