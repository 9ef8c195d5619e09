"""The service's own pages: offline ``/docs``, ``/favicon.ico``, Chinese error pages for browsers (JSON for
scripts), Chinese validation messages, ``Cache-Control: no-store`` on HTML.

A module-scoped app over the catalogue evaluated and registered, split into two parks, with one user per
role (httpx ``TestClient``); a probe app whose extra routes raise each tabled error and an unexpected
one; and ``/docs`` in headless Chromium against ``geo-eval serve`` (skipped without
``/usr/bin/chromium``, failed instead when ``GEO_EVAL_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import runpy
import secrets
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

import catalogue
import httpx
import pandas as pd
import pytest
from fastapi import Query
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from serving import CHROMIUM, CHROMIUM_ARGS, GEO_EVAL, playwright_api, serving

from api.app import FAVICON, create_app
from api.errors import Busy, Forbidden, InvalidQuery, NotFound
from api.pages import PAGE_CSP
from api.security import COOKIE_NAME, sign_session
from api.settings import Settings
from api.validation import translate
from geo_eval.io.run import run
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import StorageError, open_store, run_record_from_out_dir

ROOT = Path(__file__).resolve().parents[1]
PARK_A = "海滨高新技术产业园"
PARK_B = "青松经济开发区"
SECRET = "p" * 48
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}
SWAGGER = "/static/vendor/swagger-ui/"


@dataclass
class Service:
    app: Any
    client: TestClient
    tokens: dict[str, str]
    flag_id: str

    def h(self, who: str, accept: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **(accept or {})}

    def browser(self, who: str | None = None) -> TestClient:
        """A browser: accepts HTML first, signed in through the login form when ``who`` is given."""
        client = TestClient(self.app, headers=HTML)  # no `with`: the module's client owns the lifespan
        if who is not None:
            r = client.post(
                "/login",
                data={"name": who, "token": self.tokens[who], "next": "/"},
                headers={"Origin": "http://testserver"},  # a browser sends it with the form of this site
                follow_redirects=False,
            )
            assert r.status_code == 303, r.text
        return client


@pytest.fixture(scope="module")
def svc(tmp_path_factory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("pages")
    p = catalogue.parcels()
    e = catalogue.enterprises()
    p.loc[p["parcel_id"].isin(["P4", "P5", "P6", "P7", "P8"]), "park"] = PARK_B
    e.loc[e["uscc"].isin([catalogue.E[i] for i in (6, 7, 8, 9)]), "park"] = PARK_B
    ds = catalogue.write_dataset(base / "ds", parcels_gdf=p, enterprises_df=e)
    run(ds, load_scheme("huaian-2024"), base / "out")
    store = open_store(base / "data")
    store.add_run(run_record_from_out_dir(base / "out"), actor="test")
    tokens = {
        "rev": store.add_user("rev", "reviewer", [])[1],
        "comA": store.add_user("comA", "committee", [PARK_A])[1],
        "admin": store.add_user("admin", "admin", [])[1],
    }
    store.close()
    flag_id = str(pd.read_csv(base / "out" / "flags.csv", encoding="utf-8-sig", dtype=str)["flag_id"].iloc[0])
    app = create_app(Settings(data_dir=base / "data", secret_key=SECRET, cookie_secure=False))
    with TestClient(app) as client:
        yield Service(app, client, tokens, flag_id)


def links_of(page: str) -> list[str]:
    return re.findall(r'<(?:script|link|img)[^>]*\b(?:src|href)="([^"]+)"', page)


# --- /docs without internet --------------------------------------------------------------------------------
def test_docs_names_only_assets_of_the_service_and_each_is_served(svc):
    r = svc.client.get("/docs", headers=svc.h("rev", HTML))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://", r.text), "a CDN link is left in /docs"
    assets = links_of(r.text)
    assert sorted(assets) == [
        SWAGGER + "favicon-32x32.png",
        SWAGGER + "swagger-ui-bundle.js",
        SWAGGER + "swagger-ui.css",
    ]
    vendor = ROOT / "api" / "static" / "vendor" / "swagger-ui"
    for url in assets:
        asset = svc.client.get(url)
        assert asset.status_code == 200, url
        assert asset.content == (vendor / url.removeprefix(SWAGGER)).read_bytes()
    assert (
        svc.client.get(SWAGGER + "swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert "url: '/openapi.json'" in r.text and '"validatorUrl": null' in r.text
    # the spec it reads is still there, and documents the API (not the pages of the app itself)
    paths = svc.client.get("/openapi.json", headers=svc.h("rev")).json()["paths"]
    assert "/api/flags" in paths and "/docs" not in paths and "/favicon.ico" not in paths


def test_docs_need_a_signed_in_user_and_redoc_leads_to_them(svc):
    r = svc.browser().get("/docs", follow_redirects=False)  # no token, no cookie
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/docs"
    assert svc.browser("rev").get("/docs").status_code == 200
    r = svc.client.get("/redoc", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/docs"
    oauth = svc.client.get("/docs/oauth2-redirect")
    assert oauth.status_code == 200 and not re.search(r"https?://", oauth.text)


def test_vendored_swagger_ui_is_listed_with_its_checksums_and_licence():
    vendor = ROOT / "api" / "static" / "vendor"
    lines = (vendor / "SHA256SUMS").read_text().splitlines()
    sums = {rel: digest for digest, rel in (line.split(maxsplit=1) for line in lines)}
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"):
        rel = f"swagger-ui/{name}"
        assert hashlib.sha256((vendor / rel).read_bytes()).hexdigest() == sums[rel], rel
    assert "Apache License" in (vendor / "swagger-ui" / "LICENSE").read_text()
    assert "swagger-ui-dist@$SWAGGER_UI" in (vendor / "fetch_assets.sh").read_text()
    assert "`swagger-ui/swagger-ui-bundle.js`" in (vendor / "README.md").read_text()


# --- /favicon.ico ------------------------------------------------------------------------------------------
def ico_images(data: bytes) -> dict[int, bytes]:
    """The PNG images of an ICO file by their width."""
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1)
    images = {}
    for i in range(count):
        width, _h, _c, _r, _planes, _bpp, size, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * i)
        images[width or 256] = data[offset : offset + size]
    return images


def png_rgba(png: bytes) -> tuple[int, list[bytes]]:
    """Width and RGBA rows of an 8-bit RGBA, unfiltered PNG."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert (depth, colour) == (8, 6)
    idat = b"".join(
        png[m.start() + 4 : m.start() + 4 + struct.unpack(">I", png[m.start() - 4 : m.start()])[0]]
        for m in re.finditer(b"IDAT", png)
    )
    raw = zlib.decompress(idat)
    stride = 1 + 4 * width
    rows = [raw[y * stride : (y + 1) * stride] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, [row[1:] for row in rows]


def test_favicon_is_served_cached_and_drawn_by_its_script(svc):
    r = svc.client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    assert r.headers["cache-control"] == "public, max-age=2592000"
    assert r.content == FAVICON.read_bytes()
    made = runpy.run_path(str(ROOT / "api" / "static" / "make_favicon.py"))["ico"]()
    assert r.content == made, "favicon.ico differs from what api/static/make_favicon.py draws"
    images = ico_images(r.content)
    assert sorted(images) == [16, 32]
    width, rows = png_rgba(images[32])
    assert width == 32

    def pixel(x: int, y: int) -> tuple[int, ...]:
        return tuple(rows[y][4 * x : 4 * x + 4])

    assert pixel(0, 0)[3] == 0  # a transparent rounded corner
    assert pixel(16, 2) == (0x1F, 0x6F, 0xEB, 255)  # the blue frame
    assert pixel(10, 10) == (255, 255, 255, 255)  # a white parcel
    assert pixel(21, 21) == (0xF5, 0xA5, 0x24, 255)  # the amber (flagged) parcel


# --- error pages for browsers, JSON for scripts -------------------------------------------------------------
def assert_error_page(r: httpx.Response, status: int, title: str, *phrases: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == PAGE_CSP
    assert r.headers["cache-control"] == "no-store"
    page = r.text
    assert f"<title>{title} · 亩均效益评价</title>" in page and f"<h1>{title}</h1>" in page
    assert '<a class="primary" href="/">返回首页</a>' in page and "返回上一页</a>" in page
    for phrase in phrases:
        assert phrase in page, phrase
    assert '"detail"' not in page and not re.search(r"https?://", page)
    return page


def test_unknown_page_is_a_chinese_page_for_a_browser_and_json_for_a_script(svc):
    assert_error_page(svc.browser().get("/nirgends"), 404, "页面不存在", "没有这个页面或接口：/nirgends")
    head = svc.browser().head("/nirgends")  # HEAD is a navigation too
    assert head.status_code == 404 and head.headers["content-type"].startswith("text/html")
    for headers in (JSON, {"Accept": "*/*"}, {}):
        r = svc.client.get("/nirgends", headers=headers)
        assert r.status_code == 404 and r.json() == {"detail": "没有这个页面或接口：/nirgends", "error": "NotFound"}
    # API paths answer JSON even to a browser
    for path in ("/api/nirgends", f"/api/flags/{quote('P1:nope')}"):
        r = svc.browser("rev").get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", path
        assert set(r.json()) == {"detail", "error"}


def test_wrong_method_is_405_in_chinese(svc):
    assert_error_page(svc.browser("rev").get("/logout"), 405, "不支持此操作", "/logout 不支持 GET 请求")
    r = svc.client.delete("/health")
    assert r.status_code == 405 and r.json() == {"detail": "/health 不支持 DELETE 请求", "error": "MethodNotAllowed"}
    assert r.headers["allow"] == "GET"


def test_refused_park_is_a_403_page_for_a_browser(svc):
    page = svc.browser("comA").get(f"/maps/{quote(PARK_B)}")
    assert_error_page(page, 403, "无权访问", f"无权查看园区“{PARK_B}”的数据")
    r = svc.client.get(f"/api/rankings?park={quote(PARK_B)}", headers=svc.h("comA", HTML))
    assert r.status_code == 403
    assert r.json() == {"detail": f"无权查看园区“{PARK_B}”的数据", "error": "Forbidden"}


def test_error_page_escapes_what_it_shows(svc):
    r = svc.browser().get("/<script>alert(1)</script>")
    page = assert_error_page(r, 404, "页面不存在")
    assert "<script>alert(1)" not in page and "/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # the page's only script is its own (allowed by hash in its CSP)
    assert page.count("<script>") == 1 and "history.back()" in page


def test_back_link_goes_to_the_referring_page_of_this_site_only(svc):
    browser = svc.browser()
    here = browser.get("/nirgends", headers={"Referer": "http://testserver/maps/?year=2025"})
    assert 'id="back" href="/maps/?year=2025"' in here.text
    elsewhere = browser.get("/nirgends", headers={"Referer": "https://evil.example/maps/"})
    assert 'id="back" href="/"' in elsewhere.text


def test_signed_out_browser_is_still_sent_to_the_login_page(svc):
    r = svc.browser().get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
    r = svc.client.get("/api/me", headers=HTML)
    assert r.status_code == 401 and r.json()["error"] == "Unauthorized"


def test_storage_failure_is_a_503_page_for_a_browser(tmp_path):
    class Broken:
        def get_user(self, name):
            raise StorageError("数据库不可用")

        def close(self):
            pass

    app = create_app(Settings(data_dir=tmp_path, secret_key=SECRET), store=Broken())  # type: ignore[arg-type]
    client = TestClient(app, headers=HTML)
    client.cookies.set(COOKIE_NAME, sign_session(SECRET, "rev", "t1"))
    assert_error_page(client.get("/"), 503, "服务暂不可用", "数据库不可用")


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> TestClient:
    """An app with routes that raise each kind of error, under a page path and under /api/."""
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("probe"), secret_key=SECRET))
    errors: dict[str, Exception] = {
        "forbidden": Forbidden("无权操作：需要角色 admin"),
        "missing": NotFound("没有这个标记：X"),
        "busy": Busy("已有评价在运行"),
        "invalid": InvalidQuery("bbox 须为四个数"),
        "storage": StorageError("数据库不可用"),
        "bug": RuntimeError("secret internals /srv/geo-eval/data"),
    }

    def raiser(exc: Exception) -> Any:
        def route() -> None:
            raise exc

        return route

    for name, exc in errors.items():
        app.add_api_route(f"/probe/{name}", raiser(exc))
        app.add_api_route(f"/api/probe/{name}", raiser(exc))

    def page_with_year(year: Annotated[int, Query(ge=1900)]) -> HTMLResponse:
        return HTMLResponse(f"<p>{year}</p>")

    app.add_api_route("/probe/page", page_with_year)
    return TestClient(app, raise_server_exceptions=False)


