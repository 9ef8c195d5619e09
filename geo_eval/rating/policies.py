"""Differentiated-policy lists (差别化政策清单): which enterprises an agency applies each measure to.

A scheme's ``[[policies]]`` (:class:`~geo_eval.rating.scheme.Policy`) give each measure a value per
class. :func:`policy_rows` gives one row per enterprise and measure whose class has a value in that
measure: a class the measure leaves out (T unless the measure names it) gets no row. Pure: frames in,
frames out; ``geo_eval.io.writers`` writes the rows as ``policies.csv`` and one sheet per agency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo_eval.inputs.keys import arrow_values, to_objects
from geo_eval.rating.scheme import POLICY_CLASSES, Policy

__all__ = ["ENTERPRISE_COLUMNS", "POLICY_COLUMNS", "policy_counts", "policy_rows"]

ENTERPRISE_COLUMNS = ("uscc", "name", "county", "park", "grade")
"""What a row takes from its enterprise."""
POLICY_COLUMNS = (*ENTERPRISE_COLUMNS, "measure", "label", "value", "unit", "agency", "basis")
"""The columns of ``policies.csv``, in order."""


def policy_rows(enterprises: pd.DataFrame, policies: Sequence[Policy]) -> pd.DataFrame:
    """One row per enterprise and measure whose class (``grade``) has a value in the measure.

    ``enterprises`` has the columns ``uscc`` (or an index named ``uscc``), ``name``, ``county``, ``park``
    and ``grade``, as ``enterprises.csv``. The rows are ordered by measure key, then county, park
    (enterprises without a park last) and USCC, texts in code-point order; ``value`` holds the scheme's
    number or text as given (an ``object`` column).

    >>> from geo_eval.rating.scheme import Policy
    >>> p = Policy(key="power", label="电价加价", agency="供电公司", unit="元/千瓦时",
    ...            values={"C": 0.05, "D": 0.1}, basis="模板值，须由本市核定")
    >>> e = pd.DataFrame({"uscc": ["2", "1", "3"], "name": ["乙", "甲", "丙"], "county": "海滨区",
    ...                   "park": "园", "grade": ["D", "C", "A"]})
    >>> policy_rows(e, [p])[["uscc", "grade", "measure", "value"]]
      uscc grade measure value
    0    1     C   power  0.05
    1    2     D   power   0.1
    """
    e = enterprises if "uscc" in enterprises.columns else enterprises.reset_index()
    cols = {c: to_objects(e[c], None) for c in ENTERPRISE_COLUMNS}
    order = _order(e)
    codes = pd.Categorical(cols["grade"], categories=POLICY_CLASSES).codes[order]  # -1: no class
    measures = sorted(policies, key=lambda p: p.key)
    picks = [_pick(codes, order, p) for p in measures]
    counts = [len(pos) for pos, _ in picks]
    pos = np.concatenate([np.zeros(0, dtype=np.int64), *(pos for pos, _ in picks)])
    out = {c: cols[c][pos] for c in ENTERPRISE_COLUMNS}
    for column in ("measure", "label", "unit", "agency", "basis"):
        attribute = "key" if column == "measure" else column
        out[column] = np.repeat(np.array([getattr(p, attribute) for p in measures], dtype=object), counts)
    out["value"] = np.concatenate([np.zeros(0, dtype=object), *(values for _, values in picks)])
    return pd.DataFrame({c: pd.Series(out[c], dtype=object) for c in POLICY_COLUMNS})


def _pick(codes: np.ndarray, order: np.ndarray, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """The enterprises (positions, in ``order``) whose class has a value in ``policy``, and that value.
    ``codes``: each enterprise's class as its position in :data:`POLICY_CLASSES` (-1: none), in ``order``."""
    value_of = np.empty(len(POLICY_CLASSES), dtype=object)
    for g, v in policy.values.items():
        value_of[POLICY_CLASSES.index(g)] = v
    hit = np.isin(codes, [POLICY_CLASSES.index(g) for g in policy.values])
    return order[hit], value_of[codes[hit]]


def _order(e: pd.DataFrame) -> np.ndarray:
    """Positions of the enterprises by county, park (missing last) and USCC, in code-point order (UTF-8
    bytes compare as code points), sorted once in Arrow."""
    keys = ("county", "park", "uscc")
    try:
        table = pa.table({k: pa.array(arrow_values(e[k])).cast(pa.large_string()) for k in keys})
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # not text: as pandas sorts
        frame = e[list(keys)].reset_index(drop=True)
        return frame.sort_values(list(keys), kind="stable", na_position="last").index.to_numpy(dtype=np.int64)
    order = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_end") for k in keys])
    return np.asarray(order.to_numpy(), dtype=np.int64)


def policy_counts(rows: pd.DataFrame, policies: Sequence[Policy]) -> dict[str, object]:
    """The manifest's ``policies``: rows per measure and per agency (every measure and agency of the
    scheme, in its order, 0 included), the agencies in order and the measures with template values."""
    by_measure = rows["measure"].value_counts()
    by_agency = rows["agency"].value_counts()
    agencies = list(dict.fromkeys(p.agency for p in policies))
    return {
        "enabled": True,
        "file": "policies.csv",
        "rows": len(rows),
        "agencies": agencies,
        "by_measure": {p.key: int(by_measure.get(p.key, 0)) for p in policies},
        "by_agency": {a: int(by_agency.get(a, 0)) for a in agencies},
        "template_values": [p.key for p in policies if p.is_template],
    }
