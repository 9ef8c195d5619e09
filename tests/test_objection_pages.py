"""The objections page (``/objections``, 公示与异议) in a real headless Chromium against ``geo-eval serve``.

The sample's 2025 data is evaluated and registered and put 公示中 with ``geo-eval runs status`` (the
publicity period around today's date in Beijing); 2024 is registered too and stays 草稿. Users: a
committee of each of two parks, two reviewers and an administrator (``geo-eval users add``). Every click
is a real mouse click or tap (a file is chosen through the file chooser a click on the input opens);
values are compared with the run's own files (``enterprises.csv``, ``parcels.gpkg``) and with the service.
Screenshots (desktop 1280×800, phone 390×844) go to the module's temporary directory ``screens``.

Tests share the service; one that needs an objection another test records makes it through the API when
that test did not run (so each test also runs alone).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openpyxl
import pandas as pd
import pyogrio
import pytest
from serving import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Tab,
    check_tab,
    cli,
    open_tab,
    playwright_api,
    sample_dataset,
    serving,
    sign_in_page,
)

from geo_eval.io.run import run
from geo_eval.publication.objections import format_value
from geo_eval.publication.status import today
from geo_eval.rating.scheme import load_scheme

PARK = "海滨高新技术产业园"
OTHER_PARK = "青松经济开发区"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
USERS = {
    "com": ("海滨管委会", "committee", PARK),
    "com2": ("青松管委会", "committee", OTHER_PARK),
    "rev": ("复核员甲", "reviewer", None),
    "rev2": ("复核员乙", "reviewer", None),
    "admin": ("管理员", "admin", None),
}
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
PDF += b"trailer<</Root 1 0 R>>\n%%EOF\n"
XSS = "<img src=x onerror=alert(1)>销售额漏报"
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")

sync_api = playwright_api()
expect = sync_api.expect


@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    out: Path
    shots: Path
    files: Path
    start: str
    end: str
    enterprises: pd.DataFrame
    parcels: pd.DataFrame
    made: dict[str, int] = field(default_factory=dict)

    def api(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=30)

    def objection(self, objection_id: int) -> dict[str, Any]:
        with self.api("admin") as api:
            r = api.get(f"/api/objections/{objection_id}")
            assert r.status_code == 200, r.text
            return dict(r.json())

    def tax_subject(self) -> pd.Series:
        """The first enterprise of the park (by name) with a tax figure that holds no parcel we use."""
        e = self.enterprises
        rows = e.loc[(e["park"] == PARK) & e["tax"].notna()].sort_values("name")
        land = self.land_subject()[0]
        return rows.loc[rows["uscc"] != land].iloc[0]

    def land_subject(self) -> tuple[str, list[str]]:
        """An enterprise of the park holding two or more parcels, and those parcels (by code)."""
        p = self.parcels.loc[
            (self.parcels["park"] == PARK) & self.parcels["holder_uscc"].isin(self.enterprises["uscc"])
        ]
        counts = p.groupby("holder_uscc")["parcel_id"].agg(sorted)
        uscc = sorted(u for u, ids in counts.items() if len(ids) >= 2)[0]
        return uscc, list(counts[uscc])

    def ensure(self, key: str) -> int:
        """The objection a test recorded in the browser (``tax`` or ``land``), made through the API if it did not."""
        if key not in self.made:
            if key == "tax":
                body = {"uscc": self.tax_subject()["uscc"], "field": "tax"}
            else:
                uscc, parcels = self.land_subject()
                body = {"uscc": uscc, "parcel_id": parcels[1], "field": "registered_area_m2"}
            with self.api("com") as api:
                r = api.post("/api/objections", json={"year": 2025, "claimed_value": "1000", "reason": "补", **body})
                assert r.status_code == 201, r.text
                self.made[key] = int(r.json()["id"])
        return self.made[key]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("objection-pages")
    scheme = load_scheme("lianyungang")
    run(sample_dataset(base / "dataset2024", year=2024), scheme, base / "out2024")
    out = base / "out"
    run(sample_dataset(base / "dataset"), scheme, out, previous_dir=base / "out2024")
    env = {
        **os.environ,  # PYTHONPATH too: the service imports the code under test
        "GEO_EVAL_DATA_DIR": str(base / "data"),
        "GEO_EVAL_SECRET_KEY": secrets.token_urlsafe(48),
        "GEO_EVAL_COOKIE_SECURE": "false",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GEO_EVAL_DEMO", None)
    cli("runs", "add", str(base / "out2024"), env=env)
    cli("runs", "add", str(out), env=env)
    day = today()
    start, end = (day - dt.timedelta(days=3)).isoformat(), (day + dt.timedelta(days=14)).isoformat()
    said = cli("runs", "status", "2025", "--to", "publicity", "--start", start, "--end", end, env=env)
    assert "公示中" in said
    tokens = {}
    for key, (name, role, park) in USERS.items():
        args = ["users", "add", name, "--role", role, *(["--park", park] if park else [])]
        tokens[key] = cli(*args, env=env).splitlines()[-1]
    enterprises = pd.read_csv(out / "enterprises.csv", encoding="utf-8-sig", dtype=str)
    parcels = pyogrio.read_dataframe(out / "parcels.gpkg", layer="parcels", read_geometry=False)
    files = base / "files"
    files.mkdir()
    log = base / "server.log"
    with serving(env, log, args=["--log-level", "warning"], cwd=base) as url:
        yield Server(url, tokens, out, base / "screens", files, start, end, enterprises, parcels)
    text = log.read_text()
    assert "Traceback" not in text, text
    for token in tokens.values():
        assert token not in text


@pytest.fixture(scope="module")
def browser(server) -> Iterator[Any]:
    assert CHROMIUM.is_file()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def tabs(browser, server, request) -> Iterator[Any]:
    """Opens tabs (``tabs(viewport)``); each is checked and closed after the test."""
    opened: list[Tab] = []

    def make(viewport: dict[str, int] = DESKTOP) -> Tab:
        t = open_tab(browser, f"{request.node.name}-{len(opened)}", viewport)
        opened.append(t)
        return t

    yield make
    for t in opened:
        t.page.context.close()
    for t in opened:
        check_tab(t, server.url)


def sign_in(tab: Tab, server: Server, who: str, path: str = "/objections") -> Any:
    sign_in_page(tab, server.url, USERS[who][0], server.tokens[who], path)
    tab.page.locator(".ob-list-body table, .ob-list-body .ob-empty").first.wait_for(timeout=15_000)
    return tab.page


def row(page: Any, objection_id: int) -> Any:
    return page.locator(f'.ob-table tr[data-id="{objection_id}"]')


def cells(page: Any, objection_id: int) -> dict[str, str]:
    """The list row of an objection: header → the cell's text."""
    heads = ["编号", "园区", "企业／宗地", "事项", "公示值", "主张值", "状态", "处理结果", "登记时间"]
    texts = row(page, objection_id).locator("td").all_inner_texts()
    return dict(zip(heads, (t.strip() for t in texts), strict=True))


