from datetime import datetime
from decimal import Decimal
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from cobrador.core.params import Timestamp
from cobrador.customers.schemas import Currency

STRICT = ConfigDict(extra="forbid", strict=True)

PLAN_DESCRIPTION = (
    "A price: `amount` minor units (centavos) per unit, every `interval_count` `interval`s (at most 3 years). "
    "A subscription's quantity multiplies it. The price fields (amount, currency, interval, interval_count) "
    "are immutable after creation: to change a price create a new plan and move subscriptions to it; "
    "only name, active and trial_days can be changed.")


class PlanCreate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"description": PLAN_DESCRIPTION})

    name: str = Field(..., min_length=1, max_length=200)
    amount: int = Field(..., ge=0, le=10**12, description="Minor units per unit and period.")
    currency: Currency | None = Field(None, description="Defaults to the organization's currency.")
    interval: Literal["month", "year"] = "month"
    interval_count: int = Field(1, ge=1, le=36, description="Periods of `interval` per billing period.")
    trial_days: int = Field(0, ge=0, le=730)
    active: bool = True

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value):
        if not value.strip():
            raise PydanticCustomError("blank", "must not be blank")
        return value.strip()


class PlanUpdate(Schema):
    """Only name, active and trial_days change; the price fields are immutable (unknown fields here)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"description": PLAN_DESCRIPTION})

    name: str = Field(None, min_length=1, max_length=200)
    active: bool = None
    trial_days: int = Field(None, ge=0, le=730, description="Applies to subscriptions created from now on.")

    @field_validator("name", "active", "trial_days", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise PydanticCustomError("null", "must not be null")
        return value

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value):
        if not value.strip():
            raise PydanticCustomError("blank", "must not be blank")
        return value.strip()


class PlanOut(Schema):
    id: str
    object: str = "plan"
    name: str
    amount: int
    currency: str
    interval: Literal["month", "year"]
    interval_count: int
    trial_days: int
    active: bool
    created_at: datetime

    model_config = ConfigDict(json_schema_extra={"description": PLAN_DESCRIPTION})


class PlanPage(Schema):
    data: list[PlanOut]
    has_more: bool
    next_cursor: str | None = None


COUPON_DESCRIPTION = (
    "A discount: exactly one of `percent_off` (more than 0 and at most 100, up to 2 decimals, rounded half-up "
    "on each invoice) or `amount_off` (minor units, with its `currency`, never more than the amount "
    "discounted). `duration` once applies to one invoice, repeating to `duration_in_periods` billing periods, "
    "forever to all. No new redemptions after `expires_at` or beyond `max_redemptions`. With `plans`, "
    "only subscriptions to those plans can redeem it.")


class CouponCreate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"description": COUPON_DESCRIPTION})

    code: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                      description="What customers type; unique within the organization.")
    name: str = Field("", max_length=200)
    percent_off: float | None = Field(None, gt=0, le=100, description="More than 0, at most 100, up to 2 decimals.")
    amount_off: int | None = Field(None, gt=0, le=10**12)
    currency: Currency | None = Field(None, description="Required with amount_off, refused with percent_off.")
    duration: Literal["once", "repeating", "forever"] = "once"
    duration_in_periods: int | None = Field(None, ge=1, le=1200, description="Required for repeating only.")
    expires_at: Timestamp | None = Field(None, description="In the future: the last moment it can be redeemed.")
    max_redemptions: int | None = Field(None, ge=1, le=2_000_000_000)
    plans: list[str] | None = Field(None, max_length=100, description="Public ids of the plans it is limited to.")

    @field_validator("percent_off")
    @classmethod
    def _two_decimals(cls, value):
        if value is not None and Decimal(str(value)).as_tuple().exponent < -2:
            raise PydanticCustomError("decimals", "at most 2 decimal places")
        return value


class CouponUpdate(Schema):
    model_config = STRICT

    name: str = Field(None, max_length=200)
    active: bool = None

    @field_validator("name", "active", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise PydanticCustomError("null", "must not be null")
        return value


class CouponOut(Schema):
    id: str
    object: str = "coupon"
    code: str
    name: str
    percent_off: float | None
    amount_off: int | None
    currency: str | None
    duration: Literal["once", "repeating", "forever"]
    duration_in_periods: int | None
    expires_at: datetime | None
    max_redemptions: int | None
    times_redeemed: int
    plans: list[str]
    active: bool
    valid: bool = Field(description="Active, not expired and below max_redemptions: can be redeemed now.")
    created_at: datetime

    model_config = ConfigDict(json_schema_extra={"description": COUPON_DESCRIPTION})


class CouponPage(Schema):
    data: list[CouponOut]
    has_more: bool
    next_cursor: str | None = None
