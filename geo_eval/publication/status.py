"""A run's publication status: 草稿 (draft) → 公示中 (publicity, with dates) → 已发布 (final).

The rules are pure (no storage): which moves are allowed (:func:`check_move`), how the publicity dates
are read (:func:`parse_day`), whether a run takes objections today (:func:`objection_window`) and the one
line that pages, downloads and reports print about the status and version they show (:func:`status_line`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from geo_eval.report.timefmt import BEIJING
from geo_eval.storage.errors import InvalidValueError, RunLockedError

__all__ = ["RUN_STATUSES", "RUN_STATUS_LABELS", "RunLockedError", "check_move", "objection_window", "status_line"]

RunStatus = Literal["draft", "publicity", "final"]
RUN_STATUSES: tuple[RunStatus, ...] = ("draft", "publicity", "final")
RUN_STATUS_LABELS: dict[str, str] = {"draft": "草稿", "publicity": "公示中", "final": "已发布"}


def today() -> dt.date:
    """Today's date in Beijing."""
    return dt.datetime.now(BEIJING).date()


def parse_day(text: str, what: str) -> dt.date:
    """A date written ``2026-03-01`` (``what`` names it in the message).

    >>> parse_day("2026-03-01", "公示开始日期")
    datetime.date(2026, 3, 1)
    >>> parse_day("3月1日", "公示开始日期")
    Traceback (most recent call last):
    ...
    geo_eval.storage.errors.InvalidValueError: 公示开始日期“3月1日”不是日期，请写成 2026-03-01 的形式
    """
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise InvalidValueError(f"{what}“{text}”不是日期，请写成 2026-03-01 的形式") from None


def check_move(current: str, to: str, *, had_publicity: bool, start: str = "", end: str = "") -> tuple[str, str]:
    """Check moving a run from status ``current`` to ``to``; returns the publicity dates to keep.

    ``had_publicity``: an earlier version of the same year was published for comment, so its corrected
    re-run may be made final without a second publicity.

    >>> check_move("draft", "publicity", had_publicity=False, start="2026-03-01", end="2026-03-10")
    ('2026-03-01', '2026-03-10')
    >>> check_move("draft", "final", had_publicity=False)
    Traceback (most recent call last):
    ...
    geo_eval.storage.errors.InvalidValueError: 草稿须先公示（--to publicity）才能正式发布
    """
    if to not in RUN_STATUSES or to == "draft":
        raise InvalidValueError(f"状态 {to!r} 无效；可改为：publicity（公示中）、final（已发布）")
    if current == "final":
        raise RunLockedError("该批次已正式发布，已锁定；如需更正，请登记新批次（--supersede 并说明理由）")
    if to == "publicity":
        return _publicity_dates(start, end)
    if current == "draft" and not had_publicity:
        raise InvalidValueError("草稿须先公示（--to publicity）才能正式发布")
    return "", ""


def _publicity_dates(start: str, end: str) -> tuple[str, str]:
    if not start or not end:
        raise InvalidValueError("公示须给出公示期的开始和结束日期（--start 2026-03-01 --end 2026-03-10）")
    first, last = parse_day(start, "公示开始日期"), parse_day(end, "公示结束日期")
    if last < first:
        raise InvalidValueError(f"公示结束日期 {last} 早于开始日期 {first}")
    return first.isoformat(), last.isoformat()


def objection_window(status: str, start: str, end: str, *, on: dt.date | None = None) -> str:
    """Why a run takes no objections on ``on`` (today), or "" when it does (公示中, within its dates).

    >>> objection_window("publicity", "2026-03-01", "2026-03-10", on=dt.date(2026, 3, 10))
    ''
    >>> objection_window("publicity", "2026-03-01", "2026-03-10", on=dt.date(2026, 3, 11))
    '公示期（2026-03-01 至 2026-03-10）已结束，不再受理异议'
    """
    if status == "final":
        return "该年度评价结果已正式发布（已锁定），不再受理异议"
    if status != "publicity":
        return "该年度当前版本为草稿，尚未公示，不受理异议"
    day = on or today()
    if start and day < dt.date.fromisoformat(start):
        return f"公示期（{start} 至 {end}）尚未开始，暂不受理异议"
    if end and day > dt.date.fromisoformat(end):
        return f"公示期（{start} 至 {end}）已结束，不再受理异议"
    return ""


def status_line(year: int, version: int, status: str, start: str = "", end: str = "", superseded_by: str = "") -> str:
    """What a page, a download or a report says about the run it shows.

    >>> status_line(2025, 1, "publicity", "2026-03-01", "2026-03-10")
    '2025 年度 第 1 版 · 公示中（公示期 2026-03-01 至 2026-03-10）'
    >>> status_line(2025, 2, "final")
    '2025 年度 第 2 版 · 已发布'
    """
    text = f"{year} 年度 第 {version} 版 · {RUN_STATUS_LABELS.get(status, status)}"
    if status == "publicity" and start:
        text += f"（公示期 {start} 至 {end}）"
    if superseded_by:
        text += f"（已被批次 {superseded_by} 取代）"
    return text
