"""The flag-rule registry: one hand-made case per rule, and the registry's own promises.

Every case starts from a *clean* set, the catalogue (``catalogue.py``) with P8 held by E10 and a
scheme under which no rule fires: one indicator (亩均税收, benchmark 20 万元/亩, weight 100, so the
score is ``5 × tax_per_mu``) and score lines A 90 / B 60 / C 20 (the lowest base score is E7's 25).
Under it the clean set has, per parcel: 亩均税收 ≥ 4.44 (P6) against a county line of 0.2 × 1710 ÷ 94.5
= 3.62; plot ratio ≥ its control value (P4, P5, P6, P8 at exactly 1.0); 建筑系数 0.5; leased-out share
≤ 0.3; every parcel used by an enterprise that pays tax; built-up fraction 0.5; last year every
enterprise paid tax and was class B. A case then edits one parcel to hit its rule and another to
just miss it, and checks the rows against a hand calculation. All rules run in every case (with last
year's results and the raster evidence), so a case also shows which other rules its parcel trips.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import catalogue
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo_eval.io import load_inputs
from geo_eval.landuse.flag_rules import RENEWAL_RULE, RULE_INFO, RULES, FlagRule, switched_on
from geo_eval.landuse.flags import FLAG_LABELS, RULE_LABELS, flag_parcels
from geo_eval.rating.evaluate import evaluate
from geo_eval.rating.scheme import FlagRules, parse_scheme

EVAL_DATE = dt.date(2026, 3, 31)
E = catalogue.E
TAX_PER_MU_INDICATOR = """
  [[groups.indicators]]
  key = "tax_per_mu"
  weight = 100
  benchmark = "fixed"
  value = 20.0
"""
SCHEME = f"""
name = "rule-cases"
title = "地块规则测试方案"

[[groups]]
key = "above_scale"
label = "规上企业"
above_scale = true
{TAX_PER_MU_INDICATOR}
[[groups]]
key = "below_scale"
label = "规下企业"
above_scale = false
min_land_mu = 3
{TAX_PER_MU_INDICATOR}
[grading]
method = "thresholds"
thresholds = {{A = 90, B = 60, C = 20}}
"""


@dataclass
class Data:
    """A case's inputs: the clean set, edited by the case."""

    parcels: gpd.GeoDataFrame
    enterprises: pd.DataFrame
    leases: pd.DataFrame
    previous: pd.DataFrame
    builtup: pd.DataFrame
    flags_toml: str = ""

    def parcel(self, pid: str, **values: object) -> None:
        for k, v in values.items():
            self.parcels.loc[self.parcels["parcel_id"] == pid, k] = v

    def enterprise(self, i: int, **values: object) -> None:
        for k, v in values.items():
            self.enterprises.loc[self.enterprises["uscc"] == E[i], k] = v


def clean_data() -> Data:
    p = catalogue.parcels()
    p.loc[p["parcel_id"] == "P8", "holder_uscc"] = E[10]
    for c in ("contract_start_date", "actual_start_date", "suspended_since", "delay_cause"):
        p[c] = None
    p["developed_ratio"] = np.nan
    p["invested_ratio"] = np.nan
    p["land_price"] = 1200.0
    e = catalogue.enterprises()
    e10 = {**e.iloc[3].to_dict(), "uscc": E[10], "name": "癸公司", "tax": 300, "sales": 3000}  # 15 亩: 20 per 亩
    e = pd.concat([e, pd.DataFrame([e10])], ignore_index=True).astype({"tax": float, "sales": float})
    previous = e.set_index("uscc")[["tax", "sales"]].assign(grade="B")
    builtup = pd.DataFrame({"builtup_fraction": 0.5, "valid_fraction": 1.0}, index=list(catalogue.RECTS))
    return Data(p, e, catalogue.leases(), previous, builtup)


def run(tmp_path, data: Data):
    root = catalogue.write_dataset(
        tmp_path / "ds", parcels_gdf=data.parcels, enterprises_df=data.enterprises, leases_df=data.leases
    )
    inputs, _, _ = load_inputs(root)
    scheme = parse_scheme(SCHEME + data.flags_toml)
    ev = evaluate(inputs, scheme)
    fr = flag_parcels(ev, scheme.flags, evaluation_date=EVAL_DATE, previous=data.previous, builtup=data.builtup)
    return ev, fr


