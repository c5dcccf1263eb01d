from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator

from cobrador.core.params import Timestamp

STRICT = ConfigDict(extra="forbid", strict=True)
RenewalMode = Literal["auto", "prompt"]
SubscriptionStatus = Literal["trialing", "active", "past_due", "paused", "canceled", "expired"]

SUBSCRIPTION_DESCRIPTION = (
    "An account on a plan, renewing period after period. Periods last the plan's interval × "
    "interval_count and start on `billing_anchor_day`, the day of the month the first paid period "
    "started (at that start's time of day, UTC); a 31st falls on the last day of shorter months and "
    "returns to the 31st when a month has one (Jan 31 -> Feb 28/29 -> Mar 31), and a yearly plan started "
    "on Feb 29 renews on Feb 28 except in leap years. "
    "With a trial the subscription is `trialing` and its current period is the trial; when the trial "
    "ends the first paid period starts if a payment method is on file (the subscription's, else the "
    "account's default), otherwise the subscription is `paused` until resumed. "
    "A term is `commitment_months` long (a whole number of periods) and ends at `commitment_end`: in "
    "`auto` renewal mode a new term starts by itself; in `prompt` mode the customer is asked "
    "(event subscription.renewal_prompted, COBRADOR_RENEWAL_PROMPT_DAYS (default 15) days before the "
    "term ends) and the subscription renews only if the renewal was confirmed (POST "
    "/subscriptions/{id}/confirm_renewal), otherwise it `expired` at commitment_end. "
    "A change of plan or quantity waits in `pending_plan` / `pending_quantity` until the next period. "
    "Cancellation happens at the end of the current period by default; under a commitment it is "
    "scheduled at commitment_end. `canceled_at` is when cancellation was requested, `ended_at` when the "
    "subscription stopped. No refund happens on any change; a change of plan or quantity with "
    "`proration: now` is invoiced at once for the rest of the period. "
    "A subscription that starts paid now (no trial, `start` not in the future) is invoiced at creation "
    "(`first_invoice: now`, the default) and charged right after the request, so `latest_invoice` is "
    "`open` in the 201 and becomes `paid` within moments (invoice.paid, payment.succeeded). When that "
    "first charge is declined the subscription stays `active` and the invoice `open` in dunning like any "
    "other (invoice.payment_failed; retries per the dunning settings); once the invoice is overdue (the "
    "payment-retry job, the day after its due date) the subscription is `past_due`, and it is `active` "
    "again the moment the invoice is paid. cobrador has no separate `incomplete` status: use "
    "`latest_invoice.status` to hold back service until the first invoice is paid. "
    "The subscription-renewal job (daily, 00:00 UTC) advances periods; the invoice-generation job "
    "(daily, 01:00 UTC) invoices each later period once, and charging starts as soon as it does."
)


class SubscriptionCreate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"description": SUBSCRIPTION_DESCRIPTION})

    account: str = Field(..., max_length=40, description="The billing account (ba_ id).")
    plan: str = Field(..., max_length=40, description="The plan (plan_ id); must be active.")
    quantity: int = Field(1, ge=1, le=1_000_000, description="Units billed each period: plan amount × quantity.")
    coupon: str | None = Field(None, max_length=64, description="A coupon code or coupon_ id, redeemed now.")
    payment_method: str | None = Field(
        None, max_length=40, description="A pm_ id of the account; default: the account's default payment method.")
    trial_days: int | None = Field(
        None, ge=0, le=730, description="Trial length in days, overriding the plan's trial_days (0: no trial).")
    trial_end: Timestamp | None = Field(None, description="When the trial ends (instead of trial_days).")
    commitment_months: int = Field(
        0, ge=0, le=120, description="Term length in months (a whole number of periods); 0: no commitment.")
    renewal_mode: RenewalMode = Field(
        "auto", description="auto: terms renew by themselves; prompt: only after confirm_renewal (needs a term).")
    start: Timestamp | None = Field(
        None, description="When the first period (or the trial) starts; default now. A past start is billed "
                          "from then on by the next sweeps.")
    metadata: dict[str, str] | None = Field(None, description="Your own key-value pairs.")
    first_invoice: Literal["now", "next_run"] = Field(
        "now", description="now (default): a subscription that starts paid now (no trial, `start` not in the "
                           "future) gets its first period's invoice in this request, charged right after with "
                           "the subscription's payment method; next_run: the next invoice-generation run "
                           "invoices it. A trial and a future start always wait for the nightly run.")


