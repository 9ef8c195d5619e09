"""The small Chinese HTML page a browser gets instead of a JSON error (refusals, missing pages, failures).

Same look as the login page (``api/routes/auth.py``); every value is escaped. The page carries its own
Content-Security-Policy: its one style block and its one script (``返回上一页``) are allowed by hash,
nothing else may load.
"""

from __future__ import annotations

import base64
import hashlib
import html
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse

from api.security import safe_next

ERROR_TITLES: dict[int, str] = {
    400: "请求无效",
    403: "无权访问",
    404: "页面不存在",
    405: "不支持此操作",
    409: "操作冲突",
    422: "请求无效",
    500: "服务出错",
    503: "服务暂不可用",
}
"""Statuses answered with an HTML page to a browser navigation, and the page's title."""

_STYLE = """
body { font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; margin: 0; background: #f4f6f8; color: #222; }
main { max-width: 32rem; margin: 4rem auto; background: #fff; padding: 2rem 2.5rem; border-radius: 8px;
       box-shadow: 0 1px 4px rgba(0,0,0,.12); }
h1 { font-size: 1.35rem; margin-top: 0; }
.error { color: #b42318; background: #fef3f2; padding: .6rem .8rem; border-radius: 4px; overflow-wrap: anywhere; }
.muted { color: #666; font-size: .9rem; }
nav { margin-top: 1.5rem; display: flex; gap: 1rem; flex-wrap: wrap; }
nav a { padding: .6rem 1.4rem; font-size: 1rem; border-radius: 4px; text-decoration: none; }
nav a.primary { background: #1f6feb; color: #fff; }
nav a.secondary { color: #1f6feb; border: 1px solid #1f6feb; }
"""

_BACK_SCRIPT = (
    "document.getElementById('back').addEventListener('click', function (e) {"
    " if (history.length > 1) { e.preventDefault(); history.back(); } });"
)


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


PAGE_CSP = (
    f"default-src 'none'; style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_BACK_SCRIPT)}; "
    "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
"""Content-Security-Policy of the error pages: their own style and script only."""

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · 亩均效益评价</title>
<link rel="icon" href="/favicon.ico">
<style>{style}</style></head>
<body><main>
<h1>{title}</h1>
<p class="error" role="alert">{message}</p>
<p class="muted">状态码 {status}</p>
<nav><a class="primary" href="/">返回首页</a><a class="secondary" id="back" href="{back}">返回上一页</a></nav>
</main><script>{script}</script></body></html>
"""


def back_target(referer: str | None, host: str | None) -> str:
    """Where 返回上一页 leads without JavaScript: the referring page of this site, else the home page.

    >>> back_target("http://127.0.0.1:8000/maps/?x=1", "127.0.0.1:8000"), back_target("https://evil.example/", "h")
    ('/maps/?x=1', '/')
    """
    if not referer or not host:
        return "/"
    parts = urlsplit(referer)
    if parts.netloc.lower() != host.lower():
        return "/"
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


def error_page(status: int, message: str, *, back: str = "/", headers: dict[str, str] | None = None) -> HTMLResponse:
    """The page of an error ``status`` with its Chinese ``message``."""
    title = ERROR_TITLES.get(status, "出错了")
    page = _PAGE.format(
        title=html.escape(title),
        message=html.escape(message),
        status=int(status),
        back=html.escape(back),
        style=_STYLE,
        script=_BACK_SCRIPT,
    )
    return HTMLResponse(page, status_code=status, headers={**(headers or {}), "Content-Security-Policy": PAGE_CSP})
