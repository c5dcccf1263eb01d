"""Thin tasks: one task issues every note that is due, not one task per note."""

from django.tasks import task

from cobrador.nfe import issuing


@task
def sync_service_invoices() -> dict:
    """Enqueued in the transaction that creates notes or asks for a cancellation (so it runs right after
    commit); the nfe-sync sweep does the same every 30 minutes."""
    return issuing.sync()