def open_detail(page: Any, objection_id: int) -> Any:
    row(page, objection_id).get_by_role("link", name=f"查看第 {objection_id} 号异议").click()
    detail = page.locator("#ob-detail")
    expect(detail.locator("h2")).to_contain_text(f"第 {objection_id} 号异议")
    return detail


def choose_file(page: Any, selector: str, paths: list[Path]) -> None:
    """Choose files like a person: click the input, answer the file chooser it opens."""
    with page.expect_file_chooser() as chooser:
        page.locator(selector).click()
    chooser.value.set_files([str(p) for p in paths])


def too_small(page: Any) -> list[str]:
    """Visible buttons and button-like links lower than 44 px (what a finger needs)."""
    found = page.evaluate(
        """() => [...document.querySelectorAll('button, a.button, .ob-open, input[type=file], select')]
          .filter((n) => n.offsetParent !== null)
          .map((n) => [n.textContent.trim() || n.id, n.getBoundingClientRect().height])
          .filter(([, h]) => h < 44)"""
    )
    return [f"{t} ({h:.0f}px)" for t, h in found]


# --- recording ------------------------------------------------------------------------------------------
def test_committee_records_a_tax_objection_with_a_pdf_and_sees_it_listed(tabs, server):
    tab = tabs(DESKTOP)
    page = sign_in(tab, server, "com")
    banner = page.locator(".ob-banner")
    expect(banner).to_contain_text("公示中")
    assert server.start in banner.inner_text() and server.end in banner.inner_text()
    assert "可登记异议" in banner.inner_text()
    subject = server.tax_subject()
    page.get_by_role("button", name="登记异议").click()
    form = page.locator("#ob-record")
    expect(form).to_be_visible()
    assert page.locator("#ob-park option").all_inner_texts() == [PARK]
    expect(page.locator("#ob-enterprise option").first).not_to_have_text("正在载入……")
    page.locator("#ob-search").click()
    page.keyboard.type(subject["name"][:6])
    page.locator("#ob-enterprise").select_option(subject["uscc"])
    page.locator("#ob-field").select_option("tax")
    shown = f"{format_value(float(subject['tax']))} 万元"
    expect(page.locator("#ob-run-value")).to_have_text(shown)
    expect(page.locator("#ob-parcel")).to_be_hidden()
    claimed = format_value(float(subject["tax"]) + 123.4)
    page.locator("#ob-claimed").fill(claimed)
    page.locator("#ob-reason").fill("企业2025年度实缴税款含一笔补缴，以税务部门完税证明为准")
    pdf = server.files / "完税证明.pdf"
    pdf.write_bytes(PDF)
    note = server.files / "说明.txt"
    note.write_text("不是 PDF", encoding="utf-8")
    choose_file(page, "#ob-files", [pdf, note])
    page.get_by_role("button", name="提交异议").click()
    result = page.locator("#ob-record .ob-result")
    expect(result).to_contain_text("已登记第")
    text = result.inner_text()
    assert "完税证明.pdf：已上传" in text
    assert re.search(r"说明\.txt：上传失败：.*不是 PDF、PNG 或 JPEG", text), text  # per file, in Chinese
    oid = int(re.search(r"已登记第 (\d+) 号异议", text).group(1))
    server.made["tax"] = oid
    tab.shot("recorded", server.shots)
    # the list shows it with the run's figure
    expect(row(page, oid)).to_be_visible()
    c = cells(page, oid)
    assert c["园区"] == PARK and subject["name"] in c["企业／宗地"] and subject["uscc"] in c["企业／宗地"]
    assert (c["事项"], c["公示值"], c["主张值"], c["状态"], c["处理结果"]) == (
        "税收",
        shown,
        f"{claimed} 万元",
        "待处理",
        "—",
    )
    assert STAMP.fullmatch(c["登记时间"])
    stored = server.objection(oid)
    assert (stored["run_value"], stored["claimed_value"], stored["created_by"]) == (
        format_value(float(subject["tax"])),
        claimed,
        USERS["com"][0],
    )
    assert c["登记时间"] == stored["created_at_label"]  # Beijing time, as the service labels it
    assert [f["name"] for f in stored["files"]] == ["完税证明.pdf"]
    # the detail: every field, the evidence file as a download, the history
    detail = open_detail(page, oid)
    fields = detail.locator(".ob-fields").inner_text()
    assert subject["uscc"] in fields and "异议事项\n税收" in fields and "企业2025年度实缴税款" in fields
    with page.expect_download() as dl:
        detail.get_by_role("link", name="完税证明.pdf").click()
    assert Path(dl.value.path()).read_bytes() == PDF
    history = detail.locator(".ob-history li").all_inner_texts()
    assert len(history) == 2 and "登记异议" in history[0] and "上传证明材料" in history[1]
    assert all(STAMP.match(h) for h in history)
    # a committee does not decide
    assert detail.get_by_role("button", name="采纳").count() == 0
    tab.shot("detail", server.shots)


