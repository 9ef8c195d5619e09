"""公示与异议 over HTTP, on both stores: run status (草稿 → 公示中 → 已发布), objections recorded by a committee
for its own park, decided with versions (one 409 for two admins at once), evidence files, the history, the
corrections table and the register, the lock of a final year and ``--supersede``.

The catalogue split into two parks: 海滨高新技术产业园 (甲 E1 … 戊 E5, parcels P1–P3) and 青松经济开发区 (the
rest). 甲公司 pays 600 万元 of tax and holds P1 (200 m × 100 m registered 20000 m²).
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import catalogue
import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.settings import Settings
from geo_eval.cli import app as cli_app
from geo_eval.inputs.corrections import CORRECTION_COLUMNS
from geo_eval.io.run import run
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import open_store, run_record_from_out_dir

PARK_A = "海滨高新技术产业园"
PARK_B = "青松经济开发区"
SECRET = "p" * 48
E1, E2, E7 = catalogue.E[1], catalogue.E[2], catalogue.E[7]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TODAY = dt.date.today()


def dataset(root: Path, *, tax_of_e1: float = 600) -> Path:
    p = catalogue.parcels()
    e = catalogue.enterprises()
    p.loc[p["parcel_id"].isin(["P4", "P5", "P6", "P7", "P8"]), "park"] = PARK_B
    e.loc[e["uscc"].isin([catalogue.E[i] for i in (6, 7, 8, 9)]), "park"] = PARK_B
    e.loc[e["uscc"] == E1, "tax"] = tax_of_e1
    return catalogue.write_dataset(root, parcels_gdf=p, enterprises_df=e, year=2025)


@pytest.fixture(scope="module")
def outs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("publication")
    scheme = load_scheme("huaian-2024")
    out = {"v1": base / "v1", "v2": base / "v2"}
    run(dataset(base / "ds1"), scheme, out["v1"])
    run(dataset(base / "ds2", tax_of_e1=900), scheme, out["v2"])
    return out


@dataclass
class Service:
    client: TestClient
    tokens: dict[str, str]
    data_dir: Path
    url: str | None

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str = "admin"):
        return self.client.get(path, headers=self.h(who))

    def post(self, path: str, who: str = "admin", **body):
        return self.client.post(path, json=body, headers=self.h(who))

    def patch(self, oid: int, who: str, **body):
        return self.client.patch(f"/api/objections/{oid}", json=body, headers=self.h(who))

    def publicity(self, start: dt.date = TODAY, end: dt.date = TODAY + dt.timedelta(days=9)):
        return self.post("/api/runs/2025/status", to="publicity", start=start.isoformat(), end=end.isoformat())

    def object(self, who: str = "comA", **body):
        return self.post("/api/objections", who, **({"year": 2025} | body))


@pytest.fixture(params=["sqlite", "postgis"])
def svc(request, outs, tmp_path) -> Iterator[Service]:
    url = request.getfixturevalue("pg_db") if request.param == "postgis" else None
    data_dir = tmp_path / "data"
    store = open_store(data_dir, database_url=url)
    store.add_run(run_record_from_out_dir(outs["v1"]), actor="test")
    users = [("rev", "reviewer", []), ("admin", "admin", []), ("admin2", "admin", []), ("comA", "committee", [PARK_A])]
    users.append(("comB", "committee", [PARK_B]))
    tokens = {name: store.add_user(name, role, parks)[1] for name, role, parks in users}
    store.close()
    app = create_app(Settings(data_dir=data_dir, secret_key=SECRET, database_url=url))
    with TestClient(app) as client:
        yield Service(client, tokens, data_dir, url)


def current_run(svc: Service) -> dict:
    return next(r for r in svc.get("/api/runs").json() if r["latest"] and r["year"] == 2025)


# --- run status -------------------------------------------------------------------------------------------
def test_a_draft_goes_to_publicity_with_its_dates_and_only_then_to_final(svc):
    assert (current_run(svc)["status"], current_run(svc)["version"]) == ("draft", 1)
    r = svc.post("/api/runs/2025/status", to="final")
    assert r.status_code == 422 and r.json()["detail"] == "草稿须先公示（--to publicity）才能正式发布"
    r = svc.post("/api/runs/2025/status", to="publicity", start="2026-03-10", end="2026-03-01")
    assert r.status_code == 422 and "早于开始日期" in r.json()["detail"]
    assert (
        svc.post("/api/runs/2025/status", "rev", to="publicity", start="2026-03-01", end="2026-03-10").status_code
        == 403
    )
    assert svc.publicity(dt.date(2026, 3, 1), dt.date(2026, 3, 10)).status_code == 200
    shown = current_run(svc)
    assert (shown["status"], shown["status_label"], shown["publicity_start"], shown["publicity_end"]) == (
        "publicity", "公示中", "2026-03-01", "2026-03-10"
    )  # fmt: skip
    assert shown["status_line"] == "2025 年度 第 1 版 · 公示中（公示期 2026-03-01 至 2026-03-10）"
    r = svc.post("/api/runs/2025/status", to="final")
    assert r.status_code == 200 and r.json()["status"] == "final"
    r = svc.publicity()
    assert r.status_code == 409 and "已正式发布" in r.json()["detail"]


# --- recording ----------------------------------------------------------------------------------------------
def test_objections_need_the_publicity_period(svc):
    r = svc.object(uscc=E1, field="tax", claimed_value="500", reason="多计了")
    assert r.status_code == 409 and r.json()["detail"] == "该年度当前版本为草稿，尚未公示，不受理异议"
    svc.publicity(TODAY - dt.timedelta(days=10), TODAY - dt.timedelta(days=1))
    r = svc.object(uscc=E1, field="tax", claimed_value="500", reason="多计了")
    assert r.status_code == 409 and "已结束，不再受理异议" in r.json()["detail"]


def test_a_committee_records_for_its_own_park_only_and_sees_only_its_park(svc, outs):
    svc.publicity()
    r = svc.object(uscc=E1, field="tax", claimed_value="5,00", reason="税务部门已更正申报")
    assert r.status_code == 201, r.text
    tax = r.json()
    assert (tax["status"], tax["status_label"], tax["version"], tax["run_value"], tax["claimed_value"]) == (
        "open", "待处理", 1, "600", "500"
    )  # fmt: skip
    assert (tax["park"], tax["enterprise"], tax["field_label"], tax["unit"]) == (PARK_A, "甲公司", "税收", "万元")
    # the land area of 甲公司: its only parcel P1, 20000 m² registered (as parcels.gpkg holds it)
    r = svc.object(uscc=E1, field="registered_area_m2", claimed_value="18000", reason="部分土地已收回")
    assert r.status_code == 201
    land = r.json()
    assert (land["parcel_id"], land["run_value"], land["unit"]) == ("P1", "20000", "平方米")
    # another park's enterprise, a reviewer, nonsense
    r = svc.object(uscc=E7, field="tax", claimed_value="1", reason="x")
    assert r.status_code == 403 and "只能为本园区" in r.json()["detail"]
    assert svc.object("rev", uscc=E1, field="tax", claimed_value="1", reason="x").status_code == 403
    r = svc.object(uscc=E1, field="tax", claimed_value="-5", reason="x")
    assert r.status_code == 422 and "不小于 0" in r.json()["detail"]
    r = svc.object(uscc=E1, field="colour", claimed_value="1", reason="x")
    assert r.status_code == 422 and "异议事项 'colour' 无效" in r.json()["detail"]
    assert svc.object(uscc=E1, field="tax", claimed_value="1", reason="  ").status_code == 422
    b = svc.object("admin", uscc=E7, field="sales", claimed_value="100", reason="开票有误")
    assert b.status_code == 201 and b.json()["park"] == PARK_B
    # who sees what
    mine = svc.get("/api/objections?year=2025", "comA").json()
    assert [o["id"] for o in mine] == [tax["id"], land["id"]]
    assert len(svc.get("/api/objections?year=2025", "rev").json()) == 3
    assert svc.get(f"/api/objections?year=2025&park={PARK_B}", "comA").status_code == 403
    assert svc.get(f"/api/objections/{b.json()['id']}", "comA").status_code == 403
    assert svc.get(f"/api/objections/{tax['id']}/history", "comB").status_code == 403
    assert [o["field"] for o in svc.get("/api/objections?year=2025&status=open", "comB").json()] == ["sales"]


# --- deciding -----------------------------------------------------------------------------------------------
def test_decisions_with_versions_history_and_the_corrections_table(svc, tmp_path):
    svc.publicity()
    tax = svc.object(uscc=E1, field="tax", claimed_value="500", reason="税务部门已更正申报").json()
    land = svc.object(uscc=E1, field="registered_area_m2", claimed_value="18000", reason="部分土地已收回").json()
    assert svc.patch(tax["id"], "comA", decision="accepted", version=1).status_code == 403
    r = svc.patch(land["id"], "rev", decision="rejected", reason="  ", version=1)
    assert r.status_code == 422 and r.json()["detail"] == "须填写不采纳的理由"
    r = svc.patch(tax["id"], "rev", decision="accepted", corrected_value="520", reason="核实为 520 万元", version=1)
    assert r.status_code == 200
    done = r.json()
    assert (done["status"], done["status_label"], done["corrected_value"], done["version"]) == (
        "accepted",
        "采纳",
        "520",
        2,
    )
    r = svc.patch(tax["id"], "admin", decision="rejected", reason="不同意", version=1)
    assert r.status_code == 409
    assert r.json()["detail"].startswith(f"该异议已被 rev 于 {done['decided_at_label']} 处理为“采纳”（更正值 520）")
    assert r.json()["current"]["version"] == 2
    r = svc.patch(land["id"], "admin", decision="rejected", reason="证载面积无误", version=1)
    assert r.status_code == 200 and r.json()["decision_reason"] == "证载面积无误"
    history = svc.get(f"/api/objections/{tax['id']}/history", "comA").json()
    assert [h["action"] for h in history] == ["objection.add", "objection.decide"]
    assert history[1]["before"]["status"] == "open" and history[1]["after"]["corrected_value"] == "520"
    # the corrections table: exactly the accepted objection, from the service and from the CLI
    r = svc.get("/api/objections/corrections.csv?year=2025", "rev")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(table.columns) == list(CORRECTION_COLUMNS)
    row = table.iloc[0].to_dict()
    assert len(table) == 1 and row | {"decided_at": ""} == {
        "correction_id": f"2025-C{tax['id']:04d}", "uscc": E1, "parcel_id": "", "field": "tax", "run_value": "600",
        "corrected_value": "520", "reason": "核实为 520 万元", "objection_id": str(tax["id"]), "decided_by": "rev",
        "decided_at": "",
    }  # fmt: skip
    assert row["decided_at"] == done["decided_at"]
    assert svc.get("/api/objections/corrections.csv?year=2025", "comA").status_code == 403
    exported = tmp_path / "corrections.csv"
    args = ["objections", "export", "2025", "--out", str(exported), "--data-dir", str(svc.data_dir)]
    result = CliRunner().invoke(cli_app, args + (["--db", svc.url] if svc.url else []))
    assert result.exit_code == 0, result.output
    assert exported.read_bytes() == r.content
    # the register, as a committee downloads it
    r = svc.get("/api/objections/register?year=2025&format=xlsx", "comA")
    sheet = openpyxl.load_workbook(io.BytesIO(r.content))["异议处理登记表"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    head = rows.index(next(r for r in rows if r and r[0] == "异议编号"))
    got = [dict(zip(rows[head], r, strict=True)) for r in rows[head + 1 :]]
    assert [(g["异议编号"], g["异议事项"], g["处理结果"], g["更正值"]) for g in got] == [
        (tax["id"], "税收", "采纳", "520"), (land["id"], "用地面积", "不采纳", None)
    ]  # fmt: skip


def test_two_admins_deciding_one_objection_at_once_get_one_409(svc):
    svc.publicity()
    oid = svc.object(uscc=E1, field="sales", claimed_value="5000", reason="退货").json()["id"]
    answers: list[int] = []
    said: list[str] = []
    start = threading.Barrier(2)

    def decide(who: str, decision: str) -> None:
        start.wait()
        body = {"decision": decision, "version": 1} | ({"reason": "不同意"} if decision == "rejected" else {})
        try:
            r = svc.client.patch(f"/api/objections/{oid}", json=body, headers=svc.h(who))
            answers.append(r.status_code)
            said.append(r.text)
        except Exception as exc:  # shown by the assertion below
            said.append(repr(exc))

    threads = [threading.Thread(target=decide, args=a) for a in (("admin", "accepted"), ("admin2", "rejected"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 409], said
    final = svc.get(f"/api/objections/{oid}").json()
    assert final["version"] == 2 and len(svc.get(f"/api/objections/{oid}/history").json()) == 2


# --- evidence -----------------------------------------------------------------------------------------------
def test_evidence_files_are_checked_stored_and_served_to_the_park_only(svc):
    svc.publicity()
    oid = svc.object(uscc=E1, field="tax", claimed_value="500", reason="见完税证明").json()["id"]
    url = f"/api/objections/{oid}/evidence"
    h = svc.h("comA") | {"Content-Type": "application/pdf"}
    r = svc.client.post(f"{url}?name=../完税证明.pdf", content=PDF, headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["content_type"], r.json()["size"]) == (
        "完税证明.pdf",
        "application/pdf",
        len(PDF),
    )
    r = svc.client.post(f"{url}?name=x.pdf", content=b"<html>not a pdf</html>", headers=h)
    assert r.status_code == 422 and "不是 PDF、PNG 或 JPEG" in r.json()["detail"]
    r = svc.client.post(f"{url}?name=big.pdf", content=PDF + b"0" * (10 * 1024 * 1024), headers=h)
    assert r.status_code in (413, 422)
    got = svc.get(f"{url}/1", "rev")
    assert got.status_code == 200 and got.content == PDF and got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert svc.get(f"{url}/1", "comB").status_code == 403
    assert svc.client.post(f"{url}?name=y.pdf", content=PDF, headers=svc.h("comB")).status_code == 403
    files = svc.get(f"/api/objections/{oid}", "comA").json()["files"]
    assert [(f["file_no"], f["url"]) for f in files] == [(1, f"{url}/1")]
    svc.patch(oid, "rev", decision="rejected", reason="证明不足", version=1)
    r = svc.client.post(f"{url}?name=late.pdf", content=PDF, headers=h)
    assert r.status_code == 422 and "已处理" in r.json()["detail"]


# --- final, versions, supersede -----------------------------------------------------------------------------
def test_a_final_year_is_locked_and_a_new_run_needs_supersede_with_a_reason(svc, outs):
    svc.publicity()
    oid = svc.object(uscc=E1, field="tax", claimed_value="500", reason="多计").json()["id"]
    assert svc.post("/api/runs/2025/status", to="final").status_code == 200
    r = svc.object(uscc=E1, field="sales", claimed_value="1", reason="x")
    assert r.status_code == 409 and r.json()["detail"] == "该年度评价结果已正式发布（已锁定），不再受理异议"
    r = svc.patch(oid, "rev", decision="accepted", version=1)
    assert r.status_code == 409 and "异议已锁定" in r.json()["detail"]
    old = current_run(svc)["run_id"]
    r = svc.post("/api/runs/register", out_dir=str(outs["v2"]))
    assert r.status_code == 409 and "--supersede" in r.json()["detail"]
    r = svc.post("/api/runs/register", out_dir=str(outs["v2"]), supersede=True)
    assert r.status_code == 422 and r.json()["detail"] == "取代已发布的批次须说明理由（--reason）"
    r = svc.post("/api/runs/register", out_dir=str(outs["v2"]), supersede=True, supersede_reason="税务数据补报")
    assert r.status_code == 201
    new = r.json()
    assert (new["version"], new["status"], new["supersede_reason"]) == (2, "draft", "税务数据补报")
    runs = {r["run_id"]: r for r in svc.get("/api/runs").json()}
    assert runs[old]["superseded_by"] == new["run_id"] and runs[old]["status"] == "final"
    assert svc.get(f"/api/rankings?run={old}").status_code == 200  # the old one stays readable


def test_a_rerun_during_publicity_is_the_next_version_and_ends_objections_to_the_old_one(svc, outs):
    svc.publicity()
    assert svc.object(uscc=E1, field="tax", claimed_value="900", reason="补报").status_code == 201
    r = svc.post("/api/runs/register", out_dir=str(outs["v2"]))
    assert r.status_code == 201 and (r.json()["version"], r.json()["status"]) == (2, "draft")
    assert "第 2 版 · 草稿" in r.json()["status_line"]
    r = svc.object(uscc=E1, field="sales", claimed_value="1", reason="x")
    assert r.status_code == 409 and "草稿" in r.json()["detail"]
    # the corrected version may be published without a second publicity
    r = svc.post("/api/runs/2025/status", to="final")
    assert r.status_code == 200 and r.json()["version"] == 2


# --- what pages and downloads say ---------------------------------------------------------------------------
def test_report_downloads_and_policies_say_which_status_and_version_they_show(svc, outs):
    svc.publicity(dt.date(2026, 3, 1), dt.date(2026, 3, 10))
    line = "2025 年度 第 1 版 · 公示中（公示期 2026-03-01 至 2026-03-10）"
    assert f"发布状态：{line}" in svc.get("/reports/2025", "comA").text
    r = svc.get("/api/rankings/download?year=2025&format=xlsx", "comA")
    assert (
        unquote(r.headers["content-disposition"].split("''", 1)[1])
        == f"2025年度亩均效益评价排名_{PARK_A}_公示稿第1版.xlsx"
    )
    notes = [row[0] for row in openpyxl.load_workbook(io.BytesIO(r.content))["说明"].iter_rows(values_only=True)]
    assert f"发布状态：{line}" in notes
    r = svc.get("/api/flags/download?year=2025&format=csv", "rev")
    assert unquote(r.headers["content-disposition"].split("''", 1)[1]).endswith("_全部园区_公示稿第1版.csv")
    # published, then replaced by a draft: reports and policy lists keep showing the published version
    v1 = current_run(svc)["run_id"]
    svc.post("/api/runs/2025/status", to="final")
    r = svc.post("/api/runs/register", out_dir=str(outs["v2"]), supersede=True, supersede_reason="补报税收")
    assert r.status_code == 201
    page = svc.get("/reports/2025", "rev").text
    assert "发布状态：2025 年度 第 1 版 · 已发布（已被批次" in page
    assert current_run(svc)["version"] == 2
    r = svc.get("/api/rankings/download?year=2025&format=xlsx", "rev")  # rankings: the latest version
    notes = [row[0] for row in openpyxl.load_workbook(io.BytesIO(r.content))["说明"].iter_rows(values_only=True)]
    assert "发布状态：2025 年度 第 2 版 · 草稿" in notes
    runs_page = svc.get("/runs", "admin").text
    assert "第 2 版" in runs_page and "取代理由：补报税收" in runs_page
    assert f"已被批次 {current_run(svc)['run_id']} 取代" in runs_page and v1 in svc.get("/api/runs").text
