"""Workbooks for people, written by rust_xlsxwriter through rustpy-xlsxwriter's public API.

Each sheet of a workbook is a frame: a bold header row (frozen, with an autofilter), column widths
from the text, and one cell per value. The frame becomes an Arrow table of cells first
(:func:`sheet_cells`), and the whole workbook is one ``write_worksheets`` call:

- numbers (integers, floats, nullable integers) as number cells; NaN, ±inf and missing values as
  no cell;
- booleans as the text 是 / 否;
- everything else as a text cell, whatever it holds: the writer escapes it (``& < >``, control
  characters as ``_xHHHH_``) and never reads it as a formula, so an enterprise name such as
  ``=HYPERLINK(…)`` or a comment such as ``<r><t>oops</r>`` is shown exactly as written. Text over
  Excel's 32 767 characters is cut there.

A column of mixed Python objects is sorted value by value into the same three kinds; a sheet with a
column that holds both numbers and texts goes to the writer as records (one dict a row, each value
written by its own type) instead of an Arrow table.

With a :class:`Layout` the sheets read and print like a published table: each column's number format by
its header, the panes frozen right of the sheet's name column as well as below the header row, and a
print set-up (A4 landscape, the header row repeated on every page, the title in the page header, page
numbers in the footer; a sheet narrow enough is fitted to the page width, a wider one repeats its name
columns on every page instead). All of it goes through the writer's public options (``column_formats``,
``freeze_panes``, ``page_setup``).
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import rustpy_xlsxwriter

MAX_SHEET_NAME = 31
WIDTH_SAMPLE_ROWS = 200
"""Column widths follow the text of the first this many rows."""
NOTE_WIDTH = 120.0
STRING_MAX = 32_767
"""Excel's limit on the text of a cell, in UTF-16 code units."""
_TEXT = pa.large_string()

PAPER_A4 = 9
"""Excel's paper size code of A4."""
FIT_WIDTH = 190.0
"""A sheet whose columns are at most this many characters wide in all is printed one page wide."""
PAGE_HEADER_PART = 60
"""Characters of each part of the page header at most (Excel keeps 255 in all, codes included)."""
MARGINS = {"left": 0.4, "right": 0.4, "top": 0.75, "bottom": 0.6, "header": 0.3, "footer": 0.3}
"""Page margins in inches."""

MixedNumbers = dict[tuple[int, int], float]
"""Numbers of mixed columns, by (row, column) of the frame."""


@dataclass(frozen=True)
class Layout:
    """How the sheets of a workbook are shown and printed (see the module docstring).

    ``number_formats``: header → Excel number format of the column's cells; ``frozen_through``: headers of
    name columns, the panes of a sheet are frozen right of the leftmost of these it has; ``title`` (bold,
    centre) and ``subtitle`` (left) head every printed page, the sheet's name on the right.
    """

    title: str = ""
    subtitle: str = ""
    number_formats: Mapping[str, str] = field(default_factory=dict)
    frozen_through: Sequence[str] = ()


def write_workbook(
    path: Path,
    sheets: dict[str, pd.DataFrame],
    *,
    notes: dict[str, list[str]] | None = None,
    layout: Layout | None = None,
) -> None:
    """Write frames as sheets: bold frozen header row, column widths from content, numbers as numbers;
    with ``layout`` also number formats, frozen name columns and a print set-up.

    ``notes`` maps a sheet name to lines written one per row, in a sheet of their own (说明).
    """
    entries: list[tuple[str, Any]] = []
    widths: dict[str, dict[str, float] | list[float]] = {}
    filters: dict[str, bool] = {}
    options: dict[str, dict[str, Any]] = {"freeze_panes": {}, "column_formats": {}, "page_setup": {}}
    formats: dict[str, rustpy_xlsxwriter.Format] = {}
    used: set[str] = set()
    for name, df in sheets.items():
        sheet = _sheet_name(name, used)
        cells = sheet_cells(df)
        entries.append((sheet, _records(cells.table, cells.numbers) if cells.numbers else cells.table))
        widths[sheet] = cells.widths
        filters[sheet] = bool(len(df)) and bool(df.shape[1])
        frozen = _frozen_columns(df, layout)
        options["freeze_panes"][sheet] = {"row": 1, "col": frozen}
        if layout is not None:
            options["column_formats"][sheet] = _column_formats(df, layout.number_formats, formats)
            options["page_setup"][sheet] = _page_setup(layout, frozen, cells.widths)
    framed = [sheet for sheet, _ in entries]
    for name, lines in (notes or {}).items():
        sheet = _sheet_name(name, used)
        # the first line stands where a header would: the sheet has no header format, so it is plain text
        text = _truncate(pa.array(lines, _TEXT))
        entries.append((sheet, pa.table({text[0].as_py(): text[1:]}) if len(text) else pa.table({})))
        widths[sheet] = [NOTE_WIDTH]
    head = _header_format()
    rustpy_xlsxwriter.write_worksheets(
        entries,
        str(path),
        freeze_panes=options["freeze_panes"],
        header_format=dict.fromkeys(framed, head),
        column_widths=widths,
        autofilter=filters,
        autofit=False,
        column_formats={k: v for k, v in options["column_formats"].items() if v} or None,
        page_setup=options["page_setup"] or None,
    )


