"""Signing in: a login page (Chinese) that sets the session cookie, sign-out, ``/api/me`` and the start page.

Browsers sign in once with their user name and token; the cookie is HttpOnly, SameSite=Lax, Secure
(unless ``GEO_EVAL_COOKIE_SECURE=false``) and signed with ``GEO_EVAL_SECRET_KEY``. Scripts send
``Authorization: Bearer TOKEN`` instead; both end in the same user and the same checks.

``POST /login`` and ``POST /logout`` must come from a page of this site (``Origin``, or without it
``Referer``, naming this host; else 403). Failed sign-ins are counted per user name and per client
address (:mod:`api.throttle`): too many lock that name or address for a while (429 with the time to
wait). Signing out ends the user's browser sessions on the server (:mod:`api.security`), so the old
cookie is refused even if it was copied.
"""

from __future__ import annotations

import html
import json
import logging
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import CurrentUser, OptionalUser, SettingsDep, StoreDep, get_token_gate, session_user
from api.errors import Forbidden
from api.schemas import Login, Me, UserPublic
from api.security import COOKIE_NAME, request_from_this_site, safe_next, sign_session
from api.settings import Settings
from api.throttle import LoginThrottle
from geo_eval.storage import Store

log = logging.getLogger(__name__)
router = APIRouter(tags=["登录"])

