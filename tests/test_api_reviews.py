"""The review API over HTTP, on both stores: 撤回 (pending), the Chinese 409, batch reviews, the filters, the
flag download's Chinese rule names and Beijing times, and the 现场核查清单 (xlsx and csv).

The catalogue split into two parks (海滨高新技术产业园: P1–P3; "青松经济开发区/东区", a name with a "/":
P4–P8) and evaluated once for 2024 and 2025; P4 is idle since 2020 (闲置土地·满两年可收回, severity 高); the
name of 庚公司 (P5) is ``=1+1`` (a formula if a download ever let it be one). Every test taking ``svc`` runs on
SQLite and on PostgreSQL (``GEO_EVAL_TEST_DATABASE_URL``, see tests/conftest.py).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import catalogue
import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import Point, box

from api.app import create_app
from api.settings import Settings
from geo_eval.io.run import run
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import User, open_store, run_record_from_out_dir

PARK_A = "海滨高新技术产业园"
PARK_B = "青松经济开发区/东区"
SCHEME = "huaian-2024"
SECRET = "r" * 48
FORMULA = "=1+1"
SAMPLE = Path(__file__).parents[1] / "sample_parcels"
CHECKLIST_HEADERS = [
    "序号",
    "宗地代码",
    "园区",
    "县区",
    "权利人",
    "使用企业",
    "面积（亩）",
    "标记",
    "复核状态",
    "中心点经度（CGCS2000）",
    "中心点纬度（CGCS2000）",
    "中心点经度（GCJ-02）",
    "中心点纬度（GCJ-02）",
    "地图链接",
    "核查结果",
    "核查人",
]
D_REASON = "主要使用企业 {uscc}（{name}）本年度综合评价为D类（落后整治类）"


def dataset(root: Path, year: int) -> Path:
    p = catalogue.parcels()
    e = catalogue.enterprises()
    p.loc[p["parcel_id"].isin(["P4", "P5", "P6", "P7", "P8"]), "park"] = PARK_B
    p["contract_start_date"] = None
    p.loc[p["parcel_id"] == "P4", "contract_start_date"] = "2020-01-01"  # never started: idle for years
    e.loc[e["uscc"].isin([catalogue.E[i] for i in (6, 7, 8, 9)]), "park"] = PARK_B
    e.loc[e["uscc"] == catalogue.E[7], "name"] = FORMULA
    if year == 2024:
        e["tax"] = e["tax"] * 0.9
    return catalogue.write_dataset(root, parcels_gdf=p, enterprises_df=e, year=year)


@pytest.fixture(scope="module")
def outs(tmp_path_factory) -> dict[int, Path]:
    base = tmp_path_factory.mktemp("reviews")
    scheme = load_scheme(SCHEME)
    out = {}
    for year in (2024, 2025):
        out[year] = base / f"out{year}"
        run(dataset(base / f"ds{year}", year), scheme, out[year])
    return out


@dataclass
class Service:
    client: TestClient
    runs: dict[int, str]
    tokens: dict[str, str]
    backend: str

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def patch(self, fid: str, who: str, **body):
        return self.client.patch(f"/api/flags/{fid}", json=body, headers=self.h(who))

    def batch(self, who: str, body: dict, query: str = ""):
        return self.client.post(f"/api/reviews/batch{query}", json=body, headers=self.h(who))

    def review(self, fid: str, query: str = "", who: str = "rev") -> dict:
        r = self.client.get(f"/api/flags/{fid}{query}", headers=self.h(who))
        assert r.status_code == 200
        return r.json()["properties"]["review"]

    def history(self, fid: str) -> list[dict]:
        return self.client.get(f"/api/flags/{fid}/history", headers=self.h("rev")).json()["entries"]


@pytest.fixture(params=["sqlite", "postgis"])
def svc(request, outs, tmp_path) -> Iterator[Service]:
    """A fresh service over the two runs, its store on each backend."""
    url = request.getfixturevalue("pg_db") if request.param == "postgis" else None
    data_dir = tmp_path / "data"
    store = open_store(data_dir, database_url=url)
    runs = {y: store.add_run(run_record_from_out_dir(outs[y]), actor="test").run_id for y in (2024, 2025)}
    users = [
        ("rev", "reviewer", []),
        ("rev2", "reviewer", []),
        ("admin", "admin", []),
        ("comA", "committee", [PARK_A]),
    ]
    tokens = {name: store.add_user(name, role, parks)[1] for name, role, parks in users}
    store.close()
    app = create_app(Settings(data_dir=data_dir, secret_key=SECRET, database_url=url))
    with TestClient(app) as client:
        yield Service(client, runs, tokens, request.param)


def beijing(iso: str) -> str:
    """An independent conversion: UTC ISO text + 8 hours, to the minute."""
    at = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")


# --- 撤回, Beijing time, the Chinese 409 ------------------------------------------------------------------
def test_pending_withdraws_a_decision(svc):
    fid = "P1:low_efficiency.grade_d"
    r = svc.patch(fid, "rev", status="confirmed", comment="属实", version=0)
    assert r.status_code == 200
    r = svc.patch(fid, "rev2", status="pending", version=1)  # the comment is optional
    assert r.status_code == 200
    review = r.json()["review"]
    assert (review["status"], review["status_label"], review["version"], review["comment"]) == (
        "pending",
        "待复核",
        2,
        "",
    )
    assert svc.review(fid)["status"] == "pending"
    assert [(e["actor"], e["before"]["status"], e["after"]["status"]) for e in svc.history(fid)] == [
        ("rev", "pending", "confirmed"),
        ("rev2", "confirmed", "pending"),
    ]
    # withdrawn flags count as 待复核 in the filters again
    pending = svc.client.get("/api/flags?status=pending", headers=svc.h("rev")).json()
    assert fid in [f["id"] for f in pending["features"]]


def test_reviews_carry_their_time_in_beijing_time(svc):
    fid = "P2:low_efficiency.grade_d"
    assert svc.review(fid)["updated_at_label"] == ""  # never reviewed
    review = svc.patch(fid, "rev", status="site_visit", version=0).json()["review"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", review["updated_at"])  # unchanged for scripts
    assert review["updated_at_label"] == beijing(review["updated_at"])
    assert svc.review(fid)["updated_at_label"] == review["updated_at_label"]
    entry = svc.history(fid)[0]
    assert entry["at_label"] == beijing(entry["at"])
    # the audit trail records the review as stored, without the derived label
    assert "updated_at_label" not in entry["after"] and entry["after"]["updated_at"] == review["updated_at"]


def test_a_stale_version_is_409_naming_the_decision_comment_and_time(svc):
    fid = "P3:low_efficiency.grade_d"
    done = svc.patch(fid, "rev", status="confirmed", comment="现场已核实", version=0).json()["review"]
    r = svc.patch(fid, "rev2", status="dismissed", comment="不属实", version=0)
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "ConflictError"
    assert body["detail"] == (
        f"该标记已被 rev 于 {beijing(done['updated_at'])} 改为“确认”（意见：现场已核实），请刷新该标记后再操作"
    )
    assert body["current"] == done
    # a version ahead of a flag never reviewed
    r = svc.patch("P5:low_efficiency.grade_d", "rev", status="confirmed", version=4)
    assert r.status_code == 409
    assert r.json()["detail"] == "该标记尚未复核（当前为“待复核”，版本 0），与提交的版本 4 不符，请刷新该标记后再操作"
    # a withdrawal without a comment
    svc.patch(fid, "rev", status="pending", version=1)
    detail = svc.patch(fid, "rev2", status="confirmed", version=1).json()["detail"]
    assert re.fullmatch(r"该标记已被 rev 于 \d{4}-\d\d-\d\d \d\d:\d\d 改为“待复核”，请刷新该标记后再操作", detail)


def test_review_validation_messages_are_chinese_without_english_prefixes(svc):
    r = svc.patch("P1:renewal_candidate", "rev", status="dismissed", comment=" ", version=0)
    assert r.status_code == 422
    assert "排除（dismissed）须在 comment 中填写理由" in r.text and "Value error" not in r.text
    assert svc.patch("P1:renewal_candidate", "rev", status="maybe", version=0).status_code == 422


# --- batch ------------------------------------------------------------------------------------------------
def test_batch_reviews_each_flag_with_its_own_check_and_audit_entry(svc):
    items = [{"flag_id": "P1:low_efficiency.grade_d", "version": 0}, {"flag_id": "P1:renewal_candidate", "version": 0}]
    r = svc.batch("rev", {"status": "confirmed", "comment": "本宗地全部确认", "items": items})
    assert r.status_code == 200
    body = r.json()
    assert (body["run_id"], body["status"], body["succeeded"], body["failed"]) == (svc.runs[2025], "confirmed", 2, 0)
    assert [x["flag_id"] for x in body["results"]] == [i["flag_id"] for i in items]
    for x in body["results"]:
        assert x["ok"] is True
        assert x["review"] | {"updated_at": "", "updated_at_label": ""} == {
            "status": "confirmed",
            "status_label": "确认",
            "comment": "本宗地全部确认",
            "version": 1,
            "updated_by": "rev",
            "updated_at": "",
            "updated_at_label": "",
        }
        assert svc.review(x["flag_id"]) == x["review"]
        assert [(e["actor"], e["after"]["status"]) for e in svc.history(x["flag_id"])] == [("rev", "confirmed")]
    audit = svc.client.get(f"/api/audit?run={svc.runs[2025]}", headers=svc.h("admin")).json()
    assert sorted(e["entity"] for e in audit if e["action"] == "review") == sorted(i["flag_id"] for i in items)


def test_a_stale_item_does_not_undo_the_others(svc):
    other = svc.patch("P2:renewal_candidate", "rev2", status="site_visit", comment="约了现场", version=0).json()[
        "review"
    ]
    items = [
        {"flag_id": "P2:low_efficiency.grade_d", "version": 0},
        {"flag_id": "P2:renewal_candidate", "version": 0},  # stale: rev2 changed it
        {"flag_id": "P99:nothing", "version": 0},
        {"flag_id": "P3:renewal_candidate", "version": 0},
    ]
    r = svc.batch("rev", {"status": "dismissed", "comment": "已办理用地手续", "items": items})
    assert r.status_code == 200
    body = r.json()
    assert (body["succeeded"], body["failed"]) == (2, 2)
    ok, stale, missing, ok2 = body["results"]
    assert ok["ok"] and ok2["ok"] and ok["review"]["status_label"] == "排除"
    assert stale == {
        "flag_id": "P2:renewal_candidate",
        "ok": False,
        "error": "conflict",
        "detail": f"该标记已被 rev2 于 {beijing(other['updated_at'])} 改为“待核查”（意见：约了现场），请刷新该标记后再操作",
        "current": other,
    }
    assert missing == {
        "flag_id": "P99:nothing",
        "ok": False,
        "error": "not_found",
        "detail": "本评价批次中没有标记 P99:nothing",
        "current": None,
    }
    assert svc.review("P2:low_efficiency.grade_d")["status"] == "dismissed"
    assert svc.review("P3:renewal_candidate")["status"] == "dismissed"
    assert svc.review("P2:renewal_candidate") == other
    assert len(svc.history("P2:renewal_candidate")) == 1


def test_batch_checks_the_park_of_every_flag(svc, monkeypatch):
    """The route asks the user's park scope about each flag (reviewers see every park today)."""

    def only_park_a(self: User, park: object) -> bool:
        return self.name != "rev" or park == PARK_A

    monkeypatch.setattr(User, "may_see_park", only_park_a)
    items = [{"flag_id": "P4:idle_legal.reclaim", "version": 0}, {"flag_id": "P1:renewal_candidate", "version": 0}]
    body = svc.batch("rev", {"status": "confirmed", "items": items}).json()
    refused, ok = body["results"]
    assert refused == {
        "flag_id": "P4:idle_legal.reclaim",
        "ok": False,
        "error": "forbidden",
        "detail": f"无权查看园区“{PARK_B}”的数据",
        "current": None,
    }
    assert ok["ok"] and (body["succeeded"], body["failed"]) == (1, 1)
    assert svc.review("P4:idle_legal.reclaim", who="admin")["version"] == 0


