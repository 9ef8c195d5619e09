"""Times shown to people: Beijing time (UTC+8) to the minute, ``2026-12-06 19:57``.

The stores keep UTC ISO 8601 text (``2026-12-06T11:57:03.123Z``, see
:func:`geo_eval.storage.common.now`) for scripts and sorting; pages, messages and downloads show
:func:`beijing_time` of it. China has kept UTC+8 all year since 1992, so a fixed offset is exact and
needs no time-zone database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "北京时间")
"""China Standard Time (UTC+8, no daylight saving)."""
LABEL_FORMAT = "%Y-%m-%d %H:%M"


def beijing_time(iso: str | None) -> str:
    """A stored UTC ISO timestamp as Beijing time text; "" for an empty one.

    A timestamp without an offset is taken as UTC; text that is no timestamp is returned unchanged.

    >>> beijing_time("2026-12-06T11:57:03.123Z")
    '2026-12-06 19:57'
    >>> beijing_time("2026-12-31T16:30:00+00:00"), beijing_time("2026-01-01T00:30:00+08:00")
    ('2027-01-01 00:30', '2026-01-01 00:30')
    >>> beijing_time("2026-12-06T11:57:00"), beijing_time(""), beijing_time(None), beijing_time("刚才")
    ('2026-12-06 19:57', '', '', '刚才')
    """
    if not iso:
        return ""
    try:
        at = datetime.fromisoformat(iso.strip())
    except ValueError:
        return iso
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(BEIJING).strftime(LABEL_FORMAT)


def beijing_now() -> str:
    """The current Beijing time as text (``2026-12-06 19:57``).

    >>> len(beijing_now()) == len("2026-12-06 19:57") and beijing_now()[4] == "-"
    True
    """
    return datetime.now(BEIJING).strftime(LABEL_FORMAT)
