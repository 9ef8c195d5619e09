"""Park maps rendered to HTML: local assets only, the page's JSON configuration, escaping, basemaps, tiles mode.

The maps are checked the way geopandas checks ``explore``: render the page and assert on what it hands
the browser, the ``<script type="application/json" id="ge-config">`` block that the page's ES modules
(``api/static/js/``, tested in Chromium by tests/test_browser.py) read. A small hand-made park
(EPSG:4549, near Lianyungang) stands in for ``parcels.gpkg``.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box, shape

from geo_eval import maps
from geo_eval.maps.gcj02 import wgs84_to_gcj02
from geo_eval.maps.styles import grade_mix_words, tax_colours

STATIC = Path(__file__).resolve().parents[1] / "api" / "static"
VENDOR = STATIC / "vendor"
XSS = "<img src=x onerror=alert(1)>"
SCRIPT_BREAK = "</script><script>alert(2)</script>"
GRADES = ["A", "B", "C", "D", "T", None]
PARK = "海滨高新技术产业园"


def uscc(i: int) -> str:
    return f"9132070000000{i:04d}X"


def pid(i: int) -> str:
    return f"320799001001GB{i:05d}"


@pytest.fixture
def parcels() -> gpd.GeoDataFrame:
    """Six 100 m × 80 m parcels in a row (12 亩 each), one per grade and one without users."""
    x0, y0 = 440_000.0, 3_830_000.0  # EPSG:4549 (CGCS2000 GK, CM 120°E): about 119.34°E, 34.61°N
    rows = []
    for i, grade in enumerate(GRADES):
        users = "" if grade is None else uscc(i) + (f";{uscc(10 + i)}" if i == 1 else "")
        rows.append(
            {
                "parcel_id": pid(i + 1),
                "park": PARK,
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
    """Rows like the ``flags`` layer of parcels.gpkg (with the review columns the CLI adds)."""
    return pd.DataFrame(
        {
            "flag_id": ["a", "b", "c", "d"],
            "parcel_id": [pid(4), pid(4), pid(6), pid(3)],
            "flag": ["low_efficiency", "renewal_candidate", "idle_suspected", "low_efficiency"],
            "flag_label": ["低效用地", "退二优二候选", "疑似闲置", "低效用地"],
            "rule_id": [
                "low_efficiency.tax_per_mu_fixed",
                "renewal_candidate",
                "idle_suspected.no_enterprise",
                "low_efficiency.plot_ratio",
            ],
            "reason": [
                "亩均税收 2.50 万元/亩，低于 3.54",
                "亩均税收低；D 类企业；容积率低",
                "无使用企业",
                SCRIPT_BREAK,
            ],
            "evidence": [
                "",
                "规则=low_efficiency.grade_d、low_efficiency.tax_per_mu_fixed、low_efficiency.plot_ratio",
                "",
                "",
            ],
            "severity": ["中", "低", "高", "中"],
            "status": ["confirmed", None, "dismissed", "site_visit"],
            "comment": [None, None, "已现场核查：在建", None],
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
            "parcel_ids": [f"{pid(4)};{pid(5)}", pid(6), "320798002001GB00001"],
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
        {"园区": [PARK + SCRIPT_BREAK], "县区": ["海滨区"]},
        geometry=[box(*parcels.total_bounds).buffer(50)],
        crs=parcels.crs,
    )


@pytest.fixture
def page(parcels, flags, blocks, parks) -> str:
    return maps.park_map_html(parcels, flags=flags, blocks=blocks, parks=parks, title=PARK)


CONFIG = re.compile(r'<script type="application/json" id="ge-config">(.*?)</script>', re.S)


def page_config(page: str) -> dict:
    """The page's one JSON configuration block (``ge-config``), parsed."""
    blocks = CONFIG.findall(page)
    assert len(blocks) == 1, f"{len(blocks)} ge-config blocks"
    out: dict = json.loads(blocks[0])
    return out


def features(cfg: dict) -> dict[str, dict]:
    """The inline parcel features by parcel code."""
    assert cfg["parcels"]["mode"] == "inline"
    return {f["properties"]["id"]: f for f in cfg["parcels"]["features"]["features"]}


def cells(feature: dict, fields=maps.POPUP_FIELDS) -> dict[str, str]:
    return dict(zip([f[0] for f in fields], feature["properties"]["v"], strict=True))


def flag_rows(cfg: dict) -> list[dict]:
    return [dict(zip(cfg["flagColumns"], r, strict=True)) for r in cfg["flagRows"]]


def external_urls(page: str) -> set[str]:
    return set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'<>)]*", page))


def asset_links(page: str) -> list[str]:
    return re.findall(r'<script[^>]*\bsrc="([^"]+)"', page) + re.findall(r'<link[^>]*\bhref="([^"]+)"', page)


def hosts(page: str) -> set[str]:
    return {re.sub(r"^https?://", "", u).split("/")[0] for u in re.findall(r"https?://[^\s\"'<>\\]+", page)}


