"""Outputs that are safe to open (issue 10): hostile texts in workbooks and csv files, control characters.

- a reviewer's comment that looks like xlsx markup (``<r><t>oops</r>``) is shown exactly in every later
  download, and every text cell of a workbook is a text cell, never a formula;
- an enterprise named like a formula (``=HYPERLINK(…)``, ``+1+1``, ``@SUM(A1)``, ``-2+3``) in the sample's
  enterprise table is a text cell in ``rankings.xlsx`` and carries a ``'`` in front in ``enterprises.csv``
  and in the csv download (OWASP's rule), while numbers stay numbers;
- a review comment with a control character (NUL, bell) is refused with a Chinese message, the same on
  SQLite and PostgreSQL;
- the workbook a user sees is the one the previous writer made (xlsxwriter's public API, here as the
  reference): sheet names, headers and their style, values, number formats, frozen panes, filters, widths.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import xlsxwriter
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo_eval.db import PostgresStore
from geo_eval.io import csvout
from geo_eval.io.run import run
from geo_eval.io.writers import workbook_plan
from geo_eval.io.xlsx import STRING_MAX, write_workbook
from geo_eval.rating.scheme import load_scheme
from geo_eval.report.labels import HEADER_FORMATS
from geo_eval.storage import InvalidValueError, SQLiteStore, open_store, run_record_from_out_dir

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_parcels" / "2025"
SCHEME = "lianyungang"
MARKUP = "<r><t>oops</r>"
FORMULA_NAMES = ['=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1)", "-2+3"]
PLANT = '<r><t>a</t></r></is></c><c r="AZ1"><f>HYPERLINK("http://x","y")</f></c><c r="BA1" t="inlineStr"><is><r><t>b</t></r>'
"""A name that planted a formula cell through the old writer's unescaped ``<r>…</r>`` path."""
HOSTILE_NAMES = [*FORMULA_NAMES, PLANT]
SECRET = "s" * 48


# --- the sample with enterprises named like formulas ------------------------------------------------


