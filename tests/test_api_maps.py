"""Map pages, vector tiles and search over HTTP: every route × role, every refusal, the page's safety.

The catalogue split into two parks (海滨高新技术产业园: P1–P3; 青松经济开发区: P4–P8), evaluated
once for the module; the main user of P4 is named ``<img src=x onerror=alert(1)>``.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import catalogue
import geopandas as gpd
import mapbox_vector_tile
import pandas as pd
import pytest
from shapely.geometry import box, shape

with warnings.catch_warnings():  # starlette asks for httpx2; the httpx TestClient works the same
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.maps import MAP_CSP, MVT_TYPE
from api.settings import Settings
from geo_eval.io.run import run
from geo_eval.scheme import load_scheme
from geo_eval.storage import open_store, run_record_from_out_dir
from geo_eval.tiles import lonlat_to_tile

PARK_A = "海滨高新技术产业园"
PARK_B = "青松经济开发区"
SCHEME = "huaian-2024"
SECRET = "m" * 48
XSS = "<img src=x onerror=alert(1)>"
VENDOR = Path(__file__).resolve().parents[1] / "api" / "static" / "vendor"
A_IDS = {"P1", "P2", "P3"}
B_IDS = {"P4", "P5", "P6", "P7", "P8"}


def two_park_dataset(root: Path) -> Path:
    p = catalogue.parcels()
    e = catalogue.enterprises()
    p.loc[p["parcel_id"].isin(sorted(B_IDS)), "park"] = PARK_B
    e.loc[e["uscc"].isin([catalogue.E[i] for i in (6, 7, 8, 9)]), "park"] = PARK_B
    e.loc[e["uscc"] == catalogue.E[6], "name"] = XSS
    return catalogue.write_dataset(root, parcels_gdf=p, enterprises_df=e, year=2025)


@dataclass
class Maps:
    app: object
    client: TestClient
    data_dir: Path
    out: Path
    run_id: str
    tokens: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str | None = None):
        return self.client.get(path, headers=self.h(who) if who else {})


ROLES = ("admin", "rev", "comA", "comB", "comAB")


@pytest.fixture(scope="module")
def svc(tmp_path_factory) -> Maps:
    base = tmp_path_factory.mktemp("maps")
    out = base / "out"
    run(two_park_dataset(base / "ds"), load_scheme(SCHEME), out)
    data_dir = base / "data"
    store = open_store(data_dir)
    run_id = store.add_run(run_record_from_out_dir(out), actor="test").run_id
    tokens = {}
    for name, role, parks in [
        ("admin", "admin", []),
        ("rev", "reviewer", []),
        ("comA", "committee", [PARK_A]),
        ("comB", "committee", [PARK_B]),
        ("comAB", "committee", [PARK_A, PARK_B]),
    ]:
        tokens[name] = store.add_user(name, role, parks)[1]
    store.close()
    app = create_app(Settings(data_dir=data_dir, secret_key=SECRET))
    with TestClient(app, follow_redirects=False) as client:
        yield Maps(app, client, data_dir, out, run_id, tokens)


def may_see(who: str, park: str) -> bool:
    return who in ("admin", "rev", "comAB") or (who, park) in (("comA", PARK_A), ("comB", PARK_B))


def enc(park: str) -> str:
    return quote(park, safe="")


def tile_of(lon: float, lat: float, z: int) -> str:
    x, y = lonlat_to_tile(lon, lat, z)
    return f"{z}/{x}/{y}"


@pytest.fixture(scope="module")
def centre(svc) -> tuple[float, float]:
    """The lon/lat centre of the catalogue (every parcel lies within ~250 m of it)."""
    g = gpd.read_file(svc.out / "parcels.gpkg", layer="parcels").to_crs(4326)
    c = g.union_all().centroid
    return c.x, c.y


@pytest.fixture(scope="module")
def points(svc) -> dict[str, tuple[float, float]]:
    """A lon/lat inside each parcel."""
    g = gpd.read_file(svc.out / "parcels.gpkg", layer="parcels").to_crs(4326)
    pts = g.geometry.representative_point()
    return {pid: (p.x, p.y) for pid, p in zip(g["parcel_id"], pts, strict=True)}


def tiles_over(points: dict[str, tuple[float, float]], z: int) -> set[str]:
    """The zoom-``z`` tiles that hold the catalogue's parcels."""
    return {tile_of(lon, lat, z) for lon, lat in points.values()}


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True}) if content else {}


def tile_ids(content: bytes) -> set[str]:
    layer = decode(content).get("parcels", {"features": []})
    return {f["properties"]["parcel_id"] for f in layer["features"]}


