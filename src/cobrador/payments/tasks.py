"""Thin tasks: each is a trigger for a service that works through many rows in batches."""

from django.tasks import task

from cobrador.payments import charging, reconciliation


@task
def charge_open_invoices(organization_id: int | None = None, invoice_ids: list[str] | None = None) -> dict:
    """Enqueued by payments/sink.py in the transaction that created the invoices (`invoice_ids`, public
    ids), so charging starts as soon as it commits; without ids it charges every uncharged open invoice."""
    return charging.charge_open_invoices(organization_id=organization_id, invoice_ids=invoice_ids)


@task
def reconcile_payments() -> dict:
    """Enqueued (by payments/sink.py) 5 minutes after an outcome becomes unknown; the hourly sweep does the
    same work."""
    return reconciliation.reconcile_due_payments()


def enqueue_charging(*, organization_id: int | None = None) -> None:
    """Ask a worker to charge every open invoice that has not been charged yet (one task for all).
    Transactional: called inside a transaction, the task exists only if it commits."""
    charge_open_invoices.enqueue(organization_id=organization_id)
