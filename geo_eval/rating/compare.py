"""Year over year: how each enterprise's class changed between two runs (the class transition matrix).

>>> cur = pd.DataFrame({"uscc": ["a", "b", "c"], "name": ["甲", "乙", "丙"], "county": "x", "park": "p", "grade": ["A", "C", "B"]})
>>> prev = pd.DataFrame({"uscc": ["a", "b", "d"], "name": ["甲", "乙", "丁"], "county": "x", "park": "p", "grade": ["B", "C", "D"]})
>>> t = transitions(cur, prev)
>>> t.matrix["B"]["A"], t.matrix["C"]["C"], t.matrix["new"]["B"], t.matrix["D"]["gone"]
(1, 1, 1, 1)
>>> t.changed[["uscc", "previous_grade", "grade"]].values.tolist()
[['a', 'B', 'A'], ['c', None, 'B'], ['d', 'D', None]]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

GRADES: tuple[str, ...] = ("A", "B", "C", "D", "T")
NEW = "new"
"""Outer key for enterprises not evaluated last year."""
GONE = "gone"
"""Inner key for enterprises evaluated last year but not this year."""
CHANGED_COLUMNS: tuple[str, ...] = ("uscc", "name", "county", "park", "previous_grade", "grade")


@dataclass(frozen=True)
class Transitions:
    """``matrix[last year's class or "new"][this year's class or "gone"]`` = enterprises; ``changed``: those
    whose class differs (new and gone ones included), by county, park and USCC."""

    matrix: dict[str, dict[str, int]]
    changed: pd.DataFrame


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    cols = ["uscc", "name", "county", "park", "grade"]
    out = pd.DataFrame({c: frame[c].astype(object) if c in frame.columns else None for c in cols})
    out["uscc"] = out["uscc"].astype(str)
    out["grade"] = out["grade"].where(out["grade"].isin(GRADES), "T")
    return out.drop_duplicates("uscc").set_index("uscc")


def transitions(current: pd.DataFrame, previous: pd.DataFrame, *, parks: Iterable[str] | None = None) -> Transitions:
    """Compare this year's ``enterprises.csv`` rows with last year's (``uscc``, ``name``, ``county``, ``park``,
    ``grade``). With ``parks``: the enterprises of these parks this year, and for those gone, last year."""
    cur, prev = _keyed(current), _keyed(previous)
    both = cur.merge(prev, how="outer", left_index=True, right_index=True, suffixes=("", "_prev"))
    here = both["grade"].notna()
    for c in ("name", "county", "park"):
        both[c] = both[c].where(here, both[f"{c}_prev"])
    if parks is not None:
        both = both.loc[both["park"].isin(set(parks))]
    before = both["grade_prev"].fillna(NEW)
    after = both["grade"].fillna(GONE)
    seen: dict[tuple[str, str], int] = {}
    for pair in zip(before.astype(str), after.astype(str), strict=True):
        seen[pair] = seen.get(pair, 0) + 1
    matrix = {b: {a: seen.get((b, a), 0) for a in (*GRADES, GONE)} for b in (*GRADES, NEW)}
    matrix[NEW][GONE] = 0
    differs = before != after
    changed = both.loc[differs].reset_index()
    changed = pd.DataFrame(
        {
            "uscc": changed["uscc"],
            "name": changed["name"],
            "county": changed["county"],
            "park": changed["park"],
            "previous_grade": changed["grade_prev"].astype(object).where(changed["grade_prev"].notna(), None),
            "grade": changed["grade"].astype(object).where(changed["grade"].notna(), None),
        }
    )
    changed = changed.sort_values(["county", "park", "uscc"], kind="stable").reset_index(drop=True)
    return Transitions(matrix, changed[list(CHANGED_COLUMNS)])