def overlay_data(page: str) -> dict[str, dict]:
    """The GeoJSON of each inline layer by the key it registers under (parcels, flags, blocks, parks)."""
    out = {}
    for m in re.finditer(r"var (geo_json_overlay_\w+) = L\.geoJSON", page):
        name = m.group(1)
        data = re.search(re.escape(name) + r"\.addData\((.*?)\);\n", page, re.S)
        key = re.search(r"geoEval\.layers\[\"(\w+)\"\] = " + re.escape(name) + ";", page)
        assert data and key
        out[key.group(1)] = json.loads(data.group(1))
    return out


def parcel_ids_on(page: str) -> set[str]:
    return {f["properties"]["id"] for f in overlay_data(page)["parcels"]["features"]}


# --- refusals without a login ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/maps/", f"/maps/{enc(PARK_A)}", f"/maps/{enc(PARK_A)}?color_by=tax_per_mu"])
def test_signed_out_browsers_go_to_the_login_page(svc, path):
    r = svc.get(path)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")
    assert unquote(r.headers["location"].removeprefix("/login?next=")) == unquote(path)
    assert "tax" not in r.text


def data_routes(centre: tuple[float, float]) -> list[str]:
    t = tile_of(*centre, 16)
    return [
        f"/api/tiles/{enc(PARK_A)}/{t}.pbf",
        f"/api/tiles/{t}.pbf",
        f"/api/maps/{enc(PARK_A)}/search.json",
        "/api/maps/search.json",
    ]


