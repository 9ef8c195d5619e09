"""The whole 公示与异议 cycle on the sample, through the service and the command line, as a city runs a year.

2025 (evaluated with ``--previous`` 2024) is registered as a draft and put in publicity; the committee of
海滨临港工业园 and 青松经济开发区 objects, with evidence, to the 用地面积 of 连云港海滨汐鸿水产食品有限公司's only
parcel (37 779.46 m²: it claims 43 000) and to the 税收 of 青松县岚烨重工有限公司 (914.25: it claims 1 200);
another park's committee is refused everywhere. An administrator accepts the first with a value of his own
(45 000 m², what the title deed says) and rejects the second; two reviewers rejecting a third objection at
once get one 409. The corrections exported equal what was decided; the re-run with ``--corrections`` changes
exactly the first enterprise's figures, and the scores and classes that follow, checked by hand (the same
figures as tests/test_corrections.py); it is registered as version 2 with the reviews of unchanged flags
carried over; version 1 stays readable; once 2025 is 已发布 no objection is taken and no run registered
without ``--supersede``.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pandas as pd
import pyogrio
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.settings import Settings
from geo_eval.cli import app as cli
from geo_eval.inputs.corrections import CORRECTION_COLUMNS
from geo_eval.storage import open_store, run_record_from_out_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_parcels"
sys.path.insert(0, str(SAMPLE))
import hand_rating  # noqa: E402  (imports nothing from geo_eval)

MU = 2000 / 3
PARKS = ("海滨临港工业园", "青松经济开发区")
OTHER_PARK = "海滨高新技术产业园"
LAND_FIRM, LAND_PARCEL = "91320700521558042Y", "320799003001GB00031"
TAX_FIRM = "913207981346492008"
SALES_FIRM = "91320700MA1FNW486A"
PDF = "%PDF-1.4\n% 土地证变更登记\n%%EOF\n".encode()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
TODAY = dt.date.today()


@dataclass
class Year:
    client: TestClient
    tokens: dict[str, str]
    data_dir: Path
    base: Path

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str = "admin"):
        return self.client.get(path, headers=self.h(who))

    def post(self, path: str, who: str = "admin", **body):
        return self.client.post(path, json=body, headers=self.h(who))

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(cli, [*args, "--data-dir", str(self.data_dir)])
        assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture(scope="module")
def year(sample_runs, tmp_path_factory) -> Iterator[Year]:
    base = tmp_path_factory.mktemp("cycle")
    data_dir = base / "data"
    store = open_store(data_dir)
    store.add_run(run_record_from_out_dir(sample_runs[2025]), actor="admin")
    users = [("admin", "admin", []), ("rev", "reviewer", []), ("rev2", "reviewer", [])]
    users += [("com", "committee", list(PARKS)), ("other", "committee", [OTHER_PARK])]
    tokens = {name: store.add_user(name, role, parks)[1] for name, role, parks in users}
    store.close()
    app = create_app(Settings(data_dir=data_dir, secret_key="c" * 48))
    with TestClient(app) as client:
        yield Year(client, tokens, data_dir, base)


def enterprises(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "enterprises.csv", encoding="utf-8-sig", dtype={"uscc": str}).set_index("uscc")


def benchmark(out: Path, county: str, indicator: str) -> float:
    b = pd.read_csv(out / "benchmarks.csv", encoding="utf-8-sig")
    hit = b.loc[(b["unit"] == county) & (b["group"] == "above_scale") & (b["indicator"] == indicator), "benchmark"]
    return float(hit.iloc[0])


def hand_classes(scores: pd.Series) -> pd.DataFrame:
    """Classes and ranks of one 规上 cell by hand_rating's rule (score high first, then USCC)."""
    firms = [SimpleNamespace(uscc=u) for u in scores.index]
    results = {u: hand_rating.Result(u, score=float(s)) for u, s in scores.items()}
    hand_rating._grade_cell(firms, results)  # type: ignore[arg-type]
    return pd.DataFrame({u: {"grade": r.grade, "rank": r.rank} for u, r in results.items()}).T