PROBES = [
    ("forbidden", 403, "无权访问", "无权操作：需要角色 admin", "Forbidden"),
    ("missing", 404, "页面不存在", "没有这个标记：X", "NotFound"),
    ("busy", 409, "操作冲突", "已有评价在运行", "Busy"),
    ("invalid", 422, "请求无效", "bbox 须为四个数", "InvalidQuery"),
    ("storage", 503, "服务暂不可用", "数据库不可用", "StorageError"),
]


@pytest.mark.parametrize(("name", "status", "title", "message", "error"), PROBES)
def test_each_tabled_error_is_a_page_for_a_browser_and_unchanged_json_for_a_script(
    probe, name, status, title, message, error
):
    assert_error_page(probe.get(f"/probe/{name}", headers=HTML), status, title, message)
    for path, headers in ((f"/probe/{name}", JSON), (f"/api/probe/{name}", HTML)):
        r = probe.get(path, headers=headers)
        assert r.status_code == status and r.json() == {"detail": message, "error": error}
    # POST is never a navigation
    assert probe.post(f"/probe/{name}", headers=HTML).headers["content-type"] == "application/json"


def test_an_unexpected_error_is_a_500_without_its_traceback_which_goes_to_the_log(probe, caplog):
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        page = assert_error_page(probe.get("/probe/bug", headers=HTML), 500, "服务出错", "服务内部出错")
        r = probe.get("/api/probe/bug", headers=HTML)
    assert "secret internals" not in page and "Traceback" not in page
    assert r.status_code == 500 and r.json()["error"] == "InternalServerError"
    assert "secret internals" not in r.text and "服务内部出错" in r.json()["detail"]
    assert r.headers["x-content-type-options"] == "nosniff"  # the answer passed the other middleware
    logged = [rec for rec in caplog.records if rec.name == "api.errors" and rec.exc_info]
    assert len(logged) == 2 and "GET /probe/bug" in logged[0].getMessage()
    assert isinstance(logged[0].exc_info[1], RuntimeError) and "secret internals" in caplog.text