def test_tiles_and_search_without_a_token_are_401(svc, centre):
    bad = {"Authorization": "Bearer gev.000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
    for path in data_routes(centre):
        for headers in ({}, bad):
            r = svc.client.get(path, headers=headers)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert "P1" not in r.text
    # a page with a bad token is refused too (the header is judged alone, no redirect)
    assert svc.client.get("/maps/", headers=bad).status_code == 401


# --- every route × role -----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("park", [PARK_A, PARK_B])
def test_park_routes_by_role(svc, centre, who, park):
    t = tile_of(*centre, 16)
    routes = [
        f"/maps/{enc(park)}",
        f"/api/tiles/{enc(park)}/{t}.pbf",
        f"/api/maps/{enc(park)}/search.json",
    ]
    for path in routes:
        r = svc.get(path, who)
        if may_see(who, park):
            assert r.status_code == 200, (path, r.text[:200])
        else:
            assert r.status_code == 403, path
            assert park in r.json()["detail"]
            assert "P4" not in r.text and "P1" not in r.text


@pytest.mark.parametrize("who", ROLES)
def test_overview_routes_show_only_the_users_parks(svc, points, who):
    visible = (A_IDS if may_see(who, PARK_A) else set()) | (B_IDS if may_see(who, PARK_B) else set())
    r = svc.get("/maps/", who)
    assert r.status_code == 200
    assert parcel_ids_on(r.text) == visible
    drawn: set[str] = set()
    for t in tiles_over(points, 15):
        tile = svc.get(f"/api/tiles/{t}.pbf", who)
        assert tile.status_code == 200
        drawn |= tile_ids(tile.content)
    assert drawn == visible
    search = svc.get("/api/maps/search.json", who)
    assert search.status_code == 200 and {row[0] for row in search.json()} == visible


def test_unknown_park_is_404_for_reviewers_and_403_for_a_committee(svc, centre):
    t = tile_of(*centre, 16)
    for path in (
        f"/maps/{enc('没有的园区')}",
        f"/api/tiles/{enc('没有的园区')}/{t}.pbf",
        "/api/maps/没有的园区/search.json",
    ):
        assert svc.get(path, "rev").status_code == 404, path
        assert svc.get(path, "comA").status_code == 403, path


def test_cookie_sessions_meet_the_same_checks(svc):
    browser = TestClient(svc.app, base_url="https://testserver", follow_redirects=False)
    form = {"name": "comA", "token": svc.tokens["comA"], "next": f"/maps/{PARK_A}"}
    r = browser.post("/login", data=form, headers={"Origin": "https://testserver"})
    assert r.status_code == 303 and unquote(r.headers["location"]) == f"/maps/{PARK_A}"
    assert browser.get(f"/maps/{enc(PARK_A)}").status_code == 200
    assert browser.get(f"/maps/{enc(PARK_B)}").status_code == 403
    assert browser.get(f"/api/maps/{enc(PARK_B)}/search.json").status_code == 403
    home = browser.get("/")
    assert 'href="/maps/"' in home.text


def test_run_selection(svc):
    assert svc.get(f"/maps/{enc(PARK_A)}?run={svc.run_id}", "rev").status_code == 200
    assert svc.get(f"/maps/{enc(PARK_A)}?run=nope", "rev").status_code == 404
    assert svc.get(f"/maps/{enc(PARK_A)}?year=2019", "rev").status_code == 404
    assert svc.get("/maps/?color_by=nope", "rev").status_code == 422


# --- the page ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page_a(svc):
    r = svc.get(f"/maps/{enc(PARK_A)}", "rev")
    assert r.status_code == 200
    return r


@pytest.fixture(scope="module")
def page_b(svc):
    r = svc.get(f"/maps/{enc(PARK_B)}", "rev")
    assert r.status_code == 200
    return r


def test_map_pages_carry_the_csp(svc, page_a):
    assert page_a.headers["content-security-policy"] == MAP_CSP
    assert "script-src 'self' 'unsafe-inline'" in MAP_CSP and "connect-src 'self'" in MAP_CSP
    assert page_a.headers["content-type"].startswith("text/html")
    assert page_a.headers["cache-control"] == "no-store"  # api.app.NoStore: every HTML answer
    assert svc.get("/maps/", "comB").headers["content-security-policy"] == MAP_CSP


def test_no_external_script_or_link_and_every_asset_is_served(svc, page_a):
    text = page_a.text
    links = re.findall(r'<script[^>]*\bsrc="([^"]+)"', text) + re.findall(r'<link[^>]*\bhref="([^"]+)"', text)
    assert "/static/vendor/leaflet/leaflet.js" in links
    for url in links:
        assert url.startswith("/static/vendor/"), url
        assert (VENDOR / url.removeprefix("/static/vendor/")).is_file(), url
        assert svc.client.get(url).status_code == 200, url
    assert not re.findall(r"https?://", text)
    assert not re.findall(r"""(?:src|href)\s*=\s*["']//""", text)


def test_park_page_has_its_parcels_layers_and_legend(page_a):
    text = page_a.text
    data = overlay_data(text)
    assert {f["properties"]["id"] for f in data["parcels"]["features"]} == A_IDS
    assert set(data) >= {"parcels", "flags", "parks"}
    for label in ("地块", "疑似闲置/低效地块", "园区边界", "分类（按宗地主要使用企业）", "A 优先发展类"):
        assert label in text
    assert "L.control.layers" in text
    assert PARK_A in text and "2025 年度" in text
    # the page links to the overview and offers the colour choice
    assert 'href="/maps/?run=' in text and "color_by=tax_per_mu" in text


def test_outline_falls_back_to_the_union_of_the_parcels(svc, page_a):
    parks = overlay_data(page_a.text)["parks"]["features"]
    assert len(parks) == 1
    parcels = gpd.read_file(svc.out / "parcels.gpkg", layer="parcels").to_crs(4326)
    a = parcels.loc[parcels["park"] == PARK_A].union_all()
    drawn = shape(parks[0]["geometry"])
    assert drawn.symmetric_difference(a).area < 1e-3 * a.area


def test_enterprise_names_are_escaped(page_b):
    text = page_b.text
    assert XSS not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<img" not in text


def test_colour_by_tax_and_the_basemaps(svc):
    r = svc.get(f"/maps/{enc(PARK_A)}?color_by=tax_per_mu", "rev")
    assert r.status_code == 200 and "亩均税收（万元/亩）" in r.text
    r = svc.get(f"/maps/{enc(PARK_A)}?basemap=gaode", "rev")
    assert r.status_code == 200 and "webrd0{s}.is.autonavi.com" in r.text and "GCJ-02" in r.text
    script_src = re.findall(r'<script[^>]*\bsrc="([^"]+)"', r.text)
    assert all(u.startswith("/static/vendor/") for u in script_src)
    r = svc.get(f"/maps/{enc(PARK_A)}?basemap=tianditu", "rev")
    assert r.status_code == 422 and "GEO_EVAL_TIANDITU_KEY" in r.json()["detail"]


def test_tianditu_key_from_the_settings(svc):
    key = "0123456789abcdef0123456789abcdef"
    app = create_app(Settings(data_dir=svc.data_dir, secret_key=SECRET, tianditu_key=key))
    with TestClient(app) as c:
        r = c.get(f"/maps/{enc(PARK_A)}?basemap=tianditu", headers=svc.h("rev"))
        assert r.status_code == 200
        assert f"tk={key}" in r.text and "tianditu.gov.cn" in r.text
        assert "https://*.tianditu.gov.cn" in r.headers["content-security-policy"]
        assert "天地图" in c.get(f"/maps/{enc(PARK_A)}", headers=svc.h("rev")).text


def test_parks_layer_setting_gives_the_outline(svc, tmp_path):
    parcels = gpd.read_file(svc.out / "parcels.gpkg", layer="parcels")
    a = parcels.loc[parcels["park"] == PARK_A]
    outline = gpd.GeoDataFrame({"园区": [PARK_A]}, geometry=[box(*a.total_bounds).buffer(30)], crs=parcels.crs)
    path = tmp_path / "parks.gpkg"
    outline.to_file(path, layer="parks")
    app = create_app(Settings(data_dir=svc.data_dir, secret_key=SECRET, parks_layer=path))
    with TestClient(app) as c:
        r = c.get(f"/maps/{enc(PARK_A)}", headers=svc.h("rev"))
        feats = overlay_data(r.text)["parks"]["features"]
        assert len(feats) == 1 and feats[0]["properties"]["t"] == PARK_A
        expected = outline.to_crs(4326).geometry.iloc[0]
        assert shape(feats[0]["geometry"]).symmetric_difference(expected).area < 1e-3 * expected.area
        # a park missing from the layer falls back to its parcels
        r = c.get(f"/maps/{enc(PARK_B)}", headers=svc.h("rev"))
        assert len(overlay_data(r.text)["parks"]["features"]) == 1


# --- vector tiles -----------------------------------------------------------------------------------------
def park_tiles(svc, park: str, points, z: int, who: str = "rev", query: str = "") -> dict[str, dict]:
    """Properties by parcel of every tile of ``park`` over the catalogue at zoom ``z``."""
    props: dict[str, dict] = {}
    for t in sorted(tiles_over(points, z)):
        r = svc.get(f"/api/tiles/{enc(park)}/{t}.pbf{query}", who)
        assert r.status_code == 200
        for f in decode(r.content).get("parcels", {"features": []})["features"]:
            props[f["properties"]["parcel_id"]] = f["properties"]
    return props


def test_a_tile_decodes_with_the_popup_figures(svc, points):
    r = svc.get(f"/api/tiles/{enc(PARK_A)}/{tile_of(*points['P1'], 16)}.pbf", "rev")
    assert r.status_code == 200
    assert r.headers["content-type"] == MVT_TYPE
    assert r.headers["cache-control"].startswith("private")
    layer = decode(r.content)["parcels"]
    assert layer["extent"] == 4096
    assert "P1" in {f["properties"]["parcel_id"] for f in layer["features"]}
    props = park_tiles(svc, PARK_A, points, 16)
    assert set(props) == A_IDS  # the other park's neighbours are not in this park's tiles
    assert props["P1"]["park"] == PARK_A and "grade" in props["P1"]
    assert "甲公司" in props["P1"]["users"]
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in layer["features"])


