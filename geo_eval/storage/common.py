"""What every :class:`~geo_eval.storage.base.Store` implementation shares, so the backends behave alike.

Validation of names, roles, parks and reviews (with the same Chinese messages), the timestamp format,
the conflict error of a stale review, token issuing and the in-memory cache of verified tokens.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from geo_eval.storage.base import REVIEW_STATUSES, ROLES, Review, User
from geo_eval.storage.errors import ConflictError, InvalidValueError
from geo_eval.storage.tokens import hash_secret, new_token, verify_secret

MAX_NAME = 64
MAX_COMMENT = 4000
AUTH_CACHE_SIZE = 4096


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds (``2025-03-31T08:00:00.000Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clean_name(name: str) -> str:
    """A user name, trimmed; 1–64 printable characters.

    >>> clean_name("  张三 ")
    '张三'
    """
    name = str(name).strip()
    if not name or len(name) > MAX_NAME or any(not c.isprintable() for c in name):
        raise InvalidValueError(f"用户名须为 1–{MAX_NAME} 个可打印字符")
    return name


def clean_parks(role: str, parks: Sequence[str]) -> tuple[str, ...]:
    """The parks of a user of ``role``: trimmed, deduplicated, required for a committee and refused otherwise.

    >>> clean_parks("committee", ["甲园", " 甲园", "乙园"])
    ('甲园', '乙园')
    """
    if role not in ROLES:
        raise InvalidValueError(f"角色 {role!r} 无效；可用：{', '.join(ROLES)}")
    clean = tuple(dict.fromkeys(str(p).strip() for p in parks if str(p).strip()))
    if role == "committee" and not clean:
        raise InvalidValueError("园区管委会用户（committee）至少要指定一个园区（--park）")
    if role != "committee" and clean:
        raise InvalidValueError(f"只有园区管委会用户（committee）按园区限定；{role} 可查看全部园区，不要指定 --park")
    return clean


def user_public(u: User) -> dict[str, Any]:
    """A user as recorded in the audit trail (never the token)."""
    return {"name": u.name, "role": u.role, "parks": list(u.parks)}


def clean_review(status: str, comment: str, actor: str) -> str:
    """Check a review's values; returns the trimmed comment (line ends as ``\\n``).

    A comment with a control character other than tab and line feed (a NUL, a bell, a bare carriage
    return …) or half of a surrogate pair is refused, on every backend alike, before it reaches the
    database: such characters are invisible where the comment is shown and downloaded.
    """
    if status not in REVIEW_STATUSES:
        raise InvalidValueError(f"复核状态 {status!r} 无效；可用：{', '.join(REVIEW_STATUSES)}")
    comment = (comment or "").replace("\r\n", "\n").strip()
    if status == "dismissed" and not comment:
        raise InvalidValueError("排除（dismissed）须填写理由（comment）")
    if len(comment) > MAX_COMMENT:
        raise InvalidValueError(f"意见不能超过 {MAX_COMMENT} 个字符")
    check_comment_characters(comment)
    if not actor:
        raise InvalidValueError("复核须记录复核人")
    return comment


def check_comment_characters(comment: str) -> None:
    """Refuse control characters other than tab and line feed, and lone surrogates, naming the first.

    >>> check_comment_characters("第一行\\n\\t第二行")
    >>> check_comment_characters("ab\\x00c")
    Traceback (most recent call last):
    ...
    geo_eval.storage.errors.InvalidValueError: 复核意见第 3 个字符是控制字符 U+0000（意见中只允许制表符和换行），请删除后再提交
    """
    for i, c in enumerate(comment):
        if c not in "\t\n" and unicodedata.category(c) in ("Cc", "Cs"):
            kind = "控制字符" if unicodedata.category(c) == "Cc" else "不成对的代理字符"
            raise InvalidValueError(
                f"复核意见第 {i + 1} 个字符是{kind} U+{ord(c):04X}（意见中只允许制表符和换行），请删除后再提交"
            )


def conflict(current: Review, version: int) -> ConflictError:
    """The error of a review submitted from ``version`` while it is at ``current.version``."""
    return ConflictError(
        f"该标记已被{current.updated_by or '他人'}于 {current.updated_at or '刚才'} 修改"
        f"（当前版本 {current.version}，提交的版本 {version}），请刷新后重新提交",
        current,
    )


def issue_token() -> tuple[str, str, str]:
    """A new token, its token id and the salted hash of its secret (what is stored)."""
    token, token_id = new_token()
    return token, token_id, hash_secret(token.split(".", 2)[2])


class TokenCache:
    """Tokens verified once, remembered by their sha256 (in memory only) while the stored hash is unchanged.

    scrypt is slow on purpose; the cache makes repeated requests cheap, and because an entry only
    matches the stored ``(token id, hash)`` it was verified against, a rotated or deleted token stops
    working at once.
    """

    def __init__(self, size: int = AUTH_CACHE_SIZE) -> None:
        self._size = size
        self._entries: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str, secret: str, token_id: str, token_hash: str) -> bool:
        """Whether ``secret`` (of ``token``) matches the stored hash, from the cache when verified before."""
        key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        stored = (token_id, token_hash)
        with self._lock:
            if self._entries.get(key) == stored:
                return True
        if not verify_secret(secret, token_hash):
            return False
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[key] = stored
        return True
