"""The exceptions report: every input problem with file, row, field, value and what was done.

Checks add whole batches of rows at once (no Python loop per row); :meth:`Problems.frame` gives the
report in a stable order.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

FATAL = "致命"
"""Stops the run (exit code 2)."""
WARNING = "警告"
"""Reported; the row is kept and the action says how it was treated."""
INFO = "提示"
"""Reported for the record (e.g. a value derived or converted)."""

COLUMNS = ["file", "row", "field", "value", "problem", "severity", "action", "code", "key"]
"""The report's columns; ``key`` names the record a row is about (the USCC, the parcel code, or for a
lease the lessee's USCC and the parcel code joined by ``/``), empty for a whole file or column."""
KEY_SEPARATOR = "/"
_SEVERITY_ORDER = {FATAL: 0, WARNING: 1, INFO: 2}


class Problems:
    """A growing collection of problems found in the inputs."""

    def __init__(self) -> None:
        self._frames: list[pd.DataFrame] = []
        self._keys: dict[str, _RowKeys] = {}

    def set_keys(self, file: str, rows: np.ndarray, *keys: pd.Series) -> None:
        """The record keys of ``file``'s rows (source row numbers ``rows``), for the ``key`` column.

        Several key series (a lease: lessee USCC, parcel code) are joined by :data:`KEY_SEPARATOR`.
        """
        if file in self._keys:  # two tables under one name: which one a row is in is unknown
            self._keys[file] = _RowKeys(np.zeros(0, dtype=np.int64), ())
            return
        self._keys[file] = _RowKeys(np.asarray(rows, dtype=np.int64), keys)

    def add(
        self,
        *,
        file: str,
        rows: Iterable[object] | pd.Series | np.ndarray,
        field: str,
        values: Iterable[object] | pd.Series | np.ndarray | None = None,
        problem: str | pd.Series,
        severity: str,
        action: str,
        code: str,
    ) -> None:
        """Record one problem for each of ``rows`` (source row numbers; ``""`` for the whole file)."""
        rows_arr = np.asarray(list(rows) if not isinstance(rows, (pd.Series, np.ndarray)) else rows, dtype=object)
        n = len(rows_arr)
        if n == 0:
            return
        texts: list[str] | np.ndarray
        if values is None:
            texts = [""] * n
        elif isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
            # Text cells as they are, missing ones empty: what _text gives, without a loop per row.
            texts = values.to_numpy(dtype=object, na_value="")
        else:
            vals = np.asarray(list(values) if not isinstance(values, (pd.Series, np.ndarray)) else values, dtype=object)
            texts = [_text(v) for v in vals]
        prob = problem.to_numpy(dtype=object) if isinstance(problem, pd.Series) else problem
        frame = pd.DataFrame(
            {
                "file": file,
                "row": rows_arr,
                "field": field,
                "value": texts,
                "problem": prob,
                "severity": severity,
                "action": action,
                "code": code,
                "key": "",
            },
            columns=COLUMNS,
        )
        self._frames.append(frame)

    def extend(self, other: Problems) -> None:
        """Add every problem of ``other``."""
        self._frames.extend(other._frames)
        self._keys.update(other._keys)

    def copy(self) -> Problems:
        """A new collection with the problems recorded so far; what is added to either later stays its own."""
        out = Problems()
        out.extend(self)
        return out

    def frame(self) -> pd.DataFrame:
        """All problems, fatal first, then by file, row and field (stable)."""
        if not self._frames:
            return pd.DataFrame(columns=COLUMNS)
        df = pd.concat(self._frames, ignore_index=True)
        for file, keys in self._keys.items():
            at = (df["file"] == file).to_numpy()
            if at.any():
                df.loc[at, "key"] = keys.of(pd.to_numeric(df.loc[at, "row"], errors="coerce").to_numpy())
        df["_sev"] = df["severity"].map(_SEVERITY_ORDER)
        df["_row"] = pd.to_numeric(df["row"], errors="coerce")
        df = df.sort_values(["_sev", "file", "_row", "field", "code"], kind="mergesort", na_position="first")
        return df.drop(columns=["_sev", "_row"]).reset_index(drop=True)

    def count(self, severity: str | None = None) -> int:
        """Number of problems (of one severity)."""
        return sum(len(f) if severity is None else int((f["severity"] == severity).sum()) for f in self._frames)

    @property
    def has_fatal(self) -> bool:
        """True when any problem stops the run."""
        return self.count(FATAL) > 0


class _RowKeys:
    """The keys of a file's rows by source row number (contiguous numbers are looked up by offset)."""

    def __init__(self, rows: np.ndarray, keys: tuple[pd.Series, ...]) -> None:
        self.rows = rows
        self.keys = keys
        self.contiguous = len(rows) == 0 or int(rows[-1]) - int(rows[0]) == len(rows) - 1

    def of(self, rows: np.ndarray) -> np.ndarray:
        """The key text of each of ``rows`` (float row numbers, NaN for whole-file problems): ``""`` when unknown."""
        known = np.isfinite(rows)
        if self.contiguous and len(self.rows):
            pos = np.where(known, rows, -1).astype(np.int64) - int(self.rows[0])
        else:
            pos = pd.Index(self.rows).get_indexer(pd.Index(np.where(known, rows, -1).astype(np.int64)))
        pos = np.where(known & (pos >= 0) & (pos < len(self.rows)), pos, -1)
        hit = pos >= 0
        out = np.full(len(rows), "", dtype=object)
        if hit.any():
            parts = [k.iloc[pos[hit]].to_numpy(dtype=object, na_value="") for k in self.keys]
            joined = parts[0].astype(str)
            for p in parts[1:]:
                joined = np.char.add(np.char.add(joined, KEY_SEPARATOR), p.astype(str))
            out[hit] = joined
        return out


def _text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and np.isnan(v):
        return ""
    if v is pd.NA or v is pd.NaT:
        return ""
    return str(v)