MAX_FORM_BYTES = 16_384

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · 亩均效益评价</title>
<style>
body {{ font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; margin: 0; background: #f4f6f8; color: #222; }}
main {{ max-width: 32rem; margin: 4rem auto; background: #fff; padding: 2rem 2.5rem; border-radius: 8px;
       box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
h1 {{ font-size: 1.35rem; margin-top: 0; }}
label {{ display: block; margin: 1rem 0 .3rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; border: 1px solid #bbb; border-radius: 4px; }}
button {{ margin-top: 1.5rem; padding: .6rem 1.4rem; font-size: 1rem; background: #1f6feb; color: #fff; border: 0;
          border-radius: 4px; cursor: pointer; }}
.error {{ color: #b42318; background: #fef3f2; padding: .6rem .8rem; border-radius: 4px; }}
.muted {{ color: #666; font-size: .9rem; }}
ul {{ padding-left: 1.2rem; line-height: 1.9; }}
</style></head>
<body><main>{body}</main></body></html>
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status)


def _login_page(next_url: str, error: str = "", name: str = "", status: int = 200) -> HTMLResponse:
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = f"""<h1>工业用地亩均效益评价 · 登录</h1>{err}
<form method="post" action="/login">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<label for="name">用户名</label>
<input id="name" name="name" autocomplete="username" required value="{html.escape(name)}">
<label for="token">令牌</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">登录</button>
</form>
<p class="muted">令牌由管理员用 <code>geo-eval users add</code> 生成。脚本请用请求头 <code>Authorization: Bearer 令牌</code>。</p>"""
    return _page("登录", body, status)


@router.get("/login", summary="登录页面", response_class=HTMLResponse, include_in_schema=True)
def login_page(
    user: OptionalUser,
    next: Annotated[str | None, Query(description="登录后返回的页面")] = None,
) -> Response:
    target = safe_next(next)
    if user is not None:
        return RedirectResponse(target, status_code=303)
    return _login_page(target)


async def _login_fields(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in form.items() if v}


CROSS_SITE_LOGIN = "跨站登录请求被拒绝：请在本站的登录页登录"
CROSS_SITE_LOGOUT = "跨站退出请求被拒绝：请在本站的页面上退出登录"


def _refusal(
    is_json: bool,
    target: str,
    status: int,
    message: str,
    error: str,
    *,
    name: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    """A refused sign-in: JSON ``{"detail", "error"}``, or the login page with the message."""
    if is_json:
        return JSONResponse({"detail": message, "error": error}, status_code=status, headers=headers)
    page = _login_page(target, message, name, status=status)
    page.headers.update(headers or {})
    return page


def client_address(request: Request) -> str:
    """The client's address as uvicorn gives it (from ``X-Forwarded-For`` only behind a trusted proxy)."""
    return request.client.host if request.client else "?"


@router.post(
    "/login",
    summary="登录（设置会话 cookie）",
    description="表单（application/x-www-form-urlencoded：name、token、next）或 JSON。成功后设置会话 cookie；"
    "表单登录重定向到 next（303），JSON 登录返回当前用户。须从本站页面提交（Origin 或 Referer 为本站，否则 403）。"
    "同一用户名或同一地址短时间内登录失败过多时暂时锁定（429，Retry-After 为须等待的秒数）。",
    responses={
        303: {"description": "登录成功，转到 next"},
        401: {"description": "用户名或令牌不正确"},
        403: {"description": "跨站请求"},
        429: {"description": "登录失败次数过多，暂时锁定"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {"schema": Login.model_json_schema()},
                "application/json": {"schema": Login.model_json_schema()},
            }
        }
    },
)
async def login(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    is_json = request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
    if not request_from_this_site(request.headers):
        log.info("cross-site sign-in refused (origin %r)", request.headers.get("origin", "")[:100])
        return _refusal(is_json, "/", 403, CROSS_SITE_LOGIN, "Forbidden")
    try:
        form = Login.model_validate(
            {k: v for k, v in (await _login_fields(request)).items() if k in Login.model_fields}
        )
    except ValidationError:
        form = Login(name="", token="")
    target = safe_next(form.next)
    address = client_address(request)
    throttle: LoginThrottle = request.app.state.login_throttle
    lock = throttle.locked(form.name, address)
    if lock is not None:
        log.info("sign-in of %r from %s refused: %s locked for %ss", form.name[:64], address, lock.kind, lock.seconds)
        retry = {"Retry-After": str(lock.seconds)}
        return _refusal(is_json, target, 429, lock.message(), "TooManyAttempts", name=form.name, headers=retry)
    user = await get_token_gate(request).authenticate(form.token) if form.token else None
    if user is None or user.name != form.name.strip():
        throttle.failure(form.name, address)
        log.info("failed login for %r from %s", form.name[:64], address)
        return _refusal(is_json, target, 401, "用户名或令牌不正确", "Unauthorized", name=form.name)
    throttle.success(form.name)
    cookie = sign_session(settings.secret_key.get_secret_value(), user.name, user.token_id, gen=user.session_gen)
    response: Response
    if is_json:
        response = JSONResponse(Me(user=UserPublic.of(user), auth="cookie").model_dump())
    else:
        response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=settings.session_max_age_s,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    log.info("user %s signed in from %s", user.name, address)
    return response


def _end_session(store: Store, settings: Settings, cookie: str | None) -> str | None:
    """End the browser sessions of the cookie's user, if the cookie still holds; the user's name."""
    user = session_user(settings, store, cookie or "")
    if user is None:
        return None
    store.end_sessions(user.name, actor=user.name)
    return user.name


@router.post(
    "/logout",
    summary="退出登录（在服务器上结束会话）",
    description="结束该用户的全部浏览器会话（旧 cookie 随即失效），清除 cookie 并转到登录页。须从本站页面提交（否则 403）。",
    responses={303: {"description": "转到登录页"}, 403: {"description": "跨站请求"}},
)
def logout(request: Request, settings: SettingsDep, store: StoreDep) -> Response:
    if not request_from_this_site(request.headers):
        raise Forbidden(CROSS_SITE_LOGOUT)
    name = _end_session(store, settings, request.cookies.get(COOKIE_NAME))
    if name is not None:
        log.info("user %s signed out", name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", secure=settings.cookie_secure, httponly=True, samesite="lax")
    return response


@router.get("/api/me", summary="当前用户", response_model=Me)
def me(user: CurrentUser, request: Request) -> Me:
    return Me(user=UserPublic.of(user), auth=getattr(request.state, "auth", "bearer"))
