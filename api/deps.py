"""Dependencies as ``Annotated`` aliases, so routes read like typed functions.

=================  ==========================================================================
``SettingsDep``    the service :class:`~api.settings.Settings`
``StoreDep``       the :class:`~geo_eval.storage.Store` (users, runs, reviews, audit)
``OptionalUser``   the signed-in user or None (never 401 by itself; a bad Bearer token is 401)
``CurrentUser``    the signed-in user (Bearer token or session cookie), else 401
``ReviewerUser``   a reviewer or administrator, else 403
``AdminUser``      an administrator, else 403
``PageUser``       like ``CurrentUser`` for HTML pages: redirects to /login instead of 401
``DocsUser``       ``/openapi.json``: a signed-in user (401), anyone in demo mode (``DocsPageUser``: ``/docs``)
``SelectedRun``    the run chosen by ``?run=`` / ``?year=`` (latest registered by default)
``RunDep``         that run's files in memory (:class:`~api.rundata.RunData`)
``PublishedRunDep`` the same, but a year's 已发布 (final) run first (policy lists)
``ParkScopeDep``   ``?park=`` checked against the user's parks (403 for another park)
=================  ==========================================================================

Every dependency that touches run data depends on ``CurrentUser`` first, so an unauthenticated request
learns nothing (401) before any lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Forbidden, LoginRequired, Unauthorized
from api.rundata import RunCache, RunData
from api.security import COOKIE_NAME, read_session, same_origin
from api.settings import Settings
from api.tokengate import TokenGate
from geo_eval.storage import NotFoundError, RunRecord, Store, User

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="`geo-eval users add` 生成的令牌：请求头 `Authorization: Bearer 令牌`",
)
_cookie = APIKeyCookie(
    name=COOKIE_NAME,
    auto_error=False,
    scheme_name="SessionCookie",
    description="浏览器在 /login 登录后得到的会话 cookie",
)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


async def get_run_cache(request: Request) -> RunCache:
    return request.app.state.run_cache  # type: ignore[no-any-return]


def get_token_gate(request: Request) -> TokenGate:
    return request.app.state.token_gate  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RunCacheDep = Annotated[RunCache, Depends(get_run_cache)]


async def optional_user(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    _bearer_doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> User | None:
    """The user of a Bearer token or of a session cookie; None when the request carries neither.

    A request with an ``Authorization`` header is judged by the header alone (a bad token is 401 even
    with a valid cookie); its token is checked through the :class:`~api.tokengate.TokenGate`, so that
    guessed tokens wait for their own slot instead of the worker threads. A cookie-authenticated write
    must come from this site (``Origin`` check).
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization 请求头格式应为：Bearer 令牌")
        user = await get_token_gate(request).authenticate(token.strip())
        if user is None:
            raise Unauthorized("令牌无效或已停用")
        request.state.auth = "bearer"
        return user
    if not cookie:
        return None
    return await run_in_threadpool(cookie_user, request, settings, store, cookie)


def session_user(settings: Settings, store: Store, cookie: str) -> User | None:
    """The user of a session cookie that still holds: signature, age, the user's token id and session
    generation (a sign-out moves it on); None otherwise."""
    session = read_session(settings.secret_key.get_secret_value(), cookie, max_age=settings.session_max_age_s)
    if session is None:
        return None
    try:
        user = store.get_user(session.name)
    except NotFoundError:
        return None
    if user.token_id != session.token_id or user.session_gen != session.gen:
        return None
    return user


def cookie_user(request: Request, settings: Settings, store: Store, cookie: str) -> User | None:
    """The user of a session cookie that still holds (:func:`session_user`); 403 for a cross-site write."""
    user = session_user(settings, store, cookie)
    if user is None:
        return None
    if request.method not in SAFE_METHODS and not same_origin(
        request.headers.get("origin"), request.headers.get("host")
    ):
        raise Forbidden("跨站请求被拒绝：用浏览器会话修改数据时须来自本站页面")
    request.state.auth = "cookie"
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]


async def current_user(user: OptionalUser) -> User:
    """The signed-in user, else 401."""
    if user is None:
        raise Unauthorized()
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def page_user(request: Request, user: OptionalUser) -> User:
    """The signed-in user of an HTML page, else a redirect to the login page."""
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return user


PageUser = Annotated[User, Depends(page_user)]


