from datetime import datetime
from decimal import Decimal
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

Policy = Literal["never", "on_invoice_created", "on_payment"]
ServiceInvoiceStatus = Literal["pending", "processing", "issued", "failed", "blocked", "cancel_pending", "canceled",
                               "cancel_failed"]

POLICY_DESCRIPTION = (
    "When cobrador issues an NFS-e (a service e-invoice) through NFe.io for an invoice with something to "
    "pay: `never` (default); `on_invoice_created`: as the invoice is created; `on_payment`: once it is fully "
    "paid. One NFS-e per invoice, whatever repeats. The note is written in the same transaction as the "
    "invoice or payment and sent right after commit; the nfe-sync job (every 30 min) is the safety net and "
    "follows notes NFe.io has not settled. A billing account without what NFe.io needs (document, address "
    "with CEP, state, city and its IBGE city_code) gets a `blocked` note naming the missing field; it is "
    "released on the next sync after the account is fixed. Notes never block the invoice or its charge. "
    "A test-mode organization's notes go to the company's Development environment, a live one's to "
    "Production; callbacks of the other environment are ignored.")


class FiscalSettingsOut(Schema):
    model_config = ConfigDict(json_schema_extra={"description": POLICY_DESCRIPTION})

    object: str = "fiscal_settings"
    policy: Policy
    nfeio_company_id: str | None
    has_nfeio_api_key: bool = Field(description="The API key is write-only: this says whether one is set.")
    has_nfeio_webhook_secret: bool
    city_service_code: str | None
    federal_service_code: str | None
    description_template: str | None
    iss_rate: str | None = Field(description="A fraction as a decimal string: \"0.05\" is 5%.")
    iss_withheld: bool
    cancel_on_void: bool
    cancel_on_refund: bool
    environment: Literal["Development", "Production"]
    callback_path: str = Field(description="Register this path (under your public URL) as the NFe.io account "
                                           "webhook, with the same secret as nfeio_webhook_secret.")
    updated_at: datetime


class FiscalSettingsPatch(Schema):
    """Only the fields sent change; null clears an optional one. A policy other than never requires
    nfeio_company_id, nfeio_api_key and city_service_code (here or already set)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    policy: Policy | None = Field(None, description=POLICY_DESCRIPTION)
    nfeio_company_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nfeio_api_key: str | None = Field(None, min_length=8, max_length=200, description="Write-only; encrypted.")
    nfeio_webhook_secret: str | None = Field(None, min_length=32, max_length=64,
                                             description="The NFe.io account webhook's secret (32-64 chars).")
    city_service_code: str | None = Field(None, pattern=r"^[0-9A-Za-z.\-/]{1,20}$",
                                          description="The municipal service code (cityServiceCode).")
    federal_service_code: str | None = Field(None, pattern=r"^[0-9]{1,2}(\.[0-9]{1,2})?$",
                                             description="The LC 116 item, e.g. 1.05.")
    description_template: str | None = Field(
        None, max_length=20000,
        description="A sandboxed Jinja2 template for the service description, with `invoice` {id, number, total, "
                    "currency, period_start, period_end} and `lines` [{description, quantity, amount}]. Default: "
                    "the lines' descriptions.")
    iss_rate: Decimal | None = Field(None, ge=0, le=Decimal("0.05"), max_digits=6, decimal_places=4,
                                     description="ISS as a fraction (at most 0.05, the legal 5% ceiling).")
    iss_withheld: bool | None = Field(None, description="Whether the borrower withholds the ISS.")
    cancel_on_void: bool | None = Field(None, description="Cancel the NFS-e when its invoice is voided.")
    cancel_on_refund: bool | None = Field(None, description="Cancel the NFS-e when its invoice is fully refunded.")

    @field_validator("policy", "iss_withheld", "cancel_on_void", "cancel_on_refund", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise PydanticCustomError("null", "must not be null")
        return value

    @field_validator("iss_rate", mode="before")
    @classmethod
    def _decimal(cls, value):
        if isinstance(value, bool) or not (value is None or isinstance(value, (str, int, float))):
            raise PydanticCustomError("decimal", "a decimal fraction such as \"0.05\" is required")
        try:
            return None if value is None else Decimal(str(value))
        except ArithmeticError:
            raise PydanticCustomError("decimal", "a decimal fraction such as \"0.05\" is required") from None


class ServiceInvoiceCallOut(Schema):
    operation: str
    http_status: int | None
    outcome: str
    duration_ms: int
    at: datetime


class ServiceInvoiceOut(Schema):
    id: str
    object: str = "service_invoice"
    invoice: str
    account: str
    status: ServiceInvoiceStatus = Field(description=(
        "pending: to be sent; processing: sent, NFe.io is working on it (or its answer is being confirmed by "
        "external id); issued; failed: refused by NFe.io or the city hall (see flow_message / error; retry "
        "after fixing the data); blocked: the account lacks fiscal data (blocked_reason), released on the next "
        "sync after it is fixed; cancel_pending, canceled, cancel_failed."))
    environment: str
    external_id: str = Field(description="The id NFe.io knows the note by (unique per company).")
    amount: int
    currency: str
    description: str | None
    blocked_reason: str | None
    nfeio_id: str | None
    number: str | None
    verification_code: str | None
    access_key: str | None = Field(description="The national 50-digit access key, when NFe.io returns one.")
    flow_status: str | None
    flow_message: str | None
    pdf_url: str | None
    xml_url: str | None
    error: str | None
    cancel_requested: bool
    attempts: int
    issued_at: datetime | None
    canceled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ServiceInvoiceDetailOut(ServiceInvoiceOut):
    calls: list[ServiceInvoiceCallOut] = Field(description="Every call made to NFe.io about this note.")


class ServiceInvoicePage(Schema):
    data: list[ServiceInvoiceOut]
    has_more: bool
    next_cursor: str | None = None


