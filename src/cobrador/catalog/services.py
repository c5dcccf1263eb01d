"""Plans and coupons: creating them, and the coupon rules invoicing relies on. Services never commit."""

from datetime import datetime

from django.db.models import F, Q

from cobrador.catalog.models import Coupon, Plan
from cobrador.core.errors import ValidationFailed
from cobrador.core.money import percent_of


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
    """Count one redemption of `coupon` for `plan`, or raise ValidationFailed(field="coupon").

    The count is a conditional UPDATE, so concurrent redemptions never exceed max_redemptions.
    Call inside the caller's transaction."""
    if coupon.organization_id != plan.organization_id:
        raise ValidationFailed("The coupon belongs to another organization.", field="coupon")
    if not coupon.active:
        raise ValidationFailed("The coupon is not active.", field="coupon")
    if coupon.expires_at is not None and coupon.expires_at <= as_of:
        raise ValidationFailed("The coupon has expired.", field="coupon")
    if not coupon_applies_to(coupon, plan):
        raise ValidationFailed("The coupon does not apply to this plan.", field="coupon")
    counted = (Coupon.objects.filter(pk=coupon.pk, active=True)
               .filter(Q(max_redemptions__isnull=True) | Q(times_redeemed__lt=F("max_redemptions")))
               .update(times_redeemed=F("times_redeemed") + 1))
    if not counted:
        raise ValidationFailed("The coupon has reached its maximum redemptions.", field="coupon")
    coupon.refresh_from_db(fields=["times_redeemed"])
    return coupon