class SubscriptionUpdate(Schema):
    """Only the fields sent change. `plan` and `quantity` take effect when the next period starts."""

    model_config = STRICT

    quantity: int = Field(None, ge=1, le=1_000_000, description="From the next period on.")
    plan: str = Field(None, max_length=40, description="A plan_ id in the same currency, from the next "
                                                       "period on.")
    renewal_mode: RenewalMode = None
    payment_method: str = Field(None, max_length=40, description="A pm_ id of the account.")
    metadata: dict[str, str] = None
    proration: Literal["none", "now"] = Field(
        "none", description="none (default): a new plan or quantity waits for the next period. now: it applies "
                            "at once and an invoice for the rest of the current period is issued and charged at "
                            "once: a credit line for the unused part of the old price and a charge line for the "
                            "new one, prorated by the second and rounded half-up once per line, coupons "
                            "prorating with the price they discount. When the credit exceeds the charge (a "
                            "downgrade) the invoice is zero and the difference becomes account credit, never a "
                            "refund. A trialing subscription changes at once with no invoice.")

    @field_validator("quantity", "plan", "renewal_mode", "payment_method", "metadata", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise ValueError("must not be null")
        return value


class SubscriptionCancel(Schema):
    """At the end of the current period by default (a trial: when it ends). Under a commitment the
    cancellation is scheduled at commitment_end; canceling sooner (immediately, or a cancel_at before
    it) is a 409 naming that date."""

    model_config = STRICT

    immediately: bool = Field(False, description="End now. No proration or refund.")
    cancel_at: Timestamp | None = Field(None, description="End at this future time instead.")
    reason: str = Field("", max_length=500, description="Why, in your words.")


class SubscriptionResume(Schema):
    """Resumes a paused subscription (a new paid period starts now, anchored on today) or withdraws
    a scheduled cancellation."""

    model_config = STRICT

    payment_method: str | None = Field(None, max_length=40, description="A pm_ id of the account to bill.")


class LatestInvoice(Schema):
    id: str
    status: Literal["draft", "open", "paid", "void", "uncollectible"]
    total: int
    amount_due: int
    currency: str


class SubscriptionOut(Schema):
    model_config = ConfigDict(json_schema_extra={"description": SUBSCRIPTION_DESCRIPTION})

    id: str
    object: str = "subscription"
    account: str
    plan: str
    quantity: int
    unit_amount: int | None = Field(description="A price per unit agreed for this subscription (e.g. in an accepted "
                                                "proposal) instead of the plan's amount; null: the plan's amount. A "
                                                "change of plan drops it.")
    coupon: str | None
    coupon_periods_used: int = Field(description="Invoices the coupon has discounted so far.")
    payment_method: str | None
    status: SubscriptionStatus
    started_at: datetime
    trial_end: datetime | None
    current_period_start: datetime
    current_period_end: datetime
    billing_anchor_day: int
    commitment_months: int
    commitment_end: datetime | None
    renewal_mode: RenewalMode
    renewal_confirmed_at: datetime | None
    renewal_prompted_at: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    cancellation_reason: str
    canceled_at: datetime | None = Field(description="When cancellation was requested.")
    ended_at: datetime | None = Field(description="When the subscription stopped (canceled or expired).")
    pending_plan: str | None
    pending_quantity: int | None
    metadata: dict
    created_at: datetime
    updated_at: datetime
    latest_invoice: LatestInvoice | None = Field(
        None, description="The newest invoice of the subscription (on create, retrieve and change responses; "
                          "not in lists or events).")


class SubscriptionPage(Schema):
    data: list[SubscriptionOut]
    has_more: bool
    next_cursor: str | None = None
