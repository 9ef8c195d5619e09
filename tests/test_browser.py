"""The park maps in a real headless Chromium, against the real service (``geo-eval serve``).

The sample park's 2025 data is evaluated with one enterprise renamed ``<img src=x onerror=alert(1)>``
(the main user of a flagged parcel of 海滨高新技术产业园), registered and served on 127.0.0.1 with
users made by ``geo-eval users add``. Playwright drives Debian's Chromium (``/usr/bin/chromium``;
``playwright install`` is never run). Without that browser the tests are skipped with a message:
install it with ``apt-get install chromium`` (``.ci/run`` does).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openpyxl
import pyogrio
import pytest

from geo_eval.io.run import run
from geo_eval.scheme import load_scheme

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PARK = "海滨高新技术产业园"
OTHER_PARK = "青松经济开发区"
XSS = "<img src=x onerror=alert(1)>"
GEO_EVAL = Path(sys.executable).with_name("geo-eval")

if not CHROMIUM.is_file():
    pytest.skip(
        "浏览器测试需要 Debian 的 Chromium（/usr/bin/chromium）：请以 root 运行 apt-get install chromium"
        "（.ci/run 会自动安装）",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="浏览器测试需要 Playwright 的 Python 包：pip install -e '.[dev]'"
)


# --- the service ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_dataset(root: Path) -> Path:
    """The 2025 sample copied to ``root`` (its context layers referenced by absolute path)."""
    src = ROOT / "sample_parcels" / "2025"
    shutil.copytree(src, root)
    toml = (root / "dataset.toml").read_text(encoding="utf-8")
    toml = toml.replace('"../../layers/', f'"{(ROOT / "layers").as_posix()}/')
    (root / "dataset.toml").write_text(toml, encoding="utf-8")
    return root


def rename_enterprise(xlsx: Path, uscc: str, name: str) -> None:
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["企业数据"]
    header_row = next(r for r in ws.iter_rows(min_row=1, max_row=5) if r[0].value == "统一社会信用代码")
    code_col = 0
    name_col = next(i for i, c in enumerate(header_row) if c.value == "企业名称")
    hits = 0
    for row in ws.iter_rows(min_row=header_row[0].row + 1):
        if row[code_col].value == uscc:
            row[name_col].value = name
            hits += 1
    assert hits == 1, uscc
    wb.save(xlsx)


def cli(*args: str, env: dict[str, str]) -> str:
    r = subprocess.run([str(GEO_EVAL), *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@dataclass
class Server:
    url: str
    port: int
    tokens: dict[str, str]
    flagged_parcel: str
    out: Path
    log: Path
    requests: list[str] = field(default_factory=list)

    def api(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("browser")
    ds = sample_dataset(base / "dataset")
    scheme = load_scheme("lianyungang")
    # find a flagged parcel of the park with a main user, then give that user the hostile name
    run(ds, scheme, base / "first")
    flags = pyogrio.read_dataframe(base / "first" / "parcels.gpkg", layer="flags", read_geometry=False)
    parcels = pyogrio.read_dataframe(base / "first" / "parcels.gpkg", layer="parcels", read_geometry=False)
    flagged = set(flags.loc[flags["park"] == PARK, "parcel_id"])
    cand = parcels.loc[parcels["parcel_id"].isin(flagged) & parcels["main_user"].notna() & (parcels["park"] == PARK)]
    target = cand.sort_values("area_mu", ascending=False).iloc[0]
    rename_enterprise(ds / "enterprises.xlsx", str(target["main_user"]), XSS)
    out = base / "out"
    run(ds, scheme, out)

    data_dir = base / "data"
    env = {
        **os.environ,
        "GEO_EVAL_DATA_DIR": str(data_dir),
        "GEO_EVAL_SECRET_KEY": secrets.token_urlsafe(48),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GEO_EVAL_DEMO", None)
    cli("runs", "add", str(out), env=env)
    tokens = {
        "rev": cli("users", "add", "复核员", "--role", "reviewer", env=env).splitlines()[-1],
        "com": cli("users", "add", "海滨管委会", "--role", "committee", "--park", PARK, env=env).splitlines()[-1],
    }
    port = free_port()
    log = base / "server.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [str(GEO_EVAL), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=base,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"geo-eval serve did not start:\n{log.read_text()}")
        time.sleep(0.2)
    try:
        yield Server(url, port, tokens, str(target["parcel_id"]), out, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text()
    assert "Traceback" not in text, text
    for token in tokens.values():
        assert token not in text


@pytest.fixture(scope="module")
def browser(server) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Tab:
    page: Any
    requests: list[str]
    dialogs: list[str]
    errors: list[str]


@pytest.fixture
def tab(browser, server) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    requests: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    context.on("request", lambda req: requests.append(req.url))
    page = context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield Tab(page, requests, dialogs, errors)
    context.close()
    assert any("/static/vendor/leaflet/leaflet.js" in u for u in requests), "requests were not recorded"
    outside = [u for u in requests if not u.startswith((server.url + "/", "data:"))]
    assert not outside, f"the page requested something outside the service: {outside[:5]}"
    assert not dialogs, f"a dialog fired: {dialogs}"


def sign_in(tab: Tab, server: Server, who: str, name: str, path: str) -> None:
    page = tab.page
    page.goto(server.url + path)
    assert "/login?next=" in page.url
    page.fill("#name", name)
    page.fill("#token", server.tokens[who])
    with page.expect_navigation():
        page.click("button[type=submit]")


def wait_for_map(page: Any) -> None:
    # functions, not strings: a string predicate would need eval, which the page's CSP forbids
    page.wait_for_function("() => window.geoEval && geoEval.map && geoEval.readyAt > 0", timeout=30_000)


def park_path(park: str = PARK, query: str = "") -> str:
    return f"/maps/{quote(park, safe='')}{query}"


def open_popup_of(page: Any, parcel_id: str, layer: str = "flags") -> str:
    """Zoom to a parcel, click the middle of it like a user, and return the popup's text."""
    point = page.evaluate(
        """([pid, key]) => {
          var found = null;
          geoEval.layers[key].eachLayer(function (l) { if (l.feature.properties.id === pid) { found = l; } });
          if (!found) { return null; }
          geoEval.map.closePopup();
          geoEval.map.fitBounds(found.getBounds(), {maxZoom: 18, animate: false});
          var c = found.getCenter();
          var pt = geoEval.map.latLngToContainerPoint(c);
          var box = geoEval.map.getContainer().getBoundingClientRect();
          return {x: box.left + pt.x, y: box.top + pt.y};
        }""",
        [parcel_id, layer],
    )
    assert point, f"parcel {parcel_id} is not on layer {layer}"
    page.wait_for_timeout(200)
    page.mouse.click(point["x"], point["y"])
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=10_000)
    return str(popup.inner_text())


