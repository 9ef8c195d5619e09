"""A loaded input table, before validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class HeaderNote:
    """A problem with a header found while reading (reported by the validation)."""

    header: str
    severity: str
    code: str
    problem: str
    action: str


@dataclass
class Table:
    """An input table with canonical column names."""

    name: str  # parcels, enterprises, leases
    file: str  # as shown to users
    frame: pd.DataFrame  # canonical columns + source_row
    headers: dict[str, str] = field(default_factory=dict)  # canonical -> original header
    factors: dict[str, float] = field(default_factory=dict)  # canonical -> unit factor
    unknown: list[str] = field(default_factory=list)  # headers not in the contract
    unit_notes: dict[str, str] = field(default_factory=dict)  # canonical -> "元 → 万元 ×0.0001"
    header_notes: list[HeaderNote] = field(default_factory=list)  # e.g. Shapefile names cut to 10 bytes


def arrow_strings(s: pd.Series) -> pa.Array:
    """The text cells of ``s`` as one Arrow string array (zero-copy when already Arrow-backed)."""
    arr = pa.array(s.array)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def arrow_mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as a numpy mask, nulls as ``False``."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def ascii_matrix(arr: pa.Array, width: int) -> np.ndarray:
    """Strings of exactly ``width`` ASCII characters (no nulls) as an ``(n, width)`` byte matrix."""
    if not len(arr):
        return np.empty((0, width), dtype=np.uint8)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if pa.types.is_large_string(arr.type) else np.int32)
    offsets = offsets[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(-1, width)