def test_the_clean_set_hits_no_rule(tmp_path):
    ev, fr = run(tmp_path, clean_data())
    assert fr.flags.empty
    assert fr.notes == []  # every rule ran: last year's results and the raster were given
    assert ev.enterprises["grade"].to_dict() == {
        **{E[i]: g for i, g in zip(range(1, 8), "AAAACCC", strict=True)},
        E[8]: "T",  # 2.25 亩 规下: in no group
        E[9]: "T",  # utility
        E[10]: "A",
    }


# --- one case per rule ------------------------------------------------------------------------------


@dataclass
class Case:
    """``edit`` makes parcel ``hit`` hit the rule and parcel ``miss`` just miss it."""

    rule_id: str
    edit: Callable[[Data], None]
    hit: str
    miss: str
    value: float
    threshold: float
    reason: str
    also: set[str] = field(default_factory=lambda: {"renewal_candidate"})
    """The other rules of the hit parcel."""


def idle_since(contract_hit: str, contract_miss: str, cause: str | None = None) -> Callable[[Data], None]:
    def edit(d: Data) -> None:
        d.parcel("P1", contract_start_date=contract_hit, delay_cause=cause)
        d.parcel("P2", contract_start_date=contract_miss, delay_cause=cause)

    return edit


def no_enterprise(d: Data) -> None:
    d.parcel("P8", holder_uscc=None)  # unassigned land, nobody on it
    d.parcel("P7", holder_uscc=None)  # unassigned too, but E9 leases 1 000 m² of it
    lease = {"lessee_uscc": E[9], "parcel_id": "P7", "leased_land_m2": 1000.0, "leased_floor_m2": None}
    d.leases = pd.concat([d.leases, pd.DataFrame([lease])], ignore_index=True)


def zero_output(d: Data) -> None:
    d.enterprise(6, tax=0, sales=0)  # P4: E6 alone
    d.enterprise(2, tax=0, sales=0)  # P2: E2 and E3, who sold for 1 万元
    d.enterprise(3, tax=0, sales=1)


def low_builtup(d: Data) -> None:
    d.builtup.loc["P1", "builtup_fraction"] = 0.09
    d.builtup.loc["P2", "builtup_fraction"] = 0.10  # on the line


def grade_d(d: Data) -> None:
    d.enterprise(6, tax=35.1)  # P4: 35.1 / 9 亩 = 3.9 per 亩, score 5 × 3.9 = 19.5 < 20: D
    d.enterprise(7, tax=12)  # P5: 12 / 3 亩 = 4 per 亩, score 20: C, just


def tax_per_mu_mean(d: Data) -> None:
    d.enterprise(7, tax=10)  # P5: 10 / 3 亩 = 3.333
    d.enterprise(6, tax=33)  # P4: 33 / 9 亩 = 3.667


def zero_tax(d: Data) -> None:
    d.enterprise(6, tax=0)  # P4: E6 paid nothing this year and last year
    d.previous.loc[E[6], "tax"] = 0
    d.enterprise(2, tax=0)  # P2: E2 and E3 paid nothing this year; last year E3 paid 5 万元
    d.enterprise(3, tax=0)
    d.previous.loc[E[2], "tax"] = 0
    d.previous.loc[E[3], "tax"] = 5


def leased_out(d: Data) -> None:
    d.leases.loc[d.leases["lessee_uscc"] == E[3], "leased_land_m2"] = 5001.0  # P2: 5 001 of 10 000 m²
    # P3: 15 000 m² of floor at plot ratio 2.0 = 7 500 of 15 000 m² of land, exactly half
    d.leases.loc[d.leases["lessee_uscc"] == E[5], "leased_floor_m2"] = 15_000.0


def renewal(d: Data) -> None:
    d.parcel("P1", floor_area_m2=13_990.0, footprint_area_m2=5_998.0)  # two low-efficiency rules
    d.parcel("P2", footprint_area_m2=2_500.0, contract_start_date="2025-03-31", delay_cause="plan_change")


