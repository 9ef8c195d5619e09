"""Identifier lookups by position: the hash joins of the evaluation, done once each in Arrow.

USCCs and parcel codes are strings; at a million parcels, pandas lookups on string indexes
(``map``, ``reindex``, ``isin``, ``get_indexer``, ``groupby``) hash the keys again at every call and
dominate the run time. The evaluation instead finds each key's position once (:func:`positions`) and
carries integer positions through land, scoring and the parcel figures; orderings that break ties by
an identifier use its rank in code-point order (:func:`string_rank`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["arrow_values", "positions", "reindex", "string_rank", "take", "to_objects"]


def arrow_values(s: pd.Series | pd.Index) -> pa.Array | pa.ChunkedArray:
    """``s``'s values as Arrow (missing as null), without the Series (whose index pyarrow would probe)."""
    values = s.array if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) else s.to_numpy()
    return pa.array(values, from_pandas=True)


def positions(index: pd.Index, keys: pd.Series | pd.Index) -> np.ndarray:
    """Position in ``index`` of every key, -1 where absent or missing (``index.get_indexer``).

    ``index`` must be unique. Hashed once in Arrow for text keys.

    >>> positions(pd.Index(["a", "b", "c"]), pd.Series(["c", None, "a", "x"])).tolist()
    [2, -1, 0, -1]
    """
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    try:
        values, wanted = arrow_values(index), arrow_values(keys)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            values, wanted = values.cast(pa.large_string()), wanted.cast(pa.large_string())
        found = pc.index_in(wanted, value_set=values)
        return np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int64)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pos = np.asarray(index.get_indexer(pd.Index(keys)), dtype=np.int64)
        return np.where(pd.isna(np.asarray(keys, dtype=object)), -1, pos)


def string_rank(values: pd.Series | pd.Index) -> np.ndarray:
    """Rank of each value in ascending code-point order (0 = smallest; missing values last; equal values
    get consecutive ranks in their order of appearance). Used as an integer tie-breaker.

    >>> string_rank(pd.Index(["b", "a", None, "c"])).tolist()
    [1, 0, 3, 2]
    """
    order = np.asarray(
        pc.array_sort_indices(arrow_values(values), order="ascending", null_placement="at_end").to_numpy(),
        dtype=np.int64,
    )
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank


def take(values: np.ndarray, pos: np.ndarray, fill: object = np.nan) -> np.ndarray:
    """``values[pos]`` with ``fill`` where ``pos`` is -1 (non-float values become objects then).

    >>> take(np.array([1.0, 2.0]), np.array([1, -1])).tolist()
    [2.0, nan]
    """
    if len(values) == 0:
        return np.full(len(pos), fill, dtype=object)
    out = values[np.maximum(pos, 0)]
    missing = pos < 0
    if missing.any():
        if out.dtype.kind not in "fO":
            out = out.astype(object)
        out[missing] = fill
    return out


_SAMPLE = 4096


def to_objects(s: pd.Series | pd.Index, na_value: object = np.nan) -> np.ndarray:
    """Text as a NumPy object array, missing values as ``na_value``.

    Arrow-backed text with few distinct values (counties, parks, land uses) goes through a dictionary,
    so each distinct string becomes one Python object (about 5× faster than element by element).

    >>> to_objects(pd.Series(["甲", None, "甲"], dtype="string[pyarrow]")).tolist()
    ['甲', nan, '甲']
    """
    if not (isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow") or len(s) <= _SAMPLE:
        return s.to_numpy(dtype=object, na_value=na_value)  # type: ignore[call-overload]
    arr = arrow_values(s)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pc.count_distinct(arr.slice(0, _SAMPLE)).as_py() > _SAMPLE // 4:
        return s.to_numpy(dtype=object, na_value=na_value)  # type: ignore[call-overload]
    enc = arr.dictionary_encode()
    words = np.array([*enc.dictionary.to_pylist(), na_value], dtype=object)
    idx = np.asarray(pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy(), dtype=np.int64)
    return words[idx]


def reindex(s: pd.Series, index: pd.Index) -> pd.Series:
    """``s.reindex(index)`` (missing labels give NaN), with the lookup hashed in Arrow."""
    if s.index.equals(index):
        return s
    if len(s) == 0 or not s.index.is_unique:
        return s.reindex(index)
    pos = positions(s.index, index)
    found = pos >= 0
    out = s.iloc[np.where(found, pos, 0)].set_axis(index)
    return out if found.all() else out.where(found)
