"""Differentiated-policy lists (差别化政策清单): the scheme's [[policies]], policies.csv, the agency sheets of
rankings.xlsx, the downloads per agency (committee scope, files and PostGIS backends) and the home page's links.

The expected lists are computed here from enterprises.csv and the scheme's TOML read with tomllib, never
from geo_eval's own policy code.
"""

from __future__ import annotations

import io
import json
import shutil
import tomllib
import warnings
from pathlib import Path
from urllib.parse import quote

import openpyxl
import pandas as pd
import psycopg
import pytest
from typer.testing import CliRunner

with warnings.catch_warnings():  # starlette asks for httpx2; the httpx TestClient works the same
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from conftest import wipe_database

from api.app import create_app
from api.settings import Settings
from geo_eval.cli import app as cli
from geo_eval.db import PostgresStore, init_schema
from geo_eval.errors import SchemeError
from geo_eval.io import load_inputs, writers
from geo_eval.io.run import run
from geo_eval.pipeline import evaluate_inputs
from geo_eval.rating.policies import policy_rows
from geo_eval.rating.scheme import Policy, load_scheme, parse_scheme, preset_names, preset_text
from geo_eval.storage import open_store, run_record_from_out_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_parcels"
PRESETS = ROOT / "geo_eval" / "rating" / "schemes"
DEFAULT = "lianyungang"  # the scheme of the sample_runs fixture
COLUMNS = ["uscc", "name", "county", "park", "grade", "measure", "label", "value", "unit", "agency", "basis"]
SHEET_HEADERS = [
    "统一社会信用代码",
    "企业名称",
    "县区",
    "园区",
    "分类",
    "措施",
    "执行标准",
    "计量单位",
    "实施部门",
    "依据",
]
SHEET_COLUMNS = ["uscc", "name", "county", "park", "grade", "label", "value", "unit", "agency", "basis"]
TEMPLATE = "模板值，须由本市核定"


def scheme_policies(name: str = DEFAULT) -> list[dict]:
    """The [[policies]] of a preset, as TOML gives them."""
    return tomllib.loads((PRESETS / f"{name}.toml").read_text(encoding="utf-8"))["policies"]


def value_text(v: object) -> str:
    """How a TOML value is written in a csv (0.05, 50, a text)."""
    return v if isinstance(v, str) else repr(v)


def expected_rows(enterprises: pd.DataFrame, policies: list[dict]) -> pd.DataFrame:
    """policies.csv worked out from enterprises.csv (as text) and the scheme's [[policies]]."""
    rows = []
    for p in policies:
        for e in enterprises.itertuples(index=False):
            if e.grade in p["values"]:
                value = value_text(p["values"][e.grade])
                rows.append([e.uscc, e.name, e.county, e.park, e.grade, p["key"], p["label"], value])
                rows[-1] += [p.get("unit", ""), p["agency"], p["basis"]]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # by measure, then county, park (none last) and USCC, in code-point order
    frame["no_park"] = frame["park"] == ""
    frame = frame.sort_values(["measure", "county", "no_park", "park", "uscc"], kind="stable")
    return frame.drop(columns="no_park").reset_index(drop=True)


def read_text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)


def cell(text: str) -> object:
    """A csv field as a workbook shows it: numbers as numbers, empty as no cell."""
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def sheet_rows(data: bytes | Path, sheet: str) -> tuple[list[object], list[list[object]]]:
    wb = openpyxl.load_workbook(io.BytesIO(data) if isinstance(data, bytes) else data, read_only=True)
    rows = [list(r) for r in wb[sheet].iter_rows(values_only=True)]
    return rows[0], [[float(v) if isinstance(v, int) else v for v in r] for r in rows[1:]]


def as_cells(rows: pd.DataFrame) -> list[list[object]]:
    """Rows of policies.csv (text) as an agency's sheet shows them: the value a number where it is one."""
    return [
        [cell(v) if c == "value" else v or None for c, v in zip(SHEET_COLUMNS, r, strict=True)]
        for r in rows[SHEET_COLUMNS].values.tolist()
    ]