def test_committee_on_a_phone_records_a_land_area_objection_choosing_the_parcel(tabs, server):
    tab = tabs(PHONE)
    page = sign_in(tab, server, "com")
    uscc, parcel_ids = server.land_subject()
    name = server.enterprises.loc[server.enterprises["uscc"] == uscc, "name"].iloc[0]
    new = page.get_by_role("button", name="登记异议")
    assert new.bounding_box()["height"] >= 44
    new.tap()
    expect(page.locator("#ob-enterprise option").first).not_to_have_text("正在载入……")
    page.locator("#ob-search").tap()
    page.keyboard.type(uscc[-8:])
    expect(page.locator("#ob-enterprise option")).to_have_count(1)
    page.locator("#ob-enterprise").select_option(uscc)
    page.locator("#ob-field").select_option("registered_area_m2")
    expect(page.locator("#ob-parcel")).to_be_visible()
    options = page.locator("#ob-parcel option").evaluate_all("(os) => os.map((o) => o.value)")
    mine = server.parcels.loc[
        (server.parcels["park"] == PARK)
        & (
            (server.parcels["holder_uscc"] == uscc)
            | server.parcels["users"].fillna("").str.split(";").apply(lambda users: uscc in users)
        ),
        "parcel_id",
    ]
    assert sorted(options) == sorted(mine) and set(parcel_ids) <= set(options)
    target = parcel_ids[1]
    page.locator("#ob-parcel").select_option(target)
    area = server.parcels.loc[server.parcels["parcel_id"] == target, "registered_area_m2"].iloc[0]
    shown = f"{format_value(float(area))} 平方米"
    expect(page.locator("#ob-run-value")).to_have_text(shown)
    claimed = format_value(float(area) - 500)
    page.locator("#ob-claimed").fill(claimed)
    page.locator("#ob-reason").fill("不动产权证书登记面积与公示不符")
    tab.shot("phone-form", server.shots)
    assert not too_small(page), too_small(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is wider than the phone: {width}px"
    page.get_by_role("button", name="提交异议").tap()
    result = page.locator("#ob-record .ob-result")
    expect(result).to_contain_text("已登记第")
    oid = int(re.search(r"已登记第 (\d+) 号异议", result.inner_text()).group(1))
    server.made["land"] = oid
    expect(row(page, oid)).to_be_visible()
    c = cells(page, oid)
    assert c["事项"] == "用地面积" and c["公示值"] == shown and f"宗地 {target}" in c["企业／宗地"]
    assert name in c["企业／宗地"]
    stored = server.objection(oid)
    assert (stored["parcel_id"], stored["run_value"], stored["claimed_value"]) == (
        target,
        format_value(float(area)),
        claimed,
    )
    # the list is a column of cards on the phone, nothing wider than the screen
    row(page, oid).scroll_into_view_if_needed()
    box = row(page, oid).bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    tab.shot("phone-list", server.shots)
    link = row(page, oid).get_by_role("link", name=f"查看第 {oid} 号异议")
    assert link.bounding_box()["height"] >= 44
    link.tap()
    expect(page.locator("#ob-detail h2")).to_contain_text(f"第 {oid} 号异议")
    assert "宗地代码" in page.locator("#ob-detail .ob-fields").inner_text()
    assert not too_small(page), too_small(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    tab.shot("phone-detail", server.shots)


# --- deciding -------------------------------------------------------------------------------------------
def test_a_reviewer_accepts_with_a_corrected_value_other_than_the_claim(tabs, server):
    oid = server.ensure("tax")
    before = server.objection(oid)
    tab = tabs(DESKTOP)
    page = sign_in(tab, server, "rev")
    assert page.get_by_role("button", name="登记异议").count() == 0  # reviewers decide, they do not record
    page.locator("#ob-filter-status").select_option("open")
    expect(row(page, oid)).to_be_visible()
    detail = open_detail(page, oid)
    corrected = detail.locator("#ob-corrected")
    expect(corrected).to_have_value(before["claimed_value"])  # the claim, prefilled
    value = format_value(float(before["claimed_value"]) - 20)
    corrected.fill(value)
    detail.locator("#ob-decision-reason").fill("按完税证明核定")
    detail.get_by_role("button", name="采纳", exact=True).click()
    expect(detail.locator("h2 .ob-badge")).to_have_text("采纳")
    assert detail.locator(".ob-decide").count() == 0
    after = server.objection(oid)
    assert (after["status"], after["corrected_value"], after["decision_reason"], after["decided_by"]) == (
        "accepted",
        value,
        "按完税证明核定",
        USERS["rev"][0],
    )
    assert f"更正值\n{value} 万元" in detail.locator(".ob-fields").inner_text()
    expect(row(page, oid)).to_have_count(0)  # the list still shows only 待处理
    page.locator("#ob-filter-status").select_option("accepted")
    expect(row(page, oid)).to_be_visible()
    assert cells(page, oid)["处理结果"] == f"更正值 {value} 万元"
    assert "处理异议：采纳，更正值 " + value in detail.locator(".ob-history").inner_text()
    tab.shot("accepted", server.shots)


def test_an_administrator_rejects_only_with_a_reason(tabs, server):
    oid = server.ensure("land")
    tab = tabs(DESKTOP)
    page = sign_in(tab, server, "admin")
    detail = open_detail(page, oid)
    detail.get_by_role("button", name="不采纳", exact=True).click()
    expect(detail.locator(".ob-error")).to_have_text("不采纳须填写理由。")
    assert server.objection(oid)["status"] == "open"  # nothing was sent
    detail.locator("#ob-decision-reason").fill("登记面积以不动产登记簿为准，与公示一致")
    detail.get_by_role("button", name="不采纳", exact=True).click()
    expect(detail.locator("h2 .ob-badge")).to_have_text("不采纳")
    after = server.objection(oid)
    assert (after["status"], after["decision_reason"], after["decided_by"], after["corrected_value"]) == (
        "rejected",
        "登记面积以不动产登记簿为准，与公示一致",
        USERS["admin"][0],
        "",
    )
    assert cells(page, oid)["处理结果"] == "理由：登记面积以不动产登记簿为准，与公示一致"
    assert cells(page, oid)["状态"] == "不采纳"


def test_a_stale_decision_is_refused_in_chinese_and_the_objection_reloads(tabs, server):
    subject = server.tax_subject()
    with server.api("com") as api:
        r = api.post(
            "/api/objections",
            json={
                "year": 2025,
                "uscc": subject["uscc"],
                "field": "sales",
                "claimed_value": "999",
                "reason": XSS,
            },
        )
        assert r.status_code == 201, r.text
        oid = int(r.json()["id"])
    a, b = tabs(DESKTOP), tabs(PHONE)
    first = sign_in(a, server, "rev")
    second = sign_in(b, server, "rev2")
    mine = open_detail(first, oid)
    theirs = open_detail(second, oid)
    assert XSS in mine.locator(".ob-fields").inner_text()  # a reason shown as text …
    assert mine.locator("img").count() == 0  # … not as markup (a dialog would fail the tab's check)
    theirs.locator("#ob-decision-reason").fill("已核实")
    theirs.get_by_role("button", name="采纳", exact=True).tap()
    expect(theirs.locator("h2 .ob-badge")).to_have_text("采纳")
    # the first reviewer still sees it 待处理 and decides from the old version
    mine.locator("#ob-decision-reason").fill("无证明材料")
    mine.get_by_role("button", name="不采纳", exact=True).click()
    error = mine.locator(".ob-error")
    expect(error).to_contain_text("复核员乙")
    text = error.inner_text()
    assert "采纳" in text and "更正值 999" in text and "已核实" in text and STAMP.search(text)
    assert server.objection(oid)["status"] == "accepted"  # nothing overwritten
    a.shot("conflict", server.shots)
    error.get_by_role("button", name="重新载入该异议").click()
    expect(mine.locator("h2 .ob-badge")).to_have_text("采纳")
    assert mine.locator(".ob-decide").count() == 0
    assert "复核员乙" in mine.locator(".ob-fields").inner_text()


# --- who sees what, downloads ----------------------------------------------------------------------------
def test_the_committee_of_another_park_sees_none_of_them(tabs, server):
    oid = server.ensure("tax")
    tab = tabs(DESKTOP)
    page = sign_in(tab, server, "com2")
    expect(page.locator(".ob-empty")).to_have_text("2025 年度暂无异议。")
    assert page.locator(".ob-table").count() == 0
    page.get_by_role("button", name="登记异议").click()
    assert page.locator("#ob-park option").all_inner_texts() == [OTHER_PARK]
    assert page.request.get(f"{server.url}/api/objections/{oid}").status == 403
    assert page.request.get(f"{server.url}/api/objections/{oid}/evidence/1").status == 403
    page.goto(f"{server.url}/objections#id={oid}")
    expect(page.locator("#ob-detail .error")).to_contain_text("无权查看")
    with page.expect_download() as dl:
        page.get_by_role("link", name="下载异议处理登记表（Excel）").click()
    ws = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes())).worksheets[0]
    assert len(register_rows(ws)) == 0