# --- tests ------------------------------------------------------------------------------------------------
def test_sign_in_and_the_park_map_draws_its_parcels(tab, server):
    sign_in(tab, server, "rev", "复核员", park_path())
    page = tab.page
    assert page.url == server.url + park_path()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["geo_eval_session"]["httpOnly"]
    assert server.tokens["rev"] not in cookies["geo_eval_session"]["value"]
    wait_for_map(page)
    drawn = page.evaluate("geoEval.drawn")
    assert drawn > 0
    n_parcels = page.evaluate("geoEval.layers.parcels.getLayers().length")
    assert n_parcels > 100 and page.locator("path.leaflet-interactive").count() > 100
    assert PARK in page.title()
    assert "A 优先发展类" in page.locator(".ge-legend").inner_text()
    assert not tab.errors, tab.errors


def test_flagged_parcel_popup_shows_its_figures_and_the_hostile_name_as_text(tab, server):
    sign_in(tab, server, "rev", "复核员", park_path())
    page = tab.page
    wait_for_map(page)
    text = open_popup_of(page, server.flagged_parcel)
    assert server.flagged_parcel in text
    assert "宗地代码" in text and "标记" in text and "待审核" in text
    assert XSS in text  # shown as text …
    assert page.locator(".leaflet-popup-content img").count() == 0  # … not as an element
    page.wait_for_timeout(300)
    assert not tab.dialogs