def hostile_sample(root: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the 2025 sample whose first five enterprises have hostile names; their USCC → name."""
    ds = root / "dataset"
    shutil.copytree(SAMPLE, ds)
    toml = (ds / "dataset.toml").read_text(encoding="utf-8")
    layers = (SAMPLE / "../../layers").resolve()
    (ds / "dataset.toml").write_text(toml.replace("../../layers/", f"{layers.as_posix()}/"), encoding="utf-8")
    wb = openpyxl.load_workbook(ds / "enterprises.xlsx")
    ws = wb["企业数据"]
    header_row, headers = next(
        (r[0].row, [c.value for c in r]) for r in ws.iter_rows() if "企业名称" in [c.value for c in r]
    )
    name_col, uscc_col = headers.index("企业名称") + 1, headers.index("统一社会信用代码") + 1
    renamed = {}
    for offset, name in enumerate(HOSTILE_NAMES, start=1):
        cell = ws.cell(row=header_row + offset, column=name_col)
        cell.value = name
        cell.data_type = "s"  # openpyxl would store a text beginning with "=" as a formula
        renamed[str(ws.cell(row=header_row + offset, column=uscc_col).value)] = name
    wb.save(ds / "enterprises.xlsx")
    return ds, renamed


@dataclass
class Sample:
    out: Path
    renamed: dict[str, str]
    clients: dict[str, TestClient]
    tokens: dict[str, str]

    def h(self, backend: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[backend]}"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Iterator[Sample]:
    """The hostile sample evaluated once, served from a SQLite store (PostgreSQL: see ``pg_client``)."""
    base = tmp_path_factory.mktemp("safe")
    ds, renamed = hostile_sample(base)
    out = base / "out"
    run(ds, load_scheme(SCHEME), out)
    store = open_store(base / "data")
    store.add_run(run_record_from_out_dir(out), actor="test")
    token = store.add_user("rev", "reviewer", [])[1]
    store.close()
    with TestClient(create_app(Settings(data_dir=base / "data", secret_key=SECRET))) as client:
        yield Sample(out, renamed, {"sqlite": client}, {"sqlite": token})


@pytest.fixture
def pg_client(sample: Sample, pg_db: str, tmp_path: Path) -> Iterator[Sample]:
    """The same run registered in PostgreSQL and served from there (its files stay the OUT_DIR's)."""
    store = PostgresStore(pg_db)
    store.add_run(run_record_from_out_dir(sample.out), actor="test")
    token = store.add_user("rev", "reviewer", [])[1]
    store.close()
    app = create_app(Settings(data_dir=tmp_path / "data", secret_key=SECRET, database_url=pg_db))
    with TestClient(app) as client:
        yield Sample(sample.out, sample.renamed, {"postgis": client}, {"postgis": token})


def text_cells(wb: openpyxl.Workbook) -> dict[str, list[openpyxl.cell.cell.Cell]]:
    """Every non-empty cell of a workbook by its value as text."""
    out: dict[str, list] = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.value is not None:
                    out.setdefault(str(c.value), []).append(c)
    return out


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def a_flag_id(s: Sample) -> str:
    flags = pd.read_csv(s.out / "flags.csv", encoding="utf-8-sig", dtype=str)
    return str(flags["flag_id"].iloc[0])


# --- workbooks ---------------------------------------------------------------------------------------


def test_a_comment_that_looks_like_markup_is_shown_exactly_in_later_downloads(sample):
    client = sample.clients["sqlite"]
    fid = a_flag_id(sample)
    r = client.patch(
        f"/api/flags/{fid}", json={"status": "site_visit", "comment": MARKUP, "version": 0}, headers=sample.h("sqlite")
    )
    assert r.status_code == 200, r.text
    for route in ("/api/flags/download?format=xlsx", "/api/rankings/download?format=xlsx"):
        x = client.get(route, headers=sample.h("sqlite"))
        assert x.status_code == 200
        wb = openpyxl.load_workbook(io.BytesIO(x.content))  # today: the sheet XML is broken, this raises
        ws = wb["疑似闲置／低效地块"]
        head = [c.value for c in ws[1]]
        rows = {r[head.index("标记编号")].value: r for r in ws.iter_rows(min_row=2)}
        comment = rows[fid][head.index("复核意见")]
        assert comment.value == MARKUP and comment.data_type == "s"
        assert len(rows) == ws.max_row - 1  # every later row is there too


def test_enterprises_named_like_formulas_are_text_in_rankings_xlsx(sample):
    wb = openpyxl.load_workbook(sample.out / "rankings.xlsx")
    cells = text_cells(wb)
    for name in HOSTILE_NAMES:
        assert cells.get(name), name  # today the name of PLANT is cut and a formula cell appears
        for c in cells[name]:
            assert c.data_type == "s" and c.value == name, (name, c.coordinate, c.data_type)
    assert not [c.coordinate for cs in cells.values() for c in cs if c.data_type == "f"]  # no formula anywhere
    # numbers stay numbers: the land column of the ranking sheet
    ws = wb["规上企业"]
    head = [c.value for c in ws[1]]
    land = [r[head.index("评价用地（亩）")] for r in ws.iter_rows(min_row=2)]
    assert land and all(c.data_type == "n" and isinstance(c.value, (int, float)) for c in land)


def test_enterprises_named_like_formulas_carry_a_quote_in_the_csv_files(sample):
    rows = csv_rows((sample.out / "enterprises.csv").read_bytes())
    by_uscc = {r["uscc"]: r for r in rows}
    for uscc, name in sample.renamed.items():
        guarded = "'" + name if name in FORMULA_NAMES else name
        assert by_uscc[uscc]["name"] == guarded  # today: the bare formula
    raw = (sample.out / "enterprises.csv").read_text(encoding="utf-8-sig")
    assert '"\'=HYPERLINK(""http://x"",""y"")"' in raw
    # numbers are never guarded: negative score changes and the like are written as they are
    assert all(not r["land_mu"].startswith("'") for r in rows)
    client = sample.clients["sqlite"]
    download = csv_rows(client.get("/api/rankings/download?format=csv", headers=sample.h("sqlite")).content)
    # the csv download is the ranking table under Chinese headers, with the same guard
    assert [(r["统一社会信用代码"], r["企业名称"]) for r in download] == [(r["uscc"], r["name"]) for r in rows]
    shown = {r["uscc"]: r["name"] for r in client.get("/api/rankings", headers=sample.h("sqlite")).json()["rows"]}
    assert {u: shown[u] for u in sample.renamed} == sample.renamed  # the service shows the names themselves
    x = client.get("/api/rankings/download?format=xlsx", headers=sample.h("sqlite"))
    cells = text_cells(openpyxl.load_workbook(io.BytesIO(x.content)))
    assert all(c.data_type == "s" for name in HOSTILE_NAMES for c in cells[name])


def test_the_flag_csv_download_guards_a_formula_comment(sample):
    client = sample.clients["sqlite"]
    flags = pd.read_csv(sample.out / "flags.csv", encoding="utf-8-sig", dtype=str)
    fid = str(flags["flag_id"].iloc[1])
    body = {"status": "confirmed", "comment": "=1+1", "version": 0}
    assert client.patch(f"/api/flags/{fid}", json=body, headers=sample.h("sqlite")).status_code == 200
    rows = csv_rows(client.get("/api/flags/download?format=csv", headers=sample.h("sqlite")).content)
    assert {r["flag_id"]: r["review_comment"] for r in rows}[fid] == "'=1+1"


def test_the_formula_guard_spares_numbers_and_round_trips():
    df = pd.DataFrame(
        {
            "text": ["=1+1", "+1+1", "@SUM(A1)", "-2+3", "\tx", "\rx", "'=x", "-3.5", "+86", "x=1", "'abc", None],
            "number": [-3.5, 1.0, -0.0, np.nan, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        }
    )
    rows = list(csv.reader(io.StringIO(csvout.csv_bytes(df).decode("utf-8-sig"))))[1:]
    texts = [r[0] for r in rows]
    assert texts == ["'=1+1", "'+1+1", "'@SUM(A1)", "'-2+3", "'\tx", "'\rx", "''=x", "-3.5", "+86", "x=1", "'abc", ""]
    assert [r[1] for r in rows][:4] == ["-3.5", "1.0", "-0.0", ""]
    back = csvout.unguard(pd.Series(texts[:-1], dtype=object))
    assert back.tolist() == df["text"].tolist()[:-1]


def test_every_text_is_a_text_cell_and_shown_exactly(tmp_path):
    texts = [MARKUP, *FORMULA_NAMES, "_x0041_", "x & y < z", "  两端空格 ", "a\x07b", "<r>", "</r>"]
    frame = pd.DataFrame({"文本": texts, "数值": np.arange(len(texts), dtype=float)})
    write_workbook(tmp_path / "t.xlsx", {"表": frame}, notes={"说明": ["=说明第一行", "二"]})
    wb = openpyxl.load_workbook(tmp_path / "t.xlsx")
    got = [(c.value, c.data_type) for (c,) in wb["表"].iter_rows(min_row=2, max_col=1)]
    shown = [v.replace("_x005F_", "_").replace("_x0007_", "\x07") for v, _ in got]  # Excel's escapes, undone
    assert shown == texts and {t for _, t in got} == {"s"}
    assert [(c.value, c.data_type) for (c,) in wb["说明"].iter_rows()] == [("=说明第一行", "s"), ("二", "s")]


def test_a_text_over_excels_limit_is_cut_there(tmp_path):
    long = "长" * 40_000
    write_workbook(tmp_path / "t.xlsx", {"表": pd.DataFrame({"a": [long, "后一行"]})})
    (c1,), (c2,) = openpyxl.load_workbook(tmp_path / "t.xlsx")["表"].iter_rows(min_row=2)
    assert c1.value == "长" * STRING_MAX and c2.value == "后一行"


def test_a_column_of_numbers_and_texts_keeps_each_kind(tmp_path):
    frame = pd.DataFrame({"混合": [1.5, "=1+1", None, True, float("inf")], "b": ["x", "y", "z", "w", "v"]})
    write_workbook(tmp_path / "t.xlsx", {"表": frame})
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["表"]
    got = [(c.value, c.data_type) for (c,) in ws.iter_rows(min_row=2, max_col=1)]
    assert got == [(1.5, "n"), ("=1+1", "s"), (None, "n"), ("是", "s"), (None, "n")]


# --- the workbook a user sees is the previous writer's ---------------------------------------------


HEADER_STYLE = {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "vcenter"}


def reference_workbook(path: Path, sheets: dict[str, pd.DataFrame], notes: dict[str, list[str]]) -> None:
    """The sheets as the previous writer wrote them, through xlsxwriter's public API cell by cell."""
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "nan_inf_to_errors": False})
    head = wb.add_format(HEADER_STYLE)
    for name, df in sheets.items():
        ws = wb.add_worksheet(name)
        for j, c in enumerate(df.columns):
            ws.write_string(0, j, str(c), head)
        widths = [min(max(_width(c), 6), 40) for c in df.columns]
        for i, row in enumerate(df.itertuples(index=False), start=1):
            for j, v in enumerate(row):
                if isinstance(v, (bool, np.bool_)):
                    ws.write_string(i, j, "是" if v else "否")
                elif isinstance(v, (int, float, np.integer, np.floating)):
                    if math.isfinite(v):
                        ws.write_number(i, j, float(v))
                elif v is not None and v is not pd.NA and v == v:
                    ws.write_string(i, j, str(v))
                    if i <= 200:
                        widths[j] = max(widths[j], min(_width(v) + 2, 60))
        for j, w in enumerate(widths):
            ws.set_column(j, j, w)
        ws.freeze_panes(1, 0)
        if len(df):
            ws.autofilter(0, 0, len(df), df.shape[1] - 1)
    for name, lines in notes.items():
        ws = wb.add_worksheet(name)
        ws.set_column(0, 0, 120)
        for i, line in enumerate(lines):
            ws.write_string(i, 0, line)
    wb.close()


def _width(text: object) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def _widths(ws: openpyxl.worksheet.worksheet.Worksheet) -> dict[int, float]:
    """Column index → width (openpyxl groups neighbouring columns of the same width and style)."""
    return {j: d.width for d in ws.column_dimensions.values() for j in range(d.min, d.max + 1)}


def _same(a: object, b: object) -> bool:
    if a == "" and b is None:  # an empty text: no cell now, an empty text cell before; both show nothing
        return True
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-15)  # xlsxwriter wrote 16 significant digits, now every digit
    return a == b


