"""The payments event sink: reacts, inside the transaction that recorded them, to payment and invoice events.

* invoice.created: an open invoice collected by charging is charged as soon as its transaction
  commits (sign-up, a proration, a one-off invoice, each invoice-generation batch): one
  `charge_open_invoices` task per organization and transaction, enqueued in that transaction, so it
  exists only if the invoices do. The `invoice-charging` job catches what this missed.
* payment.unknown: the provider's answer was lost (a timeout, a dead worker); a reconcile_payments task
  asks it again in 5 minutes (enqueued in this transaction: it exists only if the outcome commits). The
  hourly payment-reconciliation sweep is the safety net.

services.py only emits the events; enqueueing lives here and in tasks.py, so no module below tasks.py
names a task.
"""

from collections import defaultdict

from cobrador.core import clock
from cobrador.events.services import register_sink
from cobrador.payments.services import RECONCILE_DELAYS
from cobrador.payments.tasks import charge_open_invoices, reconcile_payments


def _to_charge(event) -> bool:
    data = event.data
    return (event.type == "invoice.created" and data.get("status") == "open" and (data.get("amount_due") or 0) > 0
            and data.get("collection_method", "charge") == "charge")


def react_to_events(events) -> None:
    created = defaultdict(list)
    for event in events:
        if _to_charge(event):
            created[event.organization_id].append(event.data["id"])
    for organization_id, invoice_ids in created.items():
        charge_open_invoices.enqueue(organization_id=organization_id, invoice_ids=invoice_ids)
    if any(event.type == "payment.unknown" for event in events):
        reconcile_payments.using(run_after=clock.now() + RECONCILE_DELAYS[0]).enqueue()


register_sink(react_to_events)
