"""Workbooks for people, written with xlsxwriter directly (fast, numbers as numbers).

xlsxwriter lays out the workbook (styles, header row, column widths, frozen pane, autofilter, the
说明 sheet). The data rows of a sheet are many: in ``constant_memory`` mode xlsxwriter turns each
cell into a few lines of XML in Python (about 10 µs a cell), so :func:`write_workbook` builds the
same ``<row>``/``<c>`` XML column by column with pyarrow instead and appends it to the worksheet's
row file, where xlsxwriter's own row writer would have put it. The XML is the one xlsxwriter writes
for these cells: numbers as ``<v>{value:.16G}</v>``, text as in-line strings (control characters
as ``_xHHHH_``, ``& < >`` escaped, ``xml:space="preserve"`` for leading or trailing whitespace, over
32 767 UTF-16 units truncated), booleans as 是/否, missing values and NaN/±inf as no cell, rows
without any value left out. Text needing any of that special care, and columns of mixed Python
objects, go value by value through xlsxwriter's own helpers. When the xlsxwriter in use does not
have the expected internals, every cell goes through the public ``write_*`` calls as before.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import threading
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter
import xlsxwriter.workbook as xlsxwriter_workbook
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

try:  # xlsxwriter's own text rules, for the cells _stream_rows cannot write as they are
    from xlsxwriter.utility import _preserve_whitespace, _utf16_len, _utf16_truncate

    _HAVE_TEXT_RULES = True
except ImportError:  # another xlsxwriter: every cell goes through the public write_* calls
    _HAVE_TEXT_RULES = False

MAX_SHEET_NAME = 31
ZIP_LEVEL = 1
"""zlib level of the xlsx parts: level 1 deflates the sheet XML about 3× faster than xlsxwriter's
default 6, for files about a quarter bigger; the parts themselves are the same."""
_ZIP_LOCK = threading.Lock()
WIDTH_SAMPLE_ROWS = 200
"""Column widths follow the text of the first this many rows."""
CHUNK_ROWS = 16_384
_TEXT = pa.large_string()
_STRING_MAX = 32_767  # Excel's cell text limit, in UTF-16 units
# Text xlsxwriter changes or marks: control characters (not \t \n), _xHHHH_ look-alikes, & < >,
# U+FFFE/U+FFFF, rich-string markup, and whitespace (any Unicode space) at either end. A superset
# of what xlsxwriter checks: a match only means "ask xlsxwriter".
_SPECIAL = (
    r"[\x00-\x08\x0b-\x1f&<>\x{fffe}\x{ffff}]|_x[0-9a-fA-F]{4}_|^<r>"
    r"|^[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\p{Z}]|[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\p{Z}]$"
)
_ROW_INTERNALS = (
    "fh",
    "previous_row",
    "table",
    "_write_single_row",
    "_check_dimensions",
    "_escape_data",
    "_escape_control_characters",
)


def _display_width(text: object) -> int:
    s = "" if text is None else str(text)
    return len(s) if s.isascii() else _wide_width(s)


@functools.lru_cache(maxsize=65_536)
def _wide_width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _sheet_name(name: str, used: set[str]) -> str:
    clean = "".join("_" if c in "[]:*?/\\" else c for c in name)[:MAX_SHEET_NAME]
    base, i = clean, 2
    while clean in used:
        suffix = f"({i})"
        clean = base[: MAX_SHEET_NAME - len(suffix)] + suffix
        i += 1
    used.add(clean)
    return clean


def write_workbook(path: Path, sheets: dict[str, pd.DataFrame], *, notes: dict[str, list[str]] | None = None) -> None:
    """Write frames as sheets: bold frozen header row, column widths from content, numbers as numbers.

    ``notes`` maps a sheet name to lines written above nothing else: a sheet of its own (说明).
    """
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "nan_inf_to_errors": False})
    wb.set_properties({"title": "geo-eval 亩均效益评价结果", "author": "geo-eval"})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "vcenter"})
    used: set[str] = set()
    for name, df in sheets.items():
        ws = wb.add_worksheet(_sheet_name(name, used))
        cols = list(df.columns)
        for j, c in enumerate(cols):
            ws.write_string(0, j, str(c), head)
        widths = [min(max(_display_width(c), 6), 40) for c in cols]
        n = len(df)
        if n and cols and _can_stream(ws):
            _stream_rows(ws, df, widths)
        else:
            _write_cells(ws, df, widths)
        for j, w in enumerate(widths):
            ws.set_column(j, j, w)
        ws.freeze_panes(1, 0)
        if n:
            ws.autofilter(0, 0, n, max(len(cols) - 1, 0))
    for name, lines in (notes or {}).items():
        ws = wb.add_worksheet(_sheet_name(name, used))
        ws.set_column(0, 0, 120)
        for i, line in enumerate(lines):
            ws.write_string(i, 0, line)
    with _zip_level(ZIP_LEVEL):
        wb.close()


@contextlib.contextmanager
def _zip_level(level: int) -> Iterator[None]:
    """Let xlsxwriter's ``close`` deflate the parts at zlib ``level`` (it zips at the default, 6).

    xlsxwriter opens its zip as ``xlsxwriter.workbook.ZipFile``: that name is bound to a
    ``ZipFile`` with ``compresslevel`` for the block (under a lock, so concurrent closes in other
    threads see one consistent value), and left alone if xlsxwriter no longer has it.
    """
    with _ZIP_LOCK:
        original = getattr(xlsxwriter_workbook, "ZipFile", None)
        if original is not zipfile.ZipFile:
            yield
            return
        xlsxwriter_workbook.ZipFile = functools.partial(zipfile.ZipFile, compresslevel=level)
        try:
            yield
        finally:
            xlsxwriter_workbook.ZipFile = original


def _write_cells(ws: Worksheet, df: pd.DataFrame, widths: list[int]) -> None:
    """Every cell through xlsxwriter's public calls (the reference for :func:`_stream_rows`)."""
    values = [col.to_numpy(dtype=object) for _, col in df.items()]
    for i in range(len(df)):
        for j, column in enumerate(values):
            v = column[i]
            if v is None or v is pd.NA or v is pd.NaT:
                continue
            if isinstance(v, (float, np.floating)):
                if math.isnan(v) or math.isinf(v):
                    continue
                ws.write_number(i + 1, j, float(v))
            elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                ws.write_number(i + 1, j, int(v))
            elif isinstance(v, (bool, np.bool_)):
                ws.write_string(i + 1, j, "是" if v else "否")
            else:
                s = str(v)
                ws.write_string(i + 1, j, s)
                if i < WIDTH_SAMPLE_ROWS:
                    widths[j] = max(widths[j], min(_display_width(s) + 2, 60))


