"""The differentiated-policy lists as people read them: one sheet per agency, Chinese headers.

``rankings.xlsx`` carries one sheet per agency of the scheme's ``[[policies]]`` (named
:data:`~geo_eval.rating.scheme.POLICY_SHEET_PREFIX` + the agency, e.g. ``差别化政策·供电公司``), and the
service's download for an agency is the same sheet. Pure: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from geo_eval.rating.scheme import POLICY_SHEET_PREFIX
from geo_eval.report.labels import headers

POLICY_SHEET_COLUMNS: tuple[str, ...] = (
    "uscc",
    "name",
    "county",
    "park",
    "grade",
    "label",
    "value",
    "unit",
    "agency",
    "basis",
)
"""The columns of an agency's sheet: ``policies.csv`` without the measure code."""
POLICY_HEADERS: dict[str, str] = headers(POLICY_SHEET_COLUMNS, "policies")
"""Those columns with their Chinese headers."""


def policy_sheet_name(agency: str) -> str:
    """The sheet of ``agency`` (the scheme keeps agency names valid and short enough for Excel).

    >>> policy_sheet_name("供电公司")
    '差别化政策·供电公司'
    """
    return POLICY_SHEET_PREFIX + agency


def policy_sheet(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``policies.csv`` (one agency's) under their Chinese headers, in their order."""
    return rows[list(POLICY_HEADERS)].rename(columns=POLICY_HEADERS).reset_index(drop=True)


def policy_sheets(rows: pd.DataFrame, agencies: Iterable[str]) -> dict[str, pd.DataFrame]:
    """One sheet per agency, in the order given (the scheme's): an agency without rows gets its
    sheet with the header only."""
    by_agency = dict(iter(rows.groupby("agency", sort=False))) if len(rows) else {}
    empty = rows.iloc[:0]
    return {policy_sheet_name(a): policy_sheet(by_agency.get(a, empty)) for a in agencies}