IDLE_EVIDENCE = (
    "约定动工日期=2025-03-31；实际动工日期=无；已开发比例=无；已投资比例=无；停工日期=无；评价基准日=2026-03-31"
)
CASES = [
    Case(
        "idle_legal.reclaim",
        idle_since("2024-03-31", "2024-04-01"),  # d = 2026-03-31: two full years, and one day short
        hit="P1",
        miss="P2",
        value=24,
        threshold=12 * 2,
        reason="约定动工日期 2024-03-31 至评价基准日 2026-03-31 已满24个月（超过约定动工日期未动工），满2年，依法可无偿收回",
    ),
    Case(
        "idle_legal.fee",
        idle_since("2025-03-31", "2025-04-01"),
        hit="P1",
        miss="P2",
        value=12,
        threshold=12 * 1,
        reason="已满12个月（超过约定动工日期未动工），满1年，应征收土地闲置费 240.0 万元（土地价款的20%）",  # 0.2 × 1200
    ),
    Case(
        "idle_exempt",
        idle_since("2025-03-31", "2025-04-01", cause="plan_change"),
        hit="P1",
        miss="P2",
        value=12,
        threshold=12 * 1,
        reason="约定动工日期 2025-03-31 起已满12个月，但延迟系政府原因（规划调整），不按闲置处罚",
        also=set(),  # a government cause: not a 退二优二 candidate
    ),
    Case(
        "idle_suspected.no_enterprise",
        no_enterprise,
        hit="P8",
        miss="P7",
        value=0,
        threshold=np.nan,
        reason="宗地无权利人，也无企业使用",
    ),
    Case(
        "idle_suspected.zero_output",
        zero_output,
        hit="P4",
        miss="P2",
        value=0,
        threshold=0,
        reason=f"使用企业（{E[6]}）本年度税收和销售收入均为0",
        # 0 per 亩 scores 0 (D) and is below the county line
        also={"renewal_candidate", "low_efficiency.grade_d", "low_efficiency.tax_per_mu_mean"},
    ),
    Case(
        "idle_suspected.low_builtup",
        low_builtup,
        hit="P1",
        miss="P2",
        value=0.09,
        threshold=0.10,
        reason="宗地内建成区比例 9.0%，低于 10%（建成区栅格，按像元覆盖面积加权）",
    ),
    Case(
        "low_efficiency.grade_d",
        grade_d,
        hit="P4",
        miss="P5",
        value=5 * 35.1 / 9,
        threshold=np.nan,
        reason=f"主要使用企业 {E[6]}（己公司）本年度综合评价为D类（落后整治类）",
    ),
    Case(
        "low_efficiency.tax_per_mu_fixed",
        lambda d: setattr(d, "flags_toml", "[flags.low_efficiency]\ntax_per_mu_below = 5.0\n"),
        hit="P6",  # E8 (T, still a user): 10 / 2.25 亩
        miss="P5",  # E7: 15 / 3 亩 = 5.0, on the line
        value=round(10 / 2.25, 4),
        threshold=5.0,
        reason="宗地亩均税收 4.44 万元/亩，低于 5 万元/亩",
    ),
    Case(
        "low_efficiency.tax_per_mu_mean",
        tax_per_mu_mean,
        hit="P5",
        miss="P4",
        value=round(10 / 3, 4),
        # rated E1–E7 and E10: Σ tax ÷ Σ 亩
        threshold=round(
            0.2 * (600 + 210 + 90 + 360 + 45 + 33 + 10 + 300) / (30 + 10.5 + 4.5 + 18 + 4.5 + 9 + 3 + 15), 4
        ),
        reason="宗地亩均税收 3.33 万元/亩，低于所在县区参评企业平均亩均税收 17.44 万元/亩的 20%（3.49 万元/亩）",
        also={"renewal_candidate", "low_efficiency.grade_d"},  # E7 scores 5 × 3.33 < 20
    ),
    Case(
        "low_efficiency.plot_ratio",
        lambda d: (d.parcel("P1", floor_area_m2=13_990.0), d.parcel("P2", floor_area_m2=6_000.0)),
        hit="P1",  # 13 990 / 20 000 m², C3360 metal products: 0.7
        miss="P2",  # 6 000 / 10 000 m², C2614 chemicals: 0.6, on the line
        value=13_990 / 20_000,
        threshold=0.7,
        reason="容积率 0.7，低于金属制品业（行业代码 C3360）的控制值 0.7",
    ),
    Case(
        "low_efficiency.building_coefficient",
        lambda d: (d.parcel("P1", footprint_area_m2=5_998.0), d.parcel("P2", footprint_area_m2=3_000.0)),
        hit="P1",
        miss="P2",
        value=5_998 / 20_000,
        threshold=0.30,
        reason="建筑系数 30.0%，低于 30%",
    ),
    Case(
        "low_efficiency.zero_tax",
        zero_tax,
        hit="P4",
        miss="P2",
        value=0,
        threshold=0,
        reason=f"使用企业（{E[6]}）连续2年税收为0",
        also={"renewal_candidate", "low_efficiency.grade_d", "low_efficiency.tax_per_mu_mean"},
    ),
    Case(
        "low_efficiency.leased_out",
        leased_out,
        hit="P2",
        miss="P3",
        value=5_001 / 10_000,
        threshold=0.5,
        reason="出租面积占宗地 50.0%，超过 50%",
    ),
    Case(
        "renewal_candidate",
        renewal,
        hit="P1",
        miss="P2",  # a low-efficiency rule too, but idle with a government cause: exempt
        value=2,
        threshold=1,
        reason="符合2项闲置/低效规则：容积率 0.7，低于金属制品业（行业代码 C3360）的控制值 0.7；建筑系数 30.0%，低于 30%",
        also={"low_efficiency.plot_ratio", "low_efficiency.building_coefficient"},
    ),
]