def register_rows(ws: Any) -> list[dict[str, Any]]:
    rows = list(ws.iter_rows(values_only=True))
    at = next(i for i, r in enumerate(rows) if r and r[0] == "异议编号")
    head = rows[at]
    return [dict(zip(head, r, strict=True)) for r in rows[at + 1 :] if r[0] is not None]


def test_the_register_download_holds_the_listed_objections(tabs, server):
    for key in ("tax", "land"):
        server.ensure(key)
    tab = tabs(DESKTOP)
    page = sign_in(tab, server, "com")
    with page.expect_download() as dl:
        page.get_by_role("link", name="下载异议处理登记表（Excel）").click()
    assert dl.value.suggested_filename.endswith(".xlsx") and "异议处理登记表" in dl.value.suggested_filename
    wb = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()))
    got = register_rows(wb.worksheets[0])
    with server.api("com") as api:
        listed = api.get("/api/objections", params={"year": 2025}).json()
    assert [int(r["异议编号"]) for r in got] == [o["id"] for o in listed] and len(listed) >= 2
    shown = {int(r.get_attribute("data-id")): r for r in page.locator(".ob-table tbody tr").all()}
    assert set(shown) == {o["id"] for o in listed}
    for r, o in zip(got, listed, strict=True):
        assert (r["园区"], r["企业名称"], r["异议事项"], r["处理结果"]) == (
            PARK,
            o["enterprise"],
            o["field_label"],
            o["status_label"],
        )
        assert str(r["公示值"]) == o["run_value"] and str(r["主张值"]) == o["claimed_value"]
        assert (r["登记时间"] or "") == o["created_at_label"]
        c = cells(page, o["id"])
        assert c["公示值"].split(" ")[0] == str(r["公示值"]) and c["状态"] == r["处理结果"]
    # a reviewer also gets the corrections table of the accepted ones
    rev = tabs(DESKTOP)
    rpage = sign_in(rev, server, "rev")
    with rpage.expect_download() as dl:
        rpage.get_by_role("link", name="下载更正表（corrections.csv）").click()
    table = pd.read_csv(dl.value.path(), encoding="utf-8-sig", dtype=str)
    with server.api("rev") as api:
        accepted = api.get("/api/objections", params={"year": 2025, "status": "accepted"}).json()
    assert list(table["objection_id"]) == [str(o["id"]) for o in accepted]
    assert list(table["corrected_value"]) == [o["corrected_value"] for o in accepted]
    assert page.get_by_role("link", name="下载更正表（corrections.csv）").count() == 0  # not for a committee


