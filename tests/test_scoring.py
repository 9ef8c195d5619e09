"""Presets and scoring rules against hand calculations."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_eval.inputs.fields import FIGURES
from geo_eval.rating.grading import apply_vetoes, cut_count, grades_by_percentile
from geo_eval.rating.scheme import Grading, load_scheme, parse_scheme, preset_text
from geo_eval.rating.scoring import score

HUANGYAN_2022_ABOVE = {  # published 2022-data benchmarks (domain.md §3)
    "tax_per_mu": 24.097,
    "value_added_per_mu": 136.16,
    "value_added_per_energy": 2.694,
    "value_added_per_emission": 4929.81,
    "labour_productivity": 18.14,
    "rnd_intensity": 0.0302,
}


def at_benchmarks(land_mu: float, b: dict[str, float]) -> dict[str, float]:
    """Figures that put an enterprise exactly at every benchmark."""
    va = b["value_added_per_mu"] * land_mu
    return {
        "land_mu": land_mu,
        "tax": b["tax_per_mu"] * land_mu,
        "value_added": va,
        "energy_tce": va / b["value_added_per_energy"],
        "emission_t": va / b["value_added_per_emission"],
        "employees": va / b["labour_productivity"],
        "main_revenue": 10_000.0,
        "rnd": 10_000.0 * b["rnd_intensity"],
    }


def frame(rows: list[dict], group: str = "above_scale", county: str = "海滨区") -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.index = [f"E{i:03d}" for i in range(len(df))]
    df["group"] = df.get("group", group)
    df["county"] = df.get("county", county)
    for c in (*FIGURES, "bonus", "penalty"):  # the figures a validated enterprise table always has
        if c not in df:
            df[c] = np.nan
    return df


def test_huangyan_2022_enterprise_at_every_benchmark_scores_100():
    s = load_scheme("huangyan-2022")
    r = score(frame([at_benchmarks(30.0, HUANGYAN_2022_ABOVE)]), s)
    assert r.score.iloc[0] == 100.0
    assert r.items.iloc[0]["score_tax_per_mu"] == pytest.approx(30.0)


def test_huangyan_2022_hand_calculation_and_missing_emission_rule():
    s = load_scheme("huangyan-2022")
    a = at_benchmarks(30.0, HUANGYAN_2022_ABOVE)
    b = dict(a, tax=a["tax"] * 2)  # tax per 亩 twice the benchmark: 30 × 2 = 60 on that item
    c = dict(a, emission_t=np.nan)  # no emission data: group's average item score (黄岩 rule)
    d = dict(a, value_added=a["value_added"] / 2)  # VA halves four items (20+20+10+10)/2 = 30 lost
    r = score(frame([a, b, c, d]), s)
    assert r.score.tolist() == [100.0, 130.0, round(100 - 10 + (10 + 10 + 5) / 3, 2), 70.0]  # scores kept to 2 decimals
    assert r.items.iloc[2]["score_value_added_per_emission"] == pytest.approx(25 / 3)


def test_huangyan_2021_below_scale_uses_tax_per_electricity():
    s = load_scheme("huangyan-2021")
    land = 9.0
    tax = 16.601058 * land
    row = {"land_mu": land, "tax": tax, "electricity_10k_kwh": tax / 0.236565}
    r = score(frame([row], group="below_scale"), s)
    assert r.score.iloc[0] == 100.0
    # 元/千瓦时: 万元 / 万千瓦时; an enterprise paying 0.4731 元/kWh gets 2 × 50 on that item
    row2 = {"land_mu": land, "tax": tax, "electricity_10k_kwh": tax / (2 * 0.236565)}
    assert score(frame([row2], group="below_scale"), s).score.iloc[0] == 150.0


def test_huaian_2024_benchmark_is_twice_last_years_county_aggregate():
    s = load_scheme("huaian-2024")
    prev = frame(
        [
            {"land_mu": 10.0, "tax": 50.0, "sales": 500.0, "energy_tce": 100.0, "grade": "B"},
            {"land_mu": 30.0, "tax": 350.0, "sales": 3500.0, "energy_tce": 100.0, "grade": "C"},
            {"land_mu": 1000.0, "tax": 0.0, "sales": 0.0, "energy_tce": 1.0, "grade": "T"},  # T rows do not count
        ]
    )
    # previous aggregate: tax/land = 400/40 = 10 → benchmark 20; sales/land = 100 → 200; tax/energy = 2 → 4
    cur = frame([{"land_mu": 20.0, "tax": 400.0, "sales": 4000.0, "energy_tce": 100.0}])
    r = score(cur, s, previous=prev)
    bench = r.benchmarks.set_index("indicator")["benchmark"]
    assert bench["tax_per_mu"] == pytest.approx(20.0)
    assert bench["revenue_per_mu"] == pytest.approx(200.0)
    assert bench["tax_per_energy"] == pytest.approx(4.0)
    assert r.score.iloc[0] == 100.0
    assert r.fallbacks == []


def test_previous_mean_falls_back_to_this_years_mean_and_says_so():
    s = load_scheme("huaian-2024")
    cur = frame(
        [
            {"land_mu": 10.0, "tax": 100.0, "sales": 1000.0, "energy_tce": 50.0},
            {"land_mu": 30.0, "tax": 700.0, "sales": 7000.0, "energy_tce": 350.0},
        ]
    )
    r = score(cur, s)
    bench = r.benchmarks.set_index("indicator")
    # this year's aggregate tax/land = 800/40 = 20 → benchmark 2 × 20 = 40
    assert bench.loc["tax_per_mu", "benchmark"] == pytest.approx(40.0)
    assert "本年均值" in bench.loc["tax_per_mu", "basis"]
    assert len(r.fallbacks) == 3 and "未提供上年评价结果" in r.fallbacks[0]


def test_average_mean_option_differs_from_aggregate():
    text = preset_text("huaian-2024").replace(
        'benchmark = "previous_mean"', 'benchmark = "current_mean"\n  mean = "average"'
    )
    s = parse_scheme(text)
    cur = frame(
        [
            {"land_mu": 10.0, "tax": 100.0, "sales": 1000.0, "energy_tce": 50.0},  # 10 per 亩
            {"land_mu": 30.0, "tax": 900.0, "sales": 9000.0, "energy_tce": 450.0},  # 30 per 亩
        ]
    )
    bench = score(cur, s).benchmarks.set_index("indicator")
    assert bench.loc["tax_per_mu", "benchmark"] == pytest.approx(2 * 20.0)  # average of 10 and 30, × 2


def test_cap_and_floor_and_minmax():
    text = """