def test_every_rule_has_a_case():
    assert [c.rule_id for c in CASES] == list(RULE_INFO)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule_id)
def test_rule(tmp_path, case: Case):
    data = clean_data()
    case.edit(data)
    _, fr = run(tmp_path, data)
    f = fr.flags
    rows = f.loc[f["rule_id"] == case.rule_id]
    assert rows["parcel_id"].tolist() == [case.hit]
    row = rows.iloc[0]
    assert row["value"] == pytest.approx(case.value, abs=1e-9)
    if np.isnan(case.threshold):
        assert np.isnan(row["threshold"])
    else:
        assert row["threshold"] == pytest.approx(case.threshold, abs=1e-9)
    assert case.reason in row["reason"]
    info = RULE_INFO[case.rule_id]
    assert (row["flag"], row["flag_label"], row["severity"]) == (info.flag, FLAG_LABELS[info.flag], info.severity)
    assert row["basis"].startswith(info.basis)
    assert set(f.loc[f["parcel_id"] == case.hit, "rule_id"]) == {case.rule_id} | case.also
    assert case.miss not in set(f.loc[f["rule_id"] == case.rule_id, "parcel_id"])


def test_rules_with_a_run_dependent_basis(tmp_path):
    data = clean_data()
    grade_d(data)
    zero_tax(data)
    _, fr = run(tmp_path, data)
    basis = fr.flags.set_index("flag_id")["basis"]
    assert basis["P4:low_efficiency.grade_d"] == RULES["low_efficiency.grade_d"].basis + "；地块规则测试方案"
    assert basis["P4:low_efficiency.zero_tax"] == RULES["low_efficiency.zero_tax"].basis + "（连续两年无税收）"


def test_switching_a_rule_off_removes_only_its_rows(tmp_path):
    data = clean_data()
    renewal(data)
    data.flags_toml = "[flags.low_efficiency]\nplot_ratio = false\n"
    _, fr = run(tmp_path, data)
    assert set(fr.flags.loc[fr.flags["parcel_id"] == "P1", "rule_id"]) == {
        "low_efficiency.building_coefficient",
        "renewal_candidate",
    }


# --- the registry ------------------------------------------------------------------------------------


