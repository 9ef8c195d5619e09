"""Ranking tables as a committee opens them (issue 12): every ranking workbook — ``rankings.xlsx``, the park
workbooks of a large run and the service's download — read back with openpyxl: each column's number format
by its unit, panes frozen at the name column, the print set-up, and beside each rank its scope with the
number of enterprises ranked there, counted here from ``enterprises.csv``; the csv download has the same
Chinese headers and its counts as plain integers, while ``enterprises.csv`` keeps its English keys."""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

with warnings.catch_warnings():  # starlette asks for httpx2; the httpx TestClient works the same
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo_eval.io import writers
from geo_eval.io.run import run
from geo_eval.rating.scheme import load_scheme
from geo_eval.report.labels import COLUMNS, IN_TABLE, Label
from geo_eval.storage import open_store, run_record_from_out_dir

SAMPLE = Path(__file__).resolve().parents[1] / "sample_parcels"
PARK = "海滨高新技术产业园"
RANKING_SHEETS = ("规上企业", "规下企业（用地3亩及以上）", "不参评企业（T类）")
TWO_DECIMALS = {"万元", "亩", "平方米", "吨标准煤", "万千瓦时", "吨", "分", "万元/亩", "万元/吨标准煤", "元/千瓦时"}
TWO_DECIMALS |= {"万元/吨", "万元/人"}
"""Units of amounts, areas, figures, indicators and scores: shown with two decimals."""
PERCENT = {"比值"}
"""Units of shares kept as ratios: shown as percentages."""
COUNTS = {"rank", "rank_of", "park_rank", "parcel_count", "lease_count", "n_enterprises", "n", "n_parcels"}
COUNTS |= {"rank_by_area", "review_version"} | {f"n_grade_{g}" for g in "ABCDT"}
"""Columns of counts and ranks (no unit, or 人): shown as integers."""
NAME_COLUMNS = {  # sheet → the header its panes are frozen through ("" : none, the header row only)
    **dict.fromkeys(RANKING_SHEETS, "企业名称"),
    "用地面积公示": "企业名称",
    "园区汇总": "园区",
    "基准值": "",
    "疑似闲置／低效地块": "宗地代码",
    "连片改造区块": "区块编号",
}
WIDE = {*RANKING_SHEETS, "用地面积公示", "疑似闲置／低效地块", "连片改造区块"}
"""Sheets too wide for one page: they repeat their name columns on every page instead of shrinking."""


# --- what the test expects, from the labels' units ---------------------------------------------------------------
def labels_by_header() -> dict[str, tuple[str, Label]]:
    """Every header of the table of labels → (its column name, its label)."""
    out = {lab.header: (name, lab) for name, lab in COLUMNS.items()}
    out |= {lab.header: (name, lab) for own in IN_TABLE.values() for name, lab in own.items()}
    return out


LABELS = labels_by_header()


def expected_format(header: str) -> str:
    """The number format a column must show, from its unit (or its being a count)."""
    name, lab = LABELS.get(header, ("", Label(header)))
    if name in COUNTS or lab.unit == "人":
        return "0"
    if lab.unit in PERCENT:
        return "0.00%"
    if lab.unit in TWO_DECIMALS:
        return "#,##0.00"
    return "General"


def csv_file(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)


def ranked_counts(enterprises: pd.DataFrame) -> dict[tuple[str, str], int]:
    """Rated enterprises (a group) per county and group: how many each county-wide rank counts among."""
    rated = enterprises.loc[enterprises["group"] != ""]
    return {(str(c), str(g)): int(n) for (c, g), n in rated.groupby(["county", "group_label"]).size().items()}


@dataclass
class Sheet:
    ws: Worksheet
    header: list[str]
    rows: list[tuple[object, ...]]

    def column(self, header: str) -> list[object]:
        j = self.header.index(header)
        return [r[j] for r in self.rows]


def sheets_of(data: bytes | Path) -> dict[str, Sheet]:
    wb = openpyxl.load_workbook(io.BytesIO(data) if isinstance(data, bytes) else data)
    out = {}
    for ws in wb.worksheets:
        values = list(ws.iter_rows(values_only=True))
        out[ws.title] = Sheet(ws, [str(h) for h in values[0]] if values else [], values[1:])
    return out


