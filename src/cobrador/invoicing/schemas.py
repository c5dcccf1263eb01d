from datetime import date, datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field, model_serializer

InvoiceStatus = Literal["draft", "open", "paid", "void", "uncollectible"]

INVOICE_DESCRIPTION = (
    "A bill for one subscription period. `number` is gapless per organization (1, 2, 3, ...). "
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
    "current plan."
)


class InvoiceLineOut(Schema):
    description: str
    plan: str | None
    quantity: int
    unit_amount: int
    amount: int = Field(description="unit_amount × quantity.")
    period_start: datetime | None
    period_end: datetime | None


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
