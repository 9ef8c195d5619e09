"""Reading a corrections table (``corrections.csv``) from disk: the only place that opens one.

The rows are checked and applied by the pure :mod:`geo_eval.inputs.corrections`; here the file is read
as text (UTF-8, with or without BOM) and its columns checked (a missing or extra column stops the run).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd

from geo_eval.errors import DatasetError, InputFileError
from geo_eval.inputs.corrections import CORRECTION_COLUMNS, CorrectionTable, correction_table


def read_corrections(path: Path, display: str | None = None) -> CorrectionTable:
    """``path`` as a :class:`~geo_eval.inputs.corrections.CorrectionTable`; ``display`` names it in problems
    (default: the path as given). Raises :class:`~geo_eval.errors.InputFileError` for a missing or unreadable
    file and :class:`~geo_eval.errors.DatasetError` for one that is not UTF-8 csv with exactly the columns."""
    name = display or str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"找不到更正文件 {name}") from None
    except OSError as exc:
        raise InputFileError(f"无法读取更正文件 {name}：{exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"更正文件 {name} 不是 UTF-8 编码（请另存为“CSV UTF-8”）") from None
    if not text.strip():
        raise DatasetError(f"更正文件 {name} 是空文件（第一行应为列名：{'、'.join(CORRECTION_COLUMNS)}）")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DatasetError(f"更正文件 {name} 不是有效的 csv：{exc}") from None
    frame.columns = [str(c) for c in frame.columns]
    return correction_table(frame, name, sha256=hashlib.sha256(data).hexdigest())
