"""Signed session cookies for browsers (stdlib HMAC), revoked on the server by a per-user generation.

A cookie carries the user name, the user's current token id, the user's session generation and the
issue time, signed with HMAC-SHA256 under ``GEO_EVAL_SECRET_KEY``. It is accepted while the signature
holds, it is younger than ``session_max_age_s``, the user still holds the same token and is still at the
same session generation: rotating a user's token, deleting the user or signing out (``POST /logout``,
:meth:`~geo_eval.storage.Store.end_sessions`, which moves the generation on) ends their browser sessions,
so a copied cookie is worthless after its user signs out.

Why a generation per user and not a table of sessions: the user's row is read for every cookie request
already (token id check), so the check costs nothing more, there is no table to grow and to clean, and
a copy of the cookie cannot outlive a sign-out anywhere. A counter rather than a "valid after" time has
no clock resolution to get wrong (a sign-in in the same second as the sign-out stays valid). The price:
signing out ends every browser session of that user, on every computer.

>>> v = sign_session("k" * 32, "张三", "0123456789ab", gen=2, issued=1000)
>>> read_session("k" * 32, v, max_age=60, now=1030)
Session(name='张三', token_id='0123456789ab', gen=2)
>>> read_session("k" * 32, v, max_age=60, now=2000) is None, read_session("x" * 32, v, max_age=60, now=1030) is None
(True, True)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

COOKIE_NAME = "geo_eval_session"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode("utf-8"), payload.encode("ascii"), hashlib.sha256).digest())


class Session(NamedTuple):
    """What a valid cookie says: who, with which token id, at which session generation."""

    name: str
    token_id: str
    gen: int


def sign_session(secret: str, name: str, token_id: str, *, gen: int = 0, issued: int | None = None) -> str:
    """The cookie value for a user signing in now (at session generation ``gen``)."""
    data = {"u": name, "t": token_id, "g": gen, "i": int(time.time()) if issued is None else issued}
    payload = _b64(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_mac(secret, payload)}"


def read_session(secret: str, value: str, *, max_age: int, now: int | None = None) -> Session | None:
    """The :class:`Session` of a valid, unexpired cookie value, else None."""
    try:
        payload, mac = value.split(".", 1)
        if not hmac.compare_digest(mac, _mac(secret, payload)):
            return None
        data = json.loads(_unb64(payload))
        issued = int(data["i"])
        name, token_id, gen = str(data["u"]), str(data["t"]), int(data.get("g", 0))
    except (ValueError, KeyError, TypeError, UnicodeError, AttributeError):
        return None
    t = int(time.time()) if now is None else now
    if not (issued - 60 <= t <= issued + max_age):
        return None
    return Session(name, token_id, gen)


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether an ``Origin`` header names the host the request was sent to (CSRF check for cookie writes).

    >>> same_origin("http://127.0.0.1:8000", "127.0.0.1:8000"), same_origin("https://evil.example", "127.0.0.1:8000")
    (True, False)
    >>> same_origin(None, "127.0.0.1:8000")
    False
    """
    if not origin or not host:
        return False
    try:
        return urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:  # not a URL at all
        return False


def request_from_this_site(headers: Mapping[str, str]) -> bool:
    """Whether a request comes from a page of this site: its ``Origin`` names this host, or, without
    ``Origin``, its ``Referer`` does (a browser always sends one of them on a same-site form POST, since the
    service sets ``Referrer-Policy: same-origin``). Neither, or ``Origin: null``: no.

    >>> request_from_this_site({"host": "h:8000", "origin": "http://h:8000"})
    True
    >>> request_from_this_site({"host": "h:8000", "referer": "http://h:8000/login?next=/"})
    True
    >>> request_from_this_site({"host": "h:8000", "referer": "http://evil/"}), request_from_this_site({"host": "h:8000"})
    (False, False)
    """
    origin = headers.get("origin")
    if origin is not None:
        return same_origin(origin, headers.get("host"))
    return same_origin(headers.get("referer"), headers.get("host"))


def safe_next(url: str | None, default: str = "/") -> str:
    """A redirect target after login: a path on this site only (no scheme, no ``//host``).

    >>> safe_next("/maps/海滨?x=1"), safe_next("//evil.example"), safe_next("https://evil.example"), safe_next(None)
    ('/maps/海滨?x=1', '/', '/', '/')
    """
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url or any(c in url for c in "\r\n"):
        return default
    return url