def test_batch_withdraws_and_chooses_the_run_like_the_patch(svc):
    fid = "P5:renewal_candidate"
    first = svc.batch("rev", {"status": "site_visit", "items": [{"flag_id": fid, "version": 0}]}, "?year=2024")
    assert first.json()["run_id"] == svc.runs[2024] and first.json()["succeeded"] == 1
    assert svc.review(fid, "?year=2024")["status"] == "site_visit"
    assert svc.review(fid)["version"] == 0  # the 2025 run is untouched
    back = svc.batch("rev", {"status": "pending", "items": [{"flag_id": fid, "version": 1}]}, f"?run={svc.runs[2024]}")
    assert back.json()["results"][0]["review"]["status_label"] == "待复核"
    assert svc.review(fid, "?year=2024")["version"] == 2


def test_batch_refusals(svc):
    item = [{"flag_id": "P1:renewal_candidate", "version": 0}]
    r = svc.batch("rev", {"status": "dismissed", "comment": "  ", "items": item})
    assert r.status_code == 422 and "须在 comment 中填写理由" in r.text and "Value error" not in r.text
    assert svc.batch("rev", {"status": "confirmed", "items": []}).status_code == 422
    many = [{"flag_id": f"P1:x{i}", "version": 0} for i in range(501)]
    assert svc.batch("rev", {"status": "confirmed", "items": many}).status_code == 422
    assert svc.batch("rev", {"status": "confirmed", "items": [{"flag_id": "P1:x", "version": -1}]}).status_code == 422
    assert svc.batch("rev", {"status": "maybe", "items": item}).status_code == 422
    assert svc.batch("rev", {"status": "confirmed", "items": item, "extra": 1}).status_code == 422
    assert svc.batch("comA", {"status": "confirmed", "items": item}).status_code == 403
    assert svc.client.post("/api/reviews/batch", json={"status": "confirmed", "items": item}).status_code == 401
    assert svc.review("P1:renewal_candidate")["version"] == 0
    # 500 items is the limit, and each unknown one is reported
    body = svc.batch("rev", {"status": "confirmed", "items": many[:500]}).json()
    assert (body["succeeded"], body["failed"]) == (0, 500) and {x["error"] for x in body["results"]} == {"not_found"}


