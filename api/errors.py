"""One table from exceptions to HTTP status codes, and the handlers that apply it.

Routes raise the library's errors (``geo_eval.errors``, ``geo_eval.storage.errors``) or the few
service errors below; nothing else chooses a status code. The response body is
``{"detail": <Chinese message>, "error": <class name>}`` plus, for some errors, the data a client needs
(``current`` review on a conflict, ``problems`` of a dataset with fatal errors, ``errors`` of a
request that fails validation).

A browser navigation (:func:`wants_html`) gets the same status with a Chinese HTML page instead
(:func:`api.pages.error_page`); API paths (``/api/…``, ``/openapi.json``) and scripts always get JSON.
The same holds for Starlette's own 404/405, for validation errors (:mod:`api.validation`) and for an
unexpected exception (:class:`UnexpectedErrors`: 500, traceback in the log only).
"""

from __future__ import annotations

import logging
from typing import Any, cast
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.pages import ERROR_TITLES, back_target, error_page
from api.validation import summary, translate
from geo_eval.errors import (
    DatasetError,
    FatalInputError,
    GeoEvalError,
    InputFileError,
    OutputExistsError,
    SchemeError,
)
from geo_eval.io.pdf import PdfUnavailableError
from geo_eval.storage import (
    AlreadyExistsError,
    ConflictError,
    InvalidValueError,
    NotFoundError,
    RunFilesError,
    StorageError,
)
from geo_eval.storage.errors import RunLockedError

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Root of the errors only the service raises."""


class Unauthorized(ServiceError):
    """No valid token or session (401)."""

    def __init__(self, message: str = "未登录：请求须带 Authorization: Bearer 令牌，或先在 /login 登录") -> None:
        super().__init__(message)


class Forbidden(ServiceError, PermissionError):
    """Signed in, but the role or the park does not allow this (403)."""


class NotFound(ServiceError, LookupError):
    """No such flag, parcel or page (404)."""


class InvalidQuery(ServiceError, ValueError):
    """A query parameter the route cannot use (bad bbox, page too large) (422)."""


class Busy(ServiceError):
    """The resource is busy, e.g. an evaluation is already running (409)."""


class LoginRequired(ServiceError):
    """An HTML page asked by someone not signed in: redirect to the login page (303)."""

    def __init__(self, next_url: str = "/") -> None:
        super().__init__("请先登录")
        self.next_url = next_url


ERROR_STATUS: dict[type[Exception], int] = {
    # service
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    InvalidQuery: 422,
    Busy: 409,
    LoginRequired: 303,
    # storage
    NotFoundError: 404,
    ConflictError: 409,
    RunLockedError: 409,
    AlreadyExistsError: 409,
    InvalidValueError: 422,
    RunFilesError: 503,
    StorageError: 503,
    # evaluation (POST /api/runs)
    FatalInputError: 422,
    DatasetError: 422,
    SchemeError: 422,
    InputFileError: 422,
    OutputExistsError: 409,
    PdfUnavailableError: 503,  # no Chromium to print the report with
    GeoEvalError: 400,
}
"""Exception class → HTTP status; the most specific class in an exception's MRO wins."""


def status_for(exc: BaseException) -> int | None:
    """The status of an exception by the first of its classes in :data:`ERROR_STATUS`.

    >>> status_for(NotFoundError("x")), status_for(Forbidden("x")), status_for(KeyError("x")) is None
    (404, 403, True)
    """
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return None


HTML_METHODS = frozenset({"GET", "HEAD"})
JSON_PATHS = ("/api/", "/openapi.json")
"""Paths that always answer JSON, whatever the request accepts (prefixes)."""


def wants_html(request: Request) -> bool:
    """Whether a request is a browser navigation: GET/HEAD of a page (not an API path) that accepts HTML."""
    path = request.url.path
    if request.method not in HTML_METHODS or path == "/api" or path.startswith(JSON_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "").lower()


def respond(
    request: Request | None, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """``body`` as JSON, or its ``detail`` as the Chinese error page to a browser navigation."""
    if request is not None and status in ERROR_TITLES and wants_html(request):
        back = back_target(request.headers.get("referer"), request.headers.get("host"))
        return error_page(status, str(body["detail"]), back=back, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(exc: BaseException, request: Request | None = None) -> Response:
    """The response of a tabled exception (an HTML page when ``request`` is a browser navigation)."""
    status = status_for(exc) or 500
    if isinstance(exc, LoginRequired):
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)
    body: dict[str, Any] = {"detail": str(exc), "error": type(exc).__name__}
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="geo-eval"'
    if isinstance(exc, ConflictError):
        body["current"] = exc.current.public()
    if isinstance(exc, FatalInputError):
        fatal = exc.frame.loc[exc.frame["severity"] == "致命"].head(100)
        body["problems"] = fatal.astype(object).where(fatal.notna(), None).to_dict("records")
    if status >= 500:
        log.error("%s: %s", type(exc).__name__, exc)
    return respond(request, status, body, headers)


HTTP_MESSAGES: dict[int, tuple[str, str]] = {
    404: ("NotFound", "没有这个页面或接口：{path}"),
    405: ("MethodNotAllowed", "{path} 不支持 {method} 请求"),
}
"""Starlette's own refusals (unknown path, wrong method): error name and Chinese message."""


def http_exception_response(request: Request, exc: StarletteHTTPException) -> Response:
    """Starlette's (and FastAPI's) ``HTTPException``: Chinese for the router's 404/405, else its detail."""
    name, message = HTTP_MESSAGES.get(exc.status_code, ("HTTPException", "{detail}"))
    detail = message.format(path=request.url.path, method=request.method, detail=exc.detail)
    return respond(request, exc.status_code, {"detail": detail, "error": name}, dict(exc.headers or {}))


def validation_response(request: Request, exc: RequestValidationError) -> Response:
    """A request that fails validation (422): every problem in Chinese, as one sentence and as a list."""
    problems = translate(exc.errors())
    body = {"detail": summary(problems), "error": "RequestValidationError", "errors": problems}
    return respond(request, 422, body)


UNEXPECTED_MESSAGE = "服务内部出错，已记录在服务日志中；请稍后重试，或把出错的时间告诉管理员"


class UnexpectedErrors:
    """An exception no handler knows becomes a 500 (HTML or JSON, no traceback); the traceback is logged.

    Pure ASGI, innermost of the service's middleware, so the answer still gets their headers. An
    exception after the response has started cannot be answered and is raised on to the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            request = Request(scope)
            response = respond(request, 500, {"detail": UNEXPECTED_MESSAGE, "error": "InternalServerError"})
            await response(scope, receive, send)


def add_exception_handlers(app: FastAPI) -> None:
    """Register :func:`error_response` for every class of the table, and the Starlette/validation handlers."""

    async def handle(request: Request, exc: Exception) -> Response:
        return error_response(exc, request)

    async def handle_http(request: Request, exc: Exception) -> Response:
        return http_exception_response(request, cast(StarletteHTTPException, exc))

    async def handle_validation(request: Request, exc: Exception) -> Response:
        return validation_response(request, cast(RequestValidationError, exc))

    for cls in ERROR_STATUS:
        app.add_exception_handler(cls, handle)
    app.add_exception_handler(StarletteHTTPException, handle_http)
    app.add_exception_handler(RequestValidationError, handle_validation)