def test_the_year_from_draft_through_objections_and_corrections_to_final(year, sample_runs):
    y = year
    v1 = y.get("/api/runs").json()[0]
    assert (v1["year"], v1["version"], v1["status"], v1["status_label"]) == (2025, 1, "draft", "草稿")

    # 1. 公示: an administrator opens the publicity period
    start, end = TODAY, TODAY + dt.timedelta(days=9)
    r = y.post("/api/runs/2025/status", to="publicity", start=start.isoformat(), end=end.isoformat())
    assert r.status_code == 200 and r.json()["status_line"] == f"2025 年度 第 1 版 · 公示中（公示期 {start} 至 {end}）"

    # 2. 异议: the committee objects for its enterprises, with evidence; the 公示值 come from the run
    before = enterprises(sample_runs[2025])
    parcels = pyogrio.read_dataframe(sample_runs[2025] / "parcels.gpkg", layer="parcels", read_geometry=False)
    registered = parcels.set_index("parcel_id").loc[LAND_PARCEL, "registered_area_m2"]
    land = y.post("/api/objections", "com", year=2025, uscc=LAND_FIRM, field="registered_area_m2",
                  claimed_value="43000", reason="部分土地登记面积有误，见变更登记证明")  # fmt: skip
    assert land.status_code == 201, land.text
    land = land.json()
    assert (land["parcel_id"], land["park"], land["run_value"]) == (LAND_PARCEL, PARKS[0], "37779.46")
    assert float(land["run_value"]) == pytest.approx(registered, abs=0.005)
    tax = y.post("/api/objections", "com", year=2025, uscc=TAX_FIRM, field="tax", claimed_value="1200",
                 reason="12月补缴税款未计入").json()  # fmt: skip
    assert (tax["run_value"], tax["park"]) == ("914.25", PARKS[1])
    assert float(tax["run_value"]) == before.loc[TAX_FIRM, "tax"]
    for oid, name, body, kind in ((land["id"], "变更登记证明.pdf", PDF, "application/pdf"),
                                  (tax["id"], "完税证明.png", PNG, "image/png")):  # fmt: skip
        headers = y.h("com") | {"Content-Type": kind}
        r = y.client.post(f"/api/objections/{oid}/evidence?name={quote(name)}", content=body, headers=headers)
        assert r.status_code == 201 and r.json()["name"] == name
    sales = y.post("/api/objections", "admin", year=2025, uscc=SALES_FIRM, field="sales", claimed_value="1",
                   reason="书面异议（代为登记）").json()  # fmt: skip

    # another park's committee is refused everywhere
    assert y.post("/api/objections", "other", year=2025, uscc=TAX_FIRM, field="tax", claimed_value="1",
                  reason="x").status_code == 403  # fmt: skip
    assert y.get("/api/objections?year=2025", "other").json() == []
    for path in (f"/api/objections/{land['id']}", f"/api/objections/{land['id']}/history",
                 f"/api/objections/{land['id']}/evidence/1", f"/api/objections?year=2025&park={PARKS[0]}"):  # fmt: skip
        assert y.get(path, "other").status_code == 403, path
    assert y.client.post(f"/api/objections/{tax['id']}/evidence?name=x.pdf", content=PDF,
                         headers=y.h("other") | {"Content-Type": "application/pdf"}).status_code == 403  # fmt: skip

    # 3. 处理: accepted with the bureau's own value, rejected with a reason; one 409 for two at once
    r = y.client.patch(f"/api/objections/{land['id']}", headers=y.h("admin"),
                       json={"decision": "accepted", "corrected_value": "45000", "reason": "以不动产权证书为准", "version": 1})  # fmt: skip
    assert r.status_code == 200 and (r.json()["corrected_value"], r.json()["claimed_value"]) == ("45000", "43000")
    r = y.client.patch(f"/api/objections/{tax['id']}", headers=y.h("admin"),
                       json={"decision": "rejected", "reason": "补缴税款属2026年度", "version": 1})  # fmt: skip
    assert r.status_code == 200 and r.json()["status_label"] == "不采纳"
    answers: list[int] = []
    said: list[str] = []
    gate = threading.Barrier(2)

    def reject(who: str) -> None:
        gate.wait()
        body = {"decision": "rejected", "reason": f"{who}：无依据", "version": 1}
        try:
            r = y.client.patch(f"/api/objections/{sales['id']}", json=body, headers=y.h(who))
            answers.append(r.status_code)
            said.append(r.text)
        except Exception as exc:  # shown by the assertion below
            said.append(repr(exc))

    threads = [threading.Thread(target=reject, args=(w,)) for w in ("rev", "rev2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 409], said

    # a reviewer confirms two flags of version 1 (which of them the corrections change is seen below)
    flags = pyogrio.read_dataframe(sample_runs[2025] / "parcels.gpkg", layer="flags", read_geometry=False)
    reviewed = [
        flags.loc[flags["parcel_id"] == LAND_PARCEL, "flag_id"].iloc[0],
        flags.loc[(flags["park"] == OTHER_PARK) & (flags["flag"] == "idle_legal"), "flag_id"].iloc[0],
    ]
    for fid in reviewed:
        r = y.client.patch(f"/api/flags/{quote(fid, safe='')}", json={"status": "confirmed", "version": 0},
                           headers=y.h("rev"))  # fmt: skip
        assert r.status_code == 200

    # 4. 更正表: what was decided, from the service and from the command line
    r = y.get("/api/objections/corrections.csv?year=2025", "rev")
    table = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(table.columns) == list(CORRECTION_COLUMNS)
    assert table[["uscc", "parcel_id", "field", "run_value", "corrected_value", "objection_id", "decided_by"]].values.tolist() == [
        ["", LAND_PARCEL, "registered_area_m2", "37779.46", "45000", str(land["id"]), "admin"]
    ]  # fmt: skip
    exported = y.base / "corrections.csv"
    y.cli("objections", "export", "2025", "--out", str(exported))
    assert exported.read_bytes() == r.content

    # 5. 重新评价 with the corrections: exactly the corrected enterprise's figures change, by hand
    v2_dir = y.base / "2025-v2"
    r = CliRunner().invoke(cli, ["evaluate", str(SAMPLE / "2025"), "--out", str(v2_dir), "--previous",
                                 str(sample_runs[2024]), "--corrections", str(exported)])  # fmt: skip
    assert r.exit_code == 0, r.output
    after = enterprises(v2_dir).loc[before.index]
    firm, mu = before.loc[LAND_FIRM], 45000 / MU
    tp, rp = firm["tax"] / mu, firm["sales"] / mu
    items = {"score_tax_per_mu": 40 * tp / benchmark(v2_dir, "海滨区", "tax_per_mu"),
             "score_revenue_per_mu": 20 * rp / benchmark(v2_dir, "海滨区", "revenue_per_mu")}  # fmt: skip
    want = {"land_mu": mu, "tax_per_mu": tp, "revenue_per_mu": rp, **items}
    want["score"] = firm["score"] + sum(items[k] - firm[k] for k in items)
    for col, value in want.items():
        assert after.loc[LAND_FIRM, col] == pytest.approx(value, abs=0.006 if col == "score" else 1e-4), col
    assert after.loc[LAND_FIRM, "score"] == pytest.approx(90.55, abs=0.006)
    assert after.loc[LAND_FIRM, "corrected_fields"] == "registered_area_m2"
    assert after["corrected_fields"].notna().sum() == 1 and after.loc[TAX_FIRM, "tax"] == 914.25
    cell = before.index[(before["county"] == "海滨区") & (before["group"] == "above_scale")]
    scores = before.loc[cell, "score"].copy()
    scores[LAND_FIRM] = after.loc[LAND_FIRM, "score"]
    hand = hand_classes(scores)
    hand.loc[before.loc[cell, "veto"].notna().to_numpy(), "grade"] = "D"
    assert after.loc[cell, "grade"].tolist() == hand["grade"].tolist()
    assert after.loc[cell, "rank"].astype(int).tolist() == hand["rank"].astype(int).tolist()
    moved = {
        u: (before.loc[u, "grade"], after.loc[u, "grade"])
        for u in before.index
        if before.loc[u, "grade"] != after.loc[u, "grade"]
    }
    assert moved == {LAND_FIRM: ("A", "B"), "91320100MA2FQA2H5R": ("B", "A")}
    exceptions = pd.read_csv(v2_dir / "exceptions.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    applied = exceptions.loc[exceptions["code"] == "correction_applied"]
    assert len(applied) == 1 and "37779.46" in applied.iloc[0]["value"] and "45000" in applied.iloc[0]["value"]

    # 6. registered as version 2: version 1 superseded but readable; unchanged flags keep their reviews
    r = y.post("/api/runs/register", out_dir=str(v2_dir))
    assert r.status_code == 201, r.text
    v2 = r.json()
    assert (v2["version"], v2["status"]) == (2, "draft")
    runs = {run["run_id"]: run for run in y.get("/api/runs").json()}
    assert runs[v1["run_id"]]["superseded_by"] == v2["run_id"]
    old = y.get(f"/api/rankings?run={v1['run_id']}&page_size=1000").json()
    assert any(row["uscc"] == LAND_FIRM and row["grade"] == "A" for row in old["rows"])
    new_flags = pyogrio.read_dataframe(v2_dir / "parcels.gpkg", layer="flags", read_geometry=False)
    same = flags.set_index("flag_id").loc[reviewed].equals(new_flags.set_index("flag_id").reindex(reviewed))
    changed, unchanged = reviewed  # the corrected parcel's flag changed (its area), the idle flag did not
    assert not same and flags.set_index("flag_id").loc[unchanged].equals(new_flags.set_index("flag_id").loc[unchanged])
    states = y.get(f"/api/maps/reviews.json?run={v2['run_id']}", "rev").json()["states"]
    assert states[unchanged][:2] == ["confirmed", 1] and states[unchanged][5] == "沿用第 1 版的复核（标记未变化）"
    assert changed not in states  # back to 待复核: its flag changed
    assert y.post("/api/objections", "com", year=2025, uscc=TAX_FIRM, field="tax", claimed_value="1",
                  reason="x").status_code == 409  # the new version is a draft  # fmt: skip

    # 7. 正式发布: locked for objections and for new runs without --supersede
    r = y.post("/api/runs/2025/status", to="final")
    assert r.status_code == 200 and r.json()["status_line"] == "2025 年度 第 2 版 · 已发布"
    r = y.post("/api/objections", "com", year=2025, uscc=TAX_FIRM, field="tax", claimed_value="1", reason="x")
    assert r.status_code == 409 and "已正式发布" in r.json()["detail"]
    r = y.post("/api/runs/register", out_dir=str(sample_runs[2025]))  # version 1 again: it would replace 2
    assert r.status_code == 409 and "--supersede" in r.json()["detail"]
    assert y.post("/api/runs/register", out_dir=str(v2_dir)).status_code == 201  # the final run itself: fine
    r = y.post("/api/runs/2025/status", to="publicity", start="2026-12-01", end="2026-12-10")
    assert r.status_code == 409 and y.get("/api/runs").json()[0]["status"] == "final"
