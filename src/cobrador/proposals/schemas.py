from datetime import date, datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from cobrador.core.pagination import Page
from cobrador.customers.schemas import DOCUMENT_DESCRIPTION, Locale, Metadata, _not_blank, _valid_email

STRICT = ConfigDict(extra="forbid", strict=True)
ProposalStatus = Literal["draft", "sent", "viewed", "accepted", "declined", "expired", "canceled"]

PROPOSAL_DESCRIPTION = (
    "An offer of subscriptions to an existing billing account (`account`) or a prospect (`prospect`), "
    "valid until the end of `expires_on`, a day in the organization's time zone. States: draft -> sent -> "
    "viewed -> accepted | declined | expired | canceled; only a draft is editable. Accepting creates the "
    "prospect's billing account and one subscription per line in one transaction. The proposal-expiration "
    "job (00:30 UTC) expires open proposals whose last valid day has ended; proposal-reminder (09:00 UTC) "
    "sends proposal.expiring_soon on the organization's reminder days (default 3 and 1 days before)."
)


def _iso_day(value):
    if not isinstance(value, str):
        raise PydanticCustomError("date_type", "a date (YYYY-MM-DD) is required")
    return value


Day = Annotated[date, BeforeValidator(_iso_day), Field(strict=False)]





class ProspectIn(Schema):
    model_config = STRICT

    name: str = Field(..., min_length=1, max_length=200)
    email: str = Field(..., max_length=254)
    document: str | None = Field(None, max_length=24, description=DOCUMENT_DESCRIPTION)
    locale: Locale = Field("pt-BR", description="The language of the proposal page and e-mails.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value):
        return _not_blank(value)

    @field_validator("email")
    @classmethod
    def _check_email(cls, value):
        return _valid_email(value)


class ProposalLineIn(Schema):
    model_config = STRICT

    plan: str = Field(..., max_length=40, description="An active plan (plan_ id).")
    quantity: int = Field(1, ge=1, le=1_000_000)
    coupon: str | None = Field(None, max_length=64, description="A coupon code or coupon_ id, redeemed on acceptance.")
    commitment_months: int = Field(0, ge=0, le=120, description="Term length (a whole number of periods).")
    trial_days: int | None = Field(None, ge=0, le=730, description="Overrides the plan's trial_days.")
    unit_amount: int | None = Field(None, ge=0, le=10**12, description=(
        "A price per unit in minor units that overrides the plan's amount: shown on the proposal page and, on "
        "acceptance, the subscription's unit_amount (kept until its plan changes)."))


class ProposalCreate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"description": PROPOSAL_DESCRIPTION})

    account: str | None = Field(None, max_length=40, description="An existing billing account (ba_ id).")
    prospect: ProspectIn | None = Field(None, description="Who the proposal is for, when not yet a billing account.")
    lines: list[ProposalLineIn] = Field(..., min_length=1, max_length=20)
    expires_on: Day = Field(..., description="The last valid day, in the organization's time zone.")
    message: str = Field("", max_length=5000, description="Shown on the proposal page and in the e-mail.")
    metadata: Metadata = Field(default_factory=dict)


class ProposalUpdate(Schema):
    """A draft only; only the fields sent change (`lines` replaces every line)."""
    model_config = STRICT

    account: str | None = Field(None, max_length=40)
    prospect: ProspectIn | None = None
    lines: list[ProposalLineIn] | None = Field(None, min_length=1, max_length=20)
    expires_on: Day | None = None
    message: str | None = Field(None, max_length=5000)
    metadata: Metadata | None = None


class ProposalDecline(Schema):
    model_config = STRICT

    reason: str = Field("", max_length=500)


class ProspectOut(Schema):
    name: str
    email: str
    document: str | None
    locale: str


class ProposalLineOut(Schema):
    plan: str
    plan_name: str
    interval: str
    interval_count: int
    quantity: int
    plan_amount: int = Field(description="The plan's own amount per unit.")
    unit_amount: int = Field(description="The price per unit of this proposal: price_override, else plan_amount.")
    price_override: int | None = Field(description="The price per unit agreed instead of the plan's amount.")
    amount: int = Field(description="unit_amount × quantity, each period.")
    coupon: str | None
    discount: int = Field(description="The coupon's discount on the first paid period.")
    commitment_months: int
    trial_days: int | None
    subscription: str | None = Field(description="The subscription made from this line on acceptance.")


class ProposalOut(Schema):
    model_config = ConfigDict(json_schema_extra={"description": PROPOSAL_DESCRIPTION})

    id: str
    object: Literal["proposal"]
    number: int
    account: str | None
    prospect: ProspectOut | None
    email: str
    currency: str
    lines: list[ProposalLineOut]
    subtotal: int
    discount: int
    total: int = Field(description="The first paid period of every line, after coupons.")
    expires_on: date
    expires_at: datetime = Field(description="The end of expires_on in the organization's time zone.")
    message: str
    status: ProposalStatus
    sent_at: datetime | None
    first_viewed_at: datetime | None
    last_viewed_at: datetime | None
    view_count: int
    accepted_at: datetime | None
    declined_at: datetime | None
    decline_reason: str | None
    expired_at: datetime | None
    canceled_at: datetime | None
    subscriptions: list[str]
    metadata: dict
    created_at: datetime
    updated_at: datetime


ProposalPage = Page[ProposalOut]


class ProposalSettingsOut(Schema):
    object: Literal["proposal_settings"]
    reminder_days: list[int] = Field(description="Days before the last valid day on which a reminder goes out.")
    updated_at: datetime


class ProposalSettingsUpdate(Schema):
    model_config = STRICT

    reminder_days: list[Annotated[int, Field(ge=1, le=60)]] = Field(..., max_length=5)


ANALYTICS_DESCRIPTION = (
    "Proposals sent in [from, to): how many were viewed, accepted, declined, expired, canceled or are still "
    "open; the conversion rate over closed proposals (accepted / (accepted + declined + expired)); mean, "
    "median and p90 seconds from send to first view and to acceptance; and the same counts by month of "
    "sending (in the organization's time zone)."
)


class ProposalCounts(Schema):
    sent: int
    viewed: int
    open: int
    accepted: int
    declined: int
    expired: int
    canceled: int
    conversion_rate: float | None = Field(description="accepted / (accepted + declined + expired); null with none.")


class DurationStats(Schema):
    count: int
    mean_seconds: int | None
    median_seconds: int | None
    p90_seconds: int | None


class ProposalMonth(ProposalCounts):
    month: str = Field(description="YYYY-MM, in the organization's time zone.")


class ProposalAnalyticsOut(ProposalCounts):
    model_config = ConfigDict(json_schema_extra={"description": ANALYTICS_DESCRIPTION}, populate_by_name=True)

    object: str = "proposal_analytics"
    from_: datetime = Field(alias="from")
    to: datetime
    time_to_first_view: DurationStats
    time_to_acceptance: DurationStats
    by_month: list[ProposalMonth]
