"""Checks on every request before a route parses it (pure ASGI middleware, streaming-safe).

- :class:`BodyLimit` refuses a request body larger than ``GEO_EVAL_MAX_BODY_BYTES`` (default 1 MiB) with
  413 and a Chinese message: at once when ``Content-Length`` announces it (nothing of the body is read),
  else as soon as the bytes received pass the limit (a chunked body is counted as it arrives, never
  buffered whole). A route that needs a larger body (evidence uploads) gets its own entry in
  ``BodyLimit(limits=…)``, a path prefix and its limit.
- :class:`NoNulCharacters` refuses a NUL character (``\\x00``) in the path, in a query parameter or in a
  string (or key) of a JSON or form body with 422 and a message naming where it is. PostgreSQL cannot
  store NUL in a text value, so without this check the same request would be 422 on SQLite and 503 on
  PostGIS; no user-facing text needs one.

A refusal raised while a route reads the body is a :class:`GuardRefusal` (a Starlette ``HTTPException``,
so FastAPI's body reading lets it through); ``api.app`` answers it with :func:`refusal_response`, JSON to
scripts and the Chinese error page to a browser navigation, like every other error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import respond

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
NUL = "\x00"


class GuardRefusal(StarletteHTTPException):
    """A request refused by a guard: its status, a Chinese ``detail`` and an error name for scripts."""

    error = "GuardRefusal"

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(status_code=status_code, detail=detail)


class BodyTooLarge(GuardRefusal):
    """The request body is larger than the limit (413)."""

    error = "ContentTooLarge"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"请求内容过大：最多 {size_label(limit)}（GEO_EVAL_MAX_BODY_BYTES = {limit} 字节）")


class NulCharacter(GuardRefusal):
    """A NUL character in the path, a parameter or a body string (422)."""

    error = "NulCharacter"

    def __init__(self, where: str) -> None:
        super().__init__(422, f"{where}含有空字符（NUL，\\x00），不能接受：请删去后重试")


def size_label(n: int) -> str:
    """A byte count for people.

    >>> size_label(1024 * 1024), size_label(1536), size_label(100)
    ('1 MB', '1.5 KB', '100 字节')
    """
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} 字节"


def refusal_response(request: Request | None, exc: GuardRefusal) -> Response:
    """The answer to a refusal: ``{"detail", "error"}`` as JSON, or the error page to a browser navigation."""
    return respond(request, exc.status_code, {"detail": exc.detail, "error": exc.error})


async def _answer(scope: Scope, receive: Receive, send: Send, exc: GuardRefusal) -> None:
    await refusal_response(Request(scope), exc)(scope, receive, send)


class _Tracked:
    """A ``send`` that remembers whether the response has started."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


async def _run_guarded(app: ASGIApp, scope: Scope, receive: Receive, send: Send, cls: type[GuardRefusal]) -> None:
    """Run ``app``; a refusal of class ``cls`` that no route answered is answered here (before any response)."""
    tracked = _Tracked(send)
    try:
        await app(scope, receive, tracked)
    except cls as exc:
        if tracked.started:
            raise
        await _answer(scope, receive, send, exc)


class BodyLimit:
    """Refuse request bodies above ``max_bytes`` (413), or above the limit of the longest matching prefix."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES, limits: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.limits = sorted((limits or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        """The body limit of a path."""
        return next((n for prefix, n in self.limits if path.startswith(prefix)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _answer(scope, receive, send, BodyTooLarge(limit))
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await _run_guarded(self.app, scope, counting_receive, send, BodyTooLarge)


def _json_strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string (and object key) of a parsed JSON value with its place (``items[0].flag_id``)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            place = f"{where}.{k}" if where else str(k)
            yield place, str(k)
            yield from _json_strings(v, place)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_strings(v, f"{where}[{i}]")


def nul_in_json(body: bytes) -> str | None:
    """Where a JSON body holds a NUL character (``""`` for the top level), or None; invalid JSON is left to
    the route.

    >>> nul_in_json(b'{"comment": "a\\\\u0000b"}'), nul_in_json(b'{"items": [{"id": "x"}]}'), nul_in_json(b"{")
    ('comment', None, None)
    """
    try:
        data = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        return None
    return next((place for place, text in _json_strings(data) if NUL in text), None)


def nul_in_form(body: bytes) -> str | None:
    """The field of an ``application/x-www-form-urlencoded`` body holding a NUL character, or None."""
    if b"\x00" not in unquote_to_bytes(body):
        return None
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return next((k for k, v in pairs if NUL in k or NUL in v), "")


def nul_in_query(query: bytes) -> str | None:
    """The parameter of a query string holding a NUL character, or None."""
    return nul_in_form(query)


def _kind(scope: Scope) -> str | None:
    """``json`` or ``form`` for the bodies this guard reads, else None (uploads are not read here)."""
    ctype = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        return "json"
    if ctype == "application/x-www-form-urlencoded":
        return "form"
    return None


class NoNulCharacters:
    """Refuse a NUL character in the path, the query string or a JSON/form body (422)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if NUL in scope["path"]:
            await _answer(scope, receive, send, NulCharacter("路径"))
            return
        param = nul_in_query(scope.get("query_string", b""))
        if param is not None:
            await _answer(scope, receive, send, NulCharacter(f"查询参数 {param} " if param else "查询参数"))
            return
        kind = _kind(scope)
        if kind is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def checking_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body = b"".join(chunks)
                    place = nul_in_json(body) if kind == "json" else nul_in_form(body)
                    if place is not None:
                        raise NulCharacter(f"请求内容的 {place} " if place else "请求内容")
            return message

        await _run_guarded(self.app, scope, checking_receive, send, NulCharacter)
