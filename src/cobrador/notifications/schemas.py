from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator

Locale = Literal["pt-BR", "en"]
Channel = Literal["email", "in_app", "webhook"]

SETTINGS_DESCRIPTION = (
    "When customers are told what. invoice_due_soon_days: days before an open invoice's due date for the "
    "reminder (0 = on the due date). invoice_overdue_days: days after the due date for each overdue reminder. "
    "trial_ending_days: days before a trial ends. card_expiring_days: days before a card expires (the end of "
    "its expiry month) for each alert; the weekly card-expiring job alerts within the widest. "
    "renewal_prompt_days: days before a prompt-mode term ends (a subscription policy kept by the subscriptions "
    "app and served here; never set: the server's COBRADOR_RENEWAL_PROMPT_DAYS). "
    "update_card_url and confirm_renewal_url: "
    "pages of your application the notices link to, with {account_id}, {subscription_id}, "
    "{payment_method_id} and {invoice_id} placeholders (null: no link; card notices then link to cobrador's "
    "hosted card update page, where the card goes from the customer's browser to the gateway and cobrador "
    "receives only a token). mandatory_types: notification types "
    "customers cannot opt out of. organization_locale: the language of cobrador's own e-mails to you."
)


def _not_null(value):
    if value is None:
        raise ValueError("must not be null")
    return value


class NotificationSettingsOut(Schema):
    id: str
    object: str = "notification_settings"
    invoice_due_soon_days: int
    invoice_overdue_days: list[int]
    trial_ending_days: int
    card_expiring_days: list[int]
    renewal_prompt_days: int
    update_card_url: str | None
    confirm_renewal_url: str | None
    mandatory_types: list[str]
    organization_locale: Locale
    updated_at: datetime

    model_config = ConfigDict(json_schema_extra={"description": SETTINGS_DESCRIPTION})


class NotificationSettingsPatch(Schema):
    """Only the fields sent change. Unknown fields and wrong types are rejected (422 naming the field)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"description": SETTINGS_DESCRIPTION})

    invoice_due_soon_days: int = Field(None, ge=0, le=60)
    invoice_overdue_days: list[Annotated[int, Field(ge=1, le=365)]] = Field(None, min_length=1, max_length=10)
    trial_ending_days: int = Field(None, ge=1, le=60)
    card_expiring_days: list[Annotated[int, Field(ge=1, le=90)]] = Field(None, min_length=1, max_length=5)
    renewal_prompt_days: int = Field(None, ge=1, le=90)
    update_card_url: str | None = Field(None, max_length=2048)
    confirm_renewal_url: str | None = Field(None, max_length=2048)
    mandatory_types: list[str] = Field(None, max_length=20)
    organization_locale: Locale = None

    @field_validator("invoice_due_soon_days", "invoice_overdue_days", "trial_ending_days", "card_expiring_days",
                     "renewal_prompt_days", "mandatory_types", "organization_locale", mode="before")
    @classmethod
    def _no_nulls(cls, value):
        return _not_null(value)

    @field_validator("invoice_overdue_days", "card_expiring_days", "mandatory_types")
    @classmethod
    def _no_repeats(cls, value):
        if value is not None and len(set(value)) != len(value):
            raise ValueError("values must not repeat")
        return value


class TemplateIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    subject: str = Field(..., min_length=1, max_length=2000)
    html_body: str = Field(..., min_length=1, max_length=100_000)
    text_body: str = Field(..., min_length=1, max_length=100_000)


class TemplateDraft(Schema):
    """Parts to preview instead of the saved ones (each optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    subject: str = Field(None, max_length=2000)
    html_body: str = Field(None, max_length=100_000)
    text_body: str = Field(None, max_length=100_000)


class TemplateOut(Schema):
    id: str | None = Field(description="The organization's template id; null while the default is used.")
    object: str = "notification_template"
    type: str
    locale: Locale
    subject: str
    html_body: str
    text_body: str
    is_default: bool
    description: str
    variables: list[str] = Field(description="The names the template can use.")
    updated_at: datetime | None


class TemplateSummary(Schema):
    type: str
    locale: Locale
    is_default: bool
    updated_at: datetime | None


class TemplateList(Schema):
    data: list[TemplateSummary]


class PreviewOut(Schema):
    object: str = "notification_preview"
    type: str
    locale: Locale
    subject: str
    html: str
    text: str
    context: dict = Field(description="The sample data it was rendered with.")


class TestSendIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    to: str = Field(..., min_length=3, max_length=254, pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+$",
                    description="The address to send the test e-mail to.")


class TestSendOut(Schema):
    id: str
    object: str = "notification"
    status: str
    to: str


class NotificationOut(Schema):
    id: str
    object: str = "notification"
    type: str
    account_id: str | None
    subject: str
    body: str
    link: str | None
    read: bool
    read_at: datetime | None
    created_at: datetime


class NotificationPage(Schema):
    data: list[NotificationOut]
    has_more: bool
    next_cursor: str | None = None


class PreferenceChange(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: str
    channel: Channel
    enabled: bool


class PreferenceOut(Schema):
    type: str
    mandatory: bool = Field(description="The organization made this type mandatory: opt-outs are ignored.")
    channels: dict[str, bool]


class PreferencesPatch(Schema):
    """`preferences` turns (type, channel) pairs on or off; `webhook_url` sets (a signing secret is made
    and shown once) or, with null, removes the URL the account's own systems get notices at."""

    model_config = ConfigDict(extra="forbid", strict=True)

    preferences: list[PreferenceChange] = Field(None, max_length=100)
    webhook_url: str | None = Field(None, max_length=2048)

    @field_validator("preferences", mode="before")
    @classmethod
    def _no_null_preferences(cls, value):
        return _not_null(value)


class PreferencesOut(Schema):
    object: str = "notification_preferences"
    account_id: str
    preferences: list[PreferenceOut]
    webhook_url: str | None
    webhook_secret: str | None = Field(None, description="Shown only when a secret was just made or rotated.")
