from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator

PaymentMethodType = Literal["card", "bank_slip", "pix"]

POLICY_DESCRIPTION = (
    "The dunning policy. The first failed charge of an open invoice opens dunning. Retry k "
    "(1..max_retries) is due retry_interval_days[k-1] days after the previous attempt failed; entries "
    "beyond max_retries are ignored and a list shorter than max_retries repeats its last entry. Each "
    "attempt walks retry_payment_methods in order: a card is charged and on failure the walk goes on; a "
    "bank_slip or pix issues a payable document and ends the attempt. With suspend_after_retries the "
    "account is suspended once retries are exhausted and grace_period_days have passed since it became "
    "delinquent. auto_retry_enabled false stops automatic retries (manual payment still works). A change "
    "affects only attempts not yet scheduled."
)


class DunningConfigOut(Schema):
    id: str
    object: str = "dunning_config"
    max_retries: int
    retry_interval_days: list[int]
    suspend_after_retries: bool
    grace_period_days: int
    auto_retry_enabled: bool
    retry_payment_methods: list[PaymentMethodType]
    updated_at: datetime

    model_config = ConfigDict(json_schema_extra={"description": POLICY_DESCRIPTION})


class DunningConfigPatch(Schema):
    """Only the fields sent change. Unknown fields and wrong types are rejected (422)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"description": POLICY_DESCRIPTION})

    max_retries: int | None = Field(None, ge=0, le=20, description="Automatic retries after the first failure, 0-20.")
    retry_interval_days: list[Annotated[int, Field(ge=1, le=60)]] | None = Field(
        None, min_length=1,
        description="Days before each retry, each 1-60. Entries beyond max_retries are ignored; a shorter "
                    "list repeats its last entry.")
    suspend_after_retries: bool | None = Field(None, description="Suspend the account once retries are "
                                                                  "exhausted and the grace period has passed.")
    grace_period_days: int | None = Field(None, ge=0, le=365, description="Days from delinquency to suspension, 0-365.")
    auto_retry_enabled: bool | None = Field(None, description="False: no automatic retries.")
    retry_payment_methods: list[PaymentMethodType] | None = Field(
        None, min_length=1, description="Methods each attempt walks, in order: a non-empty subset of card, "
                                        "bank_slip, pix without repeats.")

    @field_validator("retry_payment_methods")
    @classmethod
    def _no_repeats(cls, value):
        if value is not None and len(set(value)) != len(value):
            raise ValueError("methods must not repeat")
        return value

    @field_validator("max_retries", "grace_period_days", "suspend_after_retries", "auto_retry_enabled",
                     "retry_interval_days", "retry_payment_methods", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise ValueError("must not be null")
        return value
