"""Fast csv for spreadsheets: the bytes pandas ``to_csv`` gives, built column-wise with pyarrow.

``write_csv(df, path)`` writes UTF-8 with a BOM (so Excel and WPS detect the encoding), ``\\n`` line
ends, an empty field for missing values and quotes only around fields that need them (a comma, a
double quote, a line feed or a carriage return; quotes inside are doubled). The text of every value
is what ``DataFrame.to_csv(index=False)`` writes for it:

- float64: Python's shortest round-trip ``repr`` (``0.3``, ``50.0``, ``1e-05``, ``1e+16``, ``inf``),
  never ``0.30000000000000004`` for a value that prints as ``0.3``; NaN is empty. pyarrow's
  double-to-string cast gives the same shortest digits but its own notation (``50``, ``0.00001``,
  ``1e+15``), so ``.0`` is added to integral values and the few values outside ``1e-4 <= |x| < 1e16``
  (or printed by pyarrow with an exponent) take Python's ``repr`` one by one;
- integers (also nullable ``Int64``) as digits; booleans as ``True`` / ``False``;
- strings as they are; object columns by what they hold (strings, integers, floats, booleans),
  mixed ones with ``str`` value by value;
- datetimes, timedeltas and periods as pandas formats them.

Two differences from pandas:

- a field holding a bare carriage return is quoted (pandas with ``lineterminator="\\n"`` leaves it
  bare, which splits the row in Excel);
- **formula guard** (OWASP's rule against CSV injection): a text field that a spreadsheet would read
  as a formula — one beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, after any
  leading ``'`` — gets one ``'`` in front, so Excel and WPS show it as text and never evaluate it
  (``=HYPERLINK("http://x","y")`` is written ``'=HYPERLINK("http://x","y")``). Numbers are never
  touched: a number column is written as numbers (``-3.5``), and neither is a text that is only a
  number (``-3.5``, ``+86``, ``1e-05``, ``-inf``: a spreadsheet reads it as that number, nothing more). Readers
  undo the guard with :func:`unguard`: one leading ``'`` is removed from a text that, after its
  leading ``'`` characters, begins with one of those characters (so a text that itself began with
  ``'=`` comes back intact).

Rows are assembled in slices of :data:`CHUNK_ROWS` with ``binary_join_element_wise`` (slices side
by side on up to :data:`MAX_THREADS` threads: pyarrow's kernels release the GIL) and written in
order straight from the Arrow buffers, so memory stays at a few slices of text. The output depends
only on the frame, never on the thread count.
"""

from __future__ import annotations

import csv
import io
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

BOM = b"\xef\xbb\xbf"
CHUNK_ROWS = 65_536
MAX_THREADS = 4
_NEEDS_QUOTES = r'[,"\r\n]'
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet reads as the start of a formula (OWASP, CSV injection)."""
_GUARDED = r"^'*[=+\-@\t\r]"
_UNGUARD = r"^'+[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|nan)$"
_TEXT = pa.large_string()
TEXT_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)
"""pandas' Arrow-backed strings (missing: NaN), the texts of a run read back without a Python object per row."""