def test_invalid_query_of_a_page_is_a_422_page_listing_the_field(probe):
    page = assert_error_page(probe.get("/probe/page?year=abc", headers=HTML), 422, "请求无效")
    assert "请求参数有误：year — 须为整数。" in page
    assert probe.get("/probe/page?year=2025", headers=HTML).text == "<p>2025</p>"


# --- validation messages in Chinese ---------------------------------------------------------------------------
def test_query_validation_error_is_one_chinese_sentence_and_a_list(svc):
    r = svc.client.get("/api/rankings?year=abc", headers=svc.h("rev"))
    assert r.status_code == 422
    assert r.json() == {
        "detail": "请求参数有误：year — 须为整数。",
        "error": "RequestValidationError",
        "errors": [{"loc": ["query", "year"], "field": "year", "msg": "须为整数", "type": "int_parsing"}],
    }
    r = svc.client.get("/api/rankings?year=1800", headers=svc.h("rev"))
    assert r.json()["detail"] == "请求参数有误：year — 须不小于 1900。"
    r = svc.client.get("/api/flags/download?format=pdf", headers=svc.h("rev"))
    assert r.json()["detail"] == "请求参数有误：format — 须为以下之一：xlsx、csv。"


def test_body_validation_errors_in_chinese(svc):
    h = svc.h("admin")
    r = svc.client.post("/api/users", json={"name": "x", "role": "root", "extra": 1}, headers=h)
    assert r.status_code == 422
    body = r.json()
    assert body["detail"] == "请求参数有误：role — 须为以下之一：reviewer、committee、admin；extra — 不允许的字段。"
    assert [(e["field"], e["type"]) for e in body["errors"]] == [
        ("role", "literal_error"),
        ("extra", "extra_forbidden"),
    ]
    r = svc.client.post("/api/users", json={"name": "", "role": "admin"}, headers=h)
    assert r.json()["detail"] == "请求参数有误：name — 不能为空。"
    r = svc.client.post("/api/users", json={"name": "n" * 65, "role": "admin"}, headers=h)
    assert r.json()["detail"] == "请求参数有误：name — 长度不能超过 64 个字符。"
    r = svc.client.post("/api/users", content=b'{"name": ', headers={**h, "Content-Type": "application/json"})
    assert r.json()["detail"] == "请求参数有误：请求体不是有效的 JSON。"
    assert r.json()["errors"][0]["field"] is None
    r = svc.client.post("/api/users", headers=h)
    assert r.json()["detail"] == "请求参数有误：缺少请求体（JSON）。"
    r = svc.client.post("/api/users", json={"role": "admin", "replace": "vielleicht"}, headers=h)
    assert r.json()["detail"] == "请求参数有误：name — 缺少必填项；replace — 须为 true 或 false。"