# --- data rows as XML, column by column -----------------------------------------------------------


def _can_stream(ws: Worksheet) -> bool:
    return (
        _HAVE_TEXT_RULES
        and bool(getattr(ws, "constant_memory", False))
        and xlsxwriter.__version__.split(".")[0] == "3"
        and all(hasattr(ws, a) for a in _ROW_INTERNALS)
        and isinstance(ws.fh, io.TextIOWrapper)  # the row file, UTF-8 text
    )


def _t(text: str) -> pa.Scalar:
    return pa.scalar(text, _TEXT)


def _stream_rows(ws: Worksheet, df: pd.DataFrame, widths: list[int]) -> None:
    """Rows 2… of the sheet as xlsxwriter would write them, appended to its row file."""
    ws._write_single_row(1)  # the header row (row 0) goes to the row file first
    columns = [col for _, col in df.items()]
    letters = [xl_col_to_name(j) for j in range(len(columns))]
    kinds = [_column_kind(col) for col in columns]
    last = 0
    for start in range(0, len(df), CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, len(df))
        numbers = pa.array(np.arange(start + 2, stop + 2)).cast(_TEXT)
        cells = []
        for j, kind in enumerate(kinds):
            part = columns[j] if (start, stop) == (0, len(df)) else columns[j].iloc[start:stop]
            tails = _tails(ws, part, kind, widths, j, start)
            cells.append(pc.binary_join_element_wise(_t(f'<c r="{letters[j]}'), numbers, _t('"'), tails, _t("")))
        body = pc.binary_join_element_wise(*cells, _t(""), null_handling="replace", null_replacement="")
        filled = pc.not_equal(body, _t(""))
        rows = pc.binary_join_element_wise(_t('<row r="'), numbers, _t('">'), body, _t("</row>"), _t(""))
        rows = pc.filter(rows, filled)
        if len(rows):
            ws.fh.flush()  # a text file over a binary one: the XML goes in as the UTF-8 bytes it is
            ws.fh.buffer.write(_chars(rows))
            last = start + 1 + int(pc.max(pc.indices_nonzero(filled)).as_py())
    if last:
        ws._check_dimensions(last, 0)
        ws.previous_row = last


def _chars(arr: pa.Array) -> memoryview:
    """The UTF-8 bytes of a null-free large_string array's values, back to back, without a copy."""
    _, offsets_buf, data = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)
    begin, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    return memoryview(data)[begin:end]


def _column_kind(s: pd.Series) -> str:
    """How a column's values are written: ``number``, ``text``, ``bool`` or value by value (``mixed``)."""
    dtype = s.dtype
    if dtype.kind in "iuf" and not isinstance(dtype, pd.CategoricalDtype):
        return "number"
    if dtype.kind == "b" and not isinstance(dtype, pd.CategoricalDtype):
        return "bool" if not s.hasnans else "mixed"
    if isinstance(dtype, pd.StringDtype):
        return "text"
    if pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return "text"
    return "mixed"