def test_the_registry_covers_every_rule_id_with_a_name_and_a_basis():
    kinds = {
        "idle_legal": "闲置土地·",
        "idle_exempt": "闲置土地·",
        "idle_suspected": "疑似闲置·",
        "low_efficiency": "低效用地·",
    }
    assert list(RULE_INFO) == [*RULES, "renewal_candidate"]
    assert RULE_INFO["renewal_candidate"] is RENEWAL_RULE
    assert {k: r.label for k, r in RULE_INFO.items()} == RULE_LABELS
    assert len(set(RULE_LABELS.values())) == len(RULE_LABELS)
    for rule_id, rule in RULE_INFO.items():
        assert rule.rule_id == rule_id
        assert rule.flag in FLAG_LABELS and rule_id.split(".")[0] == rule.flag
        assert rule.label.startswith(kinds.get(rule.flag, "退二优二候选")) and not set(rule.label) & set("._")
        assert rule.basis.startswith(("《", "连云港市"))
        assert rule.severity in ("高", "中", "低")
        assert rule.fires_when and rule.measures


def test_every_rule_id_of_the_sample_outputs_is_registered(sample_runs):
    written = {
        year: set(pd.read_csv(out / "flags.csv", encoding="utf-8-sig")["rule_id"]) for year, out in sample_runs.items()
    }
    assert written[2024] <= set(RULE_INFO)
    # 2025 has last year's results and the raster: every rule on by default fires somewhere
    assert written[2025] == set(RULE_INFO) - {"low_efficiency.tax_per_mu_fixed"}


def test_every_switch_is_a_key_of_the_flags_section():
    rules = FlagRules()
    for rule in RULES.values():
        section, key = rule.switch.split(".")
        assert key in type(getattr(rules, section)).model_fields, rule.switch
    assert RENEWAL_RULE.switch is None
    on = {r.rule_id for r in RULES.values() if switched_on(rules, r.switch)}
    assert on == set(RULES) - {"low_efficiency.tax_per_mu_fixed"}  # the only rule off by default
    off = rules.model_copy(update={"suspected_idle": rules.suspected_idle.model_copy(update={"enabled": False})})
    assert not any(switched_on(off, r.switch) for r in RULES.values() if r.flag == "idle_suspected")


def test_a_new_rule_is_one_entry(tmp_path, monkeypatch):
    """A city's own rule added to the registry runs, is named, and counts for 退二优二."""
    import geo_eval.landuse.flag_rules as flag_rules
    from geo_eval.landuse.flag_rules import Hits, on_hits

    def small(f):
        m, q = on_hits(f.area < 2_000)
        return Hits(m, f.area.round(1), 2_000.0, "宗地面积 " + q(f.area).astype("string") + " 平方米", "")

    rule = FlagRule(
        rule_id="low_efficiency.small_parcel",
        flag="low_efficiency",
        label="低效用地·宗地过小",
        basis="某市低效用地认定办法",
        severity="低",
        switch="low_efficiency.enabled",
        fires_when="area below 2 000 m²",
        measures="area / 2 000",
        hits=small,
    )
    monkeypatch.setitem(flag_rules.RULES, rule.rule_id, rule)
    _, fr = run(tmp_path, clean_data())
    f = fr.flags.set_index("flag_id")
    assert f.loc["P6:low_efficiency.small_parcel", "value"] == 1_500.0
    assert f.loc["P6:low_efficiency.small_parcel", "basis"] == "某市低效用地认定办法"
    assert f.loc["P6:renewal_candidate", "evidence"] == "规则=low_efficiency.small_parcel"
    assert f.loc["P6:low_efficiency.small_parcel", "flag_label"] == "低效用地"
    assert "P5:low_efficiency.small_parcel" not in f.index  # exactly 2 000 m²


def test_public_names_stay_importable_from_flags():
    import geo_eval.landuse.flags as flags

    for name in (
        "FLAG_COLUMNS",
        "FLAG_LABELS",
        "RULE_LABELS",
        "rule_label",
        "rule_labels",
        "short_reasons",
        "evidence_labels",
        "FlagResult",
        "flag_parcels",
        "DELAY_CAUSES",
        "check_delay_causes",
        "normalize_delay_cause",
        "full_months",
        "full_years_reached",
        "BASIS_IDLE",
        "BASIS_IDLE_EXEMPT",
        "BASIS_SUSPECTED",
        "BASIS_LOW_EFF",
        "BASIS_CONTROL",
        "BASIS_RENEWAL",
    ):
        assert hasattr(flags, name), name