# --- filters and the flag download ------------------------------------------------------------------------
def flag_ids_of(fc: dict) -> set[str]:
    return {f["id"] for f in fc["features"]}


def test_flags_filter_by_severity(svc):
    get = svc.client.get
    h = svc.h("rev")
    assert flag_ids_of(get("/api/flags?severity=高", headers=h).json()) == {"P4:idle_legal.reclaim"}
    assert flag_ids_of(get("/api/flags?severity=低", headers=h).json()) == {"P8:idle_suspected.no_enterprise"}
    medium = flag_ids_of(get("/api/flags?severity=中&flag=renewal_candidate", headers=h).json())
    assert medium == {f"{p}:renewal_candidate" for p in ("P1", "P2", "P3", "P4", "P5", "P8")}
    assert get("/api/flags?severity=很高", headers=h).status_code == 422
    r = get("/api/flags/download?format=csv&severity=低", headers=h)
    df = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(df["flag_id"]) == ["P8:idle_suspected.no_enterprise"]


def test_flag_features_carry_the_rule_name_and_the_short_reason(svc):
    fc = svc.client.get(f"/api/flags?park={quote(PARK_A)}", headers=svc.h("comA")).json()
    props = {f["id"]: f["properties"] for f in fc["features"]}
    assert props["P1:renewal_candidate"]["rule_label"] == "退二优二候选"
    assert props["P1:renewal_candidate"]["short_reason"] == "符合 1 项规则"
    assert props["P1:renewal_candidate"]["rule_id"] == "renewal_candidate"  # kept
    d = props["P1:low_efficiency.grade_d"]
    assert (d["rule_label"], d["short_reason"]) == (
        "低效用地·D类企业",
        D_REASON.format(uscc=catalogue.E[1], name="甲公司"),
    )
    one = svc.client.get("/api/flags/P4:idle_legal.reclaim", headers=svc.h("rev")).json()["properties"]
    assert one["rule_label"] == "闲置土地·满两年可收回" and one["short_reason"] == one["reason"]
    assert [(o["flag_id"], o["rule_label"]) for o in one["other_flags"]] == [("P4:renewal_candidate", "退二优二候选")]