def test_a_draft_year_takes_no_objections_and_says_why(tabs, server):
    tab = tabs(DESKTOP)
    page = sign_in(tab, server, "com", "/objections?year=2024")
    banner = page.locator(".ob-banner")
    expect(banner).to_contain_text("2024 年度 第 1 版 · 草稿")
    assert "尚未公示，不受理异议" in banner.inner_text()
    assert page.get_by_role("button", name="登记异议").count() == 0
    tab.shot("draft", server.shots)
    page.get_by_role("link", name="2025 年度（公示中）").click()
    expect(page.locator(".ob-banner")).to_contain_text("公示中")
    expect(page.get_by_role("button", name="登记异议")).to_be_visible()
    tab.shot("draft-then-publicity", server.shots)


def test_the_home_page_leads_every_role_to_the_objections(tabs, server):
    for who in ("com", "rev", "admin"):
        tab = tabs(DESKTOP)
        sign_in_page(tab, server.url, USERS[who][0], server.tokens[who], "/")
        name = "公示与异议（登记与查看本园区异议）" if who == "com" else "公示与异议"
        tab.page.get_by_role("link", name=name, exact=True).click()
        tab.page.wait_for_url("**/objections?year=2025")
        expect(tab.page.locator(".ob-banner")).to_contain_text("2025 年度")