# --- the lists follow the scheme --------------------------------------------------------------------------------
@pytest.mark.parametrize("year", [2024, 2025])
def test_the_lists_follow_the_scheme_for_every_class(sample_runs, year):
    out = sample_runs[year]
    ent = read_text(out / "enterprises.csv")
    got = read_text(out / "policies.csv")
    policies = scheme_policies()
    assert list(got.columns) == COLUMNS
    pd.testing.assert_frame_equal(got, expected_rows(ent, policies))
    for p in policies:  # every class: the enterprises of a class named by the measure, nobody else
        mine = got.loc[got["measure"] == p["key"]]
        for grade in "ABCDT":
            listed = set(mine.loc[mine["grade"] == grade, "uscc"])
            want = set(ent.loc[ent["grade"] == grade, "uscc"]) if grade in p["values"] else set()
            assert listed == want, (p["key"], grade)
    assert not (got["grade"] == "T").any()  # no preset measure names T
    # the sample's classes are all there and the D surcharges reach every D enterprise
    power = got.loc[got["measure"] == "electricity_surcharge"]
    assert len(power) == (ent["grade"] == "D").sum() > 40 and set(power["value"]) == {"0.05"}
    assert set(got.loc[got["measure"] == "land_supply", "grade"]) == set("ABCD")