def test_validator_message_loses_pydantics_english_prefix(svc):
    r = svc.client.patch(
        f"/api/flags/{quote(svc.flag_id)}",
        json={"status": "dismissed", "comment": " ", "version": 0},
        headers=svc.h("rev"),
    )
    assert r.status_code == 422
    (problem,) = r.json()["errors"]
    assert "理由" in problem["msg"] and "排除" in problem["msg"]
    assert not re.search(r"[A-Z][a-z]+ (error|failed), ", r.text)
    assert r.json()["detail"] == f"请求参数有误：{problem['msg'].rstrip('。')}。"


class Probe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = 0
    x: float = 0.0
    flag: bool = False
    ge: Annotated[int, Field(ge=1)] = 1
    le: Annotated[int, Field(le=9)] = 1
    gt: Annotated[float, Field(gt=0)] = 1
    lt: Annotated[float, Field(lt=0.5)] = 0
    short: Annotated[str, Field(min_length=3)] = "abc"
    items: Annotated[list[int], Field(max_length=2)] = []
    kind: Literal["a", "b"] = "a"
    sub: dict[str, int] = {}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"n": "drei"}, "n", "须为整数"),
        ({"n": 1.5}, "n", "须为整数"),
        ({"x": "viel"}, "x", "须为数字"),
        ({"flag": "vielleicht"}, "flag", "须为 true 或 false"),
        ({"ge": 0}, "ge", "须不小于 1"),
        ({"le": 10}, "le", "须不大于 9"),
        ({"gt": 0}, "gt", "须大于 0"),
        ({"lt": 0.5}, "lt", "须小于 0.5"),
        ({"short": "ab"}, "short", "长度至少 3 个字符"),
        ({"items": [1, 2, 3]}, "items", "最多 2 项"),
        ({"items": [1, "x"]}, "items[1]", "须为整数"),
        ({"kind": "c"}, "kind", "须为以下之一：a、b"),
        ({"sub": []}, "sub", "须为 JSON 对象"),
        ({"other": 1}, "other", "不允许的字段"),
    ],
)
def test_each_mapped_pydantic_error_reads_in_chinese(data, field, message):
    with pytest.raises(ValidationError) as caught:
        Probe.model_validate(data)
    (problem,) = translate(caught.value.errors())
    assert (problem["field"], problem["msg"]) == (field, message)


