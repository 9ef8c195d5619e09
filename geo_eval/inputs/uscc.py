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
import pyarrow as pa
import pyarrow.compute as pc

from geo_eval.inputs.table import arrow_mask, arrow_strings, ascii_matrix

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

__all__ = [
    "ALPHABET",
    "USCC_REASONS",
    "is_valid_uscc",
    "normalize_uscc",
    "org_code_check_char",
    "uscc_check_char",
    "uscc_problem_kinds",
    "uscc_problems",
]


def normalize_uscc(values: pd.Series) -> pd.Series:
    """Strip blanks and full-width characters and upper-case the codes; keep missing as ``<NA>``."""
    s = values.astype("string").str.strip().str.upper()
    # Only codes with something besides ASCII letters and digits can change below: the rest skip Python.
    arr = arrow_strings(s)
    other = ~(arrow_mask(pc.string_is_ascii(arr)) & arrow_mask(pc.ascii_is_alnum(arr))) & arrow_mask(pc.is_valid(arr))
    if other.any():
        s = s.copy()
        s.iloc[other] = _fold(s.iloc[other])
    return s.mask(s == "", pd.NA)


def _fold(s: pd.Series) -> pd.Series:
    # Full-width ASCII (Ａ-Ｚ, ０-９) is common in hand-typed spreadsheets.
    s = s.str.translate({cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)})
    return s.str.replace(r"\s+", "", regex=True)


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
    reasons = np.array(USCC_REASONS, dtype=object)
    return pd.Series(reasons[uscc_problem_kinds(codes)], index=codes.index, dtype=object)


USCC_REASONS = (
    "",
    "含有不允许的字符（不能含 I、O、Z、S、V 或标点）",
    "第18位校验码不正确",
    "第9–17位组织机构代码校验码不正确",
    "长度不是18位",
    "缺少统一社会信用代码",
)
"""What :func:`uscc_problem_kinds` numbers mean (0: valid)."""


def uscc_problem_kinds(codes: pd.Series) -> np.ndarray:
    """:func:`uscc_problems` as small integers indexing :data:`USCC_REASONS` (0 where valid)."""
    s = codes.astype("string")
    arr = arrow_strings(s)
    missing = ~arrow_mask(pc.is_valid(arr))
    lengths = np.asarray(pc.fill_null(pc.utf8_length(arr), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    bad_len = (lengths != 18) & ~missing
    ok_len = (lengths == 18) & ~missing
    out = np.zeros(len(arr), dtype=np.int8)
    if ok_len.any():
        raw = _code_bytes(arr.filter(pa.array(ok_len)))
        # Alphabet value of each character, -1 when not allowed. int16 holds every sum below
        # (at most 17 × 30 × 30 and 8 × 35 × 10).
        vals = _LUT[raw]
        bad_char = (vals < 0).any(axis=1)
        vv = np.maximum(vals, 0)
        total = vv[:, :17] @ np.array(USCC_WEIGHTS, dtype=np.int16)
        expect = (31 - total % 31) % 31
        bad_check = ~bad_char & (expect != vv[:, 17])
        # GB 11714 values: digits as themselves, letters A = 10 … Z = 35 (ASCII − 55).
        body = raw[:, 8:16].astype(np.int16)
        org_vals = np.where(body >= 65, body - 55, body - 48)
        org_total = org_vals @ np.array(ORG_WEIGHTS, dtype=np.int16)
        org_expect = 11 - org_total % 11
        # check character: 10 → "X", 11 → "0", else the digit itself (as our alphabet values)
        org_char_value = np.where(org_expect == 11, 0, np.where(org_expect == 10, _VALUE["X"], org_expect))
        bad_org = ~bad_char & ~bad_check & (org_char_value != vv[:, 16])
        kinds = np.zeros(len(vals), dtype=np.int8)
        kinds[bad_char] = 1
        kinds[bad_check] = 2
        kinds[bad_org] = 3
        out[ok_len] = kinds
    out[bad_len] = 4
    out[missing] = 5
    return out


_LUT = np.full(256, -1, dtype=np.int16)
for _c, _v in _VALUE.items():
    _LUT[ord(_c)] = _v


def _code_bytes(codes: pa.Array) -> np.ndarray:
    """18-character codes as an ``(n, 18)`` byte matrix, each non-ASCII character as ``?``."""
    raw = np.empty((len(codes), 18), dtype=np.uint8)
    ascii_ = arrow_mask(pc.string_is_ascii(codes))
    if ascii_.any():
        raw[ascii_] = ascii_matrix(codes.filter(pa.array(ascii_)), 18)
    if not ascii_.all():
        other = codes.filter(pa.array(~ascii_)).to_pylist()
        joined = "".join(other).encode("ascii", errors="replace")
        raw[~ascii_] = np.frombuffer(joined, dtype=np.uint8).reshape(-1, 18)
    return raw