def test_policies_csv_is_utf8_with_bom_its_columns_exact_and_counted_in_the_manifest(sample_runs):
    out = sample_runs[2025]
    raw = (out / "policies.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + ",".join(COLUMNS).encode() + b"\n")
    got = read_text(out / "policies.csv")
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["policies"]
    assert m["enabled"] is True and m["file"] == "policies.csv" and m["rows"] == len(got)
    assert m["agencies"] == ["供电公司", "水务", "燃气公司", "税务", "自然资源"]
    assert m["by_agency"] == {a: int((got["agency"] == a).sum()) for a in m["agencies"]}
    assert m["by_measure"] == {p["key"]: int((got["measure"] == p["key"]).sum()) for p in scheme_policies()}
    assert m["template_values"] == [p["key"] for p in scheme_policies()]  # the preset's values are templates
    assert (got["basis"] == TEMPLATE).all()


def test_every_preset_carries_measures_whose_basis_is_a_template_or_a_notice():
    for name in preset_names():
        policies = scheme_policies(name)
        assert {"供电公司", "税务", "自然资源"} <= {p["agency"] for p in policies}, name
        for p in policies:  # nothing verified for these cities: every value is marked as a template
            assert p["basis"] == TEMPLATE, (name, p["key"])
        power = next(p for p in policies if p["key"] == "electricity_surcharge")
        assert power["unit"] == "元/千瓦时" and "D" in power["values"] and "A" not in power["values"]
        relief = next(p for p in policies if p["key"] == "land_use_tax_relief")
        assert list(relief["values"]) == ["A"] and relief["agency"] == "税务"
        assert [p.key for p in load_scheme(name).policies] == [p["key"] for p in policies]


def test_rows_by_hand_t_named_missing_park_last_and_unnamed_classes_absent():
    e = pd.DataFrame(
        {
            "uscc": ["3", "1", "2", "4", "5"],
            "name": ["丙", "甲", "乙", "丁", "戊"],
            "county": ["乙县", "甲县", "甲县", "甲县", "甲县"],
            "park": ["园", None, "园", "园", "园"],
            "grade": ["T", "D", "D", "A", "B"],
        }
    ).set_index("uscc")
    power = Policy(key="power", label="电价", agency="供电公司", unit="元/千瓦时", values={"D": 0.1, "T": 0}, basis="x")
    land = Policy(key="land", label="用地", agency="自然资源", values={"A": "优先"}, basis="y")
    got = policy_rows(e, [power, land])
    assert list(got.columns) == COLUMNS
    # land before power (by key); in power: 乙县 (U+4E59) before 甲县 (U+7532), and in 甲县 the park 园 before
    # the enterprise without a park
    assert got[["uscc", "measure", "value"]].values.tolist() == [
        ["4", "land", "优先"],
        ["3", "power", 0],
        ["2", "power", 0.1],
        ["1", "power", 0.1],
    ]
    assert isinstance(got["value"].iloc[1], int) and "5" not in set(got["uscc"])  # B is named by no measure
    assert list(policy_rows(e, []).columns) == COLUMNS and policy_rows(e.iloc[:0], [power]).empty


# --- the scheme's validation ---------------------------------------------------------------------------------
BASE = preset_text("huaian-2024").split("\n# --- 差别化政策清单")[0]


def measure(key: str = "power", agency: str = "供电公司", values: str = "{ D = 0.1 }", basis: str = TEMPLATE) -> str:
    return f'\n[[policies]]\nkey = "{key}"\nlabel = "电价加价"\nagency = "{agency}"\nvalues = {values}\nbasis = "{basis}"\n'


@pytest.mark.parametrize(
    ("extra", "messages"),
    [
        (measure(values="{ D = 0.1, E = 1 }"), ["policies.0.values：措施 power：未知分类 'E'（可用：A、B、C、D、T）"]),
        (measure() + measure(agency="水务"), ["policies：差别化政策措施键重复：power"]),
        (measure(values="{ D = true }"), ["D 类的取值是布尔值 true，应为数值或文字"]),
        (measure(values='{ D = "0.1" }'), ["D 类的取值是加了引号的数字 '0.1'，数值请不加引号"]),
        (measure(values='{ C = 0.05, D = "加价" }'), ["取值应全部为数值或全部为文字，不能混用"]),
        (measure(values="{ D = nan }"), ["D 类的取值是 nan，应为有限的数值"]),
        (measure(values="{ D = 2024-01-01 }"), ["D 类的取值是date"]),
        (measure(values="{}"), ["措施 power 没有为任何分类给出取值"]),
        (measure(basis=""), ["basis 不能为空：写明通知文号，或写“模板值，须由本市核定”"]),
        (measure(key="Power"), ["措施键 'Power' 应为小写英文字母开头"]),
        (measure(agency="供电/水务"), ["实施部门 '供电/水务' 不能用作工作表名", "（含 /）"]),
        (measure(agency="甲" * 26), ["最多 25 个字"]),
        (measure(agency="ab") + measure(key="water", agency="AB"), ["实施部门名称只差大小写，工作表名会重复：AB、ab"]),
    ],
)
def test_scheme_validation_names_the_measure_and_the_problem_in_one_message(extra, messages):
    with pytest.raises(SchemeError) as info:
        parse_scheme(BASE + extra, origin="my.toml")
    text = str(info.value)
    assert text.startswith("方案文件 my.toml 有 1 处问题：")
    for m in messages:
        assert m in text


def test_every_problem_of_several_measures_is_in_the_one_message():
    with pytest.raises(SchemeError) as info:
        parse_scheme(BASE + measure(values="{ X = 1 }") + measure(key="w", agency="a:b"), origin="my.toml")
    text = str(info.value)
    assert "有 2 处问题" in text and "policies.0.values" in text and "policies.1.agency" in text


def test_a_valid_measure_keeps_its_values_in_class_order():
    s = parse_scheme(BASE + measure(values='{ D = "限制", A = "优先", T = "按B类管理" }'))
    assert s.policies[0].values == {"A": "优先", "D": "限制", "T": "按B类管理"}
    assert s.agencies == ("供电公司",) and s.policies[0].is_template
    assert not parse_scheme(BASE + measure(basis="青发改规〔2020〕2号")).policies[0].is_template


# --- the workbook -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("year", [2024, 2025])
def test_rankings_xlsx_has_one_sheet_per_agency_with_its_rows(sample_runs, year):
    out = sample_runs[year]
    got = read_text(out / "policies.csv")
    names = openpyxl.load_workbook(out / "rankings.xlsx", read_only=True).sheetnames
    agencies = list(dict.fromkeys(p["agency"] for p in scheme_policies()))
    sheets = [f"差别化政策·{a}" for a in agencies]
    assert names[-len(sheets) - 1 :] == [*sheets, "说明"]  # after the other sheets, before 说明
    assert names[-len(sheets) - 2] == "连片改造区块"
    for sheet, agency in zip(sheets, agencies, strict=True):
        assert len(sheet) <= 31 and not set(sheet) & set("/\\?*[]:")
        header, rows = sheet_rows(out / "rankings.xlsx", sheet)
        assert header == SHEET_HEADERS
        assert rows == as_cells(got.loc[got["agency"] == agency]), sheet
    header, rows = sheet_rows(out / "rankings.xlsx", "差别化政策·供电公司")
    assert {r[6] for r in rows} == {0.05} and {r[7] for r in rows} == {"元/千瓦时"}  # numbers as numbers


def test_per_park_workbooks_carry_their_parks_rows_only(monkeypatch):
    inputs, _, _ = load_inputs(SAMPLE / "2024")
    result = evaluate_inputs(inputs, load_scheme(DEFAULT), flags=False)
    monkeypatch.setattr(writers, "WORKBOOK_ROW_LIMIT", 10)
    plan = list(writers.workbook_plan(result.evaluation))
    everything = result.policies
    assert everything is not None and len(plan) == everything["park"].nunique() == 3
    for name, sheets, *_ in plan:
        park = name.removeprefix("rankings/").removesuffix(".xlsx")
        for agency in ("供电公司", "水务", "燃气公司", "税务", "自然资源"):
            sheet = sheets[f"差别化政策·{agency}"]
            want = everything.loc[(everything["park"] == park) & (everything["agency"] == agency)]
            assert list(sheet.columns) == SHEET_HEADERS
            assert sheet["统一社会信用代码"].tolist() == want["uscc"].tolist(), (park, agency)
            assert sheet["执行标准"].tolist() == want["value"].tolist()


# --- a scheme without [[policies]] --------------------------------------------------------------------------------
def test_a_scheme_without_policies_writes_no_list(catalogue_dir, tmp_path):
    scheme = tmp_path / "no-policies.toml"
    scheme.write_text(BASE, encoding="utf-8")
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["evaluate", str(catalogue_dir), "--scheme", str(scheme), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not (out / "policies.csv").exists() and "差别化政策" not in r.output
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["policies"] == {"enabled": False}
    assert not [s for s in openpyxl.load_workbook(out / "rankings.xlsx").sheetnames if s.startswith("差别化政策")]
    data_dir = tmp_path / "data"
    store = open_store(data_dir)
    store.add_run(run_record_from_out_dir(out), actor="test")
    token = store.add_user("rev", "reviewer", [])[1]
    store.close()
    with TestClient(create_app(Settings(data_dir=data_dir, secret_key="p" * 48))) as client:
        auth = {"Authorization": f"Bearer {token}"}
        r = client.get("/api/policies/download?agency=供电公司", headers=auth)
        assert r.status_code == 404 and "没有差别化政策清单" in r.json()["detail"]
        home = client.get("/", headers=auth).text
        assert "/api/policies/download" not in home and "差别化政策清单" not in home


def test_the_cli_names_the_lists_and_warns_of_template_values(catalogue_dir, tmp_path):
    r = CliRunner().invoke(
        cli, ["evaluate", str(catalogue_dir), "--scheme", "huaian-2024", "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == 0, r.output
    got = read_text(tmp_path / "o" / "policies.csv")
    counts = "，".join(
        f"{a} {int((got['agency'] == a).sum())} 条" for a in ("供电公司", "水务", "燃气公司", "税务", "自然资源")
    )
    assert f"差别化政策清单：{counts}" in r.output
    assert "的标准为模板值，须由本市核定" in r.output and "policies.csv" in r.output


# --- the service: both backends ---------------------------------------------------------------------------------
class Services:
    def __init__(self, clients: dict[str, TestClient], tokens: dict[str, dict[str, str]], out: Path, parks: list[str]):
        self.clients, self.tokens, self.out, self.parks = clients, tokens, out, parks

    def get(self, backend: str, path: str, who: str = "rev"):
        return self.clients[backend].get(path, headers={"Authorization": f"Bearer {self.tokens[backend][who]}"})


@pytest.fixture(scope="module")
def services(sample_runs, pg_url, tmp_path_factory):
    """The sample's 2025 run served from its OUT_DIR (SQLite store) and from PostGIS (its OUT_DIR removed)."""
    base = tmp_path_factory.mktemp("policies")
    wipe_database(pg_url)
    init_schema(pg_url)
    stored = run(SAMPLE / "2025", load_scheme(DEFAULT), base / "db_out", previous_dir=sample_runs[2024], db=pg_url)
    assert stored.stored is not None
    with psycopg.connect(pg_url) as conn:
        content = conn.execute(
            "SELECT content FROM geo_eval.run_files WHERE run_id = %s AND name = 'policies.csv'",
            (stored.stored.run_id,),
        ).fetchone()
    assert content is not None and bytes(content[0]) == (base / "db_out" / "policies.csv").read_bytes()
    assert bytes(content[0]) == (sample_runs[2025] / "policies.csv").read_bytes()
    shutil.rmtree(base / "db_out")  # the PostGIS service must serve the lists from the database
    parks = sorted(read_text(sample_runs[2025] / "enterprises.csv")["park"].unique())
    sqlite = open_store(base / "data")
    sqlite.add_run(run_record_from_out_dir(sample_runs[2025]), actor="test")
    pg = PostgresStore(pg_url)
    users = [("admin", "admin", []), ("rev", "reviewer", []), ("com", "committee", [parks[0]])]
    tokens = {}
    for backend, store in (("files", sqlite), ("postgis", pg)):
        tokens[backend] = {n: store.add_user(n, r, p)[1] for n, r, p in users}
        store.close()
    secret = "q" * 48
    files_app = create_app(Settings(data_dir=base / "data", secret_key=secret))
    db_app = create_app(Settings(data_dir=base / "data_pg", secret_key=secret, database_url=pg_url))
    with TestClient(files_app) as fc, TestClient(db_app) as dc:
        yield Services({"files": fc, "postgis": dc}, tokens, sample_runs[2025], parks)


def url(agency: str, fmt: str = "xlsx", park: str | None = None) -> str:
    return f"/api/policies/download?agency={quote(agency)}&format={fmt}" + (f"&park={quote(park)}" if park else "")


@pytest.mark.parametrize("backend", ["files", "postgis"])
@pytest.mark.parametrize("who", ["admin", "rev"])
def test_admins_and_reviewers_download_every_parks_list(services, backend, who):
    got = read_text(services.out / "policies.csv")
    for agency in ("供电公司", "税务", "自然资源"):
        r = services.get(backend, url(agency), who)
        assert r.status_code == 200, r.text
        assert (
            "filename*=UTF-8''" + quote(f"2025年度差别化政策清单_{agency}_全部园区.xlsx", safe="")
            in r.headers["content-disposition"]
        )
        header, rows = sheet_rows(r.content, f"差别化政策·{agency}")
        mine = got.loc[got["agency"] == agency]
        assert header == SHEET_HEADERS and rows == as_cells(mine) and len(rows) > 20
        assert {row[3] for row in rows} == set(services.parks)
        notes = [c for (c,) in openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[1].iter_rows(values_only=True)]
        assert any(str(n).startswith("依据为“模板值，须由本市核定”") for n in notes)
        c = services.get(backend, url(agency, "csv"), who)
        assert c.status_code == 200 and c.content.startswith(b"\xef\xbb\xbf")
        table = pd.read_csv(io.BytesIO(c.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
        assert list(table.columns) == SHEET_HEADERS
        assert table.values.tolist() == mine[SHEET_COLUMNS].values.tolist()


@pytest.mark.parametrize("backend", ["files", "postgis"])
def test_a_committee_downloads_its_own_park_only(services, backend):
    got = read_text(services.out / "policies.csv")
    own, other = services.parks[0], services.parks[1]
    want = got.loc[(got["agency"] == "自然资源") & (got["park"] == own)]
    for park in (None, own):
        r = services.get(backend, url("自然资源", park=park), "com")
        assert r.status_code == 200, r.text
        _, rows = sheet_rows(r.content, "差别化政策·自然资源")
        assert rows == as_cells(want) and len(rows) > 20
        c = services.get(backend, url("自然资源", "csv", park), "com")
        table = pd.read_csv(io.BytesIO(c.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
        assert set(table["园区"]) == {own} and len(table) == len(want)
    for fmt in ("xlsx", "csv"):
        r = services.get(backend, url("自然资源", fmt, other), "com")
        assert r.status_code == 403 and other in r.json()["detail"]
    r = services.get(backend, url("环保"), "com")
    assert r.status_code == 404 and "可选：供电公司、水务、燃气公司、税务、自然资源" in r.json()["detail"]
    assert services.clients[backend].get(url("税务")).status_code == 401


def test_both_backends_give_the_same_files(services):
    for agency in ("供电公司", "水务", "燃气公司", "税务", "自然资源"):
        for who, park in (("rev", None), ("com", services.parks[0])):
            a = services.get("files", url(agency, "csv", park), who)
            b = services.get("postgis", url(agency, "csv", park), who)
            assert a.status_code == b.status_code == 200 and a.content == b.content, (agency, who)


@pytest.mark.parametrize("backend", ["files", "postgis"])
def test_the_home_page_links_each_agencys_list(services, backend):
    agencies = ("供电公司", "水务", "燃气公司", "税务", "自然资源")
    for who in ("admin", "rev"):
        page = services.get(backend, "/", who).text
        for agency in agencies:
            assert f"差别化政策清单·{agency}（Excel）" in page
            assert f"agency={quote(agency)}&amp;format=xlsx" in page
        assert "park=" not in page.split("<h2>差别化政策清单</h2>")[1].split("</p>")[0]
    page = services.get(backend, "/", "com").text
    own = quote(services.parks[0])
    for agency in agencies:
        assert f"park={own}&amp;agency={quote(agency)}&amp;format=xlsx" in page
    assert quote(services.parks[1]) not in page