def test_search_box_finds_the_hostile_name_as_text(tab, server):
    sign_in(tab, server, "rev", "复核员", park_path())
    page = tab.page
    wait_for_map(page)
    page.fill(".ge-search input", "onerror")
    item = page.locator(".ge-search li").first
    item.wait_for()
    assert XSS in item.inner_text()
    assert page.locator(".ge-search img").count() == 0
    item.click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert server.flagged_parcel in popup.inner_text()


def layer_checkbox(page: Any, name: str) -> Any:
    """The checkbox of an overlay in the layer control, by its exact name."""
    control = page.locator(".leaflet-control-layers")
    return control.locator("label").filter(has=page.get_by_text(name, exact=True)).locator("input")


def test_layer_control_switches_layers(tab, server):
    sign_in(tab, server, "rev", "复核员", park_path())
    page = tab.page
    wait_for_map(page)
    labels = [s.strip() for s in page.locator(".leaflet-control-layers label").all_inner_texts()]
    assert {"地块", "疑似闲置/低效地块", "连片改造区块", "园区边界"} <= set(labels), labels
    flags = layer_checkbox(page, "疑似闲置/低效地块")
    assert page.evaluate("geoEval.map.hasLayer(geoEval.layers.flags)")
    flags.uncheck()
    assert not page.evaluate("geoEval.map.hasLayer(geoEval.layers.flags)")
    flags.check()
    assert page.evaluate("geoEval.map.hasLayer(geoEval.layers.flags)")
    shown = page.locator(".leaflet-overlay-pane path.leaflet-interactive").count()
    parcels = layer_checkbox(page, "地块")
    parcels.uncheck()
    assert not page.evaluate("geoEval.map.hasLayer(geoEval.layers.parcels)")
    n = page.evaluate("geoEval.layers.parcels.getLayers().length")
    assert page.locator(".leaflet-overlay-pane path.leaflet-interactive").count() == shown - n
    parcels.check()
    assert page.evaluate("geoEval.map.hasLayer(geoEval.layers.parcels)")
    assert page.locator(".leaflet-overlay-pane path.leaflet-interactive").count() == shown


def flag_style(page: Any, parcel_id: str) -> dict[str, Any]:
    return page.evaluate(
        """(pid) => {
          var s = null;
          geoEval.layers.flags.eachLayer(function (l) {
            if (l.feature.properties.id === pid) { s = {dash: l.options.dashArray || null, weight: l.options.weight}; }
          });
          return s;
        }""",
        parcel_id,
    )


def test_confirming_a_flag_through_the_api_changes_the_map(tab, server):
    sign_in(tab, server, "rev", "复核员", park_path())
    page = tab.page
    wait_for_map(page)
    pid = server.flagged_parcel
    before = flag_style(page, pid)
    assert before == {"dash": "6 4", "weight": 2.5}  # pending: dashed
    with server.api("rev") as api:
        flags = api.get("/api/flags", params={"park": PARK, "limit": 10_000}).json()["features"]
        mine = [f for f in flags if f["properties"]["parcel_id"] == pid]
        assert mine
        for f in mine:
            review = f["properties"]["review"]
            body = {"status": "confirmed", "comment": "现场核查属实", "version": review["version"]}
            r = api.patch(f"/api/flags/{f['id']}", json=body)
            assert r.status_code == 200, r.text
            # the same version again is a conflict, not an overwrite
            assert api.patch(f"/api/flags/{f['id']}", json=body).status_code == 409
    page.reload()
    wait_for_map(page)
    after = flag_style(page, pid)
    assert after == {"dash": None, "weight": 3.5}  # confirmed: solid, heavier
    text = open_popup_of(page, pid)
    assert "确认：现场核查属实" in text
    assert "疑似闲置/低效地块（确认）" in page.locator(".ge-legend").inner_text()


