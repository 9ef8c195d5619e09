import pandas as pd
import pytest
from catalogue import make_uscc
from hypothesis import given
from hypothesis import strategies as st

from geo_eval.uscc import ALPHABET, is_valid_uscc, normalize_uscc, org_code_check_char, uscc_check_char, uscc_problems

# Published codes: 91350100M000100Y43 (a widely cited valid example).
VALID = "91350100M000100Y43"


def test_organisation_code_uses_gb11714_letter_values():
    # Post-2015 "MA…" codes: GB 11714 values letters A = 10 … Z = 35 (not the USCC alphabet's J = 18 …).
    assert is_valid_uscc("91110108MA01G0FB09")
    assert org_code_check_char("MA01G0FB") == "0"


def test_known_valid_code():
    assert is_valid_uscc(VALID)
    assert uscc_check_char(VALID[:17]) == "3"


def test_wrong_check_character_is_reported():
    bad = VALID[:17] + "4"
    assert uscc_problems(pd.Series([bad])).iloc[0] == "第18位校验码不正确"


def test_organisation_code_check_is_reported():
    # Change position 17 (the GB 11714 check) and recompute position 18 so that only the org check fails.
    body = VALID[:16] + ("1" if VALID[16] != "1" else "2")
    code = body + uscc_check_char(body)
    assert uscc_problems(pd.Series([code])).iloc[0] == "第9–17位组织机构代码校验码不正确"


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


@given(st.integers(min_value=0, max_value=99_999_999))
def test_generated_codes_are_valid(serial):
    assert is_valid_uscc(make_uscc(serial))


@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17))
def test_vectorised_check_agrees_with_scalar(first17):
    code = first17 + uscc_check_char(first17)
    reason = uscc_problems(pd.Series([code])).iloc[0]
    assert reason in ("", "第9–17位组织机构代码校验码不正确")
