"""统一社会信用代码 (GB 32100-2015) checks, against codes the enterprises publish and against a second
implementation written from the standard (tests/uscc_reference.py); no expected code is made by geo_eval.inputs.uscc."""

import pandas as pd
import pytest
import uscc_reference as ref
from catalogue import make_uscc
from hypothesis import given
from hypothesis import strategies as st

from geo_eval.inputs.uscc import is_valid_uscc, normalize_uscc, org_code_check_char, uscc_check_char, uscc_problems

# Codes of listed companies as printed in their annual reports (stock code in brackets), each checked by hand:
# positions 9–16 with the GB 11714 weights 3 7 9 10 5 8 4 2 (digits 0–9, letters A = 10 … Z = 35), position 17
# = 11 − Σ mod 11 (10 → X, 11 → 0); positions 1–17 valued in 0123456789ABCDEFGHJKLMNPQRTUWXY (0–30) with the
# weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28, position 18 = the character of (31 − Σ mod 31) mod 31.
# Two in full:
#   91520000214434146R  9–16: 2×3 + 1×7 + 4×9 + 4×10 + 3×5 + 4×8 + 1×4 + 4×2 = 148, 148 mod 11 = 5, 11 − 5 = 6 ✓
#     1–17: 9×1 + 1×3 + 5×9 + 2×27 + 0×19 + 0×26 + 0×16 + 0×17 + 2×20 + 1×29 + 4×25 + 4×13 + 3×8 + 4×24 + 1×10
#     + 4×30 + 6×28 = 750, 750 mod 31 = 6, 31 − 6 = 25 = R ✓
#   9144030010001686XA  9–16: 1×3 + 0×7 + 0×9 + 0×10 + 1×5 + 6×8 + 8×4 + 6×2 = 100, 100 mod 11 = 1, 11 − 1 = 10 = X ✓
#     1–17: 9×1 + 1×3 + 4×9 + 4×27 + 0×19 + 3×26 + 0×16 + 0×17 + 1×20 + 0×29 + 0×25 + 0×13 + 1×8 + 6×24 + 8×10
#     + 6×30 + 29×28 = 1478 (X = 29), 1478 mod 31 = 21, 31 − 21 = 10 = A ✓
# The others (Σ, then the check):
PUBLISHED = {
    "91520000214434146R": "贵州茅台酒股份有限公司（600519）",  # 9–16: Σ 148, 11 − 5 = 6 → 6; 1–17: Σ 750, 31 − 6 = 25 → R
    "91440300192317458F": "比亚迪股份有限公司（002594）",  # 9–16: Σ 201, 11 − 3 = 8 → 8; 1–17: Σ 1194, 31 − 16 = 15 → F
    "91440300100012316L": "中国平安保险（集团）股份有限公司（601318）",  # 9–16: Σ 38, 11 − 5 = 6; Σ 538, 31 − 11 = 20 → L
    "91100000100003962T": "中国工商银行股份有限公司（601398）",  # 9–16: Σ 75, 11 − 9 = 2; 1–17: Σ 439, 31 − 5 = 26 → T
    "91110000710926094P": "中国石油化工股份有限公司（600028）",  # 9–16: Σ 194, 11 − 7 = 4; 1–17: Σ 876, 31 − 8 = 23 → P
    "91440400192548256N": "珠海格力电器股份有限公司（000651）",  # 9–16: Σ 236, 11 − 5 = 6; 1–17: Σ 1218, 31 − 9 = 22 → N
    "91440606722473344C": "美的集团股份有限公司（000333）",  # 9–16: Σ 172, 11 − 7 = 4; 1–17: Σ 1104, 31 − 19 = 12 → C
    "9144030010001686XA": "招商银行股份有限公司（600036）",  # 9–16: Σ 100, 11 − 1 = 10 → X; 1–17: Σ 1478, 31 − 21 = 10 → A
    "91440300192181490G": "万科企业股份有限公司（000002）",  # 9–16: Σ 176, 11 − 0 = 11 → 0; 1–17: Σ 976, 31 − 15 = 16 → G
    "9144030027939873X7": "中兴通讯股份有限公司（000063）",  # 9–16: Σ 309, 11 − 1 = 10 → X; 1–17: Σ 1977, 31 − 24 = 7
    "91350900587527783P": "宁德时代新能源科技股份有限公司（300750）",  # 9–16: Σ 294, 11 − 8 = 3; Σ 1558, 31 − 8 = 23 → P
}
# The example of the standard's explanatory material, widely cited.
VALID = "91350100M000100Y43"
# 贵州茅台's code with position 17 changed from 6 to 7 and position 18 made consistent with it, by hand:
# Σ 1–17 = 750 − 6×28 + 7×28 = 778, 778 mod 31 = 3, 31 − 3 = 28 = W. Only the organisation-code check fails.
ORG_CHECK_WRONG = "91520000214434147W"


