"""Reading spreadsheets and csv files as bureaus send them.

Headers may be Chinese, carry units in brackets (``税收（万元）``), and sit below merged title rows;
csv files may be UTF-8 (with or without BOM) or GBK. Every table comes back with canonical column
names, a ``source_row`` column (the row number a user sees in Excel or a text editor) and the unit
factor of each column.
"""

from __future__ import annotations

import codecs
import csv
import io
import mmap
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geo_eval.errors import DatasetError, InputFileError
from geo_eval.inputs.fields import (
    DBF_NAME_BYTES,
    TABLE_FIELDS,
    UNIT_FACTORS,
    Field,
    cut_header,
    header_lookup,
    normalize_header,
)
from geo_eval.inputs.problems import INFO, WARNING
from geo_eval.inputs.table import HeaderNote, Table, arrow_mask

HEADER_SCAN_ROWS = 15
_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # what pandas reads csv text cells as


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


def match_cut_headers(
    table: str, headers: list[object], found: dict[int, Field], units: dict[int, str], unknown: list[str]
) -> list[HeaderNote]:
    """Recognise Shapefile names cut to 10 bytes among the headers :func:`map_headers` did not know.

    A cut name that stands for one field is taken as that field (an info note); one that may stand for
    several, or whose unit was cut off, is left out and named (a warning note). ``found``, ``units``
    and ``unknown`` are updated in place.
    """
    fields = TABLE_FIELDS[table]
    taken = {f.name for f in found.values()}  # matched in full; cut names are judged without each other
    claimed: set[str] = set()
    notes: list[HeaderNote] = []
    for i, h in enumerate(headers):
        if i in found or h is None or str(h) not in unknown:
            continue
        cut = cut_header(h, fields, taken)
        if cut is None:
            continue
        unknown.remove(str(h))
        names = "、".join(f"{f.label}（{f.name}）" for f in cut.candidates)
        f = cut.candidates[0]
        if len(cut.candidates) == 1 and not (cut.unit_lost and f.unit):
            if f.name in claimed:  # a second cut name of the same field: left out like a repeated header
                unknown.append(str(h))
                continue
            found[i], units[i] = f, ""
            claimed.add(f.name)
            notes.append(
                HeaderNote(
                    header=str(h),
                    severity=INFO,
                    code="truncated_header",
                    problem=f"表头“{h}”是被 Shapefile 截断的字段名（DBF 字段名最长 {DBF_NAME_BYTES} 字节），识别为 {names}",
                    action="已按该字段读取",
                )
            )
            continue
        why = f"单位已被截去，无法确定 {names} 的单位" if len(cut.candidates) == 1 else f"可能是 {names}，无法确定"
        notes.append(
            HeaderNote(
                header=str(h),
                severity=WARNING,
                code="truncated_header_ambiguous",
                problem=f"表头“{h}”像是被 Shapefile 截断的字段名（DBF 字段名最长 {DBF_NAME_BYTES} 字节）：{why}",
                action="已忽略该列；请改用 GeoPackage，或把该字段改名为不超过 10 字节的表头（英文字段名或规范中的别名）",
            )
        )
    return notes


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
    first_row = header_row + 1 + first_line
    return _body_table(table, file, raw.iloc[header_row].tolist(), raw.iloc[header_row + 1 :], first_row)


def _body_table(table: str, file: str, headers: list[object], body: pd.DataFrame, first_row: int) -> Table:
    """The :class:`Table` of ``body`` (the rows below the header; the first is row ``first_row``)."""
    found, units, unknown = map_headers(table, headers)
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
    frame["source_row"] = np.arange(len(body), dtype=np.int64) + first_row
    frame["_empty"] = ~any_value[:last]
    return Table(table, file, frame, hdrs, factors, unknown, notes)


_PANDAS_BLANK = re.compile(r"Unnamed: \d+(_level_\d+)?")
"""What pandas calls a column whose header cell is blank (a file's reader skips such columns)."""


def frame_table(table: str, frame: pd.DataFrame, file: str) -> Table:
    """A table handed over as a DataFrame (``pd.read_excel``, ``pd.read_csv`` in a notebook) as the
    :class:`Table` the file readers give, with the same header matching, units and checks.

    The header is the frame's column names when they name at least two fields of the data contract
    (Chinese headers, English names or aliases); rows are then numbered as in a file whose first line
    is the header (the frame's first row is row 2). Otherwise the header is looked for in the frame's
    first rows, as in a file: a frame read with ``header=None`` keeps a workbook's title rows, and its
    rows keep the workbook's numbers (the frame's first row is row 1).
    """
    headers: list[object] = [None if _PANDAS_BLANK.fullmatch(str(c)) else c for c in frame.columns]
    if len(map_headers(table, headers)[0]) >= 2:
        t = _body_table(table, file, headers, _text_cells(table, frame, headers), first_row=2)
    else:
        head = frame.head(HEADER_SCAN_ROWS)
        rows = head.astype(object).where(head.notna(), None).values.tolist()
        h = detect_header_row(table, rows)
        if h < 0:
            raise DatasetError(
                f"{file}：列名和前 {HEADER_SCAN_ROWS} 行中都找不到表头（如“统一社会信用代码”“宗地代码”）。"
            )
        raw = frame.set_axis(range(frame.shape[1]), axis=1)
        t = _finish(table, file, _text_cells(table, raw, rows[h]), h, first_line=1)
    check_columns(t)
    return t


