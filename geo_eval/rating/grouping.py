"""Vectorised helpers for grouped text (no Python call per group)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def join_groups(keys: pd.Series, values: pd.Series, sep: str) -> pd.Series:
    """``sep``-joined ``values`` per key, in the order they appear, indexed by the sorted keys.

    >>> join_groups(pd.Series(["b", "a", "b"]), pd.Series(["x", "y", "z"]), ";").to_dict()
    {'a': 'y', 'b': 'x;z'}
    """
    if len(keys) == 0:
        return pd.Series(dtype=object)
    codes, uniques = pd.factorize(keys, sort=True)
    order = np.argsort(codes, kind="stable")
    c = codes[order]
    v = values.astype(str).to_numpy(dtype=object)[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    sizes = np.diff(np.r_[starts, len(c)])
    out = v[starts].copy()
    multi = sizes > 1
    if multi.any():
        # Append the separator to every member but each group's last, then concatenate per group.
        last = np.r_[starts[1:] - 1, len(c) - 1]
        w = v + sep
        w[last] = v[last]
        out[multi] = np.add.reduceat(w, starts)[multi]
    return pd.Series(out, index=pd.Index(uniques)[c[starts]], dtype=object)