def test_flag_download_shows_rule_names_and_beijing_times(svc):
    done = svc.patch("P1:low_efficiency.grade_d", "rev", status="confirmed", comment="属实", version=0).json()
    r = svc.client.get(f"/api/flags/download?park={quote(PARK_A)}", headers=svc.h("rev"))
    assert r.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    head = list(rows[0])
    table = pd.DataFrame(rows[1:], columns=head).set_index("标记编号")
    assert table.loc["P1:low_efficiency.grade_d", "规则"] == "低效用地·D类企业"
    assert table.loc["P1:renewal_candidate", "规则"] == "退二优二候选"
    assert not any("." in str(v) for v in table["规则"])
    # a 退二优二 candidate's evidence cites its rules by their Chinese names too; only the flag id keeps the rule id
    assert table.loc["P1:renewal_candidate", "证据"].startswith("规则=低效用地·")
    shown = table.drop(columns=[c for c in table.columns if c == "标记编号"]).astype(str)
    assert not shown.apply(lambda col: col.str.contains(r"low_efficiency\.|idle_\w+\.|renewal_candidate")).any().any()
    assert table.loc["P1:low_efficiency.grade_d", "复核时间"] == beijing(done["review"]["updated_at"])
    assert pd.isna(table.loc["P1:renewal_candidate", "复核时间"]) or table.loc["P1:renewal_candidate", "复核时间"] == ""
    notes = [row[0] for row in wb["说明"].iter_rows(values_only=True)]
    exported = re.search(r"导出时间：(\d{4}-\d\d-\d\d \d\d:\d\d)（北京时间），导出人：rev", notes[1])
    assert exported is not None
    now = datetime.now(UTC) + timedelta(hours=8)
    assert abs(datetime.strptime(exported.group(1), "%Y-%m-%d %H:%M") - now.replace(tzinfo=None)) < timedelta(minutes=5)
    # csv: the names scripts use are kept, the Chinese name and Beijing time beside them
    r = svc.client.get(f"/api/flags/download?format=csv&park={quote(PARK_A)}", headers=svc.h("rev"))
    df = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str, keep_default_na=False).set_index("flag_id")
    row = df.loc["P1:low_efficiency.grade_d"]
    assert (row["rule_id"], row["rule_label"]) == ("low_efficiency.grade_d", "低效用地·D类企业")
    assert (row["reviewed_at"], row["reviewed_at_label"]) == (
        done["review"]["updated_at"],
        beijing(done["review"]["updated_at"]),
    )


