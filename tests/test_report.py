"""The annual report (年度评价报告): ``report.html`` of ``geo-eval evaluate``, ``geo-eval report`` (HTML and
PDF) and ``GET /reports/{year}``.

The figures of 概况 and 分类结果 and the transition matrix are counted here from the sample's
``enterprises.csv`` files with plain pandas and compared with the tables the report shows; the charts are
read back from the SVG; the report is opened in headless Chromium with every request recorded; the PDF's
text is read with pypdf. Browser tests are skipped without ``/usr/bin/chromium`` (failed instead when
``GEO_EVAL_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

with warnings.catch_warnings():  # starlette asks for httpx2; the httpx TestClient works the same
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo_eval.cli import app as cli_app
from geo_eval.io.report import read_csv, read_run
from geo_eval.storage import open_store, run_record_from_out_dir

CHROMIUM = Path("/usr/bin/chromium")
GEO_EVAL = Path(sys.executable).with_name("geo-eval")
PARK_A, PARK_B = "海滨高新技术产业园", "青松经济开发区"
SECTIONS = ["概况", "分类结果", "指标分布", "行业", "年度变化", "土地", "排名", "数据质量", "评价方法"]
NUMBERS = ["一", "二", "三", "四", "五", "六", "七", "八", "九"]
RATED = ["A", "B", "C", "D"]
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- reading the report back ---------------------------------------------------------------------------
class Tables(HTMLParser):
    """The body rows of every ``<table data-table=…>`` as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._key: str | None = None
        self._in_body = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._key = str(a.get("data-table"))
            self.tables[self._key] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._key is not None:
            self.tables[self._key].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables_of(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def by_first_cell(rows: list[list[str]]) -> dict[str, list[str]]:
    return {r[0]: r[1:] for r in rows}


def money(v: float) -> str:
    return f"{v:,.2f}" if np.isfinite(v) else "—"


def read_enterprises(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "enterprises.csv", encoding="utf-8-sig", dtype={"uscc": str, "industry_code": str})


def units(e: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """合计, each county and each park (the sample's parks all have names)."""
    out = {"合计": e}
    out.update({str(c): rows for c, rows in e.groupby("county")})
    out.update({str(p): rows for p, rows in e.groupby("park")})
    return out


def per_mu(rows: pd.DataFrame, num: str, den: str, ind: str) -> float:
    """Σ numerator / Σ denominator over the rated enterprises whose indicator (a column of the csv) is there."""
    r = rows.loc[rows["grade"].isin(RATED) & rows[ind].notna()]
    return r[num].sum() / r[den].sum()


# --- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_2025(sample_runs: dict[int, Path]) -> str:
    return (sample_runs[2025] / "report.html").read_text(encoding="utf-8")


def browser_unavailable(reason: str) -> None:
    if os.environ.get("GEO_EVAL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; GEO_EVAL_REQUIRE_BROWSER=1 requires the browser tests to run", pytrace=False)
    pytest.skip(f"{reason}：浏览器测试需要 Debian 的 Chromium（/usr/bin/chromium）")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        browser_unavailable("没有 /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()


# --- the file -----------------------------------------------------------------------------------------
def test_evaluate_writes_the_report_with_its_nine_sections(sample_runs, report_2025):
    for year in (2024, 2025):
        assert (sample_runs[year] / "report.html").is_file()
    heads = re.findall(r'<section class="report" id="s(\d)"><h2>([^<]+)</h2>', report_2025)
    assert heads == [(str(i + 1), f"{NUMBERS[i]}、{t}") for i, t in enumerate(SECTIONS)]
    assert "2025年度工业企业资源集约利用综合评价报告" in report_2025
    assert not re.search(r"<script|<link|\bsrc=|https?://(?!www\.w3\.org/)", report_2025), "the report loads something"


def test_the_report_opens_in_chromium_without_a_request_outside_the_file(chromium, sample_runs):
    path = sample_runs[2025] / "report.html"
    context = chromium.new_context(locale="zh-CN")
    requests: list[str] = []
    context.on("request", lambda req: requests.append(req.url))
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert page.locator("section.report h2").all_inner_texts() == [
        f"{n}、{t}" for n, t in zip(NUMBERS, SECTIONS, strict=True)
    ]
    assert page.locator("figure.chart svg").count() >= 12
    # the stylesheet applies (A4 print rules live beside it): the headings are styled, sections break pages
    assert page.eval_on_selector("h2", "h => getComputedStyle(h).borderBottomStyle") == "solid"
    page.emulate_media(media="print")
    assert page.eval_on_selector("section.report", "s => getComputedStyle(s).breakBefore") == "page"
    assert page.eval_on_selector("thead", "t => getComputedStyle(t).display") == "table-header-group"
    context.close()
    outside = [u for u in requests if u != path.as_uri() and not u.startswith("data:")]
    assert requests and outside == [], outside
    assert console == []


def test_every_chart_carries_its_chinese_title_and_axis_labels_as_text(report_2025):
    figures = re.findall(r'<figure class="chart"([^>]*)>(.*?)</figure>', report_2025, flags=re.S)
    assert len(figures) >= 12
    keys = set()
    for attrs, body in figures:
        meta = dict(re.findall(r'data-(\w+)="([^"]*)"', attrs))
        keys.add(meta["chart"])
        texts = [re.sub(r"\s+", "", t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", body)]
        for what in ("title", "xlabel", "ylabel"):
            assert CJK.search(meta[what]), (meta["chart"], what, meta[what])
            assert meta[what] in texts, (meta["chart"], what, meta[what])
        assert "<path" in body and "<image" not in body  # vector marks (the sample's parks are small)
    expected = {"c-overview", "c-classes", "c-industries", "c-changes", "c-map-0", "c-land", "c-scores", "c-problems"}
    assert expected <= keys and any(k.startswith("c-ind-") for k in keys)
    overview = next(body for attrs, body in figures if 'data-chart="c-overview"' in attrs)
    assert "各县区、园区亩均税收" in overview and "亩均税收（万元/亩）" in overview and "县区／园区" in overview


def test_overview_figures_are_those_of_enterprises_csv(sample_runs, report_2025):
    e = read_enterprises(sample_runs[2025])
    last = units(read_enterprises(sample_runs[2024]))
    t = tables_of(report_2025)
    overview, aggregates = by_first_cell(t["overview"]), by_first_cell(t["aggregates"])
    assert set(overview) == {"合计", "海滨区", "青松县", PARK_A, PARK_B, "海滨临港工业园"}
    indicators = [("tax", "land_mu", "tax_per_mu"), ("sales", "land_mu", "revenue_per_mu"),
                  ("tax", "energy_tce", "tax_per_energy")]  # fmt: skip
    for name, rows in units(e).items():
        rated = rows["grade"].isin(RATED)
        assert overview[name] == [
            f"{len(rows):,}", f"{int(rated.sum()):,}", f"{int((rows['grade'] == 'T').sum()):,}",
            money(rows["land_mu"].sum()), money(rows["tax"].sum()), money(rows["sales"].sum()),
        ], name  # fmt: skip
        expected = []
        for num, den, ind in indicators:
            now, before = per_mu(rows, num, den, ind), per_mu(last[name], num, den, ind)
            expected += [money(now), money(before), f"{(now / before - 1) * 100:+.1f}%"]
        assert aggregates[name] == expected, name
    assert e["tax"].sum() > 0 and overview["合计"][0] == "602"


def test_class_figures_are_those_of_enterprises_csv(sample_runs, report_2025):
    e = read_enterprises(sample_runs[2025])
    classes = by_first_cell(tables_of(report_2025)["classes"])
    for name, rows in units(e).items():
        counts = rows["grade"].value_counts()
        n = {g: int(counts.get(g, 0)) for g in [*RATED, "T"]}
        rated = sum(n[g] for g in RATED)
        shares = [f"{n[g] / rated * 100:.1f}%" for g in RATED]
        assert classes[name] == [*(str(n[g]) for g in [*RATED, "T"]), str(rated), *shares], name
    assert classes["合计"][:5] == ["105", "219", "169", "59", "50"]  # the README's counts


def test_the_transition_matrix_is_the_one_counted_from_both_years(sample_runs, report_2025):
    now = read_enterprises(sample_runs[2025])[["uscc", "grade"]]
    before = read_enterprises(sample_runs[2024])[["uscc", "grade"]]
    both = before.merge(now, on="uscc", how="outer", suffixes=("_before", "_now"))
    both["grade_before"] = both["grade_before"].fillna("新参评")
    both["grade_now"] = both["grade_now"].fillna("不再参评")
    counted = pd.crosstab(both["grade_before"], both["grade_now"])
    rows = by_first_cell(tables_of(report_2025)["transitions"])
    order_rows = ["A类", "B类", "C类", "D类", "T类", "新参评"]
    order_cols = ["A", "B", "C", "D", "T", "不再参评"]
    assert list(rows) == order_rows
    for label in order_rows:
        key = label.removesuffix("类")
        want = [int(counted.loc[key, c]) if key in counted.index and c in counted.columns else 0 for c in order_cols]
        assert rows[label] == [str(v) for v in [*want, sum(want)]], label
    assert int(rows["新参评"][-1]) == len(set(now["uscc"]) - set(before["uscc"])) > 0
    assert int(rows["A类"][-1]) == int((before["grade"] == "A").sum())


def test_the_report_reads_texts_back_as_arrow_strings_without_the_formula_guard():
    content = "\ufeffuscc,name,tax\n9132,'=HYPERLINK(1),2.5\n9133,,3\n9134,''-x,\n".encode()
    frame = read_csv(content, text=("uscc", "name"))
    arrow_text = pd.StringDtype("pyarrow", na_value=np.nan)  # not a Python object per row
    assert frame["uscc"].dtype == arrow_text and frame["name"].dtype == arrow_text
    assert frame["uscc"].tolist() == ["9132", "9133", "9134"]
    assert frame["name"].iloc[0] == "=HYPERLINK(1)" and frame["name"].iloc[2] == "'-x"
    assert pd.isna(frame["name"].iloc[1])
    assert frame["tax"].iloc[:2].tolist() == [2.5, 3.0] and np.isnan(frame["tax"].iloc[2])


def test_a_run_read_back_for_its_report_holds_its_texts_as_arrow_strings(sample_runs):
    run = read_run(sample_runs[2025])
    e, flags = run.enterprises, run.flags
    assert flags is not None
    for frame, column in ((e, "name"), (e, "uscc"), (e, "grade"), (flags, "flag_id"), (flags, "park")):
        assert frame[column].dtype == pd.StringDtype("pyarrow", na_value=np.nan), column
    written = read_enterprises(sample_runs[2025])
    assert e["uscc"].tolist() == written["uscc"].tolist()
    assert e["name"].fillna("").tolist() == written["name"].fillna("").tolist()


def test_the_same_out_dir_gives_the_same_report_but_the_generation_line(sample_runs, tmp_path):
    out = sample_runs[2025]
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    files = []
    for i, seed in enumerate(("1", "987")):
        target = tmp_path / f"r{i}.html"
        subprocess.run([str(GEO_EVAL), "report", str(out), "--out", str(target)], check=True, capture_output=True,
                       env={**env, "PYTHONHASHSEED": seed}, timeout=300)  # fmt: skip
        files.append(target.read_text(encoding="utf-8").splitlines())
    files.append((out / "report.html").read_text(encoding="utf-8").splitlines())  # written by evaluate
    for other in files[1:]:
        assert len(other) == len(files[0])
        differ = [(a, b) for a, b in zip(files[0], other, strict=True) if a != b]
        assert all("报告生成时间：" in a and "报告生成时间：" in b for a, b in differ), differ[:1]
        assert len(differ) <= 1


def test_a_park_report_shows_that_park_only(sample_runs, tmp_path):
    runner = CliRunner()
    target = tmp_path / "park.html"
    r = runner.invoke(cli_app, ["report", str(sample_runs[2025]), "--park", PARK_B, "--out", str(target)])
    assert r.exit_code == 0, r.output
    html = target.read_text(encoding="utf-8")
    classes = by_first_cell(tables_of(html)["classes"])
    assert set(classes) == {"合计", "青松县", PARK_B}
    e = read_enterprises(sample_runs[2025])
    assert classes[PARK_B][4] == str(int(((e["park"] == PARK_B) & (e["grade"] == "T")).sum()))
    assert PARK_A not in html
    bad = runner.invoke(cli_app, ["report", str(sample_runs[2025]), "--park", "不存在园", "--out", str(target)])
    assert bad.exit_code == 2 and "本批次没有园区 不存在园" in bad.output


def test_pdf_has_the_sections(sample_runs, tmp_path):
    if not CHROMIUM.is_file():
        browser_unavailable("没有 /usr/bin/chromium")
    import pypdf

    pdf = tmp_path / "报告.pdf"
    r = CliRunner().invoke(
        cli_app, ["report", str(sample_runs[2025]), "--out", str(tmp_path / "r.html"), "--pdf", str(pdf)]
    )
    assert r.exit_code == 0, r.output
    reader = pypdf.PdfReader(pdf)
    text = unicodedata.normalize("NFKC", "".join(p.extract_text() for p in reader.pages))
    assert len(reader.pages) >= 9  # a page (at least) per section
    for n, title in zip(NUMBERS, SECTIONS, strict=True):
        assert f"{n}、{title}" in text, title
    box = reader.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (210, 297)  # A4


def test_pdf_without_a_browser_says_so_plainly(sample_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("GEO_EVAL_CHROMIUM", str(tmp_path / "no-such-browser"))
    r = CliRunner().invoke(cli_app, ["report", str(sample_runs[2024]), "--out", str(tmp_path / "r.html"),
                                     "--pdf", str(tmp_path / "r.pdf")])  # fmt: skip
    assert r.exit_code == 2
    assert "未找到 Chromium 浏览器，无法生成 PDF" in r.output
    assert (tmp_path / "r.html").is_file() and not (tmp_path / "r.pdf").exists()


def test_no_report_and_no_flags(catalogue_dir, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli_app, ["evaluate", str(catalogue_dir), "--out", str(tmp_path / "a"), "--no-report"])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "a" / "report.html").exists()
    r = runner.invoke(cli_app, ["evaluate", str(catalogue_dir), "--out", str(tmp_path / "b"), "--no-flags"])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "b" / "report.html").read_text(encoding="utf-8")
    assert "关闭了地块标记（--no-flags）" in html and "没有指定上年结果" not in html
    assert "本批次评价时未指定上年结果（--previous），没有年度变化。" in html


# --- the service ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def service(sample_runs, tmp_path_factory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    data = tmp_path_factory.mktemp("report-service")
    store = open_store(data)
    for year in (2024, 2025):
        store.add_run(run_record_from_out_dir(sample_runs[year]), actor="test")
    tokens = {
        "admin": store.add_user("admin", "admin", [])[1],
        "com": store.add_user("com", "committee", [PARK_A])[1],
    }
    run = store.latest_run(2025)
    flag_id = str(pd.read_csv(sample_runs[2025] / "flags.csv", encoding="utf-8-sig", dtype=str)["flag_id"].iloc[0])
    store.set_review(run.run_id, flag_id, status="confirmed", comment="", version=0, actor="admin")
    store.close()
    app = create_app(Settings(data_dir=data, secret_key="r" * 48, cookie_secure=False))
    with TestClient(app) as client:
        yield client, {k: f"Bearer {v}" for k, v in tokens.items()}


def test_a_committee_gets_its_own_parks_report_and_403_for_another(service):
    client, auth = service
    r = client.get("/reports/2025", headers={"Authorization": auth["com"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "style-src-elem 'sha256-" in csp
    classes = by_first_cell(tables_of(r.text)["classes"])
    assert set(classes) == {"合计", "海滨区", PARK_A} and PARK_B not in r.text
    assert "/reports/2025?format=html" in r.text
    assert client.get(f"/reports/2025?park={PARK_B}", headers={"Authorization": auth["com"]}).status_code == 403
    own = client.get(f"/reports/2025?park={PARK_A}&format=html", headers={"Authorization": auth["com"]})
    assert own.status_code == 200 and "attachment" in own.headers["content-disposition"]
    assert "范围：海滨高新技术产业园" in own.text and "下载 HTML" not in own.text


def test_the_service_report_has_the_review_progress_and_the_whole_run_for_an_admin(service, sample_runs):
    client, auth = service
    r = client.get("/reports/2025", headers={"Authorization": auth["admin"]})
    assert r.status_code == 200
    t = tables_of(r.text)
    assert set(by_first_cell(t["classes"])) >= {PARK_A, PARK_B, "海滨临港工业园"}
    reviews = t["reviews"]
    assert sum(int(row[3]) for row in reviews) == 1  # 确认: the one review made
    flags = pd.read_csv(sample_runs[2025] / "flags.csv", encoding="utf-8-sig", dtype=str)
    assert sum(int(row[-1]) for row in reviews) == len(flags)
    assert sum(int(row[1]) for row in reviews) == len(flags) - 1  # 待复核
    assert "转移矩阵" in r.text and "不再参评" in r.text  # last year's run is registered
    assert client.get("/reports/2031", headers={"Authorization": auth["admin"]}).status_code == 404


def test_the_service_prints_the_pdf(service):
    if not CHROMIUM.is_file():
        browser_unavailable("没有 /usr/bin/chromium")
    client, auth = service
    r = client.get("/reports/2024?format=pdf", headers={"Authorization": auth["com"]})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-") and "filename*=UTF-8''2024" in r.headers["content-disposition"]


def test_the_served_report_keeps_its_style_and_charts_under_its_csp(service, chromium):
    client, auth = service
    r = client.get("/reports/2025", headers={"Authorization": auth["admin"]})
    body, csp = r.text, r.headers["content-security-policy"]
    context = chromium.new_context(locale="zh-CN")
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.route(
        "http://report.test/**",
        lambda route: route.fulfill(
            status=200, body=body, headers={"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": csp}
        ),
    )
    page.goto("http://report.test/reports/2025")
    assert page.eval_on_selector("h2", "h => getComputedStyle(h).borderBottomStyle") == "solid"  # <style> allowed
    fill = page.eval_on_selector("figure[data-chart=c-classes] svg path[style*='fill: #2e7d32']",
                                 "p => getComputedStyle(p).fill")  # fmt: skip
    assert fill == "rgb(46, 125, 50)"  # the charts' style attributes too (A class green)
    assert page.locator("a", has_text="下载 HTML").count() == 1
    context.close()
    assert not [m for m in console if "Content Security Policy" in m], console
