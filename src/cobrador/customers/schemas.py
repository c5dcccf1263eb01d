import re
from datetime import datetime
from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Schema
from pydantic import ConfigDict, Field, field_validator, model_serializer
from pydantic_core import PydanticCustomError

from cobrador.core.money import CURRENCIES
from cobrador.core.params import Timestamp

STRICT = ConfigDict(extra="forbid", strict=True)

BRAZILIAN_STATES = frozenset({
    "AC", "AL", "AP", "AM", "BA", "CE", "DF", "ES", "GO", "MA", "MT", "MS", "MG", "PA", "PB", "PR", "PE", "PI",
    "RJ", "RN", "RS", "RO", "RR", "SC", "SP", "SE", "TO",
})
CARD_BRANDS = ("visa", "mastercard", "amex", "elo", "hipercard", "hiper", "diners", "discover", "jcb", "aura",
               "other")
# 13-19 digits, perhaps grouped by spaces or dashes: what a card number (PAN) looks like.
_LOOKS_LIKE_CARD_NUMBER = re.compile(r"(?:\d[ -]?){12,18}\d")

Currency = Literal[tuple(CURRENCIES)]  # type: ignore[valid-type]
Locale = Literal["pt-BR", "en"]


def _not_blank(value: str | None) -> str | None:
    if value is not None:
        value = value.strip()
        if not value:
            raise PydanticCustomError("blank", "must not be blank")
    return value


def _not_null(value):
    if value is None:
        raise PydanticCustomError("null", "must not be null")
    return value


def _valid_email(value: str | None) -> str | None:
    if value is None:
        return value
    value = value.strip()
    try:
        validate_email(value)
    except DjangoValidationError:
        raise PydanticCustomError("email", "not a valid e-mail address") from None
    return value