# --- 现场核查清单 ------------------------------------------------------------------------------------------
def checklist(svc: Service, query: str = "", who: str = "rev"):
    return svc.client.get(f"/api/flags/checklist{query}", headers=svc.h(who))


def workbook(content: bytes) -> openpyxl.Workbook:
    assert content[:2] == b"PK"
    return openpyxl.load_workbook(io.BytesIO(content))


def sheet_rows(ws) -> list[dict]:
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def link(svc: Service, park: str, parcel: str) -> str:
    return f"http://testserver/maps/{quote(park, safe='')}?run={svc.runs[2025]}#parcel={parcel}"


def gk_centre(pid: str) -> tuple[float, float]:
    x1, y1, x2, y2 = catalogue.RECTS[pid]
    return catalogue.X0 + (x1 + x2) / 2, catalogue.Y0 + (y1 + y2) / 2


def test_checklist_workbook(svc):
    svc.patch("P2:renewal_candidate", "rev", status="site_visit", version=0)
    r = checklist(svc)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert unquote(r.headers["content-disposition"].split("''", 1)[1]) == "2025年度现场核查清单_全部园区.xlsx"
    wb = workbook(r.content)
    assert wb.sheetnames == ["现场核查清单", "说明"]
    ws = wb["现场核查清单"]
    assert [c.value for c in ws[1]] == CHECKLIST_HEADERS
    rows = sheet_rows(ws)
    # by park, then the most severe flag (P4: 高), then area, largest first
    assert [(r["园区"], r["宗地代码"]) for r in rows] == [
        (PARK_A, "P1"),
        (PARK_A, "P3"),
        (PARK_A, "P2"),
        (PARK_B, "P4"),
        (PARK_B, "P8"),
        (PARK_B, "P5"),
    ]
    assert [r["序号"] for r in rows] == [1, 2, 3, 4, 5, 6]
    p1 = rows[0]
    e1, e2, e3 = catalogue.E[1], catalogue.E[2], catalogue.E[3]
    assert p1["县区"] == "海滨区" and p1["权利人"] == f"甲公司（{e1}）" and p1["使用企业"] == f"甲公司（{e1}）"
    assert p1["面积（亩）"] == pytest.approx(30.0, abs=1e-4)  # 200 m × 100 m = 20 000 m² = 30 亩
    assert p1["标记"] == (
        "低效用地·D类企业：" + D_REASON.format(uscc=e1, name="甲公司") + "\n退二优二候选：符合 1 项规则"
    )
    assert p1["复核状态"] == "待复核\n待复核"
    assert p1["地图链接"] == link(svc, PARK_A, "P1")
    assert p1["核查结果"] is None and p1["核查人"] is None
    p2 = rows[2]
    assert p2["使用企业"] == f"乙公司（{e2}）\n丙公司（{e3}）" and p2["复核状态"] == "待复核\n待核查"
    p4 = rows[3]
    assert p4["标记"].startswith("闲置土地·满两年可收回：约定动工日期 2020-01-01 至评价基准日 2026-03-31 已满74个月")
    assert p4["地图链接"] == link(svc, PARK_B, "P4") and "%2F" in p4["地图链接"]  # the "/" of the park name
    assert rows[5]["使用企业"] == f"{FORMULA}（{catalogue.E[7]}）"  # text, never a formula
    assert ws.cell(7, 6).data_type == "s" and ws.cell(7, 5).data_type == "s"
    assert rows[4]["权利人"] == "" or rows[4]["权利人"] is None  # P8: state land, nobody
    # the point is inside the parcel, within a metre of the rectangle's centre (the GK plane, EPSG:4549)
    to_gk = Transformer.from_crs(4490, catalogue.CRS, always_xy=True)
    for row in rows:
        pid = row["宗地代码"]
        x, y = to_gk.transform(row["中心点经度（CGCS2000）"], row["中心点纬度（CGCS2000）"])
        x1, y1, x2, y2 = catalogue.RECTS[pid]
        assert box(catalogue.X0 + x1, catalogue.Y0 + y1, catalogue.X0 + x2, catalogue.Y0 + y2).contains(Point(x, y))
        assert Point(x, y).distance(Point(gk_centre(pid))) < 1.0
        # GCJ-02 (高德) is shifted by a few hundred metres: here about 500 m east and 100 m south
        gx, gy = to_gk.transform(row["中心点经度（GCJ-02）"], row["中心点纬度（GCJ-02）"])
        assert 400 < gx - x < 650 and -200 < gy - y < -30 and 300 < np.hypot(gx - x, gy - y) < 700
        for c in CHECKLIST_HEADERS[9:13]:
            assert row[c] == round(row[c], 6)
    # number formats, wrapping, the link
    assert ws.cell(2, 7).number_format == "0.00"
    assert {ws.cell(2, j).number_format for j in range(10, 14)} == {"0.000000"}
    assert ws.cell(2, 8).alignment.wrap_text and ws.cell(2, 6).alignment.wrap_text
    assert ws.cell(2, 14).hyperlink.target + "#" + ws.cell(2, 14).hyperlink.location == p1["地图链接"]
    # print set-up
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert (ws.page_setup.fitToWidth or 1, ws.page_setup.fitToHeight) == (1, 0)  # fitToWidth 1 is the default
    assert ws.print_title_rows == "$1:$1"
    assert "2025年度现场核查清单 · 全部园区" in ws.oddHeader.center.text
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:P7"
    assert ws.column_dimensions["H"].width > ws.column_dimensions["A"].width
    notes = [row[0] for row in wb["说明"].iter_rows(values_only=True)]
    assert (
        f"评价批次：{svc.runs[2025]}" in notes[1]
        and notes[2] == "范围：全部园区"
        and notes[3] == "筛选：无（全部标记）"
    )
    assert notes[4] == "宗地数：6；标记数：12"
    assert re.fullmatch(r"导出时间：\d{4}-\d\d-\d\d \d\d:\d\d（北京时间），导出人：rev", notes[5])


