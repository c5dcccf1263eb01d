from datetime import date, datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator, model_serializer

from cobrador.customers.schemas import Currency

InvoiceStatus = Literal["draft", "open", "paid", "void", "uncollectible"]
InvoiceKind = Literal["period", "proration", "one_off"]
CollectionMethod = Literal["charge", "send"]

INVOICE_DESCRIPTION = (
    "A bill for one subscription period (`kind` period), a change of plan or quantity made with proration "
    "(proration), or anything else (one_off, POST /invoices). `number` is gapless per organization (1, 2, 3, ...). "
    "Amounts are integer minor units of `currency`: total = subtotal - discount - credit_applied >= 0 and "
    "amount_due = total - amount_paid. The invoice-generation job (daily, 01:00 UTC) makes exactly one "
    "invoice per (subscription, period_start) once the period has started: one line per plan (amount × "
    "quantity), the subscription's coupon while its duration lasts (once: the first paid invoice; "
    "repeating: that many invoices; forever), then the account's credit (soonest-expiring grants first). "
    "A trial period gets a zero invoice when a payment method is on file (none otherwise). A zero-total "
    "invoice is `paid` at once; any other stays `open` for the payment jobs to charge. `due_date` is the "
    "period's start date (UTC) plus COBRADOR_INVOICE_DUE_DAYS (default 0: due when the period starts; a "
    "card is charged then), never before the day the invoice is issued. Periods the renewal job advanced "
    "past before they were invoiced (jobs not running for a whole period) are each invoiced once, at the "
    "current plan. An invoice is charged as soon as the transaction that issued it commits (a sign-up, a "
    "nightly batch, a proration, a one-off with collect charge_now); the invoice-charging job only catches "
    "what that missed. A proration invoice whose credit line exceeds its charge line (a downgrade) has a "
    "negative subtotal: its total is 0, it is paid at once, and the difference is granted to the account as "
    "credit for its next invoices."
)


class InvoiceLineOut(Schema):
    description: str
    plan: str | None
    quantity: int
    unit_amount: int
    amount: int = Field(description="unit_amount × quantity; on a proration's lines the prorated amount "
                                    "(negative on the credit line for the unused old price).")
    period_start: datetime | None
    period_end: datetime | None
    service_code: str | None = Field(None, description="The NFS-e service code of a one-off line, if given.")


class InvoiceServiceInvoiceOut(Schema):
    """The invoice's NFS-e (GET /v1/service_invoices/{id} has all of it)."""

    id: str
    status: str
    number: str | None
    verification_code: str | None
    access_key: str | None
    pdf_url: str | None
    xml_url: str | None


class InvoiceOut(Schema):
    model_config = ConfigDict(json_schema_extra={"description": INVOICE_DESCRIPTION})

    id: str
    object: str = "invoice"
    number: int
    account: str
    subscription: str | None
    kind: InvoiceKind = Field(description="period: a subscription period; proration: a change of plan or quantity "
                                          "with proration now; one_off: made with POST /invoices.")
    collection_method: CollectionMethod = Field(
        description="charge: charged with its payment method (the invoice's, else the subscription's, else the "
                    "account's default) as soon as it is issued; send: the customer pays it from the invoice.")
    payment_method: str | None = Field(description="The pm_ id to charge, when one was given for the invoice.")
    status: InvoiceStatus
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    subtotal: int
    discount: int
    credit_applied: int
    total: int
    amount_paid: int
    amount_due: int
    coupon: str | None = Field(description="The coupon that discounted this invoice, if any.")
    due_date: date
    created_at: datetime
    paid_at: datetime | None
    voided_at: datetime | None
    lines: list[InvoiceLineOut]
    service_invoice: InvoiceServiceInvoiceOut | None = Field(
        None, description="The NFS-e issued (or being issued) for this invoice under the fiscal policy; absent "
                          "when it has none (so an invoice without one is exactly its invoice.* event's object).")

    @model_serializer(mode="wrap")
    def _without_absent_service_invoice(self, handler):
        data = handler(self)
        if data.get("service_invoice") is None:
            data.pop("service_invoice", None)
        return data


class InvoicePage(Schema):
    data: list[InvoiceOut]
    has_more: bool
    next_cursor: str | None = None


STRICT = ConfigDict(extra="forbid", strict=True)


class OneOffLineCreate(Schema):
    model_config = STRICT

    description: str = Field(..., min_length=1, max_length=300)
    unit_amount: int = Field(..., ge=0, le=10**12, description="Minor units per unit.")
    quantity: int = Field(1, ge=1, le=1_000_000)
    service_code: str | None = Field(None, min_length=1, max_length=20, pattern=r"^[0-9A-Za-z.\-]+$",
                                     description="The municipal service code the NFS-e of this line is issued "
                                                 "under (default: the organization's fiscal settings).")

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value):
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class InvoiceCreate(Schema):
    """A one-off invoice: anything to bill besides a subscription's periods (setup fees, services,
    overages). Dunning, notifications and webhooks treat it as any invoice."""

    model_config = STRICT

    account: str = Field(..., max_length=40, description="The billing account (ba_ id); another "
                                                         "organization's is a 404.")
    lines: list[OneOffLineCreate] = Field(..., min_length=1, max_length=100,
                                          description="At least one line; they must add up to more than zero.")
    currency: Currency | None = Field(None, description="Default: the organization's currency.")
    due_date: date | None = Field(None, strict=False, description="YYYY-MM-DD, today or later; default today "
                                                                   "plus COBRADOR_INVOICE_DUE_DAYS.")
    payment_method: str | None = Field(None, max_length=40, description="A pm_ id of the account to charge "
                                                                        "(default: its default method).")
    collect: Literal["charge_now", "send"] = Field(
        "charge_now", description="charge_now: charged right after this request (a declined charge enters "
                                  "dunning); send: the customer is sent the invoice (invoice.created) and pays "
                                  "it; the payment jobs never charge it by themselves.")
