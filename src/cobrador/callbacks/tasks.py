"""Thin tasks: one task processes every callback waiting, not one task per callback. Processing reports
when its earliest failed callback is due again; the task (or sweep) that ran it enqueues that retry."""

from datetime import datetime

from django.tasks import task

from cobrador.callbacks import processing
from cobrador.callbacks.models import GatewayCallback


def enqueue_retry(retry_at: datetime | None) -> None:
    """Wake retry_failed_callbacks when the earliest failed callback is due again. Enqueued after the
    failure committed: a wake-up lost in between is found by the callback-retry sweep."""
    if retry_at is not None:
        retry_failed_callbacks.using(run_after=retry_at).enqueue()


@task
def process_received_callbacks() -> dict:
    """Enqueued by the callback view (coalesced) and by reprocess."""
    processed = processing.process_received()
    enqueue_retry(processed.retry_at)
    if processed.counts and GatewayCallback.objects.filter(status="received").exists():
        process_received_callbacks.enqueue()  # more arrived than one run takes: hand over, stay bounded
    return processed.counts


@task
def retry_failed_callbacks() -> dict:
    """Enqueued for when the earliest failed callback of a batch is due again; the callback-retry sweep
    does the same every 15 minutes."""
    processed = processing.retry_due()
    enqueue_retry(processed.retry_at)
    return processed.counts
