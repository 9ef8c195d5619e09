"""The web service over HTTP: every route, every role, every refusal.

One module-scoped evaluation of the catalogue, split into two parks (海滨高新技术产业园: P1–P3;
青松经济开发区: P4–P8), for 2024 and 2025; users of every role; one app for the module.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import catalogue
import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app, include_optional_routers
from api.errors import status_for
from api.main import create_app_from_env
from api.security import COOKIE_NAME, sign_session
from api.settings import Settings
from geo_eval.io.run import run
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import StorageError, open_store, run_record_from_out_dir
from geo_eval.storage.sqlite import SCHEMA_VERSION

PARK_A = "海滨高新技术产业园"
PARK_B = "青松经济开发区"
SCHEME = "huaian-2024"
SECRET = "s" * 48
XSS = "<img src=x onerror=alert(1)>"


def two_park_dataset(root: Path, year: int) -> Path:
    p = catalogue.parcels()
    e = catalogue.enterprises()
    p.loc[p["parcel_id"].isin(["P4", "P5", "P6", "P7", "P8"]), "park"] = PARK_B
    e.loc[e["uscc"].isin([catalogue.E[i] for i in (6, 7, 8, 9)]), "park"] = PARK_B
    e.loc[e["uscc"] == catalogue.E[6], "name"] = XSS
    if year == 2024:
        e["tax"] = e["tax"] * 0.9
    return catalogue.write_dataset(root, parcels_gdf=p, enterprises_df=e, year=year)


@dataclass
class Service:
    app: object
    client: TestClient
    data_dir: Path
    datasets: dict[int, Path]
    outs: dict[int, Path]
    runs: dict[int, str]
    tokens: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module")
def svc(tmp_path_factory) -> Service:
    base = tmp_path_factory.mktemp("api")
    scheme = load_scheme(SCHEME)
    datasets, outs = {}, {}
    for year in (2024, 2025):
        datasets[year] = two_park_dataset(base / f"ds{year}", year)
        outs[year] = base / f"out{year}"
        run(datasets[year], scheme, outs[year])
    data_dir = base / "data"
    store = open_store(data_dir)
    runs = {y: store.add_run(run_record_from_out_dir(outs[y]), actor="test").run_id for y in (2024, 2025)}
    tokens = {}
    for name, role, parks in [
        ("admin", "admin", []),
        ("rev", "reviewer", []),
        ("rev2", "reviewer", []),
        ("comA", "committee", [PARK_A]),
        ("comB", "committee", [PARK_B]),
        ("comAB", "committee", [PARK_A, PARK_B]),
    ]:
        tokens[name] = store.add_user(name, role, parks)[1]
    store.close()
    app = create_app(Settings(data_dir=data_dir, secret_key=SECRET, datasets_dir=base))  # POST /api/runs reads base
    with TestClient(app) as client:
        yield Service(app, client, data_dir, datasets, outs, runs, tokens)


def flag_ids(svc: Service, park: str) -> list[str]:
    fl = pd.read_csv(svc.outs[2025] / "flags.csv", encoding="utf-8-sig", dtype=str)
    return list(fl.loc[fl["park"] == park, "flag_id"])


# --- health, OpenAPI, refusals without a token ---------------------------------------------------------
def test_health_needs_no_login_and_reports_storage(svc):
    r = svc.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["runs"] == 2
    assert body["storage"] == {
        "backend": "sqlite",
        "ok": True,
        "journal_mode": "wal",
        "schema_version": SCHEMA_VERSION,
    }
    assert r.headers["x-content-type-options"] == "nosniff"


def test_health_is_503_when_storage_fails(tmp_path):
    class Broken:
        def status(self):
            raise StorageError("disk gone /secret/path")

        def close(self):
            pass

    app = create_app(Settings(data_dir=tmp_path, secret_key=SECRET), store=Broken())  # type: ignore[arg-type]
    r = TestClient(app).get("/health")
    assert r.status_code == 503 and r.json()["status"] == "error"
    assert "/secret/path" not in r.text


PROTECTED_GETS = [
    "/api/me",
    "/api/runs",
    "/api/rankings",
    "/api/rankings?park=" + PARK_A,
    "/api/rankings/download?format=csv",
    "/api/rankings/download?format=xlsx",
    "/api/parcels",
    "/api/parcels/P1",
    "/api/flags",
    "/api/flags/download",
    "/api/flags/P1:renewal_candidate",
    "/api/flags/P1:renewal_candidate/history",
    "/api/users",
    "/api/audit",
]


@pytest.mark.parametrize("path", PROTECTED_GETS)
@pytest.mark.parametrize(
    "auth", [None, "Bearer gev.000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Basic abc"]
)
def test_without_a_valid_token_every_route_is_401(svc, path, auth):
    headers = {} if auth is None else {"Authorization": auth}
    r = svc.client.get(path, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "tax" not in r.text and "甲公司" not in r.text


def test_writes_without_a_token_are_401(svc):
    c = svc.client
    assert c.patch("/api/flags/P1:renewal_candidate", json={"status": "confirmed", "version": 0}).status_code == 401
    assert c.post("/api/runs", json={"dataset_dir": "x"}).status_code == 401
    assert c.post("/api/runs/register", json={"out_dir": "x"}).status_code == 401
    assert c.post("/api/users", json={"name": "x", "role": "admin"}).status_code == 401
    assert c.post("/api/users/rev/token").status_code == 401
    assert c.delete("/api/users/rev").status_code == 401


def test_openapi_documents_every_route_with_chinese_summaries(svc):
    spec = svc.client.get("/openapi.json", headers=svc.h("comA")).json()
    paths = spec["paths"]
    for p in [
        "/health",
        "/api/runs",
        "/api/rankings",
        "/api/rankings/download",
        "/api/parcels",
        "/api/flags",
        "/api/flags/{flag_id}",
        "/api/flags/{flag_id}/history",
        "/login",
    ]:
        assert p in paths, p
    assert set(paths["/api/flags/{flag_id}"]) == {"get", "patch"}
    for ops in paths.values():
        for op in ops.values():
            assert any("\u4e00" <= ch <= "\u9fff" for ch in op["summary"]), op["summary"]
    assert {"BearerToken", "SessionCookie"} <= set(spec["components"]["securitySchemes"])


def test_me_for_every_role(svc):
    for who, role in [("admin", "admin"), ("rev", "reviewer"), ("comA", "committee")]:
        r = svc.client.get("/api/me", headers=svc.h(who))
        assert r.status_code == 200
        assert r.json()["user"]["role"] == role and r.json()["auth"] == "bearer"
    assert svc.client.get("/api/me", headers=svc.h("comAB")).json()["user"]["parks"] == [PARK_A, PARK_B]


# --- runs -----------------------------------------------------------------------------------------------
def test_runs_list_latest_first_and_out_dir_only_for_admin(svc):
    r = svc.client.get("/api/runs", headers=svc.h("comA"))
    assert r.status_code == 200
    runs = r.json()
    assert {x["run_id"] for x in runs} >= set(svc.runs.values())
    latest = {x["year"]: x["run_id"] for x in runs if x["latest"]}
    assert latest == {2024: svc.runs[2024], 2025: svc.runs[2025]}
    first = runs[0]
    assert first["run_id"] == svc.runs[2025]
    assert first["latest"] and first["counts"]["enterprises"] == 5 and first["out_dir"] is None  # park A only
    assert first["counts"]["grades"] and first["counts"]["parks"] == [PARK_A]
    admin = svc.client.get("/api/runs", headers=svc.h("admin")).json()
    assert all(x["out_dir"] for x in admin)
    assert admin[0]["counts"]["enterprises"] == 9  # the whole city


def test_only_admin_starts_or_registers_runs(svc):
    for who in ("rev", "comA"):
        assert svc.client.post("/api/runs", json={"dataset_dir": "x"}, headers=svc.h(who)).status_code == 403
        r = svc.client.post("/api/runs/register", json={"out_dir": str(svc.outs[2025])}, headers=svc.h(who))
        assert r.status_code == 403


def test_admin_starts_an_evaluation(svc):
    body = {"dataset_dir": str(svc.datasets[2025]), "scheme": SCHEME}
    r = svc.client.post("/api/runs", json=body, headers=svc.h("admin"))
    assert r.status_code == 201, r.text
    new = r.json()
    # the same inputs and scheme: the same run (its reviews carry on), now in the data directory
    assert new["run_id"] == svc.runs[2025] and new["latest"]
    assert Path(new["out_dir"]).parent == svc.data_dir / "runs"
    assert (Path(new["out_dir"]) / "manifest.json").is_file()
    r = svc.client.get("/api/rankings", headers=svc.h("rev"))
    assert r.json()["run_id"] == svc.runs[2025] and r.json()["total"] == 9
    audit = svc.client.get("/api/audit", headers=svc.h("admin")).json()
    assert audit[0]["action"] == "run.update" and audit[0]["actor"] == "admin"


def test_evaluation_errors_are_422(svc, tmp_path):
    h = svc.h("admin")
    root = svc.datasets[2025].parent  # GEO_EVAL_DATASETS_DIR of the service
    r = svc.client.post("/api/runs", json={"dataset_dir": str(root / "missing")}, headers=h)
    assert r.status_code == 422 and "不存在" in r.json()["detail"]
    r = svc.client.post("/api/runs", json={"dataset_dir": str(svc.datasets[2025]), "scheme": "no-such"}, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "SchemeError"
    bad = two_park_dataset(root / "bad", 2025)
    e = pd.read_csv(bad / "enterprises.csv", encoding="utf-8-sig").drop(columns=["tax"])
    e.to_csv(bad / "enterprises.csv", index=False, encoding="utf-8-sig")
    r = svc.client.post("/api/runs", json={"dataset_dir": str(bad), "scheme": SCHEME}, headers=h)
    assert r.status_code == 422
    r = svc.client.post("/api/runs/register", json={"out_dir": str(tmp_path)}, headers=h)
    assert r.status_code == 422 and "manifest.json" in r.json()["detail"]
    r = svc.client.post("/api/runs", json={"dataset_dir": str(svc.datasets[2025]), "previous_run": "nope"}, headers=h)
    assert r.status_code == 404


def test_admin_registers_an_existing_out_dir(svc):
    r = svc.client.post("/api/runs/register", json={"out_dir": str(svc.outs[2024])}, headers=svc.h("admin"))
    assert r.status_code == 201 and r.json()["run_id"] == svc.runs[2024]
    # registering 2024 again made it the latest; put 2025 back on top for the other tests
    r = svc.client.post("/api/runs/register", json={"out_dir": str(svc.outs[2025])}, headers=svc.h("admin"))
    assert r.status_code == 201


# --- rankings -------------------------------------------------------------------------------------------
def test_rankings_rows_have_the_enterprises_csv_fields(svc):
    r = svc.client.get("/api/rankings", headers=svc.h("rev"))
    assert r.status_code == 200
    body = r.json()
    header = (svc.outs[2025] / "enterprises.csv").read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert body["columns"] == header
    assert body["total"] == len(body["rows"]) == 9 and body["year"] == 2025
    row = next(x for x in body["rows"] if x["uscc"] == catalogue.E[1])
    assert set(row) == set(header)
    assert row["tax_per_mu"] == pytest.approx(20.0) and row["name"] == "甲公司"
    assert any(x["name"] == XSS for x in body["rows"])  # data stays data; pages escape it


def test_rankings_filters_and_paging(svc):
    get = lambda q: svc.client.get(f"/api/rankings?{q}", headers=svc.h("rev")).json()  # noqa: E731
    assert {x["park"] for x in get(f"park={PARK_B}")["rows"]} == {PARK_B}
    assert get("county=海滨区")["total"] == 9 and get("county=别处")["total"] == 0
    t = get("grade=T")
    assert t["total"] >= 1 and {x["grade"] for x in t["rows"]} == {"T"}
    assert get("group=above_scale")["total"] == get("group=规上企业")["total"] > 0
    page = get("limit=2&offset=1")
    assert page["total"] == 9 and len(page["rows"]) == 2
    assert svc.client.get("/api/rankings?grade=X", headers=svc.h("rev")).status_code == 422


def test_rankings_year_and_run_selection(svc):
    h = svc.h("rev")
    assert svc.client.get("/api/rankings?year=2024", headers=h).json()["run_id"] == svc.runs[2024]
    assert svc.client.get(f"/api/rankings?run={svc.runs[2024]}", headers=h).json()["year"] == 2024
    assert svc.client.get("/api/rankings?year=2019", headers=h).status_code == 404
    assert svc.client.get("/api/rankings?run=nope", headers=h).status_code == 404


def test_committee_sees_only_its_own_parks(svc):
    rows = svc.client.get("/api/rankings", headers=svc.h("comA")).json()["rows"]
    assert rows and {x["park"] for x in rows} == {PARK_A}
    assert svc.client.get(f"/api/rankings?park={PARK_A}", headers=svc.h("comA")).status_code == 200
    r = svc.client.get(f"/api/rankings?park={PARK_B}", headers=svc.h("comA"))
    assert r.status_code == 403 and PARK_B in r.json()["detail"]
    both = svc.client.get("/api/rankings", headers=svc.h("comAB")).json()["rows"]
    assert {x["park"] for x in both} == {PARK_A, PARK_B}


# --- downloads ------------------------------------------------------------------------------------------
def filename_star(header: str) -> str:
    part = next(p.strip() for p in header.split(";") if p.strip().startswith("filename*="))
    assert part.startswith("filename*=UTF-8''")
    return unquote(part.removeprefix("filename*=UTF-8''"))


def test_csv_download_is_the_file_with_bom_and_a_chinese_rfc5987_name(svc):
    r = svc.client.get("/api/rankings/download?format=csv", headers=svc.h("rev"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    got = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    file = pd.read_csv(svc.outs[2025] / "enterprises.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(got.columns[:4]) == ["排名", "排名范围", "企业名称", "统一社会信用代码"]  # the workbook's table
    assert got["统一社会信用代码"].tolist() == file["uscc"].tolist()  # every enterprise, in the file's order
    cd = r.headers["content-disposition"]
    assert cd.startswith("attachment; ")
    assert 'filename="geo-eval-rankings-2025.csv"' in cd  # ASCII fallback
    assert filename_star(cd) == "2025年度亩均效益评价排名_全部园区.csv"
    cd.encode("latin-1")  # the header itself is plain ASCII


def test_committee_csv_download_has_only_its_park(svc):
    r = svc.client.get("/api/rankings/download?format=csv", headers=svc.h("comB"))
    assert r.status_code == 200
    df = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str)
    assert set(df["园区"]) == {PARK_B} and len(df) == 4
    assert filename_star(r.headers["content-disposition"]) == f"2025年度亩均效益评价排名_{PARK_B}.csv"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("route", ["/api/rankings/download", "/api/flags/download"])
def test_committee_download_of_another_park_is_403(svc, route, fmt):
    r = svc.client.get(f"{route}?park={PARK_B}&format={fmt}", headers=svc.h("comA"))
    assert r.status_code == 403
    assert "content-disposition" not in r.headers


def test_xlsx_download_has_group_sheets_and_the_review_state(svc):
    fid = flag_ids(svc, PARK_A)[0]
    svc.client.patch(
        f"/api/flags/{fid}", json={"status": "site_visit", "comment": "下周现场", "version": 0}, headers=svc.h("rev")
    )
    r = svc.client.get(f"/api/rankings/download?format=xlsx&park={PARK_A}", headers=svc.h("rev"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert filename_star(r.headers["content-disposition"]) == f"2025年度亩均效益评价排名_{PARK_A}.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    assert "规上企业" in wb.sheetnames and "说明" in wb.sheetnames
    ws = wb["疑似闲置／低效地块"]
    rows = list(ws.iter_rows(values_only=True))
    head = rows[0]
    assert "复核状态" in head and "复核意见" in head
    got = {r[head.index("标记编号")]: (r[head.index("复核状态")], r[head.index("复核意见")]) for r in rows[1:]}
    assert got[fid] == ("待核查", "下周现场")
    assert {r[head.index("园区")] for r in rows[1:]} == {PARK_A}
    names = [c for row in wb["规上企业"].iter_rows(min_row=1, max_row=1, values_only=True) for c in row]
    assert "企业名称" in names and "综合得分（分）" in names
    wb.close()


def test_flags_download_with_review_columns(svc):
    r = svc.client.get("/api/flags/download?format=csv", headers=svc.h("comB"))
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    df = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert set(df["park"]) == {PARK_B}
    assert {"review_status", "review_status_label", "review_comment", "reviewed_by"} <= set(df.columns)
    assert filename_star(r.headers["content-disposition"]).endswith(f"_{PARK_B}.csv")
    x = svc.client.get("/api/flags/download?format=xlsx", headers=svc.h("admin"))
    assert x.status_code == 200 and x.content[:2] == b"PK"


# --- parcels and flags as GeoJSON -----------------------------------------------------------------------
def p1_bbox() -> str:
    g = catalogue.parcels().set_index("parcel_id").to_crs(4326).geometry["P1"].centroid
    return f"{g.x - 0.0003},{g.y - 0.0002},{g.x + 0.0003},{g.y + 0.0002}"


def test_parcels_geojson_in_wgs84_with_paging(svc):
    r = svc.client.get("/api/parcels?limit=3", headers=svc.h("rev"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["numberMatched"] == 8 and fc["numberReturned"] == 3
    f = fc["features"][0]
    minx, miny, maxx, maxy = gpd.read_file(io.BytesIO(r.content)).total_bounds
    assert 119 < minx < maxx < 120 and 34 < miny < maxy < 35
    assert {"parcel_id", "park", "area_mu", "tax_per_mu", "grade", "flags"} <= set(f["properties"])
    rest = svc.client.get("/api/parcels?limit=3&offset=3", headers=svc.h("rev")).json()
    ids = [x["id"] for x in fc["features"] + rest["features"]]
    assert len(set(ids)) == 6


def test_parcels_bbox_filter(svc):
    fc = svc.client.get(f"/api/parcels?bbox={p1_bbox()}", headers=svc.h("rev")).json()
    assert [f["id"] for f in fc["features"]] == ["P1"]
    p1 = fc["features"][0]["properties"]
    assert {x["flag"] for x in p1["flags"]} >= {"renewal_candidate"}
    for bad in ["1,2,3", "a,b,c,d", "10,10,5,5", "200,0,210,1"]:
        assert svc.client.get(f"/api/parcels?bbox={bad}", headers=svc.h("rev")).status_code == 422
    assert svc.client.get("/api/parcels?limit=100000", headers=svc.h("rev")).status_code == 422


def test_committee_parcels_and_flags_geojson_are_restricted(svc):
    fc = svc.client.get("/api/parcels", headers=svc.h("comB")).json()
    assert {f["properties"]["park"] for f in fc["features"]} == {PARK_B} and fc["numberMatched"] == 5
    assert svc.client.get(f"/api/parcels?bbox={p1_bbox()}", headers=svc.h("comB")).json()["numberMatched"] == 0
    assert svc.client.get(f"/api/parcels?park={PARK_A}", headers=svc.h("comB")).status_code == 403
    assert svc.client.get("/api/parcels/P1", headers=svc.h("comB")).status_code == 403
    assert svc.client.get("/api/parcels/P5", headers=svc.h("comB")).status_code == 200
    fl = svc.client.get("/api/flags", headers=svc.h("comB")).json()
    assert fl["features"] and {f["properties"]["park"] for f in fl["features"]} == {PARK_B}
    assert svc.client.get(f"/api/flags?park={PARK_A}", headers=svc.h("comB")).status_code == 403
    other = flag_ids(svc, PARK_A)[0]
    assert svc.client.get(f"/api/flags/{other}", headers=svc.h("comB")).status_code == 403
    assert svc.client.get(f"/api/flags/{other}/history", headers=svc.h("comB")).status_code == 403


def test_single_parcel_and_unknown_ids(svc):
    r = svc.client.get("/api/parcels/P1", headers=svc.h("rev"))
    assert r.status_code == 200
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == "P1"
    assert [e["uscc"] for e in f["properties"]["enterprise_rows"]] == [catalogue.E[1]]
    assert svc.client.get("/api/parcels/P99", headers=svc.h("rev")).status_code == 404
    assert svc.client.get("/api/flags/P99:idle", headers=svc.h("rev")).status_code == 404
    assert svc.client.get("/api/flags/P99:idle/history", headers=svc.h("rev")).status_code == 404


def test_flags_geojson_with_review_state_and_filters(svc):
    fc = svc.client.get("/api/flags", headers=svc.h("rev")).json()
    total = len(pd.read_csv(svc.outs[2025] / "flags.csv", encoding="utf-8-sig"))
    assert fc["numberMatched"] == total
    f = fc["features"][0]
    assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert {"flag_id", "flag", "rule_id", "reason", "basis", "evidence", "review"} <= set(f["properties"])
    assert f["properties"]["review"]["version"] >= 0
    cands = svc.client.get("/api/flags?flag=renewal_candidate", headers=svc.h("rev")).json()
    assert {x["properties"]["flag"] for x in cands["features"]} == {"renewal_candidate"}
    one = svc.client.get(f"/api/flags?bbox={p1_bbox()}", headers=svc.h("rev")).json()
    assert {x["properties"]["parcel_id"] for x in one["features"]} == {"P1"}
    assert svc.client.get("/api/flags?status=unknown", headers=svc.h("rev")).status_code == 422


def test_flag_detail_has_the_full_evidence(svc):
    fid = flag_ids(svc, PARK_B)[0]
    r = svc.client.get(f"/api/flags/{fid}", headers=svc.h("comB"))
    assert r.status_code == 200
    p = r.json()["properties"]
    assert p["flag_id"] == fid and p["park"] == PARK_B
    for key in ("rule_id", "basis", "reason", "value", "threshold", "evidence", "severity"):
        assert key in p
    assert p["parcel"]["parcel_id"] == fid.split(":")[0]
    assert p["review"]["status"] in ("pending", "confirmed", "dismissed", "site_visit")
    assert isinstance(p["other_flags"], list) and isinstance(p["enterprise_rows"], list)


# --- reviews --------------------------------------------------------------------------------------------
def test_reviewer_confirms_and_a_stale_version_is_409(svc):
    fid = flag_ids(svc, PARK_A)[1]
    url = f"/api/flags/{fid}"
    v = svc.client.get(url, headers=svc.h("rev")).json()["properties"]["review"]["version"]
    v2 = svc.client.get(url, headers=svc.h("rev2")).json()["properties"]["review"]["version"]
    r = svc.client.patch(url, json={"status": "confirmed", "comment": "属实", "version": v}, headers=svc.h("rev"))
    assert r.status_code == 200
    assert r.json()["review"] | {"updated_at": "", "updated_at_label": ""} == {
        "status": "confirmed",
        "status_label": "确认",
        "comment": "属实",
        "version": v + 1,
        "updated_by": "rev",
        "updated_at": "",
        "updated_at_label": "",
    }
    # the second reviewer read the same version: a conflict, not a silent overwrite
    r = svc.client.patch(url, json={"status": "dismissed", "comment": "不属实", "version": v2}, headers=svc.h("rev2"))
    assert r.status_code == 409
    assert r.json()["current"]["status"] == "confirmed" and r.json()["current"]["updated_by"] == "rev"
    assert svc.client.get(url, headers=svc.h("rev")).json()["properties"]["review"]["status"] == "confirmed"


def test_dismissal_without_a_reason_is_422_in_chinese(svc):
    fid = flag_ids(svc, PARK_A)[2]
    for comment in ("", "   "):
        r = svc.client.patch(
            f"/api/flags/{fid}", json={"status": "dismissed", "comment": comment, "version": 0}, headers=svc.h("rev")
        )
        assert r.status_code == 422
        assert "排除" in json.dumps(r.json(), ensure_ascii=False) and "理由" in r.text
    r = svc.client.patch(
        f"/api/flags/{fid}",
        json={"status": "dismissed", "comment": "已办理用地手续", "version": 0},
        headers=svc.h("rev"),
    )
    assert r.status_code == 200 and r.json()["review"]["status_label"] == "排除"


def test_invalid_review_bodies_are_422(svc):
    fid = flag_ids(svc, PARK_A)[3]
    for body in (
        {"status": "maybe", "version": 0},
        {"status": "confirmed"},
        {"status": "confirmed", "version": -1},
        {"status": "confirmed", "version": 0, "extra": 1},
    ):
        assert svc.client.patch(f"/api/flags/{fid}", json=body, headers=svc.h("rev")).status_code == 422


def test_committee_cannot_review_and_admin_can(svc):
    fid = flag_ids(svc, PARK_A)[3]
    body = {"status": "site_visit", "comment": "", "version": 0}
    assert svc.client.patch(f"/api/flags/{fid}", json=body, headers=svc.h("comA")).status_code == 403
    r = svc.client.patch(f"/api/flags/{fid}", json=body, headers=svc.h("admin"))
    assert r.status_code == 200 and r.json()["review"]["updated_by"] == "admin"
    r = svc.client.patch("/api/flags/P99:x", json=body, headers=svc.h("rev"))
    assert r.status_code == 404


def test_history_is_the_audit_trail_of_a_flag(svc):
    fid = flag_ids(svc, PARK_B)[1]
    url = f"/api/flags/{fid}"
    h = svc.h("rev")
    svc.client.patch(url, json={"status": "site_visit", "comment": "待现场核查", "version": 0}, headers=h)
    svc.client.patch(url, json={"status": "confirmed", "comment": "现场确认闲置", "version": 1}, headers=svc.h("rev2"))
    hist = svc.client.get(f"{url}/history", headers=svc.h("comB"))  # the park's committee may read it
    assert hist.status_code == 200
    body = hist.json()
    assert body["review"]["version"] == 2
    assert [(e["actor"], e["before"]["status"], e["after"]["status"]) for e in body["entries"]] == [
        ("rev", "pending", "site_visit"),
        ("rev2", "site_visit", "confirmed"),
    ]
    assert all(e["at"].endswith("Z") for e in body["entries"])
    # the review shows in the GeoJSON lists, filterable by status
    parcel = fid.split(":")[0]
    fc = svc.client.get(f"/api/parcels/{parcel}", headers=h).json()
    assert {x["flag_id"]: x["review_status"] for x in fc["properties"]["flags"]}[fid] == "confirmed"
    confirmed = svc.client.get("/api/flags?status=confirmed", headers=h).json()
    assert fid in [f["id"] for f in confirmed["features"]]
    pending = svc.client.get("/api/flags?status=pending", headers=h).json()
    assert fid not in [f["id"] for f in pending["features"]]
    # reviews belong to one run: the 2024 run's flag is untouched
    old = pd.read_csv(svc.outs[2024] / "flags.csv", encoding="utf-8-sig", dtype=str)
    assert fid in set(old["flag_id"])
    r = svc.client.get(f"{url}?year=2024", headers=h)
    assert r.status_code == 200 and r.json()["properties"]["review"]["version"] == 0


def test_audit_route_is_admin_only(svc):
    assert svc.client.get("/api/audit", headers=svc.h("rev")).status_code == 403
    entries = svc.client.get(f"/api/audit?run={svc.runs[2025]}", headers=svc.h("admin")).json()
    assert entries and {e["run_id"] for e in entries} == {svc.runs[2025]}


# --- users ----------------------------------------------------------------------------------------------
def test_admin_manages_users_and_tokens(svc):
    c, h = svc.client, svc.h("admin")
    r = c.post("/api/users", json={"name": "新管委会", "role": "committee", "parks": [PARK_B]}, headers=h)
    assert r.status_code == 201
    token = r.json()["token"]
    assert r.json()["user"]["parks"] == [PARK_B]
    mine = {"Authorization": f"Bearer {token}"}
    assert c.get("/api/rankings", headers=mine).status_code == 200
    assert c.get(f"/api/rankings?park={PARK_A}", headers=mine).status_code == 403
    assert c.post("/api/users", json={"name": "新管委会", "role": "admin"}, headers=h).status_code == 409
    assert c.post("/api/users", json={"name": "x", "role": "committee"}, headers=h).status_code == 422
    assert c.post("/api/users", json={"name": "x", "role": "root"}, headers=h).status_code == 422
    names = [u["name"] for u in c.get("/api/users", headers=h).json()]
    assert "新管委会" in names and all("token" not in u for u in c.get("/api/users", headers=h).json())
    new = c.post("/api/users/新管委会/token", headers=h)
    assert new.status_code == 200
    assert c.get("/api/rankings", headers=mine).status_code == 401
    mine = {"Authorization": f"Bearer {new.json()['token']}"}
    assert c.get("/api/rankings", headers=mine).status_code == 200
    assert c.delete("/api/users/新管委会", headers=h).status_code == 204
    assert c.get("/api/rankings", headers=mine).status_code == 401
    assert c.delete("/api/users/新管委会", headers=h).status_code == 404


@pytest.mark.parametrize("who", ["rev", "comA"])
def test_only_admin_manages_users(svc, who):
    c, h = svc.client, svc.h(who)
    assert c.get("/api/users", headers=h).status_code == 403
    assert c.post("/api/users", json={"name": "x", "role": "admin"}, headers=h).status_code == 403
    assert c.post("/api/users/rev/token", headers=h).status_code == 403
    assert c.delete("/api/users/rev", headers=h).status_code == 403


# --- browser sign-in with the session cookie -----------------------------------------------------------
@pytest.fixture
def browser(svc):
    return TestClient(svc.app, base_url="https://testserver", follow_redirects=False)


SAME_ORIGIN = {"Origin": "https://testserver"}  # what a browser sends with the login form of this site


def login(browser, name: str, token: str, next_url: str = "/"):
    return browser.post("/login", data={"name": name, "token": token, "next": next_url}, headers=SAME_ORIGIN)


def test_login_page_is_chinese_and_pages_redirect_there(browser):
    r = browser.get("/login?next=/api/runs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "登录" in r.text and "令牌" in r.text and 'value="/api/runs"' in r.text
    r = browser.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/"


def test_cookie_login_flow(svc, browser):
    r = login(browser, "comA", "wrong-token")
    assert r.status_code == 401 and "用户名或令牌不正确" in r.text and COOKIE_NAME not in browser.cookies
    r = login(browser, "comB", svc.tokens["comA"])  # someone else's token
    assert r.status_code == 401
    r = login(browser, "comA", svc.tokens["comA"], "/api/me")
    assert r.status_code == 303 and r.headers["location"] == "/api/me"
    cookie = r.headers["set-cookie"]
    low = cookie.lower()
    assert "httponly" in low and "samesite=lax" in low and "secure" in low and "path=/" in low
    assert svc.tokens["comA"] not in cookie
    me = browser.get("/api/me")
    assert me.status_code == 200 and me.json() == {**me.json(), "auth": "cookie"}
    # the same checks as with a token
    assert browser.get(f"/api/rankings?park={PARK_B}").status_code == 403
    assert browser.get(f"/api/rankings/download?park={PARK_B}&format=csv").status_code == 403
    assert browser.get(f"/api/parcels?park={PARK_B}").status_code == 403
    assert browser.get("/api/rankings").status_code == 200
    home = browser.get("/")
    assert home.status_code == 200 and "comA" in home.text and PARK_A in home.text
    assert browser.post("/logout", headers=SAME_ORIGIN).status_code == 303
    assert browser.get("/api/me").status_code == 401


def test_login_with_json_and_safe_redirects(svc, browser):
    r = browser.post("/login", json={"name": "rev", "token": svc.tokens["rev"]}, headers=SAME_ORIGIN)
    assert r.status_code == 200 and r.json()["user"]["name"] == "rev"
    assert COOKIE_NAME in browser.cookies
    r = login(browser, "rev", svc.tokens["rev"], "//evil.example/x")
    assert r.headers["location"] == "/"
    r = login(browser, "rev", svc.tokens["rev"], "https://evil.example/")
    assert r.headers["location"] == "/"
    r = browser.post(
        "/login", data={"name": "rev", "token": svc.tokens["rev"]}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403


def test_cookie_writes_need_same_origin(svc, browser):
    login(browser, "rev", svc.tokens["rev"])
    fid = flag_ids(svc, PARK_B)[2]
    body = {"status": "site_visit", "comment": "", "version": 0}
    assert browser.patch(f"/api/flags/{fid}", json=body).status_code == 403
    assert browser.patch(f"/api/flags/{fid}", json=body, headers={"Origin": "https://evil.example"}).status_code == 403
    r = browser.patch(f"/api/flags/{fid}", json=body, headers={"Origin": "https://testserver"})
    assert r.status_code == 200 and r.json()["review"]["updated_by"] == "rev"


def test_forged_expired_and_revoked_cookies_are_refused(svc, browser):
    user = open_store(svc.data_dir).get_user("comA")
    browser.cookies.set(COOKIE_NAME, sign_session("x" * 48, "comA", user.token_id))
    assert browser.get("/api/me").status_code == 401
    browser.cookies.set(COOKIE_NAME, sign_session(SECRET, "admin", "000000000000"))
    assert browser.get("/api/me").status_code == 401
    browser.cookies.set(COOKIE_NAME, sign_session(SECRET, "comA", user.token_id, issued=1_000_000))
    assert browser.get("/api/me").status_code == 401
    browser.cookies.set(COOKIE_NAME, sign_session(SECRET, "comA", user.token_id, gen=user.session_gen + 1))
    assert browser.get("/api/me").status_code == 401  # not the user's session generation
    browser.cookies.set(COOKIE_NAME, sign_session(SECRET, "comA", user.token_id, gen=user.session_gen))
    assert browser.get("/api/me").status_code == 200
    # a Bearer header is judged alone: a bad token is 401 even with a good cookie
    assert browser.get("/api/me", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_rotating_a_token_ends_browser_sessions(svc, browser):
    c = svc.client
    r = c.post("/api/users", json={"name": "临时", "role": "reviewer"}, headers=svc.h("admin"))
    login(browser, "临时", r.json()["token"])
    assert browser.get("/api/me").status_code == 200
    c.post("/api/users/临时/token", headers=svc.h("admin"))
    assert browser.get("/api/me").status_code == 401
    c.delete("/api/users/临时", headers=svc.h("admin"))


# --- settings, secrets, errors, the maps hook -----------------------------------------------------------
@pytest.mark.parametrize("secret", ["", "changethis", "changeme", "secret", "short-but-not-placeholder"])
def test_placeholder_secrets_are_refused_outside_demo_mode(tmp_path, secret):
    with pytest.raises(ValidationError) as info:
        Settings(data_dir=tmp_path, secret_key=secret)
    assert "GEO_EVAL_SECRET_KEY" in str(info.value)
    demo = Settings(data_dir=tmp_path, secret_key=secret, demo=True)
    assert len(demo.secret_key.get_secret_value()) >= 32 and demo.secret_key.get_secret_value() != secret


@pytest.mark.parametrize("secret", ["changethis", "short-but-not-placeholder"])
def test_a_refused_secret_is_not_repeated(tmp_path, secret):
    # (a short one such as "secret" may well appear in the message for other reasons)
    with pytest.raises(ValidationError) as info:
        Settings(data_dir=tmp_path, secret_key=secret)
    assert secret not in str(info.value)


def test_the_factory_reads_the_environment_and_refuses_a_placeholder(tmp_path, monkeypatch):
    monkeypatch.setenv("GEO_EVAL_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("GEO_EVAL_SECRET_KEY", "changethis")
    monkeypatch.delenv("GEO_EVAL_DEMO", raising=False)
    with pytest.raises(ValidationError):
        create_app_from_env()
    monkeypatch.setenv("GEO_EVAL_SECRET_KEY", SECRET)
    app = create_app_from_env()
    assert app.state.settings.data_dir == tmp_path / "d"
    app.state.store.close()


def test_secrets_are_never_logged(svc, browser, caplog):
    caplog.set_level(logging.DEBUG)
    token = svc.tokens["rev"]
    svc.client.get("/api/rankings", headers=svc.h("rev"))
    svc.client.get("/api/me", headers={"Authorization": "Bearer gev.000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
    login(browser, "rev", token)
    login(browser, "rev", token[:-3] + "xyz")
    r = svc.client.post("/api/users", json={"name": "日志", "role": "reviewer"}, headers=svc.h("admin"))
    new = r.json()["token"]
    svc.client.delete("/api/users/日志", headers=svc.h("admin"))
    text = caplog.text
    for secret in (token, token.split(".")[2], new, new.split(".")[2], SECRET):
        assert secret not in text
    assert "rev" in text  # the logs do say who


def test_error_table():
    from api.errors import Forbidden, Unauthorized
    from geo_eval.errors import OutputExistsError, SchemeError
    from geo_eval.storage import ConflictError, Review

    assert status_for(Unauthorized()) == 401
    assert status_for(Forbidden("x")) == 403
    assert status_for(ConflictError("x", Review("r", "f"))) == 409
    assert status_for(SchemeError("x")) == 422
    assert status_for(OutputExistsError("x")) == 409
    assert status_for(ValueError("x")) is None


def test_optional_routers_are_included_when_present(svc, tmp_path, monkeypatch):
    (tmp_path / "fake_maps_routes.py").write_text(
        "from fastapi import APIRouter\n"
        "from fastapi.responses import HTMLResponse\n"
        "from api.deps import PageUser, ParkScopeDep\n"
        "router = APIRouter()\n"
        "@router.get('/maps/{park}', response_class=HTMLResponse, summary='园区地图')\n"
        "def park_map(park: str, user: PageUser) -> str:\n"
        "    from api.deps import ensure_park\n"
        "    ensure_park(user, park)\n"
        "    return f'<p>{park}</p>'\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = create_app(Settings(data_dir=svc.data_dir, secret_key=SECRET))
    assert include_optional_routers(app, ("fake_maps_routes", "no_such_module_here")) == ["fake_maps_routes"]
    c = TestClient(app, follow_redirects=False)
    r = c.get(f"/maps/{PARK_A}")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/maps/")
    assert c.get(f"/maps/{PARK_A}", headers=svc.h("comA")).status_code == 200
    assert c.get(f"/maps/{PARK_B}", headers=svc.h("comA")).status_code == 403
    app.state.store.close()
    sys.modules.pop("fake_maps_routes", None)


def test_rankings_filtered_by_park_and_grade_together(svc):
    """Regression: the park scope combined with another filter must not hit a read-only mask."""
    r = svc.client.get("/api/rankings", params={"park": PARK_A, "group": "above_scale"}, headers=svc.h("rev"))
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert rows
    assert all(row["group"] == "above_scale" and row["park"] == PARK_A for row in rows)
