"""Land flags against hand-checked cases: idle-land dates at the edges, control indices, rule switches."""

import datetime as dt

import catalogue
import numpy as np
import pandas as pd
import pytest

from geo_eval.io import load_inputs
from geo_eval.landuse.controls import min_plot_ratio
from geo_eval.landuse.flags import flag_parcels, full_months, normalize_delay_cause
from geo_eval.rating.evaluate import evaluate
from geo_eval.rating.scheme import FlagRules, load_scheme, parse_scheme, preset_text

EVAL_DATE = dt.date(2026, 3, 31)


def run_flags(tmp_path, parcels=None, enterprises=None, rules=None, previous=None):
    root = catalogue.write_dataset(tmp_path / "ds", parcels_gdf=parcels, enterprises_df=enterprises)
    inputs, _, _ = load_inputs(root)
    scheme = load_scheme("huaian-2024")
    ev = evaluate(inputs, scheme)
    fr = flag_parcels(ev, rules or scheme.flags, evaluation_date=EVAL_DATE, previous=previous)
    return ev, fr


def idle_parcels(**dates):
    """The catalogue with idle-land fields on P1 (held by E1, a rated enterprise)."""
    p = catalogue.parcels()
    for col in ("contract_start_date", "actual_start_date", "suspended_since", "delay_cause"):
        p[col] = None
    p["developed_ratio"] = np.nan
    p["invested_ratio"] = np.nan
    p["land_price"] = 1200.0
    for k, v in dates.items():
        p.loc[0, k] = v
    return p


def rules_of(fr, pid):
    return sorted(fr.flags.loc[fr.flags["parcel_id"] == pid, "rule_id"])


def test_full_months_same_calendar_day():
    s = pd.Series(pd.to_datetime(["2025-03-31", "2025-04-01", "2024-03-31", "2024-02-29"]))
    assert full_months(s, pd.Timestamp("2026-03-31")).tolist() == [12.0, 11.0, 24.0, 25.0]


@pytest.mark.parametrize(
    ("contract", "expected", "months"),
    [
        ("2025-03-31", ["idle_legal.fee"], 12),  # exactly one full year: fee
        ("2025-04-01", [], 11),  # 11 months 30 days: not yet
        ("2024-04-01", ["idle_legal.fee"], 23),
        ("2024-03-31", ["idle_legal.reclaim"], 24),  # exactly two full years: taken back
    ],
)
def test_idle_not_started_at_the_edges(tmp_path, contract, expected, months):
    _, fr = run_flags(tmp_path, parcels=idle_parcels(contract_start_date=contract))
    got = [r for r in rules_of(fr, "P1") if r.startswith("idle_legal")]
    assert got == expected
    assert fr.evidence.loc["P1", "idle_months"] == months


def test_the_idle_fee_is_a_fifth_of_the_land_price(tmp_path):
    _, fr = run_flags(tmp_path, parcels=idle_parcels(contract_start_date="2024-04-01"))
    row = fr.flags.loc[(fr.flags["parcel_id"] == "P1") & (fr.flags["rule_id"] == "idle_legal.fee")].iloc[0]
    assert "240.0 万元" in row["reason"]  # 20 % of 1200 万元
    assert row["basis"].startswith("《闲置土地处置办法》")
    assert row["enterprises"] == catalogue.E[1]


def test_government_cause_is_exempt_not_idle(tmp_path):
    p = idle_parcels(contract_start_date="2023-01-01", delay_cause="规划调整")
    _, fr = run_flags(tmp_path, parcels=p)
    assert rules_of(fr, "P1")[:1] == ["idle_exempt"]
    assert not any(r.startswith("idle_legal") for r in rules_of(fr, "P1"))
    assert "renewal_candidate" not in rules_of(fr, "P1")  # exempt parcels are not 退二优二 candidates


def test_started_but_stalled(tmp_path):
    p = idle_parcels(contract_start_date="2022-01-01", actual_start_date="2022-03-01", suspended_since="2025-03-31")
    p.loc[0, "developed_ratio"] = 0.2  # < 1/3
    p.loc[0, "invested_ratio"] = 0.5
    _, fr = run_flags(tmp_path, parcels=p)
    assert "idle_legal.fee" in rules_of(fr, "P1")
    p.loc[0, "developed_ratio"] = 0.5  # enough developed and invested: not idle
    _, fr = run_flags(tmp_path / "b", parcels=p)
    assert not any(r.startswith("idle_legal") for r in rules_of(fr, "P1"))


def test_delay_cause_codes_and_names():
    code, bad = normalize_delay_cause(pd.Series(["plan_change", "信访", "不可抗力", "资金不足", None]))
    assert code.tolist()[:3] == ["plan_change", "petition", "force_majeure"]
    assert bad.tolist() == [False, False, False, True, False]


def test_unknown_delay_cause_is_an_error_in_the_exceptions(tmp_path):
    ev, fr = run_flags(tmp_path, parcels=idle_parcels(contract_start_date="2023-01-01", delay_cause="资金不足"))
    bad = ev.problems.frame().query("code == 'bad_delay_cause'")
    assert bad["row"].tolist() == [1]
    assert bad["file"].tolist() == ["parcels.gpkg"]
    assert bad["value"].tolist() == ["资金不足"]
    assert "idle_legal.reclaim" in rules_of(fr, "P1")  # not a government cause: idle as the law says


def test_plot_ratio_control_values_by_industry():
    codes = pd.Series(["C1391", "C1711", "C2511", "C2614", "C2710", "C2911", "C2927", "C3360", "C3911", "D4411"])
    assert min_plot_ratio(codes).tolist()[:9] == [1.0, 0.8, 0.5, 0.6, 0.7, 0.8, 1.0, 0.7, 1.0]
    assert np.isnan(min_plot_ratio(codes).iloc[9])


