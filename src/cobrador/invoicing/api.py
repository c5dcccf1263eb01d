
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from cobrador.core.errors import NotFound, errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit, Timestamp
from cobrador.invoicing import services
from cobrador.invoicing.errors import InvoiceNotVoidable
from cobrador.invoicing.models import Invoice, InvoiceLine
from cobrador.invoicing.schemas import InvoiceCreate, InvoiceOut, InvoicePage, InvoiceStatus

router = Router(tags=["invoices"])
register_path_id("invoice_id", Invoice)


def _invoices(request):
    return (Invoice.objects.filter(organization=request.auth)
            .select_related("organization", "account", "subscription", "coupon", "payment_method")
            .prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.select_related("plan").order_by("pk"))))



@router.post("/invoices", response={201: InvoiceOut, **errors(NotFound)}, summary="Create a one-off invoice")
def create_invoice(request, payload: InvoiceCreate):
    """An invoice for a billing account with your own lines (description, unit amount, quantity, an
    optional NFS-e service code). The account's credit applies as on period invoices; a total of zero
    is paid at once. `collect: charge_now` charges it right after the request with `payment_method`
    (else the account's default); `send` leaves it open for the customer to pay. Send an
    `Idempotency-Key`: a retried request then makes one invoice. 404 for another organization's account."""
    with transaction.atomic():
        invoice = services.create_one_off_invoice(organization=request.auth, **payload.model_dump())
    return Status(201, services.invoice_object(_invoices(request).get(pk=invoice.pk)))


@router.get("/invoices", response=InvoicePage, summary="List invoices")
def list_invoices(request, account: str | None = None, subscription: str | None = None,
                  status: InvoiceStatus | None = None, period_start_gte: Timestamp | None = None,
                  period_start_lt: Timestamp | None = None, limit: Limit = 20, cursor: str | None = None):
    """Newest first. Filters: `account` (ba_ id), `subscription` (sub_ id), `status`, and the period:
    `period_start_gte` <= period_start < `period_start_lt` (ISO 8601 with a timezone)."""
    invoices = _invoices(request)
    if account:
        invoices = invoices.filter(account__public_id=account)
    if subscription:
        invoices = invoices.filter(subscription__public_id=subscription)
    if status:
        invoices = invoices.filter(status=status)
    if period_start_gte:
        invoices = invoices.filter(period_start__gte=period_start_gte)
    if period_start_lt:
        invoices = invoices.filter(period_start__lt=period_start_lt)
    return paginate(invoices, cursor=cursor, limit=limit, serialize=services.invoice_object)


@router.get("/invoices/{invoice_id}", response=InvoiceOut, summary="Retrieve an invoice")
def get_invoice(request, invoice_id: str):
    return services.invoice_object(get_object_or_404(_invoices(request), public_id=invoice_id))


@router.post("/invoices/{invoice_id}/void", response={200: InvoiceOut, **errors(InvoiceNotVoidable)},
             summary="Void an invoice")
def void_invoice(request, invoice_id: str):
    """Only a draft or open invoice (409 otherwise). The number stays taken; credit and coupon periods
    it used are not given back. Emits invoice.voided."""
    with transaction.atomic():
        invoice = get_object_or_404(_invoices(request).select_for_update(of=("self",)), public_id=invoice_id)
        services.void_invoice(invoice=invoice)
    return services.invoice_object(invoice)
