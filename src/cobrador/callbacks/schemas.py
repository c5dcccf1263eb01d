from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

CallbackStatus = Literal["received", "processing", "processed", "failed", "rejected", "ignored"]

STATUS_DESCRIPTION = (
    "received: stored, waiting to be processed; processing: being processed; processed: applied (see "
    "changes); failed: processing raised (see error), retried with backoff up to 7 attempts; rejected: bad "
    "signature or a body that is not JSON, never processed; ignored: an event type cobrador does not handle.")


class CallbackAck(Schema):
    id: str
    status: CallbackStatus
    duplicate: bool = Field(False, description="The same (provider, event id) was received before; nothing "
                                               "changed.")


class CallbackOut(Schema):
    id: str
    object: str = "gateway_callback"
    provider: str
    gateway: str | None
    event_id: str | None
    event_type: str | None
    status: CallbackStatus = Field(description=STATUS_DESCRIPTION)
    attempts: int
    next_attempt_at: datetime | None
    error: str | None
    changes: list[dict] = Field(description="What processing changed: payment status moves, invoice "
                                            "settlement, credit granted, or why nothing changed.")
    received_at: datetime
    processed_at: datetime | None


class CallbackDetailOut(CallbackOut):
    headers: dict[str, str] = Field(description="As received; signature and credential headers redacted.")
    body: str = Field(description="The raw body as received (UTF-8, undecodable bytes replaced).")


class CallbackPage(Schema):
    data: list[CallbackOut]
    has_more: bool
    next_cursor: str | None = None