def test_rankings_xlsx_shows_what_the_previous_writer_showed(tmp_path):
    result = run(SAMPLE, load_scheme(SCHEME), tmp_path / "out")
    ((name, sheets, notes, _layout),) = list(workbook_plan(result.evaluation, result.flags, result.blocks))
    reference_workbook(tmp_path / "old.xlsx", sheets, notes)
    old = openpyxl.load_workbook(tmp_path / "old.xlsx")
    new = openpyxl.load_workbook(tmp_path / "out" / name)
    assert new.sheetnames == old.sheetnames
    assert "连片改造区块" in new.sheetnames and "疑似闲置／低效地块" in new.sheetnames
    for so, sn in zip(old.worksheets, new.worksheets, strict=True):
        assert sn.auto_filter.ref == so.auto_filter.ref, so.title
        # issue 12: frozen at the name column now (tests/test_ranking_tables.py), below the header row as before
        assert (sn.freeze_panes or "A1")[1:] == (so.freeze_panes or "A1")[1:], so.title
        assert (sn.max_row, sn.max_column) == (so.max_row, so.max_column), so.title
        assert _widths(sn) == _widths(so), so.title
        for ro, rn in zip(so.iter_rows(), sn.iter_rows(), strict=True):
            for co, cn in zip(ro, rn, strict=True):
                assert _same(co.value, cn.value), (so.title, co.coordinate, co.value, cn.value)
                if co.row == 1 or so.title == "说明" or cn.value is None:
                    assert co.number_format == cn.number_format, (so.title, co.coordinate)
                else:  # issue 12: each column's number format by its unit (tests/test_ranking_tables.py)
                    shown = HEADER_FORMATS.get(so.cell(1, co.column).value, "General")
                    assert cn.number_format == shown, (so.title, co.coordinate)
                if co.value not in (None, ""):
                    assert co.data_type == cn.data_type, (so.title, co.coordinate)
                if co.row == 1 and so.title != "说明":
                    style_old = (co.font.b, co.fill.fill_type, co.fill.fgColor.rgb, co.border.left.style)
                    style_new = (cn.font.b, cn.fill.fill_type, cn.fill.fgColor.rgb, cn.border.left.style)
                    assert style_new == style_old, (so.title, co.coordinate)
                    assert (cn.alignment.wrap_text, cn.alignment.vertical) == (True, "center")


