"""Calendar edges of billing periods: the anchor day, short months, leap years, yearly plans."""

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cobrador.subscriptions.periods import add_months, months_per_period, period_end, periods_between


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def chain(start, n, *, months=1, anchor=None):
    anchor = anchor or start.day
    dates = [start]
    for _ in range(n):
        dates.append(period_end(dates[-1], months=months, anchor_day=anchor))
    return dates


def test_anchor_31_falls_on_the_last_day_of_shorter_months_and_returns_to_31():
    dates = chain(utc(2025, 1, 31, 9, 30), 12)
    assert [d.date().isoformat() for d in dates] == [
        "2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30", "2025-07-31",
        "2025-08-31", "2025-09-30", "2025-10-31", "2025-11-30", "2025-12-31", "2026-01-31"]
    assert {(d.hour, d.minute) for d in dates} == {(9, 30)}


def test_anchor_31_in_a_leap_year_uses_february_29():
    dates = chain(utc(2024, 1, 31), 2)
    assert [d.date().isoformat() for d in dates] == ["2024-01-31", "2024-02-29", "2024-03-31"]


@pytest.mark.parametrize("anchor, leap, expected_feb", [(29, True, 29), (29, False, 28), (30, True, 29),
                                                        (30, False, 28), (28, False, 28), (1, False, 1)])
def test_february_with_anchors_28_to_31(anchor, leap, expected_feb):
    year = 2028 if leap else 2027
    start = utc(year, 1, anchor)
    feb, march = chain(start, 2, anchor=anchor)[1:]
    assert (feb.month, feb.day) == (2, expected_feb)
    assert (march.month, march.day) == (3, anchor)


def test_yearly_plan_anchored_on_february_29_renews_on_the_28th_except_in_leap_years():
    dates = chain(utc(2024, 2, 29, 12), 5, months=12)
    assert [d.date().isoformat() for d in dates] == [
        "2024-02-29", "2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29", "2029-02-28"]


def test_yearly_plan_anchored_on_the_31st_and_multi_year_intervals():
    assert period_end(utc(2025, 8, 31), months=12, anchor_day=31) == utc(2026, 8, 31)
    assert period_end(utc(2024, 2, 29), months=24, anchor_day=29) == utc(2026, 2, 28)
    assert period_end(utc(2024, 2, 29), months=48, anchor_day=29) == utc(2028, 2, 29)
    assert months_per_period("year", 2) == 24 and months_per_period("month", 3) == 3


def test_quarterly_periods_from_the_30th_of_november_cross_the_year():
    dates = chain(utc(2025, 11, 30), 3, months=3)
    assert [d.date().isoformat() for d in dates] == ["2025-11-30", "2026-02-28", "2026-05-30", "2026-08-30"]


def test_add_months_backwards_and_bad_anchor():
    assert add_months(utc(2024, 3, 31), -1, 31) == utc(2024, 2, 29)
    assert add_months(utc(2024, 1, 15), -13, 15) == utc(2022, 12, 15)
    with pytest.raises(ValueError):
        add_months(utc(2024, 1, 1), 1, 32)
    with pytest.raises(ValueError):
        period_end(utc(2024, 1, 1), months=0, anchor_day=1)


def test_every_anchor_every_month_of_a_leap_cycle():
    """Exhaustive over 2023-2029 (three non-leap, one leap and more): each boundary lands on the anchor
    day clamped to its month, one month after the previous, keeping the time of day; twelve monthly
    periods end where one yearly period ends."""
    for anchor in range(1, 32):
        for year in range(2023, 2030):
            for month in range(1, 13):
                start = utc(year, month, min(anchor, calendar.monthrange(year, month)[1]), 23, 59, 59)
                end = period_end(start, months=1, anchor_day=anchor)
                expected_month = (year * 12 + month) % 12 + 1
                expected_year = year + (month == 12)
                assert (end.year, end.month) == (expected_year, expected_month)
                assert end.day == min(anchor, calendar.monthrange(expected_year, expected_month)[1])
                assert end.timetz() == start.timetz()
                assert timedelta(days=28) <= end - start <= timedelta(days=31)
                assert chain(start, 12, anchor=anchor)[-1] == period_end(start, months=12, anchor_day=anchor)


@given(anchor=st.integers(1, 31), year=st.integers(1990, 2200), month=st.integers(1, 12),
       months=st.sampled_from([1, 2, 3, 6, 12, 24]), count=st.integers(1, 40))
def test_periods_are_contiguous_and_never_drift(anchor, year, month, months, count):
    start = utc(year, month, min(anchor, calendar.monthrange(year, month)[1]), 7, 15)
    until = add_months(start, months * count, anchor)
    periods = periods_between(start, until, months=months, anchor_day=anchor)
    assert len(periods) == count
    assert periods[0][0] == start and periods[-1][1] == until
    for (_, e1), (s2, _) in zip(periods, periods[1:], strict=False):
        assert e1 == s2
    for index, (s, _) in enumerate(periods):
        # Computed from the anchor, not the previous (clamped) date: no drift after a short month.
        assert s == add_months(start, months * index, anchor)
        assert s.day == min(anchor, calendar.monthrange(s.year, s.month)[1])