# --- the checks every ranking workbook passes --------------------------------------------------------------------
def check_number_formats(sheets: dict[str, Sheet]) -> dict[str, str]:
    """Every number cell has its column's format (:func:`expected_format`); returns header → format seen."""
    checked: dict[str, str] = {}
    for title, sheet in sheets.items():
        if title == "说明":
            continue
        for row in sheet.ws.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, (int, float)):
                    head = sheet.header[cell.column - 1]
                    assert cell.number_format == expected_format(head), (title, cell.coordinate, head)
                    checked[head] = cell.number_format
    assert checked["评价用地（亩）"] == checked["税收（万元）"] == checked["综合得分（分）"] == "#,##0.00"
    assert checked["研发经费支出占比（比值）"] == "0.00%"
    assert checked["排名"] == checked["年平均职工人数（人）"] == "0"
    return checked


def check_run_workbook_formats(sheets: dict[str, Sheet]) -> None:
    """:func:`check_number_formats` of a run's workbook, with its 园区汇总 and 基准值."""
    checked = check_number_formats(sheets)
    assert checked["A类（优先发展类）"] == checked["企业数"] == "0" and checked["亩均税收（万元/亩）"] == "#,##0.00"
    assert checked["基准值"] == "General"  # indicators of every unit in one column: as written


def check_frozen_panes(sheets: dict[str, Sheet]) -> None:
    for title, name in NAME_COLUMNS.items():
        if title == "连片改造区块" and title not in sheets:  # a park workbook: the blocks are in the GeoPackage
            continue
        sheet = sheets[title]
        frozen = sheet.header.index(name) + 1 if name else 0
        assert sheet.ws.freeze_panes == f"{get_column_letter(frozen + 1)}2", title


def check_print_setup(sheets: dict[str, Sheet], *, title: str, scheme: str) -> None:
    for name, sheet in sheets.items():
        ws = sheet.ws
        if name == "说明":
            continue
        assert ws.page_setup.orientation == "landscape", name
        assert int(ws.page_setup.paperSize) == 9, name  # A4
        assert ws.print_title_rows == "$1:$1", name  # the header row on every page
        assert ws.oddHeader.center.text == f"&B{title}", name
        assert ws.oddHeader.left.text == f"评价方案：{scheme}", name
        assert ws.oddHeader.right.text == "&A", name  # the sheet's name
        assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text
        fit = ws.sheet_properties.pageSetUpPr is not None and bool(ws.sheet_properties.pageSetUpPr.fitToPage)
        if name in WIDE:  # its name columns on every page
            frozen = sheet.header.index(NAME_COLUMNS[name]) + 1
            assert not fit and ws.print_title_cols == f"$A:${get_column_letter(frozen)}", name
        else:  # one page wide
            assert fit and ws.page_setup.fitToWidth in (1, None) and ws.page_setup.fitToHeight == 0, name


def check_rank_scope(sheets: dict[str, Sheet], enterprises: pd.DataFrame) -> int:
    """Every rank's scope text names its county and group and the count of enterprises ranked there."""
    counts = ranked_counts(enterprises)
    seen = 0
    for title in RANKING_SHEETS:
        s = sheets[title]
        for rank, scope, county, group in zip(
            s.column("排名"), s.column("排名范围"), s.column("县区"), s.column("评价分组"), strict=True
        ):
            if title == "不参评企业（T类）":
                assert rank is None and scope is None
                continue
            assert scope == f"共 {counts[(county, group)]} 家（{county} {group}）", (title, rank, scope)
            assert isinstance(rank, (int, float)) and 1 <= rank <= counts[(county, group)]
            seen += 1
    return seen


def expected_park_ranks(sheet: Sheet) -> list[int | None]:
    """Competition rank of each row's 排名 among the rows of its park, county and group (counted here)."""
    keys = list(zip(sheet.column("县区"), sheet.column("园区"), sheet.column("评价分组"), strict=True))
    ranks = sheet.column("排名")
    out: list[int | None] = []
    for key, r in zip(keys, ranks, strict=True):
        if r is None:
            out.append(None)
            continue
        assert isinstance(r, (int, float))
        out.append(1 + sum(1 for k, x in zip(keys, ranks, strict=True) if k == key and x is not None and x < r))
    return out


