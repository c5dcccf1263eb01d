"""The NFS-e event sink: reacts, inside the transaction that recorded them, to

* invoice.created (policy on_invoice_created) and invoice.paid (policy on_payment): the invoice's note
  is written (pending, or blocked naming what the account lacks) and the sync task is enqueued, so it
  is issued right after commit; a repeat of either event writes nothing (one note per invoice);
* invoice.voided (cancel_on_void) and payment.refunded leaving the invoice's payments fully refunded
  (cancel_on_refund): its note is canceled (at NFe.io if it was issued).

invoicing/ and payments/ never import this app.
"""

from collections import defaultdict

from django.db.models import Prefetch, Q, Sum

from cobrador.events.services import register_sink
from cobrador.invoicing.models import Invoice, InvoiceLine
from cobrador.nfe import services
from cobrador.nfe.models import FiscalSettings, ServiceInvoice
from cobrador.nfe.tasks import sync_service_invoices
from cobrador.payments.models import Payment

ISSUE_ON = {"invoice.created": "on_invoice_created", "invoice.paid": "on_payment"}
HANDLED = {*ISSUE_ON, "invoice.voided", "payment.refunded"}


def _refs(events) -> dict[int, set[str]]:
    refs = defaultdict(set)
    for event in events:
        ref = event.data.get("id") if event.type.startswith("invoice.") else event.data.get("invoice")
        if isinstance(ref, str):
            refs[event.organization_id].add(ref)
    return refs


def _invoices(refs: dict[int, set[str]]):
    invoices = []
    for organization_id, public_ids in refs.items():
        invoices += Invoice.objects.filter(organization_id=organization_id, public_id__in=public_ids).select_related(
            "organization", "account").prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.order_by("pk")))
    return invoices


def react_to_events(events) -> None:
    events = [e for e in events if e.type in HANDLED]
    if not events:
        return
    configs = {c.organization_id: c for c in FiscalSettings.objects.filter(
        organization_id__in={e.organization_id for e in events})}
    if not configs:
        return  # nobody in this batch has fiscal settings: policy never
    wanted = [e for e in events if e.type in ISSUE_ON and (c := configs.get(e.organization_id)) is not None
              and c.policy == ISSUE_ON[e.type]]
    created = services.create_notes(invoices=_invoices(_refs(wanted)), configs=configs) if wanted else []
    changes = services.Changes()
    voided = [e for e in events if e.type == "invoice.voided" and (c := configs.get(e.organization_id)) is not None
              and c.cancel_on_void]
    refunded = [e for e in events if e.type == "payment.refunded" and (c := configs.get(e.organization_id))
                is not None and c.cancel_on_refund]
    to_cancel = _invoice_ids(voided) + _fully_refunded(refunded)
    if to_cancel:
        for note in ServiceInvoice.objects.select_for_update().filter(invoice_id__in=to_cancel).select_related(
                "organization", "invoice", "account").order_by("pk"):
            services.request_cancel(note=note, changes=changes)
        changes.write()
    if any(n.status == "pending" for n in created) or to_cancel:
        sync_service_invoices.enqueue()


def _invoice_ids(events) -> list[int]:
    """The ids of the events' invoices (one query; _invoices loads the rows a note is written from)."""
    refs = _refs(events)
    if not refs:
        return []
    about = Q(pk__in=[])
    for organization_id, public_ids in refs.items():
        about |= Q(organization_id=organization_id, public_id__in=public_ids)
    return list(Invoice.objects.filter(about).values_list("pk", flat=True))


def _fully_refunded(events) -> list[int]:
    """Invoices whose money was all given back: every payment that took money is fully refunded."""
    candidates = _invoice_ids(events)
    if not candidates:
        return []
    totals = Payment.objects.filter(invoice_id__in=candidates, amount_paid__gt=0).values("invoice_id").annotate(
        paid=Sum("amount_paid"), refunded=Sum("amount_refunded"))
    return [row["invoice_id"] for row in totals if row["refunded"] >= row["paid"]]


register_sink(react_to_events)
