from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

STRICT = ConfigDict(extra="forbid", strict=True)


class PageLinkCreate(Schema):
    model_config = STRICT

    object: str = Field(..., max_length=40, description="A proposal (prop_) or invoice (in_) id, or a billing "
                        "account (ba_) id for its card update page.")


class PageLinkOut(Schema):
    id: str
    object: Literal["page_link"]
    kind: Literal["proposal", "invoice", "card"]
    object_id: str
    url: str | None = Field(description="The page's URL: shown once, when the link is created.")
    created_at: datetime
    revoked_at: datetime | None


class PageBrandingOut(Schema):
    object: Literal["page_branding"]
    logo_url: str | None
    color: str
    updated_at: datetime


class PageBrandingUpdate(Schema):
    model_config = STRICT

    logo_url: str | None = Field(None, max_length=1000, description="An https URL of the logo; null removes it.")
    color: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb, for buttons and accents.")