def test_low_zoom_tiles_carry_only_the_style(svc, points):
    props = park_tiles(svc, PARK_B, points, 12)
    assert set(props) == B_IDS
    assert all(set(p) <= {"parcel_id", "grade", "tax_per_mu", "n_flags", "review"} for p in props.values())


def test_tiles_escape_nothing_but_carry_the_name_as_data(svc, points):
    props = park_tiles(svc, PARK_B, points, 16)
    assert props["P4"]["main_name"] == XSS  # the browser escapes it (geoEval.esc)


def test_tile_errors_are_404_and_empty_tiles_are_empty(svc):
    assert svc.get(f"/api/tiles/{enc(PARK_A)}/30/0/0.pbf", "rev").status_code == 404
    assert svc.get(f"/api/tiles/{enc(PARK_A)}/3/8/0.pbf", "rev").status_code == 404
    assert svc.get(f"/api/tiles/{enc(PARK_A)}/x/0/0.pbf", "rev").status_code == 422
    r = svc.get(f"/api/tiles/{enc(PARK_A)}/10/0/0.pbf", "rev")
    assert r.status_code == 200 and r.content == b""


def test_gaode_tiles_are_shifted(svc, points):
    # GCJ-02 moves the parcels by a few hundred metres: at zoom 18 (~150 m tiles) P1 leaves its tile
    t = tile_of(*points["P1"], 18)
    plain = svc.get(f"/api/tiles/{enc(PARK_A)}/{t}.pbf", "rev").content
    shifted = svc.get(f"/api/tiles/{enc(PARK_A)}/{t}.pbf?basemap=gaode", "rev").content
    assert "P1" in tile_ids(plain)
    assert "P1" not in tile_ids(shifted)