# --- no CDN, no internet --------------------------------------------------------------------------


def test_no_url_to_any_host_without_basemap(page: str) -> None:
    assert not re.findall(r"https?://", page)
    assert external_urls(page) == set()
    assert page_config(page)["basemaps"] == []


def test_every_script_and_stylesheet_is_served_by_the_service(page: str) -> None:
    links = asset_links(page)
    assert "/static/vendor/leaflet/leaflet.js" in links
    assert "/static/vendor/leaflet/leaflet.css" in links
    assert "/static/js/map.js" in links and "/static/css/map.css" in links
    for url in links:
        assert url.startswith("/static/"), url
        assert (STATIC / url.removeprefix("/static/")).is_file(), url
    assert len(links) == 4  # folium's jQuery, Bootstrap and icon fonts are dropped
    # the page's script is an ES module; the map's stylesheet comes after Leaflet's, so it overrides it
    assert '<script type="module" src="/static/js/map.js"></script>' in page
    assert page.index("/static/vendor/leaflet/leaflet.css") < page.index("/static/css/map.css")


def test_the_page_modules_import_only_their_siblings() -> None:
    modules = sorted((STATIC / "js").glob("*.js"))
    assert {m.name for m in modules} >= {"map.js", "layers.js", "popup.js", "panel.js", "reviews.js", "chrome.js"}
    imported: set[str] = set()
    for m in modules:
        text = m.read_text(encoding="utf-8")
        for spec in re.findall(r"""^\s*import\b[^;]*?\bfrom\s+["']([^"']+)["']""", text, re.M | re.S):
            assert spec.startswith("./"), (m.name, spec)
            assert (m.parent / spec).is_file(), (m.name, spec)
            imported.add(spec.removeprefix("./"))
        assert not re.findall(r"""\bimport\s*\(|https?://(?!www\.w3\.org/)""", text), m.name
    # every module is reached from a page's entry module: map.js (the maps), objections.js (/objections)
    assert imported | {"map.js", "objections.js"} == {m.name for m in modules}
    css = (STATIC / "css" / "map.css").read_text(encoding="utf-8")
    assert "@import" not in css and not re.findall(r"url\(\s*['\"]?(?:https?:)?//", css)


def test_asset_and_app_bases_are_honoured(parcels) -> None:
    page = maps.park_map_html(parcels, asset_base="/geo/assets/", app_base="/geo/app/")
    links = asset_links(page)
    assert sorted(links) == sorted(
        [
            "/geo/assets/leaflet/leaflet.js",
            "/geo/assets/leaflet/leaflet.css",
            "/geo/app/js/map.js",
            "/geo/app/css/map.css",
        ]
    )
    assert not any("//" in u for u in links)


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
    code = "import sys, geo_eval.maps, geo_eval.maps.tiles, geo_eval.maps.gcj02; print('folium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_javascript_is_built_in_python(page: str) -> None:
    """The only inline script is folium's own map set-up; the page's behaviour is the ES module."""
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", page, re.S)
    code = [body for attrs, body in inline if 'type="application/json"' not in attrs]
    assert len(code) == 2  # folium's L_NO_TOUCH flags and its L.map(...) call
    assert all("geoEval" not in c and "innerHTML" not in c and "addData" not in c for c in code)
    assert sum("L.map(" in c for c in code) == 1
    assert page_config(page)["map"] in "".join(code)  # the module takes folium's map by its name


def test_viewport_allows_pinch_zoom(page: str) -> None:
    metas = re.findall(r'<meta name="viewport"[^>]*>', page)
    assert metas == ['<meta name="viewport" content="width=device-width, initial-scale=1">']
    assert "user-scalable" not in page and "maximum-scale" not in page


# --- the configuration: colours, legend, layers -----------------------------------------------------


def test_grade_colours_and_legend_counts(page: str) -> None:
    cfg = page_config(page)
    assert cfg["colorBy"] == "grade"
    assert cfg["grades"] == [[g, maps.GRADE_COLOURS[g], maps.GRADE_LEGEND[g], 1] for g in maps.GRADE_COLOURS]
    assert cfg["grades"][0] == ["A", "#2e7d32", "A 优先发展类", 1]
    assert cfg["maxZoom"] == maps.MAX_ZOOM == 19
    assert cfg["statusLabels"] == {
        "pending": "待复核",
        "site_visit": "待核查",
        "confirmed": "确认",
        "dismissed": "排除",
    }
    assert cfg["statusOrder"][0] == "pending"
    assert set(cfg["flagStyles"]) == set(cfg["statusLabels"])
    # every state is drawn differently, and none like a renewal block's outline
    looks = {(s["color"], s["dashArray"], s["hatch"]) for s in cfg["flagStyles"].values()}
    assert len(looks) == 4
    assert cfg["blockStyle"]["color"] not in {s["color"] for s in cfg["flagStyles"].values()}


