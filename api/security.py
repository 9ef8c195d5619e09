"""Signed session cookies for browsers (stdlib HMAC, no server-side session table).

A cookie carries the user name, the user's current token id and the issue time, signed with
HMAC-SHA256 under ``GEO_EVAL_SECRET_KEY``. It is accepted while the signature holds, it is younger
than ``session_max_age_s`` and the user still holds the same token: rotating a user's token or deleting
the user ends their browser sessions too.

>>> v = sign_session("k" * 32, "张三", "0123456789ab", issued=1000)
>>> read_session("k" * 32, v, max_age=60, now=1030)
('张三', '0123456789ab')
>>> read_session("k" * 32, v, max_age=60, now=2000) is None, read_session("x" * 32, v, max_age=60, now=1030) is None
(True, True)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

COOKIE_NAME = "geo_eval_session"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode("utf-8"), payload.encode("ascii"), hashlib.sha256).digest())


def sign_session(secret: str, name: str, token_id: str, *, issued: int | None = None) -> str:
    """The cookie value for a user signing in now."""
    data = {"u": name, "t": token_id, "i": int(time.time()) if issued is None else issued}
    payload = _b64(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_mac(secret, payload)}"


def read_session(secret: str, value: str, *, max_age: int, now: int | None = None) -> tuple[str, str] | None:
    """``(user name, token id)`` of a valid, unexpired cookie value, else None."""
    try:
        payload, mac = value.split(".", 1)
        if not hmac.compare_digest(mac, _mac(secret, payload)):
            return None
        data = json.loads(_unb64(payload))
        issued = int(data["i"])
        name, token_id = str(data["u"]), str(data["t"])
    except (ValueError, KeyError, TypeError, UnicodeError):
        return None
    t = int(time.time()) if now is None else now
    if not (issued - 60 <= t <= issued + max_age):
        return None
    return name, token_id


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether an ``Origin`` header names the host the request was sent to (CSRF check for cookie writes).

    >>> same_origin("http://127.0.0.1:8000", "127.0.0.1:8000"), same_origin("https://evil.example", "127.0.0.1:8000")
    (True, False)
    >>> same_origin(None, "127.0.0.1:8000")
    False
    """
    if not origin or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


def safe_next(url: str | None, default: str = "/") -> str:
    """A redirect target after login: a path on this site only (no scheme, no ``//host``).

    >>> safe_next("/maps/海滨?x=1"), safe_next("//evil.example"), safe_next("https://evil.example"), safe_next(None)
    ('/maps/海滨?x=1', '/', '/', '/')
    """
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url or any(c in url for c in "\r\n"):
        return default
    return url