def text_types(kind: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    """``types_mapper`` for ``to_pandas``: Arrow strings as :data:`TEXT_DTYPE`, other types as pandas makes them."""
    return TEXT_DTYPE if pa.types.is_string(kind) or pa.types.is_large_string(kind) else None


def _t(text: str) -> pa.Scalar:
    return pa.scalar(text, _TEXT)


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` (without its index) to ``path`` as described in the module docstring."""
    with open(path, "wb") as fh:
        write_to(df, fh)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The bytes :func:`write_csv` writes for ``df``.

    >>> csv_bytes(pd.DataFrame({"name": ["=1+1"], "x": [-3.5]}))
    b"\\xef\\xbb\\xbfname,x\\n'=1+1,-3.5\\n"
    """
    buf = io.BytesIO()
    write_to(df, buf)
    return buf.getvalue()


def write_to(df: pd.DataFrame, fh: BinaryIO) -> None:
    """Write ``df``'s csv (BOM, header, rows) to a binary file."""
    if df.shape[1] == 0:
        fh.write(BOM + df.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        return
    fh.write(BOM + header_line(df).encode("utf-8"))
    for lines in iter_rows(df):
        _write_text(fh, pc.binary_join_element_wise(lines, _t(""), _t("\n")))  # line + "\n" + ""


def header_line(df: pd.DataFrame) -> str:
    """The header row of ``df``'s csv, with its line end.

    >>> header_line(pd.DataFrame(columns=["a", "b,c"]))
    'a,"b,c"\\n'
    """
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([str(c) for c in df.columns])
    return header.getvalue()


def iter_rows(df: pd.DataFrame) -> Iterator[pa.Array]:
    """The csv text of ``df``'s rows (without line ends, as :func:`write_csv` writes them), in order, as
    large_string arrays of up to :data:`CHUNK_ROWS` rows (slices formatted side by side on threads).
    ``df`` has at least one column.

    >>> [a.to_pylist() for a in iter_rows(pd.DataFrame({"a": [1.0, None], "b": ["x,y", "z"]}))]
    [['1.0,"x,y"', ',z']]
    """
    columns = [_to_arrow(df.iloc[:, j]) for j in range(df.shape[1])]

    def rows(start: int) -> pa.Array:
        texts = [_text(c.slice(start, CHUNK_ROWS)) for c in columns]
        if len(texts) == 1:  # the csv module writes a lone empty field as "" (an empty line is no row)
            return pc.if_else(pc.fill_null(pc.equal(texts[0], ""), True), _t('""'), texts[0])
        return pc.binary_join_element_wise(*texts, _t(","), null_handling="replace", null_replacement="")

    starts = range(0, len(df), CHUNK_ROWS)
    workers = min(len(starts), os.cpu_count() or 1, MAX_THREADS)
    if workers <= 1:
        for start in starts:
            yield rows(start)
        return
    # pyarrow's kernels release the GIL: slices are formatted side by side and handed out in order.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[pa.Array]] = deque()
        for start in starts:
            pending.append(pool.submit(rows, start))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _write_text(fh: BinaryIO, arr: pa.Array) -> None:
    """Write the characters of a null-free large_string array back to back, straight from its data buffer."""
    if len(arr) == 0:
        return
    fh.write(_data(arr))


def _data(arr: pa.Array) -> memoryview:
    """The characters of a large_string array's values, back to back, without copying."""
    _, offsets_buf, data = arr.buffers()
    if data is None:
        return memoryview(b"")
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)
    begin, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    return memoryview(data)[begin:end]


# --- one column to Arrow: numbers stay numbers (formatted per slice), everything else becomes text ---


def _to_arrow(s: pd.Series) -> pa.Array:
    """``s`` as one Arrow array of float64, integers, booleans or (unquoted) text; missing as null."""
    arr = _to_arrow_any(s)
    if isinstance(arr, pa.ChunkedArray):
        if pa.types.is_string(arr.type):
            arr = arr.cast(_TEXT)
        arr = arr.combine_chunks()
    return arr


def _to_arrow_any(s: pd.Series) -> pa.Array | pa.ChunkedArray:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _to_arrow_any(pd.Series(np.asarray(s, dtype=object), copy=False))
    if dtype.kind in "iub" or (dtype.kind == "f" and getattr(dtype, "itemsize", 0) == 8):
        return _values(s)
    if dtype.kind == "f":  # float32 and float16 print their own shortest repr (0.1, not 0.10000000149011612)
        values = s.to_numpy(dtype=f"float{8 * getattr(dtype, 'itemsize', 8)}", na_value=np.nan)
        return pa.array(values.astype(str), type=_TEXT, mask=np.isnan(values))
    if isinstance(dtype, pd.StringDtype) or (
        isinstance(dtype, pd.ArrowDtype) and pa.types.is_string(dtype.pyarrow_dtype)
    ):
        return _values(s)
    if dtype.kind in "Mm" or isinstance(dtype, (pd.PeriodDtype, pd.DatetimeTZDtype)):
        return _pandas_text(s)
    if pd.api.types.is_object_dtype(dtype):
        kind = pd.api.types.infer_dtype(s, skipna=True)
        values = s.to_numpy(dtype=object)
        if kind in ("string", "empty"):
            return pa.array(values, type=_TEXT, from_pandas=True)
        if kind in ("integer", "boolean"):
            try:
                return pa.array(values, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                pass
        if kind == "floating":
            return pa.array(values, type=pa.float64(), from_pandas=True)
    return _generic_text(s)


def _values(s: pd.Series) -> pa.Array | pa.ChunkedArray:
    """``s``'s values as Arrow, missing as null (not the Series itself, whose index pyarrow would probe)."""
    return pa.array(
        s.array if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) else s.to_numpy(), from_pandas=True
    )


def _generic_text(s: pd.Series) -> pa.Array:
    """``str`` of every value, null where pandas sees a missing value (what the csv module writes)."""
    values = s.to_numpy(dtype=object)
    missing = pd.isna(s).to_numpy(dtype=bool)
    return pa.array([None if m else str(v) for v, m in zip(values, missing, strict=True)], type=_TEXT)


def _pandas_text(s: pd.Series) -> pa.Array:
    """Dates, times and periods exactly as ``to_csv`` writes them (their text never needs quotes)."""
    text = pd.DataFrame({"v": s.reset_index(drop=True)}).to_csv(index=False, header=False, lineterminator="\n")
    lines = text.split("\n")[: len(s)]
    return pa.array([None if v in ("", '""') else v for v in lines], type=_TEXT)


# --- one slice of a column to csv text ------------------------------------------------------------


def _text(arr: pa.Array) -> pa.Array:
    """The csv fields of ``arr``: quoted where needed; null stays null (written empty)."""
    t = arr.type
    if pa.types.is_floating(t):
        out = _float_text(arr.cast(pa.float64()))
    elif pa.types.is_integer(t):
        out = arr.cast(_TEXT)
    elif pa.types.is_boolean(t):
        out = pc.if_else(arr, _t("True"), _t("False"))
    elif pa.types.is_null(t):
        out = pa.nulls(len(arr), _TEXT)
    else:
        out = _quote(guard(arr.cast(_TEXT)))
    return out


def guard(text: pa.Array) -> pa.Array:
    """Text values a spreadsheet would read as a formula, with one ``'`` in front (see the module docstring).

    >>> guard(pa.array(["=1+1", "-2+3", "-3.5", "@SUM(A1)", "'=x", "x=1", "\\tx", None])).to_pylist()
    ["'=1+1", "'-2+3", '-3.5', "'@SUM(A1)", "''=x", 'x=1', "'\\tx", None]
    """
    first = pc.utf8_slice_codeunits(text, 0, 1)
    maybe = pc.fill_null(pc.is_in(first, pa.array([*FORMULA_START, "'"], type=first.type)), False)
    if not pc.any(maybe).as_py():
        return text
    number = pc.fill_null(pc.match_substring_regex(text, _PLAIN_NUMBER), False)
    formula = pc.and_(pc.fill_null(pc.match_substring_regex(text, _GUARDED), False), pc.invert(number))
    if not pc.any(formula).as_py():
        return text
    quote, empty = pa.scalar("'", text.type), pa.scalar("", text.type)
    return pc.if_else(formula, pc.binary_join_element_wise(quote, text, empty), text)


def unguard(text: pd.Series) -> pd.Series:
    """A column of strings as written before :func:`guard` (for readers of geo-eval's csv files).

    >>> unguard(pd.Series(["'=1+1", "''=x", "'abc", "-3.5", None], dtype=object)).tolist()
    ['=1+1', "'=x", "'abc", '-3.5', None]
    >>> unguard(pd.Series(["'=1+1", "a", None], dtype="str")).tolist()  # Arrow-backed texts stay so
    ['=1+1', 'a', nan]
    """
    if isinstance(text.dtype, pd.StringDtype) and text.dtype.storage == "pyarrow":
        arr = pa.array(text)
        done = unguard_arrow(arr)
        if done is arr:
            return text
        values = done.to_pandas(types_mapper=lambda t: text.dtype if text_types(t) is not None else None)
        return pd.Series(values.array, index=text.index, name=text.name)
    arr = pa.array(text.to_numpy(dtype=object), type=_TEXT, from_pandas=True)
    guarded = pc.fill_null(pc.match_substring_regex(arr, _UNGUARD), False)
    if not pc.any(guarded).as_py():
        return text
    mask = guarded.to_numpy(zero_copy_only=False)
    out = text.copy()
    out[mask] = text[mask].str.slice(1)
    return out


def unguard_arrow(text: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """:func:`unguard` on Arrow strings, which stay Arrow strings (no Python object per row).

    >>> unguard_arrow(pa.array(["'=1+1", "''=x", "'abc", "-3.5", None])).to_pylist()
    ['=1+1', "'=x", "'abc", '-3.5', None]
    """
    guarded = pc.fill_null(pc.match_substring_regex(text, _UNGUARD), False)
    if not pc.any(guarded).as_py():
        return text
    return pc.if_else(guarded, pc.utf8_slice_codeunits(text, 1), text)


def _quote(text: pa.Array) -> pa.Array:
    raw = bytes(_data(text))  # one scan of the characters: most columns have nothing to quote
    if not any(c in raw for c in (b",", b'"', b"\r", b"\n")):
        return text
    needs = pc.fill_null(pc.match_substring_regex(text, _NEEDS_QUOTES), False)
    escaped = pc.replace_substring(text, '"', '""')
    quoted = pc.binary_join_element_wise(_t('"'), escaped, _t('"'), _t(""))
    return pc.if_else(needs, quoted, text)


def _float_text(arr: pa.Array) -> pa.Array:
    """Python ``repr`` text of float64 values (NaN and null become null)."""
    if pc.any(pc.is_nan(arr)).as_py():
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, pa.float64()), arr)
    text = arr.cast(_TEXT)
    mag = pc.abs(arr)
    # Python writes an exponent outside 1e-4 <= |x| < 1e16, pyarrow at other points: those few by repr.
    own = pc.or_kleene(
        pc.or_kleene(pc.greater_equal(mag, 1e16), pc.and_(pc.less(mag, 1e-4), pc.not_equal(mag, 0.0))),
        pc.match_substring(text, "e"),
    )
    finite = pc.is_finite(arr)
    own = pc.and_(pc.fill_null(own, False), finite)
    if pc.any(own).as_py():
        reprs = [repr(v) for v in pc.filter(arr, own).to_pylist()]
        text = pc.replace_with_mask(text, own, pa.array(reprs, type=_TEXT))
    # pyarrow writes integral values without the ".0" Python gives them (50 for 50.0)
    integral = pc.and_(pc.and_(pc.equal(arr, pc.floor(arr)), finite), pc.invert(own))
    if not pc.any(integral).as_py():
        return text
    suffix = pc.if_else(integral, _t(".0"), _t(""))
    return pc.binary_join_element_wise(text, suffix, _t(""))
