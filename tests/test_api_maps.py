"""Map pages, vector tiles, the review list, review states and parcels over HTTP: every route × role,
every refusal, the page's safety, the home page by role.

The catalogue split into two parks (海滨高新技术产业园: P1–P3; 青松经济开发区/北区: P4–P8, a name with a
"/" so that every route and link is exercised with one), evaluated once for the module; the main user
of P4 is named ``<img src=x onerror=alert(1)>``. Tests that review a flag each take their own flag.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import catalogue
import geopandas as gpd
import mapbox_vector_tile
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import Point, box, shape

from api.app import create_app
from api.routes.maps import MVT_TYPE, NO_TIANDITU_KEY
from api.settings import Settings
from geo_eval import maps
from geo_eval.io.run import run
from geo_eval.landuse.flags import rule_label
from geo_eval.maps.outlines import OUTLINE_CLOSING_M
from geo_eval.maps.tiles import lonlat_to_tile
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import ROLE_LABELS, open_store, run_record_from_out_dir

PARK_A = "海滨高新技术产业园"
PARK_B = "青松经济开发区/北区"
SCHEME = "huaian-2024"
SECRET = "m" * 48
XSS = "<img src=x onerror=alert(1)>"
STATIC = Path(__file__).resolve().parents[1] / "api" / "static"
A_IDS = {"P1", "P2", "P3"}
B_IDS = {"P4", "P5", "P6", "P7", "P8"}
IMMUTABLE = "private, max-age=86400, immutable"
BEIJING = timedelta(hours=8)


def two_park_dataset(root: Path, extra_toml: str = "") -> Path:
    p = catalogue.parcels()
    e = catalogue.enterprises()
    p.loc[p["parcel_id"].isin(sorted(B_IDS)), "park"] = PARK_B
    e.loc[e["uscc"].isin([catalogue.E[i] for i in (6, 7, 8, 9)]), "park"] = PARK_B
    e.loc[e["uscc"] == catalogue.E[6], "name"] = XSS
    return catalogue.write_dataset(root, parcels_gdf=p, enterprises_df=e, year=2025, extra_toml=extra_toml)


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

    def get(self, path: str, who: str | None = None, **headers: str):
        return self.client.get(path, headers={**(self.h(who) if who else {}), **headers})

    def review(self, fid: str, status: str, comment: str = "", version: int = 0, who: str = "rev"):
        body = {"status": status, "comment": comment, "version": version}
        return self.client.patch(f"/api/flags/{quote(fid, safe='')}", json=body, headers=self.h(who))


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


@pytest.fixture(scope="module")
def flags_csv(svc) -> pd.DataFrame:
    return pd.read_csv(svc.out / "flags.csv", encoding="utf-8-sig", dtype=str)


def may_see(who: str, park: str) -> bool:
    return who in ("admin", "rev", "comAB") or (who, park) in (("comA", PARK_A), ("comB", PARK_B))


def visible_ids(who: str) -> set[str]:
    return (A_IDS if may_see(who, PARK_A) else set()) | (B_IDS if may_see(who, PARK_B) else set())


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


@pytest.fixture(scope="module")
def gap(svc) -> tuple[float, float]:
    """A lon/lat on the 100 m wide road between P1 and P7 (inside the catalogue, outside every parcel)."""
    x0, y0 = catalogue.parcels().geometry.iloc[0].bounds[:2]  # P1's south-west corner
    p = gpd.GeoSeries([Point(x0 + 250, y0 + 50)], crs=catalogue.CRS).to_crs(4326).iloc[0]
    return p.x, p.y


def tiles_over(points: dict[str, tuple[float, float]], z: int) -> set[str]:
    """The zoom-``z`` tiles that hold the catalogue's parcels."""
    return {tile_of(lon, lat, z) for lon, lat in points.values()}


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True}) if content else {}


def tile_ids(content: bytes) -> set[str]:
    layer = decode(content).get("parcels", {"features": []})
    return {f["properties"]["parcel_id"] for f in layer["features"]}


# --- what a page hands the browser ------------------------------------------------------------------------
def json_block(page: str, block_id: str) -> dict:
    found = re.findall(rf'<script type="application/json" id="{block_id}">(.*?)</script>', page, re.S)
    assert len(found) == 1, f"{len(found)} {block_id} blocks"
    out: dict = json.loads(found[0])
    return out


def page_config(page: str) -> dict:
    """The page's configuration (``ge-config``): the same for every user of a run."""
    return json_block(page, "ge-config")


def page_session(page: str) -> dict:
    """What the service adds per request (``ge-session``): the user, parks, years, basemaps, a notice."""
    return json_block(page, "ge-session")


def overlay_data(page: str) -> dict[str, dict]:
    """The GeoJSON of each inline layer (parcels, flags: the flagged parcels, blocks, parks)."""
    cfg = page_config(page)
    out = {k: cfg[k] for k in ("blocks", "parks") if cfg[k]}
    if cfg["parcels"]["mode"] == "inline":
        feats = cfg["parcels"]["features"]["features"]
        out["parcels"] = {"type": "FeatureCollection", "features": feats}
        out["flags"] = {"type": "FeatureCollection", "features": [f for f in feats if f["properties"]["f"]]}
    return out


def parcel_ids_on(page: str) -> set[str]:
    return {f["properties"]["id"] for f in overlay_data(page)["parcels"]["features"]}


def inline_cells(page: str) -> dict[str, list[str]]:
    return {f["properties"]["id"]: f["properties"]["v"] for f in overlay_data(page)["parcels"]["features"]}


# --- refusals without a login ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/maps/", f"/maps/{enc(PARK_A)}", f"/maps/{enc(PARK_B)}?color_by=tax_per_mu"])
def test_signed_out_browsers_go_to_the_login_page(svc, path):
    r = svc.get(path)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")
    assert unquote(r.headers["location"].removeprefix("/login?next=")) == unquote(path)
    assert "tax" not in r.text


def data_routes(centre: tuple[float, float]) -> list[str]:
    t = tile_of(*centre, 16)
    out = [f"/api/tiles/{t}.pbf", "/api/maps/search.json", "/api/maps/flags.json", "/api/maps/reviews.json"]
    out.append("/api/maps/parcel.json?id=P1")
    for park in (PARK_A, PARK_B):
        out += [
            f"/api/tiles/{enc(park)}/{t}.pbf",
            f"/api/maps/{enc(park)}/search.json",
            f"/api/maps/{enc(park)}/flags.json",
            f"/api/maps/{enc(park)}/reviews.json",
            f"/api/maps/{enc(park)}/parcel.json?id=P1",
        ]
    return out


