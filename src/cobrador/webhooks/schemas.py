from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

# What the code checks first (webhooks/ssrf.py), as OpenAPI states it.
HTTP_URL = "^[Hh][Tt][Tt][Pp][Ss]?://"


class WebhookEndpointCreate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(..., max_length=2048, description="An http(s) URL on a public address.",
                     json_schema_extra={"pattern": HTTP_URL})
    enabled_events: list[str] = Field(["*"], description='Event types to receive, or ["*"] for all.')
    description: str = Field("", max_length=500)


class WebhookEndpointUpdate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    # Omitted fields stay as they are; an explicit null is a 422 (the defaults are never validated).
    url: str = Field(None, max_length=2048, json_schema_extra={"pattern": HTTP_URL})
    enabled_events: list[str] = None
    description: str = Field(None, max_length=500)
    status: Literal["enabled", "disabled"] = None


class WebhookEndpointOut(Schema):
    id: str
    object: str = "webhook_endpoint"
    url: str
    description: str
    enabled_events: list[str]
    status: str
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(None, description="Only in the answers to create and rotate_secret.")


class WebhookEndpointPage(Schema):
    data: list[WebhookEndpointOut]
    has_more: bool
    next_cursor: str | None = None


class WebhookAttemptOut(Schema):
    number: int
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    response_body: str = Field(description="The first 1 KB of the response.")
    error: str
    succeeded: bool


class WebhookDeliveryOut(Schema):
    id: str
    object: str = "webhook_delivery"
    event_id: str
    event_type: str
    endpoint_id: str
    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    created_at: datetime
    finished_at: datetime | None
    attempts: list[WebhookAttemptOut]


class WebhookDeliveryPage(Schema):
    data: list[WebhookDeliveryOut]
    has_more: bool
    next_cursor: str | None = None
