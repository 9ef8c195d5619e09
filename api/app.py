"""``create_app(settings)``: the deployable FastAPI application (nothing is built at import time).

Extension points for other work:

- routers: :data:`api.routes.ROUTERS`; a module named in :data:`api.routes.OPTIONAL_ROUTERS`
  (``api.routes.maps``) is included when it exists, with its ``router``;
- static files: ``api/static/`` (vendored JS/CSS for the maps and ``/docs``) is served under ``/static``;
- dependencies for new routes: :mod:`api.deps` (``PageUser`` for HTML pages, ``RunDep``, ``ParkScopeDep`` …).

Pages of the app itself: ``/docs`` (Swagger UI from ``api/static/vendor/swagger-ui``, nothing from a
CDN) and ``/openapi.json``, both for signed-in users only outside demo mode (a signed-out browser on
``/docs`` is sent to ``/login``; ``/openapi.json`` answers 401), ``/redoc`` (redirects to ``/docs``),
``/favicon.ico``. Every HTML answer and ``/api/me``
is sent with ``Cache-Control: no-store`` (:class:`NoStore`), so that after signing out the browser's
Back button cannot show the previous user's page.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import DocsPageUser, DocsUser
from api.errors import UnexpectedErrors, add_exception_handlers
from api.evallock import EvaluationLock
from api.guards import BodyLimit, GuardRefusal, NoNulCharacters, refusal_response
from api.pagetrim import PageTrimmer
from api.routes import OPTIONAL_ROUTERS, ROUTERS
from api.routes.runs import ParkCounts
from api.rundata import RunCache
from api.settings import Settings
from api.throttle import LoginThrottle
from api.tilelane import TileLane
from api.tokengate import TokenGate
from geo_eval import __version__
from geo_eval.db.connection import redact_url
from geo_eval.publication.objections import MAX_EVIDENCE_BYTES
from geo_eval.storage import NotFoundError, Store, open_store

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
RUN_COPIES = "runcopies"
"""Folder of the data directory holding the columnar copies of the runs (:mod:`api.runcopy`)."""
SWAGGER_UI = "/static/vendor/swagger-ui"
"""Where the vendored Swagger UI (``api/static/vendor/swagger-ui``) is served."""
FAVICON = STATIC_DIR / "favicon.ico"
FAVICON_CACHE = "public, max-age=2592000"
OPENAPI_URL = "/openapi.json"

DESCRIPTION = """工业用地亩均效益评价（亩均论英雄）服务：评价批次、企业排名与下载、宗地与地块标记（GeoJSON）、标记复核。

**登录**：脚本在请求头带 `Authorization: Bearer 令牌`（`geo-eval users add` 生成）；浏览器在 `/login` 登录后使用会话 cookie。

**角色**：复核人员（reviewer，全部园区，复核标记）、园区管委会（committee，只能查看本园区，其他园区一律 403）、
管理员（admin，运行评价、管理用户）。未登录不能查看任何企业税收、销售数据（401）。