def test_legend_counts_other_grades_too(parcels) -> None:
    cfg = page_config(maps.park_map_html(parcels.assign(grade=["A", "A", "X", None, None, None])))
    counts = {row[0]: row[3] for row in cfg["grades"]}
    assert counts == {"A": 2, "B": 0, "C": 0, "D": 0, "T": 0, "无": 3, "X": 1}
    assert cfg["grades"][-1] == ["X", cfg["otherColour"], "X", 1]


def test_parcels_carry_their_grade_and_tax(page: str) -> None:
    feats = features(page_config(page))
    assert {k: f["properties"]["g"] for k, f in feats.items()} == {pid(i + 1): g or "无" for i, g in enumerate(GRADES)}
    assert [feats[pid(i)]["properties"]["x"] for i in range(1, 5)] == [60.0, 25.0, 12.0, 2.5]
    assert feats[pid(5)]["properties"]["x"] is None and feats[pid(6)]["properties"]["x"] is None


def test_tax_per_mu_bins(parcels) -> None:
    cfg = page_config(maps.park_map_html(parcels, color_by="tax_per_mu"))
    assert cfg["colorBy"] == "tax_per_mu"
    tax = cfg["tax"]
    assert tax["bins"] == list(maps.TAX_BINS)
    assert tax["labels"] == ["< 5", "5–10", "10–20", "20–30", "30–50", "≥ 50"]
    assert tax["colours"] == tax_colours(maps.TAX_BINS) and len(set(tax["colours"])) == 6
    # 60 → ≥ 50, 25 → 20–30, 12 → 10–20, 2.5 → < 5, two without a figure
    assert tax["counts"] == [1, 0, 1, 1, 0, 1]
    assert tax["noDataCount"] == 2 and tax["noData"] == maps.styles.NO_DATA_COLOUR
    own = page_config(maps.park_map_html(parcels, color_by="tax_per_mu", tax_bins=(10.0, 30.0)))["tax"]
    assert own["labels"] == ["< 10", "10–30", "≥ 30"] and own["counts"] == [1, 2, 1]
    with pytest.raises(ValueError, match="递增"):
        maps.park_map(parcels, color_by="tax_per_mu", tax_bins=(10, 5))
    with pytest.raises(ValueError, match="不超过"):
        maps.park_map(parcels, tax_bins=tuple(range(1, 10)))


def test_layers_flagged_parcels_blocks_and_parks(page: str) -> None:
    cfg = page_config(page)
    feats = features(cfg)
    assert cfg["parcels"]["count"] == len(feats) == 6
    flagged = {k: f["properties"]["f"] for k, f in feats.items() if f["properties"]["f"]}
    assert flagged == {pid(4): 2, pid(6): 1, pid(3): 1}
    # only the 连片改造区块 of these parcels are drawn: not the 零星地块, nor another park's block
    assert [f["properties"]["id"] for f in cfg["blocks"]["features"]] == ["R0001"]
    assert "别的园区的企业" not in page
    assert [f["properties"]["t"] for f in cfg["parks"]["features"]] == [PARK + SCRIPT_BREAK]
    # the view fits the parcels and the park outline (50 m around them)
    (s, w), (n, e) = cfg["bounds"]
    outline = shapely.total_bounds([shape(f["geometry"]) for f in cfg["parks"]["features"]])
    assert (w, s, e, n) == pytest.approx(tuple(outline), abs=1e-6)


def test_a_block_popup_says_its_class_mix_in_words(page: str) -> None:
    block = page_config(page)["blocks"]["features"][0]["properties"]
    c = cells({"properties": block}, maps.BLOCK_FIELDS)
    assert c["block_id"] == "R0001" and c["n_parcels"] == "2" and c["area_mu"] == "24.00"
    assert c["enterprise_names"] == "企业3\n&lt;img src=x onerror=alert(1)&gt;"
    assert c["grade_mix"] == "A 类 0 宗、B 类 0 宗、C 类 0 宗、D 类 1 宗、T 类 1 宗、无参评企业 0 宗"
    assert block["t"] == "连片改造区块 R0001 · 24.00 亩"


def test_grade_mix_words() -> None:
    assert (
        grade_mix_words("A:0;B:1;C:0;D:2;T:0;无:3")
        == "A 类 0 宗、B 类 1 宗、C 类 0 宗、D 类 2 宗、T 类 0 宗、无参评企业 3 宗"
    )
    assert grade_mix_words(" A : 2 ; 无:1 ") == "A 类 2 宗、无参评企业 1 宗"
    assert grade_mix_words("A:1;;garbage;:3;B:0") == "A 类 1 宗、B 类 0 宗"  # malformed items are skipped
    assert grade_mix_words(None) == grade_mix_words("") == grade_mix_words(float("nan")) == ""


# --- popups, the review list, escaping -----------------------------------------------------------


