"""Files for download: Chinese file names that survive every browser, csv with BOM, workbooks.

>>> content_disposition("2025年度排名_海滨园.csv", "geo-eval-rankings-2025.csv")
'attachment; filename="geo-eval-rankings-2025.csv"; filename*=UTF-8\\'\\'2025%E5%B9%B4%E5%BA%A6%E6%8E%92%E5%90%8D_%E6%B5%B7%E6%BB%A8%E5%9B%AD.csv'
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from fastapi.responses import Response

from geo_eval.io import csvout
from geo_eval.io.writers import ranking_layout
from geo_eval.io.xlsx import Layout, write_workbook
from geo_eval.landuse.flags import rule_labels
from geo_eval.report.labels import headers
from geo_eval.report.tables import FLAG_DOWNLOAD_COLUMNS, plain_integers, ranking_headers, ranking_title
from geo_eval.report.tables import flag_sheet as report_flag_sheet
from geo_eval.report.timefmt import beijing_time
from geo_eval.storage import STATUS_LABELS, Review, RunRecord

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"

FLAG_HEADERS = headers(FLAG_DOWNLOAD_COLUMNS, "flags")
"""The columns of the flag downloads' sheet (:data:`geo_eval.report.tables.FLAG_DOWNLOAD_COLUMNS`), with their headers."""


def _ascii(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "download"


def content_disposition(filename: str, fallback: str) -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the UTF-8 name as RFC 5987 ``filename*``."""
    return f"attachment; filename=\"{_ascii(fallback)}\"; filename*=UTF-8''{quote(filename, safe='')}"


def file_name(text: str) -> str:
    """A file name from Chinese text: characters Windows refuses replaced by ``_``."""
    return "".join("_" if c in '<>:"/\\|?*' or ord(c) < 32 else c for c in text).strip() or "下载"


def edition_note(record: RunRecord) -> str:
    """The line of a download's 说明 sheet that says which status and version of the year it shows."""
    return f"发布状态：{record.status_line()}"


def edition_suffix(record: RunRecord) -> str:
    """What a download's file name adds while the run is in publicity (``_公示稿第1版``; else nothing)."""
    return f"_公示稿第{record.version}版" if record.status == "publicity" else ""


def download(content: bytes, *, filename: str, fallback: str, media_type: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": content_disposition(filename, fallback), "Cache-Control": "no-store"},
    )


def file_download(
    format: str, title: str, fallback: str, *, csv: Callable[[], bytes], xlsx: Callable[[], bytes]
) -> Response:
    """The file ``title`` (Chinese; ``fallback``: its ASCII name) as csv or xlsx (``format``): only that one is built."""
    ext, build, media_type = ("csv", csv, CSV_TYPE) if format == "csv" else ("xlsx", xlsx, XLSX_TYPE)
    return download(build(), filename=f"{file_name(title)}.{ext}", fallback=f"{fallback}.{ext}", media_type=media_type)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 with BOM, ``\\n`` line ends, empty fields for missing values, texts that a spreadsheet would
    read as a formula behind a ``'`` (as ``enterprises.csv``: :func:`geo_eval.io.csvout.csv_bytes`)."""
    return csvout.csv_bytes(df)


def xlsx_bytes(
    sheets: dict[str, pd.DataFrame], notes: dict[str, list[str]] | None = None, layout: Layout | None = None
) -> bytes:
    """A workbook written by :func:`geo_eval.io.xlsx.write_workbook`, as bytes."""
    with tempfile.TemporaryDirectory(prefix="geo-eval-") as tmp:
        path = Path(tmp) / "download.xlsx"
        write_workbook(path, sheets, notes=notes, layout=layout)
        return path.read_bytes()


def enterprise_headers(columns: list[str]) -> dict[str, str]:
    """Chinese headers of the ranking columns present (as in ``rankings.xlsx``), in its column order."""
    return ranking_headers(columns)


def ranking_unit(manifest: dict[str, object]) -> str:
    """The run's ranking unit (``county`` or ``park``) from its manifest; ``county`` (the default of every
    scheme) for runs written before the manifest recorded it."""
    scheme = manifest.get("scheme")
    unit = scheme.get("ranking_unit") if isinstance(scheme, dict) else None
    return unit if unit in ("county", "park") else "county"


def ranking_csv(table: pd.DataFrame) -> bytes:
    """The ranking table as csv: the workbook's Chinese headers, counts and ranks as plain integers."""
    return csv_bytes(plain_integers(table))


def ranking_sheets(table: pd.DataFrame, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One sheet per evaluation group (in file order) and 不参评企业（T类）: the rows of ``table`` (the ranking
    table of ``rows``, row for row)."""
    sheets: dict[str, pd.DataFrame] = {}
    rated = (rows["grade"] != "T").to_numpy(dtype=bool)
    label = rows["group_label"].to_numpy(dtype=object)
    for name in pd.unique(rows.loc[rated, "group_label"].dropna()):
        sheets[str(name)] = table.loc[(label == name) & rated]
    sheets["不参评企业（T类）"] = table.loc[~rated]
    return sheets


def ranking_workbook_layout(year: int, scope: str, scheme: str) -> Layout:
    """The layout of a ranking download: as the workbooks of a run, titled with the year and scope."""
    return ranking_layout(ranking_title(year, scope), scheme)


def flag_sheet(flags: pd.DataFrame) -> pd.DataFrame:
    """疑似闲置／低效地块 with the review state, Chinese headers (:func:`geo_eval.report.tables.flag_sheet`)."""
    return report_flag_sheet(flags, FLAG_DOWNLOAD_COLUMNS)


def with_reviews(flags: pd.DataFrame, reviews: dict[str, Review]) -> pd.DataFrame:
    """``flags`` with the rule's Chinese name (``rule_label``) and the review columns (pending where never
    reviewed); ``reviewed_at`` is UTC ISO text for scripts, ``reviewed_at_label`` Beijing time for people."""
    out = flags.drop(columns=[c for c in ("parcel_pos",) if c in flags.columns]).reset_index(drop=True)
    out.insert(list(out.columns).index("rule_id") + 1, "rule_label", rule_labels(out["rule_id"]).to_numpy(dtype=object))
    got = [reviews.get(str(fid)) or Review("", str(fid)) for fid in out["flag_id"]]
    out["review_status"] = [r.status for r in got]
    out["review_status_label"] = [STATUS_LABELS[r.status] for r in got]
    out["review_comment"] = [r.comment for r in got]
    out["reviewed_by"] = [r.updated_by for r in got]
    out["reviewed_at"] = [r.updated_at for r in got]
    out["reviewed_at_label"] = [beijing_time(r.updated_at) for r in got]
    out["review_version"] = [r.version for r in got]
    return out