def test_park_workbooks_cut_from_the_whole_run_show_each_parks_own_sheets(tmp_path):
    """Large runs write a workbook per park whose group sheets and 园区汇总 are cut from the whole run's:
    the cells are those of the sheets computed for the park alone (an enterprise without a park too)."""
    from dataclasses import replace

    from geo_eval.io.writers import _NO_PARK, _SharedSheets
    from geo_eval.io.xlsx import sheet_cells

    result = run(SAMPLE, load_scheme(SCHEME), tmp_path / "out")
    e = result.evaluation.enterprises.copy()
    e.iloc[0, e.columns.get_loc("park")] = None
    for ev in (result.evaluation, replace(result.evaluation, enterprises=e)):
        cut, alone = _SharedSheets(ev, result.flags), _SharedSheets(ev, result.flags)
        alone._cuttable = False  # each park's sheets computed from its own enterprises
        parks = ev.enterprises.groupby(ev.enterprises["park"].fillna(_NO_PARK), sort=True)
        assert len(parks) >= 3
        for park, rows in parks:
            a, b = cut.sheets(rows, whole_park=True), alone.sheets(rows, whole_park=True)
            assert "园区内排名" in a["规上企业"].columns
            assert list(a) == list(b)
            for name in a:
                x, y = sheet_cells(a[name]), sheet_cells(b[name])
                assert x.table.equals(y.table) and x.widths == y.widths, (park, name)
        assert cut._whole_by_park is not None  # the cut path was taken


