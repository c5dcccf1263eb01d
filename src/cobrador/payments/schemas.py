from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

PaymentStatus = Literal["pending", "processing", "succeeded", "failed", "unknown", "canceled", "refunded"]

STATUS_DESCRIPTION = (
    "processing: being sent to the provider; pending: a boleto or PIX issued and waiting to be paid (or a "
    "card still processing at the provider); succeeded: paid; failed: declined or refused (failure_code, "
    "failure_message, decline_class hard|soft); unknown: the provider's answer was lost (timeout, 5xx after "
    "sending) and reconciliation is asking it (5 min, 1 h, then daily); canceled: a boleto/PIX no longer "
    "needed; refunded: refunded in full. While a payment of an invoice is processing or unknown, the "
    "invoice is not charged again.")


class RefundOut(Schema):
    id: str
    object: str = "refund"
    amount: int
    reason: str | None
    status: Literal["processing", "succeeded", "failed", "unknown"]
    failure_message: str | None
    created_at: datetime


class PaymentOut(Schema):
    id: str
    object: str = "payment"
    invoice: str
    account: str
    payment_method: str | None
    method: Literal["card", "bank_slip", "pix"]
    provider: str
    provider_charge_id: str | None
    provider_order_id: str | None
    status: PaymentStatus = Field(description=STATUS_DESCRIPTION)
    amount: int
    amount_paid: int
    amount_refunded: int
    currency: str
    failure_code: str | None
    failure_message: str | None
    decline_class: Literal["hard", "soft"] | None
    idempotency_key: str = Field(description="Sent to the provider with the charge: a retry is the same charge.")
    source: str = Field(description="invoice (first charge), dunning (a retry), manual (POST /invoices/{id}/pay) "
                        "or page (paid by card on the hosted invoice page).")
    attempt_number: int
    boleto_url: str | None
    boleto_barcode: str | None
    boleto_line: str | None = Field(description="The boleto's linha digitável.")
    pix_copy_paste: str | None = Field(description="The PIX EMV code (copia e cola).")
    pix_qr_code_url: str | None
    expires_at: datetime | None = Field(description="When the boleto or PIX stops being payable.")
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    failed_at: datetime | None
    canceled_at: datetime | None
    refunds: list[RefundOut]


class PaymentPage(Schema):
    data: list[PaymentOut]
    has_more: bool
    next_cursor: str | None = None


class RefundCreate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int | None = Field(None, ge=1, description="Minor units; omitted: all that is left to refund. "
                                                        "Partial refunds add up.")
    reason: str = Field("", max_length=500)


class InvoicePay(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    payment_method: str | None = Field(None, max_length=40, description="A pm_ id of the invoice's account; "
                                                                         "omitted: the account's default.")
