from django.db import transaction
from ninja import Router

from cobrador.core.errors import errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.nfe import services
from cobrador.nfe.errors import ERROR_RESPONSES, ServiceInvoiceNotFound
from cobrador.nfe.models import ServiceInvoice
from cobrador.nfe.schemas import (
    FiscalSettingsOut,
    FiscalSettingsPatch,
    ServiceInvoiceDetailOut,
    ServiceInvoicePage,
    ServiceInvoiceStatus,
)
from cobrador.nfe.tasks import sync_service_invoices

router = Router(tags=["NFS-e"])
register_path_id("service_invoice_id", ServiceInvoice)


@router.get("/organizations/settings/fiscal", response=FiscalSettingsOut, summary="Get the fiscal (NFS-e) policy")
def get_fiscal_settings(request):
    return services.settings_data(services.fiscal_settings(request.auth))


@router.patch("/organizations/settings/fiscal",
              response={200: FiscalSettingsOut, **errors(*ERROR_RESPONSES["settings"])},
              summary="Change the fiscal (NFS-e) policy")
def patch_fiscal_settings(request, payload: FiscalSettingsPatch):
    """422 (fiscal_settings_invalid or validation_error) names the field; nothing changes then. The NFe.io
    API key and webhook secret are write-only and stored encrypted."""
    with transaction.atomic():
        config = services.update_fiscal_settings(organization=request.auth,
                                                 changes=payload.model_dump(exclude_unset=True))
    return services.settings_data(config)


def _notes(request):
    return ServiceInvoice.objects.filter(organization=request.auth).select_related("invoice", "account")


def _note(request, service_invoice_id: str, *, lock: bool = False) -> ServiceInvoice:
    notes = _notes(request)
    if lock:
        notes = notes.select_for_update(of=("self",))
    note = notes.filter(public_id=service_invoice_id).first()
    if note is None:
        raise ServiceInvoiceNotFound("no such service invoice", field="id")
    return note


def _detail(note: ServiceInvoice) -> dict:
    return {**services.service_invoice_data(note),
            "calls": [services.call_data(c) for c in note.calls.order_by("pk")]}


@router.get("/service_invoices", response=ServiceInvoicePage, summary="List NFS-e")
def list_service_invoices(request, invoice: str | None = None, status: ServiceInvoiceStatus | None = None,
                          limit: Limit = 20, cursor: str | None = None):
    """Newest first. Filters: `invoice` (in_ id), `status`."""
    notes = _notes(request)
    if invoice:
        notes = notes.filter(invoice__public_id=invoice)
    if status:
        notes = notes.filter(status=status)
    return paginate(notes, cursor=cursor, limit=limit, serialize=services.service_invoice_data)


@router.get("/service_invoices/{service_invoice_id}",
            response={200: ServiceInvoiceDetailOut, **errors(*ERROR_RESPONSES["get"])},
            summary="Retrieve an NFS-e, with its calls to NFe.io")
def get_service_invoice(request, service_invoice_id: str):
    return _detail(_note(request, service_invoice_id))


@router.post("/service_invoices/{service_invoice_id}/retry",
             response={200: ServiceInvoiceDetailOut, **errors(*ERROR_RESPONSES["retry"])},
             summary="Issue a failed NFS-e again (or re-check a blocked one, or resend a failed cancellation)")
def retry_service_invoice(request, service_invoice_id: str):
    """failed: issued anew under a new external id (fix the data first); blocked: the account is checked
    now; cancel_failed: the cancellation is sent again. Anything else: 409 service_invoice_not_retryable."""
    with transaction.atomic():
        note = services.retry(note=_note(request, service_invoice_id, lock=True))
        if note.status in ("pending", "cancel_pending"):
            sync_service_invoices.enqueue()
    return _detail(note)


@router.post("/service_invoices/{service_invoice_id}/cancel",
             response={200: ServiceInvoiceDetailOut, **errors(*ERROR_RESPONSES["cancel"])},
             summary="Cancel an NFS-e")
def cancel_service_invoice(request, service_invoice_id: str):
    """An issued note is canceled at NFe.io (cancel_pending, then canceled or cancel_failed); one still
    being issued is canceled once issued; one never sent is canceled at once. 409
    service_invoice_not_cancelable for a failed or already canceled note."""
    with transaction.atomic():
        note = services.cancel(note=_note(request, service_invoice_id, lock=True))
        if note.status == "cancel_pending":
            sync_service_invoices.enqueue()
    return _detail(note)