def test_data_routes_without_a_token_are_401(svc, centre):
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
def test_park_routes_by_role(svc, points, who, park):
    ids = A_IDS if park == PARK_A else B_IDS
    pid = sorted(ids)[0]
    routes = [
        f"/maps/{enc(park)}",
        f"/api/tiles/{enc(park)}/{tile_of(*points[pid], 16)}.pbf",
        f"/api/maps/{enc(park)}/search.json",
        f"/api/maps/{enc(park)}/flags.json",
        f"/api/maps/{enc(park)}/reviews.json",
        f"/api/maps/{enc(park)}/parcel.json?id={pid}",
    ]
    answers = {path: svc.get(path, who) for path in routes}
    status = 200 if may_see(who, park) else 403
    assert {path: r.status_code for path, r in answers.items()} == dict.fromkeys(routes, status)
    refusals = [r for r in answers.values() if r.status_code == 403]  # each names the park and nothing else
    wrong = [r.text for r in refusals if park not in r.json()["detail"] or "P4" in r.text or "P1" in r.text]
    assert wrong == []


@pytest.mark.parametrize("who", ROLES)
def test_overview_routes_show_only_the_users_parks(svc, points, flags_csv, who):
    visible = visible_ids(who)
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
    flags = svc.get("/api/maps/flags.json", who).json()
    want = set(flags_csv.loc[flags_csv["parcel_id"].isin(visible), "flag_id"])
    assert {row[0] for row in flags["rows"]} == want
    answers = {pid: svc.get(f"/api/maps/parcel.json?id={pid}", who) for pid in sorted(A_IDS | B_IDS)}
    assert {pid: r.status_code for pid, r in answers.items()} == {
        pid: 200 if pid in visible else 404 for pid in answers
    }
    hidden = [r.text for pid, r in answers.items() if pid not in visible]  # nothing leaks, not even the park
    assert len(hidden) == len(A_IDS | B_IDS) - len(visible)
    assert not [text for text in hidden if PARK_A in text or PARK_B in text]