@pytest.mark.parametrize("code", sorted(PUBLISHED))
def test_published_codes_pass_both_checks(code):
    assert is_valid_uscc(code)
    assert uscc_problems(pd.Series([code])).iloc[0] == ""
    assert uscc_check_char(code[:17]) == code[17]
    assert org_code_check_char(code[8:16]) == code[16]


def test_published_codes_in_one_column():
    codes = pd.Series([*sorted(PUBLISHED), VALID])
    assert uscc_problems(codes).tolist() == [""] * len(codes)


def test_organisation_code_uses_gb11714_letter_values():
    # Post-2015 "MA…" codes: GB 11714 values letters A = 10 … Z = 35 (not the USCC alphabet's J = 18 …):
    # M 22×3 + A 10×7 + 0 + 1×10 + G 16×5 + 0 + F 15×4 + B 11×2 = 308, 308 mod 11 = 0, 11 − 0 = 11 → 0
    assert is_valid_uscc("91110108MA01G0FB09")
    assert org_code_check_char("MA01G0FB") == "0"


def test_known_valid_code():
    assert is_valid_uscc(VALID)
    assert uscc_check_char(VALID[:17]) == "3"


@pytest.mark.parametrize("code", sorted(PUBLISHED))
def test_a_wrong_check_character_is_reported(code):
    wrong = "0" if code[17] != "0" else "1"
    assert uscc_problems(pd.Series([code[:17] + wrong])).iloc[0] == "第18位校验码不正确"
    assert not is_valid_uscc(code[:17] + wrong)


def test_organisation_code_check_is_reported():
    assert ORG_CHECK_WRONG[:16] == "9152000021443414"
    assert uscc_check_char(ORG_CHECK_WRONG[:17]) == "W"
    assert uscc_problems(pd.Series([ORG_CHECK_WRONG])).iloc[0] == "第9–17位组织机构代码校验码不正确"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("9135010", "长度不是18位"),
        ("91350100M000100YI3", "含有不允许的字符（不能含 I、O、Z、S、V 或标点）"),
        (None, "缺少统一社会信用代码"),
    ],
)
def test_malformed_codes(code, reason):
    assert uscc_problems(pd.Series([code], dtype=object)).iloc[0] == reason


def test_normalize_folds_full_width_and_blanks():
    s = normalize_uscc(pd.Series(["９１３５０１００Ｍ０００１００Ｙ４３ ", "  ", None]))
    assert s.iloc[0] == VALID
    assert s.isna().iloc[1] and s.isna().iloc[2]


def test_the_reference_agrees_with_the_published_codes():
    # the second implementation is right on every code above before it is used as an oracle below
    for code in [*PUBLISHED, VALID, "91110108MA01G0FB09"]:
        assert ref.check_character(code[:17]) == code[17] and ref.org_check_character(code[8:16]) == code[16]


@given(st.integers(min_value=0, max_value=99_999_999))
def test_codes_made_by_the_reference_are_valid(serial):
    assert is_valid_uscc(make_uscc(serial))  # tests/catalogue.py's codes come from the reference too


@given(st.text(alphabet=ref.ALPHABET, min_size=17, max_size=17))
def test_check_characters_agree_with_the_reference(first17):
    assert uscc_check_char(first17) == ref.check_character(first17)
    assert org_code_check_char(first17[8:16]) == ref.org_check_character(first17[8:16])
    code = first17 + ref.check_character(first17)
    org_ok = first17[16] == ref.org_check_character(first17[8:16])
    assert uscc_problems(pd.Series([code])).iloc[0] == ("" if org_ok else "第9–17位组织机构代码校验码不正确")
