from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator

PaymentMethodType = Literal["card", "bank_slip", "pix"]

POLICY_DESCRIPTION = (
    "The dunning policy. The first failed charge of an open invoice opens dunning (the account becomes "
    "delinquent: billing_account.delinquent). Retry k (1..max_retries) is due retry_interval_days[k-1] "
    "days after the previous attempt failed (attempt 0 is the first charge); a list shorter than "
    "max_retries repeats its last entry, entries beyond max_retries are ignored. The payment-retry job "
    "(every 6 h) runs the due retries. A change affects only attempts not yet scheduled: the next "
    "attempt's date and methods are fixed when the attempt before it ends. "
    "An attempt walks retry_payment_methods in order: a synchronous method (card) is charged and on "
    "failure the walk goes on; an asynchronous method (bank_slip, pix) issues a payable document, sends "
    "it to the customer and ends the attempt (its payment arrives by callback). A method the account "
    "cannot use (no card; no CPF/CNPJ for a boleto) is recorded as skipped and the walk goes on. After a "
    "hard decline that card is never charged again for that invoice. A newer boleto/PIX for an invoice "
    "cancels the older one. Every method tried is a recovery record (GET /v1/recovery_records); each "
    "attempt emits dunning.retry_attempted, the last one dunning.exhausted. "
    "auto_retry_enabled false: no automatic retries (due retries wait, and run at the first payment-retry "
    "run after it is switched back on); a retry through POST /v1/invoices/{id}/pay still works. A payment "
    "method saved on an account with invoices in dunning triggers an immediate retry with that method "
    "(the next attempt number); canceling a subscription cancels the pending retries of its invoices. "
    "Suspension: with suspend_after_retries true, the suspension-check job (02:00 UTC) suspends an account "
    "once grace_period_days have passed since it became delinquent (its first failed charge) and it still "
    "has an unpaid invoice whose retries are exhausted (or, with auto_retry_enabled false, any unpaid "
    "invoice in dunning), recording suspended_at and the reason with the invoices "
    "(billing_account.suspended). Invoices that join the open case later (the next period's, with fresh "
    "retries) neither reset nor postpone the grace period. With false, no account is ever suspended "
    "automatically. While an "
    "account is suspended, invoice generation skips its subscriptions (counted as skipped). "
    "Reactivation: as soon as a suspended or delinquent account has no overdue invoice left (an open "
    "invoice with something due that is past its due date or in dunning) because of a retry's success, "
    "a boleto/PIX callback or a manual payment (or a void), it is reactivated at once, in that same "
    "transaction (billing_account.reactivated), its past_due subscriptions become active, and billing "
    "resumes from the current period (periods that began while it was suspended are not billed)."
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

    max_retries: int = Field(None, ge=0, le=20, description="Automatic retries after the first failure, 0-20.")
    retry_interval_days: list[Annotated[int, Field(ge=1, le=60)]] = Field(
        None, min_length=1,
        description="Days before each retry, each 1-60. Entries beyond max_retries are ignored; a shorter "
                    "list repeats its last entry.")
    suspend_after_retries: bool = Field(None, description="Suspend the account once retries are "
                                                           "exhausted and the grace period has passed.")
    grace_period_days: int = Field(
        None, ge=0, le=365, description="Days from delinquency (the case's first failed charge) to suspension, "
                                        "0-365; invoices joining the case later do not postpone it.")
    auto_retry_enabled: bool = Field(None, description="False: no automatic retries.")
    retry_payment_methods: list[PaymentMethodType] = Field(
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
