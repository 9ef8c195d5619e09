"""Reading spreadsheets and csv files as bureaus send them.

Headers may be Chinese, carry units in brackets (``税收（万元）``), and sit below merged title rows;
csv files may be UTF-8 (with or without BOM) or GBK. Every table comes back with canonical column
names, a ``source_row`` column (the row number a user sees in Excel or a text editor) and the unit
factor of each column.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from geo_eval.errors import DatasetError, InputFileError
from geo_eval.fields import TABLE_FIELDS, UNIT_FACTORS, Field, header_lookup, normalize_header
from geo_eval.table import Table

HEADER_SCAN_ROWS = 15


def map_headers(table: str, headers: list[object]) -> tuple[dict[int, Field], dict[int, str], list[str]]:
    """Match headers to the contract: column position → field, position → unit, unknown headers."""
    lookup = header_lookup(TABLE_FIELDS[table])
    found: dict[int, Field] = {}
    units: dict[int, str] = {}
    unknown: list[str] = []
    taken: set[str] = set()
    for i, h in enumerate(headers):
        if h is None or (isinstance(h, float) and np.isnan(h)) or str(h).strip() == "":
            continue
        name, unit = normalize_header(h)
        f = lookup.get(name)
        if f is None or f.name in taken:
            unknown.append(str(h))
            continue
        taken.add(f.name)
        found[i] = f
        units[i] = unit
    return found, units, unknown


def _unit_factor(f: Field, unit: str, file: str, header: str) -> tuple[float, str]:
    if not unit or not f.unit:
        return 1.0, ""
    table = UNIT_FACTORS.get(f.unit, {})
    factor = table.get(unit)
    if factor is None:
        raise DatasetError(
            f"{file}：列“{header}”的单位“{unit}”无法识别，应为 {f.unit}"
            f"（可识别：{'、'.join(table) or f.unit}）。请改正表头后重试。"
        )
    note = "" if factor == 1.0 else f"{unit} → {f.unit}，乘以 {factor:g}"
    return factor, note


def detect_header_row(table: str, rows: list[list[object]]) -> int:
    """Index of the header row: the first row matching the most contract headers (≥ 2)."""
    best, best_i = 0, -1
    for i, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        n = len(map_headers(table, row)[0])
        if n > best:
            best, best_i = n, i
    if best < 2:
        return -1
    return best_i


def _finish(table: str, file: str, raw: pd.DataFrame, header_row: int, first_line: int) -> Table:
    headers = raw.iloc[header_row].tolist()
    found, units, unknown = map_headers(table, headers)
    body = raw.iloc[header_row + 1 :]
    # Drop trailing fully empty rows (common below xlsx tables), but keep inner empty rows reported.
    nonempty = body.notna() & (body.astype("string").apply(lambda c: c.str.strip()) != "")
    any_value = nonempty.any(axis=1).to_numpy()
    last = int(np.flatnonzero(any_value)[-1]) + 1 if any_value.any() else 0
    body = body.iloc[:last]
    cols: dict[str, pd.Series] = {}
    hdrs: dict[str, str] = {}
    factors: dict[str, float] = {}
    notes: dict[str, str] = {}
    for i, f in found.items():
        cols[f.name] = body.iloc[:, i].reset_index(drop=True)
        hdrs[f.name] = str(headers[i])
        factors[f.name], note = _unit_factor(f, units[i], file, str(headers[i]))
        if note:
            notes[f.name] = note
    frame = pd.DataFrame(cols)
    frame["source_row"] = np.arange(len(body), dtype=np.int64) + header_row + 1 + first_line
    frame["_empty"] = ~any_value[:last]
    return Table(table, file, frame, hdrs, factors, unknown, notes)


def _missing_columns(t: Table) -> list[Field]:
    return [f for f in TABLE_FIELDS[t.name] if f.required and f.name not in t.frame]


def check_columns(t: Table) -> None:
    """Raise a clear error when required columns are absent."""
    missing = _missing_columns(t)
    if missing:
        names = "、".join(f"{f.label}（{f.name}）" for f in missing)
        raise DatasetError(
            f"{t.file}：缺少必需的列 {names}。已识别的列：{'、'.join(t.headers.values()) or '无'}。"
            "请检查表头名称（可用中文表头或英文字段名，见 docs/data-contract.md）。"
        )


def read_xlsx(path: Path, table: str, *, sheet: str | None = None, display: str | None = None) -> Table:
    """Read a worksheet, finding the header row below any merged title rows."""
    file = display or path.name
    try:
        raw = pd.read_excel(
            path, sheet_name=sheet if sheet is not None else 0, header=None, dtype=object, engine="openpyxl"
        )
    except FileNotFoundError as exc:
        raise InputFileError(f"找不到文件 {path}") from exc
    except ValueError as exc:
        raise InputFileError(f"{file}：无法读取工作表 {sheet!r}：{exc}") from exc
    rows = raw.head(HEADER_SCAN_ROWS).astype(object).where(raw.head(HEADER_SCAN_ROWS).notna(), None).values.tolist()
    h = detect_header_row(table, rows)
    if h < 0:
        raise DatasetError(f"{file}：前 {HEADER_SCAN_ROWS} 行中找不到表头（如“统一社会信用代码”“企业名称”）。")
    t = _finish(table, file, raw, h, first_line=1)
    check_columns(t)
    return t


def detect_text_encoding(path: Path) -> str:
    """``utf-8-sig`` when the file decodes as UTF-8, else ``gb18030`` (a superset of GBK)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "gb18030"


def read_csv(path: Path, table: str, *, encoding: str | None = None, display: str | None = None) -> Table:
    """Read a csv file (UTF-8 or GBK), finding the header row below any title lines."""
    file = display or path.name
    if not path.is_file():
        raise InputFileError(f"找不到文件 {path}")
    enc = encoding or detect_text_encoding(path)
    with path.open(encoding=enc, newline="") as fh:
        head = [row for _, row in zip(range(HEADER_SCAN_ROWS), csv.reader(fh), strict=False)]
    h = detect_header_row(table, [list(r) for r in head])
    if h < 0:
        raise DatasetError(f"{file}：前 {HEADER_SCAN_ROWS} 行中找不到表头（如“统一社会信用代码”“宗地代码”）。")
    text = path.read_text(encoding=enc)
    raw = pd.read_csv(
        io.StringIO(text),
        header=None,
        skiprows=h,
        dtype=str,
        keep_default_na=False,
        na_values=[],
        skip_blank_lines=False,
    )
    t = _finish(table, file, raw, 0, first_line=h + 1)
    check_columns(t)
    return t


def read_table(
    path: Path, table: str, *, sheet: str | None = None, encoding: str | None = None, display: str | None = None
) -> Table:
    """An xlsx/xlsm or csv/txt table by its suffix."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, table, sheet=sheet, display=display)
    if suffix in (".csv", ".txt"):
        return read_csv(path, table, encoding=encoding, display=display)
    raise InputFileError(f"{display or path.name}：不支持的表格格式 {suffix}（请用 .xlsx 或 .csv）")
