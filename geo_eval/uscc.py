"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

An 18-character code over the alphabet ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (no I, O, Z, S, V).
The 18th character is a check character over positions 1–17::

    weights = 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
    check   = (31 - Σ value_i × weight_i mod 31) mod 31

Positions 9–17 are the organisation code (GB 11714) with its own check character at position 17.
GB 11714 values characters on its own scale (digits as themselves, ``A`` = 10 … ``Z`` = 35)::

    weights = 3 7 9 10 5 8 4 2   (positions 9–16)
    check   = 11 - Σ mod 11;  10 → "X", 11 → "0"

Real registries hold a few codes that fail these checks: callers warn and keep the row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

__all__ = [
    "ALPHABET",
    "is_valid_uscc",
    "normalize_uscc",
    "org_code_check_char",
    "uscc_check_char",
    "uscc_problems",
]


def normalize_uscc(values: pd.Series) -> pd.Series:
    """Strip blanks and full-width characters and upper-case the codes; keep missing as ``<NA>``."""
    s = values.astype("string").str.strip().str.upper()
    # Full-width ASCII (Ａ-Ｚ, ０-９) is common in hand-typed spreadsheets.
    s = s.str.translate({cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)})
    s = s.str.replace(r"\s+", "", regex=True)
    return s.mask(s == "", pd.NA)


def uscc_check_char(first17: str) -> str:
    """Check character (position 18) for the first 17 characters of a USCC.

    >>> uscc_check_char("91320700MA1XXXXX1"[:17]) in ALPHABET
    True
    """
    if len(first17) != 17 or any(c not in _VALUE for c in first17):
        raise ValueError(f"not 17 USCC characters: {first17!r}")
    total = sum(_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """GB 11714 check character for the 8 body characters of an organisation code."""
    if len(first8) != 8 or any(c not in _VALUE for c in first8):
        raise ValueError(f"not 8 organisation-code characters: {first8!r}")
    total = sum(_org_value(c) * w for c, w in zip(first8, ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def _org_value(c: str) -> int:
    """GB 11714 character value: 0–9 as themselves, A = 10 … Z = 35."""
    return int(c, 36)


def is_valid_uscc(code: str) -> bool:
    """True when ``code`` has 18 valid characters and both check characters hold."""
    return uscc_problems(pd.Series([code])).iloc[0] == ""


def uscc_problems(codes: pd.Series) -> pd.Series:
    """Vectorised check of USCCs: an empty string where the code is valid, else a Chinese reason.

    Missing codes give ``"缺少统一社会信用代码"``. The result is aligned to ``codes``' index.
    """
    s = codes.astype("string")
    out = pd.Series("", index=codes.index, dtype=object)
    missing = s.isna().to_numpy()
    filled = s.fillna("").to_numpy(dtype=object)
    lengths = np.fromiter((len(x) for x in filled), dtype=np.int64, count=len(filled))
    bad_len = (lengths != 18) & ~missing
    ok_len = lengths == 18
    if ok_len.any():
        joined = "".join(filled[ok_len]).encode("ascii", errors="replace")
        raw = np.frombuffer(joined, dtype=np.uint8).reshape(-1, 18)
        lut = np.full(256, -1, dtype=np.int64)
        for c, v in _VALUE.items():
            lut[ord(c)] = v
        vals = lut[raw]
        bad_char = (vals < 0).any(axis=1)
        vv: np.ndarray = np.where(vals < 0, 0, vals)
        total = (vv[:, :17] * np.array(USCC_WEIGHTS)).sum(axis=1)
        expect = (31 - total % 31) % 31
        bad_check = ~bad_char & (expect != vv[:, 17])
        # GB 11714 values: digits as themselves, letters A = 10 … Z = 35 (ASCII − 55).
        body = raw[:, 8:16].astype(np.int64)
        org_vals = np.where(body >= 65, body - 55, body - 48)
        org_total = (org_vals * np.array(ORG_WEIGHTS)).sum(axis=1)
        org_expect = 11 - org_total % 11
        # check character: 10 → "X", 11 → "0", else the digit itself (as our alphabet values)
        org_char_value = np.where(org_expect == 11, 0, np.where(org_expect == 10, _VALUE["X"], org_expect))
        bad_org = ~bad_char & ~bad_check & (org_char_value != vv[:, 16])
        reasons = np.full(len(vals), "", dtype=object)
        reasons[bad_char] = "含有不允许的字符（不能含 I、O、Z、S、V 或标点）"
        reasons[bad_check] = "第18位校验码不正确"
        reasons[bad_org] = "第9–17位组织机构代码校验码不正确"
        out.iloc[np.flatnonzero(ok_len)] = reasons  # type: ignore[call-overload]
    out.iloc[np.flatnonzero(bad_len)] = "长度不是18位"
    out.iloc[np.flatnonzero(missing)] = "缺少统一社会信用代码"
    return out
