"""Plans and coupons: creating them, and the coupon rules invoicing relies on. Services never commit."""

from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from cobrador.catalog.errors import CouponCodeTaken, CouponNotRedeemable, ImmutableField
from cobrador.catalog.models import Coupon, Plan
from cobrador.core import clock
from cobrador.core.errors import ValidationFailed
from cobrador.core.money import percent_of

MAX_MONTHS_PER_PERIOD = 36


def coupon_discount(coupon: Coupon, amount: int) -> int:
    """The discount `coupon` gives on `amount` minor units: percent rounded half-up, or the fixed
    amount capped at `amount`, so a discount never exceeds what it discounts."""
    if amount <= 0:
        return 0
    if coupon.percent_off is not None:
        return min(percent_of(amount, coupon.percent_off), amount)
    return min(coupon.amount_off or 0, amount)


def coupon_applies_to(coupon: Coupon, plan: Plan) -> bool:
    """Whether `coupon` may discount `plan`: no plan restriction or `plan` among them, and a fixed
    amount only in the plan's currency. Uses a prefetched `plans` when there is one."""
    if coupon.amount_off is not None and coupon.currency != plan.currency:
        return False
    restricted_to = {p.pk for p in coupon.plans.all()}
    return not restricted_to or plan.pk in restricted_to


def redeem_coupon(*, coupon: Coupon, plan: Plan, as_of: datetime) -> Coupon:
    """Count one redemption of `coupon` for `plan`, or raise CouponNotRedeemable(field="coupon").

    The count is a conditional UPDATE, so concurrent redemptions never exceed max_redemptions.
    Call inside the caller's transaction."""
    if coupon.organization_id != plan.organization_id:
        raise CouponNotRedeemable("The coupon belongs to another organization.", field="coupon")
    if not coupon.active:
        raise CouponNotRedeemable("The coupon is not active.", field="coupon")
    if coupon.expires_at is not None and coupon.expires_at <= as_of:
        raise CouponNotRedeemable("The coupon has expired.", field="coupon")
    if not coupon_applies_to(coupon, plan):
        raise CouponNotRedeemable("The coupon does not apply to this plan.", field="coupon")
    counted = (Coupon.objects.filter(pk=coupon.pk, active=True)
               .filter(Q(max_redemptions__isnull=True) | Q(times_redeemed__lt=F("max_redemptions")))
               .update(times_redeemed=F("times_redeemed") + 1))
    if not counted:
        raise CouponNotRedeemable("The coupon has reached its maximum redemptions.", field="coupon")
    coupon.refresh_from_db(fields=["times_redeemed"])
    return coupon


def coupon_is_redeemable(coupon: Coupon, as_of: datetime) -> bool:
    """Active, not expired at `as_of` and below max_redemptions (plan restrictions aside)."""
    return (coupon.active and (coupon.expires_at is None or coupon.expires_at > as_of)
            and (coupon.max_redemptions is None or coupon.times_redeemed < coupon.max_redemptions))


# --- plans ------------------------------------------------------------------------------------------------

def plan_data(plan: Plan) -> dict:
    return {
        "id": plan.public_id,
        "object": "plan",
        "name": plan.name,
        "amount": plan.amount,
        "currency": plan.currency,
        "interval": plan.interval,
        "interval_count": plan.interval_count,
        "trial_days": plan.trial_days,
        "active": plan.active,
        "created_at": plan.created_at,
    }


def create_plan(*, organization, name: str, amount: int, currency: str | None = None, interval: str = "month",
                interval_count: int = 1, trial_days: int = 0, active: bool = True) -> Plan:
    if interval_count * (12 if interval == "year" else 1) > MAX_MONTHS_PER_PERIOD:
        raise ValidationFailed("interval_count: a billing period is at most 3 years", field="interval_count")
    return Plan.objects.create(organization=organization, name=name, amount=amount,
                               currency=currency or organization.default_currency, interval=interval,
                               interval_count=interval_count, trial_days=trial_days, active=active,
                               created_at=clock.now())


def update_plan(*, plan: Plan, changes: dict) -> Plan:
    """Only name, active and trial_days may change: the price is immutable once created."""
    price_fields = set(changes) - {"name", "active", "trial_days"}
    if price_fields:
        field = sorted(price_fields)[0]
        raise ImmutableField(f"{field}: the price of a plan cannot change; create a new plan", field=field)
    for field, value in changes.items():
        setattr(plan, field, value)
    if changes:
        plan.save(update_fields=list(changes))
    return plan


