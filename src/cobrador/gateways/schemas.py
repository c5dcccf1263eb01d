from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from cobrador.gateways.sandbox import TEST_CARD_TOKENS_DOC

Method = Literal["card", "bank_slip", "pix"]
Provider = Literal["sandbox", "pagarme", "kobana"]

GATEWAYS_DESCRIPTION = f"""
Which provider serves each payment method (`card`, `bank_slip`, `pix`) of the organization. At most one
active configuration serves a method (409 naming the method otherwise).

Providers and their `credentials` (write-only: stored encrypted, never returned; the answer lists only
which fields are set in `credentials_set`):

* `pagarme` (Pagar.me API v5; card, bank_slip, pix): `secret_key` (`sk_test_...` for a test-mode
  organization, `sk_...` for a live one). Options: `timeout_seconds`, `public_key` (`pk_test_...`/`pk_...`:
  the hosted card update page posts the card from the customer's browser straight to Pagar.me's
  `POST /tokens?appId=<public_key>`; cobrador receives only the token and stores the card on a Pagar.me
  customer).
  A card payment method's token is `cus_...:card_...` (a card stored on a Pagar.me customer), `card_...`
  or a one-time `token_...`.
* `kobana` (bank_slip through API v1, pix through API v2; no cards): `api_token`, `webhook_secret` (the
  secret of the Kobana webhook pointed at `callback_url`), `pix_account_uid` (needed for pix). Options:
  `timeout_seconds`, `pix_account_uid`, `boleto` (extra bank-billet fields such as fine and interest),
  `boleto_days_to_due`.
* `sandbox` (test mode only; card, bank_slip, pix): no credentials needed. A test-mode organization
  without a configuration for a method is served by a built-in sandbox configuration (`fallback: true`).
  Sandbox card tokens decide the outcome:
{TEST_CARD_TOKENS_DOC}

  Sandbox boletos and PIX stay pending until `cobrador sandbox pay PAYMENT_ID`, which pays them and
  sends a signed callback.

Point the provider's webhooks at `callback_url`.

The provider's API host is not an option: each provider is reached at its own production host (Kobana:
its sandbox host for test-mode organizations); `base_url` and `jwks_url` are refused (422).
"""


# Each credential the code takes (gateways/services.py): a non-empty string of at most 500 characters.
Credential = Annotated[str, Field(min_length=1, max_length=500)]

class GatewayOptions(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    timeout_seconds: float = Field(None, gt=0, le=60, description="HTTP timeout for provider calls (default 10).")
    public_key: str = Field(None, min_length=4, max_length=100, pattern=r"^pk_[A-Za-z0-9_]+$",
                            description="Pagar.me: the public key (pk_test_... in test mode) the card update page "
                                        "tokenizes cards with, in the customer's browser. Without it the page "
                                        "cannot take a new card.")
    pix_account_uid: str = Field(None, max_length=100, description="Kobana: the PIX account.")
    boleto: dict = Field(None, description="Kobana: extra bank-billet fields (fine_type, interest_type, ...).")
    boleto_days_to_due: int = Field(None, ge=1, le=60, description="Kobana: days to due when none is given.")


class GatewayCreate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"description": GATEWAYS_DESCRIPTION})

    provider: Provider
    methods: list[Method] = Field(..., min_length=1, max_length=3, json_schema_extra={"uniqueItems": True})
    credentials: dict[str, Credential] = Field(default_factory=dict, description="Write-only; see the provider list.")
    options: GatewayOptions = Field(default_factory=GatewayOptions)


class GatewayUpdate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    # Omitted fields stay as they are; an explicit null is a 422.
    methods: list[Method] = Field(None, min_length=1, max_length=3, json_schema_extra={"uniqueItems": True})
    credentials: dict[str, Credential] = Field(None, description="Merged: the fields sent replace the stored ones.")
    options: GatewayOptions = Field(None, description="Replaces the stored options.")
    active: bool = None


class GatewayOut(Schema):
    id: str
    object: str = "gateway"
    provider: Provider
    methods: list[Method] = Field(description="The methods it serves now.")
    active: bool
    fallback: bool = Field(description="The built-in sandbox of a test-mode organization (read-only).")
    options: dict
    credentials_set: list[str] = Field(description="Which credential fields are stored (never their values).")
    callback_url: str = Field(description="Where the provider must send its callbacks.")
    created_at: datetime
    updated_at: datetime


class GatewayPage(Schema):
    data: list[GatewayOut]
    has_more: bool
    next_cursor: str | None = None
