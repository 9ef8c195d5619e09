"""What every :class:`~geo_eval.storage.base.Store` implementation shares, so the backends behave alike.

Validation of names, roles, parks and reviews (with the same Chinese messages), the timestamp format,
the conflict error of a stale review, token issuing and the in-memory cache of verified tokens.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from geo_eval.report.timefmt import beijing_time
from geo_eval.storage.base import REVIEW_STATUSES, ROLES, STATUS_LABELS, Carryover, Review, User
from geo_eval.storage.errors import ConflictError, InvalidValueError
from geo_eval.storage.tokens import hash_secret, new_token, verify_secret

MAX_NAME = 64
MAX_COMMENT = 4000
AUTH_CACHE_SIZE = 4096
AUTH_CACHE_TTL_S = 600.0


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


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only whitespace and invisible format characters (Unicode category
    Cf: zero-width space U+200B, joiners U+200C/U+200D, word joiner U+2060, BOM U+FEFF, soft hyphen …).

    >>> is_blank(" \\u200b\\u200d\\ufeff\\n"), is_blank("\\u200b已复垦"), is_blank("")
    (True, False, True)
    """
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


def clean_review(status: str, comment: str, actor: str) -> str:
    """Check a review's values; returns the trimmed comment (line ends as ``\\n``).

    A comment with a control character other than tab and line feed (a NUL, a bell, a bare carriage
    return …) or half of a surrogate pair is refused, on every backend alike, before it reaches the
    database: such characters are invisible where the comment is shown and downloaded.
    """
    if status not in REVIEW_STATUSES:
        raise InvalidValueError(f"复核状态 {status!r} 无效；可用：{', '.join(REVIEW_STATUSES)}")
    comment = (comment or "").replace("\r\n", "\n").strip()
    if status == "dismissed" and is_blank(comment):
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
    """The error of a review submitted from ``version`` while it is at ``current.version``.

    Its message names the other reviewer's decision, comment and time (Beijing time), for the page to show:

    >>> r = Review("r", "P1:idle", "confirmed", "现场已核实", 2, "张三", "2026-12-06T11:57:03.123Z")
    >>> str(conflict(r, 1))
    '该标记已被 张三 于 2026-12-06 19:57 改为“确认”（意见：现场已核实），请刷新该标记后再操作'
    >>> str(conflict(Review("r", "P1:idle"), 3))
    '该标记尚未复核（当前为“待复核”，版本 0），与提交的版本 3 不符，请刷新该标记后再操作'
    """
    return ConflictError(conflict_message(current, version), current)


CONFLICT_COMMENT_CHARS = 60
"""A longer comment is shortened in the conflict message (the full text is in ``current``)."""


def conflict_message(current: Review, version: int) -> str:
    """The Chinese sentence of :func:`conflict`."""
    label = STATUS_LABELS[current.status]
    if current.version == 0:
        return f"该标记尚未复核（当前为“{label}”，版本 0），与提交的版本 {version} 不符，请刷新该标记后再操作"
    who = current.updated_by or "他人"
    when = beijing_time(current.updated_at) or "刚才"
    comment = current.comment.strip()
    if len(comment) > CONFLICT_COMMENT_CHARS:
        comment = comment[:CONFLICT_COMMENT_CHARS] + "…"
    said = f"（意见：{comment}）" if comment else ""
    return f"该标记已被 {who} 于 {when} 改为“{label}”{said}，请刷新该标记后再操作"


def review_state(review: Review) -> dict[str, Any]:
    """A review as the audit trail records it before and after a change."""
    return review.state()


# --- reviews when a run is registered ------------------------------------------------------------------
REVIEW_ACTIONS = ("review", "review.carry", "review.reset")
"""Audit actions of a flag's review: a change by a user, carried over from a run registered before, and
set back to pending because the flag's content changed (what :meth:`Store.history` lists)."""


@dataclass(frozen=True)
class PastReviews:
    """The reviews of a run registered before, each with the digest its flag had in that run."""

    run_id: str
    reviews: Mapping[str, tuple[Review, str | None]]
    """By flag id: the review and the flag's digest in that run (None: the flag is not in that run)."""
    prints_known: bool = True
    """Whether that run recorded its flags' digests (a run registered by an older geo-eval did not)."""
    same_content: bool = False
    """Without digests: whether the run being registered is, file for file, that run (the older id of its
    manifest is that run's id), so that every flag is identical."""


@dataclass
class CarryPlan:
    """What registering a run does with the reviews before it (see :func:`plan_carryover`)."""

    carryover: Carryover
    reset: list[Review] = field(default_factory=list)
    """Reviews of the run itself to set back to pending (delete): their flag changed or is gone."""
    carry: list[tuple[Review, Review | None]] = field(default_factory=list)
    """Reviews of the previous run to copy into the run (with its run id), each with the run's own review
    of that flag it replaces (None if none)."""


