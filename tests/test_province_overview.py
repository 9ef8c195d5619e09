"""What a province's overview asks of the service instead of holding it: the review list a page at a time
(``queue.json``), the renewal blocks of its view (``blocks.json``), a parcel's flags with its popup, and
the search box's rows (``search.json?q=``).

The answers are checked against what the park pages hold whole (``flags.json``, the page's blocks, the
whole search index), filtered and sorted here as the page's script does (the list: severity 高/中/低, area
largest first, flag id), with review states made through the real review route, on the sample's 2025 run.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo_eval.storage import open_store, run_record_from_out_dir

SEVERITY_RANK = {"高": 0, "中": 1, "低": 2}
STATES = ("pending", "site_visit", "confirmed", "dismissed")


@pytest.fixture(scope="module")
def served(sample_runs, tmp_path_factory):
    base = tmp_path_factory.mktemp("queue")
    out = base / "2025"
    shutil.copytree(sample_runs[2025], out)
    store = open_store(base / "data")
    run_id = store.add_run(run_record_from_out_dir(out), actor="test").run_id
    tokens = {
        "rev": store.add_user("复核员", "reviewer", [])[1],
        "com": store.add_user("海滨管委会", "committee", ["海滨高新技术产业园"])[1],
    }
    store.close()
    app = create_app(Settings(data_dir=base / "data", secret_key="s" * 40))
    with TestClient(app, follow_redirects=False) as client:
        yield client, tokens, run_id


def get(client: TestClient, token: str, path: str, **params: object):
    r = client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def page_order(rows: list[list[object]], columns: list[str]) -> list[list[object]]:
    """The list sorted as ``panel.js`` sorts it."""
    at = {c: i for i, c in enumerate(columns)}
    return sorted(
        rows,
        key=lambda r: (SEVERITY_RANK.get(r[at["severity"]], 9), -(r[at["area_mu"]] or 0), r[at["flag_id"]]),
    )


def whole_pages(client, token, path, limit, **filters) -> tuple[list[list[object]], dict]:
    """Every row of a filtered list, read ``limit`` at a time, and the first answer."""
    first = get(client, token, path, limit=limit, **filters)
    rows, offset = list(first["rows"]), limit
    while offset < first["total"]:
        rows += get(client, token, path, limit=limit, offset=offset, **filters)["rows"]
        offset += limit
    return rows, first


def test_pages_of_the_list_are_the_whole_list_filtered_and_sorted_as_the_page_does(served) -> None:
    client, tokens, _ = served
    whole = get(client, tokens["rev"], "/api/maps/flags.json")
    cols = whole["columns"]
    at = {c: i for i, c in enumerate(cols)}
    expected = page_order(whole["rows"], cols)
    assert len(expected) > 150  # the sample's flags: several pages of 40
    ids = [r[at["flag_id"]] for r in expected]
    # reviews through the real route: a confirmation, a dismissal, a site visit
    decided = {ids[0]: "confirmed", ids[3]: "dismissed", ids[10]: "site_visit", ids[11]: "confirmed"}
    for fid, status in decided.items():
        r = client.patch(
            f"/api/flags/{quote(fid, safe='')}",
            json={"status": status, "comment": "现场已核实" if status != "dismissed" else "已复产", "version": 0},
            headers={"Authorization": f"Bearer {tokens['rev']}"},
        )
        assert r.status_code == 200, r.text
    state = {fid: decided.get(fid, "pending") for fid in ids}

    rows, first = whole_pages(client, tokens["rev"], "/api/maps/queue.json", 40)
    assert first["columns"] == cols and first["total"] == len(expected) and rows == expected
    assert first["counts"] == {s: sum(1 for v in state.values() if v == s) for s in STATES}
    assert first["counts"]["confirmed"] == 2 and first["counts"]["pending"] == len(ids) - 4
    parks = Counter((r[at["park"]], state[r[at["flag_id"]]]) for r in expected)
    assert first["parks"] == [[p, {s: parks[(p, s)] for s in STATES}] for p in sorted({p for p, _ in parks})]

    kind = expected[5][at["flag"]]
    for filters in ({"kind": kind}, {"state": "confirmed"}, {"state": "pending", "sev": "高"}, {"sev": "低"}):
        rows, first = whole_pages(client, tokens["rev"], "/api/maps/queue.json", 25, **filters)
        want = [
            r
            for r in expected
            if filters.get("kind", r[at["flag"]]) == r[at["flag"]]
            and filters.get("state", state[r[at["flag_id"]]]) == state[r[at["flag_id"]]]
            and filters.get("sev", r[at["severity"]]) == r[at["severity"]]
        ]
        assert rows == want and first["total"] == len(want), filters
    assert [r[at["flag_id"]] for r in rows] and all(r[at["severity"]] == "低" for r in rows)
    nothing = get(client, tokens["rev"], "/api/maps/queue.json", kind="no_such_kind")
    assert nothing["total"] == 0 and nothing["rows"] == [] and nothing["counts"] == first["counts"]


def test_the_next_pending_flag_follows_the_selected_one_and_wraps_round(served) -> None:
    client, tokens, _ = served
    path = "/api/maps/queue.json"
    pending = whole_pages(client, tokens["rev"], path, 500, state="pending")[0]
    ids = [r[0] for r in pending]
    assert get(client, tokens["rev"], path, state="pending", after=ids[7], limit=1)["rows"][0][0] == ids[8]
    assert get(client, tokens["rev"], path, state="pending", after=ids[-1], limit=1)["rows"][0][0] == ids[0]
    confirmed = whole_pages(client, tokens["rev"], path, 500, state="confirmed")[0][0][0]
    # after a flag that is no longer pending: the first pending one after its place in the whole list
    everything = [r[0] for r in whole_pages(client, tokens["rev"], path, 500)[0]]
    later = next(f for f in everything[everything.index(confirmed) + 1 :] if f in set(ids))
    assert get(client, tokens["rev"], path, state="pending", after=confirmed, limit=1)["rows"][0][0] == later


def test_a_committee_gets_its_own_parks_list_and_counts_only(served) -> None:
    client, tokens, _ = served
    park = "海滨高新技术产业园"
    own = get(client, tokens["com"], "/api/maps/queue.json", limit=500)
    whole = get(client, tokens["com"], f"/api/maps/{quote(park, safe='')}/flags.json")
    assert own["total"] == len(whole["rows"]) > 0
    assert {r[8] for r in own["rows"]} == {park} and [p for p, _ in own["parks"]] == [park]
    assert sum(own["counts"].values()) == own["total"]
    page = get(client, tokens["com"], f"/api/maps/{quote(park, safe='')}/queue.json", limit=500)
    assert page["rows"] == own["rows"] and page["parks"] is None
    r = client.get(
        f"/api/maps/{quote('青松经济开发区', safe='')}/queue.json", headers={"Authorization": f"Bearer {tokens['com']}"}
    )
    assert r.status_code == 403


def test_a_parcels_popup_carries_its_flags_rows(served) -> None:
    client, tokens, _ = served
    whole = get(client, tokens["rev"], "/api/maps/flags.json")
    pid = whole["rows"][0][1]
    popup = get(client, tokens["rev"], "/api/maps/parcel.json", id=pid)
    assert popup["flags"]["columns"] == whole["columns"]
    assert popup["flags"]["rows"] == [r for r in whole["rows"] if r[1] == pid]


def test_the_answer_changes_with_a_review_and_is_304_while_nothing_changes(served) -> None:
    client, tokens, _ = served
    h = {"Authorization": f"Bearer {tokens['rev']}"}
    first = client.get("/api/maps/queue.json?limit=1", headers=h)
    again = client.get("/api/maps/queue.json?limit=1", headers={**h, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and "no-cache" in first.headers["cache-control"]
    fid = first.json()["rows"][0][0]
    state = json.loads(client.get("/api/maps/reviews.json", headers=h).text)["states"].get(fid)
    version = state[1] if state else 0
    r = client.patch(f"/api/flags/{quote(fid, safe='')}", json={"status": "site_visit", "version": version}, headers=h)
    assert r.status_code == 200, r.text
    after = client.get("/api/maps/queue.json?limit=1", headers={**h, "If-None-Match": first.headers["etag"]})
    assert after.status_code == 200 and after.json()["counts"] != first.json()["counts"]


def page_blocks(client: TestClient, token: str, path: str) -> dict:
    r = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    found = re.findall(r'<script type="application/json" id="ge-config">(.*?)</script>', r.text, re.S)
    return json.loads(found[0])["blocks"]


def test_the_blocks_of_a_box_are_those_the_page_draws(served) -> None:
    client, tokens, _ = served
    park = "海滨高新技术产业园"
    drawn = page_blocks(client, tokens["rev"], f"/maps/{quote(park, safe='')}")
    assert drawn and len(drawn["features"]) >= 2
    everywhere = get(client, tokens["com"], f"/api/maps/{quote(park, safe='')}/blocks.json", bbox="100,20,130,45")
    assert not everywhere["truncated"]
    assert everywhere["features"] == drawn["features"]  # outlines, ids and popup cells alike
    # a box around one block: that block (and its neighbours within the box), not the others
    first = drawn["features"][0]
    xs = (
        [x for ring in first["geometry"]["coordinates"] for x, _ in ring]
        if first["geometry"]["type"] == "Polygon"
        else []
    )
    ys = [y for ring in first["geometry"]["coordinates"] for _, y in ring] if xs else []
    assert xs, first["geometry"]["type"]
    box = f"{min(xs)},{min(ys)},{max(xs)},{max(ys)}"
    near = get(client, tokens["rev"], "/api/maps/blocks.json", bbox=box)
    ids = {f["properties"]["id"] for f in near["features"]}
    assert first["properties"]["id"] in ids and len(ids) < len(
        get(client, tokens["rev"], "/api/maps/blocks.json", bbox="100,20,130,45")["features"]
    )
    # a committee never gets a block of another park, wherever it looks
    own = get(client, tokens["com"], "/api/maps/blocks.json", bbox="100,20,130,45")
    assert {f["properties"]["id"] for f in own["features"]} == {f["properties"]["id"] for f in drawn["features"]}
    bad = client.get("/api/maps/blocks.json?bbox=1,2,3", headers={"Authorization": f"Bearer {tokens['rev']}"})
    assert bad.status_code == 422 and "bbox" in bad.json()["detail"]


def js_matches(index: list[list[object]], text: str, limit: int) -> list[list[object]]:
    """What the page's search box finds in a whole index (chrome.js): the text, trimmed and lower-cased, in the
    code, the names or the USCCs; the first ``limit`` rows."""
    q = text.strip().lower()
    return [r for r in index if any(q in str(v).lower() for v in r[:3])][:limit]


def test_the_search_box_finds_what_the_whole_index_would(served) -> None:
    client, tokens, _ = served
    index = get(client, tokens["rev"], "/api/maps/search.json")
    assert len(index) == 790
    code, names, usccs = index[400][:3]
    name = names.split("；")[0]
    queries = [code[-6:], code[-6:].lower(), name[2:5], usccs[:8].lower(), " GB000 ", "119.", "不存在的企业", '"', "(a"]
    for q in queries:
        for limit in (12, 50):
            found = get(client, tokens["rev"], "/api/maps/search.json", q=q, limit=limit)
            assert found == js_matches(index, q, limit), (q, limit)
    assert get(client, tokens["rev"], "/api/maps/search.json", q=code) == js_matches(index, code, 12) != []
    assert get(client, tokens["rev"], "/api/maps/search.json", q="119.") == []  # never in the coordinates
    assert len(get(client, tokens["rev"], "/api/maps/search.json", q="GB0", limit=50)) == 50
    # a committee finds only its park's parcels
    park = "海滨高新技术产业园"
    own = get(client, tokens["com"], f"/api/maps/{quote(park, safe='')}/search.json")
    theirs = [r for r in index if r not in own]
    other = theirs[0][0]
    assert get(client, tokens["com"], "/api/maps/search.json", q=other) == []
    assert get(client, tokens["com"], "/api/maps/search.json", q="GB0", limit=50) == js_matches(own, "GB0", 50)


def test_a_large_json_answer_travels_gzip_compressed_under_its_own_etag(served, monkeypatch) -> None:
    """A browser that accepts gzip gets a large JSON answer (here: above 1 KB) compressed, under an ETag of its
    own that a later If-None-Match names for a 304; a client that does not gets the same JSON plain."""
    from api.routes import map_data

    client, tokens, _ = served
    monkeypatch.setattr(map_data, "GZIP_MIN_BYTES", 1024)
    h = {"Authorization": f"Bearer {tokens['rev']}"}
    plain = client.get("/api/maps/flags.json", headers={**h, "Accept-Encoding": "identity"})
    zipped = client.get("/api/maps/flags.json", headers={**h, "Accept-Encoding": "gzip, deflate"})
    assert "content-encoding" not in plain.headers and zipped.headers["content-encoding"] == "gzip"
    assert zipped.json() == plain.json() and len(plain.content) > 100_000  # httpx has inflated it
    assert zipped.headers["etag"] != plain.headers["etag"] and zipped.headers["vary"] == "Accept-Encoding"
    again = client.get(
        "/api/maps/flags.json", headers={**h, "Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]}
    )
    assert again.status_code == 304 and again.headers["etag"] == zipped.headers["etag"]
    refused = client.get("/api/maps/flags.json", headers={**h, "Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.headers["etag"] == plain.headers["etag"]
    for weighted in ("deflate, gzip;q=0.5", "gzip; q=0.8"):  # a quality above 0 still accepts it
        got = client.get("/api/maps/flags.json", headers={**h, "Accept-Encoding": weighted})
        assert got.headers.get("content-encoding") == "gzip", weighted
        assert json.loads(got.content) == json.loads(plain.content)
    small = client.get("/api/maps/queue.json?limit=0", headers={**h, "Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under the size: plain
