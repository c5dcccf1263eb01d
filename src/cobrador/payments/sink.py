"""The payments event sink: reacts, inside the transaction that recorded them, to payment and invoice events.

* invoice.created: an open invoice collected by charging is charged as soon as its transaction
  commits (sign-up, a proration, a one-off invoice, each invoice-generation batch): the invoices go
  into the charge queue in that transaction, so the entry exists only if they do, and its commit wakes
  every worker's charge drainer (charging.charge_queued). The `invoice-charging` job catches what
  this missed.
* payment.unknown: the provider's answer was lost (a timeout, a dead worker); a reconcile_payments task
  asks it again in 5 minutes (enqueued in this transaction: it exists only if the outcome commits). The
  hourly payment-reconciliation sweep is the safety net.

services.py only emits the events; enqueueing lives here and in tasks.py, so no module below tasks.py
names a task.
"""

from cobrador.core import clock
from cobrador.events.services import register_sink
from cobrador.payments.charging import queue_charges
from cobrador.payments.services import RECONCILE_DELAYS
from cobrador.payments.tasks import reconcile_payments


def _to_charge(event) -> bool:
    data = event.data
    return (event.type == "invoice.created" and data.get("status") == "open" and (data.get("amount_due") or 0) > 0
            and data.get("collection_method", "charge") == "charge")


def react_to_events(events) -> None:
    invoice_ids = [event.data["id"] for event in events if _to_charge(event)]
    if invoice_ids:
        queue_charges(invoice_ids)
    if any(event.type == "payment.unknown" for event in events):
        reconcile_payments.using(run_after=clock.now() + RECONCILE_DELAYS[0]).enqueue()


register_sink(react_to_events)
