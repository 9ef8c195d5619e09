"""One table from exceptions to HTTP status codes, and the handlers that apply it.

Routes raise the library's errors (``geo_eval.errors``, ``geo_eval.storage.errors``) or the few
service errors below; nothing else chooses a status code. The response body is
``{"detail": <Chinese message>, "error": <class name>}`` plus, for some errors, the data a client needs
(``current`` review on a conflict, ``problems`` of a dataset with fatal errors).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from geo_eval.errors import DatasetError, GeoEvalError, InputFileError, OutputExistsError, SchemeError
from geo_eval.io.run import FatalInputError
from geo_eval.storage import (
    AlreadyExistsError,
    ConflictError,
    InvalidValueError,
    NotFoundError,
    RunFilesError,
    StorageError,
)

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


def error_response(exc: BaseException) -> Response:
    """The response of a tabled exception."""
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
    return JSONResponse(body, status_code=status, headers=headers)


def add_exception_handlers(app: FastAPI) -> None:
    """Register :func:`error_response` for every class of the table."""

    async def handle(request: Request, exc: Exception) -> Response:
        return error_response(exc)

    for cls in ERROR_STATUS:
        app.add_exception_handler(cls, handle)