def _identical(prints: Mapping[str, str], flag_id: str, digest: str | None, past: PastReviews) -> bool:
    if past.same_content:
        return flag_id in prints
    return past.prints_known and digest is not None and prints.get(flag_id) == digest


def plan_carryover(
    run_id: str, prints: Mapping[str, str], *, own: PastReviews | None, previous: PastReviews | None
) -> CarryPlan:
    """Which reviews a run registered with flag digests ``prints`` keeps, takes over or sets back.

    ``own``: the reviews of the same run id registered before; ``previous``: those of the other run
    registered last in the same OUT_DIR. Per reviewed flag, the latest review (``updated_at``) of an
    identical flag wins; a review of the run itself whose flag changed is set back to pending.

    >>> r = Review("a", "P1:x", "confirmed", "", 1, "张三", "2026-01-01T00:00:00.000Z")
    >>> plan = plan_carryover("b", {"P1:x": "d1"}, own=None, previous=PastReviews("a", {"P1:x": (r, "d1")}))
    >>> plan.carryover.kept, plan.carry[0][0].run_id
    (1, 'b')
    """
    own_reviews = own.reviews if own is not None else {}
    prev_reviews = previous.reviews if previous is not None else {}
    plan = CarryPlan(Carryover(again=own is not None, previous=previous.run_id if previous is not None else ""))
    kept = changed = unchecked = 0
    for flag_id in sorted(set(own_reviews) | set(prev_reviews)):
        mine, theirs = own_reviews.get(flag_id), prev_reviews.get(flag_id)
        mine_ok = own is not None and mine is not None and _identical(prints, flag_id, mine[1], own)
        theirs_ok = previous is not None and theirs is not None and _identical(prints, flag_id, theirs[1], previous)
        if (
            theirs is not None
            and theirs_ok
            and (mine is None or not mine_ok or theirs[0].updated_at > mine[0].updated_at)
        ):
            base = theirs[0]
            version = base.version if mine is None else max(base.version, mine[0].version + 1)
            plan.carry.append((replace(base, run_id=run_id, version=version), None if mine is None else mine[0]))
            kept += 1
        elif mine_ok:
            kept += 1
        else:
            if mine is not None:
                plan.reset.append(mine[0])
            sources = [p for p, x in ((own, mine), (previous, theirs)) if p is not None and x is not None]
            if any(not p.prints_known and not p.same_content for p in sources):
                unchecked += 1
            else:
                changed += 1
    plan.carryover = replace(plan.carryover, kept=kept, changed=changed, unchecked=unchecked)
    return plan


def carryover_audit(carryover: Carryover) -> dict[str, Any]:
    """The carry-over of a registration as its audit entry records it."""
    return {
        "again": carryover.again,
        "previous": carryover.previous,
        "kept": carryover.kept,
        "changed": carryover.changed,
        "unchecked": carryover.unchecked,
    }


def issue_token() -> tuple[str, str, str]:
    """A new token, its token id and the salted hash of its secret (what is stored)."""
    token, token_id = new_token()
    return token, token_id, hash_secret(token.split(".", 2)[2])


DUMMY_SALT = b"geo-eval-dummy-s"
"""The salt of :func:`dummy_hash`: a hash no token's secret is compared against except to spend the time."""


@functools.cache
def dummy_hash() -> str:
    """A stored-hash lookalike with the parameters of real ones, for unknown token ids (made once)."""
    return hash_secret(secrets.token_urlsafe(32), salt=DUMMY_SALT)


class TokenCache:
    """Tokens verified once, remembered by their sha256 (in memory only) while the stored hash is unchanged.

    scrypt is slow on purpose; the cache makes repeated requests cheap, and because an entry only
    matches the stored ``(token id, hash)`` it was verified against, a rotated or deleted token stops
    working at once. Entries live ``ttl_s`` seconds (default 10 minutes); the cache holds ``size`` of
    them, the least recently used going first. A wrong token is never stored, so it cannot push a real
    one out, and it always costs one scrypt: against the stored hash, or against :func:`dummy_hash` when
    the token id is unknown, so the time of an answer does not tell whether a token id exists.
    """

    def __init__(
        self,
        size: int = AUTH_CACHE_SIZE,
        *,
        ttl_s: float = AUTH_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _cached(self, key: str, token_id: str, token_hash: str) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            if entry[:2] != (token_id, token_hash) or entry[2] <= self._clock():
                del self._entries[key]
                return False
            self._entries.move_to_end(key)
            return True

    def verify(self, token: str, secret: str, token_id: str, token_hash: str | None) -> bool:
        """Whether ``secret`` (of ``token``) matches the stored hash (None: the token id is unknown), from
        the cache when verified recently."""
        key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        if token_hash is None:
            verify_secret(secret, dummy_hash())  # the same cost as a wrong secret of a known id
            return False
        if self._cached(key, token_id, token_hash):
            return True
        if not verify_secret(secret, token_hash):
            return False
        with self._lock:
            self._entries[key] = (token_id, token_hash, self._clock() + self._ttl_s)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return True