def test_unknown_park_is_404_for_reviewers_and_403_for_a_committee(svc, centre):
    t = tile_of(*centre, 16)
    for path in (
        f"/maps/{enc('没有的园区')}",
        f"/api/tiles/{enc('没有的园区')}/{t}.pbf",
        "/api/maps/没有的园区/search.json",
        "/api/maps/没有的园区/flags.json",
        "/api/maps/没有的园区/reviews.json",
        "/api/maps/没有的园区/parcel.json?id=P1",
        f"/maps/{enc(PARK_B + '/南区')}",
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
    assert browser.get(f"/api/maps/{enc(PARK_B)}/reviews.json").status_code == 403
    home = browser.get("/")
    assert f'href="/maps/?run={svc.run_id}"' in home.text


def test_run_selection(svc):
    assert svc.get(f"/maps/{enc(PARK_A)}?run={svc.run_id}", "rev").status_code == 200
    assert svc.get(f"/maps/{enc(PARK_A)}?run=nope", "rev").status_code == 404
    assert svc.get(f"/maps/{enc(PARK_A)}?year=2019", "rev").status_code == 404
    assert svc.get(f"/maps/{enc(PARK_B)}?year=2025", "rev").status_code == 200
    assert svc.get("/maps/?color_by=nope", "rev").status_code == 422
    assert svc.get(f"/api/maps/{enc(PARK_A)}/flags.json?run=nope", "rev").status_code == 404


# --- a park whose name holds a "/" ------------------------------------------------------------------------
def test_a_park_name_with_a_slash_works_in_links_and_routes(svc, points, flags_csv):
    page = svc.get(f"/maps/{enc(PARK_B)}", "rev")
    assert page.status_code == 200
    cfg, session = page_config(page.text), page_session(page.text)
    assert cfg["service"]["park"] == PARK_B and cfg["title"].startswith(PARK_B + " · 2025 年度")
    assert parcel_ids_on(page.text) == B_IDS
    # navigation: every park link and year link opens that park's map
    parks = {p["name"]: p for p in session["parks"]}
    assert set(parks) == {PARK_A, PARK_B}
    assert parks[PARK_B]["current"] and not parks[PARK_A]["current"]
    for name, link in parks.items():
        url = urlsplit(link["url"])
        assert unquote(url.path) == f"/maps/{name}" and "/" not in url.path.removeprefix("/maps/")
        assert parse_qs(url.query)["run"] == [svc.run_id]
        r = svc.get(link["url"], "rev")
        assert r.status_code == 200, link
        assert page_config(r.text)["service"]["park"] == name
    assert [y["year"] for y in session["years"]] == [2025]
    year = session["years"][0]
    assert year["run"] == svc.run_id and unquote(urlsplit(year["url"]).path) == f"/maps/{PARK_B}"
    assert page_config(svc.get(year["url"], "rev").text)["service"]["park"] == PARK_B
    # the URLs the page calls are those of this park, and work
    urls = cfg["service"]["urls"]
    base = f"/api/maps/{enc(PARK_B)}/"
    assert urls["flags"].startswith(base + "flags.json?") and urls["states"].startswith(base + "reviews.json?")
    assert urls["parcel"].startswith(base + "parcel.json?") and unquote(urls["page"]) == f"/maps/{PARK_B}"
    rows = svc.get(urls["flags"], "rev").json()["rows"]
    assert {r[0] for r in rows} == set(flags_csv.loc[flags_csv["park"] == PARK_B, "flag_id"])
    assert svc.get(urls["states"], "rev").status_code == 200
    assert svc.get(urls["parcel"] + "&id=P5", "rev").json()["park"] == PARK_B
    for key in ("checklist", "flagsDownload", "rankings"):
        q = parse_qs(urlsplit(urls[key]).query)
        assert q["park"] == [PARK_B] and q["run"] == [svc.run_id], key
        r = svc.get(urls[key] + "&format=csv", "rev")
        assert r.status_code == 200, (key, r.text[:200])
        assert "%2F" not in r.headers["content-disposition"] and "北区" in unquote(r.headers["content-disposition"])
    # the routes answer with the name unencoded as well (the "/" then separates path segments)
    t = tile_of(*points["P5"], 16)
    for path in (f"/api/maps/{PARK_B}/flags.json", f"/api/tiles/{PARK_B}/{t}.pbf", f"/maps/{PARK_B}"):
        assert svc.get(path, "rev").status_code == 200, path
    assert "P5" in tile_ids(svc.get(f"/api/tiles/{enc(PARK_B)}/{t}.pbf", "rev").content)
    # a committee of the park gets there too, and only there
    assert svc.get(f"/maps/{enc(PARK_B)}", "comB").status_code == 200
    assert [p["name"] for p in page_session(svc.get(f"/maps/{enc(PARK_B)}", "comB").text)["parks"]] == [PARK_B]


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


def csp_directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def inline_scripts(page: str) -> list[tuple[str, str]]:
    """(attributes, body) of every ``<script>`` without ``src``."""
    return re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", page, re.S)


def sha256_source(body: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode() + "'"


@pytest.mark.parametrize("path", [f"/maps/{enc(PARK_A)}", f"/maps/{enc(PARK_B)}?tiles=1", "/maps/?basemap=gaode"])
def test_map_pages_allow_only_their_own_inline_scripts(svc, path):
    r = svc.get(path, "rev")
    assert r.status_code == 200
    csp = csp_directives(r.headers["content-security-policy"])
    scripts = csp["script-src"]
    assert scripts[0] == "'self'"
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert not any(s.startswith(("http", "'nonce-")) or s == "*" for s in scripts)
    executable = [body for attrs, body in inline_scripts(r.text) if 'type="application/json"' not in attrs]
    assert executable  # folium's map set-up
    assert set(scripts[1:]) == {sha256_source(b) for b in executable}  # each one listed, nothing else
    # the JSON blocks are data: never executed, so never hashed
    assert {attrs.strip() for attrs, _ in inline_scripts(r.text) if "application/json" in attrs} == {
        'type="application/json" id="ge-config"',
        'type="application/json" id="ge-session"',
    }
    # nothing runs outside <script>: no event handler attributes, no javascript: URLs
    assert not re.findall(r"<[^>]+\son[a-z]+\s*=", r.text, re.I)
    assert "javascript:" not in r.text.lower()
    assert csp["default-src"] == ["'self'"] and csp["connect-src"] == ["'self'"]
    assert csp["base-uri"] == ["'none'"] and csp["frame-ancestors"] == ["'self'"]
    assert "https://*.tianditu.gov.cn" in csp["img-src"] and "https://*.is.autonavi.com" in csp["img-src"]
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"


def test_pages_are_shared_and_the_session_block_is_per_user(svc):
    rev, comb = svc.get("/maps/", "rev"), svc.get("/maps/", "comB")
    assert page_session(rev.text)["user"] == {
        "name": "rev",
        "role": "reviewer",
        "roleLabel": ROLE_LABELS["reviewer"],
        "canReview": True,
    }
    assert page_session(comb.text)["user"]["canReview"] is False
    assert [p["name"] for p in page_session(comb.text)["parks"]] == [PARK_B]
    assert parcel_ids_on(comb.text) == B_IDS
    a1, a2 = svc.get(f"/maps/{enc(PARK_A)}", "rev"), svc.get(f"/maps/{enc(PARK_A)}", "comA")
    assert page_config(a1.text) == page_config(a2.text)
    assert a1.headers["content-security-policy"] == a2.headers["content-security-policy"]
    assert page_session(a2.text)["user"]["role"] == "committee"


def test_no_external_script_or_link_and_every_asset_is_served(svc, page_a):
    text = page_a.text
    links = re.findall(r'<script[^>]*\bsrc="([^"]+)"', text) + re.findall(r'<link[^>]*\bhref="([^"]+)"', text)
    assert {"/static/vendor/leaflet/leaflet.js", "/static/js/map.js", "/static/css/map.css"} <= set(links)
    served = set(links) | {f"/static/js/{m.name}" for m in (STATIC / "js").glob("*.js")}
    types = {}
    for url in served:
        assert url.startswith("/static/"), url
        assert (STATIC / url.removeprefix("/static/")).is_file(), url
        r = svc.client.get(url)
        assert r.status_code == 200, url
        assert r.content == (STATIC / url.removeprefix("/static/")).read_bytes(), url
        types[url] = r.headers["content-type"]
    scripts = {url: t for url, t in types.items() if url.endswith(".js")}
    assert "/static/js/map.js" in scripts
    assert {url: "javascript" in t for url, t in scripts.items()} == dict.fromkeys(scripts, True)  # ES modules
    assert not re.findall(r"https?://", text)
    assert not re.findall(r"""(?:src|href)\s*=\s*["']//""", text)


def test_park_page_has_its_parcels_layers_and_legend(svc, page_a, flags_csv):
    cfg = page_config(page_a.text)
    data = overlay_data(page_a.text)
    assert parcel_ids_on(page_a.text) == A_IDS
    assert {f["properties"]["id"] for f in data["flags"]["features"]} == set(
        flags_csv.loc[flags_csv["park"] == PARK_A, "parcel_id"]
    )
    assert set(data) == {"parcels", "flags", "parks"}  # no 连片改造区块 in this run: only 零星地块
    # the legend counts the park's parcels by the grade of their main user
    parcels = gpd.read_file(svc.out / "parcels.gpkg", layer="parcels")
    want = parcels.loc[parcels["park"] == PARK_A, "grade"].fillna("无").value_counts().to_dict()
    assert {row[0]: row[3] for row in cfg["grades"] if row[3]} == want == {"D": 3}
    b = page_config(svc.get(f"/maps/{enc(PARK_B)}", "rev").text)
    assert {row[0]: row[3] for row in b["grades"] if row[3]} == {"B": 1, "D": 1, "T": 2, "无": 1}
    assert cfg["title"] == f"{PARK_A} · 2025 年度亩均效益评价"
    assert cfg["service"]["run"]["id"] == svc.run_id and cfg["service"]["run"]["year"] == 2025
    assert cfg["flagRows"] is None  # the review list comes from flags.json
    urls = cfg["service"]["urls"]
    assert urls["overview"] == f"/maps/?run={svc.run_id}"
    assert urls["review"] == f"/api/flags/{{id}}?run={svc.run_id}"
    assert urls["batch"] == f"/api/reviews/batch?run={svc.run_id}"


def test_outline_falls_back_to_the_parcels_closed_over_the_roads(svc, page_a):
    parks = overlay_data(page_a.text)["parks"]["features"]
    assert len(parks) == 1 and parks[0]["properties"]["t"] == PARK_A
    parcels = gpd.read_file(svc.out / "parcels.gpkg", layer="parcels").to_crs(catalogue.CRS)
    a = parcels.loc[parcels["park"] == PARK_A]
    drawn = gpd.GeoSeries([shape(parks[0]["geometry"])], crs=4326).to_crs(catalogue.CRS).iloc[0]
    # one piece without holes: the 30 m roads between P1, P2 and P3 are closed over
    assert drawn.geom_type == "Polygon" and not drawn.interiors
    assert drawn.buffer(2.5).contains(a.union_all())  # every parcel (simplified by 2 m at most)
    union = a.union_all().area
    road_ab, road_bc = 200 * 30, 30 * 100  # the road south of P2 and P3, and between them
    assert drawn.area == pytest.approx(union + road_ab + road_bc, rel=0.03)
    # the other park's parcels, 30 m away, are not inside
    b = parcels.loc[parcels["park"] == PARK_B]
    assert drawn.intersection(b.union_all()).area < 1.0
    assert OUTLINE_CLOSING_M > 30


def test_enterprise_names_are_escaped(page_b):
    text = page_b.text
    assert XSS not in text
    assert "<img" not in text
    cells = inline_cells(text)["P4"]
    users = dict(zip([f[0] for f in maps.POPUP_FIELDS], cells, strict=True))["users"]
    assert users.startswith("&lt;img src=x onerror=alert(1)&gt;（")
    assert text.count("</script>") == text.count("<script")


def test_colour_by_tax_and_the_basemaps(svc):
    r = svc.get(f"/maps/{enc(PARK_A)}?color_by=tax_per_mu", "rev")
    assert r.status_code == 200 and page_config(r.text)["colorBy"] == "tax_per_mu"
    assert page_config(r.text)["tax"]["labels"][-1] == "≥ 50"
    r = svc.get(f"/maps/{enc(PARK_A)}?basemap=gaode", "rev")
    assert r.status_code == 200 and "webrd0{s}.is.autonavi.com" in r.text and "GCJ-02" in r.text
    assert page_config(r.text)["basemap"] == "gaode"
    assert "basemap=gaode" in page_config(r.text)["service"]["urls"]["parcel"]  # the popups use GCJ-02 too
    script_src = re.findall(r'<script[^>]*\bsrc="([^"]+)"', r.text)
    assert all(u.startswith("/static/") for u in script_src)
    bases = {b["key"]: b for b in page_session(r.text)["basemaps"]}
    assert set(bases) == {"none", "gaode"} and bases["gaode"]["current"]


def test_tianditu_without_a_key_shows_the_map_with_a_notice(svc):
    r = svc.get(f"/maps/{enc(PARK_B)}?basemap=tianditu", "rev")
    assert r.status_code == 200
    session = page_session(r.text)
    assert session["notice"] == NO_TIANDITU_KEY and "天地图" in session["notice"]
    assert "GEO_EVAL_TIANDITU_KEY" in session["notice"]
    assert "tianditu" not in r.text.replace("basemap=tianditu", "")
    assert not re.findall(r"https?://", r.text)
    cfg = page_config(r.text)
    assert cfg["basemap"] == "none" and cfg["basemaps"] == []
    assert [b["key"] for b in session["basemaps"] if b["current"]] == ["none"]
    assert "tianditu" not in {b["key"] for b in session["basemaps"]}
    assert parcel_ids_on(r.text) == B_IDS
    assert page_session(svc.get(f"/maps/{enc(PARK_B)}", "rev").text)["notice"] is None


def test_tianditu_key_from_the_settings(svc):
    key = "0123456789abcdef0123456789abcdef"
    app = create_app(Settings(data_dir=svc.data_dir, secret_key=SECRET, tianditu_key=key))
    with TestClient(app) as c:
        r = c.get(f"/maps/{enc(PARK_A)}?basemap=tianditu", headers=svc.h("rev"))
        assert r.status_code == 200
        assert f"tk={key}" in r.text and "tianditu.gov.cn" in r.text
        assert "https://*.tianditu.gov.cn" in r.headers["content-security-policy"]
        assert [b["label"] for b in page_config(r.text)["basemaps"]] == ["天地图 矢量", "天地图 影像", "天地图 注记"]
        assert page_session(r.text)["notice"] is None
        plain = c.get(f"/maps/{enc(PARK_A)}", headers=svc.h("rev")).text
        assert "tianditu" in {b["key"] for b in page_session(plain)["basemaps"]}
        assert "tk=" not in plain


def outline_of(page: str, park: str):
    feats = [f for f in overlay_data(page)["parks"]["features"] if f["properties"]["t"] == park]
    assert len(feats) == 1
    return shape(feats[0]["geometry"])


def test_parks_layer_setting_gives_the_outline(svc, tmp_path):
    parcels = gpd.read_file(svc.out / "parcels.gpkg", layer="parcels")
    a = parcels.loc[parcels["park"] == PARK_A]
    outline = gpd.GeoDataFrame({"园区": [PARK_A]}, geometry=[box(*a.total_bounds).buffer(30)], crs=parcels.crs)
    path = tmp_path / "parks.gpkg"
    outline.to_file(path, layer="parks")
    app = create_app(Settings(data_dir=svc.data_dir, secret_key=SECRET, parks_layer=path))
    with TestClient(app) as c:
        r = c.get(f"/maps/{enc(PARK_A)}", headers=svc.h("rev"))
        expected = outline.to_crs(4326).geometry.iloc[0]
        assert outline_of(r.text, PARK_A).symmetric_difference(expected).area < 1e-3 * expected.area
        # a park missing from the layer falls back to its parcels
        r = c.get(f"/maps/{enc(PARK_B)}", headers=svc.h("rev"))
        assert len(overlay_data(r.text)["parks"]["features"]) == 1


def test_parks_layer_of_the_dataset_gives_the_outline(tmp_path):
    """``[layers] parks`` in dataset.toml names the outlines (here not called parks.gpkg)."""
    ds = two_park_dataset(tmp_path / "ds", extra_toml='[layers]\nparks = "边界/园区边界.gpkg"\n')
    parcels = catalogue.parcels()
    b = parcels.loc[parcels["parcel_id"].isin(sorted(B_IDS))]
    outline = gpd.GeoDataFrame({"park": [PARK_B]}, geometry=[box(*b.total_bounds).buffer(25)], crs=parcels.crs)
    (ds / "边界").mkdir()
    outline.to_file(ds / "边界" / "园区边界.gpkg", layer="parks")
    run(ds, load_scheme(SCHEME), tmp_path / "out")
    store = open_store(tmp_path / "data")
    store.add_run(run_record_from_out_dir(tmp_path / "out"), actor="test")
    token = store.add_user("rev", "reviewer", [])[1]
    store.close()
    app = create_app(Settings(data_dir=tmp_path / "data", secret_key=SECRET))
    with TestClient(app) as c:
        page = c.get(f"/maps/{enc(PARK_B)}", headers={"Authorization": f"Bearer {token}"}).text
    expected = outline.to_crs(4326).geometry.iloc[0]
    assert outline_of(page, PARK_B).symmetric_difference(expected).area < 1e-3 * expected.area


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
    layer = decode(r.content)["parcels"]
    assert layer["extent"] == 4096
    assert "P1" in {f["properties"]["parcel_id"] for f in layer["features"]}
    props = park_tiles(svc, PARK_A, points, 16)
    assert set(props) == A_IDS  # the other park's neighbours are not in this park's tiles
    assert set(props["P1"]) <= set(maps.TILE_PROPERTIES) and "review" not in props["P1"]
    assert props["P1"]["park"] == PARK_A and props["P1"]["grade"] == "D"
    assert "甲公司" in props["P1"]["users"]
    # the flags as 标记：原因 lines, without any review state
    lines = props["P1"]["flags"].split("\n")
    assert len(lines) == props["P1"]["n_flags"] == 2
    assert all(re.match(r"^[^：]+：", line) for line in lines)
    assert not any(w in props["P1"]["flags"] for w in ("待复核", "确认", "排除", "待核查"))
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in layer["features"])


def test_tiles_are_immutable_with_an_etag(svc, points):
    path = f"/api/tiles/{enc(PARK_B)}/{tile_of(*points['P5'], 16)}.pbf"
    r = svc.get(path, "rev")
    assert r.status_code == 200 and r.content
    assert r.headers["cache-control"] == IMMUTABLE
    etag = r.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = svc.get(path, "rev", **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == IMMUTABLE
    assert svc.get(path, "rev", **{"If-None-Match": f'W/{etag}, "other"'}).status_code == 304
    assert svc.get(path, "rev", **{"If-None-Match": '"other"'}).status_code == 200
    # another tile, zoom or basemap is another ETag
    other = svc.get(f"/api/tiles/{enc(PARK_B)}/{tile_of(*points['P5'], 15)}.pbf", "rev").headers["etag"]
    gaode = svc.get(path + "?basemap=gaode", "rev").headers["etag"]
    assert len({etag, other, gaode}) == 3
    # a committee of another park is refused even with the ETag
    assert svc.get(path, "comA", **{"If-None-Match": etag}).status_code == 403


def test_low_zoom_tiles_carry_only_the_style(svc, points):
    props = park_tiles(svc, PARK_B, points, 12)
    assert set(props) == B_IDS
    assert all(set(p) <= set(maps.TILE_STYLE_PROPERTIES) for p in props.values())
    assert props["P8"]["n_flags"] == 2 and props["P4"]["n_flags"] == 0


def test_tiles_escape_nothing_but_carry_the_name_as_data(svc, points):
    props = park_tiles(svc, PARK_B, points, 16)
    assert props["P4"]["main_name"] == XSS  # the browser sets it as text


def test_tile_errors_are_404_and_empty_tiles_are_empty(svc):
    assert svc.get(f"/api/tiles/{enc(PARK_A)}/30/0/0.pbf", "rev").status_code == 404
    assert svc.get(f"/api/tiles/{enc(PARK_A)}/3/8/0.pbf", "rev").status_code == 404
    assert svc.get(f"/api/tiles/{enc(PARK_A)}/x/0/0.pbf", "rev").status_code == 422
    r = svc.get(f"/api/tiles/{enc(PARK_B)}/10/0/0.pbf", "rev")
    assert r.status_code == 200 and r.content == b""


def test_gaode_tiles_are_shifted(svc, points):
    # GCJ-02 moves the parcels by a few hundred metres: at zoom 18 (~150 m tiles) P1 leaves its tile
    t = tile_of(*points["P1"], 18)
    plain = svc.get(f"/api/tiles/{enc(PARK_A)}/{t}.pbf", "rev").content
    shifted = svc.get(f"/api/tiles/{enc(PARK_A)}/{t}.pbf?basemap=gaode", "rev").content
    assert "P1" in tile_ids(plain)
    assert "P1" not in tile_ids(shifted)


def test_tile_mode_page_uses_the_tile_and_data_routes(svc, flags_csv):
    r = svc.get(f"/maps/{enc(PARK_B)}?tiles=1", "rev")
    assert r.status_code == 200
    cfg = page_config(r.text)
    tiles = cfg["parcels"]
    assert tiles["mode"] == "tiles" and "features" not in tiles
    assert tiles["url"] == f"/api/tiles/{enc(PARK_B)}/{{z}}/{{x}}/{{y}}.pbf?run={svc.run_id}"
    assert tiles["detailZoom"] == maps.TILE_DETAIL_ZOOM
    assert "Leaflet.VectorGrid.bundled.min.js" in r.text
    assert "parcels" not in overlay_data(r.text)  # no inline parcels
    search_url = cfg["search"]["url"]
    assert search_url == f"/api/maps/{enc(PARK_B)}/search.json?run={svc.run_id}" and cfg["search"]["index"] is None
    rows = svc.get(search_url, "rev").json()
    assert {row[0] for row in rows} == B_IDS
    assert all(len(row) == 7 for row in rows)
    assert any(row[1] == XSS for row in rows)
    flags = svc.get(cfg["service"]["urls"]["flags"], "rev").json()
    assert len(flags["rows"]) == (flags_csv["park"] == PARK_B).sum()
    assert r.text.count("P4") == 0  # no parcel figure is in the page


def test_threshold_setting_switches_large_parks_to_tiles(svc):
    app = create_app(Settings(data_dir=svc.data_dir, secret_key=SECRET, map_tile_threshold=4))
    with TestClient(app) as c:
        a = c.get(f"/maps/{enc(PARK_A)}", headers=svc.h("rev")).text  # 3 parcels: inline
        b = c.get(f"/maps/{enc(PARK_B)}", headers=svc.h("rev")).text  # 5 parcels: tiles
        assert page_config(a)["parcels"]["mode"] == "inline" and parcel_ids_on(a) == A_IDS
        assert page_config(b)["parcels"]["mode"] == "tiles"
        assert page_config(b)["parcels"]["url"].startswith(f"/api/tiles/{enc(PARK_B)}/")
        overview = page_config(c.get("/maps/", headers=svc.h("rev")).text)
        assert overview["parcels"]["url"] == f"/api/tiles/{{z}}/{{x}}/{{y}}.pbf?run={svc.run_id}"


# --- the review list (flags.json) -------------------------------------------------------------------------
@pytest.mark.parametrize("park", [PARK_A, PARK_B])
def test_flags_json_rows_are_the_runs_flags(svc, points, flags_csv, park):
    r = svc.get(f"/api/maps/{enc(park)}/flags.json", "rev")
    assert r.status_code == 200
    assert r.headers["cache-control"] == IMMUTABLE and r.headers["etag"]
    assert (
        svc.get(f"/api/maps/{enc(park)}/flags.json", "rev", **{"If-None-Match": r.headers["etag"]}).status_code == 304
    )
    body = r.json()
    assert body["run_id"] == svc.run_id and body["columns"] == list(maps.FLAG_INDEX_COLUMNS)
    rows = [dict(zip(body["columns"], row, strict=True)) for row in body["rows"]]
    want = flags_csv.loc[flags_csv["park"] == park].set_index("flag_id")
    assert [r["flag_id"] for r in rows] == list(want.index)  # every flag of the park, in the run's order
    parcels = gpd.read_file(svc.out / "parcels.gpkg", layer="parcels").to_crs(4326).set_index("parcel_id")
    for row in rows:
        f = want.loc[row["flag_id"]]
        assert (row["parcel_id"], row["flag"], row["severity"], row["park"]) == (
            f["parcel_id"],
            f["flag"],
            f["severity"],
            park,
        )
        assert row["rule"] == rule_label(f["rule_id"]) and "." not in row["rule"]
        assert row["area_mu"] == pytest.approx(float(f["area_mu"]), abs=0.01)
        # a 退二优二 candidate's reason counts its rules (the flag's value); any other flag's is the run's reason
        candidate = row["flag"] == "renewal_candidate"
        assert row["reason"] == (f"符合 {int(float(f['value']))} 项规则" if candidate else f["reason"])
        geom = parcels.geometry.loc[row["parcel_id"]]
        assert geom.contains(Point(row["lon"], row["lat"]))
        assert (row["west"], row["south"], row["east"], row["north"]) == pytest.approx(geom.bounds, abs=1e-6)
    by_id = {r["flag_id"]: r for r in rows}
    known = {
        PARK_A: {
            ("P1:low_efficiency.grade_d", "rule"): "低效用地·D类企业",
            ("P1:renewal_candidate", "rule"): "退二优二候选",
            ("P1:renewal_candidate", "reason"): "符合 1 项规则",
            ("P1:low_efficiency.grade_d", "holder"): "甲公司",
        },
        PARK_B: {("P8:idle_suspected.no_enterprise", "rule"): "疑似闲置·无使用企业"},
    }[park]
    assert {(fid, key): by_id[fid][key] for fid, key in known} == known


def test_overview_flags_json_counts_per_park(svc, flags_csv):
    rows = svc.get("/api/maps/flags.json", "rev").json()["rows"]
    park = maps.FLAG_INDEX_COLUMNS.index("park")
    got = pd.Series([r[park] for r in rows]).value_counts().to_dict()
    assert got == flags_csv["park"].value_counts().to_dict() == {PARK_A: 6, PARK_B: 4}
    gaode = svc.get("/api/maps/flags.json?basemap=gaode", "rev").json()["rows"]
    lon = maps.FLAG_INDEX_COLUMNS.index("lon")
    assert [r[0] for r in gaode] == [r[0] for r in rows]
    assert all(0.003 < g[lon] - p[lon] < 0.008 for g, p in zip(gaode, rows, strict=True))  # ≈ 500 m east


# --- one parcel (parcel.json) -----------------------------------------------------------------------------
def test_parcel_json_by_code_and_by_a_point(svc, points, page_a, page_b):
    for park, page in ((PARK_A, page_a), (PARK_B, page_b)):
        cells = inline_cells(page.text)
        for pid in sorted(A_IDS if park == PARK_A else B_IDS):
            by_id = svc.get(f"/api/maps/{enc(park)}/parcel.json?id={pid}", "rev")
            assert by_id.status_code == 200, pid
            assert by_id.headers["cache-control"] == IMMUTABLE
            body = by_id.json()
            assert body["parcel_id"] == pid and body["park"] == park
            assert body["cells"] == cells[pid]  # the same escaped cells as the inline page
            geom = shape(body["geometry"])
            lon, lat = points[pid]
            assert geom.contains(Point(lon, lat)) and geom.contains(Point(body["point"]))
            (s, w), (n, e) = body["bounds"]
            assert (w, s, e, n) == pytest.approx(geom.bounds, abs=1e-6)
            by_point = svc.get(f"/api/maps/{enc(park)}/parcel.json?lon={lon}&lat={lat}", "rev")
            assert by_point.status_code == 200 and by_point.json() == body
    p4 = svc.get(f"/api/maps/{enc(PARK_B)}/parcel.json?id=P4", "rev").json()
    assert p4["cells"][4].startswith("&lt;img src=x onerror=alert(1)&gt;（") and "<img" not in json.dumps(p4)
    assert p4["n_flags"] == 0
    assert svc.get(f"/api/maps/{enc(PARK_B)}/parcel.json?id=P8", "rev").json()["n_flags"] == 2


def test_parcel_json_refusals(svc, points, gap):
    lon, lat = gap
    for base in ("/api/maps/", f"/api/maps/{enc(PARK_A)}/"):
        r = svc.get(f"{base}parcel.json?lon={lon}&lat={lat}", "rev")
        assert r.status_code == 404 and r.json()["detail"] == "该位置没有宗地"
        assert svc.get(f"{base}parcel.json", "rev").status_code == 422
        assert svc.get(f"{base}parcel.json?lon={lon}", "rev").status_code == 422
        assert svc.get(f"{base}parcel.json?lon=500&lat=0", "rev").status_code == 422
    # a parcel of the other park is not on this park's map
    assert svc.get(f"/api/maps/{enc(PARK_A)}/parcel.json?id=P4", "rev").status_code == 404
    lon, lat = points["P4"]
    assert svc.get(f"/api/maps/{enc(PARK_A)}/parcel.json?lon={lon}&lat={lat}", "rev").status_code == 404
    assert svc.get(f"/api/maps/parcel.json?lon={lon}&lat={lat}", "rev").json()["parcel_id"] == "P4"
    # with a 高德 basemap the point is in GCJ-02: the WGS-84 point of P1 is ~500 m off its parcel
    lon, lat = points["P1"]
    assert svc.get(f"/api/maps/{enc(PARK_A)}/parcel.json?lon={lon}&lat={lat}&basemap=gaode", "rev").status_code == 404
    gcj = svc.get(f"/api/maps/{enc(PARK_A)}/parcel.json?id=P1&basemap=gaode", "rev").json()
    hit = svc.get(
        f"/api/maps/{enc(PARK_A)}/parcel.json?lon={gcj['point'][0]}&lat={gcj['point'][1]}&basemap=gaode", "rev"
    )
    assert hit.json()["parcel_id"] == "P1"


# --- review states (reviews.json) --------------------------------------------------------------------------
def beijing_now() -> datetime:
    return datetime.now(UTC) + BEIJING


def test_reviews_json_answers_304_until_a_review_and_then_the_new_state(svc, flags_csv):
    fid = flags_csv.loc[flags_csv["park"] == PARK_B, "flag_id"].iloc[0]
    path = f"/api/maps/{enc(PARK_B)}/reviews.json"
    r = svc.get(path, "comB")
    assert r.status_code == 200 and r.headers["cache-control"] == "private, no-cache"
    assert r.json()["run_id"] == svc.run_id and fid not in r.json()["states"]
    etag = r.headers["etag"]
    again = svc.get(path, "comB", **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    # a committee cannot review; a reviewer can, and the next poll sees it
    assert svc.review(fid, "confirmed", "现场看过", who="comB").status_code == 403
    assert svc.get(path, "comB", **{"If-None-Match": etag}).status_code == 304
    before = beijing_now().replace(second=0, microsecond=0, tzinfo=None)
    done = svc.review(fid, "site_visit", "需到现场：厂房<空置>？")
    after = beijing_now().replace(tzinfo=None)
    assert done.status_code == 200, done.text
    review = done.json()["review"]
    r = svc.get(path, "comB", **{"If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag
    state = r.json()["states"][fid]
    assert state[:4] == ["site_visit", 1, "需到现场：厂房<空置>？", "rev"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", state[4])
    assert before <= datetime.strptime(state[4], "%Y-%m-%d %H:%M") <= after  # Beijing time, not UTC
    stored = datetime.fromisoformat(review["updated_at"].replace("Z", "+00:00"))
    assert state[4] == (stored.astimezone(UTC) + BEIJING).strftime("%Y-%m-%d %H:%M") == review["updated_at_label"]
    assert svc.get(path, "comB", **{"If-None-Match": r.headers["etag"]}).status_code == 304
    # 撤回: the flag is back to 待复核 with its next version
    undo = svc.review(fid, "pending", version=1)
    assert undo.status_code == 200, undo.text
    state = svc.get(path, "rev").json()["states"][fid]
    assert state[:2] == ["pending", 2]
    # the overview of every park has it too
    assert svc.get("/api/maps/reviews.json", "rev").json()["states"][fid][:2] == ["pending", 2]


def test_a_committee_sees_only_its_own_parks_flags(svc, flags_csv):
    a_flags = set(flags_csv.loc[flags_csv["park"] == PARK_A, "flag_id"])
    b_flags = set(flags_csv.loc[flags_csv["park"] == PARK_B, "flag_id"])
    b_fid = sorted(b_flags)[-1]
    assert svc.review(b_fid, "dismissed", "已整改").status_code == 200
    a_fid = sorted(a_flags)[-1]
    assert svc.review(a_fid, "confirmed").status_code == 200
    for path in ("/api/maps/reviews.json", f"/api/maps/{enc(PARK_A)}/reviews.json"):
        states = svc.get(path, "comA").json()["states"]
        assert a_fid in states and not set(states) & b_flags, path
        assert set(states) <= a_flags
    assert b_fid in svc.get("/api/maps/reviews.json", "rev").json()["states"]
    assert b_fid in svc.get("/api/maps/reviews.json", "comAB").json()["states"]
    for path in ("/api/maps/flags.json", f"/api/maps/{enc(PARK_A)}/flags.json"):
        text = svc.get(path, "comA").text
        assert {r[0] for r in json.loads(text)["rows"]} == a_flags
        assert not any(f in text for f in b_flags) and PARK_B not in text
    assert svc.get(f"/api/maps/{enc(PARK_B)}/reviews.json", "comA").status_code == 403
    assert svc.get(f"/api/maps/{enc(PARK_B)}/flags.json", "comA").status_code == 403
    assert svc.get(f"/api/maps/{enc(PARK_B)}/parcel.json?id=P8", "comA").status_code == 403
    assert svc.get("/api/maps/parcel.json?id=P8", "comA").status_code == 404


def test_a_review_changes_neither_the_page_nor_any_tile(svc, points, flags_csv):
    fid = flags_csv.loc[flags_csv["park"] == PARK_A, "flag_id"].iloc[0]
    pages = [f"/maps/{enc(PARK_A)}", f"/maps/{enc(PARK_A)}?tiles=1", "/maps/"]

    def snapshot(client: TestClient) -> tuple[dict, dict]:
        configs = {p: page_config(client.get(p, headers=svc.h("rev")).text) for p in pages}
        tiles = {}
        for z in (12, 15, 16, 18):
            for t in sorted(tiles_over(points, z)):
                for path in (f"/api/tiles/{enc(PARK_A)}/{t}.pbf", f"/api/tiles/{t}.pbf"):
                    r = client.get(path, headers=svc.h("rev"))
                    tiles[path] = (r.content, r.headers["etag"])
        return configs, tiles

    def same_page(a: dict, b: dict) -> bool:  # the folium map's element name aside
        return {k: v for k, v in a.items() if k != "map"} == {k: v for k, v in b.items() if k != "map"}

    configs, tiles = snapshot(svc.client)
    assert any(content for content, _ in tiles.values())
    states = svc.get(f"/api/maps/{enc(PARK_A)}/reviews.json", "rev")
    flags = svc.get(f"/api/maps/{enc(PARK_A)}/flags.json", "rev")
    r = svc.review(fid, "confirmed", "现场看过，确认闲置")
    assert r.status_code == 200, r.text
    # the same pages and tile bytes, from this service and from a fresh one that builds them anew
    with TestClient(create_app(Settings(data_dir=svc.data_dir, secret_key=SECRET))) as fresh:
        for client in (svc.client, fresh):
            configs_after, tiles_after = snapshot(client)
            assert all(same_page(configs_after[p], configs[p]) for p in pages)
            assert tiles_after == tiles
    # only the review states changed
    assert svc.get(f"/api/maps/{enc(PARK_A)}/flags.json", "rev").content == flags.content
    now = svc.get(f"/api/maps/{enc(PARK_A)}/reviews.json", "rev", **{"If-None-Match": states.headers["etag"]})
    assert now.status_code == 200 and now.json()["states"][fid][:4] == ["confirmed", 1, "现场看过，确认闲置", "rev"]
    assert "现场看过" not in svc.get(f"/maps/{enc(PARK_A)}", "comA").text


# --- the home page ------------------------------------------------------------------------------------------
def table_rows(page: str) -> list[list[str]]:
    """The rows of every table of a page, as cell markup."""
    return [re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S) for tr in re.findall(r"<tr>(.*?)</tr>", page, re.S)]


def test_home_page_of_a_reviewer_shows_each_parks_pending_flags(svc, flags_csv):
    fid = flags_csv.loc[flags_csv["park"] == PARK_B, "flag_id"].iloc[1]
    assert svc.review(fid, "dismissed", "已拆除").status_code == 200
    store = open_store(svc.data_dir)
    try:
        reviews = store.reviews(svc.run_id)
    finally:
        store.close()
    assert reviews[fid].status == "dismissed"
    r = svc.get("/", "rev")
    assert r.status_code == 200 and "地块标记复核进度" in r.text
    rows = {html.unescape(re.sub(r"<[^>]+>", "", row[0])): row for row in table_rows(r.text) if len(row) == 6}
    assert set(rows) == {PARK_A, PARK_B}
    total = 0
    for park, row in rows.items():
        flags = flags_csv.loc[flags_csv["park"] == park, "flag_id"]
        status = [reviews[f].status if f in reviews else "pending" for f in flags]
        pending = len(flags) - sum(1 for f in flags if f in reviews and reviews[f].status != "pending")
        assert int(row[1]) == pending, park
        assert [int(c) for c in row[1:5]] == [status.count(s) for s in maps.STATUS_ORDER], park
        total += pending
        link = re.search(r'<a class="button" href="([^"]+)">开始复核</a>', row[5])
        assert link, row[5]
        url = urlsplit(html.unescape(link.group(1)))
        assert unquote(url.path) == f"/maps/{park}" and parse_qs(url.query) == {"run": [svc.run_id]}
        assert url.fragment == "panel=1&state=pending"
        assert svc.get(f"{url.path}?{url.query}", "rev").status_code == 200
    assert int(rows[PARK_B][4]) >= 1  # the flag dismissed above
    assert f"全部园区待复核 <b>{total}</b> 条，共 {len(flags_csv)} 条标记" in r.text
    assert "评价批次</h2>" not in r.text  # the runs table is for administrators


def test_home_page_of_a_committee_shows_its_parks_classes(svc):
    ent = pd.read_csv(svc.out / "enterprises.csv", encoding="utf-8-sig", dtype=str)
    r = svc.get("/", "comB")
    assert r.status_code == 200
    text = r.text
    assert f"<h2>{html.escape(PARK_B)}</h2>" in text
    assert PARK_A not in text and "地块标记复核进度" not in text
    mine = ent.loc[ent["park"] == PARK_B, "grade"].value_counts()
    rows = {html.unescape(row[0]): int(row[1]) for row in table_rows(text) if len(row) == 2}
    assert rows == {maps.GRADE_LEGEND[g]: int(mine.get(g, 0)) for g in "ABCDT"}
    assert rows["T 不适合评价"] == 2 and rows["B 鼓励提升类"] == 1
    assert f"参评企业 {sum(rows.values())} 家" in text
    links = [html.unescape(u) for u in re.findall(r'href="([^"]+)"', text)]
    assert f"/maps/{enc(PARK_B)}?run={svc.run_id}" in links
    downloads = [link for link in links if link.startswith("/api/")]
    assert downloads
    for link in downloads:
        q = parse_qs(urlsplit(link).query)
        assert q["park"] == [PARK_B] and q["run"] == [svc.run_id], link
        assert svc.get(link, "comB").status_code == 200, link
        assert svc.get(link, "comA").status_code == 403, link
    # a committee of both parks sees both
    both = svc.get("/", "comAB").text
    assert f"<h2>{html.escape(PARK_A)}</h2>" in both and f"<h2>{html.escape(PARK_B)}</h2>" in both


def test_home_page_of_an_administrator_lists_the_runs(svc):
    text = svc.get("/", "admin").text
    assert "地块标记复核进度" in text and "<h2>评价批次</h2>" in text
    runs = [row for row in table_rows(text) if len(row) == 8]
    assert len(runs) == 1
    year, scheme, n_ent, mix, n_flags, at, by, link = runs[0]
    assert year == "2025" and by == "test"
    ent = pd.read_csv(svc.out / "enterprises.csv", encoding="utf-8-sig", dtype=str)
    assert n_ent == str(len(ent)) and n_flags == str(len(pd.read_csv(svc.out / "flags.csv", encoding="utf-8-sig")))
    assert mix == "、".join(f"{g} {(ent['grade'] == g).sum()}" for g in "ABCDT")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", at)
    assert html.unescape(re.search(r'href="([^"]+)"', link).group(1)) == f"/maps/?run={svc.run_id}"
    assert scheme and "huaian" not in scheme  # the scheme's Chinese title


def test_openapi_documents_the_map_routes_in_chinese(svc):
    paths = svc.get("/openapi.json", "rev").json()["paths"]
    for p in (
        "/maps/",
        "/maps/{park}",
        "/api/tiles/{park}/{z}/{x}/{y}.pbf",
        "/api/tiles/{z}/{x}/{y}.pbf",
        "/api/maps/{park}/search.json",
        "/api/maps/search.json",
        "/api/maps/{park}/flags.json",
        "/api/maps/flags.json",
        "/api/maps/{park}/reviews.json",
        "/api/maps/reviews.json",
        "/api/maps/{park}/parcel.json",
        "/api/maps/parcel.json",
    ):
        assert p in paths, p
        summary = paths[p]["get"]["summary"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in summary), summary


def test_the_gap_point_is_really_outside_every_parcel(svc, gap):
    """The 404 test above relies on this (checked independently of the service)."""
    parcels = gpd.read_file(svc.out / "parcels.gpkg", layer="parcels").to_crs(4326)
    assert not shapely.intersects(parcels.geometry.to_numpy(), Point(gap)).any()
    assert parcels.union_all().convex_hull.contains(Point(gap))
