from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from cobrador.core.errors import errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.customers.models import PaymentMethod
from cobrador.gateways.errors import NoGatewayForMethod
from cobrador.invoicing.models import Invoice
from cobrador.payments import charging, services
from cobrador.payments.errors import (
    InvoiceNotPayable,
    PaymentFullyRefunded,
    PaymentInFlight,
    PaymentMethodUnusable,
    PaymentNotRefundable,
    RefundFailed,
)
from cobrador.payments.models import Payment, PaymentRefund
from cobrador.payments.schemas import InvoicePay, PaymentOut, PaymentPage, PaymentStatus, RefundCreate

router = Router(tags=["payments"])
register_path_id("payment_id", Payment)


def _payments(request):
    return (Payment.objects.filter(organization=request.auth)
            .select_related("invoice", "account", "payment_method")
            .prefetch_related(Prefetch("refunds", queryset=PaymentRefund.objects.order_by("pk"))))


def _data(payment: Payment) -> dict:
    return services.payment_data(payment, refunds=list(payment.refunds.all()))


@router.get("/payments", response=PaymentPage, summary="List payments")
def list_payments(request, invoice: str | None = None, account: str | None = None,
                  status: PaymentStatus | None = None, limit: Limit = 20, cursor: str | None = None):
    """Newest first. Filters: `invoice` (in_ id), `account` (ba_ id), `status`."""
    payments = _payments(request)
    if invoice:
        payments = payments.filter(invoice__public_id=invoice)
    if account:
        payments = payments.filter(account__public_id=account)
    if status:
        payments = payments.filter(status=status)
    return paginate(payments, cursor=cursor, limit=limit, serialize=_data)


@router.get("/payments/{payment_id}", response=PaymentOut, summary="Retrieve a payment")
def get_payment(request, payment_id: str):
    return _data(get_object_or_404(_payments(request), public_id=payment_id))


@router.post("/payments/{payment_id}/refund", response={200: PaymentOut, 202: PaymentOut,
                                                 **errors(PaymentNotRefundable, PaymentFullyRefunded, RefundFailed)},
             summary="Refund a payment, in full or in part")
def refund_payment(request, payment_id: str, payload: RefundCreate):
    """Only a succeeded payment (409 otherwise); `amount` at most what is left (422). The answer is the
    payment with its refunds: 200 when the provider accepted the refund (payment.refunded is emitted; a
    payment refunded in full becomes `refunded`), 202 when its answer was lost (the refund is `unknown`
    and is sent again with the same idempotency key until the provider answers). A refund the provider
    refuses is a 422 `refund_failed` and changes nothing."""
    payment = get_object_or_404(Payment, organization=request.auth, public_id=payment_id)
    refund = charging.refund_payment(organization=request.auth, payment=payment, amount=payload.amount,
                                     reason=payload.reason)
    if refund.status == "failed":
        raise RefundFailed(f"the provider refused the refund: {refund.failure_message}", field="amount")
    payment = get_object_or_404(_payments(request), pk=payment.pk)
    return Status(202 if refund.status == "unknown" else 200, _data(payment))


@router.post("/invoices/{invoice_id}/pay",
             response={200: PaymentOut, **errors(InvoiceNotPayable, PaymentInFlight, PaymentMethodUnusable,
                                                  NoGatewayForMethod)}, summary="Charge an invoice now")
def pay_invoice(request, invoice_id: str, payload: InvoicePay | None = None):
    """Charges the amount due with `payment_method` (default: the account's default method) and answers
    the payment: succeeded or failed for a card, pending with the boleto/PIX document, or unknown when
    the provider's answer was lost. 409 while another payment of the invoice is processing or unknown,
    or when the invoice is not open."""
    invoice = get_object_or_404(Invoice, organization=request.auth, public_id=invoice_id)
    payment_method = None
    if payload is not None and payload.payment_method:
        payment_method = PaymentMethod.objects.filter(organization=request.auth,
                                                      public_id=payload.payment_method).first()
        if payment_method is None:
            raise PaymentMethodUnusable("no such payment method", field="payment_method")
    payment = charging.charge_invoice(organization=request.auth, invoice=invoice, payment_method=payment_method,
                                      source="manual")
    return _data(get_object_or_404(_payments(request), pk=payment.pk))