def test_popup_has_the_parcels_figures(page: str) -> None:
    feats = features(page_config(page))
    b = cells(feats[pid(2)])
    assert b["parcel_id"] == pid(2) and b["park"] == PARK
    assert b["area_mu"] == "12.00"
    assert b["grade"] == "B 鼓励提升类"
    assert b["tax_per_mu"] == "25.00"
    assert b["users"].split("\n") == [f"企业1（{uscc(1)}）", uscc(11)]
    assert b["holder"] == f"权利人1（{uscc(1)}）"
    assert b["block_id"] == ""
    assert cells(feats[pid(4)])["block_id"] == "R0001"
    f = cells(feats[pid(6)])
    assert f["grade"] == "无 无参评使用企业" and f["users"] == "" and f["tax_per_mu"] == ""
    assert feats[pid(6)]["properties"]["t"] == f"{pid(6)} · 无 无参评使用企业 · 标记 1 项"
    assert feats[pid(2)]["properties"]["t"] == f"{pid(2)} · 企业1 · B 鼓励提升类"


def test_the_page_hands_the_browser_escaped_popup_cells(parcels, flags, page: str) -> None:
    """What the page's script puts into the popup with innerHTML is exactly :func:`maps.popup_cells`."""
    attrs = maps.parcel_attributes(parcels, flags=flags)
    for code, f in features(page_config(page)).items():
        assert f["properties"]["v"] == maps.popup_cells(attrs.loc[code]), code
        for cell in f["properties"]["v"]:
            assert "<" not in cell and ">" not in cell, code
    a = cells(features(page_config(page))[pid(1)])
    assert a["users"] == f"&lt;img src=x onerror=alert(1)&gt;（{uscc(0)}）"
    assert html.unescape(a["users"]) == f"{XSS}（{uscc(0)}）"


def test_popup_cells_escape_and_format_each_field() -> None:
    row = {
        "parcel_id": "P1",
        "users": f"{XSS}（{uscc(1)}）\n乙",
        "grade": "A",
        "prev_grade": "B",
        "area_mu": 3.14159,
        "holder": "甲&乙",
    }
    got = dict(zip([f[0] for f in maps.POPUP_FIELDS], maps.popup_cells(row), strict=True))
    assert got == {
        "parcel_id": "P1",
        "park": "",
        "area_mu": "3.14",
        "holder": "甲&amp;乙",
        "users": f"&lt;img src=x onerror=alert(1)&gt;（{uscc(1)}）\n乙",
        "grade": "A 优先发展类",
        "prev_grade": "B 鼓励提升类",
        "tax_per_mu": "",
        "block_id": "",
    }
    quoted = maps.popup_cells({"parcel_id": "\"'><svg onload=x>"}, maps.POPUP_FIELDS[:1])
    assert quoted == ["&quot;&#x27;&gt;&lt;svg onload=x&gt;"]
    assert maps.popup_cells({"area_mu": 1234567.891}, maps.POPUP_FIELDS[2:3]) == ["1,234,567.89"]
    assert maps.popup_cells({"area_mu": "不是数"}, maps.POPUP_FIELDS[2:3]) == [""]


def test_every_value_is_escaped(page: str) -> None:
    assert XSS not in page
    assert "<img" not in page and "<svg" not in page
    assert "alert(2)" in page  # the flag reason and the park name are there ...
    assert SCRIPT_BREAK not in page  # ... but cannot close the script
    assert page.count("</script>") == page.count("<script")
    cfg = page_config(page)
    # text the page sets as text arrives as it is; HTML cells arrive escaped
    assert any(r[1] == XSS for r in cfg["search"]["index"])
    assert XSS in features(cfg)[pid(1)]["properties"]["t"]
    assert {r["flag_id"]: r["reason"] for r in flag_rows(cfg)}["d"] == SCRIPT_BREAK


def test_the_configuration_cannot_close_its_script(page: str) -> None:
    raw = CONFIG.search(page).group(1)
    assert not set(raw) & {"<", ">", "&", "\u2028", "\u2029"}
    nasty = {"a": "</script><!--<script>", "b": "\u2028\u2029&amp;", "c": ["<\\/script>", "]]>"]}
    text = maps.script_json(nasty)
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(text) == nasty
    with pytest.raises(ValueError):
        maps.script_json({"x": float("nan")})  # not valid JSON: refused rather than written


def test_title_is_escaped(parcels) -> None:
    title = f"园区{XSS}{SCRIPT_BREAK}"
    page = maps.park_map_html(parcels, title=title)
    assert XSS not in page and SCRIPT_BREAK not in page
    assert re.search(r"<title>(.*?)</title>", page).group(1) == html.escape(title)
    assert page_config(page)["title"] == title  # the page sets it as text
    assert page.count("</script>") == page.count("<script")


def test_search_index_names_codes_and_uscc(page: str) -> None:
    search = page_config(page)["search"]
    assert search["url"] is None
    assert search["placeholder"] == "搜索企业、信用代码、宗地代码"
    rows = {r[0]: r for r in search["index"]}
    assert len(rows) == 6
    assert rows[pid(2)][1] == "企业1"
    assert rows[pid(2)][2].split() == [uscc(1), uscc(11)]
    assert rows[pid(1)][1] == XSS  # shown with textContent, never as HTML
    w, s, e, n = rows[pid(1)][3:]
    assert 119 < w < e < 120 and 34 < s < n < 35


