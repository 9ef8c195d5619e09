"""T class (不适合评价) and groups."""

import pandas as pd

from geo_eval.rating.rating import industry_division, rating_status
from geo_eval.rating.scheme import load_scheme, parse_scheme, preset_text


def data(**cols):
    base = {
        "industry_code": "C3360",
        "production_start": pd.Timestamp("2015-01-01"),
        "exempt_reason": None,
        "above_scale": True,
        "land_mu": 10.0,
        "owned_m2": 6666.7,
        "leased_in_m2": 0.0,
    }
    base.update(cols)
    return pd.DataFrame([base], index=["X"])


def status(year=2025, scheme="huaian-2024", **cols):
    return rating_status(data(**cols), load_scheme(scheme), year=year).iloc[0]


def test_rated_enterprise_gets_its_group():
    s = status()
    assert (s["group"], s["group_label"], s["t_reason"]) == ("above_scale", "规上企业", "")


def test_exempt_reason_from_input_is_t():
    s = status(exempt_reason="政策性搬迁")
    assert s["group"] == "" and s["t_reason"] == "不参评：政策性搬迁"


def test_utilities_are_t():
    assert industry_division(pd.Series(["D4411", "4610", "C3360", None])).tolist()[:3] == ["44", "46", "33"]
    s = status(industry_code="D4411")
    assert s["group"] == "" and "公用事业" in s["t_reason"]


def test_less_than_two_years_of_production_is_t():
    # year 2025 ends 2025-12-31; two years before is 2023-12-31
    assert status(production_start=pd.Timestamp("2024-01-01"))["group"] == ""
    assert "投产不满2年" in status(production_start=pd.Timestamp("2024-01-01"))["t_reason"]
    assert status(production_start=pd.Timestamp("2023-12-31"))["group"] == "above_scale"


def test_no_land_is_t():
    s = status(land_mu=0.0, owned_m2=0.0)
    assert "无评价用地" in s["t_reason"]


def test_small_below_scale_is_out_of_scope_but_kept():
    s = status(above_scale=False, land_mu=2.99)
    assert s["group"] == "" and s["t_reason"].startswith("不在评价范围")
    assert status(above_scale=False, land_mu=3.0)["group"] == "below_scale"


LESSEE_GROUP = """
[[groups]]
key = "lessee_only"
label = "租赁用地企业"
lessee_only = true
min_land_mu = 3

  [[groups.indicators]]
  key = "tax_per_mu"
  weight = 100
  benchmark = "current_mean"
"""


def test_lessee_only_group_as_the_template_describes():
    text = preset_text("lianyungang").replace(
        '\n[[groups]]\nkey = "above_scale"', LESSEE_GROUP + '\n[[groups]]\nkey = "above_scale"', 1
    )
    scheme = parse_scheme(text)
    tenant = data(owned_m2=0.0, leased_in_m2=6666.7)
    assert rating_status(tenant, scheme, year=2025).iloc[0]["group"] == "lessee_only"
    small = data(owned_m2=0.0, leased_in_m2=1000.0, land_mu=1.5, above_scale=False)
    assert rating_status(small, scheme, year=2025).iloc[0]["group"] == ""
    # In the template as shipped, tenants are rated by their leased land with everyone else.
    assert status(scheme="lianyungang", owned_m2=0.0, leased_in_m2=6666.7)["group"] == "above_scale"