def test_checklist_filters_and_csv(svc):
    for fid in ("P5:low_efficiency.grade_d", "P3:renewal_candidate"):
        assert svc.patch(fid, "rev", status="site_visit", comment="现场看", version=0).status_code == 200
    r = checklist(svc, "?format=csv&status=site_visit")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    assert r.headers["content-type"].startswith("text/csv")
    assert unquote(r.headers["content-disposition"].split("''", 1)[1]) == "2025年度现场核查清单_全部园区.csv"
    df = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(df.columns) == CHECKLIST_HEADERS
    assert list(df["宗地代码"]) == ["P3", "P5"]  # only the flags chosen, one row per parcel
    p5 = df.iloc[1]
    assert p5["标记"] == "低效用地·D类企业：" + D_REASON.format(uscc=catalogue.E[7], name=FORMULA)
    assert p5["复核状态"] == "待核查" and p5["面积（亩）"] == "3.0" and p5["地图链接"] == link(svc, PARK_B, "P5")
    assert p5["使用企业"] == f"'{FORMULA}（{catalogue.E[7]}）"  # csv: a text like a formula is guarded by a quote
    df = pd.read_csv(io.BytesIO(checklist(svc, "?format=csv").content), encoding="utf-8-sig", dtype=str)
    assert df.set_index("宗地代码").loc["P2", "使用企业"] == f"乙公司（{catalogue.E[2]}）；丙公司（{catalogue.E[3]}）"
    assert df.set_index("宗地代码").loc["P3", "复核状态"] == "待复核；待核查"
    wb = workbook(checklist(svc, "?severity=高").content)
    assert [r["宗地代码"] for r in sheet_rows(wb.worksheets[0])] == ["P4"]
    assert wb["说明"]["A4"].value == "筛选：严重程度：高"
    ws = workbook(checklist(svc, "?flag=idle_suspected&status=pending").content).worksheets[0]
    assert [r["宗地代码"] for r in sheet_rows(ws)] == ["P8"]
    empty = workbook(checklist(svc, "?flag=idle_exempt").content).worksheets[0]
    assert [c.value for c in empty[1]] == CHECKLIST_HEADERS and empty.max_row == 1
    assert checklist(svc, "?severity=x").status_code == 422
    assert checklist(svc, "?format=pdf").status_code == 422