def test_the_page_allows_scripts_only_from_the_service(server):
    with server.api("com") as api:
        r = api.get("/objections", headers={"Accept": "text/html"})
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    scripts = re.findall(r"<script([^>]*)>", r.text)
    assert scripts == [' type="module" src="/static/js/objections.js"', ' type="application/json" id="ob-config"']
    assert r.headers["cache-control"] == "no-store"


# --- the year's status, as an administrator moves it and a committee sees it ------------------------------
def test_an_administrator_opens_and_closes_2024s_publicity_on_the_runs_page_and_the_map_says_so(tabs, server):
    admin = tabs(DESKTOP)
    sign_in_page(admin, server.url, USERS["admin"][0], server.tokens["admin"], "/runs")
    page = admin.page
    row = page.locator("tr", has=page.locator("td", has_text=re.compile(r"^2024$")))
    expect(row.locator(".status")).to_have_text("草稿")
    assert row.get_by_role("button", name="正式发布").count() == 0  # a draft is published for comment first
    end = (today() + dt.timedelta(days=9)).isoformat()
    row.get_by_label("公示结束").fill(end)
    row.get_by_role("button", name="开始公示").click()
    expect(page.locator(".notice")).to_contain_text(
        f"已将 2024 年度评价结果改为：2024 年度 第 1 版 · 公示中（公示期 {today()} 至 {end}）"
    )
    row = page.locator("tr", has=page.locator("td", has_text=re.compile(r"^2024$")))
    expect(row.locator(".status")).to_have_text("公示中")
    admin.shot("runs-publicity", server.shots)
    # a committee member opens the park's 2024 map on a phone: the badge and the banner, whose link leads on
    phone = tabs(PHONE)
    path = f"/maps/{quote(PARK, safe='')}?year=2024"
    sign_in_page(phone, server.url, USERS["com"][0], server.tokens["com"], path)
    banner = phone.page.locator(".ge-run-banner")
    expect(banner).to_contain_text(f"2024 年度 第 1 版 · 公示中（公示期 {today()} 至 {end}）")
    expect(phone.page.locator(".ge-run-status")).to_have_text("公示中")
    phone.shot("map-banner", server.shots)
    banner.get_by_role("link", name="登记或查看异议").click()
    phone.page.wait_for_url("**/objections?year=2024")
    expect(phone.page.get_by_role("button", name="登记异议")).to_be_visible()
    # published: locked, and the map says 已发布 without the banner
    row = page.locator("tr", has=page.locator("td", has_text=re.compile(r"^2024$")))
    row.get_by_role("button", name="正式发布").click()
    expect(page.locator(".notice")).to_contain_text("2024 年度 第 1 版 · 已发布")
    row = page.locator("tr", has=page.locator("td", has_text=re.compile(r"^2024$")))
    assert row.get_by_role("button").count() == 0
    phone.page.goto(server.url + path)
    expect(phone.page.locator(".ge-run-status")).to_have_text("已发布")
    assert phone.page.locator(".ge-run-banner").count() == 0
    with server.api("com") as api:
        r = api.post("/api/objections", json={"year": 2024, "uscc": server.tax_subject()["uscc"], "field": "tax",
                                              "claimed_value": "1", "reason": "迟到的异议"})  # fmt: skip
    assert r.status_code == 409 and "已正式发布" in r.json()["detail"]
