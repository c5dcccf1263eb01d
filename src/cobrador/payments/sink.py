"""The payments event sink: reacts to domain events inside the transaction that recorded them.

* invoice.created: an open invoice collected by charging is charged as soon as its transaction
  commits (sign-up, a proration, a one-off invoice, each invoice-generation batch): one
  `charge_open_invoices` task per organization and transaction, enqueued in that transaction, so it
  exists only if the invoices do. The `invoice-charging` job catches what this missed.
"""

from collections import defaultdict

from cobrador.events.services import register_sink
from cobrador.payments.tasks import charge_open_invoices


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


register_sink(react_to_events)