async def docs_user(settings: SettingsDep, user: OptionalUser) -> User | None:
    """Who may read ``/openapi.json``: anyone in demo mode, else a signed-in user (401)."""
    if user is None and not settings.demo:
        raise Unauthorized()
    return user


async def docs_page_user(request: Request, settings: SettingsDep, user: OptionalUser) -> User | None:
    """Who may open ``/docs``: anyone in demo mode, else a signed-in user (others go to the login page)."""
    return user if settings.demo else await page_user(request, user)


DocsUser = Annotated[User | None, Depends(docs_user)]
DocsPageUser = Annotated[User | None, Depends(docs_page_user)]


def require_role(*roles: str) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets only ``roles`` through (403 otherwise)."""
    labels = "、".join(roles)

    async def dependency(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(f"无权操作：需要角色 {labels}，当前为 {user.role}")
        return user

    return dependency


ReviewerUser = Annotated[User, Depends(require_role("reviewer", "admin"))]
AdminUser = Annotated[User, Depends(require_role("admin"))]


def selected_run(
    user: CurrentUser,
    store: StoreDep,
    year: Annotated[int | None, Query(description="评价年度；默认最新登记的批次", ge=1900, le=2200)] = None,
    run: Annotated[str | None, Query(description="评价批次编号（GET /api/runs）；优先于 year")] = None,
) -> RunRecord:
    """The run a request is about: ``?run=``, else the latest of ``?year=``, else the latest registered."""
    if run:
        return store.get_run(run)
    return store.latest_run(year)


SelectedRun = Annotated[RunRecord, Depends(selected_run)]


def run_data(record: SelectedRun, cache: RunCacheDep) -> RunData:
    return cache.get(record)


RunDep = Annotated[RunData, Depends(run_data)]


def published_run(
    user: CurrentUser,
    store: StoreDep,
    year: Annotated[int | None, Query(description="评价年度；默认该年度已正式发布的批次", ge=1900, le=2200)] = None,
    run: Annotated[str | None, Query(description="评价批次编号（GET /api/runs）；优先于 year")] = None,
) -> RunRecord:
    """Like :func:`selected_run`, but a year's 已发布 (final) run comes first: what policy lists and reports
    use by default; the latest registered run while the year has none."""
    if run:
        return store.get_run(run)
    latest = store.latest_run(year)
    return store.final_run(latest.year) or latest


def published_run_data(record: Annotated[RunRecord, Depends(published_run)], cache: RunCacheDep) -> RunData:
    return cache.get(record)


PublishedRunDep = Annotated[RunData, Depends(published_run_data)]
"""The run's files of :func:`published_run`."""


@dataclass(frozen=True)
class ParkScope:
    """Which parks a request may see: ``parks`` None means every park."""

    park: str | None
    parks: frozenset[str] | None

    def mask(self, values: pd.Series) -> np.ndarray:
        """Rows of ``values`` (park names) inside the scope."""
        if self.parks is None:
            return np.ones(len(values), dtype=bool)
        return np.array(values.isin(self.parks).to_numpy(dtype=bool), dtype=bool)  # a writable copy

    def allows(self, park: object) -> bool:
        return self.parks is None or (isinstance(park, str) and park in self.parks)

    def label(self) -> str:
        """A name for file names: the park, the user's parks, or 全部园区."""
        if self.park:
            return self.park
        if self.parks is None:
            return "全部园区"
        names = sorted(self.parks)
        return "、".join(names) if len(names) <= 3 else f"{names[0]}等{len(names)}个园区"


def park_scope(
    user: CurrentUser,
    park: Annotated[str | None, Query(description="园区名称；园区管委会只能查询本园区")] = None,
) -> ParkScope:
    """``?park=`` checked against the user: a committee asking for another park gets 403."""
    if park:
        if not user.may_see_park(park):
            log.info("user %s refused park %s", user.name, park)
            raise Forbidden(f"无权查看园区“{park}”的数据")
        return ParkScope(park, frozenset({park}))
    return ParkScope(None, None if user.sees_all_parks() else frozenset(user.parks))


ParkScopeDep = Annotated[ParkScope, Depends(park_scope)]


def ensure_park(user: User, park: object) -> None:
    """403 unless ``user`` may see ``park`` (for single resources: a flag, a parcel)."""
    if not user.may_see_park(park):
        raise Forbidden(f"无权查看园区“{park}”的数据")
