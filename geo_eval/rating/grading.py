"""Grades A/B/C/D and ranks within each ranking unit and group, then veto rules.

Percentile grading: sort by score (high first, USCC breaking ties for a stable order); position
``p`` of ``n`` gets A when ``p ≤ round(n × share_A)``, B when ``p ≤ round(n × share_B)``, C when
``p ≤ round(n × share_C)``, else D, where ``round`` is the scheme's rounding (floor, ceil, half up).
Enterprises with equal scores across a cut all get the better grade (``ties = "up"``), the worse
(``"down"``), or are split by the stable order (``"order"``). At the C/D cut, ``ties_at_d = "down"``
(the default) puts the whole tie in D: the bottom share is counted from the bottom, so an enterprise
scoring the same as one in it is in it too (many enterprises tied at 0 all get D).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo_eval.inputs.keys import reindex, string_rank
from geo_eval.rating.scheme import GRADES, Grading, Scheme

_EPS = 1e-9


def cut_count(n: int | np.ndarray, share: float, rounding: str) -> np.ndarray:
    """Number of enterprises inside a cumulative share.

    >>> int(cut_count(265, 0.20, "floor")), int(cut_count(265, 0.20, "ceil"))
    (53, 53)
    >>> int(cut_count(22, 0.20, "floor")), int(cut_count(22, 0.20, "half_up")), int(cut_count(22, 0.20, "ceil"))
    (4, 4, 5)
    """
    x = np.asarray(n, dtype=float) * share
    if rounding == "floor":
        return np.floor(x + _EPS).astype(np.int64)
    if rounding == "ceil":
        return np.ceil(x - _EPS).astype(np.int64)
    return np.floor(x + 0.5 + _EPS).astype(np.int64)


def grades_by_percentile(score: pd.Series, keys: pd.DataFrame, grading: Grading) -> pd.Series:
    """Grades from score positions within each group of ``keys`` (e.g. county and group).

    Within a group the order is score (high first), then USCC (the index); a missing key is a group
    of its own.
    """
    n = len(score)
    if n == 0:
        return pd.Series([], index=score.index, dtype=object)
    cell = _cells(keys)
    s = score.to_numpy(dtype=float)
    order = np.lexsort((string_rank(score.index), -s, cell))
    c = cell[order]
    s_sorted = s[order]
    new_cell = np.r_[True, c[1:] != c[:-1]]
    at = np.arange(n)
    pos = at - np.maximum.accumulate(np.where(new_cell, at, 0)) + 1
    size = np.bincount(cell)[c]
    idx = np.full(n, 3, dtype=np.int64)  # D
    for i, share in reversed(list(enumerate((grading.shares["A"], grading.shares["B"], grading.shares["C"])))):
        idx = np.where(pos <= cut_count(size, share, grading.rounding), i, idx)
    # runs of equal scores within a group: the tie rules
    starts_run = new_cell | np.r_[True, s_sorted[1:] != s_sorted[:-1]]
    run_start = np.flatnonzero(starts_run)
    run = np.cumsum(starts_run) - 1
    worst = np.maximum.reduceat(idx, run_start)[run]
    grade_idx = idx
    if grading.ties == "up":
        grade_idx = np.minimum.reduceat(idx, run_start)[run]
    elif grading.ties == "down":
        grade_idx = worst
    if grading.ties_at_d == "down":
        grade_idx = np.where(worst != 3, grade_idx, 3)
    out = np.empty(n, dtype=object)
    out[order] = np.array(GRADES, dtype=object)[grade_idx]
    return pd.Series(out, index=score.index)


def _cells(keys: pd.DataFrame) -> np.ndarray:
    """One integer per distinct combination of the ``keys`` columns (missing values included)."""
    cell = np.zeros(len(keys), dtype=np.int64)
    for col in keys.columns:
        codes, uniques = pd.factorize(keys[col], use_na_sentinel=False)
        cell = cell * (len(uniques) + 1) + codes
    return np.unique(cell, return_inverse=True)[1].astype(np.int64)


def grades_by_threshold(score: pd.Series, grading: Grading) -> pd.Series:
    """Grades from minimum scores for A, B and C; the rest is D."""
    t = grading.thresholds
    out = np.where(score >= t["A"], "A", np.where(score >= t["B"], "B", np.where(score >= t["C"], "C", "D")))
    return pd.Series(out, index=score.index)


def ranks(score: pd.Series, keys: pd.DataFrame) -> pd.Series:
    """Competition rank (1, 2, 2, 4) of ``score`` within each group of ``keys``, best first."""
    return score.groupby([keys[c] for c in keys.columns]).rank(method="min", ascending=False).astype("Int64")


def apply_vetoes(grade: pd.Series, data: pd.DataFrame, scheme: Scheme) -> tuple[pd.Series, pd.Series]:
    """Grades after the scheme's veto rules, and the veto notes (``""`` where none applied).

    ``set`` replaces the grade; ``cap`` lowers it to the given grade when it is better.
    """
    out = grade.to_numpy(dtype=object).copy()
    notes = np.full(len(grade), "", dtype=object)
    order = {g: i for i, g in enumerate(GRADES)}
    for v in scheme.vetoes:
        if v.field not in data:
            continue
        hit = reindex(data[v.field], grade.index).to_numpy(dtype=bool, na_value=False)
        if v.mode == "set":
            out[hit] = v.grade
        else:
            current = pd.Series(out, dtype=object).map(order).to_numpy(dtype=float)
            out[hit & (current < order[v.grade])] = v.grade
        label = v.label or f"{v.field} → {v.grade}"
        notes[hit] = np.where(notes[hit] == "", label, notes[hit] + "；" + label)
    return pd.Series(out, index=grade.index), pd.Series(notes, index=grade.index)


def grade(score: pd.Series, keys: pd.DataFrame, scheme: Scheme) -> pd.Series:
    """Grades before vetoes, by the scheme's grading method."""
    if scheme.grading.method == "percentile":
        return grades_by_percentile(score, keys, scheme.grading)
    return grades_by_threshold(score, scheme.grading)