name = "t"
title = "t"
[[groups]]
key = "g"
label = "g"
  [[groups.indicators]]
  key = "tax_per_mu"
  weight = 60
  benchmark = "fixed"
  value = 10
  cap = 1.5
  [[groups.indicators]]
  key = "revenue_per_mu"
  weight = 40
  benchmark = "minmax"
"""
    s = parse_scheme(text)
    cur = frame(
        [
            {"land_mu": 1.0, "tax": 30.0, "sales": 100.0},  # tax item 60×3 → capped at 90; sales max → 40
            {"land_mu": 1.0, "tax": 5.0, "sales": 50.0},  # 30; (50-0)/(100-0) → 40×(20+40)/100 = 24
            {"land_mu": 1.0, "tax": 0.0, "sales": 0.0},  # 0; min → 40×20/100 = 8
        ],
        group="g",
    )
    r = score(cur, s)
    assert r.score.tolist() == [130.0, 54.0, 8.0]


def test_bonus_and_penalty_with_caps():
    s = load_scheme("lianyungang")  # bonus_max 10, penalty_max 20
    rows = [dict(at_benchmarks(10.0, HUANGYAN_2022_ABOVE), sales=1.0, bonus=15.0, penalty=0.0)]
    r1 = score(frame(rows), s)
    rows[0]["bonus"] = 0.0
    rows[0]["penalty"] = 5.0
    r2 = score(frame(rows), s)
    assert r1.score.iloc[0] - r2.score.iloc[0] == pytest.approx(15.0)


# --- grading -----------------------------------------------------------------------------------


def test_percentile_grading_40_enterprises_in_two_counties():
    """淮安 shares within each county: 20 rated → A 4, B 8, C 7, D 1."""
    scores = pd.Series(
        np.r_[np.arange(100, 80, -1), np.arange(70, 50, -1)].astype(float), index=[f"E{i:02d}" for i in range(40)]
    )
    keys = pd.DataFrame({"county": ["海滨区"] * 20 + ["青松县"] * 20, "group": "above_scale"}, index=scores.index)
    g = grades_by_percentile(scores, keys, Grading())
    for county in ("海滨区", "青松县"):
        counts = g[keys["county"] == county].value_counts()
        assert counts.to_dict() == {"A": 4, "B": 8, "C": 7, "D": 1}
    assert g["E00"] == "A" and g["E03"] == "A" and g["E04"] == "B"
    assert g["E19"] == "D" and g["E20"] == "A" and g["E39"] == "D"


def test_cut_counts_rounding():
    # 济宁高新区 2023: 265 rated, 20 % → 53 A under floor
    assert int(cut_count(265, 0.2, "floor")) == 53
    assert int(cut_count(7, 0.2, "floor")) == 1
    assert int(cut_count(7, 0.2, "ceil")) == 2
    assert int(cut_count(7, 0.2, "half_up")) == 1
    assert int(cut_count(8, 0.2, "half_up")) == 2  # 1.6 → 2


def test_ties_at_the_d_cut_go_down_by_default():
    # 20 rated: D = 20 − floor(20 × 0.95) = 1 place, but the last five all score 0.
    scores = pd.Series([*range(100, 85, -1), 0, 0, 0, 0, 0], index=[f"E{i:02d}" for i in range(20)], dtype=float)
    keys = pd.DataFrame({"county": "x", "group": "g"}, index=scores.index)
    assert int((grades_by_percentile(scores, keys, Grading()) == "D").sum()) == 5
    assert int((grades_by_percentile(scores, keys, Grading(ties_at_d="same")) == "D").sum()) == 0


@pytest.mark.parametrize(("ties", "n_a"), [("up", 3), ("down", 1), ("order", 2)])
def test_ties_at_the_cut(ties, n_a):
    scores = pd.Series([100.0, 90.0, 90.0, 80, 70, 60, 50, 40, 30, 20], index=[f"E{i}" for i in range(10)])
    keys = pd.DataFrame({"county": "x", "group": "g"}, index=scores.index)
    g = grades_by_percentile(scores, keys, Grading(ties=ties))  # A = floor(10 × 0.2) = 2 positions
    assert int((g == "A").sum()) == n_a


def test_veto_sets_or_caps_grade():
    s = load_scheme("huaian-2024")
    grades = pd.Series(["A", "B", "C"], index=["x", "y", "z"])
    data = pd.DataFrame(
        {"safety_veto": [True, False, False], "environment_veto": [False, True, False]}, index=grades.index
    )
    out, notes = apply_vetoes(grades, data, s)
    assert out.tolist() == ["D", "D", "C"]
    assert notes["x"].startswith("重大安全生产事故")
    capped = parse_scheme(
        preset_text("huaian-2024").replace('mode = "set"\ngrade = "D"', 'mode = "cap"\ngrade = "B"', 1)
    )
    out2, _ = apply_vetoes(grades, data, capped)
    assert out2.tolist() == ["B", "D", "C"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), min_size=1, max_size=60))
def test_grades_partition_the_ranked_set_and_follow_scores(values):
    scores = pd.Series(np.round(values, 2), index=[f"E{i:03d}" for i in range(len(values))])
    keys = pd.DataFrame({"county": "x", "group": "g"}, index=scores.index)
    g = grades_by_percentile(scores, keys, Grading())
    assert g.isin(["A", "B", "C", "D"]).all() and len(g) == len(scores)
    order = {"A": 0, "B": 1, "C": 2, "D": 3}
    ranked = pd.DataFrame({"s": scores, "g": g.map(order)}).sort_values("s", ascending=False)
    assert ranked["g"].is_monotonic_increasing  # a higher score never gets a worse grade


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["tax", "value_added", "rnd"]),
    st.floats(min_value=0.0, max_value=500.0),
    st.floats(min_value=0.0, max_value=500.0),
)
def test_score_is_monotone_in_each_higher_is_better_figure(field, base, extra):
    s = load_scheme("huangyan-2022")
    row = at_benchmarks(10.0, HUANGYAN_2022_ABOVE)
    low = dict(row, **{field: base})
    high = dict(row, **{field: base + extra})
    r = score(frame([low, high]), s)
    assert r.score.iloc[1] >= r.score.iloc[0]