**批次**：各接口默认使用最新登记的评价批次；`?year=` 选该年度最新批次，`?run=` 选指定批次。
"""

OPENAPI_TAGS = [
    {"name": "健康检查", "description": "服务与存储状态"},
    {"name": "登录", "description": "登录页、会话 cookie、当前用户"},
    {"name": "用户", "description": "用户与令牌（管理员）"},
    {"name": "评价批次", "description": "登记的评价批次；运行新评价（管理员）"},
    {"name": "排名", "description": "企业排名 JSON 与下载"},
    {"name": "宗地与标记", "description": "GeoJSON（EPSG:4326），按范围筛选、分页"},
    {"name": "复核", "description": "标记复核与审计记录"},
    {"name": "地图", "description": "园区地图（Folium 页面，资源全部由本服务提供）、大园区的矢量瓦片与搜索索引"},
]


class SecurityHeaders:
    """Conservative response headers on every response (pure ASGI, streaming-safe)."""

    HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"SAMEORIGIN"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.HEADERS if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class NoStore:
    """``Cache-Control: no-store`` on every HTML answer (but static files) and on ``NO_STORE_PATHS`` (pure ASGI).

    Replaces what a route set: a signed-in page must not be kept by the browser, so that Back after
    signing out shows nothing of the previous user.
    """

    NO_STORE_PATHS = frozenset({"/api/me"})
    STATIC_PREFIX = "/static/"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.STATIC_PREFIX):
            await self.app(scope, receive, send)
            return
        always = scope["path"] in self.NO_STORE_PATHS

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if always or ctype.lower().startswith(b"text/html"):
                    kept = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    message["headers"] = [*kept, (b"cache-control", b"no-store")]
            await send(message)

        await self.app(scope, receive, send_no_store)


class WorkerHeader:
    """``X-Geo-Eval-Worker``: the id of the worker process that answered, on every response of a service
    started with several workers (``geo-eval serve --workers N``), to tell from the outside which worker
    served a request (pure ASGI)."""

    HEADER = b"x-geo-eval-worker"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.value = str(os.getpid()).encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_worker(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (self.HEADER, self.value)]
            await send(message)

        await self.app(scope, receive, send_with_worker)


def add_page_routes(app: FastAPI) -> None:
    """``/docs`` from the vendored Swagger UI (no CDN) and ``/openapi.json`` (signed-in users, or anyone in
    demo mode), ``/redoc`` → ``/docs``, ``/favicon.ico``."""

    @app.get(OPENAPI_URL, include_in_schema=False)
    def openapi(_: DocsUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request, _: DocsPageUser) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{OPENAPI_URL}",
            title=f"{app.title} · 接口文档",
            swagger_js_url=f"{root}{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{root}{SWAGGER_UI}/favicon-32x32.png",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '').rstrip('/')}/docs", status_code=307)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": FAVICON_CACHE})


EVIDENCE_PATH = "/api/objections/"
"""Uploads of evidence files (``POST /api/objections/{id}/evidence``) may be larger than other bodies."""


def include_optional_routers(app: FastAPI, modules: tuple[str, ...] = OPTIONAL_ROUTERS) -> list[str]:
    """Include the ``router`` of each module that exists; returns the names included."""
    included = []
    for name in modules:
        if importlib.util.find_spec(name) is None:
            continue
        app.include_router(importlib.import_module(name).router)
        included.append(name)
    return included


def _import_map_library() -> None:
    try:
        import folium  # noqa: F401  (0.5 s: folium compiles its page templates when imported)
    except Exception as exc:  # the first map page imports it then, and reports what fails
        log.warning("could not preload the map library: %s", exc)


def _warm_up(store: Store, cache: RunCache) -> None:
    """Load the latest run in the background while another thread imports the map library, so that the
    first map page waits for neither (the run's geometries are built without holding the GIL)."""
    library = threading.Thread(target=_import_map_library, daemon=True, name="warm-up-maps")
    library.start()
    try:
        cache.get(store.latest_run())
    except NotFoundError:
        log.info("no registered run yet")
    except Exception as exc:  # a missing or broken run is reported by the requests that need it
        log.warning("could not preload the latest run: %s", exc)
    library.join()


async def _guard_refusal(request: Request, exc: Exception) -> Response:
    """A guard's refusal raised while a route read the body (``api.guards``)."""
    assert isinstance(exc, GuardRefusal)
    return refusal_response(request, exc)


def create_app(settings: Settings, *, store: Store | None = None) -> FastAPI:
    """The service over ``settings.data_dir`` and ``settings.database_url`` (or over ``store``)."""
    store = store if store is not None else open_store(settings.data_dir, database_url=settings.database())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        where = f"database {redact_url(url)}" if (url := settings.database()) else "SQLite"
        log.info("geo-eval service: data in %s, store %s, demo=%s", settings.data_dir, where, settings.demo)
        warm = threading.Thread(target=_warm_up, args=(store, app.state.run_cache), daemon=True, name="warm-up")
        warm.start()
        app.state.page_trimmer.start()
        yield
        app.state.page_trimmer.stop()
        # the store is closed only once the warm-up no longer uses it (a closed SQLite connection used by
        # another thread can crash the process)
        await asyncio.to_thread(warm.join)
        app.state.run_cache.clear()
        store.close()

    app = FastAPI(
        title="geo-eval 工业用地亩均效益评价服务",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        docs_url=None,  # add_page_routes serves /docs from the vendored Swagger UI, not from a CDN
        redoc_url=None,
        openapi_url=None,  # add_page_routes serves it to signed-in users
    )
    app.state.settings = settings
    app.state.store = store
    app.state.run_cache = RunCache(settings.run_cache_size, store=store, copies=settings.data_dir / RUN_COPIES)
    app.state.evaluation_lock = EvaluationLock(settings.data_dir, settings.database())
    app.state.token_gate = TokenGate(store)
    copies = os.path.realpath(settings.data_dir / RUN_COPIES) + os.sep  # pyarrow maps the copies privately
    app.state.page_trimmer = PageTrimmer(settings.worker_rss_mb * 1024 * 1024, roots=(copies,))
    app.state.park_counts = ParkCounts()
    app.state.login_throttle = LoginThrottle(
        settings.login_max_failures, settings.login_window_s, settings.login_lockout_s
    )
    add_exception_handlers(app)
    app.add_exception_handler(GuardRefusal, _guard_refusal)
    app.add_middleware(TileLane)  # innermost: ordinary tile requests answered without FastAPI's routing
    app.add_middleware(UnexpectedErrors)  # innermost but one: its 500 answer still passes the ones below
    app.add_middleware(NoNulCharacters)
    evidence = {EVIDENCE_PATH: max(settings.max_body_bytes, MAX_EVIDENCE_BYTES)}  # evidence files, up to 10 MB
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, limits=evidence)  # before anything reads the body
    app.add_middleware(SecurityHeaders)
    app.add_middleware(NoStore)
    if settings.workers > 1:
        app.add_middleware(WorkerHeader)
    add_page_routes(app)
    for router in ROUTERS:
        app.include_router(router)
    include_optional_routers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
