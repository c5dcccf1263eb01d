"""Proration: invoicing a plan or quantity change for the rest of the current period.

At the change, the subscription is credited the unused part of what it paid for the period at the old
price and charged the same part at the new price: one credit line and one charge line, each
`price × remaining seconds / period seconds`, rounded half-up once per line. A price is the plan's
amount × quantity less the coupon that discounted the period (when it also applies to the plan), so a
coupon prorates with the price it discounts. However many changes a period sees, the sum of its
invoices is the time-weighted price of the period, within one minor unit per change.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from cobrador.catalog.models import Coupon, Plan
from cobrador.catalog.services import coupon_applies_to, coupon_discount

SECOND = timedelta(seconds=1)


def prorated(amount: int, *, remaining: timedelta, period: timedelta) -> int:
    """`amount` × remaining / period by whole seconds, rounded half-up (away from zero at .5)."""
    remaining_s, period_s = remaining // SECOND, period // SECOND
    if period_s <= 0 or remaining_s <= 0:
        return 0
    sign = -1 if amount < 0 else 1
    return sign * ((2 * abs(amount) * remaining_s + period_s) // (2 * period_s))


@dataclass(frozen=True)
class Price:
    plan: Plan
    quantity: int
    coupon: Coupon | None  # the coupon that discounts this price, if any
    unit_amount: int | None = None  # the subscription's agreed price per unit; None: the plan's amount

    @property
    def unit(self) -> int:
        return self.plan.amount if self.unit_amount is None else self.unit_amount

    @property
    def gross(self) -> int:
        return self.unit * self.quantity

    @property
    def net(self) -> int:
        return self.gross - (coupon_discount(self.coupon, self.gross) if self.coupon is not None else 0)

    def label(self) -> str:
        off = f", {self.coupon.code or self.coupon.public_id} applied" if self.coupon is not None else ""
        return f"{self.plan.name} × {self.quantity}{off}"


def price(plan: Plan, quantity: int, period_coupon: Coupon | None, *, unit_amount: int | None = None) -> Price:
    """The price of `plan` × `quantity` (at `unit_amount` per unit when the subscription has an agreed
    price) in a period that `period_coupon` discounted (None: no coupon)."""
    applies = period_coupon is not None and coupon_applies_to(period_coupon, plan)
    return Price(plan, quantity, period_coupon if applies else None, unit_amount)


@dataclass(frozen=True)
class ProrationLine:
    description: str
    price: Price
    amount: int
    period_start: datetime
    period_end: datetime


def proration_lines(*, old: Price, new: Price, at: datetime, period_start: datetime,
                    period_end: datetime) -> list[ProrationLine]:
    """The credit line (negative) for `old` and the charge line for `new` over [at, period_end)."""
    remaining, period = period_end - at, period_end - period_start
    return [
        ProrationLine(f"Unused time on {old.label()}", old,
                      -prorated(old.net, remaining=remaining, period=period), at, period_end),
        ProrationLine(f"Remaining time on {new.label()}", new,
                      prorated(new.net, remaining=remaining, period=period), at, period_end),
    ]