def test_an_unmapped_error_type_keeps_pydantics_message():
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(Annotated[str, Field(pattern=r"^\d+$")]).validate_python("x")
    assert translate(caught.value.errors())[0]["msg"] == "格式不正确"
    import uuid

    with pytest.raises(ValidationError) as caught:
        TypeAdapter(uuid.UUID).validate_python("not-a-uuid")
    (error,) = caught.value.errors()
    assert translate([error])[0]["msg"] == error["msg"] and error["type"] == "uuid_parsing"


# --- Cache-Control: no-store ----------------------------------------------------------------------------------
def test_pages_and_api_me_are_not_stored_by_the_browser(svc):
    browser = svc.browser("rev")
    for path in ("/", "/maps/", "/nirgends", "/docs"):
        r = browser.get(path)
        assert r.headers["content-type"].startswith("text/html"), path
        assert r.headers["cache-control"] == "no-store", path
    login = svc.browser().get("/login")
    assert login.status_code == 200 and login.headers["cache-control"] == "no-store"
    for page in (browser.get("/").text, login.text):  # no page of the service links another host
        assert not re.search(r"https?://", page)
    me = browser.get("/api/me", headers=JSON)
    assert me.status_code == 200 and me.json()["user"]["name"] == "rev"
    assert me.headers["cache-control"] == "no-store"
    # static files and other JSON keep their own caching
    assert "no-store" not in svc.client.get(SWAGGER + "swagger-ui.css").headers.get("cache-control", "")
    assert "cache-control" not in svc.client.get("/api/runs", headers=svc.h("rev")).headers
    assert svc.client.get("/favicon.ico").headers["cache-control"] == "public, max-age=2592000"


