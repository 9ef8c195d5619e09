"""Connections to PostgreSQL: database URLs, their redaction, and connection errors in plain Chinese.

A database is named by a libpq URL, ``postgresql://user[:password]@host[:port]/dbname[?options]``
(``postgres://`` works too). A password in it never reaches a message or a log: :func:`redact_url`
replaces it by ``***``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg

from geo_eval.db.errors import DatabaseUnavailableError

CONNECT_TIMEOUT_S = 5
APPLICATION_NAME = "geo-eval"
_SCHEMES = ("postgresql://", "postgres://")
_QUERY_PASSWORD = re.compile(r"([?&]|^)(password=)[^&#]*", re.IGNORECASE)
_USER_PASSWORD = re.compile(r"^([a-z]+://[^:/@?#]*):.*@")
INVALID_URL = "数据库地址无效：应以 postgresql:// 或 postgres:// 开头（例如 postgresql://用户@主机:5432/库名）"
"""The message for a database address that is not a URL (the value itself is not repeated: it may hold a password)."""
MIN_MASKED = 4  # a shorter password is not searched for in messages (it would mask parts of words)

# libpq's messages (English, whatever the server's language for the FATAL part may be) → what to say
_REASONS: tuple[tuple[str, str], ...] = (
    ("connection refused", "连接被拒绝（数据库服务器未启动，或主机、端口不对）"),
    ("could not translate host name", "主机名无法解析"),
    ("failed to resolve host", "主机名无法解析"),
    ("name or service not known", "主机名无法解析"),
    ("timeout expired", f"连接超时（{CONNECT_TIMEOUT_S} 秒内无应答）"),
    ("password authentication failed", "认证失败（用户名或密码错误）"),
    ("no password supplied", "服务器要求密码，但地址中没有密码"),
    ("authentication failed", "认证失败"),
    ("no pg_hba.conf entry", "服务器不允许此用户从本机连接（pg_hba.conf）"),
    ("role", "用户不存在"),
    ("database", "数据库不存在（请先用 createdb 创建）"),
)


def is_database_url(s: object) -> bool:
    """Whether ``s`` is a PostgreSQL URL (``postgresql://`` or ``postgres://``).

    >>> is_database_url("postgresql://postgres@127.0.0.1:5432/geo"), is_database_url("data/service")
    (True, False)
    """
    return isinstance(s, str) and s.strip().lower().startswith(_SCHEMES)


def redact_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` option) replaced by ``***``.

    >>> redact_url("postgresql://postgres:s3cret@127.0.0.1:5432/geo")
    'postgresql://postgres:***@127.0.0.1:5432/geo'
    >>> redact_url("postgresql://postgres@127.0.0.1:5432/geo?password=s3cret&sslmode=require")
    'postgresql://postgres@127.0.0.1:5432/geo?password=***&sslmode=require'
    >>> redact_url("postgresql://postgres@127.0.0.1:5432/geo")
    'postgresql://postgres@127.0.0.1:5432/geo'
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. a broken IPv6 host: redact what looks like a user part and options
        return _QUERY_PASSWORD.sub(r"\1\2***", _USER_PASSWORD.sub(r"\1:***@", url.strip()))
    userinfo, at, hosts = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}:***@{hosts}" if at and ":" in userinfo else parts.netloc
    query = _QUERY_PASSWORD.sub(r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_of(url: str) -> str | None:
    """The password written in ``url``, if any (to make sure no message repeats it)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.password:
        return unquote(parts.password)
    m = re.search(r"(?:^|&)password=([^&]*)", parts.query, re.IGNORECASE)
    return unquote(m.group(1)) if m and m.group(1) else None


def _reason(exc: BaseException, url: str) -> str:
    """Why a connection failed, in Chinese, without the password."""
    text = " ".join(str(exc).split())
    low = text.lower()
    known = (r for n, r in _REASONS if n in low and (n not in ("role", "database") or "does not exist" in low))
    reason = next(known, None) or (
        text.removeprefix("connection failed: ").removeprefix("connection is bad: ") or type(exc).__name__
    )
    reason = reason.replace(url.strip(), redact_url(url))
    secret = password_of(url)
    return reason.replace(secret, "***") if secret and len(secret) >= MIN_MASKED else reason


def unavailable(url: str, exc: BaseException) -> DatabaseUnavailableError:
    """The error of a database that cannot be reached (``exc``: what psycopg raised)."""
    database = redact_url(url)
    return DatabaseUnavailableError(
        f"无法连接数据库 {database}：{_reason(exc, url)}。"
        "请检查 PostgreSQL 是否已启动，以及地址、用户名和密码（--db 或环境变量 GEO_EVAL_DATABASE_URL）",
        database=database,
    )


def connect(url: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection[Any]:
    """A new connection to ``url`` (``connect_timeout`` 5 s); any failure is a :class:`DatabaseUnavailableError`.

    Extra keyword arguments go to :func:`psycopg.connect` (e.g. ``row_factory``).
    """
    if not is_database_url(url):
        raise DatabaseUnavailableError(INVALID_URL)
    options = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": APPLICATION_NAME, **kwargs}
    try:
        return psycopg.connect(url.strip(), autocommit=autocommit, **options)
    except psycopg.Error as exc:
        raise unavailable(url, exc) from exc