def test_checklist_of_a_committee_is_its_park_only(svc):
    r = checklist(svc, who="comA")
    assert r.status_code == 200
    assert unquote(r.headers["content-disposition"].split("''", 1)[1]) == f"2025年度现场核查清单_{PARK_A}.xlsx"
    ws = workbook(r.content).worksheets[0]
    assert {row["园区"] for row in sheet_rows(ws)} == {PARK_A}
    assert PARK_A in ws.oddHeader.center.text
    assert checklist(svc, f"?park={quote(PARK_B, safe='')}", who="comA").status_code == 403
    assert svc.client.get("/api/flags/checklist").status_code == 401
    r = checklist(svc, f"?year=2024&park={quote(PARK_B, safe='')}")
    assert r.status_code == 200
    assert (
        unquote(r.headers["content-disposition"].split("''", 1)[1]) == "2024年度现场核查清单_青松经济开发区_东区.xlsx"
    )
    rows = sheet_rows(workbook(r.content).worksheets[0])
    assert rows and {row["园区"] for row in rows} == {PARK_B}
    assert all(f"?run={svc.runs[2024]}#" in row["地图链接"] for row in rows)


# --- the sample park: irregular parcels ---------------------------------------------------------------------
def test_checklist_of_the_sample_park(tmp_path):
    out = tmp_path / "out"
    run(SAMPLE / "2025", load_scheme("lianyungang"), out)
    store = open_store(tmp_path / "data")
    store.add_run(run_record_from_out_dir(out), actor="test")
    token = store.add_user("rev", "reviewer")[1]
    store.close()
    app = create_app(Settings(data_dir=tmp_path / "data", secret_key=SECRET))
    with TestClient(app) as client:
        r = client.get("/api/flags/checklist?format=xlsx", headers={"Authorization": f"Bearer {token}"})
    rows = pd.DataFrame(sheet_rows(workbook(r.content).worksheets[0]))
    flags = pd.read_csv(out / "flags.csv", encoding="utf-8-sig", dtype={"parcel_id": str})
    parcels = gpd.read_file(out / "parcels.gpkg", layer="parcels").set_index("parcel_id")
    assert sorted(rows["宗地代码"]) == sorted(flags["parcel_id"].unique())
    # one line per flag in 标记 and in 复核状态; renewal candidates say how many rules they meet
    per_parcel = flags.groupby("parcel_id").size()
    assert (rows["标记"].str.count("\n") + 1).tolist() == per_parcel.reindex(rows["宗地代码"]).tolist()
    assert (rows["复核状态"].str.count("\n") + 1).tolist() == per_parcel.reindex(rows["宗地代码"]).tolist()
    renewal = flags.loc[flags["flag"] == "renewal_candidate"].set_index("parcel_id")["value"]
    said = rows.set_index("宗地代码")["标记"].str.extract(r"退二优二候选：符合 (\d+) 项规则", expand=False).dropna()
    assert said.astype(float).sort_index().tolist() == renewal.reindex(said.index).sort_index().tolist()
    assert not rows["标记"].str.contains(r"low_efficiency\.|idle_|renewal_candidate").any()
    # sorted by park, then the most severe flag, then area (largest first)
    rank = flags.assign(r=flags["severity"].map({"高": 0, "中": 1, "低": 2})).groupby("parcel_id")["r"].min()
    keys = list(zip(rows["园区"], rank.reindex(rows["宗地代码"]), -rows["面积（亩）"], strict=True))
    assert keys == sorted(keys) and rank.min() == 0
    # every point lies inside its parcel (checked in the parcels' own plane)
    points = gpd.GeoSeries.from_xy(rows["中心点经度（CGCS2000）"], rows["中心点纬度（CGCS2000）"], crs=4490)
    planar = points.to_crs(parcels.crs).to_numpy()
    geoms = parcels.geometry.reindex(rows["宗地代码"]).to_numpy()
    assert shapely.contains(geoms, planar).all()
    assert rows["面积（亩）"].tolist() == pytest.approx(parcels["area_mu"].reindex(rows["宗地代码"]).tolist())
