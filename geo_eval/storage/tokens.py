"""Access tokens: random, shown once, stored only as a salted scrypt hash.

A token reads ``gev.<token id>.<secret>``. The token id (12 hex digits) is stored in clear to find the
user; the secret (32 random bytes, URL-safe base64) is stored as ``scrypt$n$r$p$salt$hash`` and
compared in constant time.

>>> token, token_id = new_token()
>>> parse_token(token)[0] == token_id
True
>>> stored = hash_secret(parse_token(token)[1])
>>> verify_secret(parse_token(token)[1], stored), verify_secret("wrong", stored)
(True, False)
>>> parse_token("Bearer nonsense") is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

PREFIX = "gev"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_TOKEN = re.compile(r"^gev\.([0-9a-f]{12})\.([A-Za-z0-9_-]{20,128})$")


def new_token() -> tuple[str, str]:
    """A fresh token and its token id."""
    token_id = secrets.token_hex(6)
    return f"{PREFIX}.{token_id}.{secrets.token_urlsafe(32)}", token_id


def parse_token(token: str) -> tuple[str, str] | None:
    """``(token id, secret)`` of a well-formed token, else None."""
    m = _TOKEN.match(token.strip())
    return (m.group(1), m.group(2)) if m else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """Salted scrypt hash of ``secret`` as ``scrypt$n$r$p$salt$hash`` (base64 parts)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches a hash made by :func:`hash_secret` (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            secret.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)