def _frozen_columns(df: pd.DataFrame, layout: Layout | None) -> int:
    """Columns kept in view: those up to the leftmost name column of the sheet (none without a layout).

    >>> _frozen_columns(pd.DataFrame(columns=["排名", "企业名称", "园区"]), Layout(frozen_through=("园区", "企业名称")))
    2
    """
    if layout is None or not layout.frozen_through:
        return 0
    names = set(layout.frozen_through)
    return next((j + 1 for j, c in enumerate(df.columns) if c in names), 0)


def _column_formats(
    df: pd.DataFrame, number_formats: Mapping[str, str], made: dict[str, rustpy_xlsxwriter.Format]
) -> dict[str, rustpy_xlsxwriter.Format]:
    """The format of each column of ``df`` whose header has a number format (one Format per format)."""
    out: dict[str, rustpy_xlsxwriter.Format] = {}
    for c in df.columns:
        code = number_formats.get(str(c))
        if code:
            if code not in made:
                made[code] = rustpy_xlsxwriter.Format().set_num_format(code)
            out[str(c)] = made[code]
    return out


def _page_setup(layout: Layout, frozen: int, widths: list[float]) -> dict[str, Any]:
    """A4 landscape, the header row on every page, the title on top and page numbers at the foot; one page
    wide when the columns fit (:data:`FIT_WIDTH`), else the ``frozen`` name columns on every page."""
    setup: dict[str, Any] = {
        "landscape": True,
        "paper_size": PAPER_A4,
        "margins": MARGINS,
        "repeat_rows": 0,
        "header": _page_header(layout),
        "footer": "&C第 &P 页，共 &N 页",
    }
    if sum(widths) <= FIT_WIDTH:
        setup["fit_to_pages"] = (1, 0)  # one page wide, as many tall as needed
    elif frozen:
        setup["repeat_columns"] = (0, frozen - 1)
    return setup


def _page_header(layout: Layout) -> str:
    """``&L`` subtitle ``&C`` bold title ``&R`` the sheet's name, each text with its ``&`` doubled (a code
    otherwise) and cut to :data:`PAGE_HEADER_PART` characters.

    >>> _page_header(Layout(title="2025年度排名", subtitle="方案：A&B"))
    '&L方案：A&&B&C&B2025年度排名&R&A'
    """

    def text(s: str) -> str:
        return s[:PAGE_HEADER_PART].replace("&", "&&")

    return f"&L{text(layout.subtitle)}&C&B{text(layout.title)}&R&A"


def _header_format() -> rustpy_xlsxwriter.Format:
    return (
        rustpy_xlsxwriter.Format()
        .set_bold()
        .set_background_color("#DDEBF7")
        .set_border("thin")
        .set_text_wrap()
        .set_align("vcenter")
    )


def _records(table: pa.Table, numbers: MixedNumbers) -> list[dict[str, object]]:
    """The rows of a sheet whose mixed columns hold numbers among texts, as dicts for the writer."""
    names = table.column_names
    if len(set(names)) != len(names):
        raise ValueError(f"列名重复，无法写入工作表：{names}")
    rows = table.to_pylist()
    for (i, j), value in numbers.items():
        rows[i][names[j]] = value
    return rows


def _sheet_name(name: str, used: set[str]) -> str:
    clean = "".join("_" if c in "[]:*?/\\" else c for c in name)[:MAX_SHEET_NAME]
    base, i = clean, 2
    while clean in used:
        suffix = f"({i})"
        clean = base[: MAX_SHEET_NAME - len(suffix)] + suffix
        i += 1
    used.add(clean)
    return clean


# --- cells ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetCells:
    """What the writer needs of a frame: its data rows as an Arrow table of number (float64) and text
    columns, null where no cell is written; the numbers of mixed columns; the column widths."""

    table: pa.Table
    numbers: MixedNumbers
    widths: list[float]


