"""A second implementation of the USCC check characters, written from the standard for the tests.

统一社会信用代码 (GB 32100-2015), as the domain reference (domain.md §8) states it: 18 characters over
``0123456789ABCDEFGHJKLMNPQRTUWXY`` (no I, O, Z, S, V), valued 0–30 in that order. Position 18 is the check
character: with the weights ``1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28`` on positions 1–17 (3^(i−1)
mod 31), index = (31 − Σ mod 31) mod 31. Positions 9–17 are the organisation code (GB 11714) with its own
check at position 17: weights ``3 7 9 10 5 8 4 2`` on positions 9–16, digits valued 0–9 and letters A = 10 …
Z = 35, c = 11 − Σ mod 11, written as a digit, ``X`` for 10 and ``0`` for 11.

Nothing here comes from geo_eval: the tests compare geo_eval.inputs.uscc with this, and build their codes with it.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def check_character(first17: str) -> str:
    """Position 18 for the first 17 characters."""
    total = sum(ALPHABET.index(ch) * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def org_check_character(body8: str) -> str:
    """Position 17 (the GB 11714 check) for positions 9–16."""
    total = sum(
        (int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10) * w for ch, w in zip(body8, ORG_WEIGHTS, strict=True)
    )
    c = 11 - total % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def make_uscc(serial: int, region: str = "320700") -> str:
    """A valid USCC (both check characters hold) for a serial number: 91 (enterprise), the region, the serial
    as an 8-digit organisation code body with its check, and the check character."""
    body = f"{serial:08d}"
    first17 = "91" + region + body + org_check_character(body)
    return first17 + check_character(first17)
