"""Thin tasks: one task processes every callback waiting, not one task per callback."""

from django.tasks import task

from cobrador.callbacks import processing


@task
def process_received_callbacks() -> dict:
    """Enqueued by the callback view (coalesced) and by reprocess."""
    counts = processing.process_received()
    if counts and processing.GatewayCallback.objects.filter(status="received").exists():
        process_received_callbacks.enqueue()  # more arrived than one run takes: hand over, stay bounded
    return counts


@task
def retry_failed_callbacks() -> dict:
    """Enqueued for when the earliest failed callback of a batch is due again; the callback-retry sweep
    does the same every 15 minutes."""
    return processing.retry_due()
