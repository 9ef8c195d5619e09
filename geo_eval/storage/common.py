"""What every :class:`~geo_eval.storage.base.Store` implementation shares, so the backends behave alike.

Validation of names, roles, parks and reviews (with the same Chinese messages), the timestamp format,
the conflict error of a stale review, token issuing and the in-memory cache of verified tokens.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from geo_eval.storage.base import REVIEW_STATUSES, ROLES, Carryover, Review, User
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
    """Check a review's values; returns the trimmed comment."""
    if status not in REVIEW_STATUSES:
        raise InvalidValueError(f"复核状态 {status!r} 无效；可用：{', '.join(REVIEW_STATUSES)}")
    comment = (comment or "").strip()
    if status == "dismissed" and not comment:
        raise InvalidValueError("排除（dismissed）须填写理由（comment）")
    if len(comment) > MAX_COMMENT:
        raise InvalidValueError(f"意见不能超过 {MAX_COMMENT} 个字符")
    if not actor:
        raise InvalidValueError("复核须记录复核人")
    return comment


def conflict(current: Review, version: int) -> ConflictError:
    """The error of a review submitted from ``version`` while it is at ``current.version``."""
    return ConflictError(
        f"该标记已被{current.updated_by or '他人'}于 {current.updated_at or '刚才'} 修改"
        f"（当前版本 {current.version}，提交的版本 {version}），请刷新后重新提交",
        current,
    )


def review_state(review: Review) -> dict[str, Any]:
    """A review as the audit trail records it before and after a change."""
    return review.public()


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
