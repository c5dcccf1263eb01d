"""Thin tasks: each is a trigger for a service that works through many rows in batches."""

from django.tasks import task

from cobrador.payments import charging, reconciliation


@task
def charge_open_invoices(organization_id: int | None = None) -> dict:
    """Enqueued (by payments.services.enqueue_charging) after invoices are generated."""
    return charging.charge_open_invoices(organization_id=organization_id)


@task
def reconcile_payments() -> dict:
    """Enqueued 5 minutes after an outcome becomes unknown; the hourly sweep does the same work."""
    return reconciliation.reconcile_due_payments()