# --- /docs in a real browser, offline ------------------------------------------------------------------------
@dataclass
class Served:
    url: str
    token: str


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """``geo-eval serve`` on a free port of 127.0.0.1, with one reviewer and no run (/docs needs none)."""
    base = tmp_path_factory.mktemp("served")
    env = {
        **os.environ,
        "GEO_EVAL_DATA_DIR": str(base / "data"),
        "GEO_EVAL_SECRET_KEY": secrets.token_urlsafe(48),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GEO_EVAL_DEMO", None)
    env.pop("GEO_EVAL_DATABASE_URL", None)
    added = subprocess.run(
        [str(GEO_EVAL), "users", "add", "复核员", "--role", "reviewer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    token = added.stdout.splitlines()[-1].strip()
    log = base / "server.log"
    with serving(env, log, cwd=base) as url:
        yield Served(url, token)
    text = log.read_text()
    assert "Traceback" not in text and token not in text, text


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with playwright_api().sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_docs_render_in_chromium_with_every_request_to_the_service(chromium, served):
    url = served.url
    context = chromium.new_context(locale="zh-CN")
    requests: list[str] = []
    errors: list[str] = []
    context.on("request", lambda req: requests.append(req.url))
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/docs")  # outside demo mode: signed in first, then back to /docs
    page.wait_for_url(f"{url}/login?next=/docs")
    page.fill("#name", "复核员")
    page.fill("#token", served.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() > 10
    assert "geo-eval 工业用地亩均效益评价服务" in page.locator(".info .title").inner_text()
    # an error page in the same browser: Chinese, its style and script allowed by its CSP
    page.goto(f"{url}/nirgends")
    assert page.locator("h1").inner_text() == "页面不存在"
    assert page.locator("a", has_text="返回首页").get_attribute("href") == "/"
    page.locator("#back").click()
    page.wait_for_url(f"{url}/docs")
    context.close()
    assert errors == []
    network = [u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    outside = [u for u in network if urlsplit(u).hostname != "127.0.0.1"]
    assert outside == [], outside
    paths = {urlsplit(u).path for u in network}
    assert {"/docs", "/openapi.json", SWAGGER + "swagger-ui-bundle.js", SWAGGER + "swagger-ui.css"} <= paths


def test_back_after_logout_does_not_show_the_previous_users_page(chromium, served):
    context = chromium.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{served.url}/login")
    page.fill("#name", "复核员")
    page.fill("#token", served.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.url}/")
    signed_in = page.locator("form[action='/logout']")
    assert "复核员" in page.locator("main").inner_text() and signed_in.count() == 1
    page.click("text=退出登录")
    page.wait_for_url(f"{served.url}/login")
    page.go_back()
    page.wait_for_load_state()
    assert page.url == f"{served.url}/login?next=/"
    assert signed_in.count() == 0 and "复核员" not in page.content()
    context.close()