# --- the review list: flag_index --------------------------------------------------------------------


def test_flag_rows_in_the_page_without_a_service(parcels, flags, blocks, parks, page: str) -> None:
    cfg = page_config(page)
    assert cfg["flagColumns"] == list(maps.FLAG_INDEX_COLUMNS)
    assert cfg["service"] is None
    rows = flag_rows(cfg)
    assert [r["flag_id"] for r in rows] == ["a", "b", "c", "d"]
    # review states are not in the page (the page polls them from the service): the page of flags
    # without review columns, or with other decisions, is the same page
    assert "已现场核查" not in page
    unreviewed = flags.drop(columns=["status", "comment"])
    other = flags.assign(status=["dismissed", "confirmed", None, None], comment=["理由", "好", None, None])
    for f in (unreviewed, other):
        again = page_config(maps.park_map_html(parcels, flags=f, blocks=blocks, parks=parks, title=PARK))
        assert {k: v for k, v in again.items() if k != "map"} == {k: v for k, v in cfg.items() if k != "map"}


def test_flag_index_rows(parcels, flags) -> None:
    shown = maps.to_display(parcels, gcj02=False)
    attrs = maps.parcel_attributes(parcels, flags=flags)
    rows = [dict(zip(maps.FLAG_INDEX_COLUMNS, r, strict=True)) for r in maps.flag_index(flags, shown, attrs)]
    assert [(r["flag_id"], r["parcel_id"], r["flag"]) for r in rows] == [
        ("a", pid(4), "low_efficiency"),
        ("b", pid(4), "renewal_candidate"),
        ("c", pid(6), "idle_suspected"),
        ("d", pid(3), "low_efficiency"),
    ]
    # rule names in Chinese, never the rule id; 退二优二 says how many rules it meets
    assert [r["rule"] for r in rows] == [
        "低效用地·亩均税收（低于限值）",
        "退二优二候选",
        "疑似闲置·无使用企业",
        "低效用地·容积率",
    ]
    assert [r["reason"] for r in rows] == [
        "亩均税收 2.50 万元/亩，低于 3.54",
        "符合 3 项规则",
        "无使用企业",
        SCRIPT_BREAK,
    ]
    assert [r["severity"] for r in rows] == ["中", "低", "高", "中"]
    assert [r["holder"] for r in rows] == ["权利人3", "权利人3", "权利人5", "权利人2"]
    assert all(r["area_mu"] == 12.0 and r["park"] == PARK for r in rows)
    geoms = dict(zip(shown["parcel_id"], shown.geometry, strict=True))
    for r in rows:
        g = geoms[r["parcel_id"]]
        assert g.contains(Point(r["lon"], r["lat"])), r  # where the popup opens: inside the parcel
        assert (r["west"], r["south"], r["east"], r["north"]) == pytest.approx(g.bounds, abs=1e-6)


def test_flag_index_holder_falls_back_to_the_main_user_and_skips_other_parcels(parcels, flags) -> None:
    p = parcels.drop(columns=["holder_uscc", "holder_name"])
    some = p.iloc[:4]
    shown = maps.to_display(some, gcj02=False)
    rows = maps.flag_index(flags, shown, maps.parcel_attributes(some, flags=flags))
    out = {r[0]: dict(zip(maps.FLAG_INDEX_COLUMNS, r, strict=True)) for r in rows}
    assert set(out) == {"a", "b", "d"}  # flag c is on a parcel that is not on this map
    assert out["a"]["holder"] == "企业3" and out["d"]["holder"] == "企业2"
    assert maps.flag_index(flags.iloc[:0], shown, maps.parcel_attributes(some)) == []


def test_flag_index_point_lies_inside_a_concave_parcel(parcels, flags) -> None:
    """An L-shaped parcel's centre lies outside it; the review list's point must not."""
    x0, y0 = parcels.total_bounds[:2]
    ell = shapely.Polygon(
        [(x0, y0), (x0 + 100, y0), (x0 + 100, y0 + 10), (x0 + 10, y0 + 10), (x0 + 10, y0 + 100), (x0, y0 + 100)]
    )
    one = parcels.iloc[[3]].set_geometry([ell], crs=parcels.crs)
    shown = maps.to_display(one, gcj02=False)
    assert not shown.geometry.iloc[0].contains(shown.geometry.iloc[0].centroid)
    rows = maps.flag_index(flags, shown, maps.parcel_attributes(one, flags=flags))
    for r in rows:
        lon, lat = r[maps.FLAG_INDEX_COLUMNS.index("lon")], r[maps.FLAG_INDEX_COLUMNS.index("lat")]
        assert shown.geometry.iloc[0].contains(Point(lon, lat))