# --- review comments with control characters ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgis"])
def store(request, sample: Sample, tmp_path: Path):
    """A new store of each backend with the sample run registered."""
    s = (
        SQLiteStore.in_dir(tmp_path / "data")
        if request.param == "sqlite"
        else PostgresStore(request.getfixturevalue("pg_db"))
    )
    s.add_run(run_record_from_out_dir(sample.out), actor="test")
    yield s
    s.close()


@pytest.mark.parametrize("comment", ["现场\x00核查", "响铃\x07", "回车\r单独", "删除\x7f"])
def test_the_store_refuses_control_characters_in_comments(store, comment):
    (run_id,) = [r.run_id for r in store.list_runs()]
    with pytest.raises(InvalidValueError, match="控制字符 U\\+00"):
        store.set_review(run_id, "P1:x", status="confirmed", comment=comment, version=0, actor="a")
    ok = store.set_review(run_id, "P1:x", status="confirmed", comment="第一行\r\n\t第二行", version=0, actor="a")
    assert ok.comment == "第一行\n\t第二行"  # tab and line ends stay (CR LF as LF)
    assert store.get_review(run_id, "P1:x").comment == "第一行\n\t第二行"


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_a_comment_with_a_nul_is_422_in_chinese_on_both_backends(request, sample, backend):
    s = request.getfixturevalue("pg_client") if backend == "postgis" else sample
    client = s.clients[backend]
    flags = pd.read_csv(s.out / "flags.csv", encoding="utf-8-sig", dtype=str)
    fid = str(flags["flag_id"].iloc[2])
    for comment in ("现场\x00核查", "响铃\x07"):
        r = client.patch(
            f"/api/flags/{fid}", json={"status": "confirmed", "comment": comment, "version": 0}, headers=s.h(backend)
        )
        assert r.status_code == 422, (backend, r.status_code, r.text)  # PostgreSQL answered 503 before
        # a NUL is refused by the request guard (api/guards.py), other control characters by the store
        assert ("空字符" if "\x00" in comment else "控制字符") in r.json()["detail"]
    review = client.get(f"/api/flags/{fid}", headers=s.h(backend)).json()["properties"]["review"]
    assert review["version"] == 0
