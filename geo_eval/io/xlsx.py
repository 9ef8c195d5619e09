"""Workbooks for people, written with xlsxwriter directly (fast, numbers as numbers)."""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

MAX_SHEET_NAME = 31


def _display_width(text: object) -> int:
    s = "" if text is None else str(text)
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
        values = [df[c].to_numpy(dtype=object) for c in cols]
        widths = [min(max(_display_width(c), 6), 40) for c in cols]
        n = len(df)
        for i in range(n):
            for j in range(len(cols)):
                v = values[j][i]
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
                    if i < 200:
                        widths[j] = max(widths[j], min(_display_width(s) + 2, 60))
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
    wb.close()