# --- basemaps and GCJ-02 --------------------------------------------------------------------------


def coords(geometry: dict) -> np.ndarray:
    return shapely.get_coordinates(shape(geometry))


def test_tianditu_needs_a_key_and_names_only_tianditu(parcels, flags) -> None:
    with pytest.raises(ValueError, match="tianditu_key"):
        maps.park_map(parcels, basemap="tianditu")
    with pytest.raises(ValueError, match="tianditu_key"):
        maps.park_map(parcels, basemap="tianditu", tianditu_key="abc'&callback=x")
    key = "0123456789abcdef0123456789abcdef"
    page = maps.park_map_html(parcels, flags=flags, basemap="tianditu", tianditu_key=key)
    assert hosts(page) == {"t{s}.tianditu.gov.cn"}
    assert f"tk={key}" in page
    cfg = page_config(page)
    assert [(b["label"], b["overlay"], b["show"]) for b in cfg["basemaps"]] == [
        ("天地图 矢量", False, True),
        ("天地图 影像", False, False),
        ("天地图 注记", True, True),
    ]
    for b in cfg["basemaps"]:
        assert f"var {b['var']} = L.tileLayer(" in page
    # CGCS2000 tiles: our layers are not shifted
    plain = page_config(maps.park_map_html(parcels, flags=flags))
    assert features(cfg) == features(plain)
    assert cfg["flagRows"] == plain["flagRows"] and cfg["search"] == plain["search"]


def test_gaode_shifts_every_layer_by_the_gcj02_offset(parcels, flags, blocks, parks) -> None:
    plain = page_config(maps.park_map_html(parcels, flags=flags, blocks=blocks, parks=parks))
    page = maps.park_map_html(parcels, flags=flags, blocks=blocks, parks=parks, basemap="gaode")
    assert hosts(page) == {"webrd0{s}.is.autonavi.com"}
    gaode = page_config(page)
    assert [b["label"] for b in gaode["basemaps"]] == ["高德地图"]
    assert "GCJ-02" in page

    def assert_shifted(a: np.ndarray, b: np.ndarray) -> None:
        ex, ey = wgs84_to_gcj02(a[..., 0], a[..., 1])
        np.testing.assert_allclose(b[..., 0], ex, atol=2e-6)
        np.testing.assert_allclose(b[..., 1], ey, atol=2e-6)
        assert np.all(np.abs(b[..., 0] - a[..., 0]) > 0.004)  # ≈ 500 m east near Lianyungang

    layers = [
        (
            [f["geometry"] for f in plain["parcels"]["features"]["features"]],
            [f["geometry"] for f in gaode["parcels"]["features"]["features"]],
        ),
        ([f["geometry"] for f in plain["blocks"]["features"]], [f["geometry"] for f in gaode["blocks"]["features"]]),
        ([f["geometry"] for f in plain["parks"]["features"]], [f["geometry"] for f in gaode["parks"]["features"]]),
    ]
    for a, b in layers:
        assert len(a) == len(b) > 0
        for ga, gb in zip(a, b, strict=True):
            assert_shifted(coords(ga), coords(gb))
    # the review list's points and boxes, the search box and the initial view move with them
    ra, rb = flag_rows(plain), flag_rows(gaode)
    assert len(ra) == len(rb) == 4
    for x, y in zip(ra, rb, strict=True):
        assert_shifted(np.array([[x["lon"], x["lat"]]]), np.array([[y["lon"], y["lat"]]]))
        assert_shifted(
            np.array([[x["west"], x["south"]], [x["east"], x["north"]]]),
            np.array([[y["west"], y["south"]], [y["east"], y["north"]]]),
        )
    for ia, ib in zip(plain["search"]["index"], gaode["search"]["index"], strict=True):
        assert_shifted(np.array([ia[3:5], ia[5:7]]), np.array([ib[3:5], ib[5:7]]))
    (s, w), (n, e) = gaode["bounds"]
    assert (w, s, e, n) == pytest.approx(
        tuple(shapely.total_bounds([shape(f["geometry"]) for f in gaode["parks"]["features"]])), abs=1e-6
    )


def test_cgcs2000_geographic_input(parcels, flags) -> None:
    a = page_config(maps.park_map_html(parcels.to_crs(4326), flags=flags))
    b = page_config(maps.park_map_html(parcels.to_crs(4490), flags=flags))
    assert features(a) == features(b)
    assert a["flagRows"] == b["flagRows"] and a["bounds"] == b["bounds"]
    # and a projected CGCS2000 input lands in the same place (to 1e-6°, about 0.1 m)
    c = features(page_config(maps.park_map_html(parcels, flags=flags)))
    for k, f in features(a).items():
        np.testing.assert_allclose(coords(f["geometry"]), coords(c[k]["geometry"]), atol=1.5e-6)


def test_input_without_crs_is_refused(parcels) -> None:
    with pytest.raises(ValueError, match="坐标系"):
        maps.park_map(parcels.set_crs(None, allow_override=True))