# --- rankings.xlsx of the sample ---------------------------------------------------------------------------------
@pytest.mark.parametrize("year", [2024, 2025])
def test_rankings_xlsx_reads_like_a_published_table(sample_runs, year):
    out = sample_runs[year]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    scheme = f"{manifest['scheme']['title']}（{manifest['scheme']['name']}）"
    assert manifest["scheme"]["ranking_unit"] == "county"
    sheets = sheets_of(out / "rankings.xlsx")
    enterprises = csv_file(out / "enterprises.csv")
    check_run_workbook_formats(sheets)
    check_frozen_panes(sheets)
    check_print_setup(sheets, title=f"{year}年度亩均效益评价排名", scheme=scheme)
    assert check_rank_scope(sheets, enterprises) == int((enterprises["group"] != "").sum())
    assert sheets["规上企业"].header[:4] == ["排名", "排名范围", "企业名称", "统一社会信用代码"]
    assert "园区内排名" not in sheets["规上企业"].header  # the whole run: ranks are the county's, as the scope says
    # the point of the scope: within one park the county-wide ranks skip
    s = sheets["规上企业"]
    in_park = [r for r, p in zip(s.column("排名"), s.column("园区"), strict=True) if p == PARK]
    assert in_park == sorted(in_park) and in_park[-1] > len(in_park)
    # shares stay ratios: 研发经费支出占比 0.021276 is shown as 2.13% by the format, not stored as 2.13
    row = s.rows[s.column("统一社会信用代码").index("913702006539337211")]
    assert row[s.header.index("研发经费支出占比（比值）")] == pytest.approx(0.021276, abs=1e-6)
    notes = [r[0] for r in sheets["说明"].ws.iter_rows(values_only=True)]
    assert any(str(n).startswith("排名范围：按县区、分组排名（“排名范围”列") for n in notes)


def test_enterprises_csv_keeps_its_english_keys(sample_runs):
    e = csv_file(sample_runs[2025] / "enterprises.csv")
    assert list(e.columns[:4]) == ["uscc", "name", "county", "park"]
    assert "rank_scope" not in e.columns and "park_rank" not in e.columns
    assert e.loc[e["uscc"] == "91320799618219880W", "employees"].item() == "1192.0"  # as before


# --- the park workbooks of a large run ---------------------------------------------------------------------------
def test_park_workbooks_give_the_rank_within_the_park(tmp_path, monkeypatch):
    monkeypatch.setattr(writers, "WORKBOOK_ROW_LIMIT", 100)  # the sample's 602 enterprises: one workbook per park
    out = tmp_path / "out"
    run(SAMPLE / "2025", load_scheme("lianyungang"), out)
    assert not (out / "rankings.xlsx").exists()
    enterprises = csv_file(out / "enterprises.csv")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    scheme = f"{manifest['scheme']['title']}（{manifest['scheme']['name']}）"
    parks = sorted(set(enterprises["park"]))
    assert [p.name for p in sorted((out / "rankings").iterdir())] == sorted(f"{p}.xlsx" for p in parks)
    for park in parks:
        sheets = sheets_of(out / "rankings" / f"{park}.xlsx")
        check_run_workbook_formats(sheets)
        check_frozen_panes(sheets)
        check_print_setup(sheets, title=f"2025年度亩均效益评价排名（{park}）", scheme=scheme)
        rated = enterprises.loc[(enterprises["park"] == park) & (enterprises["group"] != "")]
        assert check_rank_scope(sheets, enterprises) == len(rated)
        for title in RANKING_SHEETS:
            s = sheets[title]
            assert s.header[:4] == ["排名", "排名范围", "园区内排名", "企业名称"]
            assert s.column("园区内排名") == expected_park_ranks(s), (park, title)
            assert set(s.column("园区")) <= {park}
        ranks = sheets["规上企业"].column("园区内排名")
        assert ranks[0] == 1 and ranks[-1] == len(ranks)  # 1 … n within the park (no ties in the sample)
        notes = [r[0] for r in sheets["说明"].ws.iter_rows(values_only=True)]
        assert writers.PARK_RANK_NOTE in notes


# --- the service's downloads -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def service(sample_runs, tmp_path_factory) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Path]]:
    data_dir = tmp_path_factory.mktemp("ranking-tables") / "data"
    store = open_store(data_dir)
    store.add_run(run_record_from_out_dir(sample_runs[2025]), actor="test")
    tokens = {"admin": store.add_user("admin", "admin", [])[1], "com": store.add_user("com", "committee", [PARK])[1]}
    store.close()
    app = create_app(Settings(data_dir=data_dir, secret_key="r" * 48))
    with TestClient(app) as client:
        yield client, {k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()}, sample_runs[2025]


def download(service, who: str, fmt: str) -> bytes:
    client, auth, _ = service
    r = client.get(f"/api/rankings/download?format={fmt}", headers=auth[who])
    assert r.status_code == 200, r.text
    return r.content


