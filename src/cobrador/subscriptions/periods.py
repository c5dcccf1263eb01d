"""Calendar math for billing periods: pure functions, no database, no clock.

A subscription's periods are anchored on `anchor_day`, the day of the month its first paid period
started on. Every boundary keeps that start's time of day (UTC). A month without the anchor day
uses its last day, and the next month that has the day returns to it:

    anchor 31: Jan 31 -> Feb 28 (29 in leap years) -> Mar 31 -> Apr 30 -> May 31
    anchor 29, yearly: 2024-02-29 -> 2025-02-28 -> 2026-02-28 -> 2027-02-28 -> 2028-02-29

Boundaries are computed from the anchor, never from the previous (possibly shortened) date, so a
short month never drags later periods earlier.
"""

import calendar
from datetime import datetime


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def anchored(year: int, month: int, anchor_day: int, like: datetime) -> datetime:
    """The anchor day of (year, month), clamped to the month's last day, at `like`'s time of day."""
    return like.replace(year=year, month=month, day=min(anchor_day, days_in_month(year, month)))


def add_months(moment: datetime, months: int, anchor_day: int) -> datetime:
    """`moment` moved `months` calendar months (may be negative), landing on `anchor_day` (clamped)."""
    if not 1 <= anchor_day <= 31:
        raise ValueError(f"anchor_day must be 1-31, not {anchor_day}")
    index = moment.year * 12 + (moment.month - 1) + months
    return anchored(index // 12, index % 12 + 1, anchor_day, moment)


def months_per_period(interval: str, interval_count: int) -> int:
    if interval == "month":
        return interval_count
    if interval == "year":
        return 12 * interval_count
    raise ValueError(f"unknown interval {interval!r}")


def period_end(start: datetime, *, months: int, anchor_day: int) -> datetime:
    """The end of the period starting at `start` (exclusive: the next period starts there)."""
    if months < 1:
        raise ValueError("a period lasts at least one month")
    return add_months(start, months, anchor_day)


def periods_between(start: datetime, until: datetime, *, months: int,
                    anchor_day: int) -> list[tuple[datetime, datetime]]:
    """Consecutive periods from `start` whose start is before `until`."""
    periods = []
    while start < until:
        end = period_end(start, months=months, anchor_day=anchor_day)
        periods.append((start, end))
        start = end
    return periods