def test_committee_sees_its_park_only(tab, server):
    sign_in(tab, server, "com", "海滨管委会", "/maps/")
    page = tab.page
    wait_for_map(page)
    ids = page.evaluate("geoEval.layers.parcels.getLayers().map(function (l) { return l.feature.properties.id; })")
    parks = set(
        pyogrio.read_dataframe(server.out / "parcels.gpkg", layer="parcels", read_geometry=False)
        .set_index("parcel_id")
        .loc[ids, "park"]
    )
    assert parks == {PARK}
    response = page.goto(server.url + park_path(OTHER_PARK))
    assert response is not None and response.status == 403
    assert OTHER_PARK in page.content()
    tile = page.request.get(f"{server.url}/api/tiles/{quote(OTHER_PARK, safe='')}/14/13618/6512.pbf")
    assert tile.status == 403
    response = page.goto(server.url + park_path())
    assert response is not None and response.status == 200


def test_large_park_mode_draws_vector_tiles_and_their_popups(tab, server):
    sign_in(tab, server, "rev", "复核员", park_path(query="?tiles=1"))
    page = tab.page
    wait_for_map(page)
    page.wait_for_function("() => geoEval.firstTileAt > 0", timeout=30_000)
    assert page.evaluate("geoEval.layers.parcels instanceof L.VectorGrid")
    tile_requests = [u for u in tab.requests if "/api/tiles/" in u]
    assert tile_requests and all("&v=" in u and "run=" in u for u in tile_requests)
    # zoom to the hostile parcel at detail level and click it: the tile popup escapes the name too
    with server.api("rev") as api:
        rows = api.get(f"/api/maps/{quote(PARK, safe='')}/search.json").json()
    row = next(r for r in rows if r[0] == server.flagged_parcel)
    page.evaluate(
        """(r) => {
          geoEval.tilesLoadedAt = 0;
          geoEval.map.setView(L.latLngBounds([r[4], r[3]], [r[6], r[5]]).getCenter(), 17, {animate: false});
        }""",
        row,
    )
    page.wait_for_function("() => geoEval.tilesLoadedAt > 0", timeout=30_000)
    # the parcels layer itself must have drawn its tiles at this zoom (not only the flags layer)
    page.wait_for_function(
        "() => geoEval.map.hasLayer(geoEval.layers.parcels) && !geoEval.layers.parcels.isLoading()", timeout=30_000
    )
    page.wait_for_timeout(500)
    box = page.locator(".folium-map").bounding_box()
    popup = page.locator(".leaflet-popup-content")
    # Both tile layers (parcels, flags) load the same URLs; under load the parcels layer may draw a
    # moment after the first "loaded" event, so click again until its popup opens (bounded).
    opened = False
    for _ in range(3):
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        try:
            popup.wait_for(timeout=3_000)
            opened = True
            break
        except sync_api.TimeoutError:
            page.wait_for_timeout(500)
    if not opened:
        # Canvas hit-testing of VectorGrid is timing-dependent under load: fall back to the layer's own
        # click event with the feature as decoded from the loaded tile (which must contain it).
        found = page.evaluate(
            """(pid) => {
              const layer = geoEval.layers.parcels;
              for (const tile of Object.values(layer._vectorTiles || {})) {
                const f = (tile._features || {})[pid];
                if (f) { layer.fire("click", {layer: f.feature, latlng: geoEval.map.getCenter()}); return true; }
              }
              return false;
            }""",
            server.flagged_parcel,
        )
        assert found, "the flagged parcel is not in the loaded vector tiles"
    popup.wait_for(timeout=10_000)
    text = popup.inner_text()
    assert server.flagged_parcel in text and "宗地代码" in text
    assert XSS in text and page.locator(".leaflet-popup-content img").count() == 0
    # switching the parcels layer off removes its tiles
    layer_checkbox(page, "地块").uncheck()
    assert not page.evaluate("geoEval.map.hasLayer(geoEval.layers.parcels)")