def sheet_cells(df: pd.DataFrame) -> SheetCells:
    """The cells of ``df`` (see the module docstring).

    >>> c = sheet_cells(pd.DataFrame({"a": [1.5, float("inf")], "b": [True, False], "c": ["=1+1", None]}))
    >>> c.table.to_pydict(), c.numbers, c.widths
    ({'a': [1.5, None], 'b': ['是', '否'], 'c': ['=1+1', None]}, {}, [6.0, 6.0, 6.0])
    >>> sheet_cells(pd.DataFrame({"m": [1, "x", None]})).numbers
    {(0, 0): 1.0}
    """
    arrays: list[pa.Array] = []
    numbers: MixedNumbers = {}
    widths: list[float] = []
    for j, (name, s) in enumerate(df.items()):
        kind = _column_kind(s)
        arr, mixed = _column_cells(s, kind)
        arrays.append(arr)
        numbers.update({(i, j): v for i, v in mixed.items()})
        widths.append(float(_width(name, arr, kind)))
    return SheetCells(pa.Table.from_arrays(arrays, names=[str(c) for c in df.columns]), numbers, widths)


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


def _column_cells(s: pd.Series, kind: str) -> tuple[pa.Array, dict[int, float]]:
    """One column's cells, and the numbers of a column that also holds texts (by row)."""
    if kind == "number":
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return pa.array(values, type=pa.float64(), mask=~np.isfinite(values)), {}
    if kind == "bool":
        return pa.array(np.where(s.to_numpy(dtype=bool), "是", "否").astype(object), type=_TEXT), {}
    if kind == "text":
        return _truncate(_text_array(s)), {}
    texts: list[str | None] = []
    numbers: dict[int, float] = {}
    for i, v in enumerate(s.to_numpy(dtype=object).tolist()):
        if isinstance(v, (bool, np.bool_)):
            texts.append("是" if v else "否")
        elif isinstance(v, (int, float, np.integer, np.floating)):
            texts.append(None)
            if math.isfinite(v):
                numbers[i] = float(v)
        elif v is None or v is pd.NA or v is pd.NaT:
            texts.append(None)
        else:
            texts.append(str(v))
    if all(t is None for t in texts):  # numbers only: a number column
        values = np.full(len(texts), np.nan)
        values[list(numbers)] = list(numbers.values())
        return pa.array(values, type=pa.float64(), mask=np.isnan(values)), {}
    return _truncate(pa.array(texts, type=_TEXT)), numbers


def _text_array(s: pd.Series) -> pa.Array:
    """A text column as one large_string array, null where missing."""
    arr = pa.array(s.array if isinstance(s.dtype, pd.StringDtype) else s.to_numpy(), from_pandas=True)
    arr = arr.cast(_TEXT)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _truncate(text: pa.Array) -> pa.Array:
    """Texts cut to Excel's :data:`STRING_MAX` UTF-16 units (the writer refuses longer ones)."""
    long = pc.fill_null(pc.greater(pc.utf8_length(text), STRING_MAX // 2), False)
    if not pc.any(long).as_py():
        return text
    cut = [_utf16_truncate(v) for v in pc.filter(text, long).to_pylist()]
    return pc.replace_with_mask(text, long, pa.array(cut, type=_TEXT))


def _utf16_truncate(text: str) -> str:
    units = text.encode("utf-16-le")
    if len(units) <= 2 * STRING_MAX:
        return text
    return units[: 2 * STRING_MAX].decode("utf-16-le", errors="ignore")  # drops a split surrogate pair


# --- column widths ----------------------------------------------------------------------------------


def _width(header: object, cells: pa.Array, kind: str) -> int:
    """Width in characters: the header's (6 to 40), widened to the longest text of the first
    :data:`WIDTH_SAMPLE_ROWS` rows plus 2 (at most 60); CJK characters count double."""
    width = min(max(_display_width(header), 6), 40)
    if kind not in ("text", "mixed") or not pa.types.is_large_string(cells.type):
        return width
    texts = set(cells.slice(0, WIDTH_SAMPLE_ROWS).to_pylist()) - {None}
    for v in sorted(texts, key=len, reverse=True):
        if width >= 60 or 2 * len(v) + 2 <= width:  # no shorter text can widen the column
            break
        width = max(width, min(_display_width(v) + 2, 60))
    return width


def _display_width(text: object) -> int:
    s = "" if text is None else str(text)
    return len(s) if s.isascii() else _wide_width(s)


@functools.lru_cache(maxsize=65_536)
def _wide_width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)
