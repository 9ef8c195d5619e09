"""Year over year in the service: the compare route, the runs page and the 分类变化 of the maps.

The sample evaluated for 2024 and for 2025 (with ``--previous``), both registered; every expected figure
is counted here from the two ``enterprises.csv`` files, not by the code under test.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pyogrio
import pytest

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo_eval.storage import open_store, run_record_from_out_dir

PARK = "海滨高新技术产业园"
OTHER = "青松经济开发区"
GRADES = ["A", "B", "C", "D", "T"]


@pytest.fixture(scope="module")
def svc(sample_runs: dict[int, Path], tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("yoy")
    store = open_store(data_dir)
    for year in (2024, 2025):
        store.add_run(run_record_from_out_dir(sample_runs[year]), actor="test")
    tokens = {
        "admin": store.add_user("admin", "admin")[1],
        "rev": store.add_user("rev", "reviewer")[1],
        "com": store.add_user("com", "committee", [PARK])[1],
    }
    store.close()
    app = create_app(Settings(data_dir=data_dir, secret_key="y" * 48))
    with TestClient(app, follow_redirects=False) as client:
        yield client, tokens, sample_runs


def h(tokens: dict[str, str], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


def enterprises(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "enterprises.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)


def expected_matrix(cur: pd.DataFrame, prev: pd.DataFrame, park: str | None = None) -> dict[str, dict[str, int]]:
    """Counted row by row: last year's class (or new) → this year's class (or gone)."""
    now = dict(zip(cur["uscc"], zip(cur["grade"], cur["park"], strict=True), strict=True))
    before = dict(zip(prev["uscc"], zip(prev["grade"], prev["park"], strict=True), strict=True))
    pairs: Counter[tuple[str, str]] = Counter()
    for code in set(now) | set(before):
        g_now, p_now = now.get(code, (None, None))
        g_before, p_before = before.get(code, (None, None))
        where = p_now if g_now is not None else p_before
        if park is not None and where != park:
            continue
        pairs[(g_before or "new", g_now or "gone")] += 1
    return {b: {a: pairs[(b, a)] for a in [*GRADES, "gone"]} for b in [*GRADES, "new"]}


def test_compare_gives_the_transition_matrix_counted_from_the_two_years(svc):
    client, tokens, runs = svc
    cur, prev = enterprises(runs[2025]), enterprises(runs[2024])
    r = client.get("/api/runs/2025/compare?previous=2024", headers=h(tokens, "rev"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["year"], body["previous"]) == (2025, 2024)
    assert body["matrix"] == expected_matrix(cur, prev)
    # every enterprise is counted once; the changed ones are exactly those off the diagonal
    assert sum(sum(row.values()) for row in body["matrix"].values()) == len(set(cur["uscc"]) | set(prev["uscc"]))
    off = sum(n for b, row in body["matrix"].items() for a, n in row.items() if a != b)
    assert len(body["changed"]) == off
    one = next(c for c in body["changed"] if c["previous_grade"] and c["grade"])
    row = cur.set_index("uscc").loc[one["uscc"]]
    assert (one["name"], one["park"], one["grade"]) == (row["name"], row["park"], row["grade"])
    assert prev.set_index("uscc").loc[one["uscc"], "grade"] == one["previous_grade"]


def test_compare_for_one_park_and_a_committee(svc):
    client, tokens, runs = svc
    cur, prev = enterprises(runs[2025]), enterprises(runs[2024])
    mine = client.get("/api/runs/2025/compare?previous=2024", headers=h(tokens, "com")).json()
    assert mine["matrix"] == expected_matrix(cur, prev, PARK)
    assert {c["park"] for c in mine["changed"]} == {PARK}
    same = client.get(f"/api/runs/2025/compare?previous=2024&park={quote(PARK)}", headers=h(tokens, "rev")).json()
    assert same["matrix"] == mine["matrix"]
    refused = client.get(f"/api/runs/2025/compare?previous=2024&park={quote(OTHER)}", headers=h(tokens, "com"))
    assert refused.status_code == 403


def test_compare_downloads_the_changed_enterprises_as_csv(svc):
    client, tokens, _ = svc
    r = client.get("/api/runs/2025/compare?previous=2024&format=csv", headers=h(tokens, "rev"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(table.columns) == ["统一社会信用代码", "企业名称", "县区", "园区", "上年分类", "分类"]
    body = client.get("/api/runs/2025/compare?previous=2024", headers=h(tokens, "rev")).json()
    assert len(table) == len(body["changed"])
    gone = table.loc[table["分类"] == ""]
    assert len(gone) == sum(row["gone"] for row in body["matrix"].values())


def test_maps_colour_by_class_change_with_last_years_class_in_the_popup(svc):
    client, tokens, runs = svc
    page = client.get(f"/maps/{quote(PARK, safe='')}?color_by=change", headers=h(tokens, "rev")).text
    cfg = json.loads(re.search(r'id="ge-config">(.*?)</script>', page, re.S).group(1))
    cur = enterprises(runs[2025]).set_index("uscc")
    changes = {k: n for k, _, _, n in cfg["changes"]}
    assert set(changes) == {"up", "same", "down", "new", "gone", "none"}
    assert cfg["colorBy"] == "change"
    fields = [f[0] for f in cfg["fields"]]
    feats = cfg["parcels"]["features"]["features"]
    # a parcel whose main user moved down a class is coloured 降级, and its popup shows last year's class
    layer = pyogrio.read_dataframe(runs[2025] / "parcels.gpkg", layer="parcels", read_geometry=False).set_index(
        "parcel_id"
    )
    down = [f for f in feats if f["properties"]["c"] == "down"]
    assert down and len(down) == changes["down"]
    pid = down[0]["properties"]["id"]
    main = layer.loc[pid, "main_user"]
    assert cur.loc[main, "grade_change"] == "下降"
    cells = down[0]["properties"]["v"]
    assert cells[fields.index("prev_grade")].startswith(cur.loc[main, "prev_grade"])
    # 2024 has no comparison: no 分类变化 colouring is offered
    old = client.get(f"/maps/{quote(PARK, safe='')}?year=2024", headers=h(tokens, "rev")).text
    assert json.loads(re.search(r'id="ge-config">(.*?)</script>', old, re.S).group(1))["changes"] is None


def test_the_runs_page_lists_each_run_with_its_links(svc):
    client, tokens, runs = svc
    r = client.get("/runs", headers=h(tokens, "admin"))
    assert r.status_code == 200 and r.headers["content-security-policy"].startswith("default-src 'none'")
    text = r.text
    rows = re.findall(r"<tr><td>(\d{4})</td>(.*?)</tr>", text, re.S)
    assert [y for y, _ in rows] == ["2025", "2024"]
    cur = enterprises(runs[2025])
    row2025 = rows[0][1]
    assert f">{len(cur)}<" in row2025
    assert f"A {int((cur['grade'] == 'A').sum())}、B {int((cur['grade'] == 'B').sum())}" in row2025
    assert "/api/runs/2025/compare?previous=2024&amp;format=csv" in row2025 and "/reports/2025" in row2025
    assert "compare" not in rows[1][1]  # 2023 has no run
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", row2025)
    # a committee sees its own park's counts
    com = client.get("/runs", headers=h(tokens, "com")).text
    mine = cur.loc[cur["park"] == PARK]
    assert f">{len(mine)}<" in com and PARK in com
    # signed out: to the login page
    assert client.get("/runs").status_code == 303