def test_bad_options_are_refused(parcels) -> None:
    with pytest.raises(ValueError, match="color_by"):
        maps.park_map(parcels, color_by="score")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="basemap"):
        maps.park_map(parcels, basemap="baidu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="search_url"):
        maps.park_map(parcels, search_url="//evil.example/s")


# --- large parks: vector tiles --------------------------------------------------------------------


def test_large_park_draws_parcels_from_vector_tiles(parcels, flags, blocks, parks) -> None:
    url = "/api/tiles/%E6%B5%B7%E6%BB%A8/{z}/{x}/{y}.pbf"
    page = maps.park_map_html(parcels, flags=flags, blocks=blocks, parks=parks, tiles_url=url, tile_threshold=5)
    cfg = page_config(page)
    assert cfg["parcels"] == {
        "mode": "tiles",
        "url": url,
        "minZoom": 11,
        "detailZoom": maps.TILE_DETAIL_ZOOM,
        "prebuilt": False,
    }
    prebuilt = page_config(
        maps.park_map_html(parcels, tiles_url=url, tile_threshold=5, tiles_min_zoom=6, tiles_prebuilt=True)
    )
    assert (prebuilt["parcels"]["minZoom"], prebuilt["parcels"]["prebuilt"]) == (6, True)
    assert '<script src="/static/vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"></script>' in page
    # no parcel is inlined: only the blocks and the park outline are GeoJSON
    assert "features" not in cfg["parcels"]
    assert len(cfg["blocks"]["features"]) == 1 and len(cfg["parks"]["features"]) == 1
    assert '"v":["320799001001GB' not in page
    assert [r[0] for r in cfg["search"]["index"]] == [pid(i) for i in range(1, 7)]  # the search box knows them
    assert cfg["search"]["url"] is None
    assert not re.findall(r"https?://", page)


def test_a_tiled_service_page_reads_only_the_legend_columns(parcels, flags, monkeypatch) -> None:
    """A tiled page whose popups, search and review list the service serves skips the popup texts
    (``legend_attributes``), and its legends are those the full attributes give."""
    from geo_eval.maps import page as page_module

    enterprises = pd.DataFrame(
        {
            "uscc": [uscc(i) for i in range(4)],
            "name": [f"企业{i}" for i in range(4)],
            "grade": ["A", "B", "C", "D"],
            "prev_grade": ["B", "B", "A", None],
            "grade_change": ["上升", "持平", "下降", "新参评"],
        }
    )
    legend = maps.legend_attributes(parcels, enterprises=enterprises)
    full = maps.parcel_attributes(parcels, enterprises=enterprises)
    pd.testing.assert_frame_equal(legend, full[list(maps.attributes.LEGEND_COLUMNS)])
    assert list(legend["change"]) == ["up", "same", "down", "new", "none", "none"]
    assert list(legend["grade"]) == ["A", "B", "C", "D", "T", "无"]
    options = {
        "flags": flags,
        "enterprises": enterprises,
        "tiles_url": "/t/{z}/{x}/{y}.pbf",
        "tile_threshold": 5,
        "search_url": "/api/maps/p/search.json",
        "service": {"urls": {"flags": "/api/maps/p/flags.json"}},
    }
    calls: list[str] = []
    monkeypatch.setattr(page_module, "parcel_attributes", lambda *a, **k: calls.append("full") or full)
    served = page_config(maps.park_map_html(parcels, **options))
    assert calls == []  # the popup texts were not written
    inline = page_config(maps.park_map_html(parcels, **{**options, "service": None}))
    assert calls == ["full"]  # the page carries its review list: it needs them
    for key in ("grades", "tax", "changes"):
        assert served[key] == inline[key], key
    assert [(g[0], g[-1]) for g in served["grades"]] == [(g, 1) for g in ("A", "B", "C", "D", "T", "无")]


@pytest.mark.parametrize("tiled", [False, True])
def test_template_syntax_in_the_data_is_shown_as_written_never_evaluated(parcels, flags, tiled) -> None:
    names = ["{{ '甲乙' * 3 }}", "{% if x %}", "{# c", "{{ self.__init__.__globals__ }}"]
    parcels.loc[parcels.index[:4], "holder_name"] = names
    parcels.loc[parcels.index[1], "main_user_name"] = "企业{{ '丙丁' * 2 }}"
    options = {"tiles_url": "/t/{z}/{x}/{y}.pbf", "tile_threshold": 2, "search_url": "/s.json"} if tiled else {}
    page = maps.park_map_html(parcels, flags=flags, title="{{ '戊' * 2 }}", **options)
    assert not any(s in page for s in ("甲乙甲乙", "丙丁丙丁", "戊戊")) and "__globals__ }}" in page
    text = html.unescape(json.dumps(page_config(page), ensure_ascii=False))  # popup cells are HTML-escaped
    if not tiled:  # the popups are in the page: the names as written
        assert all(n in text for n in names[:3]) and "企业{{ '丙丁' * 2 }}" in text
    assert "{{ &#39;戊&#39; * 2 }}" in page or "{{ '戊' * 2 }}" in page


def test_large_park_search_index_can_be_served(parcels, flags) -> None:
    page = maps.park_map_html(
        parcels, tiles_url="/t/{z}/{x}/{y}.pbf", tile_threshold=5, search_url="/api/maps/p/search.json"
    )
    search = page_config(page)["search"]
    assert search["index"] is None
    assert search["url"] == "/api/maps/p/search.json"
    assert pid(2) not in page
    rows = maps.search_index(parcels)
    assert [r[0] for r in rows] == list(parcels["parcel_id"])
    # the index reads only the names and codes, the same as the popup attributes hold
    e = pd.DataFrame({"uscc": [uscc(i) for i in range(12)], "name": [f"企业{i}" for i in range(12)]})
    full = maps.search_index(parcels, attributes=maps.parcel_attributes(parcels, flags=flags, enterprises=e))
    assert maps.search_index(parcels, flags=flags, enterprises=e) == full
    assert full[1][1] == "企业1；企业11" and full[1][2] == f"{uscc(1)} {uscc(11)}"
    # below the threshold the search URL is not used: the index is in the page
    small = page_config(maps.park_map_html(parcels, search_url="/api/maps/p/search.json"))["search"]
    assert small["url"] is None and len(small["index"]) == 6


def test_large_park_needs_a_tile_url(parcels) -> None:
    with pytest.raises(ValueError, match="tiles_url"):
        maps.park_map(parcels, tile_threshold=5)
    with pytest.raises(ValueError, match="park"):
        maps.park_map(parcels, tile_threshold=5, tiles_url="/api/tiles/{park}/{z}/{x}/{y}.pbf")
    with pytest.raises(ValueError, match="search_url"):
        maps.park_map(parcels, tile_threshold=5, tiles_url="/t/{z}/{x}/{y}", search_url="https://evil.example/s")
    # below the threshold the parcels are inline whatever tiles_url says
    cfg = page_config(maps.park_map_html(parcels, tiles_url="/t/{z}/{x}/{y}.pbf"))
    assert cfg["parcels"]["mode"] == "inline" and len(features(cfg)) == 6
    # tile_threshold=None never switches
    big = page_config(maps.park_map_html(parcels, tile_threshold=None))
    assert big["parcels"]["mode"] == "inline"


def test_service_configuration_is_handed_through(parcels, flags) -> None:
    service = {"run": {"id": "r1", "year": 2025}, "park": PARK, "poll": 10, "urls": {"flags": "/api/maps/x/flags.json"}}
    cfg = page_config(maps.park_map_html(parcels, flags=flags, service=service))
    assert cfg["service"] == service
    assert cfg["flagRows"] is None  # the service serves the review list: it is not inlined
    assert cfg["flagColumns"] == list(maps.FLAG_INDEX_COLUMNS)


# --- the attribute table shared by popups, tiles and search ---------------------------------------


def test_parcel_attributes_names_every_user(parcels, flags) -> None:
    ent = pd.DataFrame({"uscc": [uscc(11)], "name": ["承租企业"]})
    a = maps.parcel_attributes(parcels, flags=flags, enterprises=ent)
    assert a.index.name == "parcel_id"
    assert a.loc[pid(2), "users"] == f"企业1（{uscc(1)}）\n承租企业（{uscc(11)}）"
    assert a.loc[pid(2), "names"] == "企业1；承租企业"
    assert a.loc[pid(4), "n_flags"] == 2
    assert a.loc[pid(4), "review"] == "pending"  # flag b was never reviewed: 待复核 beats 确认
    assert a.loc[pid(6), "review"] == "dismissed"
    assert a.loc[pid(3), "review"] == "site_visit"
    assert a.loc[pid(1), "review"] == ""
    assert a.loc[pid(6), "grade"] == "无"
    assert a.loc[pid(6), "flags"] == "疑似闲置：无使用企业（排除：已现场核查：在建）"
    assert a.loc[pid(4), "flags"].split("\n") == [
        "低效用地：亩均税收 2.50 万元/亩，低于 3.54（确认）",
        "退二优二候选：亩均税收低；D 类企业；容积率低（待复核）",
    ]


def test_flags_without_review_columns(parcels, flags) -> None:
    a = maps.parcel_attributes(parcels, flags=flags.drop(columns=["status", "comment"]))
    assert a.loc[pid(6), "flags"] == "疑似闲置：无使用企业"
    assert a.loc[pid(6), "review"] == "pending"


def test_duplicate_parcel_codes_are_refused(parcels) -> None:
    dup = pd.concat([parcels, parcels.iloc[:1]])
    with pytest.raises(ValueError, match="重复"):
        maps.parcel_attributes(dup)
    with pytest.raises(ValueError, match=pid(1)):
        maps.park_map(dup)
