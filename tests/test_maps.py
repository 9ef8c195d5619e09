"""Park maps rendered to HTML: local assets only, colours and legend, escaping, basemaps, tiles mode.

The maps are checked the way geopandas checks ``explore``: render the page and assert on its text.
A small hand-made park (EPSG:4549, near Lianyungang) stands in for ``parcels.gpkg``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo_eval import maps
from geo_eval.gcj02 import wgs84_to_gcj02

VENDOR = Path(__file__).resolve().parents[1] / "api" / "static" / "vendor"
XSS = "<img src=x onerror=alert(1)>"
SCRIPT_BREAK = "</script><script>alert(2)</script>"
GRADES = ["A", "B", "C", "D", "T", None]


def uscc(i: int) -> str:
    return f"9132070000000{i:04d}X"


@pytest.fixture
def parcels() -> gpd.GeoDataFrame:
    """Six 100 m × 80 m parcels in a row (12 亩 each), one per grade and one without users."""
    x0, y0 = 440_000.0, 3_830_000.0  # EPSG:4549 (CGCS2000 GK, CM 120°E): about 119.34°E, 34.61°N
    rows = []
    for i, grade in enumerate(GRADES):
        users = "" if grade is None else uscc(i) + (f";{uscc(10 + i)}" if i == 1 else "")
        rows.append(
            {
                "parcel_id": f"320799001001GB{i + 1:05d}",
                "park": "海滨高新技术产业园",
                "holder_uscc": uscc(i),
                "holder_name": f"权利人{i}",
                "users": users or None,
                "main_user": uscc(i) if grade else None,
                "main_user_name": (XSS if i == 0 else f"企业{i}") if grade else None,
                "grade": grade,
                "tax_per_mu": [60.0, 25.0, 12.0, 2.5, np.nan, np.nan][i],
                "area_mu": 12.0,
                "block_id": "R0001" if i in (3, 4) else None,
                "geometry": box(x0 + 110 * i, y0, x0 + 110 * i + 100, y0 + 80),
            }
        )
    return gpd.GeoDataFrame(rows, crs="EPSG:4549")


@pytest.fixture
def flags() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flag_id": ["a", "b", "c"],
            "parcel_id": ["320799001001GB00004", "320799001001GB00004", "320799001001GB00006"],
            "flag": ["low_efficiency", "renewal_candidate", "idle_suspected"],
            "flag_label": ["低效用地", "退二优二候选", "疑似闲置"],
            "reason": ["亩均税收 2.50 万元/亩，低于 3.54", SCRIPT_BREAK, "无使用企业"],
            "status": ["confirmed", None, "dismissed"],
            "comment": [None, None, "已现场核查：在建"],
        }
    )


@pytest.fixture
def blocks(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    geom = parcels.geometry.iloc[3].union(parcels.geometry.iloc[4]).buffer(6)
    return gpd.GeoDataFrame(
        {
            "block_id": ["R0001", "R0002", "R0003"],
            "kind": ["连片改造区块", "零星地块", "连片改造区块"],
            "n_parcels": [2, 1, 1],
            "parcel_ids": ["320799001001GB00004;320799001001GB00005", "320799001001GB00006", "320798002001GB00001"],
            "area_mu": [24.0, 12.0, 40.0],
            "n_enterprises": [2, 1, 1],
            "enterprise_names": [f"企业3;{XSS}", "企业5", "别的园区的企业"],
            "grades": ["A:0;B:0;C:0;D:1;T:1;无:0", "A:0;B:0;C:0;D:0;T:0;无:1", "A:0;B:0;C:0;D:1;T:0;无:0"],
            "tax_per_mu": [2.5, np.nan, 1.0],
        },
        geometry=[geom, parcels.geometry.iloc[5], parcels.geometry.iloc[0].buffer(5000).difference(geom)],
        crs=parcels.crs,
    )


@pytest.fixture
def parks(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"园区": ["海滨高新技术产业园"], "县区": ["海滨区"]},
        geometry=[box(*parcels.total_bounds).buffer(50)],
        crs=parcels.crs,
    )


@pytest.fixture
def page(parcels, flags, blocks, parks) -> str:
    return maps.park_map_html(parcels, flags=flags, blocks=blocks, parks=parks, title="海滨高新技术产业园")


def overlay_data(page: str) -> dict[str, dict]:
    """The GeoJSON added to each inline layer, by the key it registers under (parcels, flags, ...)."""
    out = {}
    for m in re.finditer(r"var (geo_json_overlay_\w+) = L\.geoJSON", page):
        name = m.group(1)
        data = re.search(re.escape(name) + r"\.addData\((.*?)\);\n", page, re.S)
        key = re.search(r"geoEval\.layers\[\"(\w+)\"\] = " + re.escape(name) + ";", page)
        assert data and key
        out[key.group(1)] = json.loads(data.group(1))
    return out


def external_urls(page: str) -> set[str]:
    return set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'<>)]*", page))


# --- no CDN, no internet --------------------------------------------------------------------------


def test_no_url_to_any_host_without_basemap(page: str) -> None:
    assert not re.findall(r"https?://", page)
    assert external_urls(page) == set()


def test_every_script_and_stylesheet_is_vendored(page: str) -> None:
    links = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page) + re.findall(r'<link[^>]*\bhref="([^"]+)"', page)
    assert links, "the page loads Leaflet from somewhere"
    for url in links:
        assert url.startswith("/static/vendor/"), url
        assert (VENDOR / url.removeprefix("/static/vendor/")).is_file(), url
    assert "/static/vendor/leaflet/leaflet.js" in links
    assert "/static/vendor/leaflet/leaflet.css" in links


def test_asset_base_is_honoured(parcels) -> None:
    html = maps.park_map_html(parcels, asset_base="/geo/assets/")
    links = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html) + re.findall(r'<link[^>]*\bhref="([^"]+)"', html)
    assert links
    assert all(u.startswith("/geo/assets/") and "//" not in u for u in links)


def test_vendor_folder_holds_every_asset_and_what_its_css_needs() -> None:
    for rel in maps.VENDOR_FILES:
        assert (VENDOR / rel).is_file(), rel
    for css in VENDOR.rglob("*.css"):
        for ref in re.findall(r"url\(['\"]?([^'\")]+)['\"]?\)", css.read_text(encoding="utf-8")):
            if ref.startswith(("data:", "#")):
                continue
            assert not re.match(r"^(https?:)?//", ref), (css, ref)
            assert (css.parent / ref).is_file(), (css, ref)
    # the checksums fetch_assets.sh recorded still match (nobody edited a vendored file by hand)
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        assert hashlib.sha256((VENDOR / rel).read_bytes()).hexdigest() == digest, rel
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    for rel in maps.VENDOR_FILES:
        assert rel in readme, f"{rel} is not listed in api/static/vendor/README.md"


def test_folium_default_links_are_all_mapped() -> None:
    from folium.folium import _default_css, _default_js

    for _, url in [*_default_js, *_default_css]:
        assert url in maps.VENDOR_ASSETS, f"folium links {url}: vendor it and add it to VENDOR_ASSETS"


def test_unknown_external_asset_is_refused(parcels) -> None:
    from folium.elements import JSCSSMixin

    class Plugin(JSCSSMixin):
        def __init__(self) -> None:
            super().__init__()
            self.default_js = [("x", "https://unpkg.com/some-plugin@1.0.0/plugin.js")]

    m = maps.park_map(parcels)
    m.add_child(Plugin())
    with pytest.raises(ValueError, match=r"unpkg\.com"):
        maps.to_html(m)


def test_folium_is_imported_lazily() -> None:
    code = "import sys, geo_eval.maps, geo_eval.tiles, geo_eval.gcj02; print('folium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- colours, legend, layers ----------------------------------------------------------------------


def test_grade_colours_and_legend(page: str) -> None:
    for colour in maps.GRADE_COLOURS.values():
        assert f'"fillColor":"{colour}"' in page
    legend = json.loads(re.search(r"div\.innerHTML = (\".*?\");\n", page).group(1))
    assert "分类（按宗地主要使用企业）" in legend
    for label in maps.GRADE_LEGEND.values():
        assert label in legend
    assert 'A 优先发展类<span class="ge-n">1</span>' in legend
    assert "疑似闲置/低效地块（确认）" in legend
    assert "连片改造区块" in legend
    assert "园区边界" in legend


def test_parcels_are_styled_by_their_grade(page: str) -> None:
    data = overlay_data(page)
    styles = json.loads(re.search(r"var (geo_json_overlay_\w+)_styles = (\[.*?\]);", page).group(2))
    got = {f["properties"]["id"][-1]: styles[f["properties"]["s"]]["fillColor"] for f in data["parcels"]["features"]}
    want = dict(zip("123456", [maps.GRADE_COLOURS[g or "无"] for g in GRADES], strict=True))
    assert got == want


def test_tax_per_mu_bins(parcels) -> None:
    html = maps.park_map_html(parcels, color_by="tax_per_mu")
    legend = json.loads(re.search(r"div\.innerHTML = (\".*?\");\n", html).group(1))
    assert "亩均税收（万元/亩）" in legend
    for label in ("&lt; 5", "5–10", "10–20", "20–30", "30–50", "≥ 50", "无数据"):
        assert label in legend
    styles = json.loads(re.search(r"var geo_json_overlay_\w+_styles = (\[.*?\]);", html).group(1))
    feats = overlay_data(html)["parcels"]["features"]
    fill = [styles[f["properties"]["s"]]["fillColor"] for f in feats]
    colours = maps._tax_colours(maps.TAX_BINS)
    # 60 → ≥ 50, 25 → 20–30, 12 → 10–20, 2.5 → < 5, NaN → no data
    assert fill[:4] == [colours[5], colours[3], colours[2], colours[0]]
    assert fill[4] == fill[5] == maps.NO_DATA_COLOUR
    with pytest.raises(ValueError, match="递增"):
        maps.park_map(parcels, color_by="tax_per_mu", tax_bins=(10, 5))


def test_layers_in_the_layer_control(page: str) -> None:
    control = re.search(r"overlays :  \{(.*?)\}", page, re.S).group(1)
    names = [json.loads(k) for k in re.findall(r'^\s*("[^"]*") : \w+,$', control, re.M)]
    assert names == ["地块", "疑似闲置/低效地块", "连片改造区块", "园区边界"]
    assert set(overlay_data(page)) == {"parcels", "flags", "blocks", "parks"}


def test_flag_layer_holds_flagged_parcels_styled_by_review(page: str) -> None:
    data = overlay_data(page)
    flagged = {f["properties"]["id"]: f["properties"]["s"] for f in data["flags"]["features"]}
    assert set(flagged) == {"320799001001GB00004", "320799001001GB00006"}
    order = list(maps.FLAG_STYLES)
    assert flagged["320799001001GB00004"] == order.index("confirmed")  # confirmed beats pending
    assert flagged["320799001001GB00006"] == order.index("dismissed")
    # only the 连片改造区块 of these parcels are drawn: not the 零星地块, nor another park's block
    assert [f["properties"]["v"][0] for f in data["blocks"]["features"]] == ["R0001"]
    assert "别的园区的企业" not in page


# --- popups, tooltips, escaping -------------------------------------------------------------------


def test_popup_has_the_parcels_figures(page: str) -> None:
    feats = {f["properties"]["id"]: f["properties"] for f in overlay_data(page)["parcels"]["features"]}
    cells = dict(zip([f[0] for f in maps.POPUP_FIELDS], feats["320799001001GB00002"]["v"], strict=True))
    assert cells["parcel_id"] == "320799001001GB00002"
    assert cells["area_mu"] == "12.00"
    assert cells["grade"] == "B 鼓励提升类"
    assert cells["tax_per_mu"] == "25.00"
    assert cells["users"].split("\n") == [f"企业1（{uscc(1)}）", uscc(11)]
    assert cells["holder"] == f"权利人1（{uscc(1)}）"
    d = dict(zip([f[0] for f in maps.POPUP_FIELDS], feats["320799001001GB00004"]["v"], strict=True))
    assert d["flags"].split("\n")[0] == "低效用地：亩均税收 2.50 万元/亩，低于 3.54（确认）"
    assert d["block_id"] == "R0001"
    e = dict(zip([f[0] for f in maps.POPUP_FIELDS], feats["320799001001GB00006"]["v"], strict=True))
    assert e["flags"] == "疑似闲置：无使用企业（排除：已现场核查：在建）"
    assert e["grade"] == "无 无参评使用企业"
    assert "标记 1 项" in feats["320799001001GB00006"]["t"]


def test_every_value_is_escaped(page: str) -> None:
    assert XSS not in page
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the popup and tooltip text
    assert "alert(2)" in page  # the flag reason is there ...
    assert SCRIPT_BREAK not in page  # ... but cannot close the script
    assert page.count("</script>") == page.count("<script")


def test_title_is_escaped(parcels) -> None:
    html = maps.park_map_html(parcels, title=f"园区{XSS}")
    assert XSS not in html
    assert "<title>园区&lt;img src=x onerror=alert(1)&gt;</title>" in html


def test_search_index_names_codes_and_uscc(page: str) -> None:
    cfg = json.loads(re.search(r"var cfg = (\{\"index\".*?\});\n", page).group(1))
    assert cfg["url"] is None
    rows = {r[0]: r for r in cfg["index"]}
    assert len(rows) == 6
    assert rows["320799001001GB00002"][1] == "企业1"
    assert uscc(11) in rows["320799001001GB00002"][2]
    assert rows["320799001001GB00001"][1] == XSS  # shown with textContent, never as HTML
    w, s, e, n = rows["320799001001GB00001"][3:]
    assert 119 < w < e < 120 and 34 < s < n < 35


def test_js_popup_builder_escapes_tile_properties() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the browser-side popup builder is checked with node")
    props = {"parcel_id": "P1", "users": f"{XSS}（{uscc(1)}）\n乙", "grade": "A", "area_mu": 3.14159, "flags": ""}
    script = (
        "globalThis.window = globalThis;\n"
        + maps._JS_HELPERS
        + f"\nconst p = {json.dumps(props)};\n"
        + f"const fields = {json.dumps(maps._fields_js(maps.POPUP_FIELDS))};\n"
        + f"const grades = {json.dumps(maps.GRADE_LEGEND)};\n"
        + "process.stdout.write(JSON.stringify([geoEval.popup(p, fields, grades, false),"
        + " geoEval.popup({grade: 'B', parcel_id: 'P2'}, fields, grades, true)]));\n"
    )
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
    full, light = json.loads(out.stdout)
    assert "&lt;img src=x onerror=alert(1)&gt;" in full
    assert "<img" not in full
    assert "<div>乙</div>" in full
    assert "<td>3.14</td>" in full
    assert "<td>A 优先发展类</td>" in full
    assert "标记" not in full  # empty optional rows are left out
    assert "面积" not in light and "B 鼓励提升类" in light


# --- basemaps and GCJ-02 --------------------------------------------------------------------------


def test_tianditu_needs_a_key_and_names_only_tianditu(parcels) -> None:
    with pytest.raises(ValueError, match="tianditu_key"):
        maps.park_map(parcels, basemap="tianditu")
    with pytest.raises(ValueError, match="tianditu_key"):
        maps.park_map(parcels, basemap="tianditu", tianditu_key="abc'&callback=x")
    key = "0123456789abcdef0123456789abcdef"
    html = maps.park_map_html(parcels, basemap="tianditu", tianditu_key=key)
    hosts = {re.sub(r"^https?://", "", u).split("/")[0] for u in re.findall(r"https?://[^\s\"'<>]+", html)}
    assert hosts == {"t{s}.tianditu.gov.cn"}
    assert f"tk={key}" in html
    # CGCS2000 tiles: our layers are not shifted
    plain = overlay_data(maps.park_map_html(parcels))["parcels"]["features"][0]["geometry"]
    tdt = overlay_data(html)["parcels"]["features"][0]["geometry"]
    assert tdt == plain


def test_gaode_shifts_every_layer_by_the_gcj02_offset(parcels, flags, blocks, parks) -> None:
    plain = maps.park_map_html(parcels, flags=flags, blocks=blocks, parks=parks)
    gaode = maps.park_map_html(parcels, flags=flags, blocks=blocks, parks=parks, basemap="gaode")
    hosts = {re.sub(r"^https?://", "", u).split("/")[0] for u in re.findall(r"https?://[^\s\"'<>]+", gaode)}
    assert hosts == {"webrd0{s}.is.autonavi.com"}
    a, b = overlay_data(plain), overlay_data(gaode)
    for key in ("parcels", "flags", "blocks", "parks"):
        for fa, fb in zip(a[key]["features"], b[key]["features"], strict=True):
            ca = np.array(fa["geometry"]["coordinates"][0][0] if fa["geometry"]["type"] == "Polygon" else [])
            if not len(ca):
                ca = np.array(fa["geometry"]["coordinates"][0][0][0:1])
                cb = np.array(fb["geometry"]["coordinates"][0][0][0:1])
            else:
                cb = np.array(fb["geometry"]["coordinates"][0][0])
            ex, ey = wgs84_to_gcj02(ca[..., 0], ca[..., 1])
            np.testing.assert_allclose(cb[..., 0], ex, atol=2e-6)
            np.testing.assert_allclose(cb[..., 1], ey, atol=2e-6)
            assert np.all(np.abs(cb[..., 0] - ca[..., 0]) > 0.004)  # ≈ 500 m east near Lianyungang
    # the search box jumps to the shifted place too
    ia = json.loads(re.search(r"var cfg = (\{\"index\".*?\});\n", plain).group(1))["index"][0]
    ib = json.loads(re.search(r"var cfg = (\{\"index\".*?\});\n", gaode).group(1))["index"][0]
    assert ib[3] == pytest.approx(float(wgs84_to_gcj02(ia[3], ia[4])[0]), abs=2e-6)


def test_cgcs2000_geographic_input(parcels) -> None:
    a = overlay_data(maps.park_map_html(parcels.to_crs(4326)))["parcels"]["features"]
    b = overlay_data(maps.park_map_html(parcels.to_crs(4490)))["parcels"]["features"]
    assert [f["geometry"] for f in a] == [f["geometry"] for f in b]


def test_input_without_crs_is_refused(parcels) -> None:
    with pytest.raises(ValueError, match="坐标系"):
        maps.park_map(parcels.set_crs(None, allow_override=True))


def test_bad_options_are_refused(parcels) -> None:
    with pytest.raises(ValueError, match="color_by"):
        maps.park_map(parcels, color_by="score")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="basemap"):
        maps.park_map(parcels, basemap="baidu")  # type: ignore[arg-type]


# --- large parks: vector tiles --------------------------------------------------------------------


def test_large_park_draws_parcels_from_vector_tiles(parcels, flags, blocks, parks) -> None:
    url = "/api/tiles/%E6%B5%B7%E6%BB%A8/{z}/{x}/{y}.pbf"
    html = maps.park_map_html(parcels, flags=flags, blocks=blocks, parks=parks, tiles_url=url, tile_threshold=5)
    assert json.dumps(url) in html
    assert '<script src="/static/vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"></script>' in html
    assert "L.vectorGrid.protobuf(cfg.url" in html
    assert "rendererFactory: L.canvas.tile" in html
    assert "_geoEvalClickFix" in html  # Leaflet ≥ 1.8 click fix for VectorGrid's canvas tiles
    # no parcel is inlined: only the blocks and the park outline are GeoJSON
    assert set(overlay_data(html)) == {"blocks", "parks"}
    assert "320799001001GB00002" in html  # ... though the search index knows every parcel
    layers = re.findall(r"var cfg = (\{\"url\".*?\});\n", html)
    modes = {json.loads(c)["mode"] for c in layers}
    assert modes == {"parcels", "flags"}
    assert not re.findall(r"https?://", html)


def test_large_park_search_index_can_be_served(parcels) -> None:
    html = maps.park_map_html(
        parcels, tiles_url="/t/{z}/{x}/{y}.pbf", tile_threshold=5, search_url="/api/maps/p/search.json"
    )
    cfg = json.loads(re.search(r"var cfg = (\{\"index\".*?\});\n", html).group(1))
    assert cfg["index"] is None
    assert cfg["url"] == "/api/maps/p/search.json"
    assert "320799001001GB00002" not in html
    rows = maps.search_index(parcels)
    assert [r[0] for r in rows] == list(parcels["parcel_id"])


def test_large_park_needs_a_tile_url(parcels) -> None:
    with pytest.raises(ValueError, match="tiles_url"):
        maps.park_map(parcels, tile_threshold=5)
    with pytest.raises(ValueError, match="park"):
        maps.park_map(parcels, tile_threshold=5, tiles_url="/api/tiles/{park}/{z}/{x}/{y}.pbf")
    with pytest.raises(ValueError, match="search_url"):
        maps.park_map(parcels, tile_threshold=5, tiles_url="/t/{z}/{x}/{y}", search_url="https://evil.example/s")
    # below the threshold the parcels are inline whatever tiles_url says
    html = maps.park_map_html(parcels, tiles_url="/t/{z}/{x}/{y}.pbf")
    assert "parcels" in overlay_data(html)


# --- the attribute table shared by popups, tiles and search ---------------------------------------


def test_parcel_attributes_names_every_user(parcels, flags) -> None:
    ent = pd.DataFrame({"uscc": [uscc(11)], "name": ["承租企业"]})
    a = maps.parcel_attributes(parcels, flags=flags, enterprises=ent)
    assert a.index.name == "parcel_id"
    assert a.loc["320799001001GB00002", "users"] == f"企业1（{uscc(1)}）\n承租企业（{uscc(11)}）"
    assert a.loc["320799001001GB00002", "names"] == "企业1；承租企业"
    assert a.loc["320799001001GB00004", "n_flags"] == 2
    assert a.loc["320799001001GB00004", "review"] == "confirmed"
    assert a.loc["320799001001GB00006", "review"] == "dismissed"
    assert a.loc["320799001001GB00001", "review"] == ""
    assert a.loc["320799001001GB00006", "grade"] == "无"


def test_flags_without_review_columns(parcels, flags) -> None:
    a = maps.parcel_attributes(parcels, flags=flags.drop(columns=["status", "comment"]))
    assert a.loc["320799001001GB00006", "flags"] == "疑似闲置：无使用企业"
    assert a.loc["320799001001GB00006", "review"] == "pending"


def test_duplicate_parcel_codes_are_refused(parcels) -> None:
    dup = pd.concat([parcels, parcels.iloc[:1]])
    with pytest.raises(ValueError, match="重复"):
        maps.parcel_attributes(dup)
