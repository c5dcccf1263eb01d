"""The business conditions of plans and coupons, each with its stable `type`."""

from cobrador.core.errors import Conflict, ValidationFailed


class CouponCodeTaken(Conflict):
    type = "coupon_code_taken"


class CouponNotRedeemable(ValidationFailed):
    """Inactive, expired, exhausted, of another organization, or not for the plan."""
    type = "coupon_not_redeemable"


class ImmutableField(ValidationFailed):
    """A plan's price or what a coupon gives cannot change once created."""
    type = "immutable_field"