class Address(Schema):
    """A postal address. In Brazil (country BR, the default) `state` is a UF and `zipcode` a CEP of
    8 digits (a mask like 01310-100 is accepted and removed)."""

    model_config = STRICT

    # country comes first so the checks of state and zipcode can depend on it.
    country: str = Field("BR", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.")
    street: str = Field(..., min_length=1, max_length=200)
    number: str = Field("", max_length=20)
    complement: str = Field("", max_length=100)
    neighborhood: str = Field("", max_length=100)
    city: str = Field(..., min_length=1, max_length=100)
    state: str = Field(..., min_length=1, max_length=50, description="The 2-letter UF in Brazil (SP, RJ, ...).")
    zipcode: str = Field(..., min_length=1, max_length=20, description="The 8-digit CEP in Brazil.")
    city_code: str | None = Field(None, pattern=r"^[0-9]{7}$",
                                  description="The city's 7-digit IBGE code (needed to issue an NFS-e).")

    @field_validator("street", "city")
    @classmethod
    def _required_not_blank(cls, value):
        return _not_blank(value)

    @field_validator("state")
    @classmethod
    def _state(cls, value, info):
        value = _not_blank(value)
        if info.data.get("country", "BR") == "BR":
            value = value.upper()
            if value not in BRAZILIAN_STATES:
                raise PydanticCustomError("uf", "must be a Brazilian UF such as SP or RJ")
        return value

    @field_validator("zipcode")
    @classmethod
    def _zipcode(cls, value, info):
        value = _not_blank(value)
        if info.data.get("country", "BR") == "BR":
            value = value.replace("-", "")
            if not re.fullmatch(r"[0-9]{8}", value):
                raise PydanticCustomError("cep", "must be a CEP of 8 digits")
        return value


Metadata = Annotated[dict[Annotated[str, Field(min_length=1, max_length=40)], Annotated[str, Field(max_length=500)]],
                     Field(max_length=50)]

DOCUMENT_DESCRIPTION = ("A CPF (11 digits) or CNPJ (14 characters; alphanumeric CNPJs are accepted), with or "
                        "without its mask; check digits are verified. Stored and returned without mask, uppercase.")


class BillingAccountCreate(Schema):
    model_config = STRICT

    name: str = Field(..., min_length=1, max_length=200)
    email: str = Field(..., max_length=254, json_schema_extra={"format": "email"})
    document: str | None = Field(None, max_length=24, description=DOCUMENT_DESCRIPTION)
    address: Address | None = None
    legal_name: str | None = Field(None, max_length=115,
                                   description="The legal name (razão social) an NFS-e carries; default: name.")
    fiscal_email: str | None = Field(None, max_length=254,
                                     description="Where the NFS-e is sent; default: email.")
    locale: Locale = Field("pt-BR", description="The language of the customer's notifications.")
    metadata: Metadata = Field(default_factory=dict, description="Up to 50 string keys and values for your own use.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value):
        return _not_blank(value)

    @field_validator("email", "fiscal_email")
    @classmethod
    def _check_email(cls, value):
        return _valid_email(value)

    @field_validator("legal_name")
    @classmethod
    def _check_legal_name(cls, value):
        return _not_blank(value)


class BillingAccountUpdate(Schema):
    """Only the fields sent change. `document: null` and `address: null` remove them; `metadata` is
    replaced whole. The status changes only through dunning (suspension and reactivation)."""

    model_config = STRICT

    name: str = Field(None, min_length=1, max_length=200)
    email: str = Field(None, max_length=254, json_schema_extra={"format": "email"})
    document: str | None = Field(None, max_length=24, description=DOCUMENT_DESCRIPTION)
    address: Address | None = None
    legal_name: str | None = Field(None, max_length=115,
                                   description="The legal name (razão social) an NFS-e carries; default: name.")
    fiscal_email: str | None = Field(None, max_length=254,
                                     description="Where the NFS-e is sent; default: email.")
    locale: Locale = None
    metadata: Metadata = None

    @field_validator("name", "email", "locale", "metadata", mode="before")
    @classmethod
    def _not_null(cls, value):
        return _not_null(value)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value):
        return _not_blank(value)

    @field_validator("email", "fiscal_email")
    @classmethod
    def _check_email(cls, value):
        return _valid_email(value)

    @field_validator("legal_name")
    @classmethod
    def _check_legal_name(cls, value):
        return _not_blank(value)


class AddressOut(Schema):
    street: str
    number: str
    complement: str
    neighborhood: str
    city: str
    state: str
    zipcode: str
    country: str
    city_code: str | None = Field(None, description="The IBGE city code; present only when one was given.")

    @model_serializer(mode="wrap")
    def _without_absent_city_code(self, handler):
        data = handler(self)
        if data.get("city_code") is None:
            data.pop("city_code", None)
        return data


class BillingAccountOut(Schema):
    id: str
    object: str = "billing_account"
    name: str
    email: str
    document: str | None
    document_type: Literal["cpf", "cnpj"] | None
    address: AddressOut | None
    legal_name: str | None
    fiscal_email: str | None
    locale: str
    status: Literal["active", "suspended"]
    suspended_at: datetime | None
    suspension_reason: str | None
    default_payment_method_id: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime


class BillingAccountPage(Schema):
    data: list[BillingAccountOut]
    has_more: bool
    next_cursor: str | None = None


class PaymentMethodAttach(Schema):
    """A card is attached by the token the gateway issued for it plus its display facts (brand, last 4
    digits, expiry); the card number is never sent to or stored by cobrador. bank_slip and pix take no
    other fields. The first payment method of an account becomes its default; `set_default` makes this
    one the default instead of the current one."""

    model_config = STRICT

    type: Literal["card", "bank_slip", "pix"] = Field(..., description="A card needs brand, last4, exp_month, "
                                                     "exp_year and gateway_token; bank_slip and pix take none.")
    brand: Literal[CARD_BRANDS] | None = None  # type: ignore[valid-type]
    last4: str | None = Field(None, pattern=r"^[0-9]{4}$", description="Exactly the last 4 digits.")
    exp_month: int | None = Field(None, ge=1, le=12)
    exp_year: int | None = Field(None, ge=1000, le=9999, description="4 digits, e.g. 2029.")
    gateway_token: str | None = Field(None, min_length=1, max_length=200,
                                      description="The gateway's card token (write-only, never returned).")
    set_default: bool = False

    @field_validator("gateway_token")
    @classmethod
    def _not_a_card_number(cls, value):
        if value is not None and _LOOKS_LIKE_CARD_NUMBER.fullmatch(value.strip()):
            raise PydanticCustomError("card_number", "looks like a card number; send the gateway's token instead")
        return value


class PaymentMethodUpdate(Schema):
    """Make this payment method the account's default (the previous default stops being one). To stop
    using a default, make another method the default or detach it."""

    model_config = STRICT

    is_default: Literal[True]


class PaymentMethodOut(Schema):
    id: str
    object: str = "payment_method"
    account_id: str
    type: Literal["card", "bank_slip", "pix"]
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    is_default: bool
    status: Literal["active", "detached"]
    created_at: datetime
    detached_at: datetime | None


class PaymentMethodPage(Schema):
    data: list[PaymentMethodOut]
    has_more: bool
    next_cursor: str | None = None


class CreditGrantCreate(Schema):
    model_config = STRICT

    amount: int = Field(..., gt=0, le=10**12, description="Minor units (centavos), positive.")
    currency: Currency | None = Field(None, description="Defaults to the organization's currency.")
    reason: str = Field("", max_length=200)
    expires_at: Timestamp | None = Field(None, description="In the future; after it the rest of the grant "
                                                           "no longer counts. Omitted: never expires.")


class CreditGrantOut(Schema):
    id: str
    object: str = "credit_grant"
    account_id: str
    amount: int
    remaining: int
    currency: str
    reason: str
    expires_at: datetime | None
    status: Literal["available", "used", "expired"]
    created_at: datetime


class CreditGrantPage(Schema):
    data: list[CreditGrantOut]
    has_more: bool
    next_cursor: str | None = None
    balances: dict[str, int] = Field(description="Usable credit now per currency: what remains of unexpired "
                                                 "grants. Never negative.")