def _text_cells(table: str, frame: pd.DataFrame, headers: list[object]) -> pd.DataFrame:
    """``frame`` (its columns headed by ``headers``) with the float columns of text and code fields as
    whole numbers where they are whole (pandas reads a column of codes with blanks as floats: ``3311.0``
    is the code ``3311``)."""
    found = map_headers(table, headers)[0]
    out = frame.copy(deep=False)
    for i, f in found.items():
        col = frame.iloc[:, i]
        if f.kind not in ("text", "code") or not pd.api.types.is_float_dtype(col.dtype):
            continue
        values = col.to_numpy(dtype=float)
        whole = np.isfinite(values) & (values == np.round(values))
        cells = col.to_numpy(dtype=object)
        cells[whole] = values[whole].astype(np.int64)
        out.isetitem(i, cells)
    return out


def _missing_columns(t: Table) -> list[Field]:
    return [f for f in TABLE_FIELDS[t.name] if f.required and f.name not in t.frame]


def check_columns(t: Table) -> None:
    """Raise a clear error when required columns are absent."""
    missing = _missing_columns(t)
    if missing:
        names = "、".join(f"{f.label}（{f.name}）" for f in missing)
        cut = "".join(n.problem + "。" for n in t.header_notes if n.code == "truncated_header_ambiguous")
        raise DatasetError(
            f"{t.file}：缺少必需的列 {names}。已识别的列：{'、'.join(t.headers.values()) or '无'}。{cut}"
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
    except Exception as exc:  # not a zip, a zip without a workbook, broken XML: openpyxl raises many kinds
        raise InputFileError(
            f"{file} 不是有效的 xlsx 工作簿，无法读取（{type(exc).__name__}：{exc}）。"
            "请用 Excel 或 WPS 打开后另存为 .xlsx，或另存为 CSV UTF-8"
        ) from exc
    rows = raw.head(HEADER_SCAN_ROWS).astype(object).where(raw.head(HEADER_SCAN_ROWS).notna(), None).values.tolist()
    h = detect_header_row(table, rows)
    if h < 0:
        raise DatasetError(f"{file}：前 {HEADER_SCAN_ROWS} 行中找不到表头（如“统一社会信用代码”“企业名称”）。")
    t = _finish(table, file, raw, h, first_line=1)
    check_columns(t)
    return t


def detect_text_encoding(path: Path) -> str:
    """``utf-8-sig`` when the file decodes as UTF-8, else ``gb18030`` (a superset of GBK)."""
    return _text_encoding(path.read_bytes())


Bytes = bytes | mmap.mmap


def _text_encoding(data: Bytes) -> str:
    return "utf-8-sig" if _is_utf8(data) else "gb18030"


def _file_bytes(path: Path) -> Bytes:
    """The file's bytes, memory-mapped (read from the page cache, not copied) where possible."""
    with path.open("rb") as fh:
        try:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # an empty file, or one that cannot be mapped
            return fh.read()


def _is_utf8(data: Bytes) -> bool:
    """Whether ``data`` decodes as (strict) UTF-8, checked by Arrow without building a str."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def read_csv(path: Path, table: str, *, encoding: str | None = None, display: str | None = None) -> Table:
    """Read a csv file (UTF-8 or GBK), finding the header row below any title lines."""
    file = display or path.name
    if not path.is_file():
        raise InputFileError(f"找不到文件 {path}")
    data = _file_bytes(path)
    if data[:2] in _UTF16_BOMS:
        raise InputFileError(
            f"{file} 是 UTF-16 编码的文本（Excel 的“Unicode 文本”），无法读取。"
            "请在 Excel 或 WPS 中另存为“CSV UTF-8（逗号分隔）”或 .xlsx 后重试"
        )
    enc = encoding or _text_encoding(data)
    checked = encoding is None and enc == "utf-8-sig"  # just validated as UTF-8
    try:
        with path.open(encoding=enc, newline="") as fh:
            head = [row for _, row in zip(range(HEADER_SCAN_ROWS), csv.reader(fh), strict=False)]
        h = detect_header_row(table, [list(r) for r in head])
        if h < 0:
            raise DatasetError(f"{file}：前 {HEADER_SCAN_ROWS} 行中找不到表头（如“统一社会信用代码”“宗地代码”）。")
        t = _read_csv_arrow(data, enc, head, h, table, file, checked=checked)
        if t is None:
            t = _read_csv_pandas(path, enc, h, table, file)
    except LookupError as exc:
        raise InputFileError(f"{file}：dataset.toml 中的编码 {enc!r} 无法识别（可用 UTF-8 或 GBK）") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        which = (
            f"按 dataset.toml 指定的编码 {encoding} 解码失败" if encoding else "既不是 UTF-8 也不是 GBK（GB18030）编码"
        )
        where = f"（第 {exc.start + 1} 字节）" if isinstance(exc, UnicodeDecodeError) else ""
        raise InputFileError(
            f"{file} 无法读取：{which}{where}，可能是二进制文件或其他编码的文本。"
            "请在 Excel 或 WPS 中另存为“CSV UTF-8（逗号分隔）”或 .xlsx 后重试"
        ) from exc
    check_columns(t)
    return t


def _read_csv_pandas(path: Path, enc: str, h: int, table: str, file: str) -> Table:
    """The general reader: every cell as text (blank lines, ragged rows, any line breaks)."""
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
    return _finish(table, file, raw, 0, first_line=h + 1)


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_UTF8_BOM = b"\xef\xbb\xbf"


def _utf8_body(data: Bytes, enc: str, *, checked: bool) -> tuple[Bytes, int] | None:
    """The file as UTF-8 and where its text starts (after a BOM), as :meth:`Path.read_text` would
    decode it; ``None`` if it would not."""
    name = codecs.lookup(enc).name
    if name in ("utf-8", "utf-8-sig"):
        begin = 0
        if data[: len(_UTF8_BOM)] == _UTF8_BOM:
            if name == "utf-8":  # the BOM stays in the text (and in the first header)
                return None
            begin = len(_UTF8_BOM)
        return (data, begin) if checked or _is_utf8(data) else None
    try:
        return str(data, enc).encode("utf-8"), 0
    except (UnicodeError, LookupError):
        return None


def _read_csv_arrow(
    data: Bytes, enc: str, head: list[list[str]], h: int, table: str, file: str, *, checked: bool
) -> Table | None:
    """Arrow's multi-threaded reader for the common case, cell for cell what the pandas reader gives.

    ``None`` (use :func:`_read_csv_pandas`) for what Arrow reads differently: blank lines, rows
    with too few or too many cells, carriage returns inside quoted cells (``read_text`` turns them
    into line feeds) and line breaks inside the title lines above the header.
    """
    if any("\r" in c or "\n" in c for row in head[:h] for c in row):
        return None
    utf8 = _utf8_body(data, enc, checked=checked)
    if utf8 is None:
        return None
    body, start = utf8
    for i, m in enumerate(_LINE_END.finditer(body, start)):
        if i == h:
            break
        start = m.end()
    else:
        if h:
            return None
    ncols = len(head[h])
    try:
        tbl = pacsv.read_csv(
            pa.py_buffer(memoryview(body)[start:]),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.large_string() for i in range(ncols)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if tbl.num_columns != ncols or any(not pa.types.is_large_string(c.type) for c in tbl.columns):
        return None
    if body.find(b"\r", start) >= 0 and any(pc.any(pc.match_substring(c, "\r")).as_py() for c in tbl.columns):
        return None
    any_value, blank = _blank_rows(tbl.slice(1))
    if blank.size and any(body.find(pair) >= 0 for pair in (b"\n\n", b"\r\r", b"\n\r")):
        return None  # perhaps a blank line, which pandas reads as a row of missing cells
    return _finish_arrow(table, file, tbl, any_value, first_line=h + 1)


def _blank_rows(body: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Which rows have a cell that is not blank after trimming, and the rows whose cells are all ``""``."""
    n = body.num_rows
    any_value = np.zeros(n, dtype=bool)
    undecided = np.arange(n)  # most rows are settled by their first cell
    for col in body.columns:
        if not len(undecided):
            break
        cells = col if len(undecided) == n else col.take(pa.array(undecided))
        filled = arrow_mask(pc.greater(pc.binary_length(pc.utf8_trim_whitespace(cells)), 0))
        any_value[undecided[filled]] = True
        undecided = undecided[~filled]
    for col in body.columns:
        if not len(undecided):
            break
        undecided = undecided[arrow_mask(pc.equal(pc.binary_length(col.take(pa.array(undecided))), 0))]
    return any_value, undecided


def _finish_arrow(table: str, file: str, tbl: pa.Table, any_value: np.ndarray, first_line: int) -> Table:
    """:func:`_finish` for a table read by Arrow: row 0 is the header, every cell text."""
    headers: list[object] = [c[0].as_py() if len(c) else None for c in tbl.columns]
    found, units, unknown = map_headers(table, headers)
    body = tbl.slice(1)
    last = int(np.flatnonzero(any_value)[-1]) + 1 if any_value.any() else 0
    body = body.slice(0, last)
    cols: dict[str, pd.Series] = {}
    hdrs: dict[str, str] = {}
    factors: dict[str, float] = {}
    notes: dict[str, str] = {}
    for i, f in found.items():
        cols[f.name] = pd.Series(pd.array(body.column(i).combine_chunks(), dtype=_TEXT))
        hdrs[f.name] = str(headers[i])
        factors[f.name], note = _unit_factor(f, units[i], file, str(headers[i]))
        if note:
            notes[f.name] = note
    frame = pd.DataFrame(cols, index=pd.RangeIndex(last))
    frame["source_row"] = np.arange(last, dtype=np.int64) + 1 + first_line
    frame["_empty"] = ~any_value[:last]
    return Table(table, file, frame, hdrs, factors, unknown, notes)


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