def test_low_plot_ratio_and_building_coefficient(tmp_path):
    p = catalogue.parcels()
    p.loc[0, "floor_area_m2"] = 12_000.0  # P1 20 000 m²: plot ratio 0.6 < 0.7 for C3360 (metal products)
    p.loc[0, "footprint_area_m2"] = 5_000.0  # building coefficient 25 % < 30 %
    p.loc[3, "floor_area_m2"] = 5_400.0  # P4 6 000 m²: 0.9 < 1.0 for C1391 (food)
    _, fr = run_flags(tmp_path, parcels=p)
    f = fr.flags.set_index("flag_id")
    assert f.loc["P1:low_efficiency.plot_ratio", "value"] == pytest.approx(0.6)
    assert f.loc["P1:low_efficiency.plot_ratio", "threshold"] == pytest.approx(0.7)
    assert f.loc["P1:low_efficiency.building_coefficient", "value"] == pytest.approx(0.25)
    assert "P4:low_efficiency.plot_ratio" in f.index
    assert "P3:low_efficiency.plot_ratio" not in f.index  # 2.0 ≥ 0.7
    assert "P1:renewal_candidate" in f.index


def test_suspected_idle_and_leased_out(tmp_path):
    e = catalogue.enterprises()
    e.loc[5, ["tax", "sales"]] = 0  # E6 on P4: zero output
    _, fr = run_flags(tmp_path, enterprises=e)
    f = fr.flags.set_index("flag_id")
    assert "P8:idle_suspected.no_enterprise" in f.index  # nobody on P8
    assert "P4:idle_suspected.zero_output" in f.index
    assert "P2:low_efficiency.leased_out" not in f.index  # 30 % leased out
    assert f.loc["P8:renewal_candidate", "reason"].startswith("符合1项")


def test_every_rule_switched_off_leaves_no_flag_of_its_kind(tmp_path):
    p = idle_parcels(contract_start_date="2023-01-01")
    p.loc[0, "floor_area_m2"] = 1000.0
    text = (
        preset_text("huaian-2024")
        + """
[flags.idle]
enabled = false
[flags.suspected_idle]
enabled = false
[flags.low_efficiency]
enabled = false
"""
    )
    off = parse_scheme(text).flags
    _, fr = run_flags(tmp_path, parcels=p, rules=off)
    assert fr.flags.empty
    on = FlagRules()
    _, fr2 = run_flags(tmp_path / "on", parcels=p, rules=on)
    assert {"idle_legal", "idle_suspected", "low_efficiency", "renewal_candidate"} <= set(fr2.flags["flag"])
    single = on.model_copy(update={"low_efficiency": on.low_efficiency.model_copy(update={"plot_ratio": False})})
    _, fr3 = run_flags(tmp_path / "one", parcels=p, rules=single)
    assert "low_efficiency.plot_ratio" not in set(fr3.flags["rule_id"])
    assert "low_efficiency.plot_ratio" in set(fr2.flags["rule_id"])


def test_ratios_given_as_percent_are_converted_with_a_warning(tmp_path):
    p = idle_parcels(contract_start_date="2022-01-01", actual_start_date="2022-03-01", suspended_since="2024-01-01")
    p.loc[0, "developed_ratio"] = 20.0  # meant 20 %
    p.loc[0, "invested_ratio"] = 0.5
    ev, fr = run_flags(tmp_path, parcels=p)
    warn = ev.problems.frame().query("code == 'ratio_as_percent'")
    assert warn["row"].tolist() == [1]
    assert "idle_legal.reclaim" in rules_of(fr, "P1")  # 0.20 < 1/3: stalled two years


def test_every_rule_has_a_chinese_name():
    import inspect
    import re

    import geo_eval.landuse.flag_rules as rules_module
    from geo_eval.landuse.flags import RULE_LABELS, rule_label

    written = set(re.findall(r'rule_id="([^"]+)"', inspect.getsource(rules_module)))
    assert len(written) == 14 and written == set(RULE_LABELS)
    kinds = {
        "idle_legal": "闲置土地·",
        "idle_exempt": "闲置土地·",
        "idle_suspected": "疑似闲置·",
        "low_efficiency": "低效用地·",
        "renewal_candidate": "退二优二候选",
    }
    for rule_id, label in RULE_LABELS.items():
        assert label.startswith(kinds[rule_id.split(".")[0]]) and "." not in label and "_" not in label
    assert len(set(RULE_LABELS.values())) == len(RULE_LABELS)
    assert rule_label("low_efficiency.tax_per_mu_mean") == "低效用地·亩均税收（低于均值比例）"
    assert rule_label("my_city.rule") == "my_city.rule"


def test_short_reasons_count_the_rules_of_a_renewal_candidate(tmp_path):
    from geo_eval.landuse.flags import short_reasons

    p = idle_parcels(contract_start_date="2023-01-01")  # P1: idle, and its user is rated D
    _, fr = run_flags(tmp_path, parcels=p)
    f = fr.flags
    short = short_reasons(f)
    assert short.index.equals(f.index)
    renewal = (f["flag"] == "renewal_candidate").to_numpy()
    assert (short[~renewal] == f.loc[~renewal, "reason"]).all()
    assert short[renewal].tolist() == [f"符合 {int(v)} 项规则" for v in f.loc[renewal, "value"]]
    p1 = short[(f["parcel_id"] == "P1").to_numpy() & renewal]
    assert p1.tolist() == ["符合 2 项规则"]