def test_the_committees_workbook_download_is_the_park_workbook(service):
    out = service[2]
    enterprises = csv_file(out / "enterprises.csv")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    scheme = f"{manifest['scheme']['title']}（{manifest['scheme']['name']}）"
    sheets = sheets_of(download(service, "com", "xlsx"))
    assert list(sheets) == [*RANKING_SHEETS, "疑似闲置／低效地块", "说明"]
    check_number_formats(sheets)
    check_print_setup(sheets, title=f"2025年度亩均效益评价排名（{PARK}）", scheme=scheme)
    for title in RANKING_SHEETS:
        s = sheets[title]
        assert s.ws.freeze_panes == "E2"  # 排名, 排名范围, 园区内排名, 企业名称
        assert s.column("园区内排名") == expected_park_ranks(s)
        assert set(s.column("园区")) == {PARK} or title == "不参评企业（T类）"
    flags = sheets["疑似闲置／低效地块"]
    assert flags.header[:2] == ["标记编号", "宗地代码"] and flags.ws.freeze_panes == "C2"
    rated = enterprises.loc[(enterprises["park"] == PARK) & (enterprises["group"] != "")]
    assert check_rank_scope(sheets, enterprises) == len(rated) > 100
    scopes = set(sheets["规上企业"].column("排名范围"))
    assert scopes == {f"共 {ranked_counts(enterprises)[('海滨区', '规上企业')]} 家（海滨区 规上企业）"}
    assert ranked_counts(enterprises)[("海滨区", "规上企业")] > len(sheets["规上企业"].rows)  # county-wide


def test_the_whole_runs_workbook_download_has_no_park_rank(service):
    sheets = sheets_of(download(service, "admin", "xlsx"))
    written = sheets_of(service[2] / "rankings.xlsx")
    for title in RANKING_SHEETS:
        assert sheets[title].header == written[title].header and "园区内排名" not in sheets[title].header
        for column in ("排名", "排名范围", "统一社会信用代码"):
            assert sheets[title].column(column) == written[title].column(column)
        assert sheets[title].ws.freeze_panes == "D2"
    check_number_formats(sheets)
    center = sheets["规上企业"].ws.oddHeader.center.text
    assert center == "&B2025年度亩均效益评价排名（全部园区）"


@pytest.mark.parametrize("who", ["admin", "com"])
def test_the_csv_download_has_the_workbooks_headers_and_plain_integers(service, who):
    out = service[2]
    raw = download(service, who, "csv")
    assert raw.startswith(b"\xef\xbb\xbf")
    got = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    workbook = sheets_of(download(service, who, "xlsx"))["规上企业"]
    assert list(got.columns) == workbook.header  # the same Chinese headers, in the same order
    assert all(h in LABELS and not h.isascii() for h in got.columns)
    enterprises = csv_file(out / "enterprises.csv")
    if who == "com":
        enterprises = enterprises.loc[enterprises["park"] == PARK].reset_index(drop=True)
    assert got["统一社会信用代码"].tolist() == enterprises["uscc"].tolist()
    # counts and ranks: plain integers, equal to the file's numbers
    integers = [h for h in got.columns if expected_format(h) == "0"]
    assert {"排名", "年平均职工人数（人）"} <= set(integers) and ("园区内排名" in integers) == (who == "com")
    for h in integers:
        assert got[h].str.fullmatch(r"\d*").all(), h
    assert (
        got["年平均职工人数（人）"] == enterprises["employees"].map(lambda v: str(int(float(v))) if v else "")
    ).all()
    assert (got["排名"] == enterprises["rank"]).all()
    assert enterprises["employees"].str.endswith(".0").any()  # the file writes 1192.0, the download 1192
    # other numbers as in enterprises.csv, to the digit; shares as ratios
    for header, key in (("亩均税收（万元/亩）", "tax_per_mu"), ("研发经费支出占比（比值）", "rnd_intensity")):
        assert (got[header] == enterprises[key]).all(), header
    counts = ranked_counts(csv_file(out / "enterprises.csv"))  # county-wide, whatever the download covers
    rated = got["排名"] != ""
    want = [
        f"共 {counts[(c, g)]} 家（{c} {g}）" for c, g in zip(got["县区"][rated], got["评价分组"][rated], strict=True)
    ]
    assert got["排名范围"][rated].tolist() == want and (got["排名范围"][~rated] == "").all()
    assert rated.sum() == (enterprises["group"] != "").sum() > 100
    assert re.search(rb"\n1,", raw)  # a rank written as 1, not 1.0