# --- coupons ----------------------------------------------------------------------------------------------

def coupon_data(coupon: Coupon, *, as_of: datetime | None = None) -> dict:
    return {
        "id": coupon.public_id,
        "object": "coupon",
        "code": coupon.code,
        "name": coupon.name,
        "percent_off": float(coupon.percent_off) if coupon.percent_off is not None else None,
        "amount_off": coupon.amount_off,
        "currency": coupon.currency or None,
        "duration": coupon.duration,
        "duration_in_periods": coupon.duration_in_periods,
        "expires_at": coupon.expires_at,
        "max_redemptions": coupon.max_redemptions,
        "times_redeemed": coupon.times_redeemed,
        "plans": [plan.public_id for plan in coupon.plans.all()],
        "active": coupon.active,
        "valid": coupon_is_redeemable(coupon, as_of or clock.now()),
        "created_at": coupon.created_at,
    }


def _plans_of(organization, plan_ids: list[str]) -> list[Plan]:
    wanted = set(plan_ids)
    plans = list(Plan.objects.filter(organization=organization, public_id__in=wanted))
    unknown = wanted - {plan.public_id for plan in plans}
    if unknown:
        raise ValidationFailed(f"plans: no such plan: {', '.join(sorted(unknown))}", field="plans")
    return plans


def create_coupon(*, organization, code: str, name: str = "", percent_off: float | Decimal | None = None,
                  amount_off: int | None = None, currency: str | None = None, duration: str = "once",
                  duration_in_periods: int | None = None, expires_at: datetime | None = None,
                  max_redemptions: int | None = None, plans: list[str] | None = None) -> Coupon:
    if (percent_off is None) == (amount_off is None):
        field = "percent_off" if percent_off is None else "amount_off"
        raise ValidationFailed(f"{field}: give exactly one of percent_off and amount_off", field=field)
    if percent_off is not None:
        percent = Decimal(str(percent_off))
        if not Decimal(0) < percent <= Decimal(100) or percent.as_tuple().exponent < -2:
            raise ValidationFailed("percent_off: more than 0, at most 100, up to 2 decimals", field="percent_off")
        if currency is not None:
            raise ValidationFailed("currency: only an amount_off takes a currency", field="currency")
    else:
        percent = None
        if amount_off <= 0:
            raise ValidationFailed("amount_off: must be positive", field="amount_off")
        if currency is None:
            raise ValidationFailed("currency: required with amount_off", field="currency")
    if duration == "repeating" and duration_in_periods is None:
        raise ValidationFailed("duration_in_periods: required for a repeating coupon", field="duration_in_periods")
    if duration != "repeating" and duration_in_periods is not None:
        raise ValidationFailed(f"duration_in_periods: only a repeating coupon takes it, not {duration}",
                               field="duration_in_periods")
    if duration_in_periods is not None and duration_in_periods < 1:
        raise ValidationFailed("duration_in_periods: at least 1", field="duration_in_periods")
    now = clock.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed("expires_at: must be in the future", field="expires_at")
    if max_redemptions is not None and max_redemptions < 1:
        raise ValidationFailed("max_redemptions: at least 1", field="max_redemptions")
    restricted_to = _plans_of(organization, plans or [])
    try:
        with transaction.atomic():  # a savepoint, so a duplicate code leaves the caller's transaction usable
            coupon = Coupon.objects.create(
                organization=organization, code=code, name=name, percent_off=percent, amount_off=amount_off,
                currency=currency or "", duration=duration, duration_in_periods=duration_in_periods,
                expires_at=expires_at, max_redemptions=max_redemptions, created_at=now)
    except IntegrityError as exc:
        raise CouponCodeTaken(f"code: a coupon with code {code!r} already exists", field="code") from exc
    if restricted_to:
        coupon.plans.set(restricted_to)
    return coupon


def update_coupon(*, coupon: Coupon, changes: dict) -> Coupon:
    """Only name and active may change: what a coupon gives is fixed once customers may hold it."""
    others = set(changes) - {"name", "active"}
    if others:
        field = sorted(others)[0]
        raise ImmutableField(f"{field}: cannot change after creation", field=field)
    for field, value in changes.items():
        setattr(coupon, field, value)
    if changes:
        coupon.save(update_fields=list(changes))
    return coupon