def test_tile_mode_page_uses_the_tile_and_search_routes(svc):
    r = svc.get(f"/maps/{enc(PARK_A)}?tiles=1", "rev")
    assert r.status_code == 200
    text = r.text
    urls = re.findall(r'"url":"([^"]+)"', text)
    tile_url = next(u for u in urls if "/api/tiles/" in u)
    assert tile_url.startswith(f"/api/tiles/{enc(PARK_A)}/{{z}}/{{x}}/{{y}}.pbf?")
    assert f"run={svc.run_id}" in tile_url and "&v=" in tile_url
    search_url = next(u for u in urls if "search.json" in u)
    assert search_url.startswith(f"/api/maps/{enc(PARK_A)}/search.json")
    assert "Leaflet.VectorGrid.bundled.min.js" in text
    assert "parcels" not in overlay_data(text)  # no inline parcels
    rows = svc.get(search_url, "rev").json()
    assert {row[0] for row in rows} == A_IDS
    assert all(len(row) == 7 for row in rows)
    assert any("甲公司" in row[1] for row in rows)


def test_threshold_setting_switches_large_parks_to_tiles(svc):
    app = create_app(Settings(data_dir=svc.data_dir, secret_key=SECRET, map_tile_threshold=4))
    with TestClient(app) as c:
        a = c.get(f"/maps/{enc(PARK_A)}", headers=svc.h("rev")).text  # 3 parcels: inline
        b = c.get(f"/maps/{enc(PARK_B)}", headers=svc.h("rev")).text  # 5 parcels: tiles
        assert "parcels" in overlay_data(a) and "/api/tiles/" not in a
        assert "parcels" not in overlay_data(b) and f"/api/tiles/{enc(PARK_B)}/" in b
        overview = c.get("/maps/", headers=svc.h("rev")).text
        assert '"url":"/api/tiles/{z}/{x}/{y}.pbf?' in overview


# --- the review state on the map ----------------------------------------------------------------------------
def test_a_review_changes_the_page_and_the_tiles(svc, points):
    fl = pd.read_csv(svc.out / "flags.csv", encoding="utf-8-sig", dtype=str)
    row = fl.loc[fl["park"] == PARK_A].iloc[0]
    fid, pid = row["flag_id"], row["parcel_id"]
    before = svc.get(f"/maps/{enc(PARK_A)}", "rev").text
    tiles_before = svc.get(f"/maps/{enc(PARK_A)}?tiles=1", "rev").text
    assert "现场看过，确认闲置" not in before
    # committees cannot review; a reviewer can
    body = {"status": "confirmed", "comment": "现场看过，确认闲置", "version": 0}
    assert svc.client.patch(f"/api/flags/{fid}", json=body, headers=svc.h("comA")).status_code == 403
    r = svc.client.patch(f"/api/flags/{fid}", json=body, headers=svc.h("rev"))
    assert r.status_code == 200, r.text
    after = svc.get(f"/maps/{enc(PARK_A)}", "rev").text
    assert after != before
    assert "确认：现场看过，确认闲置" in after
    flags_layer = overlay_data(after)["flags"]["features"]
    confirmed = [f for f in flags_layer if f["properties"]["id"] == pid]
    assert confirmed
    assert "疑似闲置/低效地块（确认）" in after  # legend
    # tile URLs carry the new review version; the tiles carry the state
    v_before = re.search(r"&v=(\d+)", tiles_before).group(1)
    tiles_after = svc.get(f"/maps/{enc(PARK_A)}?tiles=1", "rev").text
    v_after = re.search(r"&v=(\d+)", tiles_after).group(1)
    assert int(v_after) > int(v_before)
    props = park_tiles(svc, PARK_A, points, 16, query=f"?v={v_after}")
    assert props[pid]["review"] == "confirmed"
    assert "现场看过，确认闲置" in props[pid]["flags"]
    # a committee of the park sees the same state
    assert "确认：现场看过，确认闲置" in svc.get(f"/maps/{enc(PARK_A)}", "comA").text


def test_openapi_documents_the_map_routes_in_chinese(svc):
    paths = svc.get("/openapi.json", "rev").json()["paths"]
    for p in (
        "/maps/",
        "/maps/{park}",
        "/api/tiles/{park}/{z}/{x}/{y}.pbf",
        "/api/tiles/{z}/{x}/{y}.pbf",
        "/api/maps/{park}/search.json",
        "/api/maps/search.json",
    ):
        assert p in paths, p
        summary = paths[p]["get"]["summary"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in summary), summary