def _tails(ws: Worksheet, s: pd.Series, kind: str, widths: list[int], j: int, start: int) -> pa.Array:
    """Each value's cell XML after ``<c r="A1"``; null where no cell is written."""
    if kind == "number":
        return _number_tails(s.to_numpy(dtype=np.float64, na_value=np.nan))
    if kind == "bool":
        flags = pa.array(s.to_numpy(dtype=bool))
        yes, no = _string_tail(ws, "是"), _string_tail(ws, "否")
        return pc.if_else(flags, _t(yes), _t(no))
    if kind == "text":
        text = _text_array(s)
        if start < WIDTH_SAMPLE_ROWS:
            for v in set(text.slice(0, WIDTH_SAMPLE_ROWS - start).to_pylist()) - {None}:
                widths[j] = max(widths[j], min(_display_width(v) + 2, 60))
        special = pc.fill_null(
            pc.or_(pc.match_substring_regex(text, _SPECIAL), pc.greater(pc.utf8_length(text), _STRING_MAX // 2)), False
        )
        tails = pc.binary_join_element_wise(_t(' t="inlineStr"><is><t>'), text, _t("</t></is></c>"), _t(""))
        if pc.any(special).as_py():
            odd = [_string_tail(ws, v) for v in pc.filter(text, special).to_pylist()]
            tails = pc.replace_with_mask(tails, special, pa.array(odd, type=_TEXT))
        return tails
    # mixed: the reference dispatch of _write_cells, value by value
    out: list[str | None] = []
    for i, v in enumerate(s.to_numpy(dtype=object).tolist()):
        if v is None or v is pd.NA or v is pd.NaT:
            out.append(None)
        elif isinstance(v, (float, np.floating)):
            out.append(None if math.isnan(v) or math.isinf(v) else f"><v>{float(v):.16G}</v></c>")
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            out.append(f"><v>{int(v):.16G}</v></c>")
        elif isinstance(v, (bool, np.bool_)):
            out.append(_string_tail(ws, "是" if v else "否"))
        else:
            text_v = str(v)
            out.append(_string_tail(ws, text_v))
            if start + i < WIDTH_SAMPLE_ROWS:
                widths[j] = max(widths[j], min(_display_width(text_v) + 2, 60))
    return pa.array(out, type=_TEXT)


def _text_array(s: pd.Series) -> pa.Array:
    """A text column as one large_string array, null where missing."""
    if isinstance(s.dtype, pd.StringDtype):
        arr = pa.array(s.array, from_pandas=True)
        arr = arr.cast(_TEXT)
        return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    raw = s.to_numpy(dtype=object, copy=True)
    raw[pd.isna(raw)] = None
    return pa.array(raw, type=_TEXT)


def _number_tails(values: np.ndarray) -> pa.Array:
    """``><v>{value:.16G}</v></c>`` for the finite values, null for NaN and ±inf.

    Whole numbers below 1e15 (not -0.0) print as their integer digits under ``.16G``: those are cast
    by pyarrow, the rest formatted by Python.
    """
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        whole = finite & (values == np.trunc(values)) & (np.abs(values) < 1e15)
    whole &= ~((values == 0) & np.signbit(values))  # -0.0 is "-0"
    other = finite & ~whole
    digits = pa.nulls(len(values), _TEXT)
    if whole.any():
        digits = pc.replace_with_mask(digits, pa.array(whole), pa.array(values[whole].astype(np.int64)).cast(_TEXT))
    if other.any():
        texts = [f"{v:.16G}" for v in values[other].tolist()]
        digits = pc.replace_with_mask(digits, pa.array(other), pa.array(texts, type=_TEXT))
    return pc.binary_join_element_wise(_t("><v>"), digits, _t("</v></c>"), _t(""))


def _string_tail(ws: Any, string: str) -> str:
    """xlsxwriter's in-line string cell for ``string`` (after the ``r`` attribute), as its
    ``write_string`` + row writer make it in ``constant_memory`` mode."""
    if len(string) > _STRING_MAX // 2 and _utf16_len(string) > _STRING_MAX:
        string = _utf16_truncate(string, _STRING_MAX)
    string = ws._escape_control_characters(string)
    if string.startswith("<r>") and string.endswith("</r>"):
        return f' t="inlineStr"><is>{string}</is></c>'
    t_attr = ' xml:space="preserve"' if _preserve_whitespace(string) else ""
    return f' t="inlineStr"><is><t{t_attr}>{ws._escape_data(string)}</t></is></c>'
