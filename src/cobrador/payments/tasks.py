"""Thin tasks: each is a trigger for a service that works through many rows in batches."""

from django.tasks import task

from cobrador.payments import charging, reconciliation


@task
def charge_open_invoices(organization_id: int | None = None) -> dict:
    """Charge every uncharged open invoice (of one organization): what the `invoice-charging` job does,
    in a worker. Invoices are charged as they are made through the charge queue (payments/sink.py)."""
    return charging.charge_open_invoices(organization_id=organization_id)


@task
def reconcile_payments() -> dict:
    """Enqueued (by payments/sink.py) 5 minutes after an outcome becomes unknown; the hourly sweep does the
    same work."""
    return reconciliation.reconcile_due_payments()


def enqueue_charging(*, organization_id: int | None = None) -> None:
    """Ask a worker to charge every open invoice that has not been charged yet (one task for all).
    Transactional: called inside a transaction, the task exists only if it commits."""
    charge_open_invoices.enqueue(organization_id=organization_id)
